//! The layering rules of DESIGN.md, checked on the source: the wire crate
//! does no I/O, no job module imports another, no library message names a
//! command-line flag, and no relay function grows past 100 lines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

/// The job modules: each is built on `net`, `daemon`, `sys` and the wire
/// crate, never on another job.
const JOBS: &[&str] = &["relay", "chat", "echo", "udp", "wol", "ping", "hexdump"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir` (or `dir.rs` itself), with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let file = dir.with_extension("rs");
    if file.is_file() {
        out.push((file.clone(), std::fs::read_to_string(&file).unwrap()));
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                out.push((p, text));
            }
        }
    }
    out
}

#[test]
fn the_wire_crate_depends_on_no_io_crate() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sockbox-wire/Cargo.toml");
    let text = std::fs::read_to_string(manifest).unwrap();
    let deps = text
        .split("[dependencies]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .unwrap_or("");
    for io in [
        "tokio",
        "socket2",
        "nix",
        "libc",
        "mio",
        "tokio-util",
        "async-nats",
        "hyper",
    ] {
        let found = deps.lines().any(|l| {
            l.trim_start().starts_with(&format!("{io} "))
                || l.trim_start().starts_with(&format!("{io}."))
        });
        assert!(!found, "sockbox-wire depends on the I/O crate {io}");
    }
}

#[test]
fn no_job_module_imports_another() {
    let mut bad = Vec::new();
    for job in JOBS {
        for (path, text) in sources(&src().join(job)) {
            for other in JOBS.iter().filter(|o| *o != job) {
                let needle = format!("crate::{other}::");
                for (n, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or("");
                    if code.contains(&needle) {
                        bad.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                    }
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "job modules import each other:\n{}",
        bad.join("\n")
    );
}

/// A string literal in library code that looks like a long flag
/// (` --word`), outside tests and comments.
fn flag_in_literal(line: &str) -> bool {
    let code = line.trim_start();
    if code.starts_with("//") || code.starts_with("#[doc") {
        return false;
    }
    let mut in_str = false;
    let bytes = code.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'"' && (i == 0 || bytes[i - 1] != b'\\') {
            in_str = !in_str;
        } else if in_str
            && b == b'-'
            && bytes.get(i + 1) == Some(&b'-')
            && bytes.get(i + 2).is_some_and(u8::is_ascii_lowercase)
            && (i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b'(' || bytes[i - 1] == b'`')
        {
            return true;
        }
    }
    false
}

#[test]
fn library_messages_name_no_command_line_flag() {
    let mut bad = Vec::new();
    let wire = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sockbox-wire/src");
    for root in [src(), wire] {
        for (path, text) in sources(&root) {
            let name = path.to_string_lossy();
            if name.contains("test") {
                continue;
            }
            // Unit tests at the bottom of a file are not messages.
            let body = text.split("#[cfg(test)]").next().unwrap_or("");
            for (n, line) in body.lines().enumerate() {
                if flag_in_literal(line) {
                    bad.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "library strings that name flags:\n{}",
        bad.join("\n")
    );
}

/// Lengths of the functions in `text`: from a line starting `fn`/`pub fn`
/// (any visibility, `async`) to the closing brace at the same indent.
fn function_lengths(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        let head = t
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("pub ")
            .trim_start_matches("async ");
        if !head.starts_with("fn ") {
            continue;
        }
        let indent = line.len() - t.len();
        let close = format!("{}}}", " ".repeat(indent));
        if let Some(end) = lines[i..].iter().position(|l| *l == close) {
            let name = head[3..].split(['(', '<']).next().unwrap_or("?").to_owned();
            out.push((name, end + 1));
        }
    }
    out
}

#[test]
fn no_relay_function_is_over_100_lines() {
    let mut long = Vec::new();
    for (path, text) in sources(&src().join("relay")) {
        for (name, len) in function_lengths(&text) {
            if len > 100 {
                long.push(format!("{} {name}: {len} lines", path.display()));
            }
        }
    }
    assert!(long.is_empty(), "{}", long.join("\n"));
}

#[test]
fn the_checks_themselves_catch_what_they_look_for() {
    assert!(flag_in_literal(
        r#"    #[error("cannot bind (raise --max-conns)")]"#
    ));
    assert!(!flag_in_literal("    // the --daemon flag"));
    assert!(!flag_in_literal(r#"    cmd.arg("-c")"#));
    let f = "fn a() {\n    x();\n}\n    pub async fn b() {\n    }\n";
    assert_eq!(
        function_lengths(f),
        vec![("a".to_owned(), 3), ("b".to_owned(), 2)]
    );
}
