//! Top-level usage: help, version, exit codes for bad invocations.

use crate::util::sockbox;

#[test]
fn help_lists_subcommands_and_exit_codes() {
    sockbox()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicates::str::contains("ifaces"))
        .stdout(predicates::str::contains("Exit codes"));
}

#[test]
fn unknown_subcommand_exits_2() {
    sockbox().arg("frobnicate").assert().code(2);
}

#[test]
fn man_and_completions_generate() {
    sockbox()
        .arg("man")
        .assert()
        .success()
        .stdout(predicates::str::contains(".TH"));
    sockbox().args(["completions", "bash"]).assert().success();
}
