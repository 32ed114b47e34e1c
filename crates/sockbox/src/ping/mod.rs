//! ping (being written).
