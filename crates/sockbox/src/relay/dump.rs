//! Traffic dumps (`-x FILE` hex, `-o FILE` text): every chunk in both
//! directions with a header line that tells the direction, the peer, the
//! byte offset in that direction's stream and the time.
//!
//! ```text
//! # open peer=127.0.0.1:40000 time=2026-11-27T08:44:43.123456Z
//! > send peer=127.0.0.1:40000 offset=0 len=6 time=2026-11-27T08:44:43.123501Z
//! 00000000  68 65 6c 6c 6f 0a                                 |hello.|
//! < recv peer=127.0.0.1:40000 offset=0 len=3 time=2026-11-27T08:44:43.124000Z
//! 00000000  6f 6b 0a                                          |ok.|
//! # close peer=127.0.0.1:40000 sent=6 received=3 time=2026-11-27T08:44:43.125000Z
//! ```
//!
//! `>` lines are bytes sent to the peer, `<` lines bytes received from it.
//! Hex lines use the `hexdump -C` layout with the stream offset, never
//! squeezed. Each chunk is written with one `write` so chunks from several
//! connections never interleave. A failing dump file is reported once and
//! then ignored: the relay goes on.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use sockbox_wire::hexdump::{LINE_BYTES, write_line};

use super::{Peer, RelayError};

/// Layout of the dump.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DumpFormat {
    /// `hexdump -C` lines (`-x`).
    #[default]
    Hex,
    /// The bytes as they are, after each header line (`-o`).
    Text,
}

/// Direction of a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Sent to the peer (`>`).
    Sent,
    /// Received from the peer (`<`).
    Received,
}

/// A dump file shared by every connection of a relay. Cheap to clone.
#[derive(Clone)]
pub struct Dump {
    inner: Arc<Mutex<Inner>>,
    format: DumpFormat,
}

struct Inner {
    out: Box<dyn Write + Send>,
    name: PathBuf,
    failed: bool,
}

impl std::fmt::Debug for Dump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dump")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Dump {
    /// Create (truncate) `path` and dump into it.
    pub fn create(path: &Path, format: DumpFormat) -> Result<Self, RelayError> {
        let file = File::create(path).map_err(|source| RelayError::Dump {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::with_writer(Box::new(file), path, format))
    }

    /// Dump into any writer (`name` is used in messages).
    pub fn with_writer(out: Box<dyn Write + Send>, name: &Path, format: DumpFormat) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                out,
                name: name.to_path_buf(),
                failed: false,
            })),
            format,
        }
    }

    /// A handle recording one direction of one connection.
    pub fn direction(&self, peer: &Peer, dir: Dir) -> DumpDir {
        DumpDir {
            dump: self.clone(),
            peer: peer.clone(),
            dir,
            offset: 0,
        }
    }

    /// Record that a connection opened.
    pub fn opened(&self, peer: &Peer) {
        let line = format!("# open peer={peer} time={}\n", utc_now());
        self.write(line.as_bytes());
    }

    /// Record that a connection closed, with its byte counts.
    pub fn closed(&self, peer: &Peer, sent: u64, received: u64) {
        let line = format!(
            "# close peer={peer} sent={sent} received={received} time={}\n",
            utc_now()
        );
        self.write(line.as_bytes());
    }

    fn write(&self, buf: &[u8]) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.failed {
            return;
        }
        if let Err(e) = inner.out.write_all(buf).and_then(|()| inner.out.flush()) {
            inner.failed = true;
            tracing::warn!("dump file {}: {e}; dumping stops", inner.name.display());
        }
    }
}

/// Records one direction of one connection, keeping its byte offset.
#[derive(Debug)]
pub struct DumpDir {
    dump: Dump,
    peer: Peer,
    dir: Dir,
    offset: u64,
}

impl DumpDir {
    /// Record a chunk that just moved.
    pub fn record(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let mut out = Vec::with_capacity(96 + data.len() * 5);
        format_chunk(
            &mut out,
            self.dump.format,
            self.dir,
            &self.peer,
            self.offset,
            data,
            &utc_now(),
        );
        self.offset += data.len() as u64;
        self.dump.write(&out);
    }
}

/// Append the dump of one chunk to `out`.
pub fn format_chunk(
    out: &mut Vec<u8>,
    format: DumpFormat,
    dir: Dir,
    peer: &Peer,
    offset: u64,
    data: &[u8],
    time: &str,
) {
    let tag = match dir {
        Dir::Sent => "> send",
        Dir::Received => "< recv",
    };
    out.extend_from_slice(
        format!(
            "{tag} peer={peer} offset={offset} len={} time={time}\n",
            data.len()
        )
        .as_bytes(),
    );
    match format {
        DumpFormat::Hex => {
            for (i, line) in data.chunks(LINE_BYTES).enumerate() {
                write_line(out, offset + (i * LINE_BYTES) as u64, line);
            }
        }
        DumpFormat::Text => {
            out.extend_from_slice(data);
            if data.last() != Some(&b'\n') {
                out.push(b'\n');
            }
        }
    }
}

/// The current time as RFC 3339 UTC with microseconds.
pub fn utc_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_utc(d.as_secs(), d.subsec_micros())
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SS.uuuuuuZ`.
pub fn format_utc(secs: u64, micros: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(format_utc(951_782_400, 5), "2000-02-29T00:00:00.000005Z");
        assert_eq!(
            format_utc(1_700_000_000, 123_456),
            "2023-11-14T22:13:20.123456Z"
        );
    }

    #[test]
    fn hex_chunk_layout() {
        let peer = Peer::Inet("127.0.0.1:4000".parse().unwrap());
        let mut out = Vec::new();
        let data: Vec<u8> = (0u8..20).collect();
        format_chunk(
            &mut out,
            DumpFormat::Hex,
            Dir::Received,
            &peer,
            16,
            &data,
            "T",
        );
        let text = String::from_utf8(out).unwrap();
        let expect = "< recv peer=127.0.0.1:4000 offset=16 len=20 time=T\n\
00000010  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f  |................|\n\
00000020  10 11 12 13                                       |....|\n";
        assert_eq!(text, expect);
    }

    #[test]
    fn text_chunk_and_offsets_per_direction() {
        let buf = Arc::new(Mutex::new(Vec::new()));
        struct W(Arc<Mutex<Vec<u8>>>);
        impl Write for W {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let dump = Dump::with_writer(Box::new(W(buf.clone())), Path::new("mem"), DumpFormat::Text);
        let peer = Peer::Inet("[::1]:9".parse().unwrap());
        let mut tx = dump.direction(&peer, Dir::Sent);
        let mut rx = dump.direction(&peer, Dir::Received);
        tx.record(b"ab");
        rx.record(b"xyz\n");
        tx.record(b"c");
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("> send peer=[::1]:9 offset=0 len=2 "));
        assert_eq!(lines[1], "ab");
        assert!(lines[2].starts_with("< recv peer=[::1]:9 offset=0 len=4 "));
        assert_eq!(lines[3], "xyz");
        assert!(lines[4].starts_with("> send peer=[::1]:9 offset=2 len=1 "));
        assert_eq!(lines[5], "c");
    }
}
