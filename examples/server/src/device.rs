//! The outbound half of the text gateway: a worker that drains the engine's
//! device-update outbox through a transport.
//!
//! Each round leases a batch (the engine marks it leased, durably, for
//! `--device-lease-ms`), hands each delivery to the transport, and
//! acknowledges it only after the transport accepted it. A send that fails
//! stops the round and the worker backs off (doubling from 250 ms to 30 s);
//! the failed delivery, and the rest of the batch, are offered again when
//! their lease ends. So every queued update is sent at least once, and none
//! is sent again once acknowledged. A crash between sending and
//! acknowledging sends that one again: texts are at-least-once.
//!
//! Transports:
//! - `file`: one JSON line per text (`{"id","to","text"}`), appended and
//!   fsync'd, for local use;
//! - `webhook`: an HTTP POST of the same JSON to the gateway's URL; any 2xx
//!   is success.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use starling::DeviceDelivery;
use tokio::sync::watch;

use crate::config::{Config, DeviceTransport};
use crate::server::AppState;

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// What a transport sends for one delivery.
#[derive(Serialize)]
struct Text<'a> {
    id: String,
    to: &'a str,
    text: &'a str,
}

impl<'a> Text<'a> {
    fn of(d: &'a DeviceDelivery) -> Text<'a> {
        Text {
            id: d.id.to_string(),
            to: d.phone.as_str(),
            text: &d.text,
        }
    }
}

/// Where texts go.
pub(crate) enum Transport {
    /// Appended to a file.
    File {
        /// The file.
        path: PathBuf,
        /// Serializes appends.
        lock: Arc<Mutex<()>>,
    },
    /// POSTed to a gateway.
    Webhook {
        /// The client (connection pool).
        client: reqwest::Client,
        /// The gateway's URL.
        url: String,
    },
}

impl Transport {
    /// The transport `config` asks for, or `None` when texts are not sent.
    pub(crate) fn from_config(config: &Config) -> Result<Option<Transport>, String> {
        Ok(match config.device_transport {
            DeviceTransport::None => None,
            DeviceTransport::File => Some(Transport::File {
                path: config.device_outbox_file(),
                lock: Arc::new(Mutex::new(())),
            }),
            DeviceTransport::Webhook => Some(Transport::Webhook {
                client: reqwest::Client::builder()
                    .timeout(WEBHOOK_TIMEOUT)
                    .build()
                    .map_err(|e| e.to_string())?,
                url: config
                    .device_webhook_url
                    .clone()
                    .ok_or("the webhook transport needs a URL")?,
            }),
        })
    }

    /// Sends one text; `Ok` means the far end has it.
    async fn send(&self, delivery: &DeviceDelivery) -> Result<(), String> {
        let line = serde_json::to_string(&Text::of(delivery)).map_err(|e| e.to_string())?;
        match self {
            Transport::File { path, lock } => {
                let (path, lock) = (path.clone(), Arc::clone(lock));
                tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                    let _one_writer = lock.lock();
                    let mut file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)?;
                    file.write_all(line.as_bytes())?;
                    file.write_all(b"\n")?;
                    file.sync_data()
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())
            }
            Transport::Webhook { client, url } => {
                let response = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(line)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if response.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("gateway answered {}", response.status()))
                }
            }
        }
    }
}

/// Drains the outbox until shutdown begins.
pub(crate) async fn run(state: AppState, transport: Transport) {
    let mut shutdown = state.shutdown_signal();
    let config = state.config();
    let (batch, lease_ms) = (config.device_batch(), config.device_lease_ms);
    let idle = Duration::from_millis(config.device_poll_ms);
    let mut backoff = Duration::ZERO;
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        let leased = state
            .db()
            .call(move |engine| Ok(engine.lease_device_deliveries(batch, lease_ms)?))
            .await;
        let wait = match leased {
            Err(e) => {
                tracing::warn!(error = ?e, "device outbox: lease failed");
                backoff = next_backoff(backoff);
                backoff
            }
            Ok(deliveries) if deliveries.is_empty() => idle,
            Ok(deliveries) => match send_all(&state, &transport, deliveries).await {
                Ok(()) => {
                    backoff = Duration::ZERO;
                    Duration::ZERO
                }
                Err(e) => {
                    tracing::warn!(error = %e, "device outbox: send failed; retrying after backoff");
                    backoff = next_backoff(backoff);
                    backoff
                }
            },
        };
        if !wait.is_zero() && sleep_or_shutdown(wait, &mut shutdown).await {
            return;
        }
    }
}

/// Sends and acknowledges each delivery in order; stops at the first failure.
async fn send_all(
    state: &AppState,
    transport: &Transport,
    deliveries: Vec<DeviceDelivery>,
) -> Result<(), String> {
    for delivery in deliveries {
        if let Err(e) = transport.send(&delivery).await {
            state
                .metrics()
                .device_failed
                .fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        let id = delivery.id;
        state
            .db()
            .call(move |engine| Ok(engine.ack_device_delivery(id)?))
            .await
            .map_err(|e| format!("{e:?}"))?;
        state.metrics().device_sent.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

fn next_backoff(current: Duration) -> Duration {
    if current.is_zero() {
        FIRST_BACKOFF
    } else {
        (current * 2).min(MAX_BACKOFF)
    }
}

/// Sleeps for `wait`; returns whether shutdown began meanwhile.
async fn sleep_or_shutdown(wait: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(wait) => false,
        changed = shutdown.changed() => changed.is_err() || *shutdown.borrow(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut b = Duration::ZERO;
        let mut seen = Vec::new();
        for _ in 0..10 {
            b = next_backoff(b);
            seen.push(b.as_millis());
        }
        assert_eq!(&seen[..4], &[250, 500, 1000, 2000]);
        assert_eq!(*seen.last().expect("some"), 30_000);
    }
}
