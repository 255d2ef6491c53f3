//! The cluster client: which primary owns which slot, a pool of plain
//! connections per primary, and the bounded retry that carries a call
//! across a failover.
//!
//! The backend routes every call itself, rather than through a cluster
//! connection, because `WAIT` and `WAITAOF` count the writes of the
//! connection they are sent on: the writes of a batch and the wait for
//! their replicas must share one connection to one primary.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use redis::{Connection, RedisError, RedisResult, RetryMethod, Value};
use starling_core::{Error, Result, StorageError};

/// Slots of a Valkey cluster.
pub(crate) const SLOTS: usize = 16384;

/// The slot of a key: CRC16 (XMODEM) of its hash tag (the text between
/// the first `{` and the next `}`, when not empty), else of the whole key.
pub(crate) fn slot_of(key: &[u8]) -> u16 {
    let tag = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16(tag) % SLOTS as u16
}

fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// For each slot, a number `n` such that the hash tag `f{n}` falls in it:
/// the tag of the slot's fence key.
pub(crate) fn fence_tag(slot: u16) -> u32 {
    static TABLE: OnceLock<Vec<u32>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table = vec![u32::MAX; SLOTS];
        let mut left = SLOTS;
        let mut n = 0u32;
        while left > 0 {
            let s = usize::from(crc16(format!("f{n}").as_bytes()) % SLOTS as u16);
            if table[s] == u32::MAX {
                table[s] = n;
                left -= 1;
            }
            n += 1;
        }
        table
    });
    table[usize::from(slot)]
}

/// Timeouts and the retry window of the client.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) io: Duration,
    pub(crate) retry_for: Duration,
}

/// One primary and its idle connections.
struct Node {
    client: redis::Client,
    idle: Mutex<Vec<Connection>>,
}

/// Which primary owns each slot.
struct Topology {
    /// Slot -> index in `nodes`.
    owner: Vec<u16>,
    nodes: Vec<Arc<Node>>,
}

/// What a failed call means for the caller.
pub(crate) enum Failure {
    /// The topology may have changed or the connection broke: refresh and
    /// try again (the calls are idempotent).
    Retry(RedisError),
    /// A refusal or fault that another try would repeat.
    Fatal(Error),
}

impl From<RedisError> for Failure {
    fn from(e: RedisError) -> Failure {
        classify(e)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Fatal(e)
    }
}

/// The code the write scripts refuse a fenced-out writer with.
pub(crate) const FENCED: &str = "STARLINGFENCED";

/// How the server refuses a script command on a key it does not serve.
const NON_LOCAL: &str = "non local key";

fn classify(e: RedisError) -> Failure {
    let text = e.to_string();
    if text.contains(FENCED) {
        return Failure::Fatal(Error::Fenced("another writer took the store over"));
    }
    if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) {
        return Failure::Retry(e);
    }
    // A script's command met a key of a slot that moved away, or is
    // moving, after the call was routed: the server refuses it as "non
    // local" rather than redirecting. The calls are idempotent: route again
    // and retry until the slot has settled.
    if text.contains(NON_LOCAL) {
        return Failure::Retry(e);
    }
    match e.retry_method() {
        RetryMethod::NoRetry => Failure::Fatal(storage("Valkey refused a command", e)),
        _ => Failure::Retry(e),
    }
}

pub(crate) fn storage(context: &str, e: RedisError) -> Error {
    Error::Storage(StorageError::from_source(context.to_owned(), e))
}

/// The cluster: seeds, the current topology, the scripts every new
/// connection loads.
pub(crate) struct Cluster {
    seeds: Vec<String>,
    timeouts: Timeouts,
    topology: RwLock<Arc<Topology>>,
    scripts: Vec<&'static str>,
}

impl Cluster {
    /// Reaches the cluster through any of `seeds` and reads its topology.
    pub(crate) fn connect(
        seeds: &[String],
        timeouts: Timeouts,
        scripts: Vec<&'static str>,
    ) -> Result<Cluster> {
        let topology = read_topology(seeds, timeouts)?;
        Ok(Cluster {
            seeds: seeds.to_vec(),
            timeouts,
            topology: RwLock::new(Arc::new(topology)),
            scripts,
        })
    }

