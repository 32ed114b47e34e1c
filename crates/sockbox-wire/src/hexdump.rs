//! TODO: hexdump codec (being written).
