//! Platform-specific system calls. Everything Linux-only is behind this
//! module so other platforms can add their own versions.

pub mod device;
pub mod linux;
pub mod mcast;
#[cfg(target_os = "linux")]
pub mod packet;
pub mod ping;
pub mod ping_io;
pub mod pktinfo;
pub mod process;
pub mod rlimit;
pub mod splice;
pub mod tcp;
