//! `check` and `rebuild`: derived state against the ground truth.
//!
//! Ground truth: users, the `following` side of each edge, posts, blocks,
//! the likers of each post ([`LinkKind::LikedBy`]), each group's members
//! ([`LinkKind::Members`]).
//! Derived: the name index, the `followers` side of each edge, counts, the
//! author index, the links a post implies (replies, reposts, group posts),
//! the reverse side of each block, each user's groups
//! ([`LinkKind::MemberOf`]), each user's likes and each post's like
//! count, inboxes. `check` lists every difference; `repairs` turns a report
//! into the mutations that make the derived state equal to the truth again.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::ops::ControlFlow;

use starling_core::paging::{PAGE, for_each_page};
use starling_core::{
    Audience, Counts, Edge, EdgeMode, InboxEntry, LinkKind, Mutation, Post, PostId, Result, User,
    UserId,
};
use starling_store::{Direction, FanoutQueue, GraphStore, InboxStore, PostStore};

use crate::expected_inbox;

/// One difference between derived state and the ground truth.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The name index does not lead to this user.
    NameIndex(User),
    /// A following edge has no followers-side copy, or one with another `since`.
    ReverseEdgeMissing(UserId, UserId, PostId),
    /// A followers-side entry has no following edge.
    ReverseEdgeExtra(UserId, UserId),
    /// Stored counts differ from the edges.
    Counts(UserId, Counts, Counts),
    /// The reader's pulled index disagrees with the edge's mode.
    PulledIndex(UserId, UserId, PostId, EdgeMode),
    /// The reader's pulled index names an author they do not follow.
    PulledOrphan(UserId, UserId),
    /// A post is missing from its author's index.
    AuthorIndexMissing(Post),
    /// An author-index entry names no post of that author.
    AuthorIndexDangling(UserId, PostId),
    /// An inbox holds an entry the ground truth does not give it.
    InboxStale(UserId, InboxEntry),
    /// An inbox lacks an entry the ground truth gives it.
    InboxMissing(UserId, InboxEntry),
    /// A link a post or a block implies is missing or holds another value
    /// (kind, from, to, the value it must hold).
    LinkMissing(LinkKind, u64, u64, u64),
    /// A user's likes name a post they are not among the likers of.
    LikeDangling(UserId, PostId),
    /// A post's like count differs from its likers (the post as it must
    /// be stored, the count stored).
    LikeCount(Post, u64),
    /// A user's group index names a group they are not a member of (the
    /// user, the group).
    MembershipDangling(UserId, u64),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NameIndex(u) => write!(f, "user {}: name index does not lead to it", u.id),
            Problem::ReverseEdgeMissing(a, b, _) => {
                write!(
                    f,
                    "edge {a} -> {b}: followers-side copy missing or different"
                )
            }
            Problem::ReverseEdgeExtra(a, b) => {
                write!(f, "edge {a} -> {b}: followers-side copy without the edge")
            }
            Problem::PulledIndex(a, b, _, mode) => {
                write!(
                    f,
                    "edge {a} -> {b}: pulled index disagrees with mode {mode:?}"
                )
            }
            Problem::PulledOrphan(a, b) => write!(f, "{a} pulls {b} without following them"),
            Problem::Counts(u, stored, actual) => {
                write!(f, "user {u}: counts {stored:?}, edges say {actual:?}")
            }
            Problem::AuthorIndexMissing(p) => {
                write!(f, "post {} missing from the index of {}", p.id, p.author)
            }
            Problem::AuthorIndexDangling(u, p) => {
                write!(f, "index of {u} names post {p}, which is not theirs")
            }
            Problem::InboxStale(u, e) => {
                write!(f, "inbox of {u} holds post {} it should not", e.post)
            }
            Problem::InboxMissing(u, e) => write!(f, "inbox of {u} lacks post {}", e.post),
            Problem::LinkMissing(kind, from, to, _) => {
                write!(f, "link {kind:?} {from} -> {to} missing or different")
            }
            Problem::LikeDangling(u, p) => {
                write!(
                    f,
                    "likes of {u} name post {p}, which they are not a liker of"
                )
            }
            Problem::LikeCount(p, stored) => {
                write!(f, "post {}: like count {stored}, {} likers", p.id, p.likes)
            }
            Problem::MembershipDangling(u, g) => {
                write!(
                    f,
                    "groups of {u} name group {g}, which they are not a member of"
                )
            }
        }
    }
}

