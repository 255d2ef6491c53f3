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
use starling_inbox::{Delivery, FollowerPage, Plan, job_audience, next_followers, plan_step};
use starling_log::unix_millis;
use starling_store::{Backend, InboxLoad};

use crate::base::Shared;

/// Fan-out batches written under one hold of an author's lock.
const PIPELINE: usize = 16;

/// How a job's batches reach the store, decided once per job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Load {
    /// Each batch is one buffered write.
    Batch,
    /// The inbox entries of a hold's batches are one bulk load
    /// ([`Backend::bulk_inbox_load`]), finished at the hold's end; then the
    /// rest of those batches (the job's cursor last of all) is one
    /// buffered write.
    Bulk,
}

/// A worker's buffers for the batches of one hold in bulk: the rest of
/// each batch, written after the load's finish, and the entries loaded,
/// kept for live subscribers when there are any. Reused across holds.
#[derive(Default)]
struct Split {
    entries: Vec<(UserId, InboxEntry)>,
    rest: Vec<Mutation>,
    /// Changes delivered in the hold, counted when it is written.
    delivered: u64,
}

/// The changes a batch delivers: all but its job's cursor.
fn delivered(batch: &[Mutation]) -> usize {
    batch
        .iter()
        .filter(|m| !matches!(m, Mutation::PutJob(_) | Mutation::DeleteJob(_)))
        .count()
}

impl Plan for Split {
    fn push(&mut self, m: Mutation) {
        self.rest.push(m);
    }

    fn put(&mut self, owner: UserId, entry: InboxEntry) {
        self.entries.push((owner, entry));
    }
}

impl Split {
    fn clear(&mut self) {
        self.entries.clear();
        self.rest.clear();
        self.delivered = 0;
    }
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
            split.clear();
            let mut bulk = match load {
                Load::Bulk => Some(self.poisoning(self.backend.bulk_inbox_load())?),
                Load::Batch => None,
            };
            let [current, ahead] = pages;
            let mut page = self.next_page(&job, audience, size, current)?;
            let mut done = false;
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
                    let written =
                        self.deliver_page(&job, current, page, bulk.as_deref_mut(), batch, split);
                    (written, reader.map(|r| r.map(|handle| handle.join())))
                });
                written?;
                let Some(read) = read else {
                    done = true;
                    break;
                };
                page = read
                    .map_err(|e| {
                        Error::Internal(format!("cannot start a fan-out page reader: {e}"))
                    })?
                    .map_err(|_| Error::Internal("fan-out page reader panicked".to_owned()))??;
                std::mem::swap(current, ahead);
                job = next;
                if self.stopping.load(Ordering::SeqCst) {
                    done = true;
                    break;
                }
            }
            if let Some(bulk) = bulk {
                self.finish_bulk(bulk, split)?;
            }
            if done {
                return Ok(());
            }
        }
    }

    /// Plans one page's batch and writes it: at once, publishing what it
    /// delivered; or in bulk, adding its inbox entries to `bulk` and
    /// keeping the rest for [`Shared::finish_bulk`]. Device texts are
    /// written at once either way, under the lock their day's counts were
    /// read under (a job resumed after a crash finds them queued already).
    fn deliver_page(
        &self,
        job: &FanoutJob,
        followers: &[Edge],
        page: FollowerPage,
        bulk: Option<&mut (dyn InboxLoad + '_)>,
        batch: &mut Vec<Mutation>,
        split: &mut Split,
    ) -> Result<()> {
        batch.clear();
        let Some(bulk) = bulk else {
            self.plan(job, followers, page, batch);
            let _device = self.plan_device_updates(job, followers, batch)?;
            self.write(batch, Durability::Buffered)?;
            self.publish_inbox_changes(batch);
            self.delivered
                .fetch_add(delivered(batch) as u64, Ordering::Relaxed);
            return Ok(());
        };
        let (entries, rest) = (split.entries.len(), split.rest.len());
        self.plan(job, followers, page, split);
        // A part may be stored when it is added (a load's default).
        self.check_writable()?;
        self.poisoning(bulk.add(&split.entries[entries..]))?;
        split.delivered += (split.entries.len() - entries + delivered(&split.rest[rest..])) as u64;
        if self.hub.is_empty() {
            split.entries.truncate(entries);
        }
        if let Some(_device) = self.plan_device_updates(job, followers, batch)?
            && !batch.is_empty()
        {
            self.write(batch, Durability::Buffered)?;
            split.delivered += batch.len() as u64;
        }
        Ok(())
    }

    /// Ends a hold in bulk: the load's finish stores its entries, then the
    /// rest of its batches is written, the job's cursor with it (a crash
    /// between the two resumes at the old cursor and loads the same keys
    /// again, which is idempotent), then what it delivered is published.
    fn finish_bulk(&self, bulk: Box<dyn InboxLoad + '_>, split: &mut Split) -> Result<()> {
        self.check_writable()?;
        self.poisoning(bulk.finish())?;
        self.write(&split.rest, Durability::Buffered)?;
        self.publish_inbox_entries(&split.entries);
        self.delivered.fetch_add(split.delivered, Ordering::Relaxed);
        Ok(())
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
    fn plan(&self, job: &FanoutJob, followers: &[Edge], page: FollowerPage, out: &mut impl Plan) {
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
        plan_step(job, followers, page, decide, out);
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
