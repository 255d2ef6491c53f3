//! Timeline pages: newest first, tombstones filtered, posts hydrated with
//! one multi-get per round, positions carried by opaque cursors.
//!
//! A home page is a k-way merge of sources, newest first:
//!
//! 1. While the reader is within the first `cap` entries: their inbox, and
//!    the post logs of the followees they pull (pull edges), each from its
//!    `since` on.
//! 2. Past the cap, or once those run dry: the post logs of the reader and of
//!    every followee, each filtered as [`crate::expected_inbox`] defines the
//!    timeline. Scrolling never hits a wall; this phase costs one seek per
//!    followee per page.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::ops::ControlFlow;

use starling_core::paging::{PAGE, for_each_page};
use starling_core::{Cursor, Edge, InboxEntry, Mutation, Post, PostId, Result, UserId};
use starling_store::{Direction, GraphStore, InboxStore, PostStore};

use crate::{Reposts, Viewer, check_page_size, hydrate, timeline_position};

/// Position value of `seen` once a reader is past the materialized inbox.
const PAST_INBOX: u32 = u32::MAX;

/// One page of a timeline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TimelinePage {
    /// Posts, newest first.
    pub posts: Vec<Post>,
    /// The originals of the reposts in `posts`, each once.
    pub reposted: Vec<Post>,
    /// Where the next page starts, or `None` at the end.
    pub next: Option<Cursor>,
}

/// One newest-first stream of post ids below a position.
struct Source {
    from: From,
    buf: VecDeque<PostId>,
    before: Option<PostId>,
    /// Ids at or below this are not this source's to give (phase 1 stops at
    /// the inbox's trim floor; the pull merge covers what lies below).
    above: Option<PostId>,
    done: bool,
}

enum From {
    Inbox(UserId),
    /// An author's log: ids above `since`, and ids at or above `floor` (the
    /// backfilled ones); `floor` is `None` when nothing up to `since` counts.
    Author {
        author: UserId,
        since: PostId,
        floor: Option<PostId>,
    },
}

impl Source {
    fn new(from: From, before: Option<PostId>) -> Source {
        Source {
            from,
            buf: VecDeque::new(),
            before,
            above: None,
            done: false,
        }
    }

    fn above(mut self, floor: Option<PostId>) -> Source {
        self.above = floor;
        self
    }

    /// The next id, fetching `chunk` more when the buffer is empty.
    fn peek<S: InboxStore + PostStore + ?Sized>(
        &mut self,
        store: &S,
        chunk: usize,
    ) -> Result<Option<PostId>> {
        let mut entries: Vec<InboxEntry> = Vec::new();
        let mut ids: Vec<PostId> = Vec::new();
        while self.buf.is_empty() && !self.done {
            match self.from {
                From::Inbox(owner) => {
                    entries.clear();
                    store.inbox(owner, self.before, chunk, &mut entries)?;
                    self.done = entries.len() < chunk;
                    self.before = entries.last().map(|e| e.post).or(self.before);
                    self.buf.extend(entries.iter().map(|e| e.post));
                }
                From::Author {
                    author,
                    since,
                    floor,
                } => {
                    ids.clear();
                    store.author_posts(author, self.before, chunk, &mut ids)?;
                    self.done = ids.len() < chunk;
                    self.before = ids.last().copied().or(self.before);
                    for &id in &ids {
                        if id > since || floor.is_some_and(|f| id >= f) {
                            self.buf.push_back(id);
                        } else {
                            // Ids only fall from here: nothing more qualifies.
                            self.done = true;
                            break;
                        }
                    }
                }
            }
            if let Some(floor) = self.above
                && let Some(i) = self.buf.iter().position(|&id| id <= floor)
            {
                self.buf.truncate(i);
                self.done = true;
            }
        }
        Ok(self.buf.front().copied())
    }
}

/// Merges sources newest first, dropping repeats of an id.
struct Merge {
    sources: Vec<Source>,
    heap: BinaryHeap<(PostId, Reverse<usize>)>,
    last: Option<PostId>,
    chunk: usize,
}

