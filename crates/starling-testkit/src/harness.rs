//! Drives an engine and the model through the same ops and compares them.

use std::collections::HashMap;

use serde_json::Value;
use starling_core::{
    Change, Cursor, DeliveryKind, DmPolicy, Error, ErrorKind, GroupId, Phone, PostId, QuietHours,
    UserId, format_phone_code, utc_day,
};
use starling_engine::{Backend, Engine, PhoneLink};

use crate::model::{Failure, Model, ModelChange, ModelText, Outcome, PublicView};
use crate::ops::{Op, PHONES, phone_number};

/// Opens the engine again over what the previous one stored.
pub type Reopen<B> = Box<dyn FnMut() -> starling_core::Result<Engine<B>>>;

/// An engine, the model, and the map between the model's indices and the
/// engine's ids.
pub struct Harness<B: Backend> {
    engine: Option<Engine<B>>,
    reopen: Reopen<B>,
    model: Model,
    users: Vec<UserId>,
    posts: Vec<PostId>,
    groups: Vec<GroupId>,
    messages: Vec<PostId>,
    /// After a storage failure: the failed op and the model as it would be
    /// had the op been stored. Resolved at the next reopen.
    failed: Option<(Op, Model)>,
}

type Check = Result<(), String>;

/// Up to this many (user, post) pairs, `check` compares who liked each
/// post as every user sees it.
const LIKERS_PAIRS: usize = 20_000;

