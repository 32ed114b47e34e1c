//! The reading side of a session: frame input into lines (chat) or chunks
//! (broker), run commands, and fan out through the hub.

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::time::{Duration, Instant};

use crate::chat::ChatEvent;
use crate::chat::command::{self, Command, HELP};
use crate::chat::hub::{AnnounceKind, Hub, Member, PrivateError};
use crate::chat::humanize;
use crate::chat::line::{LineBuffer, escape, escape_into};
use crate::chat::outbox::Close;
use crate::chat::rate::Bucket;
use crate::chat::room::Room;

/// Bytes asked for per read.
const CHUNK: usize = 16 * 1024;

/// A source of input chunks.
pub(crate) trait ChunkRead: AsyncRead + Unpin + Send {
    /// Append what is available to `buf`; `Ok(0)` at end of input.
    fn read_chunk<'a>(
        &'a mut self,
        buf: &'a mut BytesMut,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;

    /// The TCP socket underneath, when there is one to ask how much the
    /// peer has not acknowledged yet.
    fn tcp_fd(&self) -> Option<RawFd> {
        None
    }
}

/// Plain TCP: wait for readability before reserving the buffer, so idle
/// clients hold no read buffer at all.
impl ChunkRead for OwnedReadHalf {
    async fn read_chunk<'a>(&'a mut self, buf: &'a mut BytesMut) -> io::Result<usize> {
        loop {
            self.readable().await?;
            buf.reserve(CHUNK);
            match self.try_read_buf(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Spurious readiness: do not keep a buffer while idle.
                    if buf.is_empty() {
                        *buf = BytesMut::new();
                    }
                }
                other => return other,
            }
        }
    }

    fn tcp_fd(&self) -> Option<RawFd> {
        Some(self.as_ref().as_raw_fd())
    }
}

/// Any other stream (TLS, the operator's stdin), with the TCP socket
/// underneath when there is one.
pub(crate) struct AnyRead<R> {
    pub inner: R,
    pub tcp_fd: Option<RawFd>,
}

impl<R: AsyncRead + Unpin> AsyncRead for AnyRead<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<R: AsyncRead + Unpin + Send> ChunkRead for AnyRead<R> {
    async fn read_chunk<'a>(&'a mut self, buf: &'a mut BytesMut) -> io::Result<usize> {
        buf.reserve(CHUNK);
        self.inner.read_buf(buf).await
    }

    fn tcp_fd(&self) -> Option<RawFd> {
        self.tcp_fd
    }
}

/// Read one chunk and drop it; false at end of input or on an error.
pub(super) async fn discard_some<R: AsyncRead + Unpin>(r: &mut R) -> bool {
    let mut scrap = [0u8; 4096];
    matches!(r.read(&mut scrap).await, Ok(n) if n > 0)
}

/// What the reader does after a line.
enum Flow {
    Go,
    Stop(String),
    /// `/nick`: the room may have to be asked first (a cluster).
    Rename(Vec<u8>),
}

/// Why a read did not return data.
enum Timeout {
    Idle(Duration),
    Line(Duration),
}

/// The reader's state for one client.
pub(super) struct Session {
    room: Arc<Room>,
    member: Arc<Member>,
    nick: String,
    /// Lines of the current read, formatted, not yet fanned out.
    batch: BytesMut,
    bucket: Option<Bucket>,
    /// How long a started line may take (network clients only).
    line_timeout: Option<Duration>,
    /// How long the client may send nothing (network clients only: the
    /// operator at the server's terminal may just read).
    idle_timeout: Option<Duration>,
}

impl Session {
    pub(super) fn new(room: Arc<Room>, member: Arc<Member>, nick: String, network: bool) -> Self {
        let bucket = room.config.rate.map(Bucket::new);
        let line_timeout = room.config.line_timeout.filter(|_| network);
        let idle_timeout = room.config.idle_timeout.filter(|_| network);
        Self {
            room,
            member,
            nick,
            batch: BytesMut::new(),
            bucket,
            line_timeout,
            idle_timeout,
        }
    }

