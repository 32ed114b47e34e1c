//! Allow/deny lists of addresses and CIDR ranges, swappable at run time
//! (SIGHUP re-reads the files).

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};

use ipnet::IpNet;

/// A list entry or file line that is not an address or CIDR range.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    /// Not an address or range.
    #[error("{0:?} is not an IP address or CIDR range (e.g. 192.0.2.7, 10.0.0.0/8, 2001:db8::/32)")]
    Parse(String),
    /// A list file could not be read.
    #[error("cannot read address list {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Parse one address (a host, taken as /32 or /128) or CIDR range.
pub fn parse_net(s: &str) -> Result<IpNet, AclError> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| AclError::Parse(s.to_owned()))
}

/// Parse a comma- or space-separated list of addresses and ranges.
pub fn parse_list(s: &str) -> Result<Vec<IpNet>, AclError> {
    s.split([',', ' ', '\t', '\n'])
        .filter(|p| !p.trim().is_empty())
        .map(parse_net)
        .collect()
}

/// Read a file of addresses and ranges: one or more per line, `#` starts a comment.
pub fn read_list(path: &Path) -> Result<Vec<IpNet>, AclError> {
    let text = std::fs::read_to_string(path).map_err(|source| AclError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        out.extend(parse_list(line)?);
    }
    Ok(out)
}

/// Who may connect: denied ranges win; when the allow list is non-empty,
/// only addresses in it are admitted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessList {
    /// Ranges admitted (empty: everyone not denied).
    pub allow: Vec<IpNet>,
    /// Ranges refused.
    pub deny: Vec<IpNet>,
}

impl AccessList {
    /// True when `ip` may connect. IPv4-mapped IPv6 addresses
    /// (`::ffff:192.0.2.1`) are matched as IPv4.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if self.deny.iter().any(|n| n.contains(&ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip))
    }
}

/// A shared, replaceable [`AccessList`]: the server reads it for every
/// connection, the CLI swaps in a new one on SIGHUP.
#[derive(Clone, Debug, Default)]
pub struct AccessControl {
    inner: Arc<RwLock<Arc<AccessList>>>,
}

impl AccessControl {
    /// A handle holding `list`.
    pub fn new(list: AccessList) -> Self {
        Self {
            inner: Arc::new(RwLock::new(Arc::new(list))),
        }
    }

    /// Replace the list; connections accepted after this use the new one.
    pub fn set(&self, list: AccessList) {
        let mut g = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *g = Arc::new(list);
    }

    /// The list in force now.
    pub fn get(&self) -> Arc<AccessList> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Shorthand for `get().permits(ip)`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.get().permits(ip)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn allow_and_deny() {
        let acl = AccessList {
            allow: parse_list("10.0.0.0/8, 192.0.2.7 2001:db8::/32").unwrap(),
            deny: parse_list("10.1.0.0/16").unwrap(),
        };
        assert!(acl.permits(ip("10.2.3.4")));
        assert!(!acl.permits(ip("10.1.3.4")));
        assert!(acl.permits(ip("192.0.2.7")));
        assert!(!acl.permits(ip("192.0.2.8")));
        assert!(acl.permits(ip("2001:db8::1")));
        assert!(acl.permits(ip("::ffff:10.2.3.4")));
        assert!(!acl.permits(ip("::ffff:10.1.3.4")));
        assert!(AccessList::default().permits(ip("203.0.113.1")));
    }

    #[test]
    fn parse_errors_and_host_bits() {
        assert!(matches!(parse_net("nope"), Err(AclError::Parse(_))));
        assert_eq!(parse_net("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_net("::1").unwrap().to_string(), "::1/128");
    }

    #[test]
    fn file_with_comments_and_swap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("deny");
        std::fs::write(&p, "# bad hosts\n127.0.0.2 # one\n\n192.0.2.0/24\n").unwrap();
        let deny = read_list(&p).unwrap();
        assert_eq!(deny.len(), 2);
        let ac = AccessControl::default();
        assert!(ac.permits(ip("127.0.0.2")));
        ac.set(AccessList {
            allow: vec![],
            deny,
        });
        assert!(!ac.permits(ip("127.0.0.2")));
        assert!(ac.permits(ip("127.0.0.1")));
        let err = read_list(&dir.path().join("missing")).unwrap_err();
        assert!(err.to_string().contains("missing"));
    }
}
