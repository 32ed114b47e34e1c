//! `sockbox udp` and `sockbox mcast`: on loopback ([`loopback`]), broadcast
//! across namespaces on a bridge ([`broadcast`]), and multicast across veth
//! pairs ([`multicast`]). This file holds the server harness they share.

mod broadcast;
mod loopback;
mod multicast;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use crate::util::sockbox_std;

/// A spawned sockbox server: its output lines arrive on channels; killed and
/// reaped on drop, even when the test fails.
pub struct Server {
    pub child: Child,
    out: Receiver<String>,
    err: Receiver<String>,
}

impl Server {
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sockbox");
        let (otx, out) = channel();
        let (etx, err) = channel();
        let so = child.stdout.take().unwrap();
        let se = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(so).lines().map_while(Result::ok) {
                let _ = otx.send(l);
            }
        });
        std::thread::spawn(move || {
            for l in BufReader::new(se).lines().map_while(Result::ok) {
                let _ = etx.send(l);
            }
        });
        Self { child, out, err }
    }

    /// Wait for the "listening on udp ADDR:PORT" line; return the port.
    pub fn ready(&self) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.err.recv_timeout(left) {
                Ok(l) if l.contains("listening on udp") => {
                    return l.rsplit(':').next().unwrap().trim().parse().unwrap();
                }
                Ok(l) => seen.push(l),
                Err(_) => break,
            }
        }
        panic!("server did not report that it listens: {seen:?}");
    }

    pub fn line(&self, secs: u64) -> Option<String> {
        self.out.recv_timeout(Duration::from_secs(secs)).ok()
    }

    pub fn stderr_now(&self) -> String {
        self.err.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn listen_local(extra: &[&str]) -> (Server, u16) {
    let mut c = sockbox_std();
    c.args(["udp", "listen", "127.0.0.1", "0"]).args(extra);
    let s = Server::spawn(c);
    let p = s.ready();
    (s, p)
}

pub fn stdout_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
