//! Proxy handshakes for a client (no I/O): SOCKS4/4a, SOCKS5 (RFC 1928)
//! with username/password (RFC 1929), and HTTP `CONNECT` (RFC 9110 §9.3.6)
//! with Basic or Digest authentication (see `http`).
//!
//! Requests are built into a `Vec<u8>`; replies are parsed from what has
//! arrived so far: `Ok(None)` means "not complete yet, read more",
//! `Ok(Some((len, reply)))` that the first `len` bytes are the reply (bytes
//! after it already belong to the tunnelled stream), an error that the
//! proxy refused or spoke something else. No parser panics on any input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The most an HTTP proxy's reply header may take.
pub const MAX_HTTP_HEADER: usize = 16 * 1024;

/// Why a proxy handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// The reply does not start with the expected version byte.
    #[error("the proxy answered with version {got}, not {want}: is it a {proto} proxy?")]
    Version {
        /// The protocol expected.
        proto: &'static str,
        /// The version byte expected.
        want: u8,
        /// The byte received.
        got: u8,
    },
    /// A SOCKS4 proxy refused the connection.
    #[error("the SOCKS4 proxy refused the connection (code {code}: {})", socks4_reason(*code))]
    Socks4Rejected {
        /// The reply code (91-93).
        code: u8,
    },
    /// The SOCKS5 proxy accepts none of the offered authentication methods.
    #[error(
        "the SOCKS5 proxy accepts none of the offered authentication methods ({offered}): it may need a username and password"
    )]
    NoMethod {
        /// What was offered.
        offered: &'static str,
    },
    /// The SOCKS5 proxy chose a method that was not offered.
    #[error("the SOCKS5 proxy chose authentication method {0}, which was not offered")]
    UnexpectedMethod(u8),
    /// The proxy refused the username and password.
    #[error("the proxy refused the username and password (status {0})")]
    AuthFailed(u8),
    /// A SOCKS5 proxy could not connect.
    #[error("the SOCKS5 proxy could not connect (code {code}: {})", socks5_reason(*code))]
    Socks5Failed {
        /// The reply code (1-8 or other).
        code: u8,
    },
    /// A SOCKS5 reply with an unknown address type.
    #[error("the SOCKS5 proxy sent address type {0}, which is not one of 1, 3, 4")]
    AddressType(u8),
    /// The HTTP proxy answered with a status other than 2xx.
    #[error("the HTTP proxy answered {code} {reason}")]
    HttpStatus {
        /// The status code.
        code: u16,
        /// The reason phrase (cut, printable).
        reason: String,
    },
    /// The HTTP proxy asks for credentials (status 407), offering these
    /// authentication schemes.
    #[error("the HTTP proxy asks for a user name and password (it offers {})", offered(.challenges))]
    HttpAuthRequired {
        /// The challenges of its `Proxy-Authenticate` headers.
        challenges: Vec<Challenge>,
    },
    /// A Digest challenge this client cannot answer.
    #[error("the HTTP proxy's Digest challenge cannot be answered: {0}")]
    DigestUnsupported(String),
    /// The HTTP proxy's reply is not an HTTP status line and headers.
    #[error("the HTTP proxy's reply is not HTTP: {0}")]
    HttpMalformed(&'static str),
    /// The HTTP proxy's reply header exceeds [`MAX_HTTP_HEADER`].
    #[error("the HTTP proxy's reply header exceeds {MAX_HTTP_HEADER} bytes")]
    HttpTooLong,
    /// A field does not fit its length byte.
    #[error("{what} is {len} bytes long; the protocol allows at most 255")]
    TooLong {
        /// Which field.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// SOCKS4 carries IPv4 addresses only.
    #[error("SOCKS4 cannot reach the IPv6 address {0}: use a SOCKS5 or HTTP proxy")]
    Socks4Ipv6(Ipv6Addr),
    /// A host name or user name with a NUL byte.
    #[error("{0} contains a NUL byte")]
    Nul(&'static str),
}

/// The schemes of `challenges`, for a message ("Basic, Digest", or
/// "no scheme" when the proxy named none).
fn offered(challenges: &[Challenge]) -> String {
    if challenges.is_empty() {
        return "no scheme".to_owned();
    }
    let names: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
    names.join(", ")
}

/// What a SOCKS4 reply code means.
pub fn socks4_reason(code: u8) -> &'static str {
    match code {
        91 => "rejected or failed",
        92 => "the proxy cannot reach identd on the client",
        93 => "identd reported another user",
        _ => "unknown code",
    }
}

/// What a SOCKS5 reply code means.
pub fn socks5_reason(code: u8) -> &'static str {
    match code {
        1 => "general failure",
        2 => "not allowed by the proxy's rules",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown code",
    }
}

