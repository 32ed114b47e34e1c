//! sockbox: the I/O library behind the `sockbox` command.
//!
//! One module per job. Every job exposes a config struct and an async entry
//! point that takes a [`Shutdown`], so the command line and the tests drive it
//! the same way. Servers are split in two steps so privileges can be dropped
//! in between and a daemon can report readiness only once it is bound.
//!
//! [`daemon::Daemon`] is the harness that runs such a server as a Unix
//! daemon: detach with readiness, pid file, privilege drop after binding,
//! signals (TERM/INT drain with a grace period, HUP reload and log reopen,
//! USR1 statistics), systemd notification, a log that never blocks. Every
//! `sockbox` server runs in it, and so can yours:
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use sockbox::daemon::Daemon;
//! use sockbox::echo::{EchoConfig, EchoServer};
//!
//! fn main() -> std::process::ExitCode {
//!     Daemon::new()
//!         .detach(true)
//!         .pid_file("/tmp/echo.pid")
//!         .user("nobody")
//!         .grace(Duration::from_secs(5))
//!         .run(|mut ctx| async move {
//!             let config = EchoConfig::new("127.0.0.1:7007".parse()?);
//!             let server = EchoServer::bind(config).await?; // bind as root
//!             ctx.ready()?; // drop to nobody, tell the parent and systemd
//!             server.run(ctx.shutdown.clone(), ctx.stats.clone()).await?;
//!             Ok(0)
//!         })
//! }
//! ```
//!
//! Linux-specific system calls live behind [`sys`] so other platforms can
//! follow.

pub mod chat;
pub mod daemon;
pub mod echo;
pub mod event;
pub mod iface;
pub mod net;
pub mod ping;
pub mod relay;
pub mod shutdown;
pub mod sys;
pub mod tls;
pub mod udp;
pub mod wol;

pub use shutdown::Shutdown;
