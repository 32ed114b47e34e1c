//! From groups to targets: hosts, files and ranges expanded, this
//! prober's shard kept, names looked up.

use std::collections::HashSet;
use std::future::Future;
use std::net::IpAddr;
use std::path::Path;

use super::MonitorError;
use super::adapter;
use super::config::{Group, Network};
use super::shard::Shard;

/// One target of a group, before its name (if any) is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Index of its group.
    pub group: usize,
    /// As configured: a name, or an address in canonical form.
    pub host: String,
    /// The address when `host` is one.
    pub literal: Option<IpAddr>,
}

/// Looks names up.
pub trait Resolve: Send + Sync + 'static {
    /// The address to probe for `name`, of a family `network` accepts.
    fn resolve(
        &self,
        name: &str,
        network: Network,
    ) -> impl Future<Output = Result<IpAddr, String>> + Send;
}

/// The system's resolver (`getaddrinfo`): the first address of an
/// accepted family, in the order the system prefers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    async fn resolve(&self, name: &str, network: Network) -> Result<IpAddr, String> {
        let found = tokio::net::lookup_host((name, 0))
            .await
            .map_err(|e| e.to_string())?;
        let mut any = false;
        for sa in found {
            any = true;
            if network.accepts(&sa.ip()) {
                return Ok(sa.ip());
            }
        }
        Err(if any {
            "no address of the requested family".to_owned()
        } else {
            "no address found".to_owned()
        })
    }
}

/// True when `word` is a range rather than one host.
fn is_range(word: &str) -> bool {
    word.contains('/')
        || word
            .split_once('-')
            .is_some_and(|(a, _)| a.trim().parse::<IpAddr>().is_ok())
}

/// The words of a target file: one per line, `#` starts a comment.
fn file_words(path: &Path, n: usize) -> Result<Vec<String>, MonitorError> {
    let text = std::fs::read_to_string(path).map_err(|e| MonitorError::TargetFile {
        group: n,
        path: path.to_owned(),
        source: e,
    })?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .flat_map(str::split_whitespace)
        .map(str::to_owned)
        .collect())
}

/// The most targets one prober takes (its own share, after sharding):
/// about a kilobyte of counters and labels each.
pub const MAX_TARGETS: usize = 1 << 22;

/// Every target of `groups` that belongs to `shard`, files read now. A
/// host listed twice in one group is probed once.
pub fn expand(groups: &[Group], shard: Shard) -> Result<Vec<Planned>, MonitorError> {
    let mut out = Vec::new();
    let mut taken = 0usize;
    for (gi, g) in groups.iter().enumerate() {
        let n = gi + 1;
        let mut words = g.hosts.clone();
        for f in &g.files {
            words.extend(file_words(f, n)?);
        }
        let mut seen = HashSet::new();
        let mut push = |host: String, literal: Option<IpAddr>| {
            if shard.owns(&host) && seen.insert(host.clone()) {
                out.push(Planned {
                    group: gi,
                    host,
                    literal,
                });
            }
        };
        for w in &words {
            let bad = |what: String| MonitorError::Target {
                group: n,
                target: w.clone(),
                what,
            };
            if taken >= MAX_TARGETS {
                return Err(bad(format!(
                    "more than {MAX_TARGETS} targets for one prober: split the list with shards"
                )));
            }
            if is_range(w) {
                let addrs = adapter::expand_range(w, MAX_TARGETS - taken, shard).map_err(bad)?;
                taken += addrs.len();
                for a in addrs {
                    if !g.network.accepts(&a) {
                        return Err(bad("the range is not of the group's network".into()));
                    }
                    push(a.to_string(), Some(a));
                }
            } else if let Ok(a) = w.parse::<IpAddr>() {
                if !g.network.accepts(&a) {
                    return Err(bad("the address is not of the group's network".into()));
                }
                taken += usize::from(shard.owns(w));
                push(a.to_string(), Some(a));
            } else if valid_name(w) {
                taken += usize::from(shard.owns(w));
                push(w.clone(), None);
            } else {
                return Err(bad("expected a host name, an address or a range".into()));
            }
        }
    }
    Ok(out)
}

/// A plausible host name (letters, digits, `-`, `_`, `.`).
fn valid_name(w: &str) -> bool {
    !w.is_empty()
        && w.len() <= 253
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn group(hosts: &[&str]) -> Group {
        Group {
            hosts: hosts.iter().map(|s| (*s).to_owned()).collect(),
            ..Group::default()
        }
    }

    #[test]
    fn hosts_ranges_and_files_expand_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.txt");
        std::fs::write(&f, "# list\n10.0.0.9  b.example\n\n127.0.0.1 # again\n").unwrap();
        let mut g = group(&["127.0.0.1", "a.example", "10.0.0.0/30", "10.0.0.5-10.0.0.6"]);
        g.files.push(f);
        let p = expand(&[g], Shard::all()).unwrap();
        let hosts: Vec<&str> = p.iter().map(|t| t.host.as_str()).collect();
        assert_eq!(
            hosts,
            [
                "127.0.0.1",
                "a.example",
                "10.0.0.1",
                "10.0.0.2",
                "10.0.0.5",
                "10.0.0.6",
                "10.0.0.9",
                "b.example"
            ]
        );
        assert_eq!(p[1].literal, None);
        assert_eq!(p[2].literal, Some([10, 0, 0, 1].into()));
    }

    #[test]
    fn shards_split_the_expanded_list() {
        let g = [group(&["10.1.0.0/24", "x.example", "y.example"])];
        let all = expand(&g, Shard::all()).unwrap();
        let mut union = Vec::new();
        for i in 1..=3 {
            union.extend(expand(&g, Shard::new(i, 3).unwrap()).unwrap());
        }
        assert_eq!(union.len(), all.len());
        let set: HashSet<String> = union.into_iter().map(|t| t.host).collect();
        assert_eq!(set.len(), all.len());
    }

    #[test]
    fn a_range_too_big_for_one_prober_is_refused() {
        let e = expand(&[group(&["10.0.0.0/8"])], Shard::all())
            .unwrap_err()
            .to_string();
        assert!(e.contains("16777214") && e.contains("4194304"), "{e}");
        let ok = expand(&[group(&["10.0.0.0/12"])], Shard::new(1, 8).unwrap()).unwrap();
        assert!(ok.len() > 100_000 && ok.len() < 160_000, "{}", ok.len());
    }

    /// The limit is on a prober's own share: a /8 split among 8 shards
    /// (about 2.1 million each) is taken, as the error above suggests;
    /// among 2 it is still too much for one.
    #[test]
    fn shards_make_room_for_a_range_too_big_for_one_prober() {
        let eighth = expand(&[group(&["10.0.0.0/8"])], Shard::new(3, 8).unwrap()).unwrap();
        assert!(
            eighth.len() > 2_000_000 && eighth.len() < 2_200_000,
            "{}",
            eighth.len()
        );
        assert!(expand(&[group(&["10.0.0.0/8"])], Shard::new(1, 2).unwrap()).is_err());
    }

    #[test]
    fn bad_targets_are_named() {
        let e = expand(&[group(&["bad host!"])], Shard::all())
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad host!") && e.contains("group 1"), "{e}");
        let mut g = group(&["::1"]);
        g.network = Network::V4;
        let e = expand(&[g], Shard::all()).unwrap_err().to_string();
        assert!(e.contains("network"), "{e}");
        let mut g = group(&[]);
        g.files.push("/nonexistent/list".into());
        let e = expand(&[g], Shard::all()).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/list"), "{e}");
    }
}
