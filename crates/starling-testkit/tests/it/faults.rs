//! Injected write and sync failures: the engine poisons itself, refuses
//! every later write, and after reopening holds each operation whole or not
//! at all, with derived state that still checks clean.

use proptest::prelude::*;
use starling_core::Config;
use starling_engine::Engine;
use starling_memstore::{FaultKind, FaultPlan, FaultyBackend, MemBackend};
use starling_testkit::{Harness, Op, ops};

fn harness(plan: FaultPlan, kind: FaultKind) -> Harness<FaultyBackend<MemBackend>> {
    let inner = MemBackend::new();
    let config = Config {
        fanout_batch: 2,
        backfill_posts: 2,
        ..Config::default()
    };
    let mut first = true;
    let reopen = Box::new(move || {
        // The first engine gets the faults; every reopen is fault-free.
        let plan = if std::mem::take(&mut first) {
            plan
        } else {
            FaultPlan::Never
        };
        Engine::with_backend(
            FaultyBackend::new(inner.clone(), plan, kind),
            config.clone(),
        )
    });
    Harness::new(reopen).expect("engine opens")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn failures_poison_and_every_operation_is_all_or_none(
        ops in ops(40),
        seed: u64,
        one_in in 3..30u64,
        sync in any::<bool>(),
    ) {
        let kind = if sync { FaultKind::Sync } else { FaultKind::Write };
        let mut h = harness(FaultPlan::Random { seed, one_in }, kind);
        for op in &ops {
            if let Err(diff) = h.step(op) {
                prop_assert!(false, "{}", diff);
            }
        }
        if let Err(diff) = h.step(&Op::Reopen).and_then(|()| h.check()) {
            prop_assert!(false, "{}", diff);
        }
    }
}

#[test]
fn a_failed_write_poisons_until_reopen() {
    let mut h = harness(FaultPlan::AfterWrites(2), FaultKind::Write);
    for op in [Op::CreateUser("ada".into()), Op::CreateUser("bob".into())] {
        h.step(&op).expect("stored");
    }
    assert!(!h.poisoned());
    h.step(&Op::Follow(1, 0))
        .expect("a failure is not a difference");
    assert!(h.poisoned());
    assert!(matches!(
        h.engine().create_user("cy"),
        Err(starling_core::Error::Poisoned)
    ));
    assert!(matches!(
        h.engine().post(starling_core::UserId(1), "hi"),
        Err(starling_core::Error::Poisoned)
    ));
    h.step(&Op::Reopen).expect("reopen");
    assert!(!h.poisoned());
    h.check()
        .expect("the failed follow was not stored, and nothing else changed");
    assert_eq!(h.model().following(1), Vec::<usize>::new());
    h.step(&Op::Follow(1, 0)).expect("writes work again");
    h.check().expect("matches");
}

#[test]
fn a_failed_sync_leaves_the_write_whole() {
    let mut h = harness(FaultPlan::AfterWrites(2), FaultKind::Sync);
    for op in [Op::CreateUser("ada".into()), Op::CreateUser("bob".into())] {
        h.step(&op).expect("stored");
    }
    h.step(&Op::Follow(1, 0))
        .expect("a failure is not a difference");
    assert!(h.poisoned());
    h.step(&Op::Reopen).expect("reopen");
    h.check().expect("the follow was stored whole");
    assert_eq!(h.model().following(1), vec![0]);
}

/// Making an account public writes one batch per pending request, then
/// one for the protection: a failure in the middle leaves the account
/// protected with the requests before it approved (the harness resolves
/// which from the engine), and a second call finishes the job.
#[test]
fn an_interrupted_unprotect_leaves_a_protected_account_with_fewer_requests() {
    for kind in [FaultKind::Write, FaultKind::Sync] {
        // Four users, the protection and three requests: eight writes;
        // the unprotect's first approval is the ninth, the second fails.
        let mut h = harness(FaultPlan::AfterWrites(9), kind);
        let mut ops: Vec<Op> = ["ada", "bob", "cy", "di"]
            .iter()
            .map(|n| Op::CreateUser((*n).into()))
            .collect();
        ops.push(Op::Protect(0));
        ops.extend((1..4).map(|r| Op::RequestFollow(r, 0)));
        for op in &ops {
            h.step(op).expect("stored");
        }
        assert!(!h.poisoned());
        h.step(&Op::Unprotect(0))
            .expect("a failure is not a difference");
        assert!(h.poisoned(), "{kind:?}");
        h.step(&Op::Reopen).expect("reopen");
        h.check().expect("the partial unprotect is resolved");
        assert!(h.model().is_protected(0), "{kind:?}");
        let approved = match kind {
            FaultKind::Write => vec![1],
            // The failed sync stored the second approval.
            _ => vec![1, 2],
        };
        assert_eq!(h.model().followers(0), approved, "{kind:?}");
        h.step(&Op::Unprotect(0)).expect("finishes");
        h.step(&Op::Check).expect("matches");
        assert!(!h.model().is_protected(0));
        assert_eq!(h.model().followers(0), vec![1, 2, 3]);
    }
}
