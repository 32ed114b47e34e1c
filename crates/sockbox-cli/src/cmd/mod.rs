//! One module per subcommand. Each exposes `Args` (clap) and
//! `run(&Args) -> anyhow::Result<u8>` returning the exit code.

pub mod checksum;
pub mod hexdump;
pub mod ifaces;
pub mod meta;
pub mod pack;
#[allow(dead_code)] // used by the async subcommands being written
pub mod runtime;
#[allow(dead_code)] // used by the server subcommands being written
pub mod serve;
pub mod unpack;
