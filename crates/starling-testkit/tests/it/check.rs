//! `check` finds each kind of damage to derived state; `rebuild` repairs it.

use starling_core::Durability;
use starling_core::{Config, Counts, EdgeMode, InboxEntry, Mutation, PostId};
use starling_engine::{Backend, Engine, Problem};
use starling_memstore::MemBackend;

#[test]
fn check_reports_each_damage_and_rebuild_repairs_it() {
    let backend = MemBackend::new();
    let config = Config {
        inactive_after_ms: None,
        ..Config::default()
    };
    let engine = Engine::with_backend(backend.clone(), config).expect("engine");
    let ada = engine.create_user("ada").expect("create").id;
    let bob = engine.create_user("bob").expect("create").id;
    let cy = engine.create_user("cy").expect("create").id;
    engine.follow(bob, ada).expect("follow");
    engine.follow(cy, ada).expect("follow");
    let p1 = engine.post(ada, "one").expect("post").id;
    let p2 = engine.post(ada, "two").expect("post").id;
    assert!(engine.check().expect("check").is_clean());

    let damage = [
        Mutation::DeleteFollowerEntry {
            followee: ada,
            follower: bob,
        },
        Mutation::PutFollowerEntry {
            followee: bob,
            follower: cy,
            since: PostId(0),
            mode: EdgeMode::Push,
        },
        Mutation::SetCounts {
            user: cy,
            counts: Counts {
                followers: 5,
                following: 1,
            },
        },
        Mutation::InboxDelete {
            owner: cy,
            post: p2,
        },
        Mutation::InboxPut {
            owner: ada,
            entry: InboxEntry {
                post: PostId(77),
                author: bob,
            },
        },
        Mutation::DeleteAuthorIndex {
            author: ada,
            post: p1,
        },
    ];
    backend.apply(&damage, Durability::Synced).expect("damage");
    let report = engine.check().expect("check");
    let has = |f: &dyn Fn(&Problem) -> bool| report.problems.iter().any(f);
    assert!(
        has(&|p| matches!(p, Problem::ReverseEdgeMissing(f, g, _) if *f == bob && *g == ada)),
        "{report:?}"
    );
    assert!(
        has(&|p| matches!(p, Problem::ReverseEdgeExtra(f, g) if *f == cy && *g == bob)),
        "{report:?}"
    );
    assert!(
        has(&|p| matches!(p, Problem::Counts(u, _, _) if *u == cy)),
        "{report:?}"
    );
    assert!(
        has(&|p| matches!(p, Problem::InboxMissing(u, e) if *u == cy && e.post == p2)),
        "{report:?}"
    );
    assert!(
        has(&|p| matches!(p, Problem::InboxStale(u, e) if *u == ada && e.post == PostId(77))),
        "{report:?}"
    );
    assert!(
        has(&|p| matches!(p, Problem::AuthorIndexMissing(post) if post.id == p1)),
        "{report:?}"
    );
    assert!(report.problems.iter().all(|p| !p.to_string().is_empty()));

    let repaired = engine.rebuild().expect("rebuild");
    assert_eq!(repaired.problems, report.problems);
    let after = engine.check().expect("check");
    assert!(after.is_clean(), "{:?}", after.problems);
    assert_eq!(
        engine.counts(cy).expect("counts"),
        Counts {
            followers: 0,
            following: 1
        }
    );
    let home = engine.home_timeline(cy, None, 10).expect("home");
    assert_eq!(
        home.posts.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![p2, p1]
    );
    assert_eq!(
        engine
            .author_timeline(ada, None, 10)
            .expect("own")
            .posts
            .len(),
        2
    );
}

#[test]
fn check_reports_missing_links_and_rebuild_restores_them() {
    use starling_core::LinkKind;
    let backend = MemBackend::new();
    let engine = Engine::with_backend(backend.clone(), Config::default()).expect("engine");
    let ada = engine.create_user("ada").expect("create").id;
    let bob = engine.create_user("bob").expect("create").id;
    let root = engine.post(ada, "root").expect("post").id;
    let reply = engine.reply(bob, root, "re").expect("reply").id;
    let repost = engine.repost(bob, root).expect("repost").id;
    let group = engine.create_group(ada, "g").expect("group").id;
    let secret = engine.post_to_group(ada, group, "s").expect("post").id;
    engine.block(ada, bob).expect("block");
    assert!(engine.check().expect("check").is_clean());

    let damage = [
        Mutation::DeleteLink {
            kind: LinkKind::Replies,
            from: root.0,
            to: reply.0,
        },
        Mutation::DeleteLink {
            kind: LinkKind::Reposts,
            from: root.0,
            to: bob.0,
        },
        Mutation::DeleteLink {
            kind: LinkKind::GroupPosts,
            from: group.0,
            to: !secret.0,
        },
        Mutation::DeleteLink {
            kind: LinkKind::BlockedBy,
            from: bob.0,
            to: ada.0,
        },
    ];
    backend.apply(&damage, Durability::Synced).expect("damage");
    let report = engine.check().expect("check");
    let missing: Vec<(LinkKind, u64, u64)> = report
        .problems
        .iter()
        .filter_map(|p| match p {
            Problem::LinkMissing(kind, from, to, _) => Some((*kind, *from, *to)),
            _ => None,
        })
        .collect();
    assert_eq!(missing.len(), 4, "{report:?}");
    assert!(missing.contains(&(LinkKind::Reposts, root.0, bob.0)));
    assert!(missing.contains(&(LinkKind::BlockedBy, bob.0, ada.0)));
    engine.rebuild().expect("rebuild");
    assert!(engine.check().expect("check").is_clean());
    let thread = engine.thread(ada, root, None, 10);
    assert!(thread.is_ok());
    assert_eq!(
        engine.get_post(repost).expect("repost").repost_of,
        Some(root)
    );
}
