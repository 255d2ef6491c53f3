//! The follow graph: who follows whom, both ways, with O(1) counts.
//!
//! This crate owns the graph half of Starling's storage seam,
//! [`GraphStore`]: the reads a backend must answer about users and edges.
//! Writes are [`starling_core::Mutation`]s applied by the backend. It knows
//! nothing of RocksDB, posts or inboxes.
//!
//! Edges are stored in both directions, so both the followers and the
//! following of a user are one ordered range each; listing is always paged,
//! so a user with ten million followers never costs ten million ids of memory.

use starling_core::{AuthorMode, Counts, Edge, Error, PostId, Result, User, UserId, Username};

/// Which side of a user's edges to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The accounts that follow the user.
    Followers,
    /// The accounts the user follows.
    Following,
}

/// The reads a backend answers about users and the follow graph.
pub trait GraphStore {
    /// The user with this id.
    fn user(&self, id: UserId) -> Result<Option<User>>;
    /// The id of the user with this name (compared without case).
    fn user_id_by_name(&self, name: &Username) -> Result<Option<UserId>>;
    /// The largest user id assigned so far.
    fn last_user_id(&self) -> Result<Option<UserId>>;
    /// The `since` watermark of the edge `follower -> followee`, if it exists.
    fn edge(&self, follower: UserId, followee: UserId) -> Result<Option<PostId>>;
    /// The followers-side copy of the edge `follower -> followee` (with its
    /// mode), if it exists.
    fn follower_edge(&self, followee: UserId, follower: UserId) -> Result<Option<Edge>>;
    /// Appends to `out` up to `limit` edges of `user` on side `dir`, in
    /// ascending id order, starting after `after`.
    fn edges(
        &self,
        user: UserId,
        dir: Direction,
        after: Option<UserId>,
        limit: usize,
        out: &mut Vec<Edge>,
    ) -> Result<()>;
    /// The user's counts, in O(1).
    fn counts(&self, user: UserId) -> Result<Counts>;
    /// How the author's posts are delivered.
    fn author_mode(&self, author: UserId) -> Result<AuthorMode>;
}

/// Checks the rule every follow and unfollow obeys.
pub fn check_edge(follower: UserId, followee: UserId) -> Result<()> {
    if follower == followee {
        Err(Error::SelfFollow)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_edges_are_refused() {
        assert!(matches!(
            check_edge(UserId(1), UserId(1)),
            Err(Error::SelfFollow)
        ));
        assert!(check_edge(UserId(1), UserId(2)).is_ok());
    }
}
