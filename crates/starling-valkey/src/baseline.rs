//! The raw baseline that fan-out over the cluster is measured against:
//! the same inbox members written to the same keys with plain pipelined
//! `ZADD`s, one pipeline per primary, through the same client and
//! connections, with no script, fence or intent. For benchmarks only.

use starling_core::codec;
use starling_core::{InboxEntry, Result, UserId};

use crate::ValkeyBackend;
use crate::cluster::{attempt, slot_of};

impl ValkeyBackend {
    /// Writes `entries` as the bulk fan-out would store them, but as plain
    /// `ZADD`s: the baseline of fan-out benchmarks. Bypasses the writer
    /// lease's fences: never use it on a store an engine serves.
    pub fn baseline_inbox_zadd(&self, entries: &[(UserId, InboxEntry)]) -> Result<()> {
        let keys: Vec<Vec<u8>> = entries.iter().map(|(o, _)| self.keys.inbox(*o)).collect();
        let items: Vec<(u16, usize)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (slot_of(k), i))
            .collect();
        self.cluster.on_nodes(&items, |conn, mine| {
            let mut pipe = redis::pipe();
            let mut member = Vec::with_capacity(16);
            for &(_, i) in mine {
                let entry = entries[i].1;
                member.clear();
                member.extend_from_slice(&codec::post_key(entry.post));
                member.extend_from_slice(&codec::encode_inbox_value(entry.author));
                pipe.cmd("ZADD").arg(&keys[i]).arg(0).arg(&member).ignore();
            }
            attempt(pipe.query::<()>(conn))
        })
    }

    /// Bytes the server reports for `owner`'s inbox (`MEMORY USAGE`).
    pub fn inbox_memory_usage(&self, owner: UserId) -> Result<u64> {
        let key = self.keys.inbox(owner);
        let bytes: Option<u64> = self.cluster.on_slot(slot_of(&key), |c| {
            attempt(redis::cmd("MEMORY").arg("USAGE").arg(&key).query(c))
        })?;
        Ok(bytes.unwrap_or(0))
    }
}

impl ValkeyBackend {
    /// Removes the inboxes of `owners` (`UNLINK`, pipelined per primary),
    /// so that a benchmark's next round starts from empty inboxes.
    /// Bypasses the writer lease's fences: never use it on a store an
    /// engine serves.
    pub fn baseline_clear_inboxes(&self, owners: &[UserId]) -> Result<()> {
        let keys: Vec<Vec<u8>> = owners.iter().map(|o| self.keys.inbox(*o)).collect();
        let items: Vec<(u16, usize)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (slot_of(k), i))
            .collect();
        self.cluster.on_nodes(&items, |conn, mine| {
            let mut pipe = redis::pipe();
            for &(_, i) in mine {
                pipe.cmd("UNLINK").arg(&keys[i]).ignore();
            }
            attempt(pipe.query::<()>(conn))
        })
    }
}
