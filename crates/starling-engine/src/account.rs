//! Account deletion.
//!
//! Deleting an account is a long operation run as a sequence of small
//! atomic batches, like unprotecting one: an account with a million
//! followers is never one giant batch, and nothing holds more than a page
//! of any list in memory.
//!
//! 1. The mark, [`LinkKind::Deleted`] `(user, 0)` with the deletion time,
//!    written first and synced. From then on the account reads as gone:
//!    every operation by it or naming it is refused with
//!    [`Error::AccountDeleted`] (the opening of every operation checks the
//!    mark), its name is reserved for [`starling_core::Config::name_hold_ms`], and
//!    conversations with it stay readable by the other side. Its live
//!    subscriptions end (each reads what was queued, then the end); so
//!    does one taken in the moment before the mark, at step 7.
//! 2. Its posts and reposts: each live one becomes a tombstone (one batch
//!    per post, as [`Engine::delete_post`] writes it, under the author's
//!    and the post's stripes). A pending fan-out job of one is turned into
//!    a retraction, so no delivery lands after it; the entries already
//!    delivered are removed with the edges (step 3). Tombstones are
//!    filtered on every read path at once, reposts of the posts by others
//!    included.
//! 3. Its followers: each edge is removed as an unfollow removes it (both
//!    sides, the counts, the device updates it carried, the account's
//!    entries in the follower's inbox), [`DELETE_BATCH`] followers per
//!    batch under the account's author stripe: a million followers take
//!    about 3,900 batches. Then its followees, one batch per edge under
//!    the account's reader stripe and the followee's author stripe.
//! 4. Pending follow requests both ways, blocks both ways, its mutes and
//!    its protection (one batch per page of links); its likes (one batch
//!    per like, which rewrites the post's count under the post's stripe).
//! 5. Its memberships in others' groups (one batch each, from its
//!    [`LinkKind::MemberOf`] index), then its own groups: every member
//!    leaves (one batch each, the group's posts leave the member's inbox)
//!    and the group is deleted.
//! 6. Its phone link and pending link, its avatar and its profile (one
//!    batch). Texts still queued for it are never sent: the next lease
//!    that meets one drops it, as for any recipient without a phone; texts
//!    its posts queued for others are dropped the same way (the post is a
//!    tombstone), and so is a code for its pending link.
//! 7. Its own inbox, cut whole by one range deletion, and the mark of the
//!    end, [`LinkKind::Deleted`] `(user, 1)`.
//!
//! Every step is idempotent and reads its list again from the start, so a
//! deletion stopped anywhere (a crash, a failed write) is finished by
//! calling [`Engine::delete_account`] again; the mark written first keeps
//! the account gone meanwhile.
//!
//! Kept: its user record (so that its id still names it and its messages
//! still have a sender), its direct messages both ways, its conversation
//! list, the mentions feed of it, and others' mutes of it and others'
//! likes of its posts (as for any deleted post).

use starling_core::paging::PAGE;
use starling_core::{
    Change, DirectMutation, Error, GroupId, LinkKind, Mutation, PostId, Profile, Result, Toggle,
    UserId,
};
use starling_log::unix_millis;
use starling_store::{Backend, Direction};

use crate::base::{Shared, record};
use crate::engine::Engine;
use crate::protect::request_removal;
use crate::social::{membership_removal, retract_where};

/// Followers removed per batch of a deletion: each one's inbox is read
/// (at most the inbox cap) for the deleted account's entries.
pub const DELETE_BATCH: usize = 256;

impl<B: Backend> Engine<B> {
    /// Deletes `user`'s account (see the module docs for what goes and
    /// what stays). [`Error::UnknownUser`] for an unknown id,
    /// [`Error::AccountDeleted`] when it was deleted already. A deletion
    /// stopped part way (a failed write, a crash) is finished by calling
    /// again; meanwhile the account reads as deleted.
    pub fn delete_account(&self, user: UserId) -> Result<()> {
        self.delete_account_at(user, unix_millis())
    }

