//! Send and collect in one call: [`Sender::exchange`] sends one datagram,
//! or one per line of a reader while replies already come in, then waits
//! for replies within the [`Collect`] bounds, reporting each as an
//! [`ExchangeEvent`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), sockbox::udp::Error> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use sockbox::udp::{Collect, Exchange, ExchangeEvent, Payloads, SendConfig, Sender};
//!
//! let sender = Sender::bind(vec!["10.0.0.255:9999".parse().unwrap()], &SendConfig::default())?;
//! let ex = Exchange {
//!     payloads: Payloads::One(b"WHO".to_vec()),
//!     collect: Collect { wait: Some(Duration::from_secs(2)), max: None },
//!     events: Arc::new(|e: &ExchangeEvent| {
//!         if let ExchangeEvent::Reply(r) = e {
//!             println!("{} answered", r.from);
//!         }
//!     }),
//! };
//! let report = sender.exchange(ex, &sockbox::Shutdown::new()).await?;
//! println!("{} replies", report.replies);
//! # Ok(()) }
//! ```

use std::io;
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

use super::Error;
use super::send::{Collect, Reply, SendReport, Sender};
use crate::Shutdown;
use crate::event::Events;

/// The datagrams to send.
pub enum Payloads {
    /// One datagram.
    One(Vec<u8>),
    /// One datagram per line of this reader (the newline, and a carriage
    /// return before it, removed), each sent as soon as it is read while
    /// replies are collected.
    Lines(Box<dyn AsyncRead + Send + Unpin>),
}

impl std::fmt::Debug for Payloads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::One(p) => f.debug_tuple("One").field(&p.len()).finish(),
            Self::Lines(_) => f.write_str("Lines"),
        }
    }
}

/// One send-and-collect run for [`Sender::exchange`].
pub struct Exchange {
    /// What to send.
    pub payloads: Payloads,
    /// How long and for how many replies to wait (after the last send;
    /// with no bound, nothing is collected).
    pub collect: Collect,
    /// Where sends, partial failures and replies are reported.
    pub events: Events<ExchangeEvent>,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("payloads", &self.payloads)
            .field("collect", &self.collect)
            .finish_non_exhaustive()
    }
}

/// What happened during an exchange.
#[derive(Debug)]
#[non_exhaustive]
pub enum ExchangeEvent {
    /// A datagram went out.
    Sent {
        /// Its length.
        len: usize,
        /// How many destinations took it.
        to: usize,
    },
    /// One destination refused a datagram that others took (when none
    /// takes it, the exchange fails with the error instead).
    SendFailed(Error),
    /// A reply came.
    Reply(Reply),
}

/// What a finished exchange did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExchangeReport {
    /// Datagrams sent (each to every destination that took it).
    pub datagrams: u64,
    /// Replies collected.
    pub replies: usize,
    /// True when the collect bounds asked for replies.
    pub collected: bool,
    /// True when the exchange ended early because `shutdown` fired.
    pub interrupted: bool,
}

/// Strip one line ending (`\n` or `\r\n`).
fn chomp(line: &mut Vec<u8>) {
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
}

/// Read lines on a task of its own, so that a reply arriving mid-line never
/// loses input (`read_until` is not cancel-safe).
fn line_reader(reader: Box<dyn AsyncRead + Send + Unpin>) -> mpsc::Receiver<io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut r = BufReader::new(reader);
        loop {
            let mut line = Vec::new();
            match r.read_until(b'\n', &mut line).await {
                Ok(0) => break,
                Ok(_) => {
                    chomp(&mut line);
                    if tx.send(Ok(line)).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    break;
                }
            }
        }
    });
    rx
}

struct Run<'a> {
    sender: &'a Sender,
    events: Events<ExchangeEvent>,
    collect: Collect,
    report: ExchangeReport,
    buf: Vec<u8>,
}

impl Run<'_> {
    fn want_more(&self) -> bool {
        self.report.collected && self.collect.max.is_none_or(|m| self.report.replies < m)
    }

    /// Send one datagram; fails when no destination took it.
    async fn send(&mut self, payload: &[u8]) -> Result<(), Error> {
        let SendReport { sent, mut errors } = self.sender.send(payload).await?;
        if sent == 0 {
            return match errors.pop() {
                Some(e) => Err(e),
                None => Ok(()),
            };
        }
        self.report.datagrams += 1;
        self.events.on_event(&ExchangeEvent::Sent {
            len: payload.len(),
            to: sent,
        });
        for e in errors {
            self.events.on_event(&ExchangeEvent::SendFailed(e));
        }
        Ok(())
    }

    fn reply(&mut self, r: Reply) {
        self.report.replies += 1;
        self.events.on_event(&ExchangeEvent::Reply(r));
    }

    /// Send each line as it comes, collecting replies meanwhile; false
    /// when `shutdown` fired first.
    async fn lines(
        &mut self,
        reader: Box<dyn AsyncRead + Send + Unpin>,
        shutdown: &Shutdown,
    ) -> Result<bool, Error> {
        let mut rx = line_reader(reader);
        let mut buf = std::mem::take(&mut self.buf);
        let done = loop {
            let want = self.want_more();
            tokio::select! {
                line = rx.recv() => match line {
                    None => break Ok(true),
                    Some(Err(e)) => break Err(Error::Input(e)),
                    Some(Ok(line)) => if let Err(e) = self.send(&line).await {
                        break Err(e);
                    },
                },
                r = self.sender.recv(&mut buf), if want => match r {
                    Ok(r) => self.reply(r),
                    Err(e) => break Err(e),
                },
                () = shutdown.wait() => break Ok(false),
            }
        };
        self.buf = buf;
        done
    }
}

