//! Shared set-up for Starling's benchmarks: loading a graph straight
//! through the storage seam, so that set-up time stays out of the figures.

use starling::{Backend, Config, Durability, GenericEngine, PostId, Result, RocksBackend, UserId};
use starling_core::{EdgeMode, Mutation, User, Username};

/// An engine in a temporary folder whose user 1 has `followers` followers
/// (users 2 to followers + 1).
pub struct Fixture {
    /// The engine.
    pub engine: GenericEngine<RocksBackend>,
    /// The author with the followers.
    pub author: UserId,
    /// The folder, removed when dropped.
    pub dir: tempfile::TempDir,
}

/// Builds a [`Fixture`].
pub fn author_with_followers(followers: u64, config: Config) -> Result<Fixture> {
    let dir = tempfile::tempdir().map_err(|e| {
        starling::Error::Storage(starling::StorageError::from_source("temporary folder", e))
    })?;
    let backend = RocksBackend::open(dir.path(), &config)?;
    let author = load_followers(&backend, followers)?;
    // A large follower list lives in table files, not the memtable, and
    // the load's background work is done before anything is timed.
    backend.flush()?;
    backend.wait_for_compactions()?;
    Ok(Fixture {
        engine: GenericEngine::with_backend(backend, config)?,
        author,
        dir,
    })
}

/// Stores users 1 to `followers + 1` in `backend`, every one but user 1
/// following user 1 (pushed to), straight through the seam. Returns the
/// author, user 1.
pub fn load_followers<B: Backend>(backend: &B, followers: u64) -> Result<UserId> {
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
    Ok(author)
}

/// A new engine over a copy of `fixture`'s database (a checkpoint: hard
/// links to its table files) in a new temporary folder, so a post from it
/// goes to fresh inboxes while the loaded graph is shared. The folder is
/// removed when dropped.
pub fn fresh_copy(
    fixture: &Fixture,
    config: Config,
) -> Result<(GenericEngine<RocksBackend>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().map_err(|e| {
        starling::Error::Storage(starling::StorageError::from_source("temporary folder", e))
    })?;
    let path = dir.path().join("copy");
    fixture.engine.backend().checkpoint(&path)?;
    let engine = GenericEngine::with_backend(RocksBackend::open(&path, &config)?, config)?;
    Ok((engine, dir))
}

/// An engine with a reader who follows `push` authors under the push
/// threshold and `pulled` authors over it, each with `posts_each` posts;
/// the reader's inbox is materialized.
pub struct TimelineFixture<B: Backend = RocksBackend> {
    /// The engine.
    pub engine: GenericEngine<B>,
    /// The reader.
    pub reader: UserId,
    /// The folder of an embedded database, removed when dropped.
    pub dir: Option<tempfile::TempDir>,
}

/// The configuration of a [`TimelineFixture`]: a push threshold of 2.
pub fn timeline_config() -> Config {
    Config {
        durability: Durability::Buffered,
        push_threshold: 2,
        inactive_after_ms: None,
        ..Config::default()
    }
}

/// Builds a [`TimelineFixture`] over RocksDB in a temporary folder.
pub fn reader_fixture(push: usize, pulled: usize, posts_each: usize) -> Result<TimelineFixture> {
    let dir = tempfile::tempdir().map_err(|e| {
        starling::Error::Storage(starling::StorageError::from_source("temporary folder", e))
    })?;
    let config = timeline_config();
    let engine = GenericEngine::with_backend(RocksBackend::open(dir.path(), &config)?, config)?;
    let mut fixture = reader_fixture_on(engine, push, pulled, posts_each)?;
    fixture.dir = Some(dir);
    Ok(fixture)
}

/// Builds a [`TimelineFixture`] in `engine` (any backend, opened with
/// [`timeline_config`]). Pulled authors get two extra followers so that
/// they cross the push threshold of 2.
pub fn reader_fixture_on<B: Backend>(
    engine: GenericEngine<B>,
    push: usize,
    pulled: usize,
    posts_each: usize,
) -> Result<TimelineFixture<B>> {
    let reader = engine.create_user("reader")?.id;
    let extra = [
        engine.create_user("extra1")?.id,
        engine.create_user("extra2")?.id,
    ];
    for i in 0..push + pulled {
        let author = engine.create_user(&format!("a{i}"))?.id;
        engine.follow(reader, author)?;
        if i >= push {
            for e in extra {
                engine.follow(e, author)?;
            }
        }
        for p in 0..posts_each {
            engine.post(author, &format!("post {p} by author {i}"))?;
        }
    }
    engine.wait_for_fanout()?;
    Ok(TimelineFixture {
        engine,
        reader,
        dir: None,
    })
}

/// Puts every follower of a [`Fixture`]'s author (users 2 to
/// `followers + 1`) in a new group of the author's, straight through the
/// seam. Returns the group.
pub fn group_of_all_followers(fixture: &Fixture, followers: u64) -> Result<starling::GroupId> {
    let group = fixture.engine.create_group(fixture.author, "everyone")?.id;
    let mut batch = Vec::with_capacity(20_000);
    for id in 2..=followers + 1 {
        batch.push(Mutation::PutLink {
            kind: starling_core::LinkKind::Members,
            from: group.0,
            to: id,
            value: 0,
        });
        if batch.len() >= 20_000 {
            fixture
                .engine
                .backend()
                .apply(&batch, Durability::Buffered)?;
            batch.clear();
        }
    }
    fixture
        .engine
        .backend()
        .apply(&batch, Durability::Buffered)?;
    fixture.engine.backend().flush()?;
    Ok(group)
}

/// A reader whose home timeline is made of reposts: they follow
/// `reposters` accounts, each of which reposts `each` posts of authors the
/// reader does not follow (every original reposted once), so every entry
/// of a page goes through the once-per-post check.
pub fn repost_fixture(reposters: usize, each: usize) -> Result<TimelineFixture> {
    let dir = tempfile::tempdir().map_err(|e| {
        starling::Error::Storage(starling::StorageError::from_source("temporary folder", e))
    })?;
    let config = Config {
        durability: Durability::Buffered,
        inactive_after_ms: None,
        ..Config::default()
    };
    let engine = GenericEngine::with_backend(RocksBackend::open(dir.path(), &config)?, config)?;
    let reader = engine.create_user("reader")?.id;
    let source = engine.create_user("source")?.id;
    for i in 0..reposters {
        let reposter = engine.create_user(&format!("r{i}"))?.id;
        engine.follow(reader, reposter)?;
        for p in 0..each {
            let original = engine.post(source, &format!("original {p} for {i}"))?;
            engine.repost(reposter, original.id)?;
        }
    }
    engine.wait_for_fanout()?;
    Ok(TimelineFixture {
        engine,
        reader,
        dir: Some(dir),
    })
}
