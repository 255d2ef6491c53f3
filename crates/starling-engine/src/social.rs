//! Groups, blocks, mutes, mentions, threads and friends of friends.

use std::collections::HashMap;
use std::ops::ControlFlow;

use starling_core::paging::{PAGE, for_each_page};
use starling_core::{
    Audience, Cursor, Error, Group, GroupId, InboxEntry, LinkKind, Mutation, Post, PostId, Result,
    UserId, group_name,
};
use starling_graph::{blocked_either, has_request, is_member};
use starling_inbox::{
    Mutes, TimelinePage, Viewer, below_window, check_page_size, fill_page, timeline_position,
};
use starling_log::unix_millis;
use starling_store::{Backend, Direction};

use crate::base::Shared;
use crate::engine::Engine;
use crate::protect::request_removal;
use crate::users::UserPage;

/// Ancestors a thread view walks up at most.
pub const MAX_THREAD_DEPTH: usize = 64;

/// Followees whose followings [`Engine::suggestions`] reads, at most.
pub const SUGGESTION_FOLLOWEES: usize = 1_000;

/// Followings read per followee by [`Engine::suggestions`], at most.
pub const SUGGESTION_FANOUT: usize = 1_000;

/// Followees one [`Engine::friends`] page examines, at most, per requested
/// entry: a page may come back short, with a cursor, rather than scan on.
const FRIENDS_SCAN_PER_ENTRY: usize = 8;

/// The removal of `member` from `group`: the link both ways.
pub(crate) fn membership_removal(group: GroupId, member: UserId) -> Vec<Mutation> {
    vec![
        Mutation::DeleteLink {
            kind: LinkKind::Members,
            from: group.0,
            to: member.0,
        },
        Mutation::DeleteLink {
            kind: LinkKind::MemberOf,
            from: member.0,
            to: group.0,
        },
    ]
}

/// A post in context: the posts it replies to and a page of its replies.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Thread {
    /// The post asked for.
    pub post: Post,
    /// The posts it replies to, root first, as far up as the viewer may see
    /// (at most [`MAX_THREAD_DEPTH`]).
    pub ancestors: Vec<Post>,
    /// A page of its direct replies, oldest first.
    pub replies: TimelinePage,
}

/// A page of groups, in id order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GroupPage {
    /// The groups.
    pub groups: Vec<Group>,
    /// Where the next page starts, or `None` at the end.
    pub next: Option<Cursor>,
}

/// An account suggested to follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Suggestion {
    /// The account.
    pub user: UserId,
    /// How many of the accounts the user follows follow it.
    pub followed_by: u32,
}

impl<B: Backend> Engine<B> {
    /// Sets up a group owned by `owner`.
    pub fn create_group(&self, owner: UserId, name: &str) -> Result<Group> {
        let s = &self.shared;
        let name = group_name(name)?;
        s.writing(&[owner])?;
        let mut next = s.next_group.lock();
        let id = match s.backend.mint_group_id(s.config.durability)? {
            Some(id) => id,
            None => GroupId(*next),
        };
        let group = Group { id, owner, name };
        s.write(
            &[
                Mutation::PutGroup(group.clone()),
                Mutation::PutLink {
                    kind: LinkKind::OwnerGroups,
                    from: owner.0,
                    to: group.id.0,
                    value: 0,
                },
            ],
            s.config.durability,
        )?;
        *next = (*next).max(id.0 + 1);
        Ok(group)
    }

    /// The group with this id, if `viewer` owns it.
    pub fn group(&self, viewer: UserId, id: GroupId) -> Result<Group> {
        let s = self.shared.known(&[viewer])?;
        match s.backend.group(id)? {
            Some(g) if g.owner == viewer => Ok(g),
            // Another's group is as good as absent.
            _ => Err(Error::UnknownGroup(id)),
        }
    }

