//! Integration tests: relay (being written).
