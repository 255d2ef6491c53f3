//! The generator of time-ordered post ids, and the wall clock it reads.
//!
//! Posts themselves are read through the seam's `PostStore` (in
//! `starling-store`) and written as mutations; a post is never rewritten
//! except into its tombstone, which keeps the id and author and drops the
//! text.
//!
//! ```
//! use starling_log::PostIdGenerator;
//!
//! let ids = PostIdGenerator::new(3, None);
//! let a = ids.next_at(1_800_000_000_000);
//! let b = ids.next_at(1_700_000_000_000); // the clock stepped back
//! assert!(b > a);
//! ```

use parking_lot::Mutex;
use starling_core::{POST_ID_EPOCH_MS, PostId};

/// Hands out strictly increasing, time-ordered post ids for one node, even
/// when the wall clock steps back (it then borrows from the last id's
/// millisecond and sequence).
#[derive(Debug)]
pub struct PostIdGenerator {
    node: u16,
    last: Mutex<PostId>,
}

const SEQ_MASK: u64 = (1 << PostId::SEQUENCE_BITS) - 1;
const SHIFT: u32 = PostId::SEQUENCE_BITS + PostId::NODE_BITS;

impl PostIdGenerator {
    /// A generator for `node` whose ids all exceed `last` (the largest id
    /// already stored, from any node).
    pub fn new(node: u16, last: Option<PostId>) -> PostIdGenerator {
        PostIdGenerator {
            node: node & PostId::MAX_NODE,
            last: Mutex::new(last.unwrap_or(PostId(0))),
        }
    }

    /// The next id, reading the wall clock.
    pub fn next(&self) -> PostId {
        self.next_at(unix_millis())
    }

    /// The next id for a clock reading of `now_ms` (milliseconds since the
    /// Unix epoch).
    pub fn next_at(&self, now_ms: u64) -> PostId {
        let mut last = self.last.lock();
        let now = now_ms.saturating_sub(POST_ID_EPOCH_MS);
        let (last_ms, last_seq) = (last.0 >> SHIFT, last.0 & SEQ_MASK);
        let id = if now > last_ms {
            PostId::from_parts(now, self.node, 0)
        } else if last_seq < SEQ_MASK {
            // Same millisecond, or the clock went back: continue after `last`.
            let candidate = PostId::from_parts(last_ms, self.node, (last_seq + 1) as u16);
            if candidate > *last {
                candidate
            } else {
                // `last` came from a higher node in this millisecond.
                PostId::from_parts(last_ms + 1, self.node, 0)
            }
        } else {
            PostId::from_parts(last_ms + 1, self.node, 0)
        };
        *last = id;
        id
    }
}

/// Milliseconds since the Unix epoch by the wall clock (0 if it reads
/// before 1970).
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_whatever_the_clock_does() {
        let g = PostIdGenerator::new(7, None);
        let t = POST_ID_EPOCH_MS + 10_000;
        let clock = [t, t, t, t - 5_000, t + 1, t + 1, 0, t + 100];
        let mut prev = PostId(0);
        for now in clock {
            let id = g.next_at(now);
            assert!(id > prev, "{id:?} after {prev:?} at {now}");
            assert_eq!((id.0 >> 12) & 0x3ff, 7, "node bits are kept");
            prev = id;
        }
        assert_eq!(
            g.next_at(t + 100).unix_millis(),
            t + 100,
            "a fresh millisecond restarts the sequence"
        );
    }

    #[test]
    fn sequence_overflow_moves_to_the_next_millisecond() {
        let g = PostIdGenerator::new(0, None);
        let t = POST_ID_EPOCH_MS + 1;
        let mut prev = PostId(0);
        for _ in 0..5000 {
            let id = g.next_at(t);
            assert!(id > prev);
            prev = id;
        }
        assert_eq!(prev.unix_millis(), t + 1);
    }

    #[test]
    fn starts_after_the_last_stored_id_even_from_another_node() {
        let t = POST_ID_EPOCH_MS + 50;
        let stored = PostId::from_parts(50, 900, 3);
        let g = PostIdGenerator::new(1, Some(stored));
        assert!(g.next_at(t) > stored);
        assert!(g.next_at(t - 40) > stored);
    }
}
