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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn likes_count_once_list_in_pages_and_refuse_what_the_liker_may_not_see() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "password-1").await;
    let bob = s.signup("bob", "password-2").await;
    let cy = s.signup("cy", "password-3").await;
    let (_, post) = s.post_text(&ada, "like this").await;
    let id = post["id"].as_str().expect("id").to_owned();
    assert_eq!(
        (post["likes"].clone(), post["liked"].clone()),
        (json!(0), json!(false))
    );

    // Idempotent: the second like changes nothing.
    let (status, like) = s.put(&bob, &format!("/api/posts/{id}/like")).await;
    assert_eq!(status, StatusCode::OK, "{like}");
    assert_eq!(like, json!({"liked": true, "changed": true, "likes": 1}));
    let (_, like) = s.put(&bob, &format!("/api/posts/{id}/like")).await;
    assert_eq!(like, json!({"liked": true, "changed": false, "likes": 1}));
    // Liking a repost likes its original.
    let (status, repost) = s
        .send(Method::POST, &format!("/api/posts/{id}/repost"), Some(&cy))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{repost}");
    let repost_id = repost["id"].as_str().expect("id").to_owned();
    let (_, like) = s.put(&cy, &format!("/api/posts/{repost_id}/like")).await;
    assert_eq!(like, json!({"liked": true, "changed": true, "likes": 2}));

    // Counts on every read: by id, timelines, the repost's original.
    let (_, got) = s.get(&bob, &format!("/api/posts/{id}")).await;
    assert_eq!(
        (got["likes"].clone(), got["liked"].clone()),
        (json!(2), json!(true))
    );
    let (_, got) = s.get(&ada, &format!("/api/posts/{id}")).await;
    assert_eq!(
        (got["likes"].clone(), got["liked"].clone()),
        (json!(2), json!(false))
    );
    let (_, theirs) = s.get(&bob, &format!("/api/users/{}/posts", ada.id)).await;
    assert_eq!(theirs["posts"][0]["likes"], 2);
    let (_, cys) = s.get(&cy, &format!("/api/users/{}/posts", cy.id)).await;
    assert_eq!(cys["posts"][0]["repost_of"].as_str(), Some(id.as_str()));
    assert_eq!(
        (
            cys["posts"][0]["likes"].clone(),
            cys["posts"][0]["liked"].clone()
        ),
        (json!(2), json!(true))
    );
    assert_eq!(cys["reposted"][0]["likes"], 2);

    // Who likes it, in pages with cursors.
    let (_, page) = s.get(&ada, &format!("/api/posts/{id}/likes?limit=1")).await;
    assert_eq!(page["users"][0]["username"], "bob");
    let cursor = page["next"].as_str().expect("a next page").to_owned();
    let (_, page) = s
        .get(
            &ada,
            &format!("/api/posts/{id}/likes?limit=1&cursor={cursor}"),
        )
        .await;
    assert_eq!(
        (page["users"][0]["username"].clone(), page["next"].clone()),
        (json!("cy"), Value::Null)
    );
    // A user's likes, newest post first, in pages.
    let (_, newer) = s.post_text(&cy, "newer").await;
    let newer_id = newer["id"].as_str().expect("id").to_owned();
    s.put(&bob, &format!("/api/posts/{newer_id}/like")).await;
    let (_, likes) = s
        .get(&ada, &format!("/api/users/{}/likes?limit=1", bob.id))
        .await;
    assert_eq!(texts(&likes), vec!["newer"]);
    let cursor = likes["next"].as_str().expect("a next page").to_owned();
    let (_, likes) = s
        .get(
            &ada,
            &format!("/api/users/{}/likes?limit=1&cursor={cursor}", bob.id),
        )
        .await;
    assert_eq!(texts(&likes), vec!["like this"]);

    // Unlike: idempotent too.
    let (_, unlike) = s.delete(&bob, &format!("/api/posts/{newer_id}/like")).await;
    assert_eq!(unlike, json!({"liked": false, "changed": true, "likes": 0}));
    let (_, unlike) = s.delete(&bob, &format!("/api/posts/{newer_id}/like")).await;
    assert_eq!(
        unlike,
        json!({"liked": false, "changed": false, "likes": 0})
    );

    // Errors by kind: bad ids, unknown posts, blocks, posts out of sight.
    let cases = [
        (
            Method::PUT,
            "/api/posts/abc/like".to_owned(),
            &bob,
            StatusCode::BAD_REQUEST,
            "bad_path",
        ),
        (
            Method::PUT,
            "/api/posts/0/like".to_owned(),
            &bob,
            StatusCode::BAD_REQUEST,
            "bad_path",
        ),
        (
            Method::PUT,
            "/api/posts/12345/like".to_owned(),
            &bob,
            StatusCode::NOT_FOUND,
            "unknown_post",
        ),
        (
            Method::GET,
            "/api/posts/12345/likes".to_owned(),
            &bob,
            StatusCode::NOT_FOUND,
            "unknown_post",
        ),
        (
            Method::GET,
            format!("/api/posts/{id}/likes?limit=0"),
            &bob,
            StatusCode::BAD_REQUEST,
            "bad_limit",
        ),
        (
            Method::GET,
            format!("/api/posts/{id}/likes?cursor=nonsense"),
            &bob,
            StatusCode::BAD_REQUEST,
            "malformed_cursor",
        ),
        (
            Method::GET,
            "/api/users/999/likes".to_owned(),
            &bob,
            StatusCode::NOT_FOUND,
            "unknown_user",
        ),
        (
            Method::GET,
            format!("/api/users/{}/likes?cursor=nonsense", bob.id),
            &bob,
            StatusCode::BAD_REQUEST,
            "malformed_cursor",
        ),
        (
            Method::GET,
            format!("/api/users/{}/likes?limit=0", bob.id),
            &bob,
            StatusCode::BAD_REQUEST,
            "bad_limit",
        ),
        (
            Method::DELETE,
            "/api/posts/12345/like".to_owned(),
            &bob,
            StatusCode::NOT_FOUND,
            "unknown_post",
        ),
    ];
    for (method, path, who, status, code) in cases {
        let (got, body) = s.send(method.clone(), &path, Some(who)).await;
        assert_eq!(
            (got, body["code"].clone()),
            (status, json!(code)),
            "{method} {path}: {body}"
        );
    }
    let (status, _) = s
        .send(Method::PUT, &format!("/api/posts/{id}/like"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    s.put(&ada, &format!("/api/blocks/{}", cy.id)).await;
    // Refused across the block, even where a like of before stands.
    let (status, body) = s.put(&cy, &format!("/api/posts/{id}/like")).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::FORBIDDEN, json!("blocked")),
        "{body}"
    );
    let (_, again) = s.post_text(&ada, "after the block").await;
    let again = again["id"].as_str().expect("id").to_owned();
    let (status, body) = s.put(&cy, &format!("/api/posts/{again}/like")).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::FORBIDDEN, json!("blocked")),
        "{body}"
    );
    let (_, likes) = s.get(&cy, &format!("/api/users/{}/likes", cy.id)).await;
    assert!(
        texts(&likes).is_empty(),
        "a blocked author's post leaves the list: {likes}"
    );

    // A group post: its audience likes it, nobody else sees it.
    follow(&s, &bob, &ada).await;
    let (_, group) = s
        .send_json(
            Method::POST,
            "/api/groups",
            Some(&ada),
            json!({"name": "g"}),
        )
        .await;
    let gid = group["id"].as_u64().expect("group id");
    s.put(&ada, &format!("/api/groups/{gid}/members/{}", bob.id))
        .await;
    let (_, secret) = s
        .send_json(
            Method::POST,
            "/api/posts",
            Some(&ada),
            json!({"text": "psst", "group": gid}),
        )
        .await;
    let secret = secret["id"].as_str().expect("id").to_owned();
    let (status, _) = s.put(&bob, &format!("/api/posts/{secret}/like")).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        format!("/api/posts/{secret}/like"),
        format!("/api/posts/{secret}/likes"),
    ] {
        let method = if path.ends_with("like") {
            Method::PUT
        } else {
            Method::GET
        };
        let (status, body) = s.send(method, &path, Some(&cy)).await;
        assert_eq!(
            (status, body["code"].clone()),
            (StatusCode::NOT_FOUND, json!("unknown_post")),
            "{path}"
        );
    }
    let (_, seen_by_bob) = s.get(&bob, &format!("/api/users/{}/likes", bob.id)).await;
    assert_eq!(texts(&seen_by_bob), vec!["psst", "like this"]);
    let (_, seen_by_cy) = s.get(&cy, &format!("/api/users/{}/likes", bob.id)).await;
    assert!(
        texts(&seen_by_cy).is_empty(),
        "neither the group post nor a blocker's: {seen_by_cy}"
    );

    // Deleted: refused, and a standing like can still be taken back.
    s.delete(&ada, &format!("/api/posts/{id}")).await;
    let (status, body) = s.put(&bob, &format!("/api/posts/{id}/like")).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("post_deleted")),
        "{body}"
    );
    let (status, body) = s.delete(&bob, &format!("/api/posts/{id}/like")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"liked": false, "changed": true, "likes": null})
    );
}
