//! The RocksDB backend of Starling: the only crate that links RocksDB.
//!
//! [`RocksBackend`] implements the storage seam ([`starling_store::Backend`])
//! with one column family per kind of record; the key layout of each is
//! decided in `starling_core::codec` and described in ARCHITECTURE.md. A
//! batch of mutations becomes one RocksDB `WriteBatch`, so it is atomic;
//! synced durability sets `sync` on the write, and RocksDB's write path
//! groups concurrent synced writers into one fsync (group commit).
//!
//! ```
//! use starling_core::{Config, Durability, Mutation, User, UserId, Username};
//! use starling_rocks::RocksBackend;
//! use starling_store::{Backend, GraphStore};
//!
//! let dir = tempfile::tempdir()?;
//! let db = RocksBackend::open(dir.path(), &Config::default())?;
//! let ada = User { id: UserId(1), name: Username::parse("ada")?, created_at_ms: 0 };
//! db.apply(&[Mutation::PutUser(ada.clone())], Durability::Synced)?;
//! assert_eq!(db.user(UserId(1))?, Some(ada));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bulk;
mod db;
mod families;
mod read;
mod stats;
mod write;

pub use db::RocksBackend;
pub use families::InboxCompaction;
pub use stats::{FamilyStats, StallStats, WriteStats};

pub mod baseline;
