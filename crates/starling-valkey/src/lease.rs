//! The writer lease and its fencing token.
//!
//! One writer per namespace: `connect` takes the lease (a key set only if
//! absent, with an expiry a thread renews) and with it a token, larger
//! than every token before. Every write script compares the token with
//! its slot's fence and refuses a token older than the fence. Before a
//! writer first writes to a slot it records the slot in the namespace's
//! slot list, which only the lease holder may do; a new writer raises the
//! fence of every listed slot to its token before it writes anything, so
//! from then on no write of an older writer lands anywhere.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use starling_core::{Error, PostId, Result};

use crate::cluster::{Cluster, attempt, slot_of};
use crate::layout::{FORMAT, Keys};

/// Takes the lease: refuses a store of another format and a lease held by
/// another writer; records the format in a new store. Returns the token.
pub(crate) const ACQUIRE: &str = r#"
local f = redis.call('GET', KEYS[1])
if f and f ~= ARGV[1] then return {'format', f} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'held', 'x'} end
if not f then redis.call('SET', KEYS[1], ARGV[1]) end
local t = redis.call('INCR', KEYS[3])
redis.call('SET', KEYS[2], t, 'PX', ARGV[2])
return {'ok', tostring(t)}
"#;

/// Extends the lease if this writer still holds it, and with it the
/// other leases of this writer among `KEYS[2..]` (its post-id node).
pub(crate) const RENEW: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  for i = 1, #KEYS do
    if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
  end
  return 1
end
return 0
"#;

/// Hands out the next value of the counter `KEYS[2]`, larger than the
/// last one and than `ARGV[2]`; refused, as every write, to a writer
/// older than the slot's fence `KEYS[1]`.
pub(crate) const MINT: &str = r#"
local fence = tonumber(redis.call('GET', KEYS[1]) or '0')
local token = tonumber(ARGV[1])
if fence > token then
  return redis.error_reply('STARLINGFENCED a newer writer (' .. fence .. ') holds the store')
end
if fence < token then redis.call('SET', KEYS[1], ARGV[1]) end
local v = redis.call('INCR', KEYS[2])
local floor = tonumber(ARGV[2])
if v <= floor then
  v = floor + 1
  redis.call('SET', KEYS[2], v)
end
return v
"#;

/// Gives the lease up if this writer holds it.
pub(crate) const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"#;

/// Records slots this writer is about to write, if it holds the lease.
pub(crate) const REGISTER: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('STARLINGFENCED the writer lease is held by another writer or expired')
end
for i = 2, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
return 1
"#;

/// The lease held by this process.
pub(crate) struct Lease {
    pub(crate) token: u64,
    ttl: Duration,
    /// Until when the lease is known held (renewals push it on).
    valid_until: Mutex<Instant>,
    /// Set when a renewal found the lease taken.
    lost: std::sync::atomic::AtomicBool,
    /// Slots recorded in the slot list (a bit per slot).
    registered: Mutex<Vec<u64>>,
    /// The post-id node number this writer leased, and its key.
    node: Mutex<Option<(u16, Vec<u8>)>>,
}

impl Lease {
    /// Takes the lease of the namespace.
    pub(crate) fn acquire(
        cluster: &Cluster,
        keys: &Keys,
        namespace: &str,
        ttl: Duration,
    ) -> Result<Lease> {
        let ks = [keys.meta("format"), keys.meta("lease"), keys.meta("token")];
        let ttl_ms = ttl.as_millis().to_string();
        let started = Instant::now();
        let script = redis::Script::new(ACQUIRE);
        let reply: Vec<String> = cluster.on_slot(slot_of(&ks[0]), |c| {
            attempt(
                script
                    .key(&ks[0])
                    .key(&ks[1])
                    .key(&ks[2])
                    .arg(FORMAT)
                    .arg(&ttl_ms)
                    .invoke(c),
            )
        })?;
        match reply.as_slice() {
            [what, t] if what == "ok" => {
                let token = t
                    .parse()
                    .map_err(|_| Error::Corrupt("writer lease token"))?;
                Ok(Lease {
                    token,
                    ttl,
                    valid_until: Mutex::new(started + ttl),
                    lost: std::sync::atomic::AtomicBool::new(false),
                    registered: Mutex::new(vec![0; crate::cluster::SLOTS / 64]),
                    node: Mutex::new(None),
                })
            }
            [what, found] if what == "format" => Err(Error::IncompatibleStore {
                found: found.clone(),
                expected: FORMAT,
            }),
            [what, _] if what == "held" => Err(Error::WriterLeaseHeld(namespace.to_owned())),
            _ => Err(Error::Corrupt("writer lease reply")),
        }
    }

