//! Starling's test kit.
//!
//! - [`Model`]: the engine's behaviour written as plainly as possible: sets
//!   and maps, timelines computed from their definition on every read. It
//!   shares no code with the engine's read or write paths.
//! - [`Op`]: one step of a workload (create a user, follow, post, delete,
//!   reopen...), with a proptest strategy ([`ops`]) and a byte decoder for
//!   fuzzers ([`Op::decode`]).
//! - [`Harness`]: drives an [`Engine`] over any backend through a sequence
//!   of ops alongside the model and reports the first difference.
//! - [`Differential`]: drives two engines over two backends through the
//!   same ops and compares every outcome and every read between them.
//!
//! It is a library so that the property tests of every backend and the
//! fuzz targets use the same model.

mod differential;
mod harness;
mod model;
mod ops;

pub use differential::{Differential, Inboxes, Side};
pub use harness::{Harness, Reopen};
pub use model::{Failure, Model, ModelChange, ModelText, Outcome};
#[cfg(feature = "proptest")]
pub use ops::ops;
pub use ops::{Op, PHONES, phone_number};

pub use starling_engine::Engine;
