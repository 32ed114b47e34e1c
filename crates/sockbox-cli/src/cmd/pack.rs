//! `sockbox pack` (being written).

/// Arguments of `sockbox pack`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `sockbox pack`.
pub fn run(_a: &Args) -> anyhow::Result<u8> {
    Err(crate::exit::usage("sockbox pack is not built yet"))
}
