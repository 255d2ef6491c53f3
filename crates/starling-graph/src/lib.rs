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

use starling_core::{
    AuthorMode, Counts, Edge, Error, Group, GroupId, LinkKind, PostId, Result, User, UserId,
    Username,
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

/// Whether `a` blocks `b` or `b` blocks `a`.
pub fn blocked_either<S: GraphStore + ?Sized>(store: &S, a: UserId, b: UserId) -> Result<bool> {
    Ok(store.link(LinkKind::Blocks, a.0, b.0)?.is_some()
        || store.link(LinkKind::Blocks, b.0, a.0)?.is_some())
}

/// Whether `user` is a member of `group`.
pub fn is_member<S: GraphStore + ?Sized>(store: &S, group: GroupId, user: UserId) -> Result<bool> {
    Ok(store.link(LinkKind::Members, group.0, user.0)?.is_some())
}

/// Every `to` id of `kind` listed under `from`, in order (read in pages of
/// 1,024; for lists that are small by nature: a user's blocks and mutes,
/// a group's members).
pub fn all_links<S: GraphStore + ?Sized>(store: &S, kind: LinkKind, from: u64) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    let mut page = Vec::new();
    let mut after = None;
    loop {
        page.clear();
        store.links(kind, from, after, 1024, &mut page)?;
        out.extend(page.iter().map(|(to, _)| *to));
        match page.last() {
            Some((last, _)) if page.len() == 1024 => after = Some(*last),
            _ => return Ok(out),
        }
    }
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
