//! TODO: magic codec (being written).
