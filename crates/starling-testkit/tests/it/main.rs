//! The engine over the in-memory backend against the reference model.

mod check;
mod differential;
mod direct;
mod faults;
mod protect;
mod social;

use proptest::prelude::*;
use starling_core::{Config, FanoutPolicy};
use starling_engine::Engine;
use starling_memstore::MemBackend;
use starling_testkit::{Harness, Op, ops};

fn harness(config: Config) -> Harness<MemBackend> {
    let backend = MemBackend::new();
    let reopen = Box::new(move || Engine::with_backend(backend.clone(), config.clone()));
    Harness::new(reopen).expect("in-memory engine opens")
}

fn small_config() -> Config {
    Config {
        backfill_posts: 3,
        fanout_batch: 2,
        fanout_workers: 2,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random steps against the model under every policy: small caps (so
    /// reads scroll past the inbox into the pull merge), a push threshold
    /// that authors cross, readers counted inactive at once or never, and
    /// per-edge rates.
    #[test]
    fn engine_matches_model(
        ops in ops(60),
        backfill in 0..4usize,
        batch in 1..4usize,
        workers in 1..3usize,
        cap in 1..8usize,
        threshold in 0..4u64,
        bulk in 0..4u64,
        bulk_batch in 1..4usize,
        rates: bool,
        inactive in proptest::option::of(Just(0u64)),
    ) {
        let mut h = harness(Config {
            backfill_posts: backfill,
            fanout_batch: batch,
            fanout_workers: workers,
            inbox_cap: cap,
            push_threshold: threshold,
            bulk_fanout_min_followers: bulk,
            bulk_fanout_batch: bulk_batch,
            fanout_policy: if rates { FanoutPolicy::Rates } else { FanoutPolicy::Threshold },
            inactive_after_ms: inactive,
            ..Config::default()
        });
        for op in &ops {
            if let Err(diff) = h.step(op) {
                prop_assert!(false, "{}", diff);
            }
        }
    }
}

#[test]
fn fuzz_decoded_ops_match_model() {
    // A fixed byte string through the fuzzers' decoder: every op kind,
    // unknown users and posts, reopen in the middle.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let bytes: Vec<u8> = (0..3000)
        .map(|_| {
            // A 64-bit linear congruential generator's top byte.
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect();
    let mut rest = &bytes[..];
    let mut h = harness(small_config());
    for name in ["ada", "bob", "carol"] {
        h.step(&Op::CreateUser(name.into())).expect("matches");
    }
    while let Some(op) = Op::decode(&mut rest) {
        h.step(&op).expect("engine matches the model");
    }
    h.check().expect("engine matches the model");
    assert!(h.model().post_count() > 10, "the run made posts");
    let m = h.model();
    assert!(
        (0..m.post_count()).any(|p| m.like_count(p) > 0),
        "the run liked posts"
    );
    assert!(
        !h.model().outbox().is_empty(),
        "the run queued texts (codes, messages)"
    );
    assert!(
        (0..m.user_count()).any(|u| m.is_deleted(u)),
        "the run deleted an account"
    );
}

/// A trim leaves a floor; a later backfill can land below it, beside holes
/// the trim made. Reading must not take the sparse entries below the floor
/// for the whole timeline (found by the crash test, seed 77).
#[test]
fn backfill_below_the_trim_floor_does_not_hide_older_posts() {
    let mut h = harness(Config {
        inbox_cap: 3,
        backfill_posts: 5,
        inactive_after_ms: None,
        ..Config::default()
    });
    let ops = [
        Op::CreateUser("ada".into()),
        Op::CreateUser("bob".into()),
        Op::CreateUser("cy".into()),
        Op::CreateUser("dan".into()),
        Op::Post(2, "c0".into()),
        Op::Post(3, "d1".into()),
        Op::Follow(0, 1),
        Op::Follow(0, 3),
        Op::Post(1, "b1".into()),
        Op::Post(1, "b2".into()),
        Op::Post(1, "b3".into()),
        Op::Post(1, "b4".into()),
        // Reads trim ada's inbox past the cap (taking d1 with it).
        Op::Check,
        Op::Unfollow(0, 1),
        // Backfills c0, older than the trim floor.
        Op::Follow(0, 2),
        Op::Check,
    ];
    for op in &ops {
        h.step(op).expect("engine matches the model");
    }
    assert_eq!(
        h.model().home_timeline(0),
        vec![1, 0],
        "d1 and c0, newest first"
    );
}

/// An account with everything deletion removes is deleted; the engine and
/// the model agree before, after, on every operation naming it, on its
/// reserved name, and across a reopen.
#[test]
fn account_deletion_matches_the_model() {
    let mut h = harness(small_config());
    let text = |s: &str| s.to_owned();
    let ops = [
        Op::CreateUser(text("ada")),
        Op::CreateUser(text("bob")),
        Op::CreateUser(text("carol")),
        Op::CreateUser(text("dave")),
        Op::Follow(1, 0),
        Op::Follow(0, 2),
        Op::Follow(2, 0),
        Op::Follow(3, 1),
        Op::Post(0, text("hello")),
        Op::Post(2, text("from carol")),
        Op::Like(0, 1),
        Op::Like(1, 0),
        Op::Repost(1, 0),
        Op::Repost(0, 1),
        Op::CreateGroup(0),
        Op::AddMember(0, 0, 1),
        Op::PostToGroup(0, 0, text("for the group")),
        Op::CreateGroup(2),
        Op::AddMember(2, 1, 0),
        Op::Block(0, 3),
        Op::Mute(3, 0),
        Op::Mute(0, 2),
        Op::Protect(1),
        Op::RequestFollow(0, 1),
        Op::OpenDms(0, true),
        Op::SendDirect(1, 0, text("hi ada")),
        Op::SendDirect(0, 1, text("hi bob")),
        Op::LinkPhone(0, 0),
        Op::ConfirmPhone(0, true),
        Op::Check,
        Op::DeleteAccount(0),
        Op::Check,
        Op::Follow(1, 0),
        Op::Post(0, text("still here?")),
        Op::Like(0, 1),
        Op::Like(2, 0),
        Op::Unlike(1, 0),
        Op::SendDirect(1, 0, text("hello?")),
        Op::MarkRead(1, 0),
        Op::Unmute(3, 0),
        Op::AddMember(2, 1, 0),
        Op::PostToGroup(2, 0, text("not carol's")),
        Op::CreateUser(text("ada")),
        Op::CreateUser(text("ADA")),
        Op::DeleteAccount(0),
        Op::DeleteAccount(9),
        Op::LinkPhone(1, 0),
        Op::Reopen,
        Op::Check,
    ];
    for op in &ops {
        h.step(op).expect("engine matches the model");
    }
    assert!(h.model().is_deleted(0));
}
