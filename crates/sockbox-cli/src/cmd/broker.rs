//! `sockbox broker` (being written).

/// Arguments of `sockbox broker`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `sockbox broker`.
pub fn run(_a: &Args) -> anyhow::Result<u8> {
    Err(crate::exit::usage("sockbox broker is not built yet"))
}