    /// The groups `owner` set up, in creation order.
    pub fn groups(&self, owner: UserId) -> Result<Vec<Group>> {
        let s = self.shared.known(&[owner])?;
        let ids = starling_graph::all_links(&s.backend, LinkKind::OwnerGroups, owner.0)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(s.backend.group(GroupId(id))?);
        }
        Ok(out)
    }

    /// A page of a group's members, in id order (the owner only).
    pub fn group_members(
        &self,
        owner: UserId,
        group: GroupId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<UserPage> {
        check_page_size(limit)?;
        let group = self.group(owner, group)?;
        self.users_linked(LinkKind::Members, group.id.0, cursor, limit)
    }

    /// A page of the groups `member` is a member of (set up by others), in
    /// id order, read from the member's own index
    /// ([`LinkKind::MemberOf`]).
    pub fn member_groups(
        &self,
        member: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<GroupPage> {
        let page = self.link_page(LinkKind::MemberOf, member, cursor, limit)?;
        let mut groups = Vec::with_capacity(page.users.len());
        for id in &page.users {
            // Deleted between the listing and now: skipped.
            groups.extend(self.shared.backend.group(GroupId(id.0))?);
        }
        Ok(GroupPage {
            groups,
            next: page.next,
        })
    }

    /// Adds `member` to the owner's group. A member who follows the owner
    /// gets the group's posts their timeline would have held (at most
    /// `inbox_cap`) at once. Returns whether they were not a member yet.
    pub fn add_member(&self, owner: UserId, group: GroupId, member: UserId) -> Result<bool> {
        let s = &self.shared;
        let group = self.group(owner, group)?;
        s.known(&[member])?;
        if member == owner {
            return Err(Error::NotAllowed(
                "a group's owner is not one of its members",
            ));
        }
        if blocked_either(&s.backend, owner, member)? {
            return Err(Error::Blocked("cannot add across a block"));
        }
        s.check_writable()?;
        let _locks = s.lock_inbox(member, owner);
        if is_member(&s.backend, group.id, member)? {
            return Ok(false);
        }
        let at = unix_millis();
        let mut batch = vec![
            Mutation::PutLink {
                kind: LinkKind::Members,
                from: group.id.0,
                to: member.0,
                value: at,
            },
            Mutation::PutLink {
                kind: LinkKind::MemberOf,
                from: member.0,
                to: group.id.0,
                value: at,
            },
        ];
        if let Some(edge) = s.backend.follower_edge(owner, member)? {
            // The timeline's definition, restricted to this group's posts:
            // posts after the follow (unless the member pulls the owner's
            // posts, which reads them at read time), and the backfilled ones
            // before it, which only the inbox holds whatever the edge's mode.
            let mut window = Vec::new();
            s.backend.author_posts(
                owner,
                Some(PostId(edge.since.0.saturating_add(1))),
                s.config.backfill_posts,
                &mut window,
            )?;
            let floor = if s.config.backfill_posts == 0 {
                None
            } else {
                window.last().copied()
            };
            let window: Vec<PostId> =
                first_links(s, LinkKind::GroupPosts, group.id.0, s.config.inbox_cap)?
                    .into_iter()
                    .map(|(to, _)| PostId(!to))
                    .collect();
            let mut ids = Vec::new();
            for &id in &window {
                let newer = id > edge.since;
                let backfilled = !newer && floor.is_some_and(|f| id >= f);
                if (newer && edge.mode == starling_core::EdgeMode::Push) || backfilled {
                    ids.push(id);
                }
            }
            // Older group posts the window left out may be wanted too.
            if window
                .last()
                .is_some_and(|&oldest| oldest > edge.since || floor.is_some_and(|f| oldest > f))
            {
                batch.extend(below_window(member, &window, s.config.inbox_cap));
            }
            let mut posts = Vec::with_capacity(ids.len());
            s.backend.posts(&ids, &mut posts)?;
            batch.extend(posts.into_iter().flatten().filter(|p| !p.deleted).map(|p| {
                Mutation::InboxPut {
                    owner: member,
                    entry: InboxEntry {
                        post: p.id,
                        author: owner,
                    },
                }
            }));
        }
        s.write(&batch, s.config.durability)?;
        s.publish_inbox_changes(&batch);
        Ok(true)
    }

    /// Removes `member` from the owner's group; the group's posts leave the
    /// member's timeline. Returns whether they were a member.
    pub fn remove_member(&self, owner: UserId, group: GroupId, member: UserId) -> Result<bool> {
        let s = &self.shared;
        let group = self.group(owner, group)?;
        s.writing(&[member])?;
        let _locks = s.lock_inbox(member, owner);
        if !is_member(&s.backend, group.id, member)? {
            return Ok(false);
        }
        let mut batch = membership_removal(group.id, member);
        retract_where(
            s,
            member,
            |p| p.author == owner && p.audience == Audience::Group(group.id),
            &mut batch,
        )?;
        s.write(&batch, s.config.durability)?;
        s.publish_inbox_changes(&batch);
        Ok(true)
    }

    /// Deletes the owner's group: its members leave it (and its posts their
    /// timelines); its posts stay visible to their author only.
    pub fn delete_group(&self, owner: UserId, group: GroupId) -> Result<()> {
        let group = self.group(owner, group)?;
        loop {
            let page = self.group_members(owner, group.id, None, starling_core::MAX_PAGE_SIZE)?;
            for member in &page.users {
                self.remove_member(owner, group.id, *member)?;
            }
            if page.next.is_none() {
                break;
            }
        }
        let s = &self.shared;
        s.write(
            &[
                Mutation::DeleteLink {
                    kind: LinkKind::OwnerGroups,
                    from: owner.0,
                    to: group.id.0,
                },
                Mutation::DeleteGroup(group.id),
            ],
            s.config.durability,
        )
    }

    /// `blocker` blocks `blocked`: follow edges and pending follow requests
    /// between them are removed both ways (with what the edges delivered),
    /// and until unblocked neither
    /// may follow the other, `blocked` cannot mention or message
    /// `blocker`, and neither sees the other's posts anywhere. Returns
    /// whether the block is new.
    pub fn block(&self, blocker: UserId, blocked: UserId) -> Result<bool> {
        let s = &self.shared;
        starling_graph::check_edge(blocker, blocked)
            .map_err(|_| Error::NotAllowed("a user cannot block themselves"))?;
        s.writing(&[blocker, blocked])?;
        // Both users' reader and author stripes (each pair in stripe
        // order, readers first, as every other operation takes them): the
        // block and both unfollows are one batch, and no follow between
        // the two can slip in.
        let _readers = s.readers.lock_pair(blocker, blocked);
        let _authors = s.authors.lock_pair(blocker, blocked);
        let new = s
            .backend
            .link(LinkKind::Blocks, blocker.0, blocked.0)?
            .is_none();
        let mut batch = Vec::new();
        if new {
            let at = unix_millis();
            batch.push(Mutation::PutLink {
                kind: LinkKind::Blocks,
                from: blocker.0,
                to: blocked.0,
                value: at,
            });
            batch.push(Mutation::PutLink {
                kind: LinkKind::BlockedBy,
                from: blocked.0,
                to: blocker.0,
                value: at,
            });
        }
        s.unfollow_batch(blocker, blocked, &mut batch)?;
        s.unfollow_batch(blocked, blocker, &mut batch)?;
        // Pending follow requests either way go with the follows.
        for (from, to) in [(blocker, blocked), (blocked, blocker)] {
            if has_request(&s.backend, from, to)? {
                request_removal(from, to, &mut batch);
            }
        }
        if !batch.is_empty() {
            s.write(&batch, s.config.durability)?;
            s.publish_inbox_changes(&batch);
        }
        // Reposts of the other's posts stay in inboxes but are filtered out
        // at read time, like everything else across a block.
        Ok(new)
    }

    /// Lifts a block (follows are not restored). Returns whether there was one.
    pub fn unblock(&self, blocker: UserId, blocked: UserId) -> Result<bool> {
        let s = self.shared.writing(&[blocker, blocked])?;
        if s.backend
            .link(LinkKind::Blocks, blocker.0, blocked.0)?
            .is_none()
        {
            return Ok(false);
        }
        s.write(
            &[
                Mutation::DeleteLink {
                    kind: LinkKind::Blocks,
                    from: blocker.0,
                    to: blocked.0,
                },
                Mutation::DeleteLink {
                    kind: LinkKind::BlockedBy,
                    from: blocked.0,
                    to: blocker.0,
                },
            ],
            s.config.durability,
        )?;
        Ok(true)
    }

    /// Whether `blocker` blocks `blocked`.
    pub fn is_blocking(&self, blocker: UserId, blocked: UserId) -> Result<bool> {
        let s = self.shared.known(&[blocker, blocked])?;
        Ok(s.backend
            .link(LinkKind::Blocks, blocker.0, blocked.0)?
            .is_some())
    }

    /// Whether either of the two blocks the other.
    pub fn blocked_either(&self, a: UserId, b: UserId) -> Result<bool> {
        blocked_either(&self.shared.backend, a, b)
    }

    /// A page of the accounts `user` blocks, in id order.
    pub fn blocks(&self, user: UserId, cursor: Option<&Cursor>, limit: usize) -> Result<UserPage> {
        self.link_page(LinkKind::Blocks, user, cursor, limit)
    }

    /// `muter` mutes `muted`: their posts (and reposts of them) leave the
    /// muter's home timeline and mentions at read time. Undone by
    /// [`Engine::unmute`]; nothing is deleted. Returns whether it is new.
    pub fn mute(&self, muter: UserId, muted: UserId) -> Result<bool> {
        let s = &self.shared;
        starling_graph::check_edge(muter, muted)
            .map_err(|_| Error::NotAllowed("a user cannot mute themselves"))?;
        s.writing(&[muter, muted])?;
        if s.backend.link(LinkKind::Mutes, muter.0, muted.0)?.is_some() {
            return Ok(false);
        }
        s.write(
            &[Mutation::PutLink {
                kind: LinkKind::Mutes,
                from: muter.0,
                to: muted.0,
                value: unix_millis(),
            }],
            s.config.durability,
        )?;
        Ok(true)
    }

    /// Lifts a mute. Returns whether there was one.
    pub fn unmute(&self, muter: UserId, muted: UserId) -> Result<bool> {
        // A deleted account may still be unmuted: mutes of it stay.
        let s = self.shared.writing(&[muter])?.present(&[muted])?;
        if s.backend.link(LinkKind::Mutes, muter.0, muted.0)?.is_none() {
            return Ok(false);
        }
        s.write(
            &[Mutation::DeleteLink {
                kind: LinkKind::Mutes,
                from: muter.0,
                to: muted.0,
            }],
            s.config.durability,
        )?;
        Ok(true)
    }

    /// A page of the accounts `user` mutes, in id order.
    pub fn mutes(&self, user: UserId, cursor: Option<&Cursor>, limit: usize) -> Result<UserPage> {
        self.link_page(LinkKind::Mutes, user, cursor, limit)
    }

    /// A page of the users `user` links to by `kind`: a bad page size
    /// first, then an unknown user, then a bad cursor.
    pub(crate) fn link_page(
        &self,
        kind: LinkKind,
        user: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<UserPage> {
        check_page_size(limit)?;
        self.shared.known(&[user])?;
        self.users_linked(kind, user.0, cursor, limit)
    }

    /// A page of the users linked under `from` by `kind`, in id order.
    pub(crate) fn users_linked(
        &self,
        kind: LinkKind,
        from: u64,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<UserPage> {
        let after = cursor.map(Cursor::as_users).transpose()?;
        let mut links = Vec::with_capacity(limit + 1);
        self.shared
            .backend
            .links(kind, from, after.map(|u| u.0), limit + 1, &mut links)?;
        Ok(UserPage::from_ids(
            links.into_iter().map(|(u, _)| UserId(u)),
            limit,
        ))
    }

    /// A page of the posts that mention `user`, newest first: those they
    /// may see, from accounts they do not mute.
    pub fn mentions(
        &self,
        user: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<TimelinePage> {
        check_page_size(limit)?;
        let s = self.shared.known(&[user])?;
        let (before, _) = timeline_position(cursor)?;
        let mut viewer = Viewer::load(&s.backend, user, Mutes::Hide)?;
        let mut links = Vec::new();
        fill_page(
            &s.backend,
            &mut viewer,
            before,
            limit,
            |before, want, ids| {
                links.clear();
                // Keyed by !post: after !before is older than before.
                let after = before.map(|b| !b.0);
                s.backend
                    .links(LinkKind::Mentions, user.0, after, want, &mut links)?;
                ids.extend(links.iter().map(|&(to, _)| PostId(!to)));
                Ok(())
            },
        )
    }

    /// `post` in context, as `viewer` may see it: its ancestors and a page
    /// of its replies (oldest first, continuing from `cursor`).
    pub fn thread(
        &self,
        viewer: UserId,
        post: PostId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<Thread> {
        check_page_size(limit)?;
        let root = self.get_post_as(viewer, post)?;
        let s = &self.shared;
        let mut view = Viewer::load(&s.backend, viewer, Mutes::Show)?;
        let mut ancestors = Vec::new();
        let mut up = root.reply_to;
        while let Some(parent) = up
            && ancestors.len() < MAX_THREAD_DEPTH
        {
            let Some(p) = s.stored_post(parent)? else {
                break;
            };
            let Some(p) = s.seen_by(&mut view, p)? else {
                break;
            };
            up = p.reply_to;
            ancestors.push(p);
        }
        ancestors.reverse();
        let (after, _) = timeline_position(cursor)?;
        let mut links = Vec::new();
        let replies = fill_page(&s.backend, &mut view, after, limit, |after, want, ids| {
            links.clear();
            let after = after.map(|a| a.0);
            s.backend
                .links(LinkKind::Replies, post.0, after, want, &mut links)?;
            ids.extend(links.iter().map(|&(to, _)| PostId(to)));
            Ok(())
        })?;
        Ok(Thread {
            post: root,
            ancestors,
            replies,
        })
    }

    /// Accounts to follow: those followed by the accounts `user` follows,
    /// ranked by how many of them follow each (ties by id), excluding the
    /// user, accounts already followed and accounts across a block; at
    /// most `limit` (1 to [`starling_core::MAX_PAGE_SIZE`]).
    ///
    /// Bounded work: it reads the followings of at most
    /// [`SUGGESTION_FOLLOWEES`] followees (the first in id order) and at
    /// most [`SUGGESTION_FANOUT`] followings of each, so at most a million
    /// edges however many accounts the user follows.
    pub fn suggestions(&self, user: UserId, limit: usize) -> Result<Vec<Suggestion>> {
        check_page_size(limit)?;
        let s = self.shared.known(&[user])?;
        let mut followees = Vec::new();
        s.backend.edges(
            user,
            Direction::Following,
            None,
            SUGGESTION_FOLLOWEES,
            &mut followees,
        )?;
        let mut counts: HashMap<UserId, u32> = HashMap::new();
        let mut theirs = Vec::new();
        for f in &followees {
            theirs.clear();
            s.backend.edges(
                f.user,
                Direction::Following,
                None,
                SUGGESTION_FANOUT,
                &mut theirs,
            )?;
            for e in &theirs {
                if e.user != user {
                    *counts.entry(e.user).or_default() += 1;
                }
            }
        }
        let mut ranked: Vec<(UserId, u32)> = counts.into_iter().collect();
        ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut out = Vec::with_capacity(limit);
        for (candidate, followed_by) in ranked {
            if out.len() == limit {
                break;
            }
            if s.backend.edge(user, candidate)?.is_some()
                || blocked_either(&s.backend, user, candidate)?
            {
                continue;
            }
            out.push(Suggestion {
                user: candidate,
                followed_by,
            });
        }
        Ok(out)
    }

    /// A page of `user`'s friends: accounts they follow that follow them
    /// back, in id order. A page examines at most eight followees per entry
    /// asked for, so it may come back short with a cursor to continue.
    pub fn friends(&self, user: UserId, cursor: Option<&Cursor>, limit: usize) -> Result<UserPage> {
        check_page_size(limit)?;
        let s = self.shared.known(&[user])?;
        let mut after = cursor.map(Cursor::as_users).transpose()?;
        let budget = limit * FRIENDS_SCAN_PER_ENTRY;
        let mut scanned = 0;
        let mut users = Vec::with_capacity(limit);
        let mut edges = Vec::new();
        loop {
            edges.clear();
            let chunk = (budget - scanned).min(256);
            s.backend
                .edges(user, Direction::Following, after, chunk, &mut edges)?;
            let exhausted = edges.len() < chunk;
            for (i, e) in edges.iter().enumerate() {
                scanned += 1;
                after = Some(e.user);
                if s.backend.edge(e.user, user)?.is_some() {
                    users.push(e.user);
                }
                if users.len() == limit {
                    let at_end = exhausted && i + 1 == edges.len();
                    let next = (!at_end).then(|| Cursor::users(e.user));
                    return Ok(UserPage { users, next });
                }
            }
            if exhausted {
                return Ok(UserPage { users, next: None });
            }
            if scanned >= budget {
                return Ok(UserPage {
                    users,
                    next: after.map(Cursor::users),
                });
            }
        }
    }
}

/// The first `limit` links of `kind` under `from`.
fn first_links<B: Backend>(
    s: &Shared<B>,
    kind: LinkKind,
    from: u64,
    limit: usize,
) -> Result<Vec<(u64, u64)>> {
    let mut out = Vec::with_capacity(limit.min(1024));
    s.backend.links(kind, from, None, limit, &mut out)?;
    Ok(out)
}

/// Adds to `batch` the deletion of every entry of `owner`'s inbox whose
/// post matches `doomed`.
pub(crate) fn retract_where<B: Backend>(
    s: &Shared<B>,
    owner: UserId,
    doomed: impl Fn(&Post) -> bool,
    batch: &mut Vec<Mutation>,
) -> Result<()> {
    let mut posts = Vec::new();
    for_each_page(
        PAGE,
        |before, size, entries| s.backend.inbox(owner, before, size, entries),
        |e| e.post,
        |entries| {
            let ids: Vec<PostId> = entries.iter().map(|e| e.post).collect();
            posts.clear();
            s.backend.posts(&ids, &mut posts)?;
            for p in posts.iter().flatten() {
                if doomed(p) {
                    batch.push(Mutation::InboxDelete { owner, post: p.id });
                }
            }
            Ok(ControlFlow::Continue(()))
        },
    )
}
