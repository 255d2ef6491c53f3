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

    /// How often a live timeline stream looks for new posts, in milliseconds.
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
        }
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
}
