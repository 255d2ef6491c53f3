//! Starling's device (SMS-style) texts, both ways.
//!
//! A user may link a phone. Texts that arrive from it are commands
//! ([`parse`] turns one into a [`Command`]); posts of followed accounts with
//! device updates turned on leave as one short labelled text each
//! ([`device_text`]).
//!
//! Parsing and formatting are pure: they do no I/O, keep no state and know
//! nothing of storage, outboxes, gateways or daily caps; [`parse`] never
//! looks a username up, it only checks that a name is well formed.
//! [`run_text_limited`] executes a parsed command against an engine as the
//! owner of the phone the text came from, through the account's rate
//! limits ([`RateLimits`], the ones the embedding service's API applies),
//! and returns the reply; [`run_text`] does so without limits.
//!
//! # Incoming commands
//!
//! | Text              | Command                                                |
//! |-------------------|--------------------------------------------------------|
//! | six digits        | a confirmation code, when the number has links pending |
//! | `D user text`     | [`Command::Direct`]: a direct message                   |
//! | `FOLLOW user`     | [`Command::Follow`]: follow or request, texts on        |
//! | `LEAVE user`      | [`Command::Leave`]: their texts off, still following    |
//! | `UNFOLLOW user`   | [`Command::Unfollow`]                                   |
//! | `ON user`         | [`Command::On`]: device updates on for `user`           |
//! | `OFF user`        | [`Command::Off`]: device updates off for `user`         |
//! | `ON` / `OFF`      | [`Command::AllOn`] / [`Command::AllOff`]: all updates   |
//! | `GET user`        | [`Command::Get`]: their latest post                     |
//! | `WHOIS user`      | [`Command::Whois`]: their profile and counts            |
//! | `STATS`           | [`Command::Stats`]: your counts                         |
//! | `FAV user`        | [`Command::Fav`]: like their latest post                |
//! | `BLOCK user`      | [`Command::Block`]                                      |
//! | `UNBLOCK user`    | [`Command::Unblock`]                                    |
//! | `SLEEP 22 7 [+1]` | [`Command::Sleep`]: texts wait 22:00 to 07:00 (UTC+1)   |
//! | `WAKE`            | [`Command::Wake`]: no more quiet hours                  |
//! | `STOP`            | [`Command::Stop`]: pause all device updates             |
//! | `START`           | [`Command::Start`]: resume them                         |
//! | `HELP`            | [`Command::Help`]                                       |
//! | anything else     | [`Command::Post`]                                       |
//!
//! These are the short code's commands as Twitter gave them in 2009.
//!
//! The rules for ambiguous texts:
//!
//! - Leading and trailing whitespace is ignored; words are separated by any
//!   run of Unicode whitespace.
//! - Keywords are matched without regard to ASCII case; usernames keep the
//!   case they were typed in (look-ups fold case anyway). One leading `@` on
//!   a username is accepted.
//! - Only the first word, compared whole, decides whether a text is a
//!   command: `D` must be followed by whitespace, so `Donuts are great` and
//!   `D@bob hi` are posts, and so are `FOLLOWING the game` and `Stop!`.
//! - A text whose first word *is* a keyword is that command or nothing: when
//!   it is malformed (`FOLLOW`, `FOLLOW two words`, `D bob`, `ON not-a-name`,
//!   `STOP now`) it is [`Command::Invalid`] with a [`Reason`], never a post.
//!   So `on my way` is refused rather than posted; the reply
//!   ([`reply_for_invalid`]) says why.
//! - The text of posts and direct messages is validated like any other post
//!   ([`starling_core::PostText`]): not empty, within the length limit in
//!   characters, no control characters other than newline. Inside it,
//!   whitespace is kept as sent.
//!
//! [`parse`] never panics, whatever the input.
//!
//! # Outgoing device updates
//!
//! [`device_text`] labels a post with its author and fits it into one text
//! of [`SMS_MAX_CHARS`] characters, ending a cut text with `…`. Lengths are
//! counted in characters (Unicode scalar values), never bytes, and a
//! character is never split.
//!
//! # Example
//!
//! ```
//! use starling_core::{Config, Username};
//! use starling_sms::{Command, SMS_MAX_CHARS, device_text, parse};
//!
//! let max = Config::default().max_post_chars;
//! assert_eq!(parse("follow @alice", max), Command::Follow(Username::parse("alice")?));
//! assert_eq!(
//!     parse("d Bob see you at 8", max),
//!     Command::Direct { to: Username::parse("Bob")?, text: "see you at 8".into() },
//! );
//! assert_eq!(parse("Donuts are great", max), Command::Post("Donuts are great".into()));
//! assert!(!parse("FOLLOW", max).is_valid());
//!
//! let sms = device_text("alice", "running late,\nstart without me");
//! assert_eq!(sms, "alice: running late, start without me");
//! assert!(device_text("alice", &"a".repeat(500)).chars().count() <= SMS_MAX_CHARS);
//! # Ok::<(), starling_core::Error>(())
//! ```

mod command;
mod run;

pub use command::{Command, Keyword, Reason, help_text, parse, reply_for_invalid};
pub use run::{Limited, NOT_LINKED, NoLimits, RateLimits, run_text, run_text_limited};
pub use starling_core::{SMS_MAX_CHARS, device_text, fit_sms};
