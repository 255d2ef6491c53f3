//! The engine behind its async front (`starling::AsyncEngine`, which runs
//! every call on a fixed pool of threads it owns), with the server's error
//! type.

use std::path::Path;

use starling::{AsyncEngine, Engine, Subscription, UserId};

use crate::error::ApiError;

/// The open engine, shared by every request.
pub(crate) struct Db {
    engine: AsyncEngine,
}

impl Db {
    /// Opens the engine (blocking).
    pub(crate) fn open(path: &Path, config: starling::Config) -> starling::Result<Db> {
        Ok(Db {
            engine: AsyncEngine::new(Engine::open(path, config)?)?,
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
