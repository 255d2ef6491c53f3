//! `ValkeyBackend`: connecting, the writer lease, and `Backend::apply`
//! (per-slot script calls, redo intents across slots, waits for replicas).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use redis::{Connection, Value};
use starling_core::{
    Durability, Error, GroupId, InboxEntry, Mutation, Result, StorageError, UserId,
};
use starling_store::{Backend, GraphStore};

use crate::cluster::{Cluster, Failure, SLOTS, Timeouts, attempt, slot_of};
use crate::inflight::{Gate, InFlight};
use crate::layout::{APPLY, Group, INBOX, Keys, Plan};
use crate::lease::{ACQUIRE, Lease, MINT, REGISTER, RELEASE, RENEW, Renewal, release};

/// How to reach a cluster and which store on it to open.
#[derive(Clone, Debug)]
pub struct ValkeyOptions {
    /// Seed addresses (`valkey://host:port` or `redis://host:port`); any
    /// one reachable node of the cluster is enough.
    pub urls: Vec<String>,
    /// The store's name on the cluster: every key starts with it, so many
    /// stores can share a cluster. 1 to 64 ASCII letters, digits, `_`,
    /// `-` or `.`.
    pub namespace: String,
    /// How long to wait for a TCP connection to a node.
    pub connect_timeout: Duration,
    /// How long to wait for one reply.
    pub io_timeout: Duration,
    /// How long a call is retried across connection errors, redirects and
    /// a failover before it fails (about 3 s is a failover with a node
    /// timeout of 2 s).
    pub retry_for: Duration,
    /// How long the writer lease lasts unless renewed (it is renewed every
    /// third of it); a crashed writer's store can be taken over after it.
    pub lease_ttl: Duration,
    /// How long a [`Durability::Synced`] write waits for a replica.
    pub sync_timeout: Duration,
}

impl ValkeyOptions {
    /// Options with the default timeouts.
    pub fn new(urls: impl IntoIterator<Item = impl Into<String>>, namespace: &str) -> Self {
        ValkeyOptions {
            urls: urls.into_iter().map(Into::into).collect(),
            namespace: namespace.to_owned(),
            connect_timeout: Duration::from_millis(500),
            io_timeout: Duration::from_secs(5),
            retry_for: Duration::from_secs(6),
            lease_ttl: Duration::from_secs(10),
            sync_timeout: Duration::from_secs(2),
        }
    }

    /// Splits a comma-separated list of seed URLs (as `scripts/cluster`
    /// prints them).
    pub fn from_url_list(list: &str, namespace: &str) -> Self {
        ValkeyOptions::new(
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            namespace,
        )
    }

    fn validate(&self) -> Result<()> {
        if self.urls.is_empty() {
            return Err(Error::InvalidConfig("no cluster address given"));
        }
        let ns = &self.namespace;
        if ns.is_empty() || ns.len() > 64 {
            return Err(Error::InvalidConfig(
                "namespace must have 1 to 64 characters",
            ));
        }
        if !ns
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(Error::InvalidConfig(
                "namespace may hold only ASCII letters, digits, '_', '-' and '.'",
            ));
        }
        if self.lease_ttl < Duration::from_millis(300) {
            return Err(Error::InvalidConfig("lease_ttl must be at least 300 ms"));
        }
        Ok(())
    }
}

/// How long one wait for a replica lasts before the backend asks again.
const WAIT_POLL_MS: u64 = 5;

/// How a Synced write waits for replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// `WAITAOF 0 1`: a replica wrote it to its append-only file.
    Aof,
    /// `WAIT 1`: a replica has it in memory (servers without `WAITAOF`).
    Replica,
}

