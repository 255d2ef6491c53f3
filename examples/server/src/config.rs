//! Configuration from flags and environment variables.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Parser, ValueEnum};

const DEFAULT_BIND: &str = "127.0.0.1:8080";
const DEFAULT_NAMESPACE: &str = "starling";
const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024;
const DEFAULT_POST_BURST: u32 = 10;
const DEFAULT_POSTS_PER_MINUTE: u32 = 30;
const DEFAULT_LOGIN_BURST: u32 = 10;
const DEFAULT_LOGINS_PER_MINUTE: u32 = 10;
const DEFAULT_TOKEN_TTL_HOURS: u64 = 30 * 24;
const DEFAULT_LIVE_POLL_MS: u64 = 1000;
const DEFAULT_LIVE_STREAMS_PER_USER: usize = 4;
const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 30;
const DEFAULT_DM_BURST: u32 = 20;
const DEFAULT_DMS_PER_MINUTE: u32 = 30;
const DEFAULT_FOLLOW_BURST: u32 = 30;
const DEFAULT_FOLLOWS_PER_MINUTE: u32 = 30;
const DEFAULT_SMS_BURST: u32 = 5;
const DEFAULT_SMS_PER_MINUTE: u32 = 10;
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

impl From<starling::Durability> for DurabilityMode {
    fn from(durability: starling::Durability) -> DurabilityMode {
        match durability {
            starling::Durability::Synced => DurabilityMode::Synced,
            starling::Durability::Buffered => DurabilityMode::Buffered,
        }
    }
}

/// How fan-out decides between pushing a post into inboxes and letting
/// readers pull it (below the push threshold).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FanoutPolicyMode {
    /// Push to every follower of an author under the threshold.
    Threshold,
    /// Push or pull per (author, reader) from measured post and read rates.
    Rates,
}

impl From<FanoutPolicyMode> for starling::FanoutPolicy {
    fn from(mode: FanoutPolicyMode) -> starling::FanoutPolicy {
        match mode {
            FanoutPolicyMode::Threshold => starling::FanoutPolicy::Threshold,
            FanoutPolicyMode::Rates => starling::FanoutPolicy::Rates,
        }
    }
}

impl From<starling::FanoutPolicy> for FanoutPolicyMode {
    fn from(policy: starling::FanoutPolicy) -> FanoutPolicyMode {
        match policy {
            starling::FanoutPolicy::Threshold => FanoutPolicyMode::Threshold,
            starling::FanoutPolicy::Rates => FanoutPolicyMode::Rates,
        }
    }
}

/// Units a [`Period`] may be written in, largest first.
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// A span of time written as a whole number and a unit (`250ms`, `90s`,
/// `15m`, `12h`, `30d`), held in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period(pub u64);

impl FromStr for Period {
    type Err = String;

    fn from_str(raw: &str) -> Result<Period, String> {
        let raw = raw.trim();
        let split = raw
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("{raw:?} has no unit: add ms, s, m, h or d"))?;
        let (number, unit) = raw.split_at(split);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("{raw:?} does not start with a whole number"))?;
        let (_, scale) = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .ok_or_else(|| format!("{raw:?}: unknown unit {unit:?} (ms, s, m, h or d)"))?;
        number
            .checked_mul(*scale)
            .map(Period)
            .ok_or_else(|| format!("{raw:?} is too long"))
    }
}

impl fmt::Display for Period {
    /// In the largest unit that divides it exactly (`30d`, `90s`, `0ms`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, scale) = UNITS
            .iter()
            .find(|(_, scale)| self.0 != 0 && self.0.is_multiple_of(*scale))
            .unwrap_or(&("ms", 1));
        write!(f, "{}{name}", self.0 / scale)
    }
}

/// A [`Period`], or `never`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaybePeriod(pub Option<Period>);

impl FromStr for MaybePeriod {
    type Err = String;

    fn from_str(raw: &str) -> Result<MaybePeriod, String> {
        if raw.trim().eq_ignore_ascii_case("never") {
            return Ok(MaybePeriod(None));
        }
        raw.parse().map(|p| MaybePeriod(Some(p)))
    }
}

impl fmt::Display for MaybePeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => p.fmt(f),
            None => f.write_str("never"),
        }
    }
}

