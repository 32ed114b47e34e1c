//! Printing ping events: iputils style for one target, fping style for
//! many, or JSON lines. What is kept per target is only what the output
//! needs: nothing for `-a`/`-u`/`-q` sweeps (lines are printed as targets
//! finish), a summary line per target with -c/-C/-l (fping prints those
//! at the end), split counters with -Q.

mod fping_style;
mod json;
mod ping_style;

use std::collections::HashMap;
use std::io::{self, BufWriter, IsTerminal, Stdout, Write};
use std::net::IpAddr;
use std::time::Duration;

use sockbox::Shutdown;
use sockbox::ping::{Event, IcmpKind, Mode, Observer, Outcome, TargetRef, TargetStats};
use tokio::time::Instant;

use super::plan::{Output, Plan};
use super::progress::Bar;

/// How to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Like iputils ping (one target).
    Ping,
    /// Like fping.
    Fping,
    /// One JSON object per line.
    Json,
}

/// A finished target, for the summaries fping prints at the end.
#[derive(Debug, Clone)]
struct Final {
    addr: IpAddr,
    name: Option<Box<str>>,
    stats: TargetStats,
    /// -C: RTT of each round in ns (`u64::MAX`: none).
    columns: Option<Box<[u64]>>,
}

impl Final {
    fn label(&self) -> String {
        self.name
            .as_deref()
            .map_or_else(|| self.addr.to_string(), str::to_owned)
    }
}

/// -Q counters of one target since the last report.
#[derive(Debug, Clone, Default)]
struct Split {
    addr: Option<IpAddr>,
    name: Option<Box<str>>,
    sent: u32,
    received: u32,
    min: Option<Duration>,
    max: Option<Duration>,
    sum: Duration,
}

/// Counts for fping's -s.
#[derive(Debug, Clone, Copy, Default)]
struct Global {
    replies: u64,
    other_icmp: u64,
    timeouts: u64,
}

/// Stdout, with the first write error kept (a closed pipe ends the run).
struct Out {
    buf: BufWriter<Stdout>,
    error: Option<io::Error>,
    stop: Shutdown,
}

impl Out {
    fn line(&mut self, s: &str) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = writeln!(self.buf, "{s}") {
            self.stop.trigger();
            self.error = Some(e);
        }
    }

    fn flush(&mut self) {
        if self.error.is_none()
            && let Err(e) = self.buf.flush()
        {
            self.stop.trigger();
            self.error = Some(e);
        }
    }
}

/// Write to stderr; a failing stderr (closed, full) is ignored.
fn err_line(s: &str) {
    let _ = writeln!(io::stderr().lock(), "{s}");
}

/// Prints events as they come and the summaries at the end.
pub struct Printer {
    style: Style,
    o: Output,
    mode: Mode,
    period: Duration,
    payload: usize,
    /// Width fping pads names to (0: not known).
    width: usize,
    out: Out,
    /// fping: a line per reply and timeout (fping's `per_recv_flag`).
    per_recv: bool,
    finals: Vec<Option<Final>>,
    columns: HashMap<u64, Vec<u64>>,
    splits: Vec<Split>,
    next_split: Option<Instant>,
    netdata_charts: bool,
    global: Global,
    alive: u64,
    unresolved: u64,
    /// Stops the run (-X reached, out of memory for the summaries).
    stop: Shutdown,
    memory_error: Option<String>,
    kinds: (Option<IcmpKind>, Option<IcmpKind>),
    progress: Option<Bar>,
    stdout_tty: bool,
    /// Ping style: the one target, and its running statistics.
    single: Option<(String, IpAddr)>,
}

/// Bytes one finished target's summary takes (for the memory check).
pub const FINAL_BYTES: u64 = size_of::<Option<Final>>() as u64;

