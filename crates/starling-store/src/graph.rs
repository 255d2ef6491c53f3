//! The graph store: users, the follow graph, links and groups.

use starling_core::{
    AuthorMode, Counts, Edge, Group, GroupId, LinkKind, PostId, Result, User, UserId, Username,
};

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
    /// Appends to `out`, in order, the followers-side edges of `followee`
    /// for those of `followers` (ascending) who follow it: one batched read.
    fn follower_edges(
        &self,
        followee: UserId,
        followers: &[UserId],
        out: &mut Vec<Edge>,
    ) -> Result<()>;
    /// The value of the link `(from, to)` of `kind`, if present.
    fn link(&self, kind: LinkKind, from: u64, to: u64) -> Result<Option<u64>>;
    /// Appends to `out` up to `limit` links `(to, value)` of `kind` listed
    /// under `from`, in `to` order, after `after`.
    fn links(
        &self,
        kind: LinkKind,
        from: u64,
        after: Option<u64>,
        limit: usize,
        out: &mut Vec<(u64, u64)>,
    ) -> Result<()>;
    /// The group with this id.
    fn group(&self, id: GroupId) -> Result<Option<Group>>;
    /// The largest group id assigned so far.
    fn last_group_id(&self) -> Result<Option<GroupId>>;
}
