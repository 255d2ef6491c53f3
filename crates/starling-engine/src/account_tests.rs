//! Tests of account deletion over the in-memory backend: each thing it
//! promises to remove, what it keeps, the name's hold, bad input, its
//! cost in batches, and a failure at every one of its writes.

use starling_core::{Config, Durability, Error, LinkKind, MAX_PAGE_SIZE, PostId, Toggle, UserId};
use starling_memstore::{FaultKind, FaultPlan, FaultyBackend, MemBackend};
use starling_store::{Backend, DirectStore, GraphStore};

use std::time::Duration;

use crate::{DELETE_BATCH, Engine, Event, Subscription};

const N1: &str = "+15555550101";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n0000";

fn config() -> Config {
    Config {
        durability: Durability::Buffered,
        fanout_workers: 1,
        name_hold_ms: 1_000,
        ..Config::default()
    }
}

fn engine_over<B: Backend>(backend: B) -> Engine<B> {
    Engine::with_backend(backend, config()).expect("engine")
}

fn ids<B: Backend>(e: &Engine<B>, names: &[&str]) -> Vec<UserId> {
    names
        .iter()
        .map(|n| e.create_user(n).expect("user").id)
        .collect()
}

fn home<B: Backend>(e: &Engine<B>, user: UserId) -> Vec<PostId> {
    e.wait_for_fanout().expect("fan-out");
    let page = e.home_timeline(user, None, MAX_PAGE_SIZE).expect("home");
    page.posts.iter().map(|p| p.id).collect()
}

fn all<B: Backend>(
    read: impl Fn() -> starling_core::Result<crate::UserPage>,
    _e: &Engine<B>,
) -> Vec<UserId> {
    read().expect("page").users
}

fn links(b: &impl GraphStore, kind: LinkKind, from: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    b.links(kind, from, None, 100, &mut out).expect("links");
    out
}

/// Ada has everything deletion removes: followers and followees, posts
/// in their timelines and reposted by others, likes, a repost, groups of
/// her own and of others, blocks, mutes, a request sent, a phone, an
/// avatar, texts queued for her, and conversations.
struct World<B: Backend> {
    e: Engine<B>,
    ada: UserId,
    bob: UserId,
    carol: UserId,
    dave: UserId,
    eve: UserId,
    ada_post: PostId,
    carol_post: PostId,
    carols_group: starling_core::GroupId,
}

fn world<B: Backend>(backend: B) -> World<B> {
    let e = engine_over(backend);
    let [ada, bob, carol, dave, eve] = ids(&e, &["ada", "bob", "carol", "dave", "eve"])[..] else {
        panic!("five users")
    };
    e.follow(bob, ada).expect("follow");
    e.follow(carol, ada).expect("follow");
    e.follow(ada, carol).expect("follow");
    e.follow(dave, bob).expect("follow");
    let ada_post = e.post(ada, "hello from ada").expect("post").id;
    e.post(ada, "mentions @bob").expect("post");
    let carol_post = e.post(carol, "carol writes").expect("post").id;
    e.repost(bob, ada_post).expect("repost");
    e.repost(ada, carol_post).expect("repost");
    e.like(ada, carol_post).expect("like");
    e.like(bob, ada_post).expect("like");
    let own = e.create_group(ada, "close").expect("group").id;
    e.add_member(ada, own, bob).expect("member");
    e.post_to_group(ada, own, "for the group")
        .expect("group post");
    let carols_group = e.create_group(carol, "carol's").expect("group").id;
    e.add_member(carol, carols_group, ada).expect("member");
    e.block(ada, dave).expect("block");
    e.mute(ada, carol).expect("mute");
    e.mute(eve, ada).expect("mute");
    e.protect(eve).expect("protect");
    e.request_follow(ada, eve).expect("request");
    e.set_avatar(ada, PNG).expect("avatar");
    e.set_profile(ada, "Ada", "bio").expect("profile");
    e.link_phone(ada, N1).expect("link");
    let code = e
        .backend()
        .phone_claim(ada)
        .expect("read")
        .expect("claim")
        .code;
    e.confirm_phone(ada, &starling_core::format_phone_code(code))
        .expect("confirm");
    e.set_device_updates(bob, ada, Toggle::On).expect("device");
    e.set_dm_policy(ada, starling_core::DmPolicy::Open)
        .expect("open");
    e.send_direct(ada, bob, "hi bob").expect("dm");
    e.send_direct(bob, ada, "hi ada").expect("dm");
    e.wait_for_fanout().expect("fan-out");
    assert!(home(&e, bob).contains(&ada_post));
    assert!(e.check().expect("check").is_clean());
    World {
        e,
        ada,
        bob,
        carol,
        dave,
        eve,
        ada_post,
        carol_post,
        carols_group,
    }
}

