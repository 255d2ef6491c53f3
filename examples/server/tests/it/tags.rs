//! The hashtag page over HTTP: tags indexed from the change feed, newest
//! first, deletes, visibility, the trending list, a restart, bad tags.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Account, TestServer, eventually};

/// The texts of a tag page as `who` sees it, once it holds `want` posts.
async fn tag_texts(s: &TestServer, who: &Account, tag: &str, want: usize) -> Vec<String> {
    eventually(|| async {
        let (status, page) = s.get(who, &format!("/api/tags/{tag}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let texts: Vec<String> = page["posts"]
            .as_array()
            .expect("posts")
            .iter()
            .map(|p| p["text"].as_str().expect("text").to_owned())
            .collect();
        (texts.len() == want).then_some(texts)
    })
    .await
}

async fn trending(s: &TestServer, who: &Account) -> Value {
    let (status, body) = s.get(who, "/api/tags/trending").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["window_ms"], 3_600_000);
    body["tags"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagged_posts_show_newest_first_leave_when_deleted_and_trend() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "analytical-engine").await;
    let bob = s.signup("bob", "a-long-password").await;
    let (_, first) = s.post_text(&ada, "learning #Rust today").await;
    s.post_text(&bob, "no tag here, only a#b and #123").await;
    s.post_text(&bob, "#rust and #go, #RUST again").await;
    let (_, third) = s.post_text(&ada, "more #rust").await;
    let texts = tag_texts(&s, &bob, "rust", 3).await;
    assert_eq!(
        texts,
        [
            "more #rust",
            "#rust and #go, #RUST again",
            "learning #Rust today"
        ],
        "newest first"
    );
    // A tag is named with or without its '#', in any case.
    assert_eq!(tag_texts(&s, &bob, "%23RUST", 3).await, texts);
    assert_eq!(tag_texts(&s, &ada, "go", 1).await.len(), 1);
    assert_eq!(tag_texts(&s, &ada, "b", 0).await.len(), 0);
    // Pages of one follow the cursor to the end.
    let pages = s.all_pages(&ada, "/api/tags/rust", "posts", 1).await;
    let paged: Vec<&str> = pages
        .iter()
        .flatten()
        .map(|p| p["text"].as_str().expect("text"))
        .collect();
    assert_eq!(paged, texts);
    assert_eq!(
        trending(&s, &ada).await,
        json!([{"tag": "rust", "posts": 3}, {"tag": "go", "posts": 1}])
    );

    let id = |p: &Value| p["id"].as_str().expect("id").to_owned();
    let (status, _) = s.delete(&ada, &format!("/api/posts/{}", id(&third))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let left = tag_texts(&s, &bob, "rust", 2).await;
    assert_eq!(left, ["#rust and #go, #RUST again", "learning #Rust today"]);
    let tags = eventually(|| async {
        let t = trending(&s, &ada).await;
        (t[0]["posts"] == 2).then_some(t)
    })
    .await;
    assert_eq!(
        tags,
        json!([{"tag": "rust", "posts": 2}, {"tag": "go", "posts": 1}])
    );
    assert_eq!(first["text"], "learning #Rust today");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_page_shows_each_reader_only_what_they_may_see() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "analytical-engine").await;
    let bob = s.signup("bob", "a-long-password").await;
    let cy = s.signup("cy", "another-password").await;
    s.put(&bob, &format!("/api/users/{}/following/{}", bob.id, ada.id))
        .await;
    let (status, group) = s
        .send_json(
            Method::POST,
            "/api/groups",
            Some(&ada),
            json!({"name": "close"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let g = group["id"].as_u64().expect("group id");
    let (status, _) = s
        .put(&ada, &format!("/api/groups/{g}/members/{}", bob.id))
        .await;
    assert!(status.is_success());
    let (status, body) = s
        .send_json(
            Method::POST,
            "/api/posts",
            Some(&ada),
            json!({"text": "for the group #secret", "group": g}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    s.post_text(&ada, "for all #secret").await;
    assert_eq!(tag_texts(&s, &ada, "secret", 2).await.len(), 2);
    assert_eq!(tag_texts(&s, &bob, "secret", 2).await.len(), 2);
    // Not a member: the group post is not on cy's page.
    assert_eq!(tag_texts(&s, &cy, "secret", 1).await, ["for all #secret"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_resumes_from_its_stored_cursor_after_a_restart() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "analytical-engine").await;
    s.post_text(&ada, "one #again").await;
    s.post_text(&ada, "two #again").await;
    assert_eq!(tag_texts(&s, &ada, "again", 2).await.len(), 2);
    let dir = s.stop().await;
    let log = std::fs::read_to_string(dir.path().join("data/tags/tags.jsonl")).expect("log");
    assert!(log.lines().count() >= 1, "the index is stored: {log}");

    let s = TestServer::start_in(dir, |_| {}).await;
    s.post_text(&ada, "three #again").await;
    assert_eq!(
        tag_texts(&s, &ada, "again", 3).await,
        ["three #again", "two #again", "one #again"]
    );
    // Nothing counted twice.
    let tags = eventually(|| async {
        let t = trending(&s, &ada).await;
        (t[0]["posts"] == 3).then_some(t)
    })
    .await;
    assert_eq!(tags, json!([{"tag": "again", "posts": 3}]));
    let dir = s.stop().await;
    // Each post was read from the feed once: the follower went on from
    // its stored cursor rather than reading the feed again.
    let path = dir.path().join("data/tags/tags.jsonl");
    let mut tagged: Vec<String> = Vec::new();
    for line in std::fs::read_to_string(&path).expect("log").lines() {
        let line: Value = serde_json::from_str(line).expect("a JSON line");
        for e in line["events"].as_array().expect("events") {
            tagged.push(e["post"].to_string());
        }
    }
    let distinct: std::collections::BTreeSet<&String> = tagged.iter().collect();
    assert_eq!((tagged.len(), distinct.len()), (3, 3), "{tagged:?}");
    // A torn last line (a crash mid-append) is dropped; that page is read
    // again, and still nothing counts twice.
    let mut log = std::fs::read_to_string(&path).expect("log");
    log.push_str("{\"cursor\":\"AQ");
    std::fs::write(&path, log).expect("write");
    let s = TestServer::start_in(dir, |_| {}).await;
    assert_eq!(tag_texts(&s, &ada, "again", 3).await.len(), 3);
    assert_eq!(
        trending(&s, &ada).await,
        json!([{"tag": "again", "posts": 3}])
    );
    // The torn line is gone before anything is appended: the log reads
    // back whole on the next start.
    s.post_text(&ada, "four #again").await;
    assert_eq!(tag_texts(&s, &ada, "again", 4).await.len(), 4);
    let dir = s.stop().await;
    let s = TestServer::start_in(dir, |_| {}).await;
    assert_eq!(tag_texts(&s, &ada, "again", 4).await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tags_limits_and_cursors_are_refused() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "analytical-engine").await;
    let long = "x".repeat(51);
    for bad in ["123", "a-b", "%23", long.as_str(), "%F0%9F%90%A6"] {
        let (status, body) = s.get(&ada, &format!("/api/tags/{bad}")).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_tag")),
            "{bad}: {body}"
        );
    }
    for (query, code) in [
        ("limit=0", "bad_limit"),
        ("limit=201", "bad_limit"),
        ("cursor=garbage", "malformed_cursor"),
    ] {
        let (status, body) = s.get(&ada, &format!("/api/tags/rust?{query}")).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{query}: {body}"
        );
    }
    let (status, _) = s.send(Method::GET, "/api/tags/rust", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = s.send(Method::GET, "/api/tags/trending", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
