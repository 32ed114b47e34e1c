//! Value parsers and checks for the `chat`/`broker` flags: sizes within a
//! range, and `[ADDR] PORT`.

use std::net::{SocketAddr, ToSocketAddrs};

use crate::exit::{UsageContext, usage};

/// `--max-line`: 1 byte to 16 MiB (each client may hold one partial line).
pub const MAX_LINE: (u64, u64) = (1, 16 << 20);
/// `--queue-limit`: 1 KiB to 1 GiB.
pub const QUEUE_LIMIT: (u64, u64) = (1 << 10, 1 << 30);
/// `--queue-ceiling`: 1 KiB to 4 GiB.
pub const QUEUE_CEILING: (u64, u64) = (1 << 10, 4 << 30);

/// A byte count or rate for the chat and broker flags (`8192`, `8k`,
/// `8KiB`, `1MiB`): [`crate::input::size`], the parser `hexdump -s/-n`
/// uses, with "too large" for numbers past the largest integer.
pub fn parse_size(s: &str) -> Result<usize, String> {
    sized(s, 0, u64::MAX)
}

/// `--max-line`.
pub fn max_line(s: &str) -> Result<usize, String> {
    sized(s, MAX_LINE.0, MAX_LINE.1)
}

/// `--queue-limit`.
pub fn queue_limit(s: &str) -> Result<usize, String> {
    sized(s, QUEUE_LIMIT.0, QUEUE_LIMIT.1)
}

/// `--queue-ceiling`.
pub fn queue_ceiling(s: &str) -> Result<usize, String> {
    sized(s, QUEUE_CEILING.0, QUEUE_CEILING.1)
}

/// A size between `min` and `max`; out of range, the error gives the range.
fn sized(s: &str, min: u64, max: u64) -> Result<usize, String> {
    let range = || {
        if max == u64::MAX {
            String::new()
        } else {
            format!(": the valid range is {} to {}", show(min), show(max))
        }
    };
    let n = match crate::input::size(s) {
        Ok(n) => n,
        Err(_) if past_u64(s) => return Err(format!("{s:?} is too large{}", range())),
        Err(e) => return Err(e),
    };
    if n > max {
        return Err(format!("{s:?} ({}) is too large{}", show(n), range()));
    }
    if n < min {
        return Err(format!("{s:?} is too small{}", range()));
    }
    usize::try_from(n).map_err(|_| format!("{s:?} is too large for this machine"))
}

/// True for a decimal number (with or without a unit) too large for any
/// integer type: `99999999999999999999`.
fn past_u64(s: &str) -> bool {
    let digits = s.trim().trim_end_matches(|c: char| c.is_ascii_alphabetic());
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.parse::<u64>().is_err()
}

/// `16777216` → `16 MiB`, `1` → `1 byte`.
fn show(n: u64) -> String {
    let units = [
        ("EiB", 1u64 << 60),
        ("PiB", 1 << 50),
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (unit, size) in units {
        if n >= size && n.is_multiple_of(size) {
            return format!("{} {unit}", n / size);
        }
    }
    if n == 1 {
        "1 byte".to_owned()
    } else {
        format!("{n} bytes")
    }
}

/// `[ADDR] PORT` → the address to bind, plus an IPv4 fallback when no
/// address was given (for hosts without IPv6).
pub fn parse_listen(v: &[String]) -> anyhow::Result<(SocketAddr, Option<SocketAddr>)> {
    let (host, port) = match v {
        [port] => (None, port),
        [host, port] => (Some(host.as_str()), port),
        _ => return Err(usage("give [ADDR] PORT")),
    };
    let port: u16 = port
        .parse()
        .usage_err(format!("{port:?} is not a port number (0-65535)"))?;
    let Some(host) = host else {
        return Ok((
            SocketAddr::from(([0u16; 8], port)),
            Some(SocketAddr::from(([0u8; 4], port))),
        ));
    };
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let addr = (bare, port)
        .to_socket_addrs()
        .usage_err(format!("cannot resolve listen address {host:?}"))?
        .next()
        .ok_or_else(|| usage(format!("{host:?} has no address")))?;
    Ok((addr, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8192"), Ok(8192));
        assert_eq!(parse_size("8KiB"), Ok(8192));
        assert_eq!(parse_size("8k"), Ok(8192));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert!(parse_size("1.5M").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("9999999999999G").is_err());
    }

    /// Regression: `--max-line 99999999999999999999` said "is not a size"
    /// and `--max-line 1E` (1 EiB) was accepted.
    #[test]
    fn max_line_out_of_range_says_too_large_with_the_range() {
        assert_eq!(
            max_line("99999999999999999999"),
            Err(
                "\"99999999999999999999\" is too large: the valid range is 1 byte to 16 MiB".into()
            )
        );
        assert_eq!(
            max_line("1E"),
            Err("\"1E\" (1 EiB) is too large: the valid range is 1 byte to 16 MiB".into())
        );
        assert_eq!(
            max_line("0"),
            Err("\"0\" is too small: the valid range is 1 byte to 16 MiB".into())
        );
        assert_eq!(max_line("16MiB"), Ok(16 << 20));
        assert!(max_line("lots").unwrap_err().contains("is not a size"));
        assert!(
            parse_size("99999999999999999999")
                .unwrap_err()
                .ends_with("is too large")
        );
        assert!(queue_limit("2GiB").unwrap_err().contains("1 KiB to 1 GiB"));
    }

    #[test]
    fn listen_args() {
        let (a, f) = parse_listen(&["7000".into()]).unwrap();
        assert_eq!(a.to_string(), "[::]:7000");
        assert_eq!(f.unwrap().to_string(), "0.0.0.0:7000");
        let (a, f) = parse_listen(&["127.0.0.1".into(), "0".into()]).unwrap();
        assert_eq!(a.to_string(), "127.0.0.1:0");
        assert!(f.is_none());
        let (a, _) = parse_listen(&["[::1]".into(), "80".into()]).unwrap();
        assert_eq!(a.to_string(), "[::1]:80");
        assert!(parse_listen(&["70000".into()]).is_err());
    }
}
