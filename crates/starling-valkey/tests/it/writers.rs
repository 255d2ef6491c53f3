//! One writer per store: a second writer is refused, a writer that lost
//! its lease cannot write, and what an interrupted writer left half done
//! is finished by the next one.

use std::time::{Duration, Instant};

use starling_core::{
    AuthorMode, Durability, EdgeMode, Error, Mutation, Post, PostId, User, UserId, Username,
};
use starling_store::{Backend, Direction, GraphStore, PostStore};
use starling_valkey::{ValkeyBackend, ValkeyOptions};

use crate::cluster;

fn user(id: u64) -> Mutation {
    Mutation::PutUser(User {
        id: UserId(id),
        name: Username::parse(&format!("user{id}")).expect("valid name"),
        created_at_ms: id,
    })
}

fn lease_key(namespace: &str) -> String {
    format!("{namespace}:{{m}}:lease")
}

pub(crate) fn steal_lease(namespace: &str) {
    let key = lease_key(namespace);
    let mut c = cluster::raw(&key);
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query(&mut c)
        .expect("lease deleted");
}

#[test]
fn a_second_writer_is_refused_until_the_first_closes() {
    let ns = cluster::namespace();
    let first = ValkeyBackend::connect(&cluster::options(&ns)).expect("first writer");
    match ValkeyBackend::connect(&cluster::options(&ns)) {
        Err(Error::WriterLeaseHeld(held)) => assert_eq!(held, ns),
        other => panic!("a second writer must be refused: {other:?}"),
    }
    first
        .apply(&[user(1)], Durability::Synced)
        .expect("the first writer still writes");
    let token = first.token();
    drop(first);
    let second = ValkeyBackend::connect(&cluster::options(&ns)).expect("writer after close");
    assert!(second.token() > token, "tokens grow");
    assert!(second.user(UserId(1)).expect("read").is_some());
}

#[test]
fn a_writer_whose_lease_was_taken_over_cannot_write() {
    let ns = cluster::namespace();
    // A long lease: its renewal (which would notice the takeover) does not
    // run during the test, so only the store's checks refuse the writes.
    let mut options = cluster::options(&ns);
    options.lease_ttl = Duration::from_secs(60);
    let old = ValkeyBackend::connect(&options).expect("old writer");
    old.apply(&[user(1), user(2)], Durability::Buffered)
        .expect("old writer writes");
    // The lease runs out (here: is removed) and another writer takes over.
    steal_lease(&ns);
    let new = ValkeyBackend::connect(&cluster::options(&ns)).expect("new writer");
    assert!(new.token() > old.token());
    // Slots the old writer wrote before: refused by their fences.
    match old.apply(&[user(1)], Durability::Buffered) {
        Err(Error::Fenced(_)) => {}
        other => panic!("a fenced-out write to a known slot must be refused: {other:?}"),
    }
    // A batch across slots: refused at its intent's slot.
    assert!(matches!(
        old.apply(&[user(100)], Durability::Buffered),
        Err(Error::Fenced(_))
    ));
    // Single-slot writes to slots it never wrote: refused when it records
    // them in the slot list.
    for id in 100..140 {
        let write = Mutation::SetAuthorMode {
            author: UserId(id),
            mode: AuthorMode::Pulled,
        };
        match old.apply(&[write], Durability::Buffered) {
            Err(Error::Fenced(_)) => {}
            other => panic!("a fenced-out write to a new slot must be refused: {other:?}"),
        }
    }
    for id in 100..140 {
        assert!(new.user(UserId(id)).expect("read").is_none(), "user {id}");
        assert_eq!(
            new.author_mode(UserId(id)).expect("read"),
            AuthorMode::Push,
            "author {id}"
        );
    }
    assert_eq!(
        Error::Fenced("x").kind(),
        starling_core::ErrorKind::Unavailable
    );
    new.apply(&[user(3)], Durability::Synced)
        .expect("the new writer writes");
}

