//! Start-up, shared state, and graceful shutdown.

use std::future::{Future, IntoFuture as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use starling::UserId;
use starling::sms::{Limited, RateLimits};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::accounts::{Accounts, StoreError};
use crate::config::Config;
use crate::db::Db;
use crate::device;
use crate::error::ApiError;
use crate::limits::RateLimiter;
use crate::live::Streams;
use crate::metrics::Metrics;
use crate::routes::app;
use crate::tags::{self, TagIndex};

/// Why the server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A setting is out of range.
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    /// The engine could not be opened or closed.
    #[error("engine: {0}")]
    Engine(#[from] starling::Error),
    /// The account store could not be opened.
    #[error("account store: {0}")]
    Accounts(String),
    /// Binding or serving failed.
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
}

impl From<StoreError> for StartError {
    fn from(e: StoreError) -> StartError {
        StartError::Accounts(e.to_string())
    }
}

impl RateLimits for AppState {
    fn take(&self, user: UserId, what: Limited) -> Result<(), std::time::Duration> {
        match what {
            Limited::Post => self.0.post_limits.take(user),
            Limited::Direct => self.0.dm_limits.take(user),
            Limited::Follow => self.0.follow_limits.take(user),
        }
    }
}

/// Everything a request handler can reach. Cloning is cheap.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    config: Config,
    db: Arc<Db>,
    accounts: Arc<Accounts>,
    /// The hashtag index, followed from the change feed.
    tags: Arc<TagIndex>,
    post_limits: RateLimiter<UserId>,
    dm_limits: RateLimiter<UserId>,
    follow_limits: RateLimiter<UserId>,
    /// Texts per sending phone number, checked before any work.
    sms_limits: RateLimiter<String>,
    login_limits: RateLimiter<String>,
    /// Argon2 is slow and memory-hungry on purpose: bound how many run at once.
    hashing: Semaphore,
    /// Bounds the exports running at once (each holds an engine thread).
    exports: Arc<Semaphore>,
    /// Serializes the create-user-then-store-password step of sign-ups.
    signups: tokio::sync::Mutex<()>,
    metrics: Metrics,
    streams: Streams,
    shutting_down: AtomicBool,
    shutdown: watch::Sender<bool>,
}

