//! Real-time events: what a subscriber to one user's events sees as it
//! happens.
//!
//! Each subscription has a bounded queue. Publishing never blocks: when a
//! queue is full the event is dropped and the subscription is marked
//! lagged, and its next receive returns [`Event::Lagged`] first, so a slow
//! subscriber learns it missed something (and re-reads) and never slows
//! fan-out down. With no subscriber at all, publishing costs one atomic
//! load.
//!
//! A subscription is read either by blocking ([`Subscription::recv_timeout`])
//! or as a [`Stream`] under any async runtime: each queue carries an
//! [`AtomicWaker`] that publishing and closing wake, so an awaiting
//! subscriber costs no thread and no timer. When the engine closes, every
//! subscription ends once its queued events are read.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use atomic_waker::AtomicWaker;
use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use futures_core::Stream;
use futures_core::stream::FusedStream;
use parking_lot::RwLock;
use starling_core::{PostId, UserId};

/// Events queued per subscription before it lags.
pub const SUBSCRIPTION_CAPACITY: usize = 256;

/// Something that happened to a subscribed user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "kind", rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Event {
    /// A post entered the user's home timeline.
    TimelineAdded {
        /// The post.
        post: PostId,
    },
    /// A post left the user's home timeline (deleted, unfollowed, blocked,
    /// or the user left the group it was addressed to).
    TimelineRetracted {
        /// The post.
        post: PostId,
    },
    /// A post mentioned the user.
    Mention {
        /// The post.
        post: PostId,
    },
    /// A direct message arrived.
    DirectMessage {
        /// Its sender.
        from: UserId,
        /// The message's id.
        message: PostId,
    },
    /// Someone asked to follow the user's protected account.
    FollowRequest {
        /// Who asked.
        from: UserId,
    },
    /// A post was queued for the user's phone (a device update).
    DeviceDelivery {
        /// The post.
        post: PostId,
    },
    /// Events were dropped because this subscriber fell behind.
    Lagged,
}

/// What a subscription and its slot in the hub share.
#[derive(Default)]
struct Signal {
    /// Set when an event was dropped; the next receive reports it first.
    lagged: AtomicBool,
    /// The task awaiting this subscription, woken on publish and on close.
    waker: AtomicWaker,
    /// Set when the hub let go of this subscription (its user's account
    /// was deleted, or the engine closed).
    ended: AtomicBool,
}

/// The hub's end of one subscription: the only sender of its queue, so
/// that dropping the slot (on close) disconnects the queue.
struct Slot {
    id: u64,
    tx: Sender<Event>,
    signal: Arc<Signal>,
}

impl Slot {
    /// Lets go of the subscription: its reader takes what is queued, then
    /// sees the end. The queue is disconnected first, so that the woken
    /// task sees it.
    fn end(self) {
        self.signal.ended.store(true, Ordering::SeqCst);
        drop(self.tx);
        self.signal.waker.wake();
    }
}

/// Every subscription, by user.
#[derive(Default)]
pub(crate) struct Hub {
    subscribers: RwLock<HashMap<UserId, Vec<Slot>>>,
    count: AtomicUsize,
    next_id: AtomicU64,
    /// Set once, by [`Hub::close`], under the write lock.
    closed: AtomicBool,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("subscriptions", &self.count.load(Ordering::Relaxed))
            .finish()
    }
}

impl Hub {
    /// Whether anyone is subscribed at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.count.load(Ordering::Relaxed) == 0
    }

    /// Users with at least one subscription.
    pub(crate) fn subscribed_users(&self) -> Vec<UserId> {
        self.subscribers.read().keys().copied().collect()
    }

    /// Publishes events; never blocks.
    pub(crate) fn publish(&self, events: impl IntoIterator<Item = (UserId, Event)>) {
        if self.is_empty() {
            return;
        }
        let subscribers = self.subscribers.read();
        for (user, event) in events {
            for slot in subscribers.get(&user).into_iter().flatten() {
                match slot.tx.try_send(event) {
                    Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                    Err(TrySendError::Full(_)) => slot.signal.lagged.store(true, Ordering::SeqCst),
                }
                slot.signal.waker.wake();
            }
        }
    }

    pub(crate) fn subscribe(self: &Arc<Self>, user: UserId) -> Subscription {
        let (tx, rx) = crossbeam_channel::bounded(SUBSCRIPTION_CAPACITY);
        let signal = Arc::new(Signal::default());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut subscribers = self.subscribers.write();
            // After close the sender is dropped here: the subscription
            // starts ended.
            if !self.closed.load(Ordering::SeqCst) {
                subscribers.entry(user).or_default().push(Slot {
                    id,
                    tx,
                    signal: Arc::clone(&signal),
                });
                self.count.fetch_add(1, Ordering::Relaxed);
            }
        }
        Subscription {
            user,
            id,
            rx,
            signal,
            hub: Arc::clone(self),
        }
    }

    /// Ends every subscription: later publishes reach nobody, each
    /// subscriber reads what is queued and then sees the end, and every
    /// awaiting task is woken to see it.
    pub(crate) fn close(&self) {
        let slots = {
            let mut subscribers = self.subscribers.write();
            self.closed.store(true, Ordering::SeqCst);
            self.count.store(0, Ordering::Relaxed);
            std::mem::take(&mut *subscribers)
        };
        slots.into_values().flatten().for_each(Slot::end);
    }

    /// Ends every subscription of `user`, as [`Hub::close`] ends them all:
    /// each reads what is queued, then sees the end.
    pub(crate) fn end_user(&self, user: UserId) {
        let slots = {
            let mut subscribers = self.subscribers.write();
            let slots = subscribers.remove(&user).unwrap_or_default();
            self.count.fetch_sub(slots.len(), Ordering::Relaxed);
            slots
        };
        slots.into_iter().for_each(Slot::end);
    }

    fn unsubscribe(&self, user: UserId, id: u64) {
        let mut subscribers = self.subscribers.write();
        if let Some(slots) = subscribers.get_mut(&user) {
            let before = slots.len();
            slots.retain(|s| s.id != id);
            if slots.len() < before {
                self.count.fetch_sub(1, Ordering::Relaxed);
            }
            if slots.is_empty() {
                subscribers.remove(&user);
            }
        }
    }
}

