//! Starling's vocabulary: the ids, values, validation rules and byte codecs
//! that every other crate shares.
//!
//! This crate does no I/O and knows nothing of RocksDB. It decides, in one
//! place ([`codec`]), how every key and value is laid out in bytes: keys are
//! big-endian so that byte order is numeric order.
//!
//! ```
//! use starling_core::{Username, PostText, Config};
//!
//! let name = Username::parse("Ada_Lovelace")?;
//! assert_eq!(name.folded(), "ada_lovelace");
//! let text = PostText::parse("hello, world", Config::default().max_post_chars)?;
//! assert_eq!(text.as_str(), "hello, world");
//! # Ok::<(), starling_core::Error>(())
//! ```
//!
//! With the `serde` feature, the records and values an application hands
//! on (users, posts, groups, counts, profiles, messages, conversations,
//! ids, usernames, cursors) implement `Serialize` and `Deserialize`. User
//! and group ids are JSON numbers; post and message ids are decimal
//! strings, since they exceed the 2^53 JavaScript numbers hold exactly;
//! every id is read from either form. A cursor is its opaque string.

mod change;
pub mod codec;
mod config;
mod cursor;
mod direct;
pub mod direct_codec;
mod error;
mod ids;
pub mod paging;
#[cfg(feature = "serde")]
mod serde_impls;
mod sms_text;
mod text;
mod types;

pub use change::{CHANGE_POSITION_SEQUENCE_BITS, Change, ChangeRecord};
pub use config::{Config, Durability, FanoutPolicy, MAX_PAGE_SIZE};
pub use cursor::Cursor;
pub use direct::{
    AVATAR_MAX_BYTES, Avatar, BIO_MAX_CHARS, Conversation, DAY_MS, DISPLAY_NAME_MAX_CHARS,
    DeliveryId, DeliveryKind, DeviceDelivery, DeviceUsage, DirectMessage, DirectMutation, DmPolicy,
    ImageKind, MAX_CLAIMS_PER_PHONE, PHONE_CODE_ATTEMPTS, PHONE_CODE_DIGITS, Phone, PhoneClaim,
    Profile, QuietHours, Toggle, format_phone_code, parse_phone_code, utc_day,
};
pub use error::{Error, ErrorKind, Result, StorageError};
pub use ids::{GroupId, POST_ID_EPOCH_MS, PostId, UserId};
pub use sms_text::{SMS_MAX_CHARS, device_text, fit_sms};
pub use text::{
    GROUP_NAME_MAX_CHARS, MAX_MENTIONS, PostText, USERNAME_MAX_LEN, Username, group_name,
    is_invisible, mentioned_names,
};
pub use types::{
    Audience, AuthorMode, Counts, Edge, EdgeMode, FanoutJob, Group, InboxEntry, JobKind, LinkKind,
    Mutation, Post, User,
};
