// The crate documentation is the tour in GUIDE.md, beside Cargo.toml.
#![doc = include_str!("../GUIDE.md")]

#[cfg(feature = "valkey")]
mod any;
#[cfg(feature = "tokio")]
mod async_engine;

#[cfg(feature = "valkey")]
pub use any::{AnyBackend, AnyEngine, is_cluster_address};

#[cfg(feature = "tokio")]
pub use async_engine::{AsyncEngine, DEFAULT_THREADS, MAX_THREADS};
pub use starling_core::{
    AVATAR_MAX_BYTES, Audience, Change, ChangeRecord, Config, Conversation, Counts, Cursor,
    DeliveryId, DeliveryKind, DeviceDelivery, DeviceUsage, DirectMessage, DmPolicy, Durability,
    Error, ErrorKind, FanoutPolicy, Group, GroupId, ImageKind, MAX_PAGE_SIZE, PHONE_CODE_ATTEMPTS,
    Phone, Post, PostId, Profile, QuietHours, Result, StorageError, Toggle, User, UserId, Username,
    utc_day,
};
pub use starling_engine::{
    ChangePage, CheckReport, CodeSource, ConversationPage, EXPORT_FORMAT, Event, ExportSummary,
    FanoutStats, FollowState, GroupPage, MessagePage, OsCodes, PendingPhone, PhoneLink,
    PostOptions, Problem, Progress, Stage, Subscription, Suggestion, Thread, TimelinePage,
    UserPage,
};
pub use starling_memstore::{FaultKind, FaultPlan, FaultyBackend, MemBackend};
pub use starling_rocks::{FamilyStats, RocksBackend, WriteStats};
pub use starling_store::{
    Backend, ChangeStore, ClusterAddress, DirectStore, Direction, FanoutQueue, GraphStore,
    InboxStore, PostStore,
};

/// Shared, reference-counted bytes: what `Engine::avatar` hands out, so
/// that passing a picture on (to an HTTP body, say) copies nothing.
pub use bytes::Bytes;

/// Text messages from and to phones: parsing an incoming text into a
/// command, running it as the phone's owner (`run_text`), and the
/// 160-character formatting of device updates.
pub mod sms {
    pub use starling_sms::{
        Command, Keyword, Limited, NOT_LINKED, NoLimits, RateLimits, Reason, SMS_MAX_CHARS,
        device_text, fit_sms, help_text, parse, reply_for_invalid, run_text, run_text_limited,
    };
}

/// The engine over an embedded RocksDB database.
pub type Engine = starling_engine::Engine<RocksBackend>;

/// The engine over a Valkey (or Redis) cluster:
/// `ValkeyEngine::connect("valkey://host:port,...", namespace, config)`.
#[cfg(feature = "valkey")]
pub type ValkeyEngine = starling_engine::Engine<ValkeyBackend>;

#[cfg(feature = "valkey")]
pub use starling_valkey::{ValkeyBackend, ValkeyOptions};

/// The engine over any backend of the storage seam (the in-memory
/// [`MemBackend`] in tests).
pub use starling_engine::Engine as GenericEngine;

/// The README's examples, compiled and run as doc-tests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
