//! Tests of the change feed ([`Engine::changes`]) over the in-memory
//! backend: every kind of change in order, paging and resuming across a
//! reopen, concurrent writers never letting a reader skip a record,
//! retention, a failed write, and bad input.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use starling_core::{
    CHANGE_POSITION_SEQUENCE_BITS, Change, ChangeRecord, Config, Cursor, Durability, Error,
    MAX_PAGE_SIZE, PostId, UserId,
};
use starling_memstore::{FaultKind, FaultPlan, FaultyBackend, MemBackend};

use crate::Engine;

/// Set while a test wants batches to stay in flight a while between
/// getting their positions and being stored, as a slow disk would keep
/// them, so that batches are stored out of position order.
static PAUSE_IN_FLIGHT: AtomicBool = AtomicBool::new(false);

/// Called by the engine's write between minting and storing (tests only).
pub(crate) fn pause_in_flight(position: u64) {
    if PAUSE_IN_FLIGHT.load(Ordering::SeqCst) {
        // Some batches wait, others not: later positions overtake.
        let micros = (position.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) * 40;
        std::thread::sleep(std::time::Duration::from_micros(micros));
    }
}

fn config() -> Config {
    Config {
        durability: Durability::Buffered,
        fanout_workers: 1,
        ..Config::default()
    }
}

fn engine(mem: &MemBackend) -> Engine<MemBackend> {
    Engine::with_backend(mem.clone(), config()).expect("engine starts")
}

/// The whole feed after `cursor`, `page` records at a time, and the last
/// cursor returned.
fn read_all<B: crate::Backend>(
    engine: &Engine<B>,
    mut cursor: Option<Cursor>,
    page: usize,
) -> (Vec<ChangeRecord>, Option<Cursor>) {
    let mut all = Vec::new();
    loop {
        let p = engine.changes(cursor.as_ref(), page).expect("changes");
        let n = p.changes.len();
        all.extend(p.changes);
        cursor = Some(p.next.to_string().parse().expect("a cursor parses"));
        if n < page {
            return (all, cursor);
        }
    }
}

fn kinds(records: &[ChangeRecord]) -> Vec<Change> {
    records.iter().map(|r| r.change).collect()
}

#[test]
fn every_kind_of_change_is_recorded_in_order_and_nothing_else() {
    let mem = MemBackend::new();
    let e = engine(&mem);
    let ada = e.create_user("ada").expect("ada").id;
    let bob = e.create_user("bob").expect("bob").id;
    let cy = e.create_user("cy").expect("cy").id;
    assert!(e.follow(bob, ada).expect("follow"));
    assert!(!e.follow(bob, ada).expect("a second follow changes nothing"));
    let post = e.post(ada, "hello #rust").expect("post").id;
    let reply = e.reply(bob, post, "hi").expect("reply").id;
    let repost = e.repost(bob, post).expect("repost").id;
    assert_eq!(e.repost(bob, post).expect("again").id, repost);
    let group = e.create_group(ada, "close").expect("group").id;
    e.add_member(ada, group, bob).expect("member");
    let secret = e
        .post_to_group(ada, group, "members only")
        .expect("group post")
        .id;
    assert!(e.like(bob, post).expect("like"));
    assert!(!e.like(bob, post).expect("a second like changes nothing"));
    assert!(e.unlike(bob, post).expect("unlike"));
    e.set_profile(ada, "Ada", "bio").expect("profile");
    e.set_dm_policy(ada, starling_core::DmPolicy::Open)
        .expect("a setting, not recorded");
    e.set_avatar(ada, b"\x89PNG\r\n\x1a\n rest")
        .expect("avatar");
    assert!(e.remove_avatar(ada).expect("remove avatar"));
    assert!(!e.remove_avatar(ada).expect("nothing to remove"));
    e.protect(ada).expect("protect");
    e.request_follow(cy, ada).expect("request");
    e.approve_follow_request(ada, cy).expect("approve");
    assert!(e.delete_post(ada, post).expect("delete"));
    assert!(!e.delete_post(ada, post).expect("deleted already"));
    assert!(e.unfollow(bob, ada).expect("unfollow"));
    e.follow(ada, cy).expect("follow");
    e.block(cy, ada).expect("block: both edges go");
    // Refused operations record nothing.
    assert!(e.post(ada, "").is_err());
    assert!(e.follow(ada, ada).is_err());
    let want = vec![
        Change::Followed {
            follower: bob,
            followee: ada,
        },
        Change::Posted { post, author: ada },
        Change::Posted {
            post: reply,
            author: bob,
        },
        Change::Posted {
            post: repost,
            author: bob,
        },
        Change::Posted {
            post: secret,
            author: ada,
        },
        Change::Liked { user: bob, post },
        Change::Unliked { user: bob, post },
        Change::ProfileChanged { user: ada },
        Change::AvatarChanged { user: ada },
        Change::AvatarChanged { user: ada },
        Change::Followed {
            follower: cy,
            followee: ada,
        },
        Change::Deleted { post, author: ada },
        Change::Unfollowed {
            follower: bob,
            followee: ada,
        },
        Change::Followed {
            follower: ada,
            followee: cy,
        },
        Change::Unfollowed {
            follower: cy,
            followee: ada,
        },
        Change::Unfollowed {
            follower: ada,
            followee: cy,
        },
    ];
    for page in [1, 2, 5, MAX_PAGE_SIZE] {
        let (all, _) = read_all(&e, None, page);
        assert_eq!(kinds(&all), want, "in pages of {page}");
        let positions: Vec<u64> = all.iter().map(|r| r.position).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        // A position dates its record.
        let now = starling_log::unix_millis();
        assert!(
            all.iter()
                .all(|r| r.unix_millis() <= now && r.unix_millis() + 60_000 > now)
        );
    }
}

