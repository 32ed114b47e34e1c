//! From flags to settings, before any socket exists: which style, the
//! engine's configuration, socket options, output options. Every value
//! is checked here and a bad one is a usage error naming it and its range.

use std::net::IpAddr;
use std::time::Duration;

use sockbox::ping::targets::FamilyPref;
use sockbox::ping::{Mode, PingConfig, SocketChoice, SocketOptions};

use super::opts::Opts;
use crate::exit::usage;

/// The longest any duration flag may be.
pub const MAX_DURATION: Duration = crate::input::MAX_DURATION;

/// fping's `-t` default with -c/-C/-l: the period, at most this.
const AUTOTUNE_TIMEOUT_MAX: Duration = Duration::from_secs(2);

/// How targets are shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Names {
    /// -n: reverse-DNS names for targets given as addresses.
    pub rdns_addrs: bool,
    /// -d: reverse-DNS names for every target.
    pub rdns_all: bool,
    /// -A: by address ("name (address)" with -n/-d).
    pub show_addr: bool,
}

/// What to print, beyond the style.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    pub quiet: bool,
    pub alive: bool,
    pub unreachable: bool,
    pub elapsed: bool,
    pub timestamp: bool,
    pub outage: bool,
    pub stats: bool,
    pub columns: bool,
    pub squiet: Option<Duration>,
    pub netdata: bool,
    /// -x / -X: (how many, stop when reached).
    pub reachable: Option<(u32, bool)>,
    pub verbose: bool,
}

/// Everything decided from the flags.
#[derive(Debug, Clone)]
pub struct Plan {
    /// fping style (output and exit codes), else iputils ping style.
    pub fping: bool,
    pub json: bool,
    pub cfg: PingConfig,
    pub opts: SocketOptions,
    pub choice: SocketChoice,
    pub pref: FamilyPref,
    pub names: Names,
    pub out: Output,
}

/// A duration flag: with a unit via humantime, bare numbers in `bare`
/// units; at most [`MAX_DURATION`].
pub fn parse_duration(flag: &str, s: &str, bare: Duration) -> anyhow::Result<Duration> {
    let t = s.trim();
    let too_long = || {
        usage(format!(
            "{flag} {s:?}: out of range (0 to {}; e.g. 10ms, 1.5s, 2h)",
            humantime::format_duration(MAX_DURATION)
        ))
    };
    let d = if let Ok(v) = t.parse::<f64>() {
        if !v.is_finite() || v < 0.0 {
            return Err(too_long());
        }
        let secs = v * bare.as_secs_f64();
        if secs > MAX_DURATION.as_secs_f64() {
            return Err(too_long());
        }
        Duration::from_secs_f64(secs)
    } else {
        humantime::parse_duration(t).map_err(|e| {
            usage(format!(
                "{flag} {s:?}: {e} (use e.g. 10ms, 1.5s or a bare number)"
            ))
        })?
    };
    if d > MAX_DURATION {
        return Err(too_long());
    }
    Ok(d)
}

/// The `-O` value: decimal or 0x hex, 0 to 255.
fn parse_tos(s: &str) -> anyhow::Result<u8> {
    let t = s.trim();
    let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => t.parse::<u32>().ok(),
    };
    v.and_then(|v| u8::try_from(v).ok()).ok_or_else(|| {
        usage(format!(
            "-O {s:?}: the type of service is 0 to 255 (or 0x00 to 0xff)"
        ))
    })
}

fn check_ttl(flag: &str, ttl: Option<u32>) -> anyhow::Result<Option<u32>> {
    match ttl {
        Some(t) if !(1..=255).contains(&t) => Err(usage(format!(
            "{flag} {t}: the TTL / hop limit is 1 to 255"
        ))),
        t => Ok(t),
    }
}

/// `-I`: an address to send from, or an interface that exists.
fn interface(opts: &mut SocketOptions, i: &str) -> anyhow::Result<()> {
    if let Ok(addr) = i.parse::<IpAddr>() {
        opts.source = Some(addr);
        return Ok(());
    }
    if i.is_empty() || i.len() > 15 || nix::net::if_::if_nametoindex(i).is_err() {
        return Err(usage(format!(
            "-I {i:?}: no such interface, and not an IP address (see `sockbox ifaces`)"
        )));
    }
    opts.device = Some(i.to_owned());
    Ok(())
}

