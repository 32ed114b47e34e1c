//! Integration tests: offline (being written).
