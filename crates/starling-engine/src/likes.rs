//! Favourites: like and unlike a post, who likes a post, what a user likes.
//!
//! A like is two links written in one batch with the post record's new
//! like count: `Likes (user, !post)` and `LikedBy (post, user)`, both
//! holding the like time. The count is rewritten whole (never added to),
//! under the post's stripe of the post locks, which a delete also takes
//! around its tombstone: a replayed batch writes the same values again.

use starling_core::{
    Audience, Change, Cursor, Error, LinkKind, Mutation, Post, PostId, Result, UserId,
};
use starling_graph::blocked_either;
use starling_inbox::{Mutes, TimelinePage, Viewer, check_page_size, fill_page, timeline_position};
use starling_log::unix_millis;
use starling_store::Backend;

use crate::base::record;
use crate::engine::Engine;
use crate::users::UserPage;

impl<B: Backend> Engine<B> {
    /// `user` likes `post` (liking a repost likes its original). Returns
    /// whether the like is new: liking twice changes nothing.
    ///
    /// Refused as reading the post by id would be for a post the user may
    /// not see ([`Error::UnknownPost`], [`Error::PostDeleted`]), except
    /// that a public post whose author blocks the user or is blocked by
    /// them is [`Error::Blocked`].
    pub fn like(&self, user: UserId, post: PostId) -> Result<bool> {
        let s = self.shared.writing(&[user])?;
        let target = self.like_target(user, post)?;
        let _post = s.posts.lock_post(target.id);
        // Read again under the lock: a delete may have come in between.
        let live = s.live_post(target.id)?;
        if s.backend
            .link(LinkKind::LikedBy, live.id.0, user.0)?
            .is_some()
        {
            return Ok(false);
        }
        let at = unix_millis();
        let likes = live.likes.saturating_add(1);
        s.write(
            &[
                Mutation::PutLink {
                    kind: LinkKind::LikedBy,
                    from: live.id.0,
                    to: user.0,
                    value: at,
                },
                Mutation::PutLink {
                    kind: LinkKind::Likes,
                    from: user.0,
                    to: !live.id.0,
                    value: at,
                },
                Mutation::PutPost(Post { likes, ..live }),
                record(Change::Liked {
                    user,
                    post: live.id,
                }),
            ],
            s.config.durability,
        )?;
        Ok(true)
    }

    /// `user` takes back their like of `post` (of its original, for a
    /// repost). Returns whether there was one. A user may always take back
    /// a like, whatever happened to the post since (deleted, hidden by a
    /// block or a group change); without a like, a post they may not see
    /// is refused as [`Engine::like`] refuses it.
    pub fn unlike(&self, user: UserId, post: PostId) -> Result<bool> {
        let s = self.shared.writing(&[user])?;
        let stored = s.stored_post(post)?.ok_or(Error::UnknownPost(post))?;
        let target = stored.repost_of.unwrap_or(stored.id);
        {
            let _post = s.posts.lock_post(target);
            if s.backend
                .link(LinkKind::LikedBy, target.0, user.0)?
                .is_some()
                && let Some(record) = s.stored_post(target)?
            {
                let likes = record.likes.saturating_sub(1);
                s.write(
                    &[
                        Mutation::DeleteLink {
                            kind: LinkKind::LikedBy,
                            from: target.0,
                            to: user.0,
                        },
                        Mutation::DeleteLink {
                            kind: LinkKind::Likes,
                            from: user.0,
                            to: !target.0,
                        },
                        Mutation::PutPost(Post { likes, ..record }),
                        crate::base::record(Change::Unliked { user, post: target }),
                    ],
                    s.config.durability,
                )?;
                return Ok(true);
            }
        }
        self.like_target(user, post)?;
        Ok(false)
    }

