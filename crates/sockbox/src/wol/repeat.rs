//! Waking many hosts, several times: every [`Job`] (a host, its packet,
//! its routes) is sent along each of its routes, [`Repeat::count`] rounds
//! [`Repeat::delay`] apart, and each packet that leaves or fails is
//! reported as a [`SendEvent`]. A failed route does not stop the others.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sockbox::wol::Error> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use sockbox::wol::{hosts::Host, plan, Job, Repeat, SendConfig, SendEvent};
//!
//! let host = Host::from_mac("00:11:22:33:44:55".parse()?);
//! let cfg = SendConfig { broadcast: true, port: 9, ..SendConfig::default() };
//! let routes = plan::plan(&cfg, host.mac, &sockbox::iface::list()?)?;
//! let jobs = [Job::new(host, None, routes)];
//! let repeat = Repeat {
//!     count: 3,
//!     delay: Duration::from_millis(100),
//!     events: Arc::new(|e: &SendEvent| println!("{e:?}")),
//! };
//! let report = sockbox::wol::send_all(&jobs, &repeat, &sockbox::Shutdown::new()).await;
//! println!("{} sent, {} failed", report.sent, report.failed);
//! # Ok(()) }
//! ```

use std::time::Duration;

use sockbox_wire::magic::{Password, Repr};

use super::Error;
use super::hosts::Host;
use super::plan::{Plan, Route};
use super::send::{Sent, send};
use crate::Shutdown;
use crate::event::Events;

/// One host to wake: its packet and where the packet goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The host.
    pub host: Host,
    /// The magic packet (with its SecureOn password, if any).
    pub packet: Vec<u8>,
    /// Its routes.
    pub plan: Plan,
}

impl Job {
    /// The job for `host` along `plan`; `password` overrides the host's own.
    pub fn new(host: Host, password: Option<Password>, plan: Plan) -> Self {
        let repr = Repr {
            mac: host.mac,
            password: password.or(host.password),
        };
        Self {
            packet: repr.to_bytes(),
            host,
            plan,
        }
    }
}

/// How often to send, and where to report.
#[derive(Clone)]
pub struct Repeat {
    /// Rounds (at least one is sent).
    pub count: u32,
    /// Pause between rounds.
    pub delay: Duration,
    /// Where each packet sent or failed is reported.
    pub events: Events<SendEvent>,
}

impl std::fmt::Debug for Repeat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repeat")
            .field("count", &self.count)
            .field("delay", &self.delay)
            .finish_non_exhaustive()
    }
}

/// One packet along one route.
#[derive(Debug)]
#[non_exhaustive]
pub enum SendEvent {
    /// It left.
    Sent {
        /// The round, from 1.
        round: u32,
        /// The job's index in the slice given to [`send_all`].
        job: usize,
        /// What left, and how the socket was bound.
        sent: Sent,
    },
    /// It could not be sent.
    Failed {
        /// The round, from 1.
        round: u32,
        /// The job's index.
        job: usize,
        /// The route.
        route: Route,
        /// Why.
        error: Error,
    },
}

/// What [`send_all`] did.
#[derive(Debug, Default)]
pub struct SendReport {
    /// Packets that left.
    pub sent: usize,
    /// Packets that could not be sent.
    pub failed: usize,
    /// Packets planned over all rounds (fewer went when shutdown fired).
    pub planned: usize,
    /// The first failure.
    pub first_error: Option<Error>,
    /// True when shutdown stopped the rounds early.
    pub interrupted: bool,
}

