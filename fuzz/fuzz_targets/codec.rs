//! Every key and value codec of `starling_core::codec`, and cursor bytes.
//!
//! Each input is used twice:
//!
//! 1. As raw stored bytes handed to every decoder: decoding never panics,
//!    a refusal is always `Error::Corrupt`, and whatever decodes encodes
//!    back to exactly the input (every layout is canonical: one value, one
//!    byte string).
//! 2. As a source of values (ids, names, texts, edges, modes, jobs,
//!    cursors) that are encoded, decoded and compared, with the key-order
//!    promises checked on pairs of values and every truncation of a
//!    fixed-size record refused.

#![no_main]

use libfuzzer_sys::arbitrary::{Result as ArbResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use starling_core::codec::{self, CounterKind};
use starling_core::{
    Audience, AuthorMode, Change, ChangeRecord, Cursor, Edge, EdgeMode, Error, FanoutJob, GroupId,
    InboxEntry, JobKind, Post, PostId, User, UserId, Username,
};

// Every variant of the enums the codecs store, and the byte each is
// stored as. Stored bytes must not change meaning (existing stores would
// be misread), so the tags are written out here; the matches stop
// compiling when a variant is added, so that it gets added here too.
const EDGE_MODES: [EdgeMode; 2] = [EdgeMode::Push, EdgeMode::Pull];
const AUTHOR_MODES: [AuthorMode; 3] = [AuthorMode::Push, AuthorMode::Promoting, AuthorMode::Pulled];
const JOB_KINDS: [JobKind; 4] = [
    JobKind::Deliver,
    JobKind::Retract,
    JobKind::Promote,
    JobKind::Device,
];

fn edge_mode_tag(mode: EdgeMode) -> u8 {
    match mode {
        EdgeMode::Push => 0,
        EdgeMode::Pull => 1,
    }
}

fn author_mode_tag(mode: AuthorMode) -> u8 {
    match mode {
        AuthorMode::Push => 0,
        AuthorMode::Promoting => 1,
        AuthorMode::Pulled => 2,
    }
}

fn job_kind_tag(kind: JobKind) -> u8 {
    match kind {
        JobKind::Deliver => 0,
        JobKind::Retract => 1,
        JobKind::Promote => 2,
        JobKind::Device => 3,
    }
}

/// One of `all`, picked by the input.
fn pick<T: Copy>(u: &mut Unstructured<'_>, all: &[T]) -> ArbResult<T> {
    u.choose(all).copied()
}

fuzz_target!(|data: &[u8]| {
    raw_bytes(data);
    // Running out of input just ends the structured half early.
    let _ = structured(&mut Unstructured::new(data));
});

/// A decoder's refusal must say the record is corrupt, nothing else.
fn refused<T: std::fmt::Debug>(what: &str, r: &Result<T, Error>) {
    if let Err(e) = r {
        assert!(
            matches!(e, Error::Corrupt(_)),
            "{what}: refusal is {e:?}, not Corrupt"
        );
    }
}

/// Ids to decode values under: fixed ones and ones read from the input.
fn ids(data: &[u8]) -> [u64; 3] {
    let head = data
        .iter()
        .take(8)
        .fold(0u64, |a, &b| a << 8 | u64::from(b));
    [0, u64::MAX, head]
}

fn raw_bytes(data: &[u8]) {
    let r = codec::decode_user_key(data);
    refused("user key", &r);
    if let Ok(id) = r {
        assert_eq!(codec::user_key(id), data, "user key");
    }

    let r = codec::decode_post_key(data);
    refused("post key", &r);
    if let Ok(id) = r {
        assert_eq!(codec::post_key(id), data, "post key");
        assert_eq!(codec::job_key(id), data, "job key");
    }

    let r = codec::decode_edge_key(data);
    refused("edge key", &r);
    if let Ok((from, to)) = r {
        assert_eq!(codec::edge_key(from, to), data, "edge key");
        assert_eq!(&data[..8], codec::user_prefix(from), "edge key prefix");
    }

    let r = codec::decode_author_post_key(data);
    refused("author index key", &r);
    if let Ok((author, post)) = r {
        assert_eq!(
            codec::author_post_key(author, post),
            data,
            "author index key"
        );
        assert_eq!(
            &data[..8],
            codec::user_prefix(author),
            "author index key prefix"
        );
    }

    let r = codec::decode_inbox_key(data);
    refused("inbox key", &r);
    if let Ok((owner, post)) = r {
        assert_eq!(codec::inbox_key(owner, post), data, "inbox key");
        assert_eq!(&data[..8], codec::user_prefix(owner), "inbox key prefix");
    }

    let r = codec::decode_user_id(data);
    refused("user id value", &r);
    if let Ok(id) = r {
        assert_eq!(codec::encode_user_id(id), data, "user id value");
    }

    let r = codec::decode_count(data);
    refused("counter value", &r);
    if let Ok(n) = r {
        assert_eq!(codec::encode_count(n), data, "counter value");
    }

    for id in ids(data) {
        let r = codec::decode_user(UserId(id), data);
        refused("user record", &r);
        if let Ok(user) = r {
            assert_eq!(user.id, UserId(id), "user record id");
            assert_eq!(codec::encode_user(&user), data, "user record");
            // The stored name obeys the username rules.
            assert_eq!(
                Username::parse(user.name.as_str()).ok().as_ref(),
                Some(&user.name),
                "user record name"
            );
        }

        let r = codec::decode_post(PostId(id), data);
        refused("post record", &r);
        if let Ok(post) = r {
            assert_eq!(post.id, PostId(id), "post record id");
            let again = codec::encode_post(&post);
            if data[0] == 1 {
                // Version 1 is read, never written: it comes back as version 2.
                assert_eq!(
                    codec::decode_post(post.id, &again).ok(),
                    Some(post),
                    "v1 post"
                );
            } else {
                assert_eq!(again, data, "post record");
            }
        }

        let r = codec::decode_link_key(data);
        refused("link key", &r);
        if let Ok((kind, from, to)) = r {
            assert_eq!(codec::link_key(kind, from, to).as_slice(), data, "link key");
        }

        let r = codec::decode_group(GroupId(id), data);
        refused("group record", &r);
        if let Ok(group) = r {
            assert_eq!(codec::encode_group(&group), data, "group record");
        }

        let r = codec::decode_edge(UserId(id), data);
        refused("edge value", &r);
        if let Ok(edge) = r {
            assert_eq!(edge.user, UserId(id), "edge value far end");
            assert_eq!(
                codec::encode_edge_value(edge.since, edge.mode),
                data,
                "edge value"
            );
        }

        let r = codec::decode_inbox_entry(PostId(id), data);
        refused("inbox value", &r);
        if let Ok(entry) = r {
            assert_eq!(entry.post, PostId(id), "inbox entry post");
            assert_eq!(codec::encode_inbox_value(entry.author), data, "inbox value");
        }

        let r = codec::decode_change(id, data);
        refused("change record", &r);
        if let Ok(record) = r {
            assert_eq!(record.position, id, "change record position");
            assert_eq!(codec::encode_change(&record.change), data, "change record");
        }

        let r = codec::decode_job(PostId(id), data);
        refused("job record", &r);
        if let Ok(job) = r {
            assert_eq!(job.post, PostId(id), "job record post");
            assert_eq!(
                codec::encode_job(&job),
                data,
                "job record: decoded {job:?} encodes to other bytes"
            );
        }
    }

    let r = codec::decode_author_mode(data);
    refused("author mode", &r);
    if let Ok(mode) = r {
        assert_eq!(codec::encode_author_mode(mode), data, "author mode");
    }

    let r = codec::decode_millis(data);
    refused("timestamp", &r);
    if let Ok(ms) = r {
        assert_eq!(codec::encode_millis(ms), data, "timestamp");
    }

    // A pulled-index entry: a 16-byte key and its value. Split where a
    // valid key ends, and in the middle.
    for at in [16, data.len() / 2] {
        let (key, value) = data.split_at(at.min(data.len()));
        let r = codec::decode_pulled(key, value);
        refused("pulled entry", &r);
        if let Ok(edge) = r {
            let (reader, author) = codec::decode_edge_key(key).expect("the key decoded once");
            assert_eq!(edge.user, author, "pulled entry author");
            assert_eq!(edge.mode, EdgeMode::Pull, "pulled entry mode");
            assert_eq!(codec::pulled_key(reader, author), key, "pulled key");
            assert_eq!(codec::encode_since(edge.since), value, "pulled value");
        }
    }

    match Cursor::from_bytes(data) {
        Ok(c) => assert_eq!(c.to_bytes(), data, "cursor bytes"),
        Err(e) => assert!(
            matches!(e, Error::MalformedCursor),
            "cursor refusal is {e:?}"
        ),
    }
}

/// A valid username built from the input: 1 to 15 of the allowed bytes.
fn username(u: &mut Unstructured<'_>) -> ArbResult<Username> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
    let len = u.int_in_range(1..=15usize)?;
    let mut s = String::with_capacity(len);
    for _ in 0..len {
        s.push(char::from(
            ALPHABET[usize::from(u.arbitrary::<u8>()?) % ALPHABET.len()],
        ));
    }
    let name = Username::parse(&s).map_err(|_| libfuzzer_sys::arbitrary::Error::IncorrectFormat);
    assert!(name.is_ok(), "built name {s:?} must be valid");
    name
}

/// Every strict prefix of a fixed-size record is refused as corrupt.
fn prefixes_refused<T: std::fmt::Debug>(
    what: &str,
    bytes: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, Error>,
) {
    for n in 0..bytes.len() {
        let r = decode(&bytes[..n]);
        assert!(
            matches!(r, Err(Error::Corrupt(_))),
            "{what}: {n}-byte prefix gave {r:?}"
        );
    }
}

fn structured(u: &mut Unstructured<'_>) -> ArbResult<()> {
    let (a, b): (u64, u64) = (u.arbitrary()?, u.arbitrary()?);
    let (c, d): (u64, u64) = (u.arbitrary()?, u.arbitrary()?);
    let (ua, ub, pc, pd) = (UserId(a), UserId(b), PostId(c), PostId(d));

    // Keys round-trip.
    let edge = codec::edge_key(ua, ub);
    assert_eq!(codec::decode_edge_key(&edge).ok(), Some((ua, ub)));
    prefixes_refused("edge key", &edge, codec::decode_edge_key);
    let author = codec::author_post_key(ua, pc);
    assert_eq!(codec::decode_author_post_key(&author).ok(), Some((ua, pc)));
    prefixes_refused("author index key", &author, codec::decode_author_post_key);
    let inbox = codec::inbox_key(ua, pc);
    assert_eq!(codec::decode_inbox_key(&inbox).ok(), Some((ua, pc)));
    prefixes_refused("inbox key", &inbox, codec::decode_inbox_key);
    assert_eq!(codec::decode_user_key(&codec::user_key(ua)).ok(), Some(ua));
    prefixes_refused("user key", &codec::user_key(ua), codec::decode_user_key);
    assert_eq!(codec::decode_post_key(&codec::post_key(pc)).ok(), Some(pc));
    assert_eq!(codec::decode_post_key(&codec::job_key(pc)).ok(), Some(pc));
    prefixes_refused("post key", &codec::post_key(pc), codec::decode_post_key);

    // Key order is the order the stores rely on: numeric for ids, by
    // (user, other) for edges, by user then newest first for the author
    // index and the inbox.
    assert_eq!(codec::user_key(ua).cmp(&codec::user_key(ub)), a.cmp(&b));
    assert_eq!(codec::post_key(pc).cmp(&codec::post_key(pd)), c.cmp(&d));
    assert_eq!(codec::job_key(pc).cmp(&codec::job_key(pd)), c.cmp(&d));
    assert_eq!(
        codec::edge_key(ua, UserId(c)).cmp(&codec::edge_key(ub, UserId(d))),
        (a, c).cmp(&(b, d))
    );
    let newest_first = a.cmp(&b).then(d.cmp(&c));
    assert_eq!(
        codec::inbox_key(ua, pc).cmp(&codec::inbox_key(ub, pd)),
        newest_first
    );
    assert_eq!(
        codec::author_post_key(ua, pc).cmp(&codec::author_post_key(ub, pd)),
        newest_first
    );

    // Per-user prefixes and their end bound: every key of `a` lies in
    // [prefix, end), every key of a larger user at or after the end.
    let (prefix, end) = (codec::user_prefix(ua), codec::user_prefix_end(ua));
    for key in [edge, author, inbox] {
        assert!(key.starts_with(&prefix));
        assert!(
            key.as_slice() < end.as_slice(),
            "key {key:?} not below end {end:?}"
        );
    }
    let counter_a = codec::counter_key(ua, CounterKind::Following);
    assert!(counter_a.starts_with(&prefix) && counter_a.as_slice() < end.as_slice());
    if b > a {
        assert!(codec::edge_key(ub, UserId(0)).as_slice() >= end.as_slice());
        assert!(codec::inbox_key(ub, PostId(u64::MAX)).as_slice() >= end.as_slice());
    }

    // Counters: the key names the user and the kind; values round-trip.
    for kind in [CounterKind::Followers, CounterKind::Following] {
        let k = codec::counter_key(ua, kind);
        assert_eq!(k[..8], codec::user_prefix(ua));
        assert_eq!(k[8], kind as u8);
    }
    assert_ne!(
        codec::counter_key(ua, CounterKind::Followers),
        codec::counter_key(ua, CounterKind::Following)
    );
    let delta: i64 = u.arbitrary()?;
    assert_eq!(
        codec::decode_count(&codec::encode_count(delta)).ok(),
        Some(delta)
    );
    prefixes_refused(
        "counter value",
        &codec::encode_count(delta),
        codec::decode_count,
    );

    // Small values.
    assert_eq!(
        codec::decode_user_id(&codec::encode_user_id(ub)).ok(),
        Some(ub)
    );
    let mode = pick(u, &EDGE_MODES)?;
    let value = codec::encode_edge_value(pd, mode);
    assert_eq!(
        codec::decode_edge(ub, &value).ok(),
        Some(Edge {
            user: ub,
            since: pd,
            mode,
        })
    );
    prefixes_refused("edge value", &value, |v| codec::decode_edge(ub, v));
    assert_eq!(value[8], edge_mode_tag(mode), "edge mode tag");

    // The pulled-followee index: keyed (reader, author) under the
    // reader's prefix, valued by the bare watermark.
    let pulled = codec::pulled_key(ua, ub);
    assert!(pulled.starts_with(&prefix) && pulled.as_slice() < end.as_slice());
    assert_eq!(
        codec::pulled_key(ua, UserId(c)).cmp(&codec::pulled_key(ub, UserId(d))),
        (a, c).cmp(&(b, d))
    );
    assert_eq!(
        codec::decode_pulled(&pulled, &codec::encode_since(pd)).ok(),
        Some(Edge {
            user: ub,
            since: pd,
            mode: EdgeMode::Pull,
        })
    );
    prefixes_refused("pulled value", &codec::encode_since(pd), |v| {
        codec::decode_pulled(&pulled, v)
    });
    prefixes_refused("pulled key", &pulled, |k| {
        codec::decode_pulled(k, &codec::encode_since(pd))
    });

    // Author modes and timestamps.
    let author_mode = pick(u, &AUTHOR_MODES)?;
    assert_eq!(
        codec::encode_author_mode(author_mode),
        [author_mode_tag(author_mode)],
        "author mode tag"
    );
    assert_eq!(
        codec::decode_author_mode(&codec::encode_author_mode(author_mode)).ok(),
        Some(author_mode)
    );
    prefixes_refused(
        "author mode",
        &codec::encode_author_mode(author_mode),
        codec::decode_author_mode,
    );
    let ms: u64 = u.arbitrary()?;
    assert_eq!(
        codec::decode_millis(&codec::encode_millis(ms)).ok(),
        Some(ms)
    );
    prefixes_refused("timestamp", &codec::encode_millis(ms), codec::decode_millis);
    assert_eq!(
        codec::decode_inbox_entry(pc, &codec::encode_inbox_value(ub)).ok(),
        Some(InboxEntry {
            post: pc,
            author: ub
        })
    );

    // Users: the name as typed survives; the name key is its folded form,
    // shared by every case variant.
    let name = username(u)?;
    let user = User {
        id: ua,
        name: name.clone(),
        created_at_ms: d,
    };
    let bytes = codec::encode_user(&user);
    assert_eq!(codec::decode_user(ua, &bytes).ok(), Some(user.clone()));
    prefixes_refused("user record", &bytes[..9], |v| codec::decode_user(ua, v));
    let mut other_version = bytes.clone();
    other_version[0] = other_version[0].wrapping_add(u.int_in_range(1..=255u8)?);
    assert!(matches!(
        codec::decode_user(ua, &other_version),
        Err(Error::Corrupt(_))
    ));
    let key = codec::name_key(&name);
    assert_eq!(key, name.as_str().to_ascii_lowercase().into_bytes());
    let upper = Username::parse(&name.as_str().to_ascii_uppercase()).expect("upper case is valid");
    assert_eq!(codec::name_key(&upper), key);

    // Posts: any text, live or tombstone.
    let text: String = u.arbitrary()?;
    let post = Post {
        id: pc,
        author: ub,
        text,
        deleted: u.arbitrary()?,
        reply_to: u.arbitrary::<Option<u64>>()?.map(PostId),
        repost_of: u.arbitrary::<Option<u64>>()?.map(PostId),
        audience: match u.arbitrary::<Option<u64>>()? {
            Some(g) => Audience::Group(GroupId(g)),
            None => Audience::Public,
        },
        likes: u.arbitrary()?,
    };
    let bytes = codec::encode_post(&post);
    assert_eq!(codec::decode_post(pc, &bytes).ok(), Some(post.clone()));
    assert_eq!(
        codec::decode_post(pc, &codec::encode_post(&post.tombstone())).ok(),
        Some(post.tombstone())
    );
    prefixes_refused("post record", &bytes[..10], |v| codec::decode_post(pc, v));
    let mut flags = bytes.clone();
    flags[9] |= u.int_in_range(32..=255u8)?;
    assert!(matches!(
        codec::decode_post(pc, &flags),
        Err(Error::Corrupt(_))
    ));

    // Fan-out jobs, with and without a cursor.
    let job = FanoutJob {
        post: pc,
        author: ua,
        kind: pick(u, &JOB_KINDS)?,
        cursor: if u.arbitrary()? {
            Some(UserId(b))
        } else {
            None
        },
    };
    let bytes = codec::encode_job(&job);
    assert_eq!(codec::decode_job(pc, &bytes).ok(), Some(job));
    assert_eq!(bytes[1], job_kind_tag(job.kind), "job kind tag");
    prefixes_refused("job record", &bytes, |v| codec::decode_job(pc, v));
    let mut longer = bytes.to_vec();
    longer.push(u.arbitrary()?);
    assert!(matches!(
        codec::decode_job(pc, &longer),
        Err(Error::Corrupt(_))
    ));

    // Change records of every kind.
    let change = pick(
        u,
        &[
            Change::Posted {
                post: pc,
                author: ua,
            },
            Change::Deleted {
                post: pc,
                author: ua,
            },
            Change::Followed {
                follower: ua,
                followee: ub,
            },
            Change::Unfollowed {
                follower: ua,
                followee: ub,
            },
            Change::Liked { user: ua, post: pc },
            Change::Unliked { user: ua, post: pc },
            Change::ProfileChanged { user: ua },
            Change::AvatarChanged { user: ub },
        ],
    )?;
    let bytes = codec::encode_change(&change);
    assert_eq!(
        codec::decode_change(b, &bytes).ok(),
        Some(ChangeRecord {
            position: b,
            change
        })
    );
    prefixes_refused("change record", &bytes, |v| codec::decode_change(b, v));
    let mut longer = bytes.clone();
    longer.push(u.arbitrary()?);
    assert!(matches!(
        codec::decode_change(b, &longer),
        Err(Error::Corrupt(_))
    ));

    // Cursors, as bytes and as strings.
    let seen: u32 = u.arbitrary()?;
    for cursor in [
        Cursor::timeline(pd, seen),
        Cursor::users(ub),
        Cursor::changes(b),
    ] {
        let bytes = cursor.to_bytes();
        assert_eq!(Cursor::from_bytes(&bytes).ok(), Some(cursor));
        for n in 0..bytes.len() {
            assert!(
                Cursor::from_bytes(&bytes[..n]).is_err(),
                "cursor prefix {n}"
            );
        }
        assert_eq!(cursor.to_string().parse::<Cursor>().ok(), Some(cursor));
    }
    assert_eq!(
        Cursor::timeline(pd, seen).as_timeline().ok(),
        Some((pd, seen))
    );
    assert!(Cursor::timeline(pd, seen).as_users().is_err());
    assert_eq!(Cursor::users(ub).as_users().ok(), Some(ub));
    assert!(Cursor::users(ub).as_timeline().is_err());
    Ok(())
}
