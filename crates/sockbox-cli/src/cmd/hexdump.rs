//! `sockbox hexdump`: the canonical hex+ASCII dump, byte-identical to
//! `hexdump -C`, streamed in constant memory with large reads and writes.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::mpsc;

use sockbox_wire::hexdump::{Dumper, LINE_BYTES, LINE_LEN};

use crate::exit::usage;

/// Bytes read per `read` call.
const READ_BLOCK: usize = 1 << 18;

/// Arguments of `sockbox hexdump`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Output is byte-identical to `hexdump -C` (same `*` lines for repeated rows,
same final offset line), only much faster.

OFFSET and LENGTH take decimal, 0x-prefixed hex or 0-prefixed octal numbers,
with an optional suffix as hexdump takes them: K, M, G, T (or KiB, MiB…) for
powers of 1024, KB, MB, GB, TB for powers of 1000.

Examples:
  sockbox hexdump /bin/true | head
  printf 'hello\\n' | sockbox hexdump
  sockbox hexdump -s 1K -n 64 disk.img
  sockbox hexdump -v capture.bin > capture.txt

Exit codes: 0 success; 2 unreadable input or bad option; 3 system failure.")]
pub struct Args {
    /// Files to dump, one after the other as one stream; `-` or nothing for stdin.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print every line instead of `*` for repeated lines (like `hexdump -v`).
    #[arg(short = 'v', long = "no-squeeze")]
    pub no_squeeze: bool,
    /// Skip OFFSET bytes of input first; offsets shown count from the start.
    #[arg(short = 's', long, value_name = "OFFSET", value_parser = crate::input::size)]
    pub skip: Option<u64>,
    /// Dump at most LENGTH bytes.
    #[arg(short = 'n', long, value_name = "LENGTH", value_parser = crate::input::size)]
    pub length: Option<u64>,
    /// Canonical format; accepted for `hexdump -C` habits (it is the only format).
    #[arg(short = 'C', hide = true)]
    pub canonical: bool,
}

/// One input, opened.
struct Input {
    name: String,
    reader: Box<dyn Read>,
    /// A regular file that can seek past skipped bytes.
    file: Option<File>,
    /// Length, when known (regular files).
    len: Option<u64>,
}

/// Run `sockbox hexdump`.
pub fn run(a: &Args) -> anyhow::Result<u8> {
    // Open everything first, so a bad name fails before any output.
    let mut inputs = open_inputs(&a.files)?;
    let out = File::from(io::stdout().as_fd().try_clone_to_owned()?);
    if a.length == Some(0) {
        return Ok(0);
    }
    let start = skip(&mut inputs, a.skip.unwrap_or(0))?;
    // Regular files are read ahead in whole pieces and formatted on every
    // core; pipes and terminals stream, printing each read as it arrives.
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let all_files = inputs.iter().all(|i| i.len.is_some());
    let stream = Stream {
        inputs,
        current: 0,
        remaining: a.length.unwrap_or(u64::MAX),
    };
    if all_files && workers > 1 {
        parallel(stream, start, a.no_squeeze, workers.min(4), out)?;
    } else {
        serial(stream, start, a.no_squeeze, out)?;
    }
    Ok(0)
}

/// The inputs as one byte stream, limited to `--length`.
struct Stream {
    inputs: Vec<Input>,
    current: usize,
    remaining: u64,
}

impl Stream {
    /// One read (from whichever input is current); 0 at the end.
    fn read(&mut self, buf: &mut [u8]) -> anyhow::Result<usize> {
        let cap = usize::try_from(self.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        while cap > 0 && self.current < self.inputs.len() {
            let n = read_some(&mut self.inputs[self.current], &mut buf[..cap])?;
            if n > 0 {
                self.remaining -= n as u64;
                return Ok(n);
            }
            self.current += 1;
        }
        Ok(0)
    }

    /// Read until `buf` is full or the stream ends.
    fn fill(&mut self, buf: &mut [u8]) -> anyhow::Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            let n = self.read(&mut buf[got..])?;
            if n == 0 {
                break;
            }
            got += n;
        }
        Ok(got)
    }
}

