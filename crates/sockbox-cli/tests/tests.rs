//! Integration tests for the `sockbox` binary: one test binary, one module
//! per subcommand. Network tests only touch loopback or network namespaces
//! the tests create themselves (see `util::netns`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod util;

mod chat;
mod daemon;
mod ifaces;
mod monitor;
mod offline;
mod ping;
mod relay;
mod tls;
mod udp;
mod usage;
mod wake;
