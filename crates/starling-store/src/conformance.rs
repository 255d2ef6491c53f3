//! The conformance suite of the storage seam: the properties every
//! [`Backend`] must have, one function per property, each taking a factory
//! of fresh, empty backends.
//!
//! A backend runs the whole suite from its own tests with
//! [`conformance_tests!`](crate::conformance_tests), which expands to one
//! `#[test]` per property, so a failure names the property; every message
//! names the backend's type and the operation that disagreed. The promises
//! checked are the ones the traits document; the in-memory backend
//! (`starling-memstore`) is the reference for them.
//!
//! ```ignore
//! mod conformance {
//!     starling_store::conformance_tests!(starling_memstore::MemBackend::new);
//! }
//! ```
//!
//! A backend that persists adds a reopen hook (`reopen: |backend| ...`,
//! closing the backend and opening it again at the same place), which adds
//! [`data_survives_reopen`]. A backend that can be made to refuse a write
//! runs [`refused_apply_leaves_nothing`] with a factory of backends that
//! accept a given number of writes and refuse the rest.
//!
//! The functions panic on the first disagreement: they are for tests.

use std::any::type_name;
use std::fmt::Debug;

use starling_core::{
    Audience, AuthorMode, Avatar, Change, ChangeRecord, Conversation, Counts, DeliveryId,
    DeliveryKind, DeviceDelivery, DeviceUsage, DirectMessage, DirectMutation, Durability, Edge,
    EdgeMode, FanoutJob, Group, GroupId, ImageKind, InboxEntry, JobKind, LinkKind, Mutation, Phone,
    PhoneClaim, Post, PostId, Profile, Result, Toggle, User, UserId, Username,
};

use crate::{Backend, Direction};

/// Page sizes every paged read is walked with: one, a few, exactly the
/// number of records, and more than that.
const LIMITS: [usize; 5] = [1, 2, 3, 7, 64];

/// Expands to one `#[test]` per property of the conformance suite, each
/// building its backends with `$new` (an expression of a function or
/// closure returning a fresh, empty backend). With `reopen: $reopen` (a
/// function or closure taking a backend and returning it closed and opened
/// again), it adds [`data_survives_reopen`].
#[macro_export]
macro_rules! conformance_tests {
    (@each $new:expr; $($property:ident),* $(,)?) => {
        $(
            #[test]
            fn $property() {
                let mut new = $new;
                $crate::conformance::$property(&mut new);
            }
        )*
    };
    ($new:expr $(,)?) => {
        $crate::conformance_tests!(@each $new;
            apply_is_all_or_nothing,
            users_and_names,
            edges_page_in_id_order,
            follower_edges_read_in_batches,
            counts_follow_edges,
            pull_edges_and_author_modes,
            posts_and_author_index_page_newest_first,
            scan_posts_pages_in_id_order,
            inbox_pages_newest_first,
            inbox_trim_raises_the_floor,
            bulk_inbox_is_inbox_puts,
            a_bulk_load_in_parts_is_inbox_puts,
            last_reads_page_in_user_order,
            links_put_delete_and_page,
            link_kinds_are_apart_and_like_counts_are_kept,
            jobs_put_advance_delete_and_page,
            groups_put_and_delete,
            profiles_avatars_and_phones,
            phone_claims_by_user_and_number,
            messages_page_newest_first,
            conversations_page_newest_first,
            device_subs_page_in_id_order,
            outbox_leases_in_order_and_acks,
            device_usage_per_day,
            minted_ids_grow,
            changes_page_in_position_order_and_trim_raises_the_floor,
        );
    };
    ($new:expr, reopen: $reopen:expr $(,)?) => {
        $crate::conformance_tests!($new);
        #[test]
        fn data_survives_reopen() {
            let mut new = $new;
            let mut reopen = $reopen;
            $crate::conformance::data_survives_reopen(&mut new, &mut reopen);
        }
    };
}

fn ok<B, T>(result: Result<T>, op: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{}: {op} failed: {e}", type_name::<B>()),
    }
}

fn apply<B: Backend>(b: &B, batch: &[Mutation], op: &str) {
    ok::<B, _>(b.apply(batch, Durability::Synced), op);
}

fn same<B, T: PartialEq + Debug>(got: T, want: T, op: &str) {
    assert_eq!(got, want, "{}: {op}", type_name::<B>());
}

/// Walks a paged read to its end with page size `limit`: every page holds
/// at most `limit` records, every page but the last is full, the read after
/// the last record is empty, and a read of zero records is empty. Returns
/// the records in the order read.
fn walk<B, T: Clone + Debug, C: Copy>(
    op: &str,
    limit: usize,
    mut read: impl FnMut(Option<C>, usize, &mut Vec<T>) -> Result<()>,
    cursor_of: impl Fn(&T) -> C,
) -> Vec<T> {
    let name = type_name::<B>();
    let mut none = Vec::new();
    ok::<B, _>(read(None, 0, &mut none), op);
    assert!(none.is_empty(), "{name}: {op} with limit 0 gave {none:?}");
    let mut all = Vec::new();
    let mut page = Vec::new();
    let mut cursor = None;
    for _ in 0..10_000 {
        page.clear();
        ok::<B, _>(read(cursor, limit, &mut page), op);
        assert!(
            page.len() <= limit,
            "{name}: {op} gave {} records for limit {limit}",
            page.len()
        );
        all.extend(page.iter().cloned());
        match page.last() {
            Some(last) if page.len() == limit => cursor = Some(cursor_of(last)),
            Some(last) => {
                // A short page ends the read: nothing follows it.
                let mut rest = Vec::new();
                ok::<B, _>(read(Some(cursor_of(last)), limit, &mut rest), op);
                assert!(
                    rest.is_empty(),
                    "{name}: {op} after a short page gave {rest:?}"
                );
                return all;
            }
            None => return all,
        }
    }
    panic!("{name}: {op} never ended");
}

/// Walks a paged read with every page size of [`LIMITS`] and checks that
/// each walk yields exactly `want`, in order.
fn pages<B, T: Clone + Debug + PartialEq, C: Copy>(
    op: &str,
    want: &[T],
    mut read: impl FnMut(Option<C>, usize, &mut Vec<T>) -> Result<()>,
    cursor_of: impl Fn(&T) -> C,
) {
    for limit in LIMITS {
        let got = walk::<B, _, _>(op, limit, &mut read, &cursor_of);
        assert_eq!(got, want, "{}: {op} in pages of {limit}", type_name::<B>());
    }
}

fn user(id: u64) -> User {
    User {
        id: UserId(id),
        name: name(&format!("user_{id}")),
        created_at_ms: 1_000 + id,
    }
}

fn name(raw: &str) -> Username {
    match Username::parse(raw) {
        Ok(n) => n,
        Err(e) => panic!("test name {raw}: {e}"),
    }
}

fn phone(raw: &str) -> Phone {
    match Phone::parse(raw) {
        Ok(p) => p,
        Err(e) => panic!("test phone {raw}: {e}"),
    }
}

fn post(id: u64, author: u64) -> Post {
    Post {
        id: PostId(id),
        author: UserId(author),
        text: format!("post {id} by {author}"),
        deleted: false,
        reply_to: None,
        repost_of: None,
        audience: Audience::Public,
        likes: 0,
    }
}

fn edge(user: u64, since: u64, mode: EdgeMode) -> Edge {
    Edge {
        user: UserId(user),
        since: PostId(since),
        mode,
    }
}

fn add_edge(follower: u64, followee: u64, since: u64, mode: EdgeMode) -> Mutation {
    Mutation::AddEdge {
        follower: UserId(follower),
        followee: UserId(followee),
        since: PostId(since),
        mode,
    }
}

fn link(kind: LinkKind, from: u64, to: u64, value: u64) -> Mutation {
    Mutation::PutLink {
        kind,
        from,
        to,
        value,
    }
}

fn message(id: u64, from: u64, to: u64) -> DirectMessage {
    DirectMessage {
        id: PostId(id),
        from: UserId(from),
        to: UserId(to),
        text: format!("message {id}"),
    }
}

fn delivery(post: u64, recipient: u64, leased_until_ms: u64) -> DeviceDelivery {
    DeviceDelivery {
        id: DeliveryId {
            post: PostId(post),
            recipient: UserId(recipient),
        },
        phone: phone(&format!("+1555555{recipient:04}")),
        text: format!("update {post}"),
        leased_until_ms,
        // Every kind, so that each reads back as itself.
        kind: [
            DeliveryKind::Post,
            DeliveryKind::Direct,
            DeliveryKind::Code,
            DeliveryKind::Notice,
        ][(post % 4) as usize],
    }
}

fn claim(user: u64, number: &str, code: u32) -> PhoneClaim {
    PhoneClaim {
        user: UserId(user),
        phone: phone(number),
        code,
        expires_ms: 1_000 + user,
        attempts_left: 5,
    }
}

