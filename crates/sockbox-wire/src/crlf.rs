//! Line endings for text protocols (`-C`, `--crlf`): every LF that is not
//! already preceded by CR becomes CRLF, as ncat's `-C` does. Streaming: a
//! CR at the end of one chunk and the LF at the start of the next are one
//! CRLF, not changed.

/// Converts bare LF to CRLF across chunk boundaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Crlf {
    /// The last byte seen was CR.
    after_cr: bool,
}

impl Crlf {
    /// A converter at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append `input`, converted, to `out`.
    pub fn convert(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 16 + 1);
        let mut start = 0;
        for i in memchr::memchr_iter(b'\n', input) {
            let cr_before = if i == 0 {
                self.after_cr
            } else {
                input[i - 1] == b'\r'
            };
            if !cr_before {
                out.extend_from_slice(&input[start..i]);
                out.extend_from_slice(b"\r");
                start = i;
            }
        }
        out.extend_from_slice(&input[start..]);
        if let Some(&last) = input.last() {
            self.after_cr = last == b'\r';
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn once(s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Crlf::new().convert(s, &mut out);
        out
    }

    #[test]
    fn bare_lf_becomes_crlf_and_crlf_stays() {
        assert_eq!(once(b"GET / HTTP/1.0\n\n"), b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(once(b"a\r\nb\nc"), b"a\r\nb\r\nc");
        assert_eq!(once(b"\n"), b"\r\n");
        assert_eq!(once(b"\r\r\n\n"), b"\r\r\n\r\n");
        assert_eq!(once(b"no newline"), b"no newline");
        assert_eq!(once(b""), b"");
    }

    #[test]
    fn a_cr_at_the_end_of_a_chunk_pairs_with_the_next_lf() {
        let mut c = Crlf::new();
        let mut out = Vec::new();
        c.convert(b"line\r", &mut out);
        c.convert(b"\nnext\n", &mut out);
        c.convert(b"", &mut out);
        c.convert(b"\n", &mut out);
        assert_eq!(out, b"line\r\nnext\r\n\r\n");
    }

    proptest! {
        #[test]
        fn chunking_does_not_change_the_result(data in proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'\r'), any::<u8>()], 0..300), cut in 0usize..300) {
            let cut = cut.min(data.len());
            let mut c = Crlf::new();
            let mut out = Vec::new();
            c.convert(&data[..cut], &mut out);
            c.convert(&data[cut..], &mut out);
            prop_assert_eq!(&out, &once(&data));
            // No bare LF is left, and removing the added CRs gives the input.
            for (i, &b) in out.iter().enumerate() {
                if b == b'\n' {
                    prop_assert!(i > 0 && out[i - 1] == b'\r');
                }
            }
            prop_assert_eq!(out.len() - data.len(),
                data.iter().enumerate().filter(|&(i, &b)| b == b'\n' && (i == 0 || data[i - 1] != b'\r')).count());
        }
    }
}
