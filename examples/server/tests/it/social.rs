//! Reposts, threads, mentions, groups, blocks, mutes, friends, suggestions
//! and engine events over HTTP, with their authorization refusals.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Account, TestServer, eventually};

async fn follow(s: &TestServer, who: &Account, whom: &Account) {
    let (status, body) = s
        .put(who, &format!("/api/users/{}/following/{}", who.id, whom.id))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn texts(page: &Value) -> Vec<String> {
    page["posts"]
        .as_array()
        .expect("posts")
        .iter()
        .map(|p| p["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_posts_reach_members_only_and_nobody_else_on_any_route() {
    let s = TestServer::start().await;
    let owner = s.signup("owner", "password-1").await;
    let member = s.signup("member", "password-2").await;
    let outsider = s.signup("outsider", "password-3").await;
    follow(&s, &member, &owner).await;
    follow(&s, &outsider, &owner).await;

    let (status, group) = s
        .send_json(
            Method::POST,
            "/api/groups",
            Some(&owner),
            json!({"name": "close friends"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let gid = group["id"].as_u64().expect("group id");
    let (status, _) = s
        .put(&owner, &format!("/api/groups/{gid}/members/{}", member.id))
        .await;
    assert_eq!(status, StatusCode::OK);
    // Nobody else manages or posts to the group.
    for who in [&member, &outsider] {
        let (status, body) = s
            .put(who, &format!("/api/groups/{gid}/members/{}", who.id))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let (status, _) = s.get(who, &format!("/api/groups/{gid}/members")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = s
            .send_json(
                Method::POST,
                "/api/posts",
                Some(who),
                json!({"text": "x", "group": gid}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    let (status, secret) = s
        .send_json(
            Method::POST,
            "/api/posts",
            Some(&owner),
            json!({"text": "for the circle @outsider", "group": gid}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{secret}");
    assert_eq!(secret["group"], gid);
    let id = secret["id"].as_str().expect("id").to_owned();
    s.post_text(&owner, "for everyone").await;

    let home = eventually(|| async {
        let (_, home) = s.get(&member, "/api/home").await;
        (texts(&home).len() == 2).then_some(home)
    })
    .await;
    assert_eq!(
        texts(&home),
        vec!["for everyone", "for the circle @outsider"]
    );
    eventually(|| async {
        let (_, home) = s.get(&outsider, "/api/home").await;
        (texts(&home) == vec!["for everyone"]).then_some(())
    })
    .await;
    let (status, _) = s.get(&outsider, &format!("/api/posts/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.get(&outsider, &format!("/api/posts/{id}/thread")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, theirs) = s
        .get(&outsider, &format!("/api/users/{}/posts", owner.id))
        .await;
    assert_eq!(texts(&theirs), vec!["for everyone"]);
    let (_, mentions) = s.get(&outsider, "/api/mentions").await;
    assert!(texts(&mentions).is_empty(), "a mention does not leak it");
    let (status, _) = s
        .send(
            Method::POST,
            &format!("/api/posts/{id}/repost"),
            Some(&member),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "group posts are not reposted"
    );
    let (status, post) = s.get(&member, &format!("/api/posts/{id}")).await;
    assert_eq!(
        (status, post["text"].clone()),
        (StatusCode::OK, json!("for the circle @outsider"))
    );

    // Leaving the group takes its posts away.
    let (status, _) = s
        .delete(&owner, &format!("/api/groups/{gid}/members/{}", member.id))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, home) = s.get(&member, "/api/home").await;
    assert_eq!(texts(&home), vec!["for everyone"]);
    let (_, groups) = s.get(&owner, "/api/groups").await;
    assert_eq!(groups["groups"][0]["name"], "close friends");
    let (status, _) = s.delete(&owner, &format!("/api/groups/{gid}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s.get(&owner, &format!("/api/groups/{gid}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = s
        .send_json(
            Method::POST,
            "/api/groups",
            Some(&owner),
            json!({"name": "  "}),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("invalid_group_name")
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_threads_reposts_and_mentions() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "password-1").await;
    let bob = s.signup("bob", "password-2").await;
    let cat = s.signup("cat", "password-3").await;
    follow(&s, &cat, &bob).await;

    let (_, root) = s.post_text(&ada, "root post").await;
    let root_id = root["id"].as_str().expect("id").to_owned();
    let (status, reply) = s
        .send_json(
            Method::POST,
            "/api/posts",
            Some(&bob),
            json!({"text": "nice one @ada", "reply_to": root_id}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["reply_to"], json!(root_id));
    let (status, body) = s
        .send_json(
            Method::POST,
            "/api/posts",
            Some(&bob),
            json!({"text": "x", "reply_to": "12"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (_, thread) = s.get(&cat, &format!("/api/posts/{root_id}/thread")).await;
    assert_eq!(thread["post"]["text"], "root post");
    assert_eq!(texts(&thread["replies"]), vec!["nice one @ada"]);
    let reply_id = reply["id"].as_str().expect("id");
    let (_, thread) = s.get(&cat, &format!("/api/posts/{reply_id}/thread")).await;
    assert_eq!(thread["ancestors"][0]["text"], "root post");

    let (_, mentions) = s.get(&ada, "/api/mentions").await;
    assert_eq!(texts(&mentions), vec!["nice one @ada"]);

    let (status, repost) = s
        .send(
            Method::POST,
            &format!("/api/posts/{root_id}/repost"),
            Some(&bob),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{repost}");
    assert_eq!(repost["repost_of"], json!(root_id));
    let home = eventually(|| async {
        let (_, home) = s.get(&cat, "/api/home").await;
        (home["reposted"].as_array().is_some_and(|r| !r.is_empty())).then_some(home)
    })
    .await;
    assert_eq!(home["reposted"][0]["text"], "root post");
    assert_eq!(home["posts"][0]["repost_of"], json!(root_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_mutes_friends_and_suggestions() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "password-1").await;
    let bob = s.signup("bob", "password-2").await;
    let cat = s.signup("cat", "password-3").await;
    let dan = s.signup("dan", "password-4").await;
    follow(&s, &ada, &bob).await;
    follow(&s, &bob, &ada).await;
    follow(&s, &bob, &cat).await;
    follow(&s, &bob, &dan).await;
    follow(&s, &ada, &dan).await;

    let (_, friends) = s.get(&ada, &format!("/api/users/{}/friends", ada.id)).await;
    assert_eq!(friends["users"][0]["username"], "bob");
    let (_, suggestions) = s.get(&ada, "/api/suggestions").await;
    assert_eq!(
        suggestions["suggestions"],
        json!([{"id": cat.id, "username": "cat", "followed_by": 1}])
    );

    let (_, changed) = s.put(&ada, &format!("/api/mutes/{}", dan.id)).await;
    assert_eq!(changed["changed"], true);
    s.post_text(&dan, "dan speaks").await;
    // Bob follows dan too: once it reached him, fan-out is done.
    eventually(|| async {
        let (_, home) = s.get(&bob, "/api/home").await;
        texts(&home)
            .contains(&"dan speaks".to_owned())
            .then_some(())
    })
    .await;
    let (_, home) = s.get(&ada, "/api/home").await;
    assert!(texts(&home).is_empty(), "muted");
    let (_, mutes) = s.get(&ada, "/api/mutes").await;
    assert_eq!(mutes["users"][0]["username"], "dan");
    s.delete(&ada, &format!("/api/mutes/{}", dan.id)).await;
    eventually(|| async {
        let (_, home) = s.get(&ada, "/api/home").await;
        (texts(&home) == vec!["dan speaks"]).then_some(())
    })
    .await;

    let (status, _) = s.put(&ada, &format!("/api/blocks/{}", bob.id)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = s
        .put(&bob, &format!("/api/users/{}/following/{}", bob.id, ada.id))
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::FORBIDDEN, json!("blocked"))
    );
    let (_, blocks) = s.get(&ada, "/api/blocks").await;
    assert_eq!(blocks["users"][0]["username"], "bob");
    let (status, _) = s.put(&ada, &format!("/api/blocks/{}", ada.id)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s.put(&ada, "/api/blocks/999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, changed) = s.delete(&ada, &format!("/api/blocks/{}", bob.id)).await;
    assert_eq!(changed["changed"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_events_stream_timeline_entries_and_mentions() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "password-1").await;
    let bob = s.signup("bob", "password-2").await;
    follow(&s, &bob, &ada).await;
    let mut events = s.events(&bob, "/api/events").await;
    let (_, post) = s.post_text(&ada, "hello @bob").await;
    let id = post["id"].as_str().expect("id").to_owned();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let e = events.next().await.expect("event");
        let data: Value = serde_json::from_str(&e.data).expect("json");
        assert_eq!(data["post"], json!(id));
        seen.push(e.event);
    }
    seen.sort();
    assert_eq!(seen, vec!["mention", "timeline"]);
}
