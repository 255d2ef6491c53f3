//! Thousands of open server-sent event streams cost the server no threads:
//! every stream awaits the engine's subscription as a `Stream`, not a
//! blocking thread. The server runs as its own process (the real binary), so
//! that its thread count and memory are its own; everything stays on
//! 127.0.0.1 and every loop is bounded in count and time.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// Streams opened in all, half on each route.
const STREAMS: usize = 2_000;
/// Readers the streams are spread over.
const READERS: usize = 4;
/// Connections opened at once while setting up.
const BATCH: usize = 100;
/// The most any step may take.
const STEP: Duration = Duration::from_secs(120);

/// One field of `/proc/<pid>/status` (`Threads`, or `VmRSS` in KiB).
fn status(pid: u32, field: &str) -> u64 {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).expect("the server's status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {path}"))
}

/// The soft limit on open files of process `pid`.
fn open_files_limit(pid: &str) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(u64::MAX)
}

/// The server binary, started on an ephemeral loopback port.
struct Server {
    child: Child,
    pid: u32,
    addr: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_starling-server"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--bind", "127.0.0.1:0", "--durability", "buffered"])
            .args(["--live-streams-per-user", &STREAMS.to_string()])
            // Only engine events can deliver the post within the test.
            .args(["--live-poll-ms", "60000"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the server starts");
        let pid = child.id().expect("running");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let addr = tokio::time::timeout(STEP, async {
            while let Some(line) = lines.next_line().await.expect("server output") {
                if line.contains("listening") {
                    let addr = line.split("addr=").nth(1).expect("an address");
                    return addr
                        .split_whitespace()
                        .next()
                        .expect("an address")
                        .to_owned();
                }
            }
            panic!("the server exited before listening");
        })
        .await
        .expect("the server listens in time");
        // Keep draining its log so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Server {
            child,
            pid,
            addr,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            _dir: dir,
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> Value {
        let mut request = self
            .client
            .request(method, format!("http://{}{path}", self.addr))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// Signs up; returns the user's id and token.
    async fn signup(&self, name: &str) -> (u64, String) {
        let body = json!({"username": name, "password": "compilers-rule"});
        let body = self
            .send(reqwest::Method::POST, "/api/signup", None, body)
            .await;
        let id = body["user"]["id"].as_u64().expect("id");
        (id, body["token"].as_str().expect("token").to_owned())
    }
}

/// An open stream: the raw connection and what it has sent so far.
struct Stream {
    conn: TcpStream,
    seen: Vec<u8>,
}

impl Stream {
    /// Connects and asks for `path`; returns once `until` has arrived.
    async fn open(addr: &str, token: &str, path: &str, until: &str) -> Stream {
        let mut conn = TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Accept: text/event-stream\r\n\r\n"
        );
        conn.write_all(request.as_bytes()).await.expect("request");
        let mut stream = Stream {
            conn,
            seen: Vec::new(),
        };
        stream.read_until(until).await;
        assert!(
            stream.seen.starts_with(b"HTTP/1.1 200 OK"),
            "{path}: {}",
            String::from_utf8_lossy(&stream.seen)
        );
        stream
    }

    /// Reads until `needle` has been sent (panics if the stream ends).
    async fn read_until(&mut self, needle: &str) {
        let mut buf = [0u8; 4096];
        while !contains(&self.seen, needle.as_bytes()) {
            let n = self.conn.read(&mut buf).await.expect("read");
            assert!(n > 0, "the stream ended before {needle:?}");
            self.seen.extend_from_slice(&buf[..n]);
        }
    }

    /// Reads until the server closes the connection.
    async fn read_to_end(&mut self) {
        let mut buf = [0u8; 4096];
        while self.conn.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_open_streams_cost_no_threads_and_all_get_the_post() {
    let limit = open_files_limit("self");
    assert!(
        limit >= STREAMS as u64 + 512,
        "the soft limit on open files ({limit}) is too low for {STREAMS} streams: \
         raise it (`ulimit -n 8192`)"
    );
    let server = Server::start().await;
    let (ada, ada_token) = server.signup("ada").await;
    let mut readers = Vec::new();
    for i in 0..READERS {
        let (id, token) = server.signup(&format!("reader{i}")).await;
        let path = format!("/api/users/{id}/following/{ada}");
        server
            .send(reqwest::Method::PUT, &path, Some(&token), Value::Null)
            .await;
        readers.push(token);
    }
    let pid = server.pid;
    let threads_before = status(pid, "Threads");
    let rss_before = status(pid, "VmRSS");

    let started = Instant::now();
    let mut streams = Vec::with_capacity(STREAMS);
    while streams.len() < STREAMS {
        let batch = (streams.len()..STREAMS.min(streams.len() + BATCH)).map(|i| {
            let token = &readers[i % READERS];
            let (path, until) = if i % 2 == 0 {
                ("/api/home/events", "event: ready")
            } else {
                ("/api/events", "\r\n\r\n")
            };
            Stream::open(&server.addr, token, path, until)
        });
        let opened = tokio::time::timeout(STEP, futures_util::future::join_all(batch))
            .await
            .expect("a batch of streams opens in time");
        streams.extend(opened);
    }
    let opened_in = started.elapsed();
    let threads_open = status(pid, "Threads");
    let rss_open = status(pid, "VmRSS");

    let body = json!({"text": "to every open stream"});
    let post = server
        .send(reqwest::Method::POST, "/api/posts", Some(&ada_token), body)
        .await;
    let id = post["id"].as_str().expect("id").to_owned();
    let started = Instant::now();
    let delivered = streams.iter_mut().enumerate().map(|(i, stream)| {
        let needle = if i % 2 == 0 {
            // The live home timeline's post event has the post's id as its id.
            format!("id: {id}\n")
        } else {
            // The engine's timeline event names the post.
            format!("{{\"post\":\"{id}\"}}")
        };
        async move { stream.read_until(&needle).await }
    });
    tokio::time::timeout(STEP, futures_util::future::join_all(delivered))
        .await
        .expect("every stream receives the post in time");
    let delivered_in = started.elapsed();
    let threads_after = status(pid, "Threads");
    let rss_after = status(pid, "VmRSS");

    let per_stream_kib = rss_open.saturating_sub(rss_before) as f64 / STREAMS as f64;
    eprintln!(
        "{STREAMS} SSE streams on one server: opened in {opened_in:.1?}, the post reached \
         every one in {delivered_in:.1?}; server threads {threads_before} before, \
         {threads_open} with the streams open, {threads_after} after the post; server VmRSS \
         {rss_before} KiB before, {rss_open} KiB open, {rss_after} KiB after the post \
         ({per_stream_kib:.1} KiB per open stream)"
    );
    let most = threads_open.max(threads_after);
    assert!(
        most < 64,
        "{most} server threads with {STREAMS} streams open"
    );
    assert!(
        most <= threads_before + 4,
        "server threads grew from {threads_before} to {most} with {STREAMS} streams"
    );
    assert!(
        // About 27 KiB measured (HTTP/1 buffers, the subscription's queue);
        // rebuilding the router per connection made it about 100.
        per_stream_kib < 64.0,
        "{per_stream_kib:.1} KiB of server memory per open stream"
    );

    // A graceful stop ends every stream and exits cleanly.
    let Server { mut child, .. } = server;
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(term.success(), "SIGTERM sent");
    let ended = streams.iter_mut().map(Stream::read_to_end);
    tokio::time::timeout(STEP, futures_util::future::join_all(ended))
        .await
        .expect("every stream ends at shutdown");
    let exit = tokio::time::timeout(STEP, child.wait())
        .await
        .expect("the server stops in time")
        .expect("exit status");
    assert!(exit.success(), "the server stopped cleanly: {exit}");
}
