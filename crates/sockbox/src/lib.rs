//! sockbox: the I/O library behind the `sockbox` command, and a small
//! framework for your own socket daemons and clients.
//!
//! - [`net`]: the framework every server and client here is built on — a
//!   listener builder, one TCP accept loop and one UDP receive loop with
//!   handler seams ([`net::Handler`], [`net::DatagramHandler`]), connection
//!   caps, allow/deny lists, soft and hard shutdown, a line codec, and a
//!   client that connects over every address with a timeout, TLS and
//!   reconnect.
//! - [`daemon`]: the harness that runs a server as a Unix daemon
//!   ([`daemon::Daemon`]): detach with readiness, pid file, privilege drop
//!   after binding, signals (TERM/INT drain with a grace period, HUP reload
//!   and log reopen, USR1 statistics), systemd notification, a log that
//!   never blocks.
//! - One module per job, each built on those two: [`relay`] (connect /
//!   listen), [`echo`], [`chat`] (chat and broker), [`udp`] (datagrams,
//!   broadcast, multicast), [`wol`] (Wake-on-LAN), [`ping`], [`monitor`]
//!   (a Prometheus prober on the ping engine); and [`iface`] (interfaces). Every server has the same shape: `bind(config)`, then
//!   `run(shutdown) -> report`; every job reports events to an
//!   [`event::Observer`].
//!
//! A server binds as root, drops privileges, then serves until SIGTERM:
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
//!             let mut config = EchoConfig::new("127.0.0.1:7007".parse()?);
//!             config.server.stats = ctx.stats.clone(); // SIGUSR1 reports these
//!             let server = EchoServer::bind(config)?; // bind as root
//!             ctx.ready()?; // drop to nobody, tell the parent and systemd
//!             server.run(ctx.shutdown.clone()).await?;
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
pub mod hexdump;
pub mod iface;
pub mod monitor;
pub mod net;
pub mod ping;
pub mod relay;
pub mod shutdown;
pub mod sys;
pub mod tls;
pub mod udp;
pub mod wol;

pub use shutdown::Shutdown;
