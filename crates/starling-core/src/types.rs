//! The records Starling stores, and the domain-level mutations a backend applies.

use crate::{ChangeRecord, DirectMutation, GroupId, PostId, UserId, Username};

/// An account.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// Its username, as chosen (look-ups ignore case); `username` in JSON.
    #[cfg_attr(feature = "serde", serde(rename = "username"))]
    pub name: Username,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
}

/// A post, or the tombstone a deleted post leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Post {
    /// Its id (which also dates it).
    pub id: PostId,
    /// Who wrote it.
    pub author: UserId,
    /// Its text; empty once deleted.
    pub text: String,
    /// Set when the post was deleted; the text is gone.
    pub deleted: bool,
    /// The post this one replies to.
    pub reply_to: Option<PostId>,
    /// For a repost: the original post (never itself a repost). A repost
    /// has no text of its own.
    pub repost_of: Option<PostId>,
    /// Who may see it.
    pub audience: Audience,
    /// How many accounts like it: kept in the record, changed in the batch
    /// of each like and unlike, so reading it costs nothing more than the
    /// post (see [`LinkKind::LikedBy`]).
    #[cfg_attr(feature = "serde", serde(default))]
    pub likes: u64,
}

impl Post {
    /// A public post that replies to nothing.
    pub fn new(id: PostId, author: UserId, text: impl Into<String>) -> Post {
        Post {
            id,
            author,
            text: text.into(),
            deleted: false,
            reply_to: None,
            repost_of: None,
            audience: Audience::Public,
            likes: 0,
        }
    }

    /// The tombstone this post leaves when deleted: the text is gone, the
    /// links (reply, repost, audience) and the like count stay so that
    /// indexes can be cleaned and visibility still decided.
    pub fn tombstone(&self) -> Post {
        Post {
            text: String::new(),
            deleted: true,
            ..self.clone()
        }
    }
}

/// Who may see a post.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Audience {
    /// Everyone not blocked by or blocking the author.
    #[default]
    Public,
    /// The author, and the members of the author's group who follow the
    /// author. Nobody else, on any read path.
    Group(GroupId),
}

/// A named set of people, owned by one user, that posts can be addressed to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Group {
    /// Its id.
    pub id: GroupId,
    /// The user who set it up; only they post to it and manage it.
    pub owner: UserId,
    /// Its name, as the owner chose it.
    pub name: String,
}

/// A kind of link: an ordered set of `(from, to)` pairs of ids, each with
/// a 64-bit value, listed by `from` in `to` order. Blocks, mutes, group
/// memberships, replies, mentions, reposts, group post lists and likes are
/// all links; their meaning (and which ids they hold) is given per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LinkKind {
    /// (blocker, blocked user) -> block time in ms.
    Blocks = 1,
    /// (blocked user, blocker): the reverse of [`LinkKind::Blocks`].
    BlockedBy = 2,
    /// (muter, muted user) -> mute time in ms.
    Mutes = 3,
    /// (group, member) -> time added in ms.
    Members = 4,
    /// (owner, group) -> 0: the groups a user set up.
    OwnerGroups = 5,
    /// (parent post, reply post) -> reply author.
    Replies = 6,
    /// (mentioned user, !post) -> post author: newest first.
    Mentions = 7,
    /// (original post, reposter) -> repost id: one repost per user.
    Reposts = 8,
    /// (group, !post) -> 0: a group's posts, newest first.
    GroupPosts = 9,
    /// (user, !post) -> like time in ms: the posts a user likes, newest
    /// post first. Never a repost: liking a repost likes its original.
    Likes = 10,
    /// (post, user) -> like time in ms: the reverse of [`LinkKind::Likes`],
    /// who likes a post in id order. The post record's `likes` counts them.
    LikedBy = 11,
    /// (user, 0) -> time protected in ms: the account is protected; its
    /// posts are seen by its author and followers only, and following it
    /// takes a request the user approves.
    Protected = 12,
    /// (protected user, requester) -> request time in ms: a pending
    /// follow request, listed by the user asked.
    FollowRequests = 13,
    /// (requester, protected user) -> request time in ms: the reverse of
    /// [`LinkKind::FollowRequests`], listed by the requester.
    RequestsSent = 14,
    /// (member, group) -> time added in ms: the reverse of
    /// [`LinkKind::Members`], the groups a user is a member of, written in
    /// the batch of every membership change.
    MemberOf = 15,
    /// (user, 0) -> deletion time in ms: the account is being deleted (or
    /// was); every operation by or on it is refused. (user, 1) -> the same
    /// time, once the deletion has removed everything it removes.
    Deleted = 16,
}

