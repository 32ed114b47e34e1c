//! [`LineCodec`]: the line framing of [`sockbox_wire::line`] as a
//! `tokio_util::codec` decoder and encoder.

use std::io;

use bytes::{BufMut, BytesMut};
use sockbox_wire::line::{Line, LineBuffer};
use tokio_util::codec::{Decoder, Encoder};

/// Frames a byte stream into [`Line`]s and writes lines back.
///
/// Decoding follows [`LineBuffer`]: `\n` and `\r\n` end a line, a line
/// longer than the maximum comes out cut to it (with [`Line::cut`] set) and
/// its tail is discarded, so memory stays bounded by the maximum whatever
/// the peer sends; at end of input an unterminated last line is returned.
/// Encoding appends `\n` (or `\r\n` with [`LineCodec::crlf`]) to any bytes.
///
/// ```
/// use sockbox::net::LineCodec;
/// use tokio_util::codec::Decoder;
/// let mut codec = LineCodec::new(8);
/// let mut input = bytes::BytesMut::from(&b"hi\r\nfar too long a line\nrest"[..]);
/// let first = codec.decode(&mut input).unwrap().unwrap();
/// assert_eq!(&first.bytes[..], b"hi");
/// let second = codec.decode(&mut input).unwrap().unwrap();
/// assert!(second.cut && &second.bytes[..] == b"far too ");
/// assert!(codec.decode(&mut input).unwrap().is_none());
/// assert_eq!(&codec.decode_eof(&mut input).unwrap().unwrap().bytes[..], b"rest");
/// ```
#[derive(Debug)]
pub struct LineCodec {
    lines: LineBuffer,
    crlf: bool,
}

impl LineCodec {
    /// Lines of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            lines: LineBuffer::new(max),
            crlf: false,
        }
    }

    /// End encoded lines with `\r\n` instead of `\n`.
    #[must_use]
    pub fn crlf(mut self, on: bool) -> Self {
        self.crlf = on;
        self
    }

    /// Move what the framed reader read into the line buffer.
    fn take(&mut self, src: &mut BytesMut) {
        if src.is_empty() {
            return;
        }
        let buf = self.lines.buf_mut();
        if buf.is_empty() {
            *buf = src.split();
        } else {
            buf.extend_from_slice(&src.split());
        }
    }
}

impl Decoder for LineCodec {
    type Item = Line;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Line>, io::Error> {
        self.take(src);
        Ok(self.lines.next_line())
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Line>, io::Error> {
        self.take(src);
        match self.lines.next_line() {
            Some(line) => Ok(Some(line)),
            None => Ok(self.lines.finish()),
        }
    }
}

impl<T: AsRef<[u8]>> Encoder<T> for LineCodec {
    type Error = io::Error;

    fn encode(&mut self, item: T, dst: &mut BytesMut) -> Result<(), io::Error> {
        let bytes = item.as_ref();
        dst.reserve(bytes.len() + 2);
        dst.put_slice(bytes);
        if self.crlf {
            dst.put_slice(b"\r\n");
        } else {
            dst.put_u8(b'\n');
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::AsyncWriteExt;
    use tokio_util::codec::{FramedRead, FramedWrite};

    use super::*;

    #[tokio::test]
    async fn frames_across_reads_and_cuts_long_lines() {
        let (mut w, r) = tokio::io::duplex(4);
        let writer = tokio::spawn(async move {
            for piece in [&b"ab"[..], b"c\r", b"\nxxxxxxxxxxxxxxxx", b"xx\nlast"] {
                w.write_all(piece).await.unwrap();
            }
        });
        let mut lines = FramedRead::new(r, LineCodec::new(5));
        let mut got = Vec::new();
        while let Some(l) = lines.next().await {
            let l = l.unwrap();
            got.push((String::from_utf8(l.bytes.to_vec()).unwrap(), l.cut));
        }
        writer.await.unwrap();
        assert_eq!(
            got,
            vec![
                ("abc".into(), false),
                ("xxxxx".into(), true),
                ("last".into(), false)
            ]
        );
    }

    #[tokio::test]
    async fn encodes_with_the_chosen_ending() {
        let mut out = FramedWrite::new(Vec::new(), LineCodec::new(64).crlf(true));
        out.send("one").await.unwrap();
        out.send(b"two".as_slice()).await.unwrap();
        assert_eq!(out.get_ref(), b"one\r\ntwo\r\n");
    }
}
