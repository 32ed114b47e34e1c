use proptest::prelude::*;

use super::*;

fn v4(s: &str) -> Target<'static> {
    Target::Addr(s.parse().unwrap())
}

#[test]
fn socks4_requests() {
    assert_eq!(
        socks4_request(&v4("192.0.2.7:80"), "bob").unwrap(),
        [4, 1, 0, 80, 192, 0, 2, 7, b'b', b'o', b'b', 0]
    );
    // SOCKS4a: 0.0.0.1, then the name.
    assert_eq!(
        socks4_request(&Target::Name("ex.org", 443), "").unwrap(),
        b"\x04\x01\x01\xbb\x00\x00\x00\x01\x00ex.org\x00"
    );
    assert!(matches!(
        socks4_request(&Target::Addr("[::1]:1".parse().unwrap()), ""),
        Err(ProxyError::Socks4Ipv6(_))
    ));
    assert_eq!(
        socks4_request(&v4("1.2.3.4:5"), "a\0b"),
        Err(ProxyError::Nul("the user name"))
    );
}

#[test]
fn socks4_replies() {
    let ok = [0, 90, 0x1f, 0x90, 10, 0, 0, 1, b'x'];
    assert_eq!(
        parse_socks4_reply(&ok).unwrap(),
        Some((
            8,
            Socks4Reply {
                bound: "10.0.0.1:8080".parse().unwrap()
            }
        ))
    );
    for n in 0..8 {
        assert_eq!(parse_socks4_reply(&ok[..n]).unwrap(), None);
    }
    let e = parse_socks4_reply(&[0, 91, 0, 0, 0, 0, 0, 0]).unwrap_err();
    assert_eq!(e, ProxyError::Socks4Rejected { code: 91 });
    assert!(e.to_string().contains("rejected or failed"), "{e}");
    // An HTTP proxy answering a SOCKS4 client.
    let e = parse_socks4_reply(b"HTTP/1.1 400 Bad").unwrap_err();
    assert!(e.to_string().contains("version 72"), "{e}");
}

#[test]
fn socks5_method_and_auth() {
    assert_eq!(socks5_greeting(false), [5, 1, 0]);
    assert_eq!(socks5_greeting(true), [5, 2, 0, 2]);
    assert_eq!(parse_socks5_method(&[5], true).unwrap(), None);
    assert_eq!(parse_socks5_method(&[5, 2], true).unwrap(), Some((2, 2)));
    assert_eq!(parse_socks5_method(&[5, 0], false).unwrap(), Some((2, 0)));
    assert_eq!(
        parse_socks5_method(&[5, 2], false),
        Err(ProxyError::UnexpectedMethod(2))
    );
    let e = parse_socks5_method(&[5, 0xff], false).unwrap_err();
    assert!(e.to_string().contains("username and password"), "{e}");
    assert_eq!(
        socks5_auth("al", "pw!").unwrap(),
        [1, 2, b'a', b'l', 3, b'p', b'w', b'!']
    );
    let long = "x".repeat(256);
    assert!(matches!(
        socks5_auth(&long, ""),
        Err(ProxyError::TooLong { len: 256, .. })
    ));
    assert_eq!(parse_socks5_auth(&[1, 0]).unwrap(), Some((2, ())));
    assert_eq!(parse_socks5_auth(&[1]).unwrap(), None);
    assert_eq!(parse_socks5_auth(&[1, 1]), Err(ProxyError::AuthFailed(1)));
}

#[test]
fn socks5_requests_and_replies() {
    assert_eq!(
        socks5_request(&v4("192.0.2.1:22")).unwrap(),
        [5, 1, 0, 1, 192, 0, 2, 1, 0, 22]
    );
    let v6 = socks5_request(&Target::Addr("[2001:db8::1]:443".parse().unwrap())).unwrap();
    assert_eq!(v6[..4], [5, 1, 0, 4]);
    assert_eq!(v6.len(), 4 + 16 + 2);
    assert_eq!(
        socks5_request(&Target::Name("ex.org", 80)).unwrap(),
        b"\x05\x01\x00\x03\x06ex.org\x00\x50"
    );

    let ok4 = [5, 0, 0, 1, 127, 0, 0, 1, 0x04, 0x38, 0xAA];
    assert_eq!(
        parse_socks5_reply(&ok4).unwrap(),
        Some((10, Socks5Bound::Addr("127.0.0.1:1080".parse().unwrap())))
    );
    let name = b"\x05\x00\x00\x03\x04host\x00\x07";
    assert_eq!(
        parse_socks5_reply(name).unwrap(),
        Some((11, Socks5Bound::Name(b"host".to_vec(), 7)))
    );
    let mut ok6 = vec![5, 0, 0, 4];
    ok6.extend_from_slice(&[0; 15]);
    ok6.extend_from_slice(&[1, 0, 9]);
    assert_eq!(
        parse_socks5_reply(&ok6).unwrap(),
        Some((22, Socks5Bound::Addr("[::1]:9".parse().unwrap())))
    );
    for whole in [&ok4[..10], &name[..], &ok6[..]] {
        for n in 0..whole.len() {
            assert_eq!(parse_socks5_reply(&whole[..n]).unwrap(), None, "{n}");
        }
    }
    let e = parse_socks5_reply(&[5, 5, 0, 1]).unwrap_err();
    assert!(e.to_string().contains("connection refused"), "{e}");
    assert_eq!(
        parse_socks5_reply(&[5, 0, 0, 9]),
        Err(ProxyError::AddressType(9))
    );
}

