//! Starling's storage seam over a Valkey (or Redis) cluster: the same
//! `Engine` when one machine is no longer enough. This is the only crate
//! that links the Redis-protocol client, as `starling-rocks` is the only
//! one that links RocksDB.
//!
//! [`ValkeyBackend::connect`] reaches the cluster through seed addresses,
//! takes the store's writer lease, fences out every earlier writer,
//! replays what an interrupted writer left half done, and returns a
//! [`starling_store::Backend`] to hand to `Engine::with_backend`.
//!
//! ```no_run
//! use starling_store::{Backend, GraphStore};
//! use starling_valkey::{ValkeyBackend, ValkeyOptions};
//!
//! # fn main() -> starling_core::Result<()> {
//! let options = ValkeyOptions::from_url_list(
//!     "valkey://127.0.0.1:7100,valkey://127.0.0.1:7101",
//!     "app",
//! );
//! let backend = ValkeyBackend::connect(&options)?;
//! assert!(backend.last_user_id()?.is_none() || true);
//! # Ok(())
//! # }
//! ```
//!
//! What it keeps, and how:
//!
//! - **Layout.** Keys are `NAMESPACE:{TAG}:NAME`; what one operation
//!   writes for one user shares the tag `{u:ID}` (record, edges both ways,
//!   counts, pulled index, author index, inbox, floor, links, profile,
//!   phone, pending phone link, conversations, device subscriptions and
//!   usage); posts and their jobs are bucketed under `{p:B}`, groups under
//!   `{g:ID}`, and names, phones with their pending links, last reads, the device outbox, the store's metadata and
//!   redo intents have tagged buckets of their own. Members and values are
//!   the bytes `starling_core::codec` lays out for RocksDB. ARCHITECTURE.md
//!   has the whole table.
//! - **Atomicity.** A batch whose keys share one slot is one script call,
//!   atomic on its primary. A batch across slots is first written as a
//!   redo intent, then applied slot by slot, then the intent is removed;
//!   `connect` replays intents left behind. Every operation is idempotent
//!   (counters move only when membership changes), so replay is safe. A
//!   fan-out batch (inbox writes and its job) needs no intent: the entries
//!   are written first and the job's cursor last.
//! - **One writer.** A lease with a fencing token; every write script
//!   refuses an older token than its slot's fence
//!   ([`starling_core::Error::Fenced`]); a second writer is refused with
//!   [`starling_core::Error::WriterLeaseHeld`].
//! - **Durability.** [`starling_core::Durability::Synced`] returns once a
//!   replica of every primary written has the writes in its append-only
//!   file (`WAITAOF 0 1`), or in memory (`WAIT 1`) on servers without
//!   `WAITAOF`; a timeout is an error, never an acknowledgement.
//! - **Faults.** Connection errors, redirects and failovers are retried
//!   with fresh connections for `retry_for`; an unreachable cluster is
//!   [`starling_core::Error::Storage`], an incompatible store
//!   [`starling_core::Error::IncompatibleStore`].

mod backend;
mod baseline;
mod cluster;
mod fanout;
mod inflight;
mod layout;
mod lease;
mod read;
#[cfg(feature = "test-cluster")]
#[doc(hidden)]
pub mod test_cluster;

pub use backend::{ValkeyBackend, ValkeyOptions};
#[doc(hidden)]
pub use inflight::Gate;
