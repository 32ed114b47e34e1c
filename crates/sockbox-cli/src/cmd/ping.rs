//! `sockbox ping` (being written).

/// Arguments of `sockbox ping`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `sockbox ping`.
pub fn run(_a: &Args) -> anyhow::Result<u8> {
    Err(crate::exit::usage("sockbox ping is not built yet"))
}
