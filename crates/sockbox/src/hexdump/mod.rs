//! Hex dumps of files and pipes, byte-identical to `hexdump -C`, fast.
//!
//! [`Dump::open`] opens every input first (so a bad name fails before any
//! output), then [`Dump::write_to`] streams them, one after the other as one
//! byte stream, into any writer. Memory stays bounded whatever the input
//! size: a few 256 KiB pieces per thread.
//!
//! Regular files (and standard input redirected from one) are read ahead in
//! whole-line pieces formatted on several threads, each from the `*` state
//! the bytes before its piece imply ([`Dumper::continuing`]), and written in
//! order. Pipes and terminals stream on the calling thread, writing after
//! every read, so output flows while input is still arriving.
//!
//! ```no_run
//! use sockbox::hexdump::{Dump, Input, Options};
//! let dump = Dump::open(&[Input::Path("capture.bin".into())])?;
//! let bytes = dump.write_to(&Options::default(), std::io::stdout().lock())?;
//! eprintln!("{bytes} bytes dumped");
//! # Ok::<(), sockbox::hexdump::Error>(())
//! ```
//!
//! [`Dumper::continuing`]: sockbox_wire::hexdump::Dumper::continuing

mod parallel;
mod stream;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{self, Seek, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;

use sockbox_wire::hexdump::Dumper;

use stream::{Opened, Stream};

/// Bytes read per `read` call, and the size of a parallel piece.
const READ_BLOCK: usize = 1 << 18;

/// Most threads a dump formats on.
const MAX_THREADS: usize = 4;

/// One thing to dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The process's standard input.
    Stdin,
    /// A file (or anything `open` reads: a FIFO, a device, `/proc` files).
    Path(PathBuf),
}

/// How to dump.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Print every line instead of `*` for repeated lines (`hexdump -v`).
    pub no_squeeze: bool,
    /// Skip this many bytes of input first; offsets still count from the
    /// start (`hexdump -s`).
    pub skip: u64,
    /// Dump at most this many bytes (`hexdump -n`).
    pub length: Option<u64>,
    /// Threads to format on; `None` for the machine's cores (at most 4).
    /// Only regular files are formatted in parallel.
    pub threads: Option<usize>,
}

/// What can go wrong dumping.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input could not be opened or inspected.
    #[error("cannot read {name}: {source}")]
    Open {
        /// The input, as given (`standard input` for stdin).
        name: String,
        /// The system's answer.
        #[source]
        source: io::Error,
    },
    /// An input is a directory.
    #[error("cannot read {name}: it is a directory")]
    Directory {
        /// The path as given.
        name: String,
    },
    /// Reading an input failed.
    #[error("cannot read {name}: {source}")]
    Read {
        /// The input.
        name: String,
        /// The system's answer.
        #[source]
        source: io::Error,
    },
    /// Seeking past skipped bytes failed.
    #[error("cannot seek in {name}: {source}")]
    Seek {
        /// The input.
        name: String,
        /// The system's answer.
        #[source]
        source: io::Error,
    },
    /// Writing the dump failed (a closed pipe gives [`io::ErrorKind::BrokenPipe`]).
    #[error("cannot write the dump: {0}")]
    Write(#[source] io::Error),
    /// A formatting thread could not be started or stopped early.
    #[error("a hexdump thread failed: {0}")]
    Thread(#[source] io::Error),
}

/// Inputs opened and ready to dump; see the module documentation.
pub struct Dump {
    inputs: Vec<Opened>,
}

impl Dump {
    /// Open every input, in order. A missing file, a directory or an
    /// unreadable one fails here, before any output.
    pub fn open(inputs: &[Input]) -> Result<Self, Error> {
        let inputs = if inputs.is_empty() {
            vec![stdin_input()]
        } else {
            inputs
                .iter()
                .map(|i| match i {
                    Input::Stdin => Ok(stdin_input()),
                    Input::Path(p) => open_path(p),
                })
                .collect::<Result<_, _>>()?
        };
        Ok(Self { inputs })
    }

    /// Dump the inputs into `out` (whole `write_all` calls of up to a few
    /// hundred KiB: give an unbuffered writer). Returns the number of input
    /// bytes dumped.
    pub fn write_to<W: Write>(mut self, options: &Options, mut out: W) -> Result<u64, Error> {
        if options.length == Some(0) {
            return Ok(0);
        }
        let start = stream::skip(&mut self.inputs, options.skip)?;
        let threads = options.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, usize::from)
                .min(MAX_THREADS)
        });
        let all_files = self.inputs.iter().all(|i| i.len.is_some());
        let mut stream = Stream {
            inputs: self.inputs,
            current: 0,
            remaining: options.length.unwrap_or(u64::MAX),
            read: 0,
        };
        if all_files && threads > 1 {
            parallel::run(&mut stream, start, options.no_squeeze, threads, &mut out)?;
        } else {
            serial(&mut stream, start, options.no_squeeze, &mut out)?;
        }
        out.flush().map_err(Error::Write)?;
        Ok(stream.read)
    }
}

/// A dumper at `start` that has seen `before` (the last two lines, for `*`).
fn dumper(start: u64, before: &[u8], no_squeeze: bool) -> Dumper {
    let d = Dumper::continuing(start, before);
    if no_squeeze { d.no_squeeze() } else { d }
}

/// One thread: read, format, write, with output after every read.
fn serial<W: Write>(
    stream: &mut Stream,
    start: u64,
    no_squeeze: bool,
    out: &mut W,
) -> Result<(), Error> {
    use sockbox_wire::hexdump::{LINE_BYTES, LINE_LEN};
    let mut d = dumper(start, &[], no_squeeze);
    let mut buf = vec![0u8; READ_BLOCK];
    let mut text = Vec::with_capacity((READ_BLOCK / LINE_BYTES + 4) * LINE_LEN);
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        d.push(&buf[..n], &mut text);
        out.write_all(&text).map_err(Error::Write)?;
        text.clear();
    }
    d.finish(&mut text);
    out.write_all(&text).map_err(Error::Write)
}

fn open_path(p: &std::path::Path) -> Result<Opened, Error> {
    let name = p.display().to_string();
    let open_err = |source| Error::Open {
        name: name.clone(),
        source,
    };
    let f = File::open(p).map_err(open_err)?;
    let meta = f.metadata().map_err(open_err)?;
    if meta.is_dir() {
        return Err(Error::Directory { name });
    }
    // Files that report no size (/proc, /sys) are read like pipes.
    let (file, len) = if meta.is_file() && meta.len() > 0 {
        (Some(f.try_clone().map_err(open_err)?), Some(meta.len()))
    } else {
        (None, None)
    };
    Ok(Opened {
        name,
        reader: Box::new(f),
        file,
        len,
    })
}

/// Standard input; when it is redirected from a regular file (`< file`),
/// that file, so it can seek and be formatted in parallel.
fn stdin_input() -> Opened {
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
        Some((reader, file, left)) => Opened {
            name,
            reader: Box::new(reader),
            file: Some(file),
            len: Some(left),
        },
        None => Opened {
            name,
            reader: Box::new(io::stdin().lock()),
            file: None,
            len: None,
        },
    }
}