impl LinkKind {
    /// Every kind, in tag order.
    pub const ALL: [LinkKind; 16] = [
        LinkKind::Blocks,
        LinkKind::BlockedBy,
        LinkKind::Mutes,
        LinkKind::Members,
        LinkKind::OwnerGroups,
        LinkKind::Replies,
        LinkKind::Mentions,
        LinkKind::Reposts,
        LinkKind::GroupPosts,
        LinkKind::Likes,
        LinkKind::LikedBy,
        LinkKind::Protected,
        LinkKind::FollowRequests,
        LinkKind::RequestsSent,
        LinkKind::MemberOf,
        LinkKind::Deleted,
    ];

    /// The kind with this tag.
    pub fn from_tag(tag: u8) -> Option<LinkKind> {
        LinkKind::ALL.into_iter().find(|k| *k as u8 == tag)
    }
}

/// How the followee's posts reach the follower's home timeline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EdgeMode {
    /// Fan-out writes them into the follower's inbox.
    #[default]
    Push,
    /// The follower's reads merge them from the followee's post log.
    Pull,
}

/// How an author's posts are delivered, decided by follower count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthorMode {
    /// Fanned out to followers (edge by edge, per the policy).
    #[default]
    Push,
    /// Crossed the push threshold: a job is turning every edge to pull;
    /// posts are still fanned out until it finishes.
    Promoting,
    /// Never fanned out: every follower pulls at read time.
    Pulled,
}

/// One end of a follow edge, as listed from the other end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    /// The user at this end.
    pub user: UserId,
    /// The followee's newest post id when the edge was made: posts after it
    /// arrive by fan-out, posts up to it only by backfill.
    pub since: PostId,
    /// Push or pull (kept on the followers side, which fan-out reads).
    pub mode: EdgeMode,
}

/// One home-timeline inbox entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboxEntry {
    /// The post delivered.
    pub post: PostId,
    /// Its author (kept so that unfollow can retract without reading posts).
    pub author: UserId,
}

/// What a fan-out job does to each follower's inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// Insert the post.
    Deliver,
    /// Remove the post (it was deleted).
    Retract,
    /// Turn every edge of the author into a pull edge (the author crossed
    /// the push threshold); `post` is the post that triggered it.
    Promote,
    /// Queue only the post's device updates (texts to phones): its author
    /// is pulled, so no inbox is written. Walks the author's device
    /// subscribers, not their followers.
    Device,
}

/// A durable fan-out job: one post, walked over the author's followers in
/// id order. `cursor` is the last follower already done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FanoutJob {
    /// The post being delivered or retracted; also the job's key.
    pub post: PostId,
    /// The post's author, whose followers are walked.
    pub author: UserId,
    /// Deliver or retract.
    pub kind: JobKind,
    /// The last follower done, or `None` before the first batch.
    pub cursor: Option<UserId>,
}

/// Follower and following counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Counts {
    /// Accounts following this one.
    pub followers: u64,
    /// Accounts this one follows.
    pub following: u64,
}

