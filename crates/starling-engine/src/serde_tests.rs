//! Round trips of the engine's pages, threads, suggestions and events
//! through JSON (feature `serde`).

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use starling_core::{Conversation, Cursor, DirectMessage, Post, PostId, UserId};
use starling_inbox::TimelinePage;

use crate::{ConversationPage, Event, MessagePage, Suggestion, Thread, UserPage};

fn round_trip<T>(value: T, json: &str)
where
    T: Serialize + DeserializeOwned + PartialEq + fmt::Debug,
{
    let written = serde_json::to_string(&value).expect("serializes");
    assert_eq!(written, json);
    let back: T = serde_json::from_str(&written).expect("deserializes");
    assert_eq!(back, value);
}

fn post(id: u64) -> Post {
    Post::new(PostId(id), UserId(1), "hi")
}

const POST_JSON: &str = r#"{"id":"7","author":1,"text":"hi","deleted":false,"reply_to":null,"repost_of":null,"audience":"public","likes":0}"#;

#[test]
fn pages() {
    let cursor = Cursor::timeline(PostId(7), 1);
    round_trip(
        TimelinePage {
            posts: vec![post(7)],
            reposted: vec![],
            next: Some(cursor),
        },
        &format!(r#"{{"posts":[{POST_JSON}],"reposted":[],"next":"{cursor}"}}"#),
    );
    round_trip(
        TimelinePage::default(),
        r#"{"posts":[],"reposted":[],"next":null}"#,
    );
    let cursor = Cursor::users(UserId(3));
    round_trip(
        UserPage {
            users: vec![UserId(2), UserId(3)],
            next: Some(cursor),
        },
        &format!(r#"{{"users":[2,3],"next":"{cursor}"}}"#),
    );
    round_trip(
        ConversationPage {
            conversations: vec![Conversation {
                with: UserId(2),
                last: PostId(9),
                unread: 0,
            }],
            next: None,
        },
        r#"{"conversations":[{"with":2,"last":"9","unread":0}],"next":null}"#,
    );
    round_trip(
        MessagePage {
            messages: vec![DirectMessage {
                id: PostId(9),
                from: UserId(2),
                to: UserId(1),
                text: "yo".into(),
            }],
            next: None,
        },
        r#"{"messages":[{"id":"9","from":2,"to":1,"text":"yo"}],"next":null}"#,
    );
    // A damaged cursor inside a page is refused with the page.
    assert!(serde_json::from_str::<UserPage>(r#"{"users":[],"next":"!!"}"#).is_err());
}

#[test]
fn threads_and_suggestions() {
    round_trip(
        Thread {
            post: post(7),
            ancestors: vec![],
            replies: TimelinePage::default(),
        },
        &format!(
            r#"{{"post":{POST_JSON},"ancestors":[],"replies":{{"posts":[],"reposted":[],"next":null}}}}"#
        ),
    );
    round_trip(
        Suggestion {
            user: UserId(4),
            followed_by: 2,
        },
        r#"{"user":4,"followed_by":2}"#,
    );
}

#[test]
fn events() {
    round_trip(
        Event::TimelineAdded { post: PostId(7) },
        r#"{"kind":"timeline_added","post":"7"}"#,
    );
    round_trip(
        Event::TimelineRetracted { post: PostId(7) },
        r#"{"kind":"timeline_retracted","post":"7"}"#,
    );
    round_trip(
        Event::Mention { post: PostId(7) },
        r#"{"kind":"mention","post":"7"}"#,
    );
    round_trip(
        Event::DirectMessage {
            from: UserId(2),
            message: PostId(8),
        },
        r#"{"kind":"direct_message","from":2,"message":"8"}"#,
    );
    round_trip(
        Event::DeviceDelivery { post: PostId(7) },
        r#"{"kind":"device_delivery","post":"7"}"#,
    );
    round_trip(Event::Lagged, r#"{"kind":"lagged"}"#);
    assert!(serde_json::from_str::<Event>(r#"{"kind":"earthquake"}"#).is_err());
}
