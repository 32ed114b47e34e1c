//! The inputs as one byte stream: reads across input boundaries, `skip`
//! by seeking where possible, a length limit.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use super::{Error, READ_BLOCK};

/// One input, opened.
pub(super) struct Opened {
    /// For messages.
    pub(super) name: String,
    pub(super) reader: Box<dyn Read>,
    /// A regular file that can seek past skipped bytes.
    pub(super) file: Option<File>,
    /// Length, when known (regular files).
    pub(super) len: Option<u64>,
}

/// The inputs as one byte stream, limited to a length.
pub(super) struct Stream {
    pub(super) inputs: Vec<Opened>,
    pub(super) current: usize,
    pub(super) remaining: u64,
    /// Bytes read so far.
    pub(super) read: u64,
}

impl Stream {
    /// One read (from whichever input is current); 0 at the end.
    pub(super) fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let cap = usize::try_from(self.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        while cap > 0 && self.current < self.inputs.len() {
            let n = read_some(&mut self.inputs[self.current], &mut buf[..cap])?;
            if n > 0 {
                self.remaining -= n as u64;
                self.read += n as u64;
                return Ok(n);
            }
            self.current += 1;
        }
        Ok(0)
    }

    /// Read until `buf` is full or the stream ends.
    pub(super) fn fill(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
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

/// Read into `buf`, retrying on EINTR; a read error names the input.
fn read_some(input: &mut Opened, buf: &mut [u8]) -> Result<usize, Error> {
    loop {
        match input.reader.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(Error::Read {
                    name: input.name.clone(),
                    source,
                });
            }
        }
    }
}

/// Skip `n` bytes across the inputs (seeking regular files, reading the
/// rest); returns how many bytes were actually skipped.
pub(super) fn skip(inputs: &mut [Opened], mut n: u64) -> Result<u64, Error> {
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
                .map_err(|source| Error::Seek {
                    name: input.name.clone(),
                    source,
                })?;
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