impl Problem {
    /// What is wrong and where, without the values found: two checks of a
    /// store that found the same damage agree on it, even when the values
    /// moved on between them (counts, a post's fields).
    pub fn place(&self) -> String {
        match self {
            Problem::Counts(u, _, _) => format!("counts of {u}"),
            Problem::PulledIndex(a, b, _, _) => format!("pulled index {a} -> {b}"),
            Problem::LinkMissing(kind, from, to, _) => format!("link {kind:?} {from} -> {to}"),
            other => other.to_string(),
        }
    }
}

/// What `check` examined and found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Users examined.
    pub users: u64,
    /// Follow edges examined.
    pub edges: u64,
    /// Posts examined (tombstones included).
    pub posts: u64,
    /// Inbox entries examined (within the cap).
    pub inbox_entries: u64,
    /// Fan-out jobs still pending (inboxes may lag them).
    pub pending_jobs: u64,
    /// Every difference found.
    pub problems: Vec<Problem>,
}

impl CheckReport {
    /// Whether nothing was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Which part of the work a [`Progress`] report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// Each user's edges, indexes, blocks and inbox (`total`: user ids).
    Users,
    /// Each user's stored counts against the edges (`total`: user ids).
    Counts,
    /// Every post against its author's index and implied links (no total).
    Posts,
    /// Pending fan-out jobs (no total).
    Jobs,
    /// Repairs written by a rebuild (`total`: repairs to write).
    Repairs,
}

/// How far a long operation (check, rebuild) has come: `done` units of
/// `stage`, out of `total` when it is known in advance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The part of the work.
    pub stage: Stage,
    /// Units of this stage done so far.
    pub done: u64,
    /// Units this stage holds, when known in advance.
    pub total: Option<u64>,
}

/// Compares all derived state with the ground truth. `backfill` and `cap`
/// are the engine's `backfill_posts` and `inbox_cap`.
///
/// Inboxes are compared within the cap: every stored entry among the newest
/// `cap` must be in the ground truth, and every expected entry must be
/// stored unless it is older than what a full inbox holds, or at or below
/// the inbox's trim floor.
///
/// An inbox may lack entries of the authors its owner pulls, and, when
/// `may_lag(owner)` (an inactive reader, rebuilt on their next read), any.
pub fn check<S>(
    store: &S,
    backfill: usize,
    cap: usize,
    may_lag: &dyn Fn(UserId) -> bool,
) -> Result<CheckReport>
where
    S: GraphStore + PostStore + InboxStore + FanoutQueue + ?Sized,
{
    check_with_progress(store, backfill, cap, may_lag, &|_| {})
}