/// The engine's defaults, which every engine flag starts from.
fn engine_default() -> starling::Config {
    starling::Config::default()
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

    /// Where the engine keeps its data: seed addresses of a Valkey (or
    /// Redis) cluster, `valkey://host:port[,host:port...]`; when not given,
    /// the embedded RocksDB database in the data folder. The account store
    /// stays in the data folder either way.
    #[arg(long, env = "STARLING_STORE")]
    pub store: Option<String>,

    /// The store's name on the cluster (with `--store valkey://...`): many
    /// stores can share one cluster.
    #[arg(long, env = "STARLING_NAMESPACE", default_value = DEFAULT_NAMESPACE)]
    pub namespace: String,

    /// Address to listen on. Put a TLS-terminating proxy in front of it.
    #[arg(long, env = "STARLING_BIND", default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,

    /// When writes are acknowledged.
    #[arg(long, env = "STARLING_DURABILITY", value_enum, default_value_t = engine_default().durability.into())]
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

    /// Engine fan-out worker threads (1 to 64).
    #[arg(long, env = "STARLING_FANOUT_WORKERS", default_value_t = engine_default().fanout_workers)]
    pub fanout_workers: usize,

    /// Followers delivered per fan-out write batch (1 to 1000000).
    #[arg(long, env = "STARLING_FANOUT_BATCH", default_value_t = engine_default().fanout_batch)]
    pub fanout_batch: usize,

    /// Posts of authors with at least this many followers are delivered in
    /// bulk: each batch's inbox entries are loaded as one sorted table
    /// file, past the write-ahead log (`18446744073709551615`: never).
    #[arg(long, env = "STARLING_BULK_FANOUT_MIN_FOLLOWERS", default_value_t = engine_default().bulk_fanout_min_followers)]
    pub bulk_fanout_min_followers: u64,

    /// Followers per batch of a bulk delivery (1 to 1000000).
    #[arg(long, env = "STARLING_BULK_FANOUT_BATCH", default_value_t = engine_default().bulk_fanout_batch)]
    pub bulk_fanout_batch: usize,

    /// Authors with more followers than this are never fanned out; readers
    /// merge their posts at read time.
    #[arg(long, env = "STARLING_PUSH_THRESHOLD", default_value_t = engine_default().push_threshold)]
    pub push_threshold: u64,

    /// Push or pull below the threshold: `threshold` pushes to every
    /// follower, `rates` decides per reader from measured rates.
    #[arg(long, env = "STARLING_FANOUT_POLICY", value_enum, default_value_t = engine_default().fanout_policy.into())]
    pub fanout_policy: FanoutPolicyMode,

    /// Readers who have not read their home timeline for this long are
    /// skipped by fan-out and rebuilt on their next read (`30d`, `12h`, ...
    /// or `never`).
    #[arg(long, env = "STARLING_INACTIVE_AFTER", default_value_t = MaybePeriod(engine_default().inactive_after_ms.map(Period)))]
    pub inactive_after: MaybePeriod,

    /// Half-life of the post and read rates the `rates` policy compares
    /// (`1d`, `6h`, ...).
    #[arg(long, env = "STARLING_RATE_HALF_LIFE", default_value_t = Period(engine_default().rate_half_life_ms))]
    pub rate_half_life: Period,

    /// Entries kept in each home-timeline inbox (1 to 1000000).
    #[arg(long, env = "STARLING_INBOX_CAP", default_value_t = engine_default().inbox_cap)]
    pub inbox_cap: usize,

    /// Recent posts of an author copied into a new follower's inbox (at
    /// most 10000).
    #[arg(long, env = "STARLING_BACKFILL_POSTS", default_value_t = engine_default().backfill_posts)]
    pub backfill_posts: usize,

    /// Longest post, in characters (1 to 100000).
    #[arg(long, env = "STARLING_MAX_POST_CHARS", default_value_t = engine_default().max_post_chars)]
    pub max_post_chars: usize,

    /// This node's id, stamped into post ids (0 to 1023); distinct per
    /// process writing the same ids.
    #[arg(long, env = "STARLING_NODE_ID", default_value_t = engine_default().node_id)]
    pub node_id: u16,

    /// Direct messages an account may send in a burst.
    #[arg(long, env = "STARLING_DM_BURST", default_value_t = DEFAULT_DM_BURST)]
    pub dm_burst: u32,

    /// Sustained direct messages per minute per account.
    #[arg(long, env = "STARLING_DMS_PER_MINUTE", default_value_t = DEFAULT_DMS_PER_MINUTE)]
    pub dms_per_minute: u32,

    /// Follows an account may make in a burst (through the API or by text).
    #[arg(long, env = "STARLING_FOLLOW_BURST", default_value_t = DEFAULT_FOLLOW_BURST)]
    pub follow_burst: u32,

    /// Sustained follows per minute per account.
    #[arg(long, env = "STARLING_FOLLOWS_PER_MINUTE", default_value_t = DEFAULT_FOLLOWS_PER_MINUTE)]
    pub follows_per_minute: u32,

    /// Texts one phone number may send in a burst; past it the gateway is
    /// answered 429 before any work.
    #[arg(long, env = "STARLING_SMS_BURST", default_value_t = DEFAULT_SMS_BURST)]
    pub sms_burst: u32,

    /// Sustained texts per minute per phone number.
    #[arg(long, env = "STARLING_SMS_PER_MINUTE", default_value_t = DEFAULT_SMS_PER_MINUTE)]
    pub sms_per_minute: u32,

    /// How long a phone confirmation code may come back before the pending
    /// link is dropped, in milliseconds (1000 to 86400000).
    #[arg(long, env = "STARLING_PHONE_CODE_TTL_MS", default_value_t = engine_default().phone_code_ttl_ms)]
    pub phone_code_ttl_ms: u64,

    /// How long the engine's change feed keeps its records, in
    /// milliseconds (1 to 316224000000): the hashtag index follows the
    /// feed, and rebuilds itself if it fell further behind than this.
    #[arg(long, env = "STARLING_CHANGE_RETENTION_MS", default_value_t = engine_default().change_retention_ms)]
    pub change_retention_ms: u64,
    /// How long a deleted account's username stays reserved, in
    /// milliseconds (0 frees it at once).
    #[arg(long, env = "STARLING_NAME_HOLD_MS", default_value_t = engine_default().name_hold_ms)]
    pub name_hold_ms: u64,

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

    /// Device updates per recipient per UTC day; the rest are counted, not
    /// sent (at most 10000).
    #[arg(long, env = "STARLING_DEVICE_DAILY_CAP", default_value_t = engine_default().device_daily_cap)]
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
        let engine = engine_default();
        Config {
            data_dir: data_dir.into(),
            store: None,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            durability: engine.durability.into(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            post_burst: DEFAULT_POST_BURST,
            posts_per_minute: DEFAULT_POSTS_PER_MINUTE,
            login_burst: DEFAULT_LOGIN_BURST,
            logins_per_minute: DEFAULT_LOGINS_PER_MINUTE,
            token_ttl_hours: DEFAULT_TOKEN_TTL_HOURS,
            live_poll_ms: DEFAULT_LIVE_POLL_MS,
            live_streams_per_user: DEFAULT_LIVE_STREAMS_PER_USER,
            shutdown_grace_secs: DEFAULT_SHUTDOWN_GRACE_SECS,
            fanout_workers: engine.fanout_workers,
            fanout_batch: engine.fanout_batch,
            bulk_fanout_min_followers: engine.bulk_fanout_min_followers,
            bulk_fanout_batch: engine.bulk_fanout_batch,
            push_threshold: engine.push_threshold,
            fanout_policy: engine.fanout_policy.into(),
            inactive_after: MaybePeriod(engine.inactive_after_ms.map(Period)),
            rate_half_life: Period(engine.rate_half_life_ms),
            inbox_cap: engine.inbox_cap,
            backfill_posts: engine.backfill_posts,
            max_post_chars: engine.max_post_chars,
            node_id: engine.node_id,
            dm_burst: DEFAULT_DM_BURST,
            dms_per_minute: DEFAULT_DMS_PER_MINUTE,
            follow_burst: DEFAULT_FOLLOW_BURST,
            follows_per_minute: DEFAULT_FOLLOWS_PER_MINUTE,
            sms_burst: DEFAULT_SMS_BURST,
            sms_per_minute: DEFAULT_SMS_PER_MINUTE,
            phone_code_ttl_ms: engine.phone_code_ttl_ms,
            change_retention_ms: engine.change_retention_ms,
            name_hold_ms: engine.name_hold_ms,
            sms_secret: None,
            device_transport: DeviceTransport::File,
            device_webhook_url: None,
            device_outbox_file: None,
            device_daily_cap: engine.device_daily_cap,
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

    /// Where the hashtag index lives.
    pub fn tags_dir(&self) -> PathBuf {
        self.data_dir.join("tags")
    }

    /// Where the account store lives.
    pub fn accounts_dir(&self) -> PathBuf {
        self.data_dir.join("accounts")
    }

    /// Checks the settings that clap cannot.
    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        if let Some(store) = &self.store
            && !starling::is_cluster_address(store)
        {
            return Err(
                "--store takes valkey://host:port addresses (leave it out for the embedded database)",
            );
        }
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
        match self.engine_config().validate() {
            Ok(()) => Ok(()),
            Err(starling::Error::InvalidConfig(what)) => Err(what),
            Err(_) => Err("the engine settings are out of range"),
        }
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

    /// The engine's settings. Every field is named, so a setting the
    /// engine gains fails to compile here until it has a flag.
    pub fn engine_config(&self) -> starling::Config {
        starling::Config {
            durability: self.durability.into(),
            max_post_chars: self.max_post_chars,
            inbox_cap: self.inbox_cap,
            backfill_posts: self.backfill_posts,
            fanout_workers: self.fanout_workers,
            fanout_batch: self.fanout_batch,
            bulk_fanout_min_followers: self.bulk_fanout_min_followers,
            bulk_fanout_batch: self.bulk_fanout_batch,
            node_id: self.node_id,
            push_threshold: self.push_threshold,
            fanout_policy: self.fanout_policy.into(),
            inactive_after_ms: self.inactive_after.0.map(|p| p.0),
            rate_half_life_ms: self.rate_half_life.0,
            device_daily_cap: self.device_daily_cap,
            phone_code_ttl_ms: self.phone_code_ttl_ms,
            change_retention_ms: self.change_retention_ms,
            name_hold_ms: self.name_hold_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

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

    fn parse(flags: &[&str]) -> Result<Config, String> {
        let args = std::iter::once("starling-server").chain(flags.iter().copied());
        let config = Config::try_parse_from(args).map_err(|e| e.to_string())?;
        config.validate().map_err(str::to_owned)?;
        Ok(config)
    }

    fn engine(flags: &[&str]) -> starling::Config {
        match parse(flags) {
            Ok(c) => c.engine_config(),
            Err(e) => panic!("{flags:?} refused: {e}"),
        }
    }

    fn refused(flags: &[&str], why: &str) {
        match parse(flags) {
            Ok(c) => panic!("{flags:?} accepted: {:?}", c.engine_config()),
            Err(e) => assert!(e.contains(why), "{flags:?}: {e}"),
        }
    }

    #[test]
    fn the_store_is_the_embedded_database_or_cluster_addresses() {
        let embedded = parse(&[]).expect("defaults");
        assert_eq!(embedded.store, None);
        assert_eq!(embedded.namespace, "starling");
        let cluster = parse(&[
            "--store",
            "valkey://127.0.0.1:7100,valkey://127.0.0.1:7101",
            "--namespace",
            "app",
        ])
        .expect("cluster addresses");
        assert_eq!(
            cluster.store.as_deref(),
            Some("valkey://127.0.0.1:7100,valkey://127.0.0.1:7101")
        );
        assert_eq!(cluster.namespace, "app");
        refused(&["--store", "/var/lib/starling"], "valkey://");
        refused(&["--store", "http://127.0.0.1:7100"], "valkey://");
    }

    #[test]
    fn engine_defaults_come_from_the_engine() {
        let d = starling::Config::default();
        assert_eq!(
            format!("{:?}", Config::new("x").engine_config()),
            format!("{d:?}")
        );
        assert_eq!(format!("{:?}", engine(&[])), format!("{d:?}"));
        // `--help` shows the engine's defaults, written as the flags read them.
        let help = Config::command().render_long_help().to_string();
        for shown in [
            format!("[default: {}]", d.inbox_cap),
            format!("[default: {}]", d.push_threshold),
            "[default: 30d]".to_owned(),
            "[default: 1d]".to_owned(),
            "[default: threshold]".to_owned(),
            "[default: synced]".to_owned(),
        ] {
            assert!(help.contains(&shown), "{shown} not in --help");
        }
    }

    #[test]
    fn fanout_flags() {
        let e = engine(&[
            "--fanout-policy",
            "rates",
            "--push-threshold",
            "5000",
            "--fanout-batch",
            "256",
            "--fanout-workers",
            "4",
            "--bulk-fanout-min-followers",
            "20000",
            "--bulk-fanout-batch",
            "50000",
        ]);
        assert_eq!(e.fanout_policy, starling::FanoutPolicy::Rates);
        assert_eq!(e.push_threshold, 5000);
        assert_eq!(e.fanout_batch, 256);
        assert_eq!(e.fanout_workers, 4);
        assert_eq!(e.bulk_fanout_min_followers, 20_000);
        assert_eq!(e.bulk_fanout_batch, 50_000);
        refused(&["--fanout-policy", "sometimes"], "invalid value");
        refused(&["--fanout-batch", "0"], "fanout_batch");
        refused(&["--bulk-fanout-batch", "0"], "bulk_fanout_batch");
        refused(&["--fanout-workers", "65"], "fanout_workers");
        refused(&["--push-threshold", "lots"], "invalid digit");
    }

    #[test]
    fn inbox_flags() {
        let e = engine(&["--inbox-cap", "100", "--backfill-posts", "0"]);
        assert_eq!((e.inbox_cap, e.backfill_posts), (100, 0));
        refused(&["--inbox-cap", "0"], "inbox_cap");
        refused(&["--backfill-posts", "10001"], "backfill_posts");
        refused(&["--inbox-cap", "many"], "invalid digit");
    }

    #[test]
    fn period_flags() {
        let e = engine(&["--inactive-after", "7d", "--rate-half-life", "90m"]);
        assert_eq!(e.inactive_after_ms, Some(7 * 86_400_000));
        assert_eq!(e.rate_half_life_ms, 90 * 60_000);
        assert_eq!(
            engine(&["--inactive-after", "never"]).inactive_after_ms,
            None
        );
        assert_eq!(
            engine(&["--inactive-after", "250ms"]).inactive_after_ms,
            Some(250)
        );
        refused(&["--inactive-after", "7"], "no unit");
        refused(&["--inactive-after", "7w"], "unknown unit");
        refused(&["--rate-half-life", "never"], "whole number");
        refused(&["--rate-half-life", "0s"], "rate_half_life_ms");
        refused(&["--rate-half-life", "99999999999999999d"], "too long");
        for (ms, shown) in [
            (86_400_000, "1d"),
            (90_000, "90s"),
            (1500, "1500ms"),
            (0, "0ms"),
        ] {
            assert_eq!(Period(ms).to_string(), shown);
            assert_eq!(shown.parse::<Period>(), Ok(Period(ms)));
        }
    }

    #[test]
    fn post_and_node_flags() {
        let e = engine(&["--max-post-chars", "500", "--node-id", "1023"]);
        assert_eq!((e.max_post_chars, e.node_id), (500, 1023));
        refused(&["--max-post-chars", "0"], "max_post_chars");
        refused(&["--node-id", "1024"], "node_id");
    }

    #[test]
    fn durability_and_device_flags() {
        let e = engine(&["--durability", "buffered", "--device-daily-cap", "3"]);
        assert_eq!(e.durability, starling::Durability::Buffered);
        assert_eq!(e.device_daily_cap, 3);
        refused(&["--device-daily-cap", "10001"], "device_daily_cap");
        let e = engine(&["--phone-code-ttl-ms", "60000"]);
        assert_eq!(e.phone_code_ttl_ms, 60_000);
        let e = engine(&["--name-hold-ms", "0"]);
        assert_eq!(e.name_hold_ms, 0);
        refused(&["--phone-code-ttl-ms", "999"], "phone_code_ttl_ms");
    }

    #[test]
    fn every_flag_has_a_variable_and_a_row_in_the_readme() {
        let readme = include_str!("../README.md");
        let command = Config::command();
        let flags: Vec<_> = command
            .get_arguments()
            .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
            .collect();
        assert!(flags.len() >= 31, "{} flags", flags.len());
        for arg in flags {
            let long = arg.get_long().expect("every setting is a long flag");
            let env = arg.get_env().expect("every setting has a variable");
            let row = format!("| `--{long}` | `{}` |", env.to_string_lossy());
            assert!(readme.contains(&row), "README lacks {row}");
        }
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
