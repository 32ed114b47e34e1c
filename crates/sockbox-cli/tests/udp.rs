//! `sockbox udp` and `sockbox mcast`: on loopback ([`loopback`]), who may
//! send ([`access`]), broadcast across namespaces on a bridge
//! ([`broadcast`]), one interface of several ([`iface`]), multicast across
//! veth pairs ([`multicast`]), and the source address of answers on a
//! two-address host ([`source`]). This file holds the server harness they
//! share.

mod access;
mod broadcast;
mod iface;
mod loopback;
mod multicast;
mod source;

use std::process::Command;
use std::time::Duration;

use crate::util::server::Spawned;
use crate::util::sockbox_std;

/// A spawned sockbox server whose standard output lines are collected.
pub struct Server(pub Spawned);

impl Server {
    pub fn spawn(cmd: Command) -> Self {
        Self(Spawned::start(cmd))
    }

    /// Wait for the "listening on udp ADDR:PORT" line; return the port.
    pub fn ready(&self) -> u16 {
        self.0.wait_addr("listening on udp").port()
    }

    /// The next datagram line on standard output, within `secs`.
    pub fn line(&self, secs: u64) -> Option<String> {
        self.0.line(Duration::from_secs(secs))
    }

    /// Everything on standard error so far.
    pub fn log(&self) -> String {
        self.0.log()
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
