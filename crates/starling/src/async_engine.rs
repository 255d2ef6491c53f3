//! The async front: the engine's operations as futures for tokio
//! applications (feature `tokio`).

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use starling_core::{
    Config, Counts, Cursor, DeliveryId, DeviceDelivery, DeviceUsage, DirectMessage, DmPolicy,
    Error, Group, GroupId, ImageKind, Phone, Post, PostId, Profile, QuietHours, Result,
    StorageError, Toggle, User, UserId,
};
use starling_engine::{
    Backend, ChangePage, CheckReport, ConversationPage, ExportSummary, FanoutStats, FollowState,
    MessagePage, PendingPhone, PhoneLink, PostOptions, Subscription, Suggestion, Thread,
    TimelinePage, UserPage,
};
use starling_rocks::RocksBackend;
use starling_store::ClusterAddress;
use tokio::sync::oneshot;

use crate::GenericEngine;

/// Threads in the pool of an [`AsyncEngine::new`].
pub const DEFAULT_THREADS: usize = 8;

/// The most threads an [`AsyncEngine`]'s pool may have (tokio's own
/// default cap on its blocking threads).
pub const MAX_THREADS: usize = 512;

/// The engine for async applications: every operation of [`Engine`]
/// returns a future, and [`subscribe`](AsyncEngine::subscribe) a
/// [`Stream`](futures_core::Stream) of events.
///
/// # `Engine` or `AsyncEngine`
///
/// The engine's operations block: they read and write RocksDB and may wait
/// on a lock or an fsync. Call [`Engine`] directly from threads you own (a
/// command-line tool, a thread-per-request server, tests). In an async
/// program (tokio, axum) use `AsyncEngine`, so that no call stalls the
/// executor: each call runs on a pool of [`threads`](AsyncEngine::threads)
/// that the `AsyncEngine` owns, and the calls beyond that wait in a queue
/// (as futures, not threads) in arrival order.
///
/// # The pool
///
/// The pool is a fixed set of threads, started with the `AsyncEngine` and
/// joined when it closes, fed by one queue. A fixed pool, rather than
/// tokio's `spawn_blocking` behind a semaphore, is what makes the bound
/// exact: tokio starts a new blocking thread whenever none is idle at the
/// instant of a call, so a steady stream of calls grows its pool toward 512
/// threads even when only a few run at once. The futures need no particular
/// runtime: they wait on a channel.
///
/// # Cancellation
///
/// Every future is cancellation-safe. Dropped while its call waits in the
/// queue, the call never runs; once the call has started on the pool, it
/// runs to completion (and its result is dropped). A call is never cut
/// short, so dropping a future never half-applies an operation.
///
/// # Closing
///
/// Clones share one engine. [`close`](AsyncEngine::close) refuses new calls
/// (they fail with [`Error::Closed`]), lets the queued ones finish, joins
/// the pool, closes the engine and so ends every subscription stream.
/// Dropping the last clone without closing does the same, but blocks the
/// dropping thread while it happens.
///
/// ```
/// use futures_util::StreamExt as _;
/// use starling::{AsyncEngine, Config, Event};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let engine = AsyncEngine::open(dir.path(), Config::default()).await?;
/// let ada = engine.create_user("ada").await?;
/// let grace = engine.create_user("grace").await?;
/// engine.follow(grace.id, ada.id).await?;
///
/// let mut events = engine.subscribe(grace.id).await?;
/// let post = engine.post(ada.id, "Analytical engines weave algebraic patterns.").await?;
/// assert_eq!(events.next().await, Some(Event::TimelineAdded { post: post.id }));
///
/// let home = engine.home_timeline(grace.id, None, 50).await?;
/// assert_eq!(home.posts[0].id, post.id);
/// engine.close().await?;
/// assert_eq!(events.next().await, None, "closing ends every stream");
/// # Ok(())
/// # }
/// ```
///
/// [`Engine`]: crate::Engine
pub struct AsyncEngine<B: Backend = RocksBackend> {
    inner: Arc<Inner<B>>,
}

/// A call queued for the pool.
type Job<B> = Box<dyn FnOnce(&GenericEngine<B>) + Send>;

