//! Byte layout of every stored key and value. The one place that decides
//! byte order: integers in keys are big-endian, so byte order is numeric
//! order; post ids in keys that list newest first are stored inverted
//! (`!id`) so that a forward scan yields the newest post first.
//!
//! Decoders never panic: a short or unknown record is [`Error::Corrupt`].
//!
//! The RocksDB backend keeps each kind of record in a column family of its
//! own; the direct features' families are laid out in
//! [`crate::direct_codec`]. All integers big-endian, `!p` the bitwise
//! complement of a post id:
//!
//! | family | key | value |
//! | --- | --- | --- |
//! | `users` | user id (8) | version 1, created ms (8), username bytes |
//! | `names` | lower-cased username | user id (8) |
//! | `following` | follower (8), followee (8) | `since` post id (8), 0 (1) |
//! | `followers` | followee (8), follower (8) | `since` post id (8), mode (1: 0 push, 1 pull) |
//! | `counters` | user id (8), kind (1: 0 followers, 1 following) | i64 (8), merged by addition |
//! | `posts` | post id (8) | version 2, author (8), flags (1: bit 0 deleted, 1 reply, 2 repost, 3 group, 4 liked), then per flag reply-to id (8), original id (8), group id (8), like count (8, present only when not 0), then UTF-8 text (version 1 records, without links, are still read) |
//! | `author_posts` | author (8), `!post` (8) | empty |
//! | `inbox` | owner (8), `!post` (8) | author (8) |
//! | `inbox_floors` | owner (8) | newest post id a trim removed (8), merged by maximum |
//! | `pulled` | reader (8), author (8) | `since` post id (8) |
//! | `authors` | author (8) | delivery mode (1: 0 push, 1 promoting, 2 pulled) |
//! | `last_reads` | user (8) | milliseconds since the Unix epoch (8) |
//! | `jobs` | post id (8) | version 1, kind (1: 0 deliver, 1 retract, 2 promote, 3 device), author (8), cursor flag (1), cursor (8) |
//! | `links` | kind (1), from (8), to (8) | value (8); kinds: 1 blocks (blocker, blocked) -> ms, 2 blocked-by (reverse), 3 mutes -> ms, 4 members (group, member) -> ms, 5 owner's groups (owner, group), 6 replies (parent, reply) -> author, 7 mentions (user, `!post`) -> author, 8 reposts (original, reposter) -> repost id, 9 group posts (group, `!post`), 10 likes (user, `!post`) -> ms, 11 liked-by (post, user) -> ms, 12 protected (user, 0) -> ms, 13 follow requests (protected user, requester) -> ms, 14 requests sent (requester, protected user) -> ms, 15 member of (member, group) -> ms, 16 deleted (user, 0 while under way, 1 once done) -> ms |
//! | `groups` | group id (8) | version 1, owner (8), UTF-8 name |
//! | `changes` | position (8) | kind (1: 1 posted, 2 deleted, 3 followed, 4 unfollowed, 5 liked, 6 unliked, 7 profile changed, 8 avatar changed), then post (8) and author (8) for 1 and 2, follower (8) and followee (8) for 3 and 4, user (8) and post (8) for 5 and 6, user (8) for 7 and 8 |
//! | `changes` | empty key ([`CHANGE_FLOOR_KEY`], before every position) | the feed's floor: the newest position a trim removed (8) |
//!
//! Promote jobs are keyed by an id drawn from the post-id generator that no
//! post uses. Cursors are laid out here too ([`cursor_bytes`]).

use crate::{
    Audience, AuthorMode, Change, ChangeRecord, Cursor, Edge, EdgeMode, Error, FanoutJob, Group,
    GroupId, InboxEntry, JobKind, LinkKind, Post, PostId, Result, User, UserId, Username,
};

const VALUE_VERSION: u8 = 1;
/// Post records since replies, reposts and audiences: version 1 records
/// (public, no links) are still read.
const POST_VERSION: u8 = 2;

/// Which counter of a user a counter key names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterKind {
    /// Accounts following the user.
    Followers = 0,
    /// Accounts the user follows.
    Following = 1,
}

const CURSOR_VERSION: u8 = 1;
const CURSOR_TIMELINE: u8 = 1;
const CURSOR_USERS: u8 = 2;
const CURSOR_CHANGES: u8 = 3;

