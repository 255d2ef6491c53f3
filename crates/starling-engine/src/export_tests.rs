//! Tests of [`Engine::export`] over the in-memory backend: the document
//! parsed back and compared, list by list, with what the engine's readers
//! return; lists longer than a page; an unknown user; a failing writer.

use std::io::Write;

use serde_json::Value;
use starling_core::{
    Config, Cursor, DmPolicy, Durability, Error, ErrorKind, MAX_PAGE_SIZE, PostId, UserId,
};
use starling_memstore::MemBackend;

use crate::{EXPORT_FORMAT, Engine, ExportSummary};

type Mem = Engine<MemBackend>;

fn engine() -> Mem {
    let config = Config {
        durability: Durability::Buffered,
        fanout_workers: 1,
        ..Config::default()
    };
    Engine::with_backend(MemBackend::new(), config).expect("engine starts")
}

fn export(engine: &Mem, user: UserId) -> (Value, ExportSummary) {
    let mut out = Vec::new();
    let summary = engine.export(user, &mut out).expect("export");
    assert_eq!(summary.bytes, out.len() as u64, "the summary counts bytes");
    let doc = serde_json::from_slice(&out).expect("the export is JSON");
    (doc, summary)
}

fn id(v: &Value) -> u64 {
    v.as_u64().expect("a numeric id")
}

fn post_id(v: &Value) -> PostId {
    PostId(
        v.as_str()
            .expect("a post id string")
            .parse()
            .expect("digits"),
    )
}

/// The ids of a list of accounts, checking each one's username.
fn accounts(engine: &Mem, list: &Value) -> Vec<UserId> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|a| {
            let user = UserId(id(&a["id"]));
            let name = engine.user(user).expect("user").name;
            assert_eq!(a["username"], name.as_str());
            user
        })
        .collect()
}

