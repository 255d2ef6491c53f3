//! The long-run scenario: the mixed workload (the same graph and the same
//! mix of operations as `mixed`) run for minutes, long enough for
//! compaction to reach steady state, with a report line per interval:
//! write amplification with and without the write-ahead log, flush and
//! compaction bytes, write stalls, disk bytes per live inbox entry,
//! post-to-visible p99 (a few sampled followers of sampled posts) and
//! home-read p99. The lines also go to a JSON-lines file for charts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use serde::Serialize;
use starling::{
    Config, Direction, Durability, GenericEngine, GraphStore, InboxStore, PostId, RocksBackend,
    UserId,
};
use starling_rocks::{InboxCompaction, StallStats, WriteStats};

use crate::graph;
use crate::mixed::{background_op, percentile};

/// The `soak` subcommand's arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Minutes the workload runs.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Seconds the workload runs (overrides --minutes; for smoke tests).
    #[arg(long)]
    seconds: Option<f64>,
    /// Seconds between report lines.
    #[arg(long, default_value_t = 30.0)]
    interval: f64,
    /// Users in the graph.
    #[arg(long, default_value_t = 200_000)]
    users: u64,
    /// Followers of the most-followed account.
    #[arg(long, default_value_t = 150_000)]
    celebrity_followers: u64,
    /// Seconds between posts of the most-followed account (by default it
    /// never posts). With fewer followers than the push threshold
    /// (100,000) and at least `bulk_fanout_min_followers` (50,000), each
    /// of its posts is delivered by bulk loads: the soak then shows what
    /// ingested table files cost later in compaction.
    #[arg(long)]
    celebrity_every: Option<f64>,
    /// The inbox family's compaction style: universal (the store's
    /// default) or leveled.
    #[arg(long, value_enum, default_value_t = Compaction::Universal)]
    inbox_compaction: Compaction,
    /// Mean followings per user.
    #[arg(long, default_value_t = 20.0)]
    mean_following: f64,
    /// Entries kept per inbox; reads trim inboxes back to it.
    #[arg(long, default_value_t = 800)]
    inbox_cap: usize,
    /// Push to every follower, also those who never read (by default
    /// fan-out skips readers inactive for 30 days, and readers who have not
    /// read yet count as inactive: their inboxes are rebuilt on first read).
    #[arg(long)]
    push_to_inactive: bool,
    /// Followers sampled per watched post (every 4th post) for
    /// post-to-visible: followers fan-out pushes to (who have read, unless
    /// --push-to-inactive), of authors under the push threshold.
    #[arg(long, default_value_t = 3)]
    watch_followers: usize,
    /// Seed of the graph and the workload.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// JSON-lines file the interval lines are written to.
    #[arg(long, default_value = "soak.jsonl")]
    out: PathBuf,
}

/// The inbox family's compaction style, as the command line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Compaction {
    Leveled,
    Universal,
}

/// Runs the `soak` subcommand: interval lines as text (or, with `json`, one
/// JSON object at the end).
pub(crate) fn main(args: &Args, json: bool) -> Result<()> {
    let seconds = args.seconds.unwrap_or(args.minutes * 60.0);
    if !(seconds > 0.0 && args.interval > 0.0 && args.users >= 3) {
        anyhow::bail!("the soak needs a positive duration and interval and at least 3 users");
    }
    if args
        .celebrity_every
        .is_some_and(|s| !(s > 0.0 && s.is_finite()))
    {
        anyhow::bail!("--celebrity-every must be a positive number of seconds");
    }
    let spec = SoakSpec {
        shape: graph::Shape {
            users: args.users,
            celebrity_followers: args.celebrity_followers.min(args.users - 1),
            mean_following: args.mean_following,
            seed: args.seed,
        },
        duration: Duration::from_secs_f64(seconds),
        interval: Duration::from_secs_f64(args.interval),
        inbox_cap: args.inbox_cap,
        celebrity_every: args.celebrity_every.map(Duration::from_secs_f64),
        inbox_compaction: match args.inbox_compaction {
            Compaction::Leveled => InboxCompaction::Leveled,
            Compaction::Universal => InboxCompaction::Universal,
        },
        watch_followers: args.watch_followers,
        inactive_after_ms: if args.push_to_inactive {
            None
        } else {
            Config::default().inactive_after_ms
        },
        jsonl: args.out.clone(),
    };
    let report = run(&spec, json)?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "soak: {} users, {} edges (loaded in {:.1} s), inbox cap {}; lines in {}; peak RSS {:.0} MiB",
            report.users,
            report.edges,
            report.load_seconds,
            report.inbox_cap,
            report.jsonl,
            report.peak_rss_mib
        );
    }
    Ok(())
}

