//! Numbers as the Go client writes them: `strconv.FormatFloat(v, 'g', -1,
//! 64)` (shortest digits; exponent form below 1e-4 and from 1e6) with its
//! special cases, and counts with a fast path for small integers.

use std::io::Write as _;

/// Append `v` as Go's `FormatFloat(v, 'g', -1, 64)` writes it, with the Go
/// client's special cases (`+Inf`, `-Inf`, `NaN`).
pub fn go_float(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
        return;
    }
    if v == 0.0 {
        out.push(b'0');
        return;
    }
    if v.fract() == 0.0 && v.abs() < 9e15 {
        go_int(out, v as i64);
        return;
    }
    // Shortest round-trip digits, as "d.ddde±x".
    let mut tmp = [0u8; 40];
    let mut cur = &mut tmp[..];
    if write!(cur, "{v:e}").is_err() {
        return;
    }
    let len = 40 - cur.len();
    let text = &tmp[..len];
    let (neg, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let e_at = text.iter().position(|&c| c == b'e').unwrap_or(text.len());
    let digits: Vec<u8> = text[..e_at]
        .iter()
        .copied()
        .filter(u8::is_ascii_digit)
        .collect();
    let exp: i32 = std::str::from_utf8(text.get(e_at + 1..).unwrap_or(b"0"))
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if neg {
        out.push(b'-');
    }
    write_digits(out, &digits, exp);
}

/// Go's choice for shortest `%g`: exponent form below 1e-4 or from 1e6.
/// `digits` hold d0 d1 d2… of d0.d1d2… × 10^exp.
fn write_digits(out: &mut Vec<u8>, digits: &[u8], exp: i32) {
    if !(-4..6).contains(&exp) {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push(b'0');
        }
        let _ = write!(out, "{e}");
        return;
    }
    let dp = exp + 1; // digits before the point
    if dp <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-dp) as usize));
        out.extend_from_slice(digits);
        return;
    }
    let dp = dp as usize;
    if digits.len() <= dp {
        out.extend_from_slice(digits);
        out.extend(std::iter::repeat_n(b'0', dp - digits.len()));
    } else {
        out.extend_from_slice(&digits[..dp]);
        out.push(b'.');
        out.extend_from_slice(&digits[dp..]);
    }
}

/// An integer (below 2^53 in size, so its decimal digits are the shortest
/// ones) as Go's shortest `%g` writes it: plain below 10^6, else
/// `d.ddde+XX`.
fn go_int(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    let a = v.unsigned_abs();
    if a < 1_000_000 {
        push_u64(out, a);
        return;
    }
    let mut digits = Vec::with_capacity(20);
    push_u64(&mut digits, a);
    let exp = digits.len() as i32 - 1;
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    write_digits(out, &digits, exp);
}

/// Decimal digits of `v`.
fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// A count, as the Go client writes a counter or histogram value.
pub(super) fn push_count(out: &mut Vec<u8>, v: u64) {
    if v < 1_000_000 {
        push_u64(out, v);
    } else {
        go_float(out, v as f64);
    }
}
