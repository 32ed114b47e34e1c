//! fping's output: "is alive" / "is unreachable" (or bare names with
//! -a/-u), per-probe lines with -c/-C/-l, ICMP errors and warnings on
//! stderr, the per-target statistics (a blank line first when per-probe
//! lines were printed), -C columns, -o outage, -s global statistics, -Q
//! interval reports (or -N netdata), and -x/-X's verdict.

use std::fmt::Write as _;
use std::io;
use std::time::Duration;

use sockbox::ping::{Event, IcmpError, Mode, Outcome, Reply, TargetRef, TargetStats};
use sockbox_wire::icmp::{Family, Message};

use super::super::format::{epoch_secs, fping_loss, fping_ms};
use super::{Printer, Split, err_line};

/// fping's names of ICMPv4 unreachable codes.
const UNREACH: [&str; 16] = [
    "ICMP Network Unreachable",
    "ICMP Host Unreachable",
    "ICMP Protocol Unreachable",
    "ICMP Port Unreachable",
    "ICMP Unreachable (Fragmentation Needed)",
    "ICMP Unreachable (Source Route Failed)",
    "ICMP Unreachable (Destination Network Unknown)",
    "ICMP Unreachable (Destination Host Unknown)",
    "ICMP Unreachable (Source Host Isolated)",
    "ICMP Unreachable (Communication with Network Prohibited)",
    "ICMP Unreachable (Communication with Host Prohibited)",
    "ICMP Unreachable (Network Unreachable For Type Of Service)",
    "ICMP Unreachable (Host Unreachable For Type Of Service)",
    "ICMP Unreachable (Communication Administratively Prohibited)",
    "ICMP Unreachable (Host Precedence Violation)",
    "ICMP Unreachable (Precedence cutoff in effect)",
];

/// An ICMP error as fping names it.
pub fn fping_icmp(e: &IcmpError<'_>) -> String {
    let c = usize::from(e.code);
    match (e.family, e.message) {
        (Family::V4, Message::DstUnreachable) => UNREACH
            .get(c)
            .map_or_else(|| "ICMP Unreachable (Invalid Code)".into(), |s| (*s).into()),
        (Family::V6, Message::DstUnreachable) => match c {
            0 => "ICMP Network Unreachable".into(),
            1 => UNREACH[13].into(),
            3 => "ICMP Host Unreachable".into(),
            4 => "ICMP Port Unreachable".into(),
            _ => format!("ICMP Unreachable (code {c})"),
        },
        (_, Message::TimeExceeded) => "ICMP Time Exceeded".into(),
        (_, Message::ParamProblem) => "ICMP Parameter Problem".into(),
        (_, Message::PacketTooBig) => "ICMP Packet Too Big".into(),
        (_, m) => format!("ICMP {m:?}"),
    }
}

/// Probes settled (answered, timed out, or refused by the system): fping's
/// `num_sent`, which counts a send that failed too.
fn settled(s: &TargetStats) -> u32 {
    s.received
        .saturating_add(s.timeouts)
        .saturating_add(s.send_errors)
}

impl Printer {
    fn alive_mode(&self) -> bool {
        matches!(self.mode, Mode::Alive { .. })
    }

    /// fping's default lines ("is alive", "is unreachable").
    fn verbose(&self) -> bool {
        self.alive_mode()
            && !(self.o.quiet || self.o.alive || self.o.unreachable || self.o.reachable.is_some())
    }

    fn fping_stamp(&self, at: tokio::time::Instant) -> String {
        if self.o.timestamp {
            format!("[{:.5}] ", epoch_secs(at))
        } else {
            String::new()
        }
    }

    fn on_fping_reply(&mut self, r: &Reply<'_>) {
        let name = r.target.display();
        if r.duplicate {
            if !self.per_recv && !self.o.quiet {
                self.err(&format!(
                    "{name} : duplicate for [{}], {} bytes, {} ms",
                    r.round,
                    r.bytes,
                    fping_ms(r.rtt)
                ));
            }
            return;
        }
        let elapsed = if self.o.elapsed {
            format!(" ({} ms)", fping_ms(r.rtt))
        } else {
            String::new()
        };
        if r.stats.received == 1 {
            if self.verbose() {
                self.line(&format!("{name} is alive{elapsed}"));
            } else if self.o.alive && self.alive_mode() {
                self.line(&format!("{name}{elapsed}"));
            }
        }
        if self.per_recv {
            let s = r.stats;
            let avg = s.rtt.avg().map_or_else(|| "NaN".into(), fping_ms);
            let line = format!(
                "{}{} : [{}], {} bytes, {} ms ({avg} avg, {}% loss)",
                self.fping_stamp(r.at),
                self.padded(&r.target),
                r.round,
                r.bytes,
                fping_ms(r.rtt),
                fping_loss(settled(s), s.received)
            );
            self.line(&line);
        }
    }