/// What the soak runs.
#[derive(Clone, Debug)]
pub(crate) struct SoakSpec {
    /// The graph.
    pub(crate) shape: graph::Shape,
    /// How long the workload runs.
    pub(crate) duration: Duration,
    /// Time between report lines.
    pub(crate) interval: Duration,
    /// Entries kept per inbox (trimming on at this cap).
    pub(crate) inbox_cap: usize,
    /// Time between the most-followed account's posts (never if `None`).
    pub(crate) celebrity_every: Option<Duration>,
    /// How the inbox family compacts.
    pub(crate) inbox_compaction: InboxCompaction,
    /// Followers sampled per watched post for post-to-visible.
    pub(crate) watch_followers: usize,
    /// Whether fan-out skips inactive readers (the default policy) or not.
    pub(crate) inactive_after_ms: Option<u64>,
    /// Where the interval lines go, one JSON object a line.
    pub(crate) jsonl: PathBuf,
}

/// One report line: figures over the interval that ended at `seconds`,
/// and totals since the workload started.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Interval {
    pub(crate) seconds: f64,
    pub(crate) ops: u64,
    pub(crate) posts: u64,
    /// Posts of the most-followed account (user 1).
    pub(crate) celebrity_posts: u64,
    pub(crate) home_reads: u64,
    pub(crate) inbox_writes: u64,
    pub(crate) inbox_writes_per_sec: f64,
    /// Over the interval: physical bytes (WAL, flush, compaction) per user byte.
    pub(crate) write_amplification_with_wal: f64,
    pub(crate) write_amplification_without_wal: f64,
    /// Since the workload started.
    pub(crate) total_write_amplification_with_wal: f64,
    pub(crate) total_write_amplification_without_wal: f64,
    pub(crate) logical_bytes: u64,
    pub(crate) wal_bytes: u64,
    pub(crate) flush_bytes: u64,
    pub(crate) compaction_bytes: u64,
    /// Bytes of table files bulk loads ingested.
    pub(crate) ingest_bytes: u64,
    pub(crate) stall_micros: u64,
    pub(crate) stall_delays: u64,
    pub(crate) stall_stops: u64,
    pub(crate) pending_compaction_bytes: u64,
    pub(crate) inbox_sst_bytes: u64,
    pub(crate) inbox_entries_estimate: u64,
    pub(crate) disk_bytes_per_inbox_entry: f64,
    pub(crate) post_to_visible_samples: usize,
    pub(crate) post_to_visible_ms_p50: f64,
    pub(crate) post_to_visible_ms_p99: f64,
    pub(crate) post_to_visible_unseen: u64,
    /// Fan-out jobs queued or running at the end of the interval.
    pub(crate) fanout_jobs_pending: u64,
    pub(crate) home_read_ms_p50: f64,
    pub(crate) home_read_ms_p99: f64,
    pub(crate) total_seconds: f64,
    pub(crate) total_posts: u64,
    pub(crate) total_inbox_writes: u64,
}

/// The soak's result: every interval line and the graph loaded.
#[derive(Debug, Serialize)]
pub(crate) struct SoakReport {
    pub(crate) users: u64,
    pub(crate) edges: u64,
    pub(crate) load_seconds: f64,
    pub(crate) inbox_cap: usize,
    pub(crate) inbox_compaction: String,
    pub(crate) push_to_inactive: bool,
    pub(crate) jsonl: String,
    pub(crate) intervals: Vec<Interval>,
    /// The last interval: the figure at the end of the run.
    pub(crate) last: Interval,
    pub(crate) peak_rss_mib: f64,
}

/// A sampled (post, follower) pair waiting to show up in the inbox.
struct Watched {
    post: PostId,
    follower: UserId,
    acked: Instant,
}

/// Longest a sampled entry is waited for before it counts as unseen (an
/// unfollow or a delete may have removed it).
const GIVE_UP: Duration = Duration::from_secs(60);

type Engine = GenericEngine<RocksBackend>;