fn mode(a: &Opts, fping: bool) -> anyhow::Result<Mode> {
    let retries = a.retries.unwrap_or(3);
    if retries > 1000 {
        return Err(usage(format!("-r {retries}: at most 1000 retries")));
    }
    let backoff = a.backoff.unwrap_or(1.5);
    if !(1.0..=5.0).contains(&backoff) {
        return Err(usage(format!(
            "-B {backoff:?}: the backoff factor is 1.0 to 5.0"
        )));
    }
    Ok(match (a.count.or(a.vcount), a.looping, fping) {
        (Some(0), _, _) => return Err(usage("-c/-C 0: the count must be at least 1")),
        (Some(n), _, _) => Mode::Count(n),
        (None, true, _) | (None, false, false) => Mode::Forever,
        (None, false, true) => Mode::Alive { retries, backoff },
    })
}

/// Interval, period and timeout.
fn timing(a: &Opts, fping: bool, m: Mode) -> anyhow::Result<(Duration, Duration, Duration)> {
    let (secs, millis) = (Duration::from_secs(1), Duration::from_millis(1));
    let (bare_i, default_i) = if fping {
        (millis, Duration::from_millis(10))
    } else {
        (secs, secs)
    };
    let interval = match (&a.interval, a.rate) {
        (Some(s), _) => parse_duration("-i", s, bare_i)?,
        (None, Some(pps)) if pps.is_finite() && pps >= 1.0 / MAX_DURATION.as_secs_f64() => {
            Duration::from_secs_f64(1.0 / pps)
        }
        (None, Some(pps)) => {
            return Err(usage(format!("--rate {pps}: must be a number above zero")));
        }
        (None, None) => default_i,
    };
    let period = match &a.period {
        Some(s) => parse_duration("-p", s, millis)?,
        None if fping => secs,
        None => interval,
    };
    let repeats = !matches!(m, Mode::Alive { .. } | Mode::Count(1));
    if repeats && period.is_zero() {
        return Err(usage(
            "-p 0: the period between probes to one target must be above zero",
        ));
    }
    // fping: with -c/-C/-l (even -c 1) the timeout is the period, at most
    // 2000ms; 500ms until alive.
    let counted = !matches!(m, Mode::Alive { .. });
    let timeout = match (&a.timeout, &a.fping_timeout) {
        (Some(s), _) => parse_duration("-W", s, secs)?,
        (None, Some(s)) => parse_duration("-t", s, millis)?,
        (None, None) if fping && counted => period.min(AUTOTUNE_TIMEOUT_MAX),
        (None, None) if fping => Duration::from_millis(500),
        (None, None) => Duration::from_secs(10),
    };
    Ok((interval, period, timeout))
}

fn socket_options(a: &Opts, size: usize) -> anyhow::Result<(SocketOptions, SocketChoice)> {
    let ttl = check_ttl("--ttl", a.ttl)?.or(check_ttl("-H", a.fping_ttl)?);
    let mut opts = SocketOptions {
        ttl,
        // Big buffers so a fast sweep loses no replies.
        recv_buffer: 8 << 20,
        send_buffer: 1 << 20,
        // DF on probes that fit any path: saves the kernel an IP ID each.
        dont_fragment: a.dontfrag || size + 28 <= 576,
        tos: a.tos.as_deref().map(parse_tos).transpose()?,
        ..SocketOptions::default()
    };
    if let Some(i) = &a.interface {
        interface(&mut opts, i)?;
    }
    if let Some(s) = &a.source {
        let addr = s
            .parse::<IpAddr>()
            .map_err(|_| usage(format!("-S {s:?}: not an IP address")))?;
        opts.source = Some(addr);
    }
    let choice = match a.socket.as_str() {
        "dgram" => SocketChoice::Dgram,
        "raw" => SocketChoice::Raw,
        _ => SocketChoice::Auto,
    };
    Ok((opts, choice))
}

