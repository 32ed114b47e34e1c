//! Where `sockbox ping` takes its targets from: the command line, ranges
//! (`-g`), a file or stdin (`-f`, or no targets at all). Ranges are walked
//! as the run goes; a file or stdin is read by a thread and its names are
//! resolved (a few at a time, in order) by a task, through a bounded
//! channel: nothing is ever held whole.

use std::collections::VecDeque;
use std::io::BufRead;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use sockbox::ping::source::Item;
use sockbox::ping::targets::{self, AddrRange, FamilyPref, Spec};
use sockbox::ping::{ChannelSource, IterSource, Next, PingError, Target, TargetSource};
use tokio::sync::mpsc;

use super::plan::{Names, Plan};
use crate::exit::usage;

/// Names resolved at once.
const RESOLVE_AHEAD: usize = 64;

/// Targets the channel holds ahead of the engine.
const CHANNEL_BOUND: usize = 4096;

/// The targets of a run.
pub enum Source {
    /// Addresses known now (ranges, literals).
    Iter(IterSource<Box<dyn Iterator<Item = Target>>>),
    /// Fed by a task (names to resolve, files, stdin).
    Channel(ChannelSource),
}

impl TargetSource for Source {
    fn next(&mut self) -> Next {
        match self {
            Self::Iter(i) => i.next(),
            Self::Channel(c) => c.next(),
        }
    }

    async fn ready(&mut self) {
        match self {
            Self::Iter(i) => i.ready().await,
            Self::Channel(c) => c.ready().await,
        }
    }
}

/// Where the words come from, decided before the runtime starts.
pub enum Input {
    /// Target words from the command line.
    Words(Vec<String>),
    /// Ranges, parsed (nothing expanded).
    Ranges(Vec<AddrRange>),
    /// A file (`None`: stdin), a target per line.
    File(Option<PathBuf>),
}

/// What is known about the targets before they are read.
pub struct Shape {
    pub input: Input,
    /// How many, when known.
    pub total: Option<u128>,
    /// Width of the longest label, when known (fping pads to it).
    pub width: usize,
    /// Whether IPv4 / IPv6 targets may come.
    pub v4: bool,
    pub v6: bool,
    /// Addresses of the wrong family for -4/-6, as given (reported as
    /// unresolved in fping style).
    pub wrong_family: Vec<String>,
    /// Ping style: the one target as given, and its address.
    pub single: Option<(String, IpAddr)>,
}

fn fits(pref: FamilyPref, a: &IpAddr) -> bool {
    pref.accepts(a)
}

/// The longest text form of an address in `r` (fping pads names to it).
fn range_width(r: &AddrRange) -> usize {
    let len = r.len();
    if len <= 1 << 16 {
        return r.clone().map(|a| a.to_string().len()).max().unwrap_or(0);
    }
    let ends = [r.first(), Some(r.last_addr())];
    let longest_end = ends
        .iter()
        .flatten()
        .map(|a| a.to_string().len())
        .max()
        .unwrap_or(0);
    if r.is_v4() {
        // Past 65536 addresses, every third and fourth octet value occurs:
        // the two last octets are at their longest ("255.255" is 7).
        let first_two = ends
            .iter()
            .flatten()
            .map(|a| a.to_string().rsplitn(3, '.').nth(2).map_or(0, str::len))
            .max()
            .unwrap_or(0);
        return longest_end.max(first_two + 8);
    }
    longest_end
}

/// Split `-g` words into ranges: one CIDR or A-B each, or a START END pair.
fn ranges(words: &[String], pref: FamilyPref) -> anyhow::Result<Vec<AddrRange>> {
    let pair = words.len() == 2 && !words.iter().any(|w| w.contains(['/', '-']));
    let specs: Vec<String> = if pair {
        vec![format!("{}-{}", words[0], words[1])]
    } else {
        words.to_vec()
    };
    let mut out = Vec::new();
    for spec in &specs {
        let r = targets::parse_range(spec).map_err(|e| usage(e.to_string()))?;
        if let Some(first) = r.first()
            && !fits(pref, &first)
        {
            return Err(usage(format!(
                "-g {spec}: an IPv{} range, but -{} was given",
                if r.is_v4() { 4 } else { 6 },
                if r.is_v4() { 6 } else { 4 },
            )));
        }
        out.push(r);
    }
    Ok(out)
}

/// The longest word of a file (one pass; the file is read again later).
fn file_width(path: &Path) -> anyhow::Result<usize> {
    let f = std::fs::File::open(path)
        .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    let mut width = 0;
    for line in std::io::BufReader::new(f).lines() {
        let line = line.map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
        for w in words_of(&line) {
            width = width.max(w.len());
        }
    }
    Ok(width)
}

