//! CI's share of the crash test: 50 kill cycles with a fixed seed.

use std::process::Command;

#[test]
fn fifty_kill_cycles_lose_nothing_acknowledged() {
    let out = Command::new(env!("CARGO_BIN_EXE_starling-crash"))
        .args(["run", "--seed", "20261129", "--cycles", "50"])
        .output()
        .expect("crash runner starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "crash test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("50 kill cycles"), "{stdout}");
    println!("{stdout}");
}