/// [`check`], calling `progress` as it goes: after each user id of the
/// [`Stage::Users`] and [`Stage::Counts`] passes, after each page of posts
/// and of jobs. The report is the one `check` returns.
pub fn check_with_progress<S>(
    store: &S,
    backfill: usize,
    cap: usize,
    may_lag: &dyn Fn(UserId) -> bool,
    progress: &dyn Fn(Progress),
) -> Result<CheckReport>
where
    S: GraphStore + PostStore + InboxStore + FanoutQueue + ?Sized,
{
    let mut report = CheckReport::default();
    let last_user = store.last_user_id()?.map_or(0, |u| u.0);
    let step = |stage, done, total| {
        progress(Progress { stage, done, total });
    };
    let mut ids = Vec::new();
    let mut posts = Vec::new();
    // Followers per user, counted from the ground-truth side of the edges.
    let mut followers_of: HashMap<UserId, u64> = HashMap::new();
    for id in (1..=last_user).map(UserId) {
        step(Stage::Users, id.0 - 1, Some(last_user));
        let Some(user) = store.user(id)? else {
            continue;
        };
        report.users += 1;
        // A deleted account's name may have gone to a later account.
        if store.user_id_by_name(&user.name)? != Some(id)
            && store.link(LinkKind::Deleted, id.0, 0)?.is_none()
        {
            report.problems.push(Problem::NameIndex(user));
        }
        let following = all_edges(store, id, Direction::Following)?;
        report.edges += following.len() as u64;
        let mut pulled = Vec::new();
        store.pulled(id, &mut pulled)?;
        for e in &following {
            *followers_of.entry(e.user).or_default() += 1;
            match store.follower_edge(e.user, id)? {
                Some(r) if r.since == e.since => {
                    let indexed = pulled.iter().any(|p| p.user == e.user);
                    if indexed != (r.mode == EdgeMode::Pull) {
                        report
                            .problems
                            .push(Problem::PulledIndex(id, e.user, e.since, r.mode));
                    }
                }
                _ => report
                    .problems
                    .push(Problem::ReverseEdgeMissing(id, e.user, e.since)),
            }
        }
        let pulls: BTreeSet<UserId> = pulled.iter().map(|p| p.user).collect();
        for e in all_edges(store, id, Direction::Followers)? {
            if store.edge(e.user, id)?.is_none() {
                report.problems.push(Problem::ReverseEdgeExtra(e.user, id));
            }
        }
        for p in &pulled {
            if !following.iter().any(|e| e.user == p.user) {
                report.problems.push(Problem::PulledOrphan(id, p.user));
            }
        }
        // The author index must name exactly this author's posts.
        for_each_page(
            PAGE,
            |before, size, ids| store.author_posts(id, before, size, ids),
            |&p| p,
            |ids| {
                posts.clear();
                store.posts(ids, &mut posts)?;
                for (p, post) in ids.iter().zip(&posts) {
                    if post.as_ref().map(|p| p.author) != Some(id) {
                        report.problems.push(Problem::AuthorIndexDangling(id, *p));
                    }
                }
                Ok(ControlFlow::Continue(()))
            },
        )?;
        // Blocks and follow requests are stored both ways.
        for (kind, mirror) in [
            (LinkKind::Blocks, LinkKind::BlockedBy),
            (LinkKind::BlockedBy, LinkKind::Blocks),
            (LinkKind::FollowRequests, LinkKind::RequestsSent),
            (LinkKind::RequestsSent, LinkKind::FollowRequests),
        ] {
            for_each_page(
                PAGE,
                |after, size, links| store.links(kind, id.0, after, size, links),
                |&(other, _)| other,
                |links| {
                    for &(other, at) in links {
                        if store.link(mirror, other, id.0)? != Some(at) {
                            report
                                .problems
                                .push(Problem::LinkMissing(mirror, other, id.0, at));
                        }
                    }
                    Ok(ControlFlow::Continue(()))
                },
            )?;
        }
        // Memberships are stored both ways: the group's side is the truth
        // (stores written before the member's side existed lack it, and a
        // rebuild writes it).
        for_each_page(
            PAGE,
            |after, size, links| store.links(LinkKind::OwnerGroups, id.0, after, size, links),
            |&(group, _)| group,
            |groups| {
                for &(group, _) in groups {
                    for_each_page(
                        PAGE,
                        |after, size, links| {
                            store.links(LinkKind::Members, group, after, size, links)
                        },
                        |&(member, _)| member,
                        |members| {
                            for &(member, at) in members {
                                if store.link(LinkKind::MemberOf, member, group)? != Some(at) {
                                    report.problems.push(Problem::LinkMissing(
                                        LinkKind::MemberOf,
                                        member,
                                        group,
                                        at,
                                    ));
                                }
                            }
                            Ok(ControlFlow::Continue(()))
                        },
                    )?;
                }
                Ok(ControlFlow::Continue(()))
            },
        )?;
        for_each_page(
            PAGE,
            |after, size, links| store.links(LinkKind::MemberOf, id.0, after, size, links),
            |&(group, _)| group,
            |groups| {
                for &(group, _) in groups {
                    if store.link(LinkKind::Members, group, id.0)?.is_none() {
                        report.problems.push(Problem::MembershipDangling(id, group));
                    }
                }
                Ok(ControlFlow::Continue(()))
            },
        )?;
        // Each like is stored both ways: the likers side is the truth.
        for_each_page(
            PAGE,
            |after, size, links| store.links(LinkKind::Likes, id.0, after, size, links),
            |&(post, _)| post,
            |links| {
                for &(post, _) in links {
                    if store.link(LinkKind::LikedBy, !post, id.0)?.is_none() {
                        report
                            .problems
                            .push(Problem::LikeDangling(id, PostId(!post)));
                    }
                }
                Ok(ControlFlow::Continue(()))
            },
        )?;
        let lag = may_lag(id);
        check_inbox(
            store,
            id,
            backfill,
            cap,
            &|author| lag || pulls.contains(&author),
            &mut report,
        )?;
    }
    step(Stage::Users, last_user, Some(last_user));
    for id in (1..=last_user).map(UserId) {
        step(Stage::Counts, id.0 - 1, Some(last_user));
        if store.user(id)?.is_none() {
            continue;
        }
        let stored = store.counts(id)?;
        let actual = Counts {
            followers: followers_of.get(&id).copied().unwrap_or(0),
            following: all_edges(store, id, Direction::Following)?.len() as u64,
        };
        if stored != actual {
            report.problems.push(Problem::Counts(id, stored, actual));
        }
    }
    step(Stage::Counts, last_user, Some(last_user));
    // Every post must be in its author's index.
    for_each_page(
        PAGE,
        |after, size, all| store.scan_posts(after, size, all),
        |post| post.id,
        |all| {
            for post in all {
                report.posts += 1;
                ids.clear();
                store.author_posts(
                    post.author,
                    Some(PostId(post.id.0.saturating_add(1))),
                    1,
                    &mut ids,
                )?;
                if ids.first() != Some(&post.id) {
                    report
                        .problems
                        .push(Problem::AuthorIndexMissing(post.clone()));
                }
                for (kind, from, to, value) in implied_links(post) {
                    if store.link(kind, from, to)? != Some(value) {
                        report
                            .problems
                            .push(Problem::LinkMissing(kind, from, to, value));
                    }
                }
                check_likers(store, post, &mut report)?;
            }
            step(Stage::Posts, report.posts, None);
            Ok(ControlFlow::Continue(()))
        },
    )?;
    for_each_page(
        PAGE,
        |after, size, jobs| store.jobs(after, size, jobs),
        |job| job.post,
        |jobs| {
            report.pending_jobs += jobs.len() as u64;
            step(Stage::Jobs, report.pending_jobs, None);
            Ok(ControlFlow::Continue(()))
        },
    )?;
    Ok(report)
}

