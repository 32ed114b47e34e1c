//! `sockbox chat --cluster`: three nodes joined through a real `nats-server`
//! (Debian's, with JetStream) that each test starts on a free loopback port
//! with its own store directory, and stops at the end even when it fails.
#![allow(clippy::many_single_char_names, clippy::format_collect)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use super::*;

/// A `nats-server -js` on loopback, killed on drop.
pub(super) struct Nats {
    child: Option<Child>,
    pub port: u16,
    store: tempfile::TempDir,
    /// More `nats-server` arguments (auth, TLS, routes).
    extra: Vec<String>,
    /// Run JetStream (`-js`, with a store directory).
    js: bool,
}

pub(super) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Nats {
    /// Start one, or `None` (skip recorded) when `nats-server` is not
    /// installed outside CI; under CI a missing binary fails the test.
    pub fn start(test: &str) -> Option<Self> {
        Self::start_with(test, &[])
    }

    /// Like [`Nats::start`], with more `nats-server` arguments.
    pub fn start_with(test: &str, extra: &[&str]) -> Option<Self> {
        Self::start_on(test, free_port(), true, extra)
    }

    /// Like [`Nats::start_with`], on `port`, with JetStream or without.
    pub fn start_on(test: &str, port: u16, js: bool, extra: &[&str]) -> Option<Self> {
        let found = Command::new("nats-server")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            assert!(
                !crate::util::in_ci(),
                "{test}: nats-server is not installed (apt-get install nats-server)"
            );
            crate::util::skip::record(test, "nats-server is not installed");
            return None;
        }
        let mut n = Self {
            child: None,
            port,
            store: tempfile::tempdir().unwrap(),
            extra: extra.iter().map(|&a| a.to_owned()).collect(),
            js,
        };
        n.up();
        Some(n)
    }

    pub(super) fn up(&mut self) {
        let mut cmd = Command::new("nats-server");
        cmd.args(["-a", "127.0.0.1", "-p", &self.port.to_string()]);
        if self.js {
            cmd.arg("-js").arg("-sd").arg(self.store.path());
        }
        let child = cmd
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        assert!(
            wait_until(10.0, || TcpStream::connect(addr).is_ok()),
            "nats-server did not listen on {addr}"
        );
    }

    /// Stop it (kill); `up` starts it again on the same port.
    pub(super) fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.down();
    }
}

/// The sockbox binary for a run that must end by itself: killed, and the
/// test failed, after 30 s (a node that started split instead of exiting
/// would otherwise hang the test).
pub(super) fn bounded() -> assert_cmd::Command {
    let mut c = crate::util::sockbox();
    c.timeout(Duration::from_secs(30));
    c
}

/// A chat node of room `room` called `name`, once it has joined.
fn node(nats: &Nats, room: &str, name: &str) -> Server {
    node_with(nats, "chat", &["--room", room, "--node-name", name])
}

/// A `sub` (chat or broker) node with these arguments, once it has joined.
pub(super) fn node_with(nats: &Nats, sub: &str, args: &[&str]) -> Server {
    let mut cmd = sockbox_std();
    cmd.args([sub, "127.0.0.1", "0", "--cluster", &nats.url()])
        .args(["--heartbeat", "250ms", "--dead-after", "1500ms"])
        .args(["--max-per-addr", "0"])
        .args(args);
    let name = args.join(" ");
    let srv = Server::spawn(cmd, false);
    assert!(
        wait_until(10.0, || srv
            .stderr
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("joined room"))),
        "node {name} did not join: {:?}",
        srv.stderr.lock().unwrap()
    );
    srv
}

/// Read lines until one contains `needle`; returns the lines read, the
/// match last. Fails with what was read when none comes within 20 s.
pub(super) fn until(c: &mut Client, needle: &str) -> Vec<String> {
    let deadline = Instant::now() + T;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let mut s = String::new();
        match c.r.read_line(&mut s) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = s.trim_end().to_owned();
                let hit = line.contains(needle);
                seen.push(line);
                if hit {
                    return seen;
                }
            }
        }
    }
    panic!("no line with {needle:?}; read: {seen:#?}");
}

