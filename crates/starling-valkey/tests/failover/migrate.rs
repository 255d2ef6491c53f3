//! A slot moves between primaries while the engine writes to it: the
//! author's slot (author index, own inbox, followers list) goes from its
//! primary to another and back (`CLUSTER SETSLOT ... IMPORTING` and
//! `MIGRATING`, `MIGRATE` of its keys one at a time, `SETSLOT ... NODE`),
//! while the author posts and followers follow and unfollow. Every
//! operation succeeds or returns a typed error; everything acknowledged is
//! there afterwards and `check()` is clean.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis::{Connection, Value};
use starling_core::{Config, Durability, Error, PostId, UserId};
use starling_engine::Engine;
use starling_valkey::{ValkeyBackend, ValkeyOptions};

use crate::{SERIAL, cluster};

fn config() -> Config {
    Config {
        durability: Durability::Synced,
        fanout_workers: 2,
        fanout_batch: 4,
        ..Config::default()
    }
}

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

fn node(port: i64) -> Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .expect("node url")
        .get_connection()
        .expect("node connects")
}

/// A connection to any live node of the test cluster.
fn any_node() -> Connection {
    for url in cluster::urls().split(',') {
        if let Ok(c) = redis::Client::open(url).and_then(|c| c.get_connection()) {
            return c;
        }
    }
    panic!("no node of the test cluster answers")
}

/// The live primaries, by port, and the port owning `slot`.
fn primaries(slot: i64) -> (Vec<i64>, i64) {
    let slots: Value = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query(&mut any_node())
        .expect("slots");
    let Value::Array(ranges) = slots else {
        panic!("slots reply")
    };
    let mut ports = Vec::new();
    let mut owner = None;
    for r in ranges {
        let Value::Array(parts) = r else { continue };
        let (Value::Int(lo), Value::Int(hi), Value::Array(p)) = (&parts[0], &parts[1], &parts[2])
        else {
            continue;
        };
        let Value::Int(port) = p[1] else { continue };
        if !ports.contains(&port) {
            ports.push(port);
        }
        if (*lo..=*hi).contains(&slot) {
            owner = Some(port);
        }
    }
    (ports, owner.expect("an owner of the slot"))
}

fn myid(port: i64) -> String {
    redis::cmd("CLUSTER")
        .arg("MYID")
        .query(&mut node(port))
        .expect("myid")
}

/// Moves `slot` from `from` to `to`, one key at a time with pauses in
/// between, so the workload meets the slot half moved; returns how many
/// keys moved.
fn move_slot(slot: i64, from: i64, to: i64, others: &[i64]) -> usize {
    let (from_id, to_id) = (myid(from), myid(to));
    let ok = |r: redis::RedisResult<String>, what: &str| {
        let r = r.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(r, "OK", "{what}");
    };
    let (mut src, mut dst) = (node(from), node(to));
    ok(
        redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg("IMPORTING")
            .arg(&from_id)
            .query(&mut dst),
        "importing",
    );
    ok(
        redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg("MIGRATING")
            .arg(&to_id)
            .query(&mut src),
        "migrating",
    );
    let mut moved = 0;
    loop {
        let keys: Vec<Vec<u8>> = redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(slot)
            .arg(1)
            .query(&mut src)
            .expect("keys in slot");
        if keys.is_empty() {
            break;
        }
        let mut migrate = redis::cmd("MIGRATE");
        migrate
            .arg("127.0.0.1")
            .arg(to)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("REPLACE")
            .arg("KEYS")
            .arg(&keys);
        ok(migrate.query(&mut src), "migrate");
        moved += keys.len();
        std::thread::sleep(Duration::from_millis(150));
    }
    for port in [to, from].iter().chain(others) {
        // A node a failover left dead is skipped.
        if let Ok(mut c) = redis::Client::open(format!("redis://127.0.0.1:{port}"))
            .and_then(|c| c.get_connection())
        {
            let _: redis::RedisResult<String> = redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg("NODE")
                .arg(&to_id)
                .query(&mut c);
        }
    }
    moved
}

/// What the workload did: posts acknowledged, the last acknowledged
/// follow state of each follower (`None` when its last call failed), and
/// the errors it met.
#[derive(Default)]
struct Log {
    posts: Vec<PostId>,
    following: Vec<Option<bool>>,
    errors: Vec<String>,
}

