//! TODO: mac codec (being written).