/// Read lines until each of `needles` was in one of them (in any order).
fn until_all(c: &mut Client, needles: &[&str]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    while !needles.iter().all(|n| seen.iter().any(|l| l.contains(n))) {
        let missing = needles
            .iter()
            .find(|n| !seen.iter().any(|l| l.contains(*n)))
            .unwrap();
        seen.extend(until(c, missing));
    }
    seen
}

/// Connect and take the welcome; returns the client and its nickname.
pub(super) fn join(srv: &Server) -> (Client, String) {
    let mut c = Client::connect(srv.addr);
    let welcome = until(&mut c, "welcome, you are").pop().unwrap();
    let nick = welcome
        .split("you are ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .unwrap()
        .to_owned();
    (c, nick)
}

/// Send `/who` until the reply counts `n` users on `nodes` nodes.
pub(super) fn await_room(c: &mut Client, n: usize, nodes: usize) -> String {
    let want = format!("*** {n} online on {nodes} nodes");
    let deadline = Instant::now() + T;
    while Instant::now() < deadline {
        c.send(b"/who\n");
        let who = until(c, "online").pop().unwrap();
        if who.starts_with(&want) {
            return who;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the room never reached {want:?}");
}

/// The reply to `/nick NICK`.
fn rename(c: &mut Client, nick: &str) -> String {
    c.send(format!("/nick {nick}\n").as_bytes());
    nick_reply(c)
}

fn nick_reply(c: &mut Client) -> String {
    let deadline = Instant::now() + T;
    while Instant::now() < deadline {
        let l = c.line();
        if l.starts_with("*** you are now known as") || l.starts_with("*** cannot change") {
            return l;
        }
    }
    panic!("no reply to /nick");
}

#[test]
fn cluster_three_nodes_deliver_once_in_order_with_unique_nicks_who_and_msg() {
    let Some(nats) = Nats::start("cluster_three_nodes") else {
        return;
    };
    let (n1, n2, n3) = (
        node(&nats, "r1", "n1"),
        node(&nats, "r1", "n2"),
        node(&nats, "r1", "n3"),
    );
    let (mut a, _) = join(&n1);
    let (mut a2, _) = join(&n1);
    let (mut b, _) = join(&n2);
    let (mut c, _) = join(&n3);
    let who = await_room(&mut a, 4, 3);
    assert!(who.contains("n1 (here)") && who.contains("n2: ") && who.contains("n3: "));
    // Names are unique across nodes, without case.
    assert!(rename(&mut a, "alice").contains("now known as alice"));
    assert!(rename(&mut b, "ALICE").contains("nickname ALICE is taken"));
    assert!(rename(&mut b, "bob").contains("now known as bob"));
    assert!(rename(&mut c, "carol").contains("now known as carol"));
    // Two nodes claim one name at once: exactly one wins.
    a2.send(b"/nick racer\n");
    c.send(b"/nick racer\n");
    let (r1, r2) = (nick_reply(&mut a2), nick_reply(&mut c));
    let won = [&r1, &r2]
        .iter()
        .filter(|r| r.contains("now known as racer"))
        .count();
    assert_eq!(won, 1, "{r1:?} {r2:?}");
    // Every line once, in each sender's order, whole.
    const LINES: usize = 300;
    for (cl, tag) in [(&mut a, "a"), (&mut b, "b"), (&mut c, "c")] {
        let text: String = (0..LINES).map(|i| format!("m-{tag}-{i:05}\n")).collect();
        cl.send(text.as_bytes());
    }
    for (cl, own) in [(&mut a2, ""), (&mut a, "a"), (&mut b, "b")] {
        let tags: Vec<&str> = ["a", "b", "c"].into_iter().filter(|t| *t != own).collect();
        let mut next = std::collections::HashMap::new();
        let deadline = Instant::now() + T;
        while tags
            .iter()
            .any(|t| next.get(*t).copied().unwrap_or(0) < LINES)
        {
            assert!(Instant::now() < deadline, "{own}: got {next:?}");
            let l = cl.line();
            let Some(rest) = l.strip_prefix('<') else {
                continue;
            };
            let (_, text) = rest.split_once("> ").unwrap();
            let tag = text.get(2..3).unwrap().to_owned();
            let n = next.entry(tag.clone()).or_insert(0);
            assert_eq!(text, format!("m-{tag}-{:05}", *n), "receiver {own}: {l}");
            *n += 1;
        }
        // Nothing more (no line twice): the next line is the /who reply.
        cl.send(b"/who\n");
        let rest = until(cl, "online");
        assert!(!rest.iter().any(|l| l.contains("> m-")), "{rest:?}");
    }
    // /msg reaches a member on another node.
    c.send(b"/msg alice psst from n3\n");
    assert!(until(&mut c, "-> *alice*").last().unwrap().contains("psst"));
    let _ = &r2;
    let got = until(&mut a, "psst from n3").pop().unwrap();
    assert!(
        got.starts_with("*carol* ") || got.starts_with("*racer* "),
        "{got}"
    );
    // Joins and leaves cross nodes.
    let (mut d, dn) = join(&n3);
    until(&mut a, &format!("*** {dn} joined"));
    d.send(b"/quit\n");
    until(&mut b, &format!("*** {dn} left (quit)"));
    drop((n2, n3));
}

#[test]
fn cluster_a_node_killed_is_noticed_and_its_users_announced_gone() {
    let Some(nats) = Nats::start("cluster_node_killed") else {
        return;
    };
    let n1 = node(&nats, "r2", "n1");
    let mut n2 = node(&nats, "r2", "n2");
    let (mut a, _) = join(&n1);
    let (mut v, _) = join(&n2);
    assert!(rename(&mut v, "victim").contains("now known as victim"));
    // n1 must know the new name before n2 dies: a node killed with -9
    // loses what it had not sent yet (the rename could still be queued).
    let deadline = Instant::now() + T;
    while !await_room(&mut a, 2, 2).contains("victim") {
        assert!(Instant::now() < deadline, "the rename never reached n1");
        std::thread::sleep(Duration::from_millis(100));
    }
    let killed = Instant::now();
    n2.child.kill().unwrap();
    let _ = n2.child.wait();
    until(&mut a, "*** victim left (node n2 stopped answering)");
    assert!(
        killed.elapsed() < Duration::from_secs(8),
        "{:?}",
        killed.elapsed()
    );
    // Its names are free again.
    let deadline = Instant::now() + T;
    loop {
        let r = rename(&mut a, "victim");
        if r.contains("now known as victim") {
            break;
        }
        assert!(Instant::now() < deadline, "the name stayed taken: {r}");
        std::thread::sleep(Duration::from_millis(300));
    }
    a.send(b"/who\n");
    assert!(
        until(&mut a, "online")
            .last()
            .unwrap()
            .starts_with("*** 1 online on 1 node:")
    );
}

#[test]
fn cluster_nats_stop_splits_the_room_and_restart_resyncs_it() {
    let Some(mut nats) = Nats::start("cluster_nats_restart") else {
        return;
    };
    let n1 = node(&nats, "r3", "n1");
    let n2 = node(&nats, "r3", "n2");
    let (mut a, _) = join(&n1);
    let (mut a2, _) = join(&n1);
    let (mut b, _) = join(&n2);
    assert!(rename(&mut b, "bob").contains("now known as bob"));
    await_room(&mut a, 3, 2);
    nats.down();
    until(&mut a, "*** the room is split");
    until(&mut a2, "*** the room is split");
    until(&mut b, "*** the room is split");
    // Local chat goes on; names cannot change.
    a.send(b"said during the split\n");
    until(&mut a2, "said during the split");
    assert!(rename(&mut a, "zed").contains("the room is split"));
    nats.up();
    until(&mut a, "*** the room is whole again");
    // Bob is told what he missed, and never gets it late.
    let seen_by_b = until_all(
        &mut b,
        &["*** the room is whole again", "did not arrive here"],
    );
    assert!(
        seen_by_b
            .iter()
            .any(|l| l.contains("*** 1 line said on node n1 before it lost its link")),
        "{seen_by_b:?}"
    );
    await_room(&mut a, 3, 2);
    a.send(b"after the split\n");
    let after = until(&mut b, "after the split");
    assert!(
        !seen_by_b
            .iter()
            .chain(&after)
            .any(|l| l.contains("said during the split")),
        "{after:?}"
    );
    // Names are claimed anew in the recreated store: bob's is still his.
    assert!(rename(&mut a, "bob").contains("nickname bob is taken"));
}

#[test]
fn cluster_node_started_without_nats_chats_locally_and_joins_when_it_answers() {
    let Some(mut nats) = Nats::start("cluster_start_split") else {
        return;
    };
    nats.down();
    let mut cmd = sockbox_std();
    cmd.args(["chat", "127.0.0.1", "0", "--cluster", &nats.url()])
        .args(["--heartbeat", "250ms", "--dead-after", "1500ms"])
        .args(["--max-per-addr", "0", "--room", "r4", "--node-name", "n1"]);
    let n1 = Server::spawn(cmd, false);
    let stderr = || n1.stderr.lock().unwrap().join("\n");
    assert!(
        wait_until(10.0, || stderr().contains("alone until NATS answers")),
        "n1 did not start split: {}",
        stderr()
    );
    assert!(
        stderr().contains("no NATS server answered at start"),
        "{}",
        stderr()
    );
    // Newcomers are told; local chat goes on; names cannot change.
    let mut a = Client::connect(n1.addr);
    let welcome = until(&mut a, "welcome, you are").pop().unwrap();
    assert!(welcome.contains("the room is split"), "{welcome}");
    let (mut a2, _) = join(&n1);
    a.send(b"said before NATS came\n");
    until(&mut a2, "said before NATS came");
    assert!(rename(&mut a, "carol").contains("the room is split"));
    // NATS comes: n1 joins the room without a restart.
    nats.up();
    until(&mut a, "*** the room is whole again");
    let n2 = node(&nats, "r4", "n2");
    let (mut b, bn) = join(&n2);
    await_room(&mut a, 3, 2);
    b.send(b"from n2\n");
    let got = until(&mut a, "from n2").pop().unwrap();
    assert!(got.starts_with(&format!("<{bn}>")), "{got}");
    // Nicknames are room-wide from now on.
    assert!(rename(&mut b, "carol").contains("now known as carol"));
    assert!(rename(&mut a, "carol").contains("nickname carol is taken"));
    a.send(b"from n1\n");
    until(&mut b, "from n1");
}

#[test]
fn cluster_started_split_on_a_nats_without_jetstream_warns_and_recovers() {
    let port = free_port();
    let Some(mut plain) = Nats::start_on("cluster_no_jetstream", port, false, &[]) else {
        return;
    };
    plain.down();
    let mut cmd = sockbox_std();
    cmd.args(["chat", "127.0.0.1", "0", "--cluster", &plain.url()])
        .args(["--heartbeat", "250ms", "--dead-after", "1500ms"])
        .args(["--max-per-addr", "0", "--room", "r5", "--node-name", "n1"]);
    let n1 = Server::spawn(cmd, false);
    let stderr = || n1.stderr.lock().unwrap().join("\n");
    assert!(
        wait_until(10.0, || stderr().contains("alone until NATS answers")),
        "{}",
        stderr()
    );
    let (mut a, _) = join(&n1);
    // NATS without JetStream: the room is whole, the store cannot open.
    plain.up();
    until(&mut a, "*** the room is whole again");
    assert!(
        wait_until(10.0, || stderr().contains("cannot open the nickname store")),
        "{}",
        stderr()
    );
    assert!(rename(&mut a, "zoe").contains("try again"));
    // NATS again, with JetStream: the store opens, names are claimed.
    drop(plain);
    let Some(_js) = Nats::start_on("cluster_no_jetstream", port, true, &[]) else {
        return;
    };
    assert!(
        wait_until(20.0, || rename(&mut a, "zoe").contains("now known as zoe")),
        "{}",
        stderr()
    );
}
