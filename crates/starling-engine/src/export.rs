//! Export: everything a user has in the store, as one JSON document
//! written to any [`Write`] while it is read.
//!
//! Every list is read page by page (at most [`MAX_PAGE_SIZE`] entries, the
//! engine's own paged readers where there is one) and each page is written
//! before the next is read, so memory stays bounded by a page whatever the
//! account holds. Strings are escaped by `serde_json`; the structure around
//! them is written here.
//!
//! The export is not a snapshot: what changes while it runs may or may not
//! appear in it, each list being read in its own order.

use std::io::{BufWriter, Write};

use starling_core::{
    Audience, Cursor, Error, GroupId, LinkKind, MAX_PAGE_SIZE, Post, PostId, Result, UserId,
};
use starling_inbox::{Mutes, Viewer};
use starling_store::Backend;

use crate::engine::Engine;
use crate::users::UserPage;

/// The `format` field of every export: bumped when the document changes
/// shape.
pub const EXPORT_FORMAT: &str = "starling-export-1";

/// Bytes the export buffers before handing them to the writer.
const BUFFER: usize = 16 * 1024;

/// How much one [`Engine::export`] wrote, per list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ExportSummary {
    /// The user's own posts and reposts.
    pub posts: u64,
    /// Accounts the user follows.
    pub following: u64,
    /// Accounts following the user.
    pub followers: u64,
    /// Pending follow requests to the user.
    pub follow_requests: u64,
    /// Pending follow requests the user sent.
    pub sent_follow_requests: u64,
    /// Accounts the user blocks.
    pub blocks: u64,
    /// Accounts the user mutes.
    pub mutes: u64,
    /// Posts the user likes.
    pub likes: u64,
    /// Groups the user owns.
    pub groups: u64,
    /// Groups of others the user is a member of.
    #[cfg_attr(feature = "serde", serde(default))]
    pub member_of: u64,
    /// Conversations the user has.
    pub conversations: u64,
    /// Direct messages in them, both ways.
    pub messages: u64,
    /// Bytes written.
    pub bytes: u64,
}

impl<B: Backend> Engine<B> {
    /// Writes everything `user` has in the store to `out` as one JSON
    /// object, reading and writing page by page:
    ///
    /// - `format` ([`EXPORT_FORMAT`]) and `user`: id, username, creation
    ///   time, display name, bio, whether the account is protected;
    /// - `posts`: every live post and repost of the user, newest first
    ///   (deleted ones are gone); a repost carries its original (id,
    ///   author, text) when the user may still see it, its id otherwise;
    /// - `following`, `followers`, `follow_requests` (pending, to the
    ///   user), `sent_follow_requests`, `blocks`, `mutes`: accounts (id and
    ///   username), in id order;
    /// - `likes`: every post the user likes, newest post first, with its
    ///   author and text when the user may still see it;
    /// - `groups`: the groups the user owns, with their members;
    /// - `member_of`: the groups of others the user is a member of (id,
    ///   name, owner), in id order;
    /// - `conversations`: each with the other account and every message
    ///   both ways, newest conversation and newest message first.
    ///
    /// An unknown user is [`Error::UnknownUser`] before anything is
    /// written; a failure of `out` is [`Error::Output`] (the document is
    /// then cut short). `out` is flushed at the end.
    pub fn export(&self, user: UserId, out: &mut dyn Write) -> Result<ExportSummary> {
        let s = self.shared.known(&[user])?;
        let record = s.backend.user(user)?.ok_or(Error::UnknownUser(user))?;
        let profile = self.profile(user)?;
        let protected = self.is_protected(user)?;
        let mut w = Json::new(out);
        let mut sum = ExportSummary::default();

        w.raw("{\"format\":")?;
        w.string(EXPORT_FORMAT)?;
        w.raw(",\"user\":{\"id\":")?;
        w.number(user.0)?;
        w.raw(",\"username\":")?;
        w.string(record.name.as_str())?;
        w.raw(",\"created_at_ms\":")?;
        w.number(record.created_at_ms)?;
        w.raw(",\"display_name\":")?;
        w.string(&profile.display_name)?;
        w.raw(",\"bio\":")?;
        w.string(&profile.bio)?;
        w.raw(",\"protected\":")?;
        w.raw(if protected { "true" } else { "false" })?;
        w.raw("}")?;

        w.raw(",\"posts\":[")?;
        self.write_posts(&mut w, user, &mut sum.posts)?;
        w.raw("]")?;

        let lists: [(&str, UserList, &mut u64); 6] = [
            ("following", UserList::Following, &mut sum.following),
            ("followers", UserList::Followers, &mut sum.followers),
            (
                "follow_requests",
                UserList::Requests,
                &mut sum.follow_requests,
            ),
            (
                "sent_follow_requests",
                UserList::SentRequests,
                &mut sum.sent_follow_requests,
            ),
            ("blocks", UserList::Blocks, &mut sum.blocks),
            ("mutes", UserList::Mutes, &mut sum.mutes),
        ];
        for (name, list, count) in lists {
            w.raw(",")?;
            w.string(name)?;
            w.raw(":[")?;
            self.write_users(&mut w, count, |cursor| match list {
                UserList::Following => self.following(user, cursor, MAX_PAGE_SIZE),
                UserList::Followers => self.followers(user, cursor, MAX_PAGE_SIZE),
                UserList::Requests => self.follow_requests(user, cursor, MAX_PAGE_SIZE),
                UserList::SentRequests => self.sent_follow_requests(user, cursor, MAX_PAGE_SIZE),
                UserList::Blocks => self.blocks(user, cursor, MAX_PAGE_SIZE),
                UserList::Mutes => self.mutes(user, cursor, MAX_PAGE_SIZE),
            })?;
            w.raw("]")?;
        }

        w.raw(",\"likes\":[")?;
        self.write_likes(&mut w, user, &mut sum.likes)?;
        w.raw("],\"groups\":[")?;
        self.write_groups(&mut w, user, &mut sum.groups)?;
        w.raw("],\"member_of\":[")?;
        self.write_member_of(&mut w, user, &mut sum.member_of)?;
        w.raw("],\"conversations\":[")?;
        self.write_conversations(&mut w, user, &mut sum)?;
        w.raw("]}")?;
        sum.bytes = w.finish()?;
        Ok(sum)
    }