fn avatar() -> Avatar {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..64u8).map(|i| i.wrapping_mul(37)));
    match ImageKind::sniff(&bytes) {
        Some(kind) => Avatar {
            kind,
            bytes: bytes.into(),
        },
        None => panic!("the test picture is not a PNG"),
    }
}

/// Ids with gaps, so that a read that counts instead of comparing ids, or
/// skips one past the cursor, shows.
const IDS: [u64; 7] = [2, 3, 5, 8, 13, 21, 34];

/// A batch of writes is visible all at once: a reader running beside the
/// writer sees each batch of sixteen link values wholly or not at all, and
/// once `apply` returns every mutation of a batch (over many stores) reads
/// back.
pub fn apply_is_all_or_nothing<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    let name = type_name::<B>();
    ok::<B, _>(b.apply(&[], Durability::Synced), "apply of an empty batch");
    apply(&b, &everything(), "apply of a batch over every store");
    check_everything(&b, "after apply");

    const ROUNDS: u64 = 200;
    const WIDTH: u64 = 16;
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for round in 1..=ROUNDS {
                let batch: Vec<Mutation> = (0..WIDTH)
                    .map(|to| link(LinkKind::Members, 900, to, round))
                    .collect();
                ok::<B, _>(b.apply(&batch, Durability::Buffered), "apply of one round");
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let mut seen = 0;
        let mut page = Vec::new();
        loop {
            let finished = done.load(std::sync::atomic::Ordering::SeqCst);
            page.clear();
            ok::<B, _>(
                b.links(LinkKind::Members, 900, None, 64, &mut page),
                "links during writes",
            );
            if !page.is_empty() {
                let round = page[0].1;
                assert!(
                    page.len() as u64 == WIDTH && page.iter().all(|&(_, v)| v == round),
                    "{name}: a reader saw part of a batch: {page:?}"
                );
                assert!(round >= seen, "{name}: a reader went back in time");
                seen = round;
            }
            if finished {
                break;
            }
        }
        assert_eq!(seen, ROUNDS, "{name}: the last round is visible");
    });
}

/// A backend built to accept `n` writes and refuse every later one (for
/// backends that can be made to refuse, such as a fault-injecting one):
/// a refused batch returns an error and leaves nothing of itself stored.
pub fn refused_apply_leaves_nothing<B: Backend>(accepting: &mut dyn FnMut(u64) -> B) {
    let b = accepting(1);
    let name = type_name::<B>();
    apply(&b, &[Mutation::PutUser(user(1))], "the accepted write");
    assert!(
        b.apply(&everything(), Durability::Synced).is_err(),
        "{name}: the write after the accepted ones was not refused"
    );
    check_nothing(&b);
    same::<B, _>(
        ok::<B, _>(b.user(UserId(1)), "user"),
        Some(user(1)),
        "the accepted write is kept",
    );
}

/// What a persistent backend stored survives closing and opening it again
/// (`reopen` closes the backend it is given and opens it anew at the same
/// place).
pub fn data_survives_reopen<B: Backend>(
    new: &mut dyn FnMut() -> B,
    reopen: &mut dyn FnMut(B) -> B,
) {
    let b = new();
    apply(&b, &everything(), "apply of a batch over every store");
    let b = reopen(b);
    check_everything(&b, "after reopen");
    apply(
        &b,
        &[Mutation::InboxTrim {
            owner: UserId(2),
            through: PostId(5),
        }],
        "trim after reopen",
    );
    let b = reopen(b);
    same::<B, _>(
        ok::<B, _>(b.inbox_floor(UserId(2)), "inbox_floor"),
        Some(PostId(10)),
        "a floor is a maximum across reopens",
    );
    apply(
        &b,
        &[Mutation::TrimChanges { through: 70 }],
        "change trim after reopen",
    );
    let b = reopen(b);
    same::<B, _>(
        ok::<B, _>(b.change_floor(), "change_floor"),
        70,
        "the change floor survives a reopen",
    );
    same::<B, _>(
        ok::<B, _>(b.last_change_position(), "last_change_position"),
        77,
        "the change feed survives a reopen",
    );
}

/// One batch writing to every store, read back by [`check_everything`].
fn everything() -> Vec<Mutation> {
    vec![
        Mutation::PutUser(user(1)),
        Mutation::PutUser(user(2)),
        add_edge(2, 1, 7, EdgeMode::Push),
        Mutation::PutPost(post(40, 1)),
        Mutation::InboxPut {
            owner: UserId(2),
            entry: InboxEntry {
                post: PostId(40),
                author: UserId(1),
            },
        },
        Mutation::InboxPut {
            owner: UserId(2),
            entry: InboxEntry {
                post: PostId(9),
                author: UserId(1),
            },
        },
        Mutation::InboxTrim {
            owner: UserId(2),
            through: PostId(10),
        },
        Mutation::PutJob(FanoutJob {
            post: PostId(40),
            author: UserId(1),
            kind: JobKind::Deliver,
            cursor: Some(UserId(2)),
        }),
        Mutation::SetAuthorMode {
            author: UserId(1),
            mode: AuthorMode::Promoting,
        },
        Mutation::SetLastRead {
            user: UserId(2),
            at_ms: 77,
        },
        link(LinkKind::Mutes, 2, 1, 55),
        Mutation::PutGroup(Group {
            id: GroupId(3),
            owner: UserId(1),
            name: "club".to_owned(),
        }),
        Mutation::Direct(DirectMutation::PutProfile {
            user: UserId(1),
            profile: profile(),
        }),
        Mutation::Direct(DirectMutation::PutAvatar {
            user: UserId(1),
            avatar: avatar(),
        }),
        Mutation::Direct(DirectMutation::LinkPhone {
            user: UserId(2),
            phone: phone("+15555550002"),
            replaces: None,
        }),
        Mutation::Direct(DirectMutation::PutPhoneClaim {
            claim: claim(2, "+15555550003", 123_456),
            replaces: None,
        }),
        Mutation::Direct(DirectMutation::PutMessage(message(50, 1, 2))),
        Mutation::Direct(DirectMutation::PutConversation {
            owner: UserId(2),
            summary: Conversation {
                with: UserId(1),
                last: PostId(50),
                unread: 1,
            },
            replaces: None,
        }),
        Mutation::Direct(DirectMutation::SetDeviceSub {
            followee: UserId(1),
            follower: UserId(2),
            on: Toggle::On,
        }),
        Mutation::Direct(DirectMutation::QueueDelivery(delivery(40, 2, 0))),
        Mutation::Direct(DirectMutation::SetDeviceUsage {
            user: UserId(2),
            day: 20_000,
            usage: DeviceUsage {
                sent: 3,
                over_cap: 1,
            },
        }),
        Mutation::PutChange(ChangeRecord {
            position: 77,
            change: Change::Posted {
                post: PostId(40),
                author: UserId(1),
            },
        }),
    ]
}

fn profile() -> Profile {
    Profile {
        display_name: "Ada".to_owned(),
        bio: "engines".to_owned(),
        dms_open: true,
        device_paused: false,
        quiet_hours: Some(starling_core::QuietHours {
            start_hour: 22,
            end_hour: 7,
            utc_offset_minutes: -330,
        }),
    }
}

