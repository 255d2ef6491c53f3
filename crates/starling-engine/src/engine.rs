//! The engine: operations, their locking, and the fan-out worker pool.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex};
use starling_core::{
    AuthorMode, Config, Counts, Cursor, Durability, Edge, EdgeMode, Error, FanoutJob, FanoutPolicy,
    InboxEntry, JobKind, MAX_PAGE_SIZE, Mutation, Post, PostId, PostText, Result, User, UserId,
    Username,
};
use starling_graph::{Direction, check_edge};
use starling_inbox::{
    Backend, CheckReport, Delivery, HomeRead, OpenBackend, Start, TimelinePage, author_page,
    check_page_size, expected_inbox, home_page, next_followers, plan_step, repairs,
};
use starling_log::{PostIdGenerator, unix_millis};

use crate::activity::Activity;
use crate::locks::AuthorLocks;

/// Fan-out batches written under one hold of an author's lock.
const PIPELINE: usize = 16;

/// A page of user ids (followers or following), in id order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserPage {
    /// The users.
    pub users: Vec<UserId>,
    /// Where the next page starts, or `None` at the end.
    pub next: Option<Cursor>,
}

/// Fan-out counters since the engine opened.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FanoutStats {
    /// Jobs queued or running.
    pub jobs_pending: u64,
    /// Jobs finished.
    pub jobs_done: u64,
    /// Unfinished jobs found at open and resumed.
    pub jobs_resumed: u64,
    /// Inbox entries written or removed by fan-out workers.
    pub entries_delivered: u64,
    /// `entries_delivered` per second of worker busy time.
    pub entries_per_sec: f64,
}

/// The engine over backend `B`. Operations take `&self` and may be called
/// from many threads; fan-out runs on a pool of owned worker threads that
/// [`Engine::close`] (or drop) joins.
pub struct Engine<B: Backend> {
    pub(crate) shared: Arc<Shared<B>>,
    sender: Option<Sender<PostId>>,
    workers: Vec<JoinHandle<()>>,
}

pub(crate) struct Shared<B> {
    pub(crate) backend: B,
    pub(crate) config: Config,
    pub(crate) ids: PostIdGenerator,
    next_user: Mutex<u64>,
    pub(crate) authors: AuthorLocks,
    /// Taken before an author's lock by operations on one reader's inbox
    /// as a whole (follow, unfollow, rebuild on read); never after one.
    readers: AuthorLocks,
    activity: Activity,
    poisoned: AtomicBool,
    stopping: AtomicBool,
    pending: Mutex<u64>,
    idle: Condvar,
    jobs_done: AtomicU64,
    jobs_resumed: AtomicU64,
    delivered: AtomicU64,
    busy_nanos: AtomicU64,
    pub(crate) direct: crate::direct::DirectLocks,
}

impl<B: OpenBackend> Engine<B> {
    /// Opens (creating if missing) the store at `path` and resumes any
    /// unfinished fan-out.
    pub fn open(path: impl AsRef<Path>, config: Config) -> Result<Engine<B>> {
        config.validate()?;
        let backend = B::open(path.as_ref(), &config)?;
        Engine::with_backend(backend, config)
    }
}