/// One subscriber's view of a user's events. Dropping it unsubscribes.
///
/// Read it by blocking ([`recv_timeout`](Subscription::recv_timeout),
/// [`try_recv`](Subscription::try_recv)) or, under any async runtime, as a
/// [`Stream`] of [`Event`]s: an awaiting task is woken when an event is
/// queued, holds no thread while it waits, and the stream ends (yields
/// `None`) when the engine closes, after the events already queued. Polling
/// it has no side effect beyond taking the event it returns, so a stream
/// dropped mid-`select!` loses nothing it had not yet returned.
pub struct Subscription {
    user: UserId,
    id: u64,
    rx: Receiver<Event>,
    signal: Arc<Signal>,
    hub: Arc<Hub>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("user", &self.user)
            .finish()
    }
}

impl Subscription {
    /// The subscribed user.
    pub fn user(&self) -> UserId {
        self.user
    }

    /// The next event, waiting at most `timeout`; `None` if none came or
    /// the subscription ended (see [`is_closed`](Subscription::is_closed)).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event> {
        if self.signal.lagged.swap(false, Ordering::SeqCst) {
            return Some(Event::Lagged);
        }
        // A timeout and an ended subscription both mean "nothing to say".
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next event if one is queued.
    pub fn try_recv(&self) -> Option<Event> {
        self.next_ready().flatten()
    }

    /// Whether the subscription has ended: the engine closed (or the
    /// user's account was deleted) and every event queued before that was
    /// received. No event comes after.
    pub fn is_closed(&self) -> bool {
        (self.hub.closed.load(Ordering::SeqCst) || self.signal.ended.load(Ordering::SeqCst))
            && self.rx.is_empty()
            && !self.signal.lagged.load(Ordering::SeqCst)
    }

    /// Polls for the next event as [`Stream::poll_next`] does: `Ready(None)`
    /// once the subscription has ended; `Pending` (with `cx`'s waker
    /// registered) while nothing is queued.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        if let Some(ready) = self.next_ready() {
            return Poll::Ready(ready);
        }
        self.signal.waker.register(cx.waker());
        // Check again: a publish between the first look and the
        // registration woke nobody.
        match self.next_ready() {
            Some(ready) => Poll::Ready(ready),
            None => Poll::Pending,
        }
    }

    /// `Some(Some(event))` if one is ready, `Some(None)` if the
    /// subscription ended, `None` if nothing is queued yet.
    fn next_ready(&self) -> Option<Option<Event>> {
        if let Some(lagged) = self.take_lagged() {
            return Some(Some(lagged));
        }
        match self.rx.try_recv() {
            Ok(event) => Some(Some(event)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(None),
        }
    }

    fn take_lagged(&self) -> Option<Event> {
        self.signal
            .lagged
            .swap(false, Ordering::SeqCst)
            .then_some(Event::Lagged)
    }
}

impl Stream for Subscription {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.get_mut().poll_recv(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.rx.len(), None)
    }
}

