//! The one error type of every public operation.

use std::fmt;

use crate::{PostId, UserId};

/// A `Result` whose error is Starling's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a Starling operation can refuse or fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No user has this id.
    #[error("unknown user {0}")]
    UnknownUser(UserId),
    /// The account was deleted (or its deletion is under way): nothing is
    /// done by it or to it any more.
    #[error("account {0} was deleted")]
    AccountDeleted(UserId),
    /// No user has this username.
    #[error("unknown username {0:?}")]
    UnknownUsername(String),
    /// No post has this id.
    #[error("unknown post {0}")]
    UnknownPost(PostId),
    /// The post existed but was deleted.
    #[error("post {0} was deleted")]
    PostDeleted(PostId),
    /// A username breaks the rules (letters, digits, underscore, 1 to 15).
    #[error("invalid username: {0}")]
    InvalidUsername(&'static str),
    /// Another account already has this username (compared without case).
    #[error("username {0:?} is taken")]
    UsernameTaken(String),
    /// The username belonged to a deleted account and stays reserved until
    /// [`crate::Config::name_hold_ms`] has passed since the deletion.
    #[error("username {0:?} belonged to a deleted account and is reserved for now")]
    UsernameReserved(String),
    /// Post text is empty or holds a forbidden character.
    #[error("invalid post text: {0}")]
    InvalidText(&'static str),
    /// Post text is longer than the configured limit.
    #[error("post text has {len} characters, the limit is {max}")]
    TextTooLong {
        /// Characters in the rejected text.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A user tried to follow themselves.
    #[error("a user cannot follow themselves")]
    SelfFollow,
    /// The caller may not do this (for example, delete another's post).
    #[error("not allowed: {0}")]
    NotAllowed(&'static str),
    /// One of the two accounts blocks the other, so this is refused.
    #[error("blocked: {0}")]
    Blocked(&'static str),
    /// The account is protected: following it takes a follow request
    /// that it approves.
    #[error("account {0} is protected: send a follow request")]
    Protected(UserId),
    /// The account is public: it is followed without a request.
    #[error("account {0} is not protected: follow it without a request")]
    NotProtected(UserId),
    /// No pending follow request from `from` to `to`.
    #[error("no follow request from {from} to {to}")]
    UnknownFollowRequest {
        /// Who would have asked.
        from: UserId,
        /// Who would have been asked.
        to: UserId,
    },
    /// No group has this id.
    #[error("unknown group {0}")]
    UnknownGroup(crate::GroupId),
    /// A group name is empty, too long or holds a control character.
    #[error("invalid group name: {0}")]
    InvalidGroupName(&'static str),
    /// A cursor was not produced by this kind of listing, or was damaged.
    #[error("malformed cursor")]
    MalformedCursor,
    /// A page larger than [`crate::MAX_PAGE_SIZE`] (or of zero entries) was asked for.
    #[error("page size {requested} is out of range 1..={max}")]
    PageSize {
        /// The size asked for.
        requested: usize,
        /// The largest allowed.
        max: usize,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    /// Stored bytes could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(&'static str),
    /// The storage layer failed.
    #[error("storage failure: {0}")]
    Storage(#[source] StorageError),
    /// An earlier write failed; the engine refuses writes until reopened.
    #[error("engine is poisoned by an earlier storage failure; reopen it")]
    Poisoned,
    /// The engine was closed (an `AsyncEngine` refuses calls after close).
    #[error("engine is closed")]
    Closed,
    /// One of the engine's own workers failed: a thread could not be
    /// started, or a reader thread panicked.
    #[error("internal failure: {0}")]
    Internal(String),
    /// A display name or bio breaks the profile rules.
    #[error("invalid profile: {0}")]
    InvalidProfile(&'static str),
    /// A phone number is not in E.164 form (`+`, 8 to 15 digits, the first not 0).
    #[error("invalid phone number: {0}")]
    InvalidPhone(&'static str),
    /// Another account has already linked this phone number. (Links are
    /// confirmed by a code texted to the number, and whoever confirms
    /// takes the number over, so the engine no longer returns this.)
    #[error("phone number is linked to another account")]
    PhoneTaken,
    /// A phone confirmation code is not six digits.
    #[error("a confirmation code is six digits")]
    InvalidPhoneCode,
    /// No phone link waits for a code: none was asked for, or it was
    /// confirmed, expired or dropped after too many wrong codes.
    #[error("no phone link is waiting for a code")]
    NoPendingPhone,
    /// The code's time ran out; the pending link was dropped.
    #[error("the confirmation code has expired; link the phone again")]
    PhoneCodeExpired,
    /// The code is not the one texted. With no attempts left the pending
    /// link was dropped.
    #[error("wrong confirmation code ({attempts_left} attempts left)")]
    WrongPhoneCode {
        /// Wrong codes still allowed.
        attempts_left: u8,
    },
    /// The recipient's daily cap of texts is reached: no more are queued
    /// today.
    #[error("the daily cap of texts to this account is reached")]
    DeviceCapReached,
    /// An avatar picture is larger than the limit.
    #[error("avatar has {len} bytes, the limit is {max}")]
    AvatarTooLarge {
        /// Bytes in the rejected picture.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An avatar is not a PNG, JPEG, GIF or WebP picture.
    #[error("unsupported image: only PNG, JPEG, GIF and WebP are accepted")]
    UnsupportedImage,
    /// A device delivery id is not of the form `post.recipient`.
    #[error("malformed device delivery id")]
    InvalidDeliveryId,
    /// A store was to be opened as it is, and the folder holds none (or a
    /// database that is not Starling's); nothing was created.
    #[error("no Starling store at {}: {reason}", path.display())]
    NoStore {
        /// The folder that was to hold the store.
        path: std::path::PathBuf,
        /// What was found there instead.
        reason: &'static str,
    },
    /// Another process holds the store's writer lease: one writer at a
    /// time may write a store that many processes can reach.
    #[error("another writer holds the writer lease of store {0:?}")]
    WriterLeaseHeld(String),
    /// This process lost its writer lease (it expired, or another writer
    /// took the store over): its writes are refused.
    #[error("fenced out: this writer's lease of the store was lost ({0})")]
    Fenced(&'static str),
    /// Every post-id node number is leased to a live process of the
    /// store: another would mint ids that collide.
    #[error("every post-id node number of the store is leased to a live process")]
    NodesExhausted,
    /// The store was written by a version of Starling whose layout this
    /// one does not read.
    #[error("incompatible store: its format is {found:?}, this version reads {expected:?}")]
    IncompatibleStore {
        /// The format the store records.
        found: String,
        /// The format this version reads and writes.
        expected: &'static str,
    },
    /// A change-feed cursor is older than what the feed keeps: records
    /// after it were trimmed (see `Config::change_retention_ms`). Read
    /// again from the start (no cursor) and rebuild what was built from
    /// the feed.
    #[error("change cursor expired: the feed keeps records after position {floor} only")]
    ChangeCursorExpired {
        /// The newest position trimmed: records after it are kept.
        floor: u64,
    },
    /// The writer an export streams to failed (a closed connection, a
    /// full disk); what was written is cut short.
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
}

/// What sort of refusal or failure an [`Error`] is, for callers that
/// answer by sort (a status code, a reply, a retry) rather than by variant.
/// [`Error::kind`] gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// What was asked for does not exist, was deleted, or may not be seen
    /// by the caller: a user, username, post or group, or a pending phone
    /// link (never asked for, used, expired or dropped), or change-feed
    /// records trimmed since a cursor.
    NotFound,
    /// The input breaks a rule (a name, text, profile, phone, picture,
    /// cursor, page size, delivery id, confirmation code or configuration
    /// value); the same input is refused again.
    Invalid,
    /// The input is well formed but clashes with what is stored: a
    /// username or phone number another account holds, a daily cap
    /// already reached, a follow request to an account that is not
    /// protected, or a store of an incompatible format.
    Conflict,
    /// The caller may not do this: another's post or group, an action
    /// across a block, a follow of a protected account without a request.
    Forbidden,
    /// The storage failed, or an earlier storage failure poisoned the
    /// engine, or another writer holds (or took) the store, or the output
    /// an export writes to failed: a retry
    /// (after reopening, when poisoned) may succeed.
    Unavailable,
    /// A fault inside Starling, not the caller's doing: stored bytes that
    /// do not decode, or a failed worker.
    Internal,
}

impl Error {
    /// The sort of this error (see [`ErrorKind`] for what each means).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::UnknownUser(_)
            | Error::AccountDeleted(_)
            | Error::UnknownUsername(_)
            | Error::UnknownPost(_)
            | Error::PostDeleted(_)
            | Error::UnknownGroup(_)
            | Error::UnknownFollowRequest { .. }
            | Error::NoStore { .. }
            | Error::NoPendingPhone
            | Error::PhoneCodeExpired
            | Error::ChangeCursorExpired { .. } => ErrorKind::NotFound,
            Error::InvalidUsername(_)
            | Error::InvalidText(_)
            | Error::TextTooLong { .. }
            | Error::SelfFollow
            | Error::InvalidGroupName(_)
            | Error::MalformedCursor
            | Error::PageSize { .. }
            | Error::InvalidConfig(_)
            | Error::InvalidProfile(_)
            | Error::InvalidPhone(_)
            | Error::AvatarTooLarge { .. }
            | Error::UnsupportedImage
            | Error::InvalidDeliveryId
            | Error::InvalidPhoneCode
            | Error::WrongPhoneCode { .. } => ErrorKind::Invalid,
            Error::UsernameTaken(_)
            | Error::UsernameReserved(_)
            | Error::PhoneTaken
            | Error::DeviceCapReached
            | Error::NotProtected(_)
            | Error::IncompatibleStore { .. } => ErrorKind::Conflict,
            Error::NotAllowed(_) | Error::Blocked(_) | Error::Protected(_) => ErrorKind::Forbidden,
            Error::Storage(_)
            | Error::Poisoned
            | Error::Closed
            | Error::WriterLeaseHeld(_)
            | Error::Fenced(_)
            | Error::NodesExhausted
            | Error::Output(_) => ErrorKind::Unavailable,
            Error::Corrupt(_) | Error::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// A failure reported by the storage backend: a message, and the
/// backend's own error when there is one (returned by
/// [`std::error::Error::source`]).
#[derive(Debug)]
pub struct StorageError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StorageError {
    /// A failure told by a message alone.
    pub fn new(message: impl Into<String>) -> StorageError {
        StorageError {
            message: message.into(),
            source: None,
        }
    }

    /// Wraps a backend's error, keeping it as the source; `context` says
    /// what was being done. Shown as `context: error`.
    pub fn from_source(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> StorageError {
        StorageError {
            message: context.into(),
            source: Some(source.into()),
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {source}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;
    use crate::GroupId;

    #[test]
    fn every_variant_has_its_kind() {
        use ErrorKind::*;
        let table: Vec<(Error, ErrorKind)> = vec![
            (Error::UnknownUser(UserId(1)), NotFound),
            (Error::UnknownUsername("ada".into()), NotFound),
            (Error::AccountDeleted(UserId(1)), NotFound),
            (Error::UsernameReserved("ada".into()), Conflict),
            (Error::UnknownPost(PostId(1)), NotFound),
            (Error::PostDeleted(PostId(1)), NotFound),
            (Error::UnknownGroup(GroupId(1)), NotFound),
            (
                Error::UnknownFollowRequest {
                    from: UserId(1),
                    to: UserId(2),
                },
                NotFound,
            ),
            (Error::NotProtected(UserId(1)), Conflict),
            (Error::Protected(UserId(1)), Forbidden),
            (Error::InvalidUsername("empty"), Invalid),
            (Error::InvalidText("empty"), Invalid),
            (Error::TextTooLong { len: 2, max: 1 }, Invalid),
            (Error::SelfFollow, Invalid),
            (Error::InvalidGroupName("empty"), Invalid),
            (Error::MalformedCursor, Invalid),
            (
                Error::PageSize {
                    requested: 0,
                    max: 1,
                },
                Invalid,
            ),
            (Error::InvalidConfig("inbox_cap"), Invalid),
            (Error::InvalidProfile("bio"), Invalid),
            (Error::InvalidPhone("short"), Invalid),
            (Error::AvatarTooLarge { len: 2, max: 1 }, Invalid),
            (Error::UnsupportedImage, Invalid),
            (Error::InvalidDeliveryId, Invalid),
            (Error::UsernameTaken("ada".into()), Conflict),
            (Error::PhoneTaken, Conflict),
            (Error::DeviceCapReached, Conflict),
            (Error::InvalidPhoneCode, Invalid),
            (Error::WrongPhoneCode { attempts_left: 1 }, Invalid),
            (Error::NoPendingPhone, NotFound),
            (Error::ChangeCursorExpired { floor: 1 }, NotFound),
            (Error::PhoneCodeExpired, NotFound),
            (Error::NotAllowed("no"), Forbidden),
            (Error::Blocked("no"), Forbidden),
            (Error::Storage(StorageError::new("disk")), Unavailable),
            (Error::Poisoned, Unavailable),
            (Error::Corrupt("user record"), Internal),
            (Error::Internal("worker panicked".into()), Internal),
            (Error::Closed, Unavailable),
            (
                Error::NoStore {
                    path: "data".into(),
                    reason: "the folder holds no database",
                },
                NotFound,
            ),
            (Error::WriterLeaseHeld("app".into()), Unavailable),
            (Error::Fenced("lease lost"), Unavailable),
            (Error::NodesExhausted, Unavailable),
            (
                Error::IncompatibleStore {
                    found: "9".into(),
                    expected: "1",
                },
                Conflict,
            ),
        ];
        for (error, kind) in table {
            assert_eq!(error.kind(), kind, "{error:?}");
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("device is gone")]
    struct Backend;

    #[test]
    fn a_wrapped_storage_error_keeps_its_source_and_message() {
        let e = StorageError::from_source("write batch", Backend);
        assert_eq!(e.to_string(), "write batch: device is gone");
        let source = e.source().expect("a wrapped error has a source");
        assert!(source.is::<Backend>(), "{source:?}");
        let outer = Error::Storage(e);
        let chain = outer.source().and_then(|s| s.source());
        assert!(chain.is_some_and(|s| s.is::<Backend>()));
        assert!(StorageError::new("disk").source().is_none());
    }
}
