//! Load: thousands of clients at once, and accept under a descriptor
//! shortage.

use super::*;

/// Far beyond select()'s 1024 descriptors: 2000 clients at once, and a line
/// from one reaches all the others.
#[test]
fn chat_2000_concurrent_clients() {
    const N: usize = 2000;
    let limit = sockbox::sys::rlimit::raise_nofile_limit();
    if limit < (N as u64) * 2 + 100 {
        assert!(!crate::util::in_ci(), "open-file limit {limit} too low");
        crate::util::skipped(&format!("open-file limit {limit} too low"));
        return;
    }
    // One address for all: no per-address cap.
    let srv = Server::start("chat", &["--quiet", "--max-per-addr", "0"]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = srv.addr;
    let received = rt.block_on(async move {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let mut readers = Vec::new();
        let mut writers = Vec::new();
        for i in 0..N {
            let s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (r, w) = s.into_split();
            let mut r = tokio::io::BufReader::new(r);
            // Joined once the welcome arrives.
            let mut l = String::new();
            tokio::time::timeout(T, r.read_line(&mut l))
                .await
                .unwrap()
                .unwrap();
            assert!(
                l.starts_with(&format!("*** welcome, you are user{};", i + 1)),
                "{l}"
            );
            readers.push(r);
            writers.push(w);
        }
        // Everyone waits for the marker line, skipping join announcements.
        let tasks: Vec<_> = readers
            .into_iter()
            .enumerate()
            .skip(1)
            .map(|(i, mut r)| {
                tokio::spawn(async move {
                    let mut l = String::new();
                    loop {
                        l.clear();
                        let n = tokio::time::timeout(T * 3, r.read_line(&mut l))
                            .await
                            .map_err(|_| format!("client {i}: timeout"))?
                            .map_err(|e| format!("client {i}: {e}"))?;
                        if n == 0 {
                            return Err(format!("client {i}: EOF"));
                        }
                        if l == "<user1> marker\n" {
                            return Ok::<_, String>(());
                        }
                    }
                })
            })
            .collect();
        writers[0].write_all(b"marker\n").await.unwrap();
        let mut ok = 0;
        for t in tasks {
            t.await.unwrap().unwrap();
            ok += 1;
        }
        drop(writers);
        ok
    });
    assert_eq!(received, N - 1);
}

/// Out of descriptors, accept fails with EMFILE: the server logs it, backs
/// off instead of spinning, and serves again once descriptors free up.
#[test]
fn accept_backs_off_on_emfile() {
    let bin = assert_cmd::cargo::cargo_bin("sockbox");
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-c").arg(format!(
        "ulimit -n 40 && exec '{}' chat 127.0.0.1 0",
        bin.display()
    ));
    let srv = Server::spawn(cmd, false);
    let pid = srv.child.id();
    let cpu = || -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let f: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        // utime and stime are fields 14 and 15; f[0] is field 3.
        (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
    };
    let mut clients: Vec<TcpStream> = (0..60)
        .map(|_| TcpStream::connect(srv.addr).unwrap())
        .collect();
    assert!(wait_until(10.0, || {
        srv.stderr
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("accept failed") && l.contains("pausing"))
    }));
    let before = cpu();
    std::thread::sleep(Duration::from_millis(1500));
    let used = cpu() - before;
    assert!(
        used < 0.5,
        "server spun on EMFILE: {used} s of CPU in 1.5 s"
    );
    clients.clear();
    // Descriptors are free again: a new client is served.
    let mut c = Client::connect(srv.addr);
    let welcome = c.line();
    assert!(welcome.starts_with("*** welcome"), "{welcome}");
}
