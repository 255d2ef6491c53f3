//! Opaque page cursors.
//!
//! A cursor is a position, not an offset: it names the last item a page
//! returned, so pages stay stable while new items arrive at the head.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::{Error, PostId, Result, UserId};

/// An opaque position in a listing. Print it with `to_string()` and parse it
/// back with `str::parse`; a cursor from another kind of listing, or a
/// damaged one, is refused with [`Error::MalformedCursor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor(Inner);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Inner {
    Timeline { last: PostId, seen: u32 },
    Users { last: UserId },
    Changes { after: u64 },
}

impl Cursor {
    /// A timeline position: the last post returned, and how many entries
    /// the reader has been shown so far.
    pub fn timeline(last: PostId, seen: u32) -> Cursor {
        Cursor(Inner::Timeline { last, seen })
    }

    /// A user-list position: the last user returned.
    pub fn users(last: UserId) -> Cursor {
        Cursor(Inner::Users { last })
    }

    /// A change-feed position: the last record read (0 before every
    /// record).
    pub fn changes(after: u64) -> Cursor {
        Cursor(Inner::Changes { after })
    }

    /// The timeline position, or `MalformedCursor` for another kind.
    pub fn as_timeline(&self) -> Result<(PostId, u32)> {
        match self.0 {
            Inner::Timeline { last, seen } => Ok((last, seen)),
            _ => Err(Error::MalformedCursor),
        }
    }

    /// The user-list position, or `MalformedCursor` for another kind.
    pub fn as_users(&self) -> Result<UserId> {
        match self.0 {
            Inner::Users { last } => Ok(last),
            _ => Err(Error::MalformedCursor),
        }
    }

    /// The change-feed position, or `MalformedCursor` for another kind.
    pub fn as_changes(&self) -> Result<u64> {
        match self.0 {
            Inner::Changes { after } => Ok(after),
            _ => Err(Error::MalformedCursor),
        }
    }

    /// The cursor's bytes (laid out by [`crate::codec::cursor_bytes`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::codec::cursor_bytes(self)
    }

    /// Decodes [`Cursor::to_bytes`]; anything else is `MalformedCursor`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Cursor> {
        crate::codec::decode_cursor(bytes)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.to_bytes()))
    }
}

impl FromStr for Cursor {
    type Err = Error;

    fn from_str(s: &str) -> Result<Cursor> {
        // The longest cursor is 14 bytes, 19 characters encoded.
        if s.len() > 32 {
            return Err(Error::MalformedCursor);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| Error::MalformedCursor)?;
        Cursor::from_bytes(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn timeline_cursor_round_trips(last: u64, seen: u32) {
            let c = Cursor::timeline(PostId(last), seen);
            let back: Cursor = c.to_string().parse().expect("round trip");
            prop_assert_eq!(back.as_timeline().ok(), Some((PostId(last), seen)));
            prop_assert!(back.as_users().is_err());
        }

        #[test]
        fn users_cursor_round_trips(last: u64) {
            let c = Cursor::users(UserId(last));
            let back: Cursor = c.to_string().parse().expect("round trip");
            prop_assert_eq!(back.as_users().ok(), Some(UserId(last)));
            prop_assert!(back.as_timeline().is_err());
        }

        #[test]
        fn changes_cursor_round_trips(after: u64) {
            let c = Cursor::changes(after);
            let back: Cursor = c.to_string().parse().expect("round trip");
            prop_assert_eq!(back.as_changes().ok(), Some(after));
            prop_assert!(back.as_users().is_err());
            prop_assert!(back.as_timeline().is_err());
        }

        #[test]
        fn garbage_is_refused_or_decodes_to_a_valid_cursor(s in ".{0,40}") {
            if let Ok(c) = s.parse::<Cursor>() {
                // Whatever parsed re-encodes to itself.
                prop_assert_eq!(c.to_string().parse::<Cursor>().ok(), Some(c));
            }
        }
    }

    #[test]
    fn malformed_cursors_are_refused() {
        for bad in [
            "",
            "!!!!",
            "AQ",
            "AQEAAAAAAAAAAQ",
            "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
        ] {
            assert!(
                matches!(bad.parse::<Cursor>(), Err(Error::MalformedCursor)),
                "{bad}"
            );
        }
    }
}