fn check_everything<B: Backend>(b: &B, when: &str) {
    let r = |op: &str| format!("{op} {when}");
    same::<B, _>(
        ok::<B, _>(b.user(UserId(2)), "user"),
        Some(user(2)),
        &r("user"),
    );
    same::<B, _>(
        ok::<B, _>(b.user_id_by_name(&name("USER_1")), "user_id_by_name"),
        Some(UserId(1)),
        &r("user_id_by_name"),
    );
    same::<B, _>(
        ok::<B, _>(b.edge(UserId(2), UserId(1)), "edge"),
        Some(PostId(7)),
        &r("edge"),
    );
    same::<B, _>(
        ok::<B, _>(b.counts(UserId(1)), "counts"),
        Counts {
            followers: 1,
            following: 0,
        },
        &r("counts"),
    );
    let mut posts = Vec::new();
    ok::<B, _>(b.posts(&[PostId(40)], &mut posts), "posts");
    same::<B, _>(posts, vec![Some(post(40, 1))], &r("posts"));
    let mut inbox = Vec::new();
    ok::<B, _>(b.inbox(UserId(2), None, 10, &mut inbox), "inbox");
    same::<B, _>(
        inbox,
        vec![InboxEntry {
            post: PostId(40),
            author: UserId(1),
        }],
        &r("inbox (the trim removed the entry below its floor)"),
    );
    same::<B, _>(
        ok::<B, _>(b.inbox_floor(UserId(2)), "inbox_floor"),
        Some(PostId(10)),
        &r("inbox_floor"),
    );
    same::<B, _>(
        ok::<B, _>(b.job(PostId(40)), "job").map(|j| j.cursor),
        Some(Some(UserId(2))),
        &r("job"),
    );
    same::<B, _>(
        ok::<B, _>(b.author_mode(UserId(1)), "author_mode"),
        AuthorMode::Promoting,
        &r("author_mode"),
    );
    let mut reads = Vec::new();
    ok::<B, _>(b.last_reads(None, 10, &mut reads), "last_reads");
    same::<B, _>(reads, vec![(UserId(2), 77)], &r("last_reads"));
    same::<B, _>(
        ok::<B, _>(b.link(LinkKind::Mutes, 2, 1), "link"),
        Some(55),
        &r("link"),
    );
    same::<B, _>(
        ok::<B, _>(b.group(GroupId(3)), "group").map(|g| g.name),
        Some("club".to_owned()),
        &r("group"),
    );
    same::<B, _>(
        ok::<B, _>(b.profile(UserId(1)), "profile"),
        Some(profile()),
        &r("profile"),
    );
    same::<B, _>(
        ok::<B, _>(b.avatar(UserId(1)), "avatar"),
        Some(avatar()),
        &r("avatar"),
    );
    same::<B, _>(
        ok::<B, _>(b.user_by_phone(&phone("+15555550002")), "user_by_phone"),
        Some(UserId(2)),
        &r("user_by_phone"),
    );
    same::<B, _>(
        ok::<B, _>(b.phone_claim(UserId(2)), "phone_claim"),
        Some(claim(2, "+15555550003", 123_456)),
        &r("phone_claim"),
    );
    same::<B, _>(
        ok::<B, _>(b.last_message_id(), "last_message_id"),
        Some(PostId(50)),
        &r("last_message_id"),
    );
    same::<B, _>(
        ok::<B, _>(b.conversation(UserId(2), UserId(1)), "conversation").map(|c| c.last),
        Some(PostId(50)),
        &r("conversation"),
    );
    same::<B, _>(
        ok::<B, _>(b.device_sub(UserId(1), UserId(2)), "device_sub"),
        true,
        &r("device_sub"),
    );
    same::<B, _>(
        ok::<B, _>(b.delivery(delivery(40, 2, 0).id), "delivery"),
        Some(delivery(40, 2, 0)),
        &r("delivery"),
    );
    same::<B, _>(
        ok::<B, _>(b.device_usage(UserId(2), 20_000), "device_usage").sent,
        3,
        &r("device_usage"),
    );
    let mut changes = Vec::new();
    ok::<B, _>(b.changes_after(0, 10, &mut changes), "changes_after");
    same::<B, _>(changes.len(), 1, &r("changes_after"));
    same::<B, _>(
        ok::<B, _>(b.last_change_position(), "last_change_position"),
        77,
        &r("last_change_position"),
    );
}

/// Nothing of [`everything`] is stored (user 1 may be).
fn check_nothing<B: Backend>(b: &B) {
    let op = "after a refused batch";
    same::<B, _>(ok::<B, _>(b.user(UserId(2)), "user"), None, op);
    same::<B, _>(ok::<B, _>(b.edge(UserId(2), UserId(1)), "edge"), None, op);
    same::<B, _>(
        ok::<B, _>(b.counts(UserId(1)), "counts"),
        Counts::default(),
        op,
    );
    same::<B, _>(ok::<B, _>(b.last_post_id(), "last_post_id"), None, op);
    let mut inbox = Vec::new();
    ok::<B, _>(b.inbox(UserId(2), None, 10, &mut inbox), "inbox");
    same::<B, _>(inbox, Vec::new(), op);
    same::<B, _>(
        ok::<B, _>(b.inbox_floor(UserId(2)), "inbox_floor"),
        None,
        op,
    );
    same::<B, _>(ok::<B, _>(b.job(PostId(40)), "job"), None, op);
    same::<B, _>(ok::<B, _>(b.link(LinkKind::Mutes, 2, 1), "link"), None, op);
    same::<B, _>(ok::<B, _>(b.group(GroupId(3)), "group"), None, op);
    same::<B, _>(ok::<B, _>(b.profile(UserId(1)), "profile"), None, op);
    same::<B, _>(
        ok::<B, _>(b.phone_claim(UserId(2)), "phone_claim"),
        None,
        op,
    );
    same::<B, _>(ok::<B, _>(b.last_message_id(), "last_message_id"), None, op);
    let mut due = Vec::new();
    ok::<B, _>(b.due_deliveries(u64::MAX, 10, &mut due), "due_deliveries");
    same::<B, _>(due, Vec::new(), op);
    let mut changes = Vec::new();
    ok::<B, _>(b.changes_after(0, 10, &mut changes), "changes_after");
    same::<B, _>(changes, Vec::new(), op);
}

/// Users read back by id and by name (compared without case), and the
/// largest id is known.
pub fn users_and_names<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    same::<B, _>(ok::<B, _>(b.last_user_id(), "last_user_id"), None, "empty");
    let batch: Vec<_> = IDS.iter().map(|&id| Mutation::PutUser(user(id))).collect();
    apply(&b, &batch, "apply");
    for id in IDS {
        same::<B, _>(
            ok::<B, _>(b.user(UserId(id)), "user"),
            Some(user(id)),
            "user",
        );
        same::<B, _>(
            ok::<B, _>(
                b.user_id_by_name(&name(&format!("USER_{id}"))),
                "user_id_by_name",
            ),
            Some(UserId(id)),
            "user_id_by_name, case folded",
        );
    }
    same::<B, _>(ok::<B, _>(b.user(UserId(4)), "user"), None, "user 4");
    same::<B, _>(
        ok::<B, _>(b.user_id_by_name(&name("nobody")), "user_id_by_name"),
        None,
        "unknown name",
    );
    same::<B, _>(
        ok::<B, _>(b.last_user_id(), "last_user_id"),
        Some(UserId(34)),
        "last_user_id",
    );
}

/// A backend that mints ids hands out growing user and group ids, each
/// once, past the ids stored when it was opened; the post-id node number
/// it grants is a valid one and stays the same.
pub fn minted_ids_grow<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    let mut last_user = None;
    let mut last_group = None;
    for durability in [
        Durability::Buffered,
        Durability::Synced,
        Durability::Buffered,
    ] {
        let u = ok::<B, _>(b.mint_user_id(durability), "mint_user_id");
        let g = ok::<B, _>(b.mint_group_id(durability), "mint_group_id");
        if let (Some(u), Some(before)) = (u, last_user) {
            assert!(
                u > before,
                "{}: user id {u:?} after {before:?}",
                type_name::<B>()
            );
        }
        if let (Some(g), Some(before)) = (g, last_group) {
            assert!(
                g > before,
                "{}: group id {g:?} after {before:?}",
                type_name::<B>()
            );
        }
        if u.is_none() != last_user.is_none() && last_user.is_some() {
            panic!("{}: mint_user_id stopped minting", type_name::<B>());
        }
        last_user = u.or(last_user);
        last_group = g.or(last_group);
    }
    let node = ok::<B, _>(b.post_id_node(3), "post_id_node");
    assert!(
        node <= PostId::MAX_NODE,
        "{}: node {node}",
        type_name::<B>()
    );
    same::<B, _>(
        ok::<B, _>(b.post_id_node(3), "post_id_node"),
        node,
        "post_id_node asked again",
    );
}

/// Both sides of the follow graph page in ascending id order, the
/// followers side keeping each edge's `since` and mode; point reads agree
/// and removing an edge removes both sides.
pub fn edges_page_in_id_order<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    let star = 1;
    let mut batch: Vec<_> = IDS
        .iter()
        .map(|&f| {
            let mode = if f.is_multiple_of(2) {
                EdgeMode::Pull
            } else {
                EdgeMode::Push
            };
            add_edge(f, star, 100 + f, mode)
        })
        .collect();
    // Edges of neighbours on either side, which no read of `star` may show.
    batch.push(add_edge(3, 0, 1, EdgeMode::Push));
    batch.push(add_edge(3, 2, 1, EdgeMode::Push));
    batch.extend(
        IDS.iter()
            .map(|&f| add_edge(star, f, 200 + f, EdgeMode::Push)),
    );
    apply(&b, &batch, "apply");
    let followers: Vec<Edge> = IDS
        .iter()
        .map(|&f| {
            edge(
                f,
                100 + f,
                if f.is_multiple_of(2) {
                    EdgeMode::Pull
                } else {
                    EdgeMode::Push
                },
            )
        })
        .collect();
    let following: Vec<Edge> = IDS
        .iter()
        .map(|&f| edge(f, 200 + f, EdgeMode::Push))
        .collect();
    pages::<B, _, _>(
        "edges(Followers)",
        &followers,
        |after, limit, out| b.edges(UserId(star), Direction::Followers, after, limit, out),
        |e| e.user,
    );
    pages::<B, _, _>(
        "edges(Following)",
        &following,
        |after, limit, out| b.edges(UserId(star), Direction::Following, after, limit, out),
        |e| e.user,
    );
    let mut none = Vec::new();
    ok::<B, _>(
        b.edges(
            UserId(star),
            Direction::Followers,
            Some(UserId(u64::MAX)),
            10,
            &mut none,
        ),
        "edges after the largest id",
    );
    same::<B, _>(none, Vec::new(), "edges after the largest id");
    same::<B, _>(
        ok::<B, _>(b.edge(UserId(8), UserId(star)), "edge"),
        Some(PostId(108)),
        "edge",
    );
    same::<B, _>(
        ok::<B, _>(b.follower_edge(UserId(star), UserId(8)), "follower_edge"),
        Some(edge(8, 108, EdgeMode::Pull)),
        "follower_edge",
    );
    apply(
        &b,
        &[Mutation::RemoveEdge {
            follower: UserId(8),
            followee: UserId(star),
        }],
        "remove",
    );
    same::<B, _>(
        ok::<B, _>(b.edge(UserId(8), UserId(star)), "edge"),
        None,
        "edge after removal",
    );
    same::<B, _>(
        ok::<B, _>(b.follower_edge(UserId(star), UserId(8)), "follower_edge"),
        None,
        "follower_edge after removal",
    );
    let rest: Vec<Edge> = followers.into_iter().filter(|e| e.user.0 != 8).collect();
    pages::<B, _, _>(
        "edges(Followers) after removal",
        &rest,
        |after, limit, out| b.edges(UserId(star), Direction::Followers, after, limit, out),
        |e| e.user,
    );
}

