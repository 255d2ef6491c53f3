//! Starling's workload driver.
//!
//! `cargo run --release -p starling-bench -- fanout --followers 100000`
//! loads an author with N followers, publishes one post, and reports how
//! long delivery to every inbox took, beside a raw RocksDB baseline that
//! writes the same number of inbox keys in sorted batches in the same run;
//! `fanout --posts 20` adds the steady state (posts 2 to 20 to the same
//! followers, beside a baseline that keeps one database across the same
//! posts). `soak --minutes 10` runs the mixed workload long enough for
//! compaction to settle and reports write amplification over time.
//! `chart` draws the reports that `scripts/bench` gathers (by default
//! `docs/bench-results.json` and the `soak.jsonl` beside it) as SVG charts
//! in `docs`.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use clap::{Parser, Subcommand};
use serde::Serialize;
use starling::{Config, Durability, RocksBackend};

#[derive(Parser)]
#[command(about = "Starling's workload driver")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
    /// Print one JSON object instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Run `fanout` and `latency` on a Valkey cluster
    /// (`valkey://host:port[,host:port...]`, each run in a namespace of
    /// its own) instead of the embedded database.
    #[arg(long, global = true)]
    store: Option<String>,
}

#[derive(Subcommand)]
enum Scenario {
    /// A power-law graph and a mixed workload, under each fan-out policy.
    Mixed {
        /// Users in the graph.
        #[arg(long, default_value_t = 200_000)]
        users: u64,
        /// Followers of the most-followed account.
        #[arg(long, default_value_t = 150_000)]
        celebrity_followers: u64,
        /// Mean followings per user.
        #[arg(long, default_value_t = 20.0)]
        mean_following: f64,
        /// Operations per policy.
        #[arg(long, default_value_t = 200_000)]
        ops: u64,
        /// Seed of the graph and the workload.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Acknowledge posts after fsync (default: buffered).
        #[arg(long)]
        synced: bool,
    },
    /// Latency percentiles: synced post acknowledgement with 1 and 8 posters
    /// (beside raw synced writes), and warm home pages with 20 pulled authors.
    Latency {
        /// Posts per poster.
        #[arg(long, default_value_t = 500)]
        posts: usize,
        /// Home-page reads measured.
        #[arg(long, default_value_t = 2000)]
        reads: usize,
    },
    /// P posts to N followers: fan-out entries per second, first post
    /// (fresh) and posts 2..P (steady), each against its raw baseline.
    Fanout {
        /// Followers of the author.
        #[arg(long, default_value_t = 100_000)]
        followers: u64,
        /// Posts by the author (the first fresh, the rest steady state).
        #[arg(long, default_value_t = 20)]
        posts: usize,
        /// Followers per fan-out write batch.
        #[arg(long, default_value_t = 10_000)]
        batch: usize,
    },
    /// Draws SVG charts (fan-out fresh and steady, home-read and post
    /// latency, soak write amplification) from the `fanout`, `latency` and
    /// `soak` reports that `scripts/bench` gathers; without arguments, from
    /// the files it saved in docs/.
    Chart {
        /// The gathered reports: {"cores": N, "fanout": [report, ...], "latency": report}.
        #[arg(long, default_value = "docs/bench-results.json")]
        input: std::path::PathBuf,
        /// A soak's JSON-lines file, drawn as soak-wa.svg (by default the
        /// soak.jsonl beside the input, if there is one).
        #[arg(long)]
        soak: Option<std::path::PathBuf>,
        /// The folder the SVG files are written to.
        #[arg(long, default_value = "docs")]
        out: std::path::PathBuf,
    },
    /// The mixed workload for minutes, a report line per interval (also
    /// written to a JSON-lines file): write amplification, stalls, disk
    /// bytes per inbox entry, post-to-visible and home-read p99.
    Soak(soak::Args),
}

mod chart;
mod fanout;
mod graph;
mod latency;
mod mixed;
mod soak;

