//! What a finished relay exits with, and the flag hints the library's
//! messages leave out (they name no flag).

use sockbox::net::proxy::ProxyError;
use sockbox::net::{AddrError, ConnectError, Family};
use sockbox::relay::{Outcome, RelayError, Report};
use sockbox::tls::TlsError;
use sockbox_wire::proxy::ProxyError as WireProxyError;

use crate::exit::{PARTIAL, SUCCESS, usage};

/// Where a relay's "why it was not a success" line goes: standard error for
/// the client, the log for a server (a daemon's standard error is its log
/// file or nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Say {
    /// `sockbox: …` on standard error.
    Stderr,
    /// A warning through tracing.
    Log,
}

impl Say {
    fn say(self, msg: &str) {
        match self {
            Self::Stderr => crate::output::errln!("sockbox: {msg}"),
            Self::Log => tracing::warn!("{msg}"),
        }
    }
}

/// The exit code for a finished relay, saying why when it is not 0.
pub fn finish(result: Result<Report, RelayError>, say: Say) -> anyhow::Result<u8> {
    match result {
        Ok(r) => match r.outcome {
            Outcome::Idle(d) => {
                say.say(&format!(
                    "no data for {} (-i): connection closed after {} bytes sent and {} received",
                    humantime::format_duration(d),
                    r.sent,
                    r.received
                ));
                Ok(PARTIAL)
            }
            Outcome::Done | Outcome::Quit | Outcome::Stopped | Outcome::OutputClosed => Ok(SUCCESS),
        },
        Err(e) => relay_error(e, say),
    }
}

/// Map a relay error: peer trouble exits 1, said where `say` says; bad
/// input 2; anything else is a system failure (3). Flag hints are added
/// here: the library's messages name no flag.
pub fn relay_error(e: RelayError, say: Say) -> anyhow::Result<u8> {
    match e {
        RelayError::Reset { .. }
        | RelayError::ResetAtOnce
        | RelayError::Unreachable(_)
        | RelayError::Recv { .. }
        | RelayError::Send { .. }
        | RelayError::Tls(TlsError::Handshake { .. })
        | RelayError::TlsTimeout(_) => {
            say.say(&with_tls_hint(&e));
            Ok(PARTIAL)
        }
        RelayError::Connect(c) => connect_error(c, say),
        RelayError::UnixConnect { .. } => {
            say.say(&e.to_string());
            Ok(PARTIAL)
        }
        RelayError::Addr(a) => Err(addr_error(&a)),
        RelayError::Tls(_)
        | RelayError::Acl(_)
        | RelayError::Dump { .. }
        | RelayError::Exec { .. }
        | RelayError::UnixBind { in_use: false, .. } => Err(usage(e.to_string())),
        other => Err(anyhow::Error::new(other)),
    }
}

/// The error's text, with the flags that answer a refused server
/// certificate when that is what it is.
fn with_tls_hint(e: &(dyn std::error::Error + 'static)) -> String {
    format!("{e}{}", crate::exit::tls_flag_hint(e).unwrap_or(""))
}

/// Connecting failed: the server's fault exits 1, the input's 2.
fn connect_error(e: ConnectError, say: Say) -> anyhow::Result<u8> {
    match e {
        ConnectError::Addr(a) => Err(addr_error(&a)),
        ConnectError::Proxy {
            source: ProxyError::Protocol(WireProxyError::HttpAuthRequired { .. }),
            ..
        } => {
            say.say(&format!("{e} (give them with --proxy-auth USER:PASS)"));
            Ok(PARTIAL)
        }
        ConnectError::Proxy {
            source: source @ (ProxyError::Unresolved(_) | ProxyError::NameGiven(_)),
            ..
        } => Err(usage(format!("{source} (see --proxy-dns)"))),
        ConnectError::Proxy {
            source: ProxyError::CredentialsRefused,
            ..
        } => {
            say.say(&format!("{e} (check --proxy-auth)"));
            Ok(PARTIAL)
        }
        ConnectError::Tls(TlsError::Handshake { .. })
        | ConnectError::Connect { .. }
        | ConnectError::TlsTimeout { .. }
        | ConnectError::Proxy { .. }
        | ConnectError::GaveUp { .. } => {
            say.say(&with_tls_hint(&e));
            Ok(PARTIAL)
        }
        ConnectError::Timeout { .. } | ConnectError::ProxyTimeout { .. } => {
            say.say(&format!("{e} (raise -w to wait longer)"));
            Ok(PARTIAL)
        }
        ConnectError::Tls(t) => Err(usage(t.to_string())),
        ConnectError::Stopped => Ok(SUCCESS),
    }
}

/// A host that gave no usable address is the input's fault (exit 2).
pub fn addr_error(e: &AddrError) -> anyhow::Error {
    match e {
        AddrError::NoAddress {
            family: Family::V4 | Family::V6,
            ..
        } => usage(format!("{e} (drop -4/-6 or use another name)")),
        _ => usage(e.to_string()),
    }
}
