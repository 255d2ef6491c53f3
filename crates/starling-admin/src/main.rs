//! `starling-admin`: check, rebuild, stats and backup of a Starling database.
//!
//! Run it while no server has the database open (RocksDB's lock refuses a
//! second opener). `--inbox-cap` and `--backfill-posts` must be the values
//! the application runs with, since inboxes are checked against them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use clap::{Parser, Subcommand};
use starling::{Config, Engine};

#[derive(Parser)]
#[command(about = "Check, rebuild, measure and back up a Starling database")]
struct Cli {
    /// The database folder.
    #[arg(long, default_value = "data")]
    dir: PathBuf,
    /// The inbox cap the application uses.
    #[arg(long, default_value_t = Config::default().inbox_cap)]
    inbox_cap: usize,
    /// The backfill count the application uses.
    #[arg(long, default_value_t = Config::default().backfill_posts)]
    backfill_posts: usize,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Compare all derived state with the ground truth; exit 1 on any difference.
    Check,
    /// Repair every difference `check` finds.
    Rebuild,
    /// Print sizes, counts and write amplification.
    Stats,
    /// Write a consistent copy of the database to a new folder.
    Backup {
        /// The folder to create.
        dest: PathBuf,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(clean) if clean => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("starling-admin: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<bool> {
    if !cli.dir.exists() {
        return Err(anyhow!("no database at {}", cli.dir.display()));
    }
    let config = Config {
        inbox_cap: cli.inbox_cap,
        backfill_posts: cli.backfill_posts,
        ..Config::default()
    };
    let engine = Engine::open(&cli.dir, config)?;
    let clean = match cli.command {
        Cmd::Check => {
            let report = engine.check()?;
            for p in &report.problems {
                println!("{p}");
            }
            println!(
                "checked {} users, {} edges, {} posts, {} inbox entries: {} problems",
                report.users,
                report.edges,
                report.posts,
                report.inbox_entries,
                report.problems.len()
            );
            report.is_clean()
        }
        Cmd::Rebuild => {
            let report = engine.rebuild()?;
            println!("repaired {} problems", report.problems.len());
            let after = engine.check()?;
            println!("check after rebuild: {} problems", after.problems.len());
            after.is_clean()
        }
        Cmd::Stats => {
            engine.wait_for_fanout()?;
            engine.backend().flush()?;
            let report = engine.check()?;
            println!(
                "users {}  edges {}  posts {}  inbox entries {}  pending jobs {}",
                report.users, report.edges, report.posts, report.inbox_entries, report.pending_jobs
            );
            println!(
                "{:<14} {:>14} {:>14} {:>14}",
                "family", "keys (est.)", "sst bytes", "memtable bytes"
            );
            for f in engine.backend().family_stats()? {
                println!(
                    "{:<14} {:>14} {:>14} {:>14}",
                    f.name, f.estimated_keys, f.sst_bytes, f.memtable_bytes
                );
            }
            let w = engine.backend().write_stats();
            println!(
                "written since open: logical {} B, WAL {} B, flush {} B, compaction {} B; \
                 write amplification {:.2} with WAL, {:.2} without",
                w.logical,
                w.wal,
                w.flush,
                w.compaction,
                w.amplification_with_wal(),
                w.amplification_without_wal()
            );
            true
        }
        Cmd::Backup { dest } => {
            engine.wait_for_fanout()?;
            engine.backend().checkpoint(&dest)?;
            println!("backup written to {}", dest.display());
            true
        }
    };
    engine.close()?;
    Ok(clean)
}
