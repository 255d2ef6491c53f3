//! Tests of the direct features over the in-memory backend: a model-based
//! test of the device outbox (with crash-and-reopen steps), the daily cap,
//! and bad input. Direct messages are checked against the reference model
//! in the test kit's tests.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use starling_core::{
    AVATAR_MAX_BYTES, Config, Cursor, DeliveryId, DeliveryKind, DeviceDelivery, DeviceUsage,
    DmPolicy, Durability, Error, ImageKind, PostId, Toggle, UserId, format_phone_code, utc_day,
};

use starling_memstore::MemBackend;
use starling_store::DirectStore;

use crate::Engine;

type Mem = Engine<MemBackend>;

fn config() -> Config {
    Config {
        durability: Durability::Buffered,
        fanout_workers: 1,
        ..Config::default()
    }
}

fn engine_with(config: Config) -> (MemBackend, Mem) {
    let backend = MemBackend::new();
    let engine = Engine::with_backend(backend.clone(), config).expect("engine starts");
    (backend, engine)
}

fn users(engine: &Mem, n: usize) -> Vec<UserId> {
    (0..n)
        .map(|i| engine.create_user(&format!("u{i}")).expect("user").id)
        .collect()
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n-png-";

/// Every conversation of `user`, walking pages of `limit`.
fn all_conversations(engine: &Mem, user: UserId, limit: usize) -> Vec<(UserId, u64)> {
    let mut out = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = engine
            .conversations(user, cursor.as_ref(), limit)
            .expect("conversations");
        out.extend(page.conversations.iter().map(|c| (c.with, c.unread)));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
}

/// Every message between two users, walking pages of `limit`.
fn all_messages(engine: &Mem, a: UserId, b: UserId, limit: usize) -> Vec<(PostId, UserId)> {
    let mut out = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = engine
            .messages(a, b, cursor.as_ref(), limit)
            .expect("messages");
        out.extend(page.messages.iter().map(|m| (m.id, m.from)));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
}

/// Links and confirms `phone` for `user` as of the Unix epoch, so that
/// the code text counts on day 0 and not against today's cap.
fn link(engine: &Mem, user: UserId, phone: &str) {
    engine.link_phone_at(user, phone, 0).expect("link");
    let code = engine
        .backend()
        .phone_claim(user)
        .expect("read")
        .expect("a pending link")
        .code;
    engine
        .confirm_phone_at(user, &format_phone_code(code), 0)
        .expect("confirm");
}

/// An author with `n` followers who each have device updates on and a
/// linked phone. Returns (backend, engine, author, followers).
fn device_setup(config: Config, n: usize) -> (MemBackend, Mem, UserId, Vec<UserId>) {
    let (backend, engine) = engine_with(config);
    let author = engine.create_user("author").expect("author").id;
    let mut followers = Vec::new();
    for i in 0..n {
        let f = engine.create_user(&format!("f{i}")).expect("follower").id;
        engine.follow(f, author).expect("follow");
        link(&engine, f, &format!("+1415555{:04}", i));
        engine
            .set_device_updates(f, author, Toggle::On)
            .expect("device updates on");
        followers.push(f);
    }
    // The confirmed links' code texts leave the outbox at the first lease.
    let codes = engine.lease_device_deliveries_at(0, 200, 1).expect("lease");
    assert!(codes.is_empty(), "codes of confirmed links are not sent");
    (backend, engine, author, followers)
}

#[derive(Clone, Debug)]
enum OutboxOp {
    Post,
    Lease {
        max: usize,
        lease_ms: u64,
    },
    /// Acknowledge the `n`th delivery ever offered (modulo their number).
    Ack(usize),
    Advance(u64),
    Reopen,
}

fn outbox_op() -> impl Strategy<Value = OutboxOp> {
    prop_oneof![
        2 => Just(OutboxOp::Post),
        3 => (1..5usize, 1..100u64).prop_map(|(max, lease_ms)| OutboxOp::Lease { max, lease_ms }),
        3 => any::<usize>().prop_map(OutboxOp::Ack),
        2 => (0..150u64).prop_map(OutboxOp::Advance),
        1 => Just(OutboxOp::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random posts, leases, acknowledgements, clock advances and reopens
    /// against a model of the outbox: exactly the deliveries due are
    /// offered, in lease order; an acknowledged delivery is never offered
    /// again; a leased but unacknowledged one comes back after its lease;
    /// and in the end every queued delivery is acknowledged exactly once.
    #[test]
    fn the_outbox_is_at_least_once_and_never_duplicates_after_ack(
        ops in proptest::collection::vec(outbox_op(), 1..40),
        batch in 1..3usize,
    ) {
        let cfg = Config { fanout_batch: batch, device_daily_cap: 1000, ..config() };
        let (backend, mut engine, author, followers) = device_setup(cfg.clone(), 3);
        let mut now = 1_000_000u64;
        // id -> lease end (0: never leased).
        let mut queued: BTreeMap<DeliveryId, u64> = BTreeMap::new();
        let mut acked: BTreeSet<DeliveryId> = BTreeSet::new();
        let mut offered: Vec<DeliveryId> = Vec::new();
        let mut acks = 0usize;
        for op in ops {
            match op {
                OutboxOp::Post => {
                    let post = engine.post(author, "news").expect("post");
                    engine.wait_for_fanout().expect("fan-out");
                    for &f in &followers {
                        queued.insert(DeliveryId { post: post.id, recipient: f }, 0);
                    }
                }
                OutboxOp::Lease { max, lease_ms } => {
                    let got = engine.lease_device_deliveries_at(now, max, lease_ms).expect("lease");
                    let mut due: Vec<(u64, DeliveryId)> = queued
                        .iter()
                        .filter(|(_, until)| **until <= now)
                        .map(|(id, until)| (*until, *id))
                        .collect();
                    due.sort();
                    due.truncate(max);
                    let got_ids: Vec<DeliveryId> = got.iter().map(|d| d.id).collect();
                    let want: Vec<DeliveryId> = due.iter().map(|(_, id)| *id).collect();
                    prop_assert_eq!(&got_ids, &want);
                    for d in &got {
                        prop_assert!(!acked.contains(&d.id), "offered after ack");
                        prop_assert_eq!(d.leased_until_ms, now + lease_ms);
                        prop_assert_eq!(&d.text, "author: news");
                        queued.insert(d.id, now + lease_ms);
                        offered.push(d.id);
                    }
                }
                OutboxOp::Ack(n) => {
                    if !offered.is_empty() {
                        let id = offered[n % offered.len()];
                        let was = engine.ack_device_delivery(id).expect("ack");
                        prop_assert_eq!(was, queued.remove(&id).is_some());
                        if was {
                            acked.insert(id);
                            acks += 1;
                        }
                    }
                }
                OutboxOp::Advance(ms) => now += ms,
                OutboxOp::Reopen => {
                    drop(engine);
                    engine = Engine::with_backend(backend.clone(), cfg.clone()).expect("reopen");
                }
            }
        }
        // Drain: far in the future every lease has ended.
        now += 1_000_000;
        loop {
            let got = engine.lease_device_deliveries_at(now, 7, 10).expect("lease");
            if got.is_empty() {
                break;
            }
            for d in got {
                prop_assert!(engine.ack_device_delivery(d.id).expect("ack"));
                prop_assert!(queued.remove(&d.id).is_some(), "unknown or duplicate delivery");
                prop_assert!(acked.insert(d.id), "acknowledged twice");
                acks += 1;
            }
        }
        prop_assert!(queued.is_empty(), "never offered: {:?}", queued);
        prop_assert_eq!(acks, acked.len());
        let unknown = DeliveryId { post: PostId(1), recipient: author };
        prop_assert!(!engine.ack_device_delivery(unknown).expect("ack"));
    }
}

#[test]
fn the_daily_cap_counts_what_it_does_not_send() {
    let cfg = Config {
        device_daily_cap: 3,
        ..config()
    };
    let (_b, engine, author, followers) = device_setup(cfg, 2);
    let mut days = BTreeSet::new();
    for i in 0..5 {
        let p = engine.post(author, &format!("post {i}")).expect("post");
        days.insert(utc_day(p.id.unix_millis()));
    }
    engine.wait_for_fanout().expect("fan-out");
    let leased = engine
        .lease_device_deliveries_at(u64::MAX / 2, 200, 1)
        .expect("lease");
    let (queued, notices): (Vec<_>, Vec<_>) = leased
        .into_iter()
        .partition(|d| d.kind == DeliveryKind::Post);
    assert_eq!(queued.len(), 6, "3 a day for each of 2 followers");
    // Each follower is told once a day that the cap was reached.
    assert_eq!(notices.len(), 2 * days.len());
    assert!(notices.iter().all(|d| d.kind == DeliveryKind::Notice));
    // Unless the test straddled midnight, all on one day.
    if days.len() == 1 {
        let day = *days.first().expect("a day");
        for &f in &followers {
            assert_eq!(
                engine.device_usage(f, day).expect("usage"),
                DeviceUsage {
                    sent: 3,
                    over_cap: 2
                }
            );
        }
        assert_eq!(
            engine.device_usage(author, day).expect("usage"),
            DeviceUsage::default()
        );
    }
    // The earliest posts went out, labelled with the author.
    let texts: BTreeSet<&str> = queued.iter().map(|d| d.text.as_str()).collect();
    assert_eq!(
        texts,
        BTreeSet::from(["author: post 0", "author: post 1", "author: post 2"])
    );
    assert!(matches!(
        Config {
            device_daily_cap: 10_001,
            ..Config::default()
        }
        .validate(),
        Err(Error::InvalidConfig(_))
    ));
}

#[test]
fn device_updates_need_a_follow_a_phone_and_no_pause() {
    let (_b, engine, author, followers) = device_setup(config(), 5);
    let [a, b, c, d, e] = followers[..] else {
        panic!("five followers")
    };
    let stranger = engine.create_user("stranger").expect("user").id;
    assert!(matches!(
        engine.set_device_updates(stranger, author, Toggle::On),
        Err(Error::NotAllowed(_))
    ));
    assert!(matches!(
        engine.set_device_updates(author, author, Toggle::On),
        Err(Error::SelfFollow)
    ));
    assert!(matches!(
        engine.set_device_updates(UserId(999), author, Toggle::On),
        Err(Error::UnknownUser(_))
    ));
    engine.pause_device_updates(a).expect("stop");
    engine.unlink_phone(b).expect("unlink");
    engine.unfollow(c, author).expect("unfollow");
    assert!(
        !engine.device_updates(c, author).expect("read"),
        "unfollow ends device updates"
    );
    engine.follow(c, author).expect("follow again");
    engine
        .set_device_updates(d, author, Toggle::Off)
        .expect("off");
    engine.post(author, "one").expect("post");
    engine.wait_for_fanout().expect("fan-out");
    let got = engine.lease_device_deliveries_at(1, 200, 1).expect("lease");
    let to: Vec<UserId> = got.iter().map(|d| d.id.recipient).collect();
    assert_eq!(to, vec![e]);
    assert_eq!(got[0].phone.as_str(), "+14155550004");
    assert!(engine.ack_device_delivery(got[0].id).expect("ack"));
    // START resumes.
    engine.resume_device_updates(a).expect("start");
    let post = engine.post(author, "two").expect("post");
    engine.wait_for_fanout().expect("fan-out");
    let got = engine.lease_device_deliveries_at(2, 200, 1).expect("lease");
    let to: BTreeSet<UserId> = got.iter().map(|d| d.id.recipient).collect();
    assert_eq!(to, BTreeSet::from([a, e]));
    assert!(got.iter().all(|d| d.id.post == post.id));
    // A delivery id prints and parses back.
    let id: DeliveryId = got[0].id.to_string().parse().expect("id");
    assert_eq!(id, got[0].id);
}

#[test]
fn bad_profile_phone_and_avatar_input_changes_nothing() {
    let (_b, engine) = engine_with(config());
    let [ada, bob] = users(&engine, 2)[..] else {
        panic!("two users")
    };
    let ghost = UserId(404);
    engine
        .set_profile(ada, "Ada L.", "maths\nengines")
        .expect("profile");
    engine.set_avatar(ada, PNG).expect("avatar");
    link(&engine, ada, "+442079460000");
    let before = (
        engine.profile(ada).expect("profile"),
        engine.avatar(ada).expect("avatar"),
        engine.phone(ada).expect("phone"),
    );

    let too_big = {
        let mut v = PNG.to_vec();
        v.resize(AVATAR_MAX_BYTES + 1, 0);
        v
    };
    assert!(matches!(
        engine.set_avatar(ada, &too_big),
        Err(Error::AvatarTooLarge { .. })
    ));
    assert!(matches!(
        engine.set_avatar(ada, b"<svg/>"),
        Err(Error::UnsupportedImage)
    ));
    assert!(matches!(
        engine.set_avatar(ada, b""),
        Err(Error::UnsupportedImage)
    ));
    assert!(matches!(
        engine.set_avatar(ghost, PNG),
        Err(Error::UnknownUser(_))
    ));
    assert!(matches!(
        engine.set_profile(ada, &"x".repeat(51), ""),
        Err(Error::InvalidProfile(_))
    ));
    assert!(matches!(
        engine.set_profile(ada, "ok", &"x".repeat(161)),
        Err(Error::InvalidProfile(_))
    ));
    assert!(matches!(
        engine.set_profile(ada, "tab\there", ""),
        Err(Error::InvalidProfile(_))
    ));
    assert!(matches!(
        engine.set_profile(ghost, "a", "b"),
        Err(Error::UnknownUser(_))
    ));
    for bad in [
        "",
        "442079460000",
        "+0442079460",
        "+1234567",
        "+44 20 7946 0000",
    ] {
        assert!(
            matches!(engine.link_phone(ada, bad), Err(Error::InvalidPhone(_))),
            "{bad:?}"
        );
    }
    // Another account may ask for a linked number: nothing changes until
    // the code comes back.
    assert!(matches!(
        engine.link_phone(bob, "+442079460000"),
        Ok(crate::PhoneLink::CodeSent { .. })
    ));
    assert!(matches!(
        engine.link_phone(ghost, "+15555550100"),
        Err(Error::UnknownUser(_))
    ));
    assert!(matches!(
        engine.user_by_phone("nope"),
        Err(Error::InvalidPhone(_))
    ));
    assert!(matches!(engine.profile(ghost), Err(Error::UnknownUser(_))));
    assert!(matches!(engine.avatar(ghost), Err(Error::UnknownUser(_))));
    let after = (
        engine.profile(ada).expect("profile"),
        engine.avatar(ada).expect("avatar"),
        engine.phone(ada).expect("phone"),
    );
    assert_eq!(before, after);
    assert_eq!(engine.phone(bob).expect("phone"), None);
    assert_eq!(
        engine.user_by_phone("+442079460000").expect("lookup"),
        Some(ada)
    );
    assert_eq!(
        after.1,
        Some((ImageKind::Png, bytes::Bytes::from_static(PNG)))
    );
    assert_eq!(after.0.display_name, "Ada L.");
}

#[test]
fn relinking_a_phone_moves_the_index_and_frees_the_old_number() {
    let (_b, engine) = engine_with(config());
    let [ada, bob] = users(&engine, 2)[..] else {
        panic!("two users")
    };
    link(&engine, ada, "+15555550100");
    assert_eq!(
        engine.link_phone(ada, "+15555550100").expect("again"),
        crate::PhoneLink::Linked {
            phone: starling_core::Phone::parse("+15555550100").expect("valid")
        },
        "linking the same number again is a no-op"
    );
    link(&engine, ada, "+15555550199");
    assert_eq!(engine.user_by_phone("+15555550100").expect("lookup"), None);
    assert_eq!(
        engine.user_by_phone("+15555550199").expect("lookup"),
        Some(ada)
    );
    link(&engine, bob, "+15555550100");
    assert!(engine.unlink_phone(ada).expect("unlink"));
    assert!(!engine.unlink_phone(ada).expect("unlink twice"));
    assert_eq!(engine.user_by_phone("+15555550199").expect("lookup"), None);
    assert!(engine.remove_avatar(ada).is_ok_and(|had| !had));
    engine
        .set_avatar(ada, b"GIF89a\x01\x00")
        .expect("gif avatar");
    assert!(engine.remove_avatar(ada).expect("remove"));
    assert_eq!(engine.avatar(ada).expect("avatar"), None);
}

#[test]
fn bad_direct_messages_are_refused() {
    let (_b, engine) = engine_with(config());
    let [ada, bob] = users(&engine, 2)[..] else {
        panic!("two users")
    };
    engine.set_dm_policy(bob, DmPolicy::Open).expect("open");
    for empty in ["", "\u{200B}", " \u{FEFF}\u{2060} ", "\u{200C}\u{200D}"] {
        assert!(
            matches!(
                engine.send_direct(ada, bob, empty),
                Err(Error::InvalidText("empty"))
            ),
            "{empty:?}"
        );
    }
    assert!(matches!(
        engine.send_direct(ada, bob, &"x".repeat(281)),
        Err(Error::TextTooLong { .. })
    ));
    assert!(matches!(
        engine.send_direct(ada, ada, "me"),
        Err(Error::NotAllowed(_))
    ));
    assert!(matches!(
        engine.send_direct(ada, UserId(77), "hi"),
        Err(Error::UnknownUser(_))
    ));
    assert!(matches!(
        engine.send_direct(bob, ada, "hi"),
        Err(Error::NotAllowed(_))
    ));
    assert!(matches!(
        engine.conversations(ada, None, 0),
        Err(Error::PageSize { .. })
    ));
    assert!(matches!(
        engine.messages(ada, bob, Some(&Cursor::users(UserId(1))), 10),
        Err(Error::MalformedCursor)
    ));
    assert!(all_conversations(&engine, ada, 10).is_empty());
    let m = engine.send_direct(ada, bob, "hello").expect("open DMs");
    assert_eq!(m.text, "hello");
    assert_eq!(all_conversations(&engine, bob, 10), vec![(ada, 1)]);
    assert_eq!(all_conversations(&engine, ada, 10), vec![(bob, 0)]);
}

#[test]
fn concurrent_messages_keep_counts_and_the_index_consistent() {
    let (_b, engine) = engine_with(config());
    let ids = users(&engine, 4);
    for &u in &ids {
        engine.set_dm_policy(u, DmPolicy::Open).expect("open");
    }
    std::thread::scope(|s| {
        for t in 0..4 {
            let engine = &engine;
            let ids = &ids;
            s.spawn(move || {
                for i in 0..100 {
                    let from = ids[(t + i) % 4];
                    let to = ids[(t + i / 3 + 1) % 4];
                    if from != to {
                        engine.send_direct(from, to, "x").expect("send");
                    }
                }
            });
        }
    });
    for &u in &ids {
        let list = all_conversations(&engine, u, 2);
        let withs: BTreeSet<UserId> = list.iter().map(|&(w, _)| w).collect();
        assert_eq!(withs.len(), list.len(), "one index entry per conversation");
        for (with, unread) in list {
            let received = all_messages(&engine, u, with, 200)
                .iter()
                .filter(|&&(_, from)| from == with)
                .count() as u64;
            assert_eq!(unread, received);
        }
        let page = engine.conversations(u, None, 200).expect("page");
        let lasts: Vec<PostId> = page.conversations.iter().map(|c| c.last).collect();
        assert!(lasts.windows(2).all(|w| w[0] > w[1]), "newest first");
    }
}

#[test]
fn deliveries_are_written_with_the_inbox_entries_of_their_page() {
    // With a failing write after setup, the batch holding a page's inbox
    // entries and its deliveries is refused whole: no delivery without
    // the inbox entry, and none after reopen until the job runs again.
    use starling_memstore::{FaultKind, FaultPlan, FaultyBackend};
    let mem = MemBackend::new();
    {
        let engine = Engine::with_backend(mem.clone(), config()).expect("engine");
        let author = engine.create_user("author").expect("user").id;
        let f = engine.create_user("f").expect("user").id;
        engine.follow(f, author).expect("follow");
        link(&engine, f, "+15555550100");
        engine
            .set_device_updates(f, author, Toggle::On)
            .expect("on");
    }
    let faulty = FaultyBackend::new(mem.clone(), FaultPlan::AfterWrites(1), FaultKind::Write);
    let engine = Engine::with_backend(faulty, config()).expect("engine");
    engine.post(UserId(1), "hello").expect("post is written");
    assert!(
        engine.wait_for_fanout().is_err(),
        "the fan-out batch failed"
    );
    drop(engine);
    let engine = Engine::with_backend(mem, config()).expect("reopen");
    engine.wait_for_fanout().expect("resumed fan-out");
    let got = engine.lease_device_deliveries_at(1, 200, 1).expect("lease");
    assert_eq!(got.len(), 1);
    let page = engine.home_timeline(UserId(2), None, 10).expect("timeline");
    assert_eq!(page.posts.len(), 1);
    let _: &DeviceDelivery = &got[0];
}

#[test]
fn concurrent_fan_out_to_one_recipient_respects_the_cap_exactly() {
    // Two authors fanned out by two workers at once, one recipient
    // subscribed to both: the usage counters must add up exactly.
    let cfg = Config {
        device_daily_cap: 7,
        fanout_workers: 2,
        ..config()
    };
    let (_b, engine) = engine_with(cfg);
    let [a1, a2, r] = users(&engine, 3)[..] else {
        panic!("three users")
    };
    link(&engine, r, "+15555550100");
    for a in [a1, a2] {
        engine.follow(r, a).expect("follow");
        engine.set_device_updates(r, a, Toggle::On).expect("on");
    }
    let mut days = BTreeSet::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = [a1, a2]
            .into_iter()
            .map(|a| {
                let engine = &engine;
                s.spawn(move || {
                    (0..200)
                        .map(|i| {
                            let p = engine.post(a, &format!("p{i}")).expect("post");
                            utc_day(p.id.unix_millis())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            days.extend(h.join().expect("poster"));
        }
    });
    engine.wait_for_fanout().expect("fan-out");
    let leased = engine.lease_device_deliveries_at(1, 200, 1).expect("lease");
    let queued = leased
        .iter()
        .filter(|d| d.kind == DeliveryKind::Post)
        .count() as u64;
    let notices = leased.len() as u64 - queued;
    assert_eq!(notices, days.len() as u64, "told once a day");
    let total: DeviceUsage = days
        .iter()
        .map(|&d| engine.device_usage(r, d).expect("usage"))
        .fold(DeviceUsage::default(), |t, u| DeviceUsage {
            sent: t.sent + u.sent,
            over_cap: t.over_cap + u.over_cap,
        });
    assert_eq!(total.sent, queued);
    assert_eq!(total.sent + total.over_cap, 400);
    if days.len() == 1 {
        assert_eq!(total.sent, 7);
    }
}

#[test]
fn queued_texts_follow_deletes_unlinks_pauses_and_new_numbers() {
    let (_b, engine, author, followers) = device_setup(config(), 4);
    let [a, b, c, d] = followers[..] else {
        panic!("four followers")
    };
    let kept = engine.post(author, "kept").expect("post");
    let gone = engine.post(author, "gone").expect("post");
    engine.wait_for_fanout().expect("fan-out");
    engine.delete_post(author, gone.id).expect("delete");
    engine.unlink_phone(a).expect("unlink");
    engine.pause_device_updates(b).expect("stop");
    link(&engine, c, "+15555550999");
    let got = engine.lease_device_deliveries_at(1, 200, 1).expect("lease");
    let mut to: Vec<(UserId, PostId, &str)> = got
        .iter()
        .map(|x| (x.id.recipient, x.id.post, x.phone.as_str()))
        .collect();
    to.sort();
    assert_eq!(
        to,
        vec![(c, kept.id, "+15555550999"), (d, kept.id, "+14155550003")]
    );
    // The dropped ones are gone for good, not just leased.
    engine.resume_device_updates(b).expect("start");
    let later = engine
        .lease_device_deliveries_at(1_000, 200, 1)
        .expect("lease");
    assert_eq!(later.len(), 2, "only the two leased ones come back");
    assert!(
        later
            .iter()
            .all(|x| x.id.post == kept.id && x.id.recipient != b)
    );
}
