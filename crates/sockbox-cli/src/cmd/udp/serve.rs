//! The listening side shared by `udp listen` and `mcast listen`: how to
//! answer, who may send (allow/deny lists), what to print, and the listener
//! loop inside the server harness.

use std::time::Duration;

use anyhow::Context;
use sockbox::udp::{self, Event, ListenConfig, Listener, ReplyMode};

use super::common::{OutputArgs, check_size, lib_err};
use super::print::Printer;
use crate::cmd::serve::{DaemonArgs, serve_with};
use crate::exit;

/// How a listener answers, from the command line.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Answering")]
pub struct ResponderArgs {
    /// Answer every datagram with this text (a discovery responder).
    #[arg(long, value_name = "TEXT", group = "answer")]
    pub reply: Option<String>,
    /// Answer every datagram with the output of `sh -c CMD`, run with the
    /// payload on stdin ($SOCKBOX_PEER_ADDR, $SOCKBOX_PEER_PORT set, and the
    /// $SOCKBOX_REMOTE_*/$SOCKBOX_LOCAL_* of `listen -e`). Empty
    /// output or a failing exit status sends nothing.
    #[arg(long, value_name = "CMD", group = "answer")]
    pub reply_exec: Option<String>,
    /// Send every datagram back to its sender.
    #[arg(long, group = "answer")]
    pub echo: bool,
    /// Kill a --reply-exec program (and its children) after this long.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::input::duration)]
    pub exec_timeout: Duration,
    /// Run at most this many --reply-exec programs at once; datagrams beyond are dropped.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_children: u32,
}

impl ResponderArgs {
    /// The library's reply mode.
    pub fn mode(&self, limit: usize) -> anyhow::Result<ReplyMode> {
        Ok(if let Some(t) = &self.reply {
            check_size(t.len(), limit).context("--reply")?;
            ReplyMode::Text(t.as_bytes().to_vec())
        } else if let Some(cmd) = &self.reply_exec {
            ReplyMode::Exec(udp::exec::ExecConfig {
                command: cmd.clone(),
                timeout: self.exec_timeout,
                max_output: limit,
            })
        } else if self.echo {
            ReplyMode::Echo
        } else {
            ReplyMode::None
        })
    }
}

/// Listener printing options beyond [`OutputArgs`].
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Output")]
pub struct ListenOutputArgs {
    /// Write payloads only, raw, one after another (like `nc -u -l`).
    #[arg(long, conflicts_with_all = ["hexdump", "json"])]
    pub raw: bool,
    /// Print nothing per datagram (a silent responder).
    #[arg(short, long, conflicts_with_all = ["hexdump", "json", "raw"])]
    pub quiet: bool,
    /// Exit after this many datagrams.
    #[arg(short = 'c', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
}

/// Bind, report, and serve a listener inside the daemon harness.
pub fn serve_listener(
    cfg: ListenConfig,
    daemon: &DaemonArgs,
    out: &OutputArgs,
    lout: &ListenOutputArgs,
    joined: Option<std::net::IpAddr>,
) -> anyhow::Result<u8> {
    let (hexdump, json, raw, quiet, count) =
        (out.hexdump, out.json, lout.raw, lout.quiet, lout.count);
    let log_datagrams = daemon.daemon || daemon.log_file.is_some();
    // Status and warnings are log lines (standard error in the foreground,
    // the --log-file of a daemon); -q keeps only the warnings. Datagrams go
    // to standard output.
    let level = if quiet {
        tracing::Level::WARN
    } else {
        tracing::Level::INFO
    };
    let acl = cfg.acl.clone();
    serve_with(daemon, level, |mut ctx| async move {
        let listener = Listener::bind(cfg).map_err(lib_err)?;
        let joined = joined.map(|g| {
            let on = listener
                .iface()
                .map(|i| format!(" on {} (index {})", i.name, i.index))
                .unwrap_or_default();
            format!("joined {g}{on}, ")
        });
        tracing::info!(
            "{}listening on udp {}",
            joined.unwrap_or_default(),
            sockbox::net::canonical(listener.local_addr())
        );
        ctx.ready()?;
        crate::cmd::listen::reload_acl_on_hup(&acl, ctx.reload);
        let stop = ctx.shutdown.child();
        let mut printer = Printer::new(hexdump, json);
        printer.raw = raw;
        let mut seen = 0u64;
        let mut failed: Option<anyhow::Error> = None;
        let mut busy = super::print::Throttle::new(Duration::from_secs(1));
        listener
            .run(&stop, &ctx.stats, ctx.grace, |ev| match ev {
                Event::Datagram { from, payload } => {
                    seen += 1;
                    // A daemon's standard output goes nowhere: log them.
                    if log_datagrams {
                        tracing::info!(%from, len = payload.len(), "datagram");
                    } else {
                        tracing::debug!(%from, len = payload.len(), "datagram");
                    }
                    if !quiet
                        && failed.is_none()
                        && let Err(e) = printer.datagram(from, payload)
                    {
                        failed = Some(e);
                        stop.trigger();
                    }
                    if count.is_some_and(|c| seen >= c) {
                        stop.trigger();
                    }
                }
                Event::Replied { .. } => {}
                Event::Denied { from, len } => {
                    if log_datagrams {
                        tracing::info!(%from, len, "dropped datagram: not permitted by --allow/--deny");
                    } else {
                        tracing::debug!(%from, len, "dropped datagram: not permitted by --allow/--deny");
                    }
                }
                Event::ReplyFailed { to, reason } => {
                    tracing::warn!("no answer to {to}: {reason}");
                }
                Event::Busy { from } => {
                    if let Some(n) = busy.hit() {
                        tracing::warn!(
                            "{n} datagram(s) unanswered (last from {from}): \
                             all --max-children programs are running"
                        );
                    }
                }
            })
            .await
            .map_err(lib_err)?;
        match failed {
            Some(e) => Err(e),
            None => Ok(exit::SUCCESS),
        }
    })
}
