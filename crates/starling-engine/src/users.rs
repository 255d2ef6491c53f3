//! Users and follows: accounts, the follow graph (follow with backfill,
//! unfollow with retraction), pages of edges and the O(1) counts.

use std::ops::ControlFlow;

use starling_core::paging::{PAGE, for_each_page};
use starling_core::{
    AuthorMode, Change, Counts, Cursor, DirectMutation, Edge, EdgeMode, Error, InboxEntry,
    LinkKind, Mutation, PostId, Result, Toggle, User, UserId, Username,
};
use starling_graph::{blocked_either, check_edge, is_protected};
use starling_inbox::check_page_size;
use starling_inbox::view::delivered_to;
use starling_log::unix_millis;
use starling_store::Backend;
use starling_store::Direction;

use crate::base::{Shared, record};
use crate::engine::Engine;

/// A page of user ids (followers or following), in id order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct UserPage {
    /// The users.
    pub users: Vec<UserId>,
    /// Where the next page starts, or `None` at the end.
    pub next: Option<Cursor>,
}

impl UserPage {
    /// A page of users from up to `limit + 1` ids in order: the extra one
    /// says there is more.
    pub(crate) fn from_ids(ids: impl Iterator<Item = UserId>, limit: usize) -> UserPage {
        let mut users: Vec<UserId> = ids.collect();
        let more = users.len() > limit;
        users.truncate(limit);
        UserPage {
            next: if more {
                users.last().map(|u| Cursor::users(*u))
            } else {
                None
            },
            users,
        }
    }
}

impl<B: Backend> Engine<B> {
    /// Creates a user. Usernames are unique regardless of case; the name
    /// of a deleted account is refused ([`Error::UsernameReserved`]) until
    /// [`starling_core::Config::name_hold_ms`] has passed since its
    /// deletion.
    pub fn create_user(&self, name: &str) -> Result<User> {
        self.create_user_at(name, unix_millis())
    }

    /// [`Engine::create_user`] at `now_ms` (the creation time, and the
    /// time a deleted account's name hold is compared with).
    pub fn create_user_at(&self, name: &str, now_ms: u64) -> Result<User> {
        let name = Username::parse(name)?;
        let s = &self.shared;
        s.check_writable()?;
        let mut next = s.next_user.lock();
        if let Some(holder) = s.backend.user_id_by_name(&name)? {
            match s.backend.link(LinkKind::Deleted, holder.0, 0)? {
                None => return Err(Error::UsernameTaken(name.as_str().to_owned())),
                Some(at) if !name_free(&s.config, at, now_ms) => {
                    return Err(Error::UsernameReserved(name.as_str().to_owned()));
                }
                // Free again: the name index moves to the new account.
                Some(_) => {}
            }
        }
        let id = match s.backend.mint_user_id(s.config.durability)? {
            Some(id) => id,
            None => UserId(*next),
        };
        let user = User {
            id,
            name,
            created_at_ms: now_ms,
        };
        s.write(&[Mutation::PutUser(user.clone())], s.config.durability)?;
        s.activity.ensure(user.id);
        *next = (*next).max(id.0 + 1);
        Ok(user)
    }

    /// The user with this id ([`Error::AccountDeleted`] once deleted).
    pub fn user(&self, id: UserId) -> Result<User> {
        let s = &self.shared;
        let user = s.backend.user(id)?.ok_or(Error::UnknownUser(id))?;
        if s.is_deleted(id)? {
            return Err(Error::AccountDeleted(id));
        }
        Ok(user)
    }

    /// The user with this id, deleted or not: what a conversation with a
    /// deleted account shows of it (see [`Engine::is_deleted`]).
    pub fn user_record(&self, id: UserId) -> Result<User> {
        self.shared.backend.user(id)?.ok_or(Error::UnknownUser(id))
    }

    /// The user with this name (compared without case).
    pub fn user_by_name(&self, name: &str) -> Result<User> {
        let parsed = Username::parse(name)?;
        let id = self
            .shared
            .backend
            .user_id_by_name(&parsed)?
            .ok_or_else(|| Error::UnknownUsername(name.to_owned()))?;
        self.user(id)
    }

    /// `follower` follows `followee`, and gets the followee's recent posts
    /// in their home timeline. Returns whether the edge is new (following
    /// twice is not an error). A protected account is followed only
    /// through a request it approves: [`Error::Protected`] (see
    /// [`Engine::follow_or_request`]).
    pub fn follow(&self, follower: UserId, followee: UserId) -> Result<bool> {
        check_edge(follower, followee)?;
        let s = self.shared.writing(&[follower, followee])?;
        let _locks = s.lock_inbox(follower, followee);
        if s.backend.edge(follower, followee)?.is_some() {
            return Ok(false);
        }
        if blocked_either(&s.backend, follower, followee)? {
            return Err(Error::Blocked("cannot follow across a block"));
        }
        if is_protected(&s.backend, followee)? {
            return Err(Error::Protected(followee));
        }
        let mut batch = Vec::new();
        s.follow_batch(follower, followee, &mut batch)?;
        s.write(&batch, s.config.durability)?;
        s.publish_inbox_changes(&batch);
        Ok(true)
    }

