//! The engine: operations, their locking, and the fan-out worker pool.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex};
use starling_core::{
    Audience, AuthorMode, Config, Counts, Cursor, Durability, Edge, EdgeMode, Error, FanoutJob,
    FanoutPolicy, GroupId, InboxEntry, JobKind, LinkKind, MAX_PAGE_SIZE, Mutation, Post, PostId,
    PostText, Result, User, UserId, Username, mentioned_names,
};
use starling_graph::{blocked_either, check_edge};
use starling_inbox::view::delivered_to;
use starling_inbox::{
    CheckReport, Delivery, FollowerPage, HomeRead, Mutes, Start, TimelinePage, Viewer, author_page,
    check_page_size, expected_inbox, home_page, job_audience, next_followers, plan_step, repairs,
};
use starling_log::{PostIdGenerator, unix_millis};
use starling_store::{Backend, Direction};

use crate::activity::Activity;
use crate::events::{Event, Hub, Subscription};
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

/// How [`Engine::publish`] publishes a post.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PostOptions {
    /// The post it replies to (a public post the author may see).
    pub reply_to: Option<PostId>,
    /// Who may see it: public, or one of the author's groups.
    pub audience: Audience,
}

/// The links a post's record implies: its place among its parent's
/// replies, its original's reposts, its group's posts.
fn post_links(post: &Post) -> Vec<Mutation> {
    let mut links = Vec::new();
    if let Some(parent) = post.reply_to {
        links.push(Mutation::PutLink {
            kind: LinkKind::Replies,
            from: parent.0,
            to: post.id.0,
            value: post.author.0,
        });
    }
    if let Some(original) = post.repost_of {
        links.push(Mutation::PutLink {
            kind: LinkKind::Reposts,
            from: original.0,
            to: post.author.0,
            value: post.id.0,
        });
    }
    if let Audience::Group(group) = post.audience {
        links.push(Mutation::PutLink {
            kind: LinkKind::GroupPosts,
            from: group.0,
            to: !post.id.0,
            value: 0,
        });
    }
    links
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
    pub(crate) next_group: Mutex<u64>,
    pub(crate) authors: AuthorLocks,
    /// Taken before an author's lock by operations on one reader's inbox
    /// as a whole (follow, unfollow, group membership, rebuild on read);
    /// never after one.
    pub(crate) readers: AuthorLocks,
    pub(crate) activity: Activity,
    pub(crate) hub: Arc<Hub>,
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

impl<B> Engine<B>
where
    B: Backend + for<'a> TryFrom<(&'a Path, &'a Config), Error = Error>,
{
    /// Opens (creating if missing) the store at `path` and resumes any
    /// unfinished fan-out, for backends that live at a path on disk (they
    /// say so by converting from a path and a configuration).
    pub fn open(path: impl AsRef<Path>, config: Config) -> Result<Engine<B>> {
        config.validate()?;
        let backend = B::try_from((path.as_ref(), &config))?;
        Engine::with_backend(backend, config)
    }
}

impl<B: Backend> Engine<B> {
    /// Starts an engine over an opened backend and resumes its pending jobs.
    pub fn with_backend(backend: B, config: Config) -> Result<Engine<B>> {
        config.validate()?;
        let next_user = backend.last_user_id()?.map_or(1, |u| u.0 + 1);
        let next_group = backend.last_group_id()?.map_or(1, |g| g.0 + 1);
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
            next_group: Mutex::new(next_group),
            authors: AuthorLocks::new(),
            readers: AuthorLocks::new(),
            activity,
            hub: Arc::new(Hub::default()),
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
        if blocked_either(&s.backend, follower, followee)? {
            return Err(Error::Blocked("cannot follow across a block"));
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
        let mut added = Vec::new();
        for p in posts.into_iter().flatten() {
            if !p.deleted && delivered_to(&s.backend, &p, follower)? {
                added.push(p.id);
                batch.push(Mutation::InboxPut {
                    owner: follower,
                    entry: InboxEntry {
                        post: p.id,
                        author: followee,
                    },
                });
            }
        }
        s.write(&batch, s.config.durability)?;
        s.hub.publish(
            added
                .into_iter()
                .map(|post| (follower, Event::TimelineAdded { post })),
        );
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
        Ok(UserPage::from_ids(edges.into_iter().map(|e| e.user), limit))
    }

    /// Follower and following counts, read in O(1).
    pub fn counts(&self, user: UserId) -> Result<Counts> {
        self.shared.ensure_user(user)?;
        self.shared.backend.counts(user)
    }

    /// Publishes a public post. Returns once the post and its fan-out job
    /// are durable (per the configured durability); delivery to followers'
    /// inboxes continues in the background. See [`Engine::publish`].
    pub fn post(&self, author: UserId, text: &str) -> Result<Post> {
        self.publish(author, text, PostOptions::default())
    }

    /// Publishes a post as `options` say: public or to one of the author's
    /// groups, possibly replying to another post. `@username` mentions are
    /// resolved now: each mentioned account that may see the post (and has
    /// no block with the author) gets it in their mentions feed.
    pub fn publish(&self, author: UserId, text: &str, options: PostOptions) -> Result<Post> {
        let s = &self.shared;
        let text = PostText::parse(text, s.config.max_post_chars)?;
        s.ensure_user(author)?;
        if let Audience::Group(group) = options.audience {
            let found = s.backend.group(group)?.ok_or(Error::UnknownGroup(group))?;
            if found.owner != author {
                return Err(Error::NotAllowed("only a group's owner posts to it"));
            }
        }
        let reply_to = match options.reply_to {
            Some(parent) => Some(self.reply_target(author, parent)?),
            None => None,
        };
        let mut post = Post::new(PostId(0), author, text.into_string());
        post.reply_to = reply_to;
        post.audience = options.audience;
        let mentions = self.resolve_mentions(&post)?;
        self.append(post, &mentions)
    }

    fn append(&self, post: Post, mentions: &[UserId]) -> Result<Post> {
        let (post, jobs) = self.shared.append(post, mentions)?;
        for job in jobs {
            self.enqueue(job);
        }
        Ok(post)
    }

    /// Replies to `parent` (publicly).
    pub fn reply(&self, author: UserId, parent: PostId, text: &str) -> Result<Post> {
        let options = PostOptions {
            reply_to: Some(parent),
            ..PostOptions::default()
        };
        self.publish(author, text, options)
    }

    /// Addresses a post to one of the author's groups: it reaches only the
    /// members who follow the author.
    pub fn post_to_group(&self, author: UserId, group: GroupId, text: &str) -> Result<Post> {
        let options = PostOptions {
            audience: Audience::Group(group),
            ..PostOptions::default()
        };
        self.publish(author, text, options)
    }

    /// Reposts `post` (a repost of a repost reposts the original) into
    /// `user`'s followers' timelines. Reposting the same post again returns
    /// the existing repost. Group posts cannot be reposted.
    pub fn repost(&self, user: UserId, post: PostId) -> Result<Post> {
        let s = &self.shared;
        s.ensure_user(user)?;
        let target = self.get_post_as(user, post)?;
        let original = match target.repost_of {
            Some(of) => self.get_post_as(user, of)?,
            None => target,
        };
        if original.audience != Audience::Public {
            return Err(Error::NotAllowed("group posts cannot be reposted"));
        }
        let mut repost = Post::new(PostId(0), user, String::new());
        repost.repost_of = Some(original.id);
        self.append(repost, &[])
    }

    fn reply_target(&self, author: UserId, parent: PostId) -> Result<PostId> {
        let parent = self.get_post_as(author, parent)?;
        let parent = match parent.repost_of {
            Some(of) => self.get_post_as(author, of)?,
            None => parent,
        };
        if parent.audience != Audience::Public {
            return Err(Error::NotAllowed(
                "replies to group posts are not supported",
            ));
        }
        Ok(parent.id)
    }

    /// The accounts `post` mentions that get it in their mentions feed.
    fn resolve_mentions(&self, post: &Post) -> Result<Vec<UserId>> {
        let s = &self.shared;
        let mut out = Vec::new();
        for name in mentioned_names(&post.text) {
            let Some(user) = s.backend.user_id_by_name(&name)? else {
                continue;
            };
            if user == post.author || out.contains(&user) {
                continue;
            }
            if blocked_either(&s.backend, user, post.author)? {
                continue;
            }
            if post.audience != Audience::Public
                && !(delivered_to(&s.backend, post, user)?
                    && s.backend.edge(user, post.author)?.is_some())
            {
                continue;
            }
            out.push(user);
        }
        Ok(out)
    }

    /// The post with this id, as anyone may see it: a group post is
    /// [`Error::UnknownPost`] here (see [`Engine::get_post_as`]).
    pub fn get_post(&self, id: PostId) -> Result<Post> {
        self.get_post_for(&mut Viewer::public(), id)
    }

    /// The post with this id as `viewer` may see it: a post the viewer may
    /// not see (a group post they are not in the audience of, a post across
    /// a block) is [`Error::UnknownPost`], so its existence does not leak.
    pub fn get_post_as(&self, viewer: UserId, id: PostId) -> Result<Post> {
        let s = &self.shared;
        s.ensure_user(viewer)?;
        let mut viewer = Viewer::load(&s.backend, viewer, Mutes::Show)?;
        self.get_post_for(&mut viewer, id)
    }

    /// The stored record of `id`, tombstone or not, whoever may see it.
    fn stored_post(&self, id: PostId) -> Result<Option<Post>> {
        let mut out = Vec::with_capacity(1);
        self.shared.backend.posts(&[id], &mut out)?;
        Ok(out.pop().flatten())
    }

    fn get_post_for(&self, viewer: &mut Viewer, id: PostId) -> Result<Post> {
        let s = &self.shared;
        let mut out = Vec::with_capacity(1);
        s.backend.posts(&[id], &mut out)?;
        match out.pop().flatten() {
            None => Err(Error::UnknownPost(id)),
            Some(p) if p.deleted => Err(Error::PostDeleted(id)),
            Some(p) => {
                let mut kept = vec![p];
                viewer.filter(&s.backend, &mut kept, &mut Vec::new())?;
                kept.pop().ok_or(Error::UnknownPost(id))
            }
        }
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
                Some(p) => {
                    let mut kept = vec![p];
                    viewer.filter(&s.backend, &mut kept, &mut Vec::new())?;
                    Ok(kept.pop())
                }
                None => Ok(None),
            })
            .collect()
    }

    /// Deletes `post`, which `requester` must have written: the text is
    /// dropped, a tombstone stays, and the post is retracted from every
    /// inbox. Returns whether it was live.
    pub fn delete_post(&self, requester: UserId, post: PostId) -> Result<bool> {
        let s = &self.shared;
        s.ensure_user(requester)?;
        let author = match self.stored_post(post)? {
            None => return Err(Error::UnknownPost(post)),
            Some(p) if p.deleted => return Ok(false),
            // One's own post, whoever else may see it (a repost whose
            // original is gone included).
            Some(p) if p.author == requester => p.author,
            // Someone else's: refused, without telling whether it exists
            // when the requester may not see it.
            Some(_) => {
                return Err(match self.get_post_as(requester, post) {
                    Ok(_) => Error::NotAllowed("only the author may delete a post"),
                    Err(e) => e,
                });
            }
        };
        s.check_writable()?;
        let retract = {
            let _author = s.authors.lock(author);
            let Some(live) = self.stored_post(post)?.filter(|p| !p.deleted) else {
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
            let mut batch = vec![
                Mutation::PutPost(live.tombstone()),
                Mutation::InboxDelete {
                    owner: author,
                    post,
                },
                job,
            ];
            if let Some(original) = live.repost_of {
                // The user may repost it again; nobody's timeline counts it.
                batch.push(Mutation::DeleteLink {
                    kind: LinkKind::Reposts,
                    from: original.0,
                    to: author.0,
                });
            }
            s.write(&batch, s.config.durability)?;
            s.publish_inbox_changes(&batch);
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

    /// A page of `author`'s posts, newest first, as anyone may see them
    /// (public posts only).
    pub fn author_timeline(
        &self,
        author: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<TimelinePage> {
        check_page_size(limit)?;
        self.shared.ensure_user(author)?;
        author_page(
            &self.shared.backend,
            &mut Viewer::public(),
            author,
            cursor,
            limit,
        )
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
        let s = &self.shared;
        s.ensure_user(viewer)?;
        s.ensure_user(author)?;
        let mut viewer = Viewer::load(&s.backend, viewer, Mutes::Show)?;
        author_page(&s.backend, &mut viewer, author, cursor, limit)
    }

    /// Subscribes to `user`'s real-time events (see [`Event`]).
    ///
    /// Subscribing counts as a read of the home timeline: a reader who had
    /// been inactive gets their inbox rebuilt, and fan-out writes to them
    /// (and so tells them) again from now on.
    pub fn subscribe(&self, user: UserId) -> Result<Subscription> {
        let s = &self.shared;
        s.ensure_user(user)?;
        s.check_writable()?;
        s.record_read(user)?;
        Ok(s.hub.subscribe(user))
    }
}

impl<B: Backend> Drop for Engine<B> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl<B: Backend> Shared<B> {
    /// Stores a new post (its id assigned here, under the author's lock)
    /// with its indexes, the author's own inbox entry, its mentions and its
    /// fan-out job, in one batch; returns the jobs to queue. A repost of a post
    /// the author already reposted returns that repost instead.
    fn append(&self, mut post: Post, mentions: &[UserId]) -> Result<(Post, Vec<PostId>)> {
        let author = post.author;
        self.check_writable()?;
        let (post, jobs) = {
            let _author = self.authors.lock(author);
            if let Some(original) = post.repost_of
                && let Some(existing) =
                    self.backend.link(LinkKind::Reposts, original.0, author.0)?
            {
                let mut found = Vec::with_capacity(1);
                self.backend.posts(&[PostId(existing)], &mut found)?;
                if let Some(existing) = found.pop().flatten().filter(|p| !p.deleted) {
                    return Ok((existing, Vec::new()));
                }
            }
            post.id = self.ids.next();
            let followers = self.backend.counts(author)?.followers;
            let mode = self.backend.author_mode(author)?;
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
            batch.extend(post_links(&post));
            batch.extend(mentions.iter().map(|user| Mutation::PutLink {
                kind: LinkKind::Mentions,
                from: user.0,
                to: !post.id.0,
                value: author.0,
            }));
            let mut jobs = Vec::new();
            if followers > 0 && mode != AuthorMode::Pulled {
                if mode == AuthorMode::Push && followers > self.config.push_threshold {
                    // Turn every edge to pull once; until that job is done,
                    // posts are still fanned out.
                    let promote = FanoutJob {
                        post: self.ids.next(),
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
            } else if mode == AuthorMode::Pulled
                && post.repost_of.is_none()
                && self.has_device_subscribers(author)?
            {
                // No fan-out for a pulled author, but texts still go out to
                // those who asked for them.
                batch.push(Mutation::PutJob(FanoutJob {
                    post: post.id,
                    author,
                    kind: JobKind::Device,
                    cursor: None,
                }));
                jobs.push(post.id);
            }
            self.write(&batch, self.config.durability)?;
            self.activity.posted(author, unix_millis());
            (post, jobs)
        };
        self.hub.publish(
            std::iter::once((author, Event::TimelineAdded { post: post.id })).chain(
                mentions
                    .iter()
                    .map(|&user| (user, Event::Mention { post: post.id })),
            ),
        );
        self.publish_pulled(&post)?;
        Ok((post, jobs))
    }

    /// Tells subscribers who pull `post`'s author (no fan-out writes it to
    /// them) that it is in their timeline. Costs one edge read per
    /// subscribed user, and only when someone is subscribed.
    fn publish_pulled(&self, post: &Post) -> Result<()> {
        if self.hub.is_empty() {
            return Ok(());
        }
        let mut events = Vec::new();
        for user in self.hub.subscribed_users() {
            if user == post.author {
                continue;
            }
            if let Some(edge) = self.backend.follower_edge(post.author, user)?
                && edge.mode == EdgeMode::Pull
                && delivered_to(&self.backend, post, user)?
            {
                events.push((user, Event::TimelineAdded { post: post.id }));
            }
        }
        self.hub.publish(events);
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
        batch.push(crate::direct::device_sub_removal(follower, followee));
        let mut entries = Vec::new();
        let mut before = None;
        loop {
            entries.clear();
            self.backend.inbox(follower, before, 1024, &mut entries)?;
            batch.extend(entries.iter().filter(|e| e.author == followee).map(|e| {
                Mutation::InboxDelete {
                    owner: follower,
                    post: e.post,
                }
            }));
            match entries.last() {
                Some(last) if entries.len() == 1024 => before = Some(last.post),
                _ => return Ok(true),
            }
        }
    }

    /// Publishes the inbox entries `batch` added and removed.
    pub(crate) fn publish_inbox_changes(&self, batch: &[Mutation]) {
        if self.hub.is_empty() {
            return;
        }
        self.hub.publish(batch.iter().filter_map(|m| match m {
            Mutation::InboxPut { owner, entry } => {
                Some((*owner, Event::TimelineAdded { post: entry.post }))
            }
            Mutation::InboxDelete { owner, post } => {
                Some((*owner, Event::TimelineRetracted { post: *post }))
            }
            Mutation::Direct(starling_core::DirectMutation::QueueDelivery(d)) => {
                Some((d.id.recipient, Event::DeviceDelivery { post: d.id.post }))
            }
            _ => None,
        }));
    }

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
        for p in posts.into_iter().flatten() {
            if p.id > edge.since && !p.deleted && delivered_to(&self.backend, &p, reader)? {
                batch.push(Mutation::InboxPut {
                    owner: reader,
                    entry: InboxEntry { post: p.id, author },
                });
            }
        }
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
        let audience = job_audience(&self.backend, &first)?;
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
            let mut page = self.next_page(&job, audience, size, current)?;
            for _ in 0..PIPELINE {
                batch.clear();
                self.plan(&job, current, page, batch);
                let _device = self.plan_device_updates(&job, current, batch)?;
                let next = FanoutJob {
                    cursor: page.end,
                    ..job
                };
                let (written, read) = std::thread::scope(|s| {
                    let reader = (!page.last)
                        .then(|| s.spawn(|| self.next_page(&next, audience, size, ahead)));
                    let written = self.write(batch, Durability::Buffered);
                    (written, reader.map(|r| r.join()))
                });
                written?;
                self.publish_inbox_changes(batch);
                let delivered = batch
                    .iter()
                    .filter(|m| !matches!(m, Mutation::PutJob(_) | Mutation::DeleteJob(_)));
                self.delivered
                    .fetch_add(delivered.count() as u64, Ordering::Relaxed);
                let Some(read) = read else {
                    return Ok(());
                };
                page = read.map_err(|_| {
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

    /// Reads the next page of `job`'s walk: the author's followers (or the
    /// group's members), or for a device-only job its device subscribers.
    fn next_page(
        &self,
        job: &FanoutJob,
        audience: Audience,
        limit: usize,
        out: &mut Vec<Edge>,
    ) -> Result<FollowerPage> {
        if job.kind == JobKind::Device {
            self.device_page(job, audience, limit, out)
        } else {
            next_followers(&self.backend, job, audience, limit, out)
        }
    }

    /// Plans one batch: the policy decides per follower.
    fn plan(
        &self,
        job: &FanoutJob,
        followers: &[Edge],
        page: FollowerPage,
        batch: &mut Vec<Mutation>,
    ) {
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
        plan_step(job, followers, page, decide, batch);
    }
}
