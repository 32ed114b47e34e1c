//! `/metrics` over HTTP/1.1: hyper serves each connection admitted by the
//! [`net`](crate::net) accept loop (connection cap, allow/deny lists,
//! drain on shutdown). A scrape is rendered on a blocking thread from a
//! snapshot of the counters and streamed in chunks through a small
//! bounded channel: a slow scraper holds a rendering thread, never the
//! probing tasks, and memory stays at a few chunks per scrape. A scraper
//! that accepts gzip (Prometheus does) gets it, as from Go's client.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http_body_util::BodyExt as _;
use http_body_util::Full;
use http_body_util::combinators::BoxBody;
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, VARY};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Semaphore, mpsc};

use super::encode;
use super::metrics::Metrics;
use crate::Shutdown;
use crate::net::{Bind, BindError, Connection, Handler, ServerOptions, ServerReport, TcpServer};

/// Scrapes rendered at once; more wait their turn.
const RENDERS_AT_ONCE: usize = 2;

/// Chunks rendered ahead of what the client has taken.
const CHUNKS_AHEAD: usize = 4;

/// How long a scrape may wait for a rendering slot before a 503.
const SLOT_WAIT: Duration = Duration::from_secs(10);

/// How long a scrape's client may leave a chunk untaken before the scrape
/// is abandoned.
const SEND_WAIT: Duration = Duration::from_secs(20);

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The landing page.
const INDEX: &str = "<html>\n<head><title>sockbox prober</title></head>\n<body>\n\
<h1>sockbox prober</h1>\n<p><a href=\"/metrics\">Metrics</a></p>\n</body>\n</html>\n";

/// A body fed by the rendering thread. A scrape the rendering gave up on
/// ends in an error, so the response is cut short (no last chunk) and the
/// scraper sees a failed scrape rather than a complete-looking partial one.
struct ChunkBody {
    rx: mpsc::Receiver<Bytes>,
    complete: Arc<AtomicBool>,
}

impl Body for ChunkBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.rx.poll_recv(cx).map(|c| match c {
            Some(b) => Some(Ok(Frame::data(b))),
            None if self.complete.load(Ordering::Acquire) => None,
            None => Some(Err(std::io::Error::other(
                "scrape abandoned: the client took no data for too long",
            ))),
        })
    }
}

type Reply = Response<BoxBody<Bytes, std::io::Error>>;

fn plain(status: StatusCode, text: &'static str, content_type: &'static str) -> Reply {
    let body = Full::new(Bytes::from_static(text.as_bytes())).map_err(|never| match never {});
    let mut r = Response::new(body.boxed());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// What the server answers.
struct Site {
    metrics: Metrics,
    renders: Arc<Semaphore>,
}

impl Site {
    async fn answer(&self, req: &Request<Incoming>) -> Reply {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "only GET and HEAD\n",
                "text/plain; charset=utf-8",
            );
        }
        match req.uri().path() {
            "/metrics" => self.scrape(accepts_gzip(req.headers())).await,
            "/" => plain(StatusCode::OK, INDEX, "text/html; charset=utf-8"),
            _ => plain(
                StatusCode::NOT_FOUND,
                "not found: try /metrics\n",
                "text/plain; charset=utf-8",
            ),
        }
    }

    /// The exposition, gzip-compressed when `gzip`.
    async fn scrape(&self, gzip: bool) -> Reply {
        let waited = tokio::time::timeout(SLOT_WAIT, self.renders.clone().acquire_owned()).await;
        let permit = match waited {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => {
                return plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "shutting down\n",
                    "text/plain; charset=utf-8",
                );
            }
            Err(_) => {
                return plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy: other scrapes are being sent; try again\n",
                    "text/plain; charset=utf-8",
                );
            }
        };
        let (tx, rx) = mpsc::channel::<Bytes>(CHUNKS_AHEAD);
        let complete = Arc::new(AtomicBool::new(false));
        let feed = Feed {
            tx,
            runtime: tokio::runtime::Handle::current(),
            complete: complete.clone(),
        };
        let metrics = self.metrics.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            if gzip {
                render_gzip(&metrics, feed);
            } else {
                let mut sent = true;
                encode::encode(&metrics, &mut |chunk| {
                    sent = feed.send(Bytes::from(chunk));
                    sent
                });
                if sent {
                    feed.done();
                }
            }
        });
        let mut r = Response::new(ChunkBody { rx, complete }.boxed());
        let headers = r.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(encode::CONTENT_TYPE));
        headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        if gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        r
    }
}

/// True when the request's `Accept-Encoding` takes gzip (`gzip` or
/// `x-gzip`, without `q=0`).
fn accepts_gzip(headers: &hyper::HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .or_else(|| p.strip_prefix("Q="))
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip")) && !refused
        })
}