/// Bytes of a page cursor: version (1), kind (1: 1 timeline, 2 users, 3
/// change feed), then for a timeline the last post id (8) and the entries
/// seen (4), for a user list the last user id (8), for the change feed the
/// position of the last record read (8).
pub fn cursor_bytes(cursor: &Cursor) -> Vec<u8> {
    let mut out = Vec::with_capacity(14);
    out.push(CURSOR_VERSION);
    if let Ok((last, seen)) = cursor.as_timeline() {
        out.push(CURSOR_TIMELINE);
        out.extend_from_slice(&last.0.to_be_bytes());
        out.extend_from_slice(&seen.to_be_bytes());
    } else if let Ok(last) = cursor.as_users() {
        out.push(CURSOR_USERS);
        out.extend_from_slice(&last.0.to_be_bytes());
    } else if let Ok(after) = cursor.as_changes() {
        out.push(CURSOR_CHANGES);
        out.extend_from_slice(&after.to_be_bytes());
    }
    out
}

/// Decodes [`cursor_bytes`]; anything else is [`Error::MalformedCursor`].
pub fn decode_cursor(bytes: &[u8]) -> Result<Cursor> {
    let malformed = |_| Error::MalformedCursor;
    match bytes {
        [CURSOR_VERSION, CURSOR_TIMELINE, rest @ ..] if rest.len() == 12 => {
            let (last, seen) = rest.split_at(8);
            Ok(Cursor::timeline(
                PostId(u64::from_be_bytes(last.try_into().map_err(malformed)?)),
                u32::from_be_bytes(seen.try_into().map_err(malformed)?),
            ))
        }
        [CURSOR_VERSION, CURSOR_USERS, rest @ ..] => Ok(Cursor::users(UserId(u64::from_be_bytes(
            rest.try_into().map_err(malformed)?,
        )))),
        [CURSOR_VERSION, CURSOR_CHANGES, rest @ ..] => Ok(Cursor::changes(u64::from_be_bytes(
            rest.try_into().map_err(malformed)?,
        ))),
        _ => Err(Error::MalformedCursor),
    }
}

/// Reads a big-endian u64 at `at`, or `Corrupt`.
fn be_u64(bytes: &[u8], at: usize, what: &'static str) -> Result<u64> {
    bytes
        .get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or(Error::Corrupt(what))
}

/// Key of a user record: the id.
pub fn user_key(id: UserId) -> [u8; 8] {
    id.0.to_be_bytes()
}

/// Decodes [`user_key`].
pub fn decode_user_key(key: &[u8]) -> Result<UserId> {
    exact(key, 8, "user key")?;
    be_u64(key, 0, "user key").map(UserId)
}

/// Key of a username index entry: the case-folded name.
pub fn name_key(name: &Username) -> Vec<u8> {
    name.folded().into_bytes()
}

/// Key of a follow edge seen from `from`: `from ++ to`. The following
/// column family stores (follower, followee), the followers column family
/// (followee, follower).
pub fn edge_key(from: UserId, to: UserId) -> [u8; 16] {
    pair(from.0, to.0)
}

/// Decodes [`edge_key`].
pub fn decode_edge_key(key: &[u8]) -> Result<(UserId, UserId)> {
    exact(key, 16, "edge key")?;
    Ok((
        UserId(be_u64(key, 0, "edge key")?),
        UserId(be_u64(key, 8, "edge key")?),
    ))
}

/// Key of one of a user's counters.
pub fn counter_key(user: UserId, kind: CounterKind) -> [u8; 9] {
    let mut k = [0; 9];
    k[..8].copy_from_slice(&user.0.to_be_bytes());
    k[8] = kind as u8;
    k
}

/// Key of a post record: the id.
pub fn post_key(id: PostId) -> [u8; 8] {
    id.0.to_be_bytes()
}

/// Decodes [`post_key`].
pub fn decode_post_key(key: &[u8]) -> Result<PostId> {
    exact(key, 8, "post key")?;
    be_u64(key, 0, "post key").map(PostId)
}

/// Key of an author-index entry: `author ++ !post`, newest first.
pub fn author_post_key(author: UserId, post: PostId) -> [u8; 16] {
    pair(author.0, !post.0)
}

/// Decodes [`author_post_key`].
pub fn decode_author_post_key(key: &[u8]) -> Result<(UserId, PostId)> {
    exact(key, 16, "author index key")?;
    Ok((
        UserId(be_u64(key, 0, "author index key")?),
        PostId(!be_u64(key, 8, "author index key")?),
    ))
}

/// Key of an inbox entry: `owner ++ !post`, newest first. Keyed by owner
/// and post, so delivering twice writes the same key.
pub fn inbox_key(owner: UserId, post: PostId) -> [u8; 16] {
    pair(owner.0, !post.0)
}

