//! Per-user soft state the fan-out policy reads: when each user last read
//! their home timeline, and decayed rates of posting and reading.
//!
//! Dense tables indexed by user id (ids are assigned densely), so that the
//! fan-out loop pays an array load per follower, not a hash look-up. Last
//! reads are persisted (throttled) so that a restart still knows who was
//! skipped; rates are soft and start again from zero.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{RwLock, RwLockReadGuard};
use starling_core::UserId;

#[derive(Default)]
struct Slot {
    last_read_ms: AtomicU64,
    persisted_read_ms: AtomicU64,
    post_rate: AtomicU64,
    read_rate: AtomicU64,
    /// Inbox entries fan-out wrote since the inbox was last trimmed.
    deliveries: AtomicU64,
}

pub(crate) struct Activity {
    slots: RwLock<Vec<Slot>>,
    half_life_ms: f64,
}

/// A decayed event count packed into a u64: f32 value (high half) and the
/// second of its last update (low half).
fn pack(value: f64, at_s: u64) -> u64 {
    (u64::from((value as f32).to_bits()) << 32) | (at_s & 0xffff_ffff)
}

fn unpack(word: u64) -> (f64, u64) {
    (
        f64::from(f32::from_bits((word >> 32) as u32)),
        word & 0xffff_ffff,
    )
}

impl Activity {
    pub(crate) fn new(half_life_ms: u64) -> Activity {
        Activity {
            slots: RwLock::new(Vec::new()),
            half_life_ms: half_life_ms as f64,
        }
    }

    fn with_slot<T>(&self, user: UserId, f: impl FnOnce(&Slot) -> T) -> T {
        let i = user.0 as usize;
        {
            let slots = self.slots.read();
            if let Some(slot) = slots.get(i) {
                return f(slot);
            }
        }
        let mut slots = self.slots.write();
        if slots.len() <= i {
            let grow = (i + 1).max(slots.len() * 2).max(1024);
            slots.resize_with(grow, Slot::default);
        }
        f(&slots[i])
    }

    fn peek<T: Default>(&self, user: UserId, f: impl FnOnce(&Slot) -> T) -> T {
        self.slots
            .read()
            .get(user.0 as usize)
            .map(f)
            .unwrap_or_default()
    }

    /// Makes room for `user` (every known user has a slot, so the fan-out
    /// loop's [`View`] finds them all).
    pub(crate) fn ensure(&self, user: UserId) {
        self.with_slot(user, |_| ());
    }

    /// A read view for a tight loop: one lock acquisition for many users.
    pub(crate) fn view(&self) -> View<'_> {
        View {
            slots: self.slots.read(),
            half_life_ms: self.half_life_ms,
        }
    }

    /// Records a stored last read (at open).
    pub(crate) fn load_last_read(&self, user: UserId, at_ms: u64) {
        self.with_slot(user, |s| {
            s.last_read_ms.store(at_ms, Ordering::Relaxed);
            s.persisted_read_ms.store(at_ms, Ordering::Relaxed);
        });
    }

    /// When the user last read (0: never, as far as is known).
    pub(crate) fn last_read(&self, user: UserId) -> u64 {
        self.peek(user, |s| s.last_read_ms.load(Ordering::Relaxed))
    }

    /// Whether the user has not read for longer than `after_ms` at `now_ms`.
    pub(crate) fn inactive(&self, user: UserId, after_ms: Option<u64>, now_ms: u64) -> bool {
        after_ms.is_some_and(|after| now_ms.saturating_sub(self.last_read(user)) > after)
    }

    /// Records a read at `now_ms`; returns the time to persist, if the
    /// stored one is older than `every_ms`.
    pub(crate) fn read(&self, user: UserId, now_ms: u64, every_ms: u64) -> Option<u64> {
        self.with_slot(user, |s| {
            s.last_read_ms.fetch_max(now_ms, Ordering::Relaxed);
            bump(&s.read_rate, now_ms, self.half_life_ms);
            let persisted = s.persisted_read_ms.load(Ordering::Relaxed);
            (now_ms.saturating_sub(persisted) >= every_ms).then(|| {
                s.persisted_read_ms.store(now_ms, Ordering::Relaxed);
                now_ms
            })
        })
    }

    /// Records a post at `now_ms`.
    pub(crate) fn posted(&self, user: UserId, now_ms: u64) {
        self.with_slot(user, |s| bump(&s.post_rate, now_ms, self.half_life_ms));
    }

    /// Whether `at_least` deliveries reached `user`'s inbox since the last
    /// call that returned true (which resets the count).
    pub(crate) fn take_deliveries(&self, user: UserId, at_least: u64) -> bool {
        self.peek(user, |s| {
            s.deliveries.load(Ordering::Relaxed) >= at_least
                && s.deliveries.swap(0, Ordering::Relaxed) >= at_least
        })
    }

    /// Decayed reads per half-life of `user` at `now_ms`.
    pub(crate) fn read_rate(&self, user: UserId, now_ms: u64) -> f64 {
        self.peek(user, |s| {
            decayed(
                s.read_rate.load(Ordering::Relaxed),
                now_ms,
                self.half_life_ms,
            )
        })
    }

    /// Decayed posts per half-life of `user` at `now_ms`.
    pub(crate) fn post_rate(&self, user: UserId, now_ms: u64) -> f64 {
        self.peek(user, |s| {
            decayed(
                s.post_rate.load(Ordering::Relaxed),
                now_ms,
                self.half_life_ms,
            )
        })
    }
}

