//! `starling-admin`: check, rebuild, stats and backup of a Starling database.
//!
//! Run it while no server has the database open (RocksDB's lock refuses a
//! second opener). `--inbox-cap` and `--backfill-posts` must be the values
//! the application runs with, since inboxes are checked against them.
//!
//! The tool never creates what it inspects: `--dir` must name a Starling
//! store, or the example server's data folder (whose store is `engine/`
//! inside it, which the tool then uses and says so). Anything else is
//! refused with exit status 2 and left as it was.
//!
//! Long work draws progress bars on standard error when it is a terminal;
//! every command ends with one summary line on standard output.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use starling::{Config, Engine, Progress, RocksBackend, Stage};

/// The folder inside the example server's data folder that holds its store.
const SERVER_ENGINE_DIR: &str = "engine";

#[derive(Parser)]
#[command(about = "Check, rebuild, measure and back up a Starling database")]
struct Cli {
    /// The store's folder, or the example server's data folder (the store
    /// in its `engine/` folder is used). Nothing is ever created here.
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

/// The store `dir` names: `dir/engine` when `dir` is the example server's
/// data folder (its `engine/` holds a database), else `dir` itself.
fn store_dir(dir: &Path) -> PathBuf {
    let inner = dir.join(SERVER_ENGINE_DIR);
    if inner.join("CURRENT").is_file() {
        inner
    } else {
        dir.to_path_buf()
    }
}

fn run(cli: Cli) -> Result<bool> {
    let config = Config {
        inbox_cap: cli.inbox_cap,
        backfill_posts: cli.backfill_posts,
        ..Config::default()
    };
    config.validate()?;
    let store = store_dir(&cli.dir);
    if store != cli.dir {
        eprintln!(
            "starling-admin: {} is a server data folder; using its store {}",
            cli.dir.display(),
            store.display()
        );
    }
    let backend = RocksBackend::open_existing(&store, &config).map_err(|e| match e {
        starling::Error::NoStore { .. } => anyhow!(
            "{e}; --dir must name a Starling store, or the example server's data \
             folder (whose store is in {SERVER_ENGINE_DIR}/)"
        ),
        e => anyhow::Error::from(e),
    })?;
    let engine = Engine::with_backend(backend, config)?;
    let started = Instant::now();
    let clean = match cli.command {
        Cmd::Check => {
            let bar = Bar::new();
            let report = engine.check_with_progress(&|p| bar.update(p))?;
            bar.finish();
            for p in &report.problems {
                println!("{p}");
            }
            println!(
                "checked {} users, {} edges, {} posts, {} inbox entries: {} problems ({})",
                report.users,
                report.edges,
                report.posts,
                report.inbox_entries,
                report.problems.len(),
                seconds(started.elapsed())
            );
            report.is_clean()
        }
        Cmd::Rebuild => {
            let bar = Bar::new();
            let report = engine.rebuild_with_progress(&|p| bar.update(p))?;
            let after = engine.check_with_progress(&|p| bar.update(p))?;
            bar.finish();
            println!("repaired {} problems", report.problems.len());
            println!(
                "check after rebuild: {} problems ({} users, {} posts, {})",
                after.problems.len(),
                after.users,
                after.posts,
                seconds(started.elapsed())
            );
            after.is_clean()
        }
        Cmd::Stats => {
            engine.wait_for_fanout()?;
            engine.backend().flush()?;
            let bar = Bar::new();
            let report = engine.check_with_progress(&|p| bar.update(p))?;
            bar.finish();
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
            println!(
                "users {}  edges {}  posts {}  inbox entries {}  pending jobs {}",
                report.users, report.edges, report.posts, report.inbox_entries, report.pending_jobs
            );
            true
        }
        Cmd::Backup { dest } => {
            let bar = Bar::spinner("waiting for fan-out");
            engine.wait_for_fanout()?;
            bar.message("writing checkpoint");
            engine.backend().checkpoint(&dest)?;
            bar.finish();
            let (files, bytes) = folder_size(&dest)?;
            println!(
                "backup written to {}: {files} files, {bytes} bytes ({})",
                dest.display(),
                seconds(started.elapsed())
            );
            true
        }
    };
    engine.close()?;
    Ok(clean)
}

fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Files and bytes under `dir` (a backup: one level, RocksDB's files).
fn folder_size(dir: &Path) -> Result<(u64, u64)> {
    let mut files = 0;
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let meta = entry?.metadata()?;
        if meta.is_file() {
            files += 1;
            bytes += meta.len();
        }
    }
    Ok((files, bytes))
}

/// One progress bar on standard error, redrawn per stage; drawn only when
/// standard error is a terminal, so piped output and tests see none of it.
struct Bar {
    bar: ProgressBar,
    stage: std::cell::Cell<Option<Stage>>,
}

impl Bar {
    fn new() -> Bar {
        Bar {
            bar: ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            stage: std::cell::Cell::new(None),
        }
    }

    fn spinner(message: &'static str) -> Bar {
        let bar = Bar::new();
        bar.bar.set_style(spinner_style());
        bar.bar.enable_steady_tick(Duration::from_millis(120));
        bar.message(message);
        bar
    }

    fn message(&self, message: &'static str) {
        self.bar.set_message(message);
    }

    fn update(&self, p: Progress) {
        if self.stage.get() != Some(p.stage) {
            self.stage.set(Some(p.stage));
            self.bar.reset();
            match p.total {
                Some(total) => {
                    self.bar.set_length(total);
                    self.bar.set_style(bar_style());
                }
                None => {
                    self.bar.unset_length();
                    self.bar.set_style(spinner_style());
                }
            }
            self.bar.set_message(stage_name(p.stage));
        }
        self.bar.set_position(p.done);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Users => "users",
        Stage::Counts => "counts",
        Stage::Posts => "posts",
        Stage::Jobs => "jobs",
        Stage::Repairs => "repairs",
        _ => "working",
    }
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg:>8} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg} {pos} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}
