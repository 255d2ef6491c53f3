//! Fan-out and home timelines: the inbox and job-queue halves of Starling's
//! storage seam, the planning of each fan-out batch, the assembly of
//! timeline pages, and the rebuild of an inbox from the ground truth.
//!
//! Nothing here does I/O of its own or spawns threads: everything reads
//! through the [`Backend`] seam and returns [`Mutation`]s for the caller to
//! apply, so that the same logic runs over RocksDB, over the in-memory
//! reference backend, and (later) over a Redis-protocol cluster that keeps
//! inboxes as sorted sets.

use std::path::Path;

use starling_core::{
    Config, Cursor, Durability, Edge, Error, FanoutJob, InboxEntry, JobKind, MAX_PAGE_SIZE,
    Mutation, Post, PostId, Result, UserId,
};
use starling_graph::{Direction, GraphStore};
use starling_log::PostStore;

mod check;
mod rebuild;
mod timeline;

pub use check::{CheckReport, Problem, check, repairs};
pub use rebuild::expected_inbox;
pub use timeline::{TimelinePage, author_page, home_page};

/// The reads a backend answers about home-timeline inboxes.
pub trait InboxStore {
    /// Appends to `out` up to `limit` entries of `owner`'s inbox, newest
    /// first, starting below `before`.
    fn inbox(
        &self,
        owner: UserId,
        before: Option<PostId>,
        limit: usize,
        out: &mut Vec<InboxEntry>,
    ) -> Result<()>;
}

/// The reads a backend answers about durable fan-out jobs.
pub trait FanoutQueue {
    /// The job for this post, if one is pending.
    fn job(&self, post: PostId) -> Result<Option<FanoutJob>>;
    /// Appends to `out` up to `limit` pending jobs in post order, after `after`.
    fn jobs(&self, after: Option<PostId>, limit: usize, out: &mut Vec<FanoutJob>) -> Result<()>;
}

/// Starling's whole storage seam: the domain-level reads of every store,
/// and one write, [`Backend::apply`], that applies a batch of mutations
/// atomically with the durability asked for.
pub trait Backend: GraphStore + PostStore + InboxStore + FanoutQueue + Send + Sync + 'static {
    /// Applies `batch` atomically: afterwards either all of it or none of it
    /// is stored. With [`Durability::Synced`] it is on stable storage when
    /// this returns.
    fn apply(&self, batch: &[Mutation], durability: Durability) -> Result<()>;
}

/// A backend that lives at a path on disk.
pub trait OpenBackend: Backend + Sized {
    /// Opens (creating if missing) the store at `path`.
    fn open(path: &Path, config: &Config) -> Result<Self>;
}

/// Checks a requested page size against `1..=MAX_PAGE_SIZE`.
pub fn check_page_size(requested: usize) -> Result<()> {
    if requested == 0 || requested > MAX_PAGE_SIZE {
        Err(Error::PageSize {
            requested,
            max: MAX_PAGE_SIZE,
        })
    } else {
        Ok(())
    }
}

/// Plans one batch of a fan-out job over `followers` (a page in id order,
/// after the job's cursor): an inbox write per follower, then the job
/// advanced to the page's last follower, or deleted when `last_page`.
///
/// A delivery skips followers whose edge is newer than the post: they got
/// (or did not get) it by backfill when they followed. That keeps a replayed
/// or late job equal to a rebuild from the ground truth.
pub fn plan_step(job: &FanoutJob, followers: &[Edge], last_page: bool, out: &mut Vec<Mutation>) {
    match job.kind {
        JobKind::Deliver => out.extend(followers.iter().filter(|e| e.since < job.post).map(|e| {
            Mutation::InboxPut {
                owner: e.user,
                entry: InboxEntry {
                    post: job.post,
                    author: job.author,
                },
            }
        })),
        JobKind::Retract => out.extend(followers.iter().map(|e| Mutation::InboxDelete {
            owner: e.user,
            post: job.post,
        })),
    }
    match (last_page, followers.last()) {
        (false, Some(last)) => out.push(Mutation::PutJob(FanoutJob {
            cursor: Some(last.user),
            ..*job
        })),
        _ => out.push(Mutation::DeleteJob(job.post)),
    }
}

/// Reads the next page of followers for `job`: up to `limit` edges after
/// the job's cursor. Returns whether this is the last page.
pub fn next_followers<S: GraphStore + ?Sized>(
    store: &S,
    job: &FanoutJob,
    limit: usize,
    out: &mut Vec<Edge>,
) -> Result<bool> {
    out.clear();
    store.edges(job.author, Direction::Followers, job.cursor, limit, out)?;
    Ok(out.len() < limit)
}

/// Hydrates `ids` into `out`, keeping the live posts in order and dropping
/// missing ones and tombstones.
pub fn hydrate<S: PostStore + ?Sized>(
    store: &S,
    ids: &[PostId],
    scratch: &mut Vec<Option<Post>>,
    out: &mut Vec<Post>,
) -> Result<()> {
    scratch.clear();
    store.posts(ids, scratch)?;
    out.extend(scratch.drain(..).flatten().filter(|p| !p.deleted));
    Ok(())
}

/// Decodes an optional timeline cursor into (last post, entries seen).
pub fn timeline_position(cursor: Option<&Cursor>) -> Result<(Option<PostId>, u32)> {
    match cursor {
        None => Ok((None, 0)),
        Some(c) => c.as_timeline().map(|(last, seen)| (Some(last), seen)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(user: u64, since: u64) -> Edge {
        Edge {
            user: UserId(user),
            since: PostId(since),
        }
    }

    #[test]
    fn delivery_skips_newer_edges_and_advances_the_cursor() {
        let job = FanoutJob {
            post: PostId(100),
            author: UserId(1),
            kind: JobKind::Deliver,
            cursor: None,
        };
        let mut out = Vec::new();
        plan_step(&job, &[edge(2, 50), edge(3, 100), edge(4, 150), edge(5, 0)], false, &mut out);
        let owners: Vec<_> = out
            .iter()
            .filter_map(|m| match m {
                Mutation::InboxPut { owner, .. } => Some(owner.0),
                _ => None,
            })
            .collect();
        assert_eq!(owners, vec![2, 5]);
        assert_eq!(
            out.last(),
            Some(&Mutation::PutJob(FanoutJob {
                cursor: Some(UserId(5)),
                ..job
            }))
        );
    }

    #[test]
    fn last_page_deletes_the_job_and_retraction_removes_everywhere() {
        let job = FanoutJob {
            post: PostId(100),
            author: UserId(1),
            kind: JobKind::Retract,
            cursor: Some(UserId(1)),
        };
        let mut out = Vec::new();
        plan_step(&job, &[edge(2, 500)], true, &mut out);
        assert_eq!(
            out,
            vec![
                Mutation::InboxDelete {
                    owner: UserId(2),
                    post: PostId(100)
                },
                Mutation::DeleteJob(PostId(100)),
            ]
        );
        out.clear();
        plan_step(&job, &[], false, &mut out);
        assert_eq!(out, vec![Mutation::DeleteJob(PostId(100))]);
    }

    #[test]
    fn page_sizes_are_checked() {
        assert!(check_page_size(1).is_ok());
        assert!(check_page_size(MAX_PAGE_SIZE).is_ok());
        for bad in [0, MAX_PAGE_SIZE + 1, usize::MAX] {
            assert!(matches!(check_page_size(bad), Err(Error::PageSize { .. })));
        }
    }
}