/// The exposition through gzip (the fastest level: scrape text shrinks
/// about tenfold even so), in chunks of about [`encode::CHUNK`] compressed
/// bytes.
fn render_gzip(metrics: &Metrics, feed: Feed) {
    let out = ChunkWriter {
        feed,
        buf: Vec::with_capacity(encode::CHUNK),
    };
    let mut gz = GzEncoder::new(out, Compression::fast());
    let mut sent = true;
    encode::encode(metrics, &mut |chunk| {
        sent = gz.write_all(&chunk).is_ok();
        sent
    });
    if !sent {
        return;
    }
    if let Ok(mut out) = gz.finish()
        && out.send().is_ok()
    {
        out.feed.done();
    }
}

/// The rendering thread's end of a scrape's body.
struct Feed {
    tx: mpsc::Sender<Bytes>,
    runtime: tokio::runtime::Handle,
    /// Set once everything was handed over.
    complete: Arc<AtomicBool>,
}

impl Feed {
    /// Everything was handed over: the body may end normally.
    fn done(&self) {
        self.complete.store(true, Ordering::Release);
    }

    /// Hand `chunk` to the body; false when the client is gone or took
    /// nothing for [`SEND_WAIT`] (the scrape ends and its rendering slot
    /// frees: a client that never reads cannot hold it).
    fn send(&self, chunk: Bytes) -> bool {
        let sent = self
            .runtime
            .block_on(tokio::time::timeout(SEND_WAIT, self.tx.send(chunk)));
        matches!(sent, Ok(Ok(())))
    }
}

/// Compressed bytes on their way to the body, sent a chunk at a time.
struct ChunkWriter {
    feed: Feed,
    buf: Vec<u8>,
}

impl ChunkWriter {
    /// Send what is held; an error once the client is gone.
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(encode::CHUNK));
        if self.feed.send(Bytes::from(full)) {
            Ok(())
        } else {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= encode::CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The connection handler: hyper's HTTP/1 server on each connection.
struct MetricsHandler {
    site: Arc<Site>,
}

impl Handler for MetricsHandler {
    async fn serve(&self, conn: Connection) {
        let site = self.site.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let site = site.clone();
            async move { Ok::<_, Infallible>(site.answer(&req).await) }
        });
        let http = hyper::server::conn::http1::Builder::new()
            // A client that shuts its side after the request (`nc -N`)
            // still gets the answer.
            .half_close(true)
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(TokioIo::new(conn.stream), service);
        tokio::pin!(http);
        tokio::select! {
            r = http.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(peer = %conn.peer, "http: {e}");
                }
            }
            () = conn.drain.soft().wait() => {
                http.as_mut().graceful_shutdown();
                tokio::select! {
                    _ = http.as_mut() => {}
                    () = conn.drain.hard().wait() => {}
                }
            }
        }
    }
}

/// The metrics web server: [`bind`](MetricsServer::bind), then
/// [`run`](MetricsServer::run).
pub struct MetricsServer {
    server: TcpServer<MetricsHandler>,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("local", &self.server.local_addr())
            .finish()
    }
}

impl MetricsServer {
    /// Listen as `bind` says, serving `metrics`. Must run inside a tokio
    /// runtime.
    pub fn bind(bind: &Bind, metrics: Metrics, opts: ServerOptions) -> Result<Self, BindError> {
        let site = Arc::new(Site {
            metrics,
            renders: Arc::new(Semaphore::new(RENDERS_AT_ONCE)),
        });
        Ok(Self {
            server: TcpServer::bind(bind, MetricsHandler { site }, opts)?,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Serve until `shutdown`, then let scrapes in progress finish for the
    /// grace period.
    pub async fn run(self, shutdown: Shutdown) -> ServerReport {
        self.server.run(shutdown).await
    }
}

#[cfg(test)]
mod tests {
    use hyper::HeaderMap;
    use hyper::header::{ACCEPT_ENCODING, HeaderValue};

    fn with(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(ACCEPT_ENCODING, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn gzip_only_when_accepted() {
        for yes in [
            &["gzip"][..],
            &["deflate, gzip;q=1.0, *;q=0.5"],
            &["br", "X-GZIP"],
            &["gzip ; q=0.001"],
        ] {
            assert!(super::accepts_gzip(&with(yes)), "{yes:?}");
        }
        for no in [
            &[][..],
            &["identity"],
            &["gzip;q=0"],
            &["gzip; q=0.0, br"],
            &["gzipped"],
        ] {
            assert!(!super::accepts_gzip(&with(no)), "{no:?}");
        }
    }
}
