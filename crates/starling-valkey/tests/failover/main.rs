//! Faults on a cluster of this binary's own (killing a node would disturb
//! the other tests): the engine's process killed mid-workload (`crash`),
//! failover, and slots moving between primaries (`migrate`).
//!
//! Failover: a primary of the cluster is killed with SIGKILL while an
//! engine posts with `Durability::Synced` and fans out. After a replica
//! takes over, every acknowledged post is present, fan-out drains and the
//! store checks clean. A cluster of its own: killing a node would disturb
//! the other tests.

/// First port of this binary's cluster (9 nodes).
const BASE_PORT: u16 = 7420;

#[allow(dead_code)]
#[path = "../it/cluster.rs"]
mod cluster;
mod crash;
mod migrate;

/// The tests of this binary run one at a time: killing a primary would
/// fail the other's writes.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use starling_core::{Config, Durability, PostId, UserId};
use starling_engine::Engine;
use starling_valkey::{ValkeyBackend, ValkeyOptions};

fn config() -> Config {
    Config {
        durability: Durability::Synced,
        fanout_workers: 1,
        ..Config::default()
    }
}

/// Connects, retrying while the cluster fails over.
fn open(options: &ValkeyOptions) -> Engine<ValkeyBackend> {
    let start = Instant::now();
    loop {
        match ValkeyBackend::connect(options).and_then(|b| Engine::with_backend(b, config())) {
            Ok(e) => return e,
            Err(e) if start.elapsed() < Duration::from_secs(30) => {
                eprintln!("reconnecting: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("the engine did not reconnect in 30 s: {e}"),
        }
    }
}

#[test]
fn acknowledged_synced_posts_survive_the_loss_of_a_primary() {
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ns = cluster::namespace();
    let options = cluster::options(&ns);
    let mut engine = open(&options);
    let author = engine.create_user("author").expect("author").id;
    let followers: Vec<UserId> = (0..20)
        .map(|i| engine.create_user(&format!("f{i}")).expect("follower").id)
        .collect();
    for f in &followers {
        engine.follow(*f, author).expect("follow");
    }
    // The primary that holds the author's keys (own inbox, author index).
    let victim = cluster::primary_port(&format!("{ns}:{{u:{}}}:inbox", author.0));
    let pid_file = cluster::data_dir().join(format!("node-{victim}/server.pid"));
    let pid = std::fs::read_to_string(&pid_file).expect("pid file");

    // With the victim's replicas paused, a synced post is refused after
    // the sync timeout instead of acknowledged.
    let replicas = replica_pids(victim);
    assert_eq!(replicas.len(), 2, "two replicas per primary");
    signal("-STOP", &replicas);
    let refused_while_paused = engine.post(author, "nobody keeps this");
    signal("-CONT", &replicas);
    match refused_while_paused {
        Err(e @ starling_core::Error::Storage(_)) => {
            assert!(e.to_string().contains("replica"), "{e}");
        }
        other => panic!("a synced post without a replica must fail: {other:?}"),
    }
    // The engine poisoned itself; reopened, it writes again.
    let _ = engine.close();
    engine = open(&options);
    engine
        .post(author, "kept")
        .expect("a post once replicas are back");

    let killed = Arc::new(AtomicBool::new(false));
    let killer = {
        let killed = Arc::clone(&killed);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(2));
            let status = Command::new("kill")
                .args(["-9", pid.trim()])
                .status()
                .expect("kill runs");
            assert!(status.success(), "the primary was killed");
            killed.store(true, Ordering::SeqCst);
        })
    };
    let mut acknowledged: Vec<PostId> = Vec::new();
    let mut refused = 0;
    let start = Instant::now();
    let mut after_kill = None;
    while after_kill.is_none_or(|t: Instant| t.elapsed() < Duration::from_secs(8)) {
        if after_kill.is_none() && killed.load(Ordering::SeqCst) {
            after_kill = Some(Instant::now());
        }
        match engine.post(author, &format!("post {}", acknowledged.len())) {
            Ok(p) => acknowledged.push(p.id),
            Err(e) => {
                // The engine is poisoned (or was refused): reopen it, as an
                // application would, and go on.
                eprintln!("post refused: {e}");
                refused += 1;
                let _ = engine.close();
                engine = open(&options);
            }
        }
        assert!(start.elapsed() < Duration::from_secs(60), "posting stalled");
    }
    killer.join().expect("killer thread");
    engine.wait_for_fanout().expect("fan-out drains");
    let _ = engine.close();
    let engine = open(&options);
    engine
        .wait_for_fanout()
        .expect("fan-out drains after reopen");

    let mut found = Vec::with_capacity(acknowledged.len());
    for ids in acknowledged.chunks(starling_core::MAX_PAGE_SIZE) {
        found.extend(engine.get_posts(ids).expect("posts read"));
    }
    let lost: Vec<_> = acknowledged
        .iter()
        .zip(&found)
        .filter(|(_, p)| p.is_none())
        .map(|(id, _)| *id)
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged posts lost: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
    assert!(
        acknowledged.len() > 10,
        "too few posts: {}",
        acknowledged.len()
    );
    let report = engine.check().expect("check runs");
    assert!(report.is_clean(), "check after failover: {report:?}");
    assert_eq!(report.pending_jobs, 0);
    // Every follower sees the newest acknowledged post.
    let newest = *acknowledged.last().expect("a post");
    for f in &followers {
        let page = engine.home_timeline(*f, None, 5).expect("home page");
        assert_eq!(
            page.posts.first().map(|p| p.id),
            Some(newest),
            "follower {f:?}"
        );
    }
    eprintln!(
        "failover: {} posts acknowledged, {refused} refused, none lost",
        acknowledged.len()
    );
}

/// Sends a signal to processes.
fn signal(which: &str, pids: &[String]) {
    let status = Command::new("kill")
        .arg(which)
        .args(pids)
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {which} {pids:?}");
}

/// The pids of the replicas of the primary on `port`.
fn replica_pids(port: i64) -> Vec<String> {
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .expect("url")
        .get_connection()
        .expect("primary connects");
    let id: String = redis::cmd("CLUSTER")
        .arg("MYID")
        .query(&mut c)
        .expect("myid");
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query(&mut c)
        .expect("nodes");
    nodes
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() > 3 && f[2].contains("slave") && f[3] == id).then(|| {
                let port = f[1]
                    .split('@')
                    .next()
                    .and_then(|a| a.rsplit(':').next())
                    .expect("replica port");
                std::fs::read_to_string(cluster::data_dir().join(format!("node-{port}/server.pid")))
                    .expect("replica pid file")
                    .trim()
                    .to_owned()
            })
        })
        .collect()
}
