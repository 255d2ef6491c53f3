//! Posts to N followers (push path), in inbox entries per second, each
//! beside its raw RocksDB baseline in the same criterion group, so the
//! report shows the ratio:
//!
//! - `fanout_fresh`: a first post to empty inboxes (the engine opened on a
//!   fresh copy of the loaded graph for every post), beside the same number
//!   of inbox keys written in sorted batches to a fresh database.
//! - `fanout_steady`: the author posting again and again to the same
//!   followers, beside the same keys for the same sequence of posts written
//!   into one database kept across the sequence, with the inbox family's
//!   options.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use starling::{Config, Durability};
use starling_benches::{author_with_followers, fresh_copy};
use starling_rocks::baseline::InboxBaseline;

const SIZES: [u64; 4] = [1_000, 10_000, 100_000, 1_000_000];
const BATCH: usize = 10_000;

/// Every follower counts as an active reader and no author is pulled:
/// this measures the push path.
fn config() -> Config {
    Config {
        durability: Durability::Buffered,
        inactive_after_ms: None,
        push_threshold: u64::MAX,
        fanout_batch: BATCH,
        ..Config::default()
    }
}

fn fresh(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout_fresh");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for followers in SIZES {
        group.throughput(Throughput::Elements(followers));
        let fixture = author_with_followers(followers, config()).expect("fixture");
        group.bench_with_input(BenchmarkId::new("push", followers), &followers, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (engine, _dir) = fresh_copy(&fixture, config()).expect("fresh copy");
                    let started = Instant::now();
                    engine
                        .post(fixture.author, "hello, everyone")
                        .expect("post");
                    engine.wait_for_fanout().expect("fan-out");
                    total += started.elapsed();
                    engine.close().expect("close");
                }
                total
            });
        });
        group.bench_with_input(
            BenchmarkId::new("baseline", followers),
            &followers,
            |b, &n| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let dir = tempfile::tempdir().expect("temp dir");
                        total +=
                            starling_rocks::baseline::sorted_inbox_writes(dir.path(), n, BATCH)
                                .expect("baseline");
                    }
                    total
                });
            },
        );
    }
    group.finish();
}

fn steady(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout_steady");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for followers in SIZES {
        group.throughput(Throughput::Elements(followers));
        let fixture = author_with_followers(followers, config()).expect("fixture");
        group.bench_with_input(BenchmarkId::new("push", followers), &followers, |b, _| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                for _ in 0..iters {
                    fixture
                        .engine
                        .post(fixture.author, "hello, everyone")
                        .expect("post");
                    fixture.engine.wait_for_fanout().expect("fan-out");
                }
                started.elapsed()
            });
        });
        drop(fixture);
        // One database across every iteration, as the engine's inboxes are.
        let dir = tempfile::tempdir().expect("temp dir");
        let mut baseline = InboxBaseline::open(dir.path()).expect("baseline");
        group.bench_with_input(
            BenchmarkId::new("baseline", followers),
            &followers,
            |b, &n| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += baseline.write_post(n, BATCH).expect("baseline");
                    }
                    total
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, fresh, steady);
criterion_main!(benches);
