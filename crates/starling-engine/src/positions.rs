//! Positions of the change feed: minted in order, and the *horizon* below
//! which every position is settled.
//!
//! A position is minted for each change record of a batch just before the
//! batch is applied, and the batch is *in flight* until its write returns.
//! Batches are applied concurrently (so synced writes still share one
//! fsync), which means a batch with a larger position may be stored before
//! one with a smaller. A reader therefore reads only below the horizon:
//! the smallest position still in flight, or the next one to mint when
//! none is. Every position below it is stored or never will be, so a
//! reader that moved past position `n` never meets a record below `n`
//! later.
//!
//! Positions are `max(last + 1, now_ms << CHANGE_POSITION_SEQUENCE_BITS)`:
//! they grow across restarts (counting on from the largest stored), and
//! stay above what a reader saw even when the store lost its newest
//! buffered writes, as long as the clock has moved on since.

use std::collections::BTreeSet;

use parking_lot::Mutex;
use starling_core::CHANGE_POSITION_SEQUENCE_BITS;

/// Minted positions, the batches in flight and the trim schedule.
pub(crate) struct Positions {
    inner: Mutex<Inner>,
}

struct Inner {
    /// The largest position minted (or stored, on open).
    last: u64,
    /// The first position of each batch in flight.
    in_flight: BTreeSet<u64>,
    /// The newest position trimmed (asked for, in this process).
    floor: u64,
    /// When a trim was last added to a batch (ms since the Unix epoch).
    trimmed_at_ms: u64,
}

/// The positions of one batch: `first .. first + count`, and the trim the
/// batch carries, if any. Hand it back to [`Positions::settled`] once the
/// write returned, whatever its outcome.
pub(crate) struct Minted {
    pub(crate) first: u64,
    pub(crate) trim: Option<u64>,
}

impl Positions {
    /// Positions after `last` (the largest stored), with the feed's
    /// stored `floor`.
    pub(crate) fn new(last: u64, floor: u64) -> Positions {
        Positions {
            inner: Mutex::new(Inner {
                last,
                in_flight: BTreeSet::new(),
                floor,
                trimmed_at_ms: 0,
            }),
        }
    }

    /// Mints `count` (at least 1) positions for a batch written now, and
    /// marks it in flight. Every `retention_ms / 4` (at most once a
    /// minute, at least once a millisecond) the batch also trims what is
    /// older than `retention_ms`, never at or above the horizon.
    pub(crate) fn mint(&self, count: u64, now_ms: u64, retention_ms: u64) -> Minted {
        let mut inner = self.inner.lock();
        let first = inner
            .last
            .saturating_add(1)
            .max(now_ms << CHANGE_POSITION_SEQUENCE_BITS);
        // Below this batch, every position is settled but those in flight.
        let horizon = inner.in_flight.first().copied().unwrap_or(first);
        inner.last = first.saturating_add(count - 1);
        inner.in_flight.insert(first);
        let every = (retention_ms / 4).clamp(1, 60_000);
        let mut trim = None;
        if now_ms.saturating_sub(inner.trimmed_at_ms) >= every {
            inner.trimmed_at_ms = now_ms;
            let old = now_ms.saturating_sub(retention_ms);
            let through = ((old + 1) << CHANGE_POSITION_SEQUENCE_BITS)
                .saturating_sub(1)
                .min(horizon.saturating_sub(1));
            if old > 0 && through > inner.floor {
                inner.floor = through;
                trim = Some(through);
            }
        }
        Minted { first, trim }
    }

    /// The batch that minted `minted` is written (or failed): it is no
    /// longer in flight.
    pub(crate) fn settled(&self, minted: &Minted) {
        self.inner.lock().in_flight.remove(&minted.first);
    }

    /// Every position below this is stored or never will be, read at
    /// `now_ms`. With no batch in flight it is the clock's position (or
    /// the next one after the last minted, if larger), and positions
    /// minted later are above it even if the clock steps back: so a reader
    /// of a quiet feed moves up to the present and does not fall behind
    /// the retention.
    pub(crate) fn horizon(&self, now_ms: u64) -> u64 {
        let mut inner = self.inner.lock();
        match inner.in_flight.first() {
            Some(&first) => first,
            None => {
                let h = inner
                    .last
                    .saturating_add(1)
                    .max(now_ms << CHANGE_POSITION_SEQUENCE_BITS);
                inner.last = h - 1;
                h
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1 << CHANGE_POSITION_SEQUENCE_BITS;

    #[test]
    fn positions_grow_and_follow_the_clock() {
        let p = Positions::new(0, 0);
        let a = p.mint(1, 5, u64::MAX);
        assert_eq!(a.first, 5 * MS);
        p.settled(&a);
        // The clock stepped back: counting on.
        let b = p.mint(2, 3, u64::MAX);
        assert_eq!(b.first, 5 * MS + 1);
        p.settled(&b);
        let c = p.mint(1, 3, u64::MAX);
        assert_eq!(c.first, 5 * MS + 3);
        p.settled(&c);
        // After a reopen over a store whose last record is ahead.
        let p = Positions::new(9 * MS, 0);
        assert_eq!(p.mint(1, 7, u64::MAX).first, 9 * MS + 1);
    }

    #[test]
    fn the_horizon_stops_below_the_oldest_batch_in_flight() {
        let p = Positions::new(0, 0);
        let a = p.mint(1, 10, u64::MAX);
        let b = p.mint(3, 10, u64::MAX);
        assert_eq!(p.horizon(10), a.first);
        // The later batch is stored first: still not readable.
        p.settled(&b);
        assert_eq!(p.horizon(10), a.first);
        p.settled(&a);
        assert_eq!(p.horizon(10), b.first + 3);
        // A quiet feed's horizon is the clock's, and binds later positions
        // even when the clock steps back.
        assert_eq!(p.horizon(20), 20 * MS);
        assert_eq!(p.mint(1, 15, u64::MAX).first, 20 * MS);
    }

    #[test]
    fn trims_keep_the_retention_and_stay_below_the_horizon() {
        let p = Positions::new(0, 0);
        let a = p.mint(1, 1_000, 100);
        // The first batch trims what is older than 100 ms: nothing stored
        // is, and the trim stays below this batch.
        assert_eq!(a.trim, Some(901 * MS - 1));
        p.settled(&a);
        // Not again before a quarter of the retention has passed.
        let b = p.mint(1, 1_010, 100);
        assert_eq!(b.trim, None);
        p.settled(&b);
        let held = p.mint(1, 1_020, 100);
        // A batch minted at 1,020 ms is in flight: a trim at 2,000 ms
        // stops below it.
        let c = p.mint(1, 2_000, 100);
        assert_eq!(c.trim, Some(held.first - 1));
        p.settled(&c);
        p.settled(&held);
        let d = p.mint(1, 3_000, 100);
        assert_eq!(d.trim, Some(2_901 * MS - 1));
    }
}
