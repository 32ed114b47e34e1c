//! Splitting one target list among N probers: each prober keeps the
//! targets whose stable hash falls in its share.
//!
//! The hash is 64-bit FNV-1a (offset basis `0xcbf29ce484222325`, prime
//! `0x100000001b3`) over the UTF-8 bytes of the target as configured: a
//! host name as written, an address (given alone or taken from a range) in
//! its canonical text form (`10.0.0.1`, `2001:db8::1`). Target `t` belongs
//! to shard `I` of `N` when `fnv1a64(t) % N == I - 1`. FNV-1a has no key
//! and no seed, so every prober, on every machine and in every version,
//! splits the same list the same way: N probers given the same list cover
//! each target exactly once.

use std::fmt;
use std::str::FromStr;

/// 64-bit FNV-1a of `bytes`.
pub const fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

/// One share of a target list: shard `index` (from 1) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// A shard that cannot be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// Not `I/N`.
    #[error("shard {0:?} is not I/N (two whole numbers, e.g. 1/3)")]
    Syntax(String),
    /// `I` outside `1..=N`, or `N` zero.
    #[error(
        "shard {index}/{count}: the shard number must be 1 to {count}, and the count at least 1"
    )]
    Range {
        /// The shard number given.
        index: u32,
        /// The shard count given.
        count: u32,
    },
}

impl Shard {
    /// Shard `index` (1 to `count`) of `count`.
    pub const fn new(index: u32, count: u32) -> Result<Self, ShardError> {
        if count == 0 || index == 0 || index > count {
            return Err(ShardError::Range { index, count });
        }
        Ok(Self { index, count })
    }

    /// The whole list (shard 1 of 1).
    pub const fn all() -> Self {
        Self { index: 1, count: 1 }
    }

    /// Its number, from 1.
    pub const fn index(&self) -> u32 {
        self.index
    }

    /// How many shards there are.
    pub const fn count(&self) -> u32 {
        self.count
    }

    /// Which shard (from 1) `target` belongs to among `count`.
    pub const fn of(target: &str, count: u32) -> u32 {
        let count = if count == 0 { 1 } else { count };
        (fnv1a64(target.as_bytes()) % count as u64) as u32 + 1
    }

    /// True when `target` (as configured, see the module documentation)
    /// belongs to this shard.
    pub const fn owns(&self, target: &str) -> bool {
        self.count == 1 || Self::of(target, self.count) == self.index
    }
}

impl Default for Shard {
    fn default() -> Self {
        Self::all()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, ShardError> {
        let syntax = || ShardError::Syntax(s.to_owned());
        let (i, n) = s.split_once('/').ok_or_else(syntax)?;
        let i: u32 = i.trim().parse().map_err(|_| syntax())?;
        let n: u32 = n.trim().parse().map_err(|_| syntax())?;
        Self::new(i, n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        // From the FNV reference test suite (64-bit FNV-1a).
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn a_fixed_target_stays_in_its_shard() {
        // Pinned: a change here would move targets between probers.
        // (computed independently of this code)
        assert_eq!(fnv1a64(b"127.0.0.1"), 0xaaba_fe71_04d9_14be);
        assert_eq!(Shard::of("127.0.0.1", 4), 3);
    }

    #[test]
    fn shards_cover_every_target_exactly_once() {
        let n = 5;
        let shards: Vec<Shard> = (1..=n).map(|i| Shard::new(i, n).unwrap()).collect();
        let mut per = vec![0usize; n as usize];
        for a in 0..2000u32 {
            let t = std::net::Ipv4Addr::from(0x0a00_0000 + a).to_string();
            let owners: Vec<usize> = (0..shards.len()).filter(|&k| shards[k].owns(&t)).collect();
            assert_eq!(owners.len(), 1, "{t}");
            per[owners[0]] += 1;
        }
        // Roughly even: every shard has a fair part of 2000.
        assert!(per.iter().all(|&c| c > 300), "{per:?}");
    }

    #[test]
    fn parse() {
        assert_eq!("2/3".parse::<Shard>().unwrap(), Shard::new(2, 3).unwrap());
        assert_eq!("1/1".parse::<Shard>().unwrap(), Shard::all());
        for bad in ["0/3", "4/3", "1/0", "x/3", "3", "1/2/3", ""] {
            let e = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(e.contains("shard"), "{bad}: {e}");
        }
        assert_eq!(Shard::new(2, 7).unwrap().to_string(), "2/7");
    }
}