impl Printer {
    /// A printer for a run planned as `p`; `stop` is triggered when the
    /// output wants the run to end.
    pub fn new(style: Style, p: &Plan, width: usize, total: Option<u128>, stop: Shutdown) -> Self {
        let mode = p.cfg.mode;
        let o = p.out.clone();
        let counting = matches!(mode, Mode::Count(_));
        let looping = matches!(mode, Mode::Forever);
        let per_recv = style == Style::Fping
            && ((counting && !(o.quiet || o.alive || o.unreachable || o.reachable.is_some()))
                || (looping && o.squiet.is_none()));
        let sweep = style == Style::Fping && !o.quiet && total.is_some_and(|t| t > 1);
        let progress = if sweep {
            total
                .and_then(|t| u64::try_from(t).ok())
                .and_then(Bar::for_stderr)
        } else {
            None
        };
        let next_split = o.squiet.map(|d| Instant::now() + d);
        Self {
            style,
            mode,
            period: p.cfg.period,
            payload: p.cfg.payload_len,
            width,
            out: Out {
                buf: BufWriter::with_capacity(64 * 1024, io::stdout()),
                error: None,
                stop: stop.clone(),
            },
            per_recv,
            finals: Vec::new(),
            columns: HashMap::new(),
            splits: Vec::new(),
            next_split,
            netdata_charts: false,
            global: Global::default(),
            alive: 0,
            unresolved: 0,
            stop,
            memory_error: None,
            kinds: (None, None),
            progress,
            stdout_tty: io::stdout().is_terminal(),
            single: None,
            o,
        }
    }

    /// The socket kinds, for -v and JSON totals.
    pub fn set_kinds(&mut self, kinds: (Option<IcmpKind>, Option<IcmpKind>)) {
        self.kinds = kinds;
    }

    /// Ping style: the target, named as given.
    pub fn set_single(&mut self, name: String, addr: IpAddr) {
        self.single = Some((name, addr));
    }

    /// Targets that answered so far.
    pub fn alive(&self) -> u64 {
        self.alive
    }

    /// Names that did not resolve so far.
    pub fn unresolved(&self) -> u64 {
        self.unresolved
    }

    /// Why the run was stopped for lack of memory, if it was.
    pub fn memory_error(&self) -> Option<&str> {
        self.memory_error.as_deref()
    }

    fn line(&mut self, s: &str) {
        if self.stdout_tty
            && let Some(bar) = &mut self.progress
        {
            bar.erase();
        }
        self.out.line(s);
    }

    fn err(&mut self, s: &str) {
        if let Some(bar) = &mut self.progress {
            bar.erase();
        }
        err_line(s);
    }

    /// fping's name column: the label padded to the longest.
    fn padded(&self, t: &TargetRef<'_>) -> String {
        format!("{:<w$}", t.display(), w = self.width)
    }

    /// Keep what the end-of-run summary of `t` needs.
    fn keep_final(&mut self, t: &TargetRef<'_>, stats: &TargetStats) {
        let needs = match self.style {
            Style::Ping => true,
            Style::Fping => matches!(self.mode, Mode::Count(_) | Mode::Forever),
            Style::Json => false,
        };
        if !needs {
            return;
        }
        let Ok(i) = usize::try_from(t.index) else {
            return;
        };
        if self.finals.len() <= i {
            let more = i + 1 - self.finals.len();
            if self
                .finals
                .try_reserve(more.max(self.finals.len() / 2))
                .is_err()
            {
                self.out_of_memory(t.index);
                return;
            }
            self.finals.resize(i + 1, None);
        }
        let columns = self.columns.remove(&t.index).map(Vec::into_boxed_slice);
        self.finals[i] = Some(Final {
            addr: t.addr,
            name: t.name.map(Into::into),
            stats: *stats,
            columns,
        });
    }

    fn out_of_memory(&mut self, index: u64) {
        if self.memory_error.is_none() {
            self.memory_error = Some(format!(
                "out of memory keeping the results of {index} targets for the final summary; \
                 stopped early (ping fewer targets with -c/-C/-l, or use -q with -a/-u)"
            ));
            self.stop.trigger();
        }
    }

