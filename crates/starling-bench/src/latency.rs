//! Latency distributions the criterion means cannot show: durable post
//! acknowledgement with concurrent posters (group commit), beside raw synced
//! RocksDB writes from as many threads; and warm home-page reads with pulled
//! authors merged at read time. With `--store`, both again on a cluster,
//! beside the embedded figures of the same run.

use std::time::Instant;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use starling::{Backend, Config, Durability, Engine, GenericEngine, ValkeyEngine};

/// Percentiles in milliseconds.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Percentiles {
    pub(crate) samples: usize,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
}

fn percentiles(mut ms: Vec<f64>) -> Percentiles {
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| {
        ms.get(((ms.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Percentiles {
        samples: ms.len(),
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: ms.last().copied().unwrap_or(0.0),
    }
}

/// Post acknowledgement latency with `posters` threads, each posting
/// `each` times, synced.
pub(crate) fn post_ack(posters: usize, each: usize) -> Result<(Percentiles, Percentiles)> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(dir.path(), synced())?;
    let ours = ack_latencies(engine, posters, each)?;
    let base = tempfile::tempdir()?;
    let baseline =
        starling_rocks::baseline::synced_write_latencies(base.path(), posters, each as u64)?;
    Ok((ours, percentiles(baseline)))
}

/// [`post_ack`] on the cluster at `urls`, in a namespace of its own.
pub(crate) fn post_ack_on_cluster(urls: &str, posters: usize, each: usize) -> Result<Percentiles> {
    let engine = ValkeyEngine::connect(urls, &namespace("ack"), synced())?;
    ack_latencies(engine, posters, each)
}

fn synced() -> Config {
    Config {
        durability: Durability::Synced,
        ..Config::default()
    }
}

/// A namespace no other run uses.
fn namespace(what: &str) -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("bench-{what}-{}-{millis}", std::process::id())
}

fn ack_latencies<B: Backend>(
    engine: GenericEngine<B>,
    posters: usize,
    each: usize,
) -> Result<Percentiles> {
    let authors: Vec<_> = (0..posters)
        .map(|i| engine.create_user(&format!("poster{i}")).map(|u| u.id))
        .collect::<starling::Result<_>>()?;
    let samples = std::sync::Mutex::new(Vec::with_capacity(posters * each));
    std::thread::scope(|s| {
        for &a in &authors {
            let (engine, samples) = (&engine, &samples);
            s.spawn(move || {
                let mut mine = Vec::with_capacity(each);
                for i in 0..each {
                    let t = Instant::now();
                    if engine.post(a, &format!("post number {i}")).is_ok() {
                        mine.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                }
                if let Ok(mut all) = samples.lock() {
                    all.extend(mine);
                }
            });
        }
    });
    engine.close()?;
    let ours = samples.into_inner().unwrap_or_default();
    if ours.len() != posters * each {
        anyhow::bail!("some posts failed");
    }
    Ok(percentiles(ours))
}

/// Warm 50-entry home pages for a reader following `push` authors under
/// the threshold and `pulled` over it, `posts_each` posts apiece.
pub(crate) fn home_reads(
    push: usize,
    pulled: usize,
    posts_each: usize,
    reads: usize,
) -> Result<Percentiles> {
    let fixture = starling_benches::reader_fixture(push, pulled, posts_each)?;
    page_latencies(fixture, reads)
}

/// [`home_reads`] on the cluster at `urls`, in a namespace of its own.
pub(crate) fn home_reads_on_cluster(
    urls: &str,
    (push, pulled, posts_each): (usize, usize, usize),
    reads: usize,
) -> Result<Percentiles> {
    let config = starling_benches::timeline_config();
    let engine = ValkeyEngine::connect(urls, &namespace("home"), config)?;
    let fixture = starling_benches::reader_fixture_on(engine, push, pulled, posts_each)?;
    page_latencies(fixture, reads)
}

fn page_latencies<B: Backend>(
    fixture: starling_benches::TimelineFixture<B>,
    reads: usize,
) -> Result<Percentiles> {
    let (engine, reader) = (fixture.engine, fixture.reader);
    let mut ms = Vec::with_capacity(reads);
    for _ in 0..reads + 100 {
        let t = Instant::now();
        let page = engine.home_timeline(reader, None, 50)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        if page.posts.len() != 50 {
            anyhow::bail!("short page: {}", page.posts.len());
        }
    }
    engine.close()?;
    drop(fixture.dir);
    // The first hundred reads warm the caches.
    Ok(percentiles(ms.split_off(100)))
}
