//! TODO: icmp codec (being written).
