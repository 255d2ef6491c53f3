//! Starling is an embeddable storage-and-fanout engine for microblogging:
//! the follow graph, an append-only post log, and fan-out-on-write home
//! timelines over RocksDB.
//!
//! This is the crate applications link. [`Engine`] is the engine over the
//! RocksDB backend; everything else is re-exported vocabulary.
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

pub use starling_core::{
    AVATAR_MAX_BYTES, Audience, Config, Conversation, Counts, Cursor, DeliveryId, DeviceDelivery,
    DeviceUsage, DirectMessage, DmPolicy, Durability, Error, FanoutPolicy, Group, GroupId,
    ImageKind, MAX_PAGE_SIZE, Phone, Post, PostId, Profile, Result, StorageError, Toggle, User,
    UserId, Username, utc_day,
};
pub use starling_engine::{
    CheckReport, ConversationPage, Event, FanoutStats, MessagePage, PostOptions, Problem,
    Subscription, Suggestion, Thread, TimelinePage, UserPage,
};
pub use starling_memstore::{FaultKind, FaultPlan, FaultyBackend, MemBackend};
pub use starling_rocks::{FamilyStats, RocksBackend, WriteStats};
pub use starling_store::{
    Backend, DirectStore, Direction, FanoutQueue, GraphStore, InboxStore, PostStore,
};

/// The engine over an embedded RocksDB database.
pub type Engine = starling_engine::Engine<RocksBackend>;

/// The engine over any backend of the storage seam (the in-memory
/// [`MemBackend`] in tests).
pub use starling_engine::Engine as GenericEngine;

/// The README's examples, compiled and run as doc-tests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
