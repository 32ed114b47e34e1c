//! Integration tests: wake (being written).
