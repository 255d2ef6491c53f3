//! Configuration from flags and environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

const DEFAULT_BIND: &str = "127.0.0.1:8080";
const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024;
const DEFAULT_POST_BURST: u32 = 10;
const DEFAULT_POSTS_PER_MINUTE: u32 = 30;
const DEFAULT_LOGIN_BURST: u32 = 10;
const DEFAULT_LOGINS_PER_MINUTE: u32 = 10;
const DEFAULT_TOKEN_TTL_HOURS: u64 = 30 * 24;
const DEFAULT_LIVE_POLL_MS: u64 = 1000;
const DEFAULT_LIVE_STREAMS_PER_USER: usize = 4;
const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 30;
const DEFAULT_FANOUT_WORKERS: usize = 2;
const DEFAULT_DM_BURST: u32 = 20;
const DEFAULT_DMS_PER_MINUTE: u32 = 30;
const DEFAULT_DEVICE_DAILY_CAP: u64 = 10;
const DEFAULT_DEVICE_LEASE_MS: u64 = 30_000;
const DEFAULT_DEVICE_POLL_MS: u64 = 1_000;
const DEFAULT_DEVICE_BATCH: usize = 50;

/// Where device updates (texts to phones) are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceTransport {
    /// Appended as JSON lines to `--device-outbox-file`, for local use.
    File,
    /// POSTed as JSON to `--device-webhook-url` (an SMS gateway).
    Webhook,
    /// Not sent: deliveries stay queued in the engine's outbox.
    None,
}

/// When the engine acknowledges a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DurabilityMode {
    /// After the write-ahead log is fsync'd (group commit).
    Synced,
    /// Once the write is in the OS buffer: survives a process crash, not a
    /// power cut.
    Buffered,
}

impl From<DurabilityMode> for starling::Durability {
    fn from(mode: DurabilityMode) -> starling::Durability {
        match mode {
            DurabilityMode::Synced => starling::Durability::Synced,
            DurabilityMode::Buffered => starling::Durability::Buffered,
        }
    }
}

/// The server's settings. Every flag can also be given as an environment
/// variable (shown in `--help`); a flag wins over the variable.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "starling-server",
    version,
    about = "The Starling example server"
)]
pub struct Config {
    /// Folder of the engine's database and the account store (created if
    /// missing).
    #[arg(long, env = "STARLING_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Address to listen on. Put a TLS-terminating proxy in front of it.
    #[arg(long, env = "STARLING_BIND", default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,

    /// When writes are acknowledged.
    #[arg(long, env = "STARLING_DURABILITY", value_enum, default_value_t = DurabilityMode::Synced)]
    pub durability: DurabilityMode,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "STARLING_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Posts an account may publish in a burst.
    #[arg(long, env = "STARLING_POST_BURST", default_value_t = DEFAULT_POST_BURST)]
    pub post_burst: u32,

    /// Sustained posts per minute per account.
    #[arg(long, env = "STARLING_POSTS_PER_MINUTE", default_value_t = DEFAULT_POSTS_PER_MINUTE)]
    pub posts_per_minute: u32,

    /// Log-in attempts per username in a burst.
    #[arg(long, env = "STARLING_LOGIN_BURST", default_value_t = DEFAULT_LOGIN_BURST)]
    pub login_burst: u32,

    /// Sustained log-in attempts per minute per username.
    #[arg(long, env = "STARLING_LOGINS_PER_MINUTE", default_value_t = DEFAULT_LOGINS_PER_MINUTE)]
    pub logins_per_minute: u32,

    /// How long a bearer token stays valid, in hours.
    #[arg(long, env = "STARLING_TOKEN_TTL_HOURS", default_value_t = DEFAULT_TOKEN_TTL_HOURS)]
    pub token_ttl_hours: u64,

    /// How often a live timeline stream re-reads the timeline without an
    /// engine event (a safety net; events wake it at once), in milliseconds.
    #[arg(long, env = "STARLING_LIVE_POLL_MS", default_value_t = DEFAULT_LIVE_POLL_MS)]
    pub live_poll_ms: u64,

    /// Live timeline streams one account may hold open at once.
    #[arg(long, env = "STARLING_LIVE_STREAMS_PER_USER", default_value_t = DEFAULT_LIVE_STREAMS_PER_USER)]
    pub live_streams_per_user: usize,

