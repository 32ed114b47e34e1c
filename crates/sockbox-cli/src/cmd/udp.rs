//! `sockbox udp` (being written).

/// Arguments of `sockbox udp`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `sockbox udp`.
pub fn run(_a: &Args) -> anyhow::Result<u8> {
    Err(crate::exit::usage("sockbox udp is not built yet"))
}
