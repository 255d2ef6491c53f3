//! A server per test, and a small HTTP client around it.

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use starling_server::{Config, DurabilityMode, Server, StartError};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long anything asynchronous (fan-out, a live event) may take.
const PATIENCE: Duration = Duration::from_secs(15);

/// A signed-up user and one of their tokens.
#[derive(Clone, Debug)]
pub(crate) struct Account {
    pub(crate) id: u64,
    pub(crate) token: String,
}

pub(crate) struct TestServer {
    pub(crate) client: reqwest::Client,
    base: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), StartError>>>,
    dir: Option<TempDir>,
}

impl TestServer {
    pub(crate) async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(tune: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::start_in(tempfile::tempdir().expect("tempdir"), tune).await
    }

    /// Starts on an ephemeral loopback port over the data in `dir`.
    pub(crate) async fn start_in(dir: TempDir, tune: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = Config::new(dir.path().join("data"));
        config.bind = "127.0.0.1:0".parse().expect("address");
        config.durability = DurabilityMode::Buffered;
        config.live_poll_ms = 25;
        tune(&mut config);
        let server = Server::bind(config).await.expect("server starts");
        let addr = server.local_addr().expect("bound");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        TestServer {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            base: format!("http://{addr}"),
            stop: Some(stop),
            task: Some(task),
            dir: Some(dir),
        }
    }

    /// Shuts down gracefully (as on SIGTERM), asserts a clean stop, and
    /// hands back the data folder.
    pub(crate) async fn stop(mut self) -> TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("clean shutdown");
        }
        self.dir.take().expect("data folder")
    }

    /// The server's data folder (the file transport writes texts to
    /// `device-outbox.jsonl` in it unless told otherwise).
    pub(crate) fn data_dir(&self) -> std::path::PathBuf {
        self.dir.as_ref().expect("data folder").path().join("data")
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn request(
        &self,
        method: Method,
        path: &str,
        auth: Option<&Account>,
    ) -> RequestBuilder {
        let request = self.client.request(method, self.url(path));
        match auth {
            Some(a) => request.bearer_auth(&a.token),
            None => request,
        }
    }

    pub(crate) async fn finish_request(&self, request: RequestBuilder) -> (StatusCode, Value) {
        TestServer::finish(request).await
    }

    async fn finish(request: RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("request");
        let status = response.status();
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("not JSON ({status}): {}", String::from_utf8_lossy(&bytes))
            })
        };
        (status, body)
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        auth: Option<&Account>,
    ) -> (StatusCode, Value) {
        TestServer::finish(self.request(method, path, auth)).await
    }

    pub(crate) async fn send_json(
        &self,
        method: Method,
        path: &str,
        auth: Option<&Account>,
        body: Value,
    ) -> (StatusCode, Value) {
        TestServer::finish(self.request(method, path, auth).json(&body)).await
    }

    pub(crate) async fn get(&self, who: &Account, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, Some(who)).await
    }

    pub(crate) async fn put(&self, who: &Account, path: &str) -> (StatusCode, Value) {
        self.send(Method::PUT, path, Some(who)).await
    }

    pub(crate) async fn delete(&self, who: &Account, path: &str) -> (StatusCode, Value) {
        self.send(Method::DELETE, path, Some(who)).await
    }

    pub(crate) async fn post_text(&self, who: &Account, text: &str) -> (StatusCode, Value) {
        self.send_json(
            Method::POST,
            "/api/posts",
            Some(who),
            json!({ "text": text }),
        )
        .await
    }

    pub(crate) async fn signup(&self, username: &str, password: &str) -> Account {
        let body = json!({"username": username, "password": password});
        let (status, body) = self
            .send_json(Method::POST, "/api/signup", None, body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "sign-up of {username}: {body}");
        assert_eq!(body["user"]["username"], username);
        account(&body)
    }

    pub(crate) async fn login(&self, username: &str, password: &str) -> Option<Account> {
        let body = json!({"username": username, "password": password});
        let (status, body) = self.send_json(Method::POST, "/api/login", None, body).await;
        match status {
            StatusCode::OK => Some(account(&body)),
            StatusCode::UNAUTHORIZED => None,
            other => panic!("log-in answered {other}: {body}"),
        }
    }

    /// Every page of a listing, following `next` cursors.
    pub(crate) async fn all_pages(
        &self,
        who: &Account,
        path: &str,
        key: &str,
        limit: usize,
    ) -> Vec<Vec<Value>> {
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{path}?limit={limit}");
            if let Some(c) = &cursor {
                url.push_str("&cursor=");
                url.push_str(c);
            }
            let (status, page) = self.get(who, &url).await;
            assert_eq!(status, StatusCode::OK, "{url}: {page}");
            pages.push(page[key].as_array().expect("items").clone());
            match page["next"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return pages,
            }
            assert!(pages.len() < 100, "cursor loop");
        }
    }

    /// Opens a server-sent event stream and asserts it was accepted.
    pub(crate) async fn events(&self, who: &Account, path: &str) -> Events {
        let response = self
            .request(Method::GET, path, Some(who))
            .send()
            .await
            .expect("events");
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with("text/event-stream")
        );
        Events::new(response)
    }
}

fn account(body: &Value) -> Account {
    let token = body["token"].as_str().expect("token").to_owned();
    assert_eq!(token.len(), 43, "256 bits, base64url");
    assert!(body["expires_at_ms"].as_u64().is_some());
    Account {
        id: body["user"]["id"].as_u64().expect("user id"),
        token,
    }
}

/// Polls `f` until it yields something, for at most [`PATIENCE`].
pub(crate) async fn eventually<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = f().await {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One server-sent event.
#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) event: String,
    pub(crate) data: String,
    pub(crate) id: Option<String>,
}

/// A minimal server-sent events reader over a response body.
pub(crate) struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    pub(crate) fn new(response: reqwest::Response) -> Events {
        Events {
            response,
            buffer: String::new(),
        }
    }

    /// The next event, or `None` when the server ended the stream. Panics
    /// if neither happens within [`PATIENCE`].
    pub(crate) async fn next(&mut self) -> Option<Event> {
        tokio::time::timeout(PATIENCE, self.read())
            .await
            .expect("no event and no end of stream in time")
    }

    async fn read(&mut self) -> Option<Event> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&block) {
                    return Some(event);
                }
            }
            match self.response.chunk().await {
                Ok(Some(bytes)) => self
                    .buffer
                    .push_str(&String::from_utf8_lossy(&bytes).replace("\r\n", "\n")),
                Ok(None) | Err(_) => return None,
            }
        }
    }
}

fn parse(block: &str) -> Option<Event> {
    let mut event = Event {
        event: "message".to_owned(),
        data: String::new(),
        id: None,
    };
    let mut any = false;
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event.event = value.to_owned(),
            "data" => {
                if any {
                    event.data.push('\n');
                }
                event.data.push_str(value);
                any = true;
            }
            "id" => event.id = Some(value.to_owned()),
            _ => {}
        }
    }
    any.then_some(event)
}