/// The target of one line of a target file: its first word, as fping
/// reads it (`#` starts a comment; the rest of the line is ignored).
fn words_of(line: &str) -> impl Iterator<Item = &str> {
    line.split('#')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .take(1)
}

/// Look at the flags and words: where targets come from and what is known.
pub fn shape(
    words: &[String],
    file: Option<&Path>,
    generate: bool,
    p: &Plan,
) -> anyhow::Result<Shape> {
    let pref = p.pref;
    let (want_v4, want_v6) = (pref != FamilyPref::V6, pref != FamilyPref::V4);
    if let Some(f) = file {
        if !words.is_empty() {
            return Err(usage("-f and target words: give one or the other"));
        }
        let stdin = f.as_os_str() == "-";
        // Only a regular file can be read twice: a pipe, FIFO or
        // /dev/stdin is read once, as it comes, without widths.
        let width = match std::fs::metadata(f) {
            _ if stdin => 0,
            Ok(m) if !m.is_file() => 0,
            _ => file_width(f)?,
        };
        let path = (!stdin).then(|| f.to_path_buf());
        return Ok(Shape {
            input: Input::File(path),
            total: None,
            width,
            v4: want_v4,
            v6: want_v6,
            wrong_family: Vec::new(),
            single: None,
        });
    }
    if words.is_empty() {
        if generate {
            return Err(usage("-g: give a range (10.0.0.0/24, A-B, or START END)"));
        }
        return Ok(Shape {
            input: Input::File(None),
            total: None,
            width: 0,
            v4: want_v4,
            v6: want_v6,
            wrong_family: Vec::new(),
            single: None,
        });
    }
    if generate {
        let rs = ranges(words, pref)?;
        let total = rs
            .iter()
            .map(AddrRange::len)
            .fold(0u128, u128::saturating_add);
        let width = rs.iter().map(range_width).max().unwrap_or(0);
        let (v4, v6) = (
            rs.iter().any(AddrRange::is_v4),
            rs.iter().any(|r| !r.is_v4()),
        );
        return Ok(Shape {
            input: Input::Ranges(rs),
            total: Some(total),
            width,
            v4,
            v6,
            wrong_family: Vec::new(),
            single: None,
        });
    }
    let mut kept = Vec::new();
    let mut wrong = Vec::new();
    let (mut v4, mut v6) = (false, false);
    for w in words {
        match targets::parse_spec(w).map_err(|e| usage(e.to_string()))? {
            Spec::Addr(a) if !fits(pref, &a) => {
                if !p.fping {
                    return Err(usage(format!(
                        "{w}: an IPv{} address, but -{} was given",
                        if a.is_ipv4() { 4 } else { 6 },
                        if a.is_ipv4() { 6 } else { 4 },
                    )));
                }
                wrong.push(w.clone());
            }
            Spec::Addr(a) => {
                v4 |= a.is_ipv4();
                v6 |= a.is_ipv6();
                kept.push(w.clone());
            }
            Spec::Name(_) => {
                v4 |= want_v4;
                v6 |= want_v6;
                kept.push(w.clone());
            }
        }
    }
    let width = kept.iter().map(String::len).max().unwrap_or(0);
    Ok(Shape {
        total: Some(kept.len() as u128),
        input: Input::Words(kept),
        width,
        v4,
        v6,
        wrong_family: wrong,
        single: None,
    })
}

/// The label of a target: the word as given for names, nothing for
/// address literals, or as -n/-d/-A ask.
async fn label(word: &str, addr: IpAddr, literal: bool, names: Names) -> Option<Box<str>> {
    let lookup = names.rdns_all || (names.rdns_addrs && literal);
    let shown = if lookup {
        targets::reverse(addr)
            .await
            .unwrap_or_else(|| word.to_owned())
    } else {
        word.to_owned()
    };
    let text = match (names.show_addr, lookup) {
        (true, true) => format!("{shown} ({addr})"),
        (true, false) => addr.to_string(),
        (false, _) => shown,
    };
    (text != addr.to_string()).then(|| text.into_boxed_str())
}