    fn refresh(&self) {
        let mut seeds: Vec<String> = Vec::new();
        {
            let t = self.topology.read();
            for n in &t.nodes {
                seeds.push(n.client.get_connection_info().addr().to_string());
            }
        }
        let seeds: Vec<String> = seeds
            .into_iter()
            .map(|a| format!("redis://{a}"))
            .chain(self.seeds.iter().cloned())
            .collect();
        if let Ok(t) = read_topology(&seeds, self.timeouts) {
            *self.topology.write() = Arc::new(t);
        }
    }

    fn take(&self, node: &Node) -> std::result::Result<Connection, Failure> {
        if let Some(c) = node.idle.lock().pop() {
            return Ok(c);
        }
        let mut c = node
            .client
            .get_connection_with_timeout(self.timeouts.connect)?;
        c.set_read_timeout(Some(self.timeouts.io))?;
        c.set_write_timeout(Some(self.timeouts.io))?;
        for src in &self.scripts {
            redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(*src)
                .query::<String>(&mut c)?;
        }
        Ok(c)
    }

    /// Runs `f` on a connection to the primary of `slot`, retrying with a
    /// fresh connection and topology on connection errors and redirects
    /// for up to the retry window.
    pub(crate) fn on_slot<T: Send>(
        &self,
        slot: u16,
        f: impl Fn(&mut Connection) -> std::result::Result<T, Failure> + Sync,
    ) -> Result<T> {
        let out = Mutex::new(None);
        self.on_nodes(&[slot], |conn, _| {
            let v = f(conn)?;
            *out.lock() = Some(v);
            Ok(())
        })?;
        out.into_inner()
            .ok_or_else(|| Error::Internal("a cluster call returned nothing".into()))
    }

