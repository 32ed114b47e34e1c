//! One client: a reader task that frames input and fans it out, and a writer
//! task that drains the client's bounded queue to its socket.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::time::Duration;

use super::command::{self, Command, HELP};
use super::hub::{AnnounceKind, Hub, JoinError, Member};
use super::line::{LineBuffer, escape, escape_into};
use super::outbox::{Close, Push, Take};
use super::rate::Bucket;
use super::server::{self, Shared};
use super::{ChatEvent, Mode};

/// Bytes asked for per read.
const CHUNK: usize = 16 * 1024;

/// A source of input chunks.
pub(crate) trait ChunkRead: Send {
    /// Append what is available to `buf`; `Ok(0)` at end of input.
    fn read_chunk<'a>(
        &'a mut self,
        buf: &'a mut BytesMut,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;
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
}

/// Any other stream (TLS, the operator's stdin).
pub(crate) struct AnyRead<R>(pub R);

impl<R: AsyncRead + Unpin + Send> ChunkRead for AnyRead<R> {
    async fn read_chunk<'a>(&'a mut self, buf: &'a mut BytesMut) -> io::Result<usize> {
        buf.reserve(CHUNK);
        self.0.read_buf(buf).await
    }
}

/// Serve one client until it leaves, is kicked, or the server stops.
pub(crate) async fn serve<R, W>(
    shared: Arc<Shared>,
    mut reader: R,
    writer: W,
    peer: String,
    nick: Option<String>,
) where
    R: ChunkRead,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let cfg = &shared.config;
    let _active = cfg.stats.connection();
    let id = shared.next_id();
    let member = Arc::new(Member::new(
        id,
        peer.clone(),
        cfg.queue_limit,
        &shared.soft,
        &shared.hard,
    ));
    let welcome = |nick: &str, online: usize| {
        let s = if online == 1 { "" } else { "s" };
        (cfg.mode == Mode::Chat).then(|| {
            format!("*** welcome, you are {nick}; {online} user{s} online; /help lists commands")
        })
    };
    let (nick, online) = match shared.hub.join(member.clone(), nick.as_deref(), welcome) {
        Ok(joined) => joined,
        Err(e) => {
            if matches!(e, JoinError::Full(_)) {
                server::refuse_full(&shared, peer, writer).await;
            }
            return;
        }
    };
    let writer_task = shared.tracker.spawn(write_loop(
        member.clone(),
        writer,
        cfg.stats.clone(),
        cfg.mode == Mode::Chat,
    ));
    shared.event(&ChatEvent::Join {
        id,
        nick: nick.clone(),
        peer: peer.clone(),
        online,
    });
    let mut session = Session {
        shared: shared.clone(),
        member: member.clone(),
        nick,
        batch: BytesMut::new(),
        bucket: cfg.rate.map(Bucket::new),
    };
    let reason = match cfg.mode {
        Mode::Chat => {
            session.announce(
                AnnounceKind::Join,
                &format!("*** {} joined ({online} online)", session.nick),
            );
            session.chat(&mut reader).await
        }
        Mode::Broker => session.broker(&mut reader).await,
    };
    drop(reader);
    let online = shared.hub.leave(id, &session.nick).unwrap_or(0);
    if cfg.mode == Mode::Chat && !shared.hub.is_closing() {
        session.announce(
            AnnounceKind::Leave,
            &format!("*** {} left ({reason})", session.nick),
        );
    }
    shared.event(&ChatEvent::Leave {
        id,
        nick: session.nick.clone(),
        peer,
        reason,
        online,
    });
    member.outbox.close(Close::Flush);
    let _ = writer_task.await;
}

