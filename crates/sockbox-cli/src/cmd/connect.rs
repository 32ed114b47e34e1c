//! `sockbox connect` (being written).

/// Arguments of `sockbox connect`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `sockbox connect`.
pub fn run(_a: &Args) -> anyhow::Result<u8> {
    Err(crate::exit::usage("sockbox connect is not built yet"))
}