#[test]
fn deletion_removes_the_account_from_everything_it_touched() {
    let w = world(MemBackend::new());
    let (e, ada, bob, carol, dave, eve) = (&w.e, w.ada, w.bob, w.carol, w.dave, w.eve);
    // A text to ada's phone is queued (bob's message) before she goes.
    let queued = {
        let mut due = Vec::new();
        e.backend()
            .due_deliveries(u64::MAX, 100, &mut due)
            .expect("due");
        due.iter().filter(|d| d.id.recipient == ada).count()
    };
    assert!(queued > 0);

    e.delete_account(ada).expect("delete");
    e.wait_for_fanout().expect("fan-out");

    // Gone: every read and write naming her.
    assert!(matches!(e.user(ada), Err(Error::AccountDeleted(u)) if u == ada));
    assert!(matches!(
        e.user_by_name("ada"),
        Err(Error::AccountDeleted(_))
    ));
    assert!(e.is_deleted(ada).expect("deleted"));
    assert!(!e.is_deleted(bob).expect("not deleted"));
    assert_eq!(e.user_record(ada).expect("record").name.as_str(), "ada");
    for err in [
        e.followers(ada, None, 10).err(),
        e.follow(bob, ada).err(),
        e.post(ada, "still here?").err(),
        e.like(ada, w.carol_post).err(),
        e.send_direct(bob, ada, "hello?").err(),
        e.send_direct(ada, bob, "hello?").err(),
        e.home_timeline(ada, None, 10).err(),
        e.export(ada, &mut Vec::new()).err(),
        e.delete_account(ada).err(),
    ] {
        assert!(
            matches!(err, Some(Error::AccountDeleted(u)) if u == ada),
            "{err:?}"
        );
    }
    assert!(matches!(
        e.delete_account(UserId(999)),
        Err(Error::UnknownUser(UserId(999)))
    ));

    // Followers and followees, lists and counts.
    assert!(all(|| e.following(bob, None, 10), e).is_empty());
    assert!(all(|| e.followers(carol, None, 10), e).is_empty());
    assert!(all(|| e.following(carol, None, 10), e).is_empty());
    assert_eq!(e.counts(bob).expect("counts").following, 0);
    let carol_counts = e.counts(carol).expect("counts");
    assert_eq!((carol_counts.followers, carol_counts.following), (0, 0));
    assert_eq!(e.backend().counts(ada).expect("counts"), Default::default());
    assert!(!e.backend().device_sub(ada, bob).expect("device sub"));

    // Her posts: out of every timeline, reposts of them included; by id,
    // deleted.
    assert!(home(e, bob).is_empty(), "{:?}", home(e, bob));
    assert!(
        home(e, dave).is_empty(),
        "bob's repost of ada's post goes too"
    );
    assert!(matches!(e.get_post(w.ada_post), Err(Error::PostDeleted(_))));
    assert!(
        e.mentions(bob, None, 10)
            .expect("mentions")
            .posts
            .is_empty()
    );

    // Her likes and her repost.
    assert_eq!(e.get_post(w.carol_post).expect("post").likes, 0);
    assert!(links(e.backend(), LinkKind::Likes, ada.0).is_empty());
    assert!(links(e.backend(), LinkKind::LikedBy, w.carol_post.0).is_empty());
    assert!(links(e.backend(), LinkKind::Reposts, w.carol_post.0).is_empty());

    // Groups: hers deleted (bob is in none), she left carol's.
    assert!(
        e.member_groups(bob, None, 10)
            .expect("groups")
            .groups
            .is_empty()
    );
    assert!(all(|| e.group_members(carol, w.carols_group, None, 10), e).is_empty());
    assert!(links(e.backend(), LinkKind::OwnerGroups, ada.0).is_empty());
    assert!(links(e.backend(), LinkKind::MemberOf, ada.0).is_empty());

    // Blocks both ways, her mutes and requests; eve's mute of her stays.
    assert!(links(e.backend(), LinkKind::BlockedBy, dave.0).is_empty());
    assert!(links(e.backend(), LinkKind::Mutes, ada.0).is_empty());
    assert!(all(|| e.follow_requests(eve, None, 10), e).is_empty());
    assert_eq!(all(|| e.mutes(eve, None, 10), e), [ada]);
    assert!(
        e.unmute(eve, ada).expect("unmute"),
        "a mute of her may be lifted"
    );

    // Phone, avatar, profile.
    assert_eq!(e.user_by_phone(N1).expect("phone"), None);
    assert!(e.backend().phone_of(ada).expect("phone").is_none());
    assert!(e.backend().avatar(ada).expect("avatar").is_none());
    assert_eq!(
        e.backend()
            .profile(ada)
            .expect("profile")
            .unwrap_or_default()
            .display_name,
        ""
    );

    // Texts queued for her are never sent: the next lease drops them.
    let leased = e
        .lease_device_deliveries_at(u64::MAX / 2, 200, 1)
        .expect("lease");
    assert!(leased.iter().all(|d| d.id.recipient != ada), "{leased:?}");
    let mut due = Vec::new();
    e.backend()
        .due_deliveries(u64::MAX, 100, &mut due)
        .expect("due");
    assert!(due.iter().all(|d| d.id.recipient != ada), "{due:?}");

    // Conversations: bob keeps both messages, hers shown from her id.
    let convs = e.conversations(bob, None, 10).expect("conversations");
    assert_eq!(convs.conversations.len(), 1);
    assert_eq!(convs.conversations[0].with, ada);
    let messages = e.messages(bob, ada, None, 10).expect("messages");
    let texts: Vec<(UserId, &str)> = messages
        .messages
        .iter()
        .map(|m| (m.from, m.text.as_str()))
        .collect();
    assert_eq!(texts, [(bob, "hi ada"), (ada, "hi bob")]);
    assert_eq!(e.mark_read(bob, ada).expect("mark read"), 1);
    let mut out = Vec::new();
    e.export(bob, &mut out).expect("bob's export still works");

    let report = e.check().expect("check");
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[test]
fn the_name_is_held_then_free() {
    let e = engine_over(MemBackend::new());
    let ada = e.create_user_at("ada", 1).expect("user").id;
    e.delete_account_at(ada, 10_000).expect("delete");
    for (name, at) in [("ada", 10_000), ("ADA", 10_999)] {
        assert!(
            matches!(e.create_user_at(name, at), Err(Error::UsernameReserved(_))),
            "{name} at {at}"
        );
    }
    assert!(e.create_user_at("bob", 10_000).is_ok());
    let again = e
        .create_user_at("Ada", 11_000)
        .expect("free after the hold");
    assert_ne!(again.id, ada);
    assert_eq!(e.user_by_name("ada").expect("by name").id, again.id);
    assert!(matches!(
        e.create_user_at("ada", 20_000),
        Err(Error::UsernameTaken(_))
    ));
    let report = e.check().expect("check");
    assert!(report.is_clean(), "{:?}", report.problems);
}

/// A deleted account's live subscriptions end (what was queued first is
/// still read); another user's go on, and no new one can be taken.
#[test]
fn the_deleted_accounts_subscriptions_end() {
    let e = engine_over(MemBackend::new());
    let [ada, bob] = ids(&e, &["ada", "bob"])[..] else {
        unreachable!()
    };
    e.follow(ada, bob).expect("follow");
    e.follow(bob, ada).expect("follow");
    let (mine, again, theirs) = (
        e.subscribe(ada).expect("subscribe"),
        e.subscribe(ada).expect("subscribe"),
        e.subscribe(bob).expect("subscribe"),
    );
    let post = e.post(bob, "before").expect("post").id;
    e.wait_for_fanout().expect("fan-out");
    e.delete_account(ada).expect("delete");
    // Every event until the end, or until a wait for the next one runs out.
    let events = |sub: &Subscription| {
        let mut got = Vec::new();
        while let Some(event) = sub.recv_timeout(Duration::from_millis(500)) {
            got.push(event);
        }
        got
    };
    for sub in [&mine, &again] {
        assert_eq!(events(sub), vec![Event::TimelineAdded { post }]);
        assert!(sub.is_closed(), "the deleted account's stream ended");
    }
    assert!(!theirs.is_closed(), "another user's stream goes on");
    let later = e.post(bob, "still here").expect("post").id;
    e.wait_for_fanout().expect("fan-out");
    assert!(events(&theirs).contains(&Event::TimelineAdded { post: later }));
    assert!(!theirs.is_closed());
    assert!(matches!(e.subscribe(ada), Err(Error::AccountDeleted(_))));
}

#[test]
fn followers_are_removed_a_batch_at_a_time() {
    let backend = FaultyBackend::new(MemBackend::new(), FaultPlan::Never, FaultKind::Write);
    let e = engine_over(backend);
    let star = e.create_user("star").expect("user").id;
    let n = 2 * DELETE_BATCH + 88;
    let mut fans = Vec::with_capacity(n);
    for i in 0..n {
        let fan = e.create_user(&format!("fan{i}")).expect("user").id;
        e.follow(fan, star).expect("follow");
        fans.push(fan);
    }
    let p = e.post(star, "to everyone").expect("post").id;
    e.wait_for_fanout().expect("fan-out");
    assert_eq!(home(&e, fans[n - 1]), [p]);
    let before = e.backend().writes();
    e.delete_account(star).expect("delete");
    let writes = e.backend().writes() - before;
    // The mark, the post, three batches of followers, the phone and
    // profile batch, the end.
    assert_eq!(writes, 1 + 1 + 3 + 1 + 1);
    e.wait_for_fanout().expect("fan-out");
    assert!(home(&e, fans[0]).is_empty());
    assert!(home(&e, fans[n - 1]).is_empty());
    assert_eq!(e.counts(fans[n - 1]).expect("counts").following, 0);
    let report = e.check().expect("check");
    assert!(report.is_clean(), "{:?}", report.problems);
}

/// A failure at each write of a deletion, failed before storing or after
/// (as a failed sync): the engine is poisoned; after reopening, the
/// account reads as deleted once the mark was stored, and calling again
/// finishes the deletion with a store that checks clean.
#[test]
fn a_failure_at_any_write_is_finished_by_calling_again() {
    for kind in [FaultKind::Write, FaultKind::Sync] {
        let mut k = 0;
        loop {
            let inner = MemBackend::new();
            let w = world(inner.clone());
            let ada = w.ada;
            w.e.close().expect("close");
            let e = engine_over(FaultyBackend::new(
                inner.clone(),
                FaultPlan::AfterWrites(k),
                kind,
            ));
            let done = match e.delete_account(ada) {
                Ok(()) => true,
                Err(Error::Storage(_)) => false,
                Err(other) => panic!("write {k}: {other:?}"),
            };
            if done {
                assert!(
                    k > 5,
                    "a deletion of this world writes more than {k} batches"
                );
                break;
            }
            assert!(matches!(e.post(w.bob, "after"), Err(Error::Poisoned)));
            match e.close() {
                Ok(()) | Err(Error::Poisoned) => {}
                Err(other) => panic!("close: {other:?}"),
            }
            let e = engine_over(inner.clone());
            let marked = e.is_deleted(ada).expect("read");
            assert_eq!(
                marked,
                k > 0 || kind == FaultKind::Sync,
                "{kind:?} at write {k}: the mark is the first write"
            );
            if marked {
                assert!(matches!(e.user(ada), Err(Error::AccountDeleted(_))));
            }
            match e.delete_account(ada) {
                Ok(()) => {}
                // The last write, stored though its sync failed: done.
                Err(Error::AccountDeleted(_)) if kind == FaultKind::Sync => {
                    assert!(
                        e.backend()
                            .link(LinkKind::Deleted, ada.0, 1)
                            .expect("read")
                            .is_some()
                    );
                }
                Err(other) => panic!("{kind:?} at write {k}: the second call: {other:?}"),
            }
            e.wait_for_fanout().expect("fan-out");
            let report = e.check().expect("check");
            assert!(
                report.is_clean(),
                "{kind:?} at write {k}: {:?}",
                report.problems
            );
            assert!(home(&e, w.bob).is_empty());
            assert_eq!(e.counts(w.carol).expect("counts").followers, 0);
            assert!(
                e.member_groups(w.bob, None, 10)
                    .expect("groups")
                    .groups
                    .is_empty()
            );
            assert_eq!(e.user_by_phone(N1).expect("phone"), None);
            assert!(matches!(
                e.delete_account(ada),
                Err(Error::AccountDeleted(_))
            ));
            k += 1;
        }
    }
}
