//! The engine over RocksDB: model-based property test, bad input, caps,
//! restarts.

#[cfg(feature = "tokio")]
mod async_engine;
mod stress;

use std::path::Path;

use proptest::prelude::*;
use starling::InboxStore;
use starling::{
    Config, Cursor, Durability, Engine, Error, FanoutPolicy, MAX_PAGE_SIZE, PostId, RocksBackend,
    UserId,
};
use starling_testkit::{Harness, Op, ops};

fn config() -> Config {
    Config {
        durability: Durability::Buffered,
        ..Config::default()
    }
}

fn harness(dir: &Path, config: Config) -> Harness<RocksBackend> {
    let dir = dir.to_owned();
    Harness::new(Box::new(move || Engine::open(&dir, config.clone()))).expect("engine opens")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random create-user, follow, unfollow, post, delete and reopen steps
    /// against the reference model, comparing timelines, lists and counts.
    #[test]
    fn rocks_engine_matches_model(
        ops in ops(50),
        backfill in 0..4usize,
        batch in 1..4usize,
        cap in 1..8usize,
        threshold in 0..4u64,
        bulk in 0..4u64,
        bulk_batch in 1..4usize,
        rates: bool,
        inactive in proptest::option::of(Just(0u64)),
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut h = harness(dir.path(), Config {
            backfill_posts: backfill,
            fanout_batch: batch,
            inbox_cap: cap,
            push_threshold: threshold,
            bulk_fanout_min_followers: bulk,
            bulk_fanout_batch: bulk_batch,
            fanout_policy: if rates { FanoutPolicy::Rates } else { FanoutPolicy::Threshold },
            inactive_after_ms: inactive,
            ..config()
        });
        for op in &ops {
            if let Err(diff) = h.step(op) {
                prop_assert!(false, "{}", diff);
            }
        }
    }
}

/// Everything a reader can see, for "nothing changed" checks.
fn snapshot(engine: &Engine, users: &[UserId]) -> String {
    engine.wait_for_fanout().expect("fan-out");
    let mut out = String::new();
    for &u in users {
        let home = engine.home_timeline(u, None, MAX_PAGE_SIZE).expect("home");
        let own = engine.author_timeline(u, None, MAX_PAGE_SIZE).expect("own");
        let followers = engine.followers(u, None, MAX_PAGE_SIZE).expect("followers");
        let following = engine.following(u, None, MAX_PAGE_SIZE).expect("following");
        let counts = engine.counts(u).expect("counts");
        out += &format!("{u}: {home:?} {own:?} {followers:?} {following:?} {counts:?}\n");
    }
    out
}