    /// Every live post and repost of the user, newest first, read from the
    /// author index a page at a time. A repost carries its original when
    /// the user may still see it (its id alone otherwise): the repost is
    /// the user's own whatever became of what it reposts.
    fn write_posts(&self, w: &mut Json<'_>, user: UserId, count: &mut u64) -> Result<()> {
        let s = &self.shared;
        let mut viewer = Viewer::load(&s.backend, user, Mutes::Show)?;
        let mut ids = Vec::with_capacity(MAX_PAGE_SIZE);
        let mut posts = Vec::with_capacity(MAX_PAGE_SIZE);
        let mut originals = Vec::new();
        let mut before = None;
        loop {
            ids.clear();
            s.backend
                .author_posts(user, before, MAX_PAGE_SIZE, &mut ids)?;
            posts.clear();
            s.backend.posts(&ids, &mut posts)?;
            for post in posts.iter().flatten().filter(|p| !p.deleted) {
                w.comma(*count)?;
                w.raw("{\"id\":")?;
                w.post_id(post.id)?;
                w.raw(",\"created_at_ms\":")?;
                w.number(post.id.unix_millis())?;
                w.raw(",\"text\":")?;
                w.string(&post.text)?;
                w.raw(",\"reply_to\":")?;
                w.opt_post_id(post.reply_to)?;
                w.raw(",\"group\":")?;
                match post.audience {
                    Audience::Public => w.raw("null")?,
                    Audience::Group(GroupId(id)) => w.number(id)?,
                }
                w.raw(",\"likes\":")?;
                w.number(post.likes)?;
                w.raw(",\"repost_of\":")?;
                match post.repost_of {
                    None => w.raw("null")?,
                    Some(of) => {
                        originals.clear();
                        s.backend.posts(&[of], &mut originals)?;
                        let seen = match originals.pop().flatten() {
                            Some(original) => s.seen_by(&mut viewer, original)?,
                            None => None,
                        };
                        match seen {
                            Some(original) => self.write_seen_post(w, &original)?,
                            None => {
                                w.raw("{\"id\":")?;
                                w.post_id(of)?;
                                w.raw("}")?;
                            }
                        }
                    }
                }
                w.raw("}")?;
                *count += 1;
            }
            match ids.last() {
                Some(&last) if ids.len() == MAX_PAGE_SIZE => before = Some(last),
                _ => return Ok(()),
            }
        }
    }