/// Starling's storage seam over a Valkey (or Redis) cluster. See the
/// crate documentation for the layout and the guarantees.
pub struct ValkeyBackend {
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) keys: Keys,
    namespace: String,
    pub(crate) lease: Arc<Lease>,
    renewal: Option<Renewal>,
    wait: Wait,
    sync_timeout: Duration,
    intent_seq: AtomicU64,
    /// The last user and group ids this writer minted or found stored:
    /// the counters hand out more than these, even after a failover lost
    /// a counter's last increments.
    minted_users: Mutex<u64>,
    minted_groups: Mutex<u64>,
    /// Batches applied part by part, under way.
    pub(crate) in_flight: InFlight,
}

impl<'a> TryFrom<starling_store::ClusterAddress<'a>> for ValkeyBackend {
    type Error = Error;

    /// Connects with the default timeouts: what `Engine::connect` builds.
    fn try_from(at: starling_store::ClusterAddress<'a>) -> Result<ValkeyBackend> {
        ValkeyBackend::connect(&ValkeyOptions::from_url_list(at.urls, at.namespace))
    }
}

impl std::fmt::Debug for ValkeyBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValkeyBackend")
            .field("namespace", &self.namespace)
            .field("token", &self.lease.token)
            .finish()
    }
}

impl ValkeyBackend {
    /// Connects to the cluster, takes the namespace's writer lease (a
    /// store another process writes is refused with
    /// [`Error::WriterLeaseHeld`]), fences out every earlier writer,
    /// replays the redo intents an interrupted writer left, and returns
    /// the backend ready for writes. A new namespace is created; one
    /// written by an incompatible version is refused with
    /// [`Error::IncompatibleStore`]; an unreachable cluster is an
    /// [`Error::Storage`] after `connect_timeout` per seed.
    pub fn connect(options: &ValkeyOptions) -> Result<ValkeyBackend> {
        options.validate()?;
        let timeouts = Timeouts {
            connect: options.connect_timeout,
            io: options
                .io_timeout
                .max(options.sync_timeout + Duration::from_secs(1)),
            retry_for: options.retry_for,
        };
        let cluster = Arc::new(Cluster::connect(
            &options.urls,
            timeouts,
            vec![APPLY, INBOX, ACQUIRE, RENEW, RELEASE, REGISTER, MINT],
        )?);
        let keys = Keys::new(&options.namespace);
        let wait = probe_wait(&cluster)?;
        let lease = Arc::new(Lease::acquire(
            &cluster,
            &keys,
            &options.namespace,
            options.lease_ttl,
        )?);
        let mut backend = ValkeyBackend {
            cluster: Arc::clone(&cluster),
            keys,
            namespace: options.namespace.clone(),
            lease: Arc::clone(&lease),
            renewal: None,
            wait,
            sync_timeout: options.sync_timeout,
            intent_seq: AtomicU64::new(0),
            minted_users: Mutex::new(0),
            minted_groups: Mutex::new(0),
            in_flight: InFlight::default(),
        };
        backend.renewal = Some(Renewal::start(cluster, &backend.keys, lease)?);
        backend.raise_fences()?;
        backend.replay_intents()?;
        *backend.minted_users.lock() = backend.last_user_id()?.map_or(0, |u| u.0);
        *backend.minted_groups.lock() = backend.last_group_id()?.map_or(0, |g| g.0);
        Ok(backend)
    }

    /// The namespace this backend writes.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// This writer's fencing token (larger than every earlier writer's).
    pub fn token(&self) -> u64 {
        self.lease.token
    }

    /// Raises the fence of every slot any writer recorded to this token.
    fn raise_fences(&self) -> Result<()> {
        let slots = Lease::recorded(&self.cluster, &self.keys)?;
        let groups: Vec<Group> = slots
            .iter()
            .filter(|s| usize::from(**s) < SLOTS)
            .map(|&s| Group::new(s, self.keys.fence(s)))
            .collect();
        self.run(&groups, Durability::Buffered)?;
        self.lease.mark(&slots);
        Ok(())
    }

