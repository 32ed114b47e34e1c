//! `sockbox hexdump` (being written).

/// Arguments of `sockbox hexdump`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `sockbox hexdump`.
pub fn run(_a: &Args) -> anyhow::Result<u8> {
    Err(crate::exit::usage("sockbox hexdump is not built yet"))
}