    fn on_fping_timeout(&mut self, t: &TargetRef<'_>, round: u32, s: &TargetStats) {
        if !self.per_recv {
            return;
        }
        let avg = s.rtt.avg().map_or_else(|| "NaN".into(), fping_ms);
        let line = format!(
            "{}{} : [{round}], timed out ({avg} avg, {}% loss)",
            self.fping_stamp(tokio::time::Instant::now()),
            self.padded(t),
            fping_loss(settled(s), s.received)
        );
        self.line(&line);
    }

    pub(super) fn fping_event(&mut self, ev: &Event<'_>) {
        match ev {
            Event::Reply(r) => self.on_fping_reply(r),
            Event::Timeout {
                target,
                round,
                stats,
            } => self.on_fping_timeout(target, *round, stats),
            Event::Error(e) if !self.o.quiet => {
                self.err(&format!(
                    "{} from {} for ICMP Echo sent to {}",
                    fping_icmp(e),
                    e.from,
                    e.target.display()
                ));
            }
            Event::SendFailed { target, error, .. } if !self.o.quiet => {
                self.err(&format!(
                    "{}: error while sending ping: {error}",
                    target.display(),
                ));
            }
            Event::Unresolved { name, error } if !self.o.quiet => {
                self.err(&format!("{name}: {error}"));
            }
            Event::Done {
                target,
                alive: false,
                ..
            } => {
                if self.verbose() {
                    self.line(&format!("{} is unreachable", target.display()));
                } else if self.o.unreachable && self.alive_mode() {
                    self.line(&target.display());
                }
            }
            _ => {}
        }
    }

    /// "xmt/rcv/%loss = …" with the outage and RTTs, as fping words it.
    fn stats_text(
        &self,
        xmt: u32,
        rcv: u32,
        rtt: Option<(Duration, Duration, Duration)>,
    ) -> String {
        let mut t = format!(" xmt/rcv/%loss = {xmt}/{rcv}/{}%", fping_loss(xmt, rcv));
        if self.o.outage {
            let ms = u128::from(xmt.saturating_sub(rcv)) * self.period.as_millis();
            let _ = write!(t, ", outage(ms) = {ms}");
        }
        if let Some((min, avg, max)) = rtt {
            let _ = write!(
                t,
                ", min/avg/max = {}/{}/{}",
                fping_ms(min),
                fping_ms(avg),
                fping_ms(max)
            );
        }
        t
    }

    pub(super) fn fping_summary(&mut self, o: &Outcome) {
        self.out.flush();
        if matches!(self.mode, Mode::Count(_) | Mode::Forever) {
            self.per_target_summary();
        }
        if self.o.stats {
            self.global_stats(o);
        }
        if let Some((n, _)) = self.o.reachable {
            let (m, enough) = (self.alive, self.alive >= u64::from(n));
            let word = if enough { "Enough" } else { "Not enough" };
            self.line(&format!(
                "{word} hosts reachable (required: {n}, reachable: {m})"
            ));
        }
    }

    fn per_target_summary(&mut self) {
        let width = self
            .finals
            .iter()
            .flatten()
            .map(|f| f.label().len())
            .max()
            .unwrap_or(0)
            .max(self.width);
        let mut err = io::stderr().lock();
        if self.per_recv {
            let _ = io::Write::write_all(&mut err, b"\n");
        }
        for f in self.finals.iter().flatten() {
            let s = &f.stats;
            let mut line = format!("{:<width$} :", f.label());
            if let Some(cols) = &f.columns {
                let rounds = settled(s) as usize;
                for j in 0..rounds {
                    match cols.get(j).copied().filter(|&v| v != u64::MAX) {
                        Some(ns) => {
                            let _ = write!(line, " {}", fping_ms(Duration::from_nanos(ns)));
                        }
                        None => line.push_str(" -"),
                    }
                }
            } else if self.o.columns {
                let rounds = settled(s);
                for _ in 0..rounds {
                    line.push_str(" -");
                }
            } else {
                let rtt = s.rtt.min().zip(s.rtt.avg()).zip(s.rtt.max());
                let rtt = rtt.map(|((a, b), c)| (a, b, c));
                line.push_str(&self.stats_text(settled(s), s.received, rtt));
            }
            line.push('\n');
            let _ = io::Write::write_all(&mut err, line.as_bytes());
        }
    }

