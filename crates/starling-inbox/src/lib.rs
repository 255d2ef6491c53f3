//! Fan-out and home timelines: the planning of each fan-out batch, the
//! assembly of timeline pages, and the rebuild of an inbox from the ground
//! truth.
//!
//! Nothing here does I/O of its own or spawns threads: everything reads
//! through the storage seam (`starling_store`) and returns [`Mutation`]s for the caller to
//! apply, so that the same logic runs over RocksDB, over the in-memory
//! reference backend, and (later) over a Redis-protocol cluster that keeps
//! inboxes as sorted sets.

use starling_core::{
    Audience, AuthorMode, Cursor, Edge, EdgeMode, Error, FanoutJob, InboxEntry, JobKind, LinkKind,
    MAX_PAGE_SIZE, Mutation, Post, PostId, Result, UserId,
};
use starling_store::{Direction, GraphStore, PostStore};

mod check;
mod rebuild;
mod timeline;
pub mod view;

pub use check::{CheckReport, Problem, Progress, Stage, check, check_with_progress, repairs};
pub use rebuild::{below_window, expected_inbox};
pub use timeline::{HomeRead, Start, TimelinePage, author_page, fill_page, home_page};
pub use view::{Mutes, Viewer};

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

/// What a delivery does for one follower, decided by the engine's policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Write the post into the follower's inbox.
    Push,
    /// Write nothing: the follower pulls this author already, or is inactive
    /// and gets their inbox rebuilt on their next read.
    Skip,
    /// Turn the edge into a pull edge instead of writing the post.
    Pull,
}

/// Where a plan goes: a batch of mutations, or a sink that keeps inbox
/// puts apart (a bulk load's entries) from the rest.
pub trait Plan {
    /// Adds a mutation.
    fn push(&mut self, m: Mutation);

    /// Adds an inbox put; by default as [`Mutation::InboxPut`].
    fn put(&mut self, owner: UserId, entry: InboxEntry) {
        self.push(Mutation::InboxPut { owner, entry });
    }
}

impl Plan for Vec<Mutation> {
    fn push(&mut self, m: Mutation) {
        Vec::push(self, m);
    }
}

/// Plans one batch of a fan-out job over `followers` (a page in id order,
/// after the job's cursor), then advances the job to the page's last
/// follower, or deletes it when `last_page`.
///
/// A delivery skips followers whose edge is newer than the post (they got,
/// or did not get, it by backfill when they followed) and pull edges; for
/// the rest `decide` says push, skip or pull. That keeps a replayed or late
/// job equal to a rebuild from the ground truth.
pub fn plan_step(
    job: &FanoutJob,
    followers: &[Edge],
    page: FollowerPage,
    decide: impl Fn(&Edge) -> Delivery,
    out: &mut impl Plan,
) {
    match job.kind {
        JobKind::Deliver => {
            for e in followers
                .iter()
                .filter(|e| e.since < job.post && e.mode == EdgeMode::Push)
            {
                match decide(e) {
                    Delivery::Push => out.put(
                        e.user,
                        InboxEntry {
                            post: job.post,
                            author: job.author,
                        },
                    ),
                    Delivery::Skip => {}
                    Delivery::Pull => out.push(Mutation::SetEdgeMode {
                        follower: e.user,
                        followee: job.author,
                        since: e.since,
                        mode: EdgeMode::Pull,
                    }),
                }
            }
        }
        JobKind::Retract => {
            for e in followers {
                out.push(Mutation::InboxDelete {
                    owner: e.user,
                    post: job.post,
                });
            }
        }
        // Device updates are planned by the engine; no inbox changes.
        JobKind::Device => {}
        JobKind::Promote => {
            for e in followers.iter().filter(|e| e.mode == EdgeMode::Push) {
                out.push(Mutation::SetEdgeMode {
                    follower: e.user,
                    followee: job.author,
                    since: e.since,
                    mode: EdgeMode::Pull,
                });
            }
            if page.last {
                out.push(Mutation::SetAuthorMode {
                    author: job.author,
                    mode: AuthorMode::Pulled,
                });
            }
        }
    }
    match (page.last, page.end) {
        (false, Some(end)) => out.push(Mutation::PutJob(FanoutJob {
            cursor: Some(end),
            ..*job
        })),
        _ => out.push(Mutation::DeleteJob(job.post)),
    }
}

/// Where a page of a job's walk ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerPage {
    /// Nothing follows this page.
    pub last: bool,
    /// The last user the page walked over (the job's next cursor).
    pub end: Option<UserId>,
}

