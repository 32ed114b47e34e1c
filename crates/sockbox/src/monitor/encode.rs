//! The Prometheus text exposition format (version 0.0.4), written the way
//! the Go client writes it — numbers formatted like Go's
//! `strconv.FormatFloat(v, 'g', -1, 64)`, label names sorted, families in
//! name order — so the series, including the histogram's `le` labels
//! (`le="5e-05"`), are the ones smokeping_prober exports.
//!
//! Output goes out in chunks of about [`CHUNK`] bytes through a callback,
//! so a scrape of 100,000 targets (hundreds of megabytes) never sits
//! whole in memory.

use std::sync::atomic::Ordering::Relaxed;

use super::metrics::{ErrorKind, Metrics, Reloads, TargetSnapshot};
use super::series::Generation;
pub use number::go_float;
use number::push_count;

mod number;

/// The content type of the output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Chunk size handed to the sink.
pub const CHUNK: usize = 256 * 1024;

/// One metric family's header.
fn header(out: &mut Vec<u8>, name: &str, kind: &str, help: &str) {
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(help.as_bytes());
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(kind.as_bytes());
    out.push(b'\n');
}

/// `name{labels} ` (the caller writes the value and the newline).
fn sample_start(out: &mut Vec<u8>, name: &str, labels: &str) {
    out.extend_from_slice(name.as_bytes());
    out.push(b'{');
    out.extend_from_slice(labels.as_bytes());
    out.extend_from_slice(b"} ");
}

/// Writes the exposition, handing full chunks to the sink.
struct Writer<'a> {
    buf: Vec<u8>,
    sink: &'a mut dyn FnMut(Vec<u8>) -> bool,
    open: bool,
}

impl Writer<'_> {
    /// Hand the buffer over when it is full. False once the sink is gone.
    fn maybe_flush(&mut self) -> bool {
        if self.buf.len() >= CHUNK && self.open {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + 4096));
            self.open = (self.sink)(full);
        }
        self.open
    }
}

/// A per-target family: which series it covers and how to write one.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    /// Only series with an address (probed) get it.
    probed_only: bool,
    value: fn(&TargetSnapshot) -> Option<f64>,
}

/// The per-target families besides the histogram, in name order.
const FAMILIES_SMOKEPING: [Family; 4] = [
    Family {
        name: "smokeping_requests_total",
        kind: "counter",
        help: "Number of ping requests sent",
        probed_only: true,
        value: |s| Some(s.requests as f64),
    },
    Family {
        name: "smokeping_response_duplicates_total",
        kind: "counter",
        help: "The number of duplicated response packets.",
        probed_only: true,
        value: |s| Some(s.duplicates as f64),
    },
    // smokeping_response_duration_seconds goes here (written apart).
    Family {
        name: "smokeping_response_ttl",
        kind: "gauge",
        help: "The last response Time To Live (TTL).",
        probed_only: true,
        value: |s| Some(s.ttl as f64),
    },
    Family {
        name: "smokeping_send_errors_total",
        kind: "counter",
        help: "The number of errors when Pinger attempts to send packets.",
        probed_only: true,
        value: |s| Some(s.send_errors as f64),
    },
];

/// The sockbox_ per-target families, in name order (ICMP errors apart).
const FAMILIES_SOCKBOX: [Family; 4] = [
    Family {
        name: "sockbox_target_late_replies_total",
        kind: "counter",
        help: "Replies from the target that came after their probe's timeout (the probe counts as lost).",
        probed_only: true,
        value: |s| Some(s.late as f64),
    },
    Family {
        name: "sockbox_target_lost_total",
        kind: "counter",
        help: "Probes to the target that got no reply within the timeout.",
        probed_only: true,
        value: |s| Some(s.lost as f64),
    },
    Family {
        name: "sockbox_target_resolve_errors_total",
        kind: "counter",
        help: "Failed look-ups of the target's name (the last address found, if any, is still probed).",
        probed_only: false,
        value: |s| Some(s.resolve_errors as f64),
    },
    Family {
        name: "sockbox_target_up",
        kind: "gauge",
        help: "1 when the target's last settled probe was answered, 0 when it was lost or the target has no address.",
        probed_only: false,
        value: |s| Some(if s.up { 1.0 } else { 0.0 }),
    },
];

