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
    #[expect(unsafe_code)]
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
    truth: Truth,
    /// The device on `a`'s side (for routes through the link).
    pub a_if: String,
}

/// The round trip the wire gave each echo, by destination: from when the
/// request was read off `a` to when the reply was written back to it.
type Truth = Arc<std::sync::Mutex<std::collections::HashMap<std::net::Ipv4Addr, Duration>>>;

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
            // Room for a burst of probes while the thread catches up.
            ns.ip(&["link", "set", ifname, "txqueuelen", "10000", "up"]);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let truth = Truth::default();
        let t = Arc::clone(&truth);
        let thread = std::thread::spawn(move || forward(fa, fb, imp, &flag, &t));
        Self {
            stop,
            thread: Some(thread),
            truth,
            a_if,
        }
    }

    /// The round trip the wire gave the last echo to each destination.
    pub fn truth(&self) -> std::collections::HashMap<std::net::Ipv4Addr, Duration> {
        self.truth.lock().map(|m| m.clone()).unwrap_or_default()
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

/// Run the calling thread at a real-time priority (`chrt -f`), so the
/// wire copies packets as they come even while the pinger's own threads
/// keep both cores busy sending a burst. Best effort.
fn realtime() {
    let tid = nix::unistd::gettid().to_string();
    let _ = std::process::Command::new("chrt")
        .args(["-f", "-p", "50", &tid])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Wait until `f` has a packet, or `max` passes.
fn wait_readable(f: &File, max: Duration) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
    let ms = u16::try_from(max.as_millis()).unwrap_or(u16::MAX);
    let _ = poll(&mut fds, PollTimeout::from(ms));
}

/// The ICMP type and the first 12 data bytes (sockbox's probe id) of an
/// IPv4 echo request or reply.
fn echo_key(p: &[u8]) -> Option<(u8, [u8; 12])> {
    let ihl = usize::from(*p.first()? & 0x0f) * 4;
    if p.first()? >> 4 != 4 || *p.get(9)? != 1 {
        return None;
    }
    let ty = *p.get(ihl)?;
    let id: [u8; 12] = p.get(ihl + 8..ihl + 20)?.try_into().ok()?;
    Some((ty, id))
}

/// When each echo request entered the wire, and where it went, by probe id.
type Entered =
    Arc<std::sync::Mutex<std::collections::HashMap<[u8; 12], (Instant, std::net::Ipv4Addr)>>>;

/// a -> b, untouched: one thread reads and notes when each echo request
/// came in (so a burst is read as fast as it arrives), another writes.
fn forward_out(mut fa: File, fb: File, entered: &Entered, stop: &Arc<AtomicBool>) {
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let flag = Arc::clone(stop);
    let writer = std::thread::spawn(move || {
        realtime();
        let mut fb = fb;
        while !flag.load(Ordering::Relaxed) {
            match rx.recv_timeout(Duration::from_millis(5)) {
                Ok(p) => {
                    let _ = fb.write(&p);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => return,
            }
        }
    });
    realtime();
    let mut buf = vec![0u8; 65536];
    let give_up = Instant::now() + Duration::from_secs(120);
    while !stop.load(Ordering::Relaxed) && Instant::now() < give_up {
        let mut idle = true;
        while let Ok(n) = fa.read(&mut buf) {
            idle = false;
            let p = &buf[..n];
            if let (Some((8, id)), Some(dst)) = (echo_key(p), p.get(16..20))
                && let Ok(mut m) = entered.lock()
                && m.len() < 1 << 20
            {
                let dst = std::net::Ipv4Addr::new(dst[0], dst[1], dst[2], dst[3]);
                m.insert(id, (Instant::now(), dst));
            }
            if tx.send(p.to_vec()).is_err() {
                return;
            }
        }
        if idle {
            wait_readable(&fa, Duration::from_millis(5));
        }
    }
    drop(tx);
    let _ = writer.join();
}

/// b -> a, lossy and delayed, until `stop` (at most 120 s). The delay of
/// an echo reply counts from when its request entered the wire, so the
/// link's round trip is `delay` whatever time the wire spends copying a
/// burst; delayed packets are written within about 100 µs of their due
/// time, and the round trip each echo really got is noted in `truth`.
fn forward(
    mut fa: File,
    mut fb: File,
    imp: Impairment,
    stop: &AtomicBool,
    truth: &Truth,
) -> (u64, u64) {
    let entered: Entered = Arc::default();
    let out_stop = Arc::new(AtomicBool::new(false));
    let out_thread = match (fa.try_clone(), fb.try_clone()) {
        (Ok(fa), Ok(fb)) => {
            let (entered, flag) = (Arc::clone(&entered), Arc::clone(&out_stop));
            Some(std::thread::spawn(move || {
                forward_out(fa, fb, &entered, &flag);
            }))
        }
        _ => None,
    };
    realtime();
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    type Due = (Instant, Vec<u8>, Option<(Instant, std::net::Ipv4Addr)>);
    let mut queue = std::collections::VecDeque::<Due>::new();
    let mut buf = vec![0u8; 65536];
    let (mut seen, mut dropped) = (0u64, 0u64);
    let give_up = Instant::now() + Duration::from_secs(120);
    while !stop.load(Ordering::Relaxed) && Instant::now() < give_up {
        let mut idle = true;
        while let Ok(n) = fb.read(&mut buf) {
            idle = false;
            seen += 1;
            let start = match echo_key(&buf[..n]) {
                Some((0, id)) => entered.lock().ok().and_then(|mut m| m.remove(&id)),
                _ => None,
            };
            if rand01(&mut rng) < imp.loss {
                dropped += 1;
            } else {
                let due = start.map_or_else(Instant::now, |s| s.0) + imp.delay;
                let at = queue.partition_point(|e| e.0 <= due);
                queue.insert(at, (due, buf[..n].to_vec(), start));
            }
        }
        while queue.front().is_some_and(|e| e.0 <= Instant::now()) {
            if let Some((_, p, start)) = queue.pop_front() {
                let _ = fa.write(&p);
                if let (Some((t0, dst)), Ok(mut m)) = (start, truth.lock()) {
                    m.insert(dst, t0.elapsed());
                }
            }
        }
        if idle {
            match queue
                .front()
                .map(|e| e.0.saturating_duration_since(Instant::now()))
            {
                // Due soon: short sleeps for precision.
                Some(d) if d < Duration::from_millis(2) => {
                    std::thread::sleep(d.min(Duration::from_micros(100)));
                }
                Some(d) => wait_readable(&fb, d.saturating_sub(Duration::from_millis(1))),
                None => wait_readable(&fb, Duration::from_millis(5)),
            }
        }
    }
    out_stop.store(true, Ordering::Relaxed);
    if let Some(h) = out_thread {
        let _ = h.join();
    }
    (seen, dropped)
}
