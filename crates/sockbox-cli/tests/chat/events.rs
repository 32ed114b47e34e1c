//! `--json` events never stall the server: standard output is a pipe that
//! nobody reads while thousands of clients come and go.

use super::*;

/// Regression: events were written synchronously to standard output, so a
/// full pipe stalled every client. Now a bounded queue takes them, the
/// excess is dropped and counted, and the count is reported once the pipe
/// is read again.
#[test]
fn chat_json_with_unread_stdout_keeps_serving_and_reports_dropped_events() {
    // Each client makes a join and a leave event: far more than the pipe
    // (64 KiB, about 400 events) and the queue (10 000 events) hold.
    const CLIENTS: usize = 7000;
    let mut child = sockbox_std()
        .args(["chat", "127.0.0.1", "0", "--json", "--max-per-addr", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Held open, not read (yet).
    let stdout_pipe = child.stdout.take().unwrap();
    let stderr = Arc::new(Mutex::new(Vec::new()));
    collect(child.stderr.take().unwrap(), stderr.clone());
    let mut addr = None;
    wait_until(10.0, || {
        addr = stderr
            .lock()
            .unwrap()
            .iter()
            .find_map(|l| l.split("listening on ").nth(1)?.parse().ok());
        addr.is_some()
    });
    let Some(addr) = addr else {
        panic!("no address logged: {:?}", stderr.lock().unwrap());
    };
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let mut srv = Server {
        child,
        addr,
        stderr,
        stdout: stdout.clone(),
    };

    let t0 = Instant::now();
    for i in 0..CLIENTS {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "only {i} clients in 120 s: the server stalls"
        );
        let mut c = Client::connect(srv.addr);
        c.r.get_ref()
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        assert!(c.line().starts_with("*** welcome"), "client {i}");
    }

    // The room still works, promptly.
    let t1 = Instant::now();
    let mut a = Client::connect(srv.addr);
    let mut b = Client::connect(srv.addr);
    assert!(a.line().starts_with("*** welcome"));
    assert!(b.line().starts_with("*** welcome"));
    b.send(b"hello from b\n");
    let mut got = None;
    for _ in 0..100 {
        let l = a.line();
        if l.starts_with('<') {
            got = Some(l);
            break;
        }
    }
    let got = got.unwrap_or_default();
    assert!(got.ends_with("> hello from b"), "{got:?}");
    assert!(t1.elapsed() < Duration::from_secs(10), "{:?}", t1.elapsed());
    drop((a, b));

    // Read the pipe at last: the queued events, then the dropped count.
    let into = stdout.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout_pipe).lines() {
            let Ok(line) = line else { break };
            into.lock().unwrap().push(line);
        }
    });
    let dropped_line = |lines: &[String]| {
        lines
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["event"] == "dropped")
    };
    assert!(
        wait_until(30.0, || dropped_line(&stdout.lock().unwrap()).is_some()),
        "no dropped-count line after {} lines",
        stdout.lock().unwrap().len()
    );
    assert_eq!(srv.sigterm(), 0);
    // EOF on the pipe once the server is gone: every line is read then (a
    // fixed sleep here lost the last lines on a loaded machine).
    reader.join().unwrap();
    let lines = stdout.lock().unwrap().clone();
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    let dropped: u64 = events
        .iter()
        .filter(|v| v["event"] == "dropped")
        .map(|v| v["count"].as_u64().unwrap())
        .sum();
    let count = |kind: &str| events.iter().filter(|v| v["event"] == kind).count() as u64;
    assert!(dropped > 0, "nothing dropped: {} lines", lines.len());
    // Every join and leave was either written or counted as dropped.
    let expected = 2 * (CLIENTS as u64 + 2) + 1;
    assert_eq!(
        count("listening") + count("join") + count("leave") + dropped,
        expected,
        "{dropped} dropped"
    );
}