#[test]
fn http_connect() {
    let r = http_connect_request(&Target::Name("ex.org", 443), None);
    assert_eq!(
        r,
        b"CONNECT ex.org:443 HTTP/1.1\r\nHost: ex.org:443\r\n\r\n"
    );
    let basic = basic_authorization("u", "p");
    let r = http_connect_request(&Target::Addr("[::1]:22".parse().unwrap()), Some(&basic));
    let text = String::from_utf8(r).unwrap();
    assert!(text.starts_with("CONNECT [::1]:22 HTTP/1.1\r\n"), "{text}");
    assert!(
        text.contains("\r\nProxy-Authorization: Basic dTpw\r\n\r\n"),
        "{text}"
    );

    let ok = b"HTTP/1.1 200 Connection established\r\nVia: x\r\n\r\nSSH-2.0";
    assert_eq!(
        parse_http_reply(ok).unwrap(),
        Some((ok.len() - 7, HttpReply { code: 200 }))
    );
    assert_eq!(
        parse_http_reply(b"HTTP/1.0 200 OK\n\n").unwrap(),
        Some((17, HttpReply { code: 200 }))
    );
    assert_eq!(parse_http_reply(b"HTTP/1.1 200 OK\r\n").unwrap(), None);
    assert_eq!(parse_http_reply(b"").unwrap(), None);
    let e = parse_http_reply(b"HTTP/1.1 403 Forbidden\r\n\r\n").unwrap_err();
    assert_eq!(
        e,
        ProxyError::HttpStatus {
            code: 403,
            reason: "Forbidden".into()
        }
    );
    let e = parse_http_reply(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n").unwrap_err();
    assert_eq!(e, ProxyError::HttpAuthRequired { challenges: vec![] });
    assert!(e.to_string().contains("offers no scheme"), "{e}");
    assert!(matches!(
        parse_http_reply(b"\x05\x00garbage\r\n\r\n"),
        Err(ProxyError::HttpMalformed(_))
    ));
    assert!(matches!(
        parse_http_reply(b"HTTP/1.1 2000 x\r\n\r\n"),
        Err(ProxyError::HttpMalformed(_))
    ));
    let mut big = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
    big.resize(MAX_HTTP_HEADER + 1, b'a');
    assert_eq!(parse_http_reply(&big), Err(ProxyError::HttpTooLong));
}

#[test]
fn base64_vectors() {
    // RFC 4648 section 10.
    for (i, o) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(i.as_bytes()), o);
    }
}

proptest! {
    #[test]
    fn parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = parse_socks4_reply(&data);
        let _ = parse_socks5_method(&data, true);
        let _ = parse_socks5_auth(&data);
        let _ = parse_socks5_reply(&data);
        let _ = parse_http_reply(&data);
    }

    #[test]
    fn a_complete_reply_never_claims_more_than_it_got(
        data in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(Some((n, _))) = parse_socks5_reply(&data) { prop_assert!(n <= data.len()); }
        if let Ok(Some((n, _))) = parse_http_reply(&data) { prop_assert!(n <= data.len()); }
        if let Ok(Some((n, _))) = parse_socks4_reply(&data) { prop_assert!(n <= data.len()); }
    }
}

#[test]
fn a_407_lists_every_challenge_of_every_header() {
    let reply = b"HTTP/1.0 407 Proxy Authentication Required\r\n\
Proxy-Authenticate: Basic realm=\"Ncat\"\r\n\
Server: x\r\n\
proxy-authenticate: Digest realm=\"Ncat\", nonce=\"17.9-ab\", qop=\"auth\", \
NTLM, Negotiate abc==, Digest realm=\"q\\\"uote\",nonce=n2,algorithm=MD5-sess\r\n\r\n";
    let Err(ProxyError::HttpAuthRequired { challenges }) = parse_http_reply(reply) else {
        panic!("not a 407");
    };
    let schemes: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
    assert_eq!(schemes, ["Basic", "Digest", "NTLM", "Negotiate", "Digest"]);
    assert_eq!(challenges[0].param("realm"), Some("Ncat"));
    assert_eq!(challenges[1].param("nonce"), Some("17.9-ab"));
    assert_eq!(challenges[1].param("qop"), Some("auth"));
    assert!(
        challenges[3].params.is_empty(),
        "token68 is not a parameter"
    );
    assert_eq!(challenges[4].param("realm"), Some("q\"uote"));
    assert_eq!(challenges[4].param("nonce"), Some("n2"));
    assert_eq!(challenges[4].param("algorithm"), Some("MD5-sess"));
    let e = ProxyError::HttpAuthRequired { challenges };
    assert!(e.to_string().contains("Basic, Digest, NTLM"), "{e}");
}

