//! The listening side shared by `udp listen` and `mcast listen`: how to
//! answer, who may send (allow/deny lists), what to print, and the listener
//! loop inside the server harness.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use sockbox::Shutdown;
use sockbox::udp::{self, ListenConfig, ListenEvent, Listener, ReplyMode};

use super::common::{OutputArgs, check_size, lib_err};
use super::print::{Printer, Throttle};
use crate::cmd::serve::{DaemonArgs, serve_with};
use crate::exit::{self, usage};

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
    /// The library's reply mode. An empty program or a zero time limit is
    /// a usage error, as `listen -e ''` is.
    pub fn mode(&self, limit: usize) -> anyhow::Result<ReplyMode> {
        Ok(if let Some(t) = &self.reply {
            check_size(t.len(), limit).context("--reply")?;
            ReplyMode::Text(t.as_bytes().to_vec())
        } else if let Some(cmd) = &self.reply_exec {
            if cmd.trim().is_empty() {
                return Err(usage(
                    "--reply-exec needs a program to run (a shell command line such as \
                     'tr a-z A-Z')",
                ));
            }
            if self.exec_timeout.is_zero() {
                return Err(usage(
                    "--exec-timeout 0 would kill every --reply-exec program at once: give a \
                     time above 0 (e.g. 2s)",
                ));
            }
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

/// How the listener's events are shown.
struct Show {
    printer: Mutex<Printer>,
    quiet: bool,
    /// A daemon's standard output goes nowhere: log each datagram.
    log_datagrams: bool,
    busy: Mutex<Throttle>,
    /// The first failed write to standard output; it stops the listener.
    failed: Mutex<Option<anyhow::Error>>,
    stop: Shutdown,
}

impl Show {
    fn event(&self, ev: &ListenEvent) {
        match ev {
            ListenEvent::Datagram { from, payload, .. } => {
                let from = *from;
                if self.log_datagrams {
                    tracing::info!(%from, len = payload.len(), "datagram");
                } else {
                    tracing::debug!(%from, len = payload.len(), "datagram");
                }
                if self.quiet {
                    return;
                }
                let mut failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
                if failed.is_some() {
                    return;
                }
                let mut p = self.printer.lock().unwrap_or_else(PoisonError::into_inner);
                if let Err(e) = p.datagram(from, payload) {
                    *failed = Some(e);
                    self.stop.trigger();
                }
            }
            ListenEvent::Denied { from, len } => {
                if self.log_datagrams {
                    tracing::info!(%from, len, "dropped datagram: not permitted by --allow/--deny");
                } else {
                    tracing::debug!(%from, len, "dropped datagram: not permitted by --allow/--deny");
                }
            }
            ListenEvent::ReplyFailed { to, error } => {
                tracing::warn!("no answer to {to}: {error}");
            }
            ListenEvent::Busy { from } => {
                let held = self
                    .busy
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .hit();
                if let Some(n) = held {
                    tracing::warn!(
                        "{n} datagram(s) unanswered (last from {from}): \
                         all --max-children programs are running"
                    );
                }
            }
            _ => {}
        }
    }
}

/// Bind, report, and serve a listener inside the daemon harness.
pub fn serve_listener(
    cfg: ListenConfig,
    daemon: &DaemonArgs,
    out: &OutputArgs,
    lout: &ListenOutputArgs,
    joined: Option<std::net::IpAddr>,
) -> anyhow::Result<u8> {
    // Status and warnings are log lines (standard error in the foreground,
    // the --log-file of a daemon); -q keeps only the warnings. Datagrams go
    // to standard output.
    let level = if lout.quiet {
        tracing::Level::WARN
    } else {
        tracing::Level::INFO
    };
    let mut printer = Printer::new(out.hexdump, out.json);
    printer.raw = lout.raw;
    let (quiet, count) = (lout.quiet, lout.count);
    let log_datagrams = daemon.daemon || daemon.log_file.is_some();
    serve_with(daemon, level, |mut ctx| async move {
        let stop = ctx.shutdown.child();
        let show = Arc::new(Show {
            printer: Mutex::new(printer),
            quiet,
            log_datagrams,
            busy: Mutex::new(Throttle::new(Duration::from_secs(1))),
            failed: Mutex::new(None),
            stop: stop.clone(),
        });
        let shown = show.clone();
        let mut cfg = cfg;
        cfg.count = count;
        cfg.events = Arc::new(move |e: &ListenEvent| shown.event(e));
        cfg.server.stats = ctx.stats.clone();
        cfg.server.grace = ctx.grace;
        let acl = cfg.server.acl.clone();
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
        listener.run(stop).await.map_err(lib_err)?;
        let failed = show
            .failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match failed {
            Some(e) => Err(e),
            None => Ok(exit::SUCCESS),
        }
    })
}
