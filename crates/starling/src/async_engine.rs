//! The async front: the engine's operations as futures for tokio
//! applications (feature `tokio`).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use starling_core::{
    Config, Counts, Cursor, DeliveryId, DeviceDelivery, DeviceUsage, DirectMessage, DmPolicy,
    Error, Group, GroupId, ImageKind, Phone, Post, PostId, Profile, Result, Toggle, User, UserId,
};
use starling_engine::{
    Backend, CheckReport, ConversationPage, FanoutStats, MessagePage, PostOptions, Subscription,
    Suggestion, Thread, TimelinePage, UserPage,
};
use starling_rocks::RocksBackend;
use tokio::sync::Semaphore;

use crate::GenericEngine;

/// Engine calls that [`AsyncEngine::new`] lets run at once.
pub const DEFAULT_MAX_CALLS: usize = 16;

/// The most engine calls an [`AsyncEngine`] may let run at once: tokio's
/// own default cap on blocking threads, past which a larger bound changes
/// nothing.
pub const MAX_CALLS: usize = 512;

/// The engine for async applications: every operation of [`Engine`]
/// returns a future, and [`subscribe`](AsyncEngine::subscribe) a
/// [`Stream`](futures_core::Stream) of events.
///
/// # `Engine` or `AsyncEngine`
///
/// The engine's operations block: they read and write RocksDB and may wait
/// on a lock or an fsync. Call [`Engine`] directly from threads you own (a
/// command-line tool, a thread-per-request server, tests). In an async
/// program (tokio, axum) use `AsyncEngine`, so that no call stalls a
/// runtime worker: each call runs on tokio's blocking pool, at most
/// [`max_calls`](AsyncEngine::max_calls) at once, and the calls beyond that
/// wait as futures (not threads) in arrival order.
///
/// # The pool
///
/// The bound is a semaphore in front of `tokio::task::spawn_blocking`, not
/// threads of its own: the runtime already owns and joins its blocking
/// threads, so there is nothing to leak or to join here, and the semaphore
/// keeps a burst of requests from growing that pool toward tokio's 512
/// threads. The futures must therefore be polled inside a tokio runtime;
/// outside one they fail with [`Error::InvalidConfig`].
///
/// # Cancellation
///
/// Every future is cancellation-safe. Dropped while it waits for its turn,
/// it has done nothing; once its call has started on the pool, the call
/// runs to completion (and its result is dropped). A call is never cut
/// short, so dropping a future never half-applies an operation.
///
/// # Closing
///
/// Clones share one engine. [`close`](AsyncEngine::close) refuses new calls
/// (they fail with [`Error::Closed`]), waits for the running ones, closes
/// the engine and so ends every subscription stream. Dropping the last clone
/// without closing closes the engine too, but blocks the dropping thread
/// while the fan-out workers stop.
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

struct Inner<B: Backend> {
    /// `None` once closed. A call clones the `Arc` out while it holds a
    /// permit and drops it before the permit, so holding every permit
    /// means holding the only reference.
    engine: Mutex<Option<Arc<GenericEngine<B>>>>,
    calls: Arc<Semaphore>,
    max_calls: usize,
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
            .field("max_calls", &self.inner.max_calls)
            .field("closed", &self.inner.calls.is_closed())
            .finish()
    }
}

impl AsyncEngine<RocksBackend> {
    /// Opens (creating if missing) the store at `path` on the blocking
    /// pool, and resumes any unfinished fan-out, as [`Engine::open`] does.
    ///
    /// [`Engine::open`]: crate::Engine::open
    pub async fn open(path: impl AsRef<Path>, config: Config) -> Result<AsyncEngine> {
        let path = path.as_ref().to_owned();
        let engine =
            spawn_blocking(move || GenericEngine::<RocksBackend>::open(&path, config)).await??;
        Ok(AsyncEngine::new(engine))
    }
}

impl<B: Backend> AsyncEngine<B> {
    /// Wraps `engine`, letting [`DEFAULT_MAX_CALLS`] calls run at once.
    pub fn new(engine: GenericEngine<B>) -> AsyncEngine<B> {
        AsyncEngine::build(engine, DEFAULT_MAX_CALLS)
    }

    /// Wraps `engine`, letting `max_calls` calls (1 to [`MAX_CALLS`]) run at
    /// once. Out of range, the engine is handed back with the error.
    pub fn with_max_calls(
        engine: GenericEngine<B>,
        max_calls: usize,
    ) -> std::result::Result<AsyncEngine<B>, (GenericEngine<B>, Error)> {
        if max_calls == 0 || max_calls > MAX_CALLS {
            return Err((
                engine,
                Error::InvalidConfig("max_calls must be between 1 and 512"),
            ));
        }
        Ok(AsyncEngine::build(engine, max_calls))
    }

