//! Starling's storage seam: the domain-level reads every backend answers
//! ([`GraphStore`], [`PostStore`], [`InboxStore`], [`FanoutQueue`],
//! [`DirectStore`], [`ChangeStore`]) and the one write, [`Backend::apply`], that stores a
//! batch of [`Mutation`]s atomically.
//!
//! This crate holds the seam and nothing else: no logic, no I/O, no way to
//! open a store. Backends are built by their own crates (an embedded
//! database from a path, a cluster from its addresses), then handed to the
//! engine. The logic crates (`starling-graph`, `starling-log`,
//! `starling-inbox`) and the engine read through these traits; backends
//! implement them.
//!
//! With the `conformance` feature, [`conformance`] holds the properties
//! every backend must have, one function per property, and the
//! [`conformance_tests!`] macro that runs them all from a backend's tests.

use starling_core::{Durability, GroupId, InboxEntry, Mutation, Result, UserId};

mod changes;
mod direct;
mod graph;
mod inbox;
mod log;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use changes::ChangeStore;
pub use direct::DirectStore;
pub use graph::{Direction, GraphStore};
pub use inbox::{FanoutQueue, InboxStore};
pub use log::PostStore;

/// Where a store that lives on servers is reached: what a backend of such
/// a store converts from (`TryFrom<ClusterAddress>`) so that
/// `Engine::connect(urls, namespace, config)` builds it, as backends on a
/// path convert from `(&Path, &Config)` for `Engine::open`.
#[derive(Clone, Copy, Debug)]
pub struct ClusterAddress<'a> {
    /// Seed addresses, comma-separated (`valkey://host:port,...`).
    pub urls: &'a str,
    /// The store's name on the servers.
    pub namespace: &'a str,
    /// The engine's configuration.
    pub config: &'a starling_core::Config,
}

/// Starling's whole storage seam: the domain-level reads of every store,
/// and one write, [`Backend::apply`], that applies a batch of mutations
/// atomically with the durability asked for.
pub trait Backend:
    GraphStore
    + PostStore
    + InboxStore
    + FanoutQueue
    + DirectStore
    + ChangeStore
    + Send
    + Sync
    + 'static
{
    /// Applies `batch` atomically: afterwards either all of it or none of it
    /// is stored, and no reader sees a part of it. With
    /// [`Durability::Synced`] it is on stable storage when this returns.
    fn apply(&self, batch: &[Mutation], durability: Durability) -> Result<()>;

    /// Stores inbox entries in bulk, each as [`Mutation::InboxPut`] would:
    /// the fan-out of a post to many followers. Entries may come in any
    /// order; of two for the same (owner, post), the later wins.
    ///
    /// The entries become visible at once, and are on stable storage no
    /// later than any write applied after this returns, so a batch that
    /// records their delivery (a job's cursor) can follow them. They are
    /// newer than every write applied before this call and older than
    /// every write applied after it: a later delete or trim removes them.
    ///
    /// The default applies them as one buffered batch. A backend with a
    /// cheaper way to load many sorted keys (RocksDB: a sorted table file
    /// ingested whole, past the memtable and the write-ahead log)
    /// overrides it.
    fn apply_bulk_inbox(&self, entries: &[(UserId, InboxEntry)]) -> Result<()> {
        let batch: Vec<Mutation> = entries
            .iter()
            .map(|&(owner, entry)| Mutation::InboxPut { owner, entry })
            .collect();
        self.apply(&batch, Durability::Buffered)
    }

    /// Starts a bulk load made of several batches of inbox entries, stored
    /// by [`InboxLoad::finish`] ([`InboxLoad`] says when each part is
    /// visible). Fan-out loads the pages of one hold of an author's lock
    /// this way, so a backend that builds a table file per load builds one
    /// for them all.
    ///
    /// The default stores each batch at once with
    /// [`Backend::apply_bulk_inbox`].
    fn bulk_inbox_load(&self) -> Result<Box<dyn InboxLoad + '_>> {
        Ok(Box::new(EachBatch(self)))
    }

    /// Waits until every batch this backend was applying when called has
    /// been applied whole. A backend that applies a batch in parts (a
    /// cluster: slot by slot) lets a reader see some parts without the
    /// others meanwhile; `Engine::check` calls this to tell such a batch
    /// from damage. The default, for backends whose batches are atomic,
    /// has nothing to wait for.
    fn settle(&self) -> Result<()> {
        Ok(())
    }

    /// A new user id, when the store hands ids out itself because more
    /// than one process may write it (a cluster counter): larger than
    /// every id it handed out or stored before, never handed out twice,
    /// and kept as `durability` asks before it is returned. `None`, the
    /// default, leaves counting to the engine, which continues after
    /// [`GraphStore::last_user_id`]: right for a store only the process
    /// that opened it writes.
    fn mint_user_id(&self, durability: Durability) -> Result<Option<UserId>> {
        let _ = durability;
        Ok(None)
    }

    /// A new group id, as [`Backend::mint_user_id`] hands out user ids.
    fn mint_group_id(&self, durability: Durability) -> Result<Option<GroupId>> {
        let _ = durability;
        Ok(None)
    }

    /// The node number this process puts in the post ids it mints
    /// (`configured`, from [`starling_core::Config::node_id`], by
    /// default). A store many processes may write leases each of them a
    /// number no other process holds, so two never mint the same id.
    fn post_id_node(&self, configured: u16) -> Result<u16> {
        Ok(configured)
    }
}

/// A bulk load of inbox entries in parts ([`Backend::bulk_inbox_load`]).
///
/// Entries added are stored as [`Backend::apply_bulk_inbox`] stores them,
/// by the time [`InboxLoad::finish`] returns: visible, on stable storage
/// no later than any write applied after it, and newer than every write
/// applied before it. A part may become visible earlier, when it is added;
/// so what records the load's end (a job's cursor) is written after
/// `finish`, and a load dropped unfinished is one to redo from that record
/// (loading the same entries again changes nothing).
pub trait InboxLoad {
    /// Adds entries, in any order; of two for the same (owner, post),
    /// the later wins.
    fn add(&mut self, entries: &[(UserId, InboxEntry)]) -> Result<()>;

    /// Stores everything added.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// The default load: each part stored when it is added.
struct EachBatch<'a, B: ?Sized>(&'a B);

impl<B: Backend + ?Sized> InboxLoad for EachBatch<'_, B> {
    fn add(&mut self, entries: &[(UserId, InboxEntry)]) -> Result<()> {
        self.0.apply_bulk_inbox(entries)
    }

    fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}
