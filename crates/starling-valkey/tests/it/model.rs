//! The engine over the cluster backend against the reference model: random
//! operation sequences (every operation the model knows, reopens in the
//! middle of fan-out included), compared after every step. Few cases: each
//! step is a few round trips to the cluster.

use proptest::prelude::*;
use starling_core::{Config, Durability, FanoutPolicy};
use starling_engine::Engine;
use starling_testkit::{Harness, ops};
use starling_valkey::ValkeyBackend;

use crate::cluster;

fn harness(config: Config) -> Harness<ValkeyBackend> {
    let options = cluster::options(&cluster::namespace());
    Harness::new(Box::new(move || {
        Engine::with_backend(ValkeyBackend::connect(&options)?, config.clone())
    }))
    .expect("engine connects")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn valkey_engine_matches_model(
        ops in ops(40),
        backfill in 0..4usize,
        batch in 1..4usize,
        cap in 1..8usize,
        threshold in 0..4u64,
        bulk in 0..4u64,
        bulk_batch in 1..4usize,
        rates: bool,
        synced: bool,
    ) {
        let mut h = harness(Config {
            backfill_posts: backfill,
            fanout_batch: batch,
            inbox_cap: cap,
            push_threshold: threshold,
            bulk_fanout_min_followers: bulk,
            bulk_fanout_batch: bulk_batch,
            fanout_policy: if rates { FanoutPolicy::Rates } else { FanoutPolicy::Threshold },
            durability: if synced { Durability::Synced } else { Durability::Buffered },
            ..Config::default()
        });
        for op in &ops {
            if let Err(diff) = h.step(op) {
                prop_assert!(false, "{}", diff);
            }
        }
    }
}
