//! Executing an incoming text as the owner of the phone it came from.

use starling_core::{Error, ErrorKind, Phone, Toggle, UserId, Username};
use starling_engine::{Backend, Engine, FollowState};

use crate::{Command, help_text, parse, reply_for_invalid};
use starling_core::fit_sms;

/// The reply to a text from a phone no account has linked.
pub const NOT_LINKED: &str = "This phone is not linked to a Starling account.";

/// Executes the text `body` that arrived from `phone` as the command it is
/// ([`parse`]), acting as the account that linked the phone, and returns
/// the reply to text back (one SMS).
///
/// Never panics and never returns an error: an unknown or malformed phone
/// number, a malformed command and every engine error become a short
/// reply.
///
/// ```
/// use starling_core::Config;
/// use starling_engine::Engine;
/// use starling_memstore::MemBackend;
/// use starling_sms::run_text;
///
/// let engine = Engine::with_backend(MemBackend::new(), Config::default())?;
/// let ada = engine.create_user("ada")?;
/// engine.create_user("bob")?;
/// engine.link_phone(ada.id, "+15555550100")?;
/// assert_eq!(run_text(&engine, "+15555550100", "FOLLOW bob"), "You follow bob now.");
/// assert_eq!(run_text(&engine, "+15555550100", "hello from the bus"), "Posted.");
/// # Ok::<(), starling_core::Error>(())
/// ```
pub fn run_text<B: Backend>(engine: &Engine<B>, phone: &str, body: &str) -> String {
    let owner = match Phone::parse(phone).and_then(|p| engine.user_by_phone(p.as_str())) {
        Ok(Some(owner)) => owner,
        Ok(None) | Err(Error::InvalidPhone(_)) => return NOT_LINKED.to_owned(),
        Err(e) => return error_reply(&e),
    };
    let command = parse(body, engine.config().max_post_chars);
    let reply = match execute(engine, owner, &command) {
        Ok(reply) => reply,
        Err(e) => error_reply(&e),
    };
    fit_sms(&reply)
}

fn execute<B: Backend>(
    engine: &Engine<B>,
    owner: UserId,
    command: &Command,
) -> Result<String, Error> {
    // Replies name accounts as they spell their names, not as typed.
    let user = |name: &Username| engine.user_by_name(name.as_str());
    Ok(match command {
        Command::Post(text) => {
            engine.post(owner, text)?;
            "Posted.".to_owned()
        }
        Command::Direct { to, text } => {
            let to = user(to)?;
            engine.send_direct(owner, to.id, text)?;
            format!("Sent to {}.", to.name)
        }
        Command::Follow(name) => {
            let u = user(name)?;
            if engine.is_following(owner, u.id)? {
                format!("You already follow {}.", u.name)
            } else {
                match engine.follow_or_request(owner, u.id)? {
                    FollowState::Following => format!("You follow {} now.", u.name),
                    FollowState::Requested => {
                        format!("{} is protected: follow request sent.", u.name)
                    }
                }
            }
        }
        Command::Leave(name) => {
            let u = user(name)?;
            if engine.unfollow(owner, u.id)? {
                format!("You left {}.", u.name)
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
                Err(e) => return Err(e),
                Ok(()) if on == Toggle::On => format!("Updates from {name} are on."),
                Ok(()) => format!("Updates from {name} are off."),
            }
        }
        Command::Stop => {
            engine.pause_device_updates(owner)?;
            "Device updates paused. Text START to resume.".to_owned()
        }
        Command::Start => {
            engine.resume_device_updates(owner)?;
            "Device updates resumed.".to_owned()
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
