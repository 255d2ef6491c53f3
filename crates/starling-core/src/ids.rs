//! Identifier newtypes.

use std::fmt;

/// Milliseconds since the Unix epoch at which post-id timestamps start
/// (2024-01-01T00:00:00Z). 41 bits of milliseconds last about 69 years.
pub const POST_ID_EPOCH_MS: u64 = 1_704_067_200_000;

/// A user's id: dense, assigned in creation order, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(pub u64);

/// A post's id: 64 bits, time-ordered.
///
/// Layout, most significant first: 41 bits of milliseconds since
/// [`POST_ID_EPOCH_MS`], 10 bits of node id, 12 bits of sequence. Id 0 is
/// never assigned; it stands for "before every post".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PostId(pub u64);

impl PostId {
    /// Bits of sequence number within one millisecond.
    pub const SEQUENCE_BITS: u32 = 12;
    /// Bits of node id.
    pub const NODE_BITS: u32 = 10;
    /// The largest node id.
    pub const MAX_NODE: u16 = (1 << Self::NODE_BITS) - 1;

    /// Builds an id from its parts; `node` is masked to [`Self::NODE_BITS`].
    pub fn from_parts(millis_since_epoch: u64, node: u16, sequence: u16) -> PostId {
        let node = u64::from(node & Self::MAX_NODE);
        let seq = u64::from(sequence) & ((1 << Self::SEQUENCE_BITS) - 1);
        PostId(
            (millis_since_epoch << (Self::NODE_BITS + Self::SEQUENCE_BITS))
                | (node << Self::SEQUENCE_BITS)
                | seq,
        )
    }

    /// Milliseconds since the Unix epoch encoded in the id.
    pub fn unix_millis(self) -> u64 {
        (self.0 >> (Self::NODE_BITS + Self::SEQUENCE_BITS)) + POST_ID_EPOCH_MS
    }
}

/// A group's id: dense, assigned in creation order, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub u64);

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for PostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_and_order_by_time_first() {
        let a = PostId::from_parts(1000, 5, 4095);
        let b = PostId::from_parts(1001, 0, 0);
        assert!(a < b);
        assert_eq!(a.unix_millis(), 1000 + POST_ID_EPOCH_MS);
        assert_eq!(a.0 & 0xfff, 4095);
        assert_eq!((a.0 >> 12) & 0x3ff, 5);
    }
}