/// The tables under one read lock (see [`Activity::view`]).
pub(crate) struct View<'a> {
    slots: RwLockReadGuard<'a, Vec<Slot>>,
    half_life_ms: f64,
}

impl View<'_> {
    /// As [`Activity::inactive`].
    pub(crate) fn inactive(&self, user: UserId, after_ms: Option<u64>, now_ms: u64) -> bool {
        let last = self
            .slots
            .get(user.0 as usize)
            .map_or(0, |s| s.last_read_ms.load(Ordering::Relaxed));
        after_ms.is_some_and(|after| now_ms.saturating_sub(last) > after)
    }

    /// As [`Activity::read_rate`].
    pub(crate) fn read_rate(&self, user: UserId, now_ms: u64) -> f64 {
        self.slots.get(user.0 as usize).map_or(0.0, |s| {
            decayed(
                s.read_rate.load(Ordering::Relaxed),
                now_ms,
                self.half_life_ms,
            )
        })
    }

    /// As [`Activity::delivered`], for users that have a slot.
    pub(crate) fn delivered(&self, user: UserId) {
        if let Some(s) = self.slots.get(user.0 as usize) {
            s.deliveries.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn decayed(word: u64, now_ms: u64, half_life_ms: f64) -> f64 {
    let (value, at_s) = unpack(word);
    let age_ms = (now_ms / 1000).saturating_sub(at_s) as f64 * 1000.0;
    value * (-age_ms / half_life_ms).exp2()
}

fn bump(cell: &AtomicU64, now_ms: u64, half_life_ms: f64) {
    let mut current = cell.load(Ordering::Relaxed);
    loop {
        let next = pack(decayed(current, now_ms, half_life_ms) + 1.0, now_ms / 1000);
        match cell.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(seen) => current = seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_decay_by_half_per_half_life() {
        let a = Activity::new(60_000);
        let t = 1_000_000_000;
        for _ in 0..8 {
            a.posted(UserId(3), t);
        }
        assert!((a.post_rate(UserId(3), t) - 8.0).abs() < 1e-3);
        assert!((a.post_rate(UserId(3), t + 60_000) - 4.0).abs() < 1e-3);
        assert!((a.post_rate(UserId(3), t + 120_000) - 2.0).abs() < 1e-3);
        assert_eq!(a.post_rate(UserId(4), t), 0.0, "unknown users have no rate");
        assert_eq!(a.read_rate(UserId(3), t), 0.0);
    }

    #[test]
    fn reads_mark_activity_and_persist_at_most_once_per_period() {
        let a = Activity::new(60_000);
        let t = 5_000_000;
        assert!(a.inactive(UserId(9), Some(1000), t), "never read");
        assert!(!a.inactive(UserId(9), None, t), "no inactivity period");
        assert_eq!(a.read(UserId(9), t, 10_000), Some(t));
        assert!(!a.inactive(UserId(9), Some(1000), t + 1000));
        assert!(a.inactive(UserId(9), Some(1000), t + 1001));
        assert_eq!(
            a.read(UserId(9), t + 5_000, 10_000),
            None,
            "persisted recently"
        );
        assert_eq!(a.read(UserId(9), t + 10_000, 10_000), Some(t + 10_000));
        a.load_last_read(UserId(2000), 77);
        a.ensure(UserId(5));
        for _ in 0..3 {
            a.view().delivered(UserId(5));
        }
        assert!(!a.take_deliveries(UserId(5), 4));
        a.view().delivered(UserId(5));
        assert!(a.take_deliveries(UserId(5), 4));
        assert!(!a.take_deliveries(UserId(5), 1), "the count restarts");
        assert_eq!(a.last_read(UserId(2000)), 77, "tables grow");
    }
}