    /// Runs groups, one script call each, pipelined per primary; with
    /// `Synced`, waits on each primary's connection for a replica.
    pub(crate) fn run(&self, groups: &[Group], durability: Durability) -> Result<()> {
        if groups.is_empty() {
            return Ok(());
        }
        let slots: Vec<u16> = groups.iter().map(|g| g.slot).collect();
        self.lease.register(&self.cluster, &self.keys, &slots)?;
        let sha = redis::Script::new(APPLY).get_hash().to_owned();
        let items: Vec<(u16, usize)> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.slot, i))
            .collect();
        let token = self.lease.token.to_string();
        self.cluster.on_nodes(&items, |conn, mine| {
            let mut pipe = redis::pipe();
            for &(_, i) in mine {
                let g = &groups[i];
                let cmd = pipe.cmd("EVALSHA").arg(&sha).arg(g.keys.len());
                for k in &g.keys {
                    cmd.arg(k);
                }
                cmd.arg(&token);
                for a in &g.args {
                    cmd.arg(a);
                }
                cmd.ignore();
            }
            if durability == Durability::Synced {
                self.add_wait(&mut pipe);
            }
            let reply: Vec<Value> = attempt(pipe.query(conn))?;
            if durability == Durability::Synced {
                self.wait_for_replica(conn, reply.last())?;
            }
            Ok(())
        })
    }

    /// Appends the first, short wait for a replica to a pipeline.
    pub(crate) fn add_wait(&self, pipe: &mut redis::Pipeline) {
        match self.wait {
            Wait::Aof => pipe.cmd("WAITAOF").arg(0).arg(1).arg(WAIT_POLL_MS),
            Wait::Replica => pipe.cmd("WAIT").arg(1).arg(WAIT_POLL_MS),
        };
    }

    /// Waits, on the connection that carried the writes, until a replica
    /// acknowledges them or `sync_timeout` passes. A replica reports what
    /// it has synced when its primary asks, and the primary asks when a
    /// wait starts: one long wait can miss a sync that lands just after
    /// the question and sit until the replica's next report (a second
    /// later), so the backend asks again every few milliseconds.
    pub(crate) fn wait_for_replica(
        &self,
        conn: &mut Connection,
        first: Option<&Value>,
    ) -> std::result::Result<(), Failure> {
        let deadline = std::time::Instant::now() + self.sync_timeout;
        let mut reply = first.cloned();
        loop {
            if self.acks(reply.as_ref()) >= 1 {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                break;
            }
            let mut cmd = match self.wait {
                Wait::Aof => redis::cmd("WAITAOF"),
                Wait::Replica => redis::cmd("WAIT"),
            };
            if self.wait == Wait::Aof {
                cmd.arg(0);
            }
            cmd.arg(1).arg(WAIT_POLL_MS);
            reply = Some(attempt(cmd.query::<Value>(conn))?);
        }
        let what = match self.wait {
            Wait::Aof => "a replica's append-only file",
            Wait::Replica => "a replica",
        };
        Err(Failure::Fatal(Error::Storage(StorageError::new(format!(
            "a synced write did not reach {what} within {} ms",
            self.sync_timeout.as_millis()
        )))))
    }

    /// Replicas that acknowledged, from a `WAITAOF` or `WAIT` reply.
    fn acks(&self, reply: Option<&Value>) -> i64 {
        match (self.wait, reply) {
            (Wait::Aof, Some(Value::Array(v))) => match v.get(1) {
                Some(Value::Int(n)) => *n,
                _ => -1,
            },
            (Wait::Replica, Some(Value::Int(n))) => *n,
            _ => -1,
        }
    }

    /// Writes a batch's groups as a redo intent (its own tagged key);
    /// returns the intent's id.
    fn write_intent(&self, groups: &[Group], durability: Durability) -> Result<String> {
        let seq = self.intent_seq.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}.{seq}", self.lease.token);
        let mut items: Vec<Vec<u8>> = vec![groups.len().to_string().into_bytes()];
        for g in groups {
            items.push(g.slot.to_string().into_bytes());
            items.push(g.keys.len().to_string().into_bytes());
            items.extend(g.keys.iter().cloned());
            items.push(g.args.len().to_string().into_bytes());
            items.extend(g.args.iter().cloned());
        }
        let mut plan = Plan::new(&self.keys);
        plan.delete(self.keys.intent(&id));
        plan.push_list(self.keys.intent(&id), &items);
        plan.add_member(self.keys.intents(), id.as_bytes());
        self.run(&plan.into_groups(), durability)?;
        Ok(id)
    }

    fn remove_intent(&self, id: &str) -> Result<()> {
        let mut plan = Plan::new(&self.keys);
        plan.remove_member(self.keys.intents(), id.as_bytes());
        plan.delete(self.keys.intent(id));
        self.run(&plan.into_groups(), Durability::Buffered)
    }

    /// Applies every intent left by an interrupted writer, oldest first,
    /// then removes it.
    fn replay_intents(&self) -> Result<()> {
        let index = self.keys.intents();
        let mut ids: Vec<String> = self.cluster.on_slot(slot_of(&index), |c| {
            attempt(redis::cmd("ZRANGE").arg(&index).arg(0).arg(-1).query(c))
        })?;
        let order = |id: &String| -> (u64, u64) {
            let (t, s) = id.split_once('.').unwrap_or((id, "0"));
            (t.parse().unwrap_or(0), s.parse().unwrap_or(0))
        };
        ids.sort_by_key(order);
        for id in ids {
            let key = self.keys.intent(&id);
            let items: Vec<Vec<u8>> = self.cluster.on_slot(slot_of(&key), |c| {
                attempt(redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).query(c))
            })?;
            let groups = parse_intent(&items)?;
            self.run(&groups, Durability::Buffered)?;
            self.remove_intent(&id)?;
        }
        Ok(())
    }

    /// The next value of the counter `name`: more than `last` (the last
    /// id minted or stored), on a replica before it returns when
    /// `durability` is Synced. A retried call may skip a value, never
    /// repeat one.
    fn mint(&self, name: &str, last: &Mutex<u64>, durability: Durability) -> Result<u64> {
        self.lease.check()?;
        let key = self.keys.meta(name);
        let slot = slot_of(&key);
        self.lease.register(&self.cluster, &self.keys, &[slot])?;
        let fence = self.keys.fence(slot);
        let script = redis::Script::new(MINT);
        let mut last = last.lock();
        let floor = *last;
        let id: u64 = self.cluster.on_slot(slot, |conn| {
            let id = attempt(
                script
                    .key(&fence)
                    .key(&key)
                    .arg(self.lease.token)
                    .arg(floor)
                    .invoke::<u64>(conn),
            )?;
            if durability == Durability::Synced {
                let mut pipe = redis::pipe();
                self.add_wait(&mut pipe);
                let reply: Vec<Value> = attempt(pipe.query(conn))?;
                self.wait_for_replica(conn, reply.last())?;
            }
            Ok(id)
        })?;
        *last = id;
        Ok(id)
    }

    /// Test hook: from now on, every batch across slots stops after its
    /// first slot's part until the returned gate opens, as a batch a
    /// concurrent reader catches in the middle.
    #[doc(hidden)]
    pub fn hold_cross_slot_batches_for_tests(&self) -> Arc<Gate> {
        self.in_flight.hold()
    }

    /// Test hook: writes `batch`'s redo intent and applies only its first
    /// slot's part, as a writer killed in the middle of a cross-slot batch
    /// leaves it. Returns how many slots the batch spans.
    #[doc(hidden)]
    pub fn interrupted_apply_for_tests(&self, batch: &[Mutation]) -> Result<usize> {
        self.lease.check()?;
        let mut plan = Plan::new(&self.keys);
        for m in batch {
            plan.mutation(m);
        }
        let groups = plan.into_groups();
        self.write_intent(&groups, Durability::Buffered)?;
        self.run(&groups[..groups.len().min(1)], Durability::Buffered)?;
        Ok(groups.len())
    }
}

