//! Allow/deny lists of addresses, CIDR ranges and host names.
//!
//! A peer is refused when it matches any deny entry, or when there are allow
//! entries and it matches none. IPv4 peers seen on a dual-stack socket
//! (`::ffff:a.b.c.d`) match IPv4 entries. An entry is an address
//! (`192.0.2.7`), a CIDR range (`10.0.0.0/8`) or a host name (`localhost`),
//! which stands for every address it resolves to. Entries given inline may
//! hold several, separated by white space or commas; files hold them the
//! same way, any number per line; `#` starts a comment. Names are resolved
//! when the lists are made and again by [`Acl::reload`], which also re-reads
//! the files; a file that cannot be read or parsed, or a name that does not
//! resolve, leaves the old lists in force.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use ipnet::IpNet;

use super::addr::{AddrError, Family, parse_literal, resolve};

/// What an entry may look like, for messages.
const EXAMPLES: &str = "examples: 10.0.0.0/8, 192.0.2.7, fd00::/8, localhost";

/// A wrong allow/deny entry, an unreadable list file, or a name that does
/// not resolve.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    /// An entry given inline is not an address, CIDR range or host name.
    #[error("{entry:?} is not an IP address, CIDR range or host name ({EXAMPLES})")]
    Entry {
        /// The entry.
        entry: String,
    },
    /// An entry of a list file is not an address, CIDR range or host name.
    #[error("{}:{line}: {entry:?} is not an IP address, CIDR range or host name ({EXAMPLES})", path.display())]
    FileEntry {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The text found.
        entry: String,
    },
    /// A list file could not be read.
    #[error("cannot read the address list {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A host name in a list did not resolve.
    #[error("{origin}: {source}")]
    Resolve {
        /// Where the name was written: "allow list", "deny list" or
        /// `FILE:LINE`.
        origin: String,
        /// The resolver's answer.
        #[source]
        source: AddrError,
    },
}

/// One entry as written: a range now, or a name to resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    Net(IpNet),
    Name(String),
}

/// Parse one entry that is an address (a single host) or a CIDR range.
pub fn parse_entry(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Some(net.trunc());
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}

/// Parse one entry: an address, a CIDR range, or something shaped like a
/// host name (letters, digits, `-`, `_` and dots). `None` for anything
/// else, an address-shaped string that is no address (`300.1.1.1`) too.
fn parse_any(s: &str) -> Option<Entry> {
    if let Some(net) = parse_entry(s) {
        return Some(Entry::Net(net));
    }
    let name_like = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    match parse_literal(s) {
        Ok(None) if name_like => Some(Entry::Name(s.to_owned())),
        _ => None,
    }
}

/// The entries of one inline argument or file line.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
}

/// Parse the text of a list file (names are not resolved here).
fn parse_file(text: &str, path: &Path) -> Result<Vec<(Entry, usize)>, AclError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("");
        for word in words(line) {
            let entry = parse_any(word).ok_or_else(|| AclError::FileEntry {
                path: path.to_path_buf(),
                line: i + 1,
                entry: word.to_owned(),
            })?;
            out.push((entry, i + 1));
        }
    }
    Ok(out)
}

/// Parse the text of a list file that holds only addresses and ranges.
pub fn parse_list(text: &str, path: &Path) -> Result<Vec<IpNet>, AclError> {
    let mut out = Vec::new();
    for (entry, line) in parse_file(text, path)? {
        match entry {
            Entry::Net(net) => out.push(net),
            Entry::Name(name) => {
                return Err(AclError::FileEntry {
                    path: path.to_path_buf(),
                    line,
                    entry: name,
                });
            }
        }
    }
    Ok(out)
}