    /// On shutdown, how long in-flight requests may take before the engine
    /// is closed anyway, in seconds.
    #[arg(long, env = "STARLING_SHUTDOWN_GRACE_SECS", default_value_t = DEFAULT_SHUTDOWN_GRACE_SECS)]
    pub shutdown_grace_secs: u64,

    /// Engine fan-out worker threads.
    #[arg(long, env = "STARLING_FANOUT_WORKERS", default_value_t = DEFAULT_FANOUT_WORKERS)]
    pub fanout_workers: usize,

    /// Direct messages an account may send in a burst.
    #[arg(long, env = "STARLING_DM_BURST", default_value_t = DEFAULT_DM_BURST)]
    pub dm_burst: u32,

    /// Sustained direct messages per minute per account.
    #[arg(long, env = "STARLING_DMS_PER_MINUTE", default_value_t = DEFAULT_DMS_PER_MINUTE)]
    pub dms_per_minute: u32,

    /// Shared secret of the SMS gateway: `POST /sms/inbound` must carry it
    /// as a bearer token. Without it the route answers 503.
    #[arg(long, env = "STARLING_SMS_SECRET", hide_env_values = true)]
    pub sms_secret: Option<String>,

    /// Where device updates are sent.
    #[arg(long, env = "STARLING_DEVICE_TRANSPORT", value_enum, default_value_t = DeviceTransport::File)]
    pub device_transport: DeviceTransport,

    /// The gateway URL device updates are POSTed to (`webhook` transport).
    #[arg(long, env = "STARLING_DEVICE_WEBHOOK_URL")]
    pub device_webhook_url: Option<String>,

    /// The file device updates are appended to (`file` transport); default
    /// `device-outbox.jsonl` in the data folder.
    #[arg(long, env = "STARLING_DEVICE_OUTBOX_FILE")]
    pub device_outbox_file: Option<PathBuf>,

    /// Device updates per recipient per UTC day; the rest are counted, not sent.
    #[arg(long, env = "STARLING_DEVICE_DAILY_CAP", default_value_t = DEFAULT_DEVICE_DAILY_CAP)]
    pub device_daily_cap: u64,

    /// How long a leased device update waits for its acknowledgement before
    /// it is offered again, in milliseconds.
    #[arg(long, env = "STARLING_DEVICE_LEASE_MS", default_value_t = DEFAULT_DEVICE_LEASE_MS)]
    pub device_lease_ms: u64,

    /// How often the device worker looks for queued updates when idle, in
    /// milliseconds.
    #[arg(long, env = "STARLING_DEVICE_POLL_MS", default_value_t = DEFAULT_DEVICE_POLL_MS)]
    pub device_poll_ms: u64,
}

