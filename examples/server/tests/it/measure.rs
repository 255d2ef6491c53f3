//! Measurements over real HTTP, ignored by default (they report figures,
//! and take a while). Run one with
//! `cargo test --release -p starling-server --test it -- --ignored --nocapture avatar_gets`.

use std::time::Instant;

use reqwest::{Method, StatusCode};

use crate::harness::TestServer;

/// GETs of the largest avatar (256 KiB) over loopback: requests per second,
/// with 4 clients at once. `STARLING_AVATAR_GETS` sets the count (10,000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn avatar_gets() {
    const CLIENTS: usize = 4;
    let total: usize = std::env::var("STARLING_AVATAR_GETS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let s = TestServer::start().await;
    let ada = s.signup("ada", "analytical-engine").await;
    // A JPEG-looking picture of exactly the largest accepted size.
    let mut picture = vec![0xff, 0xd8, 0xff, 0xe0];
    picture.extend(
        (0..starling::AVATAR_MAX_BYTES as u32 - 4)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8),
    );
    let response = s
        .request(Method::PUT, "/api/me/avatar", Some(&ada))
        .header("content-type", "application/octet-stream")
        .body(picture.clone())
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), StatusCode::OK);
    let url = s.url(&format!("/api/users/{}/avatar", ada.id));
    let get = |client: reqwest::Client, url: String, token: String, n: usize| async move {
        let mut bytes = 0usize;
        for _ in 0..n {
            let response = client
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), StatusCode::OK);
            bytes += response.bytes().await.expect("body").len();
        }
        bytes
    };
    // Warm the caches and the connection pool.
    let warm = get(s.client.clone(), url.clone(), ada.token.clone(), 100).await;
    assert_eq!(warm, 100 * picture.len());
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            tokio::spawn(get(
                s.client.clone(),
                url.clone(),
                ada.token.clone(),
                total / CLIENTS,
            ))
        })
        .collect();
    let mut bytes = 0;
    for t in tasks {
        bytes += t.await.expect("client task");
    }
    let secs = started.elapsed().as_secs_f64();
    let requests = total / CLIENTS * CLIENTS;
    assert_eq!(bytes, requests * picture.len());
    println!(
        "avatar GET, {} KiB, {CLIENTS} clients: {requests} requests in {secs:.2} s, {:.0} requests/s, {:.0} MiB/s",
        picture.len() / 1024,
        requests as f64 / secs,
        bytes as f64 / secs / (1024.0 * 1024.0)
    );
    // Byte for byte what was uploaded.
    let body = s
        .request(
            Method::GET,
            &format!("/api/users/{}/avatar", ada.id),
            Some(&ada),
        )
        .send()
        .await
        .expect("request")
        .bytes()
        .await
        .expect("body");
    assert!(body == picture, "avatar bytes differ");
    s.stop().await;
}
