//! chat (being written).
