//! The long-running prober: it loads groups, keeps each target's counters
//! across reloads (keyed by the target's series), re-resolves names, and
//! runs one probing task per set of probe settings.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::adapter::{self, Probe, ProbeSettings, ProbeTarget};
use super::config::{Group, Network};
use super::metrics::{Metrics, TargetCells};
use super::plan::{self, Planned, Resolve};
use super::series::{Generation, SeriesSpec};
use super::{MonitorError, MonitorEvent, MonitorOptions};
use crate::Shutdown;
use crate::event::Events;

/// Names looked up at once.
const RESOLVE_AT_ONCE: usize = 32;

/// A series' identity: what Prometheus tells series apart by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    host: String,
    ip: Option<IpAddr>,
    source: String,
    labels: Vec<(String, String)>,
}

/// A running probing task.
struct Prober {
    tx: watch::Sender<Arc<Vec<ProbeTarget>>>,
    v4: bool,
    v6: bool,
    stop: Shutdown,
    task: JoinHandle<()>,
}

/// The prober's state between loads.
pub(super) struct State<R> {
    metrics: Metrics,
    options: MonitorOptions,
    resolver: Arc<R>,
    events: Events<MonitorEvent>,
    groups: Vec<Group>,
    planned: Vec<Planned>,
    cells: HashMap<SeriesKey, Arc<TargetCells>>,
    last_good: HashMap<(String, Network), IpAddr>,
    probers: HashMap<ProbeSettings, Prober>,
}

fn settings(g: &Group) -> ProbeSettings {
    ProbeSettings {
        interval: g.interval,
        timeout: g.effective_timeout(),
        size: g.size,
        source: g.source,
        interface: g.interface.clone(),
        ttl: g.ttl,
        tos: g.tos,
    }
}

impl<R: Resolve> State<R> {
    pub(super) fn new(
        metrics: Metrics,
        options: MonitorOptions,
        resolver: R,
        events: Events<MonitorEvent>,
    ) -> Self {
        Self {
            metrics,
            options,
            resolver: Arc::new(resolver),
            events,
            groups: Vec::new(),
            planned: Vec::new(),
            cells: HashMap::new(),
            last_good: HashMap::new(),
            probers: HashMap::new(),
        }
    }

    /// Take `groups` (files read now) and apply them; on error the
    /// previous configuration stays in force.
    /// Every failure counts as a failed reload in the metrics, whatever
    /// step it came from.
    pub(super) async fn load(&mut self, groups: Vec<Group>) -> Result<(), MonitorError> {
        let result = self.try_load(groups).await;
        self.metrics.globals().loaded(result.is_ok());
        result
    }

    async fn try_load(&mut self, groups: Vec<Group>) -> Result<(), MonitorError> {
        let planned = plan::expand(&groups, self.options.shard)?;
        self.apply(&groups, &planned).await?;
        self.groups = groups;
        self.planned = planned;
        Ok(())
    }

    /// Record a load that failed before it got here.
    pub(super) fn metrics_loaded(&self, ok: bool) {
        self.metrics.globals().loaded(ok);
    }

    /// Look the names up again and apply what changed.
    pub(super) async fn refresh(&mut self) -> Result<(), MonitorError> {
        if self.planned.iter().all(|p| p.literal.is_some()) {
            return Ok(());
        }
        let groups = self.groups.clone();
        let planned = self.planned.clone();
        self.apply(&groups, &planned).await
    }