impl Merge {
    fn new<S: InboxStore + PostStore + ?Sized>(
        store: &S,
        sources: Vec<Source>,
        chunk: usize,
    ) -> Result<Merge> {
        let mut m = Merge {
            sources,
            heap: BinaryHeap::new(),
            last: None,
            chunk,
        };
        for i in 0..m.sources.len() {
            if let Some(id) = m.sources[i].peek(store, chunk)? {
                m.heap.push((id, Reverse(i)));
            }
        }
        Ok(m)
    }

    fn next<S: InboxStore + PostStore + ?Sized>(&mut self, store: &S) -> Result<Option<PostId>> {
        while let Some((id, Reverse(i))) = self.heap.pop() {
            self.sources[i].buf.pop_front();
            if let Some(next) = self.sources[i].peek(store, self.chunk)? {
                self.heap.push((next, Reverse(i)));
            }
            if self.last != Some(id) {
                self.last = Some(id);
                return Ok(Some(id));
            }
        }
        Ok(None)
    }
}

/// Settings of a home-timeline read.
#[derive(Clone, Copy, Debug)]
pub struct HomeRead {
    /// Entries of the materialized inbox a reader pages through before the
    /// full pull merge takes over.
    pub cap: usize,
    /// The engine's `backfill_posts`.
    pub backfill: usize,
    /// Where a first page starts.
    pub start: Start,
}

/// Where a first page of a home timeline starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The materialized inbox (and pulled followees).
    Inbox,
    /// The pull merge over the post logs, for when the inbox cannot be
    /// trusted (its rebuild failed).
    PullOnly,
}

/// A page of `owner`'s home timeline. When the reader reaches the cap and
/// older inbox entries remain, a trim of those entries is returned for the
/// caller to apply: inboxes are trimmed by one range deletion, never by a
/// delete per entry.
pub fn home_page<S: GraphStore + InboxStore + PostStore + ?Sized>(
    store: &S,
    viewer: &mut Viewer,
    cursor: Option<&Cursor>,
    limit: usize,
    read: HomeRead,
) -> Result<(TimelinePage, Option<Mutation>)> {
    check_page_size(limit)?;
    let owner = viewer.id();
    let (mut before, mut seen) = timeline_position(cursor)?;
    if cursor.is_none() && read.start == Start::PullOnly {
        seen = PAST_INBOX;
    }
    let cap = u32::try_from(read.cap).unwrap_or(u32::MAX - 1);
    let chunk = limit.clamp(8, 64);
    let mut page = TimelinePage::default();
    let mut trim = None;
    let mut ids = Vec::with_capacity(limit);
    let mut scratch = Vec::new();

    if seen < cap {
        // Below the trim floor the inbox may have holes (backfills land
        // there after a trim): phase 1 stops at it and the pull merge, which
        // needs no inbox, takes over.
        let floor = store.inbox_floor(owner)?;
        let mut sources = vec![Source::new(From::Inbox(owner), before).above(floor)];
        let mut pulled = Vec::new();
        store.pulled(owner, &mut pulled)?;
        sources.extend(pulled.iter().map(|e| {
            let from = From::Author {
                author: e.user,
                since: e.since,
                floor: None,
            };
            Source::new(from, before).above(floor)
        }));
        let mut merge = Merge::new(store, sources, chunk)?;
        while page.posts.len() < limit && seen < cap {
            ids.clear();
            while ids.len() < limit - page.posts.len() && seen < cap {
                match merge.next(store)? {
                    Some(id) => {
                        ids.push(id);
                        seen += 1;
                    }
                    None => break,
                }
            }
            if let Some(last) = ids.last() {
                before = Some(*last);
            }
            hydrate(store, viewer, &ids, Reposts::Once, &mut scratch, &mut page)?;
            if ids.is_empty() {
                // Every phase-1 source ran dry before the cap.
                seen = PAST_INBOX;
            }
        }
        if seen == cap {
            let mut over = Vec::new();
            store.inbox(owner, before, 1, &mut over)?;
            if let Some(first_over) = over.first() {
                trim = Some(Mutation::InboxTrim {
                    owner,
                    through: first_over.post,
                });
            }
        }
    }
    if page.posts.len() < limit {
        seen = PAST_INBOX;
        let sources = pull_sources(store, owner, before, read.backfill)?;
        let mut merge = Merge::new(store, sources, chunk.min(16))?;
        loop {
            ids.clear();
            while ids.len() < limit - page.posts.len() {
                match merge.next(store)? {
                    Some(id) => ids.push(id),
                    None => break,
                }
            }
            if ids.is_empty() {
                return Ok((page, trim));
            }
            before = ids.last().copied();
            hydrate(store, viewer, &ids, Reposts::Once, &mut scratch, &mut page)?;
            if page.posts.len() == limit {
                break;
            }
        }
    }
    page.next = before.map(|last| Cursor::timeline(last, seen));
    Ok((page, trim))
}

