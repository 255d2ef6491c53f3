//! Engine configuration.

use crate::{Error, PostId, Result};

/// The largest page any listing returns (timelines, follower lists, get-many).
pub const MAX_PAGE_SIZE: usize = 200;

/// When a write is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledge after the write-ahead log is fsync'd. Concurrent writers
    /// share one fsync (group commit).
    Synced,
    /// Acknowledge once the write is in the write-ahead log's OS buffer: a
    /// process crash loses nothing, a power cut may lose the last writes.
    Buffered,
}

/// How fan-out decides between pushing a post into inboxes and letting
/// readers pull it. Under both, authors with more than
/// [`Config::push_threshold`] followers are never fanned out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanoutPolicy {
    /// Push to every follower of an author under the threshold.
    Threshold,
    /// Decide per (author, reader) edge from measured rates: push when the
    /// reader reads the home timeline at least as often as the author
    /// posts, pull otherwise (Feeding Frenzy, SIGMOD 2010).
    Rates,
}

/// Engine configuration. `Config::default()` is a sensible production start.
#[derive(Clone, Debug)]
pub struct Config {
    /// When writes are acknowledged.
    pub durability: Durability,
    /// Longest post, in Unicode scalar values (default 280).
    pub max_post_chars: usize,
    /// Entries kept in each home-timeline inbox (default 800).
    pub inbox_cap: usize,
    /// Recent posts of an author copied into a new follower's inbox (default 20).
    pub backfill_posts: usize,
    /// Fan-out worker threads (default 2).
    pub fanout_workers: usize,
    /// Followers delivered per fan-out write batch (default 10,000).
    pub fanout_batch: usize,
    /// Posts of authors with at least this many followers are delivered in
    /// bulk: the inbox entries of the batches run under one hold of the
    /// author's lock are loaded as one sorted run past the write-ahead log
    /// (over RocksDB, one table file ingested whole), and the rest of those
    /// batches, the job's cursor with it, is written after it (default
    /// 50,000; `u64::MAX` never).
    pub bulk_fanout_min_followers: u64,
    /// Followers per batch of a bulk delivery (default 65,536). Batches
    /// are pages of the pipelined walk (the next read while this one is
    /// written), not files: a hold's batches share one load, so a smaller
    /// batch shortens the first read, which nothing overlaps, and costs no
    /// extra file.
    pub bulk_fanout_batch: usize,
    /// This node's id, stamped into post ids (0 to 1023).
    pub node_id: u16,
    /// Authors with more followers than this are not fanned out; readers
    /// merge their posts at read time (default 100,000).
    pub push_threshold: u64,
    /// Push/pull decision below the threshold (default [`FanoutPolicy::Threshold`]).
    pub fanout_policy: FanoutPolicy,
    /// Readers who have not read their home timeline for this long are
    /// skipped by fan-out, and their inbox is rebuilt on their next read
    /// (default 30 days; `None` never skips).
    pub inactive_after_ms: Option<u64>,
    /// Half-life of the decayed post and read rates the `Rates` policy
    /// compares (default one day).
    pub rate_half_life_ms: u64,
    /// Device updates queued per recipient per UTC day (default 10); the
    /// rest are counted as over the cap, not sent.
    pub device_daily_cap: u64,
    /// How long a phone confirmation code may be sent back before the
    /// pending link is dropped (default 10 minutes; 1 second to 1 day).
    pub phone_code_ttl_ms: u64,
    /// How long the change feed keeps its records (default 7 days; 1 ms
    /// to 10 years). Older records are trimmed as later writes are
    /// stored, and a cursor older than what is kept is refused with
    /// [`Error::ChangeCursorExpired`].
    pub change_retention_ms: u64,
    /// How long the username of a deleted account stays reserved (refused
    /// to sign-ups with [`Error::UsernameReserved`]) after its deletion
    /// (default 30 days; 0 frees it at once).
    pub name_hold_ms: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            durability: Durability::Synced,
            max_post_chars: 280,
            inbox_cap: 800,
            backfill_posts: 20,
            fanout_workers: 2,
            fanout_batch: 10_000,
            bulk_fanout_min_followers: 50_000,
            bulk_fanout_batch: 65_536,
            node_id: 0,
            push_threshold: 100_000,
            fanout_policy: FanoutPolicy::Threshold,
            inactive_after_ms: Some(30 * 24 * 3600 * 1000),
            rate_half_life_ms: 24 * 3600 * 1000,
            device_daily_cap: 10,
            phone_code_ttl_ms: 10 * 60 * 1000,
            change_retention_ms: 7 * 24 * 3600 * 1000,
            name_hold_ms: 30 * 24 * 3600 * 1000,
        }
    }
}

impl Config {
    /// Checks that every setting is in range.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &'static str| Err(Error::InvalidConfig(what));
        if self.max_post_chars == 0 || self.max_post_chars > 100_000 {
            return bad("max_post_chars must be between 1 and 100000");
        }
        if self.inbox_cap == 0 || self.inbox_cap > 1_000_000 {
            return bad("inbox_cap must be between 1 and 1000000");
        }
        if self.backfill_posts > 10_000 {
            return bad("backfill_posts must be at most 10000");
        }
        if self.fanout_workers == 0 || self.fanout_workers > 64 {
            return bad("fanout_workers must be between 1 and 64");
        }
        if self.fanout_batch == 0 || self.fanout_batch > 1_000_000 {
            return bad("fanout_batch must be between 1 and 1000000");
        }
        if self.bulk_fanout_batch == 0 || self.bulk_fanout_batch > 1_000_000 {
            return bad("bulk_fanout_batch must be between 1 and 1000000");
        }
        if self.rate_half_life_ms == 0 {
            return bad("rate_half_life_ms must be positive");
        }
        if self.device_daily_cap > 10_000 {
            return bad("device_daily_cap must be at most 10000");
        }
        if !(1000..=24 * 3600 * 1000).contains(&self.phone_code_ttl_ms) {
            return bad("phone_code_ttl_ms must be between 1000 and 86400000");
        }
        if !(1..=10 * 366 * 24 * 3600 * 1000).contains(&self.change_retention_ms) {
            return bad("change_retention_ms must be between 1 and 316224000000");
        }
        if self.node_id > PostId::MAX_NODE {
            return bad("node_id must be at most 1023");
        }
        Ok(())
    }
}