/// `follower_edges` returns, in the order asked, the edges of those asked
/// who follow, and skips the others.
pub fn follower_edges_read_in_batches<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    let batch: Vec<_> = IDS
        .iter()
        .map(|&f| add_edge(f, 1, f, EdgeMode::Push))
        .collect();
    apply(&b, &batch, "apply");
    let asked: Vec<UserId> = [2, 4, 5, 6, 21, 34, 40].into_iter().map(UserId).collect();
    let mut out = Vec::new();
    ok::<B, _>(
        b.follower_edges(UserId(1), &asked, &mut out),
        "follower_edges",
    );
    let want: Vec<Edge> = [2, 5, 21, 34]
        .into_iter()
        .map(|f| edge(f, f, EdgeMode::Push))
        .collect();
    same::<B, _>(out, want, "follower_edges");
}

/// Counts follow the edges added and removed, and `SetCounts` replaces
/// them.
pub fn counts_follow_edges<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    same::<B, _>(
        ok::<B, _>(b.counts(UserId(1)), "counts"),
        Counts::default(),
        "counts of nobody",
    );
    let mut batch: Vec<_> = IDS
        .iter()
        .map(|&f| add_edge(f, 1, 0, EdgeMode::Push))
        .collect();
    batch.push(add_edge(1, 2, 0, EdgeMode::Push));
    apply(&b, &batch, "apply");
    apply(
        &b,
        &[Mutation::RemoveEdge {
            follower: UserId(3),
            followee: UserId(1),
        }],
        "remove",
    );
    same::<B, _>(
        ok::<B, _>(b.counts(UserId(1)), "counts"),
        Counts {
            followers: 6,
            following: 1,
        },
        "counts of the followee",
    );
    same::<B, _>(
        ok::<B, _>(b.counts(UserId(2)), "counts"),
        Counts {
            followers: 1,
            following: 1,
        },
        "counts of a follower followed back",
    );
    let set = Counts {
        followers: 1_000_000,
        following: 3,
    };
    apply(
        &b,
        &[Mutation::SetCounts {
            user: UserId(1),
            counts: set,
        }],
        "set counts",
    );
    same::<B, _>(ok::<B, _>(b.counts(UserId(1)), "counts"), set, "SetCounts");
}

/// Pull edges are listed per reader in followee order and leave when the
/// edge turns push, is removed or its pull entry deleted; author modes
/// default to push.
pub fn pull_edges_and_author_modes<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    let mut batch: Vec<_> = IDS
        .iter()
        .map(|&a| add_edge(1, a, a, EdgeMode::Pull))
        .collect();
    batch.push(add_edge(2, 3, 0, EdgeMode::Pull));
    apply(&b, &batch, "apply");
    let mut out = Vec::new();
    ok::<B, _>(b.pulled(UserId(1), &mut out), "pulled");
    let want: Vec<Edge> = IDS.iter().map(|&a| edge(a, a, EdgeMode::Pull)).collect();
    same::<B, _>(out.clone(), want, "pulled");
    apply(
        &b,
        &[
            Mutation::SetEdgeMode {
                follower: UserId(1),
                followee: UserId(2),
                since: PostId(2),
                mode: EdgeMode::Push,
            },
            Mutation::RemoveEdge {
                follower: UserId(1),
                followee: UserId(3),
            },
            Mutation::DeletePulled {
                reader: UserId(1),
                author: UserId(5),
            },
        ],
        "apply",
    );
    out.clear();
    ok::<B, _>(b.pulled(UserId(1), &mut out), "pulled");
    let want: Vec<Edge> = [8, 13, 21, 34]
        .into_iter()
        .map(|a| edge(a, a, EdgeMode::Pull))
        .collect();
    same::<B, _>(out, want, "pulled after changes");
    same::<B, _>(
        ok::<B, _>(b.follower_edge(UserId(2), UserId(1)), "follower_edge"),
        Some(edge(1, 2, EdgeMode::Push)),
        "SetEdgeMode rewrites the followers side",
    );
    same::<B, _>(
        ok::<B, _>(b.author_mode(UserId(9)), "author_mode"),
        AuthorMode::Push,
        "default author mode",
    );
    apply(
        &b,
        &[Mutation::SetAuthorMode {
            author: UserId(9),
            mode: AuthorMode::Pulled,
        }],
        "apply",
    );
    same::<B, _>(
        ok::<B, _>(b.author_mode(UserId(9)), "author_mode"),
        AuthorMode::Pulled,
        "author mode",
    );
}

/// Posts read back in the order asked (missing ones as `None`); an
/// author's index pages newest first below a cursor, and leaves an entry
/// when told.
pub fn posts_and_author_index_page_newest_first<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    let mut batch: Vec<_> = IDS
        .iter()
        .map(|&id| Mutation::PutPost(post(id, 1)))
        .collect();
    batch.push(Mutation::PutPost(post(4, 0)));
    batch.push(Mutation::PutPost(post(6, 2)));
    apply(&b, &batch, "apply");
    let mut got = Vec::new();
    ok::<B, _>(
        b.posts(&[PostId(13), PostId(1), PostId(4)], &mut got),
        "posts",
    );
    same::<B, _>(
        got,
        vec![Some(post(13, 1)), None, Some(post(4, 0))],
        "posts",
    );
    let newest_first: Vec<PostId> = IDS.iter().rev().map(|&id| PostId(id)).collect();
    pages::<B, _, _>(
        "author_posts",
        &newest_first,
        |before, limit, out| b.author_posts(UserId(1), before, limit, out),
        |id| *id,
    );
    let mut none = Vec::new();
    ok::<B, _>(
        b.author_posts(UserId(1), Some(PostId(0)), 10, &mut none),
        "author_posts below 0",
    );
    same::<B, _>(none, Vec::new(), "author_posts below 0");
    apply(
        &b,
        &[Mutation::DeleteAuthorIndex {
            author: UserId(1),
            post: PostId(8),
        }],
        "apply",
    );
    let rest: Vec<PostId> = newest_first.into_iter().filter(|p| p.0 != 8).collect();
    pages::<B, _, _>(
        "author_posts after an index deletion",
        &rest,
        |before, limit, out| b.author_posts(UserId(1), before, limit, out),
        |id| *id,
    );
    same::<B, _>(
        ok::<B, _>(b.last_post_id(), "last_post_id"),
        Some(PostId(34)),
        "last_post_id",
    );
}

/// Every stored post pages in id order.
pub fn scan_posts_pages_in_id_order<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    same::<B, _>(ok::<B, _>(b.last_post_id(), "last_post_id"), None, "empty");
    let batch: Vec<_> = IDS
        .iter()
        .rev()
        .map(|&id| Mutation::PutPost(post(id, id % 3)))
        .collect();
    apply(&b, &batch, "apply");
    let want: Vec<Post> = IDS.iter().map(|&id| post(id, id % 3)).collect();
    pages::<B, _, _>(
        "scan_posts",
        &want,
        |after, limit, out| b.scan_posts(after, limit, out),
        |p| p.id,
    );
}

