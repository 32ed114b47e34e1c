//! Integration tests: udp (being written).
