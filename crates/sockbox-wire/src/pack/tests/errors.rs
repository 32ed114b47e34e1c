//! Errors: unknown codes, bad counts, values that do not fit, missing or
//! extra values, bad strings and hex, short data; each names what is wrong.
#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn parse_errors_name_code_and_position() {
    let e = Format::parse("nCy").unwrap_err();
    assert!(
        matches!(
            e,
            Error::UnknownCode {
                code: 'y',
                pos: 2,
                dialect: Dialect::Php
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("'y' at position 2"), "{e}");
    let e = Format::parse("<hk").unwrap_err();
    assert!(matches!(
        e,
        Error::UnknownCode {
            code: 'k',
            pos: 2,
            dialect: Dialect::Struct
        }
    ));
    assert!(matches!(
        Format::parse("<n").unwrap_err(),
        Error::NativeOnly { code: 'n', pos: 1 }
    ));
    assert!(matches!(
        Format::parse("H3").unwrap_err(),
        Error::BadCount { code: 'H', .. }
    ));
    assert!(matches!(
        Format::parse("H").unwrap_err(),
        Error::BadCount { code: 'H', .. }
    ));
    assert!(matches!(
        Format::parse("x*").unwrap_err(),
        Error::BadCount { code: 'x', .. }
    ));
    assert!(matches!(
        Format::parse("<3").unwrap_err(),
        Error::BadCount { .. }
    ));
    assert!(matches!(
        Format::parse("<h*").unwrap_err(),
        Error::BadCount { code: '*', .. }
    ));
    assert!(matches!(
        Format::parse("C99999999999999999999999").unwrap_err(),
        Error::BadCount {
            code: 'C',
            pos: 0,
            ..
        }
    ));
}

/// Regression: a non-ASCII space (U+00A0, U+3000, U+0085) in a format made
/// the whitespace skipper step into the middle of the character and panic.
#[test]
fn non_ascii_space_in_format_is_an_unknown_code_not_a_panic() {
    for (fmt, code, pos) in [
        ("C\u{a0}C", '\u{a0}', 1),
        ("<h\u{3000}h", '\u{3000}', 2),
        ("n\u{85}", '\u{85}', 1),
    ] {
        let e = Format::parse(fmt).unwrap_err();
        assert!(
            matches!(e, Error::UnknownCode { code: c, pos: p, .. } if c == code && p == pos),
            "{fmt:?}: {e}"
        );
    }
    // ASCII whitespace, \v and \f included, is still skipped.
    assert_eq!(pack("C \t\n\r\x0b\x0cC", &[i(1), i(2)]).unwrap(), [1, 2]);
    assert_eq!(pack("< h h", &[i(1), i(2)]).unwrap(), [1, 0, 2, 0]);
}

#[test]
fn out_of_range_is_an_error_naming_value_and_code() {
    let e = pack("C", &[i(256)]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "value 256 does not fit code 'C' at position 0 (unsigned 8-bit: 0..=255)"
    );
    assert!(pack("c", &[i(128)]).is_err());
    assert!(pack("c", &[i(-129)]).is_err());
    assert!(pack("n", &[i(-1)]).is_err());
    assert!(pack("v", &[i(65536)]).is_err());
    assert!(pack("<h", &[i(32768)]).is_err());
    assert!(pack("N", &[i(1 << 32)]).is_err());
    assert!(pack("<q", &[i(i128::from(i64::MAX) + 1)]).is_err());
    assert!(pack("<Q", &[i(-1)]).is_err());
    assert!(pack("<?", &[i(2)]).is_err());
    assert!(matches!(
        pack("<e", &[Value::Float(70000.0)]),
        Err(Error::OutOfRange { code: 'e', .. })
    ));
    assert!(matches!(
        pack("<f", &[Value::Float(1e39)]),
        Err(Error::OutOfRange { code: 'f', .. })
    ));
    // Regression: the message spelled 1e300 out in 301 digits.
    assert_eq!(
        pack("<f", &[Value::Float(3.5e38)]).unwrap_err().to_string(),
        "value 3.5e38 does not fit code 'f' at position 1 (32-bit float: ±3.4028235e38)"
    );
    assert!(
        pack("<e", &[Value::Float(1e300)])
            .unwrap_err()
            .to_string()
            .starts_with("value 1e300 does not fit")
    );
    // Infinity itself is representable.
    assert_eq!(
        p("<f", &[Value::Float(f64::INFINITY)]),
        f32::INFINITY.to_le_bytes()
    );
}

#[test]
fn value_count_errors() {
    let e = pack("nn", &[i(1)]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::MissingValue {
                code: 'n',
                pos: 1,
                index: 2
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "code 'n' at position 1 needs value #2, but only 1 given"
    );
    let e = pack("n", &[i(1), i(2), i(3)]).unwrap_err();
    assert!(
        matches!(e, Error::TooManyValues { used: 1, extra: 2 }),
        "{e}"
    );
    let e = pack("n", &[b(b"x")]).unwrap_err();
    assert!(matches!(e, Error::WrongType { code: 'n', .. }), "{e}");
    assert!(matches!(pack("a3", &[i(1)]), Err(Error::WrongType { .. })));
    assert!(matches!(
        pack("H*", &[b(b"ab")]),
        Err(Error::WrongType { .. })
    ));
}

#[test]
fn string_and_hex_errors() {
    let e = pack("a2", &[b(b"abc")]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::StringLength {
                len: 3,
                code: 'a',
                ..
            }
        ),
        "{e}"
    );
    assert!(matches!(
        pack("Z3", &[b(b"abc")]),
        Err(Error::StringLength { .. })
    ));
    assert!(matches!(
        pack("<3p", &[b(b"abc")]),
        Err(Error::StringLength { .. })
    ));
    assert!(matches!(
        pack("<c", &[b(b"ab")]),
        Err(Error::StringLength { .. })
    ));
    let e = pack("H*", &[Value::Hex("abc".into())]).unwrap_err();
    assert!(matches!(e, Error::OddHex { digits: 3, .. }), "{e}");
    let e = pack("H4", &[Value::Hex("ab".into())]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::HexLength {
                want: 4,
                got: 2,
                ..
            }
        ),
        "{e}"
    );
    let e = pack("H*", &[Value::Hex("zz".into())]).unwrap_err();
    assert!(matches!(e, Error::BadHex { ch: 'z', at: 0, .. }), "{e}");
}