/// Decodes [`inbox_key`].
pub fn decode_inbox_key(key: &[u8]) -> Result<(UserId, PostId)> {
    exact(key, 16, "inbox key")?;
    Ok((
        UserId(be_u64(key, 0, "inbox key")?),
        PostId(!be_u64(key, 8, "inbox key")?),
    ))
}

/// The 8-byte prefix shared by every key of one user in the per-user
/// column families (edges, author index, inbox).
pub fn user_prefix(user: UserId) -> [u8; 8] {
    user.0.to_be_bytes()
}

/// The first key after every key with `user`'s prefix.
pub fn user_prefix_end(user: UserId) -> Vec<u8> {
    match user.0.checked_add(1) {
        Some(next) => next.to_be_bytes().to_vec(),
        // Nothing sorts after the largest id's range but longer keys.
        None => vec![0xff; 17],
    }
}

/// Length of [`user_prefix`]: the per-user families are scanned by it.
pub const USER_PREFIX_LEN: usize = 8;

/// The first key after `after` in a family keyed by one big-endian u64
/// (users, posts, jobs, last reads), or `None` when nothing can follow.
pub fn u64_key_after(after: Option<u64>) -> Option<[u8; 8]> {
    match after {
        None => Some(0u64.to_be_bytes()),
        Some(u64::MAX) => None,
        Some(a) => Some((a + 1).to_be_bytes()),
    }
}

/// The first key after every key that starts with `prefix` (big-endian
/// numbers, so incrementing the last byte below 0xff works), or a key past
/// all of them when every byte is 0xff.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 9]
}

/// Key of a fan-out job: the post id.
pub fn job_key(post: PostId) -> [u8; 8] {
    post.0.to_be_bytes()
}

fn pair(a: u64, b: u64) -> [u8; 16] {
    let mut k = [0; 16];
    k[..8].copy_from_slice(&a.to_be_bytes());
    k[8..].copy_from_slice(&b.to_be_bytes());
    k
}

fn exact(bytes: &[u8], len: usize, what: &'static str) -> Result<()> {
    if bytes.len() == len {
        Ok(())
    } else {
        Err(Error::Corrupt(what))
    }
}

/// Value of a user record: version, creation time, name.
pub fn encode_user(user: &User) -> Vec<u8> {
    let mut v = Vec::with_capacity(9 + user.name.as_str().len());
    v.push(VALUE_VERSION);
    v.extend_from_slice(&user.created_at_ms.to_be_bytes());
    v.extend_from_slice(user.name.as_str().as_bytes());
    v
}

/// Decodes [`encode_user`] for the user with key `id`.
pub fn decode_user(id: UserId, bytes: &[u8]) -> Result<User> {
    if bytes.first() != Some(&VALUE_VERSION) {
        return Err(Error::Corrupt("user record version"));
    }
    let created_at_ms = be_u64(bytes, 1, "user record")?;
    let name = std::str::from_utf8(&bytes[9..]).map_err(|_| Error::Corrupt("user name"))?;
    let name = Username::parse(name).map_err(|_| Error::Corrupt("user name"))?;
    Ok(User {
        id,
        name,
        created_at_ms,
    })
}

/// Value of a user id (name index entries).
pub fn encode_user_id(id: UserId) -> [u8; 8] {
    id.0.to_be_bytes()
}

/// Decodes [`encode_user_id`].
pub fn decode_user_id(bytes: &[u8]) -> Result<UserId> {
    exact(bytes, 8, "user id value")?;
    be_u64(bytes, 0, "user id value").map(UserId)
}

/// Value of an edge: its `since` watermark and mode.
pub fn encode_edge_value(since: PostId, mode: EdgeMode) -> [u8; 9] {
    let mut v = [0; 9];
    v[..8].copy_from_slice(&since.0.to_be_bytes());
    v[8] = match mode {
        EdgeMode::Push => 0,
        EdgeMode::Pull => 1,
    };
    v
}

/// Decodes an edge from its key's far end and its value.
pub fn decode_edge(to: UserId, value: &[u8]) -> Result<Edge> {
    exact(value, 9, "edge value")?;
    let mode = match value[8] {
        0 => EdgeMode::Push,
        1 => EdgeMode::Pull,
        _ => return Err(Error::Corrupt("edge mode")),
    };
    Ok(Edge {
        user: to,
        since: PostId(be_u64(value, 0, "edge value")?),
        mode,
    })
}

