//! Crash: the engine's process is killed with SIGKILL in the middle of a
//! workload over the cluster (posts with `Synced`, follows and unfollows,
//! fan-out running); the next process replays what was left half done.
//! Every acknowledged post is present, fan-out drains and `check()` is
//! clean.
//!
//! The child is this test binary run again with `CRASH_CHILD` naming the
//! namespace: [`crash_child`] then runs the workload and prints the id of
//! each acknowledged post.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use starling_core::{Config, Durability, PostId, UserId};
use starling_engine::Engine;
use starling_valkey::{ValkeyBackend, ValkeyOptions};

use crate::cluster;

const CHILD: &str = "CRASH_CHILD";
/// The cluster's seed URLs, handed to the child (which must not start a
/// cluster of its own).
const URLS: &str = "CRASH_CHILD_URLS";

fn config() -> Config {
    Config {
        durability: Durability::Synced,
        fanout_workers: 2,
        fanout_batch: 3,
        ..Config::default()
    }
}

/// Connects once the killed writer's lease ran out.
fn open(urls: &str, namespace: &str) -> Engine<ValkeyBackend> {
    let mut options = ValkeyOptions::from_url_list(urls, namespace);
    options.lease_ttl = Duration::from_millis(1500);
    let start = Instant::now();
    loop {
        match ValkeyBackend::connect(&options).and_then(|b| Engine::with_backend(b, config())) {
            Ok(e) => return e,
            Err(e) if start.elapsed() < Duration::from_secs(20) => {
                eprintln!("reconnecting: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("no reconnect in 20 s: {e}"),
        }
    }
}

/// The child's workload; does nothing unless run as the child.
#[test]
fn crash_child() {
    let (Ok(namespace), Ok(urls)) = (std::env::var(CHILD), std::env::var(URLS)) else {
        return;
    };
    let engine = open(&urls, &namespace);
    let users: Vec<UserId> = (0..12)
        .map(|i| match engine.create_user(&format!("u{i}")) {
            Ok(u) => u.id,
            // A user made by an earlier cycle.
            Err(_) => engine.user_by_name(&format!("u{i}")).expect("user read").id,
        })
        .collect();
    let mut n: u64 = 0;
    loop {
        n += 1;
        let author = users[(n % 3) as usize];
        let reader = users[3 + (n % 9) as usize];
        if n.is_multiple_of(4) {
            let _ = engine.unfollow(reader, author);
        } else {
            let _ = engine.follow(reader, author);
        }
        let post = engine.post(author, &format!("p{n}")).expect("post");
        println!("acked {}", post.id.0);
    }
}

#[test]
fn a_writer_killed_mid_workload_loses_nothing_acknowledged() {
    let _alone = crate::SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let urls = cluster::urls();
    let namespace = cluster::namespace();
    let mut acknowledged: Vec<PostId> = Vec::new();
    for cycle in 0..5 {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "crash::crash_child",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD, &namespace)
            .env(URLS, urls)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("child starts");
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(id) = line.strip_prefix("acked ") {
                    let _ = tx.send(PostId(id.parse().expect("post id")));
                }
            }
        });
        // Let it run until it acknowledged a few posts, then kill it.
        let start = Instant::now();
        let mut seen = 0;
        while seen < 15 + cycle * 5 && start.elapsed() < Duration::from_secs(60) {
            if let Ok(id) = rx.recv_timeout(Duration::from_millis(100)) {
                acknowledged.push(id);
                seen += 1;
            }
        }
        // At a different point of the next operation each cycle.
        std::thread::sleep(Duration::from_millis(3 * cycle as u64 + 1));
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        reader.join().expect("reader");
        acknowledged.extend(rx.try_iter());
        assert!(seen > 0, "cycle {cycle}: the child acknowledged nothing");
        let left_behind = intents(&namespace);
        eprintln!("cycle {cycle}: {left_behind} redo intents left by the killed writer");

        let engine = open(urls, &namespace);
        engine.wait_for_fanout().expect("fan-out drains");
        assert_eq!(intents(&namespace), 0, "cycle {cycle}: intents replayed");
        let mut found = Vec::with_capacity(acknowledged.len());
        for ids in acknowledged.chunks(starling_core::MAX_PAGE_SIZE) {
            found.extend(engine.get_posts(ids).expect("posts read"));
        }
        let lost: Vec<_> = acknowledged
            .iter()
            .zip(&found)
            .filter(|(_, p)| p.is_none())
            .collect();
        assert!(
            lost.is_empty(),
            "cycle {cycle}: acknowledged posts lost: {lost:?}"
        );
        let report = engine.check().expect("check runs");
        assert!(report.is_clean(), "cycle {cycle}: {report:?}");
        assert_eq!(report.pending_jobs, 0, "cycle {cycle}");
        engine.close().expect("close");
    }
}

/// Redo intents stored under the namespace.
fn intents(namespace: &str) -> u64 {
    let key = format!("{namespace}:{{i}}:intents");
    redis::cmd("ZCARD")
        .arg(&key)
        .query(&mut cluster::raw(&key))
        .expect("intents counted")
}
