//! The post store: posts, the per-author index and tombstones.

use starling_core::{Post, PostId, Result, UserId};

/// The reads a backend answers about posts.
pub trait PostStore {
    /// Appends to `out`, for each id in order, the post or tombstone, or `None`.
    fn posts(&self, ids: &[PostId], out: &mut Vec<Option<Post>>) -> Result<()>;
    /// Appends to `out` up to `limit` of `author`'s post ids (tombstoned
    /// ones too), newest first, starting below `before`.
    fn author_posts(
        &self,
        author: UserId,
        before: Option<PostId>,
        limit: usize,
        out: &mut Vec<PostId>,
    ) -> Result<()>;
    /// The largest post id stored.
    fn last_post_id(&self) -> Result<Option<PostId>>;
    /// Appends to `out` up to `limit` stored posts (tombstones too) in id
    /// order, after `after`. For checks and tools, not for serving.
    fn scan_posts(&self, after: Option<PostId>, limit: usize, out: &mut Vec<Post>) -> Result<()>;
}
