//! Executing an incoming text as the owner of the phone it came from.

use std::time::Duration;

use starling_core::{
    Error, ErrorKind, Phone, QuietHours, Toggle, UserId, Username, device_text, fit_sms,
    parse_phone_code,
};
use starling_engine::{Backend, Engine, FollowState};

use crate::{Command, help_text, parse, reply_for_invalid};

/// The reply to a text from a phone no account has linked.
pub const NOT_LINKED: &str = "This phone is not linked to a Starling account.";

/// What a text may do that the account's rate limits cover, the same
/// limits its other paths (an HTTP API) apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limited {
    /// A post.
    Post,
    /// A direct message.
    Direct,
    /// A follow.
    Follow,
}

/// The account rate limits texts go through: the embedding service hands
/// [`run_text_limited`] the limiter its API uses, so that both paths meet
/// in one place.
pub trait RateLimits {
    /// Takes one `what` from `user`'s allowance, or says how long until
    /// one is available.
    fn take(&self, user: UserId, what: Limited) -> Result<(), Duration>;
}

/// No limits: everything is allowed ([`run_text`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoLimits;

impl RateLimits for NoLimits {
    fn take(&self, _user: UserId, _what: Limited) -> Result<(), Duration> {
        Ok(())
    }
}

/// [`run_text_limited`] without rate limits.
///
/// ```
/// use starling_core::{Config, format_phone_code};
/// use starling_engine::Engine;
/// use starling_memstore::MemBackend;
/// use starling_sms::run_text;
///
/// let engine = Engine::with_backend(MemBackend::new(), Config::default())?;
/// let ada = engine.create_user("ada")?;
/// engine.create_user("bob")?;
/// engine.link_phone(ada.id, "+15555550100")?;
/// // The code reaches the phone through the outbox; its owner texts it back.
/// let sent = engine.lease_device_deliveries(10, 60_000)?;
/// let code = &sent[0].text[..6];
/// assert_eq!(
///     run_text(&engine, "+15555550100", code),
///     "This phone is now linked to ada. Text HELP for commands."
/// );
/// assert_eq!(
///     run_text(&engine, "+15555550100", "FOLLOW bob"),
///     "You follow bob now; their updates come to this phone."
/// );
/// assert_eq!(run_text(&engine, "+15555550100", "hello from the bus"), "Posted.");
/// # Ok::<(), starling_core::Error>(())
/// ```
pub fn run_text<B: Backend>(engine: &Engine<B>, phone: &str, body: &str) -> String {
    run_text_limited(engine, &NoLimits, phone, body)
}

/// Executes the text `body` that arrived from `phone` and returns the
/// reply to text back (one SMS).
///
/// A text of six digits from a number with pending links is a
/// confirmation code ([`Engine::confirm_phone_by_text`]). Any other text
/// from a number no account has confirmed gets [`NOT_LINKED`]; from a
/// confirmed number it is the command it is ([`parse`]), run as the
/// number's account, posts, direct messages and follows first taking
/// their share of the account's `limits`.
///
/// Never panics and never returns an error: an unknown or malformed phone
/// number, a malformed command, a rate limit and every engine error become
/// a short reply.
pub fn run_text_limited<B: Backend>(
    engine: &Engine<B>,
    limits: &dyn RateLimits,
    phone: &str,
    body: &str,
) -> String {
    if parse_phone_code(body).is_ok() {
        match engine.confirm_phone_by_text(phone, body) {
            Ok(user) => {
                let name = engine
                    .user(user)
                    .map_or_else(|_| "your account".to_owned(), |u| u.name.to_string());
                return fit_sms(&format!(
                    "This phone is now linked to {name}. Text HELP for commands."
                ));
            }
            Err(Error::WrongPhoneCode { attempts_left: 0 }) => {
                return "Wrong code; link the phone again to get a new one.".to_owned();
            }
            Err(Error::WrongPhoneCode { attempts_left }) => {
                return format!("Wrong code; {attempts_left} tries left.");
            }
            // No code is waiting: six digits are a post like any text.
            Err(Error::NoPendingPhone | Error::InvalidPhone(_)) => {}
            Err(e) => return error_reply(&e),
        }
    }
    let owner = match Phone::parse(phone).and_then(|p| engine.user_by_phone(p.as_str())) {
        Ok(Some(owner)) => owner,
        Ok(None) | Err(Error::InvalidPhone(_)) => return NOT_LINKED.to_owned(),
        Err(e) => return error_reply(&e),
    };
    let command = parse(body, engine.config().max_post_chars);
    let reply = match execute(engine, limits, owner, &command) {
        Ok(reply) => reply,
        Err(Refused::Engine(e)) => error_reply(&e),
        Err(Refused::Limited(wait)) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            format!("Slow down: try again in {} s.", secs.max(1))
        }
    };
    fit_sms(&reply)
}

