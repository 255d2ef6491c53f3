//! The engine over the in-memory backend against the reference model.
//!
//! The first byte picks a small configuration (backfill, fan-out batch
//! size, worker count, inbox cap), so that fan-out jobs span several
//! batches, follows backfill and reads trim inboxes; the rest decodes to
//! at most `MAX_OPS` operations with `Op::decode` (users, follows,
//! unfollows, posts, deletes, reopens in the middle of fan-out, checks).
//! Every operation's outcome is compared with the model's, and the whole
//! visible state at the end.

#![no_main]

use libfuzzer_sys::fuzz_target;
use starling_core::Config;
use starling_engine::{Engine, MemBackend};
use starling_testkit::{Harness, Op};

/// Operations per run, so that every run stays short.
const MAX_OPS: usize = 200;

/// Inbox caps to run with: the default, which these runs never reach, and
/// caps small enough that reads trim inboxes and deletes and unfollows
/// happen past the cap.
const INBOX_CAPS: [usize; 4] = [800, 1, 2, 4];

fuzz_target!(|data: &[u8]| {
    let Some((&shape, mut rest)) = data.split_first() else {
        return;
    };
    let config = Config {
        backfill_posts: usize::from(shape & 0b11),
        fanout_batch: usize::from((shape >> 2) & 0b11) + 1,
        fanout_workers: usize::from((shape >> 4) & 1) + 1,
        inbox_cap: INBOX_CAPS[usize::from((shape >> 5) & 0b11)],
        ..Config::default()
    };
    let backend = MemBackend::new();
    let reopen = {
        let config = config.clone();
        Box::new(move || Engine::with_backend(backend.clone(), config.clone()))
    };
    let mut h = Harness::new(reopen).expect("the in-memory engine opens");
    // A few users to start with, so that most inputs reach follows and posts.
    for name in ["ada", "bob", "carol"] {
        if let Err(diff) = h.step(&Op::CreateUser(name.to_owned())) {
            panic!("{config:?}: {diff}");
        }
    }
    let mut ops = Vec::new();
    while ops.len() < MAX_OPS {
        let Some(op) = Op::decode(&mut rest) else {
            break;
        };
        if let Err(diff) = h.step(&op) {
            panic!("{config:?}\nafter {}\nthen: {diff}", brief(&ops));
        }
        ops.push(op);
    }
    if let Err(diff) = h.check() {
        panic!("{config:?}\nafter {}\nfinal check: {diff}", brief(&ops));
    }
});

/// The ops, one a line, long texts shortened.
fn brief(ops: &[Op]) -> String {
    let mut out = String::new();
    for op in ops {
        let line = match op {
            Op::Post(a, text) if text.chars().count() > 20 => {
                format!("Post({a}, {} chars)", text.chars().count())
            }
            op => format!("{op:?}"),
        };
        out.push_str("\n  ");
        out.push_str(&line);
    }
    out
}