/// Key of a pulled-followee index entry: `reader ++ author`; the value is
/// the edge's `since` ([`encode_since`]).
pub fn pulled_key(reader: UserId, author: UserId) -> [u8; 16] {
    pair(reader.0, author.0)
}

/// A bare `since` watermark (pulled-index values).
pub fn encode_since(since: PostId) -> [u8; 8] {
    since.0.to_be_bytes()
}

/// Decodes a pulled-index entry into the edge it stands for.
pub fn decode_pulled(key: &[u8], value: &[u8]) -> Result<Edge> {
    let (_, author) = decode_edge_key(key)?;
    exact(value, 8, "pulled value")?;
    Ok(Edge {
        user: author,
        since: PostId(be_u64(value, 0, "pulled value")?),
        mode: EdgeMode::Pull,
    })
}

/// Value of an author's mode.
pub fn encode_author_mode(mode: AuthorMode) -> [u8; 1] {
    [match mode {
        AuthorMode::Push => 0,
        AuthorMode::Promoting => 1,
        AuthorMode::Pulled => 2,
    }]
}

/// Decodes [`encode_author_mode`].
pub fn decode_author_mode(value: &[u8]) -> Result<AuthorMode> {
    match value {
        [0] => Ok(AuthorMode::Push),
        [1] => Ok(AuthorMode::Promoting),
        [2] => Ok(AuthorMode::Pulled),
        _ => Err(Error::Corrupt("author mode")),
    }
}

/// Value of a timestamp in milliseconds (last reads).
pub fn encode_millis(ms: u64) -> [u8; 8] {
    ms.to_be_bytes()
}

/// Decodes [`encode_millis`].
pub fn decode_millis(value: &[u8]) -> Result<u64> {
    exact(value, 8, "timestamp")?;
    be_u64(value, 0, "timestamp")
}

/// Value of a counter, and the operand of a counter merge: a big-endian i64.
pub fn encode_count(delta: i64) -> [u8; 8] {
    delta.to_be_bytes()
}

/// Decodes [`encode_count`].
pub fn decode_count(bytes: &[u8]) -> Result<i64> {
    exact(bytes, 8, "counter value")?;
    be_u64(bytes, 0, "counter value").map(|v| v as i64)
}

const POST_DELETED: u8 = 1;
const POST_REPLY: u8 = 2;
const POST_REPOST: u8 = 4;
const POST_GROUP: u8 = 8;
const POST_LIKED: u8 = 16;

/// Value of a post record: version, author, flags, then the reply-to,
/// repost-of and group ids and the like count present per the flags, then
/// the text.
pub fn encode_post(post: &Post) -> Vec<u8> {
    let mut v = Vec::with_capacity(34 + post.text.len());
    v.push(POST_VERSION);
    v.extend_from_slice(&post.author.0.to_be_bytes());
    let mut flags = 0;
    if post.deleted {
        flags |= POST_DELETED;
    }
    if post.reply_to.is_some() {
        flags |= POST_REPLY;
    }
    if post.repost_of.is_some() {
        flags |= POST_REPOST;
    }
    if let Audience::Group(_) = post.audience {
        flags |= POST_GROUP;
    }
    if post.likes != 0 {
        flags |= POST_LIKED;
    }
    v.push(flags);
    for id in [post.reply_to, post.repost_of].into_iter().flatten() {
        v.extend_from_slice(&id.0.to_be_bytes());
    }
    if let Audience::Group(g) = post.audience {
        v.extend_from_slice(&g.0.to_be_bytes());
    }
    if post.likes != 0 {
        v.extend_from_slice(&post.likes.to_be_bytes());
    }
    v.extend_from_slice(post.text.as_bytes());
    v
}

