//! JSON lines: one object per event, a summary per target as it
//! finishes, totals at the end.

use serde_json::json;
use sockbox::ping::{Event, IcmpKind, Outcome};

use super::super::format::ms_f;
use super::Printer;

impl Printer {
    fn json(&mut self, v: &serde_json::Value) {
        let s = v.to_string();
        self.line(&s);
    }

    pub(super) fn json_event(&mut self, ev: &Event<'_>) {
        let v = match ev {
            Event::Reply(r) => json!({
                "type": "reply",
                "target": r.target.display(),
                "addr": r.target.addr.to_string(),
                "from": r.from.to_string(),
                "seq": r.round,
                "bytes": r.bytes,
                "ttl": r.ttl,
                "rtt_ms": ms_f(Some(r.rtt)),
                "duplicate": r.duplicate,
            }),
            Event::Timeout { target, round, .. } => json!({
                "type": "timeout",
                "target": target.display(),
                "addr": target.addr.to_string(),
                "seq": round,
            }),
            Event::Late { target, round, rtt } => json!({
                "type": "late",
                "target": target.display(),
                "addr": target.addr.to_string(),
                "seq": round,
                "rtt_ms": ms_f(Some(*rtt)),
            }),
            Event::Error(e) => json!({
                "type": "error",
                "target": e.target.display(),
                "addr": e.target.addr.to_string(),
                "seq": e.round,
                "from": e.from.to_string(),
                "error": e.describe(),
            }),
            Event::SendFailed {
                target,
                round,
                error,
            } => json!({
                "type": "send_error",
                "target": target.display(),
                "addr": target.addr.to_string(),
                "seq": round,
                "error": error.to_string(),
            }),
            Event::Unresolved { name, error } => {
                json!({"type": "unresolved", "target": name, "error": error})
            }
            Event::Done {
                target,
                alive,
                stats: s,
            } => json!({
                "type": "summary",
                "target": target.display(),
                "addr": target.addr.to_string(),
                "sent": s.sent,
                "received": s.received,
                "duplicates": s.duplicates,
                "timeouts": s.timeouts,
                "errors": s.errors,
                "send_errors": s.send_errors,
                "loss_pct": s.loss_percent(),
                "min_ms": ms_f(s.rtt.min()),
                "avg_ms": ms_f(s.rtt.avg()),
                "max_ms": ms_f(s.rtt.max()),
                "mdev_ms": ms_f(s.rtt.mdev()),
                "alive": alive,
            }),
        };
        self.json(&v);
    }

    pub(super) fn json_totals(&mut self, o: &Outcome) {
        let t = &o.totals;
        let k = |x: Option<IcmpKind>| x.map(IcmpKind::as_str);
        let v = json!({
            "type": "totals",
            "targets": t.targets,
            "alive": t.alive,
            "unreachable": t.unreachable,
            "unresolved": self.unresolved,
            "sent": t.sent,
            "received": t.received,
            "timeouts": t.timeouts,
            "counters": o.counters,
            "elapsed_ms": ms_f(Some(o.elapsed)),
            "ending": format!("{:?}", o.ending).to_lowercase(),
            "socket_v4": k(self.kinds.0),
            "socket_v6": k(self.kinds.1),
        });
        self.json(&v);
    }
}
