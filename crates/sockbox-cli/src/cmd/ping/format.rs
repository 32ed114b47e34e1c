//! Number formats of ping and fping output.

use std::time::Duration;

/// iputils' time format: 3 decimals below 1 ms, 2 below 10, 1 below 100.
pub fn ping_ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 99.95 {
        format!("{ms:.0}")
    } else if ms >= 9.995 {
        format!("{ms:.1}")
    } else if ms >= 1.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.3}")
    }
}

/// fping's time format (`sprint_tm`): 3 decimals below 1 ms, 2 below 10,
/// 1 below 100, none below 10^6, then `%.3e`.
pub fn fping_ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{ms:.3}")
    } else if ms < 10.0 {
        format!("{ms:.2}")
    } else if ms < 100.0 {
        format!("{ms:.1}")
    } else if ms < 1_000_000.0 {
        format!("{ms:.0}")
    } else {
        format!("{ms:.3e}")
    }
}

/// Seconds since the Unix epoch of the moment `at` (a monotonic instant
/// near now), for -D.
pub fn epoch_secs(at: tokio::time::Instant) -> f64 {
    let ago = tokio::time::Instant::now().saturating_duration_since(at);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.saturating_sub(ago).as_secs_f64()
}

/// fping's integer loss percentage: `(sent - received) * 100 / sent`,
/// truncated.
pub fn fping_loss(sent: u32, received: u32) -> u64 {
    if sent == 0 {
        return 0;
    }
    u64::from(sent.saturating_sub(received)) * 100 / u64::from(sent)
}

pub fn ms3(d: Option<Duration>) -> String {
    d.map_or_else(
        || "NaN".into(),
        |d| format!("{:.3}", d.as_secs_f64() * 1000.0),
    )
}

pub fn ms_f(d: Option<Duration>) -> Option<f64> {
    d.map(|d| (d.as_secs_f64() * 1e6).round() / 1000.0)
}

/// C's `%g` for a loss percentage (up to 6 significant digits, no
/// trailing zeros), as iputils prints it.
pub fn pct(v: f64) -> String {
    if v.fract().abs() < 1e-9 {
        return format!("{v:.0}");
    }
    let digits = 6 - (v.abs().log10().floor() as i32 + 1);
    let s = format!("{v:.*}", digits.clamp(0, 6) as usize);
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iputils_time_format() {
        assert_eq!(ping_ms(Duration::from_micros(45)), "0.045");
        assert_eq!(ping_ms(Duration::from_micros(1_234)), "1.23");
        assert_eq!(ping_ms(Duration::from_micros(20_340)), "20.3");
        assert_eq!(ping_ms(Duration::from_micros(123_400)), "123");
    }

    #[test]
    fn fping_time_format() {
        assert_eq!(fping_ms(Duration::from_micros(18)), "0.018");
        assert_eq!(fping_ms(Duration::from_micros(1_234)), "1.23");
        assert_eq!(fping_ms(Duration::from_micros(20_340)), "20.3");
        assert_eq!(fping_ms(Duration::from_micros(123_400)), "123");
        assert_eq!(fping_loss(3, 1), 66);
        assert_eq!(fping_loss(0, 0), 0);
    }

    #[test]
    fn percent_like_printf_g() {
        assert_eq!(pct(0.0), "0");
        assert_eq!(pct(100.0), "100");
        assert_eq!(pct(100.0 / 3.0), "33.3333");
        assert_eq!(pct(12.5), "12.5");
    }
}