    /// Runs `f` once per primary with the items of `items` (by slot) it
    /// owns, the primaries in parallel, until every item is done; the
    /// items of a call that failed with a retryable error are routed again
    /// on a fresh topology. Each call must be idempotent.
    pub(crate) fn on_nodes<K: Copy + Send + Sync + SlotOf>(
        &self,
        items: &[K],
        f: impl Fn(&mut Connection, &[K]) -> std::result::Result<(), Failure> + Sync,
    ) -> Result<()> {
        let start = Instant::now();
        let mut pending: Vec<K> = items.to_vec();
        let mut pause = Duration::from_millis(20);
        loop {
            let topology = Arc::clone(&self.topology.read());
            let mut by_node: HashMap<u16, Vec<K>> = HashMap::new();
            for item in &pending {
                by_node
                    .entry(topology.owner[usize::from(item.slot())])
                    .or_default()
                    .push(*item);
            }
            let mut nodes: Vec<_> = by_node.into_iter().collect();
            nodes.sort_by_key(|(n, _)| *n);
            let one = |n: u16, group: &[K]| -> std::result::Result<(), Failure> {
                let node = &topology.nodes[usize::from(n)];
                let mut conn = self.take(node)?;
                f(&mut conn, group)?;
                node.idle.lock().push(conn);
                Ok(())
            };
            let results: Vec<std::result::Result<(), Failure>> = if nodes.len() == 1 {
                vec![one(nodes[0].0, &nodes[0].1)]
            } else {
                std::thread::scope(|s| {
                    let handles: Vec<_> = nodes
                        .iter()
                        .map(|(n, group)| s.spawn(|| one(*n, group)))
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| {
                            h.join().unwrap_or_else(|_| {
                                Err(Failure::Fatal(Error::Internal(
                                    "a cluster call panicked".into(),
                                )))
                            })
                        })
                        .collect()
                })
            };
            let mut failed: Vec<K> = Vec::new();
            let mut last = None;
            for ((_, group), r) in nodes.into_iter().zip(results) {
                match r {
                    Ok(()) => {}
                    Err(Failure::Fatal(e)) => return Err(e),
                    Err(Failure::Retry(e)) => {
                        failed.extend(group);
                        last = Some(e);
                    }
                }
            }
            let Some(e) = last else {
                return Ok(());
            };
            if start.elapsed() >= self.timeouts.retry_for {
                return Err(storage(
                    "the cluster did not answer within the retry window",
                    e,
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(250));
            self.refresh();
            pending = failed;
        }
    }
}

/// Items routed by slot.
pub(crate) trait SlotOf {
    /// The slot the item's keys live in.
    fn slot(&self) -> u16;
}

impl SlotOf for u16 {
    fn slot(&self) -> u16 {
        *self
    }
}

impl SlotOf for (u16, usize) {
    fn slot(&self) -> u16 {
        self.0
    }
}

fn read_topology(seeds: &[String], timeouts: Timeouts) -> Result<Topology> {
    let mut last: Option<Error> = None;
    for seed in seeds {
        let client = match redis::Client::open(seed.as_str()) {
            Ok(c) => c,
            Err(e) => {
                return Err(Error::Storage(StorageError::from_source(
                    format!("bad cluster address {seed:?}"),
                    e,
                )));
            }
        };
        let reply = client
            .get_connection_with_timeout(timeouts.connect)
            .and_then(|mut c| {
                c.set_read_timeout(Some(timeouts.io))?;
                redis::cmd("CLUSTER").arg("SLOTS").query::<Value>(&mut c)
            });
        match reply {
            Ok(v) => {
                let host = client.get_connection_info().addr().to_string();
                let host = host
                    .rsplit_once(':')
                    .map_or(host.clone(), |(h, _)| h.into());
                match topology_from(&v, &host) {
                    Ok(t) => return Ok(t),
                    Err(e) => last = Some(e),
                }
            }
            Err(e) => last = Some(storage(&format!("cannot reach {seed}"), e)),
        }
    }
    Err(last.unwrap_or_else(|| Error::Storage(StorageError::new("no cluster address given"))))
}

fn topology_from(v: &Value, seed_host: &str) -> Result<Topology> {
    let bad = || Error::Storage(StorageError::new("malformed CLUSTER SLOTS reply"));
    let Value::Array(ranges) = v else {
        return Err(bad());
    };
    let mut owner = vec![u16::MAX; SLOTS];
    let mut addrs: Vec<String> = Vec::new();
    for r in ranges {
        let Value::Array(parts) = r else {
            return Err(bad());
        };
        let (Some(Value::Int(lo)), Some(Value::Int(hi)), Some(Value::Array(primary))) =
            (parts.first(), parts.get(1), parts.get(2))
        else {
            return Err(bad());
        };
        let host = match primary.first() {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(Value::SimpleString(s)) => s.clone(),
            _ => return Err(bad()),
        };
        let host = if host.is_empty() || host == "?" {
            seed_host.to_owned()
        } else {
            host
        };
        let Some(Value::Int(port)) = primary.get(1) else {
            return Err(bad());
        };
        let addr = format!("redis://{host}:{port}");
        let index = match addrs.iter().position(|a| *a == addr) {
            Some(i) => i,
            None => {
                addrs.push(addr);
                addrs.len() - 1
            }
        };
        let index = u16::try_from(index).map_err(|_| bad())?;
        let (lo, hi) = (usize::try_from(*lo), usize::try_from(*hi));
        let (Ok(lo), Ok(hi)) = (lo, hi) else {
            return Err(bad());
        };
        if lo > hi || hi >= SLOTS {
            return Err(bad());
        }
        for o in &mut owner[lo..=hi] {
            *o = index;
        }
    }
    if owner.contains(&u16::MAX) {
        return Err(Error::Storage(StorageError::new(
            "the cluster does not cover every slot (is it created and ok?)",
        )));
    }
    let nodes = addrs
        .iter()
        .map(|a| {
            redis::Client::open(a.as_str())
                .map(|client| {
                    Arc::new(Node {
                        client,
                        idle: Mutex::new(Vec::new()),
                    })
                })
                .map_err(|e| storage("bad node address", e))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Topology { owner, nodes })
}

/// Turns a redis result into a failure the retry loop understands.
pub(crate) fn attempt<T>(r: RedisResult<T>) -> std::result::Result<T, Failure> {
    r.map_err(classify)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_hash_tags() {
        // Known slots (the Valkey cluster specification's examples).
        assert_eq!(slot_of(b"123456789"), 12739);
        assert_eq!(slot_of(b"{user1000}.following"), slot_of(b"user1000"));
        assert_eq!(slot_of(b"foo{}{bar}"), slot_of(b"foo{}{bar}"));
        assert_ne!(slot_of(b"foo{}{bar}"), slot_of(b"bar"));
        assert_eq!(slot_of(b"foo{{bar}}zap"), slot_of(b"{bar"));
    }

    #[test]
    fn every_slot_has_a_fence_tag() {
        for slot in [0u16, 1, 8000, 16383] {
            let key = format!("ns:{{f{}}}:fence", fence_tag(slot));
            assert_eq!(slot_of(key.as_bytes()), slot);
        }
    }
}
