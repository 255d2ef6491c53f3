//! The mixed workload: posts, home-timeline reads, follows, unfollows and
//! deletes over a loaded graph, under one fan-out policy, measured.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use serde::Serialize;
use starling::FanoutQueue;
use starling::{Config, Durability, GenericEngine, PostId, RocksBackend, UserId};

use crate::graph::progress;

/// What one policy's run measured.
#[derive(Debug, Serialize)]
pub(crate) struct PolicyReport {
    pub(crate) policy: String,
    pub(crate) ops: u64,
    pub(crate) posts: u64,
    pub(crate) reads: u64,
    pub(crate) fanout_entries: u64,
    pub(crate) fanout_entries_per_sec: f64,
    pub post_to_visible_ms_p50: f64,
    pub post_to_visible_ms_p99: f64,
    pub(crate) post_to_visible_ms_max: f64,
    pub(crate) celebrity_post_ack_ms: f64,
    pub timeline_read_ms_p50: f64,
    pub timeline_read_ms_p99: f64,
    pub(crate) write_amplification_with_wal: f64,
    pub(crate) write_amplification_without_wal: f64,
    pub(crate) logical_bytes: u64,
    pub(crate) inbox_sst_bytes: u64,
    pub(crate) inbox_entries_estimate: u64,
    pub(crate) disk_bytes_per_inbox_entry: f64,
    pub(crate) seconds: f64,
}

/// One policy to run.
pub(crate) struct Policy {
    pub(crate) name: &'static str,
    pub(crate) config: Config,
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs `ops` operations against the database at `dir` under `policy`.
pub(crate) fn run(
    dir: &Path,
    users: u64,
    ops: u64,
    seed: u64,
    policy: &Policy,
    quiet: bool,
) -> Result<PolicyReport> {
    let backend = RocksBackend::open(dir, &policy.config)?;
    let engine = Arc::new(GenericEngine::with_backend(backend, policy.config.clone())?);
    let mut rng = StdRng::seed_from_u64(seed);
    // Who acts: a Zipf over users, so a few are very active and most rarely
    // are; scattered over ids (a multiplicative permutation) so that how
    // active a user is does not follow how popular the graph made them (the
    // graph's popular accounts have small ids). User 1, the celebrity, acts
    // only where the workload says so.
    let actor = Zipf::new(users as f64, 1.1)?;
    let pick = |rng: &mut StdRng| {
        let rank = actor.sample(rng) as u64 - 1;
        UserId(2 + rank.wrapping_mul(2_654_435_761).wrapping_add(users / 2) % (users - 1))
    };
    let mut read_ms = Vec::new();
    let mut visible_ms = Vec::new();
    let mut celebrity_ack_ms = 0.0;
    let mut my_posts: Vec<(PostId, UserId)> = Vec::new();
    let watch: Arc<Mutex<Vec<(PostId, Instant)>>> = Arc::default();
    let seen_visible: Arc<Mutex<Vec<f64>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Post-to-visible: a watcher polls the job of each sampled post until
    // fan-out has finished it.
    let watcher = {
        let (engine, watch, seen, stop) = (
            Arc::clone(&engine),
            Arc::clone(&watch),
            Arc::clone(&seen_visible),
            Arc::clone(&stop),
        );
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || !watch.lock().is_empty() {
                let mut pending = watch.lock();
                pending.retain(|(post, at)| match engine.backend().job(*post) {
                    Ok(Some(_)) => true,
                    _ => {
                        seen.lock().push(at.elapsed().as_secs_f64() * 1e3);
                        false
                    }
                });
                drop(pending);
                std::thread::sleep(Duration::from_micros(500));
            }
        })
    };
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        progress(ops, policy.name)
    };
    let started = Instant::now();
    let (mut posts, mut reads) = (0, 0);
    for i in 0..ops {
        // The celebrity posts twice: the first post crosses the push
        // threshold (and starts its promotion), the second is pulled.
        let celebrity = i == ops / 4 || i == 3 * ops / 4;
        let roll = if celebrity {
            0
        } else {
            rng.random_range(0..100)
        };
        let who = pick(&mut rng);
        match roll {
            0..5 => {
                let author = if celebrity { UserId(1) } else { who };
                let t = Instant::now();
                let post = engine.post(author, "a short post about nothing much")?;
                if author == UserId(1) {
                    celebrity_ack_ms = t.elapsed().as_secs_f64() * 1e3;
                }
                if posts % 4 == 0 || author == UserId(1) {
                    watch.lock().push((post.id, t));
                }
                my_posts.push((post.id, author));
                posts += 1;
            }
            5..75 => {
                let t = Instant::now();
                engine.home_timeline(who, None, 50)?;
                read_ms.push(t.elapsed().as_secs_f64() * 1e3);
                reads += 1;
            }
            _ => background_op(&engine, roll, who, &mut rng, &pick, &mut my_posts)?,
        }
        if i % 512 == 0 {
            bar.set_position(i);
        }
    }
    engine.wait_for_fanout()?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = watcher.join();
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let stats = engine.fanout_stats();
    engine.backend().flush()?;
    let families = engine.backend().family_stats()?;
    let inbox = families.iter().find(|f| f.name == "inbox");
    let writes = engine.backend().write_stats();
    visible_ms.extend(seen_visible.lock().drain(..));
    visible_ms.sort_by(f64::total_cmp);
    read_ms.sort_by(f64::total_cmp);
    let (sst, keys) = inbox.map_or((0, 0), |f| (f.sst_bytes, f.estimated_keys));
    let engine = Arc::try_unwrap(engine).map_err(|_| anyhow::anyhow!("engine still shared"))?;
    engine.close()?;
    Ok(PolicyReport {
        policy: policy.name.to_owned(),
        ops,
        posts,
        reads,
        fanout_entries: stats.entries_delivered,
        fanout_entries_per_sec: stats.entries_per_sec,
        post_to_visible_ms_p50: percentile(&visible_ms, 0.5),
        post_to_visible_ms_p99: percentile(&visible_ms, 0.99),
        post_to_visible_ms_max: visible_ms.last().copied().unwrap_or(0.0),
        celebrity_post_ack_ms: celebrity_ack_ms,
        timeline_read_ms_p50: percentile(&read_ms, 0.5),
        timeline_read_ms_p99: percentile(&read_ms, 0.99),
        write_amplification_with_wal: writes.amplification_with_wal(),
        write_amplification_without_wal: writes.amplification_without_wal(),
        logical_bytes: writes.logical,
        inbox_sst_bytes: sst,
        inbox_entries_estimate: keys,
        disk_bytes_per_inbox_entry: if keys == 0 {
            0.0
        } else {
            sst as f64 / keys as f64
        },
        seconds,
    })
}