#[test]
fn bad_input_is_refused_with_a_typed_error_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Engine::open(dir.path(), config()).expect("open");
    let ada = engine.create_user("ada").expect("create").id;
    let bob = engine.create_user("bob").expect("create").id;
    engine.follow(bob, ada).expect("follow");
    let post = engine.post(ada, "first").expect("post").id;
    let ghost = UserId(999);
    let users = [ada, bob];
    let before = snapshot(&engine, &users);
    let long = "x".repeat(281);
    let users_cursor = Cursor::users(bob);
    let timeline_cursor = Cursor::timeline(post, 1);

    type Case<'a> = (
        &'a str,
        Box<dyn Fn() -> Result<(), Error> + 'a>,
        fn(&Error) -> bool,
    );
    let cases: Vec<Case> = vec![
        (
            "empty username",
            Box::new(|| engine.create_user("").map(drop)),
            |e| matches!(e, Error::InvalidUsername(_)),
        ),
        (
            "long username",
            Box::new(|| engine.create_user("abcdefghijklmnop").map(drop)),
            |e| matches!(e, Error::InvalidUsername(_)),
        ),
        (
            "bad characters",
            Box::new(|| engine.create_user("ada!").map(drop)),
            |e| matches!(e, Error::InvalidUsername(_)),
        ),
        (
            "duplicate username",
            Box::new(|| engine.create_user("ADA").map(drop)),
            |e| matches!(e, Error::UsernameTaken(_)),
        ),
        (
            "unknown username",
            Box::new(|| engine.user_by_name("zed").map(drop)),
            |e| matches!(e, Error::UnknownUsername(_)),
        ),
        (
            "invalid name lookup",
            Box::new(|| engine.user_by_name("no way").map(drop)),
            |e| matches!(e, Error::InvalidUsername(_)),
        ),
        (
            "unknown user",
            Box::new(|| engine.user(ghost).map(drop)),
            |e| matches!(e, Error::UnknownUser(_)),
        ),
        (
            "follow unknown",
            Box::new(|| engine.follow(ada, ghost).map(drop)),
            |e| matches!(e, Error::UnknownUser(_)),
        ),
        (
            "unknown follows",
            Box::new(|| engine.follow(ghost, ada).map(drop)),
            |e| matches!(e, Error::UnknownUser(_)),
        ),
        (
            "self follow",
            Box::new(|| engine.follow(ada, ada).map(drop)),
            |e| matches!(e, Error::SelfFollow),
        ),
        (
            "self unfollow",
            Box::new(|| engine.unfollow(ada, ada).map(drop)),
            |e| matches!(e, Error::SelfFollow),
        ),
        (
            "unfollow unknown",
            Box::new(|| engine.unfollow(bob, ghost).map(drop)),
            |e| matches!(e, Error::UnknownUser(_)),
        ),
        (
            "empty post",
            Box::new(|| engine.post(ada, "").map(drop)),
            |e| matches!(e, Error::InvalidText(_)),
        ),
        (
            "blank post",
            Box::new(|| engine.post(ada, " \n ").map(drop)),
            |e| matches!(e, Error::InvalidText(_)),
        ),
        (
            "control character",
            Box::new(|| engine.post(ada, "a\u{1b}[31m").map(drop)),
            |e| matches!(e, Error::InvalidText(_)),
        ),
        (
            "too long",
            Box::new(|| engine.post(ada, &long).map(drop)),
            |e| matches!(e, Error::TextTooLong { len: 281, max: 280 }),
        ),
        (
            "unknown author",
            Box::new(|| engine.post(ghost, "hi").map(drop)),
            |e| matches!(e, Error::UnknownUser(_)),
        ),
        (
            "unknown post",
            Box::new(|| engine.get_post(PostId(5)).map(drop)),
            |e| matches!(e, Error::UnknownPost(_)),
        ),
        (
            "delete unknown post",
            Box::new(|| engine.delete_post(ada, PostId(5)).map(drop)),
            |e| matches!(e, Error::UnknownPost(_)),
        ),
        (
            "delete another's post",
            Box::new(|| engine.delete_post(bob, post).map(drop)),
            |e| matches!(e, Error::NotAllowed(_)),
        ),
        (
            "delete by unknown",
            Box::new(|| engine.delete_post(ghost, post).map(drop)),
            |e| matches!(e, Error::UnknownUser(_)),
        ),
        (
            "page of zero",
            Box::new(|| engine.home_timeline(bob, None, 0).map(drop)),
            |e| matches!(e, Error::PageSize { .. }),
        ),
        (
            "oversized page",
            Box::new(|| engine.home_timeline(bob, None, MAX_PAGE_SIZE + 1).map(drop)),
            |e| matches!(e, Error::PageSize { .. }),
        ),
        (
            "oversized author page",
            Box::new(|| engine.author_timeline(ada, None, 10_000).map(drop)),
            |e| matches!(e, Error::PageSize { .. }),
        ),
        (
            "oversized follower page",
            Box::new(|| engine.followers(ada, None, 201).map(drop)),
            |e| matches!(e, Error::PageSize { .. }),
        ),
        (
            "too many ids",
            Box::new(|| engine.get_posts(&[post; MAX_PAGE_SIZE + 1]).map(drop)),
            |e| matches!(e, Error::PageSize { .. }),
        ),
        (
            "user cursor on timeline",
            Box::new(|| engine.home_timeline(bob, Some(&users_cursor), 10).map(drop)),
            |e| matches!(e, Error::MalformedCursor),
        ),
        (
            "timeline cursor on followers",
            Box::new(|| engine.followers(ada, Some(&timeline_cursor), 10).map(drop)),
            |e| matches!(e, Error::MalformedCursor),
        ),
        (
            "unknown reader",
            Box::new(|| engine.home_timeline(ghost, None, 10).map(drop)),
            |e| matches!(e, Error::UnknownUser(_)),
        ),
        (
            "garbage cursor",
            Box::new(|| "%%%".parse::<Cursor>().map(drop)),
            |e| matches!(e, Error::MalformedCursor),
        ),
    ];
    for (name, run, expected) in &cases {
        match run() {
            Err(e) if expected(&e) => assert!(!e.to_string().is_empty()),
            other => panic!("{name}: unexpected {other:?}"),
        }
    }
    assert_eq!(
        snapshot(&engine, &users),
        before,
        "bad input changed nothing"
    );
    assert!(
        Engine::open(
            dir.path().join("other"),
            Config {
                inbox_cap: 0,
                ..config()
            }
        )
        .is_err()
    );
}

