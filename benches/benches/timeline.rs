//! A 50-entry hydrated home page: inbox only (the baseline), with 20 pulled
//! authors merged at read time, and pages past the inbox cap (pull merge).

use criterion::{Criterion, criterion_group, criterion_main};
use starling::Cursor;
use starling_benches::reader_fixture;

fn timeline(c: &mut Criterion) {
    let mut group = c.benchmark_group("timeline");
    let inbox_only = reader_fixture(40, 0, 25).expect("fixture");
    group.bench_function("home_50/inbox_only", |b| {
        b.iter(|| {
            inbox_only
                .engine
                .home_timeline(inbox_only.reader, None, 50)
                .expect("page")
        })
    });
    let mixed = reader_fixture(20, 20, 25).expect("fixture");
    group.bench_function("home_50/20_pulled_authors", |b| {
        b.iter(|| {
            mixed
                .engine
                .home_timeline(mixed.reader, None, 50)
                .expect("page")
        })
    });
    // Past the cap of 800: 40 authors x 25 posts = 1,000 posts; a cursor
    // positioned beyond the inbox makes every page a pull merge.
    let first = inbox_only
        .engine
        .home_timeline(inbox_only.reader, None, 50)
        .expect("page");
    let last = first.posts.last().expect("posts").id;
    let past_cap = Cursor::timeline(last, u32::MAX);
    group.bench_function("home_50/past_the_cap", |b| {
        b.iter(|| {
            inbox_only
                .engine
                .home_timeline(inbox_only.reader, Some(&past_cap), 50)
                .expect("page")
        })
    });
    group.finish();
}

criterion_group!(benches, timeline);
criterion_main!(benches);