impl AppState {
    /// Opens the engine (in `config.data_dir`, or on the cluster of
    /// `config.store`) and the account store in `config.data_dir`.
    pub async fn open(config: Config) -> Result<AppState, StartError> {
        config.validate().map_err(StartError::Config)?;
        let (db, accounts, tags) = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || -> Result<_, StartError> {
                std::fs::create_dir_all(&config.data_dir)?;
                let db = Db::open(
                    config.store.as_deref(),
                    &config.namespace,
                    &config.engine_dir(),
                    config.engine_config(),
                )?;
                let accounts = Accounts::open(&config.accounts_dir(), config.token_ttl())?;
                let tags = TagIndex::open(&config.tags_dir())?;
                Ok((db, accounts, tags))
            })
            .await
            .map_err(|e| StartError::Io(std::io::Error::other(e)))??
        };
        let hashers = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(AppState(Arc::new(Inner {
            post_limits: RateLimiter::new(config.post_burst, config.posts_per_minute),
            dm_limits: RateLimiter::new(config.dm_burst, config.dms_per_minute),
            follow_limits: RateLimiter::new(config.follow_burst, config.follows_per_minute),
            sms_limits: RateLimiter::new(config.sms_burst, config.sms_per_minute),
            login_limits: RateLimiter::new(config.login_burst, config.logins_per_minute),
            hashing: Semaphore::new(hashers),
            exports: Arc::new(Semaphore::new(crate::export::EXPORTS)),
            signups: tokio::sync::Mutex::new(()),
            metrics: Metrics::default(),
            streams: Streams::new(config.live_streams_per_user),
            shutting_down: AtomicBool::new(false),
            shutdown: watch::Sender::new(false),
            db: Arc::new(db),
            accounts: Arc::new(accounts),
            tags: Arc::new(tags),
            config,
        })))
    }

    pub(crate) fn config(&self) -> &Config {
        &self.0.config
    }

    pub(crate) fn db(&self) -> &Arc<Db> {
        &self.0.db
    }

    pub(crate) fn accounts(&self) -> &Arc<Accounts> {
        &self.0.accounts
    }

    pub(crate) fn tags(&self) -> &Arc<TagIndex> {
        &self.0.tags
    }

    /// Takes one `what` from `user`'s allowance: the one place the API's
    /// routes and texts from the account's phone meet their rate limits.
    pub(crate) fn limit(&self, user: UserId, what: Limited) -> Result<(), ApiError> {
        RateLimits::take(self, user, what)
            .map_err(|wait| ApiError::rate_limited("rate_limited", wait))
    }

    pub(crate) fn sms_limits(&self) -> &RateLimiter<String> {
        &self.0.sms_limits
    }

    pub(crate) fn login_limits(&self) -> &RateLimiter<String> {
        &self.0.login_limits
    }

    pub(crate) fn hashing(&self) -> &Semaphore {
        &self.0.hashing
    }

    pub(crate) fn exports(&self) -> &Arc<Semaphore> {
        &self.0.exports
    }

    pub(crate) fn signups(&self) -> &tokio::sync::Mutex<()> {
        &self.0.signups
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub(crate) fn streams(&self) -> &Streams {
        &self.0.streams
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.0.shutting_down.load(Ordering::SeqCst)
    }

    /// Resolves once shutdown has begun.
    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.0.shutdown.subscribe()
    }

    /// Marks the server as shutting down: health checks fail (so a proxy
    /// stops routing here) and live streams end.
    pub fn begin_shutdown(&self) {
        self.0.shutting_down.store(true, Ordering::SeqCst);
        self.0.shutdown.send_replace(true);
    }

    /// Ends the engine: waits for in-flight calls and queued fan-out, then
    /// closes it. Requests still arriving are answered 503.
    pub async fn close(&self) -> Result<(), StartError> {
        self.begin_shutdown();
        self.0.db.close().await?;
        Ok(())
    }
}

/// A server bound to its address, not yet serving.
pub struct Server {
    listener: TcpListener,
    state: AppState,
}

impl Server {
    /// Opens the data folder and binds `config.bind` (port 0 picks a free port).
    pub async fn bind(config: Config) -> Result<Server, StartError> {
        let bind = config.bind;
        let state = AppState::open(config).await?;
        let listener = TcpListener::bind(bind).await?;
        Ok(Server { listener, state })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The shared state (for tests and embedding).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves; then stops accepting, lets
    /// in-flight requests finish (up to the configured grace period), ends
    /// live streams, waits for fan-out and closes the engine.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let Server { listener, state } = self;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "listening");
        let transport = device::Transport::from_config(state.config())
            .map_err(|e| StartError::Io(std::io::Error::other(e)))?;
        let device_worker = transport.map(|t| tokio::spawn(device::run(state.clone(), t)));
        let tag_follower = tokio::spawn(tags::run(state.clone()));
        let signal_state = state.clone();
        // One router for every connection: `into_make_service` prepares the
        // routes once, where serving the router itself would rebuild every
        // route for each connection (tens of KiB each, held for as long as a
        // server-sent-events stream stays open).
        let routes = app(state.clone()).into_make_service();
        let serving = axum::serve(listener, routes).with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            signal_state.begin_shutdown();
        });
        let grace = state.config().shutdown_grace();
        let mut begun = state.shutdown_signal();
        let overdue = async move {
            let _ = begun.wait_for(|b| *b).await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            served = serving.into_future() => served?,
            () = overdue => tracing::warn!(?grace, "in-flight requests outlived the grace period"),
        }
        state.begin_shutdown();
        if let Some(worker) = device_worker {
            // It stops at the shutdown signal, after the call in progress.
            let _ = worker.await;
        }
        // It stops at the shutdown signal, after the round in progress.
        let _ = tag_follower.await;
        tracing::info!("waiting for fan-out, then closing the engine");
        state.close().await?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Binds `config.bind` and serves until `shutdown` resolves (see [`Server::run`]).
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    Server::bind(config).await?.run(shutdown).await
}