    /// -C: note the RTT of round `round` of target `t`.
    fn note_column(&mut self, t: u64, round: u32, rtt: Duration) {
        let Mode::Count(n) = self.mode else { return };
        if !self.o.columns {
            return;
        }
        let col = self.columns.entry(t).or_default();
        if col.is_empty() && col.try_reserve_exact(n as usize).is_err() {
            self.out_of_memory(t);
            return;
        }
        if col.len() <= round as usize {
            col.resize(round as usize + 1, u64::MAX);
        }
        col[round as usize] = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX - 1);
    }

    fn split(&mut self, t: &TargetRef<'_>) -> Option<&mut Split> {
        self.o.squiet?;
        let i = usize::try_from(t.index).ok()?;
        if self.splits.len() <= i {
            if self.splits.try_reserve(i + 1 - self.splits.len()).is_err() {
                self.out_of_memory(t.index);
                return None;
            }
            self.splits.resize(i + 1, Split::default());
        }
        let s = &mut self.splits[i];
        if s.addr.is_none() {
            s.addr = Some(t.addr);
            s.name = t.name.map(Into::into);
        }
        Some(s)
    }

    /// Print the summaries and flush. Returns the first stdout error.
    pub fn finish(&mut self, o: &Outcome) -> io::Result<()> {
        if let Some(mut bar) = self.progress.take() {
            bar.erase();
        }
        match self.style {
            Style::Ping => self.ping_summary(o),
            Style::Fping => self.fping_summary(o),
            Style::Json => self.json_totals(o),
        }
        self.out.flush();
        if self.o.verbose {
            let k = |x: Option<IcmpKind>| x.map_or("none", IcmpKind::as_str);
            let c = o.counters;
            err_line(&format!(
                "sockbox: sockets v4 {} v6 {}; foreign {}, duplicates {}, bad checksum {}, \
                 late {}, corrupt {}, errors {}, send errors {}, malformed {}",
                k(self.kinds.0),
                k(self.kinds.1),
                c.foreign,
                c.duplicates,
                c.bad_checksum,
                c.late,
                c.corrupt,
                c.errors,
                c.send_errors,
                c.malformed
            ));
        }
        match self.out.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Observer for Printer {
    fn event(&mut self, ev: &Event<'_>) {
        match ev {
            Event::Reply(r) => {
                if !r.duplicate {
                    self.global.replies += 1;
                    if r.stats.received == 1 {
                        self.alive += 1;
                    }
                    self.note_column(r.target.index, r.round, r.rtt);
                    if let Some(s) = self.split(&r.target) {
                        s.received += 1;
                        s.sent += 1;
                        s.sum += r.rtt;
                        s.min = Some(s.min.map_or(r.rtt, |m| m.min(r.rtt)));
                        s.max = Some(s.max.map_or(r.rtt, |m| m.max(r.rtt)));
                    }
                }
            }
            Event::Timeout { target, .. } => {
                self.global.timeouts += 1;
                if let Some(s) = self.split(target) {
                    s.sent += 1;
                }
            }
            Event::Error(_) => self.global.other_icmp += 1,
            Event::Unresolved { .. } => self.unresolved += 1,
            Event::Done { target, stats, .. } => {
                self.keep_final(target, stats);
                if let Some(bar) = &mut self.progress {
                    bar.inc();
                }
            }
            Event::SendFailed { .. } | Event::Late { .. } => {}
        }
        match self.style {
            Style::Ping => self.ping_event(ev),
            Style::Fping => self.fping_event(ev),
            Style::Json => self.json_event(ev),
        }
        if let (Event::Reply(r), Some((n, true))) = (ev, self.o.reachable)
            && !r.duplicate
            && self.alive >= u64::from(n)
        {
            // -X: enough are alive.
            self.stop.trigger();
        }
    }

    fn flush(&mut self) {
        self.out.flush();
        // Results first, then the bar under them (rate-limited).
        if let Some(bar) = &mut self.progress {
            bar.tick();
        }
    }

    fn wake_at(&self) -> Option<Instant> {
        self.next_split
    }

    fn tick(&mut self, now: Instant) {
        let (Some(next), Some(every)) = (self.next_split, self.o.squiet) else {
            return;
        };
        if now < next {
            return;
        }
        self.report_splits();
        // The first report time after now, in one step (a late tick skips
        // the reports it missed).
        let behind = now.duration_since(next).as_nanos();
        let steps = behind / every.as_nanos().max(1) + 1;
        let ahead = every.saturating_mul(u32::try_from(steps).unwrap_or(u32::MAX));
        self.next_split = Some(next + ahead);
    }
}
