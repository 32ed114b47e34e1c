//! Room-wide nicknames in a JetStream key-value bucket: a nickname is a
//! key (`n.` and the name without case) created only if absent, so of two
//! nodes claiming one name at the same moment exactly one wins. The value
//! names the owner (`NODE.MEMBER`), so a claim can be given back only by
//! its owner, and the claims of a node declared gone are deleted by the
//! others (each delete checks the revision it read: a name claimed again
//! meanwhile is left alone). `userN` numbers come from a shared counter
//! (key `serial`), taken in blocks so nodes rarely contend.

use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::kv::{CreateErrorKind, Operation, Store};
use async_nats::jetstream::stream;
use bytes::Bytes;

use super::ClusterError;
use crate::chat::command::nick_key;
use crate::chat::hub::ClaimError;

/// Numbers taken from the shared counter at a time.
const BLOCK: u64 = 64;

/// The bucket and this node's block of `userN` numbers.
pub(crate) struct Nicks {
    bucket: String,
    js: async_nats::jetstream::Context,
    store: Mutex<Option<Store>>,
    node: u64,
    /// `(next, end)`: numbers `next..end` are this node's to give.
    numbers: Mutex<(u64, u64)>,
    timeout: Duration,
}

fn key(nick: &str) -> String {
    format!("n.{}", nick_key(nick))
}

fn store_err(e: impl std::fmt::Display) -> ClaimError {
    ClaimError::Store(e.to_string())
}

/// The owner node of a claim value `NODE.MEMBER`.
fn owner(value: &[u8]) -> Option<(u64, u64)> {
    let v = std::str::from_utf8(value).ok()?;
    let (n, m) = v.split_once('.')?;
    Some((u64::from_str_radix(n, 16).ok()?, m.parse().ok()?))
}

impl Nicks {
    /// The bucket `bucket`, not opened yet (see [`Nicks::reopen`]): until
    /// it is, claims fail with a store error.
    pub fn new(client: async_nats::Client, bucket: String, node: u64, timeout: Duration) -> Self {
        Self {
            bucket,
            js: async_nats::jetstream::new(client),
            store: Mutex::new(None),
            node,
            numbers: Mutex::new((0, 0)),
            timeout,
        }
    }

