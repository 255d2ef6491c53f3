//! The fan-out worker pool: each worker takes queued jobs and runs them
//! one durable batch at a time (see ARCHITECTURE.md, "The fan-out loop",
//! the hot path), planning per follower under the policy, and planning the
//! device updates (texts) of each batch.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam_channel::Receiver;
use parking_lot::MutexGuard;
use starling_core::{
    Audience, DeliveryId, DeliveryKind, DeviceDelivery, Durability, Edge, Error, FanoutJob,
    FanoutPolicy, InboxEntry, JobKind, Mutation, PostId, Result, UserId, device_text, utc_day,
};
use starling_inbox::{Delivery, FollowerPage, job_audience, next_followers, plan_step};
use starling_log::unix_millis;
use starling_store::Backend;

use crate::base::Shared;

/// Fan-out batches written under one hold of an author's lock.
const PIPELINE: usize = 16;

/// How a job's batches reach the store, decided once per job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Load {
    /// Each batch is one buffered write.
    Batch,
    /// Each batch's inbox entries are loaded first with
    /// [`Backend::apply_bulk_inbox`], then the rest of the batch (the job's
    /// cursor last of all) is one buffered write.
    Bulk,
}

/// A worker's buffers for splitting a batch into its bulk-loaded inbox
/// entries and the rest, reused across batches and jobs.
#[derive(Default)]
struct Split {
    entries: Vec<(UserId, InboxEntry)>,
    rest: Vec<Mutation>,
}

