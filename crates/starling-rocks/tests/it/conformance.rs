//! The RocksDB backend passes the storage seam's conformance suite,
//! reopen included.

use starling_core::Config;
use starling_rocks::RocksBackend;

/// A factory of fresh databases, each in a temporary folder that lives as
/// long as the factory.
fn fresh() -> impl FnMut() -> RocksBackend {
    let mut dirs = Vec::new();
    move || {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = RocksBackend::open(dir.path(), &Config::default()).expect("database opens");
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

starling_store::conformance_tests!(fresh(), reopen: reopen);