impl FusedStream for Subscription {
    fn is_terminated(&self) -> bool {
        self.is_closed()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(self.user, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_reports_lag_without_blocking() {
        let hub = Arc::new(Hub::default());
        let sub = hub.subscribe(UserId(1));
        let other = hub.subscribe(UserId(2));
        let n = SUBSCRIPTION_CAPACITY as u64 + 10;
        hub.publish((0..n).map(|i| (UserId(1), Event::TimelineAdded { post: PostId(i) })));
        assert_eq!(sub.try_recv(), Some(Event::Lagged));
        let mut got = Vec::new();
        while let Some(e) = sub.try_recv() {
            got.push(e);
        }
        assert_eq!(got.len(), SUBSCRIPTION_CAPACITY);
        assert_eq!(got[0], Event::TimelineAdded { post: PostId(0) });
        assert_eq!(other.try_recv(), None, "another user's events stay theirs");
        drop(sub);
        drop(other);
        assert!(hub.is_empty());
        assert!(hub.subscribed_users().is_empty());
    }

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Count {
        fn get(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn poll(sub: &mut Subscription, count: &Arc<Count>) -> Poll<Option<Event>> {
        let waker = std::task::Waker::from(Arc::clone(count));
        Pin::new(sub).poll_next(&mut Context::from_waker(&waker))
    }

    fn added(i: u64) -> Event {
        Event::TimelineAdded { post: PostId(i) }
    }

    #[test]
    fn an_awaiting_stream_is_woken_by_a_publish_for_its_user_only() {
        let hub = Arc::new(Hub::default());
        let mut sub = hub.subscribe(UserId(1));
        let count = Arc::new(Count::default());
        assert_eq!(poll(&mut sub, &count), Poll::Pending);
        hub.publish([(UserId(2), added(1))]);
        assert_eq!(count.get(), 0, "another user's event wakes nobody here");
        hub.publish([(UserId(1), added(2)), (UserId(1), added(3))]);
        assert_eq!(count.get(), 1, "one wake-up per registration");
        assert_eq!(poll(&mut sub, &count), Poll::Ready(Some(added(2))));
        assert_eq!(poll(&mut sub, &count), Poll::Ready(Some(added(3))));
        assert_eq!(poll(&mut sub, &count), Poll::Pending);
        hub.publish([(UserId(1), added(4))]);
        assert_eq!(count.get(), 2, "registered again by the Pending poll");
        assert_eq!(
            sub.try_recv(),
            Some(added(4)),
            "blocking reads see the same queue"
        );
    }

    #[test]
    fn a_stream_reports_lag_first_then_the_queued_events() {
        let hub = Arc::new(Hub::default());
        let mut sub = hub.subscribe(UserId(1));
        let count = Arc::new(Count::default());
        let n = SUBSCRIPTION_CAPACITY as u64 + 3;
        hub.publish((0..n).map(|i| (UserId(1), added(i))));
        assert_eq!(poll(&mut sub, &count), Poll::Ready(Some(Event::Lagged)));
        for i in 0..SUBSCRIPTION_CAPACITY as u64 {
            assert_eq!(poll(&mut sub, &count), Poll::Ready(Some(added(i))));
        }
        assert_eq!(poll(&mut sub, &count), Poll::Pending);
    }

    #[test]
    fn closing_wakes_every_stream_which_ends_after_its_queued_events() {
        let hub = Arc::new(Hub::default());
        let mut idle = hub.subscribe(UserId(1));
        let mut busy = hub.subscribe(UserId(2));
        let (a, b) = (Arc::new(Count::default()), Arc::new(Count::default()));
        assert_eq!(poll(&mut idle, &a), Poll::Pending);
        hub.publish([(UserId(2), added(7))]);
        assert!(!busy.is_closed());
        hub.close();
        assert_eq!(a.get(), 1, "an awaiting task is woken to see the end");
        assert!(hub.is_empty());
        hub.publish([(UserId(2), added(8))]);
        assert!(!busy.is_closed(), "one event is still queued");
        assert_eq!(poll(&mut busy, &b), Poll::Ready(Some(added(7))));
        assert_eq!(poll(&mut busy, &b), Poll::Ready(None));
        assert_eq!(poll(&mut busy, &b), Poll::Ready(None), "and stays ended");
        assert_eq!(poll(&mut idle, &a), Poll::Ready(None));
        assert!(idle.is_closed() && busy.is_closed());
        assert!(idle.is_terminated());
        let started = std::time::Instant::now();
        assert_eq!(idle.recv_timeout(Duration::from_secs(30)), None);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a blocking read of an ended subscription returns at once"
        );
        let late = hub.subscribe(UserId(1));
        assert!(late.is_closed(), "a subscription after close starts ended");
        drop((idle, busy, late));
        assert!(hub.is_empty());
    }

    #[test]
    fn a_stream_ends_when_the_engine_closes() -> starling_core::Result<()> {
        let engine = crate::Engine::with_backend(
            starling_memstore::MemBackend::new(),
            starling_core::Config::default(),
        )?;
        let ada = engine.create_user("ada")?;
        let bob = engine.create_user("bob")?;
        engine.follow(bob.id, ada.id)?;
        let mut sub = engine.subscribe(bob.id)?;
        let count = Arc::new(Count::default());
        assert_eq!(poll(&mut sub, &count), Poll::Pending);
        let post = engine.post(ada.id, "hello")?;
        engine.wait_for_fanout()?;
        assert!(count.get() >= 1, "fan-out woke the stream");
        assert_eq!(
            poll(&mut sub, &count),
            Poll::Ready(Some(Event::TimelineAdded { post: post.id }))
        );
        assert_eq!(poll(&mut sub, &count), Poll::Pending);
        let before = count.get();
        engine.close()?;
        assert!(count.get() > before, "closing woke the stream");
        assert_eq!(poll(&mut sub, &count), Poll::Ready(None));
        Ok(())
    }
}