/// Write one per-target family.
fn family(
    w: &mut Writer<'_>,
    generation: &Generation,
    snaps: &[TargetSnapshot],
    f: &Family,
) -> bool {
    header(&mut w.buf, f.name, f.kind, f.help);
    for (s, snap) in generation.series.iter().zip(snaps) {
        if f.probed_only && !s.probed {
            continue;
        }
        if f.name == "sockbox_target_resolve_errors_total" && !s.named {
            continue;
        }
        if let Some(v) = (f.value)(snap) {
            sample_start(&mut w.buf, f.name, &s.labels);
            go_float(&mut w.buf, v);
            w.buf.push(b'\n');
        }
        if !w.maybe_flush() {
            return false;
        }
    }
    true
}

/// The RTT histogram.
fn histogram(
    w: &mut Writer<'_>,
    m: &Metrics,
    generation: &Generation,
    snaps: &[TargetSnapshot],
) -> bool {
    const NAME: &str = "smokeping_response_duration_seconds";
    header(
        &mut w.buf,
        NAME,
        "histogram",
        "A histogram of latencies for ping responses.",
    );
    let mut les: Vec<Vec<u8>> = m
        .buckets()
        .bounds()
        .iter()
        .map(|b| {
            let mut v = Vec::new();
            go_float(&mut v, *b);
            v
        })
        .collect();
    les.push(b"+Inf".to_vec());
    for (s, snap) in generation.series.iter().zip(snaps) {
        if !s.probed {
            continue;
        }
        for (le, count) in les.iter().zip(&snap.cumulative) {
            let b = &mut w.buf;
            b.extend_from_slice(NAME.as_bytes());
            b.extend_from_slice(b"_bucket{");
            b.extend_from_slice(s.labels.as_bytes());
            b.extend_from_slice(b",le=\"");
            b.extend_from_slice(le);
            b.extend_from_slice(b"\"} ");
            push_count(b, *count);
            b.push(b'\n');
        }
        sample_start(
            &mut w.buf,
            "smokeping_response_duration_seconds_sum",
            &s.labels,
        );
        go_float(&mut w.buf, snap.sum_ns as f64 / 1e9);
        w.buf.push(b'\n');
        sample_start(
            &mut w.buf,
            "smokeping_response_duration_seconds_count",
            &s.labels,
        );
        push_count(&mut w.buf, snap.replies);
        w.buf.push(b'\n');
        if !w.maybe_flush() {
            return false;
        }
    }
    true
}

/// ICMP errors by type (only kinds that happened).
fn icmp_errors(w: &mut Writer<'_>, generation: &Generation, snaps: &[TargetSnapshot]) -> bool {
    const NAME: &str = "sockbox_target_icmp_errors_total";
    header(
        &mut w.buf,
        NAME,
        "counter",
        "ICMP errors (unreachable, time exceeded...) quoting a probe to the target, by type.",
    );
    for (s, snap) in generation.series.iter().zip(snaps) {
        for (kind, n) in ErrorKind::ALL.iter().zip(snap.icmp) {
            if n == 0 {
                continue;
            }
            let b = &mut w.buf;
            b.extend_from_slice(NAME.as_bytes());
            b.push(b'{');
            b.extend_from_slice(s.labels.as_bytes());
            b.extend_from_slice(b",type=\"");
            b.extend_from_slice(kind.label().as_bytes());
            b.extend_from_slice(b"\"} ");
            push_count(b, n);
            b.push(b'\n');
        }
        if !w.maybe_flush() {
            return false;
        }
    }
    true
}

/// A family with one unlabelled sample.
fn single(out: &mut Vec<u8>, name: &str, kind: &str, help: &str, v: f64) {
    header(out, name, kind, help);
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    go_float(out, v);
    out.push(b'\n');
}

