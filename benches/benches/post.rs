//! Durable post acknowledgement (synced) with 1 and 8 concurrent posters,
//! beside raw synced RocksDB writes from as many threads (the baseline).

use std::time::Instant;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use starling::{Config, Durability, Engine};

fn post(c: &mut Criterion) {
    let mut group = c.benchmark_group("post");
    group.sample_size(20);
    for posters in [1usize, 8] {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config {
            durability: Durability::Synced,
            ..Config::default()
        };
        let engine = Engine::open(dir.path(), config).expect("open");
        let authors: Vec<_> = (0..posters)
            .map(|i| engine.create_user(&format!("poster{i}")).expect("user").id)
            .collect();
        group.bench_with_input(
            BenchmarkId::new("synced_ack", posters),
            &posters,
            |b, &n| {
                b.iter_custom(|iters| {
                    let per = iters.div_ceil(n as u64);
                    let started = Instant::now();
                    std::thread::scope(|s| {
                        for &a in &authors {
                            let engine = &engine;
                            s.spawn(move || {
                                for i in 0..per {
                                    engine.post(a, &format!("post {i}")).expect("post");
                                }
                            });
                        }
                    });
                    // Each poster made `per` posts one after another: the wall
                    // time over `per` is the latency each saw per post.
                    started.elapsed().mul_f64(iters as f64 / per as f64)
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("baseline_synced_write", posters),
            &posters,
            |b, &n| {
                let base = tempfile::tempdir().expect("temp dir");
                b.iter_custom(|iters| {
                    let per = iters.div_ceil(n as u64);
                    let took = starling_rocks::baseline::synced_writes(base.path(), n, per)
                        .expect("baseline");
                    took.mul_f64(iters as f64 / per as f64)
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, post);
criterion_main!(benches);
