//! The read path: posts by id as a viewer may see them, home and author
//! timelines (with the upkeep a home read does: rebuild of an inactive
//! reader's inbox, trim, last read, pull edges back to push), subscriptions,
//! and `check` / `rebuild`.

use starling_core::{
    AuthorMode, Cursor, Durability, EdgeMode, Error, FanoutPolicy, InboxEntry, MAX_PAGE_SIZE,
    Mutation, Post, PostId, Result, UserId,
};
use starling_inbox::view::delivered_to;
use starling_inbox::{
    CheckReport, HomeRead, Mutes, Start, TimelinePage, Viewer, author_page, below_window,
    check_page_size, expected_inbox, home_page,
};
use starling_log::unix_millis;
use starling_store::Backend;

use crate::base::Shared;
use crate::engine::Engine;
use crate::events::Subscription;

impl<B: Backend> Engine<B> {
    /// The post with this id, as anyone may see it: a group post is
    /// [`Error::UnknownPost`] here (see [`Engine::get_post_as`]).
    pub fn get_post(&self, id: PostId) -> Result<Post> {
        self.get_post_for(&mut Viewer::public(), id)
    }

    /// The post with this id as `viewer` may see it: a post the viewer may
    /// not see (a group post they are not in the audience of, a post across
    /// a block) is [`Error::UnknownPost`], so its existence does not leak.
    pub fn get_post_as(&self, viewer: UserId, id: PostId) -> Result<Post> {
        let s = self.shared.known(&[viewer])?;
        let mut viewer = Viewer::load(&s.backend, viewer, Mutes::Show)?;
        self.get_post_for(&mut viewer, id)
    }

    fn get_post_for(&self, viewer: &mut Viewer, id: PostId) -> Result<Post> {
        let s = &self.shared;
        let post = s.live_post(id)?;
        s.seen_by(viewer, post)?.ok_or(Error::UnknownPost(id))
    }

    /// The posts with these ids, in order, as anyone may see them; `None`
    /// for unknown, deleted or non-public ones. At most [`MAX_PAGE_SIZE`]
    /// ids.
    pub fn get_posts(&self, ids: &[PostId]) -> Result<Vec<Option<Post>>> {
        if ids.len() > MAX_PAGE_SIZE {
            return Err(Error::PageSize {
                requested: ids.len(),
                max: MAX_PAGE_SIZE,
            });
        }
        let s = &self.shared;
        let mut out = Vec::with_capacity(ids.len());
        s.backend.posts(ids, &mut out)?;
        let mut viewer = Viewer::public();
        out.into_iter()
            .map(|p| match p {
                Some(p) => s.seen_by(&mut viewer, p),
                None => Ok(None),
            })
            .collect()
    }

