//! `DELETE /api/me`: account deletion for the password, its effect on
//! others' timelines and counts, its sessions, and its reserved name.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Account, TestServer};

async fn follow(s: &TestServer, who: &Account, whom: &Account) {
    let (status, body) = s
        .put(who, &format!("/api/users/{}/following/{}", who.id, whom.id))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn delete_me(s: &TestServer, who: &Account, password: &str) -> (StatusCode, Value) {
    s.send_json(
        Method::DELETE,
        "/api/me",
        Some(who),
        json!({ "password": password }),
    )
    .await
}

fn home_texts(page: &Value) -> Vec<String> {
    page["posts"]
        .as_array()
        .expect("posts")
        .iter()
        .map(|p| p["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn signup_refusal(s: &TestServer, name: &str) -> (StatusCode, Value) {
    s.send_json(
        Method::POST,
        "/api/signup",
        None,
        json!({"username": name, "password": "another password"}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_account_takes_its_posts_edges_sessions_and_holds_its_name() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "analytical-engine").await;
    let grace = s.signup("grace", "compiler-one").await;
    let ada_again = s
        .login("ada", "analytical-engine")
        .await
        .expect("second session");
    follow(&s, &grace, &ada).await;
    follow(&s, &ada, &grace).await;
    assert_eq!(s.post_text(&ada, "from ada").await.0, StatusCode::CREATED);
    assert_eq!(
        s.post_text(&grace, "from grace").await.0,
        StatusCode::CREATED
    );
    let (_, home) = s.get(&grace, "/api/home").await;
    assert!(home_texts(&home).contains(&"from ada".to_owned()), "{home}");

    // A wrong password, an empty or malformed body: refused, nothing done.
    let (status, body) = delete_me(&s, &ada, "not the password").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("wrong_password")),
        "{body}"
    );
    let (status, body) = s.send(Method::DELETE, "/api/me", Some(&ada)).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    for bad in ["", "{\"password\": "] {
        let (status, body) = s
            .finish_request(
                s.request(Method::DELETE, "/api/me", Some(&ada))
                    .header("content-type", "application/json")
                    .body(bad),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("malformed_json")),
            "{bad:?}: {body}"
        );
    }
    let (status, body) = s
        .send_json(Method::DELETE, "/api/me", Some(&ada), json!({"pass": 1}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = s
        .send_json(
            Method::DELETE,
            "/api/me",
            None,
            json!({"password": "analytical-engine"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("missing_token"))
    );
    assert_eq!(s.get(&ada, "/api/me").await.0, StatusCode::OK);
    assert_eq!(s.get(&ada_again, "/api/me").await.0, StatusCode::OK);
    let (_, counts) = s
        .get(&grace, &format!("/api/users/{}/counts", grace.id))
        .await;
    assert_eq!(counts, json!({"followers": 1, "following": 1}));
    assert!(s.login("ada", "analytical-engine").await.is_some());

    // The right password deletes it.
    let (status, body) = delete_me(&s, &ada, "analytical-engine").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for token in [&ada, &ada_again] {
        let (status, body) = s.get(token, "/api/me").await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_token"))
        );
    }
    let (status, _) = delete_me(&s, &ada, "analytical-engine").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(s.login("ada", "analytical-engine").await.is_none());
    let (_, home) = s.get(&grace, "/api/home").await;
    assert_eq!(home_texts(&home), vec!["from grace".to_owned()], "{home}");
    let (_, counts) = s
        .get(&grace, &format!("/api/users/{}/counts", grace.id))
        .await;
    assert_eq!(counts, json!({"followers": 0, "following": 0}));
    let (status, body) = s.get(&grace, &format!("/api/users/{}", ada.id)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("account_deleted"))
    );
    for name in ["ada", "ADA"] {
        let (status, body) = signup_refusal(&s, name).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::CONFLICT, Some("username_reserved")),
            "{body}"
        );
    }
    // Grace is untouched.
    assert_eq!(s.get(&grace, "/api/me").await.0, StatusCode::OK);
    assert!(s.login("grace", "compiler-one").await.is_some());

    // Both sides survive a restart.
    let s = TestServer::start_in(s.stop().await, |_| {}).await;
    assert_eq!(
        s.get(&ada_again, "/api/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert!(s.login("ada", "analytical-engine").await.is_none());
    assert_eq!(signup_refusal(&s, "ada").await.0, StatusCode::CONFLICT);
    assert_eq!(s.get(&grace, "/api/me").await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_stopped_after_the_engine_is_finished_by_a_retry() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "analytical-engine").await;
    let dir = s.stop().await;
    // The engine's side done, the server's not: what a crash between the
    // two leaves.
    {
        let engine = starling::AnyEngine::open(
            dir.path().join("data").join("engine"),
            starling::Config::default(),
        )
        .expect("engine opens");
        engine
            .delete_account(starling::UserId(ada.id))
            .expect("deleted");
    }
    let s = TestServer::start_in(dir, |_| {}).await;
    assert_eq!(s.get(&ada, "/api/me").await.0, StatusCode::NOT_FOUND);
    let (status, body) = delete_me(&s, &ada, "wrong password").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = delete_me(&s, &ada, "analytical-engine").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(s.get(&ada, "/api/me").await.0, StatusCode::UNAUTHORIZED);
    assert!(s.login("ada", "analytical-engine").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_freed_after_its_hold_goes_to_a_new_account() {
    let s = TestServer::start_with(|c| c.name_hold_ms = 0).await;
    let ada = s.signup("ada", "analytical-engine").await;
    let (status, _) = delete_me(&s, &ada, "analytical-engine").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let new = s.signup("ada", "a new password").await;
    assert_ne!(new.id, ada.id);
    assert_eq!(s.get(&ada, "/api/me").await.0, StatusCode::UNAUTHORIZED);
    assert!(s.login("ada", "analytical-engine").await.is_none());
    let (status, me) = s.get(&new, "/api/me").await;
    assert_eq!(
        (status, me["user"]["id"].as_u64()),
        (StatusCode::OK, Some(new.id))
    );
}
