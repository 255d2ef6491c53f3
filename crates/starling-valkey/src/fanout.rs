//! The fan-out write path (the hot path of the cluster backend): a batch's
//! inbox entries grouped by the primary that owns their slots, written by
//! one call of the inbox script per chunk of entries, the chunks of a
//! primary pipelined on one connection and the primaries in parallel.
//!
//! A call spans many slots of one primary (the script is flagged
//! `allow-cross-slot-keys`), so it checks and raises the fence of every
//! slot it writes before it writes anything. Inbox writes are idempotent
//! and their job's cursor, written after them by the caller, is their redo
//! record: a call cut short (a slot moved away in the middle of it, a
//! connection lost) is simply sent again.

use redis::Value;
use starling_core::codec;
use starling_core::{Durability, InboxEntry, Mutation, PostId, Result, UserId};

use crate::backend::ValkeyBackend;
use crate::cluster::{Failure, attempt, slot_of};
use crate::layout::{INBOX, Plan};

/// Entries per script call: large enough that the call's overhead is
/// small beside its entries, small enough that one call holds a primary
/// for about a millisecond.
pub(crate) const CHUNK: usize = 512;

/// One inbox write of a fan-out batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InboxWrite {
    /// Put the entry, replacing an earlier entry of the same post.
    Put(UserId, InboxEntry),
    /// Remove the owner's entry of the post, if any.
    Delete(UserId, PostId),
}

impl InboxWrite {
    fn owner(&self) -> UserId {
        match *self {
            InboxWrite::Put(owner, _) | InboxWrite::Delete(owner, _) => owner,
        }
    }
}

impl ValkeyBackend {
    /// Writes `batch` if it is a fan-out batch (inbox writes and its job's
    /// write, see [`split_fanout`]): the inbox writes grouped by primary,
    /// then the job's cursor last. A crash between them resumes the job at
    /// its old cursor, which rewrites the same entries. `None` for any
    /// other batch.
    pub(crate) fn apply_fanout(
        &self,
        batch: &[Mutation],
        durability: Durability,
    ) -> Option<Result<()>> {
        let writes = split_fanout(batch)?;
        let _running = self.in_flight.start();
        let mut plan = Plan::new(&self.keys);
        for m in batch {
            if matches!(m, Mutation::PutJob(_) | Mutation::DeleteJob(_)) {
                plan.mutation(m);
            }
        }
        let job = plan.into_groups();
        Some(
            self.write_inboxes(&writes, durability)
                .and_then(|()| self.run(&job, durability)),
        )
    }

    /// Writes bulk-loaded entries as inbox puts. They are idempotent and
    /// their job's cursor, written after them, is their redo record: no
    /// intent, grouped by primary.
    pub(crate) fn bulk_inboxes(&self, entries: &[(UserId, InboxEntry)]) -> Result<()> {
        let writes: Vec<InboxWrite> = entries
            .iter()
            .map(|&(owner, entry)| InboxWrite::Put(owner, entry))
            .collect();
        self.write_inboxes(&writes, Durability::Buffered)
    }

    /// Writes a fan-out batch's inbox writes: per primary, one script call
    /// per [`CHUNK`] of its entries, pipelined, the primaries in parallel;
    /// with `Synced`, waits on each primary's connection for a replica.
    fn write_inboxes(&self, writes: &[InboxWrite], durability: Durability) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let keys: Vec<Vec<u8>> = writes.iter().map(|w| self.keys.inbox(w.owner())).collect();
        let items: Vec<(u16, usize)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (slot_of(k), i))
            .collect();
        let mut slots: Vec<u16> = items.iter().map(|(s, _)| *s).collect();
        slots.sort_unstable();
        slots.dedup();
        self.lease.register(&self.cluster, &self.keys, &slots)?;
        let sha = redis::Script::new(INBOX).get_hash().to_owned();
        let token = self.lease.token.to_string();
        self.cluster.on_nodes(&items, |conn, mine| {
            let mut pipe = redis::pipe();
            let mut fences: Vec<u16> = Vec::new();
            let mut member = [0u8; 16];
            // By slot (and, within a slot, in the batch's order), so that a
            // call checks each fence once for all the entries of its slot.
            let mut mine = mine.to_vec();
            mine.sort_unstable();
            for chunk in mine.chunks(CHUNK) {
                fences.clear();
                fences.extend(chunk.iter().map(|(s, _)| *s));
                fences.sort_unstable();
                fences.dedup();
                let cmd = pipe.cmd("EVALSHA").arg(&sha).arg(0).arg(&token);
                cmd.arg(fences.len());
                for s in &fences {
                    cmd.arg(self.keys.fence(*s));
                }
                for &(_, i) in chunk {
                    match writes[i] {
                        InboxWrite::Put(_, entry) => {
                            member[..8].copy_from_slice(&codec::post_key(entry.post));
                            member[8..].copy_from_slice(&codec::encode_inbox_value(entry.author));
                            cmd.arg(&keys[i]).arg(&member[..]);
                        }
                        InboxWrite::Delete(_, post) => {
                            cmd.arg(&keys[i]).arg(&codec::post_key(post)[..]);
                        }
                    }
                }
                cmd.ignore();
            }
            if durability == Durability::Synced {
                self.add_wait(&mut pipe);
            }
            let reply: Vec<Value> = attempt(pipe.query(conn))?;
            if durability == Durability::Synced {
                self.wait_for_replica(conn, reply.last())?;
            }
            Ok::<(), Failure>(())
        })
    }
}

/// Splits a fan-out batch into its inbox writes and the rest (its job's
/// write); `None` when the batch holds anything else.
fn split_fanout(batch: &[Mutation]) -> Option<Vec<InboxWrite>> {
    let mut writes = Vec::with_capacity(batch.len());
    let mut jobs = 0;
    for m in batch {
        match *m {
            Mutation::InboxPut { owner, entry } => writes.push(InboxWrite::Put(owner, entry)),
            Mutation::InboxDelete { owner, post } => writes.push(InboxWrite::Delete(owner, post)),
            Mutation::PutJob(_) | Mutation::DeleteJob(_) => jobs += 1,
            _ => return None,
        }
    }
    (jobs == 1).then_some(writes)
}