#[test]
fn a_reader_resumes_from_its_cursor_across_a_reopen_without_gaps_or_repeats() {
    let mem = MemBackend::new();
    let e = engine(&mem);
    let ada = e.create_user("ada").expect("ada").id;
    for i in 0..5 {
        e.post(ada, &format!("post {i}")).expect("post");
    }
    let first = e.changes(None, 3).expect("changes");
    assert_eq!(first.changes.len(), 3);
    let cursor = first.next.to_string();
    e.close().expect("close");

    let e = engine(&mem);
    for i in 5..8 {
        e.post(ada, &format!("post {i}")).expect("post");
    }
    let cursor: Cursor = cursor.parse().expect("cursor");
    let (rest, last) = read_all(&e, Some(cursor), 2);
    assert_eq!(rest.len(), 5, "{rest:?}");
    assert!(rest[0].position > first.changes[2].position);
    let (everything, _) = read_all(&e, None, 4);
    let mut resumed = first.changes.clone();
    resumed.extend(rest);
    assert_eq!(resumed, everything);
    // Nothing more. A quiet feed's cursor moves up with the clock (so it
    // does not fall behind the floor), never back and never past the
    // present.
    let again = e.changes(last.as_ref(), 10).expect("changes");
    assert!(again.changes.is_empty());
    let at = |c: &Cursor| c.as_changes().expect("a change cursor");
    let (was, now) = (at(last.as_ref().expect("a cursor")), at(&again.next));
    let present = (starling_log::unix_millis() + 1) << starling_core::CHANGE_POSITION_SEQUENCE_BITS;
    assert!(was <= now && now < present, "{was} {now} {present}");
    // Positions keep growing after the reopen.
    let newest = everything.last().expect("records").position;
    let post = e.post(ada, "later").expect("post").id;
    let more = e.changes(last.as_ref(), 10).expect("changes");
    assert_eq!(
        kinds(&more.changes),
        vec![Change::Posted { post, author: ada }]
    );
    assert!(more.changes[0].position > newest);
}