struct Inner<B: Backend> {
    /// The queue's sending end; `None` once closing has begun.
    jobs: Mutex<Option<Sender<Job<B>>>>,
    /// The pool and the engine, until closed.
    pool: Mutex<Option<Pool<B>>>,
    threads: usize,
}

struct Pool<B: Backend> {
    workers: Vec<JoinHandle<()>>,
    /// Also held by every worker until it stops.
    engine: Arc<GenericEngine<B>>,
}

impl<B: Backend> Pool<B> {
    /// Joins the workers (the queue must be closed) and closes the engine.
    fn finish(self) -> Result<()> {
        for worker in self.workers {
            // A worker catches the panics of calls; nothing else can panic.
            let _ = worker.join();
        }
        match Arc::try_unwrap(self.engine) {
            Ok(engine) => engine.close(),
            // Unreachable once every worker has stopped; the engine would
            // close when its last holder drops it.
            Err(_) => Ok(()),
        }
    }
}

impl<B: Backend> Drop for Inner<B> {
    fn drop(&mut self) {
        drop(lock(&self.jobs).take());
        if let Some(pool) = lock(&self.pool).take() {
            let _ = pool.finish();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<B: Backend> Clone for AsyncEngine<B> {
    fn clone(&self) -> Self {
        AsyncEngine {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<B: Backend> std::fmt::Debug for AsyncEngine<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncEngine")
            .field("threads", &self.inner.threads)
            .field("closed", &lock(&self.inner.jobs).is_none())
            .finish()
    }
}

impl AsyncEngine<RocksBackend> {
    /// Opens (creating if missing) the store at `path`, and resumes any
    /// unfinished fan-out, as [`Engine::open`] does, with a pool of
    /// [`DEFAULT_THREADS`]. The opening itself runs on a thread of its own.
    ///
    /// [`Engine::open`]: crate::GenericEngine::open
    pub async fn open(path: impl AsRef<Path>, config: Config) -> Result<AsyncEngine> {
        let path = path.as_ref().to_owned();
        opened_on_thread(move || GenericEngine::<RocksBackend>::open(&path, config)).await
    }
}

impl<B> AsyncEngine<B>
where
    B: Backend + for<'a> TryFrom<ClusterAddress<'a>, Error = Error>,
{
    /// Connects to the store `namespace` on the servers at `urls`, and
    /// resumes any unfinished fan-out, as [`Engine::connect`] does, with a
    /// pool of [`DEFAULT_THREADS`]. The connecting runs on a thread of its
    /// own.
    ///
    /// [`Engine::connect`]: crate::GenericEngine::connect
    pub async fn connect(urls: &str, namespace: &str, config: Config) -> Result<AsyncEngine<B>> {
        let (urls, namespace) = (urls.to_owned(), namespace.to_owned());
        opened_on_thread(move || GenericEngine::<B>::connect(&urls, &namespace, config)).await
    }
}

/// Runs `open` (which blocks) on a thread of its own and wraps the engine
/// it returns.
async fn opened_on_thread<B: Backend>(
    open: impl FnOnce() -> Result<GenericEngine<B>> + Send + 'static,
) -> Result<AsyncEngine<B>> {
    let (tx, rx) = oneshot::channel();
    let opener = std::thread::Builder::new()
        .name("starling-open".to_owned())
        .spawn(move || {
            let _ = tx.send(open());
        })
        .map_err(spawn_error)?;
    let opened = rx.await;
    // It has sent its result: the join is immediate.
    let _ = opener.join();
    let engine = opened.map_err(|_| Error::Closed)??;
    AsyncEngine::new(engine)
}

impl<B: Backend> AsyncEngine<B> {
    /// Wraps `engine` with a pool of [`DEFAULT_THREADS`].
    pub fn new(engine: GenericEngine<B>) -> Result<AsyncEngine<B>> {
        AsyncEngine::with_threads(engine, DEFAULT_THREADS)
    }

    /// Wraps `engine` with a pool of `threads` (1 to [`MAX_THREADS`]): at
    /// most that many calls run at once. On error the engine is closed.
    pub fn with_threads(engine: GenericEngine<B>, threads: usize) -> Result<AsyncEngine<B>> {
        if threads == 0 || threads > MAX_THREADS {
            return Err(Error::InvalidConfig(
                "an AsyncEngine needs between 1 and 512 threads",
            ));
        }
        let engine = Arc::new(engine);
        let (sender, receiver) = crossbeam_channel::unbounded::<Job<B>>();
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            let (shared, jobs) = (Arc::clone(&engine), receiver.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("starling-call-{i}"))
                .spawn(move || work(&shared, &jobs));
            match spawned {
                Ok(worker) => workers.push(worker),
                Err(e) => {
                    drop(sender);
                    let _ = Pool { workers, engine }.finish();
                    return Err(spawn_error(e));
                }
            }
        }
        Ok(AsyncEngine {
            inner: Arc::new(Inner {
                jobs: Mutex::new(Some(sender)),
                pool: Mutex::new(Some(Pool { workers, engine })),
                threads,
            }),
        })
    }

    /// Threads in the pool: the most calls that run at once.
    pub fn threads(&self) -> usize {
        self.inner.threads
    }

    /// Runs `f` against the engine on the pool and returns what it
    /// returns: the way to run several operations as one call, or one this
    /// type does not mirror. Fails with [`Error::Closed`] once closed. A
    /// panic in `f` resumes in the awaiting task (the pool keeps its
    /// thread).
    ///
    /// The error type is the caller's (any `E: From<Error>`, such as an
    /// application's own); where nothing else fixes it, name it:
    /// `engine.call(|e| Ok::<_, starling::Error>(e.is_poisoned()))`.
    pub async fn call<T, E, F>(&self, f: F) -> std::result::Result<T, E>
    where
        F: FnOnce(&GenericEngine<B>) -> std::result::Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job<B> = Box::new(move |engine| {
            // The caller stopped waiting before the call started: skip it.
            if tx.is_closed() {
                return;
            }
            let out = std::panic::catch_unwind(AssertUnwindSafe(|| f(engine)));
            let _ = tx.send(out);
        });
        // Queued without an await: a future dropped before this point has
        // queued nothing.
        lock(&self.inner.jobs)
            .as_ref()
            .ok_or(Error::Closed)?
            .send(job)
            .map_err(|_| Error::Closed)?;
        match rx.await {
            Ok(Ok(out)) => out,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => Err(Error::Closed.into()),
        }
    }

    /// Refuses new calls, lets the queued ones finish, joins the pool and
    /// closes the engine as [`Engine::close`] does: the fan-out workers
    /// stop, queued jobs stay durable, and every subscription stream ends
    /// after its queued events. Closing again, or from a clone, does
    /// nothing. The joining runs on a thread of its own, which completes
    /// even if this future is dropped.
    ///
    /// [`Engine::close`]: crate::GenericEngine::close
    pub async fn close(&self) -> Result<()> {
        drop(lock(&self.inner.jobs).take());
        let Some(pool) = lock(&self.inner.pool).take() else {
            return Ok(());
        };
        let (tx, rx) = oneshot::channel();
        let closer = std::thread::Builder::new()
            .name("starling-close".to_owned())
            .spawn(move || {
                let _ = tx.send(pool.finish());
            })
            .map_err(spawn_error)?;
        let closed = rx.await;
        // It has sent its result: the join is immediate.
        let _ = closer.join();
        closed.map_err(|_| Error::Closed)?
    }

    /// Subscribes to `user`'s real-time events (see [`Engine::subscribe`]).
    /// The [`Subscription`] is a [`Stream`](futures_core::Stream) of
    /// [`Event`](crate::Event)s: awaiting it holds no thread, and it ends
    /// when the engine closes.
    ///
    /// [`Engine::subscribe`]: crate::GenericEngine::subscribe
    pub async fn subscribe(&self, user: UserId) -> Result<Subscription> {
        self.call(move |e| e.subscribe(user)).await
    }
}

/// A pool thread: runs queued calls until the queue closes and drains.
fn work<B: Backend>(engine: &GenericEngine<B>, jobs: &Receiver<Job<B>>) {
    for job in jobs {
        job(engine);
    }
}

fn spawn_error(e: std::io::Error) -> Error {
    Error::Storage(StorageError::new(format!("cannot start a thread: {e}")))
}

/// Mirrors of the engine's operations whose arguments are all `Copy`.
macro_rules! mirror {
    ($(
        $(#[$doc:meta])*
        fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;
    )*) => {
        impl<B: Backend> AsyncEngine<B> {
            $(
                $(#[$doc])*
                pub async fn $name(&self, $($arg: $ty),*) -> Result<$ret> {
                    self.call(move |e| e.$name($($arg),*)).await
                }
            )*
        }
    };
}

mirror! {
    /// Waits until every queued fan-out job has finished (see [`Engine::wait_for_fanout`](crate::GenericEngine::wait_for_fanout)).
    fn wait_for_fanout() -> ();
    /// A user by id (see [`Engine::user`](crate::GenericEngine::user)).
    fn user(id: UserId) -> User;
    /// Follows `followee` (see [`Engine::follow`](crate::GenericEngine::follow)).
    fn follow(follower: UserId, followee: UserId) -> bool;
    /// Unfollows `followee` (see [`Engine::unfollow`](crate::GenericEngine::unfollow)).
    fn unfollow(follower: UserId, followee: UserId) -> bool;
    /// Whether `follower` follows `followee` (see [`Engine::is_following`](crate::GenericEngine::is_following)).
    fn is_following(follower: UserId, followee: UserId) -> bool;
    /// Follower and following counts (see [`Engine::counts`](crate::GenericEngine::counts)).
    fn counts(user: UserId) -> Counts;
    /// Reposts `post` (see [`Engine::repost`](crate::GenericEngine::repost)).
    fn repost(user: UserId, post: PostId) -> Post;
    /// A post by id (see [`Engine::get_post`](crate::GenericEngine::get_post)).
    fn get_post(id: PostId) -> Post;
    /// A post as `viewer` may see it (see [`Engine::get_post_as`](crate::GenericEngine::get_post_as)).
    fn get_post_as(viewer: UserId, id: PostId) -> Post;
    /// Deletes a post (see [`Engine::delete_post`](crate::GenericEngine::delete_post)).
    fn delete_post(requester: UserId, post: PostId) -> bool;
    /// Checks every derived record (see [`Engine::check`](crate::GenericEngine::check)).
    fn check() -> CheckReport;
    /// Rebuilds every derived record (see [`Engine::rebuild`](crate::GenericEngine::rebuild)).
    fn rebuild() -> CheckReport;
    /// A group as `viewer` may see it (see [`Engine::group`](crate::GenericEngine::group)).
    fn group(viewer: UserId, id: GroupId) -> Group;
    /// The groups `owner` owns (see [`Engine::groups`](crate::GenericEngine::groups)).
    fn groups(owner: UserId) -> Vec<Group>;
    /// Adds a member to a group (see [`Engine::add_member`](crate::GenericEngine::add_member)).
    fn add_member(owner: UserId, group: GroupId, member: UserId) -> bool;
    /// Removes a member from a group (see [`Engine::remove_member`](crate::GenericEngine::remove_member)).
    fn remove_member(owner: UserId, group: GroupId, member: UserId) -> bool;
    /// Deletes a group (see [`Engine::delete_group`](crate::GenericEngine::delete_group)).
    fn delete_group(owner: UserId, group: GroupId) -> ();
    /// Blocks a user (see [`Engine::block`](crate::GenericEngine::block)).
    fn block(blocker: UserId, blocked: UserId) -> bool;
    /// Unblocks a user (see [`Engine::unblock`](crate::GenericEngine::unblock)).
    fn unblock(blocker: UserId, blocked: UserId) -> bool;
    /// Whether `blocker` blocks `blocked` (see [`Engine::is_blocking`](crate::GenericEngine::is_blocking)).
    fn is_blocking(blocker: UserId, blocked: UserId) -> bool;
    /// Mutes a user (see [`Engine::mute`](crate::GenericEngine::mute)).
    fn mute(muter: UserId, muted: UserId) -> bool;
    /// Unmutes a user (see [`Engine::unmute`](crate::GenericEngine::unmute)).
    fn unmute(muter: UserId, muted: UserId) -> bool;
    /// Accounts to follow (see [`Engine::suggestions`](crate::GenericEngine::suggestions)).
    fn suggestions(user: UserId, limit: usize) -> Vec<Suggestion>;
    /// A user's profile (see [`Engine::profile`](crate::GenericEngine::profile)).
    fn profile(user: UserId) -> Profile;
    /// Who may send `user` direct messages (see [`Engine::set_dm_policy`](crate::GenericEngine::set_dm_policy)).
    fn set_dm_policy(user: UserId, policy: DmPolicy) -> Profile;
    /// Pauses device updates (see [`Engine::pause_device_updates`](crate::GenericEngine::pause_device_updates)).
    fn pause_device_updates(user: UserId) -> Profile;
    /// Resumes device updates (see [`Engine::resume_device_updates`](crate::GenericEngine::resume_device_updates)).
    fn resume_device_updates(user: UserId) -> Profile;
    /// A user's avatar (see [`Engine::avatar`](crate::GenericEngine::avatar)).
    fn avatar(user: UserId) -> Option<(ImageKind, bytes::Bytes)>;
    /// Removes a user's avatar (see [`Engine::remove_avatar`](crate::GenericEngine::remove_avatar)).
    fn remove_avatar(user: UserId) -> bool;
    /// Unlinks a user's phone (see [`Engine::unlink_phone`](crate::GenericEngine::unlink_phone)).
    fn unlink_phone(user: UserId) -> bool;
    /// A user's linked phone (see [`Engine::phone`](crate::GenericEngine::phone)).
    fn phone(user: UserId) -> Option<Phone>;
    /// A user's pending phone link (see [`Engine::pending_phone`](crate::GenericEngine::pending_phone)).
    fn pending_phone(user: UserId) -> Option<PendingPhone>;
    /// Sets or clears a user's quiet hours (see [`Engine::set_quiet_hours`](crate::GenericEngine::set_quiet_hours)).
    fn set_quiet_hours(user: UserId, hours: Option<QuietHours>) -> Profile;
    /// Marks a conversation read (see [`Engine::mark_read`](crate::GenericEngine::mark_read)).
    fn mark_read(user: UserId, other: UserId) -> u64;
    /// Turns device updates from `followee` on or off (see [`Engine::set_device_updates`](crate::GenericEngine::set_device_updates)).
    fn set_device_updates(follower: UserId, followee: UserId, on: Toggle) -> ();
    /// Whether device updates from `followee` are on (see [`Engine::device_updates`](crate::GenericEngine::device_updates)).
    fn device_updates(follower: UserId, followee: UserId) -> bool;
    /// Leases due device deliveries (see [`Engine::lease_device_deliveries`](crate::GenericEngine::lease_device_deliveries)).
    fn lease_device_deliveries(max: usize, lease_ms: u64) -> Vec<DeviceDelivery>;
    /// Acknowledges a device delivery (see [`Engine::ack_device_delivery`](crate::GenericEngine::ack_device_delivery)).
    fn ack_device_delivery(id: DeliveryId) -> bool;
    /// A user's device usage on `day` (see [`Engine::device_usage`](crate::GenericEngine::device_usage)).
    fn device_usage(user: UserId, day: u32) -> DeviceUsage;
    /// Likes a post (see [`Engine::like`](crate::GenericEngine::like)).
    fn like(user: UserId, post: PostId) -> bool;
    /// Takes back a like (see [`Engine::unlike`](crate::GenericEngine::unlike)).
    fn unlike(user: UserId, post: PostId) -> bool;
    /// Whether `user` likes `post` (see [`Engine::likes_post`](crate::GenericEngine::likes_post)).
    fn likes_post(user: UserId, post: PostId) -> bool;
    /// Protects an account (see [`Engine::protect`](crate::GenericEngine::protect)).
    fn protect(user: UserId) -> bool;
    /// Makes an account public again (see [`Engine::unprotect`](crate::GenericEngine::unprotect)).
    fn unprotect(user: UserId) -> bool;
    /// Deletes an account (see [`Engine::delete_account`](crate::GenericEngine::delete_account)).
    fn delete_account(user: UserId) -> ();
    /// Whether an account was deleted (see [`Engine::is_deleted`](crate::GenericEngine::is_deleted)).
    fn is_deleted(user: UserId) -> bool;
    /// A user, deleted or not (see [`Engine::user_record`](crate::GenericEngine::user_record)).
    fn user_record(id: UserId) -> User;
    /// Whether an account is protected (see [`Engine::is_protected`](crate::GenericEngine::is_protected)).
    fn is_protected(user: UserId) -> bool;
    /// Asks a protected account to be followed (see [`Engine::request_follow`](crate::GenericEngine::request_follow)).
    fn request_follow(requester: UserId, account: UserId) -> bool;
    /// Follows, or asks a protected account (see [`Engine::follow_or_request`](crate::GenericEngine::follow_or_request)).
    fn follow_or_request(follower: UserId, account: UserId) -> FollowState;
    /// Approves a follow request (see [`Engine::approve_follow_request`](crate::GenericEngine::approve_follow_request)).
    fn approve_follow_request(account: UserId, requester: UserId) -> ();
    /// Denies a follow request (see [`Engine::deny_follow_request`](crate::GenericEngine::deny_follow_request)).
    fn deny_follow_request(account: UserId, requester: UserId) -> ();
    /// Withdraws a follow request (see [`Engine::cancel_follow_request`](crate::GenericEngine::cancel_follow_request)).
    fn cancel_follow_request(requester: UserId, account: UserId) -> ();
}

/// The operations that return no `Result`, and those that take a borrowed
/// argument: it is copied into the call, so the call borrows nothing.
impl<B: Backend> AsyncEngine<B> {
    /// Whether a failed write poisoned the engine (see [`Engine::is_poisoned`](crate::GenericEngine::is_poisoned)).
    pub async fn is_poisoned(&self) -> Result<bool> {
        self.call(|e| Ok(e.is_poisoned())).await
    }

    /// Fan-out counters (see [`Engine::fanout_stats`](crate::GenericEngine::fanout_stats)).
    pub async fn fanout_stats(&self) -> Result<FanoutStats> {
        self.call(|e| Ok(e.fanout_stats())).await
    }

    /// Creates a user (see [`Engine::create_user`](crate::GenericEngine::create_user)).
    pub async fn create_user(&self, name: &str) -> Result<User> {
        let name = name.to_owned();
        self.call(move |e| e.create_user(&name)).await
    }

    /// A user by name (see [`Engine::user_by_name`](crate::GenericEngine::user_by_name)).
    pub async fn user_by_name(&self, name: &str) -> Result<User> {
        let name = name.to_owned();
        self.call(move |e| e.user_by_name(&name)).await
    }

    /// A page of `user`'s followers (see [`Engine::followers`](crate::GenericEngine::followers)).
    pub async fn followers(
        &self,
        user: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<UserPage> {
        let cursor = cursor.copied();
        self.call(move |e| e.followers(user, cursor.as_ref(), limit))
            .await
    }

    /// A page of the requests pending for `account` (see [`Engine::follow_requests`](crate::GenericEngine::follow_requests)).
    pub async fn follow_requests(
        &self,
        account: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<UserPage> {
        let cursor = cursor.copied();
        self.call(move |e| e.follow_requests(account, cursor.as_ref(), limit))
            .await
    }

    /// A page of the requests `requester` sent that wait (see [`Engine::sent_follow_requests`](crate::GenericEngine::sent_follow_requests)).
    pub async fn sent_follow_requests(
        &self,
        requester: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<UserPage> {
        let cursor = cursor.copied();
        self.call(move |e| e.sent_follow_requests(requester, cursor.as_ref(), limit))
            .await
    }

    /// A page of whom `user` follows (see [`Engine::following`](crate::GenericEngine::following)).
    pub async fn following(
        &self,
        user: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<UserPage> {
        let cursor = cursor.copied();
        self.call(move |e| e.following(user, cursor.as_ref(), limit))
            .await
    }

    /// Posts `text` (see [`Engine::post`](crate::GenericEngine::post)).
    pub async fn post(&self, author: UserId, text: &str) -> Result<Post> {
        let text = text.to_owned();
        self.call(move |e| e.post(author, &text)).await
    }

    /// Posts `text` with options (see [`Engine::publish`](crate::GenericEngine::publish)).
    pub async fn publish(&self, author: UserId, text: &str, options: PostOptions) -> Result<Post> {
        let text = text.to_owned();
        self.call(move |e| e.publish(author, &text, options)).await
    }

    /// Replies to `parent` (see [`Engine::reply`](crate::GenericEngine::reply)).
    pub async fn reply(&self, author: UserId, parent: PostId, text: &str) -> Result<Post> {
        let text = text.to_owned();
        self.call(move |e| e.reply(author, parent, &text)).await
    }

    /// Posts `text` to a group (see [`Engine::post_to_group`](crate::GenericEngine::post_to_group)).
    pub async fn post_to_group(&self, author: UserId, group: GroupId, text: &str) -> Result<Post> {
        let text = text.to_owned();
        self.call(move |e| e.post_to_group(author, group, &text))
            .await
    }

    /// Several posts by id (see [`Engine::get_posts`](crate::GenericEngine::get_posts)).
    pub async fn get_posts(&self, ids: &[PostId]) -> Result<Vec<Option<Post>>> {
        let ids = ids.to_vec();
        self.call(move |e| e.get_posts(&ids)).await
    }

    /// A page of `user`'s home timeline (see [`Engine::home_timeline`](crate::GenericEngine::home_timeline)).
    pub async fn home_timeline(
        &self,
        user: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<TimelinePage> {
        let cursor = cursor.copied();
        self.call(move |e| e.home_timeline(user, cursor.as_ref(), limit))
            .await
    }

    /// A page of `author`'s posts (see [`Engine::author_timeline`](crate::GenericEngine::author_timeline)).
    pub async fn author_timeline(
        &self,
        author: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<TimelinePage> {
        let cursor = cursor.copied();
        self.call(move |e| e.author_timeline(author, cursor.as_ref(), limit))
            .await
    }

    /// A page of `author`'s posts as `viewer` may see them (see [`Engine::author_timeline_as`](crate::GenericEngine::author_timeline_as)).
    pub async fn author_timeline_as(
        &self,
        viewer: UserId,
        author: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<TimelinePage> {
        let cursor = cursor.copied();
        self.call(move |e| e.author_timeline_as(viewer, author, cursor.as_ref(), limit))
            .await
    }

    /// Creates a group (see [`Engine::create_group`](crate::GenericEngine::create_group)).
    pub async fn create_group(&self, owner: UserId, name: &str) -> Result<Group> {
        let name = name.to_owned();
        self.call(move |e| e.create_group(owner, &name)).await
    }

    /// A page of a group's members (see [`Engine::group_members`](crate::GenericEngine::group_members)).
    pub async fn group_members(
        &self,
        owner: UserId,
        group: GroupId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<UserPage> {
        let cursor = cursor.copied();
        self.call(move |e| e.group_members(owner, group, cursor.as_ref(), limit))
            .await
    }

    /// A page of whom `user` mutes (see [`Engine::mutes`](crate::GenericEngine::mutes)).
    pub async fn mutes(
        &self,
        user: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<UserPage> {
        let cursor = cursor.copied();
        self.call(move |e| e.mutes(user, cursor.as_ref(), limit))
            .await
    }

    /// A page of the posts mentioning `user` (see [`Engine::mentions`](crate::GenericEngine::mentions)).
    pub async fn mentions(
        &self,
        user: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<TimelinePage> {
        let cursor = cursor.copied();
        self.call(move |e| e.mentions(user, cursor.as_ref(), limit))
            .await
    }

    /// A post with its ancestors and a page of replies (see [`Engine::thread`](crate::GenericEngine::thread)).
    pub async fn thread(
        &self,
        viewer: UserId,
        post: PostId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<Thread> {
        let cursor = cursor.copied();
        self.call(move |e| e.thread(viewer, post, cursor.as_ref(), limit))
            .await
    }

    /// A page of the change feed after `cursor` (see [`Engine::changes`](crate::GenericEngine::changes)).
    pub async fn changes(&self, cursor: Option<&Cursor>, limit: usize) -> Result<ChangePage> {
        let cursor = cursor.copied();
        self.call(move |e| e.changes(cursor.as_ref(), limit)).await
    }

    /// A page of who likes `post` (see [`Engine::likers`](crate::GenericEngine::likers)).
    pub async fn likers(
        &self,
        viewer: UserId,
        post: PostId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<UserPage> {
        let cursor = cursor.copied();
        self.call(move |e| e.likers(viewer, post, cursor.as_ref(), limit))
            .await
    }

    /// A page of the posts `user` likes, as `viewer` sees them (see [`Engine::liked_posts`](crate::GenericEngine::liked_posts)).
    pub async fn liked_posts(
        &self,
        viewer: UserId,
        user: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<TimelinePage> {
        let cursor = cursor.copied();
        self.call(move |e| e.liked_posts(viewer, user, cursor.as_ref(), limit))
            .await
    }

    /// Whether `user` likes each of `posts` (see [`Engine::liked_among`](crate::GenericEngine::liked_among)).
    pub async fn liked_among(&self, user: UserId, posts: &[Post]) -> Result<Vec<bool>> {
        let posts = posts.to_vec();
        self.call(move |e| e.liked_among(user, &posts)).await
    }

    /// A page of `user`'s mutual follows (see [`Engine::friends`](crate::GenericEngine::friends)).
    pub async fn friends(
        &self,
        user: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<UserPage> {
        let cursor = cursor.copied();
        self.call(move |e| e.friends(user, cursor.as_ref(), limit))
            .await
    }

    /// Sets a user's display name and bio (see [`Engine::set_profile`](crate::GenericEngine::set_profile)).
    pub async fn set_profile(
        &self,
        user: UserId,
        display_name: &str,
        bio: &str,
    ) -> Result<Profile> {
        let (display_name, bio) = (display_name.to_owned(), bio.to_owned());
        self.call(move |e| e.set_profile(user, &display_name, &bio))
            .await
    }

    /// Sets a user's avatar (see [`Engine::set_avatar`](crate::GenericEngine::set_avatar)).
    pub async fn set_avatar(&self, user: UserId, bytes: &[u8]) -> Result<ImageKind> {
        let bytes = bytes.to_vec();
        self.call(move |e| e.set_avatar(user, &bytes)).await
    }

    /// Asks to link a phone to a user: a code is texted to it (see [`Engine::link_phone`](crate::GenericEngine::link_phone)).
    pub async fn link_phone(&self, user: UserId, phone: &str) -> Result<PhoneLink> {
        let phone = phone.to_owned();
        self.call(move |e| e.link_phone(user, &phone)).await
    }

    /// Confirms a pending phone link with its code (see [`Engine::confirm_phone`](crate::GenericEngine::confirm_phone)).
    pub async fn confirm_phone(&self, user: UserId, code: &str) -> Result<Phone> {
        let code = code.to_owned();
        self.call(move |e| e.confirm_phone(user, &code)).await
    }

    /// Confirms a pending link of `phone` with a code texted from it (see [`Engine::confirm_phone_by_text`](crate::GenericEngine::confirm_phone_by_text)).
    pub async fn confirm_phone_by_text(&self, phone: &str, code: &str) -> Result<UserId> {
        let (phone, code) = (phone.to_owned(), code.to_owned());
        self.call(move |e| e.confirm_phone_by_text(&phone, &code))
            .await
    }

    /// The user a phone is linked to (see [`Engine::user_by_phone`](crate::GenericEngine::user_by_phone)).
    pub async fn user_by_phone(&self, phone: &str) -> Result<Option<UserId>> {
        let phone = phone.to_owned();
        self.call(move |e| e.user_by_phone(&phone)).await
    }

    /// Sends a direct message (see [`Engine::send_direct`](crate::GenericEngine::send_direct)).
    pub async fn send_direct(&self, from: UserId, to: UserId, text: &str) -> Result<DirectMessage> {
        let text = text.to_owned();
        self.call(move |e| e.send_direct(from, to, &text)).await
    }

    /// A page of `user`'s conversations (see [`Engine::conversations`](crate::GenericEngine::conversations)).
    pub async fn conversations(
        &self,
        user: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<ConversationPage> {
        let cursor = cursor.copied();
        self.call(move |e| e.conversations(user, cursor.as_ref(), limit))
            .await
    }

    /// Writes everything `user` has in the store to `out` as one JSON
    /// document (see [`Engine::export`](crate::GenericEngine::export)).
    /// The export runs on the pool and holds one of its threads while it
    /// writes: a writer that waits (on a slow reader, say) keeps that
    /// thread waiting, so give one that fails after a time limit instead.
    pub async fn export<W>(&self, user: UserId, mut out: W) -> Result<ExportSummary>
    where
        W: std::io::Write + Send + 'static,
    {
        self.call(move |e| e.export(user, &mut out)).await
    }

    /// A page of the messages between `user` and `other` (see [`Engine::messages`](crate::GenericEngine::messages)).
    pub async fn messages(
        &self,
        user: UserId,
        other: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<MessagePage> {
        let cursor = cursor.copied();
        self.call(move |e| e.messages(user, other, cursor.as_ref(), limit))
            .await
    }
}