/// The prober-wide families that come before the per-target ones.
fn globals_smokeping(out: &mut Vec<u8>, m: &Metrics, reloads: Reloads) {
    let g = m.globals();
    single(
        out,
        "smokeping_prober_config_last_reload_success_timestamp_seconds",
        "gauge",
        "Timestamp of the last successful configuration reload.",
        reloads.last_ok_unix,
    );
    single(
        out,
        "smokeping_prober_config_last_reload_successful",
        "gauge",
        "smokeping_prober config loaded successfully.",
        if reloads.ok { 1.0 } else { 0.0 },
    );
    single(
        out,
        "smokeping_prober_errors_total",
        "counter",
        "The number of probers that returned an error.",
        g.prober_errors.load(Relaxed) as f64,
    );
    single(
        out,
        "smokeping_receive_errors_total",
        "counter",
        "The number of errors when Pinger attempts to receive packets.",
        g.receive_errors.load(Relaxed) as f64,
    );
}

/// The sockbox_ prober-wide families.
fn globals_sockbox(out: &mut Vec<u8>, m: &Metrics, targets: usize, reloads: Reloads) {
    let g = m.globals();
    header(
        out,
        "sockbox_build_info",
        "gauge",
        "A metric with a constant '1' value labeled by the sockbox version.",
    );
    out.extend_from_slice(b"sockbox_build_info{version=\"");
    out.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    out.extend_from_slice(b"\"} 1\n");
    single(
        out,
        "sockbox_config_reload_failures_total",
        "counter",
        "Configuration reloads that failed (the previous configuration stays).",
        reloads.failures as f64,
    );
    single(
        out,
        "sockbox_late_replies_total",
        "counter",
        "Replies that came after their probe's timeout (the probe counts as lost).",
        g.late_replies.load(Relaxed) as f64,
    );
    single(
        out,
        "sockbox_packets_received_total",
        "counter",
        "ICMP messages the prober read (replies, errors, others' replies).",
        g.packets_received.load(Relaxed) as f64,
    );
    single(
        out,
        "sockbox_packets_sent_total",
        "counter",
        "Echo requests the prober handed to the system.",
        g.packets_sent.load(Relaxed) as f64,
    );
    single(
        out,
        "sockbox_targets",
        "gauge",
        "Targets configured for this prober (after sharding), probed or not.",
        targets as f64,
    );
}

/// Write the whole exposition of `m`, handing chunks of about [`CHUNK`]
/// bytes to `sink`; the sink returns false to stop (the client left).
pub fn encode(m: &Metrics, sink: &mut dyn FnMut(Vec<u8>) -> bool) {
    let generation = m.current();
    // Every counter is read here, at one moment, before anything is
    // written: rates computed across families (replies over packets
    // sent) are not skewed by the time the rendering takes.
    let snaps: Vec<TargetSnapshot> = generation
        .series
        .iter()
        .map(|s| s.cells.snapshot())
        .collect();
    // Read once for both families that show it, so they agree.
    let reloads = m.globals().reloads();
    let mut prober_wide = Vec::new();
    globals_sockbox(&mut prober_wide, m, generation.series.len(), reloads);
    let mut w = Writer {
        buf: Vec::with_capacity(CHUNK + 4096),
        sink,
        open: true,
    };
    globals_smokeping(&mut w.buf, m, reloads);
    let ok = family(&mut w, &generation, &snaps, &FAMILIES_SMOKEPING[0])
        && family(&mut w, &generation, &snaps, &FAMILIES_SMOKEPING[1])
        && histogram(&mut w, m, &generation, &snaps)
        && family(&mut w, &generation, &snaps, &FAMILIES_SMOKEPING[2])
        && family(&mut w, &generation, &snaps, &FAMILIES_SMOKEPING[3]);
    if !ok {
        return;
    }
    w.buf.extend_from_slice(&prober_wide);
    let ok = icmp_errors(&mut w, &generation, &snaps)
        && FAMILIES_SOCKBOX
            .iter()
            .all(|f| family(&mut w, &generation, &snaps, f));
    if ok && !w.buf.is_empty() && w.open {
        (w.sink)(std::mem::take(&mut w.buf));
    }
}

/// The whole exposition as one buffer (tests, small probers).
pub fn encode_to_vec(m: &Metrics) -> Vec<u8> {
    let mut out = Vec::new();
    encode(m, &mut |chunk| {
        out.extend_from_slice(&chunk);
        true
    });
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
