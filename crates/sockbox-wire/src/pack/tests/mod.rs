//! Tests for pack/unpack: byte fixtures for every code in both dialects;
//! every error is in `errors`, property tests that unpack(pack(x)) == x are
//! in `props`.
#![allow(clippy::unwrap_used, clippy::float_cmp)]

mod errors;
mod props;
mod stream;

use super::*;

fn p(fmt: &str, values: &[Value]) -> Vec<u8> {
    pack(fmt, values).unwrap_or_else(|e| panic!("pack {fmt:?}: {e}"))
}

fn pa(fmt: &str, args: &[&str]) -> Result<Vec<u8>, Error> {
    Format::parse(fmt)?.pack_args(args)
}

fn vals(fmt: &str, data: &[u8]) -> Vec<Value> {
    unpack(fmt, data)
        .unwrap_or_else(|e| panic!("unpack {fmt:?}: {e}"))
        .into_iter()
        .map(|e| e.value)
        .collect()
}

fn i(n: i128) -> Value {
    Value::Int(n)
}

fn b(s: &[u8]) -> Value {
    Value::Bytes(s.to_vec())
}

#[test]
fn seed_int2string_16705_is_aa() {
    assert_eq!(p("v", &[i(16705)]), b"AA");
    assert_eq!(p("<H", &[i(16705)]), b"AA");
    assert_eq!(pa("v", &["16705"]).unwrap(), b"AA");
}

#[test]
fn php_integer_codes() {
    assert_eq!(p("c", &[i(-1)]), [0xff]);
    assert_eq!(p("C", &[i(255)]), [0xff]);
    assert_eq!(p("n", &[i(0x0102)]), [1, 2]);
    assert_eq!(p("v", &[i(0x0102)]), [2, 1]);
    assert_eq!(p("N", &[i(0x0102_0304)]), [1, 2, 3, 4]);
    assert_eq!(p("V", &[i(0x0102_0304)]), [4, 3, 2, 1]);
    assert_eq!(
        p("J", &[i(0x0102_0304_0506_0708)]),
        [1, 2, 3, 4, 5, 6, 7, 8]
    );
    assert_eq!(
        p("P", &[i(0x0102_0304_0506_0708)]),
        [8, 7, 6, 5, 4, 3, 2, 1]
    );
    assert_eq!(p("Q", &[i(u64::MAX.into())]), [0xff; 8]);
    assert_eq!(p("q", &[i(i64::MIN.into())]).len(), 8);
    // Native order is the machine's; on little-endian hosts s/S/l/L/i/I are LE.
    if cfg!(target_endian = "little") {
        assert_eq!(p("s", &[i(-2)]), [0xfe, 0xff]);
        assert_eq!(p("S", &[i(258)]), [2, 1]);
        assert_eq!(p("l", &[i(-1)]), [0xff; 4]);
        assert_eq!(p("L", &[i(1)]), [1, 0, 0, 0]);
        assert_eq!(p("iI", &[i(1), i(2)]), [1, 0, 0, 0, 2, 0, 0, 0]);
    }
}

#[test]
fn php_counts_and_star() {
    assert_eq!(p("n2C", &[i(1), i(2), i(3)]), [0, 1, 0, 2, 3]);
    assert_eq!(p("C*", &[i(1), i(2), i(3)]), [1, 2, 3]);
    assert_eq!(p("nC*", &[i(1)]), [0, 1]);
    assert_eq!(p("n0C", &[i(7)]), [7]);
    assert_eq!(vals("C*", &[1, 2, 3]), [i(1), i(2), i(3)]);
    assert_eq!(vals("n*", &[0, 1, 0, 2, 9]), [i(1), i(2)]);
}

#[test]
fn php_floats() {
    assert_eq!(p("g", &[Value::Float(1.5)]), 1.5f32.to_le_bytes());
    assert_eq!(p("G", &[Value::Float(1.5)]), 1.5f32.to_be_bytes());
    assert_eq!(p("e", &[Value::Float(0.1)]), 0.1f64.to_le_bytes());
    assert_eq!(p("E", &[Value::Float(0.1)]), 0.1f64.to_be_bytes());
    assert_eq!(p("d", &[Value::Float(2.0)]), 2.0f64.to_ne_bytes());
    assert_eq!(p("f", &[Value::Int(3)]), 3.0f32.to_ne_bytes());
    assert_eq!(vals("G", &1.5f32.to_be_bytes()), [Value::F32(1.5)]);
    assert_eq!(vals("E", &0.1f64.to_be_bytes()), [Value::Float(0.1)]);
}

