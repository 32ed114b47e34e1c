//! `sockbox mcast` (being written).

/// Arguments of `sockbox mcast`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `sockbox mcast`.
pub fn run(_a: &Args) -> anyhow::Result<u8> {
    Err(crate::exit::usage("sockbox mcast is not built yet"))
}