/// Loads the graph, then runs the soak, printing a line per interval
/// unless `quiet`.
pub(crate) fn run(spec: &SoakSpec, quiet: bool) -> Result<SoakReport> {
    let dir = tempfile::tempdir()?;
    let config = Config {
        durability: Durability::Buffered,
        inbox_cap: spec.inbox_cap,
        inactive_after_ms: spec.inactive_after_ms,
        ..Config::default()
    };
    let started = Instant::now();
    let open =
        || RocksBackend::open_with_inbox_compaction(dir.path(), &config, spec.inbox_compaction);
    let backend = open()?;
    let loaded = graph::load(&backend, spec.shape, quiet)?;
    // Statistics count from open: reopen so the bulk load is not counted.
    backend.flush()?;
    drop(backend);
    let backend = open()?;
    let load_seconds = started.elapsed().as_secs_f64();
    let engine = Arc::new(GenericEngine::with_backend(backend, config)?);

    let mut file = std::io::BufWriter::new(std::fs::File::create(&spec.jsonl)?);
    let watch: Arc<Mutex<Vec<Watched>>> = Arc::default();
    let seen: Arc<Mutex<(Vec<f64>, u64)>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (engine, watch, seen, stop) = (
            Arc::clone(&engine),
            Arc::clone(&watch),
            Arc::clone(&seen),
            Arc::clone(&stop),
        );
        std::thread::spawn(move || watch_inboxes(&engine, &watch, &seen, &stop))
    };
    let outcome = workload(&engine, spec, &watch, &seen, &mut file, quiet);
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    file.flush()?;
    let intervals = outcome?;
    engine.wait_for_fanout()?;
    let engine = Arc::try_unwrap(engine).map_err(|_| anyhow::anyhow!("engine still shared"))?;
    engine.close()?;
    Ok(SoakReport {
        users: spec.shape.users,
        edges: loaded.edges,
        load_seconds,
        inbox_cap: spec.inbox_cap,
        inbox_compaction: format!("{:?}", spec.inbox_compaction).to_lowercase(),
        push_to_inactive: spec.inactive_after_ms.is_none(),
        jsonl: spec.jsonl.display().to_string(),
        last: intervals.last().cloned().unwrap_or_default(),
        intervals,
        peak_rss_mib: crate::peak_rss_mib(Path::new("/proc/self/status")),
    })
}

