use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::monitor::metrics::{Buckets, Metrics, TargetCells};
use crate::monitor::series::{Generation, SeriesSpec};

fn g(v: f64) -> String {
    let mut out = Vec::new();
    go_float(&mut out, v);
    String::from_utf8(out).unwrap()
}

#[test]
fn floats_are_written_as_go_writes_them() {
    // Every expected string is taken from Go programs' output
    // (smokeping_prober's /metrics, Go's strconv documentation).
    let cases: &[(f64, &str)] = &[
        (5e-05, "5e-05"),
        (0.0001, "0.0001"),
        (0.0512, "0.0512"),
        (26.2144, "26.2144"),
        (1.796_428_403_416_200_9e+09, "1.7964284034162009e+09"),
        (0.000_808_685_000_000_000_1, "0.0008086850000000001"),
        (0.000_746_487, "0.000746487"),
        (1_445_848.0, "1.445848e+06"),
        (14_136_584.0, "1.4136584e+07"),
        (2_097_152.0, "2.097152e+06"),
        (1e6, "1e+06"),
        (999_999.0, "999999"),
        (64.0, "64"),
        (0.0, "0"),
        (1.0, "1"),
        (-1.0, "-1"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
        (f64::NAN, "NaN"),
        (1.5e-7, "1.5e-07"),
        (123_456.5, "123456.5"),
        (1e21, "1e+21"),
        (1.0e100, "1e+100"),
    ];
    for (v, want) in cases {
        assert_eq!(g(*v), *want, "{v:e}");
    }
}

fn one_target() -> (Metrics, Arc<TargetCells>) {
    let m = Metrics::new(Buckets::default());
    let cells = Arc::new(TargetCells::new(m.buckets()));
    let mut labels = BTreeMap::new();
    labels.insert("dc".to_owned(), "x".to_owned());
    m.publish(Generation::new(&[SeriesSpec {
        host: "localhost".into(),
        ip: Some([127, 0, 0, 1].into()),
        source: String::new(),
        labels,
        named: true,
        cells: cells.clone(),
    }]));
    (m, cells)
}

#[test]
fn a_target_is_exported_with_smokeping_names_and_buckets() {
    let (m, cells) = one_target();
    cells.reply(m.buckets(), Duration::from_micros(150), Some(64));
    cells.reply(m.buckets(), Duration::from_micros(40), Some(64));
    cells.lost();
    let text = String::from_utf8(encode_to_vec(&m)).unwrap();
    let l = r#"dc="x",host="localhost",ip="127.0.0.1",source="""#;
    for line in [
        "# HELP smokeping_requests_total Number of ping requests sent".to_owned(),
        "# TYPE smokeping_response_duration_seconds histogram".to_owned(),
        format!("smokeping_requests_total{{{l}}} 3"),
        format!("smokeping_response_duration_seconds_bucket{{{l},le=\"5e-05\"}} 1"),
        format!("smokeping_response_duration_seconds_bucket{{{l},le=\"0.0001\"}} 1"),
        format!("smokeping_response_duration_seconds_bucket{{{l},le=\"0.0002\"}} 2"),
        format!("smokeping_response_duration_seconds_bucket{{{l},le=\"+Inf\"}} 2"),
        format!("smokeping_response_duration_seconds_sum{{{l}}} 0.00019"),
        format!("smokeping_response_duration_seconds_count{{{l}}} 2"),
        format!("smokeping_response_ttl{{{l}}} 64"),
        format!("sockbox_target_lost_total{{{l}}} 1"),
        format!("sockbox_target_up{{{l}}} 0"),
        "smokeping_receive_errors_total 0".to_owned(),
    ] {
        assert!(
            text.lines().any(|x| x == line),
            "missing {line:?} in\n{text}"
        );
    }
    // Every family once, its samples together.
    let mut seen = std::collections::HashSet::new();
    for line in text.lines().filter(|x| x.starts_with("# TYPE ")) {
        assert!(seen.insert(line.to_owned()), "{line} twice");
    }
    assert!(text.ends_with('\n'));
}

#[test]
fn a_name_that_never_resolved_has_only_sockbox_series() {
    let m = Metrics::new(Buckets::default());
    let cells = Arc::new(TargetCells::new(m.buckets()));
    cells.resolve_error();
    m.publish(Generation::new(&[SeriesSpec {
        host: "nosuch.invalid".into(),
        ip: None,
        source: String::new(),
        labels: BTreeMap::new(),
        named: true,
        cells,
    }]));
    let text = String::from_utf8(encode_to_vec(&m)).unwrap();
    let l = r#"host="nosuch.invalid",ip="",source="""#;
    assert!(
        text.contains(&format!("sockbox_target_up{{{l}}} 0\n")),
        "{text}"
    );
    assert!(text.contains(&format!("sockbox_target_resolve_errors_total{{{l}}} 1\n")));
    assert!(!text.contains("smokeping_requests_total{"), "{text}");
}

#[test]
fn big_outputs_come_in_chunks_and_stop_when_the_client_leaves() {
    let m = Metrics::new(Buckets::default());
    let specs: Vec<SeriesSpec> = (0..3000u32)
        .map(|i| SeriesSpec {
            host: std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string(),
            ip: Some(std::net::Ipv4Addr::from(0x0a00_0000 + i).into()),
            source: String::new(),
            labels: BTreeMap::new(),
            named: false,
            cells: Arc::new(TargetCells::new(m.buckets())),
        })
        .collect();
    m.publish(Generation::new(&specs));
    let mut chunks = 0;
    let mut total = 0;
    encode(&m, &mut |c| {
        chunks += 1;
        total += c.len();
        true
    });
    assert!(chunks > 3, "{chunks} chunks");
    assert_eq!(total, encode_to_vec(&m).len());
    let mut calls = 0;
    encode(&m, &mut |_| {
        calls += 1;
        false
    });
    assert_eq!(calls, 1, "nothing more after the sink refused");
}