#[test]
fn scrolling_past_the_cap_continues_and_trims_by_range() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Engine::open(
        dir.path(),
        Config {
            inbox_cap: 5,
            inactive_after_ms: None,
            ..config()
        },
    )
    .expect("open");
    let ada = engine.create_user("ada").expect("create").id;
    let bob = engine.create_user("bob").expect("create").id;
    engine.follow(bob, ada).expect("follow");
    let posts: Vec<PostId> = (0..12)
        .map(|i| engine.post(ada, &format!("post {i}")).expect("post").id)
        .collect();
    engine.wait_for_fanout().expect("fan-out");
    let mut stored = Vec::new();
    engine
        .backend()
        .inbox(bob, None, 100, &mut stored)
        .expect("inbox");
    assert_eq!(stored.len(), 12, "delivery itself never deletes");
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = engine.home_timeline(bob, cursor.as_ref(), 2).expect("page");
        seen.extend(page.posts.iter().map(|p| p.id));
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let newest_first: Vec<PostId> = posts.iter().rev().copied().collect();
    assert_eq!(
        seen, newest_first,
        "no wall at the cap: the pull merge continues the same cursor"
    );
    stored.clear();
    engine
        .backend()
        .inbox(bob, None, 100, &mut stored)
        .expect("inbox");
    assert_eq!(
        stored.iter().map(|e| e.post).collect::<Vec<_>>(),
        newest_first[..5],
        "reading past the cap trimmed the rest with one range deletion"
    );
    assert_eq!(
        engine.backend().inbox_floor(bob).expect("floor"),
        Some(newest_first[5])
    );
    assert!(engine.check().expect("check").is_clean());
}

/// Groups, reposts, mentions, blocks and mutes are ground truth: they
/// survive a reopen, and a group post's fan-out (which walks the group's
/// members) resumes where a close left it.
#[test]
fn social_records_survive_reopen_and_group_fanout_resumes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = Config {
        fanout_batch: 7,
        ..config()
    };
    let (owner, members, outsider, secret, repost, group) = {
        let engine = Engine::open(dir.path(), cfg.clone()).expect("open");
        let owner = engine.create_user("owner").expect("create").id;
        let outsider = engine.create_user("outsider").expect("create").id;
        engine.follow(outsider, owner).expect("follow");
        engine.subscribe(outsider).map(drop).expect("a read");
        let group = engine.create_group(owner, "inner").expect("group");
        let mut members = Vec::new();
        for i in 0..200 {
            let m = engine.create_user(&format!("m{i}")).expect("create").id;
            engine.follow(m, owner).expect("follow");
            engine.add_member(owner, group.id, m).expect("member");
            // A read makes each member active, so fan-out writes to them.
            engine.home_timeline(m, None, 1).expect("home");
            members.push(m);
        }
        let secret = engine
            .post_to_group(owner, group.id, "for the inner circle @outsider @m0")
            .expect("post");
        let repost = engine.repost(members[1], secret.id);
        assert!(matches!(repost, Err(Error::NotAllowed(_))));
        let public = engine.post(owner, "public").expect("post");
        let repost = engine.repost(members[1], public.id).expect("repost");
        engine.block(members[2], outsider).expect("block");
        engine.mute(members[3], owner).expect("mute");
        // Close without waiting: the group post's job stops between batches.
        engine.close().expect("close");
        (owner, members, outsider, secret, repost, group)
    };
    let engine = Engine::open(dir.path(), cfg).expect("reopen");
    engine.wait_for_fanout().expect("resumed fan-out");
    assert_eq!(engine.groups(owner).expect("groups"), vec![group.clone()]);
    for m in &members[4..] {
        let home = engine.home_timeline(*m, None, 10).expect("home");
        assert!(
            home.posts.iter().any(|p| p.id == secret.id),
            "member {m} got it"
        );
    }
    let home = engine.home_timeline(outsider, None, 10).expect("home");
    assert!(
        home.posts.iter().all(|p| p.id != secret.id),
        "outsider never sees it"
    );
    assert!(
        engine
            .mentions(outsider, None, 10)
            .expect("mentions")
            .posts
            .is_empty()
    );
    assert_eq!(
        engine
            .mentions(members[0], None, 10)
            .expect("mentions")
            .posts,
        vec![secret.clone()]
    );
    assert_eq!(
        engine.get_post(repost.id).expect("repost").repost_of,
        repost.repost_of
    );
    assert!(engine.is_blocking(members[2], outsider).expect("block"));
    assert!(matches!(
        engine.follow(outsider, members[2]),
        Err(Error::Blocked(_))
    ));
    let muted = engine.home_timeline(members[3], None, 10).expect("home");
    assert!(
        muted.posts.iter().all(|p| p.author != owner),
        "mute survived"
    );
    assert!(engine.check().expect("check").is_clean());
}

