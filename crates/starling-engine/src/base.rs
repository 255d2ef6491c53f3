//! The shared base every job module builds on: the engine's state
//! ([`Shared`]), the one write (which poisons on failure), the opening of an
//! operation (its users exist, the engine is writable), the one read of a
//! post by id, the fan-out queue, and the publishing of inbox changes.
//!
//! This module uses no job module (users, posting, reads, fanout, social,
//! direct): they use it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex, MutexGuard};
use starling_core::paging::{PAGE, for_each_page};
use starling_core::{
    Change, ChangeRecord, Config, Durability, Error, InboxEntry, LinkKind, Mutation, Post, PostId,
    Result, UserId,
};
use starling_inbox::view::stored_post;
use starling_log::{PostIdGenerator, unix_millis};
use starling_store::Backend;

use crate::activity::Activity;
use crate::codes::CodeSource;
use crate::events::{Event, Hub};
use crate::locks::{AuthorLocks, DirectLocks};
use crate::positions::Positions;

/// A change-feed record of `change`, for a batch: [`Shared::write`] gives
/// it its position.
pub(crate) fn record(change: Change) -> Mutation {
    Mutation::PutChange(ChangeRecord {
        position: 0,
        change,
    })
}

/// The engine's state, shared by the operations and the fan-out workers.
pub(crate) struct Shared<B> {
    pub(crate) backend: B,
    pub(crate) config: Config,
    pub(crate) ids: PostIdGenerator,
    pub(crate) next_user: Mutex<u64>,
    pub(crate) next_group: Mutex<u64>,
    pub(crate) authors: AuthorLocks,
    /// Taken before an author's lock by operations on one reader's inbox
    /// as a whole (follow, unfollow, group membership, rebuild on read);
    /// never after one.
    pub(crate) readers: AuthorLocks,
    /// Per-post stripes, taken around a read-modify-write of a post record
    /// (a like count by like and unlike, the tombstone by delete, inside
    /// the author's lock); nothing is locked after one.
    pub(crate) posts: AuthorLocks,
    pub(crate) direct: DirectLocks,
    pub(crate) activity: Activity,
    pub(crate) hub: Arc<Hub>,
    /// The change feed's positions and the batches in flight.
    pub(crate) changes: Positions,
    /// Phone confirmation codes.
    pub(crate) codes: Box<dyn CodeSource>,
    poisoned: AtomicBool,
    pub(crate) stopping: AtomicBool,
    queue: Mutex<Queue>,
    idle: Condvar,
    pub(crate) jobs_done: AtomicU64,
    pub(crate) jobs_resumed: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) busy_nanos: AtomicU64,
}

/// The fan-out queue: the sending end of the workers' channel (dropped on
/// shutdown, which ends the workers' loops) and the count of jobs queued or
/// running.
struct Queue {
    sender: Option<Sender<PostId>>,
    pending: u64,
}

impl<B: Backend> Shared<B> {
    /// The state over an opened backend: id counters after the largest
    /// stored ids (for backends that leave counting to the engine), post
    /// ids under the node number the backend grants, and the recorded
    /// last reads loaded. Jobs go to `sender`.
    pub(crate) fn new(
        backend: B,
        config: Config,
        codes: Box<dyn CodeSource>,
        sender: Sender<PostId>,
    ) -> Result<Shared<B>> {
        let next_user = backend.last_user_id()?.map_or(1, |u| u.0 + 1);
        let next_group = backend.last_group_id()?.map_or(1, |g| g.0 + 1);
        let last_id = backend.last_post_id()?.max(backend.last_message_id()?);
        let node = backend.post_id_node(config.node_id)?;
        let activity = Activity::new(config.rate_half_life_ms);
        activity.ensure(UserId(next_user));
        for_each_page(
            PAGE,
            |after, size, reads| backend.last_reads(after, size, reads),
            |&(user, _)| user,
            |reads| {
                for &(user, at_ms) in reads {
                    activity.load_last_read(user, at_ms);
                }
                Ok(std::ops::ControlFlow::Continue(()))
            },
        )?;
        let changes = Positions::new(backend.last_change_position()?, backend.change_floor()?);
        Ok(Shared {
            ids: PostIdGenerator::new(node, last_id),
            changes,
            backend,
            config,
            next_user: Mutex::new(next_user),
            next_group: Mutex::new(next_group),
            authors: AuthorLocks::new(),
            readers: AuthorLocks::new(),
            posts: AuthorLocks::new(),
            direct: DirectLocks::new(),
            activity,
            hub: Arc::new(Hub::default()),
            codes,
            poisoned: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            queue: Mutex::new(Queue {
                sender: Some(sender),
                pending: 0,
            }),
            idle: Condvar::new(),
            jobs_done: AtomicU64::new(0),
            jobs_resumed: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            busy_nanos: AtomicU64::new(0),
        })
    }

