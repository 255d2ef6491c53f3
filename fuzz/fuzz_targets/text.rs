//! Validation: `Username::parse` and `PostText::parse` on arbitrary strings
//! never panic and accept exactly what their rules say. The rules are
//! written out again here, from their documentation, without calling the
//! standard library's character classes that the validators use:
//!
//! - A username is 1 to 15 ASCII letters, digits or underscores; its folded
//!   form is its ASCII lower case.
//! - Post text is refused as empty when it is only Unicode white space and
//!   the format characters that show nothing (U+200B to U+200D, U+2060 to
//!   U+2064, U+FEFF, U+180E, U+00AD), then refused when it holds a control character (general category Cc)
//!   other than newline, then refused as too long when it has more Unicode
//!   scalar values than the limit.

#![no_main]

use libfuzzer_sys::fuzz_target;
use starling_core::{Error, PostText, USERNAME_MAX_LEN, Username};

fuzz_target!(|data: &[u8]| {
    let Some((&limit, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    check_username(&text);
    // A small limit puts fuzzed texts near the boundary; the default too.
    for max in [usize::from(limit % 48), 280] {
        check_post_text(&text, max);
    }
});

fn username_rule(s: &str) -> bool {
    let len = s.chars().count();
    (1..=15).contains(&len)
        && s.chars()
            .all(|c| matches!(c, 'a'..='z' | 'A'..='Z' | '0'..='9' | '_'))
}

fn check_username(s: &str) {
    assert_eq!(USERNAME_MAX_LEN, 15);
    match Username::parse(s) {
        Ok(name) => {
            assert!(username_rule(s), "accepted username {s:?}");
            assert_eq!(name.as_str(), s);
            assert_eq!(name.to_string(), s);
            let folded: String = s
                .chars()
                .map(|c| match c {
                    'A'..='Z' => char::from(c as u8 - b'A' + b'a'),
                    c => c,
                })
                .collect();
            assert_eq!(name.folded(), folded, "folded form of {s:?}");
            // The folded form is itself a valid name that folds to itself.
            let again = Username::parse(&folded).expect("a folded name is valid");
            assert_eq!(again.folded(), folded);
        }
        Err(e) => {
            assert!(
                matches!(e, Error::InvalidUsername(_)),
                "username {s:?} refused with {e:?}"
            );
            assert!(!username_rule(s), "refused username {s:?}");
        }
    }
}

/// Unicode's White_Space property.
fn white_space(c: char) -> bool {
    matches!(
        c,
        '\u{9}'..='\u{d}'
            | ' '
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// The format characters that show nothing: zero-width space, non-joiner
/// and joiner, word joiner, the invisible operators, zero-width no-break
/// space (byte order mark), Mongolian vowel separator, soft hyphen.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{2061}' | '\u{2062}'
            | '\u{2063}' | '\u{2064}' | '\u{feff}' | '\u{180e}' | '\u{ad}'
    )
}

/// General category Cc.
fn control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Accepted,
    /// Empty (only white space and invisible characters) or holding a control character: both
    /// are `Error::InvalidText`, told apart only by the message.
    Invalid,
    TooLong {
        len: usize,
        max: usize,
    },
}

fn post_text_rule(s: &str, max: usize) -> Verdict {
    if s.chars().all(|c| white_space(c) || invisible(c)) {
        return Verdict::Invalid;
    }
    if s.chars().any(|c| control(c) && c != '\n') {
        return Verdict::Invalid;
    }
    let len = s.chars().count();
    if len > max {
        return Verdict::TooLong { len, max };
    }
    Verdict::Accepted
}

fn check_post_text(s: &str, max: usize) {
    let got = match PostText::parse(s, max) {
        Ok(t) => {
            assert_eq!(t.as_str(), s);
            assert_eq!(t.clone().into_string(), s);
            Verdict::Accepted
        }
        Err(Error::InvalidText(_)) => Verdict::Invalid,
        Err(Error::TextTooLong { len, max }) => Verdict::TooLong { len, max },
        Err(e) => panic!("post text {s:?} refused with {e:?}"),
    };
    assert_eq!(
        got,
        post_text_rule(s, max),
        "post text {s:?} with limit {max}"
    );
}