    /// A page of `user`'s home timeline, newest first: their own posts and
    /// those of the accounts they follow, at most `limit` (1 to
    /// [`MAX_PAGE_SIZE`]) posts, continuing from `cursor`.
    ///
    /// A first page (no cursor) counts as a read: a reader who had been
    /// inactive gets their inbox rebuilt first (at most `inbox_cap` posts
    /// read per followee and `inbox_cap` entries written), and under the
    /// `Rates` policy pull edges whose reader now reads as often as the
    /// author posts turn back to push.
    pub fn home_timeline(
        &self,
        user: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<TimelinePage> {
        check_page_size(limit)?;
        let s = self.shared.known(&[user])?;
        // Read-side upkeep writes; if it cannot, the engine is poisoned and
        // the page comes from the post logs, which need no upkeep.
        let start =
            if cursor.is_some() || (s.check_writable().is_ok() && s.record_read(user).is_ok()) {
                Start::Inbox
            } else {
                Start::PullOnly
            };
        let read = HomeRead {
            cap: s.config.inbox_cap,
            backfill: s.config.backfill_posts,
            start,
        };
        let mut viewer = Viewer::load(&s.backend, user, Mutes::Hide)?;
        let (page, trim) = home_page(&s.backend, &mut viewer, cursor, limit, read)?;
        if let Some(trim) = trim
            && s.check_writable().is_ok()
        {
            // A failed trim poisons the engine; the page is right either way.
            let _ = s.write(&[trim], Durability::Buffered);
        }
        Ok(page)
    }

    /// Waits for pending fan-out, then compares all derived state (inboxes,
    /// counts, reverse edges, indexes) with the ground truth and reports
    /// every difference.
    pub fn check(&self) -> Result<CheckReport> {
        self.check_with_progress(&|_| {})
    }

    /// Runs [`Engine::check`] and repairs every difference it found, in
    /// synced batches. Returns the report of what was repaired. Run it while
    /// nothing else writes (the admin tool holds the database alone).
    ///
    /// Inboxes are computed through the indexes, so a repaired index can
    /// change what an inbox must hold: repairs run in rounds until a check
    /// comes back clean (two rounds at most for any damage `check` reports).
    pub fn rebuild(&self) -> Result<CheckReport> {
        self.rebuild_with_progress(&|_| {})
    }

    /// A page of `author`'s posts, newest first, as anyone may see them
    /// (public posts only).
    pub fn author_timeline(
        &self,
        author: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<TimelinePage> {
        check_page_size(limit)?;
        let s = self.shared.known(&[author])?;
        author_page(&s.backend, &mut Viewer::public(), author, cursor, limit)
    }

    /// A page of `author`'s posts, newest first, as `viewer` may see them.
    pub fn author_timeline_as(
        &self,
        viewer: UserId,
        author: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<TimelinePage> {
        check_page_size(limit)?;
        let s = self.shared.known(&[viewer, author])?;
        let mut viewer = Viewer::load(&s.backend, viewer, Mutes::Show)?;
        author_page(&s.backend, &mut viewer, author, cursor, limit)
    }

    /// Subscribes to `user`'s real-time events (see [`Event`](crate::Event)).
    /// Read the subscription by blocking or await it as a `Stream`; it ends
    /// when the engine closes.
    ///
    /// Subscribing counts as a read of the home timeline: a reader who had
    /// been inactive gets their inbox rebuilt, and fan-out writes to them
    /// (and so tells them) again from now on.
    pub fn subscribe(&self, user: UserId) -> Result<Subscription> {
        let s = self.shared.writing(&[user])?;
        s.record_read(user)?;
        Ok(s.hub.subscribe(user))
    }
}

impl<B: Backend> Shared<B> {
    /// `post` if `viewer` may see it (the one-post case of
    /// [`Viewer::filter`]).
    pub(crate) fn seen_by(&self, viewer: &mut Viewer, post: Post) -> Result<Option<Post>> {
        let mut kept = vec![post];
        viewer.filter(&self.backend, &mut kept, &mut Vec::new())?;
        Ok(kept.pop())
    }

    /// A home-timeline read by `user`: rebuild an inactive reader's inbox,
    /// trim it back to the cap when deliveries grew it, persist the read (at
    /// most once per quarter of the inactivity period), and under `Rates`
    /// turn pull edges back to push.
    fn record_read(&self, user: UserId) -> Result<()> {
        let _reader = self.readers.lock(user);
        let now = unix_millis();
        if self
            .activity
            .inactive(user, self.config.inactive_after_ms, now)
        {
            self.rebuild_inbox(user)?;
        }
        let every = self.config.inactive_after_ms.map_or(u64::MAX, |d| d / 4);
        // Fan-out never deletes: an inbox that took a quarter of its cap in
        // deliveries since its last trim is cut back to the cap here, with
        // one range deletion, at the cost of one scan of `cap` keys.
        let cap = self.config.inbox_cap;
        if self.activity.take_deliveries(user, (cap as u64 / 4).max(1)) {
            let mut entries = Vec::with_capacity(cap + 1);
            self.backend.inbox(user, None, cap + 1, &mut entries)?;
            if let Some(first_over) = entries.get(cap) {
                let trim = Mutation::InboxTrim {
                    owner: user,
                    through: first_over.post,
                };
                self.write(&[trim], Durability::Buffered)?;
            }
        }
        if let Some(at_ms) = self.activity.read(user, now, every) {
            self.write(
                &[Mutation::SetLastRead { user, at_ms }],
                Durability::Buffered,
            )?;
        }
        if self.config.fanout_policy == FanoutPolicy::Rates {
            let mut pulled = Vec::new();
            self.backend.pulled(user, &mut pulled)?;
            let reads = self.activity.read_rate(user, now);
            for edge in pulled {
                if reads >= self.activity.post_rate(edge.user, now) {
                    self.flip_to_push(user, edge.user)?;
                }
            }
        }
        Ok(())
    }

    /// Writes what fan-out skipped while `user` was inactive: every entry
    /// the ground truth gives the inbox, up to the cap. Only adds, so a
    /// delivery racing with it is never undone; entries whose post was
    /// deleted meanwhile are removed again after the write.
    fn rebuild_inbox(&self, user: UserId) -> Result<()> {
        let expected = expected_inbox(
            &self.backend,
            user,
            self.config.backfill_posts,
            self.config.inbox_cap,
        )?;
        if expected.is_empty() {
            return Ok(());
        }
        let ids: Vec<PostId> = expected.iter().map(|e| e.post).collect();
        let mut batch: Vec<Mutation> = expected
            .iter()
            .map(|&entry| Mutation::InboxPut { owner: user, entry })
            .collect();
        batch.extend(below_window(user, &ids, self.config.inbox_cap));
        self.write(&batch, Durability::Buffered)?;
        let mut posts = Vec::with_capacity(ids.len());
        self.backend.posts(&ids, &mut posts)?;
        let gone: Vec<Mutation> = ids
            .iter()
            .zip(&posts)
            .filter(|(_, p)| p.as_ref().is_none_or(|p| p.deleted))
            .map(|(&post, _)| Mutation::InboxDelete { owner: user, post })
            .collect();
        if !gone.is_empty() {
            self.write(&gone, Durability::Buffered)?;
        }
        Ok(())
    }

    /// Turns the pull edge `reader -> author` back to push, copying the
    /// author's posts since the follow (newest, up to the cap) into the
    /// reader's inbox. Skips authors over the push threshold.
    fn flip_to_push(&self, reader: UserId, author: UserId) -> Result<()> {
        let _author = self.authors.lock(author);
        if self.backend.author_mode(author)? != AuthorMode::Push {
            return Ok(());
        }
        let Some(edge) = self.backend.follower_edge(author, reader)? else {
            return Ok(());
        };
        if edge.mode != EdgeMode::Pull {
            return Ok(());
        }
        let mut ids = Vec::new();
        self.backend
            .author_posts(author, None, self.config.inbox_cap, &mut ids)?;
        let mut batch = vec![Mutation::SetEdgeMode {
            follower: reader,
            followee: author,
            since: edge.since,
            mode: EdgeMode::Push,
        }];
        let mut posts = Vec::with_capacity(ids.len());
        self.backend.posts(&ids, &mut posts)?;
        for p in posts.into_iter().flatten() {
            if p.id > edge.since && !p.deleted && delivered_to(&self.backend, &p, reader)? {
                batch.push(Mutation::InboxPut {
                    owner: reader,
                    entry: InboxEntry { post: p.id, author },
                });
            }
        }
        if ids.last().is_some_and(|&oldest| oldest > edge.since) {
            batch.extend(below_window(reader, &ids, self.config.inbox_cap));
        }
        self.write(&batch, Durability::Buffered)
    }
}
