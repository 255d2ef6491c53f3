//! An inbox recomputed from the ground truth (users, edges, posts).

use std::ops::ControlFlow;

use starling_core::paging::{PAGE, for_each_page};
use starling_core::{InboxEntry, Mutation, PostId, Result, UserId};
use starling_store::{Direction, GraphStore, PostStore};

use crate::view::delivered_to;

/// What `owner`'s inbox must hold, newest first, at most `limit` entries:
/// the owner's own live posts; for each followee, its live posts newer than
/// the edge's `since` watermark, and of the posts up to the watermark the
/// newest `backfill` ids, if still live (the backfill made at follow time);
/// a group post only if the owner is in its group ([`delivered_to`]).
///
/// Fan-out, replayed or not, converges to exactly this (within the cap);
/// `check` compares the two.
pub fn expected_inbox<S: GraphStore + PostStore + ?Sized>(
    store: &S,
    owner: UserId,
    backfill: usize,
    limit: usize,
) -> Result<Vec<InboxEntry>> {
    let mut out = Vec::new();
    collect_author(store, owner, owner, PostId(0), 0, limit, &mut out)?;
    for_each_page(
        PAGE,
        |after, size, edges| store.edges(owner, Direction::Following, after, size, edges),
        |edge| edge.user,
        |edges| {
            for edge in edges {
                collect_author(
                    store, owner, edge.user, edge.since, backfill, limit, &mut out,
                )?;
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    out.sort_by_key(|e| std::cmp::Reverse(e.post));
    out.truncate(limit);
    Ok(out)
}

/// The trim that goes with copying the newest `cap` posts of a listing
/// into `owner`'s inbox (a rebuild, a member joining a group, a pull edge
/// turned to push) when the copy stopped at the cap: `window` holds the
/// ids the copy read, newest first. Older posts may belong in the inbox
/// and were not copied, so the floor moves to just below the window: reads
/// take what lies under it from the post logs, and no later retraction of a
/// copied entry uncovers a hole above the floor. None when the copy was
/// whole.
pub fn below_window(owner: UserId, window: &[PostId], cap: usize) -> Option<Mutation> {
    if window.len() < cap {
        return None;
    }
    let oldest = window.last()?;
    Some(Mutation::InboxTrim {
        owner,
        through: PostId(oldest.0.checked_sub(1)?),
    })
}

fn collect_author<S: GraphStore + PostStore + ?Sized>(
    store: &S,
    owner: UserId,
    author: UserId,
    since: PostId,
    backfill: usize,
    limit: usize,
    out: &mut Vec<InboxEntry>,
) -> Result<()> {
    let mut posts = Vec::new();
    let (mut newer_live, mut older_seen) = (0, 0);
    for_each_page(
        PAGE,
        |before, size, ids| store.author_posts(author, before, size, ids),
        |&id| id,
        |ids| {
            posts.clear();
            store.posts(ids, &mut posts)?;
            for (id, post) in ids.iter().zip(&posts) {
                let live = match post {
                    Some(p) if !p.deleted => delivered_to(store, p, owner)?,
                    _ => false,
                };
                let wanted = if *id > since {
                    newer_live += usize::from(live);
                    true
                } else {
                    older_seen += 1;
                    older_seen <= backfill
                };
                if wanted && live {
                    out.push(InboxEntry { post: *id, author });
                }
                if newer_live >= limit || (*id <= since && older_seen >= backfill) {
                    return Ok(ControlFlow::Break(()));
                }
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    Ok(())
}