#[test]
fn a_slot_moving_under_writes_loses_nothing_acknowledged() {
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ns = cluster::namespace();
    let options = cluster::options(&ns);
    let mut engine = open(&options);
    let author = engine.create_user("author").expect("author").id;
    let followers: Vec<UserId> = (0..12)
        .map(|i| engine.create_user(&format!("f{i}")).expect("follower").id)
        .collect();
    for f in &followers[..6] {
        engine.follow(*f, author).expect("follow");
    }
    // The author's slot (posts' author index, the followers side of
    // follows: single-slot scripts and redo intents), then the slot of a
    // follower who stays (fan-out into its inbox: the inbox script).
    let slot_of = |user: UserId| -> i64 {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(format!("{ns}:{{u:{}}}:inbox", user.0))
            .query(&mut any_node())
            .expect("keyslot")
    };
    let slots = [slot_of(author), slot_of(followers[0])];

    let done = Arc::new(AtomicBool::new(false));
    let mover = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut moves = Vec::new();
            for slot in slots {
                let (ports, home) = primaries(slot);
                let away = *ports
                    .iter()
                    .find(|p| **p != home)
                    .expect("a second primary");
                let others: Vec<i64> = ports
                    .iter()
                    .copied()
                    .filter(|p| *p != home && *p != away)
                    .collect();
                std::thread::sleep(Duration::from_millis(300));
                let there = move_slot(slot, home, away, &others);
                std::thread::sleep(Duration::from_millis(300));
                let back = move_slot(slot, away, home, &others);
                moves.push(format!(
                    "slot {slot}: {home} -> {away} -> {home}, {there} and {back} keys"
                ));
                assert!(there > 0 && back > 0, "{moves:?}");
            }
            std::thread::sleep(Duration::from_millis(300));
            done.store(true, Ordering::SeqCst);
            moves
        })
    };
    let mut log = Log {
        following: vec![None; followers.len()],
        ..Log::default()
    };
    for state in &mut log.following[..6] {
        *state = Some(true);
    }
    let start = Instant::now();
    let mut n = 0usize;
    while !done.load(Ordering::SeqCst) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the workload stalled"
        );
        let result = if n.is_multiple_of(3) {
            engine
                .post(author, &format!("post {n}"))
                .map(|p| log.posts.push(p.id))
        } else {
            // Follower 0 stays: its inbox gets every post.
            let i = 1 + n % (followers.len() - 1);
            let follow = log.following[i] != Some(true);
            let r = if follow {
                engine.follow(followers[i], author)
            } else {
                engine.unfollow(followers[i], author)
            };
            log.following[i] = r.as_ref().ok().map(|_| follow);
            r.map(drop)
        };
        n += 1;
        if let Err(e) = result {
            // A typed error: the engine refused or poisoned itself; an
            // application reopens it and goes on.
            assert!(
                matches!(e, Error::Storage(_) | Error::Poisoned),
                "unexpected error: {e:?}"
            );
            log.errors.push(e.to_string());
            let _ = engine.close();
            engine = open(&options);
        }
    }
    let moves = mover.join().expect("mover");
    eprintln!(
        "{moves:?} in {:?} under {n} operations: {} posts acknowledged, {} errors {:?}",
        start.elapsed(),
        log.posts.len(),
        log.errors.len(),
        log.errors
    );
    engine.wait_for_fanout().expect("fan-out drains");
    let _ = engine.close();
    let engine = open(&options);
    engine
        .wait_for_fanout()
        .expect("fan-out drains after reopen");

    let mut found = Vec::with_capacity(log.posts.len());
    for ids in log.posts.chunks(starling_core::MAX_PAGE_SIZE) {
        found.extend(engine.get_posts(ids).expect("posts read"));
    }
    let lost: Vec<_> = log
        .posts
        .iter()
        .zip(&found)
        .filter(|(_, p)| p.is_none())
        .collect();
    assert!(lost.is_empty(), "acknowledged posts lost: {lost:?}");
    assert!(log.posts.len() >= 3, "too few posts: {}", log.posts.len());
    let own = engine
        .author_timeline(author, None, log.posts.len() + 10)
        .expect("author timeline");
    for p in &log.posts {
        assert!(
            own.posts.iter().any(|x| x.id == *p),
            "post {p} not in its author's timeline"
        );
    }
    for (i, f) in followers.iter().enumerate() {
        let Some(want) = log.following[i] else {
            continue;
        };
        let page = engine.following(*f, None, 10).expect("following");
        assert_eq!(page.users.contains(&author), want, "follower {i}");
        if want {
            let home = engine.home_timeline(*f, None, 3).expect("home");
            assert_eq!(
                home.posts.first().map(|p| p.id),
                log.posts.last().copied(),
                "follower {i} sees the newest post"
            );
        }
    }
    let report = engine.check().expect("check runs");
    assert!(report.is_clean(), "check after the moves: {report:?}");
    assert_eq!(report.pending_jobs, 0);
}

