//! Integration tests: ping (being written).
