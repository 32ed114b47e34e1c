//! wol (being written).