/// A fan-out call (many slots per script call) meets a slot half moved:
/// its fence still on the old primary, the inbox already on the new one.
/// The call is retried (it is idempotent) until the move completes, then
/// lands on the new primary; it does not fail the engine.
#[test]
fn a_fanout_call_meeting_a_half_moved_slot_is_retried() {
    use starling_core::InboxEntry;
    use starling_store::{Backend, InboxStore};

    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ns = cluster::namespace();
    let backend = ValkeyBackend::connect(&cluster::options(&ns)).expect("backend");
    let e = |post: u64| InboxEntry {
        post: PostId(post),
        author: UserId(1),
    };
    let owners: Vec<UserId> = (10..60).map(UserId).collect();
    let load =
        |post: u64| -> Vec<(UserId, InboxEntry)> { owners.iter().map(|o| (*o, e(post))).collect() };
    backend.apply_bulk_inbox(&load(1)).expect("first load");
    let owner = owners[0];
    let inbox = format!("{ns}:{{u:{}}}:inbox", owner.0);
    let slot: i64 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(&inbox)
        .query(&mut any_node())
        .expect("keyslot");
    let (ports, home) = primaries(slot);
    let away = *ports
        .iter()
        .find(|p| **p != home)
        .expect("a second primary");
    let others: Vec<i64> = ports
        .iter()
        .copied()
        .filter(|p| *p != home && *p != away)
        .collect();
    let (home_id, away_id) = (myid(home), myid(away));
    let (mut src, mut dst) = (node(home), node(away));
    let _: String = redis::cmd("CLUSTER")
        .arg("SETSLOT")
        .arg(slot)
        .arg("IMPORTING")
        .arg(&home_id)
        .query(&mut dst)
        .expect("importing");
    let _: String = redis::cmd("CLUSTER")
        .arg("SETSLOT")
        .arg(slot)
        .arg("MIGRATING")
        .arg(&away_id)
        .query(&mut src)
        .expect("migrating");
    let _: String = redis::cmd("MIGRATE")
        .arg("127.0.0.1")
        .arg(away)
        .arg(&inbox)
        .arg(0)
        .arg(5000)
        .query(&mut src)
        .expect("the inbox moves first");
    let finisher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        // The rest of the slot (its fence among it), then the new owner.
        let mut src = node(home);
        loop {
            let keys: Vec<Vec<u8>> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(100)
                .query(&mut src)
                .expect("keys in slot");
            if keys.is_empty() {
                break;
            }
            let _: String = redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(away)
                .arg("")
                .arg(0)
                .arg(5000)
                .arg("KEYS")
                .arg(&keys)
                .query(&mut src)
                .expect("migrate");
        }
        for port in [away, home].iter().chain(&others) {
            if let Ok(mut c) = redis::Client::open(format!("redis://127.0.0.1:{port}"))
                .and_then(|c| c.get_connection())
            {
                let _: redis::RedisResult<String> = redis::cmd("CLUSTER")
                    .arg("SETSLOT")
                    .arg(slot)
                    .arg("NODE")
                    .arg(&away_id)
                    .query(&mut c);
            }
        }
    });
    let started = Instant::now();
    let result = backend.apply_bulk_inbox(&load(2));
    finisher.join().expect("finisher");
    result.expect("the fan-out call is retried across the move");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "the call waited for the move"
    );
    for o in &owners {
        let mut got = Vec::new();
        backend.inbox(*o, None, 10, &mut got).expect("inbox");
        assert_eq!(got, vec![e(2), e(1)], "owner {o:?}");
    }
    assert_eq!(primaries(slot).1, away, "the slot moved");
}