/// An inbox pages newest first below a cursor, keeps one entry per post,
/// and loses an entry when told.
pub fn inbox_pages_newest_first<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    let entry = |post: u64| InboxEntry {
        post: PostId(post),
        author: UserId(post % 5),
    };
    let mut batch: Vec<_> = IDS
        .iter()
        .map(|&p| Mutation::InboxPut {
            owner: UserId(7),
            entry: entry(p),
        })
        .collect();
    // Delivered twice, and to the owners on either side.
    batch.push(Mutation::InboxPut {
        owner: UserId(7),
        entry: entry(13),
    });
    batch.push(Mutation::InboxPut {
        owner: UserId(6),
        entry: entry(1),
    });
    batch.push(Mutation::InboxPut {
        owner: UserId(8),
        entry: entry(100),
    });
    apply(&b, &batch, "apply");
    let want: Vec<InboxEntry> = IDS.iter().rev().map(|&p| entry(p)).collect();
    pages::<B, _, _>(
        "inbox",
        &want,
        |before, limit, out| b.inbox(UserId(7), before, limit, out),
        |e| e.post,
    );
    apply(
        &b,
        &[Mutation::InboxDelete {
            owner: UserId(7),
            post: PostId(21),
        }],
        "apply",
    );
    let rest: Vec<InboxEntry> = want.into_iter().filter(|e| e.post.0 != 21).collect();
    pages::<B, _, _>(
        "inbox after a deletion",
        &rest,
        |before, limit, out| b.inbox(UserId(7), before, limit, out),
        |e| e.post,
    );
    same::<B, _>(
        ok::<B, _>(b.inbox_floor(UserId(7)), "inbox_floor"),
        None,
        "no floor before a trim",
    );
}

/// A trim removes the entries at or below its post and raises the floor
/// to the largest post any trim named; a lower trim never lowers it.
pub fn inbox_trim_raises_the_floor<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    let put = |owner: u64, p: u64| Mutation::InboxPut {
        owner: UserId(owner),
        entry: InboxEntry {
            post: PostId(p),
            author: UserId(1),
        },
    };
    let mut batch: Vec<_> = IDS.iter().map(|&p| put(7, p)).collect();
    batch.extend(IDS.iter().map(|&p| put(8, p)));
    apply(&b, &batch, "apply");
    let trim = |through: u64| Mutation::InboxTrim {
        owner: UserId(7),
        through: PostId(through),
    };
    apply(&b, &[trim(8)], "trim through 8");
    let left = |b: &B| {
        let mut out = Vec::new();
        ok::<B, _>(b.inbox(UserId(7), None, 64, &mut out), "inbox");
        out.iter().map(|e| e.post.0).collect::<Vec<_>>()
    };
    same::<B, _>(left(&b), vec![34, 21, 13], "entries above the trim");
    same::<B, _>(
        ok::<B, _>(b.inbox_floor(UserId(7)), "inbox_floor"),
        Some(PostId(8)),
        "floor",
    );
    apply(
        &b,
        &[trim(3), put(7, 2)],
        "a lower trim, then an older entry",
    );
    same::<B, _>(
        ok::<B, _>(b.inbox_floor(UserId(7)), "inbox_floor"),
        Some(PostId(8)),
        "a lower trim keeps the floor",
    );
    same::<B, _>(left(&b), vec![34, 21, 13, 2], "entries after a lower trim");
    apply(&b, &[trim(21)], "trim through 21");
    same::<B, _>(left(&b), vec![34], "entries after a higher trim");
    same::<B, _>(
        ok::<B, _>(b.inbox_floor(UserId(7)), "inbox_floor"),
        Some(PostId(21)),
        "a higher trim raises the floor",
    );
    let mut other = Vec::new();
    ok::<B, _>(b.inbox(UserId(8), None, 64, &mut other), "inbox");
    same::<B, _>(other.len(), IDS.len(), "another owner's inbox is untouched");
    same::<B, _>(
        ok::<B, _>(b.inbox_floor(UserId(8)), "inbox_floor"),
        None,
        "another owner has no floor",
    );
}

/// An inbox entry of `post` by `author`.
fn entry(post: u64, author: u64) -> InboxEntry {
    InboxEntry {
        post: PostId(post),
        author: UserId(author),
    }
}

/// The newest 64 entries of `owner`'s inbox.
fn inbox_of<B: Backend>(b: &B, owner: u64) -> Vec<InboxEntry> {
    let mut out = Vec::new();
    ok::<B, _>(b.inbox(UserId(owner), None, 64, &mut out), "inbox");
    out
}

/// [`Backend::apply_bulk_inbox`] stores what the same inbox puts would: in
/// any order, the later of two for one (owner, post) winning; loading the
/// same entries again changes nothing; a delete or trim applied after a
/// load removes what it loaded, and a load after a delete stores again.
pub fn bulk_inbox_is_inbox_puts<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    let e = entry;
    let inbox = inbox_of::<B>;
    ok::<B, _>(b.apply_bulk_inbox(&[]), "an empty load");
    same::<B, _>(inbox(&b, 7), vec![], "after an empty load");
    // Out of order, with one key twice.
    let mixed = [
        (UserId(8), e(5, 1)),
        (UserId(7), e(13, 2)),
        (UserId(7), e(21, 3)),
        (UserId(7), e(13, 4)),
        (UserId(9), e(1, 1)),
    ];
    ok::<B, _>(b.apply_bulk_inbox(&mixed), "a load out of order");
    same::<B, _>(inbox(&b, 7), vec![e(21, 3), e(13, 4)], "the later wins");
    same::<B, _>(inbox(&b, 8), vec![e(5, 1)], "owner 8");
    same::<B, _>(inbox(&b, 9), vec![e(1, 1)], "owner 9");
    // A fan-out page: one post to owners in id order; then again.
    let page: Vec<_> = (10..=40).map(|o| (UserId(o), e(50, 2))).collect();
    for round in ["a page", "the same page again"] {
        ok::<B, _>(b.apply_bulk_inbox(&page), round);
        for o in 10..=40 {
            same::<B, _>(inbox(&b, o), vec![e(50, 2)], round);
        }
    }
    apply(
        &b,
        &[
            Mutation::InboxDelete {
                owner: UserId(10),
                post: PostId(50),
            },
            Mutation::InboxTrim {
                owner: UserId(7),
                through: PostId(21),
            },
            Mutation::InboxPut {
                owner: UserId(11),
                entry: e(50, 9),
            },
        ],
        "a delete, a trim and a put after a load",
    );
    same::<B, _>(inbox(&b, 10), vec![], "deleted after the load");
    same::<B, _>(inbox(&b, 7), vec![], "trimmed after the load");
    same::<B, _>(inbox(&b, 11), vec![e(50, 9)], "put after the load");
    same::<B, _>(inbox(&b, 12), vec![e(50, 2)], "untouched");
    ok::<B, _>(
        b.apply_bulk_inbox(&[(UserId(10), e(50, 2)), (UserId(11), e(50, 2))]),
        "a load after a delete and a put",
    );
    same::<B, _>(inbox(&b, 10), vec![e(50, 2)], "loaded after the delete");
    same::<B, _>(inbox(&b, 11), vec![e(50, 2)], "loaded after the put");
}

/// A bulk load in parts ([`Backend::bulk_inbox_load`]) stores at its
/// finish what the same parts loaded one by one would: pages in key order,
/// then a part out of order whose later entries win; a load dropped
/// unfinished and done again stores each entry once; a delete after the
/// finish removes what it loaded.
pub fn a_bulk_load_in_parts_is_inbox_puts<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    let e = entry;
    let inbox = inbox_of::<B>;
    let page = |owners: std::ops::RangeInclusive<u64>, post: u64| -> Vec<_> {
        owners.map(|o| (UserId(o), e(post, 2))).collect()
    };
    let empty = ok::<B, _>(b.bulk_inbox_load(), "an empty load");
    ok::<B, _>(empty.finish(), "an empty load's finish");
    // Dropped unfinished, then done again whole.
    let mut dropped = ok::<B, _>(b.bulk_inbox_load(), "a load");
    ok::<B, _>(dropped.add(&page(1..=20, 40)), "a part");
    drop(dropped);
    let mut load = ok::<B, _>(b.bulk_inbox_load(), "a load");
    for part in [page(1..=20, 40), page(21..=40, 40), page(41..=45, 40)] {
        ok::<B, _>(load.add(&part), "a page");
    }
    // Out of order: owner 7's entry and a new post for owner 3, twice.
    ok::<B, _>(
        load.add(&[
            (UserId(7), e(40, 9)),
            (UserId(3), e(41, 5)),
            (UserId(3), e(41, 6)),
        ]),
        "a part out of order",
    );
    ok::<B, _>(load.finish(), "the finish");
    for o in (1..=45).filter(|&o| o != 3 && o != 7) {
        same::<B, _>(inbox(&b, o), vec![e(40, 2)], "each page's owner once");
    }
    same::<B, _>(inbox(&b, 7), vec![e(40, 9)], "the later part wins");
    same::<B, _>(
        inbox(&b, 3),
        vec![e(41, 6), e(40, 2)],
        "the later entry wins",
    );
    apply(
        &b,
        &[Mutation::InboxDelete {
            owner: UserId(21),
            post: PostId(40),
        }],
        "a delete after the load",
    );
    same::<B, _>(inbox(&b, 21), vec![], "deleted after the load");
}