    /// Look up every name of `planned`, a few at a time.
    async fn resolve_all(
        &self,
        groups: &[Group],
        planned: &[Planned],
    ) -> HashMap<(String, Network), Result<IpAddr, String>> {
        let mut wanted: Vec<(String, Network)> = planned
            .iter()
            .filter(|p| p.literal.is_none())
            .map(|p| (p.host.clone(), groups[p.group].network))
            .collect();
        wanted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        wanted.dedup();
        let mut out = HashMap::new();
        for batch in wanted.chunks(RESOLVE_AT_ONCE) {
            let mut set = tokio::task::JoinSet::new();
            for (name, net) in batch {
                let r = self.resolver.clone();
                let (name, net) = (name.clone(), *net);
                set.spawn(async move {
                    let res = r.resolve(&name, net).await;
                    ((name, net), res)
                });
            }
            while let Some(done) = set.join_next().await {
                if let Ok((k, v)) = done {
                    out.insert(k, v);
                }
            }
        }
        out
    }

    async fn apply(&mut self, groups: &[Group], planned: &[Planned]) -> Result<(), MonitorError> {
        let resolved = self.resolve_all(groups, planned).await;
        let mut cells = HashMap::new();
        let mut specs = Vec::with_capacity(planned.len());
        let mut lists: HashMap<ProbeSettings, Vec<ProbeTarget>> = HashMap::new();
        let mut failures = Vec::new();
        for p in planned {
            let g = &groups[p.group];
            let (ip, failed) = match (p.literal, resolved.get(&(p.host.clone(), g.network))) {
                (Some(a), _) => (Some(a), None),
                (None, Some(Ok(a))) => (Some(*a), None),
                (None, Some(Err(e))) => (
                    self.last_good.get(&(p.host.clone(), g.network)).copied(),
                    Some(e.clone()),
                ),
                (None, None) => (None, Some("the look-up did not finish".to_owned())),
            };
            // An empty label value is no label to Prometheus: a group with
            // `dc: ""` and one without `dc` make the same series.
            let labels: Vec<(String, String)> = g
                .labels
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let key = SeriesKey {
                host: p.host.clone(),
                ip,
                source: g.source_label(),
                labels,
            };
            if cells.contains_key(&key) {
                continue; // the same series from two groups: probed once
            }
            let cell = self
                .cells
                .get(&key)
                .cloned()
                .unwrap_or_else(|| Arc::new(TargetCells::new(self.metrics.buckets())));
            if let Some(e) = failed {
                failures.push((cell.clone(), p.host.clone(), e));
            }
            if ip.is_none() {
                cell.set_down();
            }
            specs.push(SeriesSpec {
                host: p.host.clone(),
                ip,
                source: key.source.clone(),
                labels: g.labels.clone(),
                named: p.literal.is_none(),
                cells: cell.clone(),
            });
            if let Some(addr) = ip {
                lists.entry(settings(g)).or_default().push(ProbeTarget {
                    addr,
                    cells: cell.clone(),
                });
            }
            cells.insert(key, cell);
        }
        let fresh = self.open_new(&lists)?;
        // Committed from here on. Last good addresses are kept for the
        // names still configured only (a name dropped and added back
        // later must not come back with an address of long ago).
        self.last_good.retain(|k, _| resolved.contains_key(k));
        for ((name, net), r) in &resolved {
            if let Ok(a) = r {
                self.last_good.insert((name.clone(), *net), *a);
            }
        }
        for (cell, host, error) in failures {
            cell.resolve_error();
            self.events
                .on_event(&MonitorEvent::Unresolved { host, error });
        }
        let targets = specs.len();
        self.metrics.publish(Generation::new(&specs));
        self.cells = cells;
        self.commit(lists, fresh);
        self.events.on_event(&MonitorEvent::Loaded {
            targets,
            probers: self.probers.len(),
        });
        Ok(())
    }

    /// Open sockets for the settings that have no prober able to take
    /// their targets (a new setting, or a family its sockets lack).
    fn open_new(
        &self,
        lists: &HashMap<ProbeSettings, Vec<ProbeTarget>>,
    ) -> Result<HashMap<ProbeSettings, Probe>, MonitorError> {
        let mut fresh = HashMap::new();
        for (s, list) in lists {
            let v4 = list.iter().any(|t| t.addr.is_ipv4());
            let v6 = list.iter().any(|t| t.addr.is_ipv6());
            let fits = self
                .probers
                .get(s)
                .is_some_and(|p| (p.v4 || !v4) && (p.v6 || !v6) && !p.task.is_finished());
            if !fits {
                fresh.insert(s.clone(), adapter::open(s, v4, v6, self.options.socket)?);
            }
        }
        Ok(fresh)
    }

