//! Timeline pages: newest first, tombstones filtered, posts hydrated with
//! one multi-get per round, positions carried by opaque cursors.

use starling_core::{Cursor, InboxEntry, Mutation, Post, PostId, Result, UserId};
use starling_log::PostStore;

use crate::{InboxStore, check_page_size, hydrate, timeline_position};

/// One page of a timeline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimelinePage {
    /// Posts, newest first.
    pub posts: Vec<Post>,
    /// Where the next page starts, or `None` at the end.
    pub next: Option<Cursor>,
}

/// A page of `owner`'s home timeline: the inbox's newest `cap` entries, live
/// posts only. When the reader reaches the cap and older entries remain, a
/// trim of those entries is returned for the caller to apply: inboxes are
/// trimmed by one range deletion, never by a delete per entry.
pub fn home_page<S: InboxStore + PostStore + ?Sized>(
    store: &S,
    owner: UserId,
    cursor: Option<&Cursor>,
    limit: usize,
    cap: usize,
) -> Result<(TimelinePage, Option<Mutation>)> {
    check_page_size(limit)?;
    let (mut before, mut seen) = timeline_position(cursor)?;
    let cap = u32::try_from(cap).unwrap_or(u32::MAX);
    let mut page = TimelinePage::default();
    let mut entries: Vec<InboxEntry> = Vec::new();
    let mut ids: Vec<PostId> = Vec::new();
    let mut scratch = Vec::new();
    let mut trim = None;
    let mut exhausted = false;
    while page.posts.len() < limit {
        if seen >= cap {
            entries.clear();
            store.inbox(owner, before, 1, &mut entries)?;
            if let Some(first_over) = entries.first() {
                trim = Some(Mutation::InboxTrim {
                    owner,
                    through: first_over.post,
                });
            }
            exhausted = true;
            break;
        }
        let want = (limit - page.posts.len()).min((cap - seen) as usize);
        entries.clear();
        store.inbox(owner, before, want, &mut entries)?;
        ids.clear();
        ids.extend(entries.iter().map(|e| e.post));
        if let Some(last) = entries.last() {
            before = Some(last.post);
            seen += entries.len() as u32;
        }
        hydrate(store, &ids, &mut scratch, &mut page.posts)?;
        if entries.len() < want {
            exhausted = true;
            break;
        }
    }
    if !exhausted {
        page.next = before.map(|last| Cursor::timeline(last, seen));
    }
    Ok((page, trim))
}

/// A page of `author`'s own posts, newest first, live posts only.
pub fn author_page<S: PostStore + ?Sized>(
    store: &S,
    author: UserId,
    cursor: Option<&Cursor>,
    limit: usize,
) -> Result<TimelinePage> {
    check_page_size(limit)?;
    let (mut before, _) = timeline_position(cursor)?;
    let mut page = TimelinePage::default();
    let mut ids = Vec::new();
    let mut scratch = Vec::new();
    loop {
        let want = limit - page.posts.len();
        ids.clear();
        store.author_posts(author, before, want, &mut ids)?;
        if let Some(last) = ids.last() {
            before = Some(*last);
        }
        hydrate(store, &ids, &mut scratch, &mut page.posts)?;
        if ids.len() < want {
            return Ok(page);
        }
        if page.posts.len() == limit {
            page.next = before.map(|last| Cursor::timeline(last, 0));
            return Ok(page);
        }
    }
}