/// Last reads page in user order, the latest write winning.
pub fn last_reads_page_in_user_order<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    let mut batch: Vec<_> = IDS
        .iter()
        .rev()
        .map(|&u| Mutation::SetLastRead {
            user: UserId(u),
            at_ms: 1,
        })
        .collect();
    batch.extend(IDS.iter().map(|&u| Mutation::SetLastRead {
        user: UserId(u),
        at_ms: 1_000 * u,
    }));
    apply(&b, &batch, "apply");
    let want: Vec<(UserId, u64)> = IDS.iter().map(|&u| (UserId(u), 1_000 * u)).collect();
    pages::<B, _, _>(
        "last_reads",
        &want,
        |after, limit, out| b.last_reads(after, limit, out),
        |r| r.0,
    );
}

/// Links read back one by one and page in `to` order under one
/// `(kind, from)`, never mixing kinds or `from`s; putting twice keeps one
/// link with the latest value, and deleting (twice) removes it.
pub fn links_put_delete_and_page<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    let kind = LinkKind::Members;
    let mut batch: Vec<_> = IDS.iter().map(|&to| link(kind, 5, to, 1)).collect();
    batch.extend(IDS.iter().map(|&to| link(kind, 5, to, to * 10)));
    // Neighbours: other `from`s, other kinds, the extreme `to`s.
    batch.push(link(kind, 4, u64::MAX, 1));
    batch.push(link(kind, 6, 0, 1));
    batch.push(link(LinkKind::OwnerGroups, 5, 3, 1));
    batch.push(link(LinkKind::Mutes, 5, 3, 1));
    apply(&b, &batch, "apply");
    let want: Vec<(u64, u64)> = IDS.iter().map(|&to| (to, to * 10)).collect();
    pages::<B, _, _>(
        "links",
        &want,
        |after, limit, out| b.links(kind, 5, after, limit, out),
        |l| l.0,
    );
    same::<B, _>(
        ok::<B, _>(b.link(kind, 5, 13), "link"),
        Some(130),
        "link, latest value",
    );
    same::<B, _>(ok::<B, _>(b.link(kind, 5, 4), "link"), None, "absent link");
    let delete = Mutation::DeleteLink {
        kind,
        from: 5,
        to: 13,
    };
    apply(&b, &[delete.clone(), delete], "delete twice");
    same::<B, _>(ok::<B, _>(b.link(kind, 5, 13), "link"), None, "deleted");
    let rest: Vec<(u64, u64)> = want.into_iter().filter(|l| l.0 != 13).collect();
    pages::<B, _, _>(
        "links after a deletion",
        &rest,
        |after, limit, out| b.links(kind, 5, after, limit, out),
        |l| l.0,
    );
    let mut top = Vec::new();
    ok::<B, _>(b.links(kind, 4, None, 10, &mut top), "links");
    same::<B, _>(top, vec![(u64::MAX, 1)], "a link at the largest id");
    let mut none = Vec::new();
    ok::<B, _>(
        b.links(kind, 4, Some(u64::MAX), 10, &mut none),
        "links after the largest id",
    );
    same::<B, _>(none, Vec::new(), "links after the largest id");
}

/// Every link kind is a set of its own (the same `(from, to)` under each
/// kind holds each kind's value), and a post record keeps its like count
/// as a like or unlike rewrites it, a tombstone included.
pub fn link_kinds_are_apart_and_like_counts_are_kept<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    let batch: Vec<_> = LinkKind::ALL
        .iter()
        .map(|&kind| link(kind, 5, !7, kind as u64))
        .collect();
    apply(&b, &batch, "a link of every kind");
    for kind in LinkKind::ALL {
        same::<B, _>(
            ok::<B, _>(b.link(kind, 5, !7), "link"),
            Some(kind as u64),
            &format!("the {kind:?} link"),
        );
        let mut listed = Vec::new();
        ok::<B, _>(b.links(kind, 5, None, 10, &mut listed), "links");
        same::<B, _>(listed, vec![(!7, kind as u64)], &format!("{kind:?} links"));
    }
    apply(
        &b,
        &[Mutation::DeleteLink {
            kind: LinkKind::Likes,
            from: 5,
            to: !7,
        }],
        "unlike",
    );
    same::<B, _>(
        ok::<B, _>(b.link(LinkKind::LikedBy, 5, !7), "link"),
        Some(LinkKind::LikedBy as u64),
        "another kind after a deletion",
    );
    let liked = Post {
        likes: 3,
        ..post(9, 1)
    };
    apply(&b, &[Mutation::PutPost(liked.clone())], "a liked post");
    let read = |op: &str| {
        let mut got = Vec::new();
        ok::<B, _>(b.posts(&[PostId(9)], &mut got), op);
        got
    };
    same::<B, _>(read("posts"), vec![Some(liked.clone())], "like count");
    for likes in [u64::MAX, 0, 1] {
        let again = Post {
            likes,
            ..liked.clone()
        };
        apply(&b, &[Mutation::PutPost(again.clone())], "rewritten");
        same::<B, _>(read("posts"), vec![Some(again)], "like count rewritten");
    }
    let tombstone = Post { likes: 2, ..liked }.tombstone();
    apply(&b, &[Mutation::PutPost(tombstone.clone())], "deleted");
    same::<B, _>(
        read("posts"),
        vec![Some(tombstone)],
        "a tombstone's like count",
    );
}

/// Jobs read back, advance by being put again, page in post order, and go
/// when deleted.
pub fn jobs_put_advance_delete_and_page<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    let job = |post: u64, cursor: Option<u64>| FanoutJob {
        post: PostId(post),
        author: UserId(post % 4),
        kind: if post.is_multiple_of(2) {
            JobKind::Deliver
        } else {
            JobKind::Retract
        },
        cursor: cursor.map(UserId),
    };
    let batch: Vec<_> = IDS
        .iter()
        .rev()
        .map(|&p| Mutation::PutJob(job(p, None)))
        .collect();
    apply(&b, &batch, "apply");
    same::<B, _>(
        ok::<B, _>(b.job(PostId(13)), "job"),
        Some(job(13, None)),
        "job",
    );
    apply(&b, &[Mutation::PutJob(job(13, Some(99)))], "advance");
    same::<B, _>(
        ok::<B, _>(b.job(PostId(13)), "job"),
        Some(job(13, Some(99))),
        "advanced job",
    );
    apply(&b, &[Mutation::DeleteJob(PostId(21))], "delete");
    same::<B, _>(ok::<B, _>(b.job(PostId(21)), "job"), None, "deleted job");
    let want: Vec<FanoutJob> = IDS
        .iter()
        .filter(|&&p| p != 21)
        .map(|&p| job(p, (p == 13).then_some(99)))
        .collect();
    pages::<B, _, _>(
        "jobs",
        &want,
        |after, limit, out| b.jobs(after, limit, out),
        |j| j.post,
    );
}

/// Groups read back and go when deleted; the largest id is known.
pub fn groups_put_and_delete<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    same::<B, _>(
        ok::<B, _>(b.last_group_id(), "last_group_id"),
        None,
        "empty",
    );
    let group = |id: u64| Group {
        id: GroupId(id),
        owner: UserId(id + 1),
        name: format!("group {id}"),
    };
    let batch: Vec<_> = IDS.iter().map(|&g| Mutation::PutGroup(group(g))).collect();
    apply(&b, &batch, "apply");
    same::<B, _>(
        ok::<B, _>(b.group(GroupId(8)), "group"),
        Some(group(8)),
        "group",
    );
    same::<B, _>(
        ok::<B, _>(b.last_group_id(), "last_group_id"),
        Some(GroupId(34)),
        "last_group_id",
    );
    apply(&b, &[Mutation::DeleteGroup(GroupId(8))], "delete");
    same::<B, _>(ok::<B, _>(b.group(GroupId(8)), "group"), None, "deleted");
}

