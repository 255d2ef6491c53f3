//! The RocksDB backend passes the storage seam's conformance suite,
//! reopen included, with the inbox family under either compaction style.

use starling_core::Config;
use starling_rocks::{InboxCompaction, RocksBackend};

/// A factory of fresh databases whose inbox family compacts with `style`,
/// each in a temporary folder that lives as long as the factory.
fn fresh(style: InboxCompaction) -> impl FnMut() -> RocksBackend {
    let mut dirs = Vec::new();
    move || {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = RocksBackend::open_with_inbox_compaction(dir.path(), &Config::default(), style)
            .expect("database opens");
        dirs.push(dir);
        db
    }
}

/// Closes the database and opens it again from its folder.
fn reopen(db: RocksBackend) -> RocksBackend {
    let path = db.path().to_owned();
    drop(db);
    RocksBackend::open(&path, &Config::default()).expect("database reopens")
}

starling_store::conformance_tests!(fresh(InboxCompaction::Leveled), reopen: reopen);

/// The suite again over stores whose inbox family compacts universally.
mod universal {
    use starling_core::Config;
    use starling_rocks::{InboxCompaction, RocksBackend};

    use super::fresh;

    /// Closes the database and opens it again, universal as it was made.
    fn reopen(db: RocksBackend) -> RocksBackend {
        let path = db.path().to_owned();
        drop(db);
        RocksBackend::open_with_inbox_compaction(
            &path,
            &Config::default(),
            InboxCompaction::Universal,
        )
        .expect("database reopens")
    }

    starling_store::conformance_tests!(fresh(InboxCompaction::Universal), reopen: reopen);
}