    /// Whether `user` likes `post` (its original, for a repost), whether
    /// or not they may still see it.
    pub fn likes_post(&self, user: UserId, post: PostId) -> Result<bool> {
        let s = self.shared.known(&[user])?;
        let stored = s.stored_post(post)?.ok_or(Error::UnknownPost(post))?;
        let target = stored.repost_of.unwrap_or(stored.id);
        Ok(s.backend
            .link(LinkKind::LikedBy, target.0, user.0)?
            .is_some())
    }

    /// Whether `user` likes each of `posts` (a repost: its original), as
    /// records a read returned: one link read per post, no post read. At
    /// most [`starling_core::MAX_PAGE_SIZE`] posts.
    pub fn liked_among(&self, user: UserId, posts: &[Post]) -> Result<Vec<bool>> {
        if posts.len() > starling_core::MAX_PAGE_SIZE {
            return Err(Error::PageSize {
                requested: posts.len(),
                max: starling_core::MAX_PAGE_SIZE,
            });
        }
        let s = self.shared.known(&[user])?;
        posts
            .iter()
            .map(|p| {
                let target = p.repost_of.unwrap_or(p.id);
                Ok(s.backend
                    .link(LinkKind::LikedBy, target.0, user.0)?
                    .is_some())
            })
            .collect()
    }

    /// A page of the accounts that like `post` (its original, for a
    /// repost), in id order, for a `viewer` who may see it (refused as
    /// [`Engine::like`] refuses a post otherwise). The post's `likes`
    /// counts them all.
    pub fn likers(
        &self,
        viewer: UserId,
        post: PostId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<UserPage> {
        check_page_size(limit)?;
        self.shared.known(&[viewer])?;
        let target = self.like_target(viewer, post)?;
        self.users_linked(LinkKind::LikedBy, target.id.0, cursor, limit)
    }

    /// A page of the posts `user` likes, newest post first, as `viewer`
    /// sees them: only posts both `user` and `viewer` may see (live, no
    /// block with the author on either side, in a group post's audience).
    /// `viewer` may be `user`.
    pub fn liked_posts(
        &self,
        viewer: UserId,
        user: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<TimelinePage> {
        check_page_size(limit)?;
        let s = self.shared.known(&[viewer, user])?;
        let (before, _) = timeline_position(cursor)?;
        let mut view = Viewer::load(&s.backend, user, Mutes::Show)?;
        if viewer != user {
            view = view.and(Viewer::load(&s.backend, viewer, Mutes::Show)?);
        }
        let mut links = Vec::new();
        fill_page(&s.backend, &mut view, before, limit, |before, want, ids| {
            links.clear();
            // Keyed by !post: after !before is older than before.
            let after = before.map(|b| !b.0);
            s.backend
                .links(LinkKind::Likes, user.0, after, want, &mut links)?;
            ids.extend(links.iter().map(|&(to, _)| PostId(!to)));
            Ok(())
        })
    }

    /// The post a like of `post` by `user` is about: the post, or for a
    /// repost its original, as `user` may read them by id; a public post
    /// across a block is [`Error::Blocked`].
    fn like_target(&self, user: UserId, post: PostId) -> Result<Post> {
        let refused = |e: Error| -> Result<Error> {
            let Error::UnknownPost(_) = e else {
                return Ok(e);
            };
            let s = &self.shared;
            let Some(seen) = s.stored_post(post)? else {
                return Ok(e);
            };
            let original = match seen.repost_of {
                Some(of) => s.stored_post(of)?,
                None => Some(seen),
            };
            Ok(match original {
                Some(o)
                    if !o.deleted
                        && o.audience == Audience::Public
                        && blocked_either(&s.backend, user, o.author)? =>
                {
                    Error::Blocked("cannot like across a block")
                }
                _ => e,
            })
        };
        let target = match self.get_post_as(user, post) {
            Ok(p) => p,
            Err(e) => return Err(refused(e)?),
        };
        match target.repost_of {
            Some(of) => match self.get_post_as(user, of) {
                Ok(p) => Ok(p),
                Err(e) => Err(refused(e)?),
            },
            None => Ok(target),
        }
    }
}