impl<B: Backend> Engine<B> {
    /// Starts an engine over an opened backend and resumes its pending jobs.
    pub fn with_backend(backend: B, config: Config) -> Result<Engine<B>> {
        config.validate()?;
        let next_user = backend.last_user_id()?.map_or(1, |u| u.0 + 1);
        let last_id = backend.last_post_id()?.max(backend.last_message_id()?);
        let ids = PostIdGenerator::new(config.node_id, last_id);
        let workers = config.fanout_workers;
        let activity = Activity::new(config.rate_half_life_ms);
        activity.ensure(UserId(next_user));
        let mut reads = Vec::new();
        let mut after = None;
        loop {
            reads.clear();
            backend.last_reads(after, 4096, &mut reads)?;
            for &(user, at_ms) in &reads {
                activity.load_last_read(user, at_ms);
            }
            match reads.last() {
                Some(&(last, _)) if reads.len() == 4096 => after = Some(last),
                _ => break,
            }
        }
        let shared = Arc::new(Shared {
            backend,
            config,
            ids,
            next_user: Mutex::new(next_user),
            authors: AuthorLocks::new(),
            readers: AuthorLocks::new(),
            activity,
            poisoned: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            pending: Mutex::new(0),
            idle: Condvar::new(),
            jobs_done: AtomicU64::new(0),
            jobs_resumed: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            busy_nanos: AtomicU64::new(0),
            direct: crate::direct::DirectLocks::new(),
        });
        let (sender, receiver) = crossbeam_channel::unbounded();
        let mut engine = Engine {
            shared: Arc::clone(&shared),
            sender: Some(sender),
            workers: Vec::with_capacity(workers),
        };
        for i in 0..workers {
            let shared = Arc::clone(&shared);
            let receiver = receiver.clone();
            let handle = std::thread::Builder::new()
                .name(format!("starling-fanout-{i}"))
                .spawn(move || shared.work(&receiver))
                .map_err(|e| Error::Storage(starling_core::StorageError::new(e.to_string())))?;
            engine.workers.push(handle);
        }
        let mut jobs = Vec::new();
        let mut after = None;
        loop {
            jobs.clear();
            shared.backend.jobs(after, 1024, &mut jobs)?;
            for job in &jobs {
                engine.enqueue(job.post);
            }
            shared
                .jobs_resumed
                .fetch_add(jobs.len() as u64, Ordering::Relaxed);
            match jobs.last() {
                Some(last) if jobs.len() == 1024 => after = Some(last.post),
                _ => break,
            }
        }
        Ok(engine)
    }

