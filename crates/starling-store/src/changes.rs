//! The change feed: records of what happened, by position.

use starling_core::{ChangeRecord, Result};

/// The reads a backend answers about the change feed.
pub trait ChangeStore {
    /// Appends to `out` up to `limit` records with a position above
    /// `after`, in position order.
    fn changes_after(&self, after: u64, limit: usize, out: &mut Vec<ChangeRecord>) -> Result<()>;
    /// The feed's floor: the newest position a trim removed (0 before any
    /// trim). Records above it are kept.
    fn change_floor(&self) -> Result<u64>;
    /// The largest position stored (0 when the feed is empty).
    fn last_change_position(&self) -> Result<u64>;
}
