//! Executing texts against an engine over the in-memory backend: each
//! command's effect and reply, table-driven.

use starling_core::{Config, DmPolicy, Durability, UserId};
use starling_engine::Engine;
use starling_memstore::MemBackend;
use starling_sms::{NOT_LINKED, SMS_MAX_CHARS, help_text, run_text};

const ADA: &str = "+15555550100";

struct World {
    engine: Engine<MemBackend>,
    ada: UserId,
    bob: UserId,
    carol: UserId,
}

/// ada (phone linked) follows nobody; bob follows ada; carol accepts DMs
/// from anyone.
fn world() -> World {
    let config = Config {
        durability: Durability::Buffered,
        fanout_workers: 1,
        ..Config::default()
    };
    let engine = Engine::with_backend(MemBackend::new(), config).expect("engine");
    let ada = engine.create_user("ada").expect("user").id;
    let bob = engine.create_user("bob").expect("user").id;
    let carol = engine.create_user("carol").expect("user").id;
    engine.link_phone(ada, ADA).expect("phone");
    engine.follow(bob, ada).expect("follow");
    engine.set_dm_policy(carol, DmPolicy::Open).expect("open");
    World {
        engine,
        ada,
        bob,
        carol,
    }
}

/// Runs `texts` in order from `phone` in a fresh world, checks each reply,
/// then checks the world.
fn check(phone: &str, texts: &[(&str, &str)], effect: impl FnOnce(&World)) {
    let w = world();
    for (text, expected) in texts {
        let reply = run_text(&w.engine, phone, text);
        assert_eq!(&reply, expected, "reply to {text:?}");
        assert!(reply.chars().count() <= SMS_MAX_CHARS);
    }
    w.engine.wait_for_fanout().expect("fan-out");
    effect(&w);
}

fn following(w: &World, a: UserId, b: UserId) -> bool {
    w.engine.is_following(a, b).expect("edge")
}

#[test]
fn each_command_does_what_it_says() {
    check(ADA, &[("  heading to work \n", "Posted.")], |w| {
        let page = w.engine.author_timeline(w.ada, None, 10).expect("posts");
        assert_eq!(page.posts[0].text, "heading to work");
    });
    check(
        ADA,
        &[
            ("FOLLOW bob", "You follow bob now."),
            ("follow @BOB", "You already follow bob."),
        ],
        |w| {
            assert!(following(w, w.ada, w.bob));
        },
    );
    // A protected account gets a request, which it approves or not.
    let w = world();
    w.engine.protect(w.carol).expect("protect");
    for (text, expected) in [
        ("FOLLOW carol", "carol is protected: follow request sent."),
        ("FOLLOW carol", "carol is protected: follow request sent."),
    ] {
        assert_eq!(run_text(&w.engine, ADA, text), expected);
    }
    assert!(!following(&w, w.ada, w.carol));
    let asked = w
        .engine
        .follow_requests(w.carol, None, 5)
        .expect("requests");
    assert_eq!(asked.users, vec![w.ada]);
    w.engine
        .approve_follow_request(w.carol, w.ada)
        .expect("approve");
    assert_eq!(
        run_text(&w.engine, ADA, "FOLLOW carol"),
        "You already follow carol."
    );
    check(
        ADA,
        &[
            ("FOLLOW bob", "You follow bob now."),
            ("LEAVE bob", "You left bob."),
            ("LEAVE bob", "You were not following bob."),
        ],
        |w| assert!(!following(w, w.ada, w.bob)),
    );
    check(
        ADA,
        &[
            ("ON bob", "Follow bob first: FOLLOW bob"),
            ("FOLLOW bob", "You follow bob now."),
            ("ON bob", "Updates from bob are on."),
        ],
        |w| assert!(w.engine.device_updates(w.ada, w.bob).expect("subs")),
    );
    check(
        ADA,
        &[
            ("FOLLOW bob", "You follow bob now."),
            ("ON bob", "Updates from bob are on."),
            ("OFF bob", "Updates from bob are off."),
        ],
        |w| assert!(!w.engine.device_updates(w.ada, w.bob).expect("subs")),
    );
    check(
        ADA,
        &[("STOP", "Device updates paused. Text START to resume.")],
        |w| {
            assert!(w.engine.profile(w.ada).expect("profile").device_paused);
        },
    );
    check(
        ADA,
        &[
            ("stop", "Device updates paused. Text START to resume."),
            ("START", "Device updates resumed."),
        ],
        |w| {
            assert!(!w.engine.profile(w.ada).expect("profile").device_paused);
        },
    );
    check(ADA, &[("HELP", help_text())], |_| {});
    // bob follows ada, so ada may message bob; carol takes anyone's.
    check(
        ADA,
        &[
            ("D bob lunch?", "Sent to bob."),
            ("d @carol hi", "Sent to carol."),
        ],
        |w| {
            let bob = w.engine.conversations(w.bob, None, 10).expect("list");
            assert_eq!(
                (bob.conversations[0].with, bob.conversations[0].unread),
                (w.ada, 1)
            );
            let carol = w
                .engine
                .messages(w.carol, w.ada, None, 10)
                .expect("messages");
            assert_eq!(carol.messages[0].text, "hi");
        },
    );
}

