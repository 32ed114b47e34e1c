//! Command-line definition (clap derive) and dispatch to subcommands.

use clap::{CommandFactory, Parser, Subcommand};

use crate::cmd;
use crate::exit::EXIT_CODES_HELP;

/// sockbox: a network toolkit that does, correctly and fast, the jobs people
/// do by hand with raw sockets.
#[derive(Debug, Parser)]
#[command(
    name = "sockbox",
    version,
    about,
    after_help = EXIT_CODES_HELP,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The job to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List network interfaces: name, index, flags, MTU, MAC, addresses, broadcast.
    Ifaces(cmd::ifaces::Args),
    /// Canonical hex+ASCII dump, byte-identical to `hexdump -C`.
    Hexdump(cmd::hexdump::Args),
    /// RFC 1071 internet checksum of a file, a hex string or stdin.
    Checksum(cmd::checksum::Args),
    /// Pack values into bytes by a format string (PHP pack / Python struct codes).
    Pack(cmd::pack::Args),
    /// Unpack bytes into values by a format string.
    Unpack(cmd::unpack::Args),
    /// Print shell completions for sockbox.
    #[command(hide = true)]
    Completions(cmd::meta::CompletionsArgs),
    /// Print the sockbox man page (roff).
    #[command(hide = true)]
    Man,
}

/// Parse the process arguments and run the chosen subcommand.
pub fn run() -> anyhow::Result<u8> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; clap's own usage errors exit 2.
            let code = if e.use_stderr() {
                crate::exit::USAGE
            } else {
                0
            };
            e.print()?;
            return Ok(code);
        }
    };
    dispatch(cli.command)
}

fn dispatch(command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Ifaces(a) => cmd::ifaces::run(&a),
        Command::Hexdump(a) => cmd::hexdump::run(&a),
        Command::Checksum(a) => cmd::checksum::run(&a),
        Command::Pack(a) => cmd::pack::run(&a),
        Command::Unpack(a) => cmd::unpack::run(&a),
        Command::Completions(a) => Ok(cmd::meta::completions(&a, &mut Cli::command())),
        Command::Man => cmd::meta::man(&Cli::command()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