/// Why a command did nothing.
enum Refused {
    Engine(Error),
    Limited(Duration),
}

impl From<Error> for Refused {
    fn from(e: Error) -> Refused {
        Refused::Engine(e)
    }
}

fn execute<B: Backend>(
    engine: &Engine<B>,
    limits: &dyn RateLimits,
    owner: UserId,
    command: &Command,
) -> Result<String, Refused> {
    // Replies name accounts as they spell their names, not as typed.
    let user = |name: &Username| engine.user_by_name(name.as_str());
    let take = |what: Limited| limits.take(owner, what).map_err(Refused::Limited);
    Ok(match command {
        Command::Post(text) => {
            take(Limited::Post)?;
            engine.post(owner, text)?;
            "Posted.".to_owned()
        }
        Command::Direct { to, text } => {
            let to = user(to)?;
            take(Limited::Direct)?;
            engine.send_direct(owner, to.id, text)?;
            format!("Sent to {}.", to.name)
        }
        Command::Follow(name) => {
            let u = user(name)?;
            take(Limited::Follow)?;
            let already = engine.is_following(owner, u.id)?;
            // A protected account is asked instead; once it approves, the
            // owner turns its texts on (ON name).
            if !already && engine.follow_or_request(owner, u.id)? == FollowState::Requested {
                format!(
                    "{0} is protected: follow request sent. Text ON {0} once approved.",
                    u.name
                )
            } else {
                engine.set_device_updates(owner, u.id, Toggle::On)?;
                if already {
                    format!(
                        "You already follow {}; their updates come to this phone.",
                        u.name
                    )
                } else {
                    format!(
                        "You follow {} now; their updates come to this phone.",
                        u.name
                    )
                }
            }
        }
        Command::Leave(name) => {
            let u = user(name)?;
            let name = &u.name;
            if !engine.is_following(owner, u.id)? {
                format!("You were not following {name}.")
            } else {
                engine.set_device_updates(owner, u.id, Toggle::Off)?;
                format!("Updates from {name} are off; you still follow them.")
            }
        }
        Command::Unfollow(name) => {
            let u = user(name)?;
            if engine.unfollow(owner, u.id)? {
                format!("You no longer follow {}.", u.name)
            } else {
                format!("You were not following {}.", u.name)
            }
        }
        Command::On(name) | Command::Off(name) => {
            let u = user(name)?;
            let on = if matches!(command, Command::On(_)) {
                Toggle::On
            } else {
                Toggle::Off
            };
            let name = &u.name;
            match engine.set_device_updates(owner, u.id, on) {
                Err(Error::NotAllowed(_)) => format!("Follow {name} first: FOLLOW {name}"),
                Err(e) => return Err(e.into()),
                Ok(()) if on == Toggle::On => format!("Updates from {name} are on."),
                Ok(()) => format!("Updates from {name} are off."),
            }
        }
        Command::AllOn => {
            engine.resume_device_updates(owner)?;
            "Device updates are on.".to_owned()
        }
        Command::Start => {
            engine.resume_device_updates(owner)?;
            "Device updates resumed.".to_owned()
        }
        Command::AllOff => {
            engine.pause_device_updates(owner)?;
            "Device updates are off. Text ON to turn them back on.".to_owned()
        }
        Command::Stop => {
            engine.pause_device_updates(owner)?;
            "Device updates paused. Text START to resume.".to_owned()
        }
        Command::Get(name) => {
            let u = user(name)?;
            let page = engine.author_timeline_as(owner, u.id, None, 1)?;
            match page.posts.first() {
                Some(p) => device_text(u.name.as_str(), &p.text),
                None => format!("{} has no posts you can see.", u.name),
            }
        }
        Command::Fav(name) => {
            let u = user(name)?;
            let page = engine.author_timeline_as(owner, u.id, None, 1)?;
            match page.posts.first() {
                Some(p) => {
                    let label = device_text(u.name.as_str(), &p.text);
                    if engine.like(owner, p.id)? {
                        format!("You like {label}")
                    } else {
                        format!("You already like {label}")
                    }
                }
                None => format!("{} has no posts you can see.", u.name),
            }
        }
        Command::Whois(name) => {
            let u = user(name)?;
            let profile = engine.profile(u.id)?;
            let counts = engine.counts(u.id)?;
            let mut line = u.name.to_string();
            if !profile.display_name.is_empty() {
                line = format!("{line} ({})", profile.display_name);
            }
            let bio = profile.bio.trim();
            if !bio.is_empty() {
                line = format!("{line}: {bio}");
            }
            // The counts first, so that a long bio is what gets cut.
            format!(
                "{} followers, follows {}. {line}",
                counts.followers, counts.following
            )
        }
        Command::Stats => {
            let counts = engine.counts(owner)?;
            format!(
                "You have {} followers and follow {}.",
                counts.followers, counts.following
            )
        }
        Command::Block(name) => {
            let u = user(name)?;
            if engine.block(owner, u.id)? {
                format!("You blocked {}.", u.name)
            } else {
                format!("You already block {}.", u.name)
            }
        }
        Command::Unblock(name) => {
            let u = user(name)?;
            if engine.unblock(owner, u.id)? {
                format!("You unblocked {}.", u.name)
            } else {
                format!("You were not blocking {}.", u.name)
            }
        }
        Command::Sleep {
            start,
            end,
            offset_minutes,
        } => {
            let offset = match offset_minutes {
                Some(o) => *o,
                None => engine
                    .profile(owner)?
                    .quiet_hours
                    .map_or(0, |q| q.utc_offset_minutes),
            };
            let hours = QuietHours::new(*start, *end, offset)?;
            engine.set_quiet_hours(owner, Some(hours))?;
            let sign = if offset < 0 { '-' } else { '+' };
            let (h, m) = (offset.unsigned_abs() / 60, offset.unsigned_abs() % 60);
            format!(
                "Quiet from {start}:00 to {end}:00 (UTC{sign}{h}:{m:02}): texts wait till then. WAKE ends it."
            )
        }
        Command::Wake => {
            engine.set_quiet_hours(owner, None)?;
            "No more quiet hours: texts come at any time.".to_owned()
        }
        Command::Help => help_text().to_owned(),
        Command::Invalid(reason) => reply_for_invalid(reason),
    })
}