/// Decodes [`encode_post`] for the post with key `id`.
pub fn decode_post(id: PostId, bytes: &[u8]) -> Result<Post> {
    let version = *bytes.first().ok_or(Error::Corrupt("post record"))?;
    if version != VALUE_VERSION && version != POST_VERSION {
        return Err(Error::Corrupt("post record version"));
    }
    let author = UserId(be_u64(bytes, 1, "post record")?);
    let flags = *bytes.get(9).ok_or(Error::Corrupt("post record"))?;
    let known = if version == VALUE_VERSION {
        POST_DELETED
    } else {
        POST_DELETED | POST_REPLY | POST_REPOST | POST_GROUP | POST_LIKED
    };
    if flags & !known != 0 {
        return Err(Error::Corrupt("post flags"));
    }
    let mut at = 10;
    let mut take = |flag: u8| -> Result<Option<u64>> {
        if flags & flag == 0 {
            return Ok(None);
        }
        let v = be_u64(bytes, at, "post record")?;
        at += 8;
        Ok(Some(v))
    };
    let reply_to = take(POST_REPLY)?.map(PostId);
    let repost_of = take(POST_REPOST)?.map(PostId);
    let audience = take(POST_GROUP)?.map_or(Audience::Public, |g| Audience::Group(GroupId(g)));
    let likes = match take(POST_LIKED)? {
        // Written only when not 0: a stored 0 is not what this encoder made.
        Some(0) => return Err(Error::Corrupt("post like count")),
        n => n.unwrap_or(0),
    };
    let text = std::str::from_utf8(&bytes[at..]).map_err(|_| Error::Corrupt("post text"))?;
    Ok(Post {
        id,
        author,
        text: text.to_owned(),
        deleted: flags & POST_DELETED != 0,
        reply_to,
        repost_of,
        audience,
        likes,
    })
}

/// Key of a link (see [`LinkKind`]): `kind ++ from ++ to`.
pub fn link_key(kind: LinkKind, from: u64, to: u64) -> [u8; 17] {
    let mut k = [0; 17];
    k[0] = kind as u8;
    k[1..].copy_from_slice(&pair(from, to));
    k
}

/// Length of [`link_prefix`]: the links family is scanned by it.
pub const LINK_PREFIX_LEN: usize = 9;

/// The prefix shared by every link of `kind` listed under `from`.
pub fn link_prefix(kind: LinkKind, from: u64) -> [u8; LINK_PREFIX_LEN] {
    let mut k = [0; 9];
    k[0] = kind as u8;
    k[1..].copy_from_slice(&from.to_be_bytes());
    k
}

/// Decodes [`link_key`].
pub fn decode_link_key(key: &[u8]) -> Result<(LinkKind, u64, u64)> {
    exact(key, 17, "link key")?;
    let kind = LinkKind::from_tag(key[0]).ok_or(Error::Corrupt("link kind"))?;
    Ok((
        kind,
        be_u64(key, 1, "link key")?,
        be_u64(key, 9, "link key")?,
    ))
}

/// Value of a link.
pub fn encode_link_value(value: u64) -> [u8; 8] {
    value.to_be_bytes()
}

/// Decodes [`encode_link_value`].
pub fn decode_link_value(bytes: &[u8]) -> Result<u64> {
    exact(bytes, 8, "link value")?;
    be_u64(bytes, 0, "link value")
}

/// Key of a group record: the id.
pub fn group_key(id: GroupId) -> [u8; 8] {
    id.0.to_be_bytes()
}

/// Decodes [`group_key`].
pub fn decode_group_key(key: &[u8]) -> Result<GroupId> {
    exact(key, 8, "group key")?;
    be_u64(key, 0, "group key").map(GroupId)
}

/// Value of a group record: version, owner, name.
pub fn encode_group(group: &Group) -> Vec<u8> {
    let mut v = Vec::with_capacity(9 + group.name.len());
    v.push(VALUE_VERSION);
    v.extend_from_slice(&group.owner.0.to_be_bytes());
    v.extend_from_slice(group.name.as_bytes());
    v
}

/// Decodes [`encode_group`] for the group with key `id`.
pub fn decode_group(id: GroupId, bytes: &[u8]) -> Result<Group> {
    if bytes.first() != Some(&VALUE_VERSION) {
        return Err(Error::Corrupt("group record version"));
    }
    let owner = UserId(be_u64(bytes, 1, "group record")?);
    let name = std::str::from_utf8(&bytes[9..]).map_err(|_| Error::Corrupt("group name"))?;
    Ok(Group {
        id,
        owner,
        name: name.to_owned(),
    })
}

/// Value of an inbox entry: the author.
pub fn encode_inbox_value(author: UserId) -> [u8; 8] {
    author.0.to_be_bytes()
}

/// Decodes an inbox entry from its post id and value.
pub fn decode_inbox_entry(post: PostId, value: &[u8]) -> Result<InboxEntry> {
    exact(value, 8, "inbox value")?;
    Ok(InboxEntry {
        post,
        author: UserId(be_u64(value, 0, "inbox value")?),
    })
}