fn dumper(start: u64, before: &[u8], no_squeeze: bool) -> Dumper {
    let d = Dumper::continuing(start, before);
    if no_squeeze { d.no_squeeze() } else { d }
}

/// One thread: read, format, write, with output after every read.
fn serial(mut stream: Stream, start: u64, no_squeeze: bool, mut out: File) -> anyhow::Result<()> {
    let mut d = dumper(start, &[], no_squeeze);
    let mut buf = vec![0u8; READ_BLOCK];
    let mut text = Vec::with_capacity((READ_BLOCK / LINE_BYTES + 4) * LINE_LEN);
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        d.push(&buf[..n], &mut text);
        out.write_all(&text)?;
        text.clear();
    }
    d.finish(&mut text);
    out.write_all(&text)?;
    Ok(())
}

/// A piece of input travelling to a worker and back with its text.
struct Piece {
    offset: u64,
    before: [u8; 2 * LINE_BYTES],
    before_len: usize,
    input: Vec<u8>,
    len: usize,
    text: Vec<u8>,
}

/// Many threads: this thread reads whole-line pieces and writes their text
/// in order; `workers` threads format them, each from the `*` state the
/// bytes before its piece imply ([`Dumper::continuing`]). Memory stays
/// bounded: two pieces per worker are in flight.
fn parallel(
    mut stream: Stream,
    start: u64,
    no_squeeze: bool,
    workers: usize,
    mut out: File,
) -> anyhow::Result<()> {
    std::thread::scope(|scope| {
        let mut to_worker = Vec::with_capacity(workers);
        let mut from_worker = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (job_tx, job_rx) = mpsc::channel::<Piece>();
            let (done_tx, done_rx) = mpsc::channel::<Piece>();
            scope.spawn(move || {
                for mut p in job_rx {
                    p.text.clear();
                    let before = &p.before[..p.before_len];
                    dumper(p.offset, before, no_squeeze).push(&p.input[..p.len], &mut p.text);
                    if done_tx.send(p).is_err() {
                        break;
                    }
                }
            });
            to_worker.push(job_tx);
            from_worker.push(done_rx);
        }
        let mut pool: Vec<Piece> = (0..2 * workers)
            .map(|_| Piece {
                offset: 0,
                before: [0; 2 * LINE_BYTES],
                before_len: 0,
                input: vec![0; READ_BLOCK],
                len: 0,
                text: Vec::with_capacity(READ_BLOCK / LINE_BYTES * LINE_LEN),
            })
            .collect();
        let mut in_flight = VecDeque::new();
        let mut next_worker = 0;
        let mut offset = start;
        let mut before = [0u8; 2 * LINE_BYTES];
        let mut before_len = 0;
        let mut tail = Vec::new();
        let mut eof = false;
        loop {
            while !eof && let Some(mut p) = pool.pop() {
                let n = stream.fill(&mut p.input)?;
                eof = n < p.input.len();
                let whole = n - n % LINE_BYTES;
                tail.extend_from_slice(&p.input[whole..n]);
                if whole == 0 {
                    pool.push(p);
                    break;
                }
                p.offset = offset;
                p.before = before;
                p.before_len = before_len;
                p.len = whole;
                // The last two lines of this piece are the next one's context.
                let keep = whole.min(2 * LINE_BYTES);
                let ctx = &p.input[whole - keep..whole];
                if keep == 2 * LINE_BYTES {
                    before.copy_from_slice(ctx);
                    before_len = keep;
                } else {
                    // Only one line read so far overall, or one more line.
                    let mut joined = before[..before_len].to_vec();
                    joined.extend_from_slice(ctx);
                    let k = joined.len().min(2 * LINE_BYTES);
                    before[..k].copy_from_slice(&joined[joined.len() - k..]);
                    before_len = k;
                }
                offset += whole as u64;
                to_worker[next_worker]
                    .send(p)
                    .map_err(|_| anyhow::anyhow!("hexdump worker stopped"))?;
                in_flight.push_back(next_worker);
                next_worker = (next_worker + 1) % workers;
            }
            let Some(w) = in_flight.pop_front() else {
                break;
            };
            let p = from_worker[w]
                .recv()
                .map_err(|_| anyhow::anyhow!("hexdump worker stopped"))?;
            out.write_all(&p.text)?;
            pool.push(p);
        }
        drop(to_worker);
        let mut d = dumper(offset, &before[..before_len], no_squeeze);
        let mut text = Vec::new();
        d.push(&tail, &mut text);
        d.finish(&mut text);
        out.write_all(&text)?;
        Ok(())
    })
}

