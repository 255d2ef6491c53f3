//! The example server over real HTTP: each test starts its own server on a
//! loopback port with a fresh data folder.

mod browser;
mod cluster;
mod deletion;
mod direct;
mod export;
mod harness;
mod measure;
mod protect;
mod social;
mod streams;
mod tags;

use std::time::Duration;

use harness::{TestServer, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_post_and_see_it_in_the_followers_home_timeline() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "analytical-engine").await;
    let grace = s.signup("Grace", "compilers-rule").await;
    assert_ne!(ada.id, grace.id);

    let (status, body) = s
        .put(
            &grace,
            &format!("/api/users/{}/following/{}", grace.id, ada.id),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"following": true, "requested": false, "changed": true})
    );
    let (_, again) = s
        .put(
            &grace,
            &format!("/api/users/{}/following/{}", grace.id, ada.id),
        )
        .await;
    assert_eq!(
        again,
        json!({"following": true, "requested": false, "changed": false}),
        "following twice changes nothing"
    );

    let (status, edge) = s
        .get(
            &ada,
            &format!("/api/users/{}/following/{}", grace.id, ada.id),
        )
        .await;
    assert_eq!((status, edge), (StatusCode::OK, json!({"following": true})));
    let (_, edge) = s
        .get(
            &ada,
            &format!("/api/users/{}/following/{}", ada.id, grace.id),
        )
        .await;
    assert_eq!(edge, json!({"following": false}));
    let (_, counts) = s
        .get(&grace, &format!("/api/users/{}/counts", ada.id))
        .await;
    assert_eq!(counts, json!({"followers": 1, "following": 0}));

    let response = s
        .request(reqwest::Method::POST, "/api/posts", Some(&ada))
        .json(&json!({"text": "Analytical engines weave algebraic patterns."}))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let post: Value = response.json().await.expect("json");
    let post_id = post["id"]
        .as_str()
        .expect("post ids are strings")
        .to_owned();
    assert_eq!(location, format!("/api/posts/{post_id}"));
    assert_eq!(post["author"], json!({"id": ada.id, "username": "ada"}));
    assert_eq!(post["text"], "Analytical engines weave algebraic patterns.");

    // Fan-out runs in the background: the post reaches grace's home soon.
    let home = eventually(|| async {
        let (_, home) = s.get(&grace, "/api/home").await;
        (home["posts"].as_array().is_some_and(|p| !p.is_empty())).then_some(home)
    })
    .await;
    assert_eq!(home["posts"][0]["id"], post_id.as_str());
    assert_eq!(home["posts"][0]["author"]["username"], "ada");

    let (status, fetched) = s.get(&grace, &location).await;
    assert_eq!((status, &fetched), (StatusCode::OK, &post));
    let (_, authored) = s.get(&grace, &format!("/api/users/{}/posts", ada.id)).await;
    assert_eq!(authored["posts"][0]["id"], post_id.as_str());
    assert_eq!(authored["next"], Value::Null);

    let (_, followers) = s
        .get(&ada, &format!("/api/users/{}/followers", ada.id))
        .await;
    assert_eq!(followers["users"][0]["username"], "Grace");
    let (_, following) = s
        .get(&ada, &format!("/api/users/{}/following", grace.id))
        .await;
    assert_eq!(following["users"][0]["id"], ada.id);

    let (status, by_name) = s.get(&ada, "/api/users/by-name/GRACE").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_name["id"], grace.id);
    let (_, by_id) = s.get(&ada, &format!("/api/users/{}", grace.id)).await;
    assert_eq!(by_id["username"], "Grace");
    let (_, me) = s.get(&grace, "/api/me").await;
    assert_eq!(me["user"]["id"], grace.id);
    assert_eq!(me["counts"], json!({"followers": 0, "following": 1}));

    // Unfollowing takes ada's posts out of grace's home.
    let (status, body) = s
        .delete(
            &grace,
            &format!("/api/users/{}/following/{}", grace.id, ada.id),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"following": false, "requested": false, "changed": true})
        )
    );
    let (_, home) = s.get(&grace, "/api/home").await;
    assert_eq!(home["posts"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_page_with_cursors_and_refuse_bad_ones() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "analytical-engine").await;
    let mut written = Vec::new();
    for i in 0..5 {
        let (status, post) = s.post_text(&ada, &format!("post number {i}")).await;
        assert_eq!(status, StatusCode::CREATED);
        written.push(post["id"].as_str().expect("id").to_owned());
    }
    written.reverse();
    let path = format!("/api/users/{}/posts", ada.id);
    let pages = s.all_pages(&ada, &path, "posts", 2).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    let seen: Vec<String> = pages
        .concat()
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(seen, written, "newest first, each once");
    let home = s.all_pages(&ada, "/api/home", "posts", 3).await;
    assert_eq!(
        home.concat().len(),
        5,
        "own posts are in one's home timeline"
    );

    let mut fans = Vec::new();
    for name in ["f1", "f2", "f3"] {
        let fan = s.signup(name, "a-long-password").await;
        let (status, _) = s
            .put(&fan, &format!("/api/users/{}/following/{}", fan.id, ada.id))
            .await;
        assert_eq!(status, StatusCode::OK);
        fans.push(fan.id);
    }
    let followers = s
        .all_pages(
            &ada,
            &format!("/api/users/{}/followers", ada.id),
            "users",
            2,
        )
        .await;
    let ids: Vec<u64> = followers
        .concat()
        .iter()
        .map(|u| u["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, fans);

    let (_, first) = s.get(&ada, &format!("{path}?limit=2")).await;
    let timeline_cursor = first["next"].as_str().expect("more pages").to_owned();
    for (query, code) in [
        ("?cursor=not-a-cursor", "malformed_cursor"),
        ("?cursor=AAAAAAAAAAAAAAAAAAAA", "malformed_cursor"),
        ("?limit=0", "bad_limit"),
        ("?limit=201", "bad_limit"),
        ("?limit=ten", "bad_query"),
        ("?limit=-1", "bad_query"),
    ] {
        let (status, body) = s.get(&ada, &format!("{path}{query}")).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{query}"
        );
    }
    // A timeline cursor is no follower-list cursor.
    let (status, body) = s
        .get(
            &ada,
            &format!("/api/users/{}/followers?cursor={timeline_cursor}", ada.id),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_cursor"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_but_signup_and_login_needs_a_valid_token() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "analytical-engine").await;
    let (_, post) = s.post_text(&ada, "mine").await;
    let post_path = format!("/api/posts/{}", post["id"].as_str().expect("id"));
    let routes = [
        ("GET", "/api/me".to_owned()),
        ("DELETE", "/api/me".to_owned()),
        ("GET", "/api/me/export".to_owned()),
        ("POST", "/api/logout".to_owned()),
        ("GET", format!("/api/users/{}", ada.id)),
        ("GET", "/api/users/by-name/ada".to_owned()),
        ("GET", format!("/api/users/{}/counts", ada.id)),
        ("GET", format!("/api/users/{}/followers", ada.id)),
        ("GET", format!("/api/users/{}/following", ada.id)),
        ("GET", format!("/api/users/{}/following/1", ada.id)),
        ("PUT", format!("/api/users/{}/following/1", ada.id)),
        ("DELETE", format!("/api/users/{}/following/1", ada.id)),
        ("GET", format!("/api/users/{}/posts", ada.id)),
        ("POST", "/api/posts".to_owned()),
        ("GET", post_path.clone()),
        ("DELETE", post_path.clone()),
        ("GET", "/api/home".to_owned()),
        ("GET", "/api/home/events".to_owned()),
        ("GET", "/api/events".to_owned()),
        ("POST", format!("{post_path}/repost")),
        ("GET", format!("{post_path}/thread")),
        ("GET", "/api/mentions".to_owned()),
        ("GET", "/api/groups".to_owned()),
        ("POST", "/api/groups".to_owned()),
        ("GET", "/api/groups/1".to_owned()),
        ("DELETE", "/api/groups/1".to_owned()),
        ("GET", "/api/groups/1/members".to_owned()),
        ("PUT", format!("/api/groups/1/members/{}", ada.id)),
        ("DELETE", format!("/api/groups/1/members/{}", ada.id)),
        ("GET", "/api/blocks".to_owned()),
        ("PUT", "/api/blocks/1".to_owned()),
        ("DELETE", "/api/blocks/1".to_owned()),
        ("GET", "/api/mutes".to_owned()),
        ("PUT", "/api/mutes/1".to_owned()),
        ("DELETE", "/api/mutes/1".to_owned()),
        ("GET", format!("/api/users/{}/friends", ada.id)),
        ("GET", "/api/suggestions".to_owned()),
        ("GET", format!("/api/users/{}/profile", ada.id)),
        ("GET", format!("/api/users/{}/avatar", ada.id)),
        ("PUT", "/api/me/profile".to_owned()),
        ("GET", "/api/me/settings".to_owned()),
        ("PUT", "/api/me/settings".to_owned()),
        ("PUT", "/api/me/avatar".to_owned()),
        ("DELETE", "/api/me/avatar".to_owned()),
        ("PUT", "/api/me/phone".to_owned()),
        ("DELETE", "/api/me/phone".to_owned()),
        ("POST", "/api/me/phone/confirm".to_owned()),
        ("PUT", "/api/me/quiet-hours".to_owned()),
        ("DELETE", "/api/me/quiet-hours".to_owned()),
        ("GET", "/api/me/device-usage".to_owned()),
        ("GET", "/api/me/device-updates".to_owned()),
        ("GET", format!("/api/users/{}/following/1/device", ada.id)),
        ("PUT", format!("/api/users/{}/following/1/device", ada.id)),
        (
            "DELETE",
            format!("/api/users/{}/following/1/device", ada.id),
        ),
        ("GET", "/api/conversations".to_owned()),
        ("GET", "/api/messages/1".to_owned()),
        ("POST", "/api/messages/1".to_owned()),
        ("POST", "/api/messages/1/read".to_owned()),
    ];
    for (method, path) in &routes {
        let method: reqwest::Method = method.parse().expect("method");
        for (auth, code) in [
            (None, "missing_token"),
            (Some("Bearer not-a-real-token"), "invalid_token"),
            (Some("Bearer "), "invalid_token"),
            (Some("Basic YWRhOmFuYWx5dGljYWw="), "invalid_token"),
        ] {
            let mut request = s.client.request(method.clone(), s.url(path));
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            if method == reqwest::Method::POST {
                request = request.json(&json!({"text": "as nobody"}));
            }
            let response = request.send().await.expect("request");
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} {auth:?}"
            );
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let body: Value = response.json().await.expect("json");
            assert_eq!(body["code"], code, "{method} {path} {auth:?}");
        }
    }
    // Nothing was done by the refused requests.
    let (status, _) = s.get(&ada, &post_path).await;
    assert_eq!(status, StatusCode::OK);
    let (_, mine) = s.get(&ada, &format!("/api/users/{}/posts", ada.id)).await;
    assert_eq!(mine["posts"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_acts_as_another_user() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "analytical-engine").await;
    let grace = s.signup("grace", "compilers-rule").await;
    let eve = s.signup("eve", "eavesdropping").await;
    let (status, _) = s
        .put(
            &grace,
            &format!("/api/users/{}/following/{}", grace.id, ada.id),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, post) = s.post_text(&ada, "only I may delete this").await;
    let path = format!("/api/posts/{}", post["id"].as_str().expect("id"));

    let (status, body) = s.delete(&grace, &path).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_allowed"))
    );
    let (status, _) = s.get(&grace, &path).await;
    assert_eq!(status, StatusCode::OK, "a refused delete deletes nothing");

    // Eve may neither make grace follow her nor make grace unfollow ada.
    let (status, body) = s
        .put(
            &eve,
            &format!("/api/users/{}/following/{}", grace.id, eve.id),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_allowed"))
    );
    let (status, _) = s
        .delete(
            &eve,
            &format!("/api/users/{}/following/{}", grace.id, ada.id),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, counts) = s
        .get(&eve, &format!("/api/users/{}/counts", grace.id))
        .await;
    assert_eq!(counts, json!({"followers": 0, "following": 1}));

    // The author may; the post is gone everywhere, and deleting again is 404.
    let (status, _) = s.delete(&ada, &path).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = s.get(&grace, &path).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("post_deleted"))
    );
    let (status, _) = s.delete(&ada, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    eventually(|| async {
        let (_, home) = s.get(&grace, "/api/home").await;
        (home["posts"] == json!([])).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_logout() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "analytical-engine").await;
    let second = s
        .login("ADA", "analytical-engine")
        .await
        .expect("log in ignoring case");
    assert_eq!(second.id, ada.id);
    assert_ne!(second.token, ada.token);

    for (name, password) in [
        ("ada", "wrong-password"),
        ("nobody", "analytical-engine"),
        ("bad name", "x"),
    ] {
        let (status, body) = s
            .send_json(
                reqwest::Method::POST,
                "/api/login",
                None,
                json!({"username": name, "password": password}),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("bad_credentials"))
        );
    }

    let (status, _) = s
        .send(reqwest::Method::POST, "/api/logout", Some(&ada))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = s.get(&ada, "/api/me").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );
    let (status, _) = s.get(&second, "/api/me").await;
    assert_eq!(status, StatusCode::OK, "logging out ends one session only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_refused() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "analytical-engine").await;
    let cases: [(&str, &str, StatusCode, &str); 4] = [
        (
            "{\"text\": ",
            "application/json",
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "not json at all",
            "application/json",
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "{\"words\": \"hi\"}",
            "application/json",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "{\"text\": \"hi\"}",
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ];
    for (body, content_type, status, code) in cases {
        let response = s
            .request(reqwest::Method::POST, "/api/posts", Some(&ada))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), status, "{body}");
        let json: Value = response.json().await.expect("errors are JSON");
        assert_eq!(json["code"], code, "{body}");
        assert!(json["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let (status, body) = s
        .send_json(
            reqwest::Method::POST,
            "/api/signup",
            None,
            json!({"username": "x"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused_with_413() {
    let s = TestServer::start_with(|c| c.max_body_bytes = 4096).await;
    let ada = s.signup("ada", "analytical-engine").await;
    let big = json!({"text": "x".repeat(20_000)});
    let (status, body) = s
        .send_json(reqwest::Method::POST, "/api/posts", Some(&ada), big.clone())
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    let signup = json!({"username": "big", "password": "p".repeat(20_000)});
    let (status, _) = s
        .send_json(reqwest::Method::POST, "/api/signup", None, signup)
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Just under the limit is read (and refused for its length, not its size).
    let fits = json!({"text": "x".repeat(4000)});
    let (status, body) = s
        .send_json(reqwest::Method::POST, "/api/posts", Some(&ada), fits)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("text_too_long"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_methods_and_ids() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "analytical-engine").await;
    for path in [
        "/nope",
        "/api",
        "/api/nope",
        "/api/users/1/bogus",
        "/api/posts/1/2/3",
    ] {
        let (status, body) = s.get(&ada, path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{path}"
        );
    }
    let (status, body) = s
        .send(reqwest::Method::PATCH, "/api/posts", Some(&ada))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
    for (path, status, code) in [
        ("/api/users/abc", StatusCode::BAD_REQUEST, "bad_path"),
        ("/api/posts/abc", StatusCode::BAD_REQUEST, "bad_path"),
        ("/api/posts/0", StatusCode::BAD_REQUEST, "bad_path"),
        ("/api/users/999", StatusCode::NOT_FOUND, "unknown_user"),
        (
            "/api/users/999/followers",
            StatusCode::NOT_FOUND,
            "unknown_user",
        ),
        (
            "/api/users/by-name/nobody",
            StatusCode::NOT_FOUND,
            "unknown_user",
        ),
        (
            "/api/users/by-name/not%20valid",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_username",
        ),
        ("/api/posts/12345", StatusCode::NOT_FOUND, "unknown_post"),
    ] {
        let (got, body) = s.get(&ada, path).await;
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{path}");
    }
    let (status, body) = s
        .put(&ada, &format!("/api/users/{}/following/999", ada.id))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_user"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_usernames_passwords_and_texts_are_422() {
    let s = TestServer::start().await;
    for (name, password, code) in [
        ("bad name", "a-long-password", "invalid_username"),
        ("", "a-long-password", "invalid_username"),
        ("abcdefghijklmnop", "a-long-password", "invalid_username"),
        ("émile", "a-long-password", "invalid_username"),
        ("shorty", "short", "invalid_password"),
    ] {
        let (status, body) = s
            .send_json(
                reqwest::Method::POST,
                "/api/signup",
                None,
                json!({"username": name, "password": password}),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{name:?}"
        );
    }
    let ada = s.signup("ada", "analytical-engine").await;
    for (text, code) in [
        ("", "invalid_text"),
        ("   \n ", "invalid_text"),
        ("bell \u{7}", "invalid_text"),
        (&"x".repeat(281), "text_too_long"),
    ] {
        let (status, body) = s.post_text(&ada, text).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{text:?}"
        );
    }
    let (status, _) = s.post_text(&ada, &"é".repeat(280)).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "280 characters is the limit, not 280 bytes"
    );
    let (status, body) = s
        .put(&ada, &format!("/api/users/{}/following/{}", ada.id, ada.id))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("self_follow"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usernames_are_unique_regardless_of_case() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "analytical-engine").await;
    for name in ["ada", "ADA", "Ada"] {
        let (status, body) = s
            .send_json(
                reqwest::Method::POST,
                "/api/signup",
                None,
                json!({"username": name, "password": "hijacking-ada"}),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::CONFLICT, Some("username_taken")),
            "{name}"
        );
    }
    assert!(s.login("ada", "hijacking-ada").await.is_none());
    assert_eq!(
        s.login("ada", "analytical-engine").await.map(|a| a.id),
        Some(ada.id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_are_rate_limited_per_account() {
    let s = TestServer::start_with(|c| {
        c.post_burst = 3;
        c.posts_per_minute = 1;
    })
    .await;
    let ada = s.signup("ada", "analytical-engine").await;
    let grace = s.signup("grace", "compilers-rule").await;
    for i in 0..3 {
        let (status, _) = s.post_text(&ada, &format!("burst {i}")).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let response = s
        .request(reqwest::Method::POST, "/api/posts", Some(&ada))
        .json(&json!({"text": "one too many"}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], "rate_limited");
    let (status, _) = s.post_text(&grace, "my own bucket").await;
    assert_eq!(status, StatusCode::CREATED, "limits are per account");
    let (_, mine) = s.get(&ada, &format!("/api/users/{}/posts", ada.id)).await;
    assert_eq!(
        mine["posts"].as_array().map(Vec::len),
        Some(3),
        "the refused post was not written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_attempts_are_rate_limited_per_username() {
    let s = TestServer::start_with(|c| {
        c.login_burst = 2;
        c.logins_per_minute = 1;
    })
    .await;
    s.signup("ada", "analytical-engine").await;
    for _ in 0..2 {
        assert!(s.login("ada", "guess-guess").await.is_none());
    }
    let (status, body) = s
        .send_json(
            reqwest::Method::POST,
            "/api/login",
            None,
            json!({"username": "ADA", "password": "analytical-engine"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_stream_delivers_and_retracts_posts() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "analytical-engine").await;
    let grace = s.signup("grace", "compilers-rule").await;
    s.put(
        &grace,
        &format!("/api/users/{}/following/{}", grace.id, ada.id),
    )
    .await;

    let mut events = s.events(&grace, "/api/home/events").await;
    let ready = events.next().await.expect("ready event");
    assert_eq!(ready.event, "ready");
    assert_eq!(
        serde_json::from_str::<Value>(&ready.data).expect("json"),
        json!({"head": null})
    );

    let (_, post) = s.post_text(&ada, "live from the engine room").await;
    let id = post["id"].as_str().expect("id").to_owned();
    let event = events.next().await.expect("post event");
    assert_eq!(event.event, "post");
    assert_eq!(event.id.as_deref(), Some(id.as_str()));
    let data: Value = serde_json::from_str(&event.data).expect("json");
    assert_eq!(data, post);

    s.delete(&ada, &format!("/api/posts/{id}")).await;
    let event = events.next().await.expect("retract event");
    assert_eq!(event.event, "retract");
    assert_eq!(
        serde_json::from_str::<Value>(&event.data).expect("json"),
        json!({"id": id})
    );

    // Logging out ends the stream.
    s.send(reqwest::Method::POST, "/api/logout", Some(&grace))
        .await;
    assert!(
        events.next().await.is_none(),
        "the stream ends with the session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_stream_resumes_after_the_last_event_id() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "analytical-engine").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let (_, post) = s.post_text(&ada, &format!("number {i}")).await;
        ids.push(post["id"].as_str().expect("id").to_owned());
    }
    let response = s
        .request(reqwest::Method::GET, "/api/home/events", Some(&ada))
        .header("last-event-id", ids[0].as_str())
        .send()
        .await
        .expect("events");
    let mut events = harness::Events::new(response);
    assert_eq!(
        events.next().await.map(|e| e.event).as_deref(),
        Some("ready")
    );
    let replayed = [events.next().await, events.next().await].map(|e| e.and_then(|e| e.id));
    assert_eq!(
        replayed,
        [Some(ids[1].clone()), Some(ids[2].clone())],
        "missed posts, oldest first"
    );
    let (status, body) = s.get(&ada, "/api/home/events?since=yesterday").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_query"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_per_account_are_capped() {
    let s = TestServer::start_with(|c| c.live_streams_per_user = 2).await;
    let ada = s.signup("ada", "analytical-engine").await;
    let other_session = s.login("ada", "analytical-engine").await.expect("login");
    let grace = s.signup("grace", "compilers-rule").await;
    let mut first = s.events(&other_session, "/api/home/events").await;
    let _second = s.events(&ada, "/api/home/events").await;
    let (status, body) = s.get(&ada, "/api/home/events").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_streams"))
    );
    let _graces = s.events(&grace, "/api/home/events").await;
    // Ending a stream frees its slot.
    s.send(reqwest::Method::POST, "/api/logout", Some(&other_session))
        .await;
    assert_eq!(
        first.next().await.map(|e| e.event).as_deref(),
        Some("ready")
    );
    assert!(first.next().await.is_none());
    eventually(|| async {
        let response = s
            .request(reqwest::Method::GET, "/api/home/events", Some(&ada))
            .send()
            .await
            .ok()?;
        (response.status() == StatusCode::OK).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics() {
    let s = TestServer::start().await;
    let response = s
        .client
        .get(s.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.expect("json"),
        json!({"status": "ok"})
    );

    let ada = s.signup("ada", "analytical-engine").await;
    let grace = s.signup("grace", "compilers-rule").await;
    s.put(
        &grace,
        &format!("/api/users/{}/following/{}", grace.id, ada.id),
    )
    .await;
    // A follower who reads is active, so the post is pushed to their inbox.
    s.get(&grace, "/api/home").await;
    s.post_text(&ada, "counted").await;
    s.get(&ada, "/api/nope").await;
    let text = eventually(|| async {
        let text = s
            .client
            .get(s.url("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let done = metric(&text, "starling_fanout_jobs_done_total")?;
        let pending = metric(&text, "starling_fanout_jobs_pending")?;
        (done >= 1.0 && pending == 0.0).then_some(text)
    })
    .await;
    assert_eq!(
        metric(&text, "starling_fanout_entries_delivered_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "starling_fanout_jobs_resumed_total"),
        Some(0.0)
    );
    assert!(
        text.contains("# TYPE starling_fanout_jobs_pending gauge\nstarling_fanout_jobs_pending ")
    );
    assert!(text.contains("# TYPE starling_http_request_duration_seconds histogram"));
    assert!(
        text.contains(
            "starling_http_request_duration_seconds_count{method=\"POST\",route=\"/api/posts\"} 1\n"
        ),
        "{text}"
    );
    assert!(text.contains("starling_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/signup\",le=\"+Inf\"} 2\n"));
    assert!(text.contains(
        "starling_http_responses_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1\n"
    ));
    assert!(
        text.contains("route=\"/api/users/{id}/following/{target}\""),
        "routes are labelled by template"
    );
}

/// The value of an unlabelled metric in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_posts_and_sessions_survive_a_restart() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "analytical-engine").await;
    let grace = s.signup("grace", "compilers-rule").await;
    s.put(
        &grace,
        &format!("/api/users/{}/following/{}", grace.id, ada.id),
    )
    .await;
    let (_, post) = s.post_text(&ada, "written before the restart").await;
    let (_, gone) = s.post_text(&ada, "deleted before the restart").await;
    s.delete(
        &ada,
        &format!("/api/posts/{}", gone["id"].as_str().expect("id")),
    )
    .await;
    let stale = s.login("grace", "compilers-rule").await.expect("login");
    s.send(reqwest::Method::POST, "/api/logout", Some(&stale))
        .await;

    let dir = s.stop().await;
    let s = TestServer::start_in(dir, |_| {}).await;
    let (status, me) = s.get(&ada, "/api/me").await;
    assert_eq!(
        (status, me["user"]["username"].as_str()),
        (StatusCode::OK, Some("ada")),
        "tokens survive"
    );
    let (status, _) = s.get(&stale, "/api/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "logging out survives too");
    assert!(
        s.login("grace", "compilers-rule").await.is_some(),
        "passwords survive"
    );
    let (status, body) = s
        .send_json(
            reqwest::Method::POST,
            "/api/signup",
            None,
            json!({"username": "ADA", "password": "another-one"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("username_taken"))
    );
    let (_, home) = s.get(&grace, "/api/home").await;
    assert_eq!(home["posts"].as_array().map(Vec::len), Some(1));
    assert_eq!(home["posts"][0], post);
    let carol = s.signup("carol", "a-long-password").await;
    assert!(carol.id > grace.id, "user ids are not reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_live_streams_and_closes_the_engine() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "analytical-engine").await;
    let mut events = s.events(&ada, "/api/home/events").await;
    assert_eq!(
        events.next().await.map(|e| e.event).as_deref(),
        Some("ready")
    );
    let stopping = tokio::spawn(s.stop());
    assert!(events.next().await.is_none(), "the stream ends on shutdown");
    let dir = tokio::time::timeout(Duration::from_secs(20), stopping)
        .await
        .expect("shutdown does not hang on open streams")
        .expect("join");
    // The engine was closed: the same folder opens again.
    let s = TestServer::start_in(dir, |_| {}).await;
    assert_eq!(s.get(&ada, "/api/me").await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_page_and_its_assets_are_served() {
    let s = TestServer::start().await;
    for (path, content_type, needle) in [
        ("/", "text/html", "<script src=\"/app.js\""),
        ("/app.js", "text/javascript", "/api/home/events"),
        ("/app.css", "text/css", "#status"),
    ] {
        let response = s.client.get(s.url(path)).send().await.expect("get");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        assert!(
            headers["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with(content_type)
        );
        assert!(
            headers["content-security-policy"]
                .to_str()
                .expect("ascii")
                .contains("script-src 'self'")
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let body = response.text().await.expect("text");
        assert!(body.contains(needle), "{path}");
    }
}
