//! Live home timelines over server-sent events.
//!
//! Each stream holds an engine subscription, awaited as a stream of engine
//! events: no thread waits for it. An event for the user (an entry added or
//! retracted) wakes the stream's task, which re-reads the head of the home
//! timeline and diffs it against the previous head; events queued by then
//! are folded into that one re-read. Re-reading rather than forwarding the
//! raw events keeps every read-time rule (blocks, mutes, a post shown once
//! however many reposts reach it) in the engine. A stream also re-reads
//! every `live_poll_ms` without an event, as a safety net (a change that
//! sends no event, a session that ended); that is a timer on the runtime,
//! not a thread.
//!
//! Events:
//! - `ready`: once, when the stream is set up; data `{"head": <newest post id or null>}`.
//! - `post`: a post entered the timeline; `id:` is the post id, data is the post.
//! - `retract`: a post left the timeline (deleted, or its author unfollowed);
//!   data `{"id": "<post id>"}`.
//!
//! A client that reconnects with `Last-Event-ID` (or passes `?since=<post id>`)
//! first gets the posts newer than that id which are still in the head.
//!
//! Diffing a window rather than keeping a high-water mark matters: fan-out
//! is asynchronous, so a followee's post can land in the inbox after a newer
//! post of the reader's own. Such a late post is still announced as long as
//! it lands inside the window.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt as _};
use parking_lot::Mutex;
use starling::{PostId, Subscription, UserId};
use tokio::sync::watch;

use crate::accounts::TokenKey;
use crate::error::ApiError;
use crate::routes::{PostJson, hydrate_posts};
use crate::server::AppState;

/// Posts of the head compared on each poll.
const WINDOW: usize = 50;

/// Open streams per user, to cap what one account can hold open.
pub(crate) struct Streams {
    per_user: usize,
    open: Mutex<HashMap<UserId, usize>>,
}

impl Streams {
    pub(crate) fn new(per_user: usize) -> Streams {
        Streams {
            per_user,
            open: Mutex::new(HashMap::new()),
        }
    }
}

/// One open stream's slot; frees it when the stream ends.
struct Slot {
    state: AppState,
    user: UserId,
}

impl Slot {
    fn take(state: &AppState, user: UserId) -> Option<Slot> {
        let streams = state.streams();
        let mut open = streams.open.lock();
        let n = open.entry(user).or_default();
        if *n >= streams.per_user {
            return None;
        }
        *n += 1;
        state.metrics().live_streams.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            state: state.clone(),
            user,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.state.streams().open.lock();
        if let Some(n) = open.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user);
            }
        }
        self.state
            .metrics()
            .live_streams
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// The head of a timeline as last seen: post ids, newest first.
#[derive(Debug, Default, PartialEq)]
struct Head(Vec<PostId>);

/// What changed between two heads of at most `window` posts.
#[derive(Debug, PartialEq)]
struct Changes {
    /// New posts, oldest first.
    added: Vec<PostId>,
    /// Posts that left, oldest first.
    removed: Vec<PostId>,
}

impl Head {
    /// The posts below which `self` says nothing: when the window was full,
    /// an older post showing up is one that slid in, not a new one.
    fn floor(&self, window: usize) -> Option<PostId> {
        (self.0.len() >= window)
            .then(|| self.0.last().copied())
            .flatten()
    }

    fn diff(&self, next: &Head, window: usize) -> Changes {
        let before: BTreeSet<PostId> = self.0.iter().copied().collect();
        let after: BTreeSet<PostId> = next.0.iter().copied().collect();
        let old_floor = self.floor(window);
        let new_floor = next.floor(window);
        Changes {
            added: after
                .difference(&before)
                .copied()
                .filter(|p| old_floor.is_none_or(|f| *p > f))
                .collect(),
            removed: before
                .difference(&after)
                .copied()
                .filter(|p| new_floor.is_none_or(|f| *p > f))
                .collect(),
        }
    }
}

struct Watcher {
    state: AppState,
    user: UserId,
    token: TokenKey,
    head: Head,
    pending: VecDeque<Event>,
    shutdown: watch::Receiver<bool>,
    poll: Duration,
    /// The engine's events for the user.
    events: Subscription,
    _slot: Slot,
}

/// Subscribes to `user`'s engine events. The subscription is a stream:
/// awaiting it holds no thread, and it ends when the engine closes.
pub(crate) async fn subscribe(state: &AppState, user: UserId) -> Result<Subscription, ApiError> {
    state.db().subscribe(user).await
}

