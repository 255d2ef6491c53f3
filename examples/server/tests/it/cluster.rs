//! The server over a Valkey cluster (`--store valkey://...`): the same
//! API, its data kept on the cluster across a restart.

use std::path::PathBuf;
use std::sync::OnceLock;

use reqwest::{Method, StatusCode};
use serde_json::json;
use starling_server::DurabilityMode;
use starling_valkey::test_cluster;

use crate::harness::{TestServer, eventually};

/// First port of this binary's cluster (3 primaries, 1 replica each).
const PORT: u16 = 7460;

fn urls() -> &'static str {
    static URLS: OnceLock<String> = OnceLock::new();
    URLS.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("valkey-cluster-{PORT}"));
        test_cluster::start(PORT, &dir, &["--replicas", "1"])
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_runs_over_a_cluster_and_its_data_outlives_a_restart() {
    let namespace = test_cluster::namespace();
    let on_cluster = |c: &mut starling_server::Config| {
        c.store = Some(urls().to_owned());
        c.namespace = namespace.clone();
        c.durability = DurabilityMode::Synced;
    };
    let s = TestServer::start_with(on_cluster).await;
    let ada = s.signup("ada", "analytical-engine").await;
    let grace = s.signup("grace", "compilers-rule").await;
    assert!(grace.id > ada.id, "ids from the cluster's counter grow");
    let (status, body) = s
        .put(
            &grace,
            &format!("/api/users/{}/following/{}", grace.id, ada.id),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, post) = s.post_text(&ada, "Notes on the engine").await;
    assert_eq!(status, StatusCode::CREATED, "{post}");
    let home = eventually(|| async {
        let (_, home) = s.get(&grace, "/api/home").await;
        (home["posts"].as_array().is_some_and(|p| !p.is_empty())).then_some(home)
    })
    .await;
    assert_eq!(home["posts"][0]["id"], post["id"]);
    let (status, sent) = s
        .send_json(
            Method::POST,
            &format!("/api/messages/{}", grace.id),
            Some(&ada),
            json!({"text": "Loved the notes"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let dir = s.stop().await;

    // The accounts stay in the data folder, the engine's data on the
    // cluster: both are there again after a restart.
    let s = TestServer::start_in(dir, on_cluster).await;
    let (status, home) = s.get(&grace, "/api/home").await;
    assert_eq!(status, StatusCode::OK, "{home}");
    assert_eq!(home["posts"][0]["id"], post["id"]);
    let (_, counts) = s
        .get(&grace, &format!("/api/users/{}/counts", ada.id))
        .await;
    assert_eq!(counts, json!({"followers": 1, "following": 0}));
    let (_, thread) = s.get(&grace, &format!("/api/messages/{}", ada.id)).await;
    assert_eq!(thread["messages"][0]["text"], "Loved the notes", "{thread}");
    let cat = s.signup("cat", "whiskers-and-all").await;
    assert!(cat.id > grace.id, "no user id handed out twice");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_store_is_refused() {
    let namespace = test_cluster::namespace();
    let s = TestServer::start_with(|c| {
        c.store = Some(urls().to_owned());
        c.namespace = namespace.clone();
    })
    .await;
    let other = tempfile::tempdir().expect("dir");
    let mut config = starling_server::Config::new(other.path().join("data"));
    config.bind = "127.0.0.1:0".parse().expect("address");
    config.store = Some(urls().to_owned());
    config.namespace = namespace.clone();
    match starling_server::Server::bind(config).await {
        Err(e) => assert!(
            e.to_string().contains("writer lease"),
            "refused for the lease: {e}"
        ),
        Ok(_) => panic!("a second writer of one store must be refused"),
    }
    s.stop().await;
}