#[derive(Serialize)]
struct MixedReport {
    users: u64,
    edges: u64,
    celebrity_followers: u64,
    load_seconds: f64,
    policies: Vec<mixed::PolicyReport>,
    peak_rss_mib: f64,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(store) = &cli.store {
        if !starling::is_cluster_address(store) {
            anyhow::bail!("--store takes valkey://host:port addresses");
        }
        if !matches!(
            cli.scenario,
            Scenario::Fanout { .. } | Scenario::Latency { .. }
        ) {
            anyhow::bail!(
                "--store runs fanout and latency; mixed and soak measure RocksDB's own statistics"
            );
        }
    }
    match cli.scenario {
        Scenario::Chart { input, soak, out } => {
            let soak = soak.or_else(|| chart::saved_soak(&input));
            for path in chart::write_all(&input, soak.as_deref(), &out)? {
                println!("{}", path.display());
            }
        }
        Scenario::Latency { posts, reads } => {
            let mut out = serde_json::Map::new();
            for posters in [1usize, 8] {
                let (ours, base) = latency::post_ack(posters, posts)?;
                if !cli.json {
                    println!(
                        "synced post ack, {posters} posters: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms \
                         (raw synced write baseline: p50 {:.3} ms, p99 {:.3} ms)",
                        ours.p50_ms, ours.p99_ms, ours.max_ms, base.p50_ms, base.p99_ms
                    );
                }
                out.insert(
                    format!("post_ack_{posters}_posters"),
                    serde_json::to_value(&ours)?,
                );
                out.insert(
                    format!("baseline_synced_write_{posters}_threads"),
                    serde_json::to_value(&base)?,
                );
            }
            let mut record = |key: String, what: String, p: &latency::Percentiles| {
                if !cli.json {
                    println!(
                        "{what}: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                        p.p50_ms, p.p99_ms, p.max_ms
                    );
                }
                serde_json::to_value(p).map(|v| out.insert(key, v))
            };
            for (push, pulled) in [(40usize, 0usize), (20, 20)] {
                let reads_ms = latency::home_reads(push, pulled, 25, reads)?;
                let what = format!("home page of 50, {pulled} pulled authors");
                record(format!("home_50_{pulled}_pulled"), what, &reads_ms)?;
            }
            if let Some(urls) = &cli.store {
                for posters in [1usize, 8] {
                    let ours = latency::post_ack_on_cluster(urls, posters, posts)?;
                    let what = format!("cluster: synced post ack, {posters} posters");
                    record(format!("cluster_post_ack_{posters}_posters"), what, &ours)?;
                }
                for (push, pulled) in [(40usize, 0usize), (20, 20)] {
                    let reads_ms = latency::home_reads_on_cluster(urls, (push, pulled, 25), reads)?;
                    let what = format!("cluster: home page of 50, {pulled} pulled authors");
                    record(format!("cluster_home_50_{pulled}_pulled"), what, &reads_ms)?;
                }
            }
            if cli.json {
                println!("{}", serde_json::Value::Object(out));
            }
        }
        Scenario::Mixed {
            users,
            celebrity_followers,
            mean_following,
            ops,
            seed,
            synced,
        } => {
            let shape = graph::Shape {
                users,
                celebrity_followers: celebrity_followers.min(users.saturating_sub(1)),
                mean_following,
                seed,
            };
            let dir = tempfile::tempdir()?;
            let started = Instant::now();
            let base = RocksBackend::open(&dir.path().join("base"), &Config::default())?;
            let loaded = graph::load(&base, shape, cli.json)?;
            let durability = if synced {
                Durability::Synced
            } else {
                Durability::Buffered
            };
            let policies = mixed::policies(durability);
            for p in &policies {
                base.checkpoint(&dir.path().join(p.name))?;
            }
            drop(base);
            let load_seconds = started.elapsed().as_secs_f64();
            let mut reports = Vec::new();
            for p in &policies {
                reports.push(mixed::run(
                    &dir.path().join(p.name),
                    users,
                    ops,
                    seed,
                    p,
                    cli.json,
                )?);
            }
            let report = MixedReport {
                users,
                edges: loaded.edges,
                celebrity_followers: shape.celebrity_followers,
                load_seconds,
                policies: reports,
                peak_rss_mib: peak_rss_mib(Path::new("/proc/self/status")),
            };
            if cli.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_mixed(&report);
            }
        }
        Scenario::Fanout {
            followers,
            posts,
            batch,
        } => {
            let report = fanout::run(followers, posts, batch, cli.store.as_deref())?;
            if cli.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                fanout::print(&report);
            }
        }
        Scenario::Soak(args) => soak::main(&args, cli.json)?,
    }
    Ok(())
}

fn print_mixed(r: &MixedReport) {
    println!(
        "graph: {} users, {} edges, celebrity with {} followers (loaded in {:.1} s); peak RSS {:.0} MiB",
        r.users, r.edges, r.celebrity_followers, r.load_seconds, r.peak_rss_mib
    );
    for p in &r.policies {
        println!(
            "policy {}: {} ops in {:.1} s ({} posts, {} home reads)",
            p.policy, p.ops, p.seconds, p.posts, p.reads
        );
        println!(
            "  fan-out: {} inbox writes, {:.0} entries/s; post-to-visible p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
             celebrity post ack {:.2} ms",
            p.fanout_entries,
            p.fanout_entries_per_sec,
            p.post_to_visible_ms_p50,
            p.post_to_visible_ms_p99,
            p.post_to_visible_ms_max,
            p.celebrity_post_ack_ms
        );
        println!(
            "  home read p50 {:.3} ms, p99 {:.3} ms; write amplification {:.2} with WAL, {:.2} without \
             ({} logical bytes); inbox {:.1} disk bytes per entry",
            p.timeline_read_ms_p50,
            p.timeline_read_ms_p99,
            p.write_amplification_with_wal,
            p.write_amplification_without_wal,
            p.logical_bytes,
            p.disk_bytes_per_inbox_entry
        );
    }
}

/// The process's peak resident set (VmHWM), in MiB, where the OS reports it.
fn peak_rss_mib(status: &Path) -> f64 {
    std::fs::read_to_string(status)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn chart_args(args: &[&str]) -> (PathBuf, Option<PathBuf>, PathBuf) {
        let cli = Cli::try_parse_from(args).expect("arguments the driver takes");
        match cli.scenario {
            Scenario::Chart { input, soak, out } => (input, soak, out),
            _ => panic!("not the chart subcommand"),
        }
    }

    #[test]
    fn chart_alone_redraws_from_the_files_saved_in_docs() {
        let (input, soak, out) = chart_args(&["starling-bench", "chart"]);
        assert_eq!(input, PathBuf::from("docs/bench-results.json"));
        assert_eq!(soak, None, "the soak.jsonl beside the input, if any");
        assert_eq!(out, PathBuf::from("docs"));
        let (input, soak, out) = chart_args(&[
            "starling-bench",
            "chart",
            "--input",
            "r.json",
            "--soak",
            "s.jsonl",
            "--out",
            "charts",
        ]);
        assert_eq!(input, PathBuf::from("r.json"));
        assert_eq!(soak, Some(PathBuf::from("s.jsonl")));
        assert_eq!(out, PathBuf::from("charts"));
    }
}
