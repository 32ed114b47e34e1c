//! Formatting regular files on several threads: this thread reads
//! whole-line pieces and writes their text in order; the workers format
//! them, each from the `*` state the bytes before its piece imply
//! ([`Dumper::continuing`](sockbox_wire::hexdump::Dumper::continuing)).
//! Memory stays bounded: two pieces per worker are in flight.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::mpsc;

use sockbox_wire::hexdump::{LINE_BYTES, LINE_LEN};

use super::stream::Stream;
use super::{Error, READ_BLOCK, dumper};

/// Bytes of context a piece carries: the two lines before it.
const CONTEXT: usize = 2 * LINE_BYTES;

/// A piece of input travelling to a worker and back with its text.
struct Piece {
    offset: u64,
    before: [u8; CONTEXT],
    before_len: usize,
    input: Vec<u8>,
    len: usize,
    text: Vec<u8>,
}

impl Piece {
    fn new() -> Self {
        Self {
            offset: 0,
            before: [0; CONTEXT],
            before_len: 0,
            input: vec![0; READ_BLOCK],
            len: 0,
            text: Vec::with_capacity(READ_BLOCK / LINE_BYTES * LINE_LEN),
        }
    }
}

/// The last (up to) two lines read so far: the next piece's context.
struct Context {
    bytes: [u8; CONTEXT],
    len: usize,
}

impl Context {
    /// The lines of `whole` (line-aligned) now precede what comes next.
    fn advance(&mut self, whole: &[u8]) {
        let keep = whole.len().min(CONTEXT);
        let tail = &whole[whole.len() - keep..];
        if keep == CONTEXT {
            self.bytes.copy_from_slice(tail);
            self.len = CONTEXT;
        } else {
            // Only one line read so far overall, or one more line.
            let mut joined = self.bytes[..self.len].to_vec();
            joined.extend_from_slice(tail);
            let k = joined.len().min(CONTEXT);
            self.bytes[..k].copy_from_slice(&joined[joined.len() - k..]);
            self.len = k;
        }
    }
}

fn stopped() -> Error {
    Error::Thread(std::io::Error::other("a formatting thread stopped"))
}

/// Dump `stream` (starting at offset `start`) on `workers` threads.
pub(super) fn run<W: Write>(
    stream: &mut Stream,
    start: u64,
    no_squeeze: bool,
    workers: usize,
    out: &mut W,
) -> Result<(), Error> {
    std::thread::scope(|scope| {
        let mut to_worker = Vec::with_capacity(workers);
        let mut from_worker = Vec::with_capacity(workers);
        for i in 0..workers {
            let (job_tx, job_rx) = mpsc::channel::<Piece>();
            let (done_tx, done_rx) = mpsc::channel::<Piece>();
            std::thread::Builder::new()
                .name(format!("hexdump-{i}"))
                .spawn_scoped(scope, move || {
                    for mut p in job_rx {
                        p.text.clear();
                        let before = &p.before[..p.before_len];
                        dumper(p.offset, before, no_squeeze).push(&p.input[..p.len], &mut p.text);
                        if done_tx.send(p).is_err() {
                            break;
                        }
                    }
                })
                .map_err(Error::Thread)?;
            to_worker.push(job_tx);
            from_worker.push(done_rx);
        }
        let mut pool: Vec<Piece> = (0..2 * workers).map(|_| Piece::new()).collect();
        let mut in_flight = VecDeque::new();
        let mut next_worker = 0;
        let mut offset = start;
        let mut ctx = Context {
            bytes: [0; CONTEXT],
            len: 0,
        };
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
                p.before = ctx.bytes;
                p.before_len = ctx.len;
                p.len = whole;
                ctx.advance(&p.input[..whole]);
                offset += whole as u64;
                to_worker[next_worker].send(p).map_err(|_| stopped())?;
                in_flight.push_back(next_worker);
                next_worker = (next_worker + 1) % workers;
            }
            let Some(w) = in_flight.pop_front() else {
                break;
            };
            let p = from_worker[w].recv().map_err(|_| stopped())?;
            out.write_all(&p.text).map_err(Error::Write)?;
            pool.push(p);
        }
        drop(to_worker);
        let mut d = dumper(offset, &ctx.bytes[..ctx.len], no_squeeze);
        let mut text = Vec::new();
        d.push(&tail, &mut text);
        d.finish(&mut text);
        out.write_all(&text).map_err(Error::Write)
    })
}
