//! The example Starling server: an HTTP service over the engine.
//!
//! It adds what the engine leaves to applications: accounts with passwords
//! and bearer tokens, authorization on every route, JSON errors, rate
//! limits, metrics, live home timelines and engine events over server-sent
//! events, the text gateway both ways, graceful shutdown, and a small web
//! page. It is not a library for other programs;
//! the library half exists so that tests run the real server in-process.
//!
//! ```no_run
//! # async fn run() -> Result<(), starling_server::StartError> {
//! let config = starling_server::Config::new("./data");
//! starling_server::serve(config, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```
//!
//! Layout: [`Config`] is the command line; `accounts` keeps credentials and
//! tokens next to the engine's database; `db` runs engine calls through
//! `starling::AsyncEngine`, on a fixed pool of threads; `routes`, `social`
//! and `direct` hold the handlers; `live` turns engine events into the live
//! home timeline; `device` drains the engine's device-update outbox through
//! a transport; `tags` follows the engine's change feed into the hashtag
//! index; `metrics` and `limits` are in-memory bookkeeping.

mod accounts;
mod auth;
mod config;
mod db;
mod device;
mod direct;
mod error;
mod export;
mod limits;
mod live;
mod metrics;
mod protect;
mod routes;
mod server;
mod social;
mod tags;
mod web;

pub use config::{Config, DeviceTransport, DurabilityMode};
pub use routes::app;
pub use server::{AppState, Server, StartError, serve};