/// Resolve one word into what the engine gets.
async fn resolve_word(word: String, pref: FamilyPref, names: Names) -> Item {
    match targets::parse_spec(&word) {
        Ok(Spec::Addr(a)) if pref.accepts(&a) => Ok(Target {
            name: label(&word, a, true, names).await,
            addr: a,
        }),
        Ok(Spec::Addr(_)) => Err((word, "Address family for hostname not supported".into())),
        Ok(Spec::Name(n)) => match targets::resolve(&n, pref).await {
            Ok(a) => Ok(Target {
                name: label(&n, a, false, names).await,
                addr: a,
            }),
            Err(PingError::Resolve(_, e)) => {
                let why = e.to_string();
                let why = why
                    .strip_prefix("failed to lookup address information: ")
                    .unwrap_or(&why)
                    .to_owned();
                Err((n, why))
            }
            Err(e) => Err((n, e.to_string())),
        },
        Err(e) => Err((word, e.to_string())),
    }
}

/// Resolve words as they come, up to [`RESOLVE_AHEAD`] at once, handing
/// them on in order.
async fn resolver(
    mut words: mpsc::Receiver<Result<String, String>>,
    out: mpsc::Sender<Item>,
    pref: FamilyPref,
    names: Names,
) {
    let mut ahead: VecDeque<tokio::task::JoinHandle<Item>> = VecDeque::new();
    let mut open = true;
    loop {
        let (has_front, room) = (!ahead.is_empty(), open && ahead.len() < RESOLVE_AHEAD);
        if !has_front && !open {
            return;
        }
        tokio::select! {
            biased;
            done = async {
                match ahead.front_mut() {
                    Some(h) => h.await,
                    None => std::future::pending().await,
                }
            }, if has_front => {
                ahead.pop_front();
                let item = done
                    .unwrap_or_else(|e| Err(("?".into(), format!("lookup task failed: {e}"))));
                if out.send(item).await.is_err() {
                    return;
                }
            }
            next = words.recv(), if room => match next {
                Some(Ok(w)) => ahead.push_back(tokio::spawn(resolve_word(w, pref, names))),
                Some(Err(why)) => {
                    ahead.push_back(tokio::spawn(async move { Err(("input".into(), why)) }));
                }
                None => open = false,
            },
        }
    }
}

/// Read a file or stdin on a thread, word by word.
fn read_words(path: Option<PathBuf>, tx: mpsc::Sender<Result<String, String>>) {
    std::thread::spawn(move || {
        let name = path
            .as_ref()
            .map_or_else(|| "standard input".to_owned(), |p| p.display().to_string());
        let reader: Box<dyn BufRead> = match &path {
            Some(p) => match std::fs::File::open(p) {
                Ok(f) => Box::new(std::io::BufReader::new(f)),
                Err(e) => {
                    let _ = tx.blocking_send(Err(format!("cannot read {name}: {e}")));
                    return;
                }
            },
            None => Box::new(std::io::BufReader::new(std::io::stdin())),
        };
        for line in reader.lines() {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.blocking_send(Err(format!("cannot read {name}: {e}")));
                    return;
                }
            };
            for w in words_of(&line) {
                if tx.blocking_send(Ok(w.to_owned())).is_err() {
                    return;
                }
            }
        }
    });
}

/// Build the source (inside the runtime: it may start a task).
pub fn build(input: Input, p: &Plan) -> Source {
    let (pref, names) = (p.pref, p.names);
    let lookups = names.rdns_addrs || names.rdns_all || names.show_addr;
    match input {
        Input::Ranges(rs) if !lookups => {
            let it: Box<dyn Iterator<Item = Target>> =
                Box::new(rs.into_iter().flatten().map(Target::addr));
            Source::Iter(IterSource(it))
        }
        Input::Words(ws) if ws.iter().all(|w| w.parse::<IpAddr>().is_ok()) && !lookups => {
            let it: Box<dyn Iterator<Item = Target>> = Box::new(
                ws.into_iter()
                    .filter_map(|w| w.parse().ok())
                    .map(Target::addr),
            );
            Source::Iter(IterSource(it))
        }
        input => {
            let (tx, source) = ChannelSource::new(CHANNEL_BOUND);
            let (wtx, wrx) = mpsc::channel(CHANNEL_BOUND);
            match input {
                Input::File(path) => read_words(path, wtx),
                Input::Words(ws) => {
                    tokio::spawn(async move {
                        for w in ws {
                            if wtx.send(Ok(w)).await.is_err() {
                                return;
                            }
                        }
                    });
                }
                Input::Ranges(rs) => {
                    tokio::spawn(async move {
                        for a in rs.into_iter().flatten() {
                            if wtx.send(Ok(a.to_string())).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            }
            tokio::spawn(resolver(wrx, tx, pref, names));
            Source::Channel(source)
        }
    }
}