/// Drain the member's queue to `w` until the queue is closed. `goodbye`:
/// tell a kicked client why (chat; the broker adds nothing to the stream).
async fn write_loop<W: AsyncWrite + Unpin>(
    member: Arc<Member>,
    mut w: W,
    stats: crate::daemon::ServerStats,
    goodbye: bool,
) {
    let short = Duration::from_millis(200);
    loop {
        match member.outbox.take() {
            Take::Data(mut batch) => {
                let n = batch.remaining() as u64;
                tokio::select! {
                    biased;
                    () = member.abort_writes.cancelled() => {
                        if let Some(Close::Kick(reason)) = member.outbox.closed()
                            && goodbye
                        {
                            say_goodbye(&mut w, &reason, short).await;
                        }
                        return;
                    }
                    r = w.write_all_buf(&mut batch) => {
                        if let Err(e) = r {
                            member.kick(format!("write failed: {e}"));
                            return;
                        }
                        stats.add_out(n);
                    }
                }
            }
            Take::Empty => {
                if member.abort_writes.is_cancelled() {
                    return;
                }
                tokio::select! {
                    () = member.outbox.notified() => {}
                    () = member.abort_writes.cancelled() => {}
                }
            }
            Take::Closed(Close::Flush) => {
                let _ = tokio::time::timeout(short, w.shutdown()).await;
                return;
            }
            Take::Closed(Close::Kick(reason)) => {
                if goodbye {
                    say_goodbye(&mut w, &reason, short).await;
                }
                return;
            }
        }
    }
}

async fn say_goodbye<W: AsyncWrite + Unpin>(w: &mut W, reason: &str, wait: Duration) {
    let msg = format!("*** disconnected: {reason}\n");
    let _ = tokio::time::timeout(wait, async {
        w.write_all(msg.as_bytes()).await?;
        w.shutdown().await
    })
    .await;
}

/// What the reader does after a line.
enum Flow {
    Go,
    Stop(String),
}

struct Session {
    shared: Arc<Shared>,
    member: Arc<Member>,
    nick: String,
    /// Lines of the current read, formatted, not yet fanned out.
    batch: BytesMut,
    bucket: Option<Bucket>,
}

impl Session {
    fn notice(&self, text: &str) {
        Hub::notice(&self.member, text);
    }

    /// An announcement to everyone else (after this client's pending lines).
    fn announce(&mut self, kind: AnnounceKind, text: &str) {
        self.flush();
        self.shared.hub.announce(kind, Some(self.member.id), text);
    }

    /// Fan out the pending batch.
    fn flush(&mut self) {
        if !self.batch.is_empty() {
            let msg = self.batch.split().freeze();
            self.shared.hub.broadcast(Some(self.member.id), &msg);
            if self.batch.capacity() > 64 * 1024 {
                self.batch = BytesMut::new();
            }
        }
    }

    /// Why the reader was told to stop.
    fn stop_reason(&self) -> String {
        match self.member.outbox.closed() {
            Some(Close::Kick(r)) => r,
            Some(Close::Flush) if self.shared.hub.is_closing() => "server shutting down".into(),
            _ => "stopped".into(),
        }
    }

