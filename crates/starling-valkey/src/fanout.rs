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
use starling_core::{Durability, InboxEntry, PostId, Result, UserId};

use crate::backend::ValkeyBackend;
use crate::cluster::{Failure, attempt, slot_of};

/// Entries per script call: large enough that the call's overhead is
/// small beside its entries, small enough that one call holds a primary
/// for about a millisecond.
pub(crate) const CHUNK: usize = 512;

/// One inbox write of a fan-out batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InboxWrite {
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

/// The inbox script. `ARGV[1]` is the writer's token, `ARGV[2]` the
/// number `f` of fence keys that follow (one per slot the call writes),
/// then pairs of an inbox key and either a member (16 bytes: the 8-byte
/// post key and the 8-byte inbox value), to put, or a post key (8 bytes),
/// to remove, applied in order. An inbox member is exactly 16 bytes, so
/// the members of a post are those from `[POST` to
/// `[POST\xff\xff\xff\xff\xff\xff\xff\xff`: a put removes them first (a
/// rewrite replaces the earlier entry), a delete removes them.
pub(crate) const INBOX: &str = r#"#!lua flags=allow-cross-slot-keys
local token = tonumber(ARGV[1])
local nf = tonumber(ARGV[2])
local raise = {}
for j = 3, 2 + nf do
  local fence = tonumber(redis.call('GET', ARGV[j]) or '0')
  if fence > token then
    return redis.error_reply('STARLINGFENCED a newer writer (' .. fence .. ') holds the store')
  end
  if fence < token then raise[#raise + 1] = ARGV[j] end
end
for _, f in ipairs(raise) do redis.call('SET', f, ARGV[1]) end
local top = '\255\255\255\255\255\255\255\255'
local i = 3 + nf
local n = #ARGV
while i < n do
  local k, m = ARGV[i], ARGV[i + 1]
  local p = string.sub(m, 1, 8)
  redis.call('ZREMRANGEBYLEX', k, '[' .. p, '[' .. p .. top)
  if #m == 16 then redis.call('ZADD', k, 0, m) end
  i = i + 2
end
return 1
"#;

impl ValkeyBackend {
    /// Writes a fan-out batch's inbox writes: per primary, one script call
    /// per [`CHUNK`] of its entries, pipelined, the primaries in parallel;
    /// with `Synced`, waits on each primary's connection for a replica.
    pub(crate) fn write_inboxes(
        &self,
        writes: &[InboxWrite],
        durability: Durability,
    ) -> Result<()> {
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
pub(crate) fn split_fanout(batch: &[starling_core::Mutation]) -> Option<Vec<InboxWrite>> {
    use starling_core::Mutation;
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