/// Every account of a paged reader.
fn all_users(
    mut read: impl FnMut(Option<&Cursor>) -> starling_core::Result<crate::users::UserPage>,
) -> Vec<UserId> {
    let (mut all, mut cursor) = (Vec::new(), None::<Cursor>);
    loop {
        let page = read(cursor.as_ref()).expect("page");
        all.extend(page.users);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
}

#[test]
fn export_holds_what_the_readers_return() {
    let e = engine();
    let [ada, bob, carol, dave, eve, gina] =
        ["ada", "bob", "carol", "dave", "eve", "gina"].map(|n| e.create_user(n).expect("user").id);
    e.set_profile(ada, "Ada \"the\" Countess", "line one\nline two \\ ✓")
        .expect("profile");
    e.follow(ada, bob).expect("follow");
    e.follow(bob, ada).expect("follow");
    e.follow(carol, ada).expect("follow");
    let tricky = "quotes \" backslash \\ new\nline, 🦀 and </script>";
    let first = e.post(ada, tricky).expect("post");
    let bobs = e.post(bob, "bob's post").expect("post");
    let reply = e.reply(ada, bobs.id, "a reply").expect("reply");
    let repost = e.repost(ada, bobs.id).expect("repost");
    let group = e.create_group(ada, "close \"friends\"").expect("group");
    e.add_member(ada, group.id, bob).expect("member");
    let to_group = e
        .post_to_group(ada, group.id, "for the group")
        .expect("group post");
    let deleted = e.post(ada, "gone soon").expect("post");
    e.delete_post(ada, deleted.id).expect("delete");
    e.like(ada, bobs.id).expect("like");
    let carols = e.post(carol, "carol's post").expect("post");
    e.like(ada, carols.id).expect("like");
    e.delete_post(carol, carols.id).expect("delete");
    e.send_direct(ada, bob, "hi \"bob\"").expect("dm");
    e.send_direct(bob, ada, "hi ada").expect("dm");
    e.set_dm_policy(ada, DmPolicy::Open).expect("open");
    e.send_direct(carol, ada, "from carol").expect("dm");
    e.protect(dave).expect("protect");
    e.request_follow(ada, dave).expect("request");
    e.protect(ada).expect("protect");
    e.request_follow(gina, ada).expect("request");
    e.block(ada, eve).expect("block");
    let carols_group = e.create_group(carol, "carol's").expect("group");
    e.add_member(carol, carols_group.id, ada).expect("member");
    let bobs_group = e.create_group(bob, "bob's").expect("group");
    e.add_member(bob, bobs_group.id, ada).expect("member");
    e.add_member(bob, bobs_group.id, carol).expect("member");
    let gone = e.create_group(bob, "gone").expect("group");
    e.add_member(bob, gone.id, ada).expect("member");
    e.delete_group(bob, gone.id).expect("delete group");
    e.mute(ada, carol).expect("mute");
    e.wait_for_fanout().expect("fan-out");

    let (doc, summary) = export(&e, ada);
    assert_eq!(doc["format"], EXPORT_FORMAT);
    let me = &doc["user"];
    let record = e.user(ada).expect("user");
    assert_eq!(id(&me["id"]), ada.0);
    assert_eq!(me["username"], "ada");
    assert_eq!(id(&me["created_at_ms"]), record.created_at_ms);
    assert_eq!(me["display_name"], "Ada \"the\" Countess");
    assert_eq!(me["bio"], "line one\nline two \\ ✓");
    assert_eq!(me["protected"], true);

    // Posts: as the user's own author timeline has them, newest first.
    let timeline = e
        .author_timeline_as(ada, ada, None, MAX_PAGE_SIZE)
        .expect("timeline");
    let posts = doc["posts"].as_array().expect("posts");
    assert_eq!(posts.len(), timeline.posts.len());
    assert_eq!(
        timeline.posts.iter().map(|p| p.id).collect::<Vec<_>>(),
        [to_group.id, repost.id, reply.id, first.id],
        "the deleted post is gone"
    );
    for (json, post) in posts.iter().zip(&timeline.posts) {
        assert_eq!(post_id(&json["id"]), post.id);
        assert_eq!(json["text"], post.text.as_str());
        assert_eq!(id(&json["created_at_ms"]), post.id.unix_millis());
        assert_eq!(id(&json["likes"]), post.likes);
    }
    assert_eq!(posts[3]["text"], tricky);
    assert_eq!(id(&posts[0]["group"]), group.id.0);
    assert_eq!(posts[1]["group"], Value::Null);
    assert_eq!(post_id(&posts[1]["repost_of"]["id"]), bobs.id);
    assert_eq!(posts[1]["repost_of"]["text"], "bob's post");
    assert_eq!(id(&posts[1]["repost_of"]["author"]["id"]), bob.0);
    assert_eq!(post_id(&posts[2]["reply_to"]), bobs.id);
    assert_eq!(posts[3]["repost_of"], Value::Null);

    // Accounts, each list as its reader has it.
    assert_eq!(accounts(&e, &doc["following"]), [bob]);
    assert_eq!(
        accounts(&e, &doc["following"]),
        all_users(|c| e.following(ada, c, MAX_PAGE_SIZE))
    );
    assert_eq!(accounts(&e, &doc["followers"]), [bob, carol]);
    assert_eq!(
        accounts(&e, &doc["followers"]),
        all_users(|c| e.followers(ada, c, MAX_PAGE_SIZE))
    );
    assert_eq!(accounts(&e, &doc["follow_requests"]), [gina]);
    assert_eq!(accounts(&e, &doc["sent_follow_requests"]), [dave]);
    assert_eq!(accounts(&e, &doc["blocks"]), [eve]);
    assert_eq!(accounts(&e, &doc["mutes"]), [carol]);

    // Likes: the visible one with its author and text, the deleted one by
    // id alone; newest post first.
    let likes = doc["likes"].as_array().expect("likes");
    assert_eq!(likes.len(), 2);
    assert_eq!(post_id(&likes[0]["post"]["id"]), carols.id);
    assert_eq!(likes[0]["post"].get("text"), None);
    assert_eq!(post_id(&likes[1]["post"]["id"]), bobs.id);
    assert_eq!(likes[1]["post"]["text"], "bob's post");
    assert_eq!(id(&likes[1]["post"]["author"]["id"]), bob.0);
    assert_eq!(likes[1]["post"]["author"]["username"], "bob");
    assert!(id(&likes[1]["liked_at_ms"]) > 0);
    let visible = e.liked_posts(ada, ada, None, MAX_PAGE_SIZE).expect("likes");
    assert_eq!(
        visible.posts.iter().map(|p| p.id).collect::<Vec<_>>(),
        [bobs.id]
    );

    // Groups, with members.
    let groups = doc["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 1);
    assert_eq!(id(&groups[0]["id"]), group.id.0);
    assert_eq!(groups[0]["name"], "close \"friends\"");
    assert_eq!(accounts(&e, &groups[0]["members"]), [bob]);

    // The groups of others ada is in, in id order, with their owners;
    // not the one deleted.
    let member_of = doc["member_of"].as_array().expect("member_of");
    assert_eq!(member_of.len(), 2);
    assert_eq!(id(&member_of[0]["id"]), carols_group.id.0);
    assert_eq!(member_of[0]["name"], "carol's");
    assert_eq!(id(&member_of[0]["owner"]["id"]), carol.0);
    assert_eq!(member_of[0]["owner"]["username"], "carol");
    assert_eq!(id(&member_of[1]["id"]), bobs_group.id.0);
    let listed = e.member_groups(ada, None, 1).expect("member groups");
    assert_eq!(listed.groups, std::slice::from_ref(&carols_group));
    let rest = e
        .member_groups(ada, listed.next.as_ref(), 1)
        .expect("member groups");
    assert_eq!(rest.groups, std::slice::from_ref(&bobs_group));
    assert_eq!(rest.next, None);
    assert!(
        e.member_groups(carol, None, 10)
            .expect("member groups")
            .groups
            == [bobs_group.clone()]
    );

    // Conversations and messages, both ways, as the readers give them.
    let conversations = doc["conversations"].as_array().expect("conversations");
    let listed = e
        .conversations(ada, None, MAX_PAGE_SIZE)
        .expect("conversations");
    assert_eq!(conversations.len(), listed.conversations.len());
    assert_eq!(conversations.len(), 2);
    for (json, c) in conversations.iter().zip(&listed.conversations) {
        assert_eq!(id(&json["with"]["id"]), c.with.0);
        assert_eq!(id(&json["unread"]), c.unread);
        let messages = e
            .messages(ada, c.with, None, MAX_PAGE_SIZE)
            .expect("messages");
        let exported = json["messages"].as_array().expect("messages");
        assert_eq!(exported.len(), messages.messages.len());
        for (json, m) in exported.iter().zip(&messages.messages) {
            assert_eq!(post_id(&json["id"]), m.id);
            assert_eq!(id(&json["from"]), m.from.0);
            assert_eq!(id(&json["to"]), m.to.0);
            assert_eq!(json["text"], m.text.as_str());
            assert_eq!(id(&json["sent_at_ms"]), m.id.unix_millis());
        }
    }
    let with_bob = &conversations[1];
    assert_eq!(id(&with_bob["with"]["id"]), bob.0);
    assert_eq!(with_bob["messages"][0]["text"], "hi ada", "newest first");
    assert_eq!(with_bob["messages"][1]["text"], "hi \"bob\"");

    assert_eq!(
        summary,
        ExportSummary {
            posts: 4,
            following: 1,
            followers: 2,
            follow_requests: 1,
            sent_follow_requests: 1,
            blocks: 1,
            mutes: 1,
            likes: 2,
            groups: 1,
            member_of: 2,
            conversations: 2,
            messages: 3,
            bytes: summary.bytes,
        }
    );
}

#[test]
fn export_reads_every_page_of_long_lists() {
    let e = engine();
    let n = MAX_PAGE_SIZE + 7;
    let ada = e.create_user("ada").expect("user").id;
    let bob = e.create_user("bob").expect("user").id;
    let mut others = Vec::new();
    for i in 0..n {
        let u = e.create_user(&format!("f{i}")).expect("user").id;
        e.follow(u, ada).expect("follow");
        e.follow(ada, u).expect("follow");
        e.send_direct(u, ada, &format!("hello {i}")).expect("dm");
        others.push(u);
    }
    e.set_dm_policy(bob, DmPolicy::Open).expect("open");
    let group = e.create_group(ada, "all").expect("group");
    for &u in &others {
        e.add_member(ada, group.id, u).expect("member");
    }
    for i in 0..n {
        e.post(ada, &format!("post {i}")).expect("post");
        let theirs = e.post(bob, &format!("bob {i}")).expect("post");
        e.like(ada, theirs.id).expect("like");
        e.send_direct(ada, bob, &format!("to bob {i}")).expect("dm");
    }
    e.wait_for_fanout().expect("fan-out");

    let (doc, summary) = export(&e, ada);
    let posts = doc["posts"].as_array().expect("posts");
    assert_eq!(posts.len(), n);
    assert_eq!(posts[0]["text"], format!("post {}", n - 1), "newest first");
    assert_eq!(posts[n - 1]["text"], "post 0");
    assert_eq!(accounts(&e, &doc["followers"]), others);
    assert_eq!(accounts(&e, &doc["following"]), others);
    assert_eq!(accounts(&e, &doc["groups"][0]["members"]), others);
    let likes = doc["likes"].as_array().expect("likes");
    assert_eq!(likes.len(), n);
    assert_eq!(likes[0]["post"]["text"], format!("bob {}", n - 1));
    assert_eq!(likes[n - 1]["post"]["text"], "bob 0");
    let conversations = doc["conversations"].as_array().expect("conversations");
    assert_eq!(conversations.len(), n + 1);
    assert_eq!(id(&conversations[0]["with"]["id"]), bob.0, "newest first");
    let to_bob = conversations[0]["messages"].as_array().expect("messages");
    assert_eq!(to_bob.len(), n);
    assert_eq!(to_bob[0]["text"], format!("to bob {}", n - 1));
    assert_eq!(to_bob[n - 1]["text"], "to bob 0");
    assert_eq!(summary.posts, n as u64);
    assert_eq!(summary.likes, n as u64);
    assert_eq!(summary.conversations, n as u64 + 1);
    assert_eq!(summary.messages, 2 * n as u64);
}

#[test]
fn export_of_an_unknown_user_writes_nothing() {
    let e = engine();
    let mut out = Vec::new();
    let err = e.export(UserId(99), &mut out).expect_err("unknown");
    assert!(matches!(err, Error::UnknownUser(UserId(99))), "{err:?}");
    assert!(out.is_empty());
}

/// A writer that takes `room` bytes, then fails every write (or, with
/// `room` enough, fails the flush).
struct Failing {
    room: usize,
    taken: Vec<u8>,
    fail_flush: bool,
    calls: usize,
}

impl Failing {
    fn new(room: usize) -> Failing {
        Failing {
            room,
            taken: Vec::new(),
            fail_flush: false,
            calls: 0,
        }
    }
}

impl Write for Failing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.calls += 1;
        let n = buf.len().min(self.room - self.taken.len());
        if n == 0 && !buf.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the reader went away",
            ));
        }
        self.taken.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.fail_flush {
            return Err(std::io::Error::other("flush failed"));
        }
        Ok(())
    }
}