    /// [`Engine::delete_account`] at `now_ms`, the time the name's hold
    /// ([`starling_core::Config::name_hold_ms`]) counts from.
    pub fn delete_account_at(&self, user: UserId, now_ms: u64) -> Result<()> {
        let s = &self.shared;
        s.present(&[user])?;
        if s.backend.link(LinkKind::Deleted, user.0, 1)?.is_some() {
            return Err(Error::AccountDeleted(user));
        }
        s.check_writable()?;
        let at = s.mark_deleted(user, now_ms)?;
        // No new subscription is taken from here on; the live ones end.
        s.hub.end_user(user);
        s.retract_posts(user)?;
        s.drop_followers(user)?;
        s.drop_followees(user)?;
        s.drop_links(user)?;
        s.drop_likes(user)?;
        s.leave_groups(user)?;
        s.drop_groups(user)?;
        s.drop_direct(user)?;
        // One taken in the moment before the mark ends too.
        s.hub.end_user(user);
        s.write(
            &[
                Mutation::InboxTrim {
                    owner: user,
                    through: PostId(u64::MAX),
                },
                Mutation::PutLink {
                    kind: LinkKind::Deleted,
                    from: user.0,
                    to: 1,
                    value: at,
                },
            ],
            s.config.durability,
        )
    }

    /// Whether `user`'s account was deleted (or its deletion is under way).
    /// [`Error::UnknownUser`] for an id no account ever had.
    pub fn is_deleted(&self, user: UserId) -> Result<bool> {
        let s = self.shared.present(&[user])?;
        s.is_deleted(user)
    }
}

impl<B: Backend> Shared<B> {
    /// Writes the mark that the deletion started (once; a second call
    /// keeps the first time), under the user's reader and author stripes
    /// so that it is ordered against follows, posts and group changes
    /// under way. Returns the deletion time.
    fn mark_deleted(&self, user: UserId, now_ms: u64) -> Result<u64> {
        let _reader = self.readers.lock(user);
        let _author = self.authors.lock(user);
        if let Some(at) = self.backend.link(LinkKind::Deleted, user.0, 0)? {
            return Ok(at);
        }
        self.write(
            &[Mutation::PutLink {
                kind: LinkKind::Deleted,
                from: user.0,
                to: 0,
                value: now_ms,
            }],
            self.config.durability,
        )?;
        Ok(now_ms)
    }

    /// Every live post and repost of `user` becomes a tombstone, one batch
    /// each, walking the author index newest first.
    fn retract_posts(&self, user: UserId) -> Result<()> {
        let mut ids = Vec::with_capacity(PAGE);
        let mut before = None;
        loop {
            ids.clear();
            self.backend.author_posts(user, before, PAGE, &mut ids)?;
            for &id in &ids {
                // Entries already delivered leave with the edges, next.
                self.tombstone(user, id, false)?;
            }
            match ids.last() {
                Some(&last) if ids.len() == PAGE => before = Some(last),
                _ => return Ok(()),
            }
        }
    }

    /// Removes every follower of `user` as an unfollow would (the edge
    /// both ways, the counts, the follower's device updates for the user,
    /// the user's entries in the follower's inbox), [`DELETE_BATCH`]
    /// followers per batch under the user's author stripe, reading the
    /// first page again until it is empty. No follower's reader stripe is
    /// needed: the user's posts are all tombstones by now, so nothing
    /// (a rebuild on read, a delivery) writes the user's entries again.
    fn drop_followers(&self, user: UserId) -> Result<()> {
        let mut edges = Vec::with_capacity(DELETE_BATCH);
        loop {
            let _author = self.authors.lock(user);
            edges.clear();
            self.backend
                .edges(user, Direction::Followers, None, DELETE_BATCH, &mut edges)?;
            if edges.is_empty() {
                return Ok(());
            }
            let mut batch = Vec::with_capacity(2 * edges.len());
            for e in &edges {
                self.unfollow_batch(e.user, user, &mut batch)?;
            }
            self.write(&batch, self.config.durability)?;
            self.publish_inbox_changes(&batch);
        }
    }

