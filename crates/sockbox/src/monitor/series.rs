//! The set of series a scrape shows ([`Generation`]): each target's label
//! text, rendered once per (re)load in the order the Go client sorts them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use super::metrics::TargetCells;

/// What one series of targets is: its identity and its counters.
#[derive(Debug, Clone)]
pub struct SeriesSpec {
    /// The target as configured (a name, or an address).
    pub host: String,
    /// The address probed; `None` for a name that never resolved.
    pub ip: Option<IpAddr>,
    /// The source address or interface it is probed from ("" for none).
    pub source: String,
    /// Extra labels of its group.
    pub labels: BTreeMap<String, String>,
    /// True when `host` is a name (it has name-resolution counters).
    pub named: bool,
    /// Its counters.
    pub cells: Arc<TargetCells>,
}

/// A series as a scrape writes it.
#[derive(Debug)]
pub struct Series {
    /// The label pairs inside the braces, names sorted.
    pub labels: Box<str>,
    /// True when it has an address (it has smokeping_ series).
    pub probed: bool,
    /// True when its host is a name.
    pub named: bool,
    /// Its counters.
    pub cells: Arc<TargetCells>,
}

/// Every series a scrape shows, as of the last (re)load.
#[derive(Debug, Default)]
pub struct Generation {
    /// In label order.
    pub series: Vec<Series>,
}

/// Write `v` as a label value: backslash, double quote and newline escaped.
pub fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

impl Generation {
    /// The series of these targets. Every series gets every extra label
    /// name used by any of them (empty where it has none), as
    /// smokeping_prober does; names are sorted, as the Go client writes
    /// them.
    pub fn new(specs: &[SeriesSpec]) -> Self {
        let extra: BTreeSet<&str> = specs
            .iter()
            .flat_map(|s| s.labels.keys().map(String::as_str))
            .filter(|k| !matches!(*k, "host" | "ip" | "source"))
            .collect();
        let mut names: Vec<&str> = extra.into_iter().collect();
        names.extend(["host", "ip", "source"]);
        names.sort_unstable();
        let mut series: Vec<(Vec<String>, Series)> = specs
            .iter()
            .map(|s| {
                let ip = s.ip.map(|a| a.to_string()).unwrap_or_default();
                let values: Vec<String> = names
                    .iter()
                    .map(|n| match *n {
                        "host" => s.host.clone(),
                        "ip" => ip.clone(),
                        "source" => s.source.clone(),
                        other => s.labels.get(other).cloned().unwrap_or_default(),
                    })
                    .collect();
                let mut text = String::new();
                for (i, (n, v)) in names.iter().zip(&values).enumerate() {
                    if i > 0 {
                        text.push(',');
                    }
                    text.push_str(n);
                    text.push_str("=\"");
                    escape_label(&mut text, v);
                    text.push('"');
                }
                let entry = Series {
                    labels: text.into_boxed_str(),
                    probed: s.ip.is_some(),
                    named: s.named,
                    cells: s.cells.clone(),
                };
                (values, entry)
            })
            .collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        Self {
            series: series.into_iter().map(|(_, s)| s).collect(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::monitor::metrics::Buckets;

    #[test]
    fn series_labels_are_sorted_escaped_and_padded() {
        let b = Buckets::default();
        let cells = Arc::new(TargetCells::new(&b));
        let mut zone = BTreeMap::new();
        zone.insert("zone".to_owned(), "a\"b".to_owned());
        let specs = vec![
            SeriesSpec {
                host: "b.example".into(),
                ip: Some([192, 0, 2, 1].into()),
                source: String::new(),
                labels: zone,
                named: true,
                cells: cells.clone(),
            },
            SeriesSpec {
                host: "a.example".into(),
                ip: None,
                source: "eth0".into(),
                labels: BTreeMap::new(),
                named: true,
                cells,
            },
        ];
        let g = Generation::new(&specs);
        assert_eq!(
            &*g.series[0].labels,
            r#"host="a.example",ip="",source="eth0",zone="""#
        );
        assert!(!g.series[0].probed);
        assert_eq!(
            &*g.series[1].labels,
            r#"host="b.example",ip="192.0.2.1",source="",zone="a\"b""#
        );
    }
}