/// Reads the next page of `job`'s walk into `out`: up to `limit` users
/// after the job's cursor. A public post's job walks the author's
/// followers; a group post's walks the group's members, keeping those who
/// follow the author (with their edge), so that it costs the group's size,
/// not the author's follower count.
pub fn next_followers<S: GraphStore + ?Sized>(
    store: &S,
    job: &FanoutJob,
    audience: Audience,
    limit: usize,
    out: &mut Vec<Edge>,
) -> Result<FollowerPage> {
    out.clear();
    match audience {
        Audience::Public => {
            store.edges(job.author, Direction::Followers, job.cursor, limit, out)?;
            Ok(FollowerPage {
                last: out.len() < limit,
                end: out.last().map(|e| e.user).or(job.cursor),
            })
        }
        Audience::Group(group) => {
            let mut members = Vec::with_capacity(limit);
            store.links(
                LinkKind::Members,
                group.0,
                job.cursor.map(|c| c.0),
                limit,
                &mut members,
            )?;
            let ids: Vec<UserId> = members.iter().map(|&(m, _)| UserId(m)).collect();
            store.follower_edges(job.author, &ids, out)?;
            Ok(FollowerPage {
                last: members.len() < limit,
                end: members.last().map(|m| UserId(m.0)).or(job.cursor),
            })
        }
    }
}

/// The audience of the post a job walks for (a promotion has no post: its
/// walk is over every follower).
pub fn job_audience<S: PostStore + ?Sized>(store: &S, job: &FanoutJob) -> Result<Audience> {
    if job.kind == JobKind::Promote {
        return Ok(Audience::Public);
    }
    Ok(view::stored_post(store, job.post)?.map_or(Audience::Public, |p| p.audience))
}

/// Which timeline a page belongs to: home timelines show a post at most
/// once however many reposts reach them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reposts {
    /// Keep only a post's first appearance ([`Viewer::first_appearance`]).
    Once,
    /// Keep every repost (an author's own timeline: one repost per post).
    Each,
}

/// Hydrates `ids` into `page`, keeping in order the posts the viewer may
/// see (see [`view`]) and adding the originals of reposts to
/// `page.reposted`.
pub fn hydrate<S: GraphStore + PostStore + ?Sized>(
    store: &S,
    viewer: &mut Viewer,
    ids: &[PostId],
    reposts: Reposts,
    scratch: &mut Vec<Option<Post>>,
    page: &mut TimelinePage,
) -> Result<()> {
    scratch.clear();
    store.posts(ids, scratch)?;
    let mut got: Vec<Post> = scratch.drain(..).flatten().collect();
    viewer.filter(store, &mut got, &mut page.reposted)?;
    if reposts == Reposts::Once {
        let mut kept = Vec::with_capacity(got.len());
        for post in got {
            let first = match post.repost_of {
                None => true,
                Some(of) => match page.reposted.iter().find(|o| o.id == of) {
                    Some(original) => viewer.first_appearance(store, &post, original)?,
                    None => false,
                },
            };
            if first {
                kept.push(post);
            }
        }
        got = kept;
    }
    page.posts.extend(got);
    let posts = &page.posts;
    page.reposted
        .retain(|o| posts.iter().any(|p| p.repost_of == Some(o.id)));
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
            mode: EdgeMode::Push,
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
        let pulled = Edge {
            mode: EdgeMode::Pull,
            ..edge(6, 0)
        };
        let followers = [
            edge(2, 50),
            edge(3, 100),
            edge(4, 150),
            edge(5, 0),
            pulled,
            edge(7, 0),
            edge(8, 0),
        ];
        let decide = |e: &Edge| match e.user.0 {
            7 => Delivery::Skip,
            8 => Delivery::Pull,
            _ => Delivery::Push,
        };
        let page = FollowerPage {
            last: false,
            end: Some(UserId(8)),
        };
        plan_step(&job, &followers, page, decide, &mut out);
        let owners: Vec<_> = out
            .iter()
            .filter_map(|m| match m {
                Mutation::InboxPut { owner, .. } => Some(owner.0),
                _ => None,
            })
            .collect();
        assert_eq!(owners, vec![2, 5]);
        assert!(out.contains(&Mutation::SetEdgeMode {
            follower: UserId(8),
            followee: UserId(1),
            since: PostId(0),
            mode: EdgeMode::Pull
        }));
        assert_eq!(out.len(), 4);
        assert_eq!(
            out.last(),
            Some(&Mutation::PutJob(FanoutJob {
                cursor: Some(UserId(8)),
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
        let last = FollowerPage {
            last: true,
            end: Some(UserId(2)),
        };
        plan_step(&job, &[edge(2, 500)], last, |_| Delivery::Push, &mut out);
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
        let empty = FollowerPage {
            last: false,
            end: None,
        };
        plan_step(&job, &[], empty, |_| Delivery::Push, &mut out);
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
