//! A lossy, slow link between two network namespaces, built in userspace
//! (this kernel has no netem): each namespace gets a TUN device, and a
//! thread in the test copies IP packets between them, dropping a share of
//! one direction's packets and delaying them by a fixed time.
//!
//! Both devices are created here (so their file descriptors stay with the
//! test), then moved into their namespaces. They disappear when the `Wire`
//! is dropped (the descriptors close) or with the namespaces.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::util::netns::{Netns, ip, unique};

/// Open a TUN device called `name` (IP packets, no extra header).
fn open_tun(name: &str) -> File {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/net/tun")
        .expect("open /dev/net/tun");
    let mut ifr = [0u8; 40];
    ifr[..name.len()].copy_from_slice(name.as_bytes());
    let flags = (libc::IFF_TUN | libc::IFF_NO_PI) as i16;
    ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: TUNSETIFF reads a 40-byte struct ifreq, which `ifr` is; the
    // descriptor is open.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, ifr.as_mut_ptr()) };
    assert_eq!(
        rc,
        0,
        "TUNSETIFF {name}: {}",
        std::io::Error::last_os_error()
    );
    file
}

/// What the link does to packets going from `b` back to `a`.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    /// Share of packets dropped (0.0–1.0).
    pub loss: f64,
    /// Delay added to every packet that is not dropped.
    pub delay: Duration,
}

/// The running link; stops and removes its devices on drop.
pub struct Wire {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<(u64, u64)>>,
}

impl Wire {
    /// Link `a` (address `a_addr`) and `b` (`b_addr`), both /32 point to
    /// point, impairing the b→a direction.
    pub fn new(a: &Netns, a_addr: &str, b: &Netns, b_addr: &str, imp: Impairment) -> Self {
        let a_if = format!("ta{}", unique());
        let b_if = format!("tb{}", unique());
        let fa = open_tun(&a_if);
        let fb = open_tun(&b_if);
        ip(&["link", "set", &a_if, "netns", &a.name]);
        ip(&["link", "set", &b_if, "netns", &b.name]);
        for (ns, ifname, local, peer) in [(a, &a_if, a_addr, b_addr), (b, &b_if, b_addr, a_addr)] {
            ns.ip(&["addr", "add", local, "peer", peer, "dev", ifname]);
            ns.ip(&["link", "set", ifname, "up"]);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || forward(fa, fb, imp, &flag));
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stop forwarding; returns (packets b→a seen, of which dropped).
    pub fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or((0, 0))
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Deterministic xorshift, so runs are reproducible.
fn rand01(s: &mut u64) -> f64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    (*s >> 11) as f64 / (1u64 << 53) as f64
}

/// Copy packets both ways until `stop` (at most 120 s, polling every ms).
fn forward(mut fa: File, mut fb: File, imp: Impairment, stop: &AtomicBool) -> (u64, u64) {
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut queue = std::collections::VecDeque::<(Instant, Vec<u8>)>::new();
    let mut buf = vec![0u8; 65536];
    let (mut seen, mut dropped) = (0u64, 0u64);
    let give_up = Instant::now() + Duration::from_secs(120);
    while !stop.load(Ordering::Relaxed) && Instant::now() < give_up {
        let mut idle = true;
        // a -> b: untouched.
        while let Ok(n) = fa.read(&mut buf) {
            idle = false;
            let _ = fb.write(&buf[..n]);
        }
        // b -> a: lossy and delayed.
        while let Ok(n) = fb.read(&mut buf) {
            idle = false;
            seen += 1;
            if rand01(&mut rng) < imp.loss {
                dropped += 1;
            } else {
                queue.push_back((Instant::now() + imp.delay, buf[..n].to_vec()));
            }
        }
        while queue.front().is_some_and(|(t, _)| *t <= Instant::now()) {
            if let Some((_, p)) = queue.pop_front() {
                let _ = fa.write(&p);
            }
        }
        if idle {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    (seen, dropped)
}
