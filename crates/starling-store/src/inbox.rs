//! The inbox store and the fan-out queue.

use starling_core::{Edge, FanoutJob, InboxEntry, PostId, Result, UserId};

/// The reads a backend answers about home-timeline inboxes.
pub trait InboxStore {
    /// Appends to `out` up to `limit` entries of `owner`'s inbox, newest
    /// first, starting below `before`.
    fn inbox(
        &self,
        owner: UserId,
        before: Option<PostId>,
        limit: usize,
        out: &mut Vec<InboxEntry>,
    ) -> Result<()>;
    /// The newest post id a trim of `owner`'s inbox removed, if any: the
    /// inbox may lack entries at or below it.
    fn inbox_floor(&self, owner: UserId) -> Result<Option<PostId>>;
    /// Appends to `out` the followees whose posts `reader` pulls at read
    /// time (pull edges), in followee order.
    fn pulled(&self, reader: UserId, out: &mut Vec<Edge>) -> Result<()>;
    /// Appends to `out` up to `limit` recorded last reads (user, ms) in user
    /// order, after `after`.
    fn last_reads(
        &self,
        after: Option<UserId>,
        limit: usize,
        out: &mut Vec<(UserId, u64)>,
    ) -> Result<()>;
}

/// The reads a backend answers about durable fan-out jobs.
pub trait FanoutQueue {
    /// The job for this post, if one is pending.
    fn job(&self, post: PostId) -> Result<Option<FanoutJob>>;
    /// Appends to `out` up to `limit` pending jobs in post order, after `after`.
    fn jobs(&self, after: Option<PostId>, limit: usize, out: &mut Vec<FanoutJob>) -> Result<()>;
}
