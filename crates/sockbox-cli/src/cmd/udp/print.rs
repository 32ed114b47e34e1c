//! Printing datagrams: one line per datagram with its source (and for
//! replies the time since the send), the payload as escaped text, a
//! `hexdump -C` dump, raw bytes, or JSON lines.

use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sockbox::udp::Reply;

/// A reply as the printer needs it.
pub struct ReplyLine<'a> {
    /// Source.
    pub from: SocketAddr,
    /// Time since the send.
    pub elapsed: Duration,
    /// Payload.
    pub payload: &'a [u8],
}

impl<'a> From<&'a Reply> for ReplyLine<'a> {
    fn from(r: &'a Reply) -> Self {
        Self {
            from: r.from,
            elapsed: r.elapsed,
            payload: &r.payload,
        }
    }
}

#[derive(Serialize)]
struct JsonDatagram<'a> {
    from: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<f64>,
    len: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    hex: String,
}

/// Writes datagrams to stdout in the chosen form.
pub struct Printer {
    hexdump: bool,
    json: bool,
    /// Payload bytes only (listeners).
    pub raw: bool,
    buf: Vec<u8>,
}

impl Printer {
    /// A printer for the chosen form.
    pub fn new(hexdump: bool, json: bool) -> Self {
        Self {
            hexdump,
            json,
            raw: false,
            buf: Vec::with_capacity(4096),
        }
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(&self.buf)?;
        out.flush()?;
        self.buf.clear();
        Ok(())
    }

    /// A reply to `udp send` / `mcast send`.
    pub fn reply(&mut self, r: &ReplyLine<'_>) -> anyhow::Result<()> {
        let ms = r.elapsed.as_secs_f64() * 1000.0;
        self.format(r.from, r.payload, Some(ms), None);
        self.flush()
    }

    /// A datagram that reached a listener.
    pub fn datagram(&mut self, from: SocketAddr, payload: &[u8]) -> anyhow::Result<()> {
        if self.raw {
            self.buf.extend_from_slice(payload);
        } else {
            let ts = self.json.then(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64())
            });
            self.format(from, payload, None, ts);
        }
        self.flush()
    }

    fn format(&mut self, from: SocketAddr, payload: &[u8], ms: Option<f64>, ts: Option<f64>) {
        if self.json {
            let text = std::str::from_utf8(payload).ok();
            let v = JsonDatagram {
                from: from.to_string(),
                time_ms: ms.map(|m| (m * 1000.0).round() / 1000.0),
                ts,
                len: payload.len(),
                text,
                hex: to_hex(payload),
            };
            // Serializing plain strings and numbers cannot fail.
            if serde_json::to_writer(&mut self.buf, &v).is_ok() {
                self.buf.push(b'\n');
            }
            return;
        }
        let mut head = from.to_string();
        if let Some(ms) = ms {
            let _ = write!(head, "  {ms:.3} ms");
        }
        if self.hexdump {
            let _ = write!(head, "  {} bytes", payload.len());
            self.buf.extend_from_slice(head.as_bytes());
            self.buf.push(b'\n');
            self.buf
                .extend_from_slice(&sockbox_wire::hexdump::dump(payload));
        } else {
            head.push_str("  ");
            self.buf.extend_from_slice(head.as_bytes());
            escape_into(&mut self.buf, payload);
            self.buf.push(b'\n');
        }
    }
}

/// Lower-case hex of `b`.
pub fn to_hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// The payload as one line of text: one trailing newline dropped, valid
/// UTF-8 kept, `\n \r \\` and other control characters and invalid bytes
/// escaped, so every datagram prints as exactly one line.
pub fn escape_into(out: &mut Vec<u8>, payload: &[u8]) {
    let body = payload
        .strip_suffix(b"\r\n")
        .or_else(|| payload.strip_suffix(b"\n"))
        .unwrap_or(payload);
    for chunk in body.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.push(b'\t'),
                c if c.is_control() => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => {
                    let mut tmp = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

/// Lets a repeated warning through at most once per period, counting the
/// ones it held back.
pub struct Throttle {
    period: Duration,
    last: Option<Instant>,
    held: u64,
}

impl Throttle {
    /// A throttle with this period.
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            last: None,
            held: 0,
        }
    }

    /// Count one event; `Some(n)` when it is time to report `n` events.
    pub fn hit(&mut self) -> Option<u64> {
        self.held += 1;
        let now = Instant::now();
        if self
            .last
            .is_none_or(|l| now.duration_since(l) >= self.period)
        {
            self.last = Some(now);
            let n = self.held;
            self.held = 0;
            Some(n)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(b: &[u8]) -> String {
        let mut v = Vec::new();
        escape_into(&mut v, b);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn one_line_per_datagram() {
        assert_eq!(esc(b"hello\n"), "hello");
        assert_eq!(esc(b"hello\r\n"), "hello");
        assert_eq!(esc(b"a\nb\n"), "a\\nb");
        assert_eq!(esc(b"tab\there"), "tab\there");
        assert_eq!(esc(b"back\\slash"), "back\\\\slash");
        assert_eq!(esc(b"\x00\x1b"), "\\u{0}\\u{1b}");
        assert_eq!(esc(b"caf\xc3\xa9 \xff"), "caf\u{e9} \\xff");
    }

    #[test]
    fn hex_and_throttle() {
        assert_eq!(to_hex(&[0, 0xab, 0x10]), "00ab10");
        let mut t = Throttle::new(Duration::from_secs(60));
        assert_eq!(t.hit(), Some(1));
        assert_eq!(t.hit(), None);
        assert_eq!(t.hit(), None);
    }

    #[test]
    fn formats() {
        let from: SocketAddr = "10.0.0.2:9999".parse().unwrap();
        let mut p = Printer::new(false, false);
        p.format(from, b"I am B\n", Some(1.5), None);
        assert_eq!(
            String::from_utf8(p.buf.clone()).unwrap(),
            "10.0.0.2:9999  1.500 ms  I am B\n"
        );
        let mut p = Printer::new(true, false);
        p.format(from, b"hi", None, None);
        assert_eq!(
            String::from_utf8(p.buf.clone()).unwrap(),
            "10.0.0.2:9999  2 bytes\n00000000  68 69                                             |hi|\n00000002\n"
        );
        let mut p = Printer::new(false, true);
        p.format(from, b"\xff", Some(0.25), None);
        let v: serde_json::Value = serde_json::from_slice(&p.buf).unwrap();
        assert_eq!(v["from"], "10.0.0.2:9999");
        assert_eq!(v["hex"], "ff");
        assert_eq!(v["len"], 1);
        assert!(v.get("text").is_none());
        assert_eq!(v["time_ms"], 0.25);
    }
}
