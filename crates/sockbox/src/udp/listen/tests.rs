//! Tests of the listener: answers, shutdown, busy programs, allow/deny,
//! and the source address of replies.

use super::*;
use std::sync::Mutex;

struct Running {
    shutdown: Shutdown,
    addr: SocketAddr,
    events: Arc<Mutex<Vec<String>>>,
    stats: ServerStats,
    task: tokio::task::JoinHandle<Result<(), Error>>,
}

fn start(cfg: ListenConfig) -> Running {
    let l = Listener::bind(cfg).unwrap();
    let addr = l.local_addr();
    let shutdown = Shutdown::new();
    let events = Arc::new(Mutex::new(Vec::new()));
    let stats = ServerStats::new();
    let (sd, ev, st) = (shutdown.clone(), events.clone(), stats.clone());
    let task = tokio::spawn(async move {
        l.run(&sd, &st, Duration::from_secs(2), |e| {
            ev.lock().unwrap().push(format!("{e:?}"));
        })
        .await
    });
    Running {
        shutdown,
        addr,
        events,
        stats,
        task,
    }
}

async fn ask(to: SocketAddr, msg: &[u8]) -> Option<Vec<u8>> {
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.send_to(msg, to).await.unwrap();
    let mut buf = [0u8; 2048];
    let r = tokio::time::timeout(Duration::from_secs(5), c.recv_from(&mut buf)).await;
    r.ok().map(|r| buf[..r.unwrap().0].to_vec())
}

fn local(cfg: ListenConfig) -> ListenConfig {
    ListenConfig {
        addr: Some("127.0.0.1".parse().unwrap()),
        ..cfg
    }
}

#[tokio::test]
async fn text_echo_and_exec_answers() {
    let text = start(local(ListenConfig {
        reply: ReplyMode::Text(b"I am here".to_vec()),
        ..ListenConfig::default()
    }));
    assert_eq!(ask(text.addr, b"who?").await.unwrap(), b"I am here");
    let echo = start(local(ListenConfig {
        reply: ReplyMode::Echo,
        ..ListenConfig::default()
    }));
    assert_eq!(ask(echo.addr, b"abc").await.unwrap(), b"abc");
    let prog = start(local(ListenConfig {
        reply: ReplyMode::Exec(ExecConfig {
            command: "tr a-z A-Z".into(),
            timeout: Duration::from_secs(5),
            max_output: 1000,
        }),
        ..ListenConfig::default()
    }));
    assert_eq!(ask(prog.addr, b"shout").await.unwrap(), b"SHOUT");
    for r in [text, echo, prog] {
        r.shutdown.trigger();
        r.task.await.unwrap().unwrap();
        let ev = r.events.lock().unwrap();
        assert!(ev[0].starts_with("Datagram"), "{ev:?}");
        assert!(ev.iter().any(|e| e.starts_with("Replied")), "{ev:?}");
    }
}

#[tokio::test]
async fn shutdown_kills_programs_after_grace() {
    let l = Listener::bind(local(ListenConfig {
        reply: ReplyMode::Exec(ExecConfig {
            command: "sleep 30".into(),
            timeout: Duration::from_secs(60),
            max_output: 10,
        }),
        ..ListenConfig::default()
    }))
    .unwrap();
    let addr = l.local_addr();
    let sd = Shutdown::new();
    let sd2 = sd.clone();
    let task = tokio::spawn(async move {
        l.run(
            &sd2,
            &ServerStats::new(),
            Duration::from_millis(100),
            |_| {},
        )
        .await
    });
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.send_to(b"x", addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = std::time::Instant::now();
    sd.trigger();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn busy_when_all_program_slots_are_taken() {
    let r = start(local(ListenConfig {
        reply: ReplyMode::Exec(ExecConfig {
            command: "sleep 1; echo done".into(),
            timeout: Duration::from_secs(5),
            max_output: 100,
        }),
        max_children: 1,
        ..ListenConfig::default()
    }));
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.send_to(b"1", r.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.send_to(b"2", r.addr).await.unwrap();
    let mut buf = [0u8; 100];
    let got = tokio::time::timeout(Duration::from_secs(5), c.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..got.0], b"done\n");
    r.shutdown.trigger();
    r.task.await.unwrap().unwrap();
    let ev = r.events.lock().unwrap();
    assert!(ev.iter().any(|e| e.starts_with("Busy")), "{ev:?}");
}

#[tokio::test]
async fn not_multicast_is_refused_before_binding() {
    let e = Listener::bind(ListenConfig {
        membership: Some(Membership {
            group: "10.0.0.1".parse().unwrap(),
            iface: None,
            source: None,
        }),
        ..ListenConfig::default()
    })
    .unwrap_err();
    assert!(matches!(e, Error::NotMulticast(_)), "{e}");
}

#[tokio::test]
async fn denied_sources_are_dropped_unanswered_and_counted() {
    use crate::net::acl::Acl;
    let acl = Acl::new(&[], &["127.0.0.0/8".into()], &[], &[]).unwrap();
    let r = start(local(ListenConfig {
        reply: ReplyMode::Echo,
        acl: SharedAcl::new(acl),
        ..ListenConfig::default()
    }));
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.send_to(b"let me in", r.addr).await.unwrap();
    let mut buf = [0u8; 100];
    let got = tokio::time::timeout(Duration::from_millis(300), c.recv_from(&mut buf)).await;
    assert!(got.is_err(), "a denied source got an answer");
    r.shutdown.trigger();
    r.task.await.unwrap().unwrap();
    let ev = r.events.lock().unwrap();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert!(ev[0].starts_with("Denied"), "{ev:?}");
    assert_eq!(r.stats.snapshot().refused, 1);
    assert_eq!(r.stats.snapshot().accepted, 0);
}

#[tokio::test]
async fn answers_leave_from_the_address_written_to() {
    // Every address (dual-stack where IPv6 exists), asked on 127.0.0.2: a
    // connected client only takes an answer from there, and the kernel
    // would pick 127.0.0.1 by itself.
    let r = start(ListenConfig {
        reply: ReplyMode::Text(b"here".to_vec()),
        ..ListenConfig::default()
    });
    let to = SocketAddr::new("127.0.0.2".parse().unwrap(), r.addr.port());
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.connect(to).await.unwrap();
    c.send(b"who?").await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), c.recv(&mut buf))
        .await
        .expect("no answer from 127.0.0.2")
        .unwrap();
    assert_eq!(&buf[..n], b"here");
    r.shutdown.trigger();
    r.task.await.unwrap().unwrap();
}
