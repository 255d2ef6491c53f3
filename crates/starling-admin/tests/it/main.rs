//! The admin tool end to end: it refuses folders without a store and
//! creates nothing there, finds the store in a server data folder, a backup
//! opens on its own and checks clean, damage is reported by `check` and
//! repaired by `rebuild`.

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

/// Every file and folder under `dir`, relative, sorted.
fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("listing") {
            let path = entry.expect("entry").path();
            out.push(
                path.strip_prefix(dir)
                    .expect("inside")
                    .display()
                    .to_string(),
            );
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A store holding one user and one post, written by the engine.
fn make_store(path: &std::path::Path) {
    let engine = Engine::open(path, Config::default()).expect("open");
    let ada = engine.create_user("ada").expect("create").id;
    engine.post(ada, "hello").expect("post");
    engine.close().expect("close");
}

#[test]
fn an_empty_folder_is_refused_and_left_empty() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let copy = elsewhere.path().join("copy");
    let copy = copy.to_str().expect("utf-8 path");
    for command in [&["check"][..], &["rebuild"], &["stats"], &["backup", copy]] {
        let (code, out) = admin(tmp.path(), command);
        assert_eq!(code, 2, "{command:?}: {out}");
        assert!(
            out.contains("no Starling store at") && out.contains("holds no database"),
            "{command:?}: {out}"
        );
        assert!(
            tree(tmp.path()).is_empty(),
            "{command:?} created {:?}",
            tree(tmp.path())
        );
    }
    assert!(!elsewhere.path().join("copy").exists(), "no backup");
    // A folder that does not exist is not created either.
    let missing = tmp.path().join("data");
    let (code, out) = admin(&missing, &["check"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("does not exist"), "{out}");
    assert!(!missing.exists());
}

#[test]
fn a_server_data_folder_is_checked_through_its_engine_store() {
    let tmp = tempfile::tempdir().expect("temp dir");
    // The example server's layout: the engine's store in `engine/`, the
    // accounts beside it.
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("accounts")).expect("mkdir");
    make_store(&data.join("engine"));
    let before = tree(&data);
    let (code, out) = admin(&data, &["check"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("server data folder"), "{out}");
    assert!(out.contains("checked 1 users, 0 edges, 1 posts"), "{out}");
    // Nothing new at the data folder's top level (RocksDB's own files
    // inside the store may change).
    let top =
        |t: &[String]| -> Vec<String> { t.iter().filter(|p| !p.contains('/')).cloned().collect() };
    assert_eq!(top(&tree(&data)), top(&before));
}

#[test]
fn a_store_folder_is_checked_as_it_is() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let store = tmp.path().join("db");
    make_store(&store);
    let (code, out) = admin(&store, &["check"]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("server data folder"), "{out}");
    assert!(out.contains("checked 1 users, 0 edges, 1 posts"), "{out}");
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
