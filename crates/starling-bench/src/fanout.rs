//! The fan-out scenario: an author with N followers posts P times; the
//! first post goes to fresh inboxes, posts 2 to P to inboxes the earlier
//! posts filled (steady state). Each side is reported beside the raw
//! baseline measured in the same run: the same inbox keys written in
//! sorted batches with the inbox family's options into one database kept
//! across the same sequence of posts (its first post is the fresh figure).
//! Each post is timed on the engine, then on the baseline, so load from
//! elsewhere on the machine falls on both sides alike.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;
use starling::{
    Backend, Config, Durability, GenericEngine, PostId, UserId, ValkeyBackend, ValkeyOptions,
};
use starling_core::InboxEntry;
use starling_rocks::baseline::InboxBaseline;

/// What the fan-out scenario measured.
#[derive(Debug, Serialize)]
pub(crate) struct FanoutReport {
    /// Where the engine kept its data: `rocksdb` or `valkey`.
    pub(crate) store: &'static str,
    pub(crate) followers: u64,
    pub(crate) posts: usize,
    pub(crate) load_seconds: f64,
    pub(crate) post_ack_ms: f64,
    /// First post, fresh inboxes.
    pub(crate) delivery_seconds: f64,
    pub(crate) entries_per_sec: f64,
    pub(crate) baseline_seconds: f64,
    pub(crate) baseline_entries_per_sec: f64,
    pub(crate) ratio_to_baseline: f64,
    /// Posts 2 to P, delivered one after another.
    pub(crate) steady_seconds: f64,
    pub(crate) steady_entries_per_sec: f64,
    pub(crate) steady_baseline_seconds: f64,
    pub(crate) steady_baseline_entries_per_sec: f64,
    pub(crate) steady_ratio_to_baseline: f64,
    /// Slowest of posts 2 to P, in entries per second.
    pub(crate) steady_slowest_entries_per_sec: f64,
    /// On a cluster: the server's memory per inbox entry (`MEMORY USAGE`
    /// of a sample of inboxes).
    pub(crate) inbox_bytes_per_entry: Option<f64>,
    pub(crate) peak_rss_mib: f64,
    /// One-minute load average before and after the run: the machine's
    /// other work, which both sides share.
    pub(crate) load_average_before: f64,
    pub(crate) load_average_after: f64,
}

/// Runs the scenario: `posts` posts (at least 2) to `followers` followers,
/// `batch` followers per write batch, on the embedded database, or on the
/// cluster at `store` (seed addresses) when given.
pub(crate) fn run(
    followers: u64,
    posts: usize,
    batch: usize,
    store: Option<&str>,
) -> Result<FanoutReport> {
    if posts < 2 {
        anyhow::bail!("--posts must be at least 2 (the first is fresh, the rest steady)");
    }
    // Every follower counts as active and nobody is pulled: the push path.
    let config = Config {
        fanout_batch: batch,
        durability: Durability::Synced,
        inactive_after_ms: None,
        push_threshold: u64::MAX,
        ..Config::default()
    };
    let load_average_before = load_average(Path::new("/proc/loadavg"));
    let started = Instant::now();
    let mut report = match store {
        None => {
            let dir = tempfile::tempdir()?;
            let fixture = starling_benches::author_with_followers(followers, config)?;
            let load_seconds = started.elapsed().as_secs_f64();
            // The baseline's database lives beside the engine's.
            let mut baseline = InboxBaseline::open(&dir.path().join("baseline"))?;
            measure(
                &fixture.engine,
                fixture.author,
                (followers, posts),
                load_seconds,
                || Ok(baseline.write_post(followers, batch)?),
            )?
        }
        Some(urls) => {
            let namespace = format!("bench-fanout-{}-{}", std::process::id(), unix_millis());
            let backend = ValkeyBackend::connect(&ValkeyOptions::from_url_list(urls, &namespace))?;
            let author = starling_benches::load_followers(&backend, followers)?;
            let load_seconds = started.elapsed().as_secs_f64();
            let engine = GenericEngine::with_backend(backend, config)?;
            // The baseline writes the same members to the same inbox keys,
            // under a namespace of its own, through the same cluster.
            let raw = ValkeyBackend::connect(&ValkeyOptions::from_url_list(
                urls,
                &format!("{namespace}-raw"),
            ))?;
            let mut sequence = 0;
            let mut report = measure(&engine, author, (followers, posts), load_seconds, || {
                sequence += 1;
                zadd_post(&raw, author, followers, batch, sequence)
            })?;
            let sample: Vec<u64> = (2..=followers.min(100) + 1).collect();
            let mut bytes = 0;
            for &owner in &sample {
                bytes += engine.backend().inbox_memory_usage(UserId(owner))?;
            }
            report.store = "valkey";
            report.inbox_bytes_per_entry =
                Some(bytes as f64 / (sample.len() as f64 * posts as f64).max(1.0));
            report
        }
    };
    report.load_average_before = load_average_before;
    report.load_average_after = load_average(Path::new("/proc/loadavg"));
    Ok(report)
}