/// Profiles and avatars read back and avatars go when deleted; a phone is
/// linked both ways, moves with its replacement, and unlinks both ways.
pub fn profiles_avatars_and_phones<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    let direct = Mutation::Direct;
    apply(
        &b,
        &[
            direct(DirectMutation::PutProfile {
                user: UserId(1),
                profile: profile(),
            }),
            direct(DirectMutation::PutAvatar {
                user: UserId(1),
                avatar: avatar(),
            }),
            direct(DirectMutation::LinkPhone {
                user: UserId(1),
                phone: phone("+15555550001"),
                replaces: None,
            }),
        ],
        "apply",
    );
    same::<B, _>(
        ok::<B, _>(b.profile(UserId(1)), "profile"),
        Some(profile()),
        "profile",
    );
    same::<B, _>(
        ok::<B, _>(b.profile(UserId(2)), "profile"),
        None,
        "no profile",
    );
    same::<B, _>(
        ok::<B, _>(b.avatar(UserId(1)), "avatar"),
        Some(avatar()),
        "avatar",
    );
    same::<B, _>(
        ok::<B, _>(b.phone_of(UserId(1)), "phone_of"),
        Some(phone("+15555550001")),
        "phone_of",
    );
    apply(
        &b,
        &[
            direct(DirectMutation::DeleteAvatar(UserId(1))),
            direct(DirectMutation::LinkPhone {
                user: UserId(1),
                phone: phone("+15555550009"),
                replaces: Some(phone("+15555550001")),
            }),
        ],
        "apply",
    );
    same::<B, _>(
        ok::<B, _>(b.avatar(UserId(1)), "avatar"),
        None,
        "deleted avatar",
    );
    same::<B, _>(
        ok::<B, _>(b.user_by_phone(&phone("+15555550001")), "user_by_phone"),
        None,
        "a replaced phone",
    );
    same::<B, _>(
        ok::<B, _>(b.user_by_phone(&phone("+15555550009")), "user_by_phone"),
        Some(UserId(1)),
        "the new phone",
    );
    apply(
        &b,
        &[direct(DirectMutation::UnlinkPhone {
            user: UserId(1),
            phone: phone("+15555550009"),
        })],
        "apply",
    );
    same::<B, _>(
        ok::<B, _>(b.phone_of(UserId(1)), "phone_of"),
        None,
        "unlinked",
    );
    same::<B, _>(
        ok::<B, _>(b.user_by_phone(&phone("+15555550009")), "user_by_phone"),
        None,
        "unlinked",
    );
}

/// The messages between two users page newest first, whichever of the two
/// asks, without those of other pairs; the largest message id is known
/// even when messages are stored out of id order.
pub fn messages_page_newest_first<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    same::<B, _>(
        ok::<B, _>(b.last_message_id(), "last_message_id"),
        None,
        "empty",
    );
    let mut all: Vec<DirectMessage> = IDS
        .iter()
        .map(|&id| {
            if id.is_multiple_of(2) {
                message(id, 3, 9)
            } else {
                message(id, 9, 3)
            }
        })
        .collect();
    // Out of id order: concurrent senders store in any order.
    all.swap(0, 6);
    let mut batch: Vec<_> = all
        .iter()
        .map(|m| Mutation::Direct(DirectMutation::PutMessage(m.clone())))
        .collect();
    batch.push(Mutation::Direct(DirectMutation::PutMessage(message(
        4, 3, 10,
    ))));
    batch.push(Mutation::Direct(DirectMutation::PutMessage(message(
        6, 2, 9,
    ))));
    for m in batch {
        apply(&b, &[m], "one message");
    }
    all.sort_by_key(|m| std::cmp::Reverse(m.id));
    for (a, c) in [(3, 9), (9, 3)] {
        pages::<B, _, _>(
            "messages",
            &all,
            |before, limit, out| b.messages(UserId(a), UserId(c), before, limit, out),
            |m| m.id,
        );
    }
    same::<B, _>(
        ok::<B, _>(b.last_message_id(), "last_message_id"),
        Some(PostId(34)),
        "last_message_id is the largest id stored",
    );
}

/// A user's conversations page newest last message first, each moving to
/// the head when its summary is replaced.
pub fn conversations_page_newest_first<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    let summary = |with: u64, last: u64| Conversation {
        with: UserId(with),
        last: PostId(last),
        unread: with,
    };
    let put = |owner: u64, s: Conversation, replaces: Option<u64>| {
        Mutation::Direct(DirectMutation::PutConversation {
            owner: UserId(owner),
            summary: s,
            replaces: replaces.map(PostId),
        })
    };
    // Partner i's last message is IDS[i] * 10.
    let mut batch: Vec<_> = IDS
        .iter()
        .enumerate()
        .map(|(i, &last)| put(5, summary(i as u64 + 20, last * 10), None))
        .collect();
    batch.push(put(4, summary(1, 1_000), None));
    batch.push(put(6, summary(1, 1_000), None));
    apply(&b, &batch, "apply");
    let mut want: Vec<Conversation> = IDS
        .iter()
        .enumerate()
        .rev()
        .map(|(i, &last)| summary(i as u64 + 20, last * 10))
        .collect();
    pages::<B, _, _>(
        "conversations",
        &want,
        |before, limit, out| b.conversations(UserId(5), before, limit, out),
        |c| c.last,
    );
    // Partner 20 (the oldest) writes again: its conversation moves first.
    apply(&b, &[put(5, summary(20, 500), Some(20))], "a new message");
    want.pop();
    want.insert(0, summary(20, 500));
    pages::<B, _, _>(
        "conversations after a new message",
        &want,
        |before, limit, out| b.conversations(UserId(5), before, limit, out),
        |c| c.last,
    );
    same::<B, _>(
        ok::<B, _>(b.conversation(UserId(5), UserId(20)), "conversation"),
        Some(summary(20, 500)),
        "conversation",
    );
}

/// A followee's device subscribers page in id order up to `through`; a
/// subscription goes when turned off.
pub fn device_subs_page_in_id_order<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    let sub = |followee: u64, follower: u64, on: Toggle| {
        Mutation::Direct(DirectMutation::SetDeviceSub {
            followee: UserId(followee),
            follower: UserId(follower),
            on,
        })
    };
    let mut batch: Vec<_> = IDS.iter().map(|&f| sub(7, f, Toggle::On)).collect();
    batch.push(sub(6, 1, Toggle::On));
    batch.push(sub(8, 1, Toggle::On));
    batch.push(sub(7, 40, Toggle::On));
    batch.push(sub(7, 40, Toggle::Off));
    apply(&b, &batch, "apply");
    let want: Vec<UserId> = IDS.iter().map(|&f| UserId(f)).collect();
    for through in [34, 35, u64::MAX] {
        pages::<B, _, _>(
            "device_subs",
            &want,
            |after, limit, out| b.device_subs(UserId(7), after, UserId(through), limit, out),
            |u| *u,
        );
    }
    let upto: Vec<UserId> = want.iter().copied().filter(|u| u.0 <= 13).collect();
    pages::<B, _, _>(
        "device_subs through 13",
        &upto,
        |after, limit, out| b.device_subs(UserId(7), after, UserId(13), limit, out),
        |u| *u,
    );
    let mut none = Vec::new();
    ok::<B, _>(
        b.device_subs(UserId(7), Some(UserId(20)), UserId(10), 10, &mut none),
        "device_subs after `through`",
    );
    same::<B, _>(none, Vec::new(), "device_subs after `through`");
    same::<B, _>(
        ok::<B, _>(b.device_sub(UserId(7), UserId(40)), "device_sub"),
        false,
        "a subscription turned off",
    );
    same::<B, _>(
        ok::<B, _>(b.device_sub(UserId(7), UserId(8)), "device_sub"),
        true,
        "a subscription",
    );
}

/// Queued deliveries come due in lease order (never-leased ones first,
/// then by lease end, then by id), a leased one only once its lease ends;
/// an acknowledged one is gone.
pub fn outbox_leases_in_order_and_acks<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    let direct = Mutation::Direct;
    let queued: Vec<DeviceDelivery> = IDS.iter().map(|&p| delivery(p, 40 - p, 0)).collect();
    let batch: Vec<_> = queued
        .iter()
        .rev()
        .map(|d| direct(DirectMutation::QueueDelivery(d.clone())))
        .collect();
    apply(&b, &batch, "queue");
    let due = |now: u64, limit: usize| {
        let mut out = Vec::new();
        ok::<B, _>(b.due_deliveries(now, limit, &mut out), "due_deliveries");
        out
    };
    same::<B, _>(due(0, 64), queued.clone(), "never leased, in id order");
    same::<B, _>(due(0, 3), queued[..3].to_vec(), "limit");
    same::<B, _>(due(0, 0), Vec::new(), "limit 0");
    // Lease the first three until 500, 300 and 300.
    let ends = [500, 300, 300];
    let mut leased = Vec::new();
    for (d, end) in queued.iter().zip(ends) {
        let mut l = d.clone();
        l.leased_until_ms = end;
        leased.push(l.clone());
        apply(
            &b,
            &[direct(DirectMutation::LeaseDelivery {
                delivery: l,
                from_ms: 0,
            })],
            "lease",
        );
    }
    same::<B, _>(
        due(299, 64),
        queued[3..].to_vec(),
        "leased ones are not due",
    );
    let mut at_300 = queued[3..].to_vec();
    at_300.extend([leased[1].clone(), leased[2].clone()]);
    same::<B, _>(due(300, 64), at_300.clone(), "due at the lease end");
    let mut at_500 = at_300;
    at_500.push(leased[0].clone());
    same::<B, _>(due(u64::MAX, 64), at_500, "every lease ended");
    same::<B, _>(
        ok::<B, _>(b.delivery(leased[0].id), "delivery"),
        Some(leased[0].clone()),
        "a leased delivery",
    );
    apply(
        &b,
        &[
            direct(DirectMutation::AckDelivery {
                id: leased[1].id,
                leased_until_ms: 300,
            }),
            direct(DirectMutation::AckDelivery {
                id: queued[4].id,
                leased_until_ms: 0,
            }),
        ],
        "ack",
    );
    same::<B, _>(
        ok::<B, _>(b.delivery(leased[1].id), "delivery"),
        None,
        "acknowledged",
    );
    let mut left = vec![queued[3].clone()];
    left.extend(queued[5..].iter().cloned());
    left.push(leased[2].clone());
    left.push(leased[0].clone());
    same::<B, _>(due(u64::MAX, 64), left, "after acknowledgements");
}