    fn global_stats(&self, o: &Outcome) {
        let t = &o.totals;
        let rtt = |d: Option<Duration>| fping_ms(d.unwrap_or_default());
        let mut s = String::from("\n");
        let _ = writeln!(s, " {:>7} targets", t.targets);
        let _ = writeln!(s, " {:>7} alive", t.alive);
        let _ = writeln!(s, " {:>7} unreachable", t.unreachable);
        let _ = writeln!(s, " {:>7} unknown addresses", self.unresolved);
        s.push('\n');
        let _ = writeln!(s, " {:>7} timeouts (waiting for response)", t.timeouts);
        let _ = writeln!(s, " {:>7} ICMP Echos sent", t.sent);
        let replies = t.received + o.counters.duplicates;
        let _ = writeln!(s, " {replies:>7} ICMP Echo Replies received");
        let _ = writeln!(s, " {:>7} other ICMP received", self.global.other_icmp);
        s.push('\n');
        let _ = writeln!(s, " {} ms (min round trip time)", rtt(t.rtt.min()));
        let _ = writeln!(s, " {} ms (avg round trip time)", rtt(t.rtt.avg()));
        let _ = writeln!(s, " {} ms (max round trip time)", rtt(t.rtt.max()));
        let _ = writeln!(
            s,
            " {:>12.3} sec (elapsed real time)",
            o.elapsed.as_secs_f64()
        );
        err_line(&s);
    }

    /// -Q: per-target counters since the last report (then reset), or -N
    /// netdata output.
    pub(super) fn report_splits(&mut self) {
        if self.o.netdata {
            self.netdata();
            return;
        }
        let width = self
            .splits
            .iter()
            .filter_map(|s| {
                s.addr
                    .map(|a| s.name.as_deref().map_or(a.to_string().len(), str::len))
            })
            .max()
            .unwrap_or(0)
            .max(self.width);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut text = String::new();
        if self.per_recv {
            text.push('\n');
        }
        let _ = writeln!(
            text,
            "[{:02}:{:02}:{:02}]",
            now / 3600 % 24,
            now / 60 % 60,
            now % 60
        );
        let splits = std::mem::take(&mut self.splits);
        for s in &splits {
            let Some(addr) = s.addr else { continue };
            let label = s
                .name
                .as_deref()
                .map_or_else(|| addr.to_string(), str::to_owned);
            let avg = (s.received > 0).then(|| s.sum / s.received);
            let rtt = s.min.zip(avg).zip(s.max).map(|((a, b), c)| (a, b, c));
            let _ = writeln!(
                text,
                "{label:<width$} :{}",
                self.stats_text(s.sent, s.received, rtt)
            );
        }
        self.splits = fresh(splits);
        let _ = io::Write::write_all(&mut io::stderr().lock(), text.as_bytes());
    }

    fn netdata(&mut self) {
        let every = self.o.squiet.unwrap_or_default().as_secs_f64();
        let charts = !self.netdata_charts;
        self.netdata_charts = true;
        let splits = std::mem::take(&mut self.splits);
        for s in &splits {
            let Some(addr) = s.addr else { continue };
            let host = s
                .name
                .as_deref()
                .map_or_else(|| addr.to_string(), str::to_owned);
            let id: String = host
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let mut t = String::new();
            if charts {
                let _ = writeln!(
                    t,
                    "CHART fping.{id}_packets '' 'FPing Packets for host {host}' packets '{host}' fping.packets line 110020 {every:.0}"
                );
                t.push_str(
                    "DIMENSION xmt sent absolute 1 1\nDIMENSION rcv received absolute 1 1\n",
                );
            }
            let _ = writeln!(
                t,
                "BEGIN fping.{id}_packets\nSET xmt = {}\nSET rcv = {}\nEND",
                s.sent, s.received
            );
            if charts {
                let _ = writeln!(
                    t,
                    "CHART fping.{id}_quality '' 'FPing Quality for host {host}' percentage '{host}' fping.quality area 110010 {every:.0}"
                );
                t.push_str("DIMENSION returned '' absolute 1 1\n");
            }
            let returned = (u64::from(s.received) * 100)
                .checked_div(u64::from(s.sent))
                .unwrap_or(0);
            let _ = writeln!(
                t,
                "BEGIN fping.{id}_quality\nSET returned = {returned}\nEND"
            );
            if charts {
                let _ = writeln!(
                    t,
                    "CHART fping.{id}_latency '' 'FPing Latency for host {host}' ms '{host}' fping.latency area 110000 {every:.0}"
                );
                t.push_str("DIMENSION min minimum absolute 1 1000000\nDIMENSION max maximum absolute 1 1000000\nDIMENSION avg average absolute 1 1000000\n");
            }
            let _ = writeln!(t, "BEGIN fping.{id}_latency");
            if let (Some(min), Some(max)) = (s.min, s.max) {
                let avg = s.sum / s.received.max(1);
                let _ = writeln!(
                    t,
                    "SET min = {}\nSET avg = {}\nSET max = {}",
                    min.as_nanos(),
                    avg.as_nanos(),
                    max.as_nanos()
                );
            }
            t.push_str("END");
            self.line(&t);
        }
        self.splits = fresh(splits);
    }
}

/// The -Q counters for the next interval: the same targets, counts at zero.
fn fresh(splits: Vec<Split>) -> Vec<Split> {
    splits
        .into_iter()
        .map(|s| Split {
            addr: s.addr,
            name: s.name,
            ..Split::default()
        })
        .collect()
}