#[test]
fn php_strings() {
    assert_eq!(p("a5", &[b(b"ab")]), b"ab\0\0\0");
    assert_eq!(p("A5", &[b(b"ab")]), b"ab   ");
    assert_eq!(p("Z5", &[b(b"ab")]), b"ab\0\0\0");
    assert_eq!(p("Z*", &[b(b"ab")]), b"ab\0");
    assert_eq!(p("a*", &[b(b"abc")]), b"abc");
    assert_eq!(p("A*", &[b(b"abc")]), b"abc");
    assert_eq!(p("a", &[b(b"x")]), b"x");
    assert_eq!(p("a0", &[b(b"")]), b"");
    assert_eq!(vals("a5", b"ab\0\0\0"), [b(b"ab\0\0\0")]);
    assert_eq!(vals("A5", b"ab \t\0"), [b(b"ab")]);
    assert_eq!(vals("Z5", b"ab\0cd"), [b(b"ab")]);
    // Z* stops after its NUL, so fields can follow it.
    assert_eq!(vals("Z*/n", b"hi\0\x00\x05"), [b(b"hi"), i(5)]);
    assert_eq!(vals("Z*", b"no-nul"), [b(b"no-nul")]);
    assert_eq!(vals("a*", b"rest"), [b(b"rest")]);
}

#[test]
fn php_hex() {
    assert_eq!(
        p("H*", &[Value::Hex("deadBEEF".into())]),
        [0xde, 0xad, 0xbe, 0xef]
    );
    assert_eq!(p("h*", &[Value::Hex("12".into())]), [0x21]);
    assert_eq!(p("H4", &[Value::Hex("0a0b".into())]), [0x0a, 0x0b]);
    assert_eq!(vals("H*", &[0xde, 0xad]), [Value::Hex("dead".into())]);
    assert_eq!(vals("h*", &[0x21]), [Value::Hex("12".into())]);
    assert_eq!(vals("H2", &[0xab, 0xcd]), [Value::Hex("ab".into())]);
}

#[test]
fn php_positioning() {
    assert_eq!(p("x2", &[]), [0, 0]);
    assert_eq!(p("nX", &[i(0x0102)]), [1]);
    let php = |f: &str| Format::parse_as(f, Dialect::Php).unwrap();
    assert_eq!(php("@4").pack(&[]).unwrap(), [0; 4]);
    assert_eq!(p("a3@1", &[b(b"abc")]), b"a");
    assert_eq!(p("C@3C", &[i(1), i(2)]), [1, 0, 0, 2]);
    assert_eq!(vals("x2/C", &[9, 9, 7]), [i(7)]);
    assert_eq!(vals("C/X/C", &[7]), [i(7), i(7)]);
    assert_eq!(php("@2C").unpack(&[0, 0, 5]).unwrap()[0].value, i(5));
}

#[test]
fn php_named_unpack() {
    let e = unpack("nport/Cttl/C2b/C*rest", &[0x1f, 0x90, 64, 1, 2, 3]).unwrap();
    let names: Vec<_> = e.iter().map(|e| e.name.clone().unwrap()).collect();
    assert_eq!(names, ["port", "ttl", "b1", "b2", "rest1"]);
    assert_eq!(e[0].value, i(8080));
    assert_eq!(e[0].code, 'n');
    // The same named format packs too.
    assert_eq!(p("nport/Cttl", &[i(8080), i(64)]), [0x1f, 0x90, 64]);
    // '/' separates unnamed fields too.
    assert_eq!(vals("n/C", &[0, 1, 2]), [i(1), i(2)]);
}

/// Regression: `unpack("Nlen", …)` read `len` as three more codes and
/// `unpack("Cttl", …)` was refused; PHP names the value.
#[test]
fn php_unpack_names_a_single_field_without_slash() {
    let e = unpack("Nlen", &[0, 0, 0, 1, 0, 0, 0, 2, 0xff, 0xff]).unwrap();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].name.as_deref(), Some("len"));
    assert_eq!(e[0].value, i(1));
    let e = unpack("Cttl", &[0x40]).unwrap();
    assert_eq!((e[0].name.as_deref(), &e[0].value), (Some("ttl"), &i(64)));
    // Repeats are numbered, as in PHP.
    let names: Vec<_> = unpack("C*b", &[1, 2])
        .unwrap()
        .into_iter()
        .map(|e| e.name.unwrap())
        .collect();
    assert_eq!(names, ["b1", "b2"]);
    // pack() reads codes back to back, as PHP's pack() does.
    assert_eq!(p("nC", &[i(1), i(2)]), [0, 1, 2]);
    assert_eq!(Format::parse("Nlen").unwrap().items().len(), 4);
    // Struct formats never take names.
    assert_eq!(vals("<HB", &[1, 0, 2]), [i(1), i(2)]);
}