    /// Another's post the user may see: id, author, text.
    fn write_seen_post(&self, w: &mut Json<'_>, post: &Post) -> Result<()> {
        w.raw("{\"id\":")?;
        w.post_id(post.id)?;
        w.raw(",\"author\":")?;
        self.write_user(w, post.author)?;
        w.raw(",\"text\":")?;
        w.string(&post.text)?;
        w.raw("}")
    }

    /// An account: `{"id":…,"username":…}` (the username `null` for an
    /// account no longer stored).
    fn write_user(&self, w: &mut Json<'_>, id: UserId) -> Result<()> {
        w.raw("{\"id\":")?;
        w.number(id.0)?;
        w.raw(",\"username\":")?;
        match self.shared.backend.user(id)? {
            Some(u) => w.string(u.name.as_str())?,
            None => w.raw("null")?,
        }
        w.raw("}")
    }

    /// Every account of a paged user listing.
    fn write_users(
        &self,
        w: &mut Json<'_>,
        count: &mut u64,
        mut read: impl FnMut(Option<&Cursor>) -> Result<UserPage>,
    ) -> Result<()> {
        let mut cursor: Option<Cursor> = None;
        loop {
            let page = read(cursor.as_ref())?;
            for &id in &page.users {
                w.comma(*count)?;
                self.write_user(w, id)?;
                *count += 1;
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// Every like of the user, newest post first, from the like links
    /// themselves: a like of a post the user may no longer see (deleted,
    /// hidden by a block or a group change) is kept, with its id alone.
    fn write_likes(&self, w: &mut Json<'_>, user: UserId, count: &mut u64) -> Result<()> {
        let s = &self.shared;
        let mut viewer = Viewer::load(&s.backend, user, Mutes::Show)?;
        let mut links = Vec::with_capacity(MAX_PAGE_SIZE);
        let mut ids = Vec::with_capacity(MAX_PAGE_SIZE);
        let mut posts = Vec::with_capacity(MAX_PAGE_SIZE);
        let mut after = None;
        loop {
            links.clear();
            s.backend
                .links(LinkKind::Likes, user.0, after, MAX_PAGE_SIZE, &mut links)?;
            ids.clear();
            // Keyed by !post: newest post first.
            ids.extend(links.iter().map(|&(to, _)| PostId(!to)));
            posts.clear();
            s.backend.posts(&ids, &mut posts)?;
            for ((&(_, liked_at), &id), post) in links.iter().zip(&ids).zip(posts.drain(..)) {
                let seen = match post {
                    Some(p) => s.seen_by(&mut viewer, p)?,
                    None => None,
                };
                w.comma(*count)?;
                w.raw("{\"liked_at_ms\":")?;
                w.number(liked_at)?;
                w.raw(",\"post\":")?;
                match seen {
                    Some(p) => self.write_seen_post(w, &p)?,
                    None => {
                        w.raw("{\"id\":")?;
                        w.post_id(id)?;
                        w.raw("}")?;
                    }
                }
                w.raw("}")?;
                *count += 1;
            }
            match links.last() {
                Some(&(to, _)) if links.len() == MAX_PAGE_SIZE => after = Some(to),
                _ => return Ok(()),
            }
        }
    }

    /// The groups the user owns, each with every member.
    fn write_groups(&self, w: &mut Json<'_>, user: UserId, count: &mut u64) -> Result<()> {
        let s = &self.shared;
        let mut links = Vec::with_capacity(MAX_PAGE_SIZE);
        let mut after = None;
        loop {
            links.clear();
            s.backend.links(
                LinkKind::OwnerGroups,
                user.0,
                after,
                MAX_PAGE_SIZE,
                &mut links,
            )?;
            for &(id, _) in &links {
                // Deleted between the listing and now: skipped.
                let Some(group) = s.backend.group(GroupId(id))? else {
                    continue;
                };
                w.comma(*count)?;
                w.raw("{\"id\":")?;
                w.number(group.id.0)?;
                w.raw(",\"name\":")?;
                w.string(&group.name)?;
                w.raw(",\"members\":[")?;
                let mut members = 0;
                let listed = self.write_users(w, &mut members, |cursor| {
                    self.group_members(user, group.id, cursor, MAX_PAGE_SIZE)
                });
                match listed {
                    // Deleted while its members were listed: the list
                    // ends where it was.
                    Ok(()) | Err(Error::UnknownGroup(_)) => {}
                    Err(e) => return Err(e),
                }
                w.raw("]}")?;
                *count += 1;
            }
            match links.last() {
                Some(&(to, _)) if links.len() == MAX_PAGE_SIZE => after = Some(to),
                _ => return Ok(()),
            }
        }
    }

    /// The groups of others the user is a member of, from the user's
    /// own index of them.
    fn write_member_of(&self, w: &mut Json<'_>, user: UserId, count: &mut u64) -> Result<()> {
        let mut cursor: Option<Cursor> = None;
        loop {
            let page = self.member_groups(user, cursor.as_ref(), MAX_PAGE_SIZE)?;
            for group in &page.groups {
                w.comma(*count)?;
                w.raw("{\"id\":")?;
                w.number(group.id.0)?;
                w.raw(",\"name\":")?;
                w.string(&group.name)?;
                w.raw(",\"owner\":")?;
                self.write_user(w, group.owner)?;
                w.raw("}")?;
                *count += 1;
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// Every conversation of the user with every message, newest first.
    fn write_conversations(
        &self,
        w: &mut Json<'_>,
        user: UserId,
        sum: &mut ExportSummary,
    ) -> Result<()> {
        let mut cursor: Option<Cursor> = None;
        loop {
            let page = self.conversations(user, cursor.as_ref(), MAX_PAGE_SIZE)?;
            for c in &page.conversations {
                w.comma(sum.conversations)?;
                w.raw("{\"with\":")?;
                self.write_user(w, c.with)?;
                w.raw(",\"unread\":")?;
                w.number(c.unread)?;
                w.raw(",\"messages\":[")?;
                let mut in_conversation = 0u64;
                let mut at: Option<Cursor> = None;
                loop {
                    let messages = self.messages(user, c.with, at.as_ref(), MAX_PAGE_SIZE)?;
                    for m in &messages.messages {
                        w.comma(in_conversation)?;
                        w.raw("{\"id\":")?;
                        w.post_id(m.id)?;
                        w.raw(",\"sent_at_ms\":")?;
                        w.number(m.id.unix_millis())?;
                        w.raw(",\"from\":")?;
                        w.number(m.from.0)?;
                        w.raw(",\"to\":")?;
                        w.number(m.to.0)?;
                        w.raw(",\"text\":")?;
                        w.string(&m.text)?;
                        w.raw("}")?;
                        in_conversation += 1;
                    }
                    match messages.next {
                        Some(next) => at = Some(next),
                        None => break,
                    }
                }
                w.raw("]}")?;
                sum.messages += in_conversation;
                sum.conversations += 1;
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(()),
            }
        }
    }
}

/// The user listings of an export.
#[derive(Clone, Copy)]
enum UserList {
    Following,
    Followers,
    Requests,
    SentRequests,
    Blocks,
    Mutes,
}

/// The output: a bounded buffer over the caller's writer, counting bytes,
/// every failure an [`Error::Output`].
struct Json<'a> {
    out: BufWriter<CountingWriter<'a>>,
}

struct CountingWriter<'a> {
    inner: &'a mut dyn Write,
    bytes: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<'a> Json<'a> {
    fn new(inner: &'a mut dyn Write) -> Json<'a> {
        Json {
            out: BufWriter::with_capacity(BUFFER, CountingWriter { inner, bytes: 0 }),
        }
    }

    fn raw(&mut self, s: &str) -> Result<()> {
        self.out.write_all(s.as_bytes()).map_err(Error::Output)
    }

    /// A JSON string, escaped.
    fn string(&mut self, s: &str) -> Result<()> {
        serde_json::to_writer(&mut self.out, s).map_err(|e| Error::Output(e.into()))
    }

    fn number(&mut self, n: u64) -> Result<()> {
        write!(self.out, "{n}").map_err(Error::Output)
    }

    /// A post id, as a string (as the records' own JSON has it: post ids
    /// exceed what a JavaScript number holds exactly).
    fn post_id(&mut self, id: PostId) -> Result<()> {
        write!(self.out, "\"{}\"", id.0).map_err(Error::Output)
    }

    fn opt_post_id(&mut self, id: Option<PostId>) -> Result<()> {
        match id {
            Some(id) => self.post_id(id),
            None => self.raw("null"),
        }
    }

    /// The separator before the entry after `written` entries of a list.
    fn comma(&mut self, written: u64) -> Result<()> {
        if written > 0 { self.raw(",") } else { Ok(()) }
    }

    /// Flushes everything and returns the bytes written.
    fn finish(self) -> Result<u64> {
        let mut counting = self
            .out
            .into_inner()
            .map_err(|e| Error::Output(e.into_error()))?;
        counting.flush().map_err(Error::Output)?;
        Ok(counting.bytes)
    }
}
