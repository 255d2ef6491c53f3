//! Profiles, avatars, settings, phones, direct messages, the text gateway
//! both ways (inbound commands, outbound device updates over the file and
//! webhook transports), with their refusals.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::StatusCode as AxumStatus;
use parking_lot::Mutex;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use starling_server::DeviceTransport;

use crate::harness::{Account, TestServer, eventually};

const SECRET: &str = "gateway-secret-for-tests";

async fn follow(s: &TestServer, who: &Account, whom: &Account) {
    let (status, body) = s
        .put(who, &format!("/api/users/{}/following/{}", who.id, whom.id))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn send(s: &TestServer, from: &Account, to: &Account, text: &str) -> (StatusCode, Value) {
    let path = format!("/api/messages/{}", to.id);
    s.send_json(Method::POST, &path, Some(from), json!({ "text": text }))
        .await
}

async fn put_json(s: &TestServer, who: &Account, path: &str, body: Value) -> (StatusCode, Value) {
    s.send_json(Method::PUT, path, Some(who), body).await
}

async fn inbound(
    s: &TestServer,
    secret: Option<&str>,
    from: &str,
    body: &str,
) -> (StatusCode, Value) {
    let mut request = s
        .client
        .post(s.url("/sms/inbound"))
        .json(&json!({"from": from, "body": body}));
    if let Some(secret) = secret {
        request = request.bearer_auth(secret);
    }
    let response = request.send().await.expect("send");
    let status = response.status();
    (status, response.json().await.expect("json"))
}

/// Every text the file transport wrote to `file`: (to, text).
fn texts_in(file: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json line");
            let field = |k: &str| v[k].as_str().expect("a string").to_owned();
            (field("to"), field("text"))
        })
        .collect()
}

/// Every code the file transport texted to `phone`, in order (a code
/// leads its text).
fn codes_to(file: &Path, phone: &str) -> Vec<String> {
    texts_in(file)
        .into_iter()
        .filter(|(to, text)| to == phone && text.contains("Starling code"))
        .map(|(_, text)| text[..6].to_owned())
        .collect()
}

/// The code the file transport texted to `phone` most recently, once it
/// is there.
async fn code_texted_to(file: &Path, phone: &str) -> String {
    eventually(|| async { codes_to(file, phone).pop() }).await
}

