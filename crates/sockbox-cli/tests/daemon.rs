//! Integration tests: daemon (being written).
