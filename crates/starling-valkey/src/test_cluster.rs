//! A cluster for tests (feature `test-cluster`): started once per test
//! binary with `scripts/cluster` on ports of its own, stopped by a
//! watchdog when the binary exits. A test fails, never skips, when no
//! server can be had.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// `scripts/cluster` of this source tree.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/cluster")
}

/// Starts a cluster with `scripts/cluster start --port PORT --dir DIR`
/// and the extra arguments (`--replicas 1`, ...), after stopping one a
/// killed run left there, and a watchdog that stops it when this process
/// ends. Returns the seed URLs, comma-separated. Panics when the cluster
/// cannot be started: call it from tests.
pub fn start(port: u16, dir: &Path, extra: &[&str]) -> String {
    let port = port.to_string();
    let _ = Command::new(script())
        .args(["stop", "--port", &port, "--dir"])
        .arg(dir)
        .status();
    let out = Command::new(script())
        .args(["start", "--port", &port, "--dir"])
        .arg(dir)
        .args(extra)
        .output()
        .expect("scripts/cluster runs");
    assert!(
        out.status.success(),
        "scripts/cluster start failed (is valkey-server installable?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The watchdog outlives this process by design: nothing waits for it.
    let watchdog = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {script} stop --port {port} --dir {dir}",
        pid = std::process::id(),
        script = script().display(),
        dir = dir.display(),
    );
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .args(["-c", &watchdog])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("watchdog starts");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A namespace no other test of this run uses.
pub fn namespace() -> String {
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
