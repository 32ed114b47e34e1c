//! `sockbox checksum` (being written).

/// Arguments of `sockbox checksum`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `sockbox checksum`.
pub fn run(_a: &Args) -> anyhow::Result<u8> {
    Err(crate::exit::usage("sockbox checksum is not built yet"))
}
