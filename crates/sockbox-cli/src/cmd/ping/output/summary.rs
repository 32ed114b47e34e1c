//! The end-of-run summaries: iputils statistics, fping per-target lines
//! (or -C columns) on stderr, JSON per-target summaries and totals.

use std::fmt::Write as _;
use std::io::{self, Write};

use serde_json::json;
use sockbox::ping::{IcmpKind, Outcome};

use super::super::format::{ms_f, ms3, pct};
use super::Printer;

impl Printer {
    pub(super) fn ping_summary(&mut self, o: &Outcome) {
        let s = o.stats[0];
        let mut line = format!("{} packets transmitted, {} received", s.sent, s.received);
        if s.duplicates > 0 {
            let _ = write!(line, ", +{} duplicates", s.duplicates);
        }
        if s.errors > 0 {
            let _ = write!(line, ", +{} errors", s.errors);
        }
        let _ = write!(
            line,
            ", {}% packet loss, time {}ms",
            pct(s.loss_percent()),
            o.elapsed.as_millis()
        );
        self.line("");
        let head = format!("--- {} ping statistics ---", self.name(0));
        self.line(&head);
        self.line(&line);
        if s.received > 0 {
            let rtt = format!(
                "rtt min/avg/max/mdev = {}/{}/{}/{} ms",
                ms3(s.rtt.min()),
                ms3(s.rtt.avg()),
                ms3(s.rtt.max()),
                ms3(s.rtt.mdev())
            );
            self.line(&rtt);
        }
    }

    pub(super) fn fping_summary(&mut self, o: &Outcome, columns: bool) {
        if self.count.is_none() {
            return;
        }
        let _ = self.out.flush();
        // fping prints the per-target summary on stderr.
        let mut err = io::stderr().lock();
        for (i, s) in o.stats.iter().enumerate() {
            let name = self.fping_name(i);
            let _ = if columns {
                let cols: Vec<String> = self.columns[i]
                    .iter()
                    .map(|c| c.map_or_else(|| "-".into(), |d| ms3(Some(d))))
                    .collect();
                writeln!(err, "{name} : {}", cols.join(" "))
            } else if s.received > 0 {
                writeln!(
                    err,
                    "{name} : xmt/rcv/%loss = {}/{}/{}%, min/avg/max = {}/{}/{}",
                    s.sent,
                    s.received,
                    s.loss_percent().round(),
                    ms3(s.rtt.min()),
                    ms3(s.rtt.avg()),
                    ms3(s.rtt.max())
                )
            } else {
                writeln!(
                    err,
                    "{name} : xmt/rcv/%loss = {}/{}/{}%",
                    s.sent,
                    s.received,
                    s.loss_percent().round()
                )
            };
        }
    }

    pub(super) fn json_summary(&mut self, o: &Outcome, alive: usize, unresolved: usize) {
        for (i, s) in o.stats.iter().enumerate() {
            let v = json!({
                "type": "summary",
                "target": self.name(i),
                "addr": self.targets[i].addr.to_string(),
                "sent": s.sent,
                "received": s.received,
                "duplicates": s.duplicates,
                "errors": s.errors,
                "loss_pct": s.loss_percent(),
                "min_ms": ms_f(s.rtt.min()),
                "avg_ms": ms_f(s.rtt.avg()),
                "max_ms": ms_f(s.rtt.max()),
                "mdev_ms": ms_f(s.rtt.mdev()),
                "alive": s.received > 0,
            });
            self.json(&v);
        }
        let sent: u64 = o.stats.iter().map(|s| u64::from(s.sent)).sum();
        let received: u64 = o.stats.iter().map(|s| u64::from(s.received)).sum();
        let k = |x: Option<IcmpKind>| x.map(IcmpKind::as_str);
        let v = json!({
            "type": "totals",
            "targets": o.stats.len(),
            "alive": alive,
            "unreachable": o.stats.len() - alive,
            "unresolved": unresolved,
            "sent": sent,
            "received": received,
            "counters": o.counters,
            "elapsed_ms": ms_f(Some(o.elapsed)),
            "ending": format!("{:?}", o.ending).to_lowercase(),
            "socket_v4": k(self.kinds.0),
            "socket_v6": k(self.kinds.1),
        });
        self.json(&v);
    }
}