#[test]
fn unpack_errors() {
    let e = unpack("N", &[1, 2, 3]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "data too short: code 'N' at position 0 needs 4 byte(s) at offset 0, 3 left"
    );
    assert!(matches!(
        unpack("C/a3", &[1, 2]),
        Err(Error::TooShort {
            code: 'a',
            offset: 1,
            ..
        })
    ));
    assert!(matches!(
        unpack("X", &[1]),
        Err(Error::BackBeyondStart { .. })
    ));
    let f = Format::parse_as("@5", Dialect::Php).unwrap();
    assert!(matches!(f.unpack(&[1]), Err(Error::TooShort { .. })));
    assert!(matches!(
        unpack("C99999999999", &[1]),
        Err(Error::TooShort { .. })
    ));
    let f = Format::parse("<H").unwrap();
    assert!(matches!(
        f.unpack_exact(&[1, 2, 3]),
        Err(Error::Trailing {
            covered: 2,
            extra: 1
        })
    ));
    assert_eq!(f.unpack(&[1, 0, 3]).unwrap()[0].value, i(1));
}

#[test]
fn positioning_errors_and_size_cap() {
    assert!(matches!(pack("X", &[]), Err(Error::BackBeyondStart { .. })));
    assert!(matches!(
        pack("x99999999", &[]),
        Err(Error::TooLarge { .. })
    ));
    let f = Format::parse_as("@99999999", Dialect::Php).unwrap();
    assert!(matches!(f.pack(&[]), Err(Error::TooLarge { .. })));
    assert!(matches!(
        pack("a99999999", &[b(b"")]),
        Err(Error::TooLarge { .. })
    ));
}