#[test]
fn refusals_and_errors_become_short_replies_and_change_nothing() {
    let nothing = |w: &World| {
        assert!(
            w.engine
                .author_timeline(w.ada, None, 10)
                .expect("posts")
                .posts
                .is_empty()
        );
        assert!(
            w.engine
                .conversations(w.ada, None, 10)
                .expect("list")
                .conversations
                .is_empty()
        );
        assert_eq!(w.engine.counts(w.ada).expect("counts").following, 0);
    };
    // Not linked, or not a phone number at all.
    for phone in ["+15555550199", "", "not a phone", "+0"] {
        check(
            phone,
            &[("hello", NOT_LINKED), ("FOLLOW bob", NOT_LINKED)],
            nothing,
        );
    }
    check(
        ADA,
        &[
            ("FOLLOW nobody", "No user named nobody."),
            ("D nobody hi", "No user named nobody."),
            ("FOLLOW ada", "You cannot do that to yourself."),
            (
                "D ada hi",
                "Not allowed: cannot send a direct message to yourself.",
            ),
        ],
        nothing,
    );
    let w = world();
    assert_eq!(
        run_text(&w.engine, "+15555550101", "hi"),
        NOT_LINKED,
        "bob has no phone"
    );
    w.engine.link_phone(w.bob, "+15555550101").expect("phone");
    let reply = run_text(&w.engine, "+15555550101", "D carol hi");
    assert_eq!(reply, "Sent to carol.");
    w.engine
        .set_dm_policy(w.carol, DmPolicy::FollowedOnly)
        .expect("close");
    let reply = run_text(&w.engine, "+15555550101", "D carol again");
    assert!(reply.starts_with("Not allowed:"), "{reply}");
    assert!(reply.chars().count() <= SMS_MAX_CHARS);
}

#[test]
fn malformed_commands_get_help() {
    for text in [
        "FOLLOW",
        "FOLLOW two words",
        "D bob",
        "ON not-a-name",
        "STOP now",
        "",
        "   ",
    ] {
        let w = world();
        let reply = run_text(&w.engine, ADA, text);
        assert!(
            reply.contains("D user msg") || reply.ends_with('…'),
            "{text:?}: {reply}"
        );
        assert!(reply.chars().count() <= SMS_MAX_CHARS);
        assert!(
            w.engine
                .author_timeline(w.ada, None, 10)
                .expect("posts")
                .posts
                .is_empty()
        );
        assert_eq!(w.engine.counts(w.ada).expect("counts").following, 0);
    }
    let w = world();
    let long = "x".repeat(281);
    let reply = run_text(&w.engine, ADA, &long);
    assert!(reply.starts_with("Too long: 281 characters"), "{reply}");
}

#[test]
fn device_updates_reach_a_phone_through_the_outbox() {
    let w = world();
    w.engine.link_phone(w.bob, "+15555550101").expect("phone");
    assert_eq!(
        run_text(&w.engine, "+15555550101", "ON ada"),
        "Updates from ada are on."
    );
    assert_eq!(
        run_text(&w.engine, ADA, "running late,\nstart without me"),
        "Posted."
    );
    w.engine.wait_for_fanout().expect("fan-out");
    let out = w
        .engine
        .lease_device_deliveries_at(1, 10, 1000)
        .expect("lease");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].phone.as_str(), "+15555550101");
    assert_eq!(out[0].text, "ada: running late, start without me");
    assert_eq!(
        run_text(&w.engine, "+15555550101", "STOP"),
        "Device updates paused. Text START to resume."
    );
    assert_eq!(run_text(&w.engine, ADA, "second"), "Posted.");
    w.engine.wait_for_fanout().expect("fan-out");
    assert!(
        w.engine
            .lease_device_deliveries_at(2, 10, 1000)
            .expect("lease")
            .is_empty()
    );
}
