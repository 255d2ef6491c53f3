//! The test cluster: one Valkey cluster per test binary, started with
//! `scripts/cluster` on ports of its own, stopped by a watchdog when the
//! binary exits. A test fails (never skips) when no server can be had.

use std::path::PathBuf;
use std::sync::OnceLock;

use starling_valkey::{ValkeyBackend, ValkeyOptions, test_cluster};

use crate::BASE_PORT;

pub(crate) fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("valkey-cluster-{BASE_PORT}"))
}

/// The seed URLs of the running test cluster, starting it on first use.
pub(crate) fn urls() -> &'static str {
    static URLS: OnceLock<String> = OnceLock::new();
    URLS.get_or_init(|| test_cluster::start(BASE_PORT, &data_dir(), &[]))
}

/// A namespace no other test of this run uses.
pub(crate) fn namespace() -> String {
    test_cluster::namespace()
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
