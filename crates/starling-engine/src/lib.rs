//! Starling's engine, generic over the storage seam ([`Backend`]): users,
//! the follow graph, the post log, fan-out-on-write with a bounded pool of
//! workers, and timelines. The facade crate `starling` instantiates it over
//! RocksDB; tests and fuzzers instantiate it over the in-memory backend of
//! `starling-memstore`.
//!
//! ```
//! use starling_core::Config;
//! use starling_engine::Engine;
//! use starling_memstore::MemBackend;
//!
//! let engine = Engine::with_backend(MemBackend::new(), Config::default())?;
//! let ada = engine.create_user("ada")?;
//! let bob = engine.create_user("bob")?;
//! engine.follow(bob.id, ada.id)?;
//! engine.post(ada.id, "hello")?;
//! engine.wait_for_fanout()?;
//! let page = engine.home_timeline(bob.id, None, 20)?;
//! assert_eq!(page.posts[0].text, "hello");
//! # Ok::<(), starling_core::Error>(())
//! ```

mod account;
#[cfg(test)]
mod account_tests;
mod activity;
mod base;
mod changes;
#[cfg(test)]
mod changes_tests;
mod codes;
mod direct;
mod engine;
mod events;
mod export;
#[cfg(test)]
mod export_tests;
mod fanout;
mod likes;
mod locks;
mod outbox;
mod phone;
mod positions;
mod posting;
mod progress;
mod protect;
mod reads;
#[cfg(all(test, feature = "serde"))]
mod serde_tests;
mod social;
mod users;

pub use account::DELETE_BATCH;
pub use changes::ChangePage;
pub use codes::{CodeSource, OsCodes};
pub use direct::{ConversationPage, MessagePage};
pub use engine::{Engine, FanoutStats};
pub use events::{Event, SUBSCRIPTION_CAPACITY, Subscription};
pub use export::{EXPORT_FORMAT, ExportSummary};
pub use phone::{PendingPhone, PhoneLink};
pub use posting::PostOptions;
pub use protect::FollowState;
pub use social::{
    GroupPage, MAX_THREAD_DEPTH, SUGGESTION_FANOUT, SUGGESTION_FOLLOWEES, Suggestion, Thread,
};
pub use starling_inbox::{CheckReport, Problem, Progress, Stage, TimelinePage, Viewer};
pub use starling_store::Backend;
pub use users::UserPage;
