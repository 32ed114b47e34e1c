//! Connecting through a proxy (client side): SOCKS4/4a, SOCKS5 and HTTP
//! `CONNECT`, with optional credentials. The framing is
//! [`sockbox_wire::proxy`]; this module does the I/O on a connected
//! stream. Use it through [`Connector::proxy`](super::Connector::proxy).
//!
//! Where the target's name is resolved ([`ProxyDns`], ncat's
//! `--proxy-dns`): by default a SOCKS5 or HTTP proxy is sent the name (the
//! proxy resolves it); for SOCKS4 it is resolved here to an IPv4 address
//! and sent as one (a SOCKS4a name is sent only when it does not resolve
//! here). An address literal is always sent as an address.
//!
//! Replies are read exactly (never past their end), so the first bytes the
//! target sends after the reply stay in the socket for the caller.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use sockbox_wire::proxy::{self as wire, ProxyError as WireError, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::addr::{Family, parse_literal, resolve_async};

/// The proxy protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProxyKind {
    /// SOCKS4 (SOCKS4a for names that do not resolve locally).
    Socks4,
    /// SOCKS5 (RFC 1928), username/password (RFC 1929) when given.
    #[default]
    Socks5,
    /// HTTP `CONNECT`; with credentials, Digest or Basic as the proxy
    /// asks.
    Http,
}

/// Where the target's name is resolved (ncat's `--proxy-dns`). An address
/// literal is always sent as an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyDns {
    /// Here; a name that does not resolve here is an error.
    Local,
    /// By the proxy: the name is sent (SOCKS4 sends it as SOCKS4a).
    Remote,
    /// Here when it resolves, else by the proxy.
    Both,
    /// Nowhere: the target must be an address.
    None,
}

impl FromStr for ProxyDns {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "local" => Ok(Self::Local),
            "remote" => Ok(Self::Remote),
            "both" => Ok(Self::Both),
            "none" => Ok(Self::None),
            _ => Err(format!(
                "{s:?} is not a resolution mode: give local, remote, both or none"
            )),
        }
    }
}

impl ProxyKind {
    /// Where a target name is resolved unless told: for SOCKS4 here, by
    /// the proxy (SOCKS4a) only when that fails; by the proxy otherwise.
    pub fn default_dns(self) -> ProxyDns {
        match self {
            Self::Socks4 => ProxyDns::Both,
            Self::Socks5 | Self::Http => ProxyDns::Remote,
        }
    }

    /// The usual port: 1080 for SOCKS, 3128 for HTTP.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Socks4 | Self::Socks5 => 1080,
            Self::Http => 3128,
        }
    }
}

impl fmt::Display for ProxyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Socks4 => "socks4",
            Self::Socks5 => "socks5",
            Self::Http => "http",
        })
    }
}

impl FromStr for ProxyKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "socks4" | "socks4a" => Ok(Self::Socks4),
            "socks5" | "socks" => Ok(Self::Socks5),
            "http" | "https" | "connect" => Ok(Self::Http),
            _ => Err(format!(
                "{s:?} is not a proxy type: give socks4, socks5 or http"
            )),
        }
    }
}

/// A proxy to connect through.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// The proxy's host (name or address).
    pub host: String,
    /// The proxy's port.
    pub port: u16,
    /// The protocol.
    pub kind: ProxyKind,
    /// User name and password (SOCKS4 sends the user name only).
    pub auth: Option<(String, String)>,
    /// Where the target's name is resolved; `None`: the kind's default
    /// ([`ProxyKind::default_dns`]).
    pub dns: Option<ProxyDns>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("kind", &self.kind)
            .field("auth", &self.auth.as_ref().map(|(u, _)| (u, "***")))
            .field("dns", &self.dns)
            .finish()
    }
}

impl Proxy {
    /// A proxy at `host`:`port`, without credentials.
    pub fn new(host: impl Into<String>, port: u16, kind: ProxyKind) -> Self {
        Self {
            host: host.into(),
            port,
            kind,
            auth: None,
            dns: None,
        }
    }

    /// Resolve the target's name as `dns` says.
    #[must_use]
    pub fn dns(mut self, dns: ProxyDns) -> Self {
        self.dns = Some(dns);
        self
    }