/// Pending phone links read back by user and by number (only that
/// number's, in user order, whatever numbers share its digits); replacing
/// a user's link moves it between numbers; deleting removes both ways.
pub fn phone_claims_by_user_and_number<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    let put = |c: PhoneClaim, replaces: Option<&str>| {
        Mutation::Direct(DirectMutation::PutPhoneClaim {
            claim: c,
            replaces: replaces.map(phone),
        })
    };
    let by_number = |number: &str| {
        let mut out = Vec::new();
        ok::<B, _>(b.phone_claims(&phone(number), &mut out), "phone_claims");
        out
    };
    // Numbers that are prefixes of each other must not mix.
    let (short, long) = ("+15555550", "+155555501");
    apply(
        &b,
        &[
            put(claim(7, short, 1), None),
            put(claim(3, short, 2), None),
            put(claim(5, long, 3), None),
        ],
        "put",
    );
    same::<B, _>(
        by_number(short),
        vec![claim(3, short, 2), claim(7, short, 1)],
        "claims of a number, in user order",
    );
    same::<B, _>(by_number(long), vec![claim(5, long, 3)], "a longer number");
    same::<B, _>(by_number("+15555559"), Vec::new(), "a number never claimed");
    same::<B, _>(
        ok::<B, _>(b.phone_claim(UserId(7)), "phone_claim"),
        Some(claim(7, short, 1)),
        "a user's claim",
    );
    same::<B, _>(
        ok::<B, _>(b.phone_claim(UserId(8)), "phone_claim"),
        None,
        "no claim",
    );
    // User 7 claims the longer number instead; user 3's claim goes.
    apply(
        &b,
        &[
            put(claim(7, long, 4), Some(short)),
            Mutation::Direct(DirectMutation::DeletePhoneClaim {
                user: UserId(3),
                phone: phone(short),
            }),
        ],
        "replace and delete",
    );
    same::<B, _>(by_number(short), Vec::new(), "the old number");
    same::<B, _>(
        by_number(long),
        vec![claim(5, long, 3), claim(7, long, 4)],
        "the new number",
    );
    same::<B, _>(
        ok::<B, _>(b.phone_claim(UserId(7)), "phone_claim"),
        Some(claim(7, long, 4)),
        "the replacing claim",
    );
    same::<B, _>(
        ok::<B, _>(b.phone_claim(UserId(3)), "phone_claim"),
        None,
        "a deleted claim",
    );
    // A claim re-stored for the same number (fewer attempts left).
    let mut fewer = claim(5, long, 3);
    fewer.attempts_left = 1;
    apply(&b, &[put(fewer.clone(), Some(long))], "re-store");
    same::<B, _>(
        by_number(long),
        vec![fewer, claim(7, long, 4)],
        "a re-stored claim",
    );
}

/// Device usage is kept per user and day, zero when never written.
pub fn device_usage_per_day<B: Backend>(new: &mut dyn FnMut() -> B) {
    let b = new();
    let usage = |sent: u64| DeviceUsage { sent, over_cap: 1 };
    let set = |user: u64, day: u32, u: DeviceUsage| {
        Mutation::Direct(DirectMutation::SetDeviceUsage {
            user: UserId(user),
            day,
            usage: u,
        })
    };
    apply(
        &b,
        &[
            set(1, 100, usage(3)),
            set(1, 101, usage(5)),
            set(1, 100, usage(4)),
        ],
        "apply",
    );
    same::<B, _>(
        ok::<B, _>(b.device_usage(UserId(1), 100), "device_usage"),
        usage(4),
        "the latest write",
    );
    same::<B, _>(
        ok::<B, _>(b.device_usage(UserId(1), 101), "device_usage"),
        usage(5),
        "another day",
    );
    same::<B, _>(
        ok::<B, _>(b.device_usage(UserId(2), 100), "device_usage"),
        DeviceUsage::default(),
        "never written",
    );
}

/// Change records page in position order after any position; a trim
/// removes every record at or below its position (none above) and raises
/// the floor, which a lower trim leaves alone; the largest position is
/// known, and stays known when only the floor is left.
pub fn changes_page_in_position_order_and_trim_raises_the_floor<B: Backend>(
    new: &mut dyn FnMut() -> B,
) {
    let b = new();
    same::<B, _>(ok::<B, _>(b.change_floor(), "change_floor"), 0, "empty");
    same::<B, _>(
        ok::<B, _>(b.last_change_position(), "last_change_position"),
        0,
        "empty",
    );
    let kinds = |i: u64| match i % 8 {
        0 => Change::Posted {
            post: PostId(i),
            author: UserId(i + 1),
        },
        1 => Change::Deleted {
            post: PostId(i),
            author: UserId(i + 1),
        },
        2 => Change::Followed {
            follower: UserId(i),
            followee: UserId(i + 1),
        },
        3 => Change::Unfollowed {
            follower: UserId(i),
            followee: UserId(i + 1),
        },
        4 => Change::Liked {
            user: UserId(i),
            post: PostId(i + 1),
        },
        5 => Change::Unliked {
            user: UserId(i),
            post: PostId(i + 1),
        },
        6 => Change::ProfileChanged { user: UserId(i) },
        _ => Change::AvatarChanged { user: UserId(i) },
    };
    // Big positions too: a position is milliseconds shifted left.
    let positions: Vec<u64> = IDS
        .iter()
        .copied()
        .chain([1 << 61, (1 << 61) + 1, u64::MAX - 1])
        .collect();
    // Stored out of order, in two batches.
    let records: Vec<ChangeRecord> = positions
        .iter()
        .map(|&position| ChangeRecord {
            position,
            change: kinds(position),
        })
        .collect();
    let put = |r: &ChangeRecord| Mutation::PutChange(*r);
    apply(
        &b,
        &records.iter().rev().step_by(2).map(put).collect::<Vec<_>>(),
        "apply",
    );
    apply(
        &b,
        &records
            .iter()
            .rev()
            .skip(1)
            .step_by(2)
            .map(put)
            .collect::<Vec<_>>(),
        "apply",
    );
    let read = |b: &B, after: Option<u64>, limit: usize, out: &mut Vec<ChangeRecord>| {
        b.changes_after(after.unwrap_or(0), limit, out)
    };
    pages::<B, _, _>(
        "changes_after",
        &records,
        |a, l, o| read(&b, a, l, o),
        |r| r.position,
    );
    let mut after_last = Vec::new();
    ok::<B, _>(
        b.changes_after(u64::MAX, 8, &mut after_last),
        "changes_after",
    );
    same::<B, _>(after_last, Vec::new(), "nothing after the last position");
    same::<B, _>(
        ok::<B, _>(b.last_change_position(), "last_change_position"),
        u64::MAX - 1,
        "largest position",
    );
    apply(
        &b,
        &[Mutation::TrimChanges { through: 8 }],
        "trim through 8",
    );
    same::<B, _>(ok::<B, _>(b.change_floor(), "change_floor"), 8, "floor");
    pages::<B, _, _>(
        "changes_after a trim",
        &records[4..],
        |a, l, o| read(&b, a, l, o),
        |r| r.position,
    );
    apply(&b, &[Mutation::TrimChanges { through: 3 }], "a lower trim");
    same::<B, _>(
        ok::<B, _>(b.change_floor(), "change_floor"),
        8,
        "a lower trim keeps the floor",
    );
    apply(
        &b,
        &[Mutation::TrimChanges { through: 1 << 61 }],
        "trim through a big position",
    );
    pages::<B, _, _>(
        "changes_after a second trim",
        &records[8..],
        |a, l, o| read(&b, a, l, o),
        |r| r.position,
    );
    apply(
        &b,
        &[Mutation::TrimChanges { through: u64::MAX }],
        "trim everything",
    );
    let mut none = Vec::new();
    ok::<B, _>(b.changes_after(0, 8, &mut none), "changes_after");
    same::<B, _>(none, Vec::new(), "nothing after trimming everything");
    same::<B, _>(
        ok::<B, _>(b.change_floor(), "change_floor"),
        u64::MAX,
        "floor at the end",
    );
    same::<B, _>(
        ok::<B, _>(b.last_change_position(), "last_change_position"),
        0,
        "no record left",
    );
}
