//! Platform-specific system calls. Everything Linux-only is behind this
//! module so other platforms can add their own versions.

pub mod linux;
pub mod ping;
pub mod ping_io;
