//! The two ends of an async relay session, as small enums: the local side
//! (a program's pipes, shared stdin/stdout, nothing) and the remote side
//! (a TCP stream, a connected UDP socket, datagrams demultiplexed by a UDP
//! server, a UNIX stream or datagram socket).

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UdpSocket, UnixDatagram};
use tokio::sync::{Mutex, mpsc};

use crate::net::Replier;

/// A boxed async reader.
pub(crate) type BoxRead = Box<dyn AsyncRead + Unpin + Send>;
/// A boxed async writer.
pub(crate) type BoxWrite = Box<dyn AsyncWrite + Unpin + Send>;
/// An output shared by many sessions; each chunk is written under the lock.
pub(crate) type SharedWrite = Arc<Mutex<BoxWrite>>;

/// Where local input comes from.
pub(crate) enum LocalIn {
    /// A stream (a program's stdout).
    Reader(BoxRead),
    /// Chunks handed out by the stdin hub; a closed channel is EOF.
    Chunks(mpsc::Receiver<Bytes>),
}

impl LocalIn {
    /// Replace `buf` with the next chunk; 0 is EOF.
    pub(crate) async fn read_chunk(&mut self, buf: &mut Vec<u8>, cap: usize) -> io::Result<usize> {
        buf.clear();
        match self {
            Self::Reader(r) => {
                buf.resize(cap, 0);
                let n = r.read(buf).await?;
                buf.truncate(n);
                Ok(n)
            }
            Self::Chunks(rx) => match rx.recv().await {
                Some(b) => {
                    buf.extend_from_slice(&b);
                    Ok(b.len())
                }
                None => Ok(0),
            },
        }
    }
}

/// Where data from the peer goes.
pub(crate) enum LocalOut {
    /// A stream (a program's stdin); closing drops it so the program sees EOF.
    Writer(BoxWrite),
    /// Shared standard output.
    Shared(SharedWrite),
    /// Dropped (after close, or `--send-only`).
    Discard,
}

impl LocalOut {
    pub(crate) async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Self::Writer(w) => {
                w.write_all(data).await?;
                w.flush().await
            }
            Self::Shared(w) => {
                let mut w = w.lock().await;
                w.write_all(data).await?;
                w.flush().await
            }
            Self::Discard => Ok(()),
        }
    }

    /// End of the peer's data: close a program's stdin; shared output stays.
    pub(crate) async fn close(&mut self) {
        if let Self::Writer(w) = self {
            let _ = w.shutdown().await;
            *self = Self::Discard;
        }
    }
}

/// Where data from the peer comes from.
pub(crate) enum RemoteIn {
    /// A TCP stream.
    Tcp(OwnedReadHalf),
    /// A UDP socket connected to the peer.
    Udp(Arc<UdpSocket>),
    /// Datagrams from one peer, demultiplexed by the server.
    Datagrams(mpsc::Receiver<Bytes>),
    /// Any byte stream (TLS over TCP, a UNIX stream). A peer that closes
    /// without a TLS close_notify counts as end of stream.
    Stream(BoxRead),
    /// A UNIX datagram socket connected to the peer.
    UnixDgram(Arc<UnixDatagram>),
}

impl RemoteIn {
    pub(crate) async fn read_chunk(&mut self, buf: &mut Vec<u8>, cap: usize) -> io::Result<usize> {
        buf.clear();
        match self {
            Self::Tcp(r) => {
                buf.resize(cap, 0);
                let n = r.read(buf).await?;
                buf.truncate(n);
                Ok(n)
            }
            Self::Udp(s) => {
                buf.resize(cap.max(65_536), 0);
                loop {
                    let n = s.recv(buf).await?;
                    // An empty datagram is not end of stream on UDP.
                    if n > 0 {
                        buf.truncate(n);
                        return Ok(n);
                    }
                }
            }
            Self::UnixDgram(s) => {
                buf.resize(cap.max(65_536), 0);
                loop {
                    let n = s.recv(buf).await?;
                    if n > 0 {
                        buf.truncate(n);
                        return Ok(n);
                    }
                }
            }
            Self::Stream(r) => {
                buf.resize(cap, 0);
                let n = match r.read(buf).await {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        tracing::debug!("peer closed without TLS close_notify");
                        0
                    }
                    Err(e) => return Err(e),
                };
                buf.truncate(n);
                Ok(n)
            }
            Self::Datagrams(rx) => loop {
                match rx.recv().await {
                    Some(b) if b.is_empty() => {}
                    Some(b) => {
                        buf.extend_from_slice(&b);
                        return Ok(b.len());
                    }
                    None => return Ok(0),
                }
            },
        }
    }
}

/// Where local data goes.
pub(crate) enum RemoteOut {
    /// A TCP stream.
    Tcp(OwnedWriteHalf),
    /// A UDP socket connected to the peer.
    Udp(Arc<UdpSocket>),
    /// A UDP server's answers to one peer (from the address it wrote to).
    Reply(Replier),
    /// Any byte stream (TLS over TCP, a UNIX stream); closing sends
    /// close_notify (TLS) and shuts down the write side.
    Stream(BoxWrite),
    /// A UNIX datagram socket connected to the peer.
    UnixDgram(Arc<UnixDatagram>),
}

/// The largest UDP payload over IPv4.
const MAX_DATAGRAM: usize = 65_507;

impl RemoteOut {
    pub(crate) async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Self::Tcp(w) => w.write_all(data).await,
            Self::Stream(w) => {
                w.write_all(data).await?;
                w.flush().await
            }
            Self::Udp(s) => {
                for part in data.chunks(MAX_DATAGRAM) {
                    s.send(part).await?;
                }
                Ok(())
            }
            Self::Reply(r) => {
                for part in data.chunks(MAX_DATAGRAM) {
                    r.send(part).await?;
                }
                Ok(())
            }
            Self::UnixDgram(s) => {
                for part in data.chunks(MAX_DATAGRAM) {
                    s.send(part).await?;
                }
                Ok(())
            }
        }
    }

    /// Half-close: TCP FIN; nothing on UDP.
    pub(crate) async fn close(&mut self) {
        match self {
            Self::Tcp(w) => {
                let _ = w.shutdown().await;
            }
            Self::Stream(w) => {
                let _ = w.shutdown().await;
            }
            Self::Udp(_) | Self::Reply(_) | Self::UnixDgram(_) => {}
        }
    }

    pub(crate) fn is_datagram(&self) -> bool {
        matches!(self, Self::Udp(_) | Self::Reply(_) | Self::UnixDgram(_))
    }
}
