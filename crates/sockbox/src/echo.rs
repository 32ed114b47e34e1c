//! TCP and UDP echo server (being written).
