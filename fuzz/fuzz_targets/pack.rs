//! Fuzz pack/unpack: any format, any text values and any data never panic;
//! for formats whose fields read back exactly what was written, packing the
//! unpacked values reproduces the bytes; and unpacking data that arrives in
//! two pieces gives what unpacking it whole gives.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sockbox_wire::pack::{Count, Error, Format, Kind, Partial, StrKind, Value};

/// True when unpack(pack(v)) gives values that pack to the same bytes.
fn reversible(f: &Format) -> bool {
    f.items().iter().all(|i| {
        i.count != Count::Star
            && !matches!(
                i.kind,
                Kind::Back
                    | Kind::Goto
                    | Kind::Str(StrKind::SpacePadded | StrKind::NulTerminated)
            )
    })
}

fn has_nan(values: &[Value]) -> bool {
    values.iter().any(|v| match v {
        Value::Float(x) => x.is_nan(),
        Value::F32(x) => x.is_nan(),
        _ => false,
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flen, rest)) = data.split_first() else {
        return;
    };
    let flen = usize::from(flen % 32).min(rest.len());
    let (fmt, rest) = rest.split_at(flen);
    let Ok(fmt) = std::str::from_utf8(fmt) else {
        return;
    };
    if let Ok(unpack) = Format::parse_unpack(fmt) {
        let whole = unpack.unpack_prefix(rest);
        // The first half, then (unless done) everything.
        let half = &rest[..rest.len() / 2];
        let pieces = match unpack.unpack_partial(half, false) {
            Ok(Partial::Done(e, n)) => Ok((e, n)),
            Ok(Partial::More(_)) => unpack.unpack_prefix(rest),
            Err(e) => Err(e),
        };
        assert_eq!(pieces, whole, "format {fmt:?}");
    }
    let Ok(format) = Format::parse(fmt) else {
        return;
    };
    // Unpacking arbitrary bytes never panics.
    let _ = format.unpack(rest);
    let _ = format.unpack_records(rest);
    // Packing arbitrary text values never panics.
    let args: Vec<&[u8]> = rest.split(|&b| b == b'\n').collect();
    let Ok(bytes) = format.pack_args(&args) else {
        return;
    };
    let back = format.unpack_prefix(&bytes);
    if matches!(back, Err(Error::DuplicateName { .. })) {
        // `Cx/Cx` packs, but its two values cannot both be named x.
        return;
    }
    if reversible(&format) {
        let (entries, covered) = back.expect("what pack wrote, unpack reads");
        assert_eq!(covered, bytes.len(), "format {fmt:?}");
        let values: Vec<Value> = entries.into_iter().map(|e| e.value).collect();
        if !has_nan(&values) {
            assert_eq!(format.pack(&values).expect("repack"), bytes, "format {fmt:?}");
        }
    }
});
