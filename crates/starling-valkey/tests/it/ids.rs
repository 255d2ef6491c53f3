//! Ids over a cluster: user and group ids from the namespace's counters,
//! never handed out twice across writers, and post ids under a node
//! number leased to one live process.

use starling_core::{Config, Durability, Error, PostId, UserId};
use starling_engine::Engine;
use starling_store::Backend;
use starling_valkey::ValkeyBackend;

use crate::cluster;

fn node_key(namespace: &str, node: u16) -> String {
    format!("{namespace}:{{m}}:node:{node}")
}

#[test]
fn user_and_group_ids_come_from_the_cluster_counters() {
    let ns = cluster::namespace();
    let backend = ValkeyBackend::connect(&cluster::options(&ns)).expect("connect");
    let engine = Engine::with_backend(backend, Config::default()).expect("engine");
    let ann = engine.create_user("ann").expect("ann");
    let bob = engine.create_user("bob").expect("bob");
    assert!(bob.id > ann.id, "ids grow: {ann:?} then {bob:?}");
    let group = engine.create_group(ann.id, "friends").expect("group");
    engine.close().expect("close");

    // The counter lives in the store: the next writer continues after it,
    // even when the counter is behind the stored users (a failover lost
    // its last increments).
    let key = format!("{ns}:{{m}}:user_counter");
    let mut raw = cluster::raw(&key);
    let counter: u64 = redis::cmd("GET")
        .arg(&key)
        .query(&mut raw)
        .expect("counter");
    assert_eq!(counter, bob.id.0, "the counter holds the last id minted");
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(0)
        .query(&mut raw)
        .expect("counter set back");
    let backend = ValkeyBackend::connect(&cluster::options(&ns)).expect("reconnect");
    let engine = Engine::with_backend(backend, Config::default()).expect("engine");
    let cat = engine.create_user("cat").expect("cat");
    assert!(
        cat.id > bob.id,
        "no id handed out twice: {cat:?} after {bob:?}"
    );
    assert_eq!(engine.user(ann.id).expect("ann stays").name.as_str(), "ann");
    let second = engine.create_group(cat.id, "club").expect("group");
    assert!(second.id > group.id, "group ids grow");
    engine.close().expect("close");
}

#[test]
fn synced_ids_wait_for_a_replica_and_buffered_ones_do_not() {
    let ns = cluster::namespace();
    let backend = ValkeyBackend::connect(&cluster::options(&ns)).expect("connect");
    let a = backend.mint_user_id(Durability::Synced).expect("synced id");
    let b = backend
        .mint_user_id(Durability::Buffered)
        .expect("buffered id");
    match (a, b) {
        (Some(a), Some(b)) => assert!(b > a, "{a:?} then {b:?}"),
        other => panic!("the cluster mints ids: {other:?}"),
    }
    let g = backend.mint_group_id(Durability::Synced).expect("group id");
    assert!(g.is_some(), "the cluster mints group ids");
}

#[test]
fn a_fenced_out_writer_mints_no_ids() {
    let ns = cluster::namespace();
    let mut options = cluster::options(&ns);
    options.lease_ttl = std::time::Duration::from_secs(60);
    let old = ValkeyBackend::connect(&options).expect("old writer");
    old.mint_user_id(Durability::Buffered)
        .expect("mints while held");
    crate::writers::steal_lease(&ns);
    let new = ValkeyBackend::connect(&cluster::options(&ns)).expect("new writer");
    match old.mint_user_id(Durability::Buffered) {
        Err(Error::Fenced(_)) => {}
        other => panic!("a fenced-out writer must not mint: {other:?}"),
    }
    let next = new
        .mint_user_id(Durability::Buffered)
        .expect("new writer mints");
    assert_eq!(next, Some(UserId(2)), "the refused call used no id");
}

#[test]
fn post_ids_carry_a_node_number_no_live_process_holds() {
    let ns = cluster::namespace();
    // A live process of the store holds node 5 (its lease key is set).
    let held = node_key(&ns, 5);
    let mut raw = cluster::raw(&held);
    let _: () = redis::cmd("SET")
        .arg(&held)
        .arg("999999")
        .arg("PX")
        .arg(60_000)
        .query(&mut raw)
        .expect("node 5 held");
    let backend = ValkeyBackend::connect(&cluster::options(&ns)).expect("connect");
    let node = backend.post_id_node(5).expect("a node number");
    assert_ne!(node, 5, "node 5 is leased to another process");
    assert_eq!(
        backend.post_id_node(5).expect("again"),
        node,
        "claimed once"
    );
    let mine = node_key(&ns, node);
    let engine = Engine::with_backend(
        backend,
        Config {
            node_id: 5,
            ..Config::default()
        },
    )
    .expect("engine");
    let ann = engine.create_user("ann").expect("ann");
    let post = engine.post(ann.id, "hello").expect("post");
    assert_eq!(
        node_of(post.id),
        node,
        "the post id carries the leased node"
    );
    let token: Option<String> = redis::cmd("GET").arg(&mine).query(&mut raw).expect("read");
    assert!(token.is_some(), "the node is leased while the engine runs");
    engine.close().expect("close");
    let token: Option<String> = redis::cmd("GET").arg(&mine).query(&mut raw).expect("read");
    assert_eq!(token, None, "closing gives the node number back");
    // Free again: the next process gets the number it asks for.
    let backend = ValkeyBackend::connect(&cluster::options(&ns)).expect("connect");
    assert_eq!(backend.post_id_node(node).expect("node"), node);
}

fn node_of(id: PostId) -> u16 {
    ((id.0 >> PostId::SEQUENCE_BITS) & u64::from(PostId::MAX_NODE)) as u16
}
