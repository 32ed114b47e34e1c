//! Process-level Linux facts and knobs the daemon layer needs: thread count,
//! `/proc/<pid>/status` fields, and the capability bounding set.

use std::io;
use std::path::Path;

/// The value of `key:` in a `/proc/.../status` text, trimmed.
pub fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

/// Read `/proc/self/status` (or any status file) as text.
pub fn read_status(path: &Path) -> io::Result<String> {
    std::fs::read_to_string(path)
}

/// How many threads this process runs now (the `Threads:` line of
/// `/proc/self/status`). Forking is only safe while this is 1.
pub fn thread_count() -> io::Result<usize> {
    let status = read_status(Path::new("/proc/self/status"))?;
    status_field(&status, "Threads")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| io::Error::other("no Threads: line in /proc/self/status"))
}

/// The highest capability number this kernel knows
/// (`/proc/sys/kernel/cap_last_cap`), 40 when the file cannot be read.
pub fn last_capability() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Remove every capability from the calling thread's bounding set, so no
/// program it (or a thread created after this call) executes can gain one,
/// set-user-ID binaries included. Needs `CAP_SETPCAP`. The capabilities the
/// thread holds now are kept (a server still binds low ports afterwards).
///
/// The bounding set is per thread: call this while the process has one
/// thread, before any runtime starts.
pub fn drop_capability_bounding_set() -> io::Result<()> {
    for cap in 0..=last_capability() {
        #[expect(unsafe_code)]
        // SAFETY: PR_CAPBSET_DROP takes an integer capability number and
        // touches no memory of ours.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
        if rc != 0 {
            let err = io::Error::last_os_error();
            // A capability number newer than this kernel: nothing to drop.
            if err.raw_os_error() == Some(libc::EINVAL) {
                break;
            }
            return Err(err);
        }
    }
    Ok(())
}

/// Parse a hexadecimal capability mask line (`CapEff:` and friends).
pub fn cap_mask(status: &str, key: &str) -> Option<u64> {
    u64::from_str_radix(status_field(status, key)?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tsockbox\nUmask:\t0027\nThreads:\t3\nUid:\t65534\t65534\t65534\t65534\nCapEff:\t0000000000000000\nCapBnd:\t000001ffffffffff\n";

    #[test]
    fn status_fields_are_found_and_trimmed() {
        assert_eq!(status_field(STATUS, "Threads"), Some("3"));
        assert_eq!(
            status_field(STATUS, "Uid"),
            Some("65534\t65534\t65534\t65534")
        );
        assert_eq!(status_field(STATUS, "Nope"), None);
        assert_eq!(cap_mask(STATUS, "CapEff"), Some(0));
        assert_eq!(cap_mask(STATUS, "CapBnd"), Some(0x1ff_ffff_ffff));
    }

    #[test]
    fn this_test_process_has_threads() {
        assert!(thread_count().unwrap() >= 1);
    }
}
