//! One post to N followers (push path), in inbox entries per second, beside
//! the raw RocksDB baseline: the same number of inbox keys written in
//! sorted batches to a fresh database with the same options.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use starling::{Config, Durability};
use starling_benches::author_with_followers;

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for followers in [1_000u64, 10_000, 100_000, 1_000_000] {
        group.throughput(Throughput::Elements(followers));
        // Every follower counts as an active reader and no author is pulled:
        // this measures the push path.
        let config = Config {
            durability: Durability::Buffered,
            inactive_after_ms: None,
            push_threshold: u64::MAX,
            ..Config::default()
        };
        let fixture = author_with_followers(followers, config).expect("fixture");
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
        group.bench_with_input(
            BenchmarkId::new("baseline", followers),
            &followers,
            |b, &n| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let dir = tempfile::tempdir().expect("temp dir");
                        total +=
                            starling_rocks::baseline::sorted_inbox_writes(dir.path(), n, 10_000)
                                .expect("baseline");
                    }
                    total
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
