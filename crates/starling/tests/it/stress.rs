//! Many threads following, unfollowing, posting, deleting and reading at
//! once; afterwards counts equal edge counts, both directions of every edge
//! agree, every inbox equals its rebuild, and `check` is clean.

use std::sync::atomic::{AtomicU64, Ordering};

use starling::{Config, Durability, Engine, Error, PostId, UserId};

/// A small deterministic generator per thread (SplitMix64).
struct Draw(u64);

impl Draw {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

#[test]
fn concurrent_mixed_workload_leaves_consistent_state() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Engine::open(
        dir.path(),
        Config {
            durability: Durability::Buffered,
            fanout_batch: 8,
            inbox_cap: 50,
            ..Config::default()
        },
    )
    .expect("open");
    let users: Vec<UserId> = (0..60)
        .map(|i| engine.create_user(&format!("s{i}")).expect("create").id)
        .collect();
    let posts: parking_posts::Posts = parking_posts::Posts::default();
    let ops = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let (engine, users, posts, ops) = (&engine, &users, &posts, &ops);
            s.spawn(move || {
                let mut d = Draw(t + 1);
                for _ in 0..1_500 {
                    let a = users[d.below(users.len() as u64) as usize];
                    let b = users[d.below(users.len() as u64) as usize];
                    let result = match d.below(10) {
                        0..=2 => engine.follow(a, b).map(drop),
                        3 => engine.unfollow(a, b).map(drop),
                        4 | 5 => engine.post(a, "busy").map(|p| posts.push(p.id, a)),
                        6 => match posts.pick(&mut d) {
                            Some((p, author)) => engine.delete_post(author, p).map(drop),
                            None => Ok(()),
                        },
                        7 => engine.home_timeline(a, None, 20).map(drop),
                        8 => engine.followers(a, None, 50).map(drop),
                        _ => engine.counts(a).map(drop),
                    };
                    match result {
                        Ok(()) | Err(Error::SelfFollow) => {}
                        Err(e) => panic!("thread {t}: {e}"),
                    }
                    ops.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(ops.load(Ordering::Relaxed), 12_000);
    let report = engine.check().expect("check");
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.pending_jobs, 0);
    let mut edges = 0;
    for &u in &users {
        let counts = engine.counts(u).expect("counts");
        let followers = engine.followers(u, None, 200).expect("followers").users;
        let following = engine.following(u, None, 200).expect("following").users;
        assert_eq!(counts.followers as usize, followers.len());
        assert_eq!(counts.following as usize, following.len());
        for f in &following {
            assert!(
                engine
                    .followers(*f, None, 200)
                    .expect("followers")
                    .users
                    .contains(&u)
            );
        }
        edges += following.len();
    }
    assert!(edges > 100, "the workload built a graph ({edges} edges)");
}

mod parking_posts {
    use super::{Draw, PostId, UserId};
    use std::sync::Mutex;

    /// Posts made so far, shared by the threads.
    #[derive(Default)]
    pub(super) struct Posts(Mutex<Vec<(PostId, UserId)>>);

    impl Posts {
        pub(super) fn push(&self, id: PostId, author: UserId) {
            self.0.lock().expect("not poisoned").push((id, author));
        }

        pub(super) fn pick(&self, d: &mut Draw) -> Option<(PostId, UserId)> {
            let all = self.0.lock().expect("not poisoned");
            if all.is_empty() {
                None
            } else {
                Some(all[d.below(all.len() as u64) as usize])
            }
        }
    }
}
