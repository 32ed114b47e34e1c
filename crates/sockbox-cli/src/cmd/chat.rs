//! `sockbox chat` (being written).

/// Arguments of `sockbox chat`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `sockbox chat`.
pub fn run(_a: &Args) -> anyhow::Result<u8> {
    Err(crate::exit::usage("sockbox chat is not built yet"))
}
