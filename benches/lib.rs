//! Shared set-up for Starling's benchmarks: loading a graph straight
//! through the storage seam, so that set-up time stays out of the figures.

use starling::{Config, Durability, GenericEngine, PostId, Result, RocksBackend, UserId};
use starling_core::{EdgeMode, Mutation, User, Username};
use starling_inbox::{Backend, OpenBackend};

/// An engine in a temporary folder whose user 1 has `followers` followers
/// (users 2 to followers + 1).
pub struct Fixture {
    /// The engine.
    pub engine: GenericEngine<RocksBackend>,
    /// The author with the followers.
    pub author: UserId,
    _dir: tempfile::TempDir,
}

/// Builds a [`Fixture`].
pub fn author_with_followers(followers: u64, config: Config) -> Result<Fixture> {
    let dir = tempfile::tempdir().map_err(|e| starling::Error::Storage(starling::StorageError::new(e.to_string())))?;
    let backend = RocksBackend::open(dir.path(), &config)?;
    let author = UserId(1);
    let mut batch = Vec::with_capacity(20_000);
    for id in 1..=followers + 1 {
        batch.push(Mutation::PutUser(User {
            id: UserId(id),
            name: Username::parse(&format!("u{id}"))?,
            created_at_ms: 0,
        }));
        if id != author.0 {
            batch.push(Mutation::AddEdge {
                follower: UserId(id),
                followee: author,
                since: PostId(0),
                mode: EdgeMode::Push,
            });
        }
        if batch.len() >= 20_000 {
            backend.apply(&batch, Durability::Buffered)?;
            batch.clear();
        }
    }
    backend.apply(&batch, Durability::Buffered)?;
    Ok(Fixture {
        engine: GenericEngine::with_backend(backend, config)?,
        author,
        _dir: dir,
    })
}