    /// Refuses when the lease is lost or may have expired.
    pub(crate) fn check(&self) -> Result<()> {
        if self.lost.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Fenced("another writer took the writer lease"));
        }
        if Instant::now() >= *self.valid_until.lock() {
            return Err(Error::Fenced(
                "the writer lease expired before it was renewed",
            ));
        }
        Ok(())
    }

    /// The slots of `slots` not yet recorded.
    pub(crate) fn unregistered(&self, slots: &[u16]) -> Vec<u16> {
        let bits = self.registered.lock();
        let mut out: Vec<u16> = slots
            .iter()
            .copied()
            .filter(|s| bits[usize::from(*s) / 64] & (1 << (s % 64)) == 0)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Marks slots recorded.
    pub(crate) fn mark(&self, slots: &[u16]) {
        let mut bits = self.registered.lock();
        for s in slots {
            bits[usize::from(*s) / 64] |= 1 << (s % 64);
        }
    }

    /// Records `slots` in the namespace's slot list; refused if this
    /// writer no longer holds the lease.
    pub(crate) fn register(&self, cluster: &Cluster, keys: &Keys, slots: &[u16]) -> Result<()> {
        let new = self.unregistered(slots);
        if new.is_empty() {
            return Ok(());
        }
        let (lease, list) = (keys.meta("lease"), keys.meta("slots"));
        let script = redis::Script::new(REGISTER);
        cluster.on_slot(slot_of(&lease), |c| {
            let mut inv = script.key(&lease);
            inv.key(&list).arg(self.token);
            for s in &new {
                inv.arg(*s);
            }
            attempt(inv.invoke::<i64>(c))
        })?;
        self.mark(&new);
        Ok(())
    }

    /// The post-id node number of this writer: `preferred` if no live
    /// writer holds it, else the lowest free one. Each number is a key set
    /// only if absent, with the writer lease's expiry, renewed with it
    /// and given up with it, so two live writers never hold one number.
    pub(crate) fn claim_node(&self, cluster: &Cluster, keys: &Keys, preferred: u16) -> Result<u16> {
        let mut held = self.node.lock();
        if let Some((n, _)) = &*held {
            return Ok(*n);
        }
        self.check()?;
        let ttl_ms = self.ttl.as_millis().to_string();
        let candidates = std::iter::once(preferred & PostId::MAX_NODE)
            .chain((0..=PostId::MAX_NODE).filter(|n| *n != preferred & PostId::MAX_NODE));
        for n in candidates {
            let key = keys.meta(&format!("node:{n}"));
            let set: Option<String> = cluster.on_slot(slot_of(&key), |c| {
                attempt(
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(self.token)
                        .arg("NX")
                        .arg("PX")
                        .arg(&ttl_ms)
                        .query(c),
                )
            })?;
            let ours = match set {
                Some(_) => true,
                // A retried SET may have found its own first try.
                None => {
                    cluster.on_slot(slot_of(&key), |c| {
                        attempt(redis::cmd("GET").arg(&key).query::<Option<u64>>(c))
                    })? == Some(self.token)
                }
            };
            if ours {
                *held = Some((n, key));
                return Ok(n);
            }
        }
        Err(Error::NodesExhausted)
    }

    /// The key of the post-id node lease, once claimed.
    fn node_key(&self) -> Option<Vec<u8>> {
        self.node.lock().as_ref().map(|(_, k)| k.clone())
    }

    /// The slots any writer of the namespace recorded.
    pub(crate) fn recorded(cluster: &Cluster, keys: &Keys) -> Result<Vec<u16>> {
        let list = keys.meta("slots");
        cluster.on_slot(slot_of(&list), |c| {
            attempt(redis::cmd("SMEMBERS").arg(&list).query::<Vec<u16>>(c))
        })
    }
}

/// The thread that renews the lease, owned and joined on drop.
pub(crate) struct Renewal {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Renewal {
    pub(crate) fn start(cluster: Arc<Cluster>, keys: &Keys, lease: Arc<Lease>) -> Result<Renewal> {
        let (stop, stopped) = mpsc::channel::<()>();
        let key = keys.meta("lease");
        let every = lease.ttl / 3;
        let thread = std::thread::Builder::new()
            .name("starling-valkey-lease".into())
            .spawn(move || {
                let script = redis::Script::new(RENEW);
                let ttl_ms = lease.ttl.as_millis().to_string();
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let started = Instant::now();
                    let node = lease.node_key();
                    let r = cluster.on_slot(slot_of(&key), |c| {
                        let mut call = script.key(&key);
                        if let Some(node) = &node {
                            call.key(node);
                        }
                        attempt(call.arg(lease.token).arg(&ttl_ms).invoke::<i64>(c))
                    });
                    match r {
                        Ok(1) => *lease.valid_until.lock() = started + lease.ttl,
                        Ok(_) => {
                            lease.lost.store(true, std::sync::atomic::Ordering::SeqCst);
                            return;
                        }
                        // Unreachable for now: the lease runs out locally
                        // unless a later renewal succeeds.
                        Err(_) => {}
                    }
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the lease thread: {e}")))?;
        Ok(Renewal {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Gives the lease and the post-id node number up (on close), if still
/// held.
pub(crate) fn release(cluster: &Cluster, keys: &Keys, lease: &Lease) {
    let script = redis::Script::new(RELEASE);
    for key in lease.node_key().into_iter().chain([keys.meta("lease")]) {
        let _ = cluster.on_slot(slot_of(&key), |c| {
            attempt(script.key(&key).arg(lease.token).invoke::<i64>(c))
        });
    }
}