/// Checks that every liker of `post` has it among their likes, and that
/// the post's like count is the number of its likers.
fn check_likers<S: GraphStore + ?Sized>(
    store: &S,
    post: &Post,
    report: &mut CheckReport,
) -> Result<()> {
    let mut likers = 0u64;
    for_each_page(
        PAGE,
        |after, size, links| store.links(LinkKind::LikedBy, post.id.0, after, size, links),
        |&(user, _)| user,
        |links| {
            likers += links.len() as u64;
            for &(user, at) in links {
                if store.link(LinkKind::Likes, user, !post.id.0)? != Some(at) {
                    report.problems.push(Problem::LinkMissing(
                        LinkKind::Likes,
                        user,
                        !post.id.0,
                        at,
                    ));
                }
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    if likers != post.likes {
        report.problems.push(Problem::LikeCount(
            Post {
                likes: likers,
                ..post.clone()
            },
            post.likes,
        ));
    }
    Ok(())
}

/// The links a stored post implies: its place among its parent's replies
/// and its group's posts, and, while live, its original's reposts.
fn implied_links(post: &Post) -> Vec<(LinkKind, u64, u64, u64)> {
    let mut out = Vec::new();
    if let Some(parent) = post.reply_to {
        out.push((LinkKind::Replies, parent.0, post.id.0, post.author.0));
    }
    if let Some(original) = post.repost_of
        && !post.deleted
    {
        out.push((LinkKind::Reposts, original.0, post.author.0, post.id.0));
    }
    if let Audience::Group(group) = post.audience {
        out.push((LinkKind::GroupPosts, group.0, !post.id.0, 0));
    }
    out
}

fn all_edges<S: GraphStore + ?Sized>(store: &S, user: UserId, dir: Direction) -> Result<Vec<Edge>> {
    let mut out = Vec::new();
    for_each_page(
        PAGE,
        |after, size, edges| store.edges(user, dir, after, size, edges),
        |edge| edge.user,
        |edges| {
            out.extend_from_slice(edges);
            Ok(ControlFlow::Continue(()))
        },
    )?;
    Ok(out)
}

fn check_inbox<S>(
    store: &S,
    owner: UserId,
    backfill: usize,
    cap: usize,
    may_lack: &dyn Fn(UserId) -> bool,
    report: &mut CheckReport,
) -> Result<()>
where
    S: GraphStore + PostStore + InboxStore + ?Sized,
{
    let all = expected_inbox(store, owner, backfill, usize::MAX)?;
    let mut stored = Vec::new();
    store.inbox(owner, None, cap, &mut stored)?;
    report.inbox_entries += stored.len() as u64;
    let truth: BTreeSet<(PostId, UserId)> = all.iter().map(|e| (e.post, e.author)).collect();
    let have: BTreeSet<(PostId, UserId)> = stored.iter().map(|e| (e.post, e.author)).collect();
    let oldest_stored = if stored.len() == cap {
        stored.last().map(|e| e.post)
    } else {
        None
    };
    let floor = store.inbox_floor(owner)?;
    for e in &stored {
        if !truth.contains(&(e.post, e.author)) {
            report.problems.push(Problem::InboxStale(owner, *e));
        }
    }
    // What the inbox itself must hold: the truth less what may be pulled.
    for e in all.iter().filter(|e| !may_lack(e.author)).take(cap) {
        let may_be_trimmed = oldest_stored.is_some_and(|oldest| e.post < oldest)
            || floor.is_some_and(|f| e.post <= f);
        if !may_be_trimmed && !have.contains(&(e.post, e.author)) {
            report.problems.push(Problem::InboxMissing(owner, *e));
        }
    }
    Ok(())
}

/// The mutations that repair everything `report` lists.
pub fn repairs(report: &CheckReport) -> Vec<Mutation> {
    report.problems.iter().map(repair).collect()
}

fn repair(problem: &Problem) -> Mutation {
    match *problem {
        Problem::NameIndex(ref user) => Mutation::PutUser(user.clone()),
        Problem::ReverseEdgeMissing(follower, followee, since) => Mutation::PutFollowerEntry {
            followee,
            follower,
            since,
            mode: EdgeMode::Push,
        },
        Problem::ReverseEdgeExtra(follower, followee) => {
            Mutation::DeleteFollowerEntry { followee, follower }
        }
        Problem::Counts(user, _, counts) => Mutation::SetCounts { user, counts },
        Problem::PulledOrphan(reader, author) => Mutation::DeletePulled { reader, author },
        Problem::PulledIndex(follower, followee, since, mode) => Mutation::SetEdgeMode {
            follower,
            followee,
            since,
            mode,
        },
        Problem::AuthorIndexMissing(ref post) => Mutation::PutPost(post.clone()),
        Problem::AuthorIndexDangling(author, post) => Mutation::DeleteAuthorIndex { author, post },
        Problem::InboxStale(owner, entry) => Mutation::InboxDelete {
            owner,
            post: entry.post,
        },
        Problem::InboxMissing(owner, entry) => Mutation::InboxPut { owner, entry },
        Problem::LinkMissing(kind, from, to, value) => Mutation::PutLink {
            kind,
            from,
            to,
            value,
        },
        Problem::LikeDangling(user, post) => Mutation::DeleteLink {
            kind: LinkKind::Likes,
            from: user.0,
            to: !post.0,
        },
        Problem::LikeCount(ref post, _) => Mutation::PutPost(post.clone()),
        Problem::MembershipDangling(user, group) => Mutation::DeleteLink {
            kind: LinkKind::MemberOf,
            from: user.0,
            to: group,
        },
    }
}