/// Where the proxy should connect: an address, or a name it resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    /// An IP address and port.
    Addr(SocketAddr),
    /// A host name and port, resolved by the proxy.
    Name(&'a str, u16),
}

impl Target<'_> {
    fn port(&self) -> u16 {
        match self {
            Self::Addr(a) => a.port(),
            Self::Name(_, p) => *p,
        }
    }
}

/// A SOCKS4 CONNECT request. A name is sent SOCKS4a style (address
/// `0.0.0.1`, the name after the user id).
pub fn socks4_request(target: &Target<'_>, user: &str) -> Result<Vec<u8>, ProxyError> {
    if user.contains('\0') {
        return Err(ProxyError::Nul("the user name"));
    }
    let mut out = vec![4, 1];
    out.extend_from_slice(&target.port().to_be_bytes());
    match target {
        Target::Addr(SocketAddr::V4(a)) => out.extend_from_slice(&a.ip().octets()),
        Target::Addr(SocketAddr::V6(a)) => return Err(ProxyError::Socks4Ipv6(*a.ip())),
        Target::Name(..) => out.extend_from_slice(&[0, 0, 0, 1]),
    }
    out.extend_from_slice(user.as_bytes());
    out.push(0);
    if let Target::Name(name, _) = target {
        if name.contains('\0') {
            return Err(ProxyError::Nul("the host name"));
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
    }
    Ok(out)
}

/// A granted SOCKS4 reply: the address the proxy reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Socks4Reply {
    /// The bound address (often 0.0.0.0:0).
    pub bound: SocketAddr,
}

/// Parse a SOCKS4 reply (8 bytes).
pub fn parse_socks4_reply(buf: &[u8]) -> Result<Option<(usize, Socks4Reply)>, ProxyError> {
    let Some(r) = buf.get(..8) else {
        return Ok(None);
    };
    if r[0] != 0 {
        return Err(ProxyError::Version {
            proto: "SOCKS4",
            want: 0,
            got: r[0],
        });
    }
    if r[1] != 90 {
        return Err(ProxyError::Socks4Rejected { code: r[1] });
    }
    let port = u16::from_be_bytes([r[2], r[3]]);
    let ip = Ipv4Addr::new(r[4], r[5], r[6], r[7]);
    Ok(Some((
        8,
        Socks4Reply {
            bound: SocketAddr::new(ip.into(), port),
        },
    )))
}

/// SOCKS5 "no authentication".
pub const SOCKS5_NO_AUTH: u8 = 0;
/// SOCKS5 "username/password" (RFC 1929).
pub const SOCKS5_USER_PASS: u8 = 2;

/// The SOCKS5 greeting: no authentication, plus username/password when
/// there are credentials.
pub fn socks5_greeting(with_password: bool) -> Vec<u8> {
    if with_password {
        vec![5, 2, SOCKS5_NO_AUTH, SOCKS5_USER_PASS]
    } else {
        vec![5, 1, SOCKS5_NO_AUTH]
    }
}

/// Parse the SOCKS5 method choice (2 bytes); `with_password` says whether
/// username/password was offered.
pub fn parse_socks5_method(
    buf: &[u8],
    with_password: bool,
) -> Result<Option<(usize, u8)>, ProxyError> {
    let Some(r) = buf.get(..2) else {
        return Ok(None);
    };
    if r[0] != 5 {
        return Err(ProxyError::Version {
            proto: "SOCKS5",
            want: 5,
            got: r[0],
        });
    }
    match r[1] {
        SOCKS5_NO_AUTH => Ok(Some((2, SOCKS5_NO_AUTH))),
        SOCKS5_USER_PASS if with_password => Ok(Some((2, SOCKS5_USER_PASS))),
        0xff => Err(ProxyError::NoMethod {
            offered: if with_password {
                "none, username/password"
            } else {
                "none"
            },
        }),
        m => Err(ProxyError::UnexpectedMethod(m)),
    }
}