    /// `follower` stops following `followee`; the followee's posts leave the
    /// follower's home timeline. Returns whether there was an edge.
    pub fn unfollow(&self, follower: UserId, followee: UserId) -> Result<bool> {
        check_edge(follower, followee)?;
        let s = self.shared.writing(&[follower, followee])?;
        let _locks = s.lock_inbox(follower, followee);
        let mut batch = Vec::new();
        if !s.unfollow_batch(follower, followee, &mut batch)? {
            return Ok(false);
        }
        s.write(&batch, s.config.durability)?;
        s.publish_inbox_changes(&batch);
        Ok(true)
    }

    /// Whether `follower` follows `followee`.
    pub fn is_following(&self, follower: UserId, followee: UserId) -> Result<bool> {
        let s = self.shared.known(&[follower, followee])?;
        Ok(s.backend.edge(follower, followee)?.is_some())
    }

    /// A page of the accounts following `user`.
    pub fn followers(
        &self,
        user: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<UserPage> {
        self.edge_page(user, Direction::Followers, cursor, limit)
    }

    /// A page of the accounts `user` follows.
    pub fn following(
        &self,
        user: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<UserPage> {
        self.edge_page(user, Direction::Following, cursor, limit)
    }

    fn edge_page(
        &self,
        user: UserId,
        dir: Direction,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<UserPage> {
        check_page_size(limit)?;
        let after = cursor.map(Cursor::as_users).transpose()?;
        let s = self.shared.known(&[user])?;
        let mut edges: Vec<Edge> = Vec::with_capacity(limit + 1);
        s.backend.edges(user, dir, after, limit + 1, &mut edges)?;
        Ok(UserPage::from_ids(edges.into_iter().map(|e| e.user), limit))
    }

    /// Follower and following counts, read in O(1).
    pub fn counts(&self, user: UserId) -> Result<Counts> {
        self.shared.known(&[user])?.backend.counts(user)
    }
}

/// Whether a name held by an account deleted at `deleted_at_ms` is free
/// again at `now_ms`.
fn name_free(config: &starling_core::Config, deleted_at_ms: u64, now_ms: u64) -> bool {
    now_ms >= deleted_at_ms.saturating_add(config.name_hold_ms)
}

impl<B: Backend> Shared<B> {
    /// Appends to `batch` what a new follow takes: the edge (push, or pull
    /// for a pulled author) and the backfill of the followee's recent
    /// posts into the follower's inbox. The caller holds the follower's
    /// reader stripe and the followee's author stripe, and has checked
    /// that there is no edge and no block.
    pub(crate) fn follow_batch(
        &self,
        follower: UserId,
        followee: UserId,
        batch: &mut Vec<Mutation>,
    ) -> Result<()> {
        let mut recent = Vec::new();
        self.backend.author_posts(
            followee,
            None,
            self.config.backfill_posts.max(1),
            &mut recent,
        )?;
        let since = recent.first().copied().unwrap_or(PostId(0));
        recent.truncate(self.config.backfill_posts);
        let mut posts = Vec::with_capacity(recent.len());
        self.backend.posts(&recent, &mut posts)?;
        let mode = match self.backend.author_mode(followee)? {
            AuthorMode::Push => EdgeMode::Push,
            AuthorMode::Promoting | AuthorMode::Pulled => EdgeMode::Pull,
        };
        batch.push(Mutation::AddEdge {
            follower,
            followee,
            since,
            mode,
        });
        batch.push(record(Change::Followed { follower, followee }));
        for p in posts.into_iter().flatten() {
            if !p.deleted && delivered_to(&self.backend, &p, follower)? {
                batch.push(Mutation::InboxPut {
                    owner: follower,
                    entry: InboxEntry {
                        post: p.id,
                        author: followee,
                    },
                });
            }
        }
        Ok(())
    }

    /// Appends to `batch` what unfollowing takes: the edge both ways, the
    /// device updates it carried, and the followee's entries in the
    /// follower's inbox. Returns whether there was an edge. The caller
    /// holds the follower's reader stripe and the followee's author stripe.
    pub(crate) fn unfollow_batch(
        &self,
        follower: UserId,
        followee: UserId,
        batch: &mut Vec<Mutation>,
    ) -> Result<bool> {
        if self.backend.edge(follower, followee)?.is_none() {
            return Ok(false);
        }
        batch.push(Mutation::RemoveEdge { follower, followee });
        batch.push(record(Change::Unfollowed { follower, followee }));
        // The follower's device updates for the followee end with the edge.
        batch.push(Mutation::Direct(DirectMutation::SetDeviceSub {
            followee,
            follower,
            on: Toggle::Off,
        }));
        for_each_page(
            PAGE,
            |before, size, entries| self.backend.inbox(follower, before, size, entries),
            |e| e.post,
            |entries| {
                batch.extend(entries.iter().filter(|e| e.author == followee).map(|e| {
                    Mutation::InboxDelete {
                        owner: follower,
                        post: e.post,
                    }
                }));
                Ok(ControlFlow::Continue(()))
            },
        )?;
        Ok(true)
    }
}