    /// Hand each prober its targets; start the new ones, stop the rest.
    fn commit(
        &mut self,
        mut lists: HashMap<ProbeSettings, Vec<ProbeTarget>>,
        mut fresh: HashMap<ProbeSettings, Probe>,
    ) {
        let old: Vec<ProbeSettings> = self.probers.keys().cloned().collect();
        for s in old {
            if (!lists.contains_key(&s) || fresh.contains_key(&s))
                && let Some(p) = self.probers.remove(&s)
            {
                p.stop.trigger();
            }
        }
        for (s, list) in lists.drain() {
            if let Some(p) = self.probers.get(&s) {
                let same = {
                    let cur = p.tx.borrow();
                    cur.len() == list.len()
                        && cur
                            .iter()
                            .zip(&list)
                            .all(|(a, b)| a.addr == b.addr && Arc::ptr_eq(&a.cells, &b.cells))
                };
                if !same {
                    p.tx.send_replace(Arc::new(list));
                }
                continue;
            }
            let Some(probe) = fresh.remove(&s) else {
                continue;
            };
            let v4 = list.iter().any(|t| t.addr.is_ipv4());
            let v6 = list.iter().any(|t| t.addr.is_ipv6());
            let (tx, rx) = watch::channel(Arc::new(list));
            let stop = Shutdown::new();
            let task = tokio::spawn(prober_task(
                probe,
                s.clone(),
                rx,
                self.metrics.clone(),
                stop.clone(),
                self.events.clone(),
            ));
            self.probers.insert(
                s,
                Prober {
                    tx,
                    v4,
                    v6,
                    stop,
                    task,
                },
            );
        }
    }

    /// Stop every prober and wait for them.
    pub(super) async fn stop(&mut self) {
        for p in self.probers.values() {
            p.stop.trigger();
        }
        for (_, p) in self.probers.drain() {
            let _ = p.task.await;
        }
    }
}

/// Probe the targets `rx` holds with `settings`, starting again whenever
/// they change, until `stop`.
async fn prober_task(
    mut probe: Probe,
    settings: ProbeSettings,
    mut rx: watch::Receiver<Arc<Vec<ProbeTarget>>>,
    metrics: Metrics,
    stop: Shutdown,
    events: Events<MonitorEvent>,
) {
    loop {
        let targets = rx.borrow_and_update().clone();
        if stop.is_triggered() {
            return;
        }
        if targets.is_empty() {
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                () = stop.wait() => return,
            }
            continue;
        }
        // Not a child of `stop`: a new target list lets the probes in flight
        // settle (so they are counted) before the next run, while stopping
        // the prober drops the run at once (its counters go with it).
        let run_stop = Shutdown::new();
        let run = adapter::run(
            &mut probe,
            &settings,
            &targets,
            &run_stop,
            metrics.buckets(),
            metrics.globals(),
        );
        tokio::pin!(run);
        let result = tokio::select! {
            r = &mut run => r,
            () = stop.wait() => return,
            changed = rx.changed() => {
                run_stop.trigger();
                let r = tokio::select! {
                    r = &mut run => r,
                    () = stop.wait() => return,
                };
                if changed.is_err() {
                    return;
                }
                r
            }
        };
        if let Err(e) = result {
            metrics.globals().prober_errors.fetch_add(1, Relaxed);
            events.on_event(&MonitorEvent::ProberFailed {
                error: e.to_string(),
            });
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = stop.wait() => return,
            }
        }
    }
}
