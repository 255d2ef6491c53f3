//! Differential testing: the same operations on two engines over two
//! backends, every outcome and every read compared between them (not with
//! the model), ids translated to the order each engine created them in.

use std::collections::HashMap;
use std::fmt::Debug;

use starling_core::{Cursor, DmPolicy, GroupId, PostId, UserId};
use starling_engine::{Backend, Engine, PhoneLink};

use crate::harness::{Reopen, code_for, quiet_hours};
use crate::model::Failure;
use crate::ops::{Op, phone_number};

/// One engine of a differential run, with the ids it returned, by index.
pub struct Side<B: Backend> {
    engine: Option<Engine<B>>,
    reopen: Reopen<B>,
    users: Vec<UserId>,
    posts: Vec<PostId>,
    groups: Vec<GroupId>,
    messages: Vec<PostId>,
}

type Check = Result<(), String>;

impl<B: Backend> Side<B> {
    /// Opens the engine; `reopen` opens it again over the same storage.
    pub fn new(mut reopen: Reopen<B>) -> starling_core::Result<Side<B>> {
        let engine = reopen()?;
        Ok(Side {
            engine: Some(engine),
            reopen,
            users: Vec::new(),
            posts: Vec::new(),
            groups: Vec::new(),
            messages: Vec::new(),
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine<B> {
        // Present except inside `reopen`.
        #[allow(clippy::expect_used)]
        self.engine.as_ref().expect("engine is open")
    }

    fn user(&self, i: usize) -> UserId {
        self.users
            .get(i)
            .copied()
            .unwrap_or(UserId(u64::MAX - i as u64))
    }

    fn post(&self, i: usize) -> PostId {
        self.posts
            .get(i)
            .copied()
            .unwrap_or(PostId(u64::MAX - i as u64))
    }

    fn group(&self, i: usize) -> GroupId {
        self.groups
            .get(i)
            .copied()
            .unwrap_or(GroupId(u64::MAX - i as u64))
    }

    fn post_index(&mut self, id: PostId) -> usize {
        match self.posts.iter().position(|p| *p == id) {
            Some(i) => i,
            None => {
                self.posts.push(id);
                self.posts.len() - 1
            }
        }
    }

    /// Runs `op` and describes its outcome in terms of indices.
    fn run(&mut self, op: &Op) -> Result<String, String> {
        let show = |r: starling_core::Result<String>| match r {
            Ok(s) => s,
            Err(e) => format!("failed {:?}", Failure::of(&e)),
        };
        let changed = |r: starling_core::Result<bool>| show(r.map(|c| format!("changed {c}")));
        let e = self.engine.as_ref().ok_or("engine is closed")?;
        Ok(match op {
            Op::CreateUser(name) => match e.create_user(name) {
                Ok(u) => {
                    self.users.push(u.id);
                    format!("user {}", self.users.len() - 1)
                }
                Err(err) => show(Err(err)),
            },
            Op::Follow(a, b) => changed(e.follow(self.user(*a), self.user(*b))),
            Op::Unfollow(a, b) => changed(e.unfollow(self.user(*a), self.user(*b))),
            Op::Post(a, text) => match e.post(self.user(*a), text) {
                Ok(p) => {
                    self.posts.push(p.id);
                    format!("post {}", self.posts.len() - 1)
                }
                Err(err) => show(Err(err)),
            },
            Op::Delete(a, p) => changed(e.delete_post(self.user(*a), self.post(*p))),
            Op::Block(a, b) => changed(e.block(self.user(*a), self.user(*b))),
            Op::Unblock(a, b) => changed(e.unblock(self.user(*a), self.user(*b))),
            Op::Mute(a, b) => changed(e.mute(self.user(*a), self.user(*b))),
            Op::Unmute(a, b) => changed(e.unmute(self.user(*a), self.user(*b))),
            Op::Repost(a, p) => match e.repost(self.user(*a), self.post(*p)) {
                Ok(r) => format!("post {}", self.post_index(r.id)),
                Err(err) => show(Err(err)),
            },
            Op::CreateGroup(a) => match e.create_group(self.user(*a), "friends") {
                Ok(g) => {
                    self.groups.push(g.id);
                    format!("group {}", self.groups.len() - 1)
                }
                Err(err) => show(Err(err)),
            },
            Op::AddMember(a, g, m) => {
                changed(e.add_member(self.user(*a), self.group(*g), self.user(*m)))
            }
            Op::RemoveMember(a, g, m) => {
                changed(e.remove_member(self.user(*a), self.group(*g), self.user(*m)))
            }
            Op::PostToGroup(a, g, text) => {
                match e.post_to_group(self.user(*a), self.group(*g), text) {
                    Ok(p) => {
                        self.posts.push(p.id);
                        format!("post {}", self.posts.len() - 1)
                    }
                    Err(err) => show(Err(err)),
                }
            }
            Op::SendDirect(a, b, text) => match e.send_direct(self.user(*a), self.user(*b), text) {
                Ok(m) => {
                    self.messages.push(m.id);
                    format!("message {}", self.messages.len() - 1)
                }
                Err(err) => show(Err(err)),
            },
            Op::MarkRead(a, b) => show(
                e.mark_read(self.user(*a), self.user(*b))
                    .map(|n| format!("read {n}")),
            ),
            Op::OpenDms(a, open) => {
                let policy = if *open {
                    DmPolicy::Open
                } else {
                    DmPolicy::FollowedOnly
                };
                show(
                    e.set_dm_policy(self.user(*a), policy)
                        .map(|p| format!("dms open {}", p.dms_open)),
                )
            }
            Op::Like(a, p) => changed(e.like(self.user(*a), self.post(*p))),
            Op::Unlike(a, p) => changed(e.unlike(self.user(*a), self.post(*p))),
            Op::LinkPhone(a, n) => {
                show(
                    e.link_phone(self.user(*a), &phone_number(*n))
                        .map(|l| match l {
                            PhoneLink::Linked { phone } => format!("linked {phone}"),
                            PhoneLink::CodeSent { phone, .. } => format!("code sent to {phone}"),
                        }),
                )
            }
            Op::ConfirmPhone(a, right) => {
                let user = self.user(*a);
                let code = code_for(e, user, None, *right)?;
                show(
                    e.confirm_phone(user, &code)
                        .map(|phone| format!("confirmed {phone}")),
                )
            }
            Op::TextCode(n, u) => {
                let phone = phone_number(*n);
                let code = match u {
                    Some(u) => code_for(e, self.user(*u), Some(&phone), true)?,
                    None => code_for(e, UserId(u64::MAX), Some(&phone), false)?,
                };
                let users = &self.users;
                show(e.confirm_phone_by_text(&phone, &code).map(|id| {
                    let i = users.iter().position(|u| *u == id);
                    format!("linked to {i:?}")
                }))
            }
            Op::UnlinkPhone(a) => changed(e.unlink_phone(self.user(*a))),
            Op::Sleep(a, h) => show(
                e.set_quiet_hours(self.user(*a), h.map(quiet_hours))
                    .map(|p| format!("quiet hours {:?}", p.quiet_hours)),
            ),
            Op::Protect(a) => changed(e.protect(self.user(*a))),
            Op::Unprotect(a) => changed(e.unprotect(self.user(*a))),
            Op::RequestFollow(a, b) => changed(e.request_follow(self.user(*a), self.user(*b))),
            Op::Approve(a, b) => changed(
                e.approve_follow_request(self.user(*a), self.user(*b))
                    .map(|()| true),
            ),
            Op::Deny(a, b) => changed(
                e.deny_follow_request(self.user(*a), self.user(*b))
                    .map(|()| true),
            ),
            Op::Cancel(a, b) => changed(
                e.cancel_follow_request(self.user(*a), self.user(*b))
                    .map(|()| true),
            ),
            Op::DeleteAccount(a) => changed(e.delete_account(self.user(*a)).map(|()| true)),
            Op::Reopen => {
                drop(self.engine.take());
                self.engine = Some((self.reopen)().map_err(|e| format!("reopen: {e}"))?);
                "reopened".into()
            }
            Op::Check => show(self.engine().wait_for_fanout().map(|()| "waited".into())),
        })
    }

    /// Everything this side's engine shows, one labelled line per read,
    /// ids as indices. Waits for fan-out first.
    pub fn view(&self, page: usize, inboxes: Inboxes) -> Result<Vec<String>, String> {
        let e = self.engine();
        e.wait_for_fanout().map_err(|e| format!("fan-out: {e}"))?;
        let users: HashMap<UserId, usize> = index(&self.users);
        let posts: HashMap<PostId, usize> = index(&self.posts);
        let messages: HashMap<PostId, usize> = index(&self.messages);
        let u = |id: &UserId| users.get(id).map_or(format!("?{id}"), |i| i.to_string());
        let p = |id: &PostId| posts.get(id).map_or(format!("?{id}"), |i| i.to_string());
        let m = |id: &PostId| messages.get(id).map_or(format!("?{id}"), |i| i.to_string());
        let mut out = Vec::new();
        let mut line = |what: String, v: &dyn Debug| out.push(format!("{what}: {v:?}"));
        for (i, &id) in self.users.iter().enumerate() {
            line(format!("user {i}"), &e.user(id).map(|x| x.name.to_string()));
            line(format!("counts of {i}"), &e.counts(id));
            line(format!("profile of {i}"), &e.profile(id));
            line(format!("phone of {i}"), &e.phone(id));
            line(
                format!("pending phone of {i}"),
                &e.pending_phone(id)
                    .map(|p| p.map(|p| (p.phone, p.attempts_left))),
            );
            let list = |r: Vec<UserId>| r.iter().map(u).collect::<Vec<_>>();
            line(
                format!("followers of {i}"),
                &users_of(|c| e.followers(id, c, page)).map(list),
            );
            line(
                format!("following of {i}"),
                &users_of(|c| e.following(id, c, page)).map(list),
            );
            line(
                format!("blocks of {i}"),
                &users_of(|c| e.blocks(id, c, page)).map(list),
            );
            line(
                format!("mutes of {i}"),
                &users_of(|c| e.mutes(id, c, page)).map(list),
            );
            line(format!("protection of {i}"), &e.is_protected(id));
            line(
                format!("follow requests to {i}"),
                &users_of(|c| e.follow_requests(id, c, page)).map(list),
            );
            line(
                format!("follow requests of {i}"),
                &users_of(|c| e.sent_follow_requests(id, c, page)).map(list),
            );
            let timeline = |r: Vec<starling_core::Post>| {
                r.iter()
                    .map(|x| {
                        (
                            p(&x.id),
                            u(&x.author),
                            x.text.clone(),
                            x.repost_of.map(|o| p(&o)),
                            x.likes,
                        )
                    })
                    .collect::<Vec<_>>()
            };
            line(
                format!("home timeline of {i}"),
                &posts_of(|c| e.home_timeline(id, c, page)).map(timeline),
            );
            line(
                format!("posts of {i}"),
                &posts_of(|c| e.author_timeline(id, c, page)).map(timeline),
            );
            line(
                format!("likes of {i}"),
                &posts_of(|c| e.liked_posts(id, id, c, page)).map(timeline),
            );
            // As the next user sees them: protection, blocks and audiences
            // decide, not only what is public.
            let next = self.users[(i + 1) % self.users.len()];
            line(
                format!("posts of {i} seen by the next user"),
                &posts_of(|c| e.author_timeline_as(next, id, c, page)).map(timeline),
            );
            line(
                format!("likes of {i} seen by the next user"),
                &posts_of(|c| e.liked_posts(next, id, c, page)).map(timeline),
            );
            let mut conversations = Vec::new();
            let mut cursor: Option<Cursor> = None;
            loop {
                match e.conversations(id, cursor.as_ref(), page) {
                    Ok(pg) => {
                        conversations.extend(
                            pg.conversations
                                .iter()
                                .map(|c| (u(&c.with), m(&c.last), c.unread, c.with)),
                        );
                        match pg.next {
                            Some(c) => cursor = Some(c),
                            None => break,
                        }
                    }
                    Err(err) => {
                        line(format!("conversations of {i}"), &Failure::of(&err));
                        break;
                    }
                }
            }
            for (with, _, _, with_id) in &conversations {
                let mut got = Vec::new();
                let mut cursor: Option<Cursor> = None;
                loop {
                    match e.messages(id, *with_id, cursor.as_ref(), page) {
                        Ok(pg) => {
                            got.extend(pg.messages.iter().map(|x| (m(&x.id), u(&x.from))));
                            match pg.next {
                                Some(c) => cursor = Some(c),
                                None => break,
                            }
                        }
                        Err(err) => {
                            got.push((format!("{:?}", Failure::of(&err)), String::new()));
                            break;
                        }
                    }
                }
                line(format!("messages of {i} with {with}"), &got);
            }
            let conversations: Vec<_> = conversations
                .into_iter()
                .map(|(w, l, n, _)| (w, l, n))
                .collect();
            line(format!("conversations of {i}"), &conversations);
        }
        for (i, &id) in self.posts.iter().enumerate() {
            line(
                format!("post {i}"),
                &e.get_post(id)
                    .map(|x| (u(&x.author), x.text, x.repost_of.map(|o| p(&o))))
                    .map_err(|err| Failure::of(&err)),
            );
        }
        for (g, &id) in self.groups.iter().enumerate() {
            for (i, &viewer) in self.users.iter().enumerate() {
                line(
                    format!("group {g} seen by {i}"),
                    &e.group(viewer, id)
                        .map(|x| u(&x.owner))
                        .map_err(|err| Failure::of(&err)),
                );
                line(
                    format!("members of group {g} seen by {i}"),
                    &users_of(|c| e.group_members(viewer, id, c, page))
                        .map(|r| r.iter().map(u).collect::<Vec<_>>()),
                );
            }
        }
        let report = e.check().map_err(|e| format!("check: {e}"))?;
        let entries = (inboxes == Inboxes::Compared).then_some(report.inbox_entries);
        line(
            "check".into(),
            &(
                report.users,
                report.edges,
                report.posts,
                entries,
                report.pending_jobs,
                &report.problems,
            ),
        );
        Ok(out)
    }
}

fn index<T: Copy + Eq + std::hash::Hash>(ids: &[T]) -> HashMap<T, usize> {
    ids.iter().enumerate().map(|(i, id)| (*id, i)).collect()
}

fn users_of(
    page: impl Fn(Option<&Cursor>) -> starling_core::Result<starling_engine::UserPage>,
) -> Result<Vec<UserId>, Failure> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let p = page(cursor.as_ref()).map_err(|e| Failure::of(&e))?;
        out.extend(p.users);
        match p.next {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

fn posts_of(
    page: impl Fn(Option<&Cursor>) -> starling_core::Result<starling_engine::TimelinePage>,
) -> Result<Vec<starling_core::Post>, Failure> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let p = page(cursor.as_ref()).map_err(|e| Failure::of(&e))?;
        out.extend(p.posts);
        match p.next {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

/// Whether the inbox entries `check()` counts are compared: they are not
/// visible (timelines are) and, under [`starling_core::FanoutPolicy::Rates`],
/// which followers get pushed entries depends on measured rates, so on
/// timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inboxes {
    /// The counts must match.
    Compared,
    /// The counts may differ.
    Ignored,
}

/// Two engines over two backends driven through the same operations.
pub struct Differential<A: Backend, B: Backend> {
    /// The first side (the reference backend).
    pub a: Side<A>,
    /// The second side (the backend under test).
    pub b: Side<B>,
    page: usize,
    inboxes: Inboxes,
}

impl<A: Backend, B: Backend> Differential<A, B> {
    /// Both engines, opened; lists and timelines are read `page` at a time.
    pub fn new(
        a: Reopen<A>,
        b: Reopen<B>,
        page: usize,
        inboxes: Inboxes,
    ) -> starling_core::Result<Self> {
        Ok(Differential {
            a: Side::new(a)?,
            b: Side::new(b)?,
            page: page.max(1),
            inboxes,
        })
    }

    /// Runs `op` on both and compares the outcomes; after an
    /// [`Op::Check`] or an [`Op::Reopen`] (fan-out waited for on both at
    /// the same point), compares everything both show.
    pub fn step(&mut self, op: &Op) -> Check {
        let (a, b) = (self.a.run(op)?, self.b.run(op)?);
        if a != b {
            return Err(format!("{op:?}: first {a}, second {b}"));
        }
        if matches!(op, Op::Check | Op::Reopen) {
            self.compare()?;
        }
        Ok(())
    }

    /// Waits for fan-out on both and compares everything both show.
    pub fn compare(&self) -> Check {
        let a = self.a.view(self.page, self.inboxes)?;
        let b = self.b.view(self.page, self.inboxes)?;
        for (x, y) in a.iter().zip(&b) {
            if x != y {
                return Err(format!("first {x}\nsecond {y}"));
            }
        }
        if a.len() != b.len() {
            return Err(format!("{} reads against {}", a.len(), b.len()));
        }
        Ok(())
    }
}
