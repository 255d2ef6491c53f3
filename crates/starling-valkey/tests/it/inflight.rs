//! `check()` over the cluster tells a batch under way from damage: it
//! tolerates what a batch across slots shows between its parts, and
//! nothing more.

use std::time::Duration;

use starling_core::{Config, EdgeMode, Mutation, PostId, UserId};
use starling_engine::{Engine, Problem};
use starling_store::GraphStore;
use starling_valkey::ValkeyBackend;

use crate::cluster;

/// The users a problem is about.
fn users_of(p: &Problem) -> Vec<UserId> {
    match p {
        Problem::ReverseEdgeMissing(a, b, _)
        | Problem::ReverseEdgeExtra(a, b)
        | Problem::PulledIndex(a, b, _, _)
        | Problem::PulledOrphan(a, b) => vec![*a, *b],
        Problem::Counts(u, _, _) | Problem::InboxStale(u, _) | Problem::InboxMissing(u, _) => {
            vec![*u]
        }
        Problem::NameIndex(u) => vec![u.id],
        other => panic!("unexpected problem: {other}"),
    }
}

#[test]
fn check_tolerates_a_batch_under_way_and_reports_damage() {
    let backend =
        ValkeyBackend::connect(&cluster::options(&cluster::namespace())).expect("connect");
    let engine = Engine::with_backend(backend, Config::default()).expect("engine");
    let [ann, bob, cat, dan] =
        ["ann", "bob", "cat", "dan"].map(|n| engine.create_user(n).expect("user").id);
    // Damage: half of a follow of dan by cat, as a writer that died mid
    // batch leaves it (until the next writer replays its intent).
    let follow = Mutation::AddEdge {
        follower: cat,
        followee: dan,
        since: PostId(0),
        mode: EdgeMode::Push,
    };
    let slots = engine
        .backend()
        .interrupted_apply_for_tests(&[follow])
        .expect("half applied");
    assert!(slots >= 2, "the follow spans slots");
    let damaged = engine.check().expect("check");
    assert!(!damaged.is_clean(), "half a follow is damage");

    // A follow of ann by bob, held between its parts. The gate opens
    // whatever happens, so a failed assertion cannot leave it waiting.
    let gate = engine.backend().hold_cross_slot_batches_for_tests();
    struct OpenOnDrop(std::sync::Arc<starling_valkey::Gate>);
    impl Drop for OpenOnDrop {
        fn drop(&mut self) {
            self.0.open();
        }
    }
    std::thread::scope(|s| {
        let _opens = OpenOnDrop(std::sync::Arc::clone(&gate));
        let following = s.spawn(|| engine.follow(bob, ann));
        gate.wait_for_held(1);
        let sides = [
            engine.backend().edge(bob, ann).expect("read").is_some(),
            engine
                .backend()
                .follower_edge(ann, bob)
                .expect("read")
                .is_some(),
        ];
        assert!(
            sides[0] != sides[1],
            "the follow is half applied: {sides:?}"
        );
        let checking = s.spawn(|| engine.check());
        // The check's first pass sees the half follow, then waits for it.
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            !checking.is_finished(),
            "the check waits for the batch under way"
        );
        gate.open();
        following.join().expect("follow thread").expect("follow");
        let report = checking.join().expect("check thread").expect("check");
        assert!(!report.is_clean(), "the damage is still reported");
        for p in &report.problems {
            let users = users_of(p);
            assert!(
                !users.contains(&ann) && !users.contains(&bob),
                "the follow under way is not damage: {p}"
            );
            assert!(users.contains(&cat) || users.contains(&dan), "{p}");
        }
        assert_eq!(
            report.problems, damaged.problems,
            "the same damage, no more"
        );
    });
    engine.close().expect("close");
}