/// The mixed workload's operations besides posts and home reads, by `roll`
/// (75 to 99): `who` follows (75-87) or unfollows (88-94) a user `pick`
/// draws, deletes one of the posts in `my_posts` (95-96), or reads an
/// author page.
pub(crate) fn background_op(
    engine: &GenericEngine<RocksBackend>,
    roll: u32,
    who: UserId,
    rng: &mut StdRng,
    pick: &dyn Fn(&mut StdRng) -> UserId,
    my_posts: &mut Vec<(PostId, UserId)>,
) -> starling::Result<()> {
    match roll {
        75..88 => engine.follow(who, pick(rng)).map(drop).or_else(ignore_self),
        88..95 => engine
            .unfollow(who, pick(rng))
            .map(drop)
            .or_else(ignore_self),
        95..97 => {
            if !my_posts.is_empty() {
                let (post, author) = my_posts.swap_remove(rng.random_range(0..my_posts.len()));
                engine.delete_post(author, post)?;
            }
            Ok(())
        }
        _ => engine.author_timeline(who, None, 20).map(drop),
    }
}

/// Self-follows drawn at random are bad input the workload may produce.
pub(crate) fn ignore_self(e: starling::Error) -> starling::Result<()> {
    match e {
        starling::Error::SelfFollow => Ok(()),
        other => Err(other),
    }
}

/// The policies compared on the same workload.
pub(crate) fn policies(durability: Durability) -> Vec<Policy> {
    let base = Config {
        durability,
        ..Config::default()
    };
    vec![
        Policy {
            name: "push-all",
            config: Config {
                push_threshold: u64::MAX,
                inactive_after_ms: None,
                ..base.clone()
            },
        },
        Policy {
            name: "threshold",
            config: base.clone(),
        },
        Policy {
            name: "rates",
            config: Config {
                fanout_policy: starling::FanoutPolicy::Rates,
                ..base
            },
        },
    ]
}