/// The raw counterpart of post number `sequence` on the cluster: its
/// inbox members for followers 2 to `followers + 1`, written as plain
/// pipelined `ZADD`s in batches of `batch`. Returns the time it took.
fn zadd_post(
    raw: &ValkeyBackend,
    author: UserId,
    followers: u64,
    batch: usize,
    sequence: u64,
) -> Result<Duration> {
    let entry = InboxEntry {
        post: PostId::from_parts(unix_millis() + sequence, 1, 0),
        author,
    };
    let mut entries = Vec::with_capacity(batch);
    let started = Instant::now();
    let mut owner = 2;
    while owner <= followers + 1 {
        let end = (owner + batch as u64).min(followers + 2);
        entries.clear();
        entries.extend((owner..end).map(|o| (UserId(o), entry)));
        raw.baseline_inbox_zadd(&entries)?;
        owner = end;
    }
    Ok(started.elapsed())
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Posts `posts` times as `author` to `followers` followers, each post
/// timed on the engine, then on the baseline (`baseline` writes the next
/// post's raw counterpart and returns its time), so load from elsewhere
/// on the machine falls on both sides alike.
fn measure<B: Backend>(
    engine: &GenericEngine<B>,
    author: UserId,
    (followers, posts): (u64, usize),
    load_seconds: f64,
    mut baseline: impl FnMut() -> Result<Duration>,
) -> Result<FanoutReport> {
    let posted = Instant::now();
    engine.post(author, "hello, everyone")?;
    let post_ack_ms = posted.elapsed().as_secs_f64() * 1e3;
    engine.wait_for_fanout()?;
    let delivery_seconds = posted.elapsed().as_secs_f64();
    let baseline_seconds = baseline()?.as_secs_f64();
    let (mut steady_seconds, mut steady_baseline_seconds) = (0.0, 0.0);
    let mut slowest: f64 = 0.0;
    for i in 2..=posts {
        let t = Instant::now();
        engine.post(author, &format!("hello again, number {i}"))?;
        engine.wait_for_fanout()?;
        let took = t.elapsed().as_secs_f64();
        slowest = slowest.max(took);
        steady_seconds += took;
        steady_baseline_seconds += baseline()?.as_secs_f64();
    }
    let steady_entries = followers as f64 * (posts - 1) as f64;
    let rate = |entries: f64, seconds: f64| {
        if seconds > 0.0 {
            entries / seconds
        } else {
            0.0
        }
    };
    let entries_per_sec = rate(followers as f64, delivery_seconds);
    let baseline_entries_per_sec = rate(followers as f64, baseline_seconds);
    let steady_entries_per_sec = rate(steady_entries, steady_seconds);
    let steady_baseline_entries_per_sec = rate(steady_entries, steady_baseline_seconds);
    Ok(FanoutReport {
        store: "rocksdb",
        followers,
        posts,
        load_seconds,
        post_ack_ms,
        delivery_seconds,
        entries_per_sec,
        baseline_seconds,
        baseline_entries_per_sec,
        ratio_to_baseline: rate(entries_per_sec, baseline_entries_per_sec),
        steady_seconds,
        steady_entries_per_sec,
        steady_baseline_seconds,
        steady_baseline_entries_per_sec,
        steady_ratio_to_baseline: rate(steady_entries_per_sec, steady_baseline_entries_per_sec),
        steady_slowest_entries_per_sec: rate(followers as f64, slowest),
        inbox_bytes_per_entry: None,
        peak_rss_mib: crate::peak_rss_mib(Path::new("/proc/self/status")),
        load_average_before: 0.0,
        load_average_after: 0.0,
    })
}

/// The one-minute load average, where the OS reports it (0 elsewhere).
pub(crate) fn load_average(path: &Path) -> f64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// The report as one line of text.
pub(crate) fn print(r: &FanoutReport) {
    println!(
        "fan-out on {} to {} followers, first post (fresh): delivered in {:.3} s ({:.0} entries/s); \
         baseline {:.3} s ({:.0} entries/s); ratio {:.2}; post ack {:.2} ms",
        r.store,
        r.followers,
        r.delivery_seconds,
        r.entries_per_sec,
        r.baseline_seconds,
        r.baseline_entries_per_sec,
        r.ratio_to_baseline,
        r.post_ack_ms,
    );
    println!(
        "posts 2 to {} (steady): {:.3} s ({:.0} entries/s, slowest post {:.0} entries/s); \
         steady baseline {:.3} s ({:.0} entries/s); ratio {:.2}; load {:.1} s; peak RSS {:.0} MiB; load average {:.1} -> {:.1}",
        r.posts,
        r.steady_seconds,
        r.steady_entries_per_sec,
        r.steady_slowest_entries_per_sec,
        r.steady_baseline_seconds,
        r.steady_baseline_entries_per_sec,
        r.steady_ratio_to_baseline,
        r.load_seconds,
        r.peak_rss_mib,
        r.load_average_before,
        r.load_average_after,
    );
    if let Some(bytes) = r.inbox_bytes_per_entry {
        println!("cluster memory per inbox entry: {bytes:.0} bytes");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn small_run_reports_both_sides() {
        let r = super::run(2_000, 3, 500, None).expect("fan-out scenario");
        assert_eq!(r.posts, 3);
        assert!(r.entries_per_sec > 0.0 && r.baseline_entries_per_sec > 0.0);
        assert!(r.steady_entries_per_sec > 0.0 && r.steady_baseline_entries_per_sec > 0.0);
        assert!(r.steady_seconds > 0.0 && r.steady_baseline_seconds > 0.0);
    }

    #[test]
    fn a_cluster_run_reports_both_sides_and_memory() {
        let dir = std::env::temp_dir().join("starling-bench-valkey-cluster-7480");
        let urls = starling_valkey::test_cluster::start(7480, &dir, &["--replicas", "1"]);
        let r = super::run(500, 3, 100, Some(&urls)).expect("fan-out on a cluster");
        assert_eq!(r.store, "valkey");
        assert!(r.entries_per_sec > 0.0 && r.baseline_entries_per_sec > 0.0);
        assert!(r.steady_entries_per_sec > 0.0 && r.steady_baseline_entries_per_sec > 0.0);
        // Three posts in every sampled inbox: a few dozen bytes an entry.
        let bytes = r.inbox_bytes_per_entry.expect("memory measured");
        assert!((8.0..1000.0).contains(&bytes), "{bytes} bytes per entry");
    }

    #[test]
    fn one_post_is_refused() {
        assert!(super::run(10, 1, 10, None).is_err());
    }
}
