//! Executing texts against an engine over the in-memory backend: each
//! command's effect and reply, table-driven.

use starling_core::{Config, DmPolicy, Durability, UserId, format_phone_code};
use starling_engine::Engine;
use starling_memstore::MemBackend;
use starling_store::DirectStore;
use std::time::Duration;

use starling_sms::{
    Limited, NOT_LINKED, RateLimits, SMS_MAX_CHARS, help_text, run_text, run_text_limited,
};

const ADA: &str = "+15555550100";
const FOLLOWED_BOB: &str = "You follow bob now; their updates come to this phone.";

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
    link(&engine, ada, ADA);
    engine.follow(bob, ada).expect("follow");
    engine.set_dm_policy(carol, DmPolicy::Open).expect("open");
    World {
        engine,
        ada,
        bob,
        carol,
    }
}

/// Links `phone` to `user` the way a person does: asks for it, then texts
/// the code back from the phone.
fn link(engine: &Engine<MemBackend>, user: UserId, phone: &str) {
    engine.link_phone(user, phone).expect("link");
    let claim = engine.backend().phone_claim(user).expect("read");
    let code = format_phone_code(claim.expect("pending").code);
    let reply = run_text(engine, phone, &code);
    assert!(reply.starts_with("This phone is now linked to"), "{reply}");
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
            ("FOLLOW bob", FOLLOWED_BOB),
            (
                "follow @BOB",
                "You already follow bob; their updates come to this phone.",
            ),
        ],
        |w| {
            assert!(following(w, w.ada, w.bob));
            assert!(w.engine.device_updates(w.ada, w.bob).expect("subs"));
        },
    );
    // A protected account gets a request, which it approves or not; until
    // it does, its posts are not to be had by text (GET, FAV).
    let w = world();
    w.engine.protect(w.carol).expect("protect");
    let secret = w.engine.post(w.carol, "for followers").expect("post");
    const ASKED: &str = "carol is protected: follow request sent. Text ON carol once approved.";
    const UNSEEN: &str = "carol has no posts you can see.";
    for (text, expected) in [
        ("FOLLOW carol", ASKED),
        ("FOLLOW carol", ASKED),
        ("GET carol", UNSEEN),
        ("FAV carol", UNSEEN),
        ("ON carol", "Follow carol first: FOLLOW carol"),
    ] {
        let reply = run_text(&w.engine, ADA, text);
        assert_eq!(reply, expected, "reply to {text:?}");
        assert!(reply.chars().count() <= SMS_MAX_CHARS);
    }
    assert!(!following(&w, w.ada, w.carol));
    assert!(!w.engine.likes_post(w.ada, secret.id).expect("likes"));
    let asked = w
        .engine
        .follow_requests(w.carol, None, 5)
        .expect("requests");
    assert_eq!(asked.users, vec![w.ada]);
    w.engine
        .approve_follow_request(w.carol, w.ada)
        .expect("approve");
    for (text, expected) in [
        ("GET carol", "carol: for followers"),
        ("FAV carol", "You like carol: for followers"),
        ("ON carol", "Updates from carol are on."),
        (
            "FOLLOW carol",
            "You already follow carol; their updates come to this phone.",
        ),
    ] {
        assert_eq!(
            run_text(&w.engine, ADA, text),
            expected,
            "reply to {text:?}"
        );
    }
    assert!(w.engine.likes_post(w.ada, secret.id).expect("likes"));
    assert!(w.engine.device_updates(w.ada, w.carol).expect("subs"));
    check(
        ADA,
        &[
            ("LEAVE bob", "You were not following bob."),
            ("FOLLOW bob", FOLLOWED_BOB),
            (
                "LEAVE bob",
                "Updates from bob are off; you still follow them.",
            ),
        ],
        |w| {
            assert!(following(w, w.ada, w.bob));
            assert!(!w.engine.device_updates(w.ada, w.bob).expect("subs"));
        },
    );
    check(
        ADA,
        &[
            ("FOLLOW bob", FOLLOWED_BOB),
            ("UNFOLLOW bob", "You no longer follow bob."),
            ("unfollow bob", "You were not following bob."),
        ],
        |w| {
            assert!(!following(w, w.ada, w.bob));
            assert!(!w.engine.device_updates(w.ada, w.bob).expect("subs"));
        },
    );
    check(
        ADA,
        &[
            ("ON bob", "Follow bob first: FOLLOW bob"),
            ("FOLLOW bob", FOLLOWED_BOB),
            ("OFF bob", "Updates from bob are off."),
            ("ON bob", "Updates from bob are on."),
        ],
        |w| assert!(w.engine.device_updates(w.ada, w.bob).expect("subs")),
    );
    check(
        ADA,
        &[
            ("FOLLOW bob", FOLLOWED_BOB),
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
    link(&w.engine, w.bob, "+15555550101");
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
    link(&w.engine, w.bob, "+15555550101");
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

#[test]
fn reading_commands_answer_from_the_store() {
    let w = world();
    w.engine
        .set_profile(w.bob, "Bob B.", "builds\nthings")
        .expect("profile");
    assert_eq!(
        run_text(&w.engine, ADA, "GET bob"),
        "bob has no posts you can see."
    );
    w.engine.post(w.bob, "first").expect("post");
    w.engine.post(w.bob, "second\nline").expect("post");
    assert_eq!(run_text(&w.engine, ADA, "GET bob"), "bob: second line");
    // FAV likes the latest post, once.
    assert_eq!(
        run_text(&w.engine, ADA, "FAV bob"),
        "You like bob: second line"
    );
    assert_eq!(
        run_text(&w.engine, ADA, "fav @bob"),
        "You already like bob: second line"
    );
    let latest = w
        .engine
        .author_timeline_as(w.ada, w.bob, None, 1)
        .expect("timeline")
        .posts[0]
        .clone();
    assert!(w.engine.likes_post(w.ada, latest.id).expect("likes"));
    assert_eq!(latest.likes, 1);
    assert_eq!(
        run_text(&w.engine, ADA, "FAV carol"),
        "carol has no posts you can see."
    );
    assert_eq!(
        run_text(&w.engine, ADA, "WHOIS bob"),
        "0 followers, follows 1. bob (Bob B.): builds things"
    );
    assert_eq!(
        run_text(&w.engine, ADA, "whois carol"),
        "0 followers, follows 0. carol"
    );
    assert_eq!(
        run_text(&w.engine, ADA, "STATS"),
        "You have 1 followers and follow 0."
    );
    // A block hides the blocker's posts from GET, and is undone.
    assert_eq!(run_text(&w.engine, ADA, "BLOCK bob"), "You blocked bob.");
    assert_eq!(
        run_text(&w.engine, ADA, "BLOCK bob"),
        "You already block bob."
    );
    assert!(w.engine.is_blocking(w.ada, w.bob).expect("block"));
    assert_eq!(
        run_text(&w.engine, ADA, "STATS"),
        "You have 0 followers and follow 0.",
        "a block removes the follow"
    );
    assert_eq!(
        run_text(&w.engine, ADA, "UNBLOCK bob"),
        "You unblocked bob."
    );
    assert_eq!(
        run_text(&w.engine, ADA, "UNBLOCK bob"),
        "You were not blocking bob."
    );
    assert_eq!(
        run_text(&w.engine, ADA, "GET nobody"),
        "No user named nobody."
    );
    // ON and OFF alone switch every update.
    assert_eq!(
        run_text(&w.engine, ADA, "OFF"),
        "Device updates are off. Text ON to turn them back on."
    );
    assert!(w.engine.profile(w.ada).expect("profile").device_paused);
    assert_eq!(run_text(&w.engine, ADA, "on"), "Device updates are on.");
    assert!(!w.engine.profile(w.ada).expect("profile").device_paused);
    // SLEEP sets quiet hours; without an offset it keeps the one set.
    assert_eq!(
        run_text(&w.engine, ADA, "SLEEP 22 7 -5"),
        "Quiet from 22:00 to 7:00 (UTC-5:00): texts wait till then. WAKE ends it."
    );
    assert_eq!(
        run_text(&w.engine, ADA, "sleep 23 6"),
        "Quiet from 23:00 to 6:00 (UTC-5:00): texts wait till then. WAKE ends it."
    );
    let quiet = w.engine.profile(w.ada).expect("profile").quiet_hours;
    assert_eq!(
        quiet,
        Some(starling_core::QuietHours::new(23, 6, -300).expect("valid"))
    );
    assert_eq!(
        run_text(&w.engine, ADA, "WAKE"),
        "No more quiet hours: texts come at any time."
    );
    assert_eq!(w.engine.profile(w.ada).expect("profile").quiet_hours, None);
}

#[test]
fn a_code_texted_back_links_the_number_and_nothing_else_runs_before() {
    let w = world();
    const BOB: &str = "+15555550101";
    w.engine.link_phone(w.bob, BOB).expect("link");
    let claim = w.engine.backend().phone_claim(w.bob).expect("read");
    let code = format_phone_code(claim.expect("pending").code);
    let wrong = format_phone_code((code.parse::<u32>().expect("digits") + 1) % 1_000_000);
    // Until the code comes back the number runs nothing.
    assert_eq!(run_text(&w.engine, BOB, "FOLLOW carol"), NOT_LINKED);
    assert_eq!(
        run_text(&w.engine, BOB, &wrong),
        "Wrong code; 4 tries left."
    );
    assert_eq!(
        run_text(&w.engine, BOB, &format!(" {code}\n")),
        "This phone is now linked to bob. Text HELP for commands."
    );
    assert_eq!(w.engine.user_by_phone(BOB).expect("lookup"), Some(w.bob));
    // Used once: the same six digits are now an ordinary post.
    assert_eq!(run_text(&w.engine, BOB, &code), "Posted.");
    let page = w.engine.author_timeline(w.bob, None, 10).expect("posts");
    assert_eq!(page.posts[0].text, code);
    assert_eq!(w.engine.counts(w.bob).expect("counts").following, 1);
    // Five wrong codes drop a pending link.
    w.engine.link_phone(w.carol, "+15555550102").expect("link");
    let claim = w.engine.backend().phone_claim(w.carol).expect("read");
    let wrong = format_phone_code((claim.expect("pending").code + 1) % 1_000_000);
    for left in (1..5).rev() {
        assert_eq!(
            run_text(&w.engine, "+15555550102", &wrong),
            format!("Wrong code; {left} tries left.")
        );
    }
    assert_eq!(
        run_text(&w.engine, "+15555550102", &wrong),
        "Wrong code; link the phone again to get a new one."
    );
    assert_eq!(w.engine.backend().phone_claim(w.carol).expect("read"), None);
    assert_eq!(run_text(&w.engine, "+15555550102", &wrong), NOT_LINKED);
}

/// Refuses every `what` in `refused`, and counts what it was asked.
struct Refusing {
    refused: Vec<Limited>,
    asked: std::sync::Mutex<Vec<(UserId, Limited)>>,
}

impl RateLimits for Refusing {
    fn take(&self, user: UserId, what: Limited) -> Result<(), Duration> {
        self.asked.lock().expect("lock").push((user, what));
        if self.refused.contains(&what) {
            Err(Duration::from_millis(2_500))
        } else {
            Ok(())
        }
    }
}

#[test]
fn posts_messages_and_follows_by_text_take_the_account_rate_limits() {
    let w = world();
    let all = Refusing {
        refused: vec![Limited::Post, Limited::Direct, Limited::Follow],
        asked: Default::default(),
    };
    for text in ["hello", "D carol hi", "FOLLOW bob"] {
        assert_eq!(
            run_text_limited(&w.engine, &all, ADA, text),
            "Slow down: try again in 3 s.",
            "{text}"
        );
    }
    assert_eq!(
        *all.asked.lock().expect("lock"),
        vec![
            (w.ada, Limited::Post),
            (w.ada, Limited::Direct),
            (w.ada, Limited::Follow)
        ]
    );
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
    assert!(!following(&w, w.ada, w.bob));
    // Reading and switching are not limited; posting passes when allowed.
    let posts_only = Refusing {
        refused: vec![Limited::Direct],
        asked: Default::default(),
    };
    assert_eq!(
        run_text_limited(&w.engine, &posts_only, ADA, "STATS"),
        "You have 1 followers and follow 0."
    );
    assert_eq!(
        run_text_limited(&w.engine, &posts_only, ADA, "hello"),
        "Posted."
    );
    assert!(posts_only.asked.lock().expect("lock").len() == 1);
}

#[test]
fn every_reply_fits_one_text_with_the_longest_names() {
    let config = Config {
        durability: Durability::Buffered,
        fanout_workers: 1,
        ..Config::default()
    };
    let engine = Engine::with_backend(MemBackend::new(), config).expect("engine");
    // Usernames of 15 characters, the longest display name and bio, a
    // post of 280 four-byte characters.
    let me = engine.create_user("aaaaaaaaaaaaaaa").expect("user").id;
    let other = engine.create_user("Bbbbbbbbbbbbbbb").expect("user").id;
    engine.set_dm_policy(other, DmPolicy::Open).expect("open");
    engine
        .set_profile(other, &"🐦".repeat(50), &"é".repeat(160))
        .expect("profile");
    engine.post(other, &"🐦".repeat(280)).expect("post");
    link(&engine, me, ADA);
    let name = "Bbbbbbbbbbbbbbb";
    let long = "x".repeat(280);
    let texts = [
        format!("D {name} {long}"),
        format!("FOLLOW {name}"),
        format!("FOLLOW {name}"),
        format!("LEAVE {name}"),
        format!("ON {name}"),
        format!("OFF {name}"),
        format!("GET {name}"),
        format!("WHOIS {name}"),
        format!("FAV {name}"),
        format!("BLOCK {name}"),
        format!("BLOCK {name}"),
        format!("UNBLOCK {name}"),
        format!("UNBLOCK {name}"),
        format!("UNFOLLOW {name}"),
        format!("UNFOLLOW {name}"),
        format!("LEAVE {name}"),
        format!("ON {name}"),
        "FOLLOW Nnnnnnnnnnnnnnn".to_owned(),
        "STATS".to_owned(),
        "SLEEP 23 7 -11:45".to_owned(),
        "SLEEP 1 2 +14".to_owned(),
        "SLEEP 99 7".to_owned(),
        "WAKE".to_owned(),
        "ON".to_owned(),
        "OFF".to_owned(),
        "STOP".to_owned(),
        "START".to_owned(),
        "HELP".to_owned(),
        long.clone(),
        format!("{long}x"),
        "FOLLOW aaaaaaaaaaaaaaaa".to_owned(),
    ];
    for text in &texts {
        let reply = run_text(&engine, ADA, text);
        assert!(
            reply.chars().count() <= SMS_MAX_CHARS,
            "{text:?}: {reply:?} has {} characters",
            reply.chars().count()
        );
    }
    let whois = run_text(&engine, ADA, &format!("WHOIS {name}"));
    assert!(
        whois.starts_with("0 followers, follows 0. Bbbbbbbbbbbbbbb (🐦"),
        "{whois}"
    );
    assert!(whois.ends_with('…'));
}
