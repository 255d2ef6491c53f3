//! Who may see what: the one place that decides visibility, used by every
//! read path (timelines, get-by-id, threads, mentions) and by fan-out.
//!
//! - A deleted post is seen by nobody.
//! - A post is hidden from anyone the author blocks or is blocked by.
//! - A group post ([`Audience::Group`]) is seen by its author and by the
//!   members of the group who follow the author; by nobody else.
//! - A protected account's posts (reposts included) are seen by the
//!   account and its followers only, whatever their age: every follower
//!   of a protected account was approved by it.
//! - A repost is seen only by whoever may see the original.
//! - Mutes hide an author (and reposts of their posts) from the muter's
//!   home timeline and mentions, not from anything else.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use starling_core::paging::{PAGE, for_each_page};
use starling_core::{Audience, GroupId, LinkKind, Post, PostId, Result, UserId};
use starling_graph::{all_links, is_member, reads_author};
use starling_store::{GraphStore, PostStore};

/// Reposters of one post read per page by [`Viewer::first_appearance`],
/// which stops once it has read more of them than the viewer follows.
const REPOSTERS_PAGE: usize = 256;

/// The reader of a page, with what decides what they see, loaded once per
/// read: the accounts they block or are blocked by and the ones they mute.
#[derive(Debug)]
pub struct Viewer {
    id: UserId,
    blocked: HashSet<UserId>,
    muted: HashSet<UserId>,
    groups: HashMap<(GroupId, UserId), bool>,
    /// Per author met so far: whether protection lets the viewer read them.
    authors: HashMap<UserId, bool>,
    /// How many accounts the viewer follows, read once per read.
    following: Cell<Option<u64>>,
    /// Another reader who must also see a post (see [`Viewer::and`]).
    also: Option<Box<Viewer>>,
}

/// Whether a read applies the viewer's mutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutes {
    /// Home timeline and mentions: muted authors are hidden.
    Hide,
    /// Everything else: mutes do not apply.
    Show,
}

impl Viewer {
    /// Loads `id`'s blocks (both ways) and, when `mutes` says so, mutes.
    pub fn load<S: GraphStore + ?Sized>(store: &S, id: UserId, mutes: Mutes) -> Result<Viewer> {
        let mut blocked: HashSet<UserId> = HashSet::new();
        for kind in [LinkKind::Blocks, LinkKind::BlockedBy] {
            blocked.extend(all_links(store, kind, id.0)?.into_iter().map(UserId));
        }
        let muted = match mutes {
            Mutes::Hide => all_links(store, LinkKind::Mutes, id.0)?
                .into_iter()
                .map(UserId)
                .collect(),
            Mutes::Show => HashSet::new(),
        };
        Ok(Viewer {
            id,
            blocked,
            muted,
            groups: HashMap::new(),
            authors: HashMap::new(),
            following: Cell::new(None),
            also: None,
        })
    }

    /// Nobody in particular: sees public posts only.
    pub fn public() -> Viewer {
        Viewer {
            id: UserId(0),
            blocked: HashSet::new(),
            muted: HashSet::new(),
            groups: HashMap::new(),
            authors: HashMap::new(),
            following: Cell::new(None),
            also: None,
        }
    }

    /// This reader, seeing only what `other` may see too: a list one user
    /// keeps of others' posts (their likes) read by another shows what
    /// both may see. Home-timeline appearances stay this reader's own.
    pub fn and(mut self, other: Viewer) -> Viewer {
        self.also = Some(Box::new(match self.also.take() {
            Some(already) => already.and(other),
            None => other,
        }));
        self
    }

    /// The reader's id.
    pub fn id(&self) -> UserId {
        self.id
    }

    /// Whether the viewer may see `post` by its own audience, author and
    /// deletion (a repost's original is judged by [`Viewer::filter`]).
    pub fn may_see<S: GraphStore + ?Sized>(&mut self, store: &S, post: &Post) -> Result<bool> {
        if post.deleted
            || self.blocked.contains(&post.author)
            || self.muted.contains(&post.author)
            || !self.reads(store, post.author)?
        {
            return Ok(false);
        }
        let own = match post.audience {
            Audience::Public => true,
            Audience::Group(group) => self.in_audience(store, group, post.author)?,
        };
        match &mut self.also {
            Some(other) if own => other.may_see(store, post),
            _ => Ok(own),
        }
    }

    /// Whether protection lets the viewer read `author` (one read per
    /// author per page, two when the author is protected).
    fn reads<S: GraphStore + ?Sized>(&mut self, store: &S, author: UserId) -> Result<bool> {
        if let Some(&known) = self.authors.get(&author) {
            return Ok(known);
        }
        let reads = reads_author(store, self.id, author)?;
        self.authors.insert(author, reads);
        Ok(reads)
    }

    fn in_audience<S: GraphStore + ?Sized>(
        &mut self,
        store: &S,
        group: GroupId,
        author: UserId,
    ) -> Result<bool> {
        if author == self.id {
            return Ok(true);
        }
        if let Some(&known) = self.groups.get(&(group, author)) {
            return Ok(known);
        }
        let sees = is_member(store, group, self.id)? && store.edge(self.id, author)?.is_some();
        self.groups.insert((group, author), sees);
        Ok(sees)
    }