    fn build(engine: GenericEngine<B>, max_calls: usize) -> AsyncEngine<B> {
        AsyncEngine {
            inner: Arc::new(Inner {
                engine: Mutex::new(Some(Arc::new(engine))),
                calls: Arc::new(Semaphore::new(max_calls)),
                max_calls,
            }),
        }
    }

    /// How many calls may run at once.
    pub fn max_calls(&self) -> usize {
        self.inner.max_calls
    }

    /// Runs `f` against the engine on the blocking pool and returns what it
    /// returns: the way to run several operations as one call, or one this
    /// type does not mirror. Fails with [`Error::Closed`] once closed. A
    /// panic in `f` resumes in the awaiting task.
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
        let permit = Arc::clone(&self.inner.calls)
            .acquire_owned()
            .await
            .map_err(|_| Error::Closed)?;
        // No await from here until the call is on the pool: a future
        // dropped now has done nothing, and one dropped later leaves the
        // call running to completion.
        let engine = self.engine().ok_or(Error::Closed)?;
        spawn_blocking(move || {
            let out = f(engine.as_ref());
            // The engine before the permit: see `Inner::engine`.
            drop(engine);
            drop(permit);
            out
        })
        .await?
    }

    fn engine(&self) -> Option<Arc<GenericEngine<B>>> {
        self.inner
            .engine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Refuses new calls, waits for the running ones, and closes the
    /// engine as [`Engine::close`] does: the fan-out workers stop, queued
    /// jobs stay durable, and every subscription stream ends after its
    /// queued events. Closing again, or from a clone, does nothing. Dropped
    /// once the engine's own close has begun, that close still completes.
    ///
    /// [`Engine::close`]: crate::Engine::close
    pub async fn close(&self) -> Result<()> {
        let Ok(all) = self
            .inner
            .calls
            .acquire_many(u32::try_from(self.inner.max_calls).unwrap_or(u32::MAX))
            .await
        else {
            return Ok(());
        };
        let engine = self
            .inner
            .engine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.inner.calls.close();
        drop(all);
        let Some(engine) = engine else {
            return Ok(());
        };
        spawn_blocking(move || match Arc::try_unwrap(engine) {
            Ok(engine) => engine.close(),
            // Only a call whose task the runtime dropped unstarted can
            // still hold it; the engine closes when that reference goes.
            Err(shared) => {
                drop(shared);
                Ok(())
            }
        })
        .await?
    }

    /// Subscribes to `user`'s real-time events (see [`Engine::subscribe`]).
    /// The [`Subscription`] is a [`Stream`](futures_core::Stream) of
    /// [`Event`](crate::Event)s: awaiting it holds no thread, and it ends
    /// when the engine closes.
    ///
    /// [`Engine::subscribe`]: crate::Engine::subscribe
    pub async fn subscribe(&self, user: UserId) -> Result<Subscription> {
        self.call(move |e| e.subscribe(user)).await
    }
}

/// Runs `f` on tokio's blocking pool: an error outside a runtime, the
/// panic of `f` resumed, [`Error::Closed`] if the runtime shut down first.
async fn spawn_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
        Error::InvalidConfig("an AsyncEngine call must be polled inside a tokio runtime")
    })?;
    match runtime.spawn_blocking(f).await {
        Ok(out) => Ok(out),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::Closed),
    }
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
    fn avatar(user: UserId) -> Option<(ImageKind, Vec<u8>)>;
    /// Removes a user's avatar (see [`Engine::remove_avatar`](crate::GenericEngine::remove_avatar)).
    fn remove_avatar(user: UserId) -> bool;
    /// Unlinks a user's phone (see [`Engine::unlink_phone`](crate::GenericEngine::unlink_phone)).
    fn unlink_phone(user: UserId) -> bool;
    /// A user's linked phone (see [`Engine::phone`](crate::GenericEngine::phone)).
    fn phone(user: UserId) -> Option<Phone>;
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

    /// Links a phone to a user (see [`Engine::link_phone`](crate::GenericEngine::link_phone)).
    pub async fn link_phone(&self, user: UserId, phone: &str) -> Result<Phone> {
        let phone = phone.to_owned();
        self.call(move |e| e.link_phone(user, &phone)).await
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
