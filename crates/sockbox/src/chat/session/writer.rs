//! The writing side of a session: drain the client's queue to its socket,
//! enforce the lag rule while a write is stuck, say why when the client is
//! kicked, and send FIN when the queue is closed.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Buf;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, Sleep};

use crate::chat::hub::Member;
use crate::chat::outbox::{Batch, Close, Take};
use crate::daemon::ServerStats;

/// How long a FIN may take.
const SHORT: Duration = Duration::from_millis(200);

/// How long a kicked client's goodbye may take (it waits behind what the
/// socket holds already).
const GOODBYE: Duration = Duration::from_secs(2);

/// How the writer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WriteEnd {
    /// Everything queued was written, then FIN.
    Flushed,
    /// Kicked: the reason said (chat), then FIN.
    Kicked,
    /// The grace period ended first: the rest was dropped.
    Abandoned,
    /// Writing failed (the client is gone).
    Failed,
}

impl WriteEnd {
    /// True when the connection ended in an orderly way on our side.
    pub(super) fn sent_fin(self) -> bool {
        matches!(self, Self::Flushed | Self::Kicked)
    }
}

/// Drain the member's queue to `w` until the queue is closed. `goodbye`:
/// tell a kicked client why (chat; the broker adds nothing to the stream).
pub(super) async fn write_loop<W: AsyncWrite + Unpin>(
    member: Arc<Member>,
    w: W,
    stats: ServerStats,
    goodbye: bool,
) -> WriteEnd {
    let mut w = LastByte {
        inner: w,
        last: None,
    };
    // The lag timer, armed only while the backlog is over the soft limit.
    let lag = tokio::time::sleep_until(Instant::now());
    tokio::pin!(lag);
    loop {
        match member.outbox.take() {
            Take::Data(mut batch) => {
                let writing = write_batch(&member, &mut w, &mut batch, &stats, lag.as_mut());
                if let Some(end) = writing.await {
                    return match end {
                        WriteEnd::Kicked => kicked(&member, &mut w, goodbye).await,
                        other => other,
                    };
                }
            }
            Take::Empty => {
                if member.abort_writes.is_cancelled() {
                    return WriteEnd::Abandoned;
                }
                tokio::select! {
                    () = member.outbox.notified() => {}
                    () = member.abort_writes.cancelled() => {}
                }
            }
            Take::Closed(Close::Flush) => {
                return match tokio::time::timeout(SHORT, w.shutdown()).await {
                    Ok(Ok(())) => WriteEnd::Flushed,
                    _ => WriteEnd::Failed,
                };
            }
            Take::Closed(Close::Kick(_)) => return kicked(&member, &mut w, goodbye).await,
        }
    }
}

/// Write one batch, reporting progress to the queue; `Some` when the
/// writer must stop. A write stuck for longer than the lag rule allows
/// kicks the client.
async fn write_batch<W: AsyncWrite + Unpin>(
    member: &Member,
    w: &mut W,
    batch: &mut Batch,
    stats: &ServerStats,
    mut lag: Pin<&mut Sleep>,
) -> Option<WriteEnd> {
    let abort = member.abort_writes.cancelled();
    tokio::pin!(abort);
    let mut deadline = member.outbox.lag_deadline();
    while batch.has_remaining() {
        if let Some(at) = deadline
            && at != lag.deadline()
        {
            lag.as_mut().reset(at);
        }
        tokio::select! {
            biased;
            () = &mut abort => {
                // A kick (say why) or the end of the grace period (drop all).
                return Some(match member.outbox.closed() {
                    Some(Close::Kick(_)) => WriteEnd::Kicked,
                    _ => WriteEnd::Abandoned,
                });
            }
            r = w.write_buf(batch) => match r {
                Ok(n) if n > 0 => {
                    deadline = member.outbox.sent(n);
                    stats.add_out(n as u64);
                }
                Ok(_) => {
                    member.kick("write failed: the connection accepts no more data");
                    return Some(WriteEnd::Failed);
                }
                Err(e) => {
                    member.kick(format!("write failed: {e}"));
                    return Some(WriteEnd::Failed);
                }
            },
            () = &mut lag, if deadline.is_some() => {
                if let Some(slow) = member.outbox.check_lag() {
                    member.kick(format!("too slow: {slow}"));
                }
                deadline = member.outbox.lag_deadline();
            }
            // The backlog may have passed the soft limit: arm the timer.
            () = member.outbox.notified(), if deadline.is_none() => {
                deadline = member.outbox.lag_deadline();
            }
        }
    }
    None
}

/// The client was kicked: tell it why (chat), then FIN; all within
/// [`GOODBYE`].
async fn kicked<W: AsyncWrite + Unpin>(
    member: &Member,
    w: &mut LastByte<W>,
    goodbye: bool,
) -> WriteEnd {
    let reason = match member.outbox.closed() {
        Some(Close::Kick(r)) => r,
        _ => String::new(),
    };
    let end = if member.crlf.load(Ordering::Relaxed) {
        "\r\n"
    } else {
        "\n"
    };
    // A kick can stop a write in the middle of a line: end that line first,
    // so the reason is a line of its own.
    let cut = if matches!(w.last, Some(b) if b != b'\n') {
        end
    } else {
        ""
    };
    let msg = format!("{cut}*** disconnected: {reason}{end}");
    let done = tokio::time::timeout(GOODBYE, async {
        if goodbye {
            w.write_all(msg.as_bytes()).await?;
        }
        w.shutdown().await
    })
    .await;
    if matches!(done, Ok(Ok(()))) {
        WriteEnd::Kicked
    } else {
        WriteEnd::Failed
    }
}

/// A writer that remembers the last byte it wrote, so that a message added
/// after a write cut short can start on a line of its own.
struct LastByte<W> {
    inner: W,
    last: Option<u8>,
}

impl<W> LastByte<W> {
    fn note(&mut self, bufs: &[IoSlice<'_>], mut n: usize) {
        for b in bufs {
            if n <= b.len() {
                if n > 0 {
                    self.last = Some(b[n - 1]);
                }
                return;
            }
            n -= b.len();
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for LastByte<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.note(&[IoSlice::new(buf)], n);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            self.note(bufs, n);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_byte_written_is_found_across_slices() {
        let mut w = LastByte {
            inner: (),
            last: None,
        };
        let bufs = [IoSlice::new(b"ab\n"), IoSlice::new(b"cd")];
        w.note(&bufs, 3);
        assert_eq!(w.last, Some(b'\n'));
        w.note(&bufs, 4);
        assert_eq!(w.last, Some(b'c'));
        w.note(&bufs, 0);
        assert_eq!(w.last, Some(b'c'));
    }
}
