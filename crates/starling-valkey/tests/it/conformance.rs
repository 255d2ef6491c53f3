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

/// Queueing a text again drops its old lease whatever its kind: the
/// write script finds the lease end after the version byte, and after the
/// kind byte too in a version 2 record (every kind but a post's), so the
/// text stays due once, at its new lease end.
#[test]
fn requeueing_a_leased_text_of_any_kind_keeps_one_lease() {
    use starling_core::{
        DeliveryId, DeliveryKind, DeviceDelivery, DirectMutation, Durability, Mutation, Phone,
        PostId, UserId,
    };
    use starling_store::{Backend, DirectStore};

    let b = cluster::fresh();
    let kinds = [
        DeliveryKind::Post,
        DeliveryKind::Direct,
        DeliveryKind::Code,
        DeliveryKind::Notice,
    ];
    let queued: Vec<DeviceDelivery> = kinds
        .iter()
        .zip(1u64..)
        .map(|(&kind, n)| DeviceDelivery {
            id: DeliveryId {
                post: PostId(n),
                recipient: UserId(10 + n),
            },
            phone: Phone::parse(&format!("+1555555010{n}")).expect("valid"),
            text: format!("text {n}"),
            leased_until_ms: 0,
            kind,
        })
        .collect();
    let queue = |ds: &[DeviceDelivery]| {
        let batch: Vec<Mutation> = ds
            .iter()
            .map(|d| Mutation::Direct(DirectMutation::QueueDelivery(d.clone())))
            .collect();
        b.apply(&batch, Durability::Buffered).expect("queue");
    };
    queue(&queued);
    // Leased until 500, then queued again with a lease until 900.
    for d in &queued {
        let mut l = d.clone();
        l.leased_until_ms = 500;
        b.apply(
            &[Mutation::Direct(DirectMutation::LeaseDelivery {
                delivery: l,
                from_ms: 0,
            })],
            Durability::Buffered,
        )
        .expect("lease");
    }
    let again: Vec<DeviceDelivery> = queued
        .iter()
        .map(|d| DeviceDelivery {
            leased_until_ms: 900,
            ..d.clone()
        })
        .collect();
    queue(&again);
    let due = |now: u64| {
        let mut out = Vec::new();
        b.due_deliveries(now, 64, &mut out).expect("due");
        out
    };
    assert_eq!(due(899), Vec::new(), "no old lease left behind");
    assert_eq!(due(900), again, "each text due once, at its new lease end");
}