    /// Whether a failed write poisoned the engine.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::SeqCst)
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.is_poisoned() {
            Err(Error::Poisoned)
        } else {
            Ok(())
        }
    }

    /// Applies a batch; any failure poisons the engine.
    ///
    /// The change records in it ([`record`]) get their feed positions
    /// here, in batch order, and the batch stays in flight (readers of the
    /// feed stop below it) until the write returns; every so often the
    /// batch also trims the records older than the retention.
    pub(crate) fn write(&self, batch: &[Mutation], durability: Durability) -> Result<()> {
        self.check_writable()?;
        let records = batch
            .iter()
            .filter(|m| matches!(m, Mutation::PutChange(_)))
            .count() as u64;
        if records == 0 {
            return self.apply(batch, durability);
        }
        let minted = self
            .changes
            .mint(records, unix_millis(), self.config.change_retention_ms);
        let mut stamped = Vec::with_capacity(batch.len() + 1);
        let mut position = minted.first;
        for m in batch {
            stamped.push(match m {
                Mutation::PutChange(record) => {
                    let m = Mutation::PutChange(ChangeRecord {
                        position,
                        change: record.change,
                    });
                    position += 1;
                    m
                }
                other => other.clone(),
            });
        }
        if let Some(through) = minted.trim {
            stamped.push(Mutation::TrimChanges { through });
        }
        #[cfg(test)]
        crate::changes_tests::pause_in_flight(minted.first);
        let written = self.apply(&stamped, durability);
        self.changes.settled(&minted);
        written
    }

    fn apply(&self, batch: &[Mutation], durability: Durability) -> Result<()> {
        self.backend.apply(batch, durability).inspect_err(|_| {
            self.poisoned.store(true, Ordering::SeqCst);
        })
    }

    /// `result`, a failure of which poisons the engine, as a failed
    /// [`Shared::write`] does: for the steps of a bulk load.
    pub(crate) fn poisoning<T>(&self, result: Result<T>) -> Result<T> {
        result.inspect_err(|_| self.poisoned.store(true, Ordering::SeqCst))
    }

    /// The opening of a read: every user it names exists
    /// ([`Error::UnknownUser`] for the first that does not) and was not
    /// deleted ([`Error::AccountDeleted`]).
    pub(crate) fn known(&self, users: &[UserId]) -> Result<&Self> {
        for &id in users {
            if self.backend.user(id)?.is_none() {
                return Err(Error::UnknownUser(id));
            }
            if self.is_deleted(id)? {
                return Err(Error::AccountDeleted(id));
            }
        }
        Ok(self)
    }

    /// Every user named has (or had) an account, deleted or not
    /// ([`Error::UnknownUser`] for the first that never did): the other
    /// side of a conversation.
    pub(crate) fn present(&self, users: &[UserId]) -> Result<&Self> {
        for &id in users {
            if self.backend.user(id)?.is_none() {
                return Err(Error::UnknownUser(id));
            }
        }
        Ok(self)
    }

    /// Whether `user`'s account was deleted or is being deleted.
    pub(crate) fn is_deleted(&self, user: UserId) -> Result<bool> {
        Ok(self.backend.link(LinkKind::Deleted, user.0, 0)?.is_some())
    }

    /// The opening of a write: every user it names exists, then the engine
    /// is not poisoned.
    pub(crate) fn writing(&self, users: &[UserId]) -> Result<&Self> {
        self.known(users)?.check_writable()?;
        Ok(self)
    }

    /// Locks what a change to `reader`'s inbox from `author`'s posts takes
    /// (a follow, an unfollow, a group membership): the reader's stripe,
    /// then the author's, in that order like every operation.
    pub(crate) fn lock_inbox(
        &self,
        reader: UserId,
        author: UserId,
    ) -> (MutexGuard<'_, ()>, MutexGuard<'_, ()>) {
        let reader = self.readers.lock(reader);
        (reader, self.authors.lock(author))
    }

    /// The stored record of `id`, tombstone or not, whoever may see it.
    pub(crate) fn stored_post(&self, id: PostId) -> Result<Option<Post>> {
        stored_post(&self.backend, id)
    }

    /// The live post `id`: [`Error::UnknownPost`] when there is none,
    /// [`Error::PostDeleted`] for a tombstone (whoever may see it).
    pub(crate) fn live_post(&self, id: PostId) -> Result<Post> {
        match self.stored_post(id)? {
            None => Err(Error::UnknownPost(id)),
            Some(p) if p.deleted => Err(Error::PostDeleted(id)),
            Some(p) => Ok(p),
        }
    }

    /// Publishes each inbox entry loaded in bulk to its owner.
    pub(crate) fn publish_inbox_entries(&self, entries: &[(UserId, InboxEntry)]) {
        if self.hub.is_empty() {
            return;
        }
        self.hub.publish(
            entries
                .iter()
                .map(|(owner, e)| (*owner, Event::TimelineAdded { post: e.post })),
        );
    }

    /// Publishes the inbox entries `batch` added and removed.
    pub(crate) fn publish_inbox_changes(&self, batch: &[Mutation]) {
        if self.hub.is_empty() {
            return;
        }
        self.hub.publish(batch.iter().filter_map(|m| match m {
            Mutation::InboxPut { owner, entry } => {
                Some((*owner, Event::TimelineAdded { post: entry.post }))
            }
            Mutation::InboxDelete { owner, post } => {
                Some((*owner, Event::TimelineRetracted { post: *post }))
            }
            Mutation::Direct(starling_core::DirectMutation::QueueDelivery(d)) => {
                Some((d.id.recipient, Event::DeviceDelivery { post: d.id.post }))
            }
            _ => None,
        }));
    }

    /// Queues the durable job of `post` for the fan-out workers (nothing
    /// after shutdown: the job resumes on the next open).
    pub(crate) fn enqueue(&self, post: PostId) {
        let mut queue = self.queue.lock();
        if let Some(sender) = &queue.sender
            && sender.send(post).is_ok()
        {
            queue.pending += 1;
        }
    }

    /// A worker finished (or skipped) one queued job.
    pub(crate) fn finished_one(&self) {
        let mut queue = self.queue.lock();
        queue.pending = queue.pending.saturating_sub(1);
        if queue.pending == 0 {
            self.idle.notify_all();
        }
    }

    /// Jobs queued or running.
    pub(crate) fn pending(&self) -> u64 {
        self.queue.lock().pending
    }

    /// Blocks until no job is queued or running.
    pub(crate) fn wait_idle(&self) {
        let mut queue = self.queue.lock();
        while queue.pending > 0 {
            self.idle.wait(&mut queue);
        }
    }

    /// Closes the queue: the workers' loops end once they drained it.
    pub(crate) fn close_queue(&self) {
        self.queue.lock().sender = None;
    }

    /// Forgets what is still counted as queued (nothing will run it once
    /// the workers are joined) and wakes whoever waits.
    pub(crate) fn clear_pending(&self) {
        self.queue.lock().pending = 0;
        self.idle.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// Each module of this crate and the crate modules its `use crate::`
    /// lines name.
    fn module_uses() -> BTreeMap<String, BTreeSet<String>> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut texts = BTreeMap::new();
        for entry in std::fs::read_dir(&src).expect("the crate's sources") {
            let path = entry.expect("a source file").path();
            if path.extension().is_some_and(|e| e == "rs") {
                let name = path.file_stem().expect("a name").to_string_lossy();
                let text = std::fs::read_to_string(&path).expect("a readable source");
                texts.insert(name.into_owned(), text);
            }
        }
        let modules: BTreeSet<String> = texts.keys().cloned().collect();
        texts
            .iter()
            .map(|(name, text)| {
                let used = text
                    .lines()
                    .filter_map(|l| l.trim().strip_prefix("use crate::"))
                    .filter_map(|rest| rest.split([':', ';', '{']).next())
                    .filter(|m| modules.contains(*m) && *m != name)
                    .map(str::to_owned)
                    .collect();
                (name.clone(), used)
            })
            .collect()
    }

    #[test]
    fn no_module_circle_and_the_base_uses_no_job_module() {
        let uses = module_uses();
        assert!(
            uses["engine"].contains("base"),
            "the graph is read: {uses:?}"
        );
        let leaves: BTreeSet<String> = ["activity", "codes", "events", "locks", "positions"]
            .map(String::from)
            .into();
        assert!(
            uses["base"].is_subset(&leaves),
            "the base uses only the leaves: {:?}",
            uses["base"]
        );
        // Depth-first, with the path walked so far: a module met again on
        // its own path closes a circle.
        fn walk(
            m: &str,
            uses: &BTreeMap<String, BTreeSet<String>>,
            path: &mut Vec<String>,
            done: &mut BTreeSet<String>,
        ) {
            if done.contains(m) {
                return;
            }
            assert!(
                !path.iter().any(|p| p == m),
                "module circle: {path:?} -> {m}"
            );
            path.push(m.to_owned());
            for next in &uses[m] {
                walk(next, uses, path, done);
            }
            path.pop();
            done.insert(m.to_owned());
        }
        let mut done = BTreeSet::new();
        for m in uses.keys() {
            walk(m, &uses, &mut Vec::new(), &mut done);
        }
        assert_eq!(done.len(), uses.len());
    }
}
