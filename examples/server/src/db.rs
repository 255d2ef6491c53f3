//! The engine, behind a gate that runs every call on a blocking thread and
//! lets shutdown take the engine away once in-flight calls are done.

use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;
use starling::Engine;

use crate::error::ApiError;

/// The open engine, shared by every request.
pub(crate) struct Db {
    /// `None` once closed. Calls hold the read lock for their duration;
    /// closing takes the write lock, so it waits for them.
    engine: RwLock<Option<Engine>>,
}

impl Db {
    /// Opens the engine (blocking).
    pub(crate) fn open(path: &Path, config: starling::Config) -> starling::Result<Db> {
        let engine = Engine::open(path, config)?;
        Ok(Db {
            engine: RwLock::new(Some(engine)),
        })
    }

    /// Runs `f` against the engine on a blocking thread.
    pub(crate) async fn call<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> Result<T, ApiError> + Send + 'static,
    {
        let db = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let guard = db.engine.read();
            match guard.as_ref() {
                Some(engine) => f(engine),
                None => Err(ApiError::unavailable()),
            }
        })
        .await
        .map_err(|e| ApiError::internal(&e))?
    }

    /// Waits for running calls, lets queued fan-out finish, and closes the
    /// engine (blocking). Later calls answer 503.
    pub(crate) fn close(&self) -> starling::Result<()> {
        let Some(engine) = self.engine.write().take() else {
            return Ok(());
        };
        let waited = engine.wait_for_fanout();
        let closed = engine.close();
        waited.and(closed)
    }
}