/// Opens a live stream of `user`'s home timeline for the session `token`.
/// `since` is the newest post the client already has.
pub(crate) async fn home_events(
    state: AppState,
    user: UserId,
    token: TokenKey,
    since: Option<PostId>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    if state.is_shutting_down() {
        return Err(ApiError::unavailable());
    }
    let slot = Slot::take(&state, user)
        .ok_or_else(|| ApiError::rate_limited("too_many_streams", Duration::from_secs(5)))?;
    // Subscribed before the first read, so nothing between the two is missed.
    let events = subscribe(&state, user).await?;
    let posts = hydrate_posts(&state, user, move |engine| {
        Ok(engine.home_timeline(user, None, WINDOW)?.posts)
    })
    .await?;
    let head = Head(posts.iter().map(|p| p.id).collect());
    let ready = serde_json::json!({ "head": head.0.first().map(|p| p.0.to_string()) });
    let mut pending = VecDeque::new();
    pending.push_back(Event::default().event("ready").data(ready.to_string()));
    if let Some(since) = since {
        for post in posts.iter().rev().filter(|p| p.id > since) {
            pending.push_back(post_event(&state, post));
        }
    }
    let watcher = Watcher {
        shutdown: state.shutdown_signal(),
        poll: state.config().live_poll(),
        events,
        state,
        user,
        token,
        head,
        pending,
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(watcher, |mut w| async move {
        let event = w.next_event().await?;
        Some((Ok(event), w))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn post_event(state: &AppState, post: &PostJson) -> Event {
    state.metrics().live_events.fetch_add(1, Ordering::Relaxed);
    let data = serde_json::to_string(post).unwrap_or_default();
    Event::default()
        .event("post")
        .id(post.id.0.to_string())
        .data(data)
}

impl Watcher {
    /// The next event, or `None` when the stream should end: the server is
    /// shutting down, the session ended, or the engine is gone.
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            tokio::select! {
                event = self.events.next() => {
                    // `None`: the engine closed.
                    event?;
                    // One re-read answers every event queued by now.
                    while self.events.try_recv().is_some() {}
                }
                () = tokio::time::sleep(self.poll) => {}
                _ = self.shutdown.wait_for(|b| *b) => return None,
            }
            if self.state.accounts().session(&self.token) != Some(self.user) {
                return None;
            }
            let user = self.user;
            let posts = match hydrate_posts(&self.state, user, move |engine| {
                Ok(engine.home_timeline(user, None, WINDOW)?.posts)
            })
            .await
            {
                Ok(posts) => posts,
                Err(e) if e.status().is_server_error() => return None,
                Err(_) => continue,
            };
            let next = Head(posts.iter().map(|p| p.id).collect());
            let changes = self.head.diff(&next, WINDOW);
            for id in changes.removed {
                let data = serde_json::json!({ "id": id.0.to_string() }).to_string();
                self.pending
                    .push_back(Event::default().event("retract").data(data));
            }
            for id in changes.added {
                if let Some(post) = posts.iter().find(|p| p.id == id) {
                    let event = post_event(&self.state, post);
                    self.pending.push_back(event);
                }
            }
            self.head = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(ids: &[u64]) -> Head {
        Head(ids.iter().map(|&i| PostId(i)).collect())
    }

    fn check(before: &[u64], after: &[u64], window: usize, added: &[u64], removed: &[u64]) {
        let changes = head(before).diff(&head(after), window);
        let ids = |v: Vec<PostId>| v.into_iter().map(|p| p.0).collect::<Vec<_>>();
        assert_eq!(
            (ids(changes.added), ids(changes.removed)),
            (added.to_vec(), removed.to_vec()),
            "{before:?} -> {after:?}"
        );
    }

    #[test]
    fn diffs_heads() {
        // New posts on top, oldest first.
        check(&[5, 3], &[9, 7, 5, 3], 10, &[7, 9], &[]);
        // A late fan-out delivery below the newest post is still new.
        check(&[9, 5], &[9, 7, 5], 10, &[7], &[]);
        // A deletion is a retraction.
        check(&[9, 7, 5], &[9, 5], 10, &[], &[7]);
        // Full window: new posts push old ones out; that is not a retraction.
        check(&[9, 7, 5], &[11, 9, 7], 3, &[11], &[]);
        // Full window: a deletion lets an older post slide in; not new.
        check(&[9, 7, 5], &[9, 5, 3], 3, &[], &[7]);
        // Nothing changed.
        check(&[9, 7], &[9, 7], 3, &[], &[]);
        check(&[], &[], 3, &[], &[]);
    }
}
