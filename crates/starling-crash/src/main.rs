//! Starling's crash test.
//!
//! `starling-crash run --seed S --cycles N` repeats N times: start a child
//! (`starling-crash child`) that runs a mixed workload against one database
//! and writes every operation to a log outside it (the intent before the
//! call, the acknowledgement after), kill the child with SIGKILL at a random
//! moment (often in the middle of a large fan-out), then reopen the database
//! and check that
//!
//! - every acknowledged write is there, and the one in flight is whole or absent
//!   (an account deletion in flight whose mark was stored is finished by
//!   calling it again, as an application would);
//! - every pending fan-out job completes;
//! - every list, count and timeline equals the reference model replayed from
//!   the log, and every inbox equals its rebuild from the ground truth
//!   (`check` is clean), so no inbox holds a duplicate or a stale entry.
//!
//! A failure prints the seed and cycle, so it can be replayed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use starling::{Config, Durability, Engine, RocksBackend};
use starling_testkit::{Harness, Op};

#[derive(Parser)]
#[command(about = "Starling's kill -9 crash test")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Sync {
    Synced,
    Buffered,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run kill cycles and verify after each.
    Run {
        /// Seed of every random choice; printed on failure for replay.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Kill cycles.
        #[arg(long, default_value_t = 50)]
        cycles: u64,
        /// Work in this folder (kept) instead of a temporary one.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The workload (started by `run`; runs until killed).
    Child {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        seed: u64,
        #[arg(long, value_enum)]
        durability: Sync,
    },
}

fn config(durability: Durability) -> Config {
    Config {
        durability,
        fanout_batch: 16,
        backfill_posts: 5,
        // User 0 crosses it during the run: its promotion job gets killed too.
        push_threshold: 150,
        // Authors with many followers deliver in bulk (table files
        // ingested), in several batches a job.
        bulk_fanout_min_followers: 40,
        bulk_fanout_batch: 24,
        inbox_cap: 100,
        ..Config::default()
    }
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Cmd::Run { seed, cycles, dir } => run(seed, cycles, dir),
        Cmd::Child {
            dir,
            seed,
            durability,
        } => child(&dir, seed, durability),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The log: `op <op>` before a call, `ack [id]` after it returned, and
/// `resolved stored [id]` / `resolved lost` for an op whose process died.
struct Log {
    file: File,
}

impl Log {
    fn open(dir: &Path) -> Result<Log> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("ops.log"))?;
        Ok(Log { file })
    }

    /// One unbuffered write per line: what returned is in the kernel before
    /// the next call, so SIGKILL cannot lose it.
    fn line(&mut self, line: &str) -> Result<()> {
        self.file.write_all(format!("{line}\n").as_bytes())?;
        Ok(())
    }

    /// Cuts a last line the kill tore. A write that crosses a page of the
    /// file can stop part-way when SIGKILL arrives, and that write had not
    /// returned: a torn `op` line is an op never called, and a torn `ack`
    /// line (whose id may be cut short) leaves its op in flight, to be
    /// resolved from the store like any other.
    fn drop_torn_tail(dir: &Path) -> Result<()> {
        let path = dir.join("ops.log");
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if whole < text.len() {
            OpenOptions::new()
                .write(true)
                .open(&path)?
                .set_len(whole as u64)?;
        }
        Ok(())
    }
}

/// The log's text; none yet (a child killed before it opened the log) is
/// an empty log.
fn read_log(dir: &Path) -> Result<String> {
    match std::fs::read_to_string(dir.join("ops.log")) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e.into()),
    }
}

fn id_word(id: Option<u64>) -> String {
    id.map(|i| format!(" {i}")).unwrap_or_default()
}

/// Opens the engine and replays the log into a harness. Returns the op
/// that was in flight when the last process died, if any.
fn replay(dir: &Path, durability: Durability) -> Result<(Harness<RocksBackend>, Option<Op>)> {
    let db = dir.join("db");
    let cfg = config(durability);
    let mut h = Harness::new(Box::new(move || Engine::open(&db, cfg.clone())))
        .map_err(|e| anyhow!("open: {e}"))?;
    let text = read_log(dir)?;
    let mut pending: Option<Op> = None;
    for (n, line) in text.lines().enumerate() {
        let bad = || anyhow!("log line {}: {line:?}", n + 1);
        let mut words = line.splitn(2, ' ');
        match (words.next(), words.next()) {
            (Some("op"), Some(rest)) => {
                if pending.is_some() {
                    bail!("log line {}: an op follows an unresolved op", n + 1);
                }
                pending = Some(Op::from_line(rest).ok_or_else(bad)?);
            }
            (Some("ack"), id) | (Some("resolved"), id @ Some(_)) => {
                let op = pending.take().ok_or_else(bad)?;
                let id = match id {
                    None | Some("stored") => None,
                    Some("lost") => continue,
                    Some(rest) => Some(
                        rest.trim_start_matches("stored ")
                            .parse::<u64>()
                            .map_err(|_| bad())?,
                    ),
                };
                h.adopt(&op, id)
                    .map_err(|e| anyhow!("replaying line {}: {e}", n + 1))?;
            }
            _ => return Err(bad()),
        }
    }
    Ok((h, pending))
}

