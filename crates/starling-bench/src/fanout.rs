//! The fan-out scenario: an author with N followers posts P times; the
//! first post goes to fresh inboxes, posts 2 to P to inboxes the earlier
//! posts filled (steady state). Each side is reported beside the raw
//! baseline measured in the same run: the same inbox keys written in
//! sorted batches with the inbox family's options into one database kept
//! across the same sequence of posts (its first post is the fresh figure).
//! Each post is timed on the engine, then on the baseline, so load from
//! elsewhere on the machine falls on both sides alike.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use starling::{Config, Durability};
use starling_rocks::baseline::InboxBaseline;

/// What the fan-out scenario measured.
#[derive(Debug, Serialize)]
pub(crate) struct FanoutReport {
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
    pub(crate) peak_rss_mib: f64,
    /// One-minute load average before and after the run: the machine's
    /// other work, which both sides share.
    pub(crate) load_average_before: f64,
    pub(crate) load_average_after: f64,
}

/// Runs the scenario: `posts` posts (at least 2) to `followers` followers,
/// `batch` followers per write batch.
pub(crate) fn run(followers: u64, posts: usize, batch: usize) -> Result<FanoutReport> {
    if posts < 2 {
        anyhow::bail!("--posts must be at least 2 (the first is fresh, the rest steady)");
    }
    let dir = tempfile::tempdir()?;
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
    let fixture = starling_benches::author_with_followers(followers, config)?;
    let load_seconds = started.elapsed().as_secs_f64();
    let engine = fixture.engine;

    // The baseline's database lives beside the engine's, and each post is
    // timed on both sides one after the other, so a machine whose load
    // changes during the run weighs on both sides alike.
    let mut baseline = InboxBaseline::open(&dir.path().join("baseline"))?;
    let posted = Instant::now();
    engine.post(fixture.author, "hello, everyone")?;
    let post_ack_ms = posted.elapsed().as_secs_f64() * 1e3;
    engine.wait_for_fanout()?;
    let delivery_seconds = posted.elapsed().as_secs_f64();
    let baseline_seconds = baseline.write_post(followers, batch)?.as_secs_f64();
    let (mut steady_seconds, mut steady_baseline_seconds) = (0.0, 0.0);
    let mut slowest: f64 = 0.0;
    for i in 2..=posts {
        let t = Instant::now();
        engine.post(fixture.author, &format!("hello again, number {i}"))?;
        engine.wait_for_fanout()?;
        let took = t.elapsed().as_secs_f64();
        slowest = slowest.max(took);
        steady_seconds += took;
        steady_baseline_seconds += baseline.write_post(followers, batch)?.as_secs_f64();
    }
    engine.close()?;
    drop(baseline);
    drop(fixture.dir);
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
        peak_rss_mib: crate::peak_rss_mib(Path::new("/proc/self/status")),
        load_average_before,
        load_average_after: load_average(Path::new("/proc/loadavg")),
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
        "fan-out to {} followers, first post (fresh): delivered in {:.3} s ({:.0} entries/s); \
         baseline {:.3} s ({:.0} entries/s); ratio {:.2}; post ack {:.2} ms",
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
}

#[cfg(test)]
mod tests {
    #[test]
    fn small_run_reports_both_sides() {
        let r = super::run(2_000, 3, 500).expect("fan-out scenario");
        assert_eq!(r.posts, 3);
        assert!(r.entries_per_sec > 0.0 && r.baseline_entries_per_sec > 0.0);
        assert!(r.steady_entries_per_sec > 0.0 && r.steady_baseline_entries_per_sec > 0.0);
        assert!(r.steady_seconds > 0.0 && r.steady_baseline_seconds > 0.0);
    }

    #[test]
    fn one_post_is_refused() {
        assert!(super::run(10, 1, 10).is_err());
    }
}
