//! Opaque cursors: arbitrary strings through `str::parse::<Cursor>()` and
//! arbitrary bytes through `Cursor::from_bytes`.
//!
//! Neither panics; a refusal is `Error::MalformedCursor`; whatever is
//! accepted prints back to exactly the input and parses to the same
//! cursor. Acceptance is compared with the format written out here on its
//! own: unpadded URL-safe base64 (canonical: no padding, no stray bits)
//! of version 1, then kind 1 with a u64 and a u32, kind 2 with a u64, or
//! kind 3 (a change-feed position) with a u64.

#![no_main]

use libfuzzer_sys::fuzz_target;
use starling_core::{Cursor, Error, PostId, UserId};

fuzz_target!(|data: &[u8]| {
    check_bytes(data);
    let text = String::from_utf8_lossy(data);
    check_str(&text);
    // The same bytes read as base64 text; when they are, the decoded
    // bytes are a cursor more often than raw input would be.
    if let Some(decoded) = base64url(&text) {
        check_bytes(&decoded);
    }
});

/// What the cursor bytes mean, by the format above.
#[derive(Debug, PartialEq, Eq)]
enum Expected {
    Timeline(u64, u32),
    Users(u64),
    Changes(u64),
}

fn expected(bytes: &[u8]) -> Option<Expected> {
    let be = |s: &[u8]| s.iter().fold(0u64, |a, &b| a << 8 | u64::from(b));
    match bytes {
        [1, 1, rest @ ..] if rest.len() == 12 => {
            Some(Expected::Timeline(be(&rest[..8]), be(&rest[8..]) as u32))
        }
        [1, 2, rest @ ..] if rest.len() == 8 => Some(Expected::Users(be(rest))),
        [1, 3, rest @ ..] if rest.len() == 8 => Some(Expected::Changes(be(rest))),
        _ => None,
    }
}

fn meaning(c: &Cursor) -> Expected {
    match (c.as_timeline(), c.as_users(), c.as_changes()) {
        (Ok((PostId(last), seen)), Err(_), Err(_)) => Expected::Timeline(last, seen),
        (Err(_), Ok(UserId(last)), Err(_)) => Expected::Users(last),
        (Err(_), Err(_), Ok(after)) => Expected::Changes(after),
        other => panic!("cursor {c:?} is not exactly one kind: {other:?}"),
    }
}

fn check_bytes(bytes: &[u8]) {
    match Cursor::from_bytes(bytes) {
        Ok(c) => {
            assert_eq!(
                Some(meaning(&c)),
                expected(bytes),
                "from_bytes accepted {bytes:?}"
            );
            assert_eq!(c.to_bytes(), bytes, "cursor bytes re-encode");
            let s = c.to_string();
            assert_eq!(
                s.parse::<Cursor>().ok(),
                Some(c),
                "cursor {s:?} parses back"
            );
        }
        Err(e) => {
            assert!(matches!(e, Error::MalformedCursor), "refusal is {e:?}");
            assert_eq!(expected(bytes), None, "from_bytes refused {bytes:?}");
        }
    }
}

fn check_str(s: &str) {
    let want = base64url(s).and_then(|b| expected(&b));
    match s.parse::<Cursor>() {
        Ok(c) => {
            assert_eq!(Some(meaning(&c)), want, "parse accepted {s:?}");
            assert_eq!(c.to_string(), s, "cursor string re-encodes");
            assert_eq!(c.to_string().parse::<Cursor>().ok(), Some(c));
            assert_eq!(Cursor::from_bytes(&c.to_bytes()).ok(), Some(c));
        }
        Err(e) => {
            assert!(matches!(e, Error::MalformedCursor), "refusal is {e:?}");
            assert_eq!(want, None, "parse refused {s:?}");
        }
    }
}

/// Strict unpadded URL-safe base64: `A-Z a-z 0-9 - _`, no `=`, length not
/// 1 mod 4, and the unused low bits of the last character zero.
fn base64url(s: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        }))
    }
    let chars = s.as_bytes();
    let mut out = Vec::with_capacity(chars.len() * 3 / 4);
    for chunk in chars.chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = acc << 6 | value(c)?;
        }
        match chunk.len() {
            4 => out.extend_from_slice(&acc.to_be_bytes()[1..]),
            3 => {
                // 18 bits: two bytes and two unused bits.
                if acc & 0b11 != 0 {
                    return None;
                }
                out.extend_from_slice(&(acc >> 2).to_be_bytes()[2..]);
            }
            2 => {
                // 12 bits: one byte and four unused bits.
                if acc & 0b1111 != 0 {
                    return None;
                }
                out.push((acc >> 4) as u8);
            }
            _ => return None,
        }
    }
    Some(out)
}