    /// Authenticate as `user` with `password`.
    #[must_use]
    pub fn auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Some((user.into(), password.into()));
        self
    }

    /// Ask the proxy, over `stream` (connected to it), for a tunnel to
    /// `host`:`port`. On success the stream carries the target's bytes.
    pub async fn handshake(
        &self,
        stream: &mut TcpStream,
        host: &str,
        port: u16,
    ) -> Result<(), ProxyError> {
        let (ip, name) = self.where_to(host, port).await?;
        let target = target(ip, name, port);
        match self.kind {
            ProxyKind::Socks4 => {
                let user = self.auth.as_ref().map_or("", |(u, _)| u.as_str());
                send(stream, &wire::socks4_request(&target, user)?).await?;
                recv(stream, wire::parse_socks4_reply).await?;
            }
            ProxyKind::Socks5 => self.socks5(stream, &target).await?,
            ProxyKind::Http => self.http(stream, &target, None).await?,
        }
        Ok(())
    }

    /// Like [`Proxy::handshake`] for an HTTP proxy, answering its
    /// challenge (from [`ProxyError::Reconnect`]) on `stream`, a new
    /// connection to it. The target is the one the challenge was for.
    pub async fn answer(
        &self,
        stream: &mut TcpStream,
        host: &str,
        port: u16,
        retry: &Retry,
    ) -> Result<(), ProxyError> {
        let name = checked_name(host)?;
        let target = target(retry.ip, name, port);
        self.http(stream, &target, Some(&retry.authorization)).await
    }

    /// The target as the proxy is to be told: its address when `host` is
    /// one or is resolved here (see [`ProxyDns`]), and its name.
    async fn where_to<'h>(
        &self,
        host: &'h str,
        port: u16,
    ) -> Result<(Option<IpAddr>, &'h str), ProxyError> {
        let literal = parse_literal(host).map_err(|_| ProxyError::Target(host.to_owned()))?;
        let name = checked_name(host)?;
        if literal.is_some() {
            return Ok((literal, name));
        }
        let family = match self.kind {
            ProxyKind::Socks4 => Family::V4,
            ProxyKind::Socks5 | ProxyKind::Http => Family::Any,
        };
        let local = || async {
            resolve_async(name, port, family)
                .await
                .ok()
                .and_then(|v| v.first().map(SocketAddr::ip))
        };
        match self.dns.unwrap_or(self.kind.default_dns()) {
            ProxyDns::Remote => Ok((None, name)),
            ProxyDns::Both => Ok((local().await, name)),
            ProxyDns::Local => match local().await {
                Some(ip) => Ok((Some(ip), name)),
                None => Err(ProxyError::Unresolved(name.to_owned())),
            },
            ProxyDns::None => Err(ProxyError::NameGiven(name.to_owned())),
        }
    }

    /// `CONNECT`, first without credentials (as ncat does: a proxy that
    /// offers Digest never sees the password); a 407 is answered with the
    /// best scheme it offers, on a new connection.
    async fn http(
        &self,
        stream: &mut TcpStream,
        target: &Target<'_>,
        authorization: Option<&str>,
    ) -> Result<(), ProxyError> {
        send(stream, &wire::http_connect_request(target, authorization)).await?;
        let challenges = match recv(stream, wire::parse_http_reply).await {
            Err(ProxyError::Protocol(WireError::HttpAuthRequired { challenges })) => challenges,
            other => return other.map(|_| ()),
        };
        if authorization.is_some() {
            return Err(ProxyError::CredentialsRefused);
        }
        let Some((user, password)) = &self.auth else {
            return Err(WireError::HttpAuthRequired { challenges }.into());
        };
        let uri = wire::authority(target);
        let cnonce = format!("{:016x}", rand::random::<u64>());
        let input = wire::DigestInput {
            user,
            password,
            method: "CONNECT",
            uri: &uri,
            cnonce: &cnonce,
        };
        let ip = match target {
            Target::Addr(a) => Some(a.ip()),
            Target::Name(..) => None,
        };
        match wire::answer_challenges(&challenges, &input) {
            Some(Ok(authorization)) => Err(ProxyError::Reconnect(Retry { authorization, ip })),
            Some(Err(e)) => Err(e.into()),
            None => Err(ProxyError::NoScheme(
                challenges.iter().map(|c| c.scheme.clone()).collect(),
            )),
        }
    }

    async fn socks5(&self, stream: &mut TcpStream, target: &Target<'_>) -> Result<(), ProxyError> {
        let with_password = self.auth.is_some();
        send(stream, &wire::socks5_greeting(with_password)).await?;
        let method = recv(stream, |b| wire::parse_socks5_method(b, with_password)).await?;
        if method == wire::SOCKS5_USER_PASS
            && let Some((u, p)) = &self.auth
        {
            send(stream, &wire::socks5_auth(u, p)?).await?;
            recv(stream, wire::parse_socks5_auth).await?;
        }
        send(stream, &wire::socks5_request(target)?).await?;
        recv(stream, wire::parse_socks5_reply).await?;
        Ok(())
    }
}

/// The answer to an HTTP proxy's challenge, for [`Proxy::answer`]: its
/// `Proxy-Authorization` value, and the target address it was computed
/// for (so the request that carries it names the same target).
#[derive(Clone, PartialEq, Eq)]
pub struct Retry {
    authorization: String,
    ip: Option<IpAddr>,
}

impl fmt::Debug for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("authorization", &"***")
            .field("ip", &self.ip)
            .finish()
    }
}

/// `host` without brackets, refused when it holds a control character or
/// a space (it goes into a request line or a length-prefixed field).
fn checked_name(host: &str) -> Result<&str, ProxyError> {
    let name = super::addr::unbracket(host.trim());
    if name.is_empty() || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ProxyError::Target(host.to_owned()));
    }
    Ok(name)
}

