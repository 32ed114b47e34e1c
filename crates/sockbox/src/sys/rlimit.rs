//! The open-file limit: servers with thousands of clients need more than
//! the usual soft limit of 1024 descriptors.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Raise the soft `RLIMIT_NOFILE` to the hard limit. Returns the soft limit
/// in force afterwards (unchanged when raising failed).
pub fn raise_nofile_limit() -> u64 {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft >= hard {
        return soft;
    }
    if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    // An "unlimited" hard limit cannot be the soft one; try the kernel's cap.
    let cap = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(soft)
        .min(hard);
    if cap > soft && setrlimit(Resource::RLIMIT_NOFILE, cap, hard).is_ok() {
        cap
    } else {
        soft
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_limit_reaches_hard_limit() {
        let after = raise_nofile_limit();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((0, 0));
        assert_eq!(after, soft);
        assert!(
            soft == hard || hard == nix::sys::resource::RLIM_INFINITY,
            "{soft} {hard}"
        );
    }
}
