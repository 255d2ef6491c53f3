//! Incoming texts: commands from a linked phone.

use std::fmt;

use starling_core::{Error, PostText, QuietHours, Username, is_invisible};

use starling_core::fit_sms;

/// What a text from a linked phone asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Any text that is not a command: post it. The text is trimmed and
    /// valid post text.
    Post(String),
    /// `D user text`: send `text` to `to` as a direct message.
    Direct {
        /// The recipient, as typed (without `@`).
        to: Username,
        /// The message, valid post text.
        text: String,
    },
    /// `FOLLOW user`: follow `user` and turn their texts on (a protected
    /// account gets a follow request instead).
    Follow(Username),
    /// `LEAVE user`: turn `user`'s texts off, keep following.
    Leave(Username),
    /// `UNFOLLOW user`: stop following `user`.
    Unfollow(Username),
    /// `ON user`: turn device updates on for a followed account.
    On(Username),
    /// `OFF user`: turn device updates off for a followed account.
    Off(Username),
    /// `ON` alone: turn all device updates back on.
    AllOn,
    /// `OFF` alone: turn all device updates off.
    AllOff,
    /// `GET user`: reply with their latest post.
    Get(Username),
    /// `WHOIS user`: reply with their profile.
    Whois(Username),
    /// `STATS`: reply with the sender's counts.
    Stats,
    /// `FAV user`: like their latest post.
    Fav(Username),
    /// `BLOCK user`.
    Block(Username),
    /// `UNBLOCK user`.
    Unblock(Username),
    /// `SLEEP start end [offset]`: texts wait in the outbox from hour
    /// `start` to hour `end` (0 to 23) in the UTC offset given (`+1`,
    /// `-5`, `+5:30`), or else the one set before (UTC at first).
    Sleep {
        /// The first quiet hour.
        start: u8,
        /// The first hour texts go out again.
        end: u8,
        /// The UTC offset in minutes, when given.
        offset_minutes: Option<i16>,
    },
    /// `WAKE`: no more quiet hours.
    Wake,
    /// `STOP`: pause all device updates (the carriers' word).
    Stop,
    /// `START`: resume device updates.
    Start,
    /// `HELP`: reply with [`help_text`].
    Help,
    /// Nothing to do: the text is empty, a malformed command or an invalid
    /// post. Reply with [`reply_for_invalid`].
    Invalid(Reason),
}

impl Command {
    /// Whether the command is anything but [`Command::Invalid`].
    pub fn is_valid(&self) -> bool {
        !matches!(self, Command::Invalid(_))
    }
}

/// A command word. A text whose first word is one of these (in any case) is
/// that command or [`Command::Invalid`], never a post.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Keyword {
    /// `D user text`.
    D,
    /// `FOLLOW user`.
    Follow,
    /// `LEAVE user`.
    Leave,
    /// `UNFOLLOW user`.
    Unfollow,
    /// `ON` or `ON user`.
    On,
    /// `OFF` or `OFF user`.
    Off,
    /// `GET user`.
    Get,
    /// `WHOIS user`.
    Whois,
    /// `STATS`.
    Stats,
    /// `FAV user`.
    Fav,
    /// `BLOCK user`.
    Block,
    /// `UNBLOCK user`.
    Unblock,
    /// `SLEEP start end [offset]`.
    Sleep,
    /// `WAKE`.
    Wake,
    /// `STOP`.
    Stop,
    /// `START`.
    Start,
    /// `HELP`.
    Help,
}

impl Keyword {
    /// Every keyword.
    pub const ALL: [Keyword; 17] = [
        Keyword::D,
        Keyword::Follow,
        Keyword::Leave,
        Keyword::Unfollow,
        Keyword::On,
        Keyword::Off,
        Keyword::Get,
        Keyword::Whois,
        Keyword::Stats,
        Keyword::Fav,
        Keyword::Block,
        Keyword::Unblock,
        Keyword::Sleep,
        Keyword::Wake,
        Keyword::Stop,
        Keyword::Start,
        Keyword::Help,
    ];

