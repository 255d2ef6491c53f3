//! Starling's in-memory backends, built without a disk.
//!
//! [`MemBackend`] is the reference implementation of the storage seam
//! (`starling_store::Backend`): ordered maps under one lock, so every
//! read's promise (order, paging, floors) is plain to see; the conformance
//! suite is written against it. [`FaultyBackend`] wraps any backend and
//! fails its writes on a [`FaultPlan`], to prove that a failure poisons the
//! engine and that every operation is stored all or none.
//!
//! ```
//! use starling_core::{Durability, Mutation, User, UserId, Username};
//! use starling_memstore::MemBackend;
//! use starling_store::{Backend, GraphStore};
//!
//! let db = MemBackend::new();
//! let ada = User { id: UserId(1), name: Username::parse("ada")?, created_at_ms: 0 };
//! db.apply(&[Mutation::PutUser(ada.clone())], Durability::Synced)?;
//! assert_eq!(db.user(UserId(1))?, Some(ada));
//! # Ok::<(), starling_core::Error>(())
//! ```

mod faults;
mod mem;
mod mem_direct;

pub use faults::{FaultKind, FaultPlan, FaultyBackend};
pub use mem::MemBackend;
