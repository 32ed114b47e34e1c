//! Platform-specific system calls. Everything Linux-only is behind this
//! module so other platforms can add their own versions.

pub mod caps;
pub mod device;
pub mod linux;
pub mod mcast;
#[cfg(target_os = "linux")]
pub mod packet;
pub mod ping;
pub mod ping_io;
pub mod pktinfo;
pub mod process;
pub mod rdns;
pub mod rlimit;
pub mod sockopt;
pub mod splice;
pub mod tcp;