impl Sender {
    /// Send `ex.payloads`, then collect replies within `ex.collect` (or
    /// until `shutdown` fires), reporting as it goes. Fails when a datagram
    /// reaches no destination, when reading the lines fails, or, for
    /// unicast destinations with [`SendConfig::report_unreachable`](super::SendConfig),
    /// with [`Error::Unreachable`] as soon as an ICMP error says no reply
    /// will come.
    pub async fn exchange(
        &self,
        ex: Exchange,
        shutdown: &Shutdown,
    ) -> Result<ExchangeReport, Error> {
        let mut run = Run {
            sender: self,
            events: ex.events,
            collect: ex.collect,
            report: ExchangeReport {
                collected: ex.collect.wait.is_some() || ex.collect.max.is_some(),
                ..ExchangeReport::default()
            },
            buf: vec![0u8; 65_536],
        };
        match ex.payloads {
            Payloads::One(p) => run.send(&p).await?,
            Payloads::Lines(reader) => {
                if !run.lines(reader, shutdown).await? {
                    run.report.interrupted = true;
                    return Ok(run.report);
                }
            }
        }
        let deadline = ex.collect.wait.map(|w| Instant::now() + w);
        while run.want_more() {
            match self.recv_until(&mut run.buf, deadline, shutdown).await? {
                Some(r) => run.reply(r),
                None => break,
            }
        }
        run.report.interrupted = shutdown.is_triggered();
        Ok(run.report)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::udp::SendConfig;

    fn recorder() -> (Events<ExchangeEvent>, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let events: Events<ExchangeEvent> = Arc::new(move |e: &ExchangeEvent| {
            let line = match e {
                ExchangeEvent::Sent { len, to } => format!("sent {len} to {to}"),
                ExchangeEvent::SendFailed(e) => format!("failed {e}"),
                ExchangeEvent::Reply(r) => {
                    format!("reply {}", String::from_utf8_lossy(&r.payload))
                }
            };
            s.lock().unwrap().push(line);
        });
        (events, seen)
    }

    /// An echo peer on loopback that answers `n` datagrams in upper case.
    async fn upper_echo(n: usize) -> std::net::SocketAddr {
        let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = peer.local_addr().unwrap();
        tokio::spawn(async move {
            let mut b = [0u8; 100];
            for _ in 0..n {
                let (k, from) = peer.recv_from(&mut b).await.unwrap();
                peer.send_to(&b[..k].to_ascii_uppercase(), from)
                    .await
                    .unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn lines_are_sent_one_per_datagram_and_replies_collected_meanwhile() {
        let peer = upper_echo(3).await;
        let sender = Sender::bind(vec![peer], &SendConfig::default()).unwrap();
        let (events, seen) = recorder();
        let input: &'static [u8] = b"one\r\ntwo\nthree";
        let report = sender
            .exchange(
                Exchange {
                    payloads: Payloads::Lines(Box::new(input)),
                    collect: Collect {
                        wait: Some(Duration::from_secs(5)),
                        max: Some(3),
                    },
                    events,
                },
                &Shutdown::new(),
            )
            .await
            .unwrap();
        assert_eq!((report.datagrams, report.replies), (3, 3));
        assert!(report.collected && !report.interrupted);
        let seen = seen.lock().unwrap();
        let mut replies: Vec<&String> = seen.iter().filter(|l| l.starts_with("reply")).collect();
        replies.sort();
        assert_eq!(replies, ["reply ONE", "reply THREE", "reply TWO"]);
        assert!(seen.contains(&"sent 3 to 1".to_owned()), "{seen:?}");
    }

    #[tokio::test]
    async fn no_bounds_collect_nothing_and_shutdown_ends_the_wait() {
        let peer = upper_echo(1).await;
        let sender = Sender::bind(vec![peer], &SendConfig::default()).unwrap();
        let (events, _) = recorder();
        let report = sender
            .exchange(
                Exchange {
                    payloads: Payloads::One(b"x".to_vec()),
                    collect: Collect::default(),
                    events: events.clone(),
                },
                &Shutdown::new(),
            )
            .await
            .unwrap();
        assert_eq!(
            (report.datagrams, report.replies, report.collected),
            (1, 0, false)
        );

        // Nobody answers this one: the shutdown ends a one-minute wait.
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let sender =
            Sender::bind(vec![silent.local_addr().unwrap()], &SendConfig::default()).unwrap();
        let sd = Shutdown::new();
        let trigger = sd.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            trigger.trigger();
        });
        let report = tokio::time::timeout(
            Duration::from_secs(10),
            sender.exchange(
                Exchange {
                    payloads: Payloads::One(b"x".to_vec()),
                    collect: Collect {
                        wait: Some(Duration::from_secs(60)),
                        max: None,
                    },
                    events,
                },
                &sd,
            ),
        )
        .await
        .unwrap()
        .unwrap();
        assert!(report.interrupted && report.replies == 0, "{report:?}");
    }

    #[tokio::test]
    async fn an_oversized_line_fails_before_it_is_sent() {
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let sender =
            Sender::bind(vec![silent.local_addr().unwrap()], &SendConfig::default()).unwrap();
        let (events, _) = recorder();
        let big = std::io::Cursor::new(vec![b'x'; 70_000]);
        let e = sender
            .exchange(
                Exchange {
                    payloads: Payloads::Lines(Box::new(big)),
                    collect: Collect::default(),
                    events,
                },
                &Shutdown::new(),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, Error::TooLarge { len: 70_000, .. }), "{e}");
    }
}
