//! Property tests: unpack(pack(x)) == x for random formats of both
//! dialects, text values survive Display and back, and arbitrary formats
//! and data never panic.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::super::*;

/// One field of a generated format: its text, the values it consumes (as
/// pack takes them) and the values unpack gives back.
#[derive(Debug, Clone)]
struct Field {
    text: String,
    input: Vec<Value>,
    output: Vec<Value>,
}

fn int_field(code: char, bits: u32, signed: bool, struct_fmt: bool) -> BoxedStrategy<Field> {
    let (lo, hi) = if signed {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    };
    (1usize..4, prop::collection::vec(lo..=hi, 3))
        .prop_map(move |(n, vs)| {
            let input: Vec<Value> = vs[..n].iter().map(|&v| Value::Int(v)).collect();
            let text = if struct_fmt {
                format!("{n}{code}")
            } else {
                format!("{code}{n}")
            };
            Field {
                text,
                output: input.clone(),
                input,
            }
        })
        .boxed()
}

fn f32_field(code: char, struct_fmt: bool) -> BoxedStrategy<Field> {
    any::<f32>()
        .prop_filter("not NaN", |x| !x.is_nan())
        .prop_map(move |x| Field {
            text: if struct_fmt {
                format!("1{code}")
            } else {
                code.to_string()
            },
            input: vec![Value::F32(x)],
            output: vec![Value::F32(x)],
        })
        .boxed()
}

fn f64_field(code: char) -> BoxedStrategy<Field> {
    any::<f64>()
        .prop_filter("not NaN", |x| !x.is_nan())
        .prop_map(move |x| Field {
            text: code.to_string(),
            input: vec![Value::Float(x)],
            output: vec![Value::Float(x)],
        })
        .boxed()
}

fn hex_of(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn php_string_field() -> BoxedStrategy<Field> {
    let bytes = prop::collection::vec(any::<u8>(), 0..12);
    (0usize..5, bytes, 0usize..4)
        .prop_map(|(kind, mut s, extra)| match kind {
            0 => {
                let n = s.len() + extra;
                let mut padded = s.clone();
                padded.resize(n, 0);
                Field {
                    text: format!("a{n}"),
                    input: vec![Value::Bytes(s)],
                    output: vec![Value::Bytes(padded)],
                }
            }
            1 => {
                while s
                    .last()
                    .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0))
                {
                    s.pop();
                }
                Field {
                    text: format!("A{}", s.len() + extra),
                    input: vec![Value::Bytes(s.clone())],
                    output: vec![Value::Bytes(s)],
                }
            }
            2 => {
                s.retain(|&b| b != 0);
                let text = if extra == 0 {
                    "Z*".to_owned()
                } else {
                    format!("Z{}", s.len() + extra)
                };
                Field {
                    text,
                    input: vec![Value::Bytes(s.clone())],
                    output: vec![Value::Bytes(s)],
                }
            }
            3 => {
                let hex = hex_of(&s).to_uppercase();
                Field {
                    text: format!("H{}", hex.len()),
                    output: vec![Value::Hex(hex.to_lowercase())],
                    input: vec![Value::Hex(hex)],
                }
            }
            _ => {
                let hex = hex_of(&s);
                Field {
                    text: format!("h{}", hex.len()),
                    output: vec![Value::Hex(hex.clone())],
                    input: vec![Value::Hex(hex)],
                }
            }
        })
        .boxed()
}

fn php_field() -> BoxedStrategy<Field> {
    let mut options: Vec<BoxedStrategy<Field>> = Vec::new();
    for (code, bits, signed) in [
        ('c', 8, true),
        ('C', 8, false),
        ('s', 16, true),
        ('S', 16, false),
        ('n', 16, false),
        ('v', 16, false),
        ('i', 32, true),
        ('I', 32, false),
        ('l', 32, true),
        ('L', 32, false),
        ('N', 32, false),
        ('V', 32, false),
        ('q', 64, true),
        ('Q', 64, false),
        ('J', 64, false),
        ('P', 64, false),
    ] {
        options.push(int_field(code, bits, signed, false));
    }
    for code in ['f', 'g', 'G'] {
        options.push(f32_field(code, false));
    }
    for code in ['d', 'e', 'E'] {
        options.push(f64_field(code));
    }
    options.push(php_string_field());
    options.push(
        (1usize..4)
            .prop_map(|n| Field {
                text: format!("x{n}"),
                input: vec![],
                output: vec![],
            })
            .boxed(),
    );
    prop::strategy::Union::new(options).boxed()
}