impl<B: Backend> Harness<B> {
    /// A harness over a fresh engine; `reopen` opens it again over the same
    /// storage after the harness closed it.
    pub fn new(mut reopen: Reopen<B>) -> starling_core::Result<Harness<B>> {
        let engine = reopen()?;
        let model = Model::new(engine.config().clone());
        Ok(Harness {
            engine: Some(engine),
            reopen,
            model,
            users: Vec::new(),
            posts: Vec::new(),
            groups: Vec::new(),
            messages: Vec::new(),
            failed: None,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine<B> {
        // Present except inside `reopen`.
        #[allow(clippy::expect_used)]
        self.engine.as_ref().expect("engine is open")
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    fn user_id(&self, i: usize) -> UserId {
        self.users
            .get(i)
            .copied()
            .unwrap_or(UserId(u64::MAX - i as u64))
    }

    fn group_id(&self, i: usize) -> GroupId {
        self.groups
            .get(i)
            .copied()
            .unwrap_or(GroupId(u64::MAX - i as u64))
    }

    /// The model index of a post the engine returned, recording it if new.
    fn post_outcome(&mut self, id: PostId) -> Outcome {
        match self.posts.iter().position(|p| *p == id) {
            Some(i) => Outcome::Post(i),
            None => {
                self.posts.push(id);
                Outcome::Post(self.posts.len() - 1)
            }
        }
    }

    fn post_id(&self, i: usize) -> PostId {
        self.posts
            .get(i)
            .copied()
            .unwrap_or(PostId(u64::MAX - i as u64))
    }

    /// Applies `op` to both and compares the outcomes ([`Op::Check`]
    /// compares the whole visible state). Returns the first difference.
    ///
    /// A storage failure (as injected by `FaultyBackend`) is not a
    /// difference: the engine must then refuse every later write as
    /// poisoned, and after the next reopen hold either all of the failed
    /// operation or none of it.
    pub fn step(&mut self, op: &Op) -> Check {
        if self.failed.is_none() && self.engine().is_poisoned() {
            // A background or read-side write failed: nothing of any op.
            self.failed = Some((Op::Check, self.model.clone()));
        }
        if self.failed.is_some() {
            return self.step_poisoned(op);
        }
        let before = self.model.clone();
        let (got, want) = match op {
            Op::CreateUser(name) => {
                let got = self.engine().create_user(name).map(|u| u.id);
                let want = self.model.create_user(name);
                if let Ok(id) = &got {
                    self.users.push(*id);
                }
                (got.map(|_| Outcome::User(self.users.len() - 1)), want)
            }
            Op::Follow(a, b) => (
                self.engine()
                    .follow(self.user_id(*a), self.user_id(*b))
                    .map(Outcome::Changed),
                self.model.follow(*a, *b),
            ),
            Op::Unfollow(a, b) => (
                self.engine()
                    .unfollow(self.user_id(*a), self.user_id(*b))
                    .map(Outcome::Changed),
                self.model.unfollow(*a, *b),
            ),
            Op::Post(a, text) => {
                let got = self.engine().post(self.user_id(*a), text).map(|p| p.id);
                let want = self.model.post(*a, text);
                if let Ok(id) = &got {
                    self.posts.push(*id);
                }
                (got.map(|_| Outcome::Post(self.posts.len() - 1)), want)
            }
            Op::Delete(a, p) => (
                self.engine()
                    .delete_post(self.user_id(*a), self.post_id(*p))
                    .map(Outcome::Changed),
                self.model.delete(*a, *p),
            ),
            Op::Block(a, b) => (
                self.engine()
                    .block(self.user_id(*a), self.user_id(*b))
                    .map(Outcome::Changed),
                self.model.block(*a, *b),
            ),
            Op::Unblock(a, b) => (
                self.engine()
                    .unblock(self.user_id(*a), self.user_id(*b))
                    .map(Outcome::Changed),
                self.model.unblock(*a, *b),
            ),
            Op::Mute(a, b) => (
                self.engine()
                    .mute(self.user_id(*a), self.user_id(*b))
                    .map(Outcome::Changed),
                self.model.mute(*a, *b),
            ),
            Op::Unmute(a, b) => (
                self.engine()
                    .unmute(self.user_id(*a), self.user_id(*b))
                    .map(Outcome::Changed),
                self.model.unmute(*a, *b),
            ),
            Op::Repost(a, p) => {
                let got = self.engine().repost(self.user_id(*a), self.post_id(*p));
                let want = self.model.repost(*a, *p);
                (got.map(|r| self.post_outcome(r.id)), want)
            }
            Op::CreateGroup(a) => {
                let got = self.engine().create_group(self.user_id(*a), "friends");
                let want = self.model.create_group(*a);
                if let Ok(g) = &got {
                    self.groups.push(g.id);
                }
                (got.map(|_| Outcome::Group(self.groups.len() - 1)), want)
            }
            Op::AddMember(a, g, m) => (
                self.engine()
                    .add_member(self.user_id(*a), self.group_id(*g), self.user_id(*m))
                    .map(Outcome::Changed),
                self.model.add_member(*a, *g, *m),
            ),
            Op::RemoveMember(a, g, m) => (
                self.engine()
                    .remove_member(self.user_id(*a), self.group_id(*g), self.user_id(*m))
                    .map(Outcome::Changed),
                self.model.remove_member(*a, *g, *m),
            ),
            Op::PostToGroup(a, g, text) => {
                let got = self
                    .engine()
                    .post_to_group(self.user_id(*a), self.group_id(*g), text)
                    .map(|p| p.id);
                let want = self.model.post_to_group(*a, *g, text);
                if let Ok(id) = &got {
                    self.posts.push(*id);
                }
                (got.map(|_| Outcome::Post(self.posts.len() - 1)), want)
            }
            Op::SendDirect(a, b, text) => {
                let (from, to) = (self.user_id(*a), self.user_id(*b));
                // The conversation's newest message before this one.
                let newest = self.model.messages(*a, *b).first().copied();
                let newest = newest.and_then(|m| self.messages.get(m).copied());
                let got = self.engine().send_direct(from, to, text);
                if let Ok(m) = &got {
                    // Texts count on the day of the message.
                    self.model.set_today(utc_day(m.id.unix_millis()));
                }
                let want = self.model.send_direct(*a, *b, text);
                if let Ok(m) = &got {
                    same("message sender and recipient", &(m.from, m.to), &(from, to))?;
                    if newest.is_some_and(|newest| newest >= m.id) {
                        return Err(format!(
                            "{op:?}: message {} is not newer than {newest:?}",
                            m.id
                        ));
                    }
                    self.messages.push(m.id);
                }
                let got = got.map(|m| m.id);
                (got.map(|_| Outcome::Message(self.messages.len() - 1)), want)
            }
            Op::MarkRead(a, b) => (
                self.engine()
                    .mark_read(self.user_id(*a), self.user_id(*b))
                    .map(Outcome::Count),
                self.model.mark_read(*a, *b),
            ),
            Op::OpenDms(a, open) => {
                let got = self
                    .engine()
                    .set_dm_policy(self.user_id(*a), dm_policy(*open));
                if let Ok(profile) = &got {
                    same("DMs open in the returned profile", &profile.dms_open, open)?;
                }
                (
                    got.map(|_| Outcome::Changed(true)),
                    self.model.open_dms(*a, *open),
                )
            }
            Op::Like(a, p) => (
                self.engine()
                    .like(self.user_id(*a), self.post_id(*p))
                    .map(Outcome::Changed),
                self.model.like(*a, *p),
            ),
            Op::Unlike(a, p) => (
                self.engine()
                    .unlike(self.user_id(*a), self.post_id(*p))
                    .map(Outcome::Changed),
                self.model.unlike(*a, *p),
            ),
            Op::LinkPhone(a, n) => {
                let now = unix_millis();
                self.model.set_today(utc_day(now));
                let got = self
                    .engine()
                    .link_phone_at(self.user_id(*a), &phone_number(*n), now);
                (
                    got.map(|l| Outcome::Changed(matches!(l, PhoneLink::CodeSent { .. }))),
                    self.model.link_phone(*a, *n),
                )
            }
            Op::ConfirmPhone(a, right) => {
                let user = self.user_id(*a);
                let code = code_for(self.engine(), user, None, *right)?;
                (
                    self.engine()
                        .confirm_phone(user, &code)
                        .map(|_| Outcome::Changed(true)),
                    self.model.confirm_phone(*a, *right),
                )
            }
            Op::TextCode(n, u) => {
                let phone = phone_number(*n);
                let code = match u {
                    Some(u) => code_for(self.engine(), self.user_id(*u), Some(&phone), true)?,
                    None => code_for(self.engine(), UserId(u64::MAX), Some(&phone), false)?,
                };
                let got = self.engine().confirm_phone_by_text(&phone, &code);
                let got = match got {
                    Ok(id) => Ok(Outcome::User(
                        self.users
                            .iter()
                            .position(|u| *u == id)
                            .ok_or_else(|| format!("{op:?}: unknown user {id}"))?,
                    )),
                    Err(e) => Err(e),
                };
                (got, self.model.text_code(*n, *u))
            }
            Op::UnlinkPhone(a) => (
                self.engine()
                    .unlink_phone(self.user_id(*a))
                    .map(Outcome::Changed),
                self.model.unlink_phone(*a),
            ),
            Op::Sleep(a, h) => {
                let got = self
                    .engine()
                    .set_quiet_hours(self.user_id(*a), h.map(quiet_hours));
                if let Ok(profile) = &got {
                    same(
                        "quiet hours in the returned profile",
                        &profile.quiet_hours,
                        &h.map(quiet_hours),
                    )?;
                }
                (
                    got.map(|_| Outcome::Changed(true)),
                    self.model.sleep(*a, *h),
                )
            }
            Op::Protect(a) => (
                self.engine()
                    .protect(self.user_id(*a))
                    .map(Outcome::Changed),
                self.model.protect(*a),
            ),
            Op::Unprotect(a) => (
                self.engine()
                    .unprotect(self.user_id(*a))
                    .map(Outcome::Changed),
                self.model.unprotect(*a),
            ),
            Op::RequestFollow(a, b) => (
                self.engine()
                    .request_follow(self.user_id(*a), self.user_id(*b))
                    .map(Outcome::Changed),
                self.model.request_follow(*a, *b),
            ),
            Op::Approve(a, b) => (
                self.engine()
                    .approve_follow_request(self.user_id(*a), self.user_id(*b))
                    .map(|()| Outcome::Changed(true)),
                self.model.approve(*a, *b),
            ),
            Op::Deny(a, b) => (
                self.engine()
                    .deny_follow_request(self.user_id(*a), self.user_id(*b))
                    .map(|()| Outcome::Changed(true)),
                self.model.deny(*a, *b),
            ),
            Op::Cancel(a, b) => (
                self.engine()
                    .cancel_follow_request(self.user_id(*a), self.user_id(*b))
                    .map(|()| Outcome::Changed(true)),
                self.model.cancel(*a, *b),
            ),
            Op::DeleteAccount(a) => (
                self.engine()
                    .delete_account(self.user_id(*a))
                    .map(|()| Outcome::Changed(true)),
                self.model.delete_account(*a),
            ),
            Op::Reopen => return self.reopen(),
            Op::Check => {
                if let Err(Error::Poisoned) = self.engine().wait_for_fanout() {
                    self.failed = Some((Op::Check, before));
                    return Ok(());
                }
                return self.check();
            }
        };
        if let Err(Error::Poisoned) = &got {
            // A fan-out batch failed in the background: nothing of `op` was written.
            self.model = before.clone();
            self.failed = Some((Op::Check, before));
            return Ok(());
        }
        if let Err(Error::Storage(_)) = &got {
            // Not stored, or stored but not known to be: decided at reopen.
            let with = std::mem::replace(&mut self.model, before);
            self.failed = Some((op.clone(), with));
            return Ok(());
        }
        let got = got.unwrap_or_else(|e| Outcome::Failed(Failure::of(&e)));
        if got != want {
            return Err(format!("{op:?}: engine {got:?}, model {want:?}"));
        }
        Ok(())
    }

    /// The engine ids of the users created so far, by model index.
    pub fn user_ids(&self) -> &[UserId] {
        &self.users
    }

    /// The engine ids of the posts created so far, by model index.
    pub fn post_ids(&self) -> &[PostId] {
        &self.posts
    }

    /// The engine ids of the direct messages sent so far, by model index.
    pub fn message_ids(&self) -> &[PostId] {
        &self.messages
    }

    /// The engine ids of the groups created so far, by model index.
    pub fn group_ids(&self) -> &[GroupId] {
        &self.groups
    }

    /// Records an op the engine acknowledged earlier (as a crash log
    /// replays it) without running it: the model applies it, and `id` is
    /// the user or post id the engine returned when it created one.
    pub fn adopt(&mut self, op: &Op, id: Option<u64>) -> Check {
        match (self.model.apply(op), id) {
            (Outcome::User(_), Some(id)) => self.users.push(UserId(id)),
            (Outcome::Post(i), Some(id)) if i < self.posts.len() => {
                // A repeated repost: the one made before.
                if self.posts[i] != PostId(id) {
                    return Err(format!("{op:?} returned {id}, the model has post {i}"));
                }
            }
            (Outcome::Post(_), Some(id)) => self.posts.push(PostId(id)),
            // A repeated repost created nothing new.
            (Outcome::Post(i), None) if i < self.posts.len() => {}
            (Outcome::Group(_), Some(id)) => self.groups.push(GroupId(id)),
            (Outcome::Message(_), Some(id)) => self.messages.push(PostId(id)),
            (
                Outcome::User(_) | Outcome::Post(_) | Outcome::Group(_) | Outcome::Message(_),
                None,
            ) => {
                return Err(format!("{op:?} created something but the log has no id"));
            }
            (_, Some(id)) => return Err(format!("{op:?} created nothing but the log has id {id}")),
            (_, None) => {}
        }
        Ok(())
    }

    /// Decides, from what the engine holds now, whether `op` (in flight when
    /// a previous process died) was stored, and records it in the model if
    /// so. Returns `None` if it was lost, or `Some` of the id it created.
    pub fn resolve(&mut self, op: &Op) -> Result<Option<Option<u64>>, String> {
        let before = self.model.clone();
        let (users, posts, groups, messages) = (
            self.users.len(),
            self.posts.len(),
            self.groups.len(),
            self.messages.len(),
        );
        let outcome = self.model.apply(op);
        if matches!(outcome, Outcome::Failed(_)) {
            self.model = before;
            return Ok(None);
        }
        if let Outcome::Post(i) = outcome
            && i < posts
        {
            // A repeated repost writes nothing: stored or not, the same.
            return Ok(Some(Some(self.posts[i].0)));
        }
        if let Op::DeleteAccount(a) = op {
            if self.finish_deletion(*a)? {
                return Ok(Some(None));
            }
            self.model = before;
            return Ok(None);
        }
        if let Op::Unprotect(a) = op {
            // One batch per approved request, then one for the protection:
            // any prefix of them may be stored. Finish it, as a caller
            // calling again would, and it is stored whole.
            self.engine()
                .unprotect(self.user_id(*a))
                .map_err(|e| format!("finishing {op:?}: {e}"))?;
            return Ok(Some(None));
        }
        let if_stored = self.model.clone();
        if !self.was_stored(op, &if_stored)? {
            self.model = before;
            return Ok(None);
        }
        let id = match outcome {
            Outcome::User(_) => self.users.get(users).map(|u| u.0),
            Outcome::Post(_) => self.posts.get(posts).map(|p| p.0),
            Outcome::Group(_) => self.groups.get(groups).map(|g| g.0),
            Outcome::Message(_) => self.messages.get(messages).map(|m| m.0),
            _ => None,
        };
        Ok(Some(id))
    }

    /// Whether a storage failure poisoned the engine since the last reopen.
    pub fn poisoned(&self) -> bool {
        self.failed.is_some()
    }

    fn step_poisoned(&mut self, op: &Op) -> Check {
        let engine = self.engine();
        let got = match op {
            Op::Reopen => return self.reopen(),
            Op::Check => return Ok(()),
            Op::CreateUser(name) => engine.create_user(name).map(drop),
            Op::Follow(a, b) => engine.follow(self.user_id(*a), self.user_id(*b)).map(drop),
            Op::Unfollow(a, b) => engine
                .unfollow(self.user_id(*a), self.user_id(*b))
                .map(drop),
            Op::Post(a, text) => engine.post(self.user_id(*a), text).map(drop),
            Op::Delete(a, p) => engine
                .delete_post(self.user_id(*a), self.post_id(*p))
                .map(drop),
            Op::Block(a, b) => engine.block(self.user_id(*a), self.user_id(*b)).map(drop),
            Op::Unblock(a, b) => engine.unblock(self.user_id(*a), self.user_id(*b)).map(drop),
            Op::Mute(a, b) => engine.mute(self.user_id(*a), self.user_id(*b)).map(drop),
            Op::Unmute(a, b) => engine.unmute(self.user_id(*a), self.user_id(*b)).map(drop),
            Op::Repost(a, p) => engine.repost(self.user_id(*a), self.post_id(*p)).map(drop),
            Op::CreateGroup(a) => engine.create_group(self.user_id(*a), "friends").map(drop),
            Op::AddMember(a, g, m) => engine
                .add_member(self.user_id(*a), self.group_id(*g), self.user_id(*m))
                .map(drop),
            Op::RemoveMember(a, g, m) => engine
                .remove_member(self.user_id(*a), self.group_id(*g), self.user_id(*m))
                .map(drop),
            Op::PostToGroup(a, g, text) => engine
                .post_to_group(self.user_id(*a), self.group_id(*g), text)
                .map(drop),
            Op::SendDirect(a, b, text) => engine
                .send_direct(self.user_id(*a), self.user_id(*b), text)
                .map(drop),
            Op::MarkRead(a, b) => engine
                .mark_read(self.user_id(*a), self.user_id(*b))
                .map(drop),
            Op::OpenDms(a, open) => engine
                .set_dm_policy(self.user_id(*a), dm_policy(*open))
                .map(drop),
            Op::Like(a, p) => engine.like(self.user_id(*a), self.post_id(*p)).map(drop),
            Op::Unlike(a, p) => engine.unlike(self.user_id(*a), self.post_id(*p)).map(drop),
            Op::LinkPhone(a, n) => engine
                .link_phone(self.user_id(*a), &phone_number(*n))
                .map(drop),
            // Any code: a poisoned engine refuses before it compares.
            Op::ConfirmPhone(a, _) => engine.confirm_phone(self.user_id(*a), "000000").map(drop),
            Op::TextCode(n, _) => engine
                .confirm_phone_by_text(&phone_number(*n), "000000")
                .map(drop),
            Op::UnlinkPhone(a) => engine.unlink_phone(self.user_id(*a)).map(drop),
            Op::Sleep(a, h) => engine
                .set_quiet_hours(self.user_id(*a), h.map(quiet_hours))
                .map(drop),
            Op::Protect(a) => engine.protect(self.user_id(*a)).map(drop),
            Op::Unprotect(a) => engine.unprotect(self.user_id(*a)).map(drop),
            Op::RequestFollow(a, b) => engine
                .request_follow(self.user_id(*a), self.user_id(*b))
                .map(drop),
            Op::Approve(a, b) => engine.approve_follow_request(self.user_id(*a), self.user_id(*b)),
            Op::Deny(a, b) => engine.deny_follow_request(self.user_id(*a), self.user_id(*b)),
            Op::Cancel(a, b) => engine.cancel_follow_request(self.user_id(*a), self.user_id(*b)),
            Op::DeleteAccount(a) => engine.delete_account(self.user_id(*a)),
        };
        match got {
            Err(Error::Poisoned) => Ok(()),
            // Bad input may still be refused for what it is; nothing is written.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::NotFound
                        | ErrorKind::Invalid
                        | ErrorKind::Conflict
                        | ErrorKind::Forbidden
                ) =>
            {
                Ok(())
            }
            other => Err(format!(
                "{op:?} after a storage failure: {other:?}, want Poisoned"
            )),
        }
    }

    fn reopen(&mut self) -> Check {
        if let Some(engine) = self.engine.take() {
            // A poisoned engine reports it on close; that is expected here.
            match engine.close() {
                Ok(()) | Err(Error::Poisoned) => {}
                Err(e) => return Err(format!("close: {e}")),
            }
        }
        self.engine = Some((self.reopen)().map_err(|e| format!("reopen: {e}"))?);
        match self.failed.take() {
            // Making an account public is one batch per approved request,
            // then one for the protection: any prefix of them may be stored.
            Some((Op::Unprotect(a), _)) => self.unprotect_partly(a)?,
            // A deletion is many batches after its mark: once the mark is
            // stored the account is gone, and calling again finishes it.
            Some((Op::DeleteAccount(a), with)) if self.finish_deletion(a)? => self.model = with,
            Some((Op::DeleteAccount(_), _)) => {}
            Some((op, with)) if self.was_stored(&op, &with)? => self.model = with,
            _ => {}
        }
        Ok(())
    }

    /// Whether the deletion of `a` (in flight when a write failed or the
    /// process died) stored its mark, in which case it is finished now as
    /// a caller calling again would.
    fn finish_deletion(&mut self, a: usize) -> Result<bool, String> {
        let Some(&id) = self.users.get(a) else {
            return Ok(false);
        };
        let engine = self.engine();
        let e = |e: Error| format!("resolving the deletion of {a}: {e}");
        if !engine.is_deleted(id).map_err(e)? {
            return Ok(false);
        }
        match engine.delete_account(id) {
            Ok(()) | Err(Error::AccountDeleted(_)) => Ok(true),
            Err(other) => Err(e(other)),
        }
    }

    /// Brings the model to what an interrupted [`Op::Unprotect`] of `a`
    /// left in the engine (the check that follows proves the rest).
    fn unprotect_partly(&mut self, a: usize) -> Check {
        let Some(&id) = self.users.get(a) else {
            return Ok(());
        };
        let e = |e: Error| format!("resolving unprotect: {e}");
        let index: HashMap<UserId, usize> = self
            .users
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i))
            .collect();
        let engine = self.engine();
        let pending = self.users_of(|c| engine.follow_requests(id, c, 3), &index)?;
        let public = !engine.is_protected(id).map_err(e)?;
        self.model.unprotect_partly(a, &pending, public);
        Ok(())
    }

    /// Whether the failed `op` was stored, judged from the ground truth;
    /// the full check that follows proves it was stored whole.
    fn was_stored(&mut self, op: &Op, if_stored: &Model) -> Result<bool, String> {
        let engine = self.engine();
        let e = |e: Error| format!("resolving {op:?}: {e}");
        Ok(match op {
            Op::CreateUser(name) => match engine.user_by_name(name) {
                Ok(user) => {
                    self.users.push(user.id);
                    true
                }
                Err(Error::UnknownUsername(_)) => false,
                Err(other) => return Err(e(other)),
            },
            Op::Follow(a, b) => engine
                .is_following(self.user_id(*a), self.user_id(*b))
                .map_err(e)?,
            Op::Unfollow(a, b) => !engine
                .is_following(self.user_id(*a), self.user_id(*b))
                .map_err(e)?,
            Op::Post(a, _) => {
                // As the author sees their own posts: a protected account's
                // are hidden from everyone else.
                let a = self.user_id(*a);
                let newest = engine.author_timeline_as(a, a, None, 1).map_err(e)?;
                match newest.posts.first() {
                    Some(p) if !self.posts.contains(&p.id) => {
                        self.posts.push(p.id);
                        true
                    }
                    _ => false,
                }
            }
            Op::Delete(a, p) => matches!(
                engine.get_post_as(self.user_id(*a), self.post_id(*p)),
                Err(Error::PostDeleted(_))
            ),
            Op::Block(a, b) => engine
                .is_blocking(self.user_id(*a), self.user_id(*b))
                .map_err(e)?,
            Op::Unblock(a, b) => !engine
                .is_blocking(self.user_id(*a), self.user_id(*b))
                .map_err(e)?,
            Op::Mute(a, b) | Op::Unmute(a, b) => {
                let (a, b) = (self.user_id(*a), self.user_id(*b));
                let muted = engine
                    .mutes(a, None, starling_core::MAX_PAGE_SIZE)
                    .map_err(e)?
                    .users
                    .contains(&b);
                muted == matches!(op, Op::Mute(..))
            }
            Op::CreateGroup(a) => {
                let theirs = engine.groups(self.user_id(*a)).map_err(e)?;
                match theirs.last() {
                    Some(g) if !self.groups.contains(&g.id) => {
                        self.groups.push(g.id);
                        true
                    }
                    _ => false,
                }
            }
            Op::AddMember(a, g, m) | Op::RemoveMember(a, g, m) => {
                let page = engine
                    .group_members(
                        self.user_id(*a),
                        self.group_id(*g),
                        None,
                        starling_core::MAX_PAGE_SIZE,
                    )
                    .map_err(e)?;
                page.users.contains(&self.user_id(*m)) == matches!(op, Op::AddMember(..))
            }
            Op::Repost(a, _) | Op::PostToGroup(a, _, _) => {
                let a = self.user_id(*a);
                let newest = engine.author_timeline_as(a, a, None, 1).map_err(e)?;
                match newest.posts.first() {
                    Some(p) if !self.posts.contains(&p.id) => {
                        self.posts.push(p.id);
                        true
                    }
                    _ => false,
                }
            }
            Op::SendDirect(a, b, _) => {
                let page = engine
                    .messages(self.user_id(*a), self.user_id(*b), None, 1)
                    .map_err(e)?;
                match page.messages.first() {
                    Some(m) if !self.messages.contains(&m.id) => {
                        self.messages.push(m.id);
                        true
                    }
                    _ => false,
                }
            }
            // Stored or not, judged by the state it leaves: no unread.
            Op::MarkRead(a, b) => {
                let page = engine
                    .conversations(self.user_id(*a), None, starling_core::MAX_PAGE_SIZE)
                    .map_err(e)?;
                page.conversations
                    .iter()
                    .all(|c| c.with != self.user_id(*b) || c.unread == 0)
            }
            Op::OpenDms(a, open) => engine.profile(self.user_id(*a)).map_err(e)?.dms_open == *open,
            Op::Like(a, p) | Op::Unlike(a, p) => {
                let likes = engine
                    .likes_post(self.user_id(*a), self.post_id(*p))
                    .map_err(e)?;
                likes == matches!(op, Op::Like(..))
            }
            // Judged by the whole phone state: links, pending links with
            // their attempts, and the texts queued.
            Op::LinkPhone(..) | Op::ConfirmPhone(..) | Op::TextCode(..) | Op::UnlinkPhone(_) => {
                self.phone_state(if_stored)?.is_empty()
            }
            Op::Sleep(a, _) => {
                let a_index = *a;
                engine.profile(self.user_id(*a)).map_err(e)?.quiet_hours
                    == if_stored.quiet_hours(a_index).map(quiet_hours)
            }
            Op::Protect(a) => engine.is_protected(self.user_id(*a)).map_err(e)?,
            // Judged by the state left (see `unprotect_partly` for the
            // partial states the harness resolves itself).
            Op::Unprotect(a) => !engine.is_protected(self.user_id(*a)).map_err(e)?,
            Op::RequestFollow(a, b) => engine
                .sent_follow_requests(self.user_id(*a), None, starling_core::MAX_PAGE_SIZE)
                .map_err(e)?
                .users
                .contains(&self.user_id(*b)),
            Op::Approve(a, b) => engine
                .is_following(self.user_id(*b), self.user_id(*a))
                .map_err(e)?,
            Op::Deny(a, b) | Op::Cancel(b, a) => !engine
                .follow_requests(self.user_id(*a), None, starling_core::MAX_PAGE_SIZE)
                .map_err(e)?
                .users
                .contains(&self.user_id(*b)),
            // Resolved by `finish_deletion` before this is asked.
            Op::DeleteAccount(a) => engine.is_deleted(self.user_id(*a)).map_err(e)?,
            Op::Reopen | Op::Check => false,
        })
    }

    /// Waits for fan-out, then compares every user's lists, counts and
    /// timelines, and every post, with the model.
    pub fn check(&self) -> Check {
        self.check_with_pages(3)
    }

    /// [`Harness::check`], reading lists and timelines `page` at a time.
    pub fn check_with_pages(&self, page: usize) -> Check {
        let engine = self.engine();
        match engine.wait_for_fanout() {
            // Poisoned by a fan-out batch: the timelines must still be right.
            Ok(()) | Err(Error::Poisoned) => {}
            Err(e) => return Err(format!("fan-out: {e}")),
        }
        let index: HashMap<UserId, usize> = self
            .users
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i))
            .collect();
        let post_index: HashMap<PostId, usize> = self
            .posts
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i))
            .collect();
        let err = |what: &str, e: Error| format!("{what}: {e}");
        for (i, &id) in self.users.iter().enumerate() {
            if self.model.is_deleted(i) {
                // Gone: every read of it says so.
                match (engine.user(id), engine.followers(id, None, page)) {
                    (Err(Error::AccountDeleted(_)), Err(Error::AccountDeleted(_))) => continue,
                    other => return Err(format!("deleted user {i}: {other:?}")),
                }
            }
            let name = self.model.name(i);
            let user = engine.user(id).map_err(|e| err("user", e))?;
            same("name", user.name.as_str(), name)?;
            let by_name = engine
                .user_by_name(&name.to_ascii_uppercase())
                .map_err(|e| err("user_by_name", e))?;
            same("user_by_name", &by_name.id, &id)?;

            let followers = self.users_of(|c| engine.followers(id, c, page), &index)?;
            same(
                &format!("followers of {i}"),
                &followers,
                &self.model.followers(i),
            )?;
            let following = self.users_of(|c| engine.following(id, c, page), &index)?;
            same(
                &format!("following of {i}"),
                &following,
                &self.model.following(i),
            )?;
            let counts = engine.counts(id).map_err(|e| err("counts", e))?;
            same(
                "follower count",
                &(counts.followers as usize),
                &followers.len(),
            )?;
            same(
                "following count",
                &(counts.following as usize),
                &following.len(),
            )?;

            let home = self.posts_of(|c| engine.home_timeline(id, c, page), &post_index)?;
            same(
                &format!("home timeline of {i}"),
                &home,
                &self.model.home_timeline(i),
            )?;
            let own = self.posts_of(|c| engine.author_timeline(id, c, page), &post_index)?;
            same(
                &format!("posts of {i}"),
                &own,
                &self.model.author_timeline(i),
            )?;
        }
        if !engine.is_poisoned() {
            let report = engine.check().map_err(|e| err("check", e))?;
            if !report.is_clean() {
                return Err(format!("check found {:?}", report.problems));
            }
        }
        for (i, &id) in self.posts.iter().enumerate() {
            match (engine.get_post(id), self.model.public_view(i)) {
                (Ok(p), PublicView::Visible(author, text)) => {
                    same("post author", &p.author, &self.users[author])?;
                    same("post text", p.text.as_str(), text)?;
                    same(
                        &format!("likes of post {i}"),
                        &p.likes,
                        &self.model.like_count(i),
                    )?;
                    let original = p.repost_of.map(|o| self.posts.iter().position(|x| *x == o));
                    same("repost of", &original, &self.model.repost_of(i).map(Some))?;
                }
                (Err(Error::PostDeleted(_)), PublicView::Deleted)
                | (Err(Error::UnknownPost(_)), PublicView::Hidden) => {}
                (got, want) => return Err(format!("post {i}: engine {got:?}, model {want:?}")),
            }
        }
        for (g, &id) in self.groups.iter().enumerate() {
            if self
                .model
                .group_owner(g)
                .is_some_and(|o| self.model.is_deleted(o))
            {
                // Deleted with its owner.
                continue;
            }
            let Some(owner) =
                (0..self.users.len()).find(|&u| engine.group(self.users[u], id).is_ok())
            else {
                return Err(format!("group {g} has no owner"));
            };
            let members = self.users_of(
                |c| engine.group_members(self.users[owner], id, c, page),
                &index,
            )?;
            same(
                &format!("members of group {g}"),
                &members,
                &self.model.members(g),
            )?;
        }
        let message_index: HashMap<PostId, usize> = self
            .messages
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i))
            .collect();
        for (a, &ida) in self.users.iter().enumerate() {
            if self.model.is_deleted(a) {
                continue;
            }
            let mut conversations = Vec::new();
            let mut cursor = None;
            loop {
                let p = engine
                    .conversations(ida, cursor.as_ref(), page)
                    .map_err(|e| err("conversations", e))?;
                for c in &p.conversations {
                    let other = *index.get(&c.with).ok_or("unknown user in a conversation")?;
                    let last = *message_index
                        .get(&c.last)
                        .ok_or("unknown message in a conversation")?;
                    conversations.push((other, last, c.unread));
                }
                match p.next {
                    Some(c) => cursor = Some(roundtrip(c)?),
                    None => break,
                }
            }
            same(
                &format!("conversations of {a}"),
                &conversations,
                &self.model.conversations(a),
            )?;
            for &(other, _, _) in &conversations {
                let mut got = Vec::new();
                let mut cursor = None;
                loop {
                    let p = engine
                        .messages(ida, self.users[other], cursor.as_ref(), page)
                        .map_err(|e| err("messages", e))?;
                    for m in &p.messages {
                        let i = *message_index.get(&m.id).ok_or("unknown message")?;
                        let (from, _) = self.model.message(i).ok_or("message not in the model")?;
                        same("message sender", &m.from, &self.users[from])?;
                        got.push(i);
                    }
                    match p.next {
                        Some(c) => cursor = Some(roundtrip(c)?),
                        None => break,
                    }
                }
                same(
                    &format!("messages of {a} with {other}"),
                    &got,
                    &self.model.messages(a, other),
                )?;
            }
            let profile = engine.profile(ida).map_err(|e| err("profile", e))?;
            same(
                &format!("DMs open for {a}"),
                &profile.dms_open,
                &self.model.dms_open(a),
            )?;
            same(
                &format!("quiet hours of {a}"),
                &profile.quiet_hours,
                &self.model.quiet_hours(a).map(quiet_hours),
            )?;
            let blocks = self.users_of(|c| engine.blocks(ida, c, page), &index)?;
            let mutes = self.users_of(|c| engine.mutes(ida, c, page), &index)?;
            let want_blocks: Vec<usize> = (0..self.users.len())
                .filter(|&b| self.model.blocks(a, b))
                .collect();
            let want_mutes: Vec<usize> = (0..self.users.len())
                .filter(|&b| self.model.mutes(a, b))
                .collect();
            same(&format!("blocks of {a}"), &blocks, &want_blocks)?;
            let protected = engine.is_protected(ida).map_err(|e| err("protected", e))?;
            same(
                &format!("protection of {a}"),
                &protected,
                &self.model.is_protected(a),
            )?;
            let requesters = self.users_of(|c| engine.follow_requests(ida, c, page), &index)?;
            same(
                &format!("follow requests to {a}"),
                &requesters,
                &self.model.requesters(a),
            )?;
            let requested = self.users_of(|c| engine.sent_follow_requests(ida, c, page), &index)?;
            same(
                &format!("follow requests of {a}"),
                &requested,
                &self.model.requested(a),
            )?;
            same(&format!("mutes of {a}"), &mutes, &want_mutes)?;
            self.check_export(a, &index, &post_index, &message_index)?;
            // A user's likes as they see them, and as the next user does.
            let other = (a + 1) % self.users.len();
            for viewer in [a, other] {
                if self.model.is_deleted(viewer) {
                    continue;
                }
                let liked = self.posts_of(
                    |c| engine.liked_posts(self.users[viewer], ida, c, page),
                    &post_index,
                )?;
                same(
                    &format!("likes of {a} seen by {viewer}"),
                    &liked,
                    &self.model.liked_posts(viewer, a),
                )?;
            }
        }
        // Who liked each post, as every user sees it; in a large store (the
        // crash test's thousands of users and posts) as two users per post
        // see it, so that a check stays linear in the store's size.
        let users = self.users.len();
        let every_pair = users * self.posts.len() <= LIKERS_PAIRS;
        for (p, &post) in self.posts.iter().enumerate() {
            let viewers: Vec<usize> = if every_pair {
                (0..users).collect()
            } else {
                vec![p % users, (p * 7 + 1) % users]
            };
            for a in viewers {
                let ida = self.users[a];
                let got = match engine.likers(ida, post, None, page) {
                    Err(e) => Err(Failure::of(&e)),
                    Ok(_) => Ok(self.users_of(|c| engine.likers(ida, post, c, page), &index)?),
                };
                same(
                    &format!("likers of post {p} seen by {a}"),
                    &got,
                    &self.model.likers(a, p),
                )?;
            }
        }
        self.check_changes(page, &index, &post_index)?;
        match self.phone_state(&self.model)?.first() {
            Some(difference) => Err(difference.clone()),
            None => Ok(()),
        }
    }

    /// Reads the whole change feed `page` records at a time, each page
    /// from the cursor the previous one returned (through its string
    /// form), and compares it with the model's: the same changes in the
    /// same order, at growing positions; a read from the last cursor
    /// finds nothing more.
    fn check_changes(
        &self,
        page: usize,
        index: &HashMap<UserId, usize>,
        post_index: &HashMap<PostId, usize>,
    ) -> Check {
        let engine = self.engine();
        let user = |id: UserId| {
            index
                .get(&id)
                .copied()
                .ok_or_else(|| format!("unknown user {id} in the change feed"))
        };
        let post = |id: PostId| {
            post_index
                .get(&id)
                .copied()
                .ok_or_else(|| format!("unknown post {id} in the change feed"))
        };
        let mut got = Vec::new();
        let mut cursor: Option<Cursor> = None;
        let mut last = 0;
        loop {
            let p = engine
                .changes(cursor.as_ref(), page)
                .map_err(|e| format!("changes: {e}"))?;
            for r in &p.changes {
                if r.position <= last {
                    return Err(format!("change feed: position {} after {last}", r.position));
                }
                last = r.position;
                got.push(match r.change {
                    Change::Posted { post: p, author } => {
                        ModelChange::Posted(post(p)?, user(author)?)
                    }
                    Change::Deleted { post: p, author } => {
                        ModelChange::Deleted(post(p)?, user(author)?)
                    }
                    Change::Followed { follower, followee } => {
                        ModelChange::Followed(user(follower)?, user(followee)?)
                    }
                    Change::Unfollowed { follower, followee } => {
                        ModelChange::Unfollowed(user(follower)?, user(followee)?)
                    }
                    Change::Liked { user: u, post: p } => ModelChange::Liked(user(u)?, post(p)?),
                    Change::Unliked { user: u, post: p } => {
                        ModelChange::Unliked(user(u)?, post(p)?)
                    }
                    other => return Err(format!("change feed: unexpected {other:?}")),
                });
            }
            let done = p.changes.len() < page;
            cursor = Some(roundtrip(p.next)?);
            if done {
                break;
            }
        }
        let more = engine
            .changes(cursor.as_ref(), page)
            .map_err(|e| format!("changes: {e}"))?;
        if !more.changes.is_empty() {
            return Err(format!("change feed: more after the end: {more:?}"));
        }
        same("change feed", got.as_slice(), self.model.changes())
    }

    /// Where the engine's phones, pending links and queued texts differ
    /// from `model`'s (empty when they agree).
    fn phone_state(&self, model: &Model) -> Result<Vec<String>, String> {
        let engine = self.engine();
        let err = |what: &str, e: Error| format!("{what}: {e}");
        let number = |p: &Phone| (0..PHONES).find(|&n| phone_number(n) == p.as_str());
        let mut differences = Vec::new();
        for (i, &id) in self.users.iter().enumerate() {
            if model.is_deleted(i) {
                continue;
            }
            let phone = engine.phone(id).map_err(|e| err("phone", e))?;
            let got = phone.as_ref().map(number);
            let want = model.phone_of(i).map(Some);
            if got != want {
                differences.push(format!("phone of {i}: engine {got:?}, model {want:?}"));
            }
            let pending = engine
                .pending_phone(id)
                .map_err(|e| err("pending_phone", e))?;
            let got = pending.map(|p| (number(&p.phone), p.attempts_left));
            let want = model.pending_phone(i).map(|(n, left)| (Some(n), left));
            if got != want {
                differences.push(format!(
                    "pending phone of {i}: engine {got:?}, model {want:?}"
                ));
            }
        }
        for n in 0..PHONES {
            let holder = engine
                .user_by_phone(&phone_number(n))
                .map_err(|e| err("user_by_phone", e))?
                .and_then(|id| self.users.iter().position(|u| *u == id));
            let want = (0..self.users.len()).find(|&i| model.phone_of(i) == Some(n));
            if holder != want {
                differences.push(format!(
                    "holder of number {n}: engine {holder:?}, model {want:?}"
                ));
            }
        }
        // Every queued text: the model leases none, so all are there.
        let mut due = Vec::new();
        engine
            .backend()
            .due_deliveries(u64::MAX, 1 << 20, &mut due)
            .map_err(|e| err("due_deliveries", e))?;
        let mut got = Vec::with_capacity(due.len());
        for d in due {
            let recipient = self
                .users
                .iter()
                .position(|u| *u == d.id.recipient)
                .ok_or_else(|| format!("a text to unknown user {}", d.id.recipient))?;
            let phone = number(&d.phone).ok_or_else(|| format!("a text to {}", d.phone))?;
            let text = if d.kind == DeliveryKind::Direct {
                d.text
            } else {
                String::new()
            };
            got.push(ModelText {
                recipient,
                kind: d.kind,
                phone,
                text,
            });
        }
        got.sort();
        let want = model.outbox();
        if got != want {
            differences.push(format!("queued texts: engine {got:?}, model {want:?}"));
        }
        Ok(differences)
    }

    /// Compares `a`'s export, parsed back, with the model: accounts,
    /// protection, own posts, likes, owned groups and conversations.
    fn check_export(
        &self,
        a: usize,
        index: &HashMap<UserId, usize>,
        post_index: &HashMap<PostId, usize>,
        message_index: &HashMap<PostId, usize>,
    ) -> Check {
        let mut out = Vec::new();
        let summary = self
            .engine()
            .export(self.users[a], &mut out)
            .map_err(|e| format!("export of {a}: {e}"))?;
        same("export bytes", &(out.len() as u64), &summary.bytes)?;
        let doc: Value =
            serde_json::from_slice(&out).map_err(|e| format!("export of {a} is not JSON: {e}"))?;
        let what = |field: &str| format!("export of {a}: {field}");
        let list = |v: &Value, field: &str| -> Result<Vec<Value>, String> {
            v.as_array().cloned().ok_or_else(|| what(field))
        };
        let user = |v: &Value| -> Result<usize, String> {
            let id = UserId(v["id"].as_u64().ok_or_else(|| what("user id"))?);
            let i = *index.get(&id).ok_or_else(|| what("unknown user"))?;
            same(
                &what("username"),
                &v["username"],
                &Value::from(self.model.name(i)),
            )?;
            Ok(i)
        };
        let post = |v: &Value, ids: &HashMap<PostId, usize>| -> Result<usize, String> {
            let id = v
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| what("post id"))?;
            ids.get(&PostId(id))
                .copied()
                .ok_or_else(|| what("unknown post"))
        };
        same(&what("user"), &user(&doc["user"])?, &a)?;
        same(
            &what("protected"),
            &doc["user"]["protected"].as_bool(),
            &Some(self.model.is_protected(a)),
        )?;
        let accounts: [(&str, Vec<usize>); 6] = [
            ("following", self.model.following(a)),
            ("followers", self.model.followers(a)),
            ("follow_requests", self.model.requesters(a)),
            ("sent_follow_requests", self.model.requested(a)),
            (
                "blocks",
                (0..self.users.len())
                    .filter(|&b| self.model.blocks(a, b))
                    .collect(),
            ),
            (
                "mutes",
                (0..self.users.len())
                    .filter(|&b| self.model.mutes(a, b))
                    .collect(),
            ),
        ];
        for (field, want) in accounts {
            let got: Vec<usize> = list(&doc[field], field)?
                .iter()
                .map(user)
                .collect::<Result<_, _>>()?;
            same(&what(field), &got, &want)?;
        }
        // Own posts: every live one, newest first.
        let mut posts = Vec::new();
        for json in list(&doc["posts"], "posts")? {
            let p = post(&json["id"], post_index)?;
            if let Some((_, text)) = self.model.post_of(p)
                && self.model.repost_of(p).is_none()
            {
                same(&what("post text"), &json["text"], &Value::from(text))?;
            }
            posts.push(p);
        }
        same(&what("posts"), &posts, &self.model.own_posts(a))?;
        // Likes: every one, newest post first; the ones the user sees with
        // their text.
        let mut liked: Vec<usize> = (0..self.posts.len())
            .filter(|&p| self.model.repost_of(p).is_none() && self.model.likes_post(a, p))
            .collect();
        liked.sort_by_key(|&p| std::cmp::Reverse(self.posts[p]));
        let likes = list(&doc["likes"], "likes")?;
        let got: Vec<usize> = likes
            .iter()
            .map(|l| post(&l["post"]["id"], post_index))
            .collect::<Result<_, _>>()?;
        same(&what("likes"), &got, &liked)?;
        let visible: Vec<usize> = likes
            .iter()
            .zip(&got)
            .filter(|(l, _)| l["post"].get("text").is_some())
            .map(|(_, &p)| p)
            .collect();
        same(
            &what("visible likes"),
            &visible,
            &self.model.liked_posts(a, a),
        )?;
        // Owned groups with their members.
        let groups = list(&doc["groups"], "groups")?;
        let want: Vec<usize> = (0..self.groups.len())
            .filter(|&g| self.model.group_owner(g) == Some(a))
            .collect();
        same(&what("group count"), &groups.len(), &want.len())?;
        for (json, &g) in groups.iter().zip(&want) {
            same(
                &what("group id"),
                &json["id"].as_u64(),
                &Some(self.groups[g].0),
            )?;
            let members: Vec<usize> = list(&json["members"], "members")?
                .iter()
                .map(user)
                .collect::<Result<_, _>>()?;
            same(&what("group members"), &members, &self.model.members(g))?;
        }
        // The groups of others the user is in, with their owners.
        let member_of = list(&doc["member_of"], "member_of")?;
        let mut got = Vec::with_capacity(member_of.len());
        for json in &member_of {
            let id = GroupId(json["id"].as_u64().ok_or_else(|| what("member_of id"))?);
            let g = self
                .groups
                .iter()
                .position(|x| *x == id)
                .ok_or_else(|| what("unknown group"))?;
            same(
                &what("member_of owner"),
                &Some(user(&json["owner"])?),
                &self.model.group_owner(g),
            )?;
            got.push(g);
        }
        same(&what("member_of"), &got, &self.model.member_groups(a))?;
        // Conversations, newest first, with every message both ways.
        let conversations = list(&doc["conversations"], "conversations")?;
        let want = self.model.conversations(a);
        same(
            &what("conversation count"),
            &conversations.len(),
            &want.len(),
        )?;
        for (json, &(other, _, unread)) in conversations.iter().zip(&want) {
            same(&what("conversation with"), &user(&json["with"])?, &other)?;
            same(&what("unread"), &json["unread"].as_u64(), &Some(unread))?;
            let messages: Vec<usize> = list(&json["messages"], "messages")?
                .iter()
                .map(|m| post(&m["id"], message_index))
                .collect::<Result<_, _>>()?;
            same(&what("messages"), &messages, &self.model.messages(a, other))?;
        }
        Ok(())
    }

    fn users_of(
        &self,
        page: impl Fn(Option<&Cursor>) -> starling_core::Result<starling_engine::UserPage>,
        index: &HashMap<UserId, usize>,
    ) -> Result<Vec<usize>, String> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let p = page(cursor.as_ref()).map_err(|e| format!("user page: {e}"))?;
            for u in &p.users {
                out.push(*index.get(u).ok_or_else(|| format!("unknown user id {u}"))?);
            }
            match p.next {
                Some(c) => cursor = Some(roundtrip(c)?),
                None => return Ok(out),
            }
        }
    }

    fn posts_of(
        &self,
        page: impl Fn(Option<&Cursor>) -> starling_core::Result<starling_engine::TimelinePage>,
        index: &HashMap<PostId, usize>,
    ) -> Result<Vec<usize>, String> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let p = page(cursor.as_ref()).map_err(|e| format!("timeline page: {e}"))?;
            for post in &p.posts {
                let i = *index
                    .get(&post.id)
                    .ok_or_else(|| format!("unknown post id {}", post.id))?;
                let (author, text) = self
                    .model
                    .post_of(i)
                    .ok_or_else(|| format!("post {i} should not show"))?;
                same("timeline post author", &post.author, &self.users[author])?;
                same("timeline post text", post.text.as_str(), text)?;
                same(
                    &format!("timeline likes of post {i}"),
                    &post.likes,
                    &self.model.like_count(i),
                )?;
                out.push(i);
            }
            match p.next {
                Some(c) => cursor = Some(roundtrip(c)?),
                None => return Ok(out),
            }
        }
    }
}

