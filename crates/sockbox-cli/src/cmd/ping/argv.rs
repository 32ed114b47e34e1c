//! The command line of `sockbox ping` before clap sees it.
//!
//! `-s` means two things: the payload size to ping users (`ping -s 100`)
//! and "print final stats" to fping users (`fping -s -g …`). A `-s`
//! followed by a number (`-s 100`, `-s100`) stays the size; any other
//! `-s` becomes `--stats`. Short options may be grouped as with getopt
//! (`-aqs`, `-sc 3`).
//!
//! Also: whether the words look like an fping-style invocation, to pick
//! fping's exit code for a usage error clap itself reports.

use std::ffi::OsString;

/// Short options that take a value (the rest of the group, or the next
/// word), in `sockbox ping`.
const SHORT_WITH_VALUE: &[char] = &[
    'c', 'C', 'i', 'p', 'W', 't', 'r', 'B', 'w', 'I', 'f', 'Q', 'x', 'X', 'b', 'H', 'S', 'O', 'T',
];

/// Long options that take a value as the next word (when not `--opt=v`).
const LONG_WITH_VALUE: &[&str] = &[
    "--count",
    "--vcount",
    "--interval",
    "--rate",
    "--period",
    "--timeout",
    "--retry",
    "--retries",
    "--backoff",
    "--deadline",
    "--size",
    "--ttl",
    "--interface",
    "--iface",
    "--file",
    "--socket",
    "--squiet",
    "--reachable",
    "--fast-reachable",
    "--src",
    "--tos",
    // ping --serve and the daemon layer
    "--serve",
    "--config",
    "--shard",
    "--buckets",
    "--resolve-every",
    "--pid-file",
    "--user",
    "--group",
    "--chroot",
    "--log-file",
    "--log-format",
    "--grace",
];

/// Short options only fping has (their presence means fping style).
const FPING_SHORT: &[char] = &[
    'g', 'f', 'a', 'u', 'C', 't', 'r', 'B', 'e', 'l', 'Q', 'o', 'x', 'X', 'b', 'H', 'S', 'M', 'O',
    'R', 'd', 'A', 'N', 'p', 'T',
];

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Rewrite one group of short options (`-abc`, without the dash) into
/// `out`; returns true when the next word is this group's value.
fn rewrite_group(group: &str, next: Option<&str>, out: &mut Vec<OsString>) -> bool {
    let mut pending = String::new();
    let flush = |pending: &mut String, out: &mut Vec<OsString>| {
        if !pending.is_empty() {
            out.push(format!("-{pending}").into());
            pending.clear();
        }
    };
    for (i, c) in group.char_indices() {
        let rest = &group[i + c.len_utf8()..];
        if c == 's' {
            let size = if rest.is_empty() {
                next.is_some_and(is_number)
            } else {
                is_number(rest)
            };
            if size {
                pending.push('s');
                pending.push_str(rest);
                flush(&mut pending, out);
                return rest.is_empty();
            }
            flush(&mut pending, out);
            out.push("--stats".into());
            continue;
        }
        pending.push(c);
        if SHORT_WITH_VALUE.contains(&c) {
            pending.push_str(rest);
            flush(&mut pending, out);
            return rest.is_empty();
        }
    }
    flush(&mut pending, out);
    false
}

/// Rewrite the words after `ping` (see the module documentation).
pub fn rewrite(words: &[OsString]) -> Vec<OsString> {
    let mut out = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        i += 1;
        let Some(s) = w.to_str() else {
            out.push(w.clone());
            continue;
        };
        if s == "--" {
            out.extend(words[i - 1..].iter().cloned());
            break;
        }
        if s.starts_with("--") {
            out.push(w.clone());
            if LONG_WITH_VALUE.contains(&s) && i < words.len() {
                out.push(words[i].clone());
                i += 1;
            }
            continue;
        }
        if let Some(group) = s.strip_prefix('-').filter(|g| !g.is_empty()) {
            let next = words.get(i).and_then(|n| n.to_str());
            if rewrite_group(group, next, &mut out) && i < words.len() {
                out.push(words[i].clone());
                i += 1;
            }
            continue;
        }
        out.push(w.clone());
    }
    out
}

/// Rewrite a whole `sockbox …` command line: only the words after a
/// `ping` subcommand change.
pub fn rewrite_command_line(args: Vec<OsString>) -> Vec<OsString> {
    match args.iter().position(|a| a == "ping") {
        // The subcommand is the first word that is not an option.
        Some(at)
            if args[1..at]
                .iter()
                .all(|a| a.to_string_lossy().starts_with('-')) =>
        {
            let mut out: Vec<OsString> = args[..=at].to_vec();
            out.extend(rewrite(&args[at + 1..]));
            out
        }
        _ => args,
    }
}