impl Drop for ValkeyBackend {
    fn drop(&mut self) {
        drop(self.renewal.take());
        release(&self.cluster, &self.keys, &self.lease);
    }
}

fn parse_intent(items: &[Vec<u8>]) -> Result<Vec<Group>> {
    let bad = || Error::Corrupt("redo intent");
    let mut it = items.iter();
    let num = |it: &mut std::slice::Iter<'_, Vec<u8>>| -> Result<usize> {
        let b = it.next().ok_or_else(bad)?;
        std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)
    };
    let n = num(&mut it)?;
    let mut groups = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let slot = u16::try_from(num(&mut it)?).map_err(|_| bad())?;
        if usize::from(slot) >= SLOTS {
            return Err(bad());
        }
        let nk = num(&mut it)?;
        let keys: Vec<Vec<u8>> = it.by_ref().take(nk).cloned().collect();
        let na = num(&mut it)?;
        let args: Vec<Vec<u8>> = it.by_ref().take(na).cloned().collect();
        if keys.len() != nk || args.len() != na || keys.is_empty() {
            return Err(bad());
        }
        if keys.iter().any(|k| slot_of(k) != slot) {
            return Err(bad());
        }
        groups.push(Group::from_parts(slot, keys, args));
    }
    if it.next().is_some() {
        return Err(bad());
    }
    Ok(groups)
}

