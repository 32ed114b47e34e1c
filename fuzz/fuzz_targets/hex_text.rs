//! Fuzz hex text decoding (`checksum --hex -`, every `--hex` argument): any
//! bytes in any two pieces never panic and decode as they do whole; errors
//! point inside the input at a byte that is not a hex digit.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sockbox_wire::hex::{TextDecoder, TextError};

fn decode(pieces: &[&[u8]]) -> Result<Vec<u8>, TextError> {
    let mut d = TextDecoder::new();
    let mut out = Vec::new();
    for p in pieces {
        d.push(p, &mut out)?;
    }
    d.finish()?;
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, text)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut).min(text.len());
    let whole = decode(&[text]);
    assert_eq!(decode(&[&text[..cut], &text[cut..]]), whole);
    match whole {
        Ok(bytes) => assert!(bytes.len() <= text.len() / 2),
        Err(TextError::NotHex { offset, byte }) => {
            let at = usize::try_from(offset).expect("offset fits");
            assert_eq!(text[at], byte);
            assert!(sockbox_wire::hex::digit(byte).is_none());
        }
        Err(TextError::OddDigits { digits }) => assert_eq!(digits % 2, 1),
    }
});
