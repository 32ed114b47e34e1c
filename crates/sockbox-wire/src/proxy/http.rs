//! HTTP `CONNECT` (RFC 9110 §9.3.6): the request, the proxy's reply (read
//! with `httparse`), its authentication challenges (RFC 9110 §11), and the
//! answers to them: Basic (RFC 7617) and Digest (RFC 7616 with MD5 or
//! MD5-sess, `qop=auth` or none, as ncat and squid speak it).

use std::fmt::Write as _;

use md5::{Digest as _, Md5};

use super::{MAX_HTTP_HEADER, ProxyError, Target};

/// Header lines a proxy's reply may have.
const MAX_HEADERS: usize = 64;

/// The HTTP `CONNECT` request for `target`, with a `Proxy-Authorization`
/// header when `authorization` is given (its value, such as the result of
/// [`basic_authorization`] or [`digest_authorization`]).
pub fn http_connect_request(target: &Target<'_>, authorization: Option<&str>) -> Vec<u8> {
    let authority = authority(target);
    let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(a) = authorization {
        req.push_str("Proxy-Authorization: ");
        req.push_str(a);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// `host:port` as a `CONNECT` request names it (IPv6 in brackets); also the
/// `uri` of a Digest answer.
pub fn authority(target: &Target<'_>) -> String {
    match target {
        Target::Addr(a) => a.to_string(),
        Target::Name(n, p) => format!("{n}:{p}"),
    }
}

/// A 2xx answer to `CONNECT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// The status code (200-299).
    pub code: u16,
}

/// Parse the HTTP proxy's reply header, up to and including its empty
/// line. A 407 is [`ProxyError::HttpAuthRequired`] with the challenges of
/// its `Proxy-Authenticate` headers; any other status outside 2xx is
/// [`ProxyError::HttpStatus`].
pub fn parse_http_reply(buf: &[u8]) -> Result<Option<(usize, HttpReply)>, ProxyError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut reply = httparse::Response::new(&mut headers);
    let len = match reply.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HTTP_HEADER => {
            return Err(ProxyError::HttpTooLong);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ProxyError::HttpMalformed("more than 64 header lines"));
        }
        Err(httparse::Error::Status) => {
            return Err(ProxyError::HttpMalformed("no three-digit status code"));
        }
        Err(httparse::Error::Version) => {
            return Err(ProxyError::HttpMalformed("no HTTP/1.x status line"));
        }
        Err(_) => return Err(ProxyError::HttpMalformed("a malformed header line")),
    };
    if len > MAX_HTTP_HEADER {
        return Err(ProxyError::HttpTooLong);
    }
    let code = reply.code.unwrap_or_default();
    if (200..300).contains(&code) {
        return Ok(Some((len, HttpReply { code })));
    }
    if code == 407 {
        let challenges = reply
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("proxy-authenticate"))
            .flat_map(|h| parse_challenges(h.value))
            .collect();
        return Err(ProxyError::HttpAuthRequired { challenges });
    }
    Err(ProxyError::HttpStatus {
        code,
        reason: printable(reply.reason.unwrap_or_default()),
    })
}

/// At most 80 characters of `s`, anything but printable ASCII as `?`.
fn printable(s: &str) -> String {
    s.chars()
        .take(80)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// One authentication challenge: a scheme and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme as the proxy wrote it (`Basic`, `Digest`…).
    pub scheme: String,
    /// Its `name=value` parameters, names in lower case, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of parameter `name` (lower case), if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }
}

/// The challenges of one `Proxy-Authenticate` value (several may share
/// one header, separated by commas). What cannot be read is skipped.
pub fn parse_challenges(value: &[u8]) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let mut at = 0;
    // A scheme starts the value or follows a comma; a bare token after a
    // scheme is its token68 (`Negotiate abc==`), not read.
    let mut after_comma = true;
    while at < value.len() {
        let start = skip(value, at, |b| b == b' ' || b == b'\t' || b == b',');
        after_comma |= value[at..start].contains(&b',');
        at = start;
        let token_end = skip(value, at, is_tchar);
        if token_end == at {
            at = skip(value, at, |b| b != b',');
            continue;
        }
        let name = String::from_utf8_lossy(&value[at..token_end]).into_owned();
        let after = skip(value, token_end, |b| b == b' ' || b == b'\t');
        let is_param = value.get(after) == Some(&b'=') && value.get(after + 1) != Some(&b'=');
        if is_param {
            let start = skip(value, after + 1, |b| b == b' ' || b == b'\t');
            let (text, next) = param_value(value, start);
            if let Some(last) = out.last_mut() {
                last.params.push((name.to_ascii_lowercase(), text));
            }
            at = next;
        } else if after_comma {
            out.push(Challenge {
                scheme: name,
                params: Vec::new(),
            });
            at = after;
        } else {
            at = skip(value, after, |b| b != b',');
        }
        after_comma = false;
    }
    out
}

