//! Linux capabilities: drop every one for good (after opening raw sockets)
//! and read the current sets.

use std::io;

/// The Linux capability ABI (`_LINUX_CAPABILITY_VERSION_3`).
const CAP_V3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drop every capability of the calling thread (effective, permitted and
/// inheritable, so they cannot come back), set `no_new_privs`, and check
/// that none is left. Call it before any other thread is started:
/// capabilities are per thread and threads inherit them when created.
pub fn drop_capabilities() -> io::Result<()> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: capset reads a valid v3 header and two data structs, both
    // live for the duration of the call.
    #[expect(unsafe_code)]
    let rc = unsafe { libc::syscall(libc::SYS_capset, &raw mut hdr, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    nix::sys::prctl::set_no_new_privs().map_err(io::Error::from)?;
    let (eff, perm) = capabilities()?;
    if eff != 0 || perm != 0 {
        return Err(io::Error::other(format!(
            "capabilities still present after dropping them (effective {eff:#x}, permitted {perm:#x})"
        )));
    }
    Ok(())
}

/// The calling thread's effective and permitted capability sets (64 bits).
pub fn capabilities() -> io::Result<(u64, u64)> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes two data structs into our array, which is large
    // enough for the v3 ABI.
    #[expect(unsafe_code)]
    let rc = unsafe { libc::syscall(libc::SYS_capget, &raw mut hdr, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_can_be_read() {
        assert!(capabilities().is_ok());
    }
}