impl<B: Backend> Shared<B> {
    /// A worker's loop: runs queued jobs until the queue closes.
    pub(crate) fn work(&self, jobs: &Receiver<PostId>) {
        let size = self.config.fanout_batch;
        let mut pages = [Vec::with_capacity(size), Vec::with_capacity(size)];
        let mut batch = Vec::with_capacity(size + 1);
        let mut split = Split::default();
        for post in jobs.iter() {
            if !self.stopping.load(Ordering::SeqCst) {
                let started = Instant::now();
                // A failed job has poisoned the engine; `wait_for_fanout` reports it.
                if self
                    .run_job(post, &mut pages, &mut batch, &mut split)
                    .is_ok()
                {
                    self.jobs_done.fetch_add(1, Ordering::Relaxed);
                }
                self.busy_nanos
                    .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
            self.finished_one();
        }
    }

    /// Runs one job to completion, one durable batch at a time.
    ///
    /// Under one hold of the author's lock it runs up to [`PIPELINE`]
    /// batches, reading the next page of followers on a scoped thread while
    /// the current batch is written (fan-out batches change no edge, so the
    /// page read ahead is the page that follows). Between holds it re-reads
    /// the job, so a delete that turned it into a retraction, or another
    /// worker that advanced it, is seen; and follows and unfollows of the
    /// author wait at most one hold.
    ///
    /// A delivery for an author with at least `bulk_fanout_min_followers`
    /// followers loads each batch's inbox entries in bulk ([`Load::Bulk`]).
    fn run_job(
        &self,
        post: PostId,
        pages: &mut [Vec<Edge>; 2],
        batch: &mut Vec<Mutation>,
        split: &mut Split,
    ) -> Result<()> {
        let Some(first) = self.backend.job(post)? else {
            return Ok(());
        };
        let audience = job_audience(&self.backend, &first)?;
        let (load, size) = if first.kind == JobKind::Deliver
            && self.backend.counts(first.author)?.followers >= self.config.bulk_fanout_min_followers
        {
            (Load::Bulk, self.config.bulk_fanout_batch)
        } else {
            (Load::Batch, self.config.fanout_batch)
        };
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                return Ok(());
            }
            self.check_writable()?;
            let _author = self.authors.lock(first.author);
            let Some(mut job) = self.backend.job(post)? else {
                return Ok(());
            };
            let [current, ahead] = pages;
            let mut page = self.next_page(&job, audience, size, current)?;
            for _ in 0..PIPELINE {
                let next = FanoutJob {
                    cursor: page.end,
                    ..job
                };
                // The next page is read while this one is planned, written
                // and published.
                let (written, read) = std::thread::scope(|s| {
                    let reader = (!page.last).then(|| {
                        std::thread::Builder::new()
                            .name("starling-scan".to_owned())
                            .spawn_scoped(s, || self.next_page(&next, audience, size, ahead))
                    });
                    let written = self.deliver_page(&job, current, page, load, batch, split);
                    (written, reader.map(|r| r.map(|handle| handle.join())))
                });
                written?;
                let Some(read) = read else {
                    return Ok(());
                };
                page = read
                    .map_err(|e| {
                        Error::Internal(format!("cannot start a fan-out page reader: {e}"))
                    })?
                    .map_err(|_| Error::Internal("fan-out page reader panicked".to_owned()))??;
                std::mem::swap(current, ahead);
                job = next;
                if self.stopping.load(Ordering::SeqCst) {
                    return Ok(());
                }
            }
        }
    }

    /// Plans one page's batch, writes it as `load` says and publishes what
    /// it delivered.
    fn deliver_page(
        &self,
        job: &FanoutJob,
        followers: &[Edge],
        page: FollowerPage,
        load: Load,
        batch: &mut Vec<Mutation>,
        split: &mut Split,
    ) -> Result<()> {
        batch.clear();
        self.plan(job, followers, page, batch);
        let _device = self.plan_device_updates(job, followers, batch)?;
        self.write_step(batch, load, split)?;
        self.publish_inbox_changes(batch);
        let delivered = batch
            .iter()
            .filter(|m| !matches!(m, Mutation::PutJob(_) | Mutation::DeleteJob(_)));
        self.delivered
            .fetch_add(delivered.count() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Writes one planned batch as `load` says. In bulk, the inbox entries
    /// go first and the rest of the batch, with the job's cursor, after
    /// them: a crash between the two resumes at the old cursor and loads
    /// the same keys again, which is idempotent.
    fn write_step(&self, batch: &[Mutation], load: Load, split: &mut Split) -> Result<()> {
        if load == Load::Batch {
            return self.write(batch, Durability::Buffered);
        }
        split.entries.clear();
        split.rest.clear();
        for m in batch {
            match m {
                Mutation::InboxPut { owner, entry } => split.entries.push((*owner, *entry)),
                other => split.rest.push(other.clone()),
            }
        }
        if !split.entries.is_empty() {
            self.write_bulk_inbox(&split.entries)?;
        }
        self.write(&split.rest, Durability::Buffered)
    }

    /// Reads the next page of `job`'s walk: the author's followers (or the
    /// group's members), or for a device-only job its device subscribers.
    fn next_page(
        &self,
        job: &FanoutJob,
        audience: Audience,
        limit: usize,
        out: &mut Vec<Edge>,
    ) -> Result<FollowerPage> {
        if job.kind == JobKind::Device {
            self.device_page(job, audience, limit, out)
        } else {
            next_followers(&self.backend, job, audience, limit, out)
        }
    }

    /// Plans one batch: the policy decides per follower.
    fn plan(
        &self,
        job: &FanoutJob,
        followers: &[Edge],
        page: FollowerPage,
        batch: &mut Vec<Mutation>,
    ) {
        let now = unix_millis();
        let author_rate = self.activity.post_rate(job.author, now);
        let inactive_after = self.config.inactive_after_ms;
        let rates = self.config.fanout_policy == FanoutPolicy::Rates;
        let activity = self.activity.view();
        let decide = |e: &Edge| {
            if activity.inactive(e.user, inactive_after, now) {
                Delivery::Skip
            } else if rates && activity.read_rate(e.user, now) < author_rate {
                Delivery::Pull
            } else {
                activity.delivered(e.user);
                Delivery::Push
            }
        };
        plan_step(job, followers, page, decide, batch);
    }

    /// Whether anyone has device updates on for `author`.
    pub(crate) fn has_device_subscribers(&self, author: UserId) -> Result<bool> {
        let mut one = Vec::with_capacity(1);
        self.backend
            .device_subs(author, None, UserId(u64::MAX), 1, &mut one)?;
        Ok(!one.is_empty())
    }

    /// Reads the next page of a device-only job into `out`: up to `limit`
    /// of the author's device subscribers after the job's cursor, with
    /// their follow edges, keeping those in the post's audience.
    fn device_page(
        &self,
        job: &FanoutJob,
        audience: Audience,
        limit: usize,
        out: &mut Vec<Edge>,
    ) -> Result<FollowerPage> {
        out.clear();
        let mut subs = Vec::with_capacity(limit.min(1024));
        self.backend
            .device_subs(job.author, job.cursor, UserId(u64::MAX), limit, &mut subs)?;
        self.backend.follower_edges(job.author, &subs, out)?;
        if let Audience::Group(group) = audience {
            let mut kept = Vec::with_capacity(out.len());
            for edge in out.drain(..) {
                if starling_graph::is_member(&self.backend, group, edge.user)? {
                    kept.push(edge);
                }
            }
            *out = kept;
        }
        Ok(FollowerPage {
            last: subs.len() < limit,
            end: subs.last().copied().or(job.cursor),
        })
    }

    /// Appends to a planned delivery batch the device updates of its page
    /// of followers (after the job's cursor, through the page's last
    /// follower): one outbox entry per follower who has device updates on
    /// for the author, a linked phone and updates not paused, and whose
    /// edge is older than the post, within the recipient's daily cap (the
    /// rest are counted as over the cap, and the first of a day queues the
    /// cap notice instead). Returns the device lock when it
    /// planned any, to be held until the batch is written.
    fn plan_device_updates(
        &self,
        job: &FanoutJob,
        followers: &[Edge],
        batch: &mut Vec<Mutation>,
    ) -> Result<Option<MutexGuard<'_, ()>>> {
        if job.kind != JobKind::Deliver && job.kind != JobKind::Device {
            return Ok(None);
        }
        let Some(through) = followers.last().map(|e| e.user) else {
            return Ok(None);
        };
        let mut subs = Vec::new();
        self.backend
            .device_subs(job.author, job.cursor, through, usize::MAX, &mut subs)?;
        if subs.is_empty() {
            return Ok(None);
        }
        let guard = self.direct.device.lock();
        let (Some(post), Some(author)) =
            (self.stored_post(job.post)?, self.backend.user(job.author)?)
        else {
            return Ok(None);
        };
        // A repost has no text of its own; its original went out already
        // to whoever has device updates on for its author.
        if post.deleted || post.repost_of.is_some() {
            return Ok(None);
        }
        let text = device_text(author.name.as_str(), &post.text);
        let day = utc_day(post.id.unix_millis());
        for recipient in subs {
            let Ok(i) = followers.binary_search_by_key(&recipient, |e| e.user) else {
                continue;
            };
            if followers[i].since >= job.post {
                continue;
            }
            if self
                .backend
                .profile(recipient)?
                .is_some_and(|p| p.device_paused)
            {
                continue;
            }
            let Some(phone) = self.backend.phone_of(recipient)? else {
                continue;
            };
            let id = DeliveryId {
                post: job.post,
                recipient,
            };
            if self.backend.delivery(id)?.is_some() {
                continue;
            }
            self.plan_device_text(
                DeviceDelivery {
                    id,
                    phone,
                    text: text.clone(),
                    leased_until_ms: 0,
                    kind: DeliveryKind::Post,
                },
                day,
                batch,
            )?;
        }
        Ok(Some(guard))
    }
}
