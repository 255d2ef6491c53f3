//! Starling is an embeddable storage-and-fanout engine for microblogging:
//! the follow graph, an append-only post log, and fan-out-on-write home
//! timelines over RocksDB.
//!
//! This is the crate applications link. [`Engine`] is the engine over the
//! RocksDB backend; everything else is re-exported vocabulary. With the
//! `tokio` feature, `AsyncEngine` is its async front for tokio
//! applications: the same operations as futures, and subscriptions as
//! streams.
//!
//! Feature `serde`: the records, pages and events ([`User`], [`Post`],
//! [`Profile`], [`Counts`], [`Group`], [`TimelinePage`], [`UserPage`],
//! [`Conversation`], [`ConversationPage`], [`DirectMessage`],
//! [`MessagePage`], [`Event`], ...) implement `Serialize` and
//! `Deserialize`. In JSON, user and group ids are numbers; post and message
//! ids are decimal strings (they exceed 2^53, the largest integer a
//! JavaScript number holds exactly); any id is read from either form. A
//! [`Cursor`] is its opaque string, a [`Username`] its string (validated
//! when read), and a [`User`]'s name is written as `username`.
//!
//! ```
//! use starling::{Config, Engine};
//!
//! let dir = tempfile::tempdir()?;
//! let engine = Engine::open(dir.path(), Config::default())?;
//! let ada = engine.create_user("ada")?;
//! let grace = engine.create_user("grace")?;
//! engine.follow(grace.id, ada.id)?;
//! engine.post(ada.id, "Analytical engines weave algebraic patterns.")?;
//! engine.wait_for_fanout()?;
//! let home = engine.home_timeline(grace.id, None, 50)?;
//! assert_eq!(home.posts[0].author, ada.id);
//! engine.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "tokio")]
mod async_engine;

#[cfg(feature = "tokio")]
pub use async_engine::{AsyncEngine, DEFAULT_THREADS, MAX_THREADS};
pub use starling_core::{
    AVATAR_MAX_BYTES, Audience, Config, Conversation, Counts, Cursor, DeliveryId, DeviceDelivery,
    DeviceUsage, DirectMessage, DmPolicy, Durability, Error, ErrorKind, FanoutPolicy, Group,
    GroupId, ImageKind, MAX_PAGE_SIZE, Phone, Post, PostId, Profile, Result, StorageError, Toggle,
    User, UserId, Username, utc_day,
};
pub use starling_engine::{
    CheckReport, ConversationPage, Event, FanoutStats, MessagePage, PostOptions, Problem, Progress,
    Stage, Subscription, Suggestion, Thread, TimelinePage, UserPage,
};
pub use starling_memstore::{FaultKind, FaultPlan, FaultyBackend, MemBackend};
pub use starling_rocks::{FamilyStats, RocksBackend, WriteStats};
pub use starling_store::{
    Backend, DirectStore, Direction, FanoutQueue, GraphStore, InboxStore, PostStore,
};

/// Shared, reference-counted bytes: what `Engine::avatar` hands out, so
/// that passing a picture on (to an HTTP body, say) copies nothing.
pub use bytes::Bytes;

/// Text messages from and to phones: parsing an incoming text into a
/// command, running it as the phone's owner (`run_text`), and the
/// 160-character formatting of device updates.
pub mod sms {
    pub use starling_sms::{
        Command, Keyword, NOT_LINKED, Reason, SMS_MAX_CHARS, device_text, fit_sms, help_text,
        parse, reply_for_invalid, run_text,
    };
}

/// The engine over an embedded RocksDB database.
pub type Engine = starling_engine::Engine<RocksBackend>;

/// The engine over any backend of the storage seam (the in-memory
/// [`MemBackend`] in tests).
pub use starling_engine::Engine as GenericEngine;

/// The README's examples, compiled and run as doc-tests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
