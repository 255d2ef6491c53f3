//! Properties of the public API of `starling-sms` over generated inputs.

mod run;

use proptest::prelude::*;
use starling_core::{PostText, Username};
use starling_sms::{
    Command, Keyword, SMS_MAX_CHARS, device_text, fit_sms, parse, reply_for_invalid,
};

const MAX: usize = 280;

fn username() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_]{1,15}"
}

/// Any character but a control character, with spaces and newlines often.
fn text_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => any::<char>().prop_filter("not a control character", |c| !c.is_control()),
        2 => Just(' '),
        1 => Just('\n'),
        2 => proptest::char::range('a', 'z'),
    ]
}

/// Valid, trimmed post text of at most `MAX` characters.
fn valid_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(text_char(), 1..=MAX)
        .prop_map(|chars| chars.into_iter().collect::<String>().trim().to_owned())
        .prop_filter("not empty", |t| !t.is_empty())
}

/// Any text, with line breaks, other control characters and spaces often,
/// long enough to need a cut about half the time.
fn messy_text() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        3 => any::<char>(),
        2 => proptest::char::range('a', 'z'),
        1 => Just(' '),
        1 => proptest::sample::select(vec!['\n', '\r', '\t', '\u{7}', '\u{85}']),
    ];
    proptest::collection::vec(c, 0..320).prop_map(|chars| chars.into_iter().collect())
}

/// `word` with each ASCII letter's case chosen by `upper`.
fn recase(word: &str, upper: &[bool]) -> String {
    word.chars()
        .zip(upper.iter().copied().chain(std::iter::repeat(false)))
        .map(|(c, up)| {
            if up {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

fn keyword() -> impl Strategy<Value = Keyword> {
    proptest::sample::select(Keyword::ALL.to_vec())
}

/// Texts that look like commands more often than arbitrary strings do.
fn command_like() -> impl Strategy<Value = String> {
    (
        keyword(),
        proptest::collection::vec(any::<bool>(), 6),
        "[ \t\n@]{0,3}",
        any::<String>(),
    )
        .prop_map(|(k, upper, sep, rest)| format!("{}{sep}{rest}", recase(k.as_str(), &upper)))
}

/// The device text a post should give before any cut: each run of control
/// characters reads as one space. `author` is a valid username, so the text
/// never starts with a control character.
fn uncut_device_text(author: &str, text: &str) -> String {
    let full = format!("{author}: {}", text.trim());
    let pieces: Vec<&str> = full.split(char::is_control).collect();
    let mut out = pieces
        .iter()
        .filter(|piece| !piece.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    if pieces.last().is_some_and(|last| last.is_empty()) {
        out.push(' ');
    }
    out
}

proptest! {
    #[test]
    fn parse_never_panics(text in prop_oneof![any::<String>(), messy_text()], max in 0usize..400) {
        let command = parse(&text, max);
        if let Command::Invalid(reason) = &command {
            prop_assert!(!command.is_valid());
            prop_assert!(reply_for_invalid(reason).chars().count() <= SMS_MAX_CHARS);
        } else {
            prop_assert!(command.is_valid());
        }
    }

    #[test]
    fn parse_never_panics_on_command_like_texts(text in command_like()) {
        let command = parse(&text, MAX);
        if let Command::Invalid(reason) = &command {
            prop_assert!(reply_for_invalid(reason).chars().count() <= SMS_MAX_CHARS);
        }
    }

    #[test]
    fn surrounding_whitespace_is_ignored(
        text in any::<String>(),
        before in "[ \t\r\n\u{a0}\u{3000}]{0,4}",
        after in "[ \t\r\n\u{a0}\u{3000}]{0,4}",
    ) {
        prop_assert_eq!(parse(&format!("{before}{text}{after}"), MAX), parse(&text, MAX));
    }

    #[test]
    fn keyword_case_does_not_matter(
        k in keyword(),
        upper in proptest::collection::vec(any::<bool>(), 6),
        rest in any::<String>(),
    ) {
        let cased = recase(k.as_str(), &upper);
        prop_assert_eq!(
            parse(&format!("{cased} {rest}"), MAX),
            parse(&format!("{} {rest}", k.as_str()), MAX)
        );
    }

    #[test]
    fn direct_messages_round_trip(
        u in username(),
        t in valid_text(),
        upper_d in any::<bool>(),
        at in any::<bool>(),
    ) {
        let to = Username::parse(&u).expect("generated usernames are valid");
        prop_assert!(PostText::parse(&t, MAX).is_ok());
        let d = if upper_d { "D" } else { "d" };
        let at = if at { "@" } else { "" };
        prop_assert_eq!(
            parse(&format!("{d} {at}{u} {t}"), MAX),
            Command::Direct { to, text: t }
        );
    }

    #[test]
    fn one_user_commands_round_trip(
        k in proptest::sample::select(vec![Keyword::Follow, Keyword::Leave, Keyword::On, Keyword::Off]),
        upper in proptest::collection::vec(any::<bool>(), 6),
        u in username(),
        at in any::<bool>(),
    ) {
        let user = Username::parse(&u).expect("generated usernames are valid");
        let at = if at { "@" } else { "" };
        let got = parse(&format!("{} {at}{u}", recase(k.as_str(), &upper)), MAX);
        let expected = match k {
            Keyword::Follow => Command::Follow(user),
            Keyword::Leave => Command::Leave(user),
            Keyword::On => Command::On(user),
            _ => Command::Off(user),
        };
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn plain_texts_are_posts(t in valid_text()) {
        let first = t.split(char::is_whitespace).next().unwrap_or_default();
        prop_assume!(!Keyword::ALL.iter().any(|k| k.as_str().eq_ignore_ascii_case(first)));
        prop_assert_eq!(parse(&t, MAX), Command::Post(t.clone()));
    }

    #[test]
    fn device_text_fits_and_is_labelled(author in username(), text in messy_text()) {
        let got = device_text(&author, &text);
        let count = got.chars().count();
        prop_assert!(count <= SMS_MAX_CHARS, "{} characters", count);
        let label = format!("{author}: ");
        prop_assert!(got.starts_with(&label), "{:?} lacks {:?}", got, label);
        prop_assert!(!got.chars().any(char::is_control));
        let uncut = uncut_device_text(&author, &text);
        if uncut.chars().count() <= SMS_MAX_CHARS {
            prop_assert_eq!(got, uncut);
        } else {
            let kept = got.strip_suffix('…').expect("a cut text ends with an ellipsis");
            prop_assert!(uncut.starts_with(kept));
            prop_assert!(!kept.ends_with(char::is_whitespace));
        }
    }

    #[test]
    fn device_text_of_valid_posts(author in username(), text in valid_text()) {
        let got = device_text(&author, &text);
        prop_assert!(got.chars().count() <= SMS_MAX_CHARS);
        let label = format!("{author}: ");
        prop_assert!(got.starts_with(&label), "{:?} lacks {:?}", got, label);
        prop_assert!(!got.contains('\n'));
    }

    #[test]
    fn fit_sms_always_fits(text in messy_text()) {
        prop_assert!(fit_sms(&text).chars().count() <= SMS_MAX_CHARS);
    }
}
