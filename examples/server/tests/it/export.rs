//! `GET /api/me/export` over HTTP: the document, its headers, a long
//! export streamed in many chunks, and the refusals.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Account, TestServer};

async fn export(s: &TestServer, who: &Account) -> (reqwest::header::HeaderMap, Value) {
    let response = s
        .request(Method::GET, "/api/me/export", Some(who))
        .send()
        .await
        .expect("export");
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body");
    let doc = serde_json::from_slice(&bytes).expect("the export is JSON");
    (headers, doc)
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|u| u["username"].as_str().expect("username"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_holds_posts_follows_likes_and_messages() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "analytical-engine").await;
    let bob = s.signup("bob", "a-long-password").await;
    for (who, whom) in [(&ada, &bob), (&bob, &ada)] {
        let (status, _) = s
            .put(who, &format!("/api/users/{}/following/{}", who.id, whom.id))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, mine) = s.post_text(&ada, "mine, with \"quotes\"").await;
    let (_, theirs) = s.post_text(&bob, "bob's").await;
    let theirs_id = theirs["id"].as_str().expect("id").to_owned();
    let (status, _) = s.put(&ada, &format!("/api/posts/{theirs_id}/like")).await;
    assert_eq!(status, StatusCode::OK);
    for (from, to, text) in [(&ada, &bob, "hello bob"), (&bob, &ada, "hello ada")] {
        let (status, body) = s
            .send_json(
                Method::POST,
                &format!("/api/messages/{}", to.id),
                Some(from),
                json!({"text": text}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    let (headers, doc) = export(&s, &ada).await;
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"starling-export-ada.json\""
    );
    assert_eq!(doc["format"], "starling-export-1");
    assert_eq!(doc["user"]["id"], ada.id);
    assert_eq!(doc["user"]["username"], "ada");
    assert_eq!(doc["posts"].as_array().map(Vec::len), Some(1));
    assert_eq!(doc["posts"][0]["id"], mine["id"]);
    assert_eq!(doc["posts"][0]["text"], "mine, with \"quotes\"");
    assert_eq!(names(&doc["following"]), ["bob"]);
    assert_eq!(names(&doc["followers"]), ["bob"]);
    assert_eq!(doc["likes"][0]["post"]["id"], theirs_id.as_str());
    assert_eq!(doc["likes"][0]["post"]["text"], "bob's");
    assert_eq!(doc["likes"][0]["post"]["author"]["username"], "bob");
    let conversation = &doc["conversations"][0];
    assert_eq!(conversation["with"]["username"], "bob");
    let texts: Vec<&str> = conversation["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["text"].as_str().expect("text"))
        .collect();
    assert_eq!(texts, ["hello ada", "hello bob"], "newest first");
    assert_eq!(conversation["messages"][0]["from"], bob.id);

    // Each account exports its own.
    let (headers, doc) = export(&s, &bob).await;
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"starling-export-bob.json\""
    );
    assert_eq!(doc["posts"][0]["text"], "bob's");
    assert_eq!(doc["likes"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_export_streams_in_chunks() {
    let s = TestServer::start_with(|c| {
        c.post_burst = 1_000;
        c.posts_per_minute = 1_000;
    })
    .await;
    let ada = s.signup("ada", "analytical-engine").await;
    let text = "x".repeat(280);
    let n = 250;
    for _ in 0..n {
        let (status, _) = s.post_text(&ada, &text).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let mut response = s
        .request(Method::GET, "/api/me/export", Some(&ada))
        .send()
        .await
        .expect("export");
    assert_eq!(response.status(), StatusCode::OK);
    let mut chunks = 0;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        body.extend_from_slice(&chunk);
        chunks += 1;
    }
    assert!(body.len() > 70_000, "{} bytes", body.len());
    assert!(chunks > 1, "one chunk of {} bytes", body.len());
    let doc: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(doc["posts"].as_array().map(Vec::len), Some(n));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_needs_a_session() {
    let s = TestServer::start().await;
    let (status, body) = s.send(Method::GET, "/api/me/export", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("missing_token"))
    );
}