/// Links `phone` to `who` as a person does: asks for it (202, the number
/// pending), reads the code texted to it, and confirms it through the API.
async fn link_phone(s: &TestServer, file: &Path, who: &Account, phone: &str) {
    let before = codes_to(file, phone).len();
    let (status, settings) = put_json(s, who, "/api/me/phone", json!({ "phone": phone })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{settings}");
    assert_eq!(settings["pending_phone"]["phone"], phone);
    // The code of this request: the number may have had others before.
    let code = eventually(|| async { codes_to(file, phone).get(before).cloned() }).await;
    let (status, settings) = s
        .send_json(
            Method::POST,
            "/api/me/phone/confirm",
            Some(who),
            json!({ "code": code }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(settings["phone"], phone);
    assert_eq!(settings["pending_phone"], Value::Null);
}

fn png(len: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.resize(len, 7);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_avatars_settings_and_phones() {
    let s = TestServer::start_with(|c| c.device_poll_ms = 20).await;
    let file = s.data_dir().join("device-outbox.jsonl");
    let ada = s.signup("ada", "password-1").await;
    let bob = s.signup("bob", "password-2").await;

    let (status, p) = put_json(
        &s,
        &ada,
        "/api/me/profile",
        json!({"display_name": "Ada L.", "bio": "engines"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{p}");
    let (_, p) = s.get(&bob, &format!("/api/users/{}/profile", ada.id)).await;
    assert_eq!(
        (
            p["display_name"].clone(),
            p["bio"].clone(),
            p["has_avatar"].clone()
        ),
        (json!("Ada L."), json!("engines"), json!(false))
    );
    let (status, body) = put_json(
        &s,
        &ada,
        "/api/me/profile",
        json!({"display_name": "x".repeat(51), "bio": ""}),
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("invalid_profile"))
    );

    let picture = png(1000);
    let upload = |bytes: Vec<u8>| {
        s.request(Method::PUT, "/api/me/avatar", Some(&ada))
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
    };
    let response = upload(picture.clone()).await.expect("upload");
    assert_eq!(response.status(), StatusCode::OK);
    let response = s
        .request(
            Method::GET,
            &format!("/api/users/{}/avatar", ada.id),
            Some(&bob),
        )
        .send()
        .await
        .expect("download");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.bytes().await.expect("bytes").to_vec(), picture);
    let response = upload(b"GIF87a-but-not-really".to_vec())
        .await
        .expect("upload");
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "GIF is accepted by its bytes"
    );
    let response = upload(b"<svg/>".to_vec()).await.expect("upload");
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response = upload(png(256 * 1024 + 1)).await.expect("upload");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let response = upload(png(300 * 1024)).await.expect("upload");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (_, changed) = s.delete(&ada, "/api/me/avatar").await;
    assert_eq!(changed["changed"], true);
    let (status, _) = s.get(&bob, &format!("/api/users/{}/avatar", ada.id)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    link_phone(&s, &file, &ada, "+15555550100").await;
    let (status, settings) =
        put_json(&s, &ada, "/api/me/phone", json!({"phone": "+15555550100"})).await;
    assert_eq!(
        (status, settings["phone"].clone()),
        (StatusCode::OK, json!("+15555550100")),
        "linking one's own number again"
    );
    for bad in ["555-0100", "+0123456789", "+1", "+1234567890123456", ""] {
        let (status, body) = put_json(&s, &bob, "/api/me/phone", json!({"phone": bad})).await;
        assert_eq!(
            (status, body["code"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!("invalid_phone")),
            "{bad}"
        );
    }
    let (_, settings) = put_json(
        &s,
        &ada,
        "/api/me/settings",
        json!({"dms_open": true, "device_paused": true}),
    )
    .await;
    assert_eq!(
        settings,
        json!({
            "dms_open": true,
            "device_paused": true,
            "phone": "+15555550100",
            "pending_phone": null,
            "quiet_hours": null
        })
    );
    let quiet = json!({"start_hour": 22, "end_hour": 7, "utc_offset_minutes": -300});
    let (status, settings) = put_json(&s, &ada, "/api/me/quiet-hours", quiet.clone()).await;
    assert_eq!(
        (status, settings["quiet_hours"].clone()),
        (StatusCode::OK, quiet)
    );
    let (status, body) = put_json(
        &s,
        &ada,
        "/api/me/quiet-hours",
        json!({"start_hour": 24, "end_hour": 7, "utc_offset_minutes": 0}),
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("invalid_profile"))
    );
    let (_, settings) = s.delete(&ada, "/api/me/quiet-hours").await;
    assert_eq!(settings["quiet_hours"], Value::Null);
    let (_, changed) = s.delete(&ada, "/api/me/phone").await;
    assert_eq!(changed["changed"], true);
    let (_, settings) = s.get(&ada, "/api/me/settings").await;
    assert_eq!(settings["phone"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_messages_are_allowed_refused_listed_and_rate_limited() {
    let s = TestServer::start_with(|c| c.dm_burst = 6).await;
    let ada = s.signup("ada", "password-1").await;
    let bob = s.signup("bob", "password-2").await;
    let eve = s.signup("eve", "password-3").await;
    let (status, body) = send(&s, &ada, &bob, "hi").await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::FORBIDDEN, json!("not_allowed")),
        "bob does not follow ada"
    );
    follow(&s, &bob, &ada).await;
    let (status, m) = send(&s, &ada, &bob, "hi bob").await;
    assert_eq!(status, StatusCode::CREATED, "{m}");
    assert_eq!(
        (m["from"].clone(), m["to"].clone()),
        (json!(ada.id), json!(bob.id))
    );
    let (status, _) = send(&s, &ada, &ada, "me").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = send(&s, &ada, &bob, "").await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("invalid_text"))
    );

    let (_, list) = s.get(&bob, "/api/conversations").await;
    assert_eq!(list["conversations"][0]["with"]["username"], "ada");
    assert_eq!(list["conversations"][0]["unread"], 1);
    let (_, msgs) = s.get(&bob, &format!("/api/messages/{}", ada.id)).await;
    assert_eq!(msgs["messages"][0]["text"], "hi bob");
    // A third party sees nothing of it.
    let (_, theirs) = s.get(&eve, &format!("/api/messages/{}", ada.id)).await;
    assert_eq!(theirs["messages"], json!([]));
    let (_, cleared) = s
        .send(
            Method::POST,
            &format!("/api/messages/{}/read", ada.id),
            Some(&bob),
        )
        .await;
    assert_eq!(cleared["cleared"], 1);
    let (_, list) = s.get(&bob, "/api/conversations").await;
    assert_eq!(list["conversations"][0]["unread"], 0);

    // Open DMs let anyone write; a block stops it.
    put_json(&s, &eve, "/api/me/settings", json!({"dms_open": true})).await;
    let (status, _) = send(&s, &ada, &eve, "hello eve").await;
    assert_eq!(status, StatusCode::CREATED);
    s.put(&eve, &format!("/api/blocks/{}", ada.id)).await;
    let (status, body) = send(&s, &ada, &eve, "again").await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::FORBIDDEN, json!("blocked"))
    );
    // The burst of 6 is used up (3 accepted; refused attempts count too).
    let (status, body) = send(&s, &ada, &bob, "one more").await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::TOO_MANY_REQUESTS, json!("rate_limited"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_in_run_commands_and_device_updates_go_out_through_the_file() {
    let out = tempfile::tempdir().expect("tempdir");
    let file = out.path().join("texts.jsonl");
    let file_for_config = file.clone();
    let s = TestServer::start_with(move |c| {
        c.sms_secret = Some(SECRET.into());
        c.device_outbox_file = Some(file_for_config);
        c.device_poll_ms = 20;
        // More texts from one number than the default burst allows.
        c.sms_burst = 100;
    })
    .await;
    let ada = s.signup("ada", "password-1").await;
    let bob = s.signup("bob", "password-2").await;
    let (status, _) = put_json(&s, &bob, "/api/me/phone", json!({"phone": "+15555550111"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // Until its code comes back the number runs nothing.
    let (_, reply) = inbound(&s, Some(SECRET), "+15555550111", "follow ada").await;
    assert_eq!(reply["reply"], starling::sms::NOT_LINKED);
    // The code reaches the number through the outbox; texted back, it
    // links the number.
    let code = code_texted_to(&file, "+15555550111").await;
    let (status, reply) = inbound(&s, Some(SECRET), "+15555550111", &code).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        reply["reply"],
        "This phone is now linked to bob. Text HELP for commands."
    );
    let (_, usage) = s.get(&bob, "/api/me/device-usage").await;
    assert_eq!(usage["sent"], 1, "the code counts");

    let (status, _) = inbound(&s, None, "+15555550111", "HELP").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = inbound(
        &s,
        Some("wrong-secret-wrong-secret"),
        "+15555550111",
        "HELP",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, reply) = inbound(&s, Some(SECRET), "+15555550111", "follow ada").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        reply["reply"],
        "You follow ada now; their updates come to this phone."
    );
    let (_, edge) = s
        .get(&bob, &format!("/api/users/{}/following/{}", bob.id, ada.id))
        .await;
    assert_eq!(edge["following"], true);
    let (_, reply) = inbound(&s, Some(SECRET), "+15555550111", "ON ada").await;
    assert!(
        reply["reply"].as_str().is_some_and(|r| r.contains("ada")),
        "{reply}"
    );
    let (_, device) = s
        .get(
            &bob,
            &format!("/api/users/{}/following/{}/device", bob.id, ada.id),
        )
        .await;
    assert_eq!(device["device"], true);
    let (_, reply) = inbound(&s, Some(SECRET), "+15555550111", "FOLLOW").await;
    assert!(
        reply["reply"]
            .as_str()
            .is_some_and(|r| r.to_lowercase().contains("help") || r.contains("FOLLOW")),
        "malformed gets help: {reply}"
    );
    let (_, reply) = inbound(&s, Some(SECRET), "+15555550999", "hello").await;
    assert!(
        reply["reply"].as_str().is_some_and(|r| !r.is_empty()),
        "{reply}"
    );
    let (status, _) = inbound(&s, Some(SECRET), "not a phone", "hello").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a bad number is a reply, not an error page"
    );
    let (_, reply) = inbound(&s, Some(SECRET), "+15555550111", "posted from my phone").await;
    assert!(reply["reply"].as_str().is_some());
    let (_, theirs) = s.get(&ada, &format!("/api/users/{}/posts", bob.id)).await;
    assert_eq!(theirs["posts"][0]["text"], "posted from my phone");

    // Only the follower switches their own device updates.
    let (status, _) = s
        .put(
            &ada,
            &format!("/api/users/{}/following/{}/device", bob.id, ada.id),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    s.post_text(&ada, "running late, start without me").await;
    let lines = eventually(|| async {
        let lines = texts_in(&file);
        (lines.len() == 2).then_some(lines)
    })
    .await;
    assert_eq!(
        lines[1],
        (
            "+15555550111".to_owned(),
            "ada: running late, start without me".to_owned()
        )
    );
    let (_, usage) = s.get(&bob, "/api/me/device-usage").await;
    assert_eq!(
        (usage["sent"].clone(), usage["over_cap"].clone()),
        (json!(2), json!(0))
    );
    // The line is written before the text is acknowledged and counted.
    eventually(|| async {
        let text = s
            .client
            .get(s.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        text.contains("starling_device_updates_sent_total 2")
            .then_some(())
    })
    .await;

    // STOP pauses: the next post is not queued.
    let (_, reply) = inbound(&s, Some(SECRET), "+15555550111", "STOP").await;
    assert!(reply["reply"].as_str().is_some());
    s.post_text(&ada, "nobody should get this").await;
    // Texts are planned in the fan-out batch that writes bob's inbox: once
    // the post is in bob's timeline, a text would have been queued.
    eventually(|| async {
        let (_, home) = s.get(&bob, "/api/home").await;
        (home["posts"][0]["text"] == "nobody should get this").then_some(())
    })
    .await;
    let (_, usage) = s.get(&bob, "/api/me/device-usage").await;
    assert_eq!(usage["sent"], 2, "paused: nothing more queued");
    assert_eq!(texts_in(&file).len(), 2, "paused");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_is_linked_only_by_its_code_and_whoever_confirms_takes_it() {
    let s = TestServer::start_with(|c| {
        c.device_poll_ms = 20;
        c.sms_secret = Some(SECRET.into());
    })
    .await;
    let file = s.data_dir().join("device-outbox.jsonl");
    let ada = s.signup("ada", "password-1").await;
    let eve = s.signup("eve", "password-2").await;
    let bob = s.signup("bob", "password-3").await;
    let confirm = |who: &Account, code: Value| {
        let who = who.clone();
        let s = &s;
        async move {
            s.send_json(
                Method::POST,
                "/api/me/phone/confirm",
                Some(&who),
                json!({ "code": code }),
            )
            .await
        }
    };
    // Nothing to confirm yet.
    let (status, body) = confirm(&ada, json!("123456")).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("no_pending_phone"))
    );
    // Eve asks for Ada's number: it is not hers, and it blocks nobody.
    let (status, _) = put_json(&s, &eve, "/api/me/phone", json!({"phone": "+15555550100"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, settings) = s.get(&eve, "/api/me/settings").await;
    assert_eq!(settings["phone"], Value::Null);
    assert_eq!(settings["pending_phone"]["attempts_left"], 5);
    let eves_code = code_texted_to(&file, "+15555550100").await;
    // Bad and wrong codes.
    for bad in [json!("12345"), json!("abcdef"), json!("")] {
        let (status, body) = confirm(&eve, bad.clone()).await;
        assert_eq!(
            (status, body["code"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!("invalid_code")),
            "{bad}"
        );
    }
    let (status, body) = confirm(&eve, json!(42)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let wrong = format!(
        "{:06}",
        (eves_code.parse::<u32>().expect("digits") + 1) % 1_000_000
    );
    let (status, body) = confirm(&eve, json!(wrong)).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("wrong_code"))
    );
    // Ada asks for her own number, gets her own code, and confirms first.
    link_phone(&s, &file, &ada, "+15555550100").await;
    let (_, settings) = s.get(&eve, "/api/me/settings").await;
    assert_eq!(settings["pending_phone"], Value::Null, "eve's claim went");
    let (status, body) = confirm(&eve, json!(eves_code)).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("no_pending_phone"))
    );
    // The number changes hands by text: Bob asks, and its owner texts
    // Bob's code back. Ada no longer has it; nobody has it twice.
    let (status, _) = put_json(&s, &bob, "/api/me/phone", json!({"phone": "+15555550100"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // The number's third code: Eve's, Ada's, then Bob's.
    let bobs_code = eventually(|| async { codes_to(&file, "+15555550100").get(2).cloned() }).await;
    let (_, reply) = inbound(&s, Some(SECRET), "+15555550100", &bobs_code).await;
    assert_eq!(
        reply["reply"],
        "This phone is now linked to bob. Text HELP for commands."
    );
    let (_, settings) = s.get(&ada, "/api/me/settings").await;
    assert_eq!(settings["phone"], Value::Null);
    let (_, settings) = s.get(&bob, "/api/me/settings").await;
    assert_eq!(settings["phone"], "+15555550100");
    // A message to bob is texted to his phone.
    follow(&s, &bob, &ada).await;
    let (status, _) = send(&s, &ada, &bob, "see you at 8").await;
    assert_eq!(status, StatusCode::CREATED);
    eventually(|| async {
        texts_in(&file)
            .contains(&("+15555550100".to_owned(), "D ada: see you at 8".to_owned()))
            .then_some(())
    })
    .await;
    s.stop().await;
}

/// A code is refused once its time is up (`code_expired`, and the link
/// is dropped), and each code texted counts against the day's cap, past
/// which no code is sent (`device_cap_reached`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_code_is_refused_and_codes_count_against_the_daily_cap() {
    let s = TestServer::start_with(|c| {
        c.device_poll_ms = 20;
        c.phone_code_ttl_ms = 1_000;
        c.device_daily_cap = 2;
    })
    .await;
    let file = s.data_dir().join("device-outbox.jsonl");
    let ada = s.signup("ada", "password-1").await;
    let (status, _) = put_json(&s, &ada, "/api/me/phone", json!({"phone": "+15555550140"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let code = code_texted_to(&file, "+15555550140").await;
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let confirm = || {
        s.send_json(
            Method::POST,
            "/api/me/phone/confirm",
            Some(&ada),
            json!({ "code": code }),
        )
    };
    let (status, body) = confirm().await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("code_expired"))
    );
    let (status, body) = confirm().await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("no_pending_phone")),
        "an expired link is dropped"
    );
    let (_, settings) = s.get(&ada, "/api/me/settings").await;
    assert_eq!(settings["phone"], Value::Null);
    // The second code of the day is the last one.
    let (status, _) = put_json(&s, &ada, "/api/me/phone", json!({"phone": "+15555550140"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) =
        put_json(&s, &ada, "/api/me/phone", json!({"phone": "+15555550141"})).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::CONFLICT, json!("device_cap_reached"))
    );
    let (_, settings) = s.get(&ada, "/api/me/settings").await;
    assert_eq!(settings["pending_phone"]["phone"], "+15555550140");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_secret_comes_before_the_body_and_floods_are_refused() {
    let s = TestServer::start_with(|c| {
        c.sms_secret = Some(SECRET.into());
        c.sms_burst = 3;
        c.sms_per_minute = 1;
        c.follow_burst = 1;
        c.follows_per_minute = 1;
        c.device_poll_ms = 20;
    })
    .await;
    let file = s.data_dir().join("device-outbox.jsonl");
    // A malformed body without the secret: 401, not 400.
    let response = s
        .client
        .post(s.url("/sms/inbound"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // With the secret the same body is a 400.
    let response = s
        .client
        .post(s.url("/sms/inbound"))
        .bearer_auth(SECRET)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // Three texts from one number, then 429 with Retry-After; another
    // number is not held up.
    for _ in 0..3 {
        let (status, _) = inbound(&s, Some(SECRET), "+15555550177", "hello").await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, body) = inbound(&s, Some(SECRET), "+15555550177", "hello").await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::TOO_MANY_REQUESTS, json!("rate_limited"))
    );
    let (status, _) = inbound(&s, Some(SECRET), "+15555550178", "hello").await;
    assert_eq!(status, StatusCode::OK);
    // Follows share one limit through the API and by text: a burst of one.
    let ada = s.signup("ada", "password-1").await;
    s.signup("bob", "password-2").await;
    let carol = s.signup("carol", "password-3").await;
    link_phone(&s, &file, &ada, "+15555550179").await;
    let (_, reply) = inbound(&s, Some(SECRET), "+15555550179", "FOLLOW bob").await;
    assert_eq!(
        reply["reply"],
        "You follow bob now; their updates come to this phone."
    );
    let (status, body) = s
        .put(
            &ada,
            &format!("/api/users/{}/following/{}", ada.id, carol.id),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::TOO_MANY_REQUESTS, json!("rate_limited"))
    );
    let (_, reply) = inbound(&s, Some(SECRET), "+15555550179", "FOLLOW carol").await;
    assert!(
        reply["reply"]
            .as_str()
            .is_some_and(|r| r.starts_with("Slow down: try again in")),
        "{reply}"
    );
    let (_, following) = s
        .get(&ada, &format!("/api/users/{}/following", ada.id))
        .await;
    assert_eq!(following["users"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_route_is_off_without_a_secret() {
    let s = TestServer::start().await;
    let (status, body) = inbound(&s, Some(SECRET), "+15555550111", "HELP").await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("gateway_disabled"))
    );
}

/// A stand-in SMS gateway: refuses the first `fail` requests with 500,
/// then accepts and records.
async fn gateway(fail: usize) -> (String, Arc<AtomicUsize>, Arc<Mutex<Vec<Value>>>) {
    let attempts = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(Mutex::new(Vec::new()));
    let (a, r) = (Arc::clone(&attempts), Arc::clone(&received));
    let app = axum::Router::new().route(
        "/sms",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let (a, r) = (Arc::clone(&a), Arc::clone(&r));
            async move {
                if a.fetch_add(1, Ordering::SeqCst) < fail {
                    AxumStatus::INTERNAL_SERVER_ERROR
                } else {
                    r.lock().push(body);
                    AxumStatus::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/sms"), attempts, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_transport_retries_until_the_gateway_takes_it_then_never_resends() {
    let (url, attempts, received) = gateway(2).await;
    let s = TestServer::start_with(move |c| {
        c.device_transport = DeviceTransport::Webhook;
        c.device_webhook_url = Some(url);
        c.device_lease_ms = 200;
        c.device_poll_ms = 20;
    })
    .await;
    let ada = s.signup("ada", "password-1").await;
    let bob = s.signup("bob", "password-2").await;
    put_json(&s, &bob, "/api/me/phone", json!({"phone": "+15555550122"})).await;
    // The code goes out first, after the gateway's two refusals.
    let code = eventually(|| async {
        let got = received.lock().clone();
        got.first()
            .and_then(|t| t["text"].as_str().map(|t| t[..6].to_owned()))
    })
    .await;
    let (status, _) = s
        .send_json(
            Method::POST,
            "/api/me/phone/confirm",
            Some(&bob),
            json!({ "code": code }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    follow(&s, &bob, &ada).await;
    let (status, _) = s
        .put(
            &bob,
            &format!("/api/users/{}/following/{}/device", bob.id, ada.id),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    s.post_text(&ada, "hello phones").await;
    eventually(|| async { (received.lock().len() >= 2).then_some(()) }).await;
    assert!(
        attempts.load(Ordering::SeqCst) >= 3,
        "two refusals, then the send that worked"
    );
    // Acknowledged: not offered again, however many leases pass.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let got = received.lock().clone();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1]["to"], "+15555550122");
    assert_eq!(got[1]["text"], "ada: hello phones");
    s.stop().await;
}

/// Sends raw bytes to the gateway, with or without the secret.
async fn inbound_raw(
    s: &TestServer,
    secret: Option<&str>,
    body: &'static str,
) -> (StatusCode, Value) {
    let mut request = s
        .client
        .post(s.url("/sms/inbound"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(secret) = secret {
        request = request.bearer_auth(secret);
    }
    let response = request.send().await.expect("send");
    let status = response.status();
    (status, response.json().await.expect("json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_secret_is_checked_before_the_body_is_read() {
    let s = TestServer::start_with(|c| c.sms_secret = Some(SECRET.into())).await;
    let malformed = "{\"from\": \"+1555";
    let unknown_field = "{\"from\": \"+15555550111\", \"body\": \"hi\", \"x\": 1}";
    // Without the secret, or with a wrong one, nothing of the body matters:
    // 401 however broken it is.
    for secret in [None, Some("wrong-secret-wrong-secret")] {
        for body in [malformed, unknown_field, "", "[]"] {
            let (status, reply) = inbound_raw(&s, secret, body).await;
            assert_eq!(
                (status, reply["code"].clone()),
                (StatusCode::UNAUTHORIZED, json!("invalid_token")),
                "{secret:?} {body:?}"
            );
        }
    }
    // With it, the body is read: a malformed one is a bad request.
    for body in [malformed, unknown_field, ""] {
        let (status, _) = inbound_raw(&s, Some(SECRET), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
    }
    let (status, reply) = inbound_raw(
        &s,
        Some(SECRET),
        "{\"from\": \"+15555550111\", \"body\": \"HELP\"}",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avatars_are_cached_by_their_etag() {
    let s = TestServer::start().await;
    let ada = s.signup("ada", "password-1").await;
    let bob = s.signup("bob", "password-2").await;
    let path = format!("/api/users/{}/avatar", ada.id);
    let fetch = |tag: Option<String>| {
        let mut request = s.request(Method::GET, &path, Some(&bob));
        if let Some(tag) = tag {
            request = request.header("if-none-match", tag);
        }
        request.send()
    };
    let upload = |bytes: Vec<u8>| {
        s.request(Method::PUT, "/api/me/avatar", Some(&ada))
            .body(bytes)
            .send()
    };
    assert_eq!(
        upload(png(600)).await.expect("upload").status(),
        StatusCode::OK
    );

    let first = fetch(None).await.expect("download");
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["content-type"], "image/png");
    assert_eq!(first.headers()["cache-control"], "private, no-cache");
    let etag = first.headers()["etag"].to_str().expect("ascii").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    // The same picture: 304 and no body, whichever way the tag is sent.
    for tag in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".to_owned(),
    ] {
        let again = fetch(Some(tag.clone())).await.expect("revalidate");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{tag}");
        assert_eq!(again.headers()["etag"], etag.as_str());
        assert_eq!(again.headers()["cache-control"], "private, no-cache");
        assert!(again.bytes().await.expect("body").is_empty());
    }
    let stale = fetch(Some("\"not-it\"".to_owned())).await.expect("get");
    assert_eq!(stale.status(), StatusCode::OK);

    // A new picture: the old tag no longer matches.
    assert_eq!(
        upload(png(700)).await.expect("upload").status(),
        StatusCode::OK
    );
    let changed = fetch(Some(etag.clone())).await.expect("revalidate");
    assert_eq!(changed.status(), StatusCode::OK);
    assert_ne!(changed.headers()["etag"], etag.as_str());
    assert_eq!(changed.bytes().await.expect("body").len(), 700);

    // None at all: 404 whatever the tag, and never stored by a cache.
    let (_, removed) = s.delete(&ada, "/api/me/avatar").await;
    assert_eq!(removed["changed"], true);
    let gone = fetch(Some(etag)).await.expect("get");
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert_eq!(gone.headers()["cache-control"], "no-store");
    let body: Value = gone.json().await.expect("json");
    assert_eq!(body["code"], "no_avatar");
    // Without a token, nothing.
    let anonymous = s.send(Method::GET, &path, None).await;
    assert_eq!(anonymous.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_updates_list_whom_you_follow_with_their_switch() {
    let s = TestServer::start().await;
    let bob = s.signup("bob", "password-2").await;
    let ada = s.signup("ada", "password-1").await;
    let cy = s.signup("cy", "password-3").await;
    let dee = s.signup("dee", "password-4").await;
    let (_, empty) = s.get(&bob, "/api/me/device-updates").await;
    assert_eq!(empty, json!({"following": [], "next": null}));

    for whom in [&ada, &cy, &dee] {
        follow(&s, &bob, whom).await;
    }
    let switch = |whom: &Account| format!("/api/users/{}/following/{}/device", bob.id, whom.id);
    let (status, on) = s.put(&bob, &switch(&cy)).await;
    assert_eq!((status, on), (StatusCode::OK, json!({"device": true})));
    // ada follows bob: bob's list is whom bob follows, not ada's.
    follow(&s, &ada, &bob).await;
    s.put(
        &ada,
        &format!("/api/users/{}/following/{}/device", ada.id, bob.id),
    )
    .await;

    let pages = s
        .all_pages(&bob, "/api/me/device-updates", "following", 2)
        .await;
    assert_eq!(pages.len(), 2, "{pages:?}");
    let seen: Vec<(String, bool)> = pages
        .concat()
        .iter()
        .map(|f| {
            (
                f["user"]["username"].as_str().expect("name").to_owned(),
                f["device"].as_bool().expect("bool"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("ada".to_owned(), false),
            ("cy".to_owned(), true),
            ("dee".to_owned(), false),
        ]
    );
    let (_, ada_list) = s.get(&ada, "/api/me/device-updates").await;
    assert_eq!(ada_list["following"][0]["user"]["id"], bob.id);
    assert_eq!(ada_list["following"][0]["device"], true);

    // An unfollow takes the account, and its switch, off the list.
    s.delete(&bob, &format!("/api/users/{}/following/{}", bob.id, cy.id))
        .await;
    let (_, after) = s.get(&bob, "/api/me/device-updates").await;
    let names: Vec<&str> = after["following"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|f| f["user"]["username"].as_str())
        .collect();
    assert_eq!(names, vec!["ada", "dee"]);
    follow(&s, &bob, &cy).await;
    let (_, off) = s.get(&bob, &switch(&cy)).await;
    assert_eq!(off, json!({"device": false}), "following again starts off");

    for (query, code) in [
        ("?limit=0", "bad_limit"),
        ("?limit=201", "bad_limit"),
        ("?cursor=nonsense", "malformed_cursor"),
        ("?limit=ten", "bad_query"),
    ] {
        let (status, body) = s.get(&bob, &format!("/api/me/device-updates{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["code"], code, "{query}");
    }
    let (status, body) = s.send(Method::GET, "/api/me/device-updates", None).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("missing_token"))
    );
    let (status, body) = s.put(&bob, "/api/me/device-updates").await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::METHOD_NOT_ALLOWED, json!("method_not_allowed"))
    );
}