/// Send every job along each of its routes, `r.count` rounds `r.delay`
/// apart, until done or `shutdown` fires.
pub async fn send_all(jobs: &[Job], r: &Repeat, shutdown: &Shutdown) -> SendReport {
    let per_round: usize = jobs.iter().map(|j| j.plan.routes.len()).sum();
    let mut report = SendReport {
        planned: per_round * r.count.max(1) as usize,
        ..SendReport::default()
    };
    for round in 1..=r.count.max(1) {
        if round > 1 {
            tokio::select! {
                () = tokio::time::sleep(r.delay) => {}
                () = shutdown.wait() => {}
            }
        }
        if shutdown.is_triggered() {
            report.interrupted = true;
            break;
        }
        for (job, j) in jobs.iter().enumerate() {
            for route in &j.plan.routes {
                let event = match send(route, &j.packet).await {
                    Ok(sent) => {
                        report.sent += 1;
                        SendEvent::Sent { round, job, sent }
                    }
                    Err(error) => {
                        report.failed += 1;
                        SendEvent::Failed {
                            round,
                            job,
                            route: route.clone(),
                            error,
                        }
                    }
                };
                r.events.on_event(&event);
                if let SendEvent::Failed { error, .. } = event {
                    report.first_error.get_or_insert(error);
                }
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use sockbox_wire::mac::MacAddr;
    use sockbox_wire::magic::find;

    use super::*;
    use crate::wol::plan::IfaceRef;

    fn job_to(dest: std::net::SocketAddr, last: u8) -> Job {
        let host = Host::from_mac(MacAddr([2, 0, 0, 0, 0, last]));
        let plan = Plan {
            routes: vec![Route::Udp {
                dest,
                iface: None,
                source: None,
            }],
            skipped: Vec::new(),
        };
        Job::new(host, None, plan)
    }

    fn recorder() -> (Events<SendEvent>, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let events: Events<SendEvent> = Arc::new(move |e: &SendEvent| {
            s.lock().unwrap().push(match e {
                SendEvent::Sent { round, job, .. } => format!("sent {round} {job}"),
                SendEvent::Failed { round, job, .. } => format!("failed {round} {job}"),
            });
        });
        (events, seen)
    }

    #[tokio::test]
    async fn every_job_every_round_and_failures_do_not_stop_the_rest() {
        let rx = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let good = job_to(rx.local_addr().unwrap(), 1);
        let mut bad = job_to(rx.local_addr().unwrap(), 2);
        bad.plan.routes = vec![Route::Udp {
            dest: "127.0.0.1:9".parse().unwrap(),
            iface: Some(IfaceRef {
                name: "sbxnope9".into(),
                index: 999_999,
            }),
            source: Some("192.0.2.1".parse().unwrap()),
        }];
        let (events, seen) = recorder();
        let repeat = Repeat {
            count: 2,
            delay: Duration::from_millis(10),
            events,
        };
        let report = send_all(&[good, bad], &repeat, &Shutdown::new()).await;
        assert_eq!((report.sent, report.failed, report.planned), (2, 2, 4));
        assert!(report.first_error.is_some() && !report.interrupted);
        assert_eq!(
            *seen.lock().unwrap(),
            ["sent 1 0", "failed 1 1", "sent 2 0", "failed 2 1"]
        );
        let mut buf = [0u8; 200];
        for _ in 0..2 {
            let (n, _) = rx.recv_from(&mut buf).await.unwrap();
            assert_eq!(find(&buf[..n]).unwrap().repr.mac.0[5], 1);
        }
    }

    #[tokio::test]
    async fn shutdown_stops_between_rounds() {
        let rx = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (events, seen) = recorder();
        let repeat = Repeat {
            count: 100,
            delay: Duration::from_secs(60),
            events,
        };
        let sd = Shutdown::new();
        let trigger = sd.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            trigger.trigger();
        });
        let jobs = [job_to(rx.local_addr().unwrap(), 1)];
        let report = tokio::time::timeout(Duration::from_secs(10), send_all(&jobs, &repeat, &sd))
            .await
            .expect("the delay ends at shutdown");
        assert_eq!((report.sent, report.planned), (1, 100));
        assert!(report.interrupted);
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_password_given_for_all_overrides_the_hosts_own() {
        let mut host = Host::from_mac(MacAddr([2, 0, 0, 0, 0, 1]));
        host.password = Some(Password::Four([1, 1, 1, 1]));
        let j = Job::new(host.clone(), None, Plan::default());
        assert_eq!(j.packet.len(), 106);
        assert_eq!(&j.packet[102..], &[1, 1, 1, 1]);
        let j = Job::new(host, Some(Password::Four([9, 9, 9, 9])), Plan::default());
        assert_eq!(&j.packet[102..], &[9, 9, 9, 9]);
    }
}
