//! Fan-out over a Valkey cluster beside its raw baseline, in one criterion
//! group, so the report shows the ratio: a post's inbox entries to N
//! followers written as the engine's bulk deliveries write them
//! (`apply_bulk_inbox` in pages of `bulk_fanout_batch`: per primary, one
//! fenced script call per chunk), and the same members to the same keys as
//! plain pipelined `ZADD`s through the same client. Every round starts
//! from empty inboxes (cleared outside the measured time).
//!
//! Uses the cluster named by `STARLING_VALKEY_URLS` if set; otherwise
//! starts one with `scripts/cluster` (3 primaries, 2 replicas each;
//! `STARLING_CLUSTER_PRIMARIES` changes the count) on free ports and stops
//! it at the end. `STARLING_BENCH_FOLLOWERS` (comma-separated) replaces
//! the default sizes, 100,000 and 1,000,000.
//!
//! ```sh
//! cargo bench -p starling-valkey --bench cluster_fanout
//! ```

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use starling_core::{Config, InboxEntry, PostId, UserId};
use starling_store::Backend;
use starling_valkey::{ValkeyBackend, ValkeyOptions};

/// A cluster this benchmark started, stopped when dropped.
struct Started {
    port: u16,
    dir: PathBuf,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["stop", "--port", &self.port.to_string(), "--dir"])
            .arg(&self.dir)
            .status();
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/cluster")
}

/// The first of `count` consecutive free ports (and their bus ports,
/// 10,000 above) from 7600 up.
fn free_ports(count: u16) -> u16 {
    let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
    (7600..7990)
        .step_by(usize::from(count))
        .find(|&base| (base..base + count).all(|p| free(p) && free(p + 10_000)))
        .expect("free ports for a cluster")
}

/// The seed URLs and, when this benchmark started the cluster, its guard.
fn cluster() -> (String, Option<Started>) {
    if let Ok(urls) = std::env::var("STARLING_VALKEY_URLS") {
        return (urls, None);
    }
    let primaries: u16 = std::env::var("STARLING_CLUSTER_PRIMARIES")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3);
    let port = free_ports(primaries * 3);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-cluster-{port}"));
    let out = Command::new(script())
        .args(["start", "--primaries", &primaries.to_string(), "--port"])
        .arg(port.to_string())
        .arg("--dir")
        .arg(&dir)
        .output()
        .expect("scripts/cluster runs");
    assert!(
        out.status.success(),
        "scripts/cluster start failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let urls = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (urls, Some(Started { port, dir }))
}

fn sizes() -> Vec<u64> {
    std::env::var("STARLING_BENCH_FOLLOWERS")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100_000, 1_000_000])
}

/// Which side of the comparison a round writes.
#[derive(Clone, Copy)]
enum Side {
    Engine,
    Baseline,
}

/// One round: one post's entries to every follower, page by page; returns
/// the time spent writing.
fn round(backend: &ValkeyBackend, side: Side, owners: &[UserId], post: PostId) -> Duration {
    let entry = InboxEntry {
        post,
        author: UserId(u64::MAX / 2),
    };
    let mut page = Vec::new();
    let mut spent = Duration::ZERO;
    for chunk in owners.chunks(Config::default().bulk_fanout_batch) {
        page.clear();
        page.extend(chunk.iter().map(|o| (*o, entry)));
        let started = Instant::now();
        match side {
            Side::Engine => backend.apply_bulk_inbox(&page),
            Side::Baseline => backend.baseline_inbox_zadd(&page),
        }
        .expect("fan-out writes");
        spent += started.elapsed();
    }
    backend
        .baseline_clear_inboxes(owners)
        .expect("inboxes cleared");
    spent
}

fn main() {
    let (urls, started) = cluster();
    let ns = format!("bench-{}", std::process::id());
    let engine = ValkeyBackend::connect(&ValkeyOptions::from_url_list(&urls, &ns))
        .expect("engine side connects");
    let raw = ValkeyBackend::connect(&ValkeyOptions::from_url_list(&urls, &format!("{ns}-raw")))
        .expect("baseline side connects");
    let mut c = Criterion::default().configure_from_args();
    {
        let mut group = c.benchmark_group("cluster_fanout");
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(1));
        group.measurement_time(Duration::from_secs(1));
        let mut post = 1_800_000_000_000u64;
        for followers in sizes() {
            let owners: Vec<UserId> = (1..=followers).map(UserId).collect();
            group.throughput(Throughput::Elements(followers));
            for (name, side, backend) in [
                ("engine", Side::Engine, &engine),
                ("baseline", Side::Baseline, &raw),
            ] {
                group.bench_with_input(BenchmarkId::new(name, followers), &followers, |b, _| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| {
                                post += 1;
                                round(backend, side, &owners, PostId::from_parts(post, 1, 0))
                            })
                            .sum()
                    });
                });
            }
        }
        group.finish();
    }
    c.final_summary();
    drop((engine, raw));
    drop(started);
}
