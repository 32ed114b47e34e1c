//! iputils ping's output: the header, a line per reply (not with -q),
//! ICMP errors, and the statistics.

use std::fmt::Write as _;

use sockbox::ping::{Event, Outcome, TargetRef};

use super::super::format::{epoch_secs, ms3, pct, ping_ms};
use super::Printer;

impl Printer {
    /// The header line before the first probe.
    pub fn ping_header(&mut self) {
        let Some((name, addr)) = self.single.clone() else {
            return;
        };
        let s = self.payload;
        let head = if addr.is_ipv4() {
            format!("PING {name} ({addr}) {s}({}) bytes of data.", s + 28)
        } else {
            format!("PING {name}({addr}) {s} data bytes")
        };
        self.line(&head);
        self.out.flush();
    }

    fn who(&self, t: &TargetRef<'_>, from: std::net::IpAddr) -> String {
        let name = self
            .single
            .as_ref()
            .map_or_else(|| t.display(), |s| s.0.clone());
        if name == from.to_string() || from != t.addr {
            from.to_string()
        } else {
            format!("{name} ({from})")
        }
    }

    fn stamp(&self, at: tokio::time::Instant) -> String {
        if self.o.timestamp {
            format!("[{:.6}] ", epoch_secs(at))
        } else {
            String::new()
        }
    }

    pub(super) fn ping_event(&mut self, ev: &Event<'_>) {
        match ev {
            Event::Reply(r) => {
                if self.o.quiet {
                    return;
                }
                let ttl = r.ttl.map(|t| format!(" ttl={t}")).unwrap_or_default();
                let dup = if r.duplicate { " (DUP!)" } else { "" };
                let line = format!(
                    "{}{} bytes from {}: icmp_seq={}{ttl} time={} ms{dup}",
                    self.stamp(r.at),
                    r.bytes,
                    self.who(&r.target, r.from),
                    r.round + 1,
                    ping_ms(r.rtt)
                );
                self.line(&line);
            }
            Event::Error(e) => {
                if self.o.quiet {
                    return;
                }
                let line = format!(
                    "{}From {} icmp_seq={} {}",
                    self.stamp(tokio::time::Instant::now()),
                    e.from,
                    e.round + 1,
                    e.describe()
                );
                self.line(&line);
            }
            Event::SendFailed { round, error, .. } => {
                self.err(&format!(
                    "sockbox: sending icmp_seq={} failed: {error}",
                    round + 1,
                ));
            }
            Event::Unresolved { name, error } => self.err(&format!("sockbox: {name}: {error}")),
            Event::Timeout { .. } | Event::Late { .. } | Event::Done { .. } => {}
        }
    }

    pub(super) fn ping_summary(&mut self, o: &Outcome) {
        let s = self
            .finals
            .first()
            .and_then(Option::as_ref)
            .map(|f| f.stats)
            .unwrap_or_default();
        let name = self
            .single
            .as_ref()
            .map_or_else(String::new, |s| s.0.clone());
        let mut line = format!("{} packets transmitted, {} received", s.sent, s.received);
        if s.duplicates > 0 {
            let _ = write!(line, ", +{} duplicates", s.duplicates);
        }
        let errors = s.errors.saturating_add(s.send_errors);
        if errors > 0 {
            let _ = write!(line, ", +{errors} errors");
        }
        // Nothing sent (every send failed) is a total loss too.
        let loss = if s.sent == 0 && errors > 0 {
            100.0
        } else {
            s.loss_percent()
        };
        let _ = write!(
            line,
            ", {}% packet loss, time {}ms",
            pct(loss),
            o.elapsed.as_millis()
        );
        self.line("");
        self.line(&format!("--- {name} ping statistics ---"));
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
}