#[test]
fn concurrent_writers_never_let_a_reader_skip_a_record() {
    let mem = MemBackend::new();
    let e = Arc::new(engine(&mem));
    let users: Vec<UserId> = (0..4)
        .map(|i| e.create_user(&format!("user{i}")).expect("user").id)
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    PAUSE_IN_FLIGHT.store(true, Ordering::SeqCst);
    let reader = {
        let (e, done) = (Arc::clone(&e), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut cursor = None;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let p = e.changes(cursor.as_ref(), 7).expect("changes");
                let n = p.changes.len();
                seen.extend(p.changes);
                cursor = Some(p.next);
                if finished && n < 7 {
                    return seen;
                }
            }
        })
    };
    let writers: Vec<_> = users
        .iter()
        .map(|&u| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                for i in 0..300 {
                    e.post(u, &format!("post {i}")).expect("post");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    done.store(true, Ordering::SeqCst);
    PAUSE_IN_FLIGHT.store(false, Ordering::SeqCst);
    let seen = reader.join().expect("reader");
    let (all, _) = read_all(&e, None, MAX_PAGE_SIZE);
    assert_eq!(all.len(), 4 * 300);
    assert_eq!(
        seen.len(),
        all.len(),
        "the follower skipped or repeated records"
    );
    assert_eq!(seen, all);
    let posts: BTreeSet<PostId> = all
        .iter()
        .filter_map(|r| match r.change {
            Change::Posted { post, .. } => Some(post),
            _ => None,
        })
        .collect();
    assert_eq!(posts.len(), 4 * 300, "one record per post");
}

#[test]
fn records_older_than_the_retention_are_trimmed_and_their_cursors_expire() {
    let mem = MemBackend::new();
    let config = Config {
        change_retention_ms: 20,
        ..config()
    };
    let e = Engine::with_backend(mem.clone(), config).expect("engine");
    let ada = e.create_user("ada").expect("ada").id;
    e.post(ada, "old").expect("post");
    let start = e.changes(None, 10).expect("changes");
    assert_eq!(start.changes.len(), 1);
    let before_everything = Cursor::changes(0);
    std::thread::sleep(std::time::Duration::from_millis(60));
    let recent = e.post(ada, "recent").expect("post").id;
    let page = e.changes(None, 10).expect("changes");
    assert_eq!(
        kinds(&page.changes),
        vec![Change::Posted {
            post: recent,
            author: ada
        }],
        "the old record is trimmed by a later write"
    );
    match e.changes(Some(&before_everything), 10) {
        Err(Error::ChangeCursorExpired { floor }) => {
            assert!(floor >= start.changes[0].position);
            assert!(floor < page.changes[0].position);
        }
        other => panic!("want ChangeCursorExpired, got {other:?}"),
    }
    // A cursor at the trimmed record missed nothing that is gone... but
    // the floor passed it: it expired too.
    assert!(matches!(
        e.changes(Some(&start.next), 10),
        Err(Error::ChangeCursorExpired { .. })
    ));
    // Retention is checked.
    let bad = Config {
        change_retention_ms: 0,
        ..Config::default()
    };
    assert!(matches!(
        Engine::with_backend(MemBackend::new(), bad),
        Err(Error::InvalidConfig(_))
    ));
}

#[test]
fn a_failed_write_stores_neither_the_change_nor_its_record() {
    // A write refused before storing: neither the follow nor its record;
    // one stored but whose sync failed: both.
    for (kind, stored) in [(FaultKind::Write, false), (FaultKind::Sync, true)] {
        let mem = MemBackend::new();
        let e = engine(&mem);
        let ada = e.create_user("ada").expect("ada").id;
        let bob = e.create_user("bob").expect("bob").id;
        let post = e.post(ada, "kept").expect("post").id;
        e.close().expect("close");
        let faulty = FaultyBackend::new(mem.clone(), FaultPlan::AfterWrites(0), kind);
        let e = Engine::with_backend(faulty, config()).expect("engine");
        assert!(e.follow(bob, ada).is_err(), "{kind:?}");
        assert!(matches!(e.post(ada, "refused"), Err(Error::Poisoned)));
        // The feed is still read, up to what was stored.
        let (records, _) = read_all(&e, None, 3);
        drop(e);
        let e = engine(&mem);
        assert_eq!(e.is_following(bob, ada).expect("is_following"), stored);
        let mut want = vec![Change::Posted { post, author: ada }];
        if stored {
            want.push(Change::Followed {
                follower: bob,
                followee: ada,
            });
        }
        assert_eq!(kinds(&records), want, "{kind:?} before the reopen");
        assert_eq!(kinds(&read_all(&e, None, 3).0), want, "{kind:?} after it");
    }
}

#[test]
fn bad_cursors_and_page_sizes_are_refused() {
    let e = engine(&MemBackend::new());
    for limit in [0, MAX_PAGE_SIZE + 1] {
        assert!(matches!(
            e.changes(None, limit),
            Err(Error::PageSize { .. })
        ));
    }
    let timeline = Cursor::timeline(PostId(1), 1);
    assert!(matches!(
        e.changes(Some(&timeline), 10),
        Err(Error::MalformedCursor)
    ));
    let users = Cursor::users(UserId(1));
    assert!(matches!(
        e.changes(Some(&users), 10),
        Err(Error::MalformedCursor)
    ));
    // A cursor from the future finds nothing yet, and is kept.
    let ahead = Cursor::changes(u64::MAX >> 2);
    let page = e.changes(Some(&ahead), 10).expect("changes");
    assert!(page.changes.is_empty());
    assert_eq!(page.next, ahead);
    let _ = CHANGE_POSITION_SEQUENCE_BITS;
}