impl Config {
    /// The defaults, with data in `data_dir`. Unlike parsing, this reads no
    /// environment variables.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            durability: DurabilityMode::Synced,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            post_burst: DEFAULT_POST_BURST,
            posts_per_minute: DEFAULT_POSTS_PER_MINUTE,
            login_burst: DEFAULT_LOGIN_BURST,
            logins_per_minute: DEFAULT_LOGINS_PER_MINUTE,
            token_ttl_hours: DEFAULT_TOKEN_TTL_HOURS,
            live_poll_ms: DEFAULT_LIVE_POLL_MS,
            live_streams_per_user: DEFAULT_LIVE_STREAMS_PER_USER,
            shutdown_grace_secs: DEFAULT_SHUTDOWN_GRACE_SECS,
            fanout_workers: DEFAULT_FANOUT_WORKERS,
            dm_burst: DEFAULT_DM_BURST,
            dms_per_minute: DEFAULT_DMS_PER_MINUTE,
            sms_secret: None,
            device_transport: DeviceTransport::File,
            device_webhook_url: None,
            device_outbox_file: None,
            device_daily_cap: DEFAULT_DEVICE_DAILY_CAP,
            device_lease_ms: DEFAULT_DEVICE_LEASE_MS,
            device_poll_ms: DEFAULT_DEVICE_POLL_MS,
        }
    }

    /// Where the `file` transport appends device updates.
    pub fn device_outbox_file(&self) -> PathBuf {
        self.device_outbox_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("device-outbox.jsonl"))
    }

    /// Device updates leased per round of the device worker.
    pub(crate) fn device_batch(&self) -> usize {
        DEFAULT_DEVICE_BATCH
    }

    /// Where the engine's RocksDB database lives.
    pub fn engine_dir(&self) -> PathBuf {
        self.data_dir.join("engine")
    }

    /// Where the account store lives.
    pub fn accounts_dir(&self) -> PathBuf {
        self.data_dir.join("accounts")
    }

    /// Checks the settings that clap cannot.
    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        if self.max_body_bytes < 1024 {
            return Err("max_body_bytes must be at least 1024");
        }
        if self.post_burst == 0 || self.posts_per_minute == 0 {
            return Err("post_burst and posts_per_minute must be at least 1");
        }
        if self.login_burst == 0 || self.logins_per_minute == 0 {
            return Err("login_burst and logins_per_minute must be at least 1");
        }
        if self.token_ttl_hours == 0 || self.token_ttl_hours > 24 * 366 {
            return Err("token_ttl_hours must be between 1 and 8784");
        }
        if self.live_poll_ms < 10 || self.live_poll_ms > 60_000 {
            return Err("live_poll_ms must be between 10 and 60000");
        }
        if self.live_streams_per_user == 0 {
            return Err("live_streams_per_user must be at least 1");
        }
        if self.dm_burst == 0 || self.dms_per_minute == 0 {
            return Err("dm_burst and dms_per_minute must be at least 1");
        }
        if self.sms_secret.as_deref().is_some_and(|s| s.len() < 16) {
            return Err("sms_secret must be at least 16 characters");
        }
        if self.device_transport == DeviceTransport::Webhook {
            // Plain HTTP: for TLS, point it at a local TLS-originating proxy.
            match self.device_webhook_url.as_deref() {
                Some(url) if url.starts_with("http://") => {}
                _ => return Err("the webhook transport needs an http:// device_webhook_url"),
            }
        }
        if self.device_lease_ms < 100 || self.device_lease_ms > 86_400_000 {
            return Err("device_lease_ms must be between 100 and 86400000");
        }
        if self.device_poll_ms < 10 || self.device_poll_ms > 60_000 {
            return Err("device_poll_ms must be between 10 and 60000");
        }
        Ok(())
    }

    pub(crate) fn token_ttl(&self) -> Duration {
        Duration::from_secs(self.token_ttl_hours * 3600)
    }

    pub(crate) fn live_poll(&self) -> Duration {
        Duration::from_millis(self.live_poll_ms)
    }

    pub(crate) fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    pub(crate) fn engine_config(&self) -> starling::Config {
        starling::Config {
            durability: self.durability.into(),
            fanout_workers: self.fanout_workers,
            device_daily_cap: self.device_daily_cap,
            ..starling::Config::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsed_defaults_equal_new() {
        let parsed = Config::try_parse_from(["starling-server", "--data-dir", "x"]);
        let parsed = parsed.expect("parses");
        let built = Config::new("x");
        assert_eq!(format!("{parsed:?}"), format!("{built:?}"));
        assert_eq!(built.validate(), Ok(()));
    }

    #[test]
    fn flags_are_read() {
        let parsed = Config::try_parse_from([
            "starling-server",
            "--bind",
            "0.0.0.0:9000",
            "--durability",
            "buffered",
            "--post-burst",
            "3",
        ])
        .expect("parses");
        assert_eq!(parsed.bind, SocketAddr::from(([0, 0, 0, 0], 9000)));
        assert_eq!(parsed.durability, DurabilityMode::Buffered);
        assert_eq!(parsed.post_burst, 3);
        assert!(Config::try_parse_from(["starling-server", "--durability", "sometimes"]).is_err());
    }

    #[test]
    fn device_and_gateway_settings_are_checked() {
        let mut c = Config::new("x");
        c.device_transport = DeviceTransport::Webhook;
        assert!(c.validate().is_err(), "a webhook needs a URL");
        c.device_webhook_url = Some("ftp://gateway".into());
        assert!(c.validate().is_err());
        c.device_webhook_url = Some("https://gateway".into());
        assert!(c.validate().is_err());
        c.device_webhook_url = Some("http://127.0.0.1:9/sms".into());
        assert_eq!(c.validate(), Ok(()));
        c.sms_secret = Some("short".into());
        assert!(c.validate().is_err());
        c.sms_secret = Some("a-long-enough-secret".into());
        c.device_lease_ms = 5;
        assert!(c.validate().is_err());
        assert_eq!(
            Config::new("d").device_outbox_file(),
            PathBuf::from("d/device-outbox.jsonl")
        );
    }
}
