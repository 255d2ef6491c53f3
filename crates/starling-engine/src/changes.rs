//! The change feed: what happened, in order, read by cursor.
//!
//! Each write that posts (a post, reply, repost or group post), deletes a
//! post, makes or removes a follow edge (follow, approved follow request,
//! unfollow, block), likes or unlikes, or changes a display name, bio or
//! avatar stores one [`ChangeRecord`] per change in its own atomic batch
//! (see [`crate::base`]'s `write`), so a change is never stored without
//! its record nor a record without its change.
//!
//! The feed is for the embedding application, not for its users: it
//! carries every change, group posts and protected accounts' posts
//! included, by id only. An application that shows what it built from
//! the feed to a user reads the posts as that user
//! ([`Engine::get_post_as`]), which applies the rules of every read path.

use starling_core::{ChangeRecord, Cursor, Error, Result};
use starling_inbox::check_page_size;
use starling_log::unix_millis;
use starling_store::Backend;

use crate::engine::Engine;

/// A page of the change feed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ChangePage {
    /// Records in position order, each after the cursor read from.
    pub changes: Vec<ChangeRecord>,
    /// Where the next read starts: after the last record of this page, or,
    /// when there was nothing new, past every position settled so far.
    /// Store it and read from it again later; it never skips a record.
    pub next: Cursor,
}

impl<B: Backend> Engine<B> {
    /// Up to `limit` change records after `cursor` (from the oldest kept
    /// when `None`), in the order they were stored.
    ///
    /// Reading again from the returned `next` gives exactly the records
    /// after this page, none twice and none skipped, across restarts: a
    /// record still being written stops the page before it. A cursor older
    /// than what the feed keeps ([`starling_core::Config::change_retention_ms`])
    /// is [`Error::ChangeCursorExpired`]; one from another listing is
    /// [`Error::MalformedCursor`]; `limit` is 1 to
    /// [`starling_core::MAX_PAGE_SIZE`].
    pub fn changes(&self, cursor: Option<&Cursor>, limit: usize) -> Result<ChangePage> {
        check_page_size(limit)?;
        let after = cursor.map(Cursor::as_changes).transpose()?;
        let s = &self.shared;
        // The horizon first: what is below it now is stored for good.
        let horizon = s.changes.horizon(unix_millis());
        let mut changes = Vec::with_capacity(limit);
        let floor_before = s.backend.change_floor()?;
        let start = after.unwrap_or(floor_before).max(floor_before);
        s.backend.changes_after(start, limit, &mut changes)?;
        // The floor after the read: a trim in between took records the
        // reader did not get.
        let floor = s.backend.change_floor()?;
        if let Some(after) = after
            && after < floor
        {
            return Err(Error::ChangeCursorExpired { floor });
        }
        if let Some(stop) = changes.iter().position(|r| r.position >= horizon) {
            changes.truncate(stop);
        }
        // With nothing new, every position below the horizon is settled
        // and holds no record after `start`: the reader moves up to it, so
        // its cursor does not fall behind the floor while the feed is quiet.
        let next = changes
            .last()
            .map_or(start.max(horizon.saturating_sub(1)), |r| r.position);
        Ok(ChangePage {
            changes,
            next: Cursor::changes(next),
        })
    }
}