/// A short reply for an engine error: for the caller's own mistakes (by
/// [`ErrorKind`]) what was wrong, for failures on our side an apology with
/// no detail.
fn error_reply(e: &Error) -> String {
    match e.kind() {
        ErrorKind::NotFound | ErrorKind::Invalid | ErrorKind::Conflict | ErrorKind::Forbidden => {
            match e {
                Error::UnknownUsername(name) => format!("No user named {name}."),
                Error::SelfFollow => "You cannot do that to yourself.".to_owned(),
                Error::NotAllowed(why) => format!("Not allowed: {why}."),
                Error::TextTooLong { len, max } => {
                    format!("Too long: {len} characters, the limit is {max}.")
                }
                Error::InvalidText(why) => format!("Not sent: {why}."),
                other => format!("Could not do that: {other}."),
            }
        }
        // Unavailable, Internal and any kind added later.
        _ => "Sorry, that failed. Please try again later.".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use starling_core::{PostId, StorageError};

    #[test]
    fn replies_follow_the_kind_of_the_error() {
        let sorry = "Sorry, that failed. Please try again later.";
        let table = [
            (Error::UnknownUsername("eve".into()), "No user named eve."),
            (Error::SelfFollow, "You cannot do that to yourself."),
            (Error::NotAllowed("closed"), "Not allowed: closed."),
            (
                Error::TextTooLong { len: 300, max: 280 },
                "Too long: 300 characters, the limit is 280.",
            ),
            (Error::InvalidText("empty"), "Not sent: empty."),
            (
                Error::UnknownPost(PostId(7)),
                "Could not do that: unknown post 7.",
            ),
            (
                Error::PhoneTaken,
                "Could not do that: phone number is linked to another account.",
            ),
            (Error::Poisoned, sorry),
            (Error::Storage(StorageError::new("secret path")), sorry),
            (Error::Corrupt("user record"), sorry),
            (Error::Internal("worker panicked".into()), sorry),
        ];
        for (error, reply) in table {
            assert_eq!(error_reply(&error), reply, "{error:?}");
        }
    }
}
