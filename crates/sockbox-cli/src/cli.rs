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
    /// TCP/UDP client wired to stdin/stdout (like `ncat HOST PORT`).
    Connect(cmd::connect::Args),
    /// TCP/UDP server wired to stdin/stdout or a program (like `ncat -l`).
    Listen(cmd::listen::Args),
    /// TCP and UDP echo server, for testing.
    Echo(cmd::echo::Args),
    /// Multi-client line chat with nicknames (like `ncat --chat`, done right).
    Chat(cmd::chat::Args),
    /// Raw fan-out broker: bytes from one client go to all others (like `ncat --broker`).
    Broker(cmd::broker::Args),
    /// UDP datagrams: send (with broadcast and reply collection) and listen (with responder).
    Udp(cmd::udp::Args),
    /// IPv4/IPv6 multicast: send and listen on a chosen interface.
    Mcast(cmd::mcast::Args),
    /// Wake-on-LAN: send magic packets on every interface, or listen for them.
    Wake(cmd::wake::Args),
    /// ICMP echo to many targets and ranges (like fping / ping), without exec.
    Ping(cmd::ping::Args),
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
    Completions(cmd::meta::CompletionsArgs),
    /// Print the sockbox man page (roff).
    Man,
}

/// Parse the process arguments and run the chosen subcommand.
pub fn run() -> anyhow::Result<u8> {
    // `ping -s` is the size or fping's stats: settled before clap parses.
    let args = cmd::ping::argv::rewrite_command_line(std::env::args_os().collect());
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; clap's own usage errors
            // exit 2 (3 for an fping-style ping command line, as fping
            // documents), even when standard error cannot be written (a
            // broken pipe there must not read as success).
            if e.use_stderr() {
                let _ = e.print();
                return Ok(if cmd::ping::argv::is_fping_command_line(&args) {
                    3
                } else {
                    crate::exit::USAGE
                });
            }
            e.print()?;
            return Ok(crate::exit::SUCCESS);
        }
    };
    dispatch(cli.command)
}

fn dispatch(command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Connect(a) => cmd::connect::run(&a),
        Command::Listen(a) => cmd::listen::run(&a),
        Command::Echo(a) => cmd::echo::run(&a),
        Command::Chat(a) => cmd::chat::run(&a),
        Command::Broker(a) => cmd::broker::run(&a),
        Command::Udp(a) => cmd::udp::run(&a),
        Command::Mcast(a) => cmd::mcast::run(&a),
        Command::Wake(a) => cmd::wake::run(&a),
        Command::Ping(a) => cmd::ping::run(&a),
        Command::Ifaces(a) => cmd::ifaces::run(&a),
        Command::Hexdump(a) => cmd::hexdump::run(&a),
        Command::Checksum(a) => cmd::checksum::run(&a),
        Command::Pack(a) => cmd::pack::run(&a),
        Command::Unpack(a) => cmd::unpack::run(&a),
        Command::Completions(a) => cmd::meta::completions(&a, &mut Cli::command()),
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