/// The reader's own log and every followee's, filtered as the timeline is
/// defined: posts after the follow, and the backfilled ones before it.
fn pull_sources<S: GraphStore + PostStore + ?Sized>(
    store: &S,
    owner: UserId,
    before: Option<PostId>,
    backfill: usize,
) -> Result<Vec<Source>> {
    let own = From::Author {
        author: owner,
        since: PostId(0),
        floor: None,
    };
    let mut sources = vec![Source::new(own, before)];
    let mut older = Vec::new();
    for_each_page(
        PAGE,
        |after, size, edges| store.edges(owner, Direction::Following, after, size, edges),
        |e: &Edge| e.user,
        |edges| {
            for e in edges {
                let floor = if backfill == 0 {
                    None
                } else {
                    older.clear();
                    store.author_posts(
                        e.user,
                        Some(PostId(e.since.0.saturating_add(1))),
                        backfill,
                        &mut older,
                    )?;
                    older.last().copied()
                };
                let from = From::Author {
                    author: e.user,
                    since: e.since,
                    floor,
                };
                sources.push(Source::new(from, before));
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    Ok(sources)
}

/// A page of `author`'s own posts, newest first: those the viewer may see.
pub fn author_page<S: GraphStore + PostStore + ?Sized>(
    store: &S,
    viewer: &mut Viewer,
    author: UserId,
    cursor: Option<&Cursor>,
    limit: usize,
) -> Result<TimelinePage> {
    check_page_size(limit)?;
    let (before, _) = timeline_position(cursor)?;
    fill_page(store, viewer, before, limit, |before, want, ids| {
        store.author_posts(author, before, want, ids)
    })
}

/// A page of at most `limit` posts the viewer may see, from a listing of
/// post ids (an author's log, a user's mentions, a post's replies) read
/// from position `from` on: `read(from, want, ids)` appends to `ids` up to
/// `want` ids after `from` in the listing's order. Posts the viewer may not
/// see are skipped, so a page may take several reads; it ends when a read
/// comes back short (no cursor) or the page is full (a cursor after the
/// last id read).
pub fn fill_page<S: GraphStore + PostStore + ?Sized>(
    store: &S,
    viewer: &mut Viewer,
    mut from: Option<PostId>,
    limit: usize,
    mut read: impl FnMut(Option<PostId>, usize, &mut Vec<PostId>) -> Result<()>,
) -> Result<TimelinePage> {
    let mut page = TimelinePage::default();
    let mut ids = Vec::new();
    let mut scratch = Vec::new();
    loop {
        let want = limit - page.posts.len();
        ids.clear();
        read(from, want, &mut ids)?;
        if let Some(last) = ids.last() {
            from = Some(*last);
        }
        hydrate(store, viewer, &ids, Reposts::Each, &mut scratch, &mut page)?;
        if ids.len() < want {
            return Ok(page);
        }
        if page.posts.len() == limit {
            page.next = from.map(|last| Cursor::timeline(last, 0));
            return Ok(page);
        }
    }
}
