//! Linux-specific helpers (sysfs reads and similar).

use std::path::Path;

/// The MTU of interface `name`, read from sysfs; `None` when unknown.
pub fn iface_mtu(name: &str) -> Option<u32> {
    if name.contains('/') || name.is_empty() {
        return None;
    }
    let path = Path::new("/sys/class/net").join(name).join("mtu");
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
