//! The fan-out write path: a batch's inbox writes grouped by primary (one
//! script call per chunk, many slots per call), then its job; order within
//! an inbox kept, replays harmless, and a fenced-out writer refused before
//! it writes a single entry.

use std::time::Duration;

use starling_core::{Durability, Error, FanoutJob, InboxEntry, JobKind, Mutation, PostId, UserId};
use starling_store::{Backend, FanoutQueue, InboxStore};
use starling_valkey::ValkeyBackend;

use crate::cluster;

fn e(post: u64, author: u64) -> InboxEntry {
    InboxEntry {
        post: PostId(post),
        author: UserId(author),
    }
}

fn inbox(b: &ValkeyBackend, owner: u64) -> Vec<InboxEntry> {
    let mut out = Vec::new();
    b.inbox(UserId(owner), None, 64, &mut out).expect("inbox");
    out
}

fn job(post: u64, cursor: u64) -> Mutation {
    Mutation::PutJob(FanoutJob {
        post: PostId(post),
        author: UserId(1),
        kind: JobKind::Deliver,
        cursor: Some(UserId(cursor)),
    })
}

/// Owners spread over every primary and well over one script call's chunk.
const OWNERS: u64 = 3_000;

#[test]
fn a_fanout_batch_reaches_every_inbox_in_order_and_then_its_job() {
    let b = cluster::fresh();
    for durability in [Durability::Buffered, Durability::Synced] {
        let mut batch: Vec<Mutation> = (1..=OWNERS)
            .map(|o| Mutation::InboxPut {
                owner: UserId(o),
                entry: e(100, 1),
            })
            .collect();
        // Within one inbox, in the batch's order: a put, its rewrite with
        // another value, a delete of another post and a put after it.
        batch.push(Mutation::InboxPut {
            owner: UserId(7),
            entry: e(100, 2),
        });
        batch.push(Mutation::InboxPut {
            owner: UserId(8),
            entry: e(90, 1),
        });
        batch.push(Mutation::InboxDelete {
            owner: UserId(8),
            post: PostId(90),
        });
        batch.push(Mutation::InboxDelete {
            owner: UserId(9),
            post: PostId(90),
        });
        batch.push(Mutation::InboxPut {
            owner: UserId(9),
            entry: e(90, 3),
        });
        batch.push(job(100, OWNERS));
        // Twice: a replay (a crash before the job's cursor) changes nothing.
        for _ in 0..2 {
            b.apply(&batch, durability).expect("fan-out batch");
            for o in (1..=OWNERS).step_by(97) {
                if ![7, 8, 9].contains(&o) {
                    assert_eq!(inbox(&b, o), vec![e(100, 1)], "owner {o}");
                }
            }
            assert_eq!(inbox(&b, OWNERS), vec![e(100, 1)]);
            assert_eq!(inbox(&b, 7), vec![e(100, 2)], "the rewrite replaces");
            assert_eq!(inbox(&b, 8), vec![e(100, 1)], "the delete follows the put");
            assert_eq!(
                inbox(&b, 9),
                vec![e(100, 1), e(90, 3)],
                "the put follows the delete"
            );
            let stored = b.job(PostId(100)).expect("job").expect("the job is stored");
            assert_eq!(stored.cursor, Some(UserId(OWNERS)));
        }
        // A retraction batch removes what the delivery wrote.
        let mut retract: Vec<Mutation> = (1..=OWNERS)
            .map(|o| Mutation::InboxDelete {
                owner: UserId(o),
                post: PostId(100),
            })
            .collect();
        retract.push(Mutation::DeleteJob(PostId(100)));
        b.apply(&retract, durability).expect("retraction batch");
        for o in (1..=OWNERS).step_by(89) {
            assert!(
                inbox(&b, o).iter().all(|x| x.post != PostId(100)),
                "owner {o}"
            );
        }
        assert_eq!(inbox(&b, 9), vec![e(90, 3)]);
        assert!(b.job(PostId(100)).expect("job").is_none());
        b.apply(
            &[Mutation::InboxDelete {
                owner: UserId(9),
                post: PostId(90),
            }],
            Durability::Buffered,
        )
        .expect("clean up");
    }
}

#[test]
fn a_fenced_out_writer_writes_no_inbox_entry() {
    let ns = cluster::namespace();
    let mut options = cluster::options(&ns);
    options.lease_ttl = Duration::from_secs(60);
    let old = ValkeyBackend::connect(&options).expect("old writer");
    // The old writer fans out once, so it knows (has recorded) every slot.
    let load: Vec<(UserId, InboxEntry)> = (1..=OWNERS).map(|o| (UserId(o), e(5, 1))).collect();
    old.apply_bulk_inbox(&load).expect("old writer loads");
    let key = format!("{ns}:{{m}}:lease");
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query(&mut cluster::raw(&key))
        .expect("lease deleted");
    let new = ValkeyBackend::connect(&cluster::options(&ns)).expect("new writer");
    let load: Vec<(UserId, InboxEntry)> = (1..=OWNERS).map(|o| (UserId(o), e(6, 1))).collect();
    assert!(matches!(old.apply_bulk_inbox(&load), Err(Error::Fenced(_))));
    let mut batch: Vec<Mutation> = load
        .iter()
        .map(|&(owner, entry)| Mutation::InboxPut { owner, entry })
        .collect();
    batch.push(job(6, OWNERS));
    assert!(matches!(
        old.apply(&batch, Durability::Buffered),
        Err(Error::Fenced(_))
    ));
    for o in 1..=OWNERS {
        assert_eq!(inbox(&new, o), vec![e(5, 1)], "owner {o}");
    }
    assert!(new.job(PostId(6)).expect("job").is_none());
}
