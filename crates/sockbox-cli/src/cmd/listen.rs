//! `sockbox listen` (being written).

/// Arguments of `sockbox listen`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `sockbox listen`.
pub fn run(_a: &Args) -> anyhow::Result<u8> {
    Err(crate::exit::usage("sockbox listen is not built yet"))
}