/// One change to stored state, in domain terms. A backend applies a slice
/// of them atomically: all or none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// Store a new user and its name index entry.
    PutUser(User),
    /// Store the edge in both directions and add one to both counts.
    /// Only issued when the edge is absent.
    AddEdge {
        /// Who follows.
        follower: UserId,
        /// Who is followed.
        followee: UserId,
        /// See [`Edge::since`].
        since: PostId,
        /// See [`Edge::mode`]; a pull edge is also entered in the
        /// follower's index of pulled followees.
        mode: EdgeMode,
    },
    /// Remove the edge in both directions (and from the follower's pulled
    /// index) and subtract one from both counts. Only issued when the edge
    /// is present.
    RemoveEdge {
        /// Who followed.
        follower: UserId,
        /// Who was followed.
        followee: UserId,
    },
    /// Store a post (or its tombstone) and its author-index entry.
    PutPost(Post),
    /// Insert an inbox entry (idempotent: keyed by owner and post).
    InboxPut {
        /// Whose inbox.
        owner: UserId,
        /// The entry.
        entry: InboxEntry,
    },
    /// Remove an inbox entry if present.
    InboxDelete {
        /// Whose inbox.
        owner: UserId,
        /// The post to remove.
        post: PostId,
    },
    /// Remove every entry of `owner`'s inbox with a post id at or below
    /// `through`, and raise the inbox's trim floor to `through`.
    InboxTrim {
        /// Whose inbox.
        owner: UserId,
        /// The newest post id removed.
        through: PostId,
    },
    /// Store or advance a fan-out job.
    PutJob(FanoutJob),
    /// Remove a finished fan-out job.
    DeleteJob(PostId),
    /// Change an existing edge's mode (and the follower's pulled index).
    SetEdgeMode {
        /// Who follows.
        follower: UserId,
        /// Who is followed.
        followee: UserId,
        /// The edge's `since`, unchanged.
        since: PostId,
        /// The new mode.
        mode: EdgeMode,
    },
    /// Record an author's delivery mode.
    SetAuthorMode {
        /// The author.
        author: UserId,
        /// The mode.
        mode: AuthorMode,
    },
    /// Record when a user last read their home timeline.
    SetLastRead {
        /// The reader.
        user: UserId,
        /// Milliseconds since the Unix epoch.
        at_ms: u64,
    },
    /// Overwrite a user's counts (repair only).
    SetCounts {
        /// Whose counts.
        user: UserId,
        /// The true counts.
        counts: Counts,
    },
    /// Store only the followers-side copy of an edge (repair only).
    PutFollowerEntry {
        /// Who is followed.
        followee: UserId,
        /// Who follows.
        follower: UserId,
        /// See [`Edge::since`].
        since: PostId,
        /// See [`Edge::mode`].
        mode: EdgeMode,
    },
    /// Remove only the followers-side copy of an edge (repair only).
    DeleteFollowerEntry {
        /// Who was followed.
        followee: UserId,
        /// Who followed.
        follower: UserId,
    },
    /// Remove a pulled-index entry without an edge (repair only).
    DeletePulled {
        /// The reader.
        reader: UserId,
        /// The author.
        author: UserId,
    },
    /// Store a link (see [`LinkKind`]), replacing its value if present.
    PutLink {
        /// The kind of link.
        kind: LinkKind,
        /// The id it is listed under.
        from: u64,
        /// The id it lists.
        to: u64,
        /// Its value.
        value: u64,
    },
    /// Remove a link if present.
    DeleteLink {
        /// The kind of link.
        kind: LinkKind,
        /// The id it is listed under.
        from: u64,
        /// The id it lists.
        to: u64,
    },
    /// Store a group record.
    PutGroup(Group),
    /// Remove a group record (its links are removed by their own mutations).
    DeleteGroup(GroupId),
    /// Remove an author-index entry that names no post (repair only).
    DeleteAuthorIndex {
        /// The author.
        author: UserId,
        /// The post id the entry names.
        post: PostId,
    },
    /// A change to profiles, phones, direct messages or device updates.
    Direct(DirectMutation),
    /// Store a change-feed record at its position (the engine mints
    /// positions; a record at position 0 is never stored).
    PutChange(ChangeRecord),
    /// Remove every change-feed record at or below `through` and raise the
    /// feed's floor to `through` (kept at its maximum).
    TrimChanges {
        /// The newest position removed.
        through: u64,
    },
}
