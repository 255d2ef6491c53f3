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

#[test]
fn check_reports_like_damage_and_rebuild_repairs_it() {
    use starling_core::{LinkKind, Post};
    let backend = MemBackend::new();
    let engine = Engine::with_backend(backend.clone(), Config::default()).expect("engine");
    let ada = engine.create_user("ada").expect("create").id;
    let bob = engine.create_user("bob").expect("create").id;
    let cy = engine.create_user("cy").expect("create").id;
    let liked = engine.post(ada, "liked").expect("post").id;
    let other = engine.post(ada, "other").expect("post").id;
    assert!(engine.like(bob, liked).expect("like"));
    assert!(engine.like(cy, liked).expect("like"));
    assert!(engine.check().expect("check").is_clean());

    let stored = engine.get_post(other).expect("post");
    let damage = [
        // A count that is not the number of likers.
        Mutation::PutPost(Post { likes: 4, ..stored }),
        // A like the liker's list lacks.
        Mutation::DeleteLink {
            kind: LinkKind::Likes,
            from: cy.0,
            to: !liked.0,
        },
        // A like in a user's list with no liker behind it.
        Mutation::PutLink {
            kind: LinkKind::Likes,
            from: ada.0,
            to: !liked.0,
            value: 1,
        },
    ];
    backend.apply(&damage, Durability::Synced).expect("damage");
    let report = engine.check().expect("check");
    let has = |f: &dyn Fn(&Problem) -> bool| report.problems.iter().any(f);
    assert!(
        has(&|p| matches!(p, Problem::LikeCount(post, 4) if post.id == other && post.likes == 0)),
        "{report:?}"
    );
    assert!(
        has(
            &|p| matches!(p, Problem::LinkMissing(LinkKind::Likes, u, to, _) if *u == cy.0 && *to == !liked.0)
        ),
        "{report:?}"
    );
    assert!(
        has(&|p| matches!(p, Problem::LikeDangling(u, post) if *u == ada && *post == liked)),
        "{report:?}"
    );
    assert_eq!(report.problems.len(), 3, "{report:?}");
    assert!(report.problems.iter().all(|p| !p.to_string().is_empty()));
    engine.rebuild().expect("rebuild");
    let after = engine.check().expect("check");
    assert!(after.is_clean(), "{:?}", after.problems);
    assert_eq!(engine.get_post(other).expect("post").likes, 0);
    let likes = |u| {
        engine
            .liked_posts(u, u, None, 10)
            .expect("likes")
            .posts
            .len()
    };
    assert_eq!((likes(ada), likes(bob), likes(cy)), (0, 1, 1));
}

/// A membership without the member's side (as a store written before
/// the member's index existed holds) is reported, and a rebuild writes
/// it; a member's index naming a group they are not in is removed.
#[test]
fn check_reports_membership_index_damage_and_rebuild_repairs_it() {
    use starling_core::LinkKind;
    let backend = MemBackend::new();
    let engine = Engine::with_backend(backend.clone(), Config::default()).expect("engine");
    let ada = engine.create_user("ada").expect("create").id;
    let bob = engine.create_user("bob").expect("create").id;
    let cy = engine.create_user("cy").expect("create").id;
    let group = engine.create_group(ada, "friends").expect("group").id;
    let other = engine.create_group(cy, "others").expect("group").id;
    assert!(engine.add_member(ada, group, bob).expect("add"));
    assert!(engine.check().expect("check").is_clean());
    assert_eq!(
        engine.member_groups(bob, None, 10).expect("groups").groups[0].id,
        group
    );

    let damage = [
        Mutation::DeleteLink {
            kind: LinkKind::MemberOf,
            from: bob.0,
            to: group.0,
        },
        Mutation::PutLink {
            kind: LinkKind::MemberOf,
            from: ada.0,
            to: other.0,
            value: 1,
        },
    ];
    backend.apply(&damage, Durability::Synced).expect("damage");
    assert!(
        engine
            .member_groups(bob, None, 10)
            .expect("groups")
            .groups
            .is_empty()
    );
    let report = engine.check().expect("check");
    let has = |f: &dyn Fn(&Problem) -> bool| report.problems.iter().any(f);
    assert!(
        has(
            &|p| matches!(p, Problem::LinkMissing(LinkKind::MemberOf, m, g, _) if *m == bob.0 && *g == group.0)
        ),
        "{report:?}"
    );
    assert!(
        has(&|p| matches!(p, Problem::MembershipDangling(u, g) if *u == ada && *g == other.0)),
        "{report:?}"
    );
    assert_eq!(report.problems.len(), 2, "{report:?}");
    engine.rebuild().expect("rebuild");
    let after = engine.check().expect("check");
    assert!(after.is_clean(), "{:?}", after.problems);
    let groups = |u| engine.member_groups(u, None, 10).expect("groups").groups;
    assert_eq!(groups(bob).len(), 1);
    assert!(groups(ada).is_empty());
}
