//! Fuzz the proxy reply parsers (SOCKS4, SOCKS5 method/auth/reply, HTTP
//! CONNECT) and the HTTP proxy's authentication challenges (parsed, then
//! answered with Digest or Basic): never panic; a complete reply never claims more bytes than it
//! was given, and the same bytes with more appended parse the same way
//! (what follows a reply belongs to the tunnel, never to the reply).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sockbox_wire::proxy::{
    DigestInput, answer_challenges, parse_challenges, parse_http_reply, parse_socks4_reply, parse_socks5_auth, parse_socks5_method,
    parse_socks5_reply,
};

fn check<T: PartialEq + std::fmt::Debug, E: PartialEq + std::fmt::Debug>(
    data: &[u8],
    parse: impl Fn(&[u8]) -> Result<Option<(usize, T)>, E>,
) {
    let got = parse(data);
    if let Ok(Some((n, v))) = &got {
        assert!(*n <= data.len());
        let mut more = data.to_vec();
        more.extend_from_slice(b"tunnel bytes\r\n\r\n");
        match parse(&more) {
            Ok(Some((m, w))) => assert!(m == *n && w == *v),
            other => panic!("appending changed the result: {other:?}"),
        }
        // The reply alone is complete too.
        assert!(matches!(parse(&data[..*n]), Ok(Some((m, _))) if m == *n));
    }
}

fuzz_target!(|data: &[u8]| {
    check(data, parse_socks4_reply);
    check(data, |d| parse_socks5_method(d, true));
    check(data, |d| parse_socks5_method(d, false));
    check(data, parse_socks5_auth);
    check(data, parse_socks5_reply);
    check(data, parse_http_reply);
    let challenges = parse_challenges(data);
    let input = DigestInput {
        user: "u\"ser",
        password: "p",
        method: "CONNECT",
        uri: "h:1",
        cnonce: "c",
    };
    if let Some(Ok(answer)) = answer_challenges(&challenges, &input) {
        // One header line: never a CR or LF an attacker could inject.
        assert!(!answer.contains(['\r', '\n']), "{answer:?}");
    }
});