/// True for a `sockbox ping …` command line in fping style.
pub fn is_fping_command_line(args: &[OsString]) -> bool {
    match args.iter().position(|a| a == "ping") {
        Some(at)
            if args[1..at]
                .iter()
                .all(|a| a.to_string_lossy().starts_with('-')) =>
        {
            looks_like_fping(&args[at + 1..])
        }
        _ => false,
    }
}

/// True when the words after `ping` ask for fping behaviour: an option
/// only fping has, or more than one target word.
pub fn looks_like_fping(words: &[OsString]) -> bool {
    let mut targets = 0;
    let mut i = 0;
    while i < words.len() {
        let s = words[i].to_string_lossy();
        i += 1;
        if let Some(long) = s.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or("");
            let fping_long = [
                "generate",
                "file",
                "alive",
                "unreachable",
                "unreach",
                "vcount",
                "retry",
                "retries",
                "backoff",
                "elapsed",
                "loop",
                "stats",
                "squiet",
                "outage",
                "reachable",
                "fast-reachable",
                "src",
                "dontfrag",
                "tos",
                "random",
                "rdns",
                "addr",
                "netdata",
                "period",
            ];
            if fping_long.contains(&name) {
                return true;
            }
            if LONG_WITH_VALUE.contains(&&*s) {
                i += 1;
            }
        } else if let Some(group) = s.strip_prefix('-').filter(|g| !g.is_empty()) {
            for (at, c) in group.char_indices() {
                if FPING_SHORT.contains(&c) {
                    return true;
                }
                let last = group.len() == at + c.len_utf8();
                if SHORT_WITH_VALUE.contains(&c) {
                    if last {
                        i += 1;
                    }
                    break;
                }
                if c == 's' {
                    // `-s N` is the size; a bare `-s` is fping's statistics.
                    let size = words
                        .get(i)
                        .is_some_and(|n| is_number(&n.to_string_lossy()));
                    if !last {
                        break;
                    }
                    if !size {
                        return true;
                    }
                    i += 1;
                    break;
                }
            }
        } else {
            targets += 1;
        }
    }
    targets > 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(words: &str) -> String {
        let v: Vec<OsString> = words.split(' ').map(OsString::from).collect();
        rewrite(&v)
            .iter()
            .map(|o| o.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn s_with_a_number_is_the_size_else_stats() {
        assert_eq!(rw("-s 100 host"), "-s 100 host");
        assert_eq!(rw("-s100 host"), "-s100 host");
        assert_eq!(rw("-s host1 host2"), "--stats host1 host2");
        assert_eq!(rw("-s -g 10.0.0.0/24"), "--stats -g 10.0.0.0/24");
        assert_eq!(rw("-aqs -g 10.0.0.0/24"), "-aq --stats -g 10.0.0.0/24");
        assert_eq!(rw("-sc 3 host"), "--stats -c 3 host");
        assert_eq!(rw("-qs 64 host"), "-qs 64 host");
        // A value that happens to contain an s is left alone.
        assert_eq!(rw("-I ens3 -f hosts"), "-I ens3 -f hosts");
        assert_eq!(rw("-Iens3 host"), "-Iens3 host");
        assert_eq!(rw("--file -s host"), "--file -s host");
        assert_eq!(rw("host -- -s"), "host -- -s");
    }

    #[test]
    fn only_the_ping_subcommand_is_rewritten() {
        let v = |s: &str| -> Vec<OsString> { s.split(' ').map(OsString::from).collect() };
        assert_eq!(
            rewrite_command_line(v("sockbox ping -s a b")),
            v("sockbox ping --stats a b")
        );
        assert_eq!(
            rewrite_command_line(v("sockbox udp send -s ping")),
            v("sockbox udp send -s ping")
        );
    }

    #[test]
    fn fping_style_is_recognised() {
        let v = |s: &str| -> Vec<OsString> { s.split(' ').map(OsString::from).collect() };
        assert!(looks_like_fping(&v("-g 10.0.0.0/24")));
        assert!(looks_like_fping(&v("a b")));
        assert!(looks_like_fping(&v("-c 3 -t 100 host")));
        assert!(looks_like_fping(&v("--stats host")));
        assert!(!looks_like_fping(&v("-c 3 host")));
        assert!(!looks_like_fping(&v("-I eth0 host")));
        assert!(!looks_like_fping(&v("-W 2 -w 5 -s 100 host")));
        assert!(looks_like_fping(&v("-s host")));
    }
}