    /// The backend, for inspection (tests, tools).
    pub fn backend(&self) -> &B {
        &self.shared.backend
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Stops the fan-out workers after their current batch and joins them.
    /// Unfinished jobs stay durable and resume on the next open.
    pub fn close(mut self) -> Result<()> {
        self.shutdown();
        if self.shared.poisoned.load(Ordering::SeqCst) {
            return Err(Error::Poisoned);
        }
        Ok(())
    }

    fn shutdown(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.sender = None;
        for handle in self.workers.drain(..) {
            // A worker that panicked has nothing left to join.
            let _ = handle.join();
        }
        // Nothing will run what is still queued.
        *self.shared.pending.lock() = 0;
        self.shared.idle.notify_all();
    }

    fn enqueue(&self, post: PostId) {
        if let Some(sender) = &self.sender {
            *self.shared.pending.lock() += 1;
            if sender.send(post).is_err() {
                self.shared.finished_one();
            }
        }
    }

    /// Whether a failed write poisoned the engine: it then refuses writes
    /// until reopened (reads keep working).
    pub fn is_poisoned(&self) -> bool {
        self.shared.poisoned.load(Ordering::SeqCst)
    }

    /// Blocks until every queued fan-out job has finished.
    pub fn wait_for_fanout(&self) -> Result<()> {
        let mut pending = self.shared.pending.lock();
        while *pending > 0 {
            self.shared.idle.wait(&mut pending);
        }
        drop(pending);
        self.shared.check_writable()
    }

    /// Fan-out counters since open.
    pub fn fanout_stats(&self) -> FanoutStats {
        let s = &self.shared;
        let delivered = s.delivered.load(Ordering::Relaxed);
        let busy = s.busy_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        FanoutStats {
            jobs_pending: *s.pending.lock(),
            jobs_done: s.jobs_done.load(Ordering::Relaxed),
            jobs_resumed: s.jobs_resumed.load(Ordering::Relaxed),
            entries_delivered: delivered,
            entries_per_sec: if busy > 0.0 {
                delivered as f64 / busy
            } else {
                0.0
            },
        }
    }

    /// Creates a user. Usernames are unique regardless of case.
    pub fn create_user(&self, name: &str) -> Result<User> {
        let name = Username::parse(name)?;
        let s = &self.shared;
        s.check_writable()?;
        let mut next = s.next_user.lock();
        if s.backend.user_id_by_name(&name)?.is_some() {
            return Err(Error::UsernameTaken(name.as_str().to_owned()));
        }
        let user = User {
            id: UserId(*next),
            name,
            created_at_ms: unix_millis(),
        };
        s.write(&[Mutation::PutUser(user.clone())], s.config.durability)?;
        s.activity.ensure(user.id);
        *next += 1;
        Ok(user)
    }

    /// The user with this id.
    pub fn user(&self, id: UserId) -> Result<User> {
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
    /// twice is not an error).
    pub fn follow(&self, follower: UserId, followee: UserId) -> Result<bool> {
        check_edge(follower, followee)?;
        let s = &self.shared;
        s.ensure_user(follower)?;
        s.ensure_user(followee)?;
        s.check_writable()?;
        let _reader = s.readers.lock(follower);
        let _author = s.authors.lock(followee);
        if s.backend.edge(follower, followee)?.is_some() {
            return Ok(false);
        }
        let mut recent = Vec::new();
        s.backend
            .author_posts(followee, None, s.config.backfill_posts.max(1), &mut recent)?;
        let since = recent.first().copied().unwrap_or(PostId(0));
        recent.truncate(s.config.backfill_posts);
        let mut posts = Vec::with_capacity(recent.len());
        s.backend.posts(&recent, &mut posts)?;
        let mode = match s.backend.author_mode(followee)? {
            AuthorMode::Push => EdgeMode::Push,
            AuthorMode::Promoting | AuthorMode::Pulled => EdgeMode::Pull,
        };
        let mut batch = vec![Mutation::AddEdge {
            follower,
            followee,
            since,
            mode,
        }];
        batch.extend(posts.into_iter().flatten().filter(|p| !p.deleted).map(|p| {
            Mutation::InboxPut {
                owner: follower,
                entry: InboxEntry {
                    post: p.id,
                    author: followee,
                },
            }
        }));
        s.write(&batch, s.config.durability)?;
        Ok(true)
    }

    /// `follower` stops following `followee`; the followee's posts leave the
    /// follower's home timeline. Returns whether there was an edge.
    pub fn unfollow(&self, follower: UserId, followee: UserId) -> Result<bool> {
        check_edge(follower, followee)?;
        let s = &self.shared;
        s.ensure_user(follower)?;
        s.ensure_user(followee)?;
        s.check_writable()?;
        let _reader = s.readers.lock(follower);
        let _author = s.authors.lock(followee);
        if s.backend.edge(follower, followee)?.is_none() {
            return Ok(false);
        }
        let mut batch = vec![Mutation::RemoveEdge { follower, followee }];
        batch.push(crate::direct::device_sub_removal(follower, followee));
        let mut entries = Vec::new();
        let mut before = None;
        loop {
            entries.clear();
            s.backend.inbox(follower, before, 1024, &mut entries)?;
            batch.extend(entries.iter().filter(|e| e.author == followee).map(|e| {
                Mutation::InboxDelete {
                    owner: follower,
                    post: e.post,
                }
            }));
            match entries.last() {
                Some(last) if entries.len() == 1024 => before = Some(last.post),
                _ => break,
            }
        }
        s.write(&batch, s.config.durability)?;
        Ok(true)
    }

    /// Whether `follower` follows `followee`.
    pub fn is_following(&self, follower: UserId, followee: UserId) -> Result<bool> {
        let s = &self.shared;
        s.ensure_user(follower)?;
        s.ensure_user(followee)?;
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
        let s = &self.shared;
        s.ensure_user(user)?;
        let mut edges: Vec<Edge> = Vec::with_capacity(limit + 1);
        s.backend.edges(user, dir, after, limit + 1, &mut edges)?;
        let more = edges.len() > limit;
        edges.truncate(limit);
        Ok(UserPage {
            next: if more {
                edges.last().map(|e| Cursor::users(e.user))
            } else {
                None
            },
            users: edges.into_iter().map(|e| e.user).collect(),
        })
    }

    /// Follower and following counts, read in O(1).
    pub fn counts(&self, user: UserId) -> Result<Counts> {
        self.shared.ensure_user(user)?;
        self.shared.backend.counts(user)
    }

    /// Publishes a post. Returns once the post and its fan-out job are
    /// durable (per the configured durability); delivery to followers'
    /// inboxes continues in the background.
    pub fn post(&self, author: UserId, text: &str) -> Result<Post> {
        let s = &self.shared;
        let text = PostText::parse(text, s.config.max_post_chars)?;
        s.ensure_user(author)?;
        s.check_writable()?;
        let (post, jobs) = {
            let _author = s.authors.lock(author);
            let post = Post {
                id: s.ids.next(),
                author,
                text: text.into_string(),
                deleted: false,
            };
            let followers = s.backend.counts(author)?.followers;
            let mode = s.backend.author_mode(author)?;
            let mut batch = vec![
                Mutation::InboxPut {
                    owner: author,
                    entry: InboxEntry {
                        post: post.id,
                        author,
                    },
                },
                Mutation::PutPost(post.clone()),
            ];
            let mut jobs = Vec::new();
            if followers > 0 && mode != AuthorMode::Pulled {
                if mode == AuthorMode::Push && followers > s.config.push_threshold {
                    // Turn every edge to pull once; until that job is done,
                    // posts are still fanned out.
                    let promote = FanoutJob {
                        post: s.ids.next(),
                        author,
                        kind: JobKind::Promote,
                        cursor: None,
                    };
                    batch.push(Mutation::SetAuthorMode {
                        author,
                        mode: AuthorMode::Promoting,
                    });
                    batch.push(Mutation::PutJob(promote));
                    jobs.push(promote.post);
                }
                batch.push(Mutation::PutJob(FanoutJob {
                    post: post.id,
                    author,
                    kind: JobKind::Deliver,
                    cursor: None,
                }));
                jobs.push(post.id);
            }
            s.write(&batch, s.config.durability)?;
            s.activity.posted(author, unix_millis());
            (post, jobs)
        };
        for job in jobs {
            self.enqueue(job);
        }
        Ok(post)
    }

    /// The post with this id.
    pub fn get_post(&self, id: PostId) -> Result<Post> {
        let mut out = Vec::with_capacity(1);
        self.shared.backend.posts(&[id], &mut out)?;
        match out.pop().flatten() {
            None => Err(Error::UnknownPost(id)),
            Some(p) if p.deleted => Err(Error::PostDeleted(id)),
            Some(p) => Ok(p),
        }
    }

    /// The posts with these ids, in order; `None` for unknown or deleted
    /// ones. At most [`MAX_PAGE_SIZE`] ids.
    pub fn get_posts(&self, ids: &[PostId]) -> Result<Vec<Option<Post>>> {
        if ids.len() > MAX_PAGE_SIZE {
            return Err(Error::PageSize {
                requested: ids.len(),
                max: MAX_PAGE_SIZE,
            });
        }
        let mut out = Vec::with_capacity(ids.len());
        self.shared.backend.posts(ids, &mut out)?;
        Ok(out.into_iter().map(|p| p.filter(|p| !p.deleted)).collect())
    }

    /// Deletes `post`, which `requester` must have written: the text is
    /// dropped, a tombstone stays, and the post is retracted from every
    /// inbox. Returns whether it was live.
    pub fn delete_post(&self, requester: UserId, post: PostId) -> Result<bool> {
        let s = &self.shared;
        s.ensure_user(requester)?;
        let found = self.get_post(post);
        let author = match found {
            Ok(p) => p.author,
            Err(Error::PostDeleted(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        if author != requester {
            return Err(Error::NotAllowed("only the author may delete a post"));
        }
        s.check_writable()?;
        let retract = {
            let _author = s.authors.lock(author);
            let Ok(live) = self.get_post(post) else {
                return Ok(false);
            };
            let retract = s.backend.counts(author)?.followers > 0 || s.backend.job(post)?.is_some();
            let job = if retract {
                Mutation::PutJob(FanoutJob {
                    post,
                    author,
                    kind: JobKind::Retract,
                    cursor: None,
                })
            } else {
                Mutation::DeleteJob(post)
            };
            let batch = [
                Mutation::PutPost(live.tombstone()),
                Mutation::InboxDelete {
                    owner: author,
                    post,
                },
                job,
            ];
            s.write(&batch, s.config.durability)?;
            retract
        };
        if retract {
            self.enqueue(post);
        }
        Ok(true)
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
        let s = &self.shared;
        check_page_size(limit)?;
        s.ensure_user(user)?;
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
        let (page, trim) = home_page(&s.backend, user, cursor, limit, read)?;
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
        self.wait_for_fanout()?;
        let s = &self.shared;
        let now = unix_millis();
        let may_lag = |u: UserId| s.activity.inactive(u, s.config.inactive_after_ms, now);
        starling_inbox::check(
            &s.backend,
            s.config.backfill_posts,
            s.config.inbox_cap,
            &may_lag,
        )
    }

    /// Runs [`Engine::check`] and repairs every difference it found, in
    /// synced batches. Returns the report of what was repaired. Run it while
    /// nothing else writes (the admin tool holds the database alone).
    ///
    /// Inboxes are computed through the indexes, so a repaired index can
    /// change what an inbox must hold: repairs run in rounds until a check
    /// comes back clean (two rounds at most for any damage `check` reports).
    pub fn rebuild(&self) -> Result<CheckReport> {
        let first = self.check()?;
        let mut report = first.clone();
        for _round in 0..3 {
            if report.is_clean() {
                break;
            }
            for chunk in repairs(&report).chunks(10_000) {
                self.shared.write(chunk, Durability::Synced)?;
            }
            report = self.check()?;
        }
        Ok(first)
    }

    /// A page of `author`'s posts, newest first.
    pub fn author_timeline(
        &self,
        author: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<TimelinePage> {
        check_page_size(limit)?;
        self.shared.ensure_user(author)?;
        author_page(&self.shared.backend, author, cursor, limit)
    }
}

impl<B: Backend> Drop for Engine<B> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl<B: Backend> Shared<B> {
    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.poisoned.load(Ordering::SeqCst) {
            Err(Error::Poisoned)
        } else {
            Ok(())
        }
    }

    pub(crate) fn ensure_user(&self, id: UserId) -> Result<()> {
        match self.backend.user(id)? {
            Some(_) => Ok(()),
            None => Err(Error::UnknownUser(id)),
        }
    }

    /// Applies a batch; any failure poisons the engine.
    pub(crate) fn write(&self, batch: &[Mutation], durability: Durability) -> Result<()> {
        self.check_writable()?;
        self.backend.apply(batch, durability).inspect_err(|_| {
            self.poisoned.store(true, Ordering::SeqCst);
        })
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
        let batch: Vec<Mutation> = expected
            .iter()
            .map(|&entry| Mutation::InboxPut { owner: user, entry })
            .collect();
        self.write(&batch, Durability::Buffered)?;
        let ids: Vec<PostId> = expected.iter().map(|e| e.post).collect();
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
        batch.extend(
            posts
                .into_iter()
                .flatten()
                .filter(|p| p.id > edge.since && !p.deleted)
                .map(|p| Mutation::InboxPut {
                    owner: reader,
                    entry: InboxEntry { post: p.id, author },
                }),
        );
        self.write(&batch, Durability::Buffered)
    }

    fn finished_one(&self) {
        let mut pending = self.pending.lock();
        *pending = pending.saturating_sub(1);
        if *pending == 0 {
            self.idle.notify_all();
        }
    }

    fn work(&self, jobs: &Receiver<PostId>) {
        let size = self.config.fanout_batch;
        let mut pages = [Vec::with_capacity(size), Vec::with_capacity(size)];
        let mut batch = Vec::with_capacity(size + 1);
        for post in jobs.iter() {
            if !self.stopping.load(Ordering::SeqCst) {
                let started = Instant::now();
                // A failed job has poisoned the engine; `wait_for_fanout` reports it.
                if self.run_job(post, &mut pages, &mut batch).is_ok() {
                    self.jobs_done.fetch_add(1, Ordering::Relaxed);
                }
                self.busy_nanos
                    .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
            self.finished_one();
        }
    }

    /// Runs one job to completion, one durable batch at a time.
    ///
    /// Under one hold of the author's lock it runs up to [`PIPELINE`]
    /// batches, reading the next page of followers on a scoped thread while
    /// the current batch is written (fan-out batches change no edge, so the
    /// page read ahead is the page that follows). Between holds it re-reads
    /// the job, so a delete that turned it into a retraction, or another
    /// worker that advanced it, is seen; and follows and unfollows of the
    /// author wait at most one hold.
    fn run_job(
        &self,
        post: PostId,
        pages: &mut [Vec<Edge>; 2],
        batch: &mut Vec<Mutation>,
    ) -> Result<()> {
        let Some(first) = self.backend.job(post)? else {
            return Ok(());
        };
        let size = self.config.fanout_batch;
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                return Ok(());
            }
            self.check_writable()?;
            let _author = self.authors.lock(first.author);
            let Some(mut job) = self.backend.job(post)? else {
                return Ok(());
            };
            let [current, ahead] = pages;
            let mut last = next_followers(&self.backend, &job, size, current)?;
            for _ in 0..PIPELINE {
                batch.clear();
                self.plan(&job, current, last, batch);
                let _device = self.plan_device_updates(&job, current, batch)?;
                let next = FanoutJob {
                    cursor: current.last().map(|e| e.user).or(job.cursor),
                    ..job
                };
                let (written, read) = std::thread::scope(|s| {
                    let reader = (!last)
                        .then(|| s.spawn(|| next_followers(&self.backend, &next, size, ahead)));
                    let written = self.write(batch, Durability::Buffered);
                    (written, reader.map(|r| r.join()))
                });
                written?;
                let delivered = batch
                    .iter()
                    .filter(|m| !matches!(m, Mutation::PutJob(_) | Mutation::DeleteJob(_)));
                self.delivered
                    .fetch_add(delivered.count() as u64, Ordering::Relaxed);
                let Some(read) = read else {
                    return Ok(());
                };
                last = read.map_err(|_| {
                    Error::Storage(starling_core::StorageError::new(
                        "fan-out page reader panicked",
                    ))
                })??;
                std::mem::swap(current, ahead);
                job = next;
                if self.stopping.load(Ordering::SeqCst) {
                    return Ok(());
                }
            }
        }
    }

    /// Plans one batch: the policy decides per follower.
    fn plan(&self, job: &FanoutJob, followers: &[Edge], last: bool, batch: &mut Vec<Mutation>) {
        let now = unix_millis();
        let author_rate = self.activity.post_rate(job.author, now);
        let inactive_after = self.config.inactive_after_ms;
        let rates = self.config.fanout_policy == FanoutPolicy::Rates;
        let activity = self.activity.view();
        let decide = |e: &Edge| {
            if activity.inactive(e.user, inactive_after, now) {
                Delivery::Skip
            } else if rates && activity.read_rate(e.user, now) < author_rate {
                Delivery::Pull
            } else {
                activity.delivered(e.user);
                Delivery::Push
            }
        };
        plan_step(job, followers, last, decide, batch);
    }
}