/// Regression: `unpack('Cx/Cx')` gave two values named `x` (a JSON object
/// with a duplicate key); PHP keeps only the last, sockbox refuses.
#[test]
fn unpack_refuses_two_values_with_the_same_name() {
    let e = unpack("Cx/Cx", &[1, 2]).unwrap_err();
    assert_eq!(
        e,
        Error::DuplicateName {
            name: "x".into(),
            code: 'C',
            pos: 3
        }
    );
    assert!(e.to_string().contains("\"x\""), "{e}");
    // Generated names count too: C2x gives x1 and x2.
    assert!(matches!(
        unpack("C2x/Cx1", &[1, 2, 3]),
        Err(Error::DuplicateName { name, .. }) if name == "x1"
    ));
    // Distinct names, and unnamed fields, are fine.
    assert_eq!(unpack("Cx/Cy/C/C", &[1, 2, 3, 4]).unwrap().len(), 4);
}

#[test]
fn struct_integer_codes_and_orders() {
    assert_eq!(p("<h", &[i(-2)]), [0xfe, 0xff]);
    assert_eq!(p(">h", &[i(-2)]), [0xff, 0xfe]);
    assert_eq!(p("!I", &[i(1)]), [0, 0, 0, 1]);
    assert_eq!(p("<bB", &[i(-128), i(255)]), [0x80, 0xff]);
    assert_eq!(
        p("<iI", &[i(-1), i(2)]),
        [0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0]
    );
    assert_eq!(p("<lL", &[i(1), i(2)]).len(), 8);
    assert_eq!(p(">qQ", &[i(-1), i(1)]).len(), 16);
    assert_eq!(p("<3H", &[i(1), i(2), i(3)]), [1, 0, 2, 0, 3, 0]);
    assert_eq!(p("= h", &[i(1)]), 1i16.to_ne_bytes());
    assert_eq!(vals(">hH", &[0xff, 0xfe, 0xff, 0xfe]), [i(-2), i(0xfffe)]);
    assert_eq!(vals("<q", &[0xff; 8]), [i(-1)]);
    assert_eq!(vals("<Q", &[0xff; 8]), [i(u64::MAX.into())]);
}

#[test]
fn struct_floats_bools_strings() {
    assert_eq!(p("<e", &[Value::Float(1.0)]), [0x00, 0x3c]);
    assert_eq!(p(">e", &[Value::Float(-2.0)]), [0xc0, 0x00]);
    assert_eq!(p("<f", &[Value::Float(1.5)]), 1.5f32.to_le_bytes());
    assert_eq!(p(">d", &[Value::Float(0.1)]), 0.1f64.to_be_bytes());
    assert_eq!(p("<??", &[Value::Bool(true), i(0)]), [1, 0]);
    assert_eq!(p("<3s", &[b(b"ab")]), b"ab\0");
    assert_eq!(p("<s", &[b(b"a")]), b"a");
    assert_eq!(p("<0s", &[b(b"")]), b"");
    assert_eq!(p("<5p", &[b(b"abc")]), b"\x03abc\0");
    assert_eq!(p("<2c", &[b(b"a"), b(b"b")]), b"ab");
    assert_eq!(p("<2x", &[]), [0, 0]);
    assert_eq!(vals("<e", &[0x00, 0x3c]), [Value::F32(1.0)]);
    assert_eq!(vals("<?", &[7]), [Value::Bool(true)]);
    assert_eq!(vals("<5p", b"\x03abc\0"), [b(b"abc")]);
    assert_eq!(vals("<4s", b"ab\0\0"), [b(b"ab\0\0")]);
    assert_eq!(vals("<2c", b"xy"), [b(b"x"), b(b"y")]);
}