/// Value of a fan-out job: version, kind, author, cursor flag, cursor.
pub fn encode_job(job: &FanoutJob) -> [u8; 19] {
    let mut v = [0; 19];
    v[0] = VALUE_VERSION;
    v[1] = match job.kind {
        JobKind::Deliver => 0,
        JobKind::Retract => 1,
        JobKind::Promote => 2,
        JobKind::Device => 3,
    };
    v[2..10].copy_from_slice(&job.author.0.to_be_bytes());
    if let Some(c) = job.cursor {
        v[10] = 1;
        v[11..19].copy_from_slice(&c.0.to_be_bytes());
    }
    v
}

/// Decodes [`encode_job`] for the job with key `post`.
pub fn decode_job(post: PostId, bytes: &[u8]) -> Result<FanoutJob> {
    exact(bytes, 19, "job record")?;
    if bytes[0] != VALUE_VERSION {
        return Err(Error::Corrupt("job record version"));
    }
    let kind = match bytes[1] {
        0 => JobKind::Deliver,
        1 => JobKind::Retract,
        2 => JobKind::Promote,
        3 => JobKind::Device,
        _ => return Err(Error::Corrupt("job kind")),
    };
    let cursor = match bytes[10] {
        // Canonical: no cursor leaves the cursor bytes zero.
        0 if bytes[11..].iter().all(|&b| b == 0) => None,
        1 => Some(UserId(be_u64(bytes, 11, "job record")?)),
        _ => return Err(Error::Corrupt("job cursor flag")),
    };
    Ok(FanoutJob {
        post,
        author: UserId(be_u64(bytes, 2, "job record")?),
        kind,
        cursor,
    })
}

/// Key of a change-feed record: its position.
pub fn change_key(position: u64) -> [u8; 8] {
    position.to_be_bytes()
}

/// Decodes [`change_key`].
pub fn decode_change_key(key: &[u8]) -> Result<u64> {
    exact(key, 8, "change key")?;
    be_u64(key, 0, "change key")
}

/// Key of the change feed's floor in the `changes` family: empty, so it
/// sorts before every position and no range of positions covers it.
pub const CHANGE_FLOOR_KEY: &[u8] = b"";

/// Value of the change feed's floor.
pub fn encode_change_floor(through: u64) -> [u8; 8] {
    through.to_be_bytes()
}

/// Decodes [`encode_change_floor`].
pub fn decode_change_floor(bytes: &[u8]) -> Result<u64> {
    exact(bytes, 8, "change floor")?;
    be_u64(bytes, 0, "change floor")
}

/// Value of a change-feed record: its kind, then the ids it names (the
/// largest is 17 bytes).
pub fn encode_change(change: &Change) -> Vec<u8> {
    let (kind, a, b) = match *change {
        Change::Posted { post, author } => (1, post.0, Some(author.0)),
        Change::Deleted { post, author } => (2, post.0, Some(author.0)),
        Change::Followed { follower, followee } => (3, follower.0, Some(followee.0)),
        Change::Unfollowed { follower, followee } => (4, follower.0, Some(followee.0)),
        Change::Liked { user, post } => (5, user.0, Some(post.0)),
        Change::Unliked { user, post } => (6, user.0, Some(post.0)),
        Change::ProfileChanged { user } => (7, user.0, None),
        Change::AvatarChanged { user } => (8, user.0, None),
    };
    let mut v = Vec::with_capacity(17);
    v.push(kind);
    v.extend_from_slice(&a.to_be_bytes());
    if let Some(b) = b {
        v.extend_from_slice(&b.to_be_bytes());
    }
    v
}