/// The code to enter for `user`'s pending link: its own (`right`, and
/// when `phone` is given, only if the link is for that number), or one
/// that is none of the pending links' of the number it is for.
pub(crate) fn code_for<B: Backend>(
    engine: &Engine<B>,
    user: UserId,
    phone: Option<&str>,
    right: bool,
) -> Result<String, String> {
    let backend = engine.backend();
    let claim = backend
        .phone_claim(user)
        .map_err(|e| format!("phone_claim: {e}"))?;
    if right
        && let Some(c) = &claim
        && phone.is_none_or(|p| c.phone.as_str() == p)
    {
        return Ok(format_phone_code(c.code));
    }
    let mut taken: Vec<u32> = claim.iter().map(|c| c.code).collect();
    if let Some(p) = phone.and_then(|p| Phone::parse(p).ok()) {
        let mut claims = Vec::new();
        backend
            .phone_claims(&p, &mut claims)
            .map_err(|e| format!("phone_claims: {e}"))?;
        taken.extend(claims.iter().map(|c| c.code));
    }
    let wrong = (0..=taken.len() as u32)
        .find(|c| !taken.contains(c))
        .unwrap_or(0);
    Ok(format_phone_code(wrong))
}

/// The quiet hours an [`Op::Sleep`] hour asks for: eight hours from it at
/// UTC+1 (unchecked, so that an hour past 23 reaches the engine's check).
pub(crate) fn quiet_hours(start_hour: u8) -> QuietHours {
    QuietHours {
        start_hour,
        end_hour: (start_hour + 8) % 24,
        utc_offset_minutes: 60,
    }
}

/// Milliseconds since the Unix epoch by the wall clock.
fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The policy an [`Op::OpenDms`] flag asks for.
fn dm_policy(open: bool) -> DmPolicy {
    if open {
        DmPolicy::Open
    } else {
        DmPolicy::FollowedOnly
    }
}

/// Cursors travel as strings: check that they survive it.
fn roundtrip(c: Cursor) -> Result<Cursor, String> {
    c.to_string()
        .parse()
        .map_err(|e| format!("cursor {c}: {e}"))
}

fn same<T: PartialEq + std::fmt::Debug + ?Sized>(what: &str, got: &T, want: &T) -> Check {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: engine {got:?}, model {want:?}"))
    }
}
