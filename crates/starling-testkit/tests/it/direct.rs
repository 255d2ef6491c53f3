//! Direct messages against the reference model: follows, unfollows, DM
//! settings, messages, mark-reads and reopens among a few users, with the
//! whole visible state compared after every step through paged listings.

use proptest::prelude::*;
use starling_core::{Config, Durability};
use starling_testkit::Op;

const USERS: usize = 4;

fn dm_op() -> impl Strategy<Value = Op> {
    let u = || 0..USERS;
    prop_oneof![
        2 => (u(), u()).prop_map(|(a, b)| Op::Follow(a, b)),
        1 => (u(), u()).prop_map(|(a, b)| Op::Unfollow(a, b)),
        1 => (u(), any::<bool>()).prop_map(|(a, open)| Op::OpenDms(a, open)),
        5 => (u(), u()).prop_map(|(a, b)| Op::SendDirect(a, b, "hi".into())),
        2 => (u(), u()).prop_map(|(a, b)| Op::MarkRead(a, b)),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Each step's result (a message from and to the right users, newer
    /// than the conversation's last; a refusal of exactly the model's
    /// kind and variant, such as `SelfFollow` or `NotAllowed`; the unread
    /// count a mark-read cleared; the policy set) matches the model, and
    /// after every step so do every user's conversations (newest first,
    /// with unread counts) and the messages of each, both ways, read
    /// `page` at a time.
    #[test]
    fn direct_messages_match_the_model(
        ops in proptest::collection::vec(dm_op(), 1..60),
        page in 1..4usize,
    ) {
        let mut h = crate::harness(Config {
            durability: Durability::Buffered,
            fanout_workers: 1,
            ..Config::default()
        });
        for i in 0..USERS {
            if let Err(diff) = h.step(&Op::CreateUser(format!("u{i}"))) {
                prop_assert!(false, "{}", diff);
            }
        }
        for op in &ops {
            if let Err(diff) = h.step(op).and_then(|()| h.check_with_pages(page)) {
                prop_assert!(false, "{}", diff);
            }
        }
    }
}

fn phone_op() -> impl Strategy<Value = Op> {
    let u = || 0..USERS;
    let n = || 0..starling_testkit::PHONES;
    prop_oneof![
        3 => (u(), 0..=starling_testkit::PHONES).prop_map(|(a, n)| Op::LinkPhone(a, n)),
        3 => (u(), proptest::bool::weighted(0.7)).prop_map(|(a, right)| Op::ConfirmPhone(a, right)),
        2 => (n(), proptest::option::weighted(0.7, u())).prop_map(|(n, a)| Op::TextCode(n, a)),
        1 => u().prop_map(Op::UnlinkPhone),
        1 => (u(), proptest::option::of(0u8..25)).prop_map(|(a, h)| Op::Sleep(a, h)),
        1 => (u(), any::<bool>()).prop_map(|(a, open)| Op::OpenDms(a, open)),
        4 => (u(), u()).prop_map(|(a, b)| Op::SendDirect(a, b, "running late".into())),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Phone links with codes (asked for, confirmed through the API or
    /// texted back from the number, wrong codes, unlinks) and direct
    /// messages among users who all follow each other, against the model:
    /// each step's result, and after every step every user's confirmed
    /// number and pending link (with its attempts left), every number's
    /// holder, and every text queued (codes to the number asked for,
    /// `D from: text` to confirmed numbers only, within a daily cap of 6
    /// with one notice past it).
    #[test]
    fn phone_links_and_message_texts_match_the_model(
        ops in proptest::collection::vec(phone_op(), 1..60),
    ) {
        let mut h = crate::harness(Config {
            durability: Durability::Buffered,
            fanout_workers: 1,
            device_daily_cap: 6,
            ..Config::default()
        });
        let mut setup: Vec<Op> = (0..USERS).map(|i| Op::CreateUser(format!("u{i}"))).collect();
        for a in 0..USERS {
            setup.extend((0..USERS).filter(|&b| b != a).map(|b| Op::Follow(a, b)));
        }
        for op in &setup {
            if let Err(diff) = h.step(op) {
                prop_assert!(false, "{}", diff);
            }
        }
        for op in &ops {
            if let Err(diff) = h.step(op).and_then(|()| h.check_with_pages(3)) {
                prop_assert!(false, "{}", diff);
            }
        }
    }
}