    /// Read with the idle timeout; `None` when the client stayed silent too long.
    async fn read<R: ChunkRead>(
        &self,
        reader: &mut R,
        buf: &mut BytesMut,
    ) -> Result<io::Result<usize>, String> {
        let read = async {
            match self.shared.config.idle_timeout {
                Some(d) => tokio::time::timeout(d, reader.read_chunk(buf))
                    .await
                    .map_err(|_| {
                        let idle = humanize(d);
                        // The broker adds nothing to the byte stream.
                        if self.shared.config.mode == Mode::Chat {
                            self.notice(&format!("*** idle for {idle}, disconnecting"));
                        }
                        format!("idle for {idle}")
                    }),
                None => Ok(reader.read_chunk(buf).await),
            }
        };
        tokio::select! {
            biased;
            () = self.member.stop_reading.cancelled() => Err(self.stop_reason()),
            r = read => r,
        }
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

    async fn chat<R: ChunkRead>(&mut self, reader: &mut R) -> String {
        let mut lines = LineBuffer::new(self.shared.config.max_line);
        loop {
            let n = match self.read(reader, lines.buf_mut()).await {
                Err(reason) => return reason,
                Ok(Err(e)) => return format!("read failed: {e}"),
                Ok(Ok(n)) => n,
            };
            self.shared.config.stats.add_in(n as u64);
            let eof = n == 0;
            while let Some(line) = lines
                .next_line()
                .or_else(|| if eof { lines.finish() } else { None })
            {
                if let Flow::Stop(reason) = self.pace(1.0).await {
                    self.flush();
                    return reason;
                }
                if line.crlf && !self.member.crlf.load(Ordering::Relaxed) {
                    self.member.crlf.store(true, Ordering::Relaxed);
                }
                if line.cut {
                    let max = self.shared.config.max_line;
                    if line.bytes.starts_with(b"/") && !line.bytes.starts_with(b"//") {
                        // A cut command could mean something else: refuse it.
                        self.notice(&format!("*** command longer than {max} bytes ignored"));
                        continue;
                    }
                    self.notice(&format!(
                        "*** your line was longer than {max} bytes and was cut"
                    ));
                }
                if let Flow::Stop(reason) = self.line(&line.bytes) {
                    self.flush();
                    return reason;
                }
            }
            self.flush();
            if eof {
                return "connection closed".into();
            }
            lines.release_if_empty();
            // Let the writers run between bursts from a fast sender.
            tokio::task::yield_now().await;
        }
    }

    fn line(&mut self, line: &[u8]) -> Flow {
        match command::parse(line) {
            Command::Say(text) => self.say(b"<", b"> ", text),
            Command::Me(text) => self.say(b"* ", b" ", text),
            Command::Nick(new) => self.rename(new),
            Command::Who => {
                let who = self.shared.hub.who();
                self.notice(&format!("*** {} online: {}", who.len(), who.join(", ")));
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

    /// Add `{before}{nick}{after}{text}` to the batch for everyone else.
    fn say(&mut self, before: &[u8], after: &[u8], text: &[u8]) {
        self.batch.extend_from_slice(before);
        self.batch.extend_from_slice(self.nick.as_bytes());
        self.batch.extend_from_slice(after);
        escape_into(&mut self.batch, text);
        self.batch.extend_from_slice(b"\n");
    }

    fn rename(&mut self, new: &[u8]) {
        self.flush();
        match self.shared.hub.rename(self.member.id, &self.nick, new) {
            Ok(n) if n == self.nick => self.notice(&format!("*** you are already {n}")),
            Ok(n) => {
                let old = std::mem::replace(&mut self.nick, n.clone());
                self.notice(&format!("*** you are now known as {n}"));
                self.announce(
                    AnnounceKind::Nick,
                    &format!("*** {old} is now known as {n}"),
                );
                self.shared.event(&ChatEvent::Nick {
                    id: self.member.id,
                    old,
                    new: n,
                });
            }
            Err(e) => self.notice(&format!("*** cannot change nickname: {e}")),
        }
    }

    fn private(&mut self, to: &[u8], text: &[u8]) {
        let Some((target, name)) = self.shared.hub.find(to) else {
            self.notice(&format!("*** no such nickname: {}", escape(to)));
            return;
        };
        // Everything this client said before goes out first.
        self.flush();
        self.shared.hub.flush_announcements();
        let mut msg = BytesMut::new();
        msg.extend_from_slice(b"*");
        msg.extend_from_slice(self.nick.as_bytes());
        msg.extend_from_slice(b"* ");
        escape_into(&mut msg, text);
        let echo = format!(
            "-> *{name}* {}",
            String::from_utf8_lossy(&msg[self.nick.len() + 3..])
        );
        msg.extend_from_slice(if target.crlf.load(Ordering::Relaxed) {
            b"\r\n"
        } else {
            b"\n"
        });
        match target.outbox.push(&msg.freeze()) {
            Push::Queued => self.notice(&echo),
            Push::Full => {
                target.kick("too slow: output queue full");
                self.notice(&format!("*** {name} could not take the message"));
            }
            Push::Closed => self.notice(&format!("*** {name} is leaving")),
        }
    }

    async fn broker<R: ChunkRead>(&mut self, reader: &mut R) -> String {
        let mut buf = BytesMut::new();
        loop {
            let n = match self.read(reader, &mut buf).await {
                Err(reason) => return reason,
                Ok(Err(e)) => return format!("read failed: {e}"),
                Ok(Ok(0)) => return "connection closed".into(),
                Ok(Ok(n)) => n,
            };
            self.shared.config.stats.add_in(n as u64);
            if let Flow::Stop(reason) = self.pace(n as f64).await {
                return reason;
            }
            let data: Bytes = buf.split().freeze();
            self.shared.hub.broadcast_raw(Some(self.member.id), &data);
            buf = BytesMut::new();
            tokio::task::yield_now().await;
        }
    }
}

/// `90s` → `1m 30s`, for notices.
fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) if d.subsec_millis() == 0 || s > 0 => format!("{s}s"),
        (0, 0, _) => format!("{}ms", d.as_millis()),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}
