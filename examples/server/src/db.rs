//! The engine behind its async front (`starling::AsyncEngine`, which runs
//! every call on a fixed pool of threads it owns), with the server's error
//! type.

use std::path::Path;

use starling::{AnyBackend, AsyncEngine, Subscription, UserId};

use crate::error::ApiError;

/// The engine over the store the server was started with: the embedded
/// database or a cluster.
pub(crate) type Engine = starling::AnyEngine;

/// The open engine, shared by every request.
pub(crate) struct Db {
    engine: AsyncEngine<AnyBackend>,
}

impl Db {
    /// Opens the engine (blocking): on the cluster at `store` (its
    /// namespace `namespace`) when one is given, else on the RocksDB
    /// database in the folder `dir`.
    pub(crate) fn open(
        store: Option<&str>,
        namespace: &str,
        dir: &Path,
        config: starling::Config,
    ) -> starling::Result<Db> {
        let engine = match store {
            Some(urls) => Engine::connect(urls, namespace, config)?,
            None => Engine::open(dir, config)?,
        };
        Ok(Db {
            engine: AsyncEngine::new(engine)?,
        })
    }

    /// Runs `f` against the engine on the engine's pool. Once
    /// closed, calls answer 503.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> Result<T, ApiError> + Send + 'static,
    {
        self.engine.call(f).await
    }

    /// Subscribes to `user`'s engine events: a stream that holds no thread
    /// while it waits and ends when the engine closes.
    pub(crate) async fn subscribe(&self, user: UserId) -> Result<Subscription, ApiError> {
        Ok(self.engine.subscribe(user).await?)
    }

    /// Lets queued fan-out finish, waits for running calls, and closes the
    /// engine, which ends every subscription. Later calls answer 503.
    pub(crate) async fn close(&self) -> starling::Result<()> {
        let waited = match self.engine.wait_for_fanout().await {
            // Closed already: nothing left to wait for.
            Err(starling::Error::Closed) => Ok(()),
            other => other,
        };
        let closed = self.engine.close().await;
        waited.and(closed)
    }
}
