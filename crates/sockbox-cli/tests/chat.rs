//! Integration tests: chat (being written).