    pub(super) fn nick(&self) -> &str {
        &self.nick
    }

    pub(super) fn into_nick(self) -> String {
        self.nick
    }

    fn hub(&self) -> &Hub {
        &self.room.hub
    }

    fn notice(&self, text: &str) {
        Hub::notice(&self.member, text);
    }

    /// An announcement to everyone else (after this client's pending lines).
    pub(super) fn announce(&mut self, kind: AnnounceKind, text: &str) {
        self.flush();
        self.hub().announce(kind, Some(self.member.id), text);
    }

    /// Fan out the pending batch.
    fn flush(&mut self) {
        if !self.batch.is_empty() {
            let msg = self.batch.split().freeze();
            self.room.hub.broadcast(Some(self.member.id), &msg);
            if self.batch.capacity() > 64 * 1024 {
                self.batch = BytesMut::new();
            }
        }
    }

    /// Why the reader was told to stop.
    fn stop_reason(&self) -> String {
        match self.member.outbox.closed() {
            Some(Close::Kick(r)) => r,
            _ if self.hub().is_closing() => "server shutting down".into(),
            _ => "stopped".into(),
        }
    }

    /// Read with the idle timeout and, while a line is unfinished since
    /// `line_since`, the line timeout; `Err` with the reason when the
    /// reader must stop.
    async fn read<R: ChunkRead>(
        &self,
        reader: &mut R,
        buf: &mut BytesMut,
        line_since: Option<Instant>,
    ) -> Result<io::Result<usize>, String> {
        let idle = self
            .idle_timeout
            .map(|d| (Instant::now() + d, Timeout::Idle(d)));
        let line = line_since
            .zip(self.line_timeout)
            .map(|(t, d)| (t + d, Timeout::Line(d)));
        let first = match (idle, line) {
            (Some(i), Some(l)) => Some(if l.0 < i.0 { l } else { i }),
            (i, l) => i.or(l),
        };
        let timer = async move {
            match first {
                Some((at, why)) => {
                    tokio::time::sleep_until(at).await;
                    why
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = self.member.stop_reading.cancelled() => Err(self.stop_reason()),
            r = reader.read_chunk(buf) => Ok(r),
            why = timer => Err(self.timed_out(&why)),
        }
    }

    /// Tell the client (chat; the broker adds nothing to the byte stream)
    /// and return the reason.
    fn timed_out(&self, why: &Timeout) -> String {
        let (notice, reason) = match why {
            Timeout::Line(d) => {
                let d = humanize(*d);
                (
                    format!("*** line not finished within {d}, disconnecting"),
                    format!("line not finished within {d}"),
                )
            }
            Timeout::Idle(d) => {
                let d = humanize(*d);
                (
                    format!("*** idle for {d}, disconnecting"),
                    format!("idle for {d}"),
                )
            }
        };
        if self.room.is_chat() {
            self.notice(&notice);
        }
        reason
    }

    /// Wait as the rate limit demands for `units` more.
    async fn pace(&mut self, units: f64) -> Flow {
        let Some(bucket) = &mut self.bucket else {
            return Flow::Go;
        };
        let wait = bucket.spend(units);
        if wait.is_zero() {
            return Flow::Go;
        }
        self.flush();
        tokio::select! {
            () = self.member.stop_reading.cancelled() => Flow::Stop(self.stop_reason()),
            () = tokio::time::sleep(wait) => Flow::Go,
        }
    }

    /// Serve a chat client's input; returns why it ended and whether that
    /// was the end of its input.
    pub(super) async fn chat<R: ChunkRead>(&mut self, reader: &mut R) -> (String, bool) {
        let mut lines = LineBuffer::new(self.room.config.max_line);
        let mut line_since = None;
        loop {
            let n = match self.read(reader, lines.buf_mut(), line_since).await {
                Err(reason) => return (reason, false),
                Ok(Err(e)) => return (format!("read failed: {e}"), true),
                Ok(Ok(n)) => n,
            };
            self.room.config.server.stats.add_in(n as u64);
            self.adopt_forced_nick();
            let eof = n == 0;
            let mut ended = false;
            while let Some(line) = lines
                .next_line()
                .or_else(|| if eof { lines.finish() } else { None })
            {
                ended = true;
                if let Flow::Stop(reason) = self.pace(1.0).await {
                    self.flush();
                    return (reason, false);
                }
                match self.take_line(&line) {
                    Flow::Stop(reason) => {
                        self.flush();
                        return (reason, eof);
                    }
                    Flow::Rename(new) => self.rename(&new).await,
                    Flow::Go => {}
                }
            }
            self.flush();
            if eof {
                return ("connection closed".into(), true);
            }
            // A line still unfinished: since when.
            line_since = match (ended, lines.is_empty()) {
                (true, true) => None,
                (true, false) => Some(Instant::now()),
                (false, _) => line_since.or_else(|| Some(Instant::now())),
            };
            lines.release_if_empty();
            // Let the writers run between bursts from a fast sender.
            tokio::task::yield_now().await;
        }
    }

    /// One framed line: notices for cut lines, then the line itself.
    fn take_line(&mut self, line: &crate::chat::line::Line) -> Flow {
        if line.crlf && !self.member.crlf.load(Ordering::Relaxed) {
            self.member.crlf.store(true, Ordering::Relaxed);
        }
        if line.cut {
            let max = self.room.config.max_line;
            if line.bytes.starts_with(b"/") && !line.bytes.starts_with(b"//") {
                // A cut command could mean something else: refuse it.
                self.notice(&format!("*** command longer than {max} bytes ignored"));
                return Flow::Go;
            }
            self.notice(&format!(
                "*** your line was longer than {max} bytes and was cut"
            ));
        }
        self.line(&line.bytes)
    }

    fn line(&mut self, line: &[u8]) -> Flow {
        match command::parse(line) {
            Command::Say(text) => self.say(b"<", b"> ", text),
            Command::Me(text) => self.say(b"* ", b" ", text),
            Command::Nick(new) => return Flow::Rename(new.to_vec()),
            Command::Who => {
                let who = self.hub().who_text();
                self.notice(&who);
            }
            Command::Msg { to, text } => self.private(to, text),
            Command::Quit(b"") => return Flow::Stop("quit".into()),
            Command::Quit(why) => return Flow::Stop(format!("quit: {}", escape(why))),
            Command::Help => {
                for h in HELP {
                    self.notice(&format!("*** {h}"));
                }
            }
            Command::Usage(u) => self.notice(&format!("*** {u}")),
            Command::Unknown(name) => self.notice(&format!(
                "*** unknown command /{}; /help lists commands",
                escape(name)
            )),
        }
        Flow::Go
    }

    /// Claim `new` room-wide when this room has other nodes (a valid name
    /// that is not this member's already); the hub checks the rest.
    async fn claim(&mut self, new: &[u8]) -> Result<(), String> {
        let Some(remote) = self.room.hub.remote().cloned() else {
            return Ok(());
        };
        let Ok(name) = command::validate_nick(new) else {
            return Ok(()); // the hub says why
        };
        if command::nick_key(name) == command::nick_key(&self.nick) {
            return Ok(());
        }
        // Lines read after this one wait: their order is kept.
        let claim = remote.claim(self.member.id, name);
        tokio::select! {
            r = claim => r.map_err(|e| e.to_string()),
            () = self.member.stop_reading.cancelled() => Err("leaving".into()),
        }
    }

    /// Add `{before}{nick}{after}{text}` to the batch for everyone else.
    fn say(&mut self, before: &[u8], after: &[u8], text: &[u8]) {
        self.batch.extend_from_slice(before);
        self.batch.extend_from_slice(self.nick.as_bytes());
        self.batch.extend_from_slice(after);
        escape_into(&mut self.batch, text);
        self.batch.extend_from_slice(b"\n");
    }

    /// Take on a nickname the room gave this member (another node won its
    /// name while the room was split), telling it.
    pub(super) fn adopt_forced_nick(&mut self) {
        if let Some(n) = self.member.take_forced_nick() {
            self.flush();
            let old = std::mem::replace(&mut self.nick, n.clone());
            self.notice(&format!(
                "*** {old} was taken on another node while the room was split; you are now {n}"
            ));
        }
    }

    async fn rename(&mut self, new: &[u8]) {
        self.flush();
        self.adopt_forced_nick();
        if let Err(e) = self.claim(new).await {
            self.notice(&format!("*** cannot change nickname: {e}"));
            return;
        }
        match self.room.hub.rename(self.member.id, &self.nick, new) {
            Ok(n) if n == self.nick => self.notice(&format!("*** you are already {n}")),
            Ok(n) => {
                let old = std::mem::replace(&mut self.nick, n.clone());
                self.notice(&format!("*** you are now known as {n}"));
                self.announce(
                    AnnounceKind::Nick,
                    &format!("*** {old} is now known as {n}"),
                );
                self.room.event(&ChatEvent::Nick {
                    id: self.member.id,
                    old,
                    new: n,
                });
            }
            Err(e) => {
                if let (Some(r), Ok(n)) = (self.room.hub.remote(), std::str::from_utf8(new)) {
                    r.unclaim(self.member.id, n);
                }
                self.notice(&format!("*** cannot change nickname: {e}"));
            }
        }
    }

    fn private(&mut self, to: &[u8], text: &[u8]) {
        // Everything this client said before goes out first.
        self.flush();
        let mut body = BytesMut::new();
        escape_into(&mut body, text);
        let mut msg = BytesMut::with_capacity(body.len() + self.nick.len() + 4);
        msg.extend_from_slice(b"*");
        msg.extend_from_slice(self.nick.as_bytes());
        msg.extend_from_slice(b"* ");
        msg.extend_from_slice(&body);
        msg.extend_from_slice(b"\n");
        let body = String::from_utf8_lossy(&body);
        match self
            .room
            .hub
            .private_from(self.member.id, to, &msg.freeze())
        {
            Ok(name) => self.notice(&format!("-> *{name}* {body}")),
            Err(PrivateError::NoSuchNick) => {
                self.notice(&format!("*** no such nickname: {}", escape(to)));
            }
            Err(PrivateError::TooSlow(name)) => {
                self.notice(&format!("*** {name} could not take the message"));
            }
            Err(PrivateError::Leaving(name)) => self.notice(&format!("*** {name} is leaving")),
            Err(PrivateError::Unreachable(name)) => self.notice(&format!(
                "*** {name} is on another node, out of reach while the room is split"
            )),
        }
    }

    /// Serve a broker client's input; returns why it ended and whether
    /// that was the end of its input.
    pub(super) async fn broker<R: ChunkRead>(&mut self, reader: &mut R) -> (String, bool) {
        let mut buf = BytesMut::new();
        loop {
            let n = match self.read(reader, &mut buf, None).await {
                Err(reason) => return (reason, false),
                Ok(Err(e)) => return (format!("read failed: {e}"), true),
                Ok(Ok(0)) => return ("connection closed".into(), true),
                Ok(Ok(n)) => n,
            };
            self.room.config.server.stats.add_in(n as u64);
            if let Flow::Stop(reason) = self.pace(n as f64).await {
                return (reason, false);
            }
            let data: Bytes = buf.split().freeze();
            self.room.hub.broadcast_raw(Some(self.member.id), &data);
            buf = BytesMut::new();
            tokio::task::yield_now().await;
        }
    }
}
