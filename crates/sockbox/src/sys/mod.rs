//! Platform-specific system calls. Everything Linux-only is behind this
//! module so other platforms can add their own versions.

pub mod linux;
pub mod ping;
#[cfg(target_os = "linux")]
pub mod packet;
pub mod splice;
pub mod mcast;
pub mod rlimit;
