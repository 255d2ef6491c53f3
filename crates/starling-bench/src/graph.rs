//! A social graph shaped like the measured Twitter graph (Kwak et al., WWW
//! 2010), scaled down: followings per user drawn from a power law (exponent
//! about 2.3, mean about 35 at full scale), followees chosen by Zipf
//! popularity, low reciprocity, and one account followed by
//! `celebrity_followers` users.

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Zipf};
use starling::Backend;
use starling::{Durability, PostId, RocksBackend, UserId};
use starling_core::{EdgeMode, Mutation, User, Username};

/// Graph shape.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    /// Users (ids 1..=users; user 1 is the celebrity).
    pub(crate) users: u64,
    /// Followers of user 1.
    pub(crate) celebrity_followers: u64,
    /// Mean followings per user (besides the celebrity).
    pub(crate) mean_following: f64,
    /// Seed.
    pub(crate) seed: u64,
}

/// What was loaded.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    /// Edges written.
    pub(crate) edges: u64,
}

pub(crate) fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_owned());
    bar
}

/// Writes the users and edges straight through the storage seam in large
/// batches (a bulk load; the engine is opened over it afterwards).
pub(crate) fn load(backend: &RocksBackend, shape: Shape, quiet: bool) -> Result<Loaded> {
    let mut rng = StdRng::seed_from_u64(shape.seed);
    // Followings per user: a power law with exponent ~2.3 (Zipf over 1..=5000),
    // scaled to the requested mean.
    let degree = Zipf::new(5000.0, 2.3)?;
    let degree_mean = (1..=5000).map(|k| f64::from(k).powf(-1.3)).sum::<f64>()
        / (1..=5000).map(|k| f64::from(k).powf(-2.3)).sum::<f64>();
    let popularity = Zipf::new(shape.users as f64, 1.0)?;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        progress(shape.users, "graph")
    };
    let mut batch = Vec::with_capacity(40_000);
    let mut loaded = Loaded::default();
    let celebrity = UserId(1);
    let first_fan = shape.users.saturating_sub(shape.celebrity_followers) + 1;
    let mut followees = Vec::new();
    for id in 1..=shape.users {
        batch.push(Mutation::PutUser(User {
            id: UserId(id),
            name: Username::parse(&format!("u{id}"))?,
            created_at_ms: 0,
        }));
        let want = (degree.sample(&mut rng) * shape.mean_following / degree_mean).round() as u64;
        followees.clear();
        for _ in 0..want.min(shape.users - 1) {
            // Popular accounts have small ids; user 1 is handled below.
            let f = popularity.sample(&mut rng) as u64 + 1;
            if f != id && f != 1 {
                followees.push(f);
            }
        }
        if id >= first_fan && id != 1 {
            followees.push(celebrity.0);
        }
        followees.sort_unstable();
        followees.dedup();
        for &f in &followees {
            batch.push(Mutation::AddEdge {
                follower: UserId(id),
                followee: UserId(f),
                since: PostId(0),
                mode: EdgeMode::Push,
            });
            loaded.edges += 1;
        }
        if batch.len() >= 40_000 {
            backend.apply(&batch, Durability::Buffered)?;
            batch.clear();
        }
        if id % 1024 == 0 {
            bar.set_position(id);
        }
    }
    backend.apply(&batch, Durability::Buffered)?;
    bar.finish_and_clear();
    Ok(loaded)
}
