//! The RocksDB backend under the engine: records of the direct features
//! survive a reopen, and avatars live in blob files.

use starling_core::{Config, DmPolicy, Durability, ImageKind, Toggle, UserId};
use starling_engine::Engine;
use starling_rocks::RocksBackend;

fn config() -> Config {
    Config {
        durability: Durability::Synced,
        fanout_workers: 1,
        ..Config::default()
    }
}

fn open(dir: &std::path::Path) -> Engine<RocksBackend> {
    Engine::open(dir, config()).expect("engine opens")
}

#[test]
fn avatars_profiles_messages_and_the_outbox_survive_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A 100 KiB JPEG-looking picture: well over the blob threshold.
    let mut jpeg = vec![0xff, 0xd8, 0xff, 0xe0];
    jpeg.extend((0..100 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let (ada, bob, carol, first_id);
    {
        let engine = open(dir.path());
        ada = engine.create_user("ada").expect("user").id;
        bob = engine.create_user("bob").expect("user").id;
        carol = engine.create_user("carol").expect("user").id;
        assert_eq!(
            engine.set_avatar(ada, &jpeg).expect("avatar"),
            ImageKind::Jpeg
        );
        engine.set_profile(ada, "Ada", "engines").expect("profile");
        engine.set_dm_policy(bob, DmPolicy::Open).expect("open");
        engine.send_direct(ada, bob, "hello bob").expect("dm");
        for f in [bob, carol] {
            engine.follow(f, ada).expect("follow");
            engine
                .set_device_updates(f, ada, Toggle::On)
                .expect("device updates");
        }
        engine.link_phone(bob, "+15555550101").expect("phone");
        engine.link_phone(carol, "+15555550102").expect("phone");
        engine.post(ada, "first").expect("post");
        engine.post(ada, "second").expect("post");
        engine.wait_for_fanout().expect("fan-out");
        // Lease both of bob's and carol's first texts, acknowledge one.
        let leased = engine
            .lease_device_deliveries_at(1_000, 2, 500)
            .expect("lease");
        assert_eq!(leased.len(), 2);
        first_id = leased[0].id;
        assert!(engine.ack_device_delivery(first_id).expect("ack"));
        engine.backend().flush().expect("flush");
        engine.close().expect("close");
    }
    let blobs = std::fs::read_dir(dir.path())
        .expect("db dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".blob"))
        .count();
    assert!(blobs > 0, "the avatar was written to a blob file");

    let engine = open(dir.path());
    assert_eq!(
        engine.avatar(ada).expect("avatar"),
        Some((ImageKind::Jpeg, jpeg.clone()))
    );
    assert_eq!(engine.profile(ada).expect("profile").display_name, "Ada");
    assert_eq!(
        engine.user_by_phone("+15555550102").expect("phone"),
        Some(carol)
    );
    let convs = engine.conversations(bob, None, 10).expect("conversations");
    assert_eq!(convs.conversations.len(), 1);
    assert_eq!(
        (convs.conversations[0].with, convs.conversations[0].unread),
        (ada, 1)
    );
    // A message after reopen gets a larger id than the one before.
    let later = engine.send_direct(ada, bob, "again").expect("dm");
    assert!(later.id > convs.conversations[0].last);
    // Before the lease ends only the two never-leased texts are offered;
    // the acknowledged one never again, the leased one after its lease.
    let now = engine
        .lease_device_deliveries_at(1_100, 10, 500)
        .expect("lease");
    assert_eq!(now.len(), 2);
    assert!(now.iter().all(|d| d.id != first_id));
    let after = engine
        .lease_device_deliveries_at(1_500, 10, 500)
        .expect("lease");
    assert_eq!(after.len(), 1, "the unacknowledged lease came back");
    assert!(after[0].id != first_id);
    for d in now.iter().chain(&after) {
        assert!(engine.ack_device_delivery(d.id).expect("ack"));
    }
    assert!(!engine.ack_device_delivery(first_id).expect("ack twice"));
    assert!(
        engine
            .lease_device_deliveries_at(u64::MAX / 2, 10, 1)
            .expect("lease")
            .is_empty()
    );
    assert!(engine.remove_avatar(ada).expect("remove"));
    assert_eq!(engine.avatar(ada).expect("avatar"), None);
    assert!(engine.unlink_phone(UserId(carol.0)).expect("unlink"));
    engine.close().expect("close");
}
