// The crate documentation is the tour in GUIDE.md, beside Cargo.toml.
#![doc = include_str!("../GUIDE.md")]

pub use starling_core::{
    AVATAR_MAX_BYTES, Audience, Config, Conversation, Counts, Cursor, DeliveryId, DeviceDelivery,
    DeviceUsage, DirectMessage, DmPolicy, Durability, Error, FanoutPolicy, Group, GroupId,
    ImageKind, MAX_PAGE_SIZE, Phone, Post, PostId, Profile, Result, StorageError, Toggle, User,
    UserId, Username, utc_day,
};
pub use starling_engine::{
    CheckReport, ConversationPage, Event, FanoutStats, FaultKind, FaultPlan, FaultyBackend,
    MemBackend, MessagePage, PostOptions, Problem, Subscription, Suggestion, Thread, TimelinePage,
    UserPage,
};
pub use starling_rocks::{FamilyStats, RocksBackend, WriteStats};

/// The engine over an embedded RocksDB database.
pub type Engine = starling_engine::Engine<RocksBackend>;

/// The engine over any backend of the storage seam (the in-memory
/// [`MemBackend`] in tests).
pub use starling_engine::Engine as GenericEngine;

/// The README's examples, compiled and run as doc-tests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