/// A parameter value at `at`: a quoted string (with `\` escapes) or a
/// token; returns it and where reading goes on.
fn param_value(v: &[u8], at: usize) -> (String, usize) {
    if v.get(at) != Some(&b'"') {
        let end = skip(v, at, is_tchar);
        return (String::from_utf8_lossy(&v[at..end]).into_owned(), end);
    }
    let mut text = Vec::new();
    let mut i = at + 1;
    while i < v.len() {
        match v[i] {
            b'\\' if i + 1 < v.len() => {
                text.push(v[i + 1]);
                i += 2;
            }
            b'"' => return (String::from_utf8_lossy(&text).into_owned(), i + 1),
            b => {
                text.push(b);
                i += 1;
            }
        }
    }
    (String::from_utf8_lossy(&text).into_owned(), i)
}

/// The first index from `at` whose byte does not satisfy `keep`.
fn skip(v: &[u8], at: usize, keep: impl Fn(u8) -> bool) -> usize {
    v.get(at..)
        .and_then(|rest| rest.iter().position(|&b| !keep(b)))
        .map_or(v.len(), |n| at + n)
}

/// A token character (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The `Proxy-Authorization` value for Basic: `Basic base64(user:password)`.
pub fn basic_authorization(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// What a Digest answer is computed from, besides the challenge.
#[derive(Debug, Clone, Copy)]
pub struct DigestInput<'a> {
    /// The user name.
    pub user: &'a str,
    /// The password.
    pub password: &'a str,
    /// The request method (`CONNECT`).
    pub method: &'a str,
    /// The request target (`host:port` for `CONNECT`).
    pub uri: &'a str,
    /// A fresh client nonce (random, printable, no `"`).
    pub cnonce: &'a str,
}

/// The `Proxy-Authorization` value answering the Digest challenge `c`
/// (nonce count 1: one answer per challenge).
pub fn digest_authorization(c: &Challenge, input: &DigestInput<'_>) -> Result<String, ProxyError> {
    let (Some(realm), Some(nonce)) = (c.param("realm"), c.param("nonce")) else {
        return Err(ProxyError::DigestUnsupported(
            "it has no realm or no nonce".into(),
        ));
    };
    let algorithm = c.param("algorithm").unwrap_or("MD5");
    let session = if algorithm.eq_ignore_ascii_case("MD5") {
        false
    } else if algorithm.eq_ignore_ascii_case("MD5-sess") {
        true
    } else {
        return Err(ProxyError::DigestUnsupported(format!(
            "algorithm {} (MD5 and MD5-sess are supported)",
            printable(algorithm)
        )));
    };
    let qop_auth = match c.param("qop") {
        // MD5-sess mixes in the client nonce, which is sent only with qop.
        None if session => {
            return Err(ProxyError::DigestUnsupported("MD5-sess without qop".into()));
        }
        None => false,
        Some(list)
            if list
                .split(',')
                .any(|q| q.trim().eq_ignore_ascii_case("auth")) =>
        {
            true
        }
        Some(list) => {
            return Err(ProxyError::DigestUnsupported(format!(
                "qop {} (only auth is supported)",
                printable(list)
            )));
        }
    };
    let nc = "00000001";
    let mut ha1 = md5_hex(&format!("{}:{realm}:{}", input.user, input.password));
    if session {
        ha1 = md5_hex(&format!("{ha1}:{nonce}:{}", input.cnonce));
    }
    let ha2 = md5_hex(&format!("{}:{}", input.method, input.uri));
    let response = if qop_auth {
        md5_hex(&format!("{ha1}:{nonce}:{nc}:{}:auth:{ha2}", input.cnonce))
    } else {
        md5_hex(&format!("{ha1}:{nonce}:{ha2}"))
    };
    let mut out = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, algorithm={}, response=\"{response}\"",
        quoted(input.user),
        quoted(realm),
        quoted(nonce),
        quoted(input.uri),
        if session { "MD5-sess" } else { "MD5" },
    );
    if qop_auth {
        let _ = write!(out, ", qop=auth, nc={nc}, cnonce={}", quoted(input.cnonce));
    }
    if let Some(opaque) = c.param("opaque") {
        let _ = write!(out, ", opaque={}", quoted(opaque));
    }
    Ok(out)
}

/// `s` as a quoted string (`"` and `\` escaped, control characters left
/// out: the header stays one line whatever a challenge held).
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn md5_hex(s: &str) -> String {
    let mut hex = String::with_capacity(32);
    for b in Md5::digest(s.as_bytes()) {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// The best answer to a 407's `challenges` for `input`: Digest when offered
/// (the password does not cross the wire), else Basic; Basic too when the
/// proxy named no scheme at all. `None` when it offers only schemes this
/// client does not speak (NTLM, Negotiate…).
pub fn answer_challenges(
    challenges: &[Challenge],
    input: &DigestInput<'_>,
) -> Option<Result<String, ProxyError>> {
    // RFC 7616 §3.7: a proxy may offer Digest once per algorithm, the
    // preferred first; the first one this client can answer is taken.
    let mut failed = None;
    for c in challenges.iter().filter(|c| c.is("Digest")) {
        match digest_authorization(c, input) {
            Ok(answer) => return Some(Ok(answer)),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    if let Some(e) = failed
        && !challenges.iter().any(|c| c.is("Basic"))
    {
        return Some(Err(e));
    }
    if challenges.is_empty() || challenges.iter().any(|c| c.is("Basic")) {
        return Some(Ok(basic_authorization(input.user, input.password)));
    }
    None
}

/// Standard base64 with padding (RFC 4648), for Basic credentials.
pub fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