fn busy_account(e: &Mem) -> UserId {
    let ada = e.create_user("ada").expect("user").id;
    let bob = e.create_user("bob").expect("user").id;
    e.follow(bob, ada).expect("follow");
    for i in 0..300 {
        e.post(
            ada,
            &format!("a post long enough to fill the buffer, number {i}"),
        )
        .expect("post");
        e.send_direct(ada, bob, &format!("message {i}"))
            .expect("dm");
    }
    ada
}

#[test]
fn a_failing_writer_is_an_output_error() {
    let e = engine();
    let ada = busy_account(&e);
    let mut whole = Vec::new();
    let full = e.export(ada, &mut whole).expect("export").bytes as usize;
    for room in [0, 1, 100, 20_000, full - 1] {
        let mut out = Failing::new(room);
        let err = e.export(ada, &mut out).expect_err("the writer fails");
        assert!(matches!(err, Error::Output(_)), "{room}: {err:?}");
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(out.taken, whole[..room], "what was written is a prefix");
    }
    let mut out = Failing::new(full);
    out.fail_flush = true;
    let err = e.export(ada, &mut out).expect_err("the flush fails");
    assert!(matches!(err, Error::Output(_)), "{err:?}");
}

#[test]
fn output_reaches_the_writer_while_the_export_runs() {
    let e = engine();
    let ada = busy_account(&e);
    // The document goes out in buffer-sized writes as it is read, not
    // gathered whole and written once.
    let mut out = Failing::new(usize::MAX);
    let summary = e.export(ada, &mut out).expect("export");
    assert!(summary.bytes > 40_000, "{summary:?}");
    assert!(out.calls >= 3, "{} writes", out.calls);
}