    /// Removes every edge from `user` to a followee, one batch each under
    /// the user's reader stripe and the followee's author stripe (so that
    /// no delivery of the followee's posts lands after it). The user's
    /// inbox is not read: it is cut whole at the end.
    fn drop_followees(&self, user: UserId) -> Result<()> {
        let mut edges = Vec::with_capacity(PAGE);
        loop {
            edges.clear();
            self.backend
                .edges(user, Direction::Following, None, PAGE, &mut edges)?;
            if edges.is_empty() {
                return Ok(());
            }
            for e in &edges {
                let followee = e.user;
                let _locks = self.lock_inbox(user, followee);
                if self.backend.edge(user, followee)?.is_none() {
                    continue;
                }
                self.write(
                    &[
                        Mutation::RemoveEdge {
                            follower: user,
                            followee,
                        },
                        Mutation::Direct(DirectMutation::SetDeviceSub {
                            followee,
                            follower: user,
                            on: Toggle::Off,
                        }),
                        record(Change::Unfollowed {
                            follower: user,
                            followee,
                        }),
                    ],
                    self.config.durability,
                )?;
            }
        }
    }

    /// Pending follow requests both ways, blocks both ways, the user's
    /// mutes and protection: a batch per page of each.
    fn drop_links(&self, user: UserId) -> Result<()> {
        let kinds = [
            LinkKind::FollowRequests,
            LinkKind::RequestsSent,
            LinkKind::Blocks,
            LinkKind::BlockedBy,
            LinkKind::Mutes,
            LinkKind::Protected,
        ];
        let mut links = Vec::with_capacity(PAGE);
        for kind in kinds {
            loop {
                links.clear();
                self.backend.links(kind, user.0, None, PAGE, &mut links)?;
                if links.is_empty() {
                    break;
                }
                let mut batch = Vec::with_capacity(2 * links.len());
                for &(other, _) in &links {
                    let them = UserId(other);
                    match kind {
                        LinkKind::FollowRequests => request_removal(them, user, &mut batch),
                        LinkKind::RequestsSent => request_removal(user, them, &mut batch),
                        LinkKind::Blocks | LinkKind::BlockedBy => {
                            let mirror = if kind == LinkKind::Blocks {
                                LinkKind::BlockedBy
                            } else {
                                LinkKind::Blocks
                            };
                            batch.push(Mutation::DeleteLink {
                                kind,
                                from: user.0,
                                to: other,
                            });
                            batch.push(Mutation::DeleteLink {
                                kind: mirror,
                                from: other,
                                to: user.0,
                            });
                        }
                        _ => batch.push(Mutation::DeleteLink {
                            kind,
                            from: user.0,
                            to: other,
                        }),
                    }
                }
                self.write(&batch, self.config.durability)?;
            }
        }
        Ok(())
    }

    /// Takes back every like of `user`, one batch each (the post's count
    /// is rewritten under its stripe, as an unlike does).
    fn drop_likes(&self, user: UserId) -> Result<()> {
        let mut links = Vec::with_capacity(PAGE);
        loop {
            links.clear();
            self.backend
                .links(LinkKind::Likes, user.0, None, PAGE, &mut links)?;
            if links.is_empty() {
                return Ok(());
            }
            for &(to, _) in &links {
                let post = PostId(!to);
                let _post = self.posts.lock_post(post);
                let mut batch = vec![
                    Mutation::DeleteLink {
                        kind: LinkKind::Likes,
                        from: user.0,
                        to,
                    },
                    Mutation::DeleteLink {
                        kind: LinkKind::LikedBy,
                        from: post.0,
                        to: user.0,
                    },
                    record(Change::Unliked { user, post }),
                ];
                if self
                    .backend
                    .link(LinkKind::LikedBy, post.0, user.0)?
                    .is_some()
                    && let Some(record) = self.stored_post(post)?
                {
                    let likes = record.likes.saturating_sub(1);
                    batch.push(Mutation::PutPost(starling_core::Post { likes, ..record }));
                }
                self.write(&batch, self.config.durability)?;
            }
        }
    }