fn target(ip: Option<IpAddr>, name: &str, port: u16) -> Target<'_> {
    match ip {
        Some(ip) => Target::Addr(SocketAddr::new(ip, port)),
        None => Target::Name(name, port),
    }
}

/// Why a proxy did not open the tunnel.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The proxy refused or spoke another protocol.
    #[error(transparent)]
    Protocol(#[from] WireError),
    /// The connection to the proxy failed mid-handshake.
    #[error("talking to the proxy: {0}")]
    Io(#[from] io::Error),
    /// The proxy closed the connection before answering in full.
    #[error("the proxy closed the connection during the handshake")]
    Closed,
    /// The target is not a usable host.
    #[error("{0:?} is not a valid target host")]
    Target(String),
    /// Resolution here was asked for and the target's name did not resolve.
    #[error("the target {0:?} does not resolve here (it is not sent to the proxy to resolve)")]
    Unresolved(String),
    /// No resolution was asked for and the target is a name.
    #[error("the target {0:?} is a name, and names are not resolved: give an address")]
    NameGiven(String),
    /// The HTTP proxy asked for credentials and closes this connection:
    /// connect to it again and call [`Proxy::answer`] with this
    /// ([`Connector`](super::Connector) does).
    #[error("the HTTP proxy asks for credentials: connect again and send them")]
    Reconnect(Retry),
    /// The HTTP proxy refused the credentials sent in answer to its
    /// challenge.
    #[error("the HTTP proxy refused the user name and password (407 again)")]
    CredentialsRefused,
    /// The HTTP proxy offers only authentication schemes this client does
    /// not speak.
    #[error("the HTTP proxy asks for authentication by {} only; Basic and Digest are supported", .0.join(", "))]
    NoScheme(Vec<String>),
}

async fn send(stream: &mut TcpStream, bytes: &[u8]) -> Result<(), ProxyError> {
    stream.write_all(bytes).await?;
    Ok(())
}

/// Read one reply, a byte at a time until `parse` finds it complete, so
/// that nothing after it is taken from the socket (replies are short and
/// read once per connection).
async fn recv<T>(
    stream: &mut TcpStream,
    parse: impl Fn(&[u8]) -> Result<Option<(usize, T)>, WireError>,
) -> Result<T, ProxyError> {
    let mut buf = Vec::with_capacity(64);
    let mut one = [0u8; 1];
    loop {
        if stream.read(&mut one).await? == 0 {
            return Err(ProxyError::Closed);
        }
        buf.push(one[0]);
        if let Some((_, value)) = parse(&buf)? {
            return Ok(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::net::Connector;

    /// A SOCKS5 proxy that checks the greeting and the request for
    /// `ex.org:443`, grants it and sends the target's first bytes at once.
    async fn socks5_once(l: tokio::net::TcpListener) {
        let (mut s, _) = l.accept().await.unwrap();
        let mut b = [0u8; 3];
        s.read_exact(&mut b).await.unwrap();
        assert_eq!(b, [5, 1, 0]);
        s.write_all(&[5, 0]).await.unwrap();
        let mut req = [0u8; 4 + 1 + 6 + 2];
        s.read_exact(&mut req).await.unwrap();
        assert_eq!(&req[..], b"\x05\x01\x00\x03\x06ex.org\x01\xbb");
        s.write_all(b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00banner")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_connector_tunnels_through_socks5_and_keeps_the_first_bytes() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let proxy = tokio::spawn(socks5_once(l));
        let c = Connector::new().proxy(Proxy::new("127.0.0.1", addr.port(), ProxyKind::Socks5));
        let mut s = c.connect("ex.org", 443).await.unwrap();
        let mut got = [0u8; 6];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"banner");
        proxy.await.unwrap();
    }

    #[tokio::test]
    async fn a_target_with_control_characters_is_refused_before_sending() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let got = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut all = Vec::new();
            let _ = s.read_to_end(&mut all).await;
            all
        });
        let c = Connector::new().proxy(Proxy::new("127.0.0.1", addr.port(), ProxyKind::Http));
        let err = c
            .connect("ex.org\r\n\r\nGET /", 80)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a valid target host"), "{err}");
        drop(c);
        assert!(got.await.unwrap().is_empty(), "bytes reached the proxy");
    }

    #[tokio::test]
    async fn a_refusal_names_the_proxy_and_the_reason() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut head = vec![0u8; 64];
            let _ = s.read(&mut head).await;
            let _ = s.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
        });
        let c = Connector::new().proxy(Proxy::new("127.0.0.1", addr.port(), ProxyKind::Http));
        let err = c.connect("ex.org", 80).await.unwrap_err().to_string();
        assert!(
            err.contains(&addr.to_string()) && err.contains("403 Forbidden"),
            "{err}"
        );
        assert_eq!("SOCKS4a".parse::<ProxyKind>(), Ok(ProxyKind::Socks4));
        assert!(
            "gopher"
                .parse::<ProxyKind>()
                .unwrap_err()
                .contains("socks4, socks5 or http")
        );
    }
}