    /// Keeps in `posts` only what the viewer may see, reposts included
    /// (judged by their originals, which are appended to `originals`,
    /// deduplicated).
    pub fn filter<S: GraphStore + PostStore + ?Sized>(
        &mut self,
        store: &S,
        posts: &mut Vec<Post>,
        originals: &mut Vec<Post>,
    ) -> Result<()> {
        let mut kept = Vec::with_capacity(posts.len());
        let mut wanted: Vec<PostId> = Vec::new();
        for post in posts.drain(..) {
            if self.may_see(store, &post)? {
                wanted.extend(post.repost_of);
                kept.push(post);
            }
        }
        wanted.retain(|id| !originals.iter().any(|o| o.id == *id));
        wanted.sort_unstable();
        wanted.dedup();
        let mut found = Vec::with_capacity(wanted.len());
        store.posts(&wanted, &mut found)?;
        for original in found.into_iter().flatten() {
            if self.may_see(store, &original)? {
                originals.push(original);
            }
        }
        kept.retain(|p| {
            p.repost_of
                .is_none_or(|o| originals.iter().any(|x| x.id == o))
        });
        *posts = kept;
        Ok(())
    }

    /// Whether a repost `repost` of `original` is the one appearance of the
    /// original in the viewer's home timeline. A post reaches a home
    /// timeline at most once: directly, when the viewer wrote it or follows
    /// its author; otherwise through the oldest repost by the viewer or an
    /// account they follow.
    ///
    /// Cost: whichever is shorter is walked, the original's reposters or
    /// the viewer's followees, so at most twice the smaller of the two.
    pub fn first_appearance<S: GraphStore + ?Sized>(
        &self,
        store: &S,
        repost: &Post,
        original: &Post,
    ) -> Result<bool> {
        // Whose posts reach the viewer's home timeline. A muted account's
        // repost is hidden, so it does not count as an appearance.
        let reaches = |user: UserId| -> Result<bool> {
            Ok(user == self.id || store.edge(self.id, user)?.is_some())
        };
        if reaches(original.author)? {
            return Ok(false);
        }
        let counts =
            |user: UserId| -> Result<bool> { Ok(!self.muted.contains(&user) && reaches(user)?) };
        let following = match self.following.get() {
            Some(n) => n,
            None => {
                let n = store.counts(self.id)?.following;
                self.following.set(Some(n));
                n
            }
        };
        let (mut scanned, mut earlier, mut too_many) = (0u64, false, false);
        for_each_page(
            REPOSTERS_PAGE,
            |after, size, page| store.links(LinkKind::Reposts, original.id.0, after, size, page),
            |&(reposter, _)| reposter,
            |page| {
                for &(reposter, id) in page {
                    let (reposter, id) = (UserId(reposter), PostId(id));
                    if id < repost.id && reposter != repost.author && counts(reposter)? {
                        earlier = true;
                        return Ok(ControlFlow::Break(()));
                    }
                }
                scanned += page.len() as u64;
                // More reposters than followees, and more to come.
                too_many = page.len() == REPOSTERS_PAGE && scanned > following;
                Ok(if too_many {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            },
        )?;
        if earlier {
            return Ok(false);
        }
        if !too_many {
            return Ok(true);
        }
        // More reposters than followees: ask about each followee instead.
        for_each_page(
            PAGE,
            |after, size, edges| {
                store.edges(
                    self.id,
                    starling_store::Direction::Following,
                    after,
                    size,
                    edges,
                )
            },
            |e| e.user,
            |edges| {
                for e in edges {
                    if e.user == repost.author || self.muted.contains(&e.user) {
                        continue;
                    }
                    if let Some(id) = store.link(LinkKind::Reposts, original.id.0, e.user.0)?
                        && PostId(id) < repost.id
                    {
                        earlier = true;
                        return Ok(ControlFlow::Break(()));
                    }
                }
                Ok(ControlFlow::Continue(()))
            },
        )?;
        if earlier {
            return Ok(false);
        }
        Ok(store
            .link(LinkKind::Reposts, original.id.0, self.id.0)?
            .is_none_or(|id| PostId(id) >= repost.id || repost.author == self.id))
    }
}

/// The stored record of post `id`, tombstone or not, whoever may see it:
/// the one read of a single post by id.
pub fn stored_post<S: PostStore + ?Sized>(store: &S, id: PostId) -> Result<Option<Post>> {
    let mut found = Vec::with_capacity(1);
    store.posts(&[id], &mut found)?;
    Ok(found.pop().flatten())
}

/// Whether `reader` is in the audience fan-out delivers `post` to, and the
/// home timeline definition includes it for: public posts, and group posts
/// for the group's members (the caller has checked the follow edge).
pub fn delivered_to<S: GraphStore + ?Sized>(
    store: &S,
    post: &Post,
    reader: UserId,
) -> Result<bool> {
    match post.audience {
        Audience::Public => Ok(true),
        Audience::Group(_) if reader == post.author => Ok(true),
        Audience::Group(group) => is_member(store, group, reader),
    }
}