#[test]
fn acknowledged_writes_survive_reopen_and_pending_fanout_resumes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = Config {
        durability: Durability::Synced,
        fanout_batch: 7,
        ..Config::default()
    };
    let (author, posts) = {
        let engine = Engine::open(dir.path(), cfg.clone()).expect("open");
        let author = engine.create_user("author").expect("create").id;
        for i in 0..300 {
            let f = engine.create_user(&format!("f{i}")).expect("create").id;
            engine.follow(f, author).expect("follow");
        }
        let posts: Vec<PostId> = (0..5)
            .map(|i| engine.post(author, &format!("p{i}")).expect("post").id)
            .collect();
        // Close without waiting: fan-out stops between batches.
        engine.close().expect("close");
        (author, posts)
    };
    let engine = Engine::open(dir.path(), cfg).expect("reopen");
    engine.wait_for_fanout().expect("resumed fan-out");
    assert_eq!(engine.counts(author).expect("counts").followers, 300);
    let mut cursor = None;
    let mut followers = 0;
    loop {
        let page = engine
            .followers(author, cursor.as_ref(), MAX_PAGE_SIZE)
            .expect("page");
        for f in &page.users {
            let home = engine.home_timeline(*f, None, 10).expect("home");
            let got: Vec<PostId> = home.posts.iter().map(|p| p.id).collect();
            let want: Vec<PostId> = posts.iter().rev().copied().collect();
            assert_eq!(got, want, "follower {f} has every post once, newest first");
            followers += 1;
        }
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(followers, 300);
}

#[test]
fn concurrent_posters_and_followers_converge() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Engine::open(
        dir.path(),
        Config {
            durability: Durability::Synced,
            fanout_batch: 16,
            ..Config::default()
        },
    )
    .expect("open");
    let authors: Vec<UserId> = (0..4)
        .map(|i| engine.create_user(&format!("a{i}")).expect("create").id)
        .collect();
    let readers: Vec<UserId> = (0..40)
        .map(|i| engine.create_user(&format!("r{i}")).expect("create").id)
        .collect();
    std::thread::scope(|s| {
        for (t, &a) in authors.iter().enumerate() {
            let engine = &engine;
            let readers = &readers;
            s.spawn(move || {
                for (i, &r) in readers.iter().enumerate() {
                    if (i + t) % 2 == 0 {
                        engine.follow(r, a).expect("follow");
                    }
                    engine.post(a, &format!("{t}/{i}")).expect("post");
                }
            });
        }
    });
    engine.wait_for_fanout().expect("fan-out");
    let mut h = Vec::new();
    for &r in &readers {
        let page = engine.home_timeline(r, None, MAX_PAGE_SIZE).expect("home");
        let ids: Vec<PostId> = page.posts.iter().map(|p| p.id).collect();
        let mut sorted = ids.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        sorted.dedup();
        assert_eq!(ids, sorted, "newest first, no duplicates");
        let expected = starling_inbox::expected_inbox(
            engine.backend(),
            r,
            engine.config().backfill_posts,
            engine.config().inbox_cap,
        )
        .expect("rebuild");
        assert_eq!(
            ids,
            expected.iter().map(|e| e.post).collect::<Vec<_>>(),
            "inbox of {r} equals its rebuild"
        );
        h.push(ids.len());
    }
    assert!(h.iter().any(|&n| n > 0));
}

