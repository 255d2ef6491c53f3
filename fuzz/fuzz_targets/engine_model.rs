//! The engine over the in-memory backend against the reference model.
//!
//! The first two bytes pick a small configuration (backfill, fan-out batch
//! size, worker count, inbox cap, push threshold, fan-out policy, when
//! readers count as inactive), so that fan-out jobs span several batches,
//! follows backfill, reads scroll past the inbox cap into the pull merge,
//! authors cross the push threshold, and inactive readers' inboxes are
//! rebuilt on read. The rest decodes to at most `MAX_OPS` operations with
//! `Op::decode` (users, follows, unfollows, posts, deletes, reopens in the
//! middle of fan-out, checks).
//! Every operation's outcome is compared with the model's, and the whole
//! visible state at the end.

#![no_main]

use libfuzzer_sys::fuzz_target;
use starling_core::{Config, FanoutPolicy};
use starling_engine::Engine;
use starling_memstore::MemBackend;
use starling_testkit::{Harness, Op};

/// Operations per run, so that every run stays short.
const MAX_OPS: usize = 200;

/// Inbox caps: the default, which these runs never reach, and caps small
/// enough that reads trim inboxes and scroll past them.
const INBOX_CAPS: [usize; 4] = [800, 1, 2, 5];

/// Push thresholds: the default, and ones the authors here cross.
const PUSH_THRESHOLDS: [u64; 4] = [100_000, 0, 1, 3];

/// When readers count as inactive: at once, or never (the default, 30
/// days, means never in a run this short).
const INACTIVE_AFTER_MS: [Option<u64>; 2] = [Some(0), None];

fuzz_target!(|data: &[u8]| {
    let [a, b, rest @ ..] = data else {
        return;
    };
    let mut rest = rest;
    let bits = |byte: u8, at: u32, width: u32| usize::from(byte >> at) & ((1 << width) - 1);
    let config = Config {
        backfill_posts: bits(*a, 0, 2),
        fanout_batch: bits(*a, 2, 2) + 1,
        fanout_workers: bits(*a, 4, 1) + 1,
        inbox_cap: INBOX_CAPS[bits(*a, 5, 2)],
        fanout_policy: if bits(*a, 7, 1) == 1 {
            FanoutPolicy::Rates
        } else {
            FanoutPolicy::Threshold
        },
        push_threshold: PUSH_THRESHOLDS[bits(*b, 0, 2)],
        inactive_after_ms: INACTIVE_AFTER_MS[bits(*b, 2, 1)],
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