fn child(dir: &Path, seed: u64, durability: Sync) -> Result<()> {
    let durability = match durability {
        Sync::Synced => Durability::Synced,
        Sync::Buffered => Durability::Buffered,
    };
    let (mut h, pending) = replay(dir, durability)?;
    if pending.is_some() {
        bail!("the log ends in an unresolved op");
    }
    let mut log = Log::open(dir)?;
    let mut rng = StdRng::seed_from_u64(seed);
    loop {
        let op = next_op(&mut rng, &h);
        log.line(&format!("op {}", op.to_line()))?;
        let (users, posts, groups, messages) = (
            h.user_ids().len(),
            h.post_ids().len(),
            h.group_ids().len(),
            h.message_ids().len(),
        );
        h.step(&op).map_err(|e| anyhow!("child: {e}"))?;
        let id = if h.user_ids().len() > users {
            h.user_ids().last().map(|u| u.0)
        } else if h.post_ids().len() > posts {
            h.post_ids().last().map(|p| p.0)
        } else if h.group_ids().len() > groups {
            h.group_ids().last().map(|g| g.0)
        } else if h.message_ids().len() > messages {
            h.message_ids().last().map(|m| m.0)
        } else {
            None
        };
        log.line(&format!("ack{}", id_word(id)))?;
    }
}

/// A mixed workload: user 0 collects followers, so its posts fan out to
/// hundreds of inboxes in many small batches; everyone follows, unfollows,
/// posts, reposts, deletes, likes, blocks and mutes, and sends direct messages;
/// groups are set up, change members and get posts (user 0's reach
/// hundreds of members); users 0 to 3 protect their accounts now and then,
/// and follows of a protected account become requests, approved or denied
/// (user 0 collects many while protected, so its unprotect approves them
/// in many batches, and kills land in the middle); now and then an account
/// is deleted; some input is bad.
fn next_op(rng: &mut StdRng, h: &Harness<RocksBackend>) -> Op {
    let (users, posts) = (h.user_ids().len(), h.post_ids().len());
    let groups = h.model().group_count();
    let user = |rng: &mut StdRng| rng.random_range(0..users.max(1) + 1);
    let group = |rng: &mut StdRng| rng.random_range(0..groups.max(1));
    let owner = |g: usize| h.model().group_owner(g).unwrap_or(0);
    if users < 4 || (users < 400 && rng.random_bool(0.15)) {
        let name = if rng.random_bool(0.05) {
            "bad name".to_owned()
        } else {
            format!("u{users}")
        };
        return Op::CreateUser(name);
    }
    let protector = |rng: &mut StdRng| rng.random_range(0..4usize);
    match rng.random_range(0..143) {
        0..30 if h.model().is_protected(0) => Op::RequestFollow(user(rng), 0),
        0..30 => Op::Follow(user(rng), 0),
        30..45 => Op::Follow(user(rng), user(rng)),
        45..52 => Op::Unfollow(user(rng), user(rng)),
        52..70 => Op::Post(0, format!("news {posts}")),
        70..90 => {
            let text = if rng.random_bool(0.05) {
                String::new()
            } else {
                format!("post {posts}")
            };
            Op::Post(user(rng), text)
        }
        90..93 => Op::Delete(user(rng), rng.random_range(0..posts.max(1) + 2)),
        93..96 => Op::Repost(user(rng), rng.random_range(0..posts.max(1) + 2)),
        96 => Op::Block(user(rng), user(rng)),
        97 => Op::Unblock(user(rng), user(rng)),
        98 => Op::Mute(user(rng), user(rng)),
        99 => Op::Unmute(user(rng), user(rng)),
        100 => Op::CreateGroup(if rng.random_bool(0.5) { 0 } else { user(rng) }),
        101..112 => {
            let g = group(rng);
            Op::AddMember(owner(g), g, user(rng))
        }
        112..114 => {
            let g = group(rng);
            Op::RemoveMember(owner(g), g, user(rng))
        }
        114..118 => {
            let g = group(rng);
            Op::PostToGroup(owner(g), g, format!("group post {posts}"))
        }
        118..123 => Op::SendDirect(user(rng), user(rng), format!("message {posts}")),
        123..125 => Op::MarkRead(user(rng), user(rng)),
        125 => Op::OpenDms(user(rng), rng.random_bool(0.5)),
        126..130 => Op::Like(user(rng), rng.random_range(0..posts.max(1) + 2)),
        130..132 => Op::Unlike(user(rng), rng.random_range(0..posts.max(1) + 2)),
        // User 0 seldom: protected, its posts reach only its followers.
        132..134 => Op::Protect(if rng.random_bool(0.05) {
            0
        } else {
            rng.random_range(1..4)
        }),
        134..136 => Op::Unprotect(protector(rng)),
        136..140 => Op::RequestFollow(user(rng), protector(rng)),
        // Seldom, and never users 0 to 3: a deletion is many batches, and
        // kills land in the middle of them.
        142 => Op::DeleteAccount(rng.random_range(4..users.max(4) + 1)),
        which => {
            let a = protector(rng);
            let asking = h.model().requesters(a);
            let b = match asking.len() {
                0 => user(rng),
                n => asking[rng.random_range(0..n)],
            };
            if which == 140 {
                Op::Approve(a, b)
            } else {
                Op::Deny(a, b)
            }
        }
    }
}

