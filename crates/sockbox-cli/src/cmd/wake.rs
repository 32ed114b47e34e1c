//! `sockbox wake` (being written).

/// Arguments of `sockbox wake`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `sockbox wake`.
pub fn run(_a: &Args) -> anyhow::Result<u8> {
    Err(crate::exit::usage("sockbox wake is not built yet"))
}
