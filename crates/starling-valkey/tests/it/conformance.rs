//! The Valkey backend passes the storage seam's conformance suite,
//! reopen included: each test on a namespace of its own, all on one
//! cluster.

use starling_valkey::ValkeyBackend;

use crate::cluster;

/// Closes the backend (its lease is given up) and connects again to the
/// same namespace.
fn reopen(db: ValkeyBackend) -> ValkeyBackend {
    let namespace = db.namespace().to_owned();
    drop(db);
    ValkeyBackend::connect(&cluster::options(&namespace)).expect("backend reconnects")
}

starling_store::conformance_tests!(cluster::fresh, reopen: reopen);
