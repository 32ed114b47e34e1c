//! IEEE 754 binary16 ("half") conversions for the struct `e` code, with
//! round-to-nearest-even and an overflow check (no `half` dependency).

/// `x` as binary16 bits, rounded to nearest, ties to even. `None` when a
/// finite `x` is too large for binary16 (|x| >= 65520), like Python's
/// `struct.pack('e', …)` raising `OverflowError`.
pub fn f64_to_f16(x: f64) -> Option<u16> {
    let bits = x.to_bits();
    let sign = ((bits >> 48) & 0x8000) as u16;
    if x.is_nan() {
        return Some(sign | 0x7e00);
    }
    if x.is_infinite() {
        return Some(sign | 0x7c00);
    }
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Zero or an f64 subnormal: far below the smallest binary16.
        return Some(sign);
    }
    let e = biased - 1023;
    // 53-bit significand with the hidden bit: value = m * 2^(e - 52).
    let m = (bits & ((1 << 52) - 1)) | (1 << 52);
    if e < -25 {
        // Below half the smallest subnormal (2^-25): rounds to zero.
        return Some(sign);
    }
    let (shift, normal) = if e >= -14 {
        (42, true)
    } else {
        (28 - e, false)
    };
    let shift = shift as u32;
    let mut q = m >> shift;
    let rem = m & ((1u64 << shift) - 1);
    let half = 1u64 << (shift - 1);
    if rem > half || (rem == half && q & 1 == 1) {
        q += 1;
    }
    if normal {
        let mut e = e;
        if q == 1 << 11 {
            q >>= 1;
            e += 1;
        }
        if e > 15 {
            return None;
        }
        Some(sign | (((e + 15) as u16) << 10) | (q as u16 & 0x3ff))
    } else {
        // Subnormal; rounding up to 0x400 lands exactly on the smallest normal.
        Some(sign | q as u16)
    }
}

/// The value of binary16 `h` (exact).
pub fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN.copysign(sign),
        _ => sign * (1.0 + frac / 1024.0) * 2f64.powi(exp - 15),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(f64_to_f16(0.0), Some(0));
        assert_eq!(f64_to_f16(-0.0), Some(0x8000));
        assert_eq!(f64_to_f16(1.0), Some(0x3c00));
        assert_eq!(f64_to_f16(-2.0), Some(0xc000));
        assert_eq!(f64_to_f16(65504.0), Some(0x7bff));
        assert_eq!(f64_to_f16(0.1), Some(0x2e66));
        assert_eq!(f64_to_f16(2f64.powi(-24)), Some(1));
        assert_eq!(f64_to_f16(2f64.powi(-14)), Some(0x0400));
        assert_eq!(f64_to_f16(f64::INFINITY), Some(0x7c00));
        assert_eq!(f64_to_f16(f64::NAN).map(|b| b & 0x7e00), Some(0x7e00));
    }

    #[test]
    fn rounding_ties_to_even_and_overflow() {
        // 2^-25 is exactly half the smallest subnormal: ties to even (0).
        assert_eq!(f64_to_f16(2f64.powi(-25)), Some(0));
        assert_eq!(f64_to_f16(2f64.powi(-25) * 1.5), Some(1));
        // 1 + 2^-11 is halfway between 1 and the next half: ties to even (1).
        assert_eq!(f64_to_f16(1.0 + 2f64.powi(-11)), Some(0x3c00));
        assert_eq!(f64_to_f16(1.0 + 3.0 * 2f64.powi(-11)), Some(0x3c02));
        // 65519.99 rounds to 65504, 65520 rounds to infinity: overflow.
        assert_eq!(f64_to_f16(65519.0), Some(0x7bff));
        assert_eq!(f64_to_f16(65520.0), None);
        assert_eq!(f64_to_f16(-1e10), None);
    }

    #[test]
    fn every_half_round_trips() {
        for h in 0..=u16::MAX {
            let v = f16_to_f64(h);
            if v.is_nan() {
                continue;
            }
            assert_eq!(f64_to_f16(v), Some(h), "{h:#06x} -> {v}");
        }
    }
}