/// Whether the servers have `WAITAOF` (Valkey, Redis 7.2 and later).
fn probe_wait(cluster: &Cluster) -> Result<Wait> {
    let v: Value = cluster.on_slot(0, |c: &mut Connection| {
        attempt(redis::cmd("COMMAND").arg("INFO").arg("WAITAOF").query(c))
    })?;
    Ok(match v {
        Value::Array(items) if items.first().is_some_and(|i| *i != Value::Nil) => Wait::Aof,
        _ => Wait::Replica,
    })
}

impl Backend for ValkeyBackend {
    /// From the namespace's user counter: many processes may write a
    /// cluster.
    fn mint_user_id(&self, durability: Durability) -> Result<Option<UserId>> {
        self.mint("user_counter", &self.minted_users, durability)
            .map(|id| Some(UserId(id)))
    }

    /// From the namespace's group counter.
    fn mint_group_id(&self, durability: Durability) -> Result<Option<GroupId>> {
        self.mint("group_counter", &self.minted_groups, durability)
            .map(|id| Some(GroupId(id)))
    }

    /// A node number leased to this writer alone (`configured` when free).
    fn post_id_node(&self, configured: u16) -> Result<u16> {
        self.lease.claim_node(&self.cluster, &self.keys, configured)
    }

    fn apply(&self, batch: &[Mutation], durability: Durability) -> Result<()> {
        self.lease.check()?;
        if let Some(written) = self.apply_fanout(batch, durability) {
            return written;
        }
        let mut plan = Plan::new(&self.keys);
        for m in batch {
            plan.mutation(m);
        }
        let groups = plan.into_groups();
        match groups.len() {
            0 => Ok(()),
            1 => self.run(&groups, durability),
            _ => {
                let _running = self.in_flight.start();
                let id = self.write_intent(&groups, durability)?;
                self.run(&groups[..1], durability)?;
                self.in_flight.between_parts();
                self.run(&groups[1..], durability)?;
                self.remove_intent(&id)
            }
        }
    }

    /// Waits for every batch across slots (and fan-out batch) under way.
    fn settle(&self) -> Result<()> {
        self.in_flight.settle();
        Ok(())
    }

    fn apply_bulk_inbox(&self, entries: &[(UserId, InboxEntry)]) -> Result<()> {
        // Entries are idempotent and their job's cursor, written after
        // them, is their redo record: no intent, grouped by primary.
        self.lease.check()?;
        self.bulk_inboxes(entries)
    }
}
