//! Tests of the listener: answers, shutdown, busy programs, allow/deny,
//! the datagram count, and the source address of replies.

use super::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::daemon::ServerStats;
use crate::udp::exec::ExecConfig;

struct Running {
    shutdown: Shutdown,
    addr: SocketAddr,
    events: Arc<Mutex<Vec<String>>>,
    stats: ServerStats,
    task: tokio::task::JoinHandle<Result<ListenReport, Error>>,
}

fn start(mut cfg: ListenConfig) -> Running {
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    cfg.events = Arc::new(move |e: &ListenEvent| ev.lock().unwrap().push(format!("{e:?}")));
    cfg.server.grace = Duration::from_secs(2);
    let stats = cfg.server.stats.clone();
    let l = Listener::bind(cfg).unwrap();
    let addr = l.local_addr();
    let shutdown = Shutdown::new();
    let task = tokio::spawn(l.run(shutdown.clone()));
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

fn exec(command: &str, timeout: Duration, max_output: usize) -> ReplyMode {
    ReplyMode::Exec(ExecConfig {
        command: command.into(),
        timeout,
        max_output,
    })
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
        reply: exec("tr a-z A-Z", Duration::from_secs(5), 1000),
        ..ListenConfig::default()
    }));
    assert_eq!(ask(prog.addr, b"shout").await.unwrap(), b"SHOUT");
    for r in [text, echo, prog] {
        r.shutdown.trigger();
        let report = r.task.await.unwrap().unwrap();
        assert_eq!(report.datagrams, 1);
        let ev = r.events.lock().unwrap();
        assert!(ev[0].starts_with("Datagram"), "{ev:?}");
        assert!(ev.iter().any(|e| e.starts_with("Replied")), "{ev:?}");
        let s = r.stats.snapshot();
        assert_eq!((s.accepted, s.refused), (1, 0));
        assert!(s.bytes_out > 0 && s.bytes_in > 0, "{s:?}");
    }
}

#[tokio::test]
async fn shutdown_kills_programs_after_grace() {
    let mut cfg = local(ListenConfig {
        reply: exec("sleep 30", Duration::from_secs(60), 10),
        ..ListenConfig::default()
    });
    cfg.server.grace = Duration::from_millis(100);
    let l = Listener::bind(cfg).unwrap();
    let addr = l.local_addr();
    let sd = Shutdown::new();
    let task = tokio::spawn(l.run(sd.clone()));
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.send_to(b"x", addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = std::time::Instant::now();
    sd.trigger();
    let report = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(report.cut_at_grace, 1);
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn busy_when_all_program_slots_are_taken() {
    let r = start(local(ListenConfig {
        reply: exec("sleep 1; echo done", Duration::from_secs(5), 100),
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
    let report = r.task.await.unwrap().unwrap();
    assert_eq!((report.datagrams, report.busy), (2, 1));
    let ev = r.events.lock().unwrap();
    assert!(ev.iter().any(|e| e.starts_with("Busy")), "{ev:?}");
    assert_eq!(r.stats.snapshot().refused, 1);
}

#[tokio::test]
async fn a_failing_program_is_reported_with_its_error() {
    let r = start(local(ListenConfig {
        reply: exec("exit 3", Duration::from_secs(5), 100),
        ..ListenConfig::default()
    }));
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.send_to(b"x", r.addr).await.unwrap();
    let mut failed = false;
    for _ in 0..250 {
        failed = r
            .events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.starts_with("ReplyFailed") && e.contains("Failed"));
        if failed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(failed, "{:?}", r.events.lock().unwrap());
    r.shutdown.trigger();
    r.task.await.unwrap().unwrap();
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
    use crate::net::acl::{Acl, SharedAcl};
    let acl = Acl::new(&[], &["127.0.0.0/8".into()], &[], &[]).unwrap();
    let mut cfg = local(ListenConfig {
        reply: ReplyMode::Echo,
        ..ListenConfig::default()
    });
    cfg.server.acl = SharedAcl::new(acl);
    let r = start(cfg);
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.send_to(b"let me in", r.addr).await.unwrap();
    let mut buf = [0u8; 100];
    let got = tokio::time::timeout(Duration::from_millis(300), c.recv_from(&mut buf)).await;
    assert!(got.is_err(), "a denied source got an answer");
    r.shutdown.trigger();
    let report = r.task.await.unwrap().unwrap();
    assert_eq!((report.datagrams, report.refused), (0, 1));
    let ev = r.events.lock().unwrap();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert!(ev[0].starts_with("Denied"), "{ev:?}");
    assert_eq!(r.stats.snapshot().refused, 1);
    assert_eq!(r.stats.snapshot().accepted, 0);
}

#[tokio::test]
async fn count_stops_after_that_many_datagrams_and_answers_the_last() {
    let r = start(local(ListenConfig {
        reply: ReplyMode::Echo,
        count: Some(2),
        ..ListenConfig::default()
    }));
    assert_eq!(ask(r.addr, b"one").await.unwrap(), b"one");
    assert_eq!(ask(r.addr, b"two").await.unwrap(), b"two");
    let report = tokio::time::timeout(Duration::from_secs(5), r.task)
        .await
        .expect("the listener stops by itself")
        .unwrap()
        .unwrap();
    assert_eq!(report.datagrams, 2);
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
    let ev = r.events.lock().unwrap();
    assert!(ev[0].contains("to: Some(127.0.0.2)"), "{ev:?}");
}

#[tokio::test]
async fn from_socket_serves_a_socket_bound_elsewhere() {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let l = Listener::from_socket(
        sock,
        ListenConfig {
            reply: ReplyMode::Text(b"ok".to_vec()),
            ..ListenConfig::default()
        },
    )
    .unwrap();
    let addr = l.local_addr();
    let sd = Shutdown::new();
    let task = tokio::spawn(l.run(sd.clone()));
    assert_eq!(ask(addr, b"?").await.unwrap(), b"ok");
    sd.trigger();
    assert_eq!(task.await.unwrap().unwrap().datagrams, 1);
}