#[test]
fn ops_decoded_from_bytes_match_model() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path(), config());
    let bytes: Vec<u8> = (0u32..400)
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8)
        .collect();
    let mut rest = &bytes[..];
    for name in ["ada", "bob", "carol"] {
        h.step(&Op::CreateUser(name.into())).expect("matches");
    }
    while let Some(op) = Op::decode(&mut rest) {
        h.step(&op).expect("engine matches the model");
    }
    h.check().expect("engine matches the model");
}

/// A bulk delivery stopped at each of its writes (the failed write
/// poisons the engine, as a crash would stop it): while the hold's load
/// takes its parts and at its finish, nothing is stored yet; stopped after
/// the finish and before the batch with its cursor, the post's entries are
/// loaded and the job is at its old cursor. Reopened, the job loads the
/// same keys again: every follower holds the post once, and every inbox
/// equals its rebuild from the ground truth.
#[test]
fn a_bulk_delivery_stopped_between_ingest_and_cursor_resumes_whole() {
    use starling::FanoutQueue;
    let cfg = Config {
        fanout_batch: 4,
        fanout_workers: 1,
        bulk_fanout_min_followers: 10,
        bulk_fanout_batch: 8,
        inactive_after_ms: None,
        ..config()
    };
    // The write after `failing` successful ones fails: the post is write
    // 0, the hold's four pages are parts 1 to 4 of one load, its finish is
    // write 5 and the rest of the hold, the cursor with it, write 6.
    for failing in 1..=6u64 {
        let dir = tempfile::tempdir().expect("temp dir");
        let (author, followers) = {
            let e = Engine::open(dir.path(), cfg.clone()).expect("engine opens");
            let author = e.create_user("author").expect("user").id;
            let followers: Vec<UserId> = (0..30)
                .map(|i| e.create_user(&format!("f{i}")).expect("user").id)
                .collect();
            for &f in &followers {
                e.follow(f, author).expect("follow");
            }
            e.close().expect("close");
            (author, followers)
        };
        let rocks = RocksBackend::open(dir.path(), &cfg).expect("database opens");
        let faulty = starling::FaultyBackend::new(
            rocks,
            starling::FaultPlan::AfterWrites(failing),
            starling::FaultKind::Write,
        );
        let e = starling::GenericEngine::with_backend(faulty, cfg.clone()).expect("engine");
        let post = e.post(author, "to everyone").expect("post").id;
        assert!(e.wait_for_fanout().is_err(), "a write failed ({failing})");
        assert!(e.is_poisoned());
        let delivered = followers
            .iter()
            .filter(|&&f| {
                let mut out = Vec::new();
                e.backend().inbox(f, None, 10, &mut out).expect("inbox");
                out.iter().any(|x| x.post == post)
            })
            .count();
        let job = e.backend().job(post).expect("job");
        assert!(job.is_some(), "the job is pending ({failing})");
        let ingested = failing == 6;
        assert_eq!(
            delivered,
            if ingested { followers.len() } else { 0 },
            "entries are stored by the load's finish, all at once ({failing})"
        );
        drop(e);
        let e = Engine::open(dir.path(), cfg.clone()).expect("engine reopens");
        e.wait_for_fanout().expect("fan-out");
        for &f in &followers {
            let home = e.home_timeline(f, None, 10).expect("home");
            let times = home.posts.iter().filter(|p| p.id == post).count();
            assert_eq!(times, 1, "follower {f} holds the post once ({failing})");
        }
        let report = e.check().expect("check");
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.pending_jobs, 0);
    }
}
