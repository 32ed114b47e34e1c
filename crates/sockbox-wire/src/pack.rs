//! TODO: pack codec (being written).