/// Add `entry` to `out`, resolving a name (every address it has).
fn add(
    out: &mut Vec<IpNet>,
    entry: &Entry,
    origin: impl FnOnce() -> String,
) -> Result<(), AclError> {
    match entry {
        Entry::Net(net) => out.push(*net),
        Entry::Name(name) => {
            let found = resolve(name, 0, Family::Any).map_err(|source| AclError::Resolve {
                origin: origin(),
                source,
            })?;
            out.extend(
                found
                    .into_iter()
                    .map(|a| IpNet::from(a.ip().to_canonical())),
            );
        }
    }
    Ok(())
}

/// Read a list file and resolve its names.
fn read_list(path: &Path) -> Result<Vec<IpNet>, AclError> {
    let text = std::fs::read_to_string(path).map_err(|source| AclError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (entry, line) in parse_file(&text, path)? {
        add(&mut out, &entry, || format!("{}:{line}", path.display()))?;
    }
    Ok(out)
}

/// The inline entries `v`, parsed (not resolved).
fn parse_inline(v: &[String]) -> Result<Vec<Entry>, AclError> {
    let mut out = Vec::new();
    for arg in v {
        if words(arg).next().is_none() {
            return Err(AclError::Entry { entry: arg.clone() });
        }
        for word in words(arg) {
            let entry = parse_any(word).ok_or_else(|| AclError::Entry {
                entry: word.to_owned(),
            })?;
            out.push(entry);
        }
    }
    Ok(out)
}

/// Inline entries and files, resolved and read into ranges.
fn build(entries: &[Entry], files: &[PathBuf], what: &str) -> Result<Vec<IpNet>, AclError> {
    let mut out = Vec::new();
    for e in entries {
        add(&mut out, e, || format!("{what} list"))?;
    }
    for f in files {
        out.extend(read_list(f)?);
    }
    Ok(out)
}

/// `path` made absolute, so a reload still finds it after a daemon's
/// `chdir("/")`.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Allow and deny lists.
#[derive(Clone, Debug, Default)]
pub struct Acl {
    allow_inline: Vec<Entry>,
    deny_inline: Vec<Entry>,
    allow_files: Vec<PathBuf>,
    deny_files: Vec<PathBuf>,
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl Acl {
    /// Lists from inline entries and files: the files are read and the
    /// names resolved now (blocking).
    pub fn new(
        allow: &[String],
        deny: &[String],
        allow_files: &[PathBuf],
        deny_files: &[PathBuf],
    ) -> Result<Self, AclError> {
        let mut acl = Self {
            allow_inline: parse_inline(allow)?,
            deny_inline: parse_inline(deny)?,
            allow_files: allow_files.iter().map(|p| absolute(p)).collect(),
            deny_files: deny_files.iter().map(|p| absolute(p)).collect(),
            allow: Vec::new(),
            deny: Vec::new(),
        };
        acl.reload()?;
        Ok(acl)
    }

    /// True when there is nothing to check.
    pub fn is_open(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty() && self.allow_files.is_empty()
    }

    /// True when allow files were given but list no address: every client
    /// is refused (worth a warning; a reload may fill them).
    pub fn allows_nobody(&self) -> bool {
        !self.allow_files.is_empty() && self.allow.is_empty()
    }

    /// True when the lists come partly from files.
    pub fn has_files(&self) -> bool {
        !self.allow_files.is_empty() || !self.deny_files.is_empty()
    }

    /// True when a reload may change the lists: they come partly from
    /// files or from host names.
    pub fn needs_reload(&self) -> bool {
        let named = |v: &[Entry]| v.iter().any(|e| matches!(e, Entry::Name(_)));
        self.has_files() || named(&self.allow_inline) || named(&self.deny_inline)
    }

    /// Re-read the files and resolve the names again (blocking). On error
    /// the lists in force stay as they were.
    pub fn reload(&mut self) -> Result<(), AclError> {
        let allow = build(&self.allow_inline, &self.allow_files, "allow")?;
        let deny = build(&self.deny_inline, &self.deny_files, "deny")?;
        self.allow = allow;
        self.deny = deny;
        Ok(())
    }

    /// May `ip` connect?
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if self.deny.iter().any(|n| n.contains(&ip)) {
            return false;
        }
        // An allow file that is empty allows nobody: the user asked for a list.
        if self.allow.is_empty() && self.allow_files.is_empty() {
            return true;
        }
        self.allow.iter().any(|n| n.contains(&ip))
    }
}

/// An [`Acl`] shared between a server's tasks and its reload trigger.
#[derive(Clone, Debug, Default)]
pub struct SharedAcl(Arc<RwLock<Acl>>);

impl SharedAcl {
    /// Share `acl`.
    pub fn new(acl: Acl) -> Self {
        Self(Arc::new(RwLock::new(acl)))
    }

    fn read<T>(&self, f: impl FnOnce(&Acl) -> T) -> T {
        match self.0.read() {
            Ok(acl) => f(&acl),
            Err(p) => f(&p.into_inner()),
        }
    }

    /// May `ip` connect?
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.read(|acl| acl.permits(ip))
    }

    /// See [`Acl::allows_nobody`].
    pub fn allows_nobody(&self) -> bool {
        self.read(Acl::allows_nobody)
    }

    /// Re-read the list files and resolve the names again (blocking: from
    /// async code, see [`SharedAcl::reload_async`]). On error the lists in
    /// force stay.
    pub fn reload(&self) -> Result<(), AclError> {
        let mut copy = self.read(Acl::clone);
        copy.reload()?;
        match self.0.write() {
            Ok(mut acl) => *acl = copy,
            Err(p) => *p.into_inner() = copy,
        }
        Ok(())
    }

    /// [`SharedAcl::reload`] on a blocking thread, for async callers (name
    /// resolution may take a while).
    pub async fn reload_async(&self) -> Result<(), AclError> {
        let acl = self.clone();
        match tokio::task::spawn_blocking(move || acl.reload()).await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled as the runtime shuts down: nothing changed.
            Err(_) => Ok(()),
        }
    }

    /// True when the lists come partly from files.
    pub fn has_files(&self) -> bool {
        self.read(Acl::has_files)
    }

    /// See [`Acl::needs_reload`].
    pub fn needs_reload(&self) -> bool {
        self.read(Acl::needs_reload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn entries_parse() {
        assert_eq!(parse_entry("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(
            parse_entry(" 192.0.2.7 ").unwrap().to_string(),
            "192.0.2.7/32"
        );
        assert_eq!(parse_entry("fd00::/8").unwrap().to_string(), "fd00::/8");
        assert!(parse_entry("example.com").is_none());
        assert!(parse_entry("10.0.0.0/33").is_none());
    }

    #[test]
    fn deny_wins_and_allow_restricts() {
        let acl = Acl::new(&["10.0.0.0/8".into()], &["10.9.0.0/16".into()], &[], &[]).unwrap();
        assert!(acl.permits(ip("10.1.1.1")));
        assert!(!acl.permits(ip("10.9.1.1")));
        assert!(!acl.permits(ip("192.0.2.1")));
        assert!(acl.permits(ip("::ffff:10.1.1.1")));
        assert!(!acl.permits(ip("::ffff:10.9.1.1")));
        let open = Acl::new(&[], &[], &[], &[]).unwrap();
        assert!(open.is_open() && open.permits(ip("::1")));
    }

    #[test]
    fn an_empty_allow_file_allows_nobody_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("allow.txt");
        std::fs::write(&path, "# nobody yet\n").unwrap();
        let acl = SharedAcl::new(Acl::new(&[], &[], std::slice::from_ref(&path), &[]).unwrap());
        assert!(acl.allows_nobody());
        assert!(!acl.permits(ip("127.0.0.1")));
        std::fs::write(&path, "127.0.0.1\n").unwrap();
        acl.reload().unwrap();
        assert!(!acl.allows_nobody());
        assert!(acl.permits(ip("127.0.0.1")));
        let open = Acl::new(&[], &["10.0.0.0/8".into()], &[], &[]).unwrap();
        assert!(!open.allows_nobody());
    }

    #[test]
    fn files_with_comments_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deny.txt");
        std::fs::write(&path, "# bad hosts\n127.0.0.2 # one\n\n").unwrap();
        let shared = SharedAcl::new(Acl::new(&[], &[], &[], std::slice::from_ref(&path)).unwrap());
        assert!(!shared.permits(ip("127.0.0.2")));
        assert!(shared.permits(ip("127.0.0.3")));
        std::fs::write(&path, "127.0.0.3\n").unwrap();
        shared.reload().unwrap();
        assert!(shared.permits(ip("127.0.0.2")));
        assert!(!shared.permits(ip("127.0.0.3")));
        std::fs::write(&path, "127.0.0.3\n10.0.0.0/33\n").unwrap();
        let err = shared.reload().unwrap_err().to_string();
        assert!(err.contains(":2:") && err.contains("10.0.0.0/33"), "{err}");
        // The old list stays in force.
        assert!(!shared.permits(ip("127.0.0.3")));
    }

    /// ncat resolves host names in --allow/--deny and in its allow files,
    /// and reads several entries on a line.
    #[test]
    fn host_names_and_several_entries_on_a_line_are_accepted() {
        let acl = Acl::new(&["localhost".into()], &[], &[], &[]).unwrap();
        assert!(acl.permits(ip("127.0.0.1")) && !acl.permits(ip("127.0.0.2")));
        assert!(acl.needs_reload());
        let deny = Acl::new(&[], &["localhost".into()], &[], &[]).unwrap();
        assert!(!deny.permits(ip("127.0.0.1")) && deny.permits(ip("127.0.0.2")));
        let several = Acl::new(&["127.0.0.2 127.0.0.3,127.0.0.4".into()], &[], &[], &[]).unwrap();
        for (host, ok) in [
            ("127.0.0.2", true),
            ("127.0.0.4", true),
            ("127.0.0.5", false),
        ] {
            assert_eq!(several.permits(ip(host)), ok, "{host}");
        }
        assert!(!several.needs_reload());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("allow.txt");
        std::fs::write(&path, "localhost 127.0.0.3 # two\n10.0.0.0/8, 192.0.2.7\n").unwrap();
        let file = Acl::new(&[], &[], std::slice::from_ref(&path), &[]).unwrap();
        for (host, ok) in [
            ("127.0.0.1", true),
            ("127.0.0.3", true),
            ("10.9.9.9", true),
            ("192.0.2.7", true),
            ("127.0.0.2", false),
        ] {
            assert_eq!(file.permits(ip(host)), ok, "{host}");
        }
        for bad in ["300.1.1.1", "10.0.0.0/33", "a b!", " ", "fe80::zz"] {
            let err = Acl::new(&[bad.into()], &[], &[], &[]).unwrap_err();
            assert!(matches!(err, AclError::Entry { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn a_name_that_does_not_resolve_fails_at_start_and_keeps_the_old_list_on_reload() {
        let err = Acl::new(&["nosuch..invalid".into()], &[], &[], &[]).unwrap_err();
        assert!(matches!(err, AclError::Resolve { .. }), "{err}");
        assert!(err.to_string().contains("nosuch..invalid"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("allow.txt");
        std::fs::write(&path, "localhost\n").unwrap();
        let shared = SharedAcl::new(Acl::new(&[], &[], std::slice::from_ref(&path), &[]).unwrap());
        std::fs::write(&path, "127.0.0.2\nnosuch..invalid\n").unwrap();
        let err = shared.reload().unwrap_err().to_string();
        assert!(
            err.contains(":2: ") && err.contains("nosuch..invalid"),
            "{err}"
        );
        assert!(shared.permits(ip("127.0.0.1")) && !shared.permits(ip("127.0.0.2")));
    }
}
