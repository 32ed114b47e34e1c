//! TODO: checksum codec (being written).