/// The RFC 1929 username/password request.
pub fn socks5_auth(user: &str, pass: &str) -> Result<Vec<u8>, ProxyError> {
    let (u, p) = (user.as_bytes(), pass.as_bytes());
    let too_long = |what, len| ProxyError::TooLong { what, len };
    let ulen = u8::try_from(u.len()).map_err(|_| too_long("the user name", u.len()))?;
    let plen = u8::try_from(p.len()).map_err(|_| too_long("the password", p.len()))?;
    let mut out = vec![1, ulen];
    out.extend_from_slice(u);
    out.push(plen);
    out.extend_from_slice(p);
    Ok(out)
}

/// Parse the RFC 1929 status (2 bytes; status 0 is success).
pub fn parse_socks5_auth(buf: &[u8]) -> Result<Option<(usize, ())>, ProxyError> {
    let Some(r) = buf.get(..2) else {
        return Ok(None);
    };
    if r[0] != 1 {
        return Err(ProxyError::Version {
            proto: "SOCKS5 username/password",
            want: 1,
            got: r[0],
        });
    }
    if r[1] != 0 {
        return Err(ProxyError::AuthFailed(r[1]));
    }
    Ok(Some((2, ())))
}

/// The SOCKS5 CONNECT request.
pub fn socks5_request(target: &Target<'_>) -> Result<Vec<u8>, ProxyError> {
    let mut out = vec![5, 1, 0];
    match target {
        Target::Addr(SocketAddr::V4(a)) => {
            out.push(1);
            out.extend_from_slice(&a.ip().octets());
        }
        Target::Addr(SocketAddr::V6(a)) => {
            out.push(4);
            out.extend_from_slice(&a.ip().octets());
        }
        Target::Name(name, _) => {
            let len = u8::try_from(name.len()).map_err(|_| ProxyError::TooLong {
                what: "the host name",
                len: name.len(),
            })?;
            out.push(3);
            out.push(len);
            out.extend_from_slice(name.as_bytes());
        }
    }
    out.extend_from_slice(&target.port().to_be_bytes());
    Ok(out)
}

/// What a successful SOCKS5 reply says the proxy bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Socks5Bound {
    /// An address.
    Addr(SocketAddr),
    /// A name and port.
    Name(Vec<u8>, u16),
}

/// Parse a SOCKS5 reply (variable length by address type).
pub fn parse_socks5_reply(buf: &[u8]) -> Result<Option<(usize, Socks5Bound)>, ProxyError> {
    let Some(head) = buf.get(..4) else {
        return Ok(None);
    };
    if head[0] != 5 {
        return Err(ProxyError::Version {
            proto: "SOCKS5",
            want: 5,
            got: head[0],
        });
    }
    if head[1] != 0 {
        return Err(ProxyError::Socks5Failed { code: head[1] });
    }
    let (addr_len, start) = match head[3] {
        1 => (4, 4),
        4 => (16, 4),
        3 => match buf.get(4) {
            Some(&n) => (usize::from(n), 5),
            None => return Ok(None),
        },
        t => return Err(ProxyError::AddressType(t)),
    };
    let len = start + addr_len + 2;
    let Some(r) = buf.get(..len) else {
        return Ok(None);
    };
    let addr = &r[start..start + addr_len];
    let port = u16::from_be_bytes([r[len - 2], r[len - 1]]);
    let bound = match head[3] {
        1 => {
            let o: [u8; 4] = addr.try_into().unwrap_or_default();
            Socks5Bound::Addr(SocketAddr::new(IpAddr::from(o), port))
        }
        4 => {
            let o: [u8; 16] = addr.try_into().unwrap_or_default();
            Socks5Bound::Addr(SocketAddr::new(IpAddr::from(o), port))
        }
        _ => Socks5Bound::Name(addr.to_vec(), port),
    };
    Ok(Some((len, bound)))
}

mod http;

pub use http::{
    Challenge, DigestInput, HttpReply, answer_challenges, authority, base64, basic_authorization,
    digest_authorization, http_connect_request, parse_challenges, parse_http_reply,
};

#[cfg(test)]
mod tests;
