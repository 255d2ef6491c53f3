//! Real-time events: what a subscriber to one user's events sees as it
//! happens.
//!
//! Each subscription has a bounded queue. Publishing never blocks: when a
//! queue is full the event is dropped and the subscription is marked
//! lagged, and its next receive returns [`Event::Lagged`] first, so a slow
//! subscriber learns it missed something (and re-reads) and never slows
//! fan-out down. With no subscriber at all, publishing costs one atomic
//! load.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};
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
    /// A post was queued for the user's phone (a device update).
    DeviceDelivery {
        /// The post.
        post: PostId,
    },
    /// Events were dropped because this subscriber fell behind.
    Lagged,
}

struct Slot {
    id: u64,
    tx: Sender<Event>,
    lagged: AtomicBool,
}

/// Every subscription, by user.
#[derive(Default)]
pub(crate) struct Hub {
    subscribers: RwLock<HashMap<UserId, Vec<Arc<Slot>>>>,
    count: AtomicUsize,
    next_id: AtomicU64,
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
                    Err(TrySendError::Full(_)) => slot.lagged.store(true, Ordering::SeqCst),
                }
            }
        }
    }

    pub(crate) fn subscribe(self: &Arc<Self>, user: UserId) -> Subscription {
        let (tx, rx) = crossbeam_channel::bounded(SUBSCRIPTION_CAPACITY);
        let slot = Arc::new(Slot {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            tx,
            lagged: AtomicBool::new(false),
        });
        self.subscribers
            .write()
            .entry(user)
            .or_default()
            .push(Arc::clone(&slot));
        self.count.fetch_add(1, Ordering::Relaxed);
        Subscription {
            user,
            rx,
            slot,
            hub: Arc::clone(self),
        }
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
pub struct Subscription {
    user: UserId,
    rx: Receiver<Event>,
    slot: Arc<Slot>,
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

    /// The next event, waiting at most `timeout`; `None` if none came.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event> {
        if self.slot.lagged.swap(false, Ordering::SeqCst) {
            return Some(Event::Lagged);
        }
        // A timeout and a closed hub both mean "nothing to say".
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next event if one is queued.
    pub fn try_recv(&self) -> Option<Event> {
        self.recv_timeout(Duration::ZERO)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(self.user, self.slot.id);
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
}
