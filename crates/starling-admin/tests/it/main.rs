//! The admin tool end to end: a backup opens on its own and checks clean;
//! damage is reported by `check` and repaired by `rebuild`.

use std::process::Command;

use starling::{Backend, InboxStore};
use starling::{Config, Counts, Durability, Engine, RocksBackend};
use starling_core::Mutation;

fn admin(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_starling-admin"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("admin runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn backup_restores_and_checks_clean_and_rebuild_repairs() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let db = tmp.path().join("db");
    {
        let engine = Engine::open(&db, Config::default()).expect("open");
        let ada = engine.create_user("ada").expect("create").id;
        for i in 0..30 {
            let f = engine.create_user(&format!("f{i}")).expect("create").id;
            engine.follow(f, ada).expect("follow");
        }
        for i in 0..10 {
            engine.post(ada, &format!("post {i}")).expect("post");
        }
        // f0 reads (so counts as active, and its inbox must be complete).
        let f0 = engine.user_by_name("f0").expect("f0").id;
        assert_eq!(
            engine
                .home_timeline(f0, None, 50)
                .expect("home")
                .posts
                .len(),
            10
        );
        engine.close().expect("close");
    }
    let (code, out) = admin(&db, &["check"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("31 users, 30 edges, 10 posts"), "{out}");

    let backup = tmp.path().join("backup");
    let (code, out) = admin(&db, &["backup", backup.to_str().expect("utf-8 path")]);
    assert_eq!(code, 0, "{out}");
    // The restored copy is a database of its own: it opens and checks clean.
    let (code, out) = admin(&backup, &["check"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("10 posts"), "{out}");
    {
        let engine = Engine::open(&backup, Config::default()).expect("open backup");
        let ada = engine.user_by_name("ada").expect("ada");
        assert_eq!(engine.counts(ada.id).expect("counts").followers, 30);
        let f0 = engine.user_by_name("f0").expect("f0");
        assert_eq!(
            engine
                .home_timeline(f0.id, None, 50)
                .expect("home")
                .posts
                .len(),
            10
        );
        engine.close().expect("close");
    }

    let (code, out) = admin(&db, &["stats"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("inbox") && out.contains("write amplification"),
        "{out}"
    );

    // Damage derived state behind the engine's back: a wrong count and a
    // lost inbox entry.
    {
        let backend = RocksBackend::open(&db, &Config::default()).expect("open");
        let ada = starling::UserId(1);
        let f0 = starling::UserId(2);
        let mut newest = Vec::new();
        backend.inbox(f0, None, 1, &mut newest).expect("inbox");
        let damage = [
            Mutation::SetCounts {
                user: ada,
                counts: Counts {
                    followers: 3,
                    following: 0,
                },
            },
            Mutation::InboxDelete {
                owner: f0,
                post: newest[0].post,
            },
        ];
        backend.apply(&damage, Durability::Synced).expect("damage");
    }
    let (code, out) = admin(&db, &["check"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("user 1: counts") && out.contains("inbox of 2 lacks post"),
        "{out}"
    );
    assert!(out.contains(": 2 problems"), "{out}");
    let (code, out) = admin(&db, &["rebuild"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("repaired 2 problems") && out.contains("after rebuild: 0 problems"),
        "{out}"
    );
    let (code, out) = admin(&db, &["check"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = admin(&tmp.path().join("missing"), &["check"]);
    assert_eq!(code, 2, "{out}");
}
