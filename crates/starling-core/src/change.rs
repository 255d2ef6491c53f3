//! The change feed's records: what happened, in the order it was stored.
//!
//! Every write that changes what an application would index (a post, a
//! delete, a follow or unfollow, a like or unlike, a profile or avatar
//! change) stores one [`ChangeRecord`] per change in the same atomic batch,
//! at a position that only grows. Records name ids only: an application
//! reads the post or profile they name, as someone who may see it.

use crate::{PostId, UserId};

/// Bits of a change position below its milliseconds: a position is
/// `max(last + 1, unix_ms << CHANGE_POSITION_SEQUENCE_BITS)`, so positions
/// grow, order records as they were written, date them, and keep growing
/// across restarts and after a store lost its newest writes.
pub const CHANGE_POSITION_SEQUENCE_BITS: u32 = 20;

/// One thing that happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "type", rename_all = "snake_case"))]
pub enum Change {
    /// A post was stored: a post, a reply, a repost or a group post (read
    /// it to know which, and who may see it).
    Posted {
        /// The post.
        post: PostId,
        /// Its author.
        author: UserId,
    },
    /// A post was deleted.
    Deleted {
        /// The post.
        post: PostId,
        /// Its author.
        author: UserId,
    },
    /// A follow edge was made (a follow, or an approved follow request).
    Followed {
        /// Who follows.
        follower: UserId,
        /// Who is followed.
        followee: UserId,
    },
    /// A follow edge was removed (an unfollow, or a block).
    Unfollowed {
        /// Who followed.
        follower: UserId,
        /// Who was followed.
        followee: UserId,
    },
    /// A user liked a post (the original, when a repost was liked).
    Liked {
        /// Who likes it.
        user: UserId,
        /// The post.
        post: PostId,
    },
    /// A user took a like back.
    Unliked {
        /// Who liked it.
        user: UserId,
        /// The post.
        post: PostId,
    },
    /// A user's display name or bio was set.
    ProfileChanged {
        /// Whose profile.
        user: UserId,
    },
    /// A user's avatar was set or removed.
    AvatarChanged {
        /// Whose avatar.
        user: UserId,
    },
}

/// A change at its position in the feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ChangeRecord {
    /// Where it is in the feed: larger than every record stored before it.
    pub position: u64,
    /// What happened.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub change: Change,
}

impl ChangeRecord {
    /// About when the record was stored: milliseconds since the Unix epoch
    /// (exact unless the clock stepped back, when it runs ahead a little).
    pub fn unix_millis(&self) -> u64 {
        self.position >> CHANGE_POSITION_SEQUENCE_BITS
    }
}
