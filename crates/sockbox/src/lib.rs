//! sockbox: the I/O library behind the `sockbox` command.
//!
//! One module per job. Every job exposes a config struct and an async entry
//! point that takes a [`Shutdown`], so the command line and the tests drive it
//! the same way. Servers are split in two steps so privileges can be dropped
//! in between and a daemon can report readiness only once it is bound:
//!
//! ```text
//! let server = job::bind(config).await?;   // open sockets, bind low ports
//! drop_plan.apply()?;                      // optional: daemon::DropPlan
//! server.run(shutdown).await?;             // serve until shutdown
//! ```
//!
//! Linux-specific system calls live behind [`sys`] so other platforms can
//! follow.

pub mod chat;
pub mod daemon;
pub mod echo;
pub mod hexdump;
pub mod iface;
pub mod ping;
pub mod relay;
pub mod shutdown;
pub mod sys;
pub mod tls;
pub mod udp;
pub mod wol;

pub use shutdown::Shutdown;
