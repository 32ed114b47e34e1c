//! Generated artefacts: shell completions and the man page.

use std::io::Write;

/// Arguments of `sockbox completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Print completions for the chosen shell. Generated into memory first:
/// `generate` panics when its writer fails (a full or closed stdout).
pub fn completions(a: &CompletionsArgs, cmd: &mut clap::Command) -> anyhow::Result<u8> {
    let mut buf = Vec::new();
    clap_complete::generate(a.shell, cmd, "sockbox", &mut buf);
    std::io::stdout().write_all(&buf)?;
    Ok(0)
}

/// Print the man page.
pub fn man(cmd: &clap::Command) -> anyhow::Result<u8> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    std::io::stdout().write_all(&buf)?;
    Ok(0)
}
