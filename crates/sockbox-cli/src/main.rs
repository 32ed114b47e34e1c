//! The `sockbox` binary: parse the command line, run one subcommand, map the
//! outcome to an exit code. No protocol logic lives here.

mod cli;
mod cmd;
mod exit;
mod input;
mod output;

use std::process::ExitCode;

fn main() -> ExitCode {
    exit::report(cli::run())
}