    /// The keyword as written in help texts (upper case).
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::D => "D",
            Keyword::Follow => "FOLLOW",
            Keyword::Leave => "LEAVE",
            Keyword::Unfollow => "UNFOLLOW",
            Keyword::On => "ON",
            Keyword::Off => "OFF",
            Keyword::Get => "GET",
            Keyword::Whois => "WHOIS",
            Keyword::Stats => "STATS",
            Keyword::Fav => "FAV",
            Keyword::Block => "BLOCK",
            Keyword::Unblock => "UNBLOCK",
            Keyword::Sleep => "SLEEP",
            Keyword::Wake => "WAKE",
            Keyword::Stop => "STOP",
            Keyword::Start => "START",
            Keyword::Help => "HELP",
        }
    }

    /// The keyword `word` is, compared whole and without regard to ASCII case.
    fn from_word(word: &str) -> Option<Keyword> {
        Keyword::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for Keyword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a text was refused. Its `Display` is the short reason sent back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The text was empty or only whitespace.
    Empty,
    /// A keyword that needs a username came without one (`FOLLOW`, `D`).
    MissingUsername(Keyword),
    /// The username after a keyword breaks the username rules.
    InvalidUsername {
        /// The command it was given to.
        keyword: Keyword,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Words after a command that takes no more (`FOLLOW two words`,
    /// `STOP now`).
    UnexpectedWords(Keyword),
    /// `D user` without a message.
    MissingText,
    /// The post or message is longer than the limit.
    TooLong {
        /// Characters in the text.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The post or message holds a character that is not allowed.
    InvalidText(&'static str),
    /// `SLEEP` without two hours (0 to 23, different) and a valid offset.
    InvalidHours(&'static str),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Empty => f.write_str("Empty text."),
            Reason::MissingUsername(Keyword::D) => f.write_str("D needs a username and a message."),
            Reason::MissingUsername(k) => write!(f, "{k} needs a username."),
            Reason::InvalidUsername { keyword, why } => {
                write!(f, "{keyword}: invalid username, {why}.")
            }
            Reason::UnexpectedWords(Keyword::D) => f.write_str("D takes a username and a message."),
            Reason::UnexpectedWords(
                k @ (Keyword::Follow
                | Keyword::Leave
                | Keyword::Unfollow
                | Keyword::On
                | Keyword::Off
                | Keyword::Get
                | Keyword::Whois
                | Keyword::Fav
                | Keyword::Block
                | Keyword::Unblock),
            ) => write!(f, "{k} takes one username only."),
            Reason::UnexpectedWords(k) => write!(f, "{k} takes nothing after it."),
            Reason::MissingText => f.write_str("D needs a message after the username."),
            Reason::TooLong { len, max } => {
                write!(f, "Too long: {len} characters, the limit is {max}.")
            }
            Reason::InvalidText(why) => write!(f, "Not sent: {why}."),
            Reason::InvalidHours(why) => {
                write!(f, "SLEEP start end [offset], as in SLEEP 22 7 +1: {why}.")
            }
        }
    }
}

/// Reads a text from a linked phone. Never panics.
///
/// See the [crate documentation](crate) for the rules; `max_post_chars` is
/// the limit, in characters, for posts and direct messages alike.
pub fn parse(text: &str, max_post_chars: usize) -> Command {
    let text = text.trim();
    // Invisible characters alone (a zero-width space...) are empty too.
    if text.chars().all(is_invisible) {
        return Command::Invalid(Reason::Empty);
    }
    let (first, rest) = split_word(text);
    let Some(keyword) = Keyword::from_word(first) else {
        return match PostText::parse(text, max_post_chars) {
            Ok(post) => Command::Post(post.into_string()),
            Err(e) => Command::Invalid(text_reason(e)),
        };
    };
    match parse_args(keyword, rest, max_post_chars) {
        Ok(command) => command,
        Err(reason) => Command::Invalid(reason),
    }
}

/// The arguments of `keyword`; `rest` is trimmed.
fn parse_args(keyword: Keyword, rest: &str, max_post_chars: usize) -> Result<Command, Reason> {
    let no_more = |rest: &str| {
        if rest.is_empty() {
            Ok(())
        } else {
            Err(Reason::UnexpectedWords(keyword))
        }
    };
    let command = match keyword {
        Keyword::Stop => no_more(rest).map(|()| Command::Stop)?,
        Keyword::Start => no_more(rest).map(|()| Command::Start)?,
        Keyword::Help => no_more(rest).map(|()| Command::Help)?,
        Keyword::Stats => no_more(rest).map(|()| Command::Stats)?,
        Keyword::Wake => no_more(rest).map(|()| Command::Wake)?,
        Keyword::Sleep => sleep(rest)?,
        Keyword::On if rest.is_empty() => Command::AllOn,
        Keyword::Off if rest.is_empty() => Command::AllOff,
        Keyword::D => {
            let (name, message) = split_word(rest);
            let to = username(keyword, name)?;
            if message.chars().all(is_invisible) {
                return Err(Reason::MissingText);
            }
            let text = PostText::parse(message, max_post_chars).map_err(text_reason)?;
            Command::Direct {
                to,
                text: text.into_string(),
            }
        }
        Keyword::Follow
        | Keyword::Leave
        | Keyword::Unfollow
        | Keyword::On
        | Keyword::Off
        | Keyword::Get
        | Keyword::Whois
        | Keyword::Fav
        | Keyword::Block
        | Keyword::Unblock => {
            let (name, more) = split_word(rest);
            let user = username(keyword, name)?;
            no_more(more)?;
            match keyword {
                Keyword::Follow => Command::Follow(user),
                Keyword::Leave => Command::Leave(user),
                Keyword::Unfollow => Command::Unfollow(user),
                Keyword::On => Command::On(user),
                Keyword::Off => Command::Off(user),
                Keyword::Get => Command::Get(user),
                Keyword::Whois => Command::Whois(user),
                Keyword::Fav => Command::Fav(user),
                Keyword::Block => Command::Block(user),
                _ => Command::Unblock(user),
            }
        }
    };
    Ok(command)
}

/// The arguments of `SLEEP`: two hours and an optional UTC offset.
fn sleep(rest: &str) -> Result<Command, Reason> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let hour = |w: &str| {
        w.parse::<u8>()
            .ok()
            .filter(|h| *h < 24 && w.len() <= 2)
            .ok_or(Reason::InvalidHours("hours are 0 to 23"))
    };
    let (start, end, offset) = match words[..] {
        [start, end] => (hour(start)?, hour(end)?, None),
        [start, end, offset] => (hour(start)?, hour(end)?, Some(utc_offset(offset)?)),
        _ => return Err(Reason::InvalidHours("give two hours")),
    };
    QuietHours::new(start, end, offset.unwrap_or(0)).map_err(|e| {
        Reason::InvalidHours(match e {
            Error::InvalidProfile(why) => why,
            _ => "not valid hours",
        })
    })?;
    Ok(Command::Sleep {
        start,
        end,
        offset_minutes: offset,
    })
}

/// A UTC offset as typed: `+1`, `-5`, `+5:30`, `0`.
fn utc_offset(word: &str) -> Result<i16, Reason> {
    let bad = Reason::InvalidHours("an offset is like +1, -5 or +5:30");
    let (sign, digits) = match word.as_bytes().first() {
        Some(b'+') => (1, &word[1..]),
        Some(b'-') => (-1, &word[1..]),
        _ => (1, word),
    };
    let (hours, minutes) = digits.split_once(':').unwrap_or((digits, "0"));
    let num = |t: &str| {
        (!t.is_empty() && t.len() <= 2 && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse::<i16>().ok())
            .flatten()
    };
    match (num(hours), num(minutes)) {
        (Some(h), Some(m)) if h <= 14 && m < 60 => Ok(sign * (h * 60 + m)),
        _ => Err(bad),
    }
}

/// The first word of a trimmed text and the rest, trimmed.
fn split_word(text: &str) -> (&str, &str) {
    match text.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim_start()),
        None => (text, ""),
    }
}

