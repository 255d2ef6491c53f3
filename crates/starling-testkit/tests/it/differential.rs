//! The differential driver on two in-memory engines: the same random
//! sequences agree, and a difference in protection or follow requests
//! between the two is caught.

use proptest::prelude::*;
use starling_core::Config;
use starling_engine::Engine;
use starling_memstore::MemBackend;
use starling_testkit::{Differential, Inboxes, Op, ops};

fn differential() -> Differential<MemBackend, MemBackend> {
    let (first, second) = (MemBackend::new(), MemBackend::new());
    let config = Config {
        backfill_posts: 2,
        fanout_batch: 2,
        ..Config::default()
    };
    let other = config.clone();
    Differential::new(
        Box::new(move || Engine::with_backend(first.clone(), config.clone())),
        Box::new(move || Engine::with_backend(second.clone(), other.clone())),
        3,
        Inboxes::Compared,
    )
    .expect("both engines open")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn two_memory_engines_agree(ops in ops(40)) {
        let mut d = differential();
        for op in ops.iter().chain([&Op::Check]) {
            if let Err(diff) = d.step(op) {
                prop_assert!(false, "{}", diff);
            }
        }
    }
}

#[test]
fn a_difference_in_protection_or_requests_is_caught() {
    let mut d = differential();
    for op in [
        Op::CreateUser("ada".into()),
        Op::CreateUser("bob".into()),
        Op::Protect(0),
        Op::RequestFollow(1, 0),
        Op::Check,
    ] {
        d.step(&op).expect("the same on both");
    }
    let (ada, bob) = (
        d.a.engine().user_by_name("ada"),
        d.b.engine().user_by_name("bob"),
    );
    let (ada, bob) = (ada.expect("ada").id, bob.expect("bob").id);
    // Only the second engine's ada denies the request.
    d.b.engine().deny_follow_request(ada, bob).expect("deny");
    let diff = d.compare().expect_err("a request is missing on one side");
    assert!(diff.contains("follow requests"), "{diff}");
    // Only the first engine's ada goes public (approving bob on it).
    let mut d = differential();
    for op in [
        Op::CreateUser("ada".into()),
        Op::CreateUser("bob".into()),
        Op::Protect(0),
        Op::Check,
    ] {
        d.step(&op).expect("the same on both");
    }
    let ada = d.a.engine().user_by_name("ada").expect("ada").id;
    d.a.engine().unprotect(ada).expect("unprotect");
    let diff = d.compare().expect_err("protection differs");
    assert!(diff.contains("protection of 0"), "{diff}");
}
