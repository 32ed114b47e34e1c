//! relay (being written).
