//! The social paths beside their plain counterparts, measured in the same
//! run:
//!
//! - a post to a group of all 10,000 followers (the job walks the group's
//!   members and looks each one's follow edge up) beside a public post to
//!   the same 10,000 followers (the job walks the followers);
//! - a 50-entry home page made only of reposts (each entry is checked to be
//!   the post's one appearance, and its original is read) beside a page of
//!   plain posts.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use starling::{Config, Durability};
use starling_benches::{
    author_with_followers, group_of_all_followers, reader_fixture, repost_fixture,
};

const FOLLOWERS: u64 = 10_000;

fn group_fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("social");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(FOLLOWERS));
    let config = Config {
        durability: Durability::Buffered,
        inactive_after_ms: None,
        push_threshold: u64::MAX,
        ..Config::default()
    };
    let fixture = author_with_followers(FOLLOWERS, config).expect("fixture");
    let members = group_of_all_followers(&fixture, FOLLOWERS).expect("group");
    group.bench_function("fanout_10k/public", |b| {
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
    group.bench_function("fanout_10k/group", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                fixture
                    .engine
                    .post_to_group(fixture.author, members, "hello, group")
                    .expect("post");
                fixture.engine.wait_for_fanout().expect("fan-out");
            }
            started.elapsed()
        });
    });
    group.finish();
}

fn repost_pages(c: &mut Criterion) {
    let mut group = c.benchmark_group("social");
    let plain = reader_fixture(40, 0, 25).expect("fixture");
    group.bench_function("home_50/plain_posts", |b| {
        b.iter(|| {
            plain
                .engine
                .home_timeline(plain.reader, None, 50)
                .expect("page")
        })
    });
    let reposts = repost_fixture(40, 25).expect("fixture");
    group.bench_function("home_50/all_reposts", |b| {
        b.iter(|| {
            let page = reposts
                .engine
                .home_timeline(reposts.reader, None, 50)
                .expect("page");
            assert_eq!(page.posts.len(), 50);
            page
        })
    });
    group.finish();
}

criterion_group!(benches, group_fanout, repost_pages);
criterion_main!(benches);
