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
