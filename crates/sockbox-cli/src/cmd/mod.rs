//! One module per subcommand. Each exposes `Args` (clap) and
//! `run(&Args) -> anyhow::Result<u8>` returning the exit code.

pub mod broker;
pub mod chat;
pub mod checksum;
pub mod connect;
pub mod echo;
pub mod hexdump;
pub mod ifaces;
pub mod listen;
pub mod mcast;
pub mod meta;
pub mod pack;
pub mod ping;
pub mod runtime;
pub mod serve;
pub mod udp;
pub mod unpack;
pub mod wake;