fn open_inputs(files: &[PathBuf]) -> anyhow::Result<Vec<Input>> {
    if files.is_empty() {
        return Ok(vec![stdin_input()]);
    }
    files
        .iter()
        .map(|p| {
            if p.as_os_str() == "-" {
                return Ok(stdin_input());
            }
            let name = p.display().to_string();
            let f = File::open(p).map_err(|e| usage(format!("cannot read {name}: {e}")))?;
            let meta = f
                .metadata()
                .map_err(|e| usage(format!("cannot read {name}: {e}")))?;
            if meta.is_dir() {
                return Err(usage(format!("cannot read {name}: it is a directory")));
            }
            // Files that report no size (/proc, /sys) are read like pipes.
            let (file, len) = if meta.is_file() && meta.len() > 0 {
                (Some(f.try_clone()?), Some(meta.len()))
            } else {
                (None, None)
            };
            Ok(Input {
                name,
                reader: Box::new(f),
                file,
                len,
            })
        })
        .collect()
}

/// Standard input; when it is redirected from a regular file (`< file`),
/// that file, so it can seek and be formatted in parallel.
fn stdin_input() -> Input {
    let name = "standard input".to_owned();
    let as_file = io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .ok()
        .and_then(|f| {
            let meta = f.metadata().ok()?;
            let pos = (&f).stream_position().ok()?;
            let left = meta.len().checked_sub(pos)?;
            (meta.is_file() && left > 0)
                .then(|| Some((f.try_clone().ok()?, f, left)))
                .flatten()
        });
    match as_file {
        Some((reader, file, left)) => Input {
            name,
            reader: Box::new(reader),
            file: Some(file),
            len: Some(left),
        },
        None => Input {
            name,
            reader: Box::new(io::stdin().lock()),
            file: None,
            len: None,
        },
    }
}

/// Read into `buf`, retrying on EINTR; a read error names the input.
fn read_some(input: &mut Input, buf: &mut [u8]) -> anyhow::Result<usize> {
    loop {
        match input.reader.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(usage(format!("cannot read {}: {e}", input.name))),
        }
    }
}

/// Skip `n` bytes across the inputs (seeking regular files, reading the
/// rest); returns how many bytes were actually skipped.
fn skip(inputs: &mut [Input], mut n: u64) -> anyhow::Result<u64> {
    let mut skipped = 0;
    let mut scratch = Vec::new();
    for input in inputs {
        if n == 0 {
            break;
        }
        if let (Some(f), Some(len)) = (&mut input.file, input.len) {
            let step = n.min(len);
            // Relative: stdin redirected from a file may start mid-file.
            let delta = i64::try_from(step).unwrap_or(i64::MAX);
            f.seek(SeekFrom::Current(delta))
                .map_err(|e| usage(format!("cannot seek in {}: {e}", input.name)))?;
            n -= step;
            skipped += step;
            continue;
        }
        scratch.resize(READ_BLOCK, 0);
        while n > 0 {
            let want = usize::try_from(n).map_or(READ_BLOCK, |r| r.min(READ_BLOCK));
            let got = read_some(input, &mut scratch[..want])?;
            if got == 0 {
                break;
            }
            n -= got as u64;
            skipped += got as u64;
        }
    }
    Ok(skipped)
}
