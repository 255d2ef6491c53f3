//! Protected accounts and follow requests over HTTP: the protect toggle,
//! requests listed, approved, denied and withdrawn, what others see, and
//! each refusal with its status and code.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Account, TestServer, eventually};

fn texts(page: &Value) -> Vec<String> {
    page["posts"]
        .as_array()
        .expect("posts")
        .iter()
        .map(|p| p["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn ids(page: &Value) -> Vec<u64> {
    page["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["id"].as_u64().expect("id"))
        .collect()
}

async fn follow(s: &TestServer, who: &Account, whom: &Account) -> Value {
    let (status, body) = s
        .put(who, &format!("/api/users/{}/following/{}", who.id, whom.id))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_account_is_followed_by_request_and_read_by_followers_only() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "password-1").await;
    let fan = s.signup("fan", "password-2").await;
    let eve = s.signup("eve", "password-3").await;
    let bob = s.signup("bob", "password-4").await;
    follow(&s, &fan, &ada).await;

    let (_, state) = s.get(&ada, "/api/me/protected").await;
    assert_eq!(state, json!({"protected": false}));
    let (status, body) = s.put(&ada, "/api/me/protected").await;
    assert_eq!((status, body), (StatusCode::OK, json!({"changed": true})));
    let (_, body) = s.put(&ada, "/api/me/protected").await;
    assert_eq!(body, json!({"changed": false}));
    let (_, state) = s.get(&ada, "/api/me/protected").await;
    assert_eq!(state, json!({"protected": true}));
    let (_, post) = s.post_text(&ada, "followers only").await;
    let id = post["id"].as_str().expect("id").to_owned();

    // The follower from before reads it; nobody else does.
    eventually(|| async {
        let (_, home) = s.get(&fan, "/api/home").await;
        (texts(&home) == vec!["followers only"]).then_some(())
    })
    .await;
    let (status, _) = s.get(&fan, &format!("/api/posts/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = s.get(&eve, &format!("/api/posts/{id}")).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("unknown_post"))
    );
    let (status, _) = s.get(&eve, &format!("/api/posts/{id}/thread")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, theirs) = s.get(&eve, &format!("/api/users/{}/posts", ada.id)).await;
    assert!(texts(&theirs).is_empty());
    let (status, body) = s
        .send(Method::POST, &format!("/api/posts/{id}/repost"), Some(&fan))
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::FORBIDDEN, json!("not_allowed"))
    );

    // Following it sends a request, told to the account as an event.
    let mut events = s.events(&ada, "/api/events").await;
    let body = follow(&s, &eve, &ada).await;
    assert_eq!(
        body,
        json!({"following": false, "requested": true, "changed": true})
    );
    let body = follow(&s, &eve, &ada).await;
    assert_eq!(
        body,
        json!({"following": false, "requested": true, "changed": false})
    );
    let event = loop {
        let e = events.next().await.expect("event");
        if e.event == "follow_request" {
            break e;
        }
    };
    let data: Value = serde_json::from_str(&event.data).expect("json");
    assert_eq!(data["from"], json!(eve.id));
    follow(&s, &bob, &ada).await;
    let pages = s.all_pages(&ada, "/api/follow-requests", "users", 1).await;
    let requesters: Vec<u64> = pages
        .iter()
        .flatten()
        .map(|u| u["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(requesters, vec![eve.id, bob.id]);
    let (_, sent) = s.get(&eve, "/api/follow-requests/sent").await;
    assert_eq!(ids(&sent), vec![ada.id]);

    // Approved: eve reads it, past posts included. Denied: bob does not.
    let (status, body) = s
        .send(
            Method::POST,
            &format!("/api/follow-requests/{}/approve", eve.id),
            Some(&ada),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"changed": true})));
    let (status, _) = s
        .send(
            Method::POST,
            &format!("/api/follow-requests/{}/deny", bob.id),
            Some(&ada),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, pending) = s.get(&ada, "/api/follow-requests").await;
    assert!(ids(&pending).is_empty());
    let (_, edge) = s
        .get(&eve, &format!("/api/users/{}/following/{}", eve.id, ada.id))
        .await;
    assert_eq!(edge["following"], true);
    let (status, _) = s.get(&eve, &format!("/api/posts/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let (_, theirs) = s.get(&bob, &format!("/api/users/{}/posts", ada.id)).await;
    assert!(texts(&theirs).is_empty());

    // Bob asks again and withdraws; then asks once more, and going public
    // approves him.
    follow(&s, &bob, &ada).await;
    let (status, body) = s
        .delete(&bob, &format!("/api/follow-requests/sent/{}", ada.id))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"changed": true})));
    follow(&s, &bob, &ada).await;
    let (status, body) = s.delete(&ada, "/api/me/protected").await;
    assert_eq!((status, body), (StatusCode::OK, json!({"changed": true})));
    let (_, edge) = s
        .get(&bob, &format!("/api/users/{}/following/{}", bob.id, ada.id))
        .await;
    assert_eq!(edge["following"], true);
    let (_, theirs) = s.get(&bob, &format!("/api/users/{}/posts", ada.id)).await;
    assert_eq!(texts(&theirs), vec!["followers only"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_follow_request_input_answers_its_status_and_code() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "password-1").await;
    let bob = s.signup("bob", "password-2").await;
    let cases = [
        (
            Method::POST,
            format!("/api/follow-requests/{}/approve", bob.id),
            StatusCode::NOT_FOUND,
            "unknown_follow_request",
        ),
        (
            Method::POST,
            format!("/api/follow-requests/{}/deny", bob.id),
            StatusCode::NOT_FOUND,
            "unknown_follow_request",
        ),
        (
            Method::DELETE,
            format!("/api/follow-requests/sent/{}", bob.id),
            StatusCode::NOT_FOUND,
            "unknown_follow_request",
        ),
        (
            Method::POST,
            "/api/follow-requests/999/approve".to_owned(),
            StatusCode::NOT_FOUND,
            "unknown_user",
        ),
        (
            Method::POST,
            "/api/follow-requests/x/approve".to_owned(),
            StatusCode::BAD_REQUEST,
            "bad_path",
        ),
        (
            Method::GET,
            "/api/follow-requests?limit=0".to_owned(),
            StatusCode::BAD_REQUEST,
            "bad_limit",
        ),
        (
            Method::GET,
            "/api/follow-requests/sent?cursor=zz".to_owned(),
            StatusCode::BAD_REQUEST,
            "malformed_cursor",
        ),
    ];
    for (method, path, status, code) in cases {
        let (got, body) = s.send(method.clone(), &path, Some(&ada)).await;
        assert_eq!(
            (got, body["code"].clone()),
            (status, json!(code)),
            "{method} {path}: {body}"
        );
    }
    for (method, path) in [
        (Method::GET, "/api/me/protected"),
        (Method::PUT, "/api/me/protected"),
        (Method::GET, "/api/follow-requests"),
    ] {
        let (status, _) = s.send(method, path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    // Following oneself is refused as before, protected or not.
    s.put(&ada, "/api/me/protected").await;
    let (status, body) = s
        .put(&ada, &format!("/api/users/{}/following/{}", ada.id, ada.id))
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("self_follow"))
    );
    // Nobody changes another's requests: the path names the session's own.
    let (status, body) = s
        .put(&bob, &format!("/api/users/{}/following/{}", ada.id, bob.id))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (_, pending) = s.get(&ada, "/api/follow-requests").await;
    assert!(ids(&pending).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_accounts_posts_are_liked_and_their_likers_listed_by_followers_only() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "password-1").await;
    let fan = s.signup("fan", "password-2").await;
    let eve = s.signup("eve", "password-3").await;
    follow(&s, &fan, &ada).await;
    let (_, post) = s.post_text(&ada, "liked by friends").await;
    let id = post["id"].as_str().expect("id").to_owned();
    // Liked while public, by the follower and by a stranger.
    for who in [&fan, &eve] {
        let (status, body) = s.put(who, &format!("/api/posts/{id}/like")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    s.put(&ada, "/api/me/protected").await;

    // The follower still likes, reads the likers and its own likes list.
    let (status, likers) = s.get(&fan, &format!("/api/posts/{id}/likes")).await;
    assert_eq!(status, StatusCode::OK, "{likers}");
    assert_eq!(ids(&likers), vec![fan.id, eve.id]);
    let (_, mine) = s.get(&fan, &format!("/api/users/{}/likes", fan.id)).await;
    assert_eq!(texts(&mine), vec!["liked by friends"]);
    // The stranger may not like it again, nor list its likers, nor see it
    // among anyone's likes (their own included); taking back the like
    // they made is always allowed.
    let (status, body) = s.get(&eve, &format!("/api/posts/{id}/likes")).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("unknown_post"))
    );
    for whose in [&eve, &fan] {
        let (_, theirs) = s.get(&eve, &format!("/api/users/{}/likes", whose.id)).await;
        assert!(texts(&theirs).is_empty(), "{theirs}");
    }
    let (status, body) = s.delete(&eve, &format!("/api/posts/{id}/like")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changed"], true);
    let (status, body) = s.put(&eve, &format!("/api/posts/{id}/like")).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("unknown_post"))
    );
    // Approved, the stranger likes it again.
    let (_, asked) = s
        .put(&eve, &format!("/api/users/{}/following/{}", eve.id, ada.id))
        .await;
    assert_eq!(asked["requested"], true, "{asked}");
    let (status, _) = s
        .send(
            Method::POST,
            &format!("/api/follow-requests/{}/approve", eve.id),
            Some(&ada),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = s.put(&eve, &format!("/api/posts/{id}/like")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["likes"], 2);
}
