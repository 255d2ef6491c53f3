//! Follow with backfill (the author has 20 recent posts) and unfollow with
//! cleanup of those entries, beside following an author with no posts.

use criterion::{Criterion, criterion_group, criterion_main};
use starling::{Config, Durability, Engine};

fn follow(c: &mut Criterion) {
    let mut group = c.benchmark_group("follow");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        durability: Durability::Buffered,
        inactive_after_ms: None,
        ..Config::default()
    };
    let engine = Engine::open(dir.path(), config).expect("open");
    let reader = engine.create_user("reader").expect("user").id;
    let busy = engine.create_user("busy").expect("user").id;
    let quiet = engine.create_user("quiet").expect("user").id;
    for i in 0..20 {
        engine.post(busy, &format!("post {i}")).expect("post");
    }
    group.bench_function("follow_unfollow/no_posts", |b| {
        b.iter(|| {
            engine.follow(reader, quiet).expect("follow");
            engine.unfollow(reader, quiet).expect("unfollow");
        })
    });
    group.bench_function("follow_unfollow/backfill_20", |b| {
        b.iter(|| {
            engine.follow(reader, busy).expect("follow");
            engine.unfollow(reader, busy).expect("unfollow");
        })
    });
    group.finish();
}

criterion_group!(benches, follow);
criterion_main!(benches);
