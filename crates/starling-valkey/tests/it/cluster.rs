//! The test cluster: one Valkey cluster per test binary, started with
//! `scripts/cluster` on ports of its own, stopped by a watchdog when the
//! binary exits. A test fails (never skips) when no server can be had.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use starling_valkey::{ValkeyBackend, ValkeyOptions};

use crate::BASE_PORT;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/cluster")
}

pub(crate) fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("valkey-cluster-{BASE_PORT}"))
}

/// The seed URLs of the running test cluster, starting it on first use.
pub(crate) fn urls() -> &'static str {
    static URLS: OnceLock<String> = OnceLock::new();
    URLS.get_or_init(|| {
        let dir = data_dir();
        let port = BASE_PORT.to_string();
        // A cluster a killed run left behind is stopped first.
        let _ = Command::new(script())
            .args(["stop", "--port", &port, "--dir"])
            .arg(&dir)
            .status();
        let out = Command::new(script())
            .args(["start", "--port", &port, "--dir"])
            .arg(&dir)
            .output()
            .expect("scripts/cluster runs");
        assert!(
            out.status.success(),
            "scripts/cluster start failed (is valkey-server installable?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Stops the cluster when this test binary exits: the watchdog
        // outlives the binary by design, so nothing waits for it.
        let watchdog = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {script} stop --port {port} --dir {dir}",
            pid = std::process::id(),
            script = script().display(),
            dir = dir.display(),
        );
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .args(["-c", &watchdog])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("watchdog starts");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    })
}

/// A namespace no other test of this run uses.
pub(crate) fn namespace() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "t{}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// Options for `namespace` on the test cluster.
pub(crate) fn options(namespace: &str) -> ValkeyOptions {
    ValkeyOptions::from_url_list(urls(), namespace)
}

/// A backend over a fresh namespace.
pub(crate) fn fresh() -> ValkeyBackend {
    ValkeyBackend::connect(&options(&namespace())).expect("backend connects")
}

/// A plain connection to the primary that owns `key`, for tests that
/// change the store behind the backend's back.
pub(crate) fn raw(key: &str) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{}", primary_port(key)))
        .expect("node url")
        .get_connection()
        .expect("node connects")
}

/// The port of the primary that owns `key` now.
pub(crate) fn primary_port(key: &str) -> i64 {
    let first = urls().split(',').next().expect("a seed").to_owned();
    let mut c = redis::Client::open(first)
        .expect("seed url")
        .get_connection()
        .expect("seed connects");
    let slot: i64 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query(&mut c)
        .expect("keyslot");
    let slots: redis::Value = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query(&mut c)
        .expect("slots");
    let redis::Value::Array(ranges) = slots else {
        panic!("slots reply")
    };
    for r in ranges {
        let redis::Value::Array(parts) = r else {
            continue;
        };
        let (redis::Value::Int(lo), redis::Value::Int(hi), redis::Value::Array(p)) =
            (&parts[0], &parts[1], &parts[2])
        else {
            continue;
        };
        if (*lo..=*hi).contains(&slot) {
            let redis::Value::Int(port) = p[1] else {
                panic!("port")
            };
            return port;
        }
    }
    panic!("no node owns slot {slot}")
}
