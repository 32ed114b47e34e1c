//! Allow/deny lists of addresses and CIDR ranges (`--allow`, `--deny`,
//! `--allowfile`, `--denyfile`).
//!
//! A peer is refused when it matches any deny entry, or when there are allow
//! entries and it matches none. IPv4 peers seen on a dual-stack socket
//! (`::ffff:a.b.c.d`) match IPv4 entries. Files hold one address or CIDR per
//! line; `#` starts a comment; blank lines are skipped. Files are re-read by
//! [`Acl::reload`]; a file that fails to parse leaves the old lists in force.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use ipnet::IpNet;

/// A wrong allow/deny entry or an unreadable list file.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    /// An entry given on the command line is not an address or CIDR.
    #[error(
        "{entry:?} is not an IP address or CIDR range (examples: 10.0.0.0/8, 192.0.2.7, fd00::/8)"
    )]
    Entry {
        /// The entry.
        entry: String,
    },
    /// A line of a list file is not an address or CIDR.
    #[error("{}:{line}: {entry:?} is not an IP address or CIDR range (examples: 10.0.0.0/8, 192.0.2.7, fd00::/8)", path.display())]
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
}

/// Parse one entry: an address (a single host) or a CIDR range.
pub fn parse_entry(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Some(net.trunc());
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}

/// Parse the text of a list file.
pub fn parse_list(text: &str, path: &Path) -> Result<Vec<IpNet>, AclError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        match parse_entry(line) {
            Some(net) => out.push(net),
            None => {
                return Err(AclError::FileEntry {
                    path: path.to_path_buf(),
                    line: i + 1,
                    entry: line.to_owned(),
                });
            }
        }
    }
    Ok(out)
}

fn read_list(path: &Path) -> Result<Vec<IpNet>, AclError> {
    let text = std::fs::read_to_string(path).map_err(|source| AclError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_list(&text, path)
}

/// `path` made absolute, so a reload still finds it after a daemon's
/// `chdir("/")`.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Allow and deny lists.
#[derive(Clone, Debug, Default)]
pub struct Acl {
    allow_inline: Vec<IpNet>,
    deny_inline: Vec<IpNet>,
    allow_files: Vec<PathBuf>,
    deny_files: Vec<PathBuf>,
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl Acl {
    /// Lists from command-line entries and files (read now).
    pub fn new(
        allow: &[String],
        deny: &[String],
        allow_files: &[PathBuf],
        deny_files: &[PathBuf],
    ) -> Result<Self, AclError> {
        let parse = |v: &[String]| {
            v.iter()
                .map(|e| parse_entry(e).ok_or_else(|| AclError::Entry { entry: e.clone() }))
                .collect::<Result<Vec<_>, _>>()
        };
        let mut acl = Self {
            allow_inline: parse(allow)?,
            deny_inline: parse(deny)?,
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

    /// True when the lists come partly from files (worth reloading).
    pub fn has_files(&self) -> bool {
        !self.allow_files.is_empty() || !self.deny_files.is_empty()
    }

    /// Re-read the files. On error the lists in force stay as they were.
    pub fn reload(&mut self) -> Result<(), AclError> {
        let mut allow = self.allow_inline.clone();
        for f in &self.allow_files {
            allow.extend(read_list(f)?);
        }
        let mut deny = self.deny_inline.clone();
        for f in &self.deny_files {
            deny.extend(read_list(f)?);
        }
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

    /// May `ip` connect? (Permits when the lock is poisoned only if the lists were open.)
    pub fn permits(&self, ip: IpAddr) -> bool {
        match self.0.read() {
            Ok(acl) => acl.permits(ip),
            Err(p) => p.into_inner().permits(ip),
        }
    }

    /// See [`Acl::allows_nobody`].
    pub fn allows_nobody(&self) -> bool {
        match self.0.read() {
            Ok(acl) => acl.allows_nobody(),
            Err(p) => p.into_inner().allows_nobody(),
        }
    }

    /// Re-read the list files.
    pub fn reload(&self) -> Result<(), AclError> {
        let mut copy = match self.0.read() {
            Ok(acl) => acl.clone(),
            Err(p) => p.into_inner().clone(),
        };
        copy.reload()?;
        match self.0.write() {
            Ok(mut acl) => *acl = copy,
            Err(p) => *p.into_inner() = copy,
        }
        Ok(())
    }

    /// True when the lists come partly from files.
    pub fn has_files(&self) -> bool {
        match self.0.read() {
            Ok(acl) => acl.has_files(),
            Err(p) => p.into_inner().has_files(),
        }
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
        std::fs::write(&path, "127.0.0.3\nnot-an-ip\n").unwrap();
        let err = shared.reload().unwrap_err().to_string();
        assert!(err.contains(":2:") && err.contains("not-an-ip"), "{err}");
        // The old list stays in force.
        assert!(!shared.permits(ip("127.0.0.3")));
    }
}
