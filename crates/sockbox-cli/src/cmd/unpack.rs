//! `sockbox unpack` (being written).

/// Arguments of `sockbox unpack`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `sockbox unpack`.
pub fn run(_a: &Args) -> anyhow::Result<u8> {
    Err(crate::exit::usage("sockbox unpack is not built yet"))
}
