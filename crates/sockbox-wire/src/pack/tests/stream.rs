//! Unpacking a stream that arrives in pieces: [`Format::unpack_partial`]
//! waits for exactly what it needs and, once done, agrees with
//! [`Format::unpack_prefix`] on the whole input.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::super::*;

fn partial(fmt: &str, data: &[u8]) -> Partial {
    Format::parse_unpack(fmt)
        .unwrap()
        .unpack_partial(data, false)
        .unwrap()
}

#[test]
fn fixed_fields_wait_for_their_bytes() {
    assert_eq!(partial("N", &[]), Partial::More(Need::AtLeast(4)));
    assert_eq!(partial("N", &[0, 0]), Partial::More(Need::AtLeast(4)));
    assert_eq!(partial("n/C", &[0, 1]), Partial::More(Need::AtLeast(3)));
    assert_eq!(partial("x7/C", &[]), Partial::More(Need::AtLeast(7)));
    let f = Format::parse_as("@5C", Dialect::Php).unwrap();
    assert_eq!(
        f.unpack_partial(&[], false).unwrap(),
        Partial::More(Need::AtLeast(5))
    );
    // Done as soon as the format is covered; later bytes are not looked at.
    let Partial::Done(e, covered) = partial("n", &[0, 5, 9, 9]) else {
        panic!("n over 4 bytes is done");
    };
    assert_eq!((e[0].value.clone(), covered), (Value::Int(5), 2));
}

#[test]
fn fields_to_the_end_wait_for_the_end() {
    assert_eq!(partial("C*", &[1, 2]), Partial::More(Need::ToEnd));
    assert_eq!(partial("a*", b"ab"), Partial::More(Need::ToEnd));
    assert_eq!(partial("H*", &[1]), Partial::More(Need::ToEnd));
    // Z* is done once its NUL has arrived.
    assert_eq!(partial("Z*", b"ab"), Partial::More(Need::ToEnd));
    assert!(matches!(partial("Z*", b"ab\0c"), Partial::Done(_, 3)));
    // Complete input: the same result as unpack_prefix, never More.
    let f = Format::parse_unpack("C*").unwrap();
    assert!(matches!(
        f.unpack_partial(&[1, 2], true).unwrap(),
        Partial::Done(e, 2) if e.len() == 2
    ));
    let f = Format::parse_unpack("N").unwrap();
    assert!(matches!(
        f.unpack_partial(&[1], true),
        Err(Error::TooShort {
            need: 4,
            have: 1,
            ..
        })
    ));
}

/// Feed `data` in pieces cut at `cuts` until the format is done or fails.
fn feed(f: &Format, data: &[u8], cuts: &[usize]) -> Result<(Vec<Entry>, usize), Error> {
    let mut ends: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    ends.push(data.len());
    ends.sort_unstable();
    let mut last_need = 0;
    for end in ends {
        let complete = end == data.len();
        match f.unpack_partial(&data[..end], complete)? {
            Partial::Done(e, n) => return Ok((e, n)),
            Partial::More(Need::AtLeast(n)) => {
                assert!(n > end, "waits for more than it has ({n} <= {end})");
                assert!(n >= last_need, "the need never shrinks");
                last_need = n;
            }
            Partial::More(Need::ToEnd) => {}
        }
    }
    unreachable!("complete input never asks for more")
}

proptest! {
    #[test]
    fn pieces_give_what_the_whole_gives(
        fmt in "[CnNvaZH*x24/@X ]{0,10}",
        data in prop::collection::vec(any::<u8>(), 0..24),
        cuts in prop::collection::vec(any::<usize>(), 0..5),
    ) {
        if let Ok(f) = Format::parse_unpack(&fmt) {
            prop_assert_eq!(feed(&f, &data, &cuts), f.unpack_prefix(&data), "format {}", fmt);
        }
    }
}