fn struct_field() -> BoxedStrategy<Field> {
    let mut options: Vec<BoxedStrategy<Field>> = Vec::new();
    for (code, bits, signed) in [
        ('b', 8, true),
        ('B', 8, false),
        ('h', 16, true),
        ('H', 16, false),
        ('i', 32, true),
        ('I', 32, false),
        ('l', 32, true),
        ('L', 32, false),
        ('q', 64, true),
        ('Q', 64, false),
    ] {
        options.push(int_field(code, bits, signed, true));
    }
    options.push(f32_field('f', true));
    options.push(
        any::<u16>()
            .prop_map(|h| f16_to_f64(h) as f32)
            .prop_filter("not NaN", |x| !x.is_nan())
            .prop_map(|x| Field {
                text: "e".into(),
                input: vec![Value::F32(x)],
                output: vec![Value::F32(x)],
            })
            .boxed(),
    );
    options.push(
        any::<f64>()
            .prop_filter("not NaN", |x| !x.is_nan())
            .prop_map(|x| Field {
                text: "d".into(),
                input: vec![Value::Float(x)],
                output: vec![Value::Float(x)],
            })
            .boxed(),
    );
    options.push(
        any::<bool>()
            .prop_map(|x| Field {
                text: "?".into(),
                input: vec![Value::Bool(x)],
                output: vec![Value::Bool(x)],
            })
            .boxed(),
    );
    options.push(
        (prop::collection::vec(any::<u8>(), 0..10), 0usize..3)
            .prop_map(|(s, extra)| {
                let n = s.len() + extra;
                let mut padded = s.clone();
                padded.resize(n, 0);
                Field {
                    text: format!("{n}s"),
                    input: vec![Value::Bytes(s)],
                    output: vec![Value::Bytes(padded)],
                }
            })
            .boxed(),
    );
    options.push(
        (prop::collection::vec(any::<u8>(), 0..10), 1usize..3)
            .prop_map(|(s, extra)| Field {
                text: format!("{}p", s.len() + extra),
                input: vec![Value::Bytes(s.clone())],
                output: vec![Value::Bytes(s)],
            })
            .boxed(),
    );
    options.push(
        prop::collection::vec(any::<u8>(), 1..4)
            .prop_map(|s| {
                let v: Vec<Value> = s.iter().map(|&c| Value::Bytes(vec![c])).collect();
                Field {
                    text: format!("{}c", s.len()),
                    input: v.clone(),
                    output: v,
                }
            })
            .boxed(),
    );
    options.push(
        (0usize..3)
            .prop_map(|n| Field {
                text: format!("{n}x"),
                input: vec![],
                output: vec![],
            })
            .boxed(),
    );
    prop::strategy::Union::new(options).boxed()
}

fn check_round_trip(fmt: &str, fields: &[Field]) -> Result<(), TestCaseError> {
    let input: Vec<Value> = fields.iter().flat_map(|f| f.input.clone()).collect();
    let output: Vec<Value> = fields.iter().flat_map(|f| f.output.clone()).collect();
    let f = Format::parse(fmt).map_err(|e| TestCaseError::fail(format!("{fmt}: {e}")))?;
    let bytes = f
        .pack(&input)
        .map_err(|e| TestCaseError::fail(format!("pack {fmt}: {e}")))?;
    let back = f
        .unpack_exact(&bytes)
        .map_err(|e| TestCaseError::fail(format!("unpack {fmt}: {e}")))?;
    let got: Vec<Value> = back.into_iter().map(|e| e.value).collect();
    prop_assert_eq!(got, output, "format {}", fmt);
    Ok(())
}

proptest! {
    #[test]
    fn php_unpack_of_pack_is_identity(fields in prop::collection::vec(php_field(), 0..8)) {
        let fmt: String = fields.iter().map(|f| f.text.as_str()).collect();
        check_round_trip(&fmt, &fields)?;
    }

    #[test]
    fn struct_unpack_of_pack_is_identity(
        prefix in prop::sample::select(vec!["<", ">", "!", "=", "@"]),
        fields in prop::collection::vec(struct_field(), 0..8),
    ) {
        let fmt = format!("{prefix}{}", fields.iter().map(|f| f.text.as_str()).collect::<Vec<_>>().join(" "));
        check_round_trip(&fmt, &fields)?;
    }

    #[test]
    fn text_values_round_trip_through_display(n in any::<i64>(), x in any::<f64>(), s in prop::collection::vec(any::<u8>(), 0..20)) {
        prop_assume!(!x.is_nan());
        let f = Format::parse("qeZ*").unwrap();
        let s: Vec<u8> = s.into_iter().filter(|&b| b != 0).collect();
        let bytes = f.pack(&[Value::from(n), Value::Float(x), Value::Bytes(s)]).unwrap();
        let shown: Vec<String> = f.unpack(&bytes).unwrap().iter().map(|e| e.value.to_string()).collect();
        let args = [shown[0].clone().into_bytes(), shown[1].clone().into_bytes(), unescape(shown[2].as_bytes()).unwrap()];
        prop_assert_eq!(f.pack_args(&args).unwrap(), bytes);
    }

    #[test]
    fn arbitrary_formats_and_data_never_panic(fmt in "[ -~]{0,12}", data in prop::collection::vec(any::<u8>(), 0..40), args in prop::collection::vec("[ -~]{0,6}", 0..5)) {
        if let Ok(f) = Format::parse(&fmt) {
            let _ = f.unpack(&data);
            let _ = f.unpack_records(&data);
            let _ = f.pack_args(&args);
        }
    }
}