/// Polls the sampled followers' inboxes until each sampled entry shows up
/// (or is given up on), recording post-to-visible times.
fn watch_inboxes(
    engine: &Engine,
    watch: &Mutex<Vec<Watched>>,
    seen: &Mutex<(Vec<f64>, u64)>,
    stop: &AtomicBool,
) {
    let mut page = Vec::with_capacity(1);
    while !stop.load(Ordering::Relaxed) {
        let pending = std::mem::take(&mut *watch.lock());
        let mut still = Vec::with_capacity(pending.len());
        for w in pending {
            page.clear();
            // The newest entry at or before the post: the post itself once
            // delivered.
            let visible = engine
                .backend()
                .inbox(w.follower, Some(PostId(w.post.0 + 1)), 1, &mut page)
                .is_ok()
                && page.first().is_some_and(|e| e.post == w.post);
            let waited = w.acked.elapsed();
            if visible {
                seen.lock().0.push(waited.as_secs_f64() * 1e3);
            } else if waited > GIVE_UP {
                seen.lock().1 += 1;
            } else {
                still.push(w);
            }
        }
        watch.lock().extend(still);
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Running totals the interval lines are differences of.
#[derive(Clone, Copy, Default)]
struct Totals {
    ops: u64,
    posts: u64,
    celebrity_posts: u64,
    reads: u64,
    entries: u64,
    writes: WriteStats,
    stalls: StallStats,
}

/// The mixed workload's loop, run until the spec's duration is up.
fn workload(
    engine: &Engine,
    spec: &SoakSpec,
    watch: &Mutex<Vec<Watched>>,
    seen: &Mutex<(Vec<f64>, u64)>,
    out: &mut impl Write,
    quiet: bool,
) -> Result<Vec<Interval>> {
    let users = spec.shape.users;
    let mut rng = StdRng::seed_from_u64(spec.shape.seed);
    // As in `mixed`: a Zipf over users scattered over ids; user 1, the
    // celebrity, does not act.
    let actor = Zipf::new(users as f64, 1.1)?;
    let pick = |rng: &mut StdRng| {
        let rank = actor.sample(rng) as u64 - 1;
        UserId(2 + rank.wrapping_mul(2_654_435_761).wrapping_add(users / 2) % (users - 1))
    };
    let mut lines = Vec::new();
    let mut my_posts: Vec<(PostId, UserId)> = Vec::new();
    let mut read_ms = Vec::new();
    let mut edges = Vec::with_capacity(1);
    let mut readers = std::collections::HashSet::new();
    let push_threshold = engine.config().push_threshold;
    let started = Instant::now();
    let mut last_line = started;
    let mut now = Totals::default();
    let mut before = Totals::default();
    let mut i: u64 = 0;
    let mut celebrity_posted = started;
    loop {
        if let Some(every) = spec.celebrity_every
            && celebrity_posted.elapsed() >= every
        {
            engine.post(UserId(1), "a post to a great many followers")?;
            celebrity_posted = Instant::now();
            now.celebrity_posts += 1;
        }
        let who = pick(&mut rng);
        match rng.random_range(0..100) {
            0..5 => {
                let post = engine.post(who, "a short post about nothing much")?;
                let acked = Instant::now();
                // Sampled: followers the engine pushes to, i.e. readers
                // (who read during the soak, so not skipped as inactive)
                // of authors under the push threshold.
                if now.posts.is_multiple_of(4)
                    && engine.backend().counts(who)?.followers <= push_threshold
                {
                    let mut w = watch.lock();
                    let mut found = 0;
                    for _ in 0..spec.watch_followers * 8 {
                        if found == spec.watch_followers {
                            break;
                        }
                        edges.clear();
                        let after = UserId(rng.random_range(1..users));
                        engine.backend().edges(
                            who,
                            Direction::Followers,
                            Some(after),
                            1,
                            &mut edges,
                        )?;
                        if edges.is_empty() {
                            engine.backend().edges(
                                who,
                                Direction::Followers,
                                None,
                                1,
                                &mut edges,
                            )?;
                        }
                        if let Some(e) = edges.first()
                            && (spec.inactive_after_ms.is_none() || readers.contains(&e.user))
                        {
                            found += 1;
                            w.push(Watched {
                                post: post.id,
                                follower: e.user,
                                acked,
                            });
                        }
                    }
                }
                my_posts.push((post.id, who));
                now.posts += 1;
            }
            5..75 => {
                let t = Instant::now();
                engine.home_timeline(who, None, 50)?;
                read_ms.push(t.elapsed().as_secs_f64() * 1e3);
                readers.insert(who);
                now.reads += 1;
            }
            roll => background_op(engine, roll, who, &mut rng, &pick, &mut my_posts)?,
        }
        i += 1;
        if !i.is_multiple_of(256) {
            continue;
        }
        let elapsed = started.elapsed();
        if last_line.elapsed() < spec.interval && elapsed < spec.duration {
            continue;
        }
        now.ops = i;
        now.entries = engine.fanout_stats().entries_delivered;
        now.writes = engine.backend().write_stats();
        now.stalls = engine.backend().stall_stats()?;
        let span = last_line.elapsed().as_secs_f64();
        last_line = Instant::now();
        let (visible, unseen) = {
            let mut s = seen.lock();
            (std::mem::take(&mut s.0), std::mem::take(&mut s.1))
        };
        let line = interval_line(
            engine,
            elapsed.as_secs_f64(),
            span,
            &before,
            &now,
            visible,
            unseen,
            std::mem::take(&mut read_ms),
        )?;
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
        out.flush()?;
        if !quiet {
            print_line(&line);
        }
        lines.push(line);
        before = now;
        if elapsed >= spec.duration {
            return Ok(lines);
        }
    }
}

/// The figures of one interval, from the totals at its start and end.
#[allow(clippy::too_many_arguments)]
fn interval_line(
    engine: &Engine,
    seconds: f64,
    span: f64,
    before: &Totals,
    now: &Totals,
    mut visible: Vec<f64>,
    unseen: u64,
    mut reads: Vec<f64>,
) -> Result<Interval> {
    let delta = now.writes.since(&before.writes);
    let families = engine.backend().family_stats()?;
    let (sst, keys) = families
        .iter()
        .find(|f| f.name == "inbox")
        .map_or((0, 0), |f| (f.sst_bytes, f.estimated_keys));
    visible.sort_by(f64::total_cmp);
    reads.sort_by(f64::total_cmp);
    let entries = now.entries - before.entries;
    Ok(Interval {
        seconds: span,
        ops: now.ops - before.ops,
        posts: now.posts - before.posts,
        celebrity_posts: now.celebrity_posts - before.celebrity_posts,
        home_reads: now.reads - before.reads,
        inbox_writes: entries,
        inbox_writes_per_sec: if span > 0.0 {
            entries as f64 / span
        } else {
            0.0
        },
        write_amplification_with_wal: delta.amplification_with_wal(),
        write_amplification_without_wal: delta.amplification_without_wal(),
        total_write_amplification_with_wal: now.writes.amplification_with_wal(),
        total_write_amplification_without_wal: now.writes.amplification_without_wal(),
        logical_bytes: delta.logical,
        wal_bytes: delta.wal,
        flush_bytes: delta.flush,
        compaction_bytes: delta.compaction,
        ingest_bytes: delta.ingest,
        stall_micros: now.stalls.micros - before.stalls.micros,
        stall_delays: now.stalls.delays.saturating_sub(before.stalls.delays),
        stall_stops: now.stalls.stops.saturating_sub(before.stalls.stops),
        pending_compaction_bytes: now.stalls.pending_compaction_bytes,
        inbox_sst_bytes: sst,
        inbox_entries_estimate: keys,
        disk_bytes_per_inbox_entry: if keys == 0 {
            0.0
        } else {
            sst as f64 / keys as f64
        },
        post_to_visible_samples: visible.len(),
        post_to_visible_ms_p50: percentile(&visible, 0.5),
        post_to_visible_ms_p99: percentile(&visible, 0.99),
        post_to_visible_unseen: unseen,
        fanout_jobs_pending: engine.fanout_stats().jobs_pending,
        home_read_ms_p50: percentile(&reads, 0.5),
        home_read_ms_p99: percentile(&reads, 0.99),
        total_seconds: seconds,
        total_posts: now.posts,
        total_inbox_writes: now.entries,
    })
}

fn print_line(l: &Interval) {
    println!(
        "{:>7.0} s: {:.0} inbox writes/s ({} total, {} celebrity posts); WA {:.2} with WAL, {:.2} without \
         (since start {:.2} / {:.2}); flush {} MiB, compaction {} MiB, ingest {} MiB; stalls {} ms \
         ({} delays, {} stops), pending compaction {} MiB; inbox {:.1} B/entry ({} entries); \
         post-to-visible p99 {:.1} ms ({} samples, {} unseen, {} jobs pending); home read p99 {:.2} ms",
        l.total_seconds,
        l.inbox_writes_per_sec,
        l.total_inbox_writes,
        l.celebrity_posts,
        l.write_amplification_with_wal,
        l.write_amplification_without_wal,
        l.total_write_amplification_with_wal,
        l.total_write_amplification_without_wal,
        l.flush_bytes >> 20,
        l.compaction_bytes >> 20,
        l.ingest_bytes >> 20,
        l.stall_micros / 1000,
        l.stall_delays,
        l.stall_stops,
        l.pending_compaction_bytes >> 20,
        l.disk_bytes_per_inbox_entry,
        l.inbox_entries_estimate,
        l.post_to_visible_ms_p99,
        l.post_to_visible_samples,
        l.post_to_visible_unseen,
        l.fanout_jobs_pending,
        l.home_read_ms_p99,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_soak_writes_a_line_per_interval() {
        let dir = tempfile::tempdir().expect("temp dir");
        let jsonl = dir.path().join("soak.jsonl");
        let spec = SoakSpec {
            shape: graph::Shape {
                users: 2_000,
                celebrity_followers: 500,
                mean_following: 10.0,
                seed: 3,
            },
            duration: Duration::from_millis(2_000),
            interval: Duration::from_millis(500),
            inbox_cap: 100,
            celebrity_every: Some(Duration::from_millis(300)),
            inbox_compaction: InboxCompaction::Leveled,
            watch_followers: 2,
            inactive_after_ms: None,
            jsonl: jsonl.clone(),
        };
        let report = run(&spec, true).expect("soak");
        assert!(report.intervals.len() >= 2, "{:?}", report.intervals.len());
        let text = std::fs::read_to_string(&jsonl).expect("lines");
        assert_eq!(text.lines().count(), report.intervals.len());
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("json line");
            assert!(v["write_amplification_with_wal"].is_number());
        }
        assert!(report.intervals.iter().map(|l| l.posts).sum::<u64>() > 0);
        // The celebrity posted about every 300 ms of the 2 s, and each of
        // its posts reached its 500 followers.
        let celebrity: u64 = report.intervals.iter().map(|l| l.celebrity_posts).sum();
        assert!((3..=8).contains(&celebrity), "{celebrity} celebrity posts");
        assert!(report.last.total_inbox_writes >= celebrity * 500);
    }
}