#[test]
fn struct_native_alignment() {
    // '@': items align to their size, like C structs; no alignment elsewhere.
    let long = size_of::<std::ffi::c_long>();
    assert_eq!(p("@bi", &[i(1), i(2)]).len(), 8);
    assert_eq!(p("=bi", &[i(1), i(2)]).len(), 5);
    assert_eq!(p("@bl", &[i(1), i(2)]).len(), 2 * long);
    assert_eq!(p("@bh", &[i(1), i(2)]).len(), 4);
    assert_eq!(p("@P", &[i(1)]).len(), size_of::<usize>());
    assert_eq!(p("@bNn", &[i(1), i(2), i(3)]).len(), 3 * size_of::<usize>());
    let data = p("@bi", &[i(-1), i(70000)]);
    assert_eq!(vals("@bi", &data), [i(-1), i(70000)]);
    // Without a prefix, parse_as(Struct) means '@'.
    let f = Format::parse_as("bi", Dialect::Struct).unwrap();
    assert_eq!(f.pack(&[i(1), i(2)]).unwrap().len(), 8);
}

#[test]
fn dialect_is_chosen_by_the_first_character() {
    assert_eq!(Format::parse("<h").unwrap().dialect(), Dialect::Struct);
    assert_eq!(Format::parse("@i").unwrap().dialect(), Dialect::Struct);
    assert!(Format::parse("hH").is_err(), "PHP h/H need even counts");
    assert_eq!(Format::parse("nvc").unwrap().dialect(), Dialect::Php);
    // A PHP format may start with '@' when the dialect is forced.
    let f = Format::parse_as("@2C", Dialect::Php).unwrap();
    assert_eq!(f.pack(&[i(9)]).unwrap(), [0, 0, 9]);
}

#[test]
fn records_repeat_the_format() {
    let f = Format::parse("<HB").unwrap();
    let r = f.unpack_records(&[1, 0, 9, 2, 0, 8]).unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[1][0].value, i(2));
    assert!(matches!(
        f.unpack_records(&[1, 0, 9, 2]),
        Err(Error::TooShort { .. })
    ));
    assert!(Format::parse("x0").unwrap().unpack_records(&[1]).is_err());
    assert!(f.unpack_records(&[]).unwrap().is_empty());
}

#[test]
fn text_arguments() {
    assert_eq!(pa("n", &["0x1f90"]).unwrap(), [0x1f, 0x90]);
    assert_eq!(pa("c", &["-1"]).unwrap(), [0xff]);
    assert_eq!(pa("C", &["0b101"]).unwrap(), [5]);
    assert_eq!(pa("N", &["1_000_000"]).unwrap(), 1_000_000u32.to_be_bytes());
    assert_eq!(pa("<?", &["yes"]).unwrap(), [1]);
    assert_eq!(pa("<f", &["1.5"]).unwrap(), 1.5f32.to_le_bytes());
    assert_eq!(pa("<d", &["7"]).unwrap(), 7f64.to_le_bytes());
    assert_eq!(pa("a*", &["hi"]).unwrap(), b"hi");
    assert_eq!(pa("H*", &["cafe"]).unwrap(), [0xca, 0xfe]);
    let e = pa("Cn", &["1", "abc"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "value \"abc\" for code 'n' at position 1 is not an integer"
    );
    assert!(matches!(pa("<?", &["maybe"]), Err(Error::BadText { .. })));
    assert!(matches!(pa("<d", &["1.2.3"]), Err(Error::BadText { .. })));
    assert!(matches!(pa("C", &["300"]), Err(Error::OutOfRange { .. })));
}

#[test]
fn parse_int_forms() {
    assert_eq!(parse_int("42"), Some(42));
    assert_eq!(parse_int("-0x10"), Some(-16));
    assert_eq!(parse_int("+0o17"), Some(15));
    assert_eq!(parse_int("0B11"), Some(3));
    assert_eq!(parse_int("1_0"), Some(10));
    for bad in ["", "-", "0x", "_1", "1_", "1.0", "ten", "0x1g"] {
        assert_eq!(parse_int(bad), None, "{bad:?}");
    }
    assert_eq!(parse_int(&"9".repeat(50)), None);
}

#[test]
fn display_and_unescape_round_trip() {
    assert_eq!(i(-5).to_string(), "-5");
    assert_eq!(Value::Float(0.1).to_string(), "0.1");
    assert_eq!(Value::Float(1.0).to_string(), "1.0");
    assert_eq!(Value::F32(0.1).to_string(), "0.1");
    assert_eq!(Value::Bool(true).to_string(), "true");
    let raw = b"a\tb\\c\"\0\xff\n".to_vec();
    let shown = b(&raw).to_string();
    assert_eq!(shown, "a\\tb\\\\c\\\"\\x00\\xff\\n");
    assert_eq!(unescape(shown.as_bytes()).unwrap(), raw);
    assert!(unescape(b"\\q").unwrap_err().contains("\\q"));
    assert!(unescape(b"\\x4").is_err());
    assert!(unescape(b"end\\").is_err());
}
