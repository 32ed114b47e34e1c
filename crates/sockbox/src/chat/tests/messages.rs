//! Chat lines: commands, escaping, cut lines, many senders in order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[tokio::test]
async fn commands_and_messages() {
    let srv = Server::start(ChatConfig::default()).await;
    let (mut a, na) = Client::join(srv.addr).await;
    let (mut b, nb) = Client::join(srv.addr).await;
    assert_ne!(na, nb);
    assert_eq!(a.line().await, format!("*** {nb} joined (2 online)"));

    a.send("hello there\n").await;
    assert_eq!(b.line().await, format!("<{na}> hello there"));

    a.send("/nick Alice\n").await;
    assert_eq!(a.line().await, "*** you are now known as Alice");
    assert_eq!(b.line().await, format!("*** {na} is now known as Alice"));
    b.send("/nick alice\n").await;
    assert_eq!(
        b.line().await,
        "*** cannot change nickname: nickname Alice is taken"
    );
    b.send("/nick 9lives\n").await;
    assert!(b.line().await.starts_with("*** cannot change nickname"));
    b.send("/who\n").await;
    assert_eq!(b.line().await, format!("*** 2 online: Alice, {nb}"));
    b.send("/me waves\n").await;
    assert_eq!(a.line().await, format!("* {nb} waves"));
    b.send("/msg ALICE psst\n").await;
    assert_eq!(a.line().await, format!("*{nb}* psst"));
    assert_eq!(b.line().await, "-> *Alice* psst");
    b.send("/msg nobody hi\n").await;
    assert_eq!(b.line().await, "*** no such nickname: nobody");
    b.send("/frob\n").await;
    assert_eq!(
        b.line().await,
        "*** unknown command /frob; /help lists commands"
    );
    b.send("//slash\n").await;
    assert_eq!(a.line().await, format!("<{nb}> /slash"));
    b.send("/help\n").await;
    assert_eq!(b.line().await, "*** commands:");
    b.until(|l| l.contains("//TEXT")).await;
    b.send("/quit gone fishing\n").await;
    assert_eq!(
        a.line().await,
        format!("*** {nb} left (quit: gone fishing)")
    );
    assert_eq!(b.rest().await, "");
    let ev = srv.events.lock().unwrap().clone();
    assert!(
        ev.iter()
            .any(|e| matches!(e, ChatEvent::Nick { new, .. } if new == "Alice"))
    );
    assert!(
        ev.iter().any(
            |e| matches!(e, ChatEvent::Leave { reason, .. } if reason == "quit: gone fishing")
        )
    );
    srv.stop().await;
}

#[tokio::test]
async fn escaping_crlf_and_invalid_utf8() {
    let srv = Server::start(ChatConfig::default()).await;
    let (mut a, na) = Client::join(srv.addr).await;
    let (mut b, _) = Client::join(srv.addr).await;
    a.line().await;
    b.w.write_all(b"x\x1b[31mred\xff\r\n").await.unwrap();
    assert_eq!(a.line().await, format!("<user2> x\\x1b[31mred\\xff"));
    // b sent CRLF, so b now gets CRLF line ends.
    a.send("caf\u{e9}\n").await;
    assert_eq!(b.line().await, format!("<{na}> caf\u{e9}\r"));
    srv.stop().await;
}

#[tokio::test]
async fn oversized_lines_are_cut_with_a_notice() {
    let srv = Server::start(ChatConfig {
        max_line: 100,
        ..ChatConfig::default()
    })
    .await;
    let (mut a, _) = Client::join(srv.addr).await;
    let (mut b, nb) = Client::join(srv.addr).await;
    a.line().await;
    let long = "y".repeat(100_000);
    b.send(&format!("{long}\nafter\n")).await;
    assert_eq!(a.line().await, format!("<{nb}> {}", "y".repeat(100)));
    assert_eq!(a.line().await, format!("<{nb}> after"));
    assert_eq!(
        b.line().await,
        "*** your line was longer than 100 bytes and was cut"
    );
    srv.stop().await;
}

/// Many senders at once: every line reaches every other client intact, and
/// each sender's lines arrive in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_every_line_intact_and_in_order() {
    const CLIENTS: usize = 24;
    const LINES: usize = 300;
    // Each client receives about 5 MB; on a loaded machine its reader may
    // fall behind, which this test is not about (see the slow-reader test):
    // give every client room for all of it.
    let srv = Server::start(ChatConfig {
        queue_limit: 64 << 20,
        ..ChatConfig::default()
    })
    .await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(Client::join(srv.addr).await);
    }
    // Everyone is a member once its welcome arrived.
    let mut tasks = Vec::new();
    for (c, nick) in clients {
        tasks.push(tokio::spawn(async move {
            let Client { mut r, mut w } = c;
            let writer = tokio::spawn(async move {
                let mut buf = String::new();
                for i in 0..LINES {
                    // Lines of varied length, some long, written in odd chunks.
                    buf.push_str(&format!("{nick} {i} {}\n", "p".repeat(i * 7 % 1500)));
                    if buf.len() > 3000 || i == LINES - 1 {
                        w.write_all(buf.as_bytes()).await.unwrap();
                        buf.clear();
                    }
                }
                w
            });
            let mut next: std::collections::HashMap<String, usize> = Default::default();
            let mut got = 0;
            let mut line = String::new();
            while got < (CLIENTS - 1) * LINES {
                line.clear();
                let n = tokio::time::timeout(T * 3, r.read_line(&mut line))
                    .await
                    .unwrap()
                    .unwrap();
                assert!(n > 0, "server closed the connection after {got} lines");
                let l = line.trim_end_matches('\n');
                let Some(body) = l.strip_prefix('<') else {
                    continue;
                };
                let (from, text) = body.split_once("> ").unwrap();
                let mut parts = text.splitn(3, ' ');
                assert_eq!(parts.next().unwrap(), from, "corrupted: {l:?}");
                let i: usize = parts.next().unwrap().parse().unwrap();
                assert_eq!(parts.next().unwrap(), "p".repeat(i * 7 % 1500), "corrupted");
                let want = next.entry(from.to_owned()).or_default();
                assert_eq!(i, *want, "out of order from {from}");
                *want += 1;
                got += 1;
            }
            let _w = writer.await.unwrap();
            got
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), (CLIENTS - 1) * LINES);
    }
    srv.stop().await;
}