#[derive(Default)]
struct Tally {
    acked: usize,
    in_flight_stored: usize,
    in_flight_lost: usize,
    jobs_resumed: u64,
}

fn run(seed: u64, cycles: u64, dir: Option<PathBuf>) -> Result<()> {
    let temp;
    let dir = match dir {
        Some(d) => {
            std::fs::create_dir_all(&d)?;
            d
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_owned()
        }
    };
    let exe = std::env::current_exe()?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tally = Tally::default();
    let started = Instant::now();
    for cycle in 0..cycles {
        let durability = if rng.random_bool(0.5) {
            Sync::Synced
        } else {
            Sync::Buffered
        };
        let mut child = Command::new(&exe)
            .args(["child", "--dir"])
            .arg(&dir)
            .args([
                "--seed",
                &(seed.wrapping_mul(1_000_003) ^ cycle).to_string(),
            ])
            .args([
                "--durability",
                if matches!(durability, Sync::Synced) {
                    "synced"
                } else {
                    "buffered"
                },
            ])
            .spawn()
            .context("starting the child")?;
        std::thread::sleep(Duration::from_millis(rng.random_range(50..400)));
        if let Some(status) = child.try_wait()? {
            bail!(
                "seed {seed} cycle {cycle}: the child stopped by itself ({status}); replay with --seed {seed}"
            );
        }
        child.kill()?;
        child.wait()?;
        verify(&dir, &mut tally)
            .with_context(|| format!("seed {seed} cycle {cycle} (replay with --seed {seed})"))?;
    }
    println!(
        "{cycles} kill cycles in {:.1} s: {} acknowledged ops all present; in-flight ops stored {}, lost {}; \
         {} fan-out jobs resumed after a kill; check clean after every cycle",
        started.elapsed().as_secs_f64(),
        tally.acked,
        tally.in_flight_stored,
        tally.in_flight_lost,
        tally.jobs_resumed,
    );
    Ok(())
}

fn verify(dir: &Path, tally: &mut Tally) -> Result<()> {
    Log::drop_torn_tail(dir)?;
    let (mut h, pending) = replay(dir, Durability::Synced)?;
    tally.acked = read_log(dir)?
        .lines()
        .filter(|l| l.starts_with("ack"))
        .count();
    tally.jobs_resumed += h.engine().fanout_stats().jobs_resumed;
    if let Some(op) = pending {
        let mut log = Log::open(dir)?;
        match h
            .resolve(&op)
            .map_err(|e| anyhow!("resolving {op:?}: {e}"))?
        {
            Some(id) => {
                tally.in_flight_stored += 1;
                log.line(&format!("resolved stored{}", id_word(id)))?;
            }
            None => {
                tally.in_flight_lost += 1;
                log.line("resolved lost")?;
            }
        }
    }
    h.check_with_pages(100)
        .map_err(|e| anyhow!("after reopen: {e}"))?;
    let report = h.engine().check().map_err(|e| anyhow!("check: {e}"))?;
    if report.pending_jobs != 0 {
        bail!(
            "{} fan-out jobs still pending after waiting",
            report.pending_jobs
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_cut_and_whole_lines_stay() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("ops.log");
        Log::drop_torn_tail(dir.path()).expect("cut");
        assert!(!path.exists(), "no log yet is left alone");

        std::fs::write(&path, "op post 1 x68\nack 7\nop post 17").expect("write");
        Log::drop_torn_tail(dir.path()).expect("cut");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "op post 1 x68\nack 7\n"
        );

        std::fs::write(&path, "op post 1 x68\nack 1").expect("write");
        Log::drop_torn_tail(dir.path()).expect("cut");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "op post 1 x68\n",
            "a torn ack leaves its op in flight"
        );

        std::fs::write(&path, "half a li").expect("write");
        Log::drop_torn_tail(dir.path()).expect("cut");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "");
    }
}