fn input<'a>(user: &'a str, password: &'a str, method: &'a str, uri: &'a str) -> DigestInput<'a> {
    DigestInput {
        user,
        password,
        method,
        uri,
        cnonce: "0a4f113b",
    }
}

#[test]
fn digest_answers_the_rfc_2617_example() {
    // RFC 2617 section 3.5: the response is 6629fae49393a05397450978507c4ef1.
    let c = &parse_challenges(
        b"Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    )[0];
    let a = digest_authorization(
        c,
        &input("Mufasa", "Circle Of Life", "GET", "/dir/index.html"),
    )
    .unwrap();
    assert!(
        a.contains("response=\"6629fae49393a05397450978507c4ef1\""),
        "{a}"
    );
    assert!(
        a.starts_with("Digest username=\"Mufasa\", realm=\"testrealm@host.com\""),
        "{a}"
    );
    for part in [
        "uri=\"/dir/index.html\"",
        "qop=auth",
        "nc=00000001",
        "cnonce=\"0a4f113b\"",
        "opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    ] {
        assert!(a.contains(part), "{part}: {a}");
    }
    // Without qop (RFC 2069): MD5(HA1:nonce:HA2), no nc or cnonce.
    let old = &parse_challenges(b"Digest realm=\"r\", nonce=\"n\"")[0];
    let a = digest_authorization(old, &input("u", "p", "CONNECT", "h:1")).unwrap();
    assert!(!a.contains("cnonce"), "{a}");
    // Expected values computed with Python's hashlib.
    assert!(
        a.contains("response=\"535c81f86d94a8556918012a89718e8e\""),
        "{a}"
    );
    // MD5-sess: HA1 = MD5(MD5(user:realm:password):nonce:cnonce).
    let sess = &parse_challenges(b"Digest realm=r, nonce=n, qop=auth, algorithm=MD5-sess")[0];
    let a = digest_authorization(sess, &input("u", "p", "CONNECT", "h:1")).unwrap();
    assert!(
        a.contains("response=\"f2c7caad5fd45beac83f2c658ad1f7c1\""),
        "{a}"
    );
    assert!(a.contains("algorithm=MD5-sess"), "{a}");
}

#[test]
fn digest_refuses_what_it_cannot_compute() {
    for (challenge, why) in [
        (&b"Digest nonce=n"[..], "no realm"),
        (b"Digest realm=r, nonce=n, algorithm=SHA-256", "SHA-256"),
        (b"Digest realm=r, nonce=n, qop=auth-int", "auth-int"),
        (
            b"Digest realm=r, nonce=n, algorithm=MD5-sess",
            "MD5-sess without qop",
        ),
    ] {
        let c = &parse_challenges(challenge)[0];
        let e = digest_authorization(c, &input("u", "p", "CONNECT", "h:1")).unwrap_err();
        assert!(e.to_string().contains(why), "{e}");
    }
}

#[test]
fn the_answer_prefers_digest_and_falls_back_to_basic() {
    let i = input("u", "p", "CONNECT", "h:1");
    let both = parse_challenges(b"Basic realm=x, Digest realm=x, nonce=n, qop=auth");
    let a = answer_challenges(&both, &i).unwrap().unwrap();
    assert!(a.starts_with("Digest "), "{a}");
    // A Digest it cannot answer, with Basic offered too: Basic.
    let sha = parse_challenges(b"Digest realm=x, nonce=n, algorithm=SHA-256, Basic realm=x");
    assert_eq!(answer_challenges(&sha, &i).unwrap().unwrap(), "Basic dTpw");
    // Several Digests (RFC 7616: one per algorithm): the first it can do,
    // even after one it cannot; Basic is not used then.
    let several = parse_challenges(
        b"Digest realm=x, nonce=n, algorithm=SHA-256, Digest realm=x, nonce=n, algorithm=MD5, Basic realm=x",
    );
    let a = answer_challenges(&several, &i).unwrap().unwrap();
    assert!(
        a.starts_with("Digest ") && a.contains("algorithm=MD5,"),
        "{a}"
    );
    // Only that Digest: its error.
    let only = parse_challenges(b"Digest realm=x, nonce=n, algorithm=SHA-256");
    assert!(answer_challenges(&only, &i).unwrap().is_err());
    // No scheme named: Basic. Only unknown schemes: none.
    assert_eq!(answer_challenges(&[], &i).unwrap().unwrap(), "Basic dTpw");
    assert!(answer_challenges(&parse_challenges(b"NTLM"), &i).is_none());
}