/// Decodes [`encode_change`] into the record at `position`.
pub fn decode_change(position: u64, bytes: &[u8]) -> Result<ChangeRecord> {
    let what = "change record";
    let kind = *bytes.first().ok_or(Error::Corrupt(what))?;
    let pair = || -> Result<(u64, u64)> {
        exact(bytes, 17, what)?;
        Ok((be_u64(bytes, 1, what)?, be_u64(bytes, 9, what)?))
    };
    let one = || -> Result<UserId> {
        exact(bytes, 9, what)?;
        Ok(UserId(be_u64(bytes, 1, what)?))
    };
    let change = match kind {
        1 | 2 => {
            let (post, author) = pair()?;
            let (post, author) = (PostId(post), UserId(author));
            if kind == 1 {
                Change::Posted { post, author }
            } else {
                Change::Deleted { post, author }
            }
        }
        3 | 4 => {
            let (follower, followee) = pair()?;
            let (follower, followee) = (UserId(follower), UserId(followee));
            if kind == 3 {
                Change::Followed { follower, followee }
            } else {
                Change::Unfollowed { follower, followee }
            }
        }
        5 | 6 => {
            let (user, post) = pair()?;
            let (user, post) = (UserId(user), PostId(post));
            if kind == 5 {
                Change::Liked { user, post }
            } else {
                Change::Unliked { user, post }
            }
        }
        7 => Change::ProfileChanged { user: one()? },
        8 => Change::AvatarChanged { user: one()? },
        _ => return Err(Error::Corrupt("change kind")),
    };
    Ok(ChangeRecord { position, change })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn scan_bounds_start_after_and_end_past_a_prefix() {
        assert_eq!(u64_key_after(None), Some([0; 8]));
        assert_eq!(u64_key_after(Some(4)), Some(5u64.to_be_bytes()));
        assert_eq!(u64_key_after(Some(u64::MAX)), None);
        assert_eq!(prefix_end(&[1, 2]), vec![1, 3]);
        assert_eq!(prefix_end(&[1, 0xff]), vec![2]);
        assert!(prefix_end(&[0xff, 0xff]).as_slice() > [0xff, 0xff, 0xff].as_slice());
        let user = UserId(7);
        assert_eq!(user_prefix(user).len(), USER_PREFIX_LEN);
        assert_eq!(link_prefix(LinkKind::Mutes, 7).len(), LINK_PREFIX_LEN);
        assert!(inbox_key(user, PostId(1)).starts_with(&user_prefix(user)));
    }

    #[test]
    fn version_one_posts_still_decode_as_public_posts() {
        let mut v1 = vec![VALUE_VERSION];
        v1.extend_from_slice(&7u64.to_be_bytes());
        v1.push(0);
        v1.extend_from_slice(b"hi");
        assert_eq!(
            decode_post(PostId(3), &v1).ok(),
            Some(Post::new(PostId(3), UserId(7), "hi"))
        );
        // Version 1 knew no links: their flags are corruption there.
        v1[9] = POST_REPLY;
        assert!(decode_post(PostId(3), &v1).is_err());
        assert!(decode_link_key(&[0; 17]).is_err());
        assert!(decode_group(GroupId(1), &[]).is_err());
    }

    proptest! {
        #[test]
        fn inbox_keys_sort_by_owner_then_newest_first(o1: u64, p1: u64, o2: u64, p2: u64) {
            let (k1, k2) = (inbox_key(UserId(o1), PostId(p1)), inbox_key(UserId(o2), PostId(p2)));
            prop_assert_eq!(k1.cmp(&k2), o1.cmp(&o2).then(p2.cmp(&p1)));
            prop_assert_eq!(decode_inbox_key(&k1).ok(), Some((UserId(o1), PostId(p1))));
        }

        #[test]
        fn edge_and_author_keys_round_trip(a: u64, b: u64) {
            prop_assert_eq!(decode_edge_key(&edge_key(UserId(a), UserId(b))).ok(), Some((UserId(a), UserId(b))));
            prop_assert_eq!(
                decode_author_post_key(&author_post_key(UserId(a), PostId(b))).ok(),
                Some((UserId(a), PostId(b)))
            );
        }

        #[test]
        fn posts_round_trip(
            id: u64,
            author: u64,
            text in "\\PC{0,50}",
            deleted: bool,
            reply_to: Option<u64>,
            repost_of: Option<u64>,
            group: Option<u64>,
            likes in prop_oneof![Just(0u64), any::<u64>()],
        ) {
            let post = Post {
                id: PostId(id),
                author: UserId(author),
                text,
                deleted,
                reply_to: reply_to.map(PostId),
                repost_of: repost_of.map(PostId),
                audience: group.map_or(Audience::Public, |g| Audience::Group(GroupId(g))),
                likes,
            };
            prop_assert_eq!(decode_post(post.id, &encode_post(&post)).ok(), Some(post));
        }

        #[test]
        fn link_keys_sort_by_kind_then_ids_and_round_trip(k in 0usize..LinkKind::ALL.len(), a: u64, b: u64, c: u64) {
            let kind = LinkKind::ALL[k];
            let (k1, k2) = (link_key(kind, a, b), link_key(kind, a, c));
            prop_assert_eq!(k1.cmp(&k2), b.cmp(&c));
            prop_assert!(k1.starts_with(&link_prefix(kind, a)));
            prop_assert_eq!(decode_link_key(&k1).ok(), Some((kind, a, b)));
        }

        #[test]
        fn groups_round_trip(id: u64, owner: u64, name in "\\PC{0,40}") {
            let group = Group { id: GroupId(id), owner: UserId(owner), name };
            prop_assert_eq!(decode_group(group.id, &encode_group(&group)).ok(), Some(group));
        }

        #[test]
        fn jobs_round_trip(post: u64, author: u64, kind in 0..4u8, cursor: Option<u64>) {
            let job = FanoutJob {
                post: PostId(post),
                author: UserId(author),
                kind: [JobKind::Deliver, JobKind::Retract, JobKind::Promote, JobKind::Device][kind as usize],
                cursor: cursor.map(UserId),
            };
            prop_assert_eq!(decode_job(job.post, &encode_job(&job)).ok(), Some(job));
        }

        #[test]
        fn edges_and_modes_round_trip(to: u64, since: u64, pull: bool, mode in 0..3u8) {
            let edge = Edge { user: UserId(to), since: PostId(since), mode: if pull { EdgeMode::Pull } else { EdgeMode::Push } };
            prop_assert_eq!(decode_edge(edge.user, &encode_edge_value(edge.since, edge.mode)).ok(), Some(edge));
            let m = [AuthorMode::Push, AuthorMode::Promoting, AuthorMode::Pulled][mode as usize];
            prop_assert_eq!(decode_author_mode(&encode_author_mode(m)).ok(), Some(m));
            let pulled = decode_pulled(&pulled_key(UserId(since), UserId(to)), &encode_since(PostId(since))).ok();
            prop_assert_eq!(pulled, Some(Edge { user: UserId(to), since: PostId(since), mode: EdgeMode::Pull }));
        }

        #[test]
        fn changes_round_trip(position: u64, kind in 0..8usize, a: u64, b: u64) {
            let (ua, ub, pa, pb) = (UserId(a), UserId(b), PostId(a), PostId(b));
            let change = [
                Change::Posted { post: pa, author: ub },
                Change::Deleted { post: pa, author: ub },
                Change::Followed { follower: ua, followee: ub },
                Change::Unfollowed { follower: ua, followee: ub },
                Change::Liked { user: ua, post: pb },
                Change::Unliked { user: ua, post: pb },
                Change::ProfileChanged { user: ua },
                Change::AvatarChanged { user: ua },
            ][kind];
            let record = ChangeRecord { position, change };
            prop_assert_eq!(decode_change(position, &encode_change(&change)).ok(), Some(record));
            prop_assert_eq!(decode_change_key(&change_key(position)).ok(), Some(position));
            prop_assert_eq!(decode_change_floor(&encode_change_floor(position)).ok(), Some(position));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = decode_change(1, &bytes);
            let _ = decode_change_key(&bytes);
            let _ = decode_change_floor(&bytes);
            let _ = decode_post(PostId(1), &bytes);
            let _ = decode_user(UserId(1), &bytes);
            let _ = decode_job(PostId(1), &bytes);
            let _ = decode_inbox_key(&bytes);
            let _ = decode_edge_key(&bytes);
            let _ = decode_count(&bytes);
            let _ = decode_edge(UserId(1), &bytes);
            let _ = decode_pulled(&bytes, &bytes);
            let _ = decode_author_mode(&bytes);
            let _ = decode_millis(&bytes);
            let _ = decode_inbox_entry(PostId(1), &bytes);
        }
    }

    #[test]
    fn a_job_without_cursor_must_leave_the_cursor_bytes_zero() {
        let mut bytes = [0u8; 19];
        bytes[0] = 1;
        assert!(decode_job(PostId(0), &bytes).is_ok());
        bytes[11] = 1;
        assert!(matches!(
            decode_job(PostId(0), &bytes),
            Err(Error::Corrupt(_))
        ));
    }

    #[test]
    fn users_round_trip_and_bad_records_are_corrupt() {
        let user = User {
            id: UserId(7),
            name: Username::parse("Ada").expect("valid"),
            created_at_ms: 99,
        };
        assert_eq!(decode_user(user.id, &encode_user(&user)).ok(), Some(user));
        assert!(matches!(
            decode_user(UserId(7), &[1, 0, 0]),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(
            decode_user(UserId(7), &[2; 12]),
            Err(Error::Corrupt(_))
        ));
        let mut bad_name = encode_user(&User {
            id: UserId(1),
            name: Username::parse("a").expect("valid"),
            created_at_ms: 0,
        });
        bad_name.push(b' ');
        assert!(matches!(
            decode_user(UserId(1), &bad_name),
            Err(Error::Corrupt(_))
        ));
    }
}