    /// Leaves every group of others `user` is in, one batch each, from
    /// the user's index of them.
    fn leave_groups(&self, user: UserId) -> Result<()> {
        let mut links = Vec::with_capacity(PAGE);
        loop {
            links.clear();
            self.backend
                .links(LinkKind::MemberOf, user.0, None, PAGE, &mut links)?;
            if links.is_empty() {
                return Ok(());
            }
            for &(group, _) in &links {
                let group = GroupId(group);
                let owner = self.backend.group(group)?.map(|g| g.owner);
                self.remove_membership(group, owner, user)?;
            }
        }
    }

    /// Removes `member` from `group` (owned by `owner`, when the group
    /// record is still there): the link both ways and the group's posts
    /// in the member's inbox, one batch.
    fn remove_membership(
        &self,
        group: GroupId,
        owner: Option<UserId>,
        member: UserId,
    ) -> Result<()> {
        let mut batch = membership_removal(group, member);
        let _locks = owner.map(|owner| self.lock_inbox(member, owner));
        if let Some(owner) = owner {
            retract_where(
                self,
                member,
                |p| p.author == owner && p.audience == starling_core::Audience::Group(group),
                &mut batch,
            )?;
        }
        self.write(&batch, self.config.durability)?;
        self.publish_inbox_changes(&batch);
        Ok(())
    }

    /// Deletes every group `user` owns: each member leaves (one batch
    /// each), then the group goes.
    fn drop_groups(&self, user: UserId) -> Result<()> {
        let mut groups = Vec::with_capacity(PAGE);
        let mut members = Vec::with_capacity(PAGE);
        loop {
            groups.clear();
            self.backend
                .links(LinkKind::OwnerGroups, user.0, None, PAGE, &mut groups)?;
            if groups.is_empty() {
                return Ok(());
            }
            for &(group, _) in &groups {
                loop {
                    members.clear();
                    self.backend
                        .links(LinkKind::Members, group, None, PAGE, &mut members)?;
                    if members.is_empty() {
                        break;
                    }
                    for &(member, _) in &members {
                        self.remove_membership(GroupId(group), Some(user), UserId(member))?;
                    }
                }
                self.write(
                    &[
                        Mutation::DeleteLink {
                            kind: LinkKind::OwnerGroups,
                            from: user.0,
                            to: group,
                        },
                        Mutation::DeleteGroup(GroupId(group)),
                    ],
                    self.config.durability,
                )?;
            }
        }
    }

    /// The phone link and pending link, the avatar and the profile: one
    /// batch.
    fn drop_direct(&self, user: UserId) -> Result<()> {
        let _phones = self.direct.phones.lock();
        let _user = self.direct.users.lock(user);
        let mut batch = vec![
            Mutation::Direct(DirectMutation::DeleteAvatar(user)),
            Mutation::Direct(DirectMutation::PutProfile {
                user,
                profile: Profile::default(),
            }),
        ];
        if let Some(phone) = self.backend.phone_of(user)? {
            batch.push(Mutation::Direct(DirectMutation::UnlinkPhone {
                user,
                phone,
            }));
        }
        if let Some(c) = self.backend.phone_claim(user)? {
            batch.push(Mutation::Direct(DirectMutation::DeletePhoneClaim {
                user: c.user,
                phone: c.phone,
            }));
        }
        self.write(&batch, self.config.durability)
    }
}