fn output(a: &Opts) -> anyhow::Result<Output> {
    if a.alive && a.unreachable {
        return Err(usage("-a and -u: give only one of them"));
    }
    let squiet = a
        .squiet
        .as_deref()
        .map(|s| parse_duration("-Q", s, Duration::from_secs(1)))
        .transpose()?;
    if let Some(d) = squiet
        && d < Duration::from_millis(10)
    {
        return Err(usage(format!(
            "-Q {}: the report interval must be 10ms or more",
            humantime::format_duration(d)
        )));
    }
    if a.netdata && !(a.looping && squiet.is_some()) {
        return Err(usage("-N: netdata output needs -l and -Q SECS"));
    }
    let reachable = match (a.reachable, a.fast_reachable) {
        (Some(0), _) | (_, Some(0)) => return Err(usage("-x/-X 0: give at least 1")),
        (Some(n), _) => Some((n, false)),
        (_, Some(n)) => Some((n, true)),
        _ => None,
    };
    Ok(Output {
        quiet: a.quiet || squiet.is_some(),
        alive: a.alive,
        unreachable: a.unreachable,
        elapsed: a.elapsed,
        timestamp: a.timestamp,
        outage: a.outage,
        stats: a.stats,
        columns: a.vcount.is_some(),
        squiet,
        netdata: a.netdata,
        reachable,
        verbose: a.verbose,
    })
}

/// Decide everything. `fping` is the style (see [`super::style`]).
pub fn plan(a: &Opts, fping: bool) -> anyhow::Result<Plan> {
    let size = a.size.or(a.fping_size).unwrap_or(56);
    if !(sockbox::ping::probe::ID_LEN..=65_000).contains(&size) {
        let flag = if a.fping_size.is_some() { "-b" } else { "-s" };
        return Err(usage(format!(
            "{flag} {size}: the payload is 12 to 65000 bytes (the first 12 carry the probe id)"
        )));
    }
    let m = mode(a, fping)?;
    let (interval, period, timeout) = timing(a, fping, m)?;
    let deadline = a
        .deadline
        .as_deref()
        .map(|s| parse_duration("-w", s, Duration::from_secs(1)))
        .transpose()?;
    let (opts, choice) = socket_options(a, size)?;
    let pref = if a.ipv4 {
        FamilyPref::V4
    } else if a.ipv6 {
        FamilyPref::V6
    } else {
        FamilyPref::Any
    };
    Ok(Plan {
        fping,
        json: a.json,
        cfg: PingConfig {
            mode: m,
            interval,
            period,
            timeout,
            payload_len: size,
            deadline,
            random_payload: a.random,
            ..PingConfig::default()
        },
        opts,
        choice,
        pref,
        names: Names {
            rdns_addrs: a.name && fping,
            rdns_all: a.rdns,
            show_addr: a.addr,
        },
        out: output(a)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_duration_flag_has_the_same_upper_bound() {
        for (flag, s) in [
            ("-W", "99999y"),
            ("-w", "366days"),
            ("-i", "40000000"),
            ("-Q", "1e308"),
        ] {
            let e = parse_duration(flag, s, Duration::from_secs(1)).unwrap_err();
            assert!(e.to_string().contains("out of range"), "{flag} {s}: {e}");
        }
        for s in ["nan", "-1", "inf"] {
            assert!(
                parse_duration("-t", s, Duration::from_millis(1)).is_err(),
                "{s}"
            );
        }
        assert_eq!(
            parse_duration("-w", "365days", Duration::from_secs(1)).unwrap(),
            MAX_DURATION
        );
        assert_eq!(
            parse_duration("-t", "250", Duration::from_millis(1)).unwrap(),
            Duration::from_millis(250)
        );
    }

    /// fping: with -c/-C (even -c 1) and no -t, the timeout is the period
    /// (at most 2 s); until alive it is 500ms.
    #[test]
    fn counted_runs_time_out_after_the_period() {
        #[derive(clap::Parser)]
        struct W {
            #[command(flatten)]
            o: Opts,
        }
        let timeout = |args: &[&str], m: Mode| {
            let w = <W as clap::Parser>::try_parse_from(
                std::iter::once("ping").chain(args.iter().copied()),
            )
            .unwrap();
            timing(&w.o, true, m).unwrap().2
        };
        let c1 = timeout(&["-c", "1", "127.0.0.1"], Mode::Count(1));
        assert_eq!(c1, Duration::from_secs(1));
        let p3 = timeout(&["-C", "2", "-p", "3000", "127.0.0.1"], Mode::Count(2));
        assert_eq!(p3, Duration::from_secs(2));
        let alive = Mode::Alive {
            retries: 3,
            backoff: 1.5,
        };
        assert_eq!(timeout(&["127.0.0.1"], alive), Duration::from_millis(500));
    }

    #[test]
    fn tos_accepts_decimal_and_hex() {
        assert_eq!(parse_tos("16").unwrap(), 16);
        assert_eq!(parse_tos("0x10").unwrap(), 16);
        assert!(parse_tos("256").is_err());
        assert!(parse_tos("x").is_err());
    }
}