    /// (Re)open the bucket, creating it when missing (a NATS server
    /// restarted without its store loses it).
    pub async fn reopen(&self) -> Result<(), ClusterError> {
        // The stream a key-value bucket is, made by hand: the client's own
        // bucket creation first asks for account details that NATS 2.9
        // does not send in the form it expects.
        let cfg = stream::Config {
            name: format!("KV_{}", self.bucket),
            subjects: vec![format!("$KV.{}.>", self.bucket)],
            max_messages_per_subject: 1,
            max_message_size: 256,
            storage: stream::StorageType::Memory,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            num_replicas: 1,
            discard: stream::DiscardPolicy::New,
            ..stream::Config::default()
        };
        let opened = tokio::time::timeout(self.timeout, async {
            if let Ok(s) = self.js.get_key_value(&self.bucket).await {
                return Ok(s);
            }
            // Another node may create it at the same moment: then it is
            // there to open.
            let created = self.js.get_or_create_stream(cfg).await;
            if let (Err(e), Err(_)) = (&created, self.js.get_key_value(&self.bucket).await) {
                return Err(e.to_string());
            }
            self.js
                .get_key_value(&self.bucket)
                .await
                .map_err(|e| e.to_string())
        })
        .await;
        let store = match opened {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(ClusterError::Store {
                    bucket: self.bucket.clone(),
                    reason: e,
                });
            }
            Err(_) => {
                return Err(ClusterError::Store {
                    bucket: self.bucket.clone(),
                    reason: format!("no answer within {:?}", self.timeout),
                });
            }
        };
        *self.lock_store() = Some(store);
        Ok(())
    }

    /// True once the bucket was opened.
    pub fn is_open(&self) -> bool {
        self.lock_store().is_some()
    }

    fn lock_store(&self) -> std::sync::MutexGuard<'_, Option<Store>> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn store(&self) -> Result<Store, ClaimError> {
        self.lock_store()
            .clone()
            .ok_or_else(|| ClaimError::Store("the nickname bucket is not open".into()))
    }

    async fn timed<T, E: std::fmt::Display>(
        &self,
        f: impl Future<Output = Result<T, E>>,
    ) -> Result<T, ClaimError> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(r) => r.map_err(store_err),
            Err(_) => Err(ClaimError::Store(format!(
                "no answer within {:?}",
                self.timeout
            ))),
        }
    }

    /// Claim `nick` for local member `id`. `stale(node)`: true when a claim
    /// of `node` may be taken over (that node is gone).
    pub async fn claim(
        &self,
        id: u64,
        nick: &str,
        stale: impl Fn(u64) -> bool,
    ) -> Result<(), ClaimError> {
        let store = self.store()?;
        let k = key(nick);
        let value = Bytes::from(format!("{:016x}.{id}", self.node));
        for _ in 0..3 {
            let created = tokio::time::timeout(self.timeout, store.create(&k, value.clone())).await;
            match created {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) if e.kind() == CreateErrorKind::AlreadyExists => {}
                Ok(Err(e)) => return Err(store_err(e)),
                Err(_) => return Err(store_err("no answer in time")),
            }
            let Some(entry) = self.timed(store.entry(k.clone())).await? else {
                continue;
            };
            if matches!(entry.operation, Operation::Delete | Operation::Purge) {
                continue;
            }
            match owner(&entry.value) {
                Some((n, m)) if n == self.node && m == id => return Ok(()),
                Some((n, _)) if n != self.node && stale(n) => {
                    // A claim of a node gone: take it over if unchanged.
                    let _ = self
                        .timed(store.delete_expect_revision(&k, Some(entry.revision)))
                        .await;
                }
                _ => return Err(ClaimError::Taken(nick.to_owned())),
            }
        }
        Err(ClaimError::Taken(nick.to_owned()))
    }

    /// Give back `nick` if local member `id` holds it.
    pub async fn release(&self, id: u64, nick: &str) {
        self.delete_if(nick, |n, m| n == self.node && m == id).await;
    }

    /// Delete the claims of node `node` on these nicknames, as long as
    /// `gone(node)` still says it is gone (it may come back meanwhile and
    /// claim them again).
    pub async fn reap(&self, node: u64, nicks: &[String], gone: impl Fn(u64) -> bool) {
        for nick in nicks {
            self.delete_if(nick, |n, _| n == node && gone(n)).await;
        }
    }

    async fn delete_if(&self, nick: &str, whose: impl Fn(u64, u64) -> bool) {
        let Ok(store) = self.store() else { return };
        let k = key(nick);
        let Ok(Some(entry)) = self.timed(store.entry(k.clone())).await else {
            return;
        };
        if entry.operation == Operation::Put
            && owner(&entry.value).is_some_and(|(n, m)| whose(n, m))
        {
            let _ = self
                .timed(store.delete_expect_revision(&k, Some(entry.revision)))
                .await;
        }
    }

    /// The next `userN` number: from this node's block, taking a new block
    /// from the shared counter when it is used up. `shared`: the counter
    /// may be asked (the room is whole); otherwise, and when it fails, the
    /// numbers go on past the block (a clash is settled when the room is
    /// whole again).
    pub async fn next_number(&self, shared: bool) -> u64 {
        {
            let mut n = self.lock_numbers();
            if n.0 < n.1 {
                n.0 += 1;
                return n.0 - 1;
            }
        }
        let block = if shared {
            self.take_block().await
        } else {
            None
        };
        let mut n = self.lock_numbers();
        match block {
            Some(start) if start >= n.1 => *n = (start + 1, start + BLOCK),
            _ => *n = (n.0 + 1, n.0 + 1),
        }
        n.0 - 1
    }

    fn lock_numbers(&self) -> std::sync::MutexGuard<'_, (u64, u64)> {
        self.numbers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Take `BLOCK` numbers from the shared counter: the first one.
    async fn take_block(&self) -> Option<u64> {
        let store = self.store().ok()?;
        for _ in 0..20 {
            let entry = self.timed(store.entry("serial")).await.ok()?;
            let done = match entry.filter(|e| e.operation == Operation::Put) {
                None => {
                    let v = Bytes::from(BLOCK.to_string());
                    self.timed(store.create("serial", v)).await.map(|_| 1)
                }
                Some(e) => {
                    let last: u64 = std::str::from_utf8(&e.value).ok()?.parse().ok()?;
                    let v = Bytes::from((last + BLOCK).to_string());
                    self.timed(store.update("serial", v, e.revision))
                        .await
                        .map(|_| last + 1)
                }
            };
            if let Ok(start) = done {
                return Some(start);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_values_name_their_owner() {
        assert_eq!(owner(b"00000000000000ff.12"), Some((255, 12)));
        assert_eq!(owner(b"zz.1"), None);
        assert_eq!(owner(b"ff"), None);
        assert_eq!(key("BoB"), "n.bob");
    }
}
