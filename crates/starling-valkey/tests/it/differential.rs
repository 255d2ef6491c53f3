//! The engine over the cluster against the engine over the in-memory
//! backend: the same random operation sequences (the model tests'
//! generators) on both, every outcome compared, and after each check and
//! reopen (fan-out waited for on both) every read compared, including what
//! `check()` counts: backend against backend, not against the model.

use proptest::prelude::*;
use starling_core::{Config, Durability, FanoutPolicy};
use starling_engine::Engine;
use starling_memstore::MemBackend;
use starling_testkit::{Differential, Inboxes, Op, ops};
use starling_valkey::ValkeyBackend;

use crate::cluster;

fn differential(config: Config) -> Differential<MemBackend, ValkeyBackend> {
    // Under the rates policy, who gets pushed entries depends on timing.
    let inboxes = match config.fanout_policy {
        FanoutPolicy::Rates => Inboxes::Ignored,
        _ => Inboxes::Compared,
    };
    let memory = MemBackend::new();
    let mem_config = config.clone();
    let options = cluster::options(&cluster::namespace());
    Differential::new(
        Box::new(move || Engine::with_backend(memory.clone(), mem_config.clone())),
        Box::new(move || Engine::with_backend(ValkeyBackend::connect(&options)?, config.clone())),
        3,
        inboxes,
    )
    .expect("both engines open")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]

    #[test]
    fn valkey_engine_matches_memory_engine(
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
        let mut d = differential(Config {
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
        for op in ops.iter().chain([&Op::Check]) {
            if let Err(diff) = d.step(op) {
                prop_assert!(false, "{}", diff);
            }
        }
    }
}
