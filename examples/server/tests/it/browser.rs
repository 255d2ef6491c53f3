//! The web page in headless Chromium, driven over the DevTools protocol:
//! sign up, follow by username, see a followee's post arrive live, like and
//! unlike it (each post with its author's display name), post, delete,
//! message, link a phone with its code, protect the account and approve a
//! follow request, request to follow a protected account, export the
//! account's data, edit the profile, reply, repost (and see a repost arrive
//! live), read mentions, open threads, upload a picture and see authors'
//! pictures (or their initials), run a group and post to it, switch texts
//! on and off per followed account, read and answer a conversation (a
//! message arriving live), follow a hashtag link to its page and see it
//! trend, mute, unmute and block, log out. Skipped, with the
//! reason printed, where Chromium is not installed (Debian package
//! `chromium`; `STARLING_CHROMIUM` names another binary).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::harness::{Account, TestServer};

/// The Chromium binary: `STARLING_CHROMIUM`, or `chromium` on the `PATH`.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("STARLING_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
}
const PATIENCE: Duration = Duration::from_secs(30);
/// How long Chromium may take to start and announce its DevTools address.
const LAUNCH_PATIENCE: Duration = Duration::from_secs(120);

struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    page: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Browser {
    async fn launch(binary: &Path) -> Browser {
        let profile = tempfile::tempdir().expect("profile folder");
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                "--disable-extensions",
                "--disable-default-apps",
                "--disable-domain-reliability",
                "--no-default-browser-check",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=900,1100",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium starts");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        // Starting Chromium is the one slow step on a busy two-core machine
        // (it once took over 30 s while every other test ran beside it).
        let browser_url = tokio::time::timeout(LAUNCH_PATIENCE, async {
            while let Some(line) = lines.next_line().await.expect("chromium stderr") {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return url.trim().to_owned();
                }
            }
            panic!("chromium exited without a DevTools address");
        })
        .await
        .expect("chromium announces its DevTools address");
        // Keep draining stderr so that Chromium never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let http = browser_url.replacen("ws://", "http://", 1);
        let origin = &http[..http.find("/devtools/").expect("DevTools path")];
        let targets: Value = reqwest::get(format!("{origin}/json/list"))
            .await
            .expect("target list")
            .json()
            .await
            .expect("json");
        let page_url = targets
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_owned();
        let (page, _) = tokio_tungstenite::connect_async(page_url.as_str())
            .await
            .expect("DevTools connection");
        Browser {
            child,
            _profile: profile,
            page,
            next_id: 0,
        }
    }

    /// Sends one DevTools command and returns its result.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let command = json!({"id": id, "method": method, "params": params}).to_string();
        self.page.send(Message::text(command)).await.expect("send");
        loop {
            let message = tokio::time::timeout(PATIENCE, self.page.next())
                .await
                .expect("DevTools answers")
                .expect("connection open")
                .expect("message");
            let Message::Text(text) = message else {
                continue;
            };
            let reply: Value = serde_json::from_str(text.as_str()).expect("json");
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// Evaluates JavaScript in the page and returns its value.
    async fn eval(&mut self, expression: &str) -> Value {
        let params = json!({"expression": expression, "awaitPromise": true, "returnByValue": true});
        let result = self.call("Runtime.evaluate", params).await;
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    /// Waits until `condition` (JavaScript) is true in the page.
    async fn wait_for(&mut self, condition: &str) {
        let deadline = Instant::now() + PATIENCE;
        while self.eval(condition).await != json!(true) {
            assert!(
                Instant::now() < deadline,
                "gave up waiting for: {condition}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn set_value(&mut self, id: &str, value: &str) {
        let expression = format!(
            "document.getElementById({}).value = {}; true",
            json!(id),
            json!(value)
        );
        self.eval(&expression).await;
    }

    async fn click(&mut self, selector: &str) {
        let expression = format!("document.querySelector({}).click(); true", json!(selector));
        self.eval(&expression).await;
    }

    /// Saves a PNG of the page as `name` in `STARLING_SCREENSHOT_DIR`, when set.
    async fn screenshot(&mut self, name: &str) {
        use base64::Engine as _;
        let Some(dir) = std::env::var_os("STARLING_SCREENSHOT_DIR") else {
            return;
        };
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("image data"))
            .expect("base64");
        std::fs::write(PathBuf::from(dir).join(name), png).expect("screenshot written");
    }

    async fn close(mut self) {
        let _ = self.child.kill().await;
    }
}

/// JavaScript: the element `selector` finds holds exactly `text`.
fn text_is(selector: &str, text: &str) -> String {
    format!(
        "document.querySelector({})?.textContent === {}",
        json!(selector),
        json!(text)
    )
}

/// JavaScript: the status line says exactly `text`.
fn status_is(text: &str) -> String {
    text_is("#status", text)
}

fn timeline_has(text: &str) -> String {
    format!(
        "document.getElementById('timeline').textContent.includes({})",
        json!(text)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_page_signs_up_follows_posts_and_updates_live() {
    let Some(binary) = chromium() else {
        // The test script installs Chromium and sets this: there, a missing
        // browser is a failure, not a reason to skip.
        assert!(
            std::env::var_os("STARLING_REQUIRE_BROWSER").is_none(),
            "STARLING_REQUIRE_BROWSER is set but no `chromium` is on the PATH"
        );
        eprintln!(
            "skipping the browser test: no `chromium` on the PATH (Debian package `chromium`)"
        );
        return;
    };
    let s = TestServer::start_with(|c| c.device_poll_ms = 20).await;
    let ada = s.signup("ada", "analytical-engine").await;
    let (status, _) = s
        .send_json(
            reqwest::Method::PUT,
            "/api/me/profile",
            Some(&ada),
            json!({"display_name": "Ada Lovelace", "bio": "Notes on the engine."}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    s.post_text(&ada, "posted before anyone followed").await;

    let mut b = Browser::launch(&binary).await;
    b.call("Page.navigate", json!({"url": s.url("/")})).await;
    b.wait_for("document.readyState === 'complete' && !!document.getElementById('auth-form')")
        .await;

    b.set_value("username", "grace").await;
    b.set_value("password", "compilers-rule").await;
    b.click("#signup").await;
    b.wait_for("!document.getElementById('app').hidden").await;
    b.wait_for("document.getElementById('live').textContent === '(live)'")
        .await;

    // Follow by username: ada's earlier post is backfilled into the timeline.
    b.set_value("follow-name", "ada").await;
    b.click("#follow").await;
    b.wait_for("document.getElementById('status').textContent === 'Following @ada'")
        .await;
    b.wait_for(&timeline_has("posted before anyone followed"))
        .await;

    // A post made now reaches the page through the live stream alone.
    let (_, post) = s.post_text(&ada, "hello, live reader").await;
    let id = post["id"].as_str().expect("id").to_owned();
    b.wait_for(&format!(
        "document.querySelector('#timeline li[data-id=\"{id}\"]')?.classList.contains('fresh') === true"
    ))
    .await;
    b.wait_for(&timeline_has("hello, live reader")).await;
    // Beside the username, the author's display name from the profile.
    b.wait_for(&text_is(
        &format!("#timeline li[data-id=\"{id}\"] .display-name"),
        "Ada Lovelace",
    ))
    .await;

    // Liking from the page: the button shows the count, the like is stored,
    // and a second click takes it back.
    let like = format!("#timeline li[data-id=\"{id}\"] button.like");
    let like_shows = |pressed: &str, text: &str| {
        format!(
            "document.querySelector({0})?.getAttribute('aria-pressed') === {1} && document.querySelector({0}).textContent === {2}",
            json!(like),
            json!(pressed),
            json!(text)
        )
    };
    b.wait_for(&like_shows("false", "♡ 0")).await;
    let (status, _) = s
        .send(
            reqwest::Method::PUT,
            &format!("/api/posts/{id}/like"),
            Some(&ada),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    b.click(&like).await;
    b.wait_for(&like_shows("true", "♥ 2")).await;
    let (_, likers) = s.get(&ada, &format!("/api/posts/{id}/likes")).await;
    let names: Vec<&str> = likers["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, vec!["ada", "grace"]);
    b.screenshot("home.png").await;
    b.click(&like).await;
    b.wait_for(&like_shows("false", "♡ 1")).await;
    let (_, post) = s.get(&ada, &format!("/api/posts/{id}")).await;
    assert_eq!(
        (post["likes"].clone(), post["liked"].clone()),
        (json!(1), json!(true))
    );

    // Posting from the page; the post is really stored.
    b.set_value("post-text", "typed in a browser").await;
    b.click("#post").await;
    b.wait_for(&timeline_has("typed in a browser")).await;
    let (_, grace) = s.get(&ada, "/api/users/by-name/grace").await;
    let grace_id = grace["id"].as_u64().expect("id");
    let (_, posts) = s.get(&ada, &format!("/api/users/{grace_id}/posts")).await;
    assert_eq!(posts["posts"][0]["text"], "typed in a browser");
    let own = posts["posts"][0]["id"].as_str().expect("id").to_owned();

    // Deleting from the page; the post is really gone.
    b.click(&format!("#timeline li[data-id=\"{own}\"] button.delete"))
        .await;
    b.wait_for(&format!("!{}", timeline_has("typed in a browser")))
        .await;
    let (status, _) = s.get(&ada, &format!("/api/posts/{own}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A direct message from the page (ada takes messages from anyone).
    let (status, _) = s
        .send_json(
            reqwest::Method::PUT,
            "/api/me/settings",
            Some(&ada),
            json!({"dms_open": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    b.set_value("dm-name", "ada").await;
    b.set_value("dm-text", "hi ada, from the page").await;
    b.click("#dm-send").await;
    b.wait_for("document.getElementById('status').textContent === 'Message sent to @ada'")
        .await;
    b.wait_for("document.getElementById('conversations').textContent.includes('@ada')")
        .await;
    let (_, messages) = s.get(&ada, &format!("/api/messages/{grace_id}")).await;
    assert_eq!(messages["messages"][0]["text"], "hi ada, from the page");

    // Linking a phone asks for the code texted to it (here: read from the
    // file transport's outbox), and only then is the phone linked.
    b.set_value("phone-number", "+15555550142").await;
    b.click("#phone-link").await;
    b.wait_for("!document.getElementById('code-form').hidden")
        .await;
    let file = s.data_dir().join("device-outbox.jsonl");
    let code = crate::harness::eventually(|| async {
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["to"] == "+15555550142")
            .find_map(|v| v["text"].as_str().map(|t| t[..6].to_owned()))
    })
    .await;
    let (_, settings) = s.get(&ada, "/api/me/settings").await;
    assert_eq!(settings["phone"], Value::Null, "ada's settings are her own");
    b.set_value("phone-code", &code).await;
    b.click("#phone-confirm").await;
    b.wait_for(
        "document.getElementById('phone-state').textContent === 'Linked: +15555550142' \
         && document.getElementById('code-form').hidden",
    )
    .await;

    // Protecting the account from the page; a request arrives and is
    // approved from the page.
    b.click("#protected").await;
    b.wait_for("document.getElementById('status').textContent === 'Your account is protected.'")
        .await;
    let (_, state) = s.get(&ada, "/api/me/protected").await;
    assert_eq!(state, json!({"protected": false}), "ada's own stays public");
    let (status, edge) = s
        .put(&ada, &format!("/api/users/{}/following/{grace_id}", ada.id))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(edge["requested"], true, "{edge}");
    b.click("#requests-refresh").await;
    b.wait_for("document.getElementById('requests').textContent.includes('@ada')")
        .await;
    b.click(&format!(
        "#requests li[data-user=\"{}\"] button.approve",
        ada.id
    ))
    .await;
    b.wait_for("document.getElementById('status').textContent === 'Approved @ada'")
        .await;
    b.wait_for("document.getElementById('requests').children.length === 0")
        .await;
    let (_, edge) = s
        .get(&ada, &format!("/api/users/{}/following/{grace_id}", ada.id))
        .await;
    assert_eq!(edge["following"], true);
    // Following a protected account from the page sends a request.
    let hal = s.signup("hal", "password-9").await;
    s.put(&hal, "/api/me/protected").await;
    b.set_value("follow-name", "hal").await;
    b.click("#follow").await;
    b.wait_for("document.getElementById('status').textContent === 'Requested to follow @hal'")
        .await;
    let (_, pending) = s.get(&hal, "/api/follow-requests").await;
    assert_eq!(pending["users"][0]["id"], grace_id);

    // Exporting from the page downloads the account's document: grace's
    // one post was deleted and her like taken back; her message stays.
    b.click("#export").await;
    b.wait_for("document.getElementById('status').textContent.startsWith('Export')")
        .await;
    assert_eq!(
        b.eval("document.getElementById('status').textContent")
            .await,
        "Exported 0 posts, 0 likes and 1 conversations to starling-export-grace.json"
    );
    assert_eq!(
        b.eval("document.getElementById('export-link').download")
            .await,
        "starling-export-grace.json"
    );
    assert_eq!(
        b.eval("document.getElementById('export-link').href.startsWith('blob:')")
            .await,
        true
    );

    // Editing the profile from the page; it is really stored.
    b.set_value("display-name", "Grace Hopper").await;
    b.set_value("bio", "Compilers, and a nanosecond of wire.")
        .await;
    b.click("#profile-save").await;
    b.wait_for(&status_is("Profile saved.")).await;
    let (_, profile) = s.get(&ada, &format!("/api/users/{grace_id}/profile")).await;
    assert_eq!(
        (profile["display_name"].clone(), profile["bio"].clone()),
        (
            json!("Grace Hopper"),
            json!("Compilers, and a nanosecond of wire.")
        )
    );

    // Replying from the page: the post box names the author, and the post
    // is stored as a reply that mentions them.
    b.click(&format!("#timeline li[data-id=\"{id}\"] button.reply"))
        .await;
    b.wait_for(
        "document.getElementById('post-text').value === '@ada ' \
         && !document.getElementById('reply-to').hidden \
         && document.getElementById('reply-name').textContent === '@ada'",
    )
    .await;
    b.eval("document.getElementById('post-text').value += 'a fine machine'; true")
        .await;
    b.click("#post").await;
    b.wait_for(&timeline_has("@ada a fine machine")).await;
    b.wait_for("document.getElementById('reply-to').hidden")
        .await;
    let (_, posts) = s.get(&ada, &format!("/api/users/{grace_id}/posts")).await;
    let reply = &posts["posts"][0];
    assert_eq!(reply["text"], "@ada a fine machine");
    assert_eq!(reply["reply_to"], json!(id));
    let reply_id = reply["id"].as_str().expect("id").to_owned();
    b.wait_for(&text_is(
        &format!("#timeline li[data-id=\"{reply_id}\"] .display-name"),
        "Grace Hopper",
    ))
    .await;
    let (_, mentions) = s.get(&ada, "/api/mentions").await;
    assert_eq!(mentions["posts"][0]["id"], json!(reply_id));

    // Reposting from the page: the repost is stored and shows its original.
    b.click(&format!("#timeline li[data-id=\"{id}\"] button.repost"))
        .await;
    b.wait_for(&status_is("Reposted @ada")).await;
    let (_, posts) = s.get(&ada, &format!("/api/users/{grace_id}/posts")).await;
    assert_eq!(posts["posts"][0]["repost_of"], json!(id));
    let repost_id = posts["posts"][0]["id"].as_str().expect("id").to_owned();
    let repost = format!("#timeline li[data-id=\"{repost_id}\"]");
    b.wait_for(&text_is(
        &format!("{repost} .repost-note"),
        "🔁 @grace reposted",
    ))
    .await;
    b.wait_for(&text_is(&format!("{repost} .text"), "hello, live reader"))
        .await;
    b.wait_for(&text_is(&format!("{repost} .display-name"), "Ada Lovelace"))
        .await;

    // A repost arriving live: the page fetches its original to show it.
    let cy = s.signup("cy", "difference-engine").await;
    let (_, original) = s.post_text(&cy, "a post from cy").await;
    let original_id = original["id"].as_str().expect("id").to_owned();
    let (status, live_repost) = s
        .send(
            reqwest::Method::POST,
            &format!("/api/posts/{original_id}/repost"),
            Some(&ada),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{live_repost}");
    let live = format!(
        "#timeline li[data-id=\"{}\"]",
        live_repost["id"].as_str().expect("id")
    );
    b.wait_for(&text_is(
        &format!("{live} .repost-note"),
        "🔁 @ada reposted",
    ))
    .await;
    b.wait_for(&text_is(&format!("{live} .text"), "a post from cy"))
        .await;
    b.wait_for(&text_is(&format!("{live} .meta strong"), "@cy"))
        .await;

    // The mentions list, refreshed from the page.
    let (_, mention) = s.post_text(&ada, "@grace the engine weaves algebra").await;
    let mention_id = mention["id"].as_str().expect("id").to_owned();
    b.click("#mentions-refresh").await;
    b.wait_for(&text_is(
        &format!("#mentions li[data-id=\"{mention_id}\"] .text"),
        "@grace the engine weaves algebra",
    ))
    .await;
    let grace = s
        .login("grace", "compilers-rule")
        .await
        .expect("grace logs in");
    let (_, mentions) = s.get(&grace, "/api/mentions").await;
    assert_eq!(mentions["posts"][0]["id"], json!(mention_id));

    // Threads, pictures, groups, texts per follow and conversations.
    let cast = Cast {
        ada: &ada,
        grace: &grace,
        cy: &cy,
    };
    threads(&mut b, &s, &cast, &id, &reply_id).await;
    pictures(&mut b, &s, &cast).await;
    groups(&mut b, &s, &cast).await;
    texts_per_follow(&mut b, &s, &cast).await;
    conversations(&mut b, &s, &cast).await;
    // The hashtag page: a tag in a post links to its page, and the
    // trending list counts it.
    let (_, tagged) = s.post_text(&ada, "weaving #Algebra patterns").await;
    let tagged_id = tagged["id"].as_str().expect("id").to_owned();
    crate::harness::eventually(|| async {
        let (_, page) = s.get(&grace, "/api/tags/algebra").await;
        (page["posts"][0]["id"] == json!(tagged_id)).then_some(())
    })
    .await;
    let tag_link = format!("#timeline li[data-id=\"{tagged_id}\"] .text a.tag");
    b.wait_for(&text_is(&tag_link, "#Algebra")).await;
    b.click(&tag_link).await;
    b.wait_for(&text_is("#tag-name", "#algebra")).await;
    b.wait_for(&text_is(
        &format!("#tag-posts li[data-id=\"{tagged_id}\"] .text"),
        "weaving #Algebra patterns",
    ))
    .await;
    b.click("#trending-refresh").await;
    b.wait_for(&text_is("#trending li", "#algebra 1")).await;

    // Muting and unmuting from the page: ada's posts leave the timeline and
    // come back.
    b.set_value("follow-name", "ada").await;
    b.click("#mute").await;
    b.wait_for(&status_is("Muted @ada")).await;
    b.wait_for(&format!(
        "!{}",
        timeline_has("posted before anyone followed")
    ))
    .await;
    let (_, mutes) = s.get(&grace, "/api/mutes").await;
    assert_eq!(mutes["users"][0]["id"], json!(ada.id));
    b.set_value("follow-name", "ada").await;
    b.click("#unmute").await;
    b.wait_for(&status_is("Unmuted @ada")).await;
    b.wait_for(&timeline_has("posted before anyone followed"))
        .await;
    let (_, mutes) = s.get(&grace, "/api/mutes").await;
    assert_eq!(mutes["users"], json!([]));

    // A refused block shows the server's reason in the status line.
    b.set_value("follow-name", "grace").await;
    b.click("#block").await;
    let (status, refusal) = s.put(&grace, &format!("/api/blocks/{grace_id}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refusal}");
    let reason = refusal["error"].as_str().expect("error").to_owned();
    b.wait_for(&status_is(&reason)).await;
    b.wait_for("document.getElementById('status').className === ''")
        .await;

    // Blocking from the page: stored, and it ends ada's following of grace.
    b.set_value("follow-name", "ada").await;
    b.click("#block").await;
    b.wait_for(&status_is("Blocked @ada")).await;
    b.wait_for(&format!(
        "!{}",
        timeline_has("posted before anyone followed")
    ))
    .await;
    let (_, blocks) = s.get(&grace, "/api/blocks").await;
    assert_eq!(blocks["users"][0]["id"], json!(ada.id));
    let (_, edge) = s
        .get(&ada, &format!("/api/users/{}/following/{grace_id}", ada.id))
        .await;
    assert_eq!(edge["following"], false);
    b.screenshot("after-block.png").await;

    b.click("#logout").await;
    b.wait_for("!document.getElementById('auth').hidden && document.getElementById('app').hidden")
        .await;

    // Deleting an account from the page, on a throwaway one: a wrong
    // password is refused, the right one after the confirm step deletes
    // it and signs the page out.
    let dora = s.signup("dora", "throwaway-pass").await;
    b.set_value("username", "dora").await;
    b.set_value("password", "throwaway-pass").await;
    b.click("#login").await;
    b.wait_for("!document.getElementById('app').hidden").await;
    b.set_value("delete-password", "not-her-pass").await;
    b.click("#delete-account").await;
    b.wait_for("!document.getElementById('delete-confirm').hidden")
        .await;
    b.click("#delete-yes").await;
    b.wait_for(&status_is("That is not your password.")).await;
    assert_eq!(s.get(&dora, "/api/me").await.0, StatusCode::OK);
    b.set_value("delete-password", "throwaway-pass").await;
    b.click("#delete-account").await;
    b.wait_for("!document.getElementById('delete-confirm').hidden")
        .await;
    b.click("#delete-yes").await;
    b.wait_for(&status_is("Your account is deleted.")).await;
    b.wait_for("!document.getElementById('auth').hidden && document.getElementById('app').hidden")
        .await;
    let (status, body) = s.get(&dora, "/api/me").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );
    let (status, body) = s
        .send_json(
            reqwest::Method::POST,
            "/api/signup",
            None,
            json!({"username": "dora", "password": "another-pass"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("username_reserved")),
        "{body}"
    );
    // The page's own account was not touched.
    assert_eq!(s.get(&grace, "/api/me").await.0, StatusCode::OK);
    b.close().await;
}

/// The accounts of the steps below; grace is the page's user, and follows
/// ada (who follows her back and takes messages from anyone).
struct Cast<'a> {
    ada: &'a Account,
    grace: &'a Account,
    cy: &'a Account,
}

/// Sets the value of the field `selector` finds.
async fn fill(b: &mut Browser, selector: &str, value: &str) {
    let expression = format!(
        "document.querySelector({}).value = {}; true",
        json!(selector),
        json!(value)
    );
    b.eval(&expression).await;
}

/// JavaScript: the `data-id`s of the items of the list `id`, in order.
fn ids_in(id: &str) -> String {
    format!(
        "[...document.getElementById({}).children].map((li) => li.dataset.id)",
        json!(id)
    )
}

/// The ids of a JSON list of posts or messages.
fn ids_of(items: &Value) -> Vec<String> {
    items
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_owned())
        .collect()
}

/// The reason the server gives for what `response` refused.
fn reason(response: &(StatusCode, Value)) -> String {
    assert!(response.0.is_client_error(), "{response:?}");
    response.1["error"].as_str().expect("error").to_owned()
}

async fn post_reply(s: &TestServer, who: &Account, text: &str, to: &str) -> String {
    let (status, post) = s
        .send_json(
            reqwest::Method::POST,
            "/api/posts",
            Some(who),
            json!({"text": text, "reply_to": to}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{post}");
    post["id"].as_str().expect("id").to_owned()
}

/// Opening a post's thread shows it with its ancestors and replies, as the
/// server has them; a reply made while it is open joins it.
async fn threads(b: &mut Browser, s: &TestServer, c: &Cast<'_>, root: &str, reply: &str) {
    b.click(&format!("#timeline li[data-id=\"{root}\"] button.thread"))
        .await;
    b.wait_for(&format!(
        "!document.getElementById('thread').hidden && {} === '[\"{root}\"]' && {} === '[\"{reply}\"]'",
        format_args!("JSON.stringify({})", ids_in("thread-post")),
        format_args!("JSON.stringify({})", ids_in("thread-replies")),
    ))
    .await;
    assert_eq!(b.eval(&ids_in("thread-ancestors")).await, json!([]));

    // ada answers grace's reply; the reply's thread has the root above it
    // and the answer below it, on the page as on the server.
    let answer = post_reply(s, c.ada, "@grace thank you", reply).await;
    b.click(&format!(
        "#thread-replies li[data-id=\"{reply}\"] button.thread"
    ))
    .await;
    b.wait_for(&format!(
        "JSON.stringify({}) === '[\"{reply}\"]'",
        ids_in("thread-post")
    ))
    .await;
    let (_, thread) = s.get(c.grace, &format!("/api/posts/{reply}/thread")).await;
    assert_eq!(ids_of(&thread["ancestors"]), vec![root.to_owned()]);
    assert_eq!(ids_of(&thread["replies"]["posts"]), vec![answer.clone()]);
    assert_eq!(
        b.eval(&ids_in("thread-ancestors")).await,
        json!(ids_of(&thread["ancestors"]))
    );
    assert_eq!(
        b.eval(&ids_in("thread-replies")).await,
        json!(ids_of(&thread["replies"]["posts"]))
    );
    assert_eq!(
        b.eval("document.querySelector('#thread-replies li .text').textContent")
            .await,
        "@grace thank you"
    );

    // Replying from the thread: the new reply is stored and shown in it.
    b.click("#thread-post li button.reply").await;
    b.wait_for("!document.getElementById('reply-to').hidden")
        .await;
    b.set_value("post-text", "a footnote in the thread").await;
    b.click("#post").await;
    b.wait_for("document.getElementById('thread-replies').children.length === 2")
        .await;
    let (_, thread) = s.get(c.ada, &format!("/api/posts/{reply}/thread")).await;
    let replies = ids_of(&thread["replies"]["posts"]);
    assert_eq!(replies.len(), 2, "{thread}");
    assert_eq!(
        thread["replies"]["posts"][1]["text"],
        "a footnote in the thread"
    );
    assert_eq!(b.eval(&ids_in("thread-replies")).await, json!(replies));
    b.screenshot("thread.png").await;

    b.click("#thread-close").await;
    b.wait_for("document.getElementById('thread').hidden && document.getElementById('thread-post').children.length === 0")
        .await;
}

/// A 3 by 2 and a 2 by 2 pixel PNG.
const GRACE_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAMAAAACCAIAAAASFvFNAAAAEElEQVR4nGOwjr4NQQxwFgBS0AinBEm92QAAAABJRU5ErkJggg==";
const DOT_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGM4pBoDRAwQCgAk+gUNHl1CxAAAAABJRU5ErkJggg==";

/// JavaScript: every avatar of `user` in `scope` shows a loaded picture
/// `width` pixels wide (at least one is there).
fn pictures_are(scope: &str, user: u64, width: u32) -> String {
    format!(
        "(() => {{ const all = [...document.querySelectorAll('{scope} .avatar[data-user=\"{user}\"]')]; \
         return all.length > 0 && all.every((a) => a.querySelector('img')?.complete \
         && a.querySelector('img').naturalWidth === {width}); }})()"
    )
}

/// JavaScript: every avatar of `user` in `scope` shows `initial`, no picture.
fn initials_are(scope: &str, user: u64, initial: &str) -> String {
    format!(
        "(() => {{ const all = [...document.querySelectorAll('{scope} .avatar[data-user=\"{user}\"]')]; \
         return all.length > 0 && all.every((a) => !a.querySelector('img') && a.textContent === '{initial}'); }})()"
    )
}

/// Each post shows its author's picture, or their initial without one;
/// grace uploads and removes her own from the page.
async fn pictures(b: &mut Browser, s: &TestServer, c: &Cast<'_>) {
    use base64::Engine as _;
    let decode = |b64: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64")
    };
    // cy (whose post ada reposted) has none: an initial.
    b.wait_for(&initials_are("#timeline", c.cy.id, "C")).await;

    // dot has one, and mentions grace: the mention shows dot's picture.
    let dot = s.signup("dot", "pixel-perfect").await;
    let response = s
        .request(reqwest::Method::PUT, "/api/me/avatar", Some(&dot))
        .body(decode(DOT_PNG))
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), StatusCode::OK);
    let (_, mention) = s.post_text(&dot, "@grace a picture of me").await;
    let mention = mention["id"].as_str().expect("id").to_owned();
    b.click("#mentions-refresh").await;
    b.wait_for(&format!(
        "!!document.querySelector('#mentions li[data-id=\"{mention}\"]')"
    ))
    .await;
    b.wait_for(&pictures_are("#mentions", dot.id, 2)).await;

    // grace uploads hers: stored, and shown beside her posts at once.
    b.wait_for(&initials_are("#timeline", c.grace.id, "G"))
        .await;
    b.eval(&format!(
        "(() => {{ const bytes = Uint8Array.from(atob('{GRACE_PNG}'), (ch) => ch.charCodeAt(0)); \
         const files = new DataTransfer(); \
         files.items.add(new File([bytes], 'grace.png', {{ type: 'image/png' }})); \
         document.getElementById('avatar-file').files = files.files; return true; }})()"
    ))
    .await;
    b.click("#avatar-upload").await;
    b.wait_for(&status_is("Picture saved.")).await;
    b.wait_for(&pictures_are("#avatar-preview", c.grace.id, 3))
        .await;
    b.wait_for(&pictures_are("#timeline", c.grace.id, 3)).await;
    let stored = s
        .request(
            reqwest::Method::GET,
            &format!("/api/users/{}/avatar", c.grace.id),
            Some(c.ada),
        )
        .send()
        .await
        .expect("download");
    assert_eq!(stored.status(), StatusCode::OK);
    assert_eq!(stored.headers()["content-type"], "image/png");
    assert_eq!(
        stored.bytes().await.expect("bytes").to_vec(),
        decode(GRACE_PNG)
    );
    b.screenshot("pictures.png").await;

    // Removing it: gone from the server, her initial again on the page.
    b.click("#avatar-remove").await;
    b.wait_for(&status_is("Picture removed.")).await;
    b.wait_for(&initials_are("#timeline", c.grace.id, "G"))
        .await;
    b.wait_for(&initials_are("#avatar-preview", c.grace.id, "G"))
        .await;
    let (status, _) = s
        .get(c.ada, &format!("/api/users/{}/avatar", c.grace.id))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// grace creates a group, adds and removes members by username, posts to
/// it (seen by ada, a member who follows her, and by no one else), and
/// deletes a group; refusals show the server's reason.
async fn groups(b: &mut Browser, s: &TestServer, c: &Cast<'_>) {
    for name in ["night shift", "spare"] {
        b.set_value("group-name", name).await;
        b.click("#group-create").await;
        b.wait_for(&status_is(&format!("Created the group {name}")))
            .await;
    }
    let (_, mine) = s.get(c.grace, "/api/groups").await;
    let names: Vec<&str> = mine["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    assert_eq!(names, vec!["night shift", "spare"]);
    let gid = mine["groups"][0]["id"].as_u64().expect("id");
    let spare = mine["groups"][1]["id"].as_u64().expect("id");
    b.wait_for(&text_is(
        &format!("#group-list li[data-group=\"{gid}\"] .group-name"),
        "night shift",
    ))
    .await;

    // A name of blanks is refused, with the server's reason.
    let refused = s
        .send_json(
            reqwest::Method::POST,
            "/api/groups",
            Some(c.grace),
            json!({"name": "   "}),
        )
        .await;
    b.set_value("group-name", "   ").await;
    b.click("#group-create").await;
    b.wait_for(&status_is(&reason(&refused))).await;

    // Deleting the spare group.
    b.click(&format!(
        "#group-list li[data-group=\"{spare}\"] button.group-delete"
    ))
    .await;
    b.wait_for(&status_is("Deleted the group spare")).await;
    b.wait_for(&format!(
        "!document.querySelector('#group-list li[data-group=\"{spare}\"]')"
    ))
    .await;
    let (status, _) = s.get(c.grace, &format!("/api/groups/{spare}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Members by username: ada and cy added, cy removed, a stranger refused.
    let group = format!("#group-list li[data-group=\"{gid}\"]");
    for name in ["ada", "cy"] {
        fill(b, &format!("{group} input.member-name"), name).await;
        b.click(&format!("{group} button.member-add")).await;
        b.wait_for(&status_is(&format!("Added @{name} to night shift")))
            .await;
    }
    b.wait_for(&format!(
        "document.querySelectorAll('{group} .members li').length === 2"
    ))
    .await;
    b.click(&format!(
        "{group} .members li[data-user=\"{}\"] button.member-remove",
        c.cy.id
    ))
    .await;
    b.wait_for(&status_is("Removed @cy from night shift")).await;
    b.wait_for(&text_is(&format!("{group} .members"), "@adaRemove"))
        .await;
    let (_, members) = s.get(c.grace, &format!("/api/groups/{gid}/members")).await;
    assert_eq!(members["users"].as_array().map(Vec::len), Some(1));
    assert_eq!(members["users"][0]["id"], c.ada.id);
    let stranger = s.get(c.grace, "/api/users/by-name/nobody_at_all").await;
    fill(b, &format!("{group} input.member-name"), "nobody_at_all").await;
    b.click(&format!("{group} button.member-add")).await;
    b.wait_for(&status_is(&reason(&stranger))).await;

    // A post to the group: on grace's page marked as such, stored with
    // its group, in ada's home timeline, and hidden from cy.
    fill(
        b,
        &format!("{group} textarea.group-text"),
        "night shift only",
    )
    .await;
    b.click(&format!("{group} button.group-send")).await;
    b.wait_for(&status_is("Posted to night shift")).await;
    let (_, posts) = s
        .get(c.ada, &format!("/api/users/{}/posts", c.grace.id))
        .await;
    let post = posts["posts"][0].clone();
    assert_eq!(
        (post["text"].clone(), post["group"].clone()),
        (json!("night shift only"), json!(gid))
    );
    let post_id = post["id"].as_str().expect("id").to_owned();
    b.wait_for(&text_is(
        &format!("#timeline li[data-id=\"{post_id}\"] .group-note"),
        "👥 to night shift",
    ))
    .await;
    crate::harness::eventually(|| async {
        let (_, home) = s.get(c.ada, "/api/home").await;
        ids_of(&home["posts"]).contains(&post_id).then_some(())
    })
    .await;
    let (status, _) = s.get(c.cy, &format!("/api/posts/{post_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "cy is not in the group");
    b.screenshot("groups.png").await;
}

/// Texts of ada's posts to grace's phone, switched on and off from the
/// page: stored, and ada's post is really texted while on.
async fn texts_per_follow(b: &mut Browser, s: &TestServer, c: &Cast<'_>) {
    let device = format!("/api/users/{}/following/{}/device", c.grace.id, c.ada.id);
    let switch = format!(
        "#device-switches li[data-user=\"{}\"] input.device",
        c.ada.id
    );
    b.click("#texts-refresh").await;
    b.wait_for(&format!(
        "document.querySelector({})?.checked === false",
        json!(switch)
    ))
    .await;
    assert_eq!(
        b.eval("document.getElementById('device-switches').textContent")
            .await,
        "Texts of @ada",
        "only whom grace follows"
    );
    assert_eq!(s.get(c.grace, &device).await.1, json!({"device": false}));

    b.click(&switch).await;
    b.wait_for(&status_is("Texts on for @ada")).await;
    assert_eq!(s.get(c.grace, &device).await.1, json!({"device": true}));
    s.post_text(c.ada, "texted to the night shift").await;
    let file = s.data_dir().join("device-outbox.jsonl");
    crate::harness::eventually(|| async {
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|v| v["to"] == "+15555550142" && v["text"] == "ada: texted to the night shift")
            .then_some(())
    })
    .await;

    b.click(&switch).await;
    b.wait_for(&status_is("Texts off for @ada")).await;
    b.wait_for(&format!(
        "document.querySelector({}).checked === false",
        json!(switch)
    ))
    .await;
    assert_eq!(s.get(c.grace, &device).await.1, json!({"device": false}));
}

/// A conversation opens as a thread (oldest first), takes a message live,
/// is read on opening, and answers from its own box.
async fn conversations(b: &mut Browser, s: &TestServer, c: &Cast<'_>) {
    let open = format!(
        "#conversations li[data-user=\"{}\"] button.open-conversation",
        c.ada.id
    );
    b.wait_for(&format!("!!document.querySelector({})", json!(open)))
        .await;
    b.click(&open).await;
    b.wait_for(
        "!document.getElementById('conversation').hidden \
         && document.getElementById('conversation-name').textContent === '@ada' \
         && document.getElementById('messages').children.length === 1",
    )
    .await;

    // ada writes while it is open: it arrives live, below grace's.
    let (status, sent) = s
        .send_json(
            reqwest::Method::POST,
            &format!("/api/messages/{}", c.grace.id),
            Some(c.ada),
            json!({"text": "hello grace, from the API"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    b.wait_for("document.getElementById('messages').children.length === 2")
        .await;
    let texts = "[...document.querySelectorAll('#messages li')].map((li) => li.className + ': ' + li.querySelector('.text').textContent)";
    assert_eq!(
        b.eval(texts).await,
        json!([
            "mine: hi ada, from the page",
            "theirs: hello grace, from the API"
        ])
    );
    // Shown, so read.
    crate::harness::eventually(|| async {
        let (_, list) = s.get(c.grace, "/api/conversations").await;
        (list["conversations"][0]["with"]["id"] == c.ada.id
            && list["conversations"][0]["unread"] == 0)
            .then_some(())
    })
    .await;

    // Answering from the conversation's box.
    b.set_value("conversation-text", "back to you, ada").await;
    b.click("#conversation-send").await;
    b.wait_for("document.getElementById('messages').children.length === 3")
        .await;
    let (_, messages) = s.get(c.ada, &format!("/api/messages/{}", c.grace.id)).await;
    assert_eq!(messages["messages"][0]["text"], "back to you, ada");
    assert_eq!(messages["messages"][0]["from"], c.grace.id);
    let mut oldest_first = ids_of(&messages["messages"]);
    oldest_first.reverse();
    assert_eq!(b.eval(&ids_in("messages")).await, json!(oldest_first));
    // A message from the form above joins the open conversation too.
    b.set_value("dm-name", "ada").await;
    b.set_value("dm-text", "and from the form above").await;
    b.click("#dm-send").await;
    b.wait_for(&status_is("Message sent to @ada")).await;
    b.wait_for(
        "document.querySelector('#messages li:last-child .text')?.textContent === 'and from the form above'",
    )
    .await;
    b.screenshot("conversation.png").await;
    b.click("#conversation-close").await;
    b.wait_for("document.getElementById('conversation').hidden")
        .await;
}
