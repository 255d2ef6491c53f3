//! The follow graph: who follows whom, both ways, with O(1) counts.
//!
//! This crate holds the rules over the graph half of Starling's storage
//! seam ([`GraphStore`], declared in `starling-store`): blocks, membership,
//! whole link lists, the rule every edge obeys. It knows nothing of RocksDB,
//! posts or inboxes.
//!
//! Edges are stored in both directions, so both the followers and the
//! following of a user are one ordered range each; listing is always paged,
//! so a user with ten million followers never costs ten million ids of memory.

use starling_core::{Error, GroupId, LinkKind, Result, UserId};
use starling_store::GraphStore;

/// Whether `a` blocks `b` or `b` blocks `a`.
pub fn blocked_either<S: GraphStore + ?Sized>(store: &S, a: UserId, b: UserId) -> Result<bool> {
    Ok(store.link(LinkKind::Blocks, a.0, b.0)?.is_some()
        || store.link(LinkKind::Blocks, b.0, a.0)?.is_some())
}

/// Whether `user` is a member of `group`.
pub fn is_member<S: GraphStore + ?Sized>(store: &S, group: GroupId, user: UserId) -> Result<bool> {
    Ok(store.link(LinkKind::Members, group.0, user.0)?.is_some())
}

/// Whether `user`'s account is protected: its posts are seen by the
/// account and its followers only ([`reads_author`]), and following it
/// takes a request the account approves.
pub fn is_protected<S: GraphStore + ?Sized>(store: &S, user: UserId) -> Result<bool> {
    Ok(store.link(LinkKind::Protected, user.0, 0)?.is_some())
}

/// Whether `reader` may read `author`'s posts as far as protection goes:
/// the author is public, or the reader is the author or follows them
/// (every follower of a protected account was approved by it). Blocks,
/// audiences and deletion are decided elsewhere.
pub fn reads_author<S: GraphStore + ?Sized>(
    store: &S,
    reader: UserId,
    author: UserId,
) -> Result<bool> {
    Ok(reader == author || !is_protected(store, author)? || store.edge(reader, author)?.is_some())
}

/// Whether `from` has a pending follow request to `to`.
pub fn has_request<S: GraphStore + ?Sized>(store: &S, from: UserId, to: UserId) -> Result<bool> {
    Ok(store
        .link(LinkKind::FollowRequests, to.0, from.0)?
        .is_some())
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
