//! The engine's locks: striped per-author (and per-reader) locks, and the
//! locks of the direct features.
//!
//! Everything that changes what an author's followers should see (a post,
//! a delete, a follow or unfollow of the author, each fan-out batch of the
//! author's posts) runs under the author's stripe. That orders follows
//! against fan-out: a follow either happens before a post's job reads the
//! follower page (and the job delivers), or after the post (and backfill
//! sees it).

use parking_lot::{Mutex, MutexGuard};
use starling_core::{PostId, UserId};

const STRIPES: usize = 1024;

pub(crate) struct AuthorLocks {
    stripes: Box<[Mutex<()>]>,
}

impl AuthorLocks {
    pub(crate) fn new() -> AuthorLocks {
        AuthorLocks {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    pub(crate) fn lock(&self, author: UserId) -> MutexGuard<'_, ()> {
        self.stripes[slot(author)].lock()
    }

    /// Locks the stripe of a post (the post locks: a post record's
    /// read-modify-write by like, unlike and delete).
    pub(crate) fn lock_post(&self, post: PostId) -> MutexGuard<'_, ()> {
        self.stripes[slot(UserId(post.0))].lock()
    }

    /// Locks the stripes of two users, lower stripe first (once when they
    /// share one), so that two callers locking the same pair cannot deadlock.
    pub(crate) fn lock_pair(
        &self,
        a: UserId,
        b: UserId,
    ) -> (MutexGuard<'_, ()>, Option<MutexGuard<'_, ()>>) {
        let (x, y) = (slot(a), slot(b));
        let (lo, hi) = (x.min(y), x.max(y));
        let first = self.stripes[lo].lock();
        let second = (hi != lo).then(|| self.stripes[hi].lock());
        (first, second)
    }
}

fn slot(user: UserId) -> usize {
    // Fibonacci hashing spreads dense ids over the stripes.
    (user.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize % STRIPES
}

/// The locks of the direct features, owned by the engine.
pub(crate) struct DirectLocks {
    /// Per-user stripes: a user's profile, and the conversation summaries
    /// they own. A message locks both users' stripes, lower stripe first.
    pub(crate) users: AuthorLocks,
    /// Phone numbers are unique across accounts: links check and write
    /// under this lock.
    pub(crate) phones: Mutex<()>,
    /// Held while a fan-out batch with device subscribers is planned and
    /// written, so the daily-usage read-check-write of concurrent batches
    /// (of different authors) cannot race.
    pub(crate) device: Mutex<()>,
    /// Held while the outbox is leased or acknowledged.
    pub(crate) outbox: Mutex<()>,
}

impl DirectLocks {
    pub(crate) fn new() -> DirectLocks {
        DirectLocks {
            users: AuthorLocks::new(),
            phones: Mutex::new(()),
            device: Mutex::new(()),
            outbox: Mutex::new(()),
        }
    }
}
