//! The engine over the in-memory backend against the reference model.

mod check;
mod faults;

use proptest::prelude::*;
use starling_core::{Config, FanoutPolicy};
use starling_engine::{Engine, MemBackend};
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
        rates: bool,
        inactive in proptest::option::of(Just(0u64)),
    ) {
        let mut h = harness(Config {
            backfill_posts: backfill,
            fanout_batch: batch,
            fanout_workers: workers,
            inbox_cap: cap,
            push_threshold: threshold,
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
    let bytes: Vec<u8> = (0u32..600)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
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
}