/// A username after `keyword`, with one optional leading `@`.
fn username(keyword: Keyword, word: &str) -> Result<Username, Reason> {
    if word.is_empty() {
        return Err(Reason::MissingUsername(keyword));
    }
    let name = word.strip_prefix('@').unwrap_or(word);
    Username::parse(name).map_err(|e| Reason::InvalidUsername {
        keyword,
        why: match e {
            Error::InvalidUsername(why) => why,
            _ => "not a username",
        },
    })
}

/// The reason for a text that [`PostText`] refused.
fn text_reason(error: Error) -> Reason {
    match error {
        Error::TextTooLong { len, max } => Reason::TooLong { len, max },
        Error::InvalidText(why) => Reason::InvalidText(why),
        _ => Reason::InvalidText("not valid text"),
    }
}

/// The reply to `HELP`: every command, in one SMS.
pub fn help_text() -> &'static str {
    "D user msg; FOLLOW LEAVE UNFOLLOW GET WHOIS FAV BLOCK UNBLOCK user; ON OFF [user]; \
     STATS STOP START SLEEP WAKE HELP"
}

/// The reply to [`Command::Invalid`]: the reason, then [`help_text`], fitted
/// into one SMS (cut with `…` when both do not fit).
pub fn reply_for_invalid(reason: &Reason) -> String {
    fit_sms(&format!("{reason} {}", help_text()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SMS_MAX_CHARS;

    const MAX: usize = 280;

    fn check(input: &str, expected: Command) {
        assert_eq!(parse(input, MAX), expected, "parse({input:?})");
    }

    fn check_all(cases: &[(&str, Command)]) {
        for (input, expected) in cases {
            check(input, expected.clone());
        }
    }

    fn name(raw: &str) -> Username {
        Username::parse(raw).expect("test usernames are valid")
    }

    fn post(text: &str) -> Command {
        Command::Post(text.to_owned())
    }

    fn direct(to: &str, text: &str) -> Command {
        Command::Direct {
            to: name(to),
            text: text.to_owned(),
        }
    }

    fn invalid(reason: Reason) -> Command {
        Command::Invalid(reason)
    }

    fn bad_name(keyword: Keyword, raw: &str) -> Command {
        let Err(Error::InvalidUsername(why)) = Username::parse(raw) else {
            panic!("{raw:?} is meant to be an invalid username");
        };
        invalid(Reason::InvalidUsername { keyword, why })
    }

    #[test]
    fn every_command() {
        check_all(&[
            ("D bob see you at 8", direct("bob", "see you at 8")),
            ("FOLLOW alice", Command::Follow(name("alice"))),
            ("LEAVE alice", Command::Leave(name("alice"))),
            ("ON alice", Command::On(name("alice"))),
            ("OFF alice", Command::Off(name("alice"))),
            ("UNFOLLOW alice", Command::Unfollow(name("alice"))),
            ("ON", Command::AllOn),
            ("off", Command::AllOff),
            ("GET alice", Command::Get(name("alice"))),
            ("whois @alice", Command::Whois(name("alice"))),
            ("fav @alice", Command::Fav(name("alice"))),
            ("STATS", Command::Stats),
            ("BLOCK alice", Command::Block(name("alice"))),
            ("UNBLOCK alice", Command::Unblock(name("alice"))),
            (
                "SLEEP 22 7",
                Command::Sleep {
                    start: 22,
                    end: 7,
                    offset_minutes: None,
                },
            ),
            (
                "sleep 23 6 -5",
                Command::Sleep {
                    start: 23,
                    end: 6,
                    offset_minutes: Some(-300),
                },
            ),
            (
                "SLEEP 0 8 +5:30",
                Command::Sleep {
                    start: 0,
                    end: 8,
                    offset_minutes: Some(330),
                },
            ),
            ("WAKE", Command::Wake),
            ("STOP", Command::Stop),
            ("START", Command::Start),
            ("HELP", Command::Help),
            ("just landed", post("just landed")),
        ]);
    }

    #[test]
    fn keywords_ignore_case_usernames_keep_it() {
        check_all(&[
            ("d bob hi", direct("bob", "hi")),
            ("follow Alice", Command::Follow(name("Alice"))),
            ("Follow ALICE", Command::Follow(name("ALICE"))),
            ("fOlLoW alice", Command::Follow(name("alice"))),
            ("leave Alice", Command::Leave(name("Alice"))),
            ("on alice", Command::On(name("alice"))),
            ("oN alice", Command::On(name("alice"))),
            ("off alice", Command::Off(name("alice"))),
            ("Off alice", Command::Off(name("alice"))),
            ("stop", Command::Stop),
            ("Stop", Command::Stop),
            ("start", Command::Start),
            ("sTaRt", Command::Start),
            ("help", Command::Help),
            ("Help", Command::Help),
        ]);
        // Only ASCII case is folded: neither a long s (upper case "S") nor
        // full-width letters make a keyword.
        check("\u{17f}top", post("\u{17f}top"));
        check(
            "\u{ff26}\u{ff2f}\u{ff2c}\u{ff2c}\u{ff2f}\u{ff37} alice",
            post("\u{ff26}\u{ff2f}\u{ff2c}\u{ff2c}\u{ff2f}\u{ff37} alice"),
        );
    }

    #[test]
    fn message_text_keeps_its_case_and_inner_whitespace() {
        check_all(&[
            ("D bob FOLLOW me", direct("bob", "FOLLOW me")),
            ("D bob D bob hi", direct("bob", "D bob hi")),
            ("D bob two  spaces", direct("bob", "two  spaces")),
            (
                "D bob line one\nline two",
                direct("bob", "line one\nline two"),
            ),
            ("D bob STOP", direct("bob", "STOP")),
        ]);
    }

    #[test]
    fn an_at_sign_before_a_username_is_accepted() {
        check_all(&[
            ("D @bob hi", direct("bob", "hi")),
            ("FOLLOW @alice", Command::Follow(name("alice"))),
            ("LEAVE @alice", Command::Leave(name("alice"))),
            ("ON @Alice", Command::On(name("Alice"))),
            ("OFF @alice", Command::Off(name("alice"))),
            // One '@' only; '@' alone is no name.
            ("FOLLOW @@alice", bad_name(Keyword::Follow, "@alice")),
            ("FOLLOW @", bad_name(Keyword::Follow, "")),
            ("D @ hi", bad_name(Keyword::D, "")),
            // A text starting with a mention is a post.
            ("@alice congrats!", post("@alice congrats!")),
        ]);
    }

    #[test]
    fn whitespace_around_and_between_words() {
        check_all(&[
            ("  FOLLOW alice  ", Command::Follow(name("alice"))),
            ("\tFOLLOW\t\talice\n", Command::Follow(name("alice"))),
            ("FOLLOW   alice", Command::Follow(name("alice"))),
            ("FOLLOW\nalice", Command::Follow(name("alice"))),
            // Non-breaking and ideographic spaces separate words too.
            ("FOLLOW\u{a0}alice", Command::Follow(name("alice"))),
            ("FOLLOW\u{3000}alice", Command::Follow(name("alice"))),
            ("  STOP \r\n", Command::Stop),
            ("D   bob    hi there  ", direct("bob", "hi there")),
            ("D bob\nhi", direct("bob", "hi")),
            ("  hello world \n", post("hello world")),
        ]);
        // A zero-width space is not whitespace: one word, so a post.
        check("FOLLOW\u{200b}alice", post("FOLLOW\u{200b}alice"));
    }

    #[test]
    fn malformed_commands_are_invalid_not_posts() {
        use Keyword::*;
        check_all(&[
            ("D", invalid(Reason::MissingUsername(D))),
            ("d   ", invalid(Reason::MissingUsername(D))),
            ("D bob", invalid(Reason::MissingText)),
            ("D bob   ", invalid(Reason::MissingText)),
            ("D not-a-name hi", bad_name(D, "not-a-name")),
            ("D sixteen_chars_xx hi", bad_name(D, "sixteen_chars_xx")),
            ("FOLLOW", invalid(Reason::MissingUsername(Follow))),
            ("FOLLOW two words", invalid(Reason::UnexpectedWords(Follow))),
            ("FOLLOW not-a-name", bad_name(Follow, "not-a-name")),
            ("FOLLOW émile", bad_name(Follow, "émile")),
            // The name is read before the extra words.
            ("FOLLOW bad.name more", bad_name(Follow, "bad.name")),
            ("LEAVE", invalid(Reason::MissingUsername(Leave))),
            ("LEAVE a b", invalid(Reason::UnexpectedWords(Leave))),
            ("LEAVE a.b", bad_name(Leave, "a.b")),
            ("ON", Command::AllOn),
            ("ON not-a-name", bad_name(On, "not-a-name")),
            ("on my way home", invalid(Reason::UnexpectedWords(On))),
            ("OFF", Command::AllOff),
            ("UNFOLLOW", invalid(Reason::MissingUsername(Unfollow))),
            ("GET a b", invalid(Reason::UnexpectedWords(Get))),
            ("WHOIS", invalid(Reason::MissingUsername(Whois))),
            ("FAV", invalid(Reason::MissingUsername(Fav))),
            ("FAV a b", invalid(Reason::UnexpectedWords(Fav))),
            ("STATS please", invalid(Reason::UnexpectedWords(Stats))),
            ("BLOCK a.b", bad_name(Block, "a.b")),
            ("UNBLOCK", invalid(Reason::MissingUsername(Unblock))),
            ("WAKE up", invalid(Reason::UnexpectedWords(Wake))),
            ("OFF alice bob", invalid(Reason::UnexpectedWords(Off))),
            ("OFF al!ce", bad_name(Off, "al!ce")),
            ("STOP now", invalid(Reason::UnexpectedWords(Stop))),
            (
                "START again please",
                invalid(Reason::UnexpectedWords(Start)),
            ),
            ("help me", invalid(Reason::UnexpectedWords(Help))),
        ]);
    }

    #[test]
    fn only_the_whole_first_word_is_a_keyword() {
        check_all(&[
            ("Donuts are great", post("Donuts are great")),
            ("D@bob hi", post("D@bob hi")),
            ("D.bob hi", post("D.bob hi")),
            ("Dbob hi", post("Dbob hi")),
            ("FOLLOWING the game", post("FOLLOWING the game")),
            ("FOLLOW-up tomorrow", post("FOLLOW-up tomorrow")),
            ("Leaves are falling", post("Leaves are falling")),
            ("Once upon a time", post("Once upon a time")),
            ("Offline for a while", post("Offline for a while")),
            ("Stop!", post("Stop!")),
            ("Starting now", post("Starting now")),
            ("Help!!", post("Help!!")),
            ("helpful tip", post("helpful tip")),
            ("I said FOLLOW alice", post("I said FOLLOW alice")),
        ]);
    }

    #[test]
    fn posts_are_validated() {
        check_all(&[
            ("", invalid(Reason::Empty)),
            ("   ", invalid(Reason::Empty)),
            ("\n\t\r\n", invalid(Reason::Empty)),
            ("\u{200B}", invalid(Reason::Empty)),
            (" \u{FEFF}\u{2060}\u{200C}\u{200D} ", invalid(Reason::Empty)),
            ("D bob \u{200B}", invalid(Reason::MissingText)),
            ("line one\nline two", post("line one\nline two")),
        ]);
        for bad in [
            "tab\there",
            "bell\u{7}",
            "nul\0 byte",
            "cr\r\nlf",
            "del\u{7f}",
        ] {
            let got = parse(bad, MAX);
            assert!(
                matches!(got, Command::Invalid(Reason::InvalidText(_))),
                "parse({bad:?}) = {got:?}"
            );
        }
        // The same rules hold for direct messages.
        let got = parse("D bob tab\there", MAX);
        assert!(
            matches!(got, Command::Invalid(Reason::InvalidText(_))),
            "{got:?}"
        );
    }

    #[test]
    fn length_limit_is_in_characters() {
        for unit in ["a", "é", "日", "🐦"] {
            let fits = unit.repeat(MAX);
            check(&fits, post(&fits));
            check(&format!("D bob {fits}"), direct("bob", &fits));
            let over = unit.repeat(MAX + 1);
            let too_long = invalid(Reason::TooLong {
                len: MAX + 1,
                max: MAX,
            });
            check(&over, too_long.clone());
            check(&format!("D bob {over}"), too_long);
        }
        // Surrounding whitespace does not count.
        let fits = "x".repeat(MAX);
        check(&format!("   {fits}\n\n"), post(&fits));
        // The limit is the caller's.
        assert_eq!(parse("hello", 5), post("hello"));
        assert_eq!(
            parse("hello!", 5),
            invalid(Reason::TooLong { len: 6, max: 5 })
        );
        assert_eq!(
            parse("D bob hello!", 5),
            invalid(Reason::TooLong { len: 6, max: 5 })
        );
    }

    #[test]
    fn unicode_posts_and_names() {
        check_all(&[
            ("café au lait ☕", post("café au lait ☕")),
            ("D bob 日本語で", direct("bob", "日本語で")),
            ("ON 日本", bad_name(Keyword::On, "日本")),
            ("🐦 tweet", post("🐦 tweet")),
        ]);
    }

    #[test]
    fn is_valid_is_false_only_for_invalid() {
        for (input, valid) in [
            ("hello", true),
            ("D bob hi", true),
            ("FOLLOW a", true),
            ("STOP", true),
            ("HELP", true),
            ("FOLLOW", false),
            ("", false),
        ] {
            assert_eq!(parse(input, MAX).is_valid(), valid, "{input:?}");
        }
    }

    #[test]
    fn bad_sleep_hours_are_invalid() {
        for bad in [
            "SLEEP",
            "SLEEP 22",
            "SLEEP 24 7",
            "SLEEP 7 7",
            "SLEEP 22 7 +15",
            "SLEEP 22 7 +5:07",
            "SLEEP 22 7 abc",
            "SLEEP -1 7",
            "SLEEP 022 7",
            "SLEEP 22 7 +1 more",
        ] {
            let got = parse(bad, MAX);
            assert!(
                matches!(got, Command::Invalid(Reason::InvalidHours(_))),
                "parse({bad:?}) = {got:?}"
            );
            let reply = reply_for_invalid(&match got {
                Command::Invalid(r) => r,
                _ => unreachable!(),
            });
            assert!(reply.chars().count() <= SMS_MAX_CHARS, "{reply}");
        }
    }

    fn every_reason() -> Vec<Reason> {
        let mut reasons = vec![
            Reason::InvalidHours("an offset is like +1, -5 or +5:30"),
            Reason::Empty,
            Reason::MissingText,
            Reason::TooLong {
                len: usize::MAX,
                max: usize::MAX - 1,
            },
            Reason::InvalidText("control characters other than newline are not allowed"),
        ];
        for k in Keyword::ALL {
            reasons.push(Reason::MissingUsername(k));
            reasons.push(Reason::UnexpectedWords(k));
            reasons.push(Reason::InvalidUsername {
                keyword: k,
                why: "only letters, digits and underscore are allowed",
            });
        }
        reasons
    }

    #[test]
    fn help_fits_one_sms_and_names_every_keyword() {
        let help = help_text();
        assert!(
            help.chars().count() <= SMS_MAX_CHARS,
            "{} chars",
            help.chars().count()
        );
        for k in Keyword::ALL {
            let named = help
                .split(|c: char| !c.is_ascii_alphanumeric())
                .any(|word| word == k.as_str());
            assert!(named, "help lacks {k}");
        }
        assert_eq!(parse("HELP", MAX), Command::Help);
    }

    #[test]
    fn replies_for_invalid_start_with_the_reason_and_fit() {
        for reason in every_reason() {
            let reply = reply_for_invalid(&reason);
            let said = reason.to_string();
            assert!(reply.chars().count() <= SMS_MAX_CHARS, "{reply:?}");
            assert!(
                reply.starts_with(&said),
                "{reply:?} does not start with {said:?}"
            );
            let whole = format!("{said} {}", help_text());
            if whole.chars().count() <= SMS_MAX_CHARS {
                assert_eq!(reply, whole);
            } else {
                assert!(reply.ends_with('…'), "{reply:?} was cut without saying so");
            }
        }
    }

    #[test]
    fn reasons_say_what_is_wrong() {
        let said = |input: &str| match parse(input, MAX) {
            Command::Invalid(reason) => reason.to_string(),
            other => panic!("{input:?} parsed as {other:?}"),
        };
        assert_eq!(said("FOLLOW"), "FOLLOW needs a username.");
        assert_eq!(said("D"), "D needs a username and a message.");
        assert_eq!(said("D bob"), "D needs a message after the username.");
        assert_eq!(said("FOLLOW a b"), "FOLLOW takes one username only.");
        assert_eq!(said("STOP now"), "STOP takes nothing after it.");
        assert_eq!(
            said("ON a-b"),
            "ON: invalid username, only letters, digits and underscore are allowed."
        );
        assert_eq!(
            said(&"x".repeat(MAX + 20)),
            "Too long: 300 characters, the limit is 280."
        );
        assert_eq!(said("  "), "Empty text.");
        // The common replies fit with the whole help text.
        let too_long = "x".repeat(MAX + 20);
        for input in [
            "FOLLOW",
            "D",
            "D bob",
            "STOP now",
            "",
            "FOLLOW a b",
            &too_long,
        ] {
            let reply = reply_for_invalid(&match parse(input, MAX) {
                Command::Invalid(r) => r,
                other => panic!("{input:?} parsed as {other:?}"),
            });
            assert!(reply.ends_with(help_text()), "{reply:?}");
        }
    }
}
