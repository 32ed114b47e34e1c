//! The per-address connection cap.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use super::server::Refusal;

/// Counts open connections per client address.
#[derive(Clone, Debug)]
pub(crate) struct PerAddress {
    max: Option<usize>,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection of an address; the count drops with it.
#[derive(Debug)]
pub(crate) struct AddrSlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerAddress {
    /// At most `max` per address (`None`: no cap).
    pub(crate) fn new(max: Option<usize>) -> Self {
        Self {
            max,
            open: Arc::default(),
        }
    }

    /// A slot for `ip`, or the refusal when it has `max` open already.
    pub(crate) fn take(&self, ip: IpAddr) -> Result<Option<AddrSlot>, Refusal> {
        let Some(max) = self.max else {
            return Ok(None);
        };
        let ip = ip.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return Err(Refusal::PerAddress { max });
        }
        *n += 1;
        Ok(Some(AddrSlot {
            ip,
            open: self.open.clone(),
        }))
    }
}

impl Drop for AddrSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_each_address_and_forgets_closed_ones() {
        let p = PerAddress::new(Some(2));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = p.take(a).unwrap();
        let _s2 = p.take(mapped).unwrap();
        assert_eq!(p.take(a).unwrap_err(), Refusal::PerAddress { max: 2 });
        assert!(p.take(b).unwrap().is_some());
        drop(s1);
        assert!(p.take(a).is_ok());
        assert!(PerAddress::new(None).take(a).unwrap().is_none());
    }
}