#[test]
fn a_writer_whose_lease_expired_stops_writing() {
    let ns = cluster::namespace();
    let mut options = cluster::options(&ns);
    options.lease_ttl = Duration::from_millis(600);
    let writer = ValkeyBackend::connect(&options).expect("writer");
    writer
        .apply(&[user(1)], Durability::Buffered)
        .expect("writes while the lease holds");
    // Renewed while held: still writing after several lease periods.
    std::thread::sleep(Duration::from_millis(1500));
    writer
        .apply(&[user(2)], Durability::Buffered)
        .expect("the lease is renewed");
    steal_lease(&ns);
    let start = Instant::now();
    loop {
        match writer.apply(&[user(3)], Durability::Buffered) {
            Err(Error::Fenced(_)) => break,
            Ok(()) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the writer kept writing after its lease was gone"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_cross_slot_batch_interrupted_after_its_intent_is_replayed_whole() {
    let ns = cluster::namespace();
    let (a, b) = (UserId(11), UserId(12));
    let post = Post::new(PostId(5 << 22), a, "hello");
    let batch = vec![
        user(11),
        user(12),
        Mutation::AddEdge {
            follower: b,
            followee: a,
            since: PostId(0),
            mode: EdgeMode::Push,
        },
        Mutation::PutPost(post.clone()),
    ];
    {
        let writer = ValkeyBackend::connect(&cluster::options(&ns)).expect("writer");
        let slots = writer
            .interrupted_apply_for_tests(&batch)
            .expect("intent written, first part applied");
        assert!(slots >= 3, "the batch spans slots: {slots}");
        let seen = [
            writer.user(a).expect("read").is_some(),
            writer.user(b).expect("read").is_some(),
            writer.edge(b, a).expect("read").is_some(),
            writer.follower_edge(a, b).expect("read").is_some(),
        ];
        assert!(
            seen.iter().any(|s| !s),
            "the interruption left part of the batch unapplied: {seen:?}"
        );
        // The writer dies here (its lease is given up on drop).
    }
    let next = ValkeyBackend::connect(&cluster::options(&ns)).expect("next writer");
    assert!(next.user(a).expect("read").is_some());
    assert!(next.user(b).expect("read").is_some());
    assert_eq!(next.edge(b, a).expect("read"), Some(PostId(0)));
    let mut followers = Vec::new();
    next.edges(a, Direction::Followers, None, 10, &mut followers)
        .expect("read");
    assert_eq!(followers.len(), 1);
    // Counts moved once, though the first part was applied twice.
    let (ca, cb) = (next.counts(a).expect("read"), next.counts(b).expect("read"));
    assert_eq!((ca.followers, ca.following), (1, 0));
    assert_eq!((cb.followers, cb.following), (0, 1));
    let mut posts = Vec::new();
    next.posts(&[post.id], &mut posts).expect("read");
    assert_eq!(posts, vec![Some(post)]);
    let mut mine = Vec::new();
    next.author_posts(a, None, 10, &mut mine).expect("read");
    assert_eq!(mine, vec![PostId(5 << 22)]);
    // The intent is gone: another reconnect changes nothing.
    drop(next);
    let again = ValkeyBackend::connect(&cluster::options(&ns)).expect("reconnect");
    assert_eq!(again.counts(a).expect("read").followers, 1);
}

#[test]
fn bad_namespaces_and_addresses_are_refused() {
    for bad in ["", "a{b}", "has space", "x:{u}", &"n".repeat(65)] {
        match ValkeyBackend::connect(&cluster::options(bad)) {
            Err(Error::InvalidConfig(_)) => {}
            other => panic!("namespace {bad:?} must be refused: {other:?}"),
        }
    }
    let none = ValkeyOptions::new(Vec::<String>::new(), "app");
    assert!(matches!(
        ValkeyBackend::connect(&none),
        Err(Error::InvalidConfig(_))
    ));
    let garbage = ValkeyOptions::new(["not a url"], "app");
    assert!(matches!(
        ValkeyBackend::connect(&garbage),
        Err(Error::Storage(_))
    ));
}

#[test]
fn a_store_of_another_format_is_refused() {
    let ns = cluster::namespace();
    let key = format!("{ns}:{{m}}:format");
    let mut c = cluster::raw(&key);
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("starling-valkey/99")
        .query(&mut c)
        .expect("format written");
    match ValkeyBackend::connect(&cluster::options(&ns)) {
        Err(e @ Error::IncompatibleStore { .. }) => {
            let Error::IncompatibleStore { found, .. } = &e else {
                unreachable!()
            };
            assert_eq!(found, "starling-valkey/99");
            assert_eq!(e.kind(), starling_core::ErrorKind::Conflict);
        }
        other => panic!("a store of another format must be refused: {other:?}"),
    }
}

#[test]
fn an_unreachable_cluster_is_a_storage_error_quickly() {
    let start = Instant::now();
    let mut options = ValkeyOptions::new(["valkey://127.0.0.1:1", "valkey://127.0.0.1:2"], "app");
    options.connect_timeout = Duration::from_millis(200);
    match ValkeyBackend::connect(&options) {
        Err(e @ Error::Storage(_)) => {
            assert_eq!(e.kind(), starling_core::ErrorKind::Unavailable);
            assert!(e.to_string().contains("127.0.0.1:2"), "{e}");
        }
        other => panic!("an unreachable cluster must be a storage error: {other:?}"),
    }
    // A non-routable address waits for the connect timeout, no more.
    let mut options = ValkeyOptions::new(["valkey://10.255.255.1:7000"], "app");
    options.connect_timeout = Duration::from_millis(300);
    assert!(matches!(
        ValkeyBackend::connect(&options),
        Err(Error::Storage(_))
    ));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );
}
