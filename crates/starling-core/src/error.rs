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
    /// The engine was closed.
    #[error("engine is closed")]
    Closed,
    /// A display name or bio breaks the profile rules.
    #[error("invalid profile: {0}")]
    InvalidProfile(&'static str),
    /// A phone number is not in E.164 form (`+`, 8 to 15 digits, the first not 0).
    #[error("invalid phone number: {0}")]
    InvalidPhone(&'static str),
    /// Another account has already linked this phone number.
    #[error("phone number is linked to another account")]
    PhoneTaken,
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
}

/// A failure reported by the storage backend.
#[derive(Debug)]
pub struct StorageError {
    message: String,
}

impl StorageError {
    /// Wraps a backend's error message.
    pub fn new(message: impl Into<String>) -> StorageError {
        StorageError {
            message: message.into(),
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StorageError {}
