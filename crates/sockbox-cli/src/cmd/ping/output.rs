//! Printing ping events: iputils style for one target, fping style for
//! many, or JSON lines.

use std::io::{self, BufWriter, IsTerminal, Stdout, Write};
use std::net::IpAddr;
use std::time::Duration;

use serde_json::json;
use sockbox::ping::targets::Target;
use sockbox::ping::{Event, IcmpKind, Mode, Observer, Outcome, PingConfig, Rtt};

use super::Args;
use super::format::{ms_f, ms3, ping_ms};
use super::progress::Bar;

mod summary;

/// How to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Style {
    /// Like iputils ping (one target).
    Ping,
    /// Like fping.
    Fping {
        /// -a: only alive targets.
        alive: bool,
        /// -u: only unreachable targets.
        unreachable: bool,
        /// -q: no per-probe lines.
        quiet: bool,
        /// -e: RTT after "is alive".
        elapsed: bool,
        /// -C: RTT columns at the end.
        columns: bool,
    },
    /// One JSON object per line.
    Json,
}

impl Style {
    /// The style the flags ask for.
    pub fn from_args(a: &Args, many: bool) -> Self {
        if a.json {
            Self::Json
        } else if many {
            Self::Fping {
                alive: a.alive,
                unreachable: a.unreachable,
                quiet: a.quiet,
                elapsed: a.elapsed,
                columns: a.vcount.is_some(),
            }
        } else {
            Self::Ping
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Live {
    received: u32,
    rtt: Rtt,
    first_rtt: Option<Duration>,
}

/// Prints events as they come and the summaries at the end.
pub struct Printer {
    style: Style,
    out: BufWriter<Stdout>,
    targets: Vec<Target>,
    /// Width of the longest name (fping pads names to it), computed when
    /// first needed: a plain sweep never needs it.
    width: std::cell::OnceCell<usize>,
    live: Vec<Live>,
    columns: Vec<Vec<Option<Duration>>>,
    count: Option<u32>,
    payload: usize,
    kinds: (Option<IcmpKind>, Option<IcmpKind>),
    /// The sweep progress bar on stderr, when stderr is a terminal.
    progress: Option<Bar>,
    /// Stdout is a terminal too: erase the bar before printing a result.
    stdout_tty: bool,
    verbose: bool,
    write_error: Option<io::Error>,
    stop: Option<sockbox::Shutdown>,
}

impl Printer {
    /// A printer for these targets.
    pub fn new(
        style: Style,
        targets: Vec<Target>,
        cfg: &PingConfig,
        kinds: (Option<IcmpKind>, Option<IcmpKind>),
    ) -> Self {
        let count = match cfg.mode {
            Mode::Count(n) => Some(n),
            _ => None,
        };
        let columns = match (&style, count) {
            (Style::Fping { columns: true, .. }, Some(n)) => {
                vec![vec![None; n as usize]; targets.len()]
            }
            _ => Vec::new(),
        };
        // A bar for sweeps only; never with --json (machine output, and the
        // style is not Fping) nor -q (asks for silence).
        let sweep = matches!(style, Style::Fping { quiet: false, .. }) && targets.len() > 1;
        let count_for_live = count;
        let progress = if sweep {
            Bar::for_stderr(targets.len() as u64)
        } else {
            None
        };
        // Running per-target numbers are only printed in count mode, by -e
        // and for a single target: a plain sweep does without them.
        let needs_live = count_for_live.is_some()
            || style == Style::Ping
            || matches!(style, Style::Fping { elapsed: true, .. });
        let live = if needs_live {
            vec![Live::default(); targets.len()]
        } else {
            Vec::new()
        };
        Self {
            style,
            out: BufWriter::with_capacity(64 * 1024, io::stdout()),
            live,
            targets,
            width: std::cell::OnceCell::new(),
            columns,
            count,
            payload: cfg.payload_len,
            kinds,
            progress,
            stdout_tty: io::stdout().is_terminal(),
            verbose: false,
            write_error: None,
            stop: None,
        }
    }

    /// Trigger `stop` when stdout fails (closed pipe).
    pub fn stop_on_write_error(&mut self, stop: sockbox::Shutdown) {
        self.stop = Some(stop);
    }

    fn failed(&mut self, e: io::Error) {
        if let Some(s) = &self.stop {
            s.trigger();
        }
        self.write_error = Some(e);
    }

    /// Print socket kinds and counters to stderr at the end.
    pub fn set_verbose(&mut self, v: bool) {
        self.verbose = v;
    }

    /// Erase the bar before a line goes to stdout, when stdout shares the
    /// terminal (it is redrawn after the next flush).
    fn clear_for_stdout(&mut self) {
        if self.stdout_tty
            && let Some(bar) = &mut self.progress
        {
            bar.erase();
        }
    }

    fn line(&mut self, s: &str) {
        if self.write_error.is_some() {
            return;
        }
        self.clear_for_stdout();
        if let Err(e) = writeln!(self.out, "{s}") {
            self.failed(e);
        }
    }

    fn json(&mut self, v: &serde_json::Value) {
        let s = v.to_string();
        self.line(&s);
    }

    fn err_line(&mut self, s: &str) {
        if let Some(bar) = &mut self.progress {
            bar.erase();
        }
        crate::output::errln!("{s}");
    }

    /// A name that did not resolve.
    pub fn unresolved(&mut self, name: &str, err: &str) {
        match self.style {
            Style::Json => {
                self.json(&json!({"type": "unresolved", "target": name, "error": err}));
            }
            _ => self.err_line(&format!("{name}: {err}")),
        }
    }

    /// The header line before the first probe (iputils style only).
    pub fn start(&mut self) {
        if self.style != Style::Ping {
            return;
        }
        let (name, addr, s) = (self.name(0), self.targets[0].addr, self.payload);
        let head = if addr.is_ipv4() {
            format!("PING {name} ({addr}) {s}({}) bytes of data.", s + 28)
        } else {
            format!("PING {name}({addr}) {s} data bytes")
        };
        self.line(&head);
        let _ = self.out.flush();
    }

    fn who(&self, i: usize, from: IpAddr) -> String {
        if self.name(i) == from.to_string() || from != self.targets[i].addr {
            from.to_string()
        } else {
            format!("{} ({from})", self.name(i))
        }
    }

    fn name(&self, i: usize) -> String {
        self.targets[i].display()
    }

    fn fping_name(&self, i: usize) -> String {
        let width = *self.width.get_or_init(|| {
            self.targets
                .iter()
                .map(|t| {
                    t.name
                        .as_ref()
                        .map_or_else(|| t.addr.to_string().len(), |n| n.len())
                })
                .max()
                .unwrap_or(0)
        });
        format!("{:<width$}", self.name(i))
    }

    /// Nothing could be pinged (every name failed).
    pub fn finish_empty(&mut self, unresolved: usize) {
        if self.style == Style::Json {
            self.json(&json!({"type": "totals", "targets": 0, "unresolved": unresolved}));
        }
        let _ = self.out.flush();
    }

    /// Print the summaries; true when every target answered at least once.
    pub fn finish(&mut self, o: &Outcome, unresolved: usize) -> anyhow::Result<bool> {
        // Off the screen before any summary line.
        if let Some(mut bar) = self.progress.take() {
            bar.erase();
        }
        let alive = o.stats.iter().filter(|s| s.received > 0).count();
        match self.style.clone() {
            Style::Ping => self.ping_summary(o),
            Style::Fping { columns, .. } => self.fping_summary(o, columns),
            Style::Json => self.json_summary(o, alive, unresolved),
        }
        if let Err(e) = self.out.flush() {
            self.write_error.get_or_insert(e);
        }
        if let Some(e) = self.write_error.take() {
            return Err(e.into());
        }
        if self.verbose {
            let k = |x: Option<IcmpKind>| x.map_or("none", IcmpKind::as_str);
            let c = o.counters;
            crate::output::errln!(
                "sockbox: sockets v4 {} v6 {}; foreign {}, duplicates {}, bad checksum {}, late {}, corrupt {}, errors {}, malformed {}",
                k(self.kinds.0),
                k(self.kinds.1),
                c.foreign,
                c.duplicates,
                c.bad_checksum,
                c.late,
                c.corrupt,
                c.errors,
                c.malformed
            );
        }
        Ok(alive == o.stats.len())
    }

    fn on_reply(&mut self, r: &sockbox::ping::Reply) {
        let i = r.target as usize;
        if !r.duplicate
            && let Some(l) = self.live.get_mut(i)
        {
            l.received += 1;
            l.rtt.add(r.rtt);
            l.first_rtt.get_or_insert(r.rtt);
            if let Some(c) = self
                .columns
                .get_mut(i)
                .and_then(|c| c.get_mut(r.round as usize))
            {
                *c = Some(r.rtt);
            }
        }
        match self.style.clone() {
            Style::Ping => {
                let ttl = r.ttl.map(|t| format!(" ttl={t}")).unwrap_or_default();
                let dup = if r.duplicate { " (DUP!)" } else { "" };
                let line = format!(
                    "{} bytes from {}: icmp_seq={}{ttl} time={} ms{dup}",
                    r.bytes,
                    self.who(i, r.from),
                    r.round + 1,
                    ping_ms(r.rtt)
                );
                self.line(&line);
            }
            Style::Fping { quiet, .. } => {
                if quiet || self.count.is_none() || r.duplicate {
                    return;
                }
                let l = self.live.get(i).cloned().unwrap_or_default();
                let sent = r.round + 1;
                let loss = f64::from(sent.saturating_sub(l.received)) * 100.0 / f64::from(sent);
                let line = format!(
                    "{} : [{}], {} bytes, {} ms ({} avg, {}% loss)",
                    self.fping_name(i),
                    r.round,
                    r.bytes,
                    ms3(Some(r.rtt)),
                    ms3(l.rtt.avg()),
                    loss.round()
                );
                self.line(&line);
            }
            Style::Json => {
                let v = json!({
                    "type": "reply",
                    "target": self.name(i),
                    "addr": self.targets[i].addr.to_string(),
                    "from": r.from.to_string(),
                    "seq": r.round,
                    "bytes": r.bytes,
                    "ttl": r.ttl,
                    "rtt_ms": ms_f(Some(r.rtt)),
                    "duplicate": r.duplicate,
                });
                self.json(&v);
            }
        }
    }

    fn on_timeout(&mut self, target: u32, round: u32) {
        let i = target as usize;
        match self.style.clone() {
            Style::Ping => {}
            Style::Fping { quiet, .. } => {
                if quiet || self.count.is_none() {
                    return;
                }
                let l = self.live.get(i).cloned().unwrap_or_default();
                let sent = round + 1;
                let loss = f64::from(sent.saturating_sub(l.received)) * 100.0 / f64::from(sent);
                let line = format!(
                    "{} : [{round}], timed out ({} avg, {}% loss)",
                    self.fping_name(i),
                    ms3(l.rtt.avg()),
                    loss.round()
                );
                self.line(&line);
            }
            Style::Json => {
                let v = json!({
                    "type": "timeout",
                    "target": self.name(i),
                    "addr": self.targets[i].addr.to_string(),
                    "seq": round,
                });
                self.json(&v);
            }
        }
    }

    fn on_done(&mut self, target: u32, alive: bool) {
        if let Some(bar) = &mut self.progress {
            bar.inc();
        }
        let Style::Fping {
            alive: only_alive,
            unreachable: only_unreach,
            quiet,
            elapsed,
            ..
        } = self.style
        else {
            return;
        };
        let i = target as usize;
        if only_alive || only_unreach {
            if (alive && only_alive) || (!alive && only_unreach) {
                // Written straight into the buffer: a sweep prints 10^5 of these.
                if self.write_error.is_none() {
                    self.clear_for_stdout();
                    let t = &self.targets[i];
                    let r = match &t.name {
                        Some(n) => writeln!(self.out, "{n}"),
                        None => writeln!(self.out, "{}", t.addr),
                    };
                    if let Err(e) = r {
                        self.failed(e);
                    }
                }
            }
            return;
        }
        let name = self.name(i);
        if quiet || self.count.is_some() {
            return;
        }
        if alive {
            let rtt = match (elapsed, self.live.get(i).and_then(|l| l.first_rtt)) {
                (true, Some(d)) => format!(" ({} ms)", ms3(Some(d))),
                _ => String::new(),
            };
            self.line(&format!("{name} is alive{rtt}"));
        } else {
            self.line(&format!("{name} is unreachable"));
        }
    }
}

impl Observer for Printer {
    fn event(&mut self, ev: &Event) {
        match ev {
            Event::Reply(r) => self.on_reply(r),
            Event::Timeout { target, round } => self.on_timeout(*target, *round),
            Event::Done { target, alive } => self.on_done(*target, *alive),
            Event::Error(e) => {
                let i = e.target as usize;
                match self.style.clone() {
                    Style::Ping => {
                        let line =
                            format!("From {} icmp_seq={} {}", e.from, e.round + 1, e.describe());
                        self.line(&line);
                    }
                    Style::Fping { quiet, .. } => {
                        if !quiet {
                            self.err_line(&format!(
                                "ICMP {} from {} for ICMP Echo sent to {}",
                                e.describe(),
                                e.from,
                                self.targets[i].addr
                            ));
                        }
                    }
                    Style::Json => {
                        let v = json!({
                            "type": "error",
                            "target": self.name(i),
                            "addr": self.targets[i].addr.to_string(),
                            "seq": e.round,
                            "from": e.from.to_string(),
                            "error": e.describe(),
                        });
                        self.json(&v);
                    }
                }
            }
            Event::SendFailed {
                target,
                round,
                kind,
            } => {
                let i = *target as usize;
                let msg = format!(
                    "{}: sending probe {round} failed: {}",
                    self.name(i),
                    io::Error::from(*kind)
                );
                if self.style == Style::Json {
                    let v = json!({
                        "type": "send_error",
                        "target": self.name(i),
                        "addr": self.targets[i].addr.to_string(),
                        "seq": round,
                        "error": io::Error::from(*kind).to_string(),
                    });
                    self.json(&v);
                } else {
                    self.err_line(&msg);
                }
            }
        }
    }

    fn flush(&mut self) {
        if self.write_error.is_none()
            && let Err(e) = self.out.flush()
        {
            self.failed(e);
        }
        // Results first, then the bar under them (rate-limited).
        if let Some(bar) = &mut self.progress {
            bar.tick();
        }
    }
}
