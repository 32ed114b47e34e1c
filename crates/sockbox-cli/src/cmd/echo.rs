//! `sockbox echo` (being written).

/// Arguments of `sockbox echo`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `sockbox echo`.
pub fn run(_a: &Args) -> anyhow::Result<u8> {
    Err(crate::exit::usage("sockbox echo is not built yet"))
}
