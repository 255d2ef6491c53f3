//! Fan-out over a Valkey cluster beside its raw baseline, in one run:
//! `FOLLOWERS` inbox entries per post written as the engine's bulk
//! delivery writes them (`apply_bulk_inbox` in pages of
//! `bulk_fanout_batch` entries: per primary, one fenced script call per
//! chunk of entries), then the same members to the same keys as plain pipelined
//! `ZADD`s. Prints entries per second of both, their ratio, and the
//! memory per inbox entry.
//!
//! ```sh
//! scripts/cluster start
//! cargo run --release -p starling-valkey --example fanout -- \
//!     valkey://127.0.0.1:7100 100000 3
//! ```

use std::time::Instant;

use starling_core::{Config, InboxEntry, PostId, UserId};
use starling_store::Backend;
use starling_valkey::{ValkeyBackend, ValkeyOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let urls = args
        .next()
        .ok_or("usage: fanout URLS [FOLLOWERS] [POSTS]")?;
    let followers: u64 = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let posts: u64 = args.next().map_or(Ok(3), |a| a.parse())?;
    let ns = format!("bench-{}", std::process::id());
    let engine = ValkeyBackend::connect(&ValkeyOptions::from_url_list(&urls, &ns))?;
    let base = ValkeyBackend::connect(&ValkeyOptions::from_url_list(&urls, &format!("{ns}-raw")))?;
    let author = UserId(u64::MAX / 2);
    let (mut engine_s, mut base_s) = (0.0, 0.0);
    // Entries per call, as the engine's bulk deliveries write them.
    let size = Config::default().bulk_fanout_batch;
    let mut batch = Vec::with_capacity(size);
    for p in 0..posts {
        let entry = InboxEntry {
            post: PostId::from_parts(1_800_000_000_000 + p, 1, 0),
            author,
        };
        for (side, seconds) in [(&engine, &mut engine_s), (&base, &mut base_s)] {
            let start = Instant::now();
            let mut owner = 1;
            while owner <= followers {
                batch.clear();
                let end = (owner + size as u64).min(followers + 1);
                batch.extend((owner..end).map(|o| (UserId(o), entry)));
                if std::ptr::eq(side, &engine) {
                    side.apply_bulk_inbox(&batch)?;
                } else {
                    side.baseline_inbox_zadd(&batch)?;
                }
                owner = end;
            }
            *seconds += start.elapsed().as_secs_f64();
        }
    }
    let entries = (followers * posts) as f64;
    let (e, b) = (entries / engine_s, entries / base_s);
    let sample: Vec<u64> = (1..=followers.min(100)).collect();
    let mut bytes = 0;
    for o in &sample {
        bytes += engine.inbox_memory_usage(UserId(*o))?;
    }
    println!(
        "followers {followers}, posts {posts}: engine {e:.0} entries/s, raw ZADD {b:.0} entries/s, ratio {:.2}; {:.1} bytes per inbox entry (MEMORY USAGE of {} inboxes of {posts})",
        e / b,
        bytes as f64 / (sample.len() as u64 * posts) as f64,
        sample.len()
    );
    Ok(())
}
