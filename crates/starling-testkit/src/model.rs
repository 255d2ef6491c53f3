//! The reference model.

use std::collections::{BTreeMap, BTreeSet};

use starling_core::{
    Config, DeliveryKind, Error, ErrorKind, GroupId, PHONE_CODE_ATTEMPTS, PostId, PostText, UserId,
    Username, fit_sms,
};

/// What an operation returned, reduced to what the model can predict: a
/// value, or the error's kind and variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A user was created; its index.
    User(usize),
    /// A post was created (or, for a repeated repost, found); its index.
    Post(usize),
    /// A group was created; its index.
    Group(usize),
    /// A direct message was sent; its index.
    Message(usize),
    /// A count (of unread messages marked read).
    Count(u64),
    /// The operation changed something (`true`) or found it already done.
    Changed(bool),
    /// The operation failed with this error.
    Failed(Failure),
}

/// An error as the model predicts it: its [`ErrorKind`] and its variant.
/// Payloads (ids, reasons) are not compared: the model numbers users and
/// posts by index, not by the engine's ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    kind: ErrorKind,
    variant: String,
}

impl Failure {
    /// The failure `e` is: its kind and the name of its variant.
    pub fn of(e: &Error) -> Failure {
        // The variant's name opens its `Debug` form, as in `UnknownUser(7)`
        // or `TextTooLong { .. }`: every variant, including later ones,
        // has its own.
        let debug = format!("{e:?}");
        let variant = debug
            .split(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap_or_default()
            .to_owned();
        Failure {
            kind: e.kind(),
            variant,
        }
    }

    /// The kind of the error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// The failure of `e` (a representative: its payload does not matter).
fn failure(e: Error) -> Failure {
    Failure::of(&e)
}

#[derive(Clone, Debug)]
struct ModelPost {
    author: usize,
    text: String,
    deleted: bool,
    /// For a repost: the original's index.
    repost_of: Option<usize>,
    /// For a group post: the group's index.
    group: Option<usize>,
}

/// What anyone (no particular viewer) sees of a post by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublicView<'a> {
    /// Visible: its author and text.
    Visible(usize, &'a str),
    /// Deleted.
    Deleted,
    /// Not for everyone (a group post, a repost of a deleted post).
    Hidden,
}

/// Users, edges and posts, by index (users and posts are numbered in
/// creation order, which is also their id order in the engine).
#[derive(Clone, Debug)]
pub struct Model {
    config: Config,
    users: Vec<String>,
    /// (follower, followee) -> the followee's newest post index when followed.
    edges: BTreeMap<(usize, usize), Option<usize>>,
    posts: Vec<ModelPost>,
    blocks: BTreeSet<(usize, usize)>,
    mutes: BTreeSet<(usize, usize)>,
    /// Per group: its owner and members.
    groups: Vec<(usize, BTreeSet<usize>)>,
    /// Direct messages: (from, to).
    messages: Vec<(usize, usize)>,
    /// Per (owner, other): the conversation's newest message and the
    /// owner's unread count.
    conversations: BTreeMap<(usize, usize), (usize, u64)>,
    /// Users who take direct messages from anyone.
    dms_open: BTreeSet<usize>,
    /// (user, post): who likes which post (never a repost).
    likes: BTreeSet<(usize, usize)>,
    /// Confirmed phones: user -> number index.
    phones: BTreeMap<usize, usize>,
    /// Pending phone links: user -> (number index, attempts left).
    claims: BTreeMap<usize, (usize, u8)>,
    /// Every text queued in the device outbox, in order (the model has no
    /// lease, so none leaves).
    outbox: Vec<ModelText>,
    /// Quiet hours: user -> start hour (eight hours at UTC+1).
    quiet: BTreeMap<usize, u8>,
    /// Texts per (user, UTC day): (queued, over the cap).
    usage: BTreeMap<(usize, u32), (u64, u64)>,
    /// The UTC day texts are counted on now (the harness sets it).
    today: u32,
    /// Protected accounts.
    protected: BTreeSet<usize>,
    /// Pending follow requests: (requester, protected account).
    requests: BTreeSet<(usize, usize)>,
    /// The change feed, in order.
    changes: Vec<ModelChange>,
    /// Deleted accounts.
    deleted: BTreeSet<usize>,
}

/// A change-feed record the model expects, by model index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelChange {
    /// (post, author): a post, reply, repost or group post.
    Posted(usize, usize),
    /// (post, author).
    Deleted(usize, usize),
    /// (follower, followee).
    Followed(usize, usize),
    /// (follower, followee).
    Unfollowed(usize, usize),
    /// (user, post).
    Liked(usize, usize),
    /// (user, post).
    Unliked(usize, usize),
}

/// A text the model expects in the device outbox.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ModelText {
    /// Its recipient.
    pub recipient: usize,
    /// What it is.
    pub kind: DeliveryKind,
    /// The number index it is queued for.
    pub phone: usize,
    /// Its text, for a direct message; empty for a code or a notice (their
    /// wording is the engine's).
    pub text: String,
}

impl Model {
    /// An empty model with the engine's configuration.
    pub fn new(config: Config) -> Model {
        Model {
            config,
            users: Vec::new(),
            edges: BTreeMap::new(),
            posts: Vec::new(),
            blocks: BTreeSet::new(),
            mutes: BTreeSet::new(),
            groups: Vec::new(),
            messages: Vec::new(),
            conversations: BTreeMap::new(),
            dms_open: BTreeSet::new(),
            likes: BTreeSet::new(),
            phones: BTreeMap::new(),
            claims: BTreeMap::new(),
            outbox: Vec::new(),
            quiet: BTreeMap::new(),
            usage: BTreeMap::new(),
            today: 0,
            protected: BTreeSet::new(),
            requests: BTreeSet::new(),
            changes: Vec::new(),
            deleted: BTreeSet::new(),
        }
    }

    /// Applies a workload step (`Reopen` and `Check` change nothing).
    pub fn apply(&mut self, op: &crate::Op) -> Outcome {
        use crate::Op;
        match op {
            Op::CreateUser(name) => self.create_user(name),
            Op::Follow(a, b) => self.follow(*a, *b),
            Op::Unfollow(a, b) => self.unfollow(*a, *b),
            Op::Post(a, text) => self.post(*a, text),
            Op::Delete(a, p) => self.delete(*a, *p),
            Op::Block(a, b) => self.block(*a, *b),
            Op::Unblock(a, b) => self.unblock(*a, *b),
            Op::Mute(a, b) => self.mute(*a, *b),
            Op::Unmute(a, b) => self.unmute(*a, *b),
            Op::Repost(a, p) => self.repost(*a, *p),
            Op::CreateGroup(a) => self.create_group(*a),
            Op::AddMember(a, g, m) => self.add_member(*a, *g, *m),
            Op::RemoveMember(a, g, m) => self.remove_member(*a, *g, *m),
            Op::PostToGroup(a, g, text) => self.post_to_group(*a, *g, text),
            Op::SendDirect(a, b, text) => self.send_direct(*a, *b, text),
            Op::MarkRead(a, b) => self.mark_read(*a, *b),
            Op::OpenDms(a, open) => self.open_dms(*a, *open),
            Op::Like(a, p) => self.like(*a, *p),
            Op::Unlike(a, p) => self.unlike(*a, *p),
            Op::LinkPhone(a, n) => self.link_phone(*a, *n),
            Op::ConfirmPhone(a, right) => self.confirm_phone(*a, *right),
            Op::TextCode(n, u) => self.text_code(*n, *u),
            Op::UnlinkPhone(a) => self.unlink_phone(*a),
            Op::Sleep(a, h) => self.sleep(*a, *h),
            Op::Protect(a) => self.protect(*a),
            Op::Unprotect(a) => self.unprotect(*a),
            Op::RequestFollow(a, b) => self.request_follow(*a, *b),
            Op::Approve(a, b) => self.approve(*a, *b),
            Op::Deny(a, b) => self.deny(*a, *b),
            Op::Cancel(a, b) => self.cancel(*a, *b),
            Op::DeleteAccount(a) => self.delete_account(*a),
            Op::Reopen | Op::Check => Outcome::Changed(false),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The change feed: every change stored, in order.
    pub fn changes(&self) -> &[ModelChange] {
        &self.changes
    }

    /// How many users exist.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// How many posts were made (deleted ones included).
    pub fn post_count(&self) -> usize {
        self.posts.len()
    }

    /// Whether `user` names an account that is there (not deleted).
    fn known(&self, user: usize) -> Result<(), Failure> {
        self.present(user)?;
        if self.deleted.contains(&user) {
            return Err(failure(Error::AccountDeleted(UserId(0))));
        }
        Ok(())
    }

    /// Whether `user` names an account, deleted or not.
    fn present(&self, user: usize) -> Result<(), Failure> {
        if user < self.users.len() {
            Ok(())
        } else {
            Err(failure(Error::UnknownUser(UserId(0))))
        }
    }

    /// The newest account with this name (compared without case): a
    /// deleted account's name may go to a later one once its hold passed.
    fn holder(&self, name: &str) -> Option<usize> {
        self.users
            .iter()
            .rposition(|u| u.eq_ignore_ascii_case(name))
    }

    /// Creates a user. The name of a deleted account stays reserved for
    /// `name_hold_ms`, which never passes within a run (the model has no
    /// clock) unless it is 0.
    pub fn create_user(&mut self, name: &str) -> Outcome {
        let Ok(parsed) = Username::parse(name) else {
            return Outcome::Failed(failure(Error::InvalidUsername("")));
        };
        if let Some(holder) = self.holder(parsed.as_str()) {
            if !self.deleted.contains(&holder) {
                return Outcome::Failed(failure(Error::UsernameTaken(String::new())));
            }
            if self.config.name_hold_ms > 0 {
                return Outcome::Failed(failure(Error::UsernameReserved(String::new())));
            }
        }
        self.users.push(name.to_owned());
        Outcome::User(self.users.len() - 1)
    }

    /// A user's index by name.
    pub fn user_by_name(&self, name: &str) -> Result<usize, Failure> {
        if Username::parse(name).is_err() {
            return Err(failure(Error::InvalidUsername("")));
        }
        let user = self
            .holder(name)
            .ok_or_else(|| failure(Error::UnknownUsername(String::new())))?;
        self.known(user)?;
        Ok(user)
    }

    /// Whether `user`'s account was deleted.
    pub fn is_deleted(&self, user: usize) -> bool {
        self.deleted.contains(&user)
    }

    /// Deletes `a`'s account: its edges, requests and blocks both ways,
    /// its mutes, protection and likes, its memberships and groups, its
    /// phone and pending link, its settings; its posts become deleted.
    /// Others' mutes of it, its conversations and its queued texts stay
    /// (the model has no lease to drop the texts).
    pub fn delete_account(&mut self, a: usize) -> Outcome {
        if let Err(e) = self.known(a) {
            return Outcome::Failed(e);
        }
        // The change feed, in the order deletion walks: posts newest
        // first, followers, then followees in id order, likes newest post
        // first.
        let posts: Vec<usize> = (0..self.posts.len())
            .rev()
            .filter(|&p| self.posts[p].author == a && !self.posts[p].deleted)
            .collect();
        for p in posts {
            self.changes.push(ModelChange::Deleted(p, a));
        }
        let followers: Vec<usize> = self
            .edges
            .keys()
            .filter(|e| e.1 == a)
            .map(|e| e.0)
            .collect();
        let followees: Vec<usize> = self
            .edges
            .keys()
            .filter(|e| e.0 == a)
            .map(|e| e.1)
            .collect();
        for x in followers {
            self.changes.push(ModelChange::Unfollowed(x, a));
        }
        for y in followees {
            self.changes.push(ModelChange::Unfollowed(a, y));
        }
        let liked: Vec<usize> = self
            .likes
            .iter()
            .rev()
            .filter(|l| l.0 == a)
            .map(|l| l.1)
            .collect();
        for p in liked {
            self.changes.push(ModelChange::Unliked(a, p));
        }
        self.deleted.insert(a);
        self.edges.retain(|&(x, y), _| x != a && y != a);
        self.requests.retain(|&(x, y)| x != a && y != a);
        self.blocks.retain(|&(x, y)| x != a && y != a);
        self.mutes.retain(|&(x, _)| x != a);
        self.protected.remove(&a);
        self.likes.retain(|&(u, _)| u != a);
        for p in self.posts.iter_mut().filter(|p| p.author == a) {
            p.deleted = true;
        }
        for (owner, members) in &mut self.groups {
            members.remove(&a);
            if *owner == a {
                members.clear();
            }
        }
        self.phones.remove(&a);
        self.claims.remove(&a);
        self.dms_open.remove(&a);
        self.quiet.remove(&a);
        Outcome::Changed(true)
    }

    /// A user's name.
    pub fn name(&self, user: usize) -> &str {
        &self.users[user]
    }

    fn newest_post_of(&self, author: usize) -> Option<usize> {
        self.posts.iter().rposition(|p| p.author == author)
    }

    /// `a` follows `b`.
    pub fn follow(&mut self, a: usize, b: usize) -> Outcome {
        if a == b {
            return Outcome::Failed(failure(Error::SelfFollow));
        }
        if let Err(e) = self.known(a).and(self.known(b)) {
            return Outcome::Failed(e);
        }
        if self.edges.contains_key(&(a, b)) {
            return Outcome::Changed(false);
        }
        if self.blocked_either(a, b) {
            return Outcome::Failed(failure(Error::Blocked("")));
        }
        if self.protected.contains(&b) {
            return Outcome::Failed(failure(Error::Protected(UserId(0))));
        }
        self.add_edge(a, b);
        Outcome::Changed(true)
    }

    /// The edge `a -> b`, made now (its watermark: `b`'s newest post).
    fn add_edge(&mut self, a: usize, b: usize) {
        let since = self.newest_post_of(b);
        self.edges.insert((a, b), since);
        self.changes.push(ModelChange::Followed(a, b));
    }

    /// `a` protects their account: followers stay.
    pub fn protect(&mut self, a: usize) -> Outcome {
        if let Err(e) = self.known(a) {
            return Outcome::Failed(e);
        }
        Outcome::Changed(self.protected.insert(a))
    }

    /// `a` makes their account public: pending requests are approved,
    /// lowest requester first.
    pub fn unprotect(&mut self, a: usize) -> Outcome {
        if let Err(e) = self.known(a) {
            return Outcome::Failed(e);
        }
        for requester in self.requesters(a) {
            self.approve(a, requester);
        }
        Outcome::Changed(self.protected.remove(&a))
    }

    /// What an interrupted [`Model::unprotect`] of `a` left: the requests
    /// approved are those no longer in `pending` (the engine approves them
    /// lowest first), and the account is public when `public`.
    pub fn unprotect_partly(&mut self, a: usize, pending: &[usize], public: bool) {
        for requester in self.requesters(a) {
            if !pending.contains(&requester) {
                self.approve(a, requester);
            }
        }
        if public {
            self.protected.remove(&a);
        }
    }

    /// `a` asks to follow `b`.
    pub fn request_follow(&mut self, a: usize, b: usize) -> Outcome {
        if a == b {
            return Outcome::Failed(failure(Error::SelfFollow));
        }
        if let Err(e) = self.known(a).and(self.known(b)) {
            return Outcome::Failed(e);
        }
        if self.edges.contains_key(&(a, b)) {
            return Outcome::Changed(false);
        }
        if self.blocked_either(a, b) {
            return Outcome::Failed(failure(Error::Blocked("")));
        }
        if !self.protected.contains(&b) {
            return Outcome::Failed(failure(Error::NotProtected(UserId(0))));
        }
        Outcome::Changed(self.requests.insert((a, b)))
    }

    fn no_request() -> Outcome {
        Outcome::Failed(failure(Error::UnknownFollowRequest {
            from: UserId(0),
            to: UserId(0),
        }))
    }

    /// `a` approves `b`'s request.
    pub fn approve(&mut self, a: usize, b: usize) -> Outcome {
        if let Err(e) = self.known(a).and(self.known(b)) {
            return Outcome::Failed(e);
        }
        if !self.requests.remove(&(b, a)) {
            return Self::no_request();
        }
        if !self.edges.contains_key(&(b, a)) && !self.blocked_either(a, b) {
            self.add_edge(b, a);
        }
        Outcome::Changed(true)
    }

    /// `a` denies `b`'s request.
    pub fn deny(&mut self, a: usize, b: usize) -> Outcome {
        if let Err(e) = self.known(a).and(self.known(b)) {
            return Outcome::Failed(e);
        }
        if self.requests.remove(&(b, a)) {
            Outcome::Changed(true)
        } else {
            Self::no_request()
        }
    }

    /// `a` withdraws their request to `b` (the account asked is checked
    /// first, as the engine does).
    pub fn cancel(&mut self, a: usize, b: usize) -> Outcome {
        if let Err(e) = self.known(b).and(self.known(a)) {
            return Outcome::Failed(e);
        }
        if self.requests.remove(&(a, b)) {
            Outcome::Changed(true)
        } else {
            Self::no_request()
        }
    }

    /// Whether `a` is protected.
    pub fn is_protected(&self, a: usize) -> bool {
        self.protected.contains(&a)
    }

    /// Who asked to follow `a` and waits, ascending.
    pub fn requesters(&self, a: usize) -> Vec<usize> {
        self.requests
            .iter()
            .filter(|(_, to)| *to == a)
            .map(|(from, _)| *from)
            .collect()
    }

    /// Whom `a` asked to follow and waits for, ascending.
    pub fn requested(&self, a: usize) -> Vec<usize> {
        self.requests
            .range((a, 0)..(a + 1, 0))
            .map(|(_, to)| *to)
            .collect()
    }

    /// Whether protection lets `viewer` read `author`.
    fn reads(&self, viewer: usize, author: usize) -> bool {
        viewer == author
            || !self.protected.contains(&author)
            || self.edges.contains_key(&(viewer, author))
    }

    /// `a` unfollows `b`.
    pub fn unfollow(&mut self, a: usize, b: usize) -> Outcome {
        if a == b {
            return Outcome::Failed(failure(Error::SelfFollow));
        }
        if let Err(e) = self.known(a).and(self.known(b)) {
            return Outcome::Failed(e);
        }
        Outcome::Changed(self.remove_edge(a, b))
    }

    /// Removes the edge `a -> b`; returns whether there was one.
    fn remove_edge(&mut self, a: usize, b: usize) -> bool {
        let removed = self.edges.remove(&(a, b)).is_some();
        if removed {
            self.changes.push(ModelChange::Unfollowed(a, b));
        }
        removed
    }

    /// Stores a new post and its change record; returns its index.
    fn push_post(&mut self, post: ModelPost) -> Outcome {
        let author = post.author;
        self.posts.push(post);
        let p = self.posts.len() - 1;
        self.changes.push(ModelChange::Posted(p, author));
        Outcome::Post(p)
    }

    /// `author` posts `text`.
    pub fn post(&mut self, author: usize, text: &str) -> Outcome {
        if let Err(e) = PostText::parse(text, self.config.max_post_chars) {
            return Outcome::Failed(Failure::of(&e));
        }
        if let Err(e) = self.known(author) {
            return Outcome::Failed(e);
        }
        self.push_post(ModelPost {
            author,
            text: text.to_owned(),
            deleted: false,
            repost_of: None,
            group: None,
        })
    }

    fn blocked_either(&self, a: usize, b: usize) -> bool {
        self.blocks.contains(&(a, b)) || self.blocks.contains(&(b, a))
    }

    /// Whether `viewer` may see post `p` (`mutes`: whether the viewer's
    /// mutes apply, as on the home timeline).
    fn may_see(&self, viewer: usize, p: usize, mutes: bool) -> bool {
        let post = &self.posts[p];
        if post.deleted
            || self.blocked_either(viewer, post.author)
            || (mutes && self.mutes.contains(&(viewer, post.author)))
            || !self.reads(viewer, post.author)
        {
            return false;
        }
        if let Some(g) = post.group
            && viewer != post.author
            && !(self.groups[g].1.contains(&viewer)
                && self.edges.contains_key(&(viewer, post.author)))
        {
            return false;
        }
        post.repost_of
            .is_none_or(|o| self.may_see(viewer, o, mutes))
    }

    /// `a` blocks `b`: edges both ways go.
    pub fn block(&mut self, a: usize, b: usize) -> Outcome {
        if a == b {
            return Outcome::Failed(failure(Error::NotAllowed("")));
        }
        if let Err(e) = self.known(a).and(self.known(b)) {
            return Outcome::Failed(e);
        }
        let new = self.blocks.insert((a, b));
        self.remove_edge(a, b);
        self.remove_edge(b, a);
        self.requests.remove(&(a, b));
        self.requests.remove(&(b, a));
        Outcome::Changed(new)
    }

    /// `a` unblocks `b`.
    pub fn unblock(&mut self, a: usize, b: usize) -> Outcome {
        if let Err(e) = self.known(a).and(self.known(b)) {
            return Outcome::Failed(e);
        }
        Outcome::Changed(self.blocks.remove(&(a, b)))
    }

    /// `a` mutes `b`.
    pub fn mute(&mut self, a: usize, b: usize) -> Outcome {
        if a == b {
            return Outcome::Failed(failure(Error::NotAllowed("")));
        }
        if let Err(e) = self.known(a).and(self.known(b)) {
            return Outcome::Failed(e);
        }
        Outcome::Changed(self.mutes.insert((a, b)))
    }

    /// `a` unmutes `b` (a deleted account too: mutes of it stay).
    pub fn unmute(&mut self, a: usize, b: usize) -> Outcome {
        if let Err(e) = self.known(a).and(self.present(b)) {
            return Outcome::Failed(e);
        }
        Outcome::Changed(self.mutes.remove(&(a, b)))
    }

    /// Post `p` as `viewer` may get it by id: an error kind, or the index.
    fn get_as(&self, viewer: usize, p: usize) -> Result<usize, Failure> {
        match self.posts.get(p) {
            None => Err(failure(Error::UnknownPost(PostId(0)))),
            Some(post) if post.deleted => Err(failure(Error::PostDeleted(PostId(0)))),
            Some(_) if !self.may_see(viewer, p, false) => {
                Err(failure(Error::UnknownPost(PostId(0))))
            }
            Some(_) => Ok(p),
        }
    }

    /// `a` reposts post `p` (a repost reposts its original).
    pub fn repost(&mut self, a: usize, p: usize) -> Outcome {
        if let Err(e) = self.known(a) {
            return Outcome::Failed(e);
        }
        let original = match self.get_as(a, p) {
            Ok(p) => match self.posts[p].repost_of {
                Some(o) => match self.get_as(a, o) {
                    Ok(o) => o,
                    Err(e) => return Outcome::Failed(e),
                },
                None => p,
            },
            Err(e) => return Outcome::Failed(e),
        };
        if self.posts[original].group.is_some()
            || (self.posts[original].author != a
                && self.protected.contains(&self.posts[original].author))
        {
            return Outcome::Failed(failure(Error::NotAllowed("")));
        }
        if let Some(existing) = self
            .posts
            .iter()
            .position(|q| q.author == a && q.repost_of == Some(original) && !q.deleted)
        {
            return Outcome::Post(existing);
        }
        self.push_post(ModelPost {
            author: a,
            text: String::new(),
            deleted: false,
            repost_of: Some(original),
            group: None,
        })
    }

    /// The post a like of post `p` by `a` is about: `p`, or for a repost
    /// its original, as `a` may get them by id; a live public post whose
    /// author blocks `a` or is blocked by them is refused as blocked.
    fn like_target(&self, a: usize, p: usize) -> Result<usize, Failure> {
        let refused = |e: Failure| {
            if e != failure(Error::UnknownPost(PostId(0))) || p >= self.posts.len() {
                return e;
            }
            let o = self.posts[p].repost_of.unwrap_or(p);
            let original = &self.posts[o];
            if !original.deleted
                && original.group.is_none()
                && self.blocked_either(a, original.author)
            {
                failure(Error::Blocked(""))
            } else {
                e
            }
        };
        let target = self.get_as(a, p).map_err(refused)?;
        match self.posts[target].repost_of {
            Some(o) => self.get_as(a, o).map_err(refused),
            None => Ok(target),
        }
    }

    /// `a` likes post `p` (a repost's original).
    pub fn like(&mut self, a: usize, p: usize) -> Outcome {
        if let Err(e) = self.known(a) {
            return Outcome::Failed(e);
        }
        match self.like_target(a, p) {
            Ok(t) => {
                let new = self.likes.insert((a, t));
                if new {
                    self.changes.push(ModelChange::Liked(a, t));
                }
                Outcome::Changed(new)
            }
            Err(e) => Outcome::Failed(e),
        }
    }

    /// `a` takes back their like of post `p`: always possible while it
    /// stands; otherwise refused as a like would be.
    pub fn unlike(&mut self, a: usize, p: usize) -> Outcome {
        if let Err(e) = self.known(a) {
            return Outcome::Failed(e);
        }
        let Some(post) = self.posts.get(p) else {
            return Outcome::Failed(failure(Error::UnknownPost(PostId(0))));
        };
        let t = post.repost_of.unwrap_or(p);
        if self.likes.remove(&(a, t)) {
            self.changes.push(ModelChange::Unliked(a, t));
            return Outcome::Changed(true);
        }
        match self.like_target(a, p) {
            Ok(_) => Outcome::Changed(false),
            Err(e) => Outcome::Failed(e),
        }
    }

    /// How many accounts like post `p`.
    pub fn like_count(&self, p: usize) -> u64 {
        self.likes.iter().filter(|&&(_, q)| q == p).count() as u64
    }

    /// Whether `a` likes post `p` (a repost's original).
    pub fn likes_post(&self, a: usize, p: usize) -> bool {
        let t = self.posts.get(p).and_then(|q| q.repost_of).unwrap_or(p);
        self.likes.contains(&(a, t))
    }

    /// Who likes post `p` (a repost's original), ascending, as `viewer`
    /// may ask: refused as a like by `viewer` would be.
    pub fn likers(&self, viewer: usize, p: usize) -> Result<Vec<usize>, Failure> {
        self.known(viewer)?;
        let t = self.like_target(viewer, p)?;
        Ok(self
            .likes
            .iter()
            .filter(|&&(_, q)| q == t)
            .map(|&(u, _)| u)
            .collect())
    }

    /// The posts `user` likes, newest first, that both `user` and
    /// `viewer` may see.
    pub fn liked_posts(&self, viewer: usize, user: usize) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .likes
            .iter()
            .filter(|&&(u, p)| {
                u == user && self.may_see(user, p, false) && self.may_see(viewer, p, false)
            })
            .map(|&(_, p)| p)
            .collect();
        out.reverse();
        out
    }

    /// `owner` sets up a group.
    pub fn create_group(&mut self, owner: usize) -> Outcome {
        if let Err(e) = self.known(owner) {
            return Outcome::Failed(e);
        }
        self.groups.push((owner, BTreeSet::new()));
        Outcome::Group(self.groups.len() - 1)
    }

    fn owned_group(&self, owner: usize, g: usize) -> Result<(), Failure> {
        self.known(owner)?;
        match self.groups.get(g) {
            Some((o, _)) if *o == owner => Ok(()),
            _ => Err(failure(Error::UnknownGroup(GroupId(0)))),
        }
    }

    /// `owner` adds `member` to group `g`.
    pub fn add_member(&mut self, owner: usize, g: usize, member: usize) -> Outcome {
        if let Err(e) = self.owned_group(owner, g).and(self.known(member)) {
            return Outcome::Failed(e);
        }
        if member == owner {
            return Outcome::Failed(failure(Error::NotAllowed("")));
        }
        if self.blocked_either(owner, member) {
            return Outcome::Failed(failure(Error::Blocked("")));
        }
        Outcome::Changed(self.groups[g].1.insert(member))
    }

    /// `owner` removes `member` from group `g`.
    pub fn remove_member(&mut self, owner: usize, g: usize, member: usize) -> Outcome {
        if let Err(e) = self.owned_group(owner, g).and(self.known(member)) {
            return Outcome::Failed(e);
        }
        Outcome::Changed(self.groups[g].1.remove(&member))
    }

    /// `author` posts `text` to their group `g`.
    pub fn post_to_group(&mut self, author: usize, g: usize, text: &str) -> Outcome {
        if let Err(e) = PostText::parse(text, self.config.max_post_chars) {
            return Outcome::Failed(Failure::of(&e));
        }
        if let Err(e) = self.known(author) {
            return Outcome::Failed(e);
        }
        match self.groups.get(g) {
            // A deleted account's groups went with it.
            Some((owner, _)) if self.deleted.contains(owner) => {
                return Outcome::Failed(failure(Error::UnknownGroup(GroupId(0))));
            }
            None => return Outcome::Failed(failure(Error::UnknownGroup(GroupId(0)))),
            Some((owner, _)) if *owner != author => {
                return Outcome::Failed(failure(Error::NotAllowed("")));
            }
            Some(_) => {}
        }
        self.push_post(ModelPost {
            author,
            text: text.to_owned(),
            deleted: false,
            repost_of: None,
            group: Some(g),
        })
    }

    /// `a` sends `b` a direct message: allowed when `b` follows `a` or takes
    /// messages from anyone, never across a block.
    pub fn send_direct(&mut self, a: usize, b: usize, text: &str) -> Outcome {
        if let Err(e) = PostText::parse(text, self.config.max_post_chars) {
            return Outcome::Failed(Failure::of(&e));
        }
        if a == b {
            return Outcome::Failed(failure(Error::NotAllowed("")));
        }
        if let Err(e) = self.known(a).and(self.known(b)) {
            return Outcome::Failed(e);
        }
        if self.blocked_either(a, b) {
            return Outcome::Failed(failure(Error::Blocked("")));
        }
        if !self.edges.contains_key(&(b, a)) && !self.dms_open.contains(&b) {
            return Outcome::Failed(failure(Error::NotAllowed("")));
        }
        self.messages.push((a, b));
        let m = self.messages.len() - 1;
        if let Some(&n) = self.phones.get(&b) {
            let text = fit_sms(&format!("D {}: {}", self.users[a], text.trim()));
            self.queue_text(b, DeliveryKind::Direct, n, text);
        }
        let sender = self.conversations.entry((a, b)).or_insert((m, 0));
        sender.0 = m;
        let recipient = self.conversations.entry((b, a)).or_insert((m, 0));
        recipient.0 = m;
        recipient.1 += 1;
        Outcome::Message(m)
    }

    /// Sets the UTC day texts are counted on from now.
    pub fn set_today(&mut self, day: u32) {
        self.today = day;
    }

    /// Queues a text to `user` within their daily cap; the first one over
    /// it that day queues the notice instead.
    fn queue_text(&mut self, user: usize, kind: DeliveryKind, phone: usize, text: String) {
        let cap = self.config.device_daily_cap;
        let (sent, over) = self.usage.entry((user, self.today)).or_default();
        if *sent < cap {
            *sent += 1;
            self.outbox.push(ModelText {
                recipient: user,
                kind,
                phone,
                text,
            });
        } else {
            *over += 1;
            if *over == 1 {
                self.outbox.push(ModelText {
                    recipient: user,
                    kind: DeliveryKind::Notice,
                    phone,
                    text: String::new(),
                });
            }
        }
    }

    /// `a` asks to link number `n`: a code is queued for it (within `a`'s
    /// cap), replacing `a`'s pending link; the number `a` holds already
    /// only drops the pending link.
    pub fn link_phone(&mut self, a: usize, n: usize) -> Outcome {
        if n >= crate::PHONES {
            return Outcome::Failed(failure(Error::InvalidPhone("")));
        }
        if let Err(e) = self.known(a) {
            return Outcome::Failed(e);
        }
        if self.phones.get(&a) == Some(&n) {
            self.claims.remove(&a);
            return Outcome::Changed(false);
        }
        let (sent, _) = self
            .usage
            .get(&(a, self.today))
            .copied()
            .unwrap_or_default();
        if sent >= self.config.device_daily_cap {
            return Outcome::Failed(failure(Error::DeviceCapReached));
        }
        self.claims.insert(a, (n, PHONE_CODE_ATTEMPTS));
        self.queue_text(a, DeliveryKind::Code, n, String::new());
        Outcome::Changed(true)
    }

    /// `a` enters the right code of their pending link, or a wrong one.
    pub fn confirm_phone(&mut self, a: usize, right: bool) -> Outcome {
        if let Err(e) = self.known(a) {
            return Outcome::Failed(e);
        }
        let Some(&(n, left)) = self.claims.get(&a) else {
            return Outcome::Failed(failure(Error::NoPendingPhone));
        };
        if !right {
            self.spend_attempt(a, n, left);
            return Outcome::Failed(failure(Error::WrongPhoneCode { attempts_left: 0 }));
        }
        self.take_phone(a, n);
        Outcome::Changed(true)
    }

    fn spend_attempt(&mut self, a: usize, n: usize, left: u8) {
        if left <= 1 {
            self.claims.remove(&a);
        } else {
            self.claims.insert(a, (n, left - 1));
        }
    }

    /// `a` takes number `n`: from whoever held it, and every pending link
    /// of the number goes.
    fn take_phone(&mut self, a: usize, n: usize) {
        self.claims.retain(|_, (number, _)| *number != n);
        self.phones.retain(|_, number| *number != n);
        self.phones.insert(a, n);
    }

    /// Number `n` texts the code of `u`'s pending link, or a code of none.
    pub fn text_code(&mut self, n: usize, u: Option<usize>) -> Outcome {
        if n >= crate::PHONES {
            return Outcome::Failed(failure(Error::InvalidPhone("")));
        }
        let pending: Vec<(usize, u8)> = self
            .claims
            .iter()
            .filter(|(_, (number, _))| *number == n)
            .map(|(&user, &(_, left))| (user, left))
            .collect();
        if pending.is_empty() {
            return Outcome::Failed(failure(Error::NoPendingPhone));
        }
        if let Some(u) = u.filter(|u| pending.iter().any(|(p, _)| p == u)) {
            self.take_phone(u, n);
            return Outcome::User(u);
        }
        for (user, left) in pending {
            self.spend_attempt(user, n, left);
        }
        Outcome::Failed(failure(Error::WrongPhoneCode { attempts_left: 0 }))
    }

    /// `a` unlinks their phone and drops their pending link.
    pub fn unlink_phone(&mut self, a: usize) -> Outcome {
        if let Err(e) = self.known(a) {
            return Outcome::Failed(e);
        }
        let linked = self.phones.remove(&a).is_some();
        let pending = self.claims.remove(&a).is_some();
        Outcome::Changed(linked || pending)
    }

    /// `a` sets quiet hours from hour `h` (eight hours), or clears them.
    pub fn sleep(&mut self, a: usize, h: Option<u8>) -> Outcome {
        if h.is_some_and(|h| h > 23) {
            return Outcome::Failed(failure(Error::InvalidProfile("")));
        }
        if let Err(e) = self.known(a) {
            return Outcome::Failed(e);
        }
        match h {
            Some(h) => self.quiet.insert(a, h),
            None => self.quiet.remove(&a),
        };
        Outcome::Changed(true)
    }

    /// `user`'s quiet hours: their start hour.
    pub fn quiet_hours(&self, user: usize) -> Option<u8> {
        self.quiet.get(&user).copied()
    }

    /// `user`'s confirmed number index.
    pub fn phone_of(&self, user: usize) -> Option<usize> {
        self.phones.get(&user).copied()
    }

    /// `user`'s pending link: number index and attempts left.
    pub fn pending_phone(&self, user: usize) -> Option<(usize, u8)> {
        self.claims.get(&user).copied()
    }

    /// Every text queued, sorted.
    pub fn outbox(&self) -> Vec<ModelText> {
        let mut all = self.outbox.clone();
        all.sort();
        all
    }

    /// `a` marks their conversation with `b` (maybe deleted) read.
    pub fn mark_read(&mut self, a: usize, b: usize) -> Outcome {
        if let Err(e) = self.known(a).and(self.present(b)) {
            return Outcome::Failed(e);
        }
        match self.conversations.get_mut(&(a, b)) {
            Some((_, unread)) => Outcome::Count(std::mem::take(unread)),
            None => Outcome::Count(0),
        }
    }

    /// `a` opens or closes their direct messages to anyone.
    pub fn open_dms(&mut self, a: usize, open: bool) -> Outcome {
        if let Err(e) = self.known(a) {
            return Outcome::Failed(e);
        }
        if open {
            self.dms_open.insert(a);
        } else {
            self.dms_open.remove(&a);
        }
        Outcome::Changed(true)
    }

    /// `user`'s conversations, newest message first: (other, newest
    /// message, unread).
    pub fn conversations(&self, user: usize) -> Vec<(usize, usize, u64)> {
        let mut out: Vec<(usize, usize, u64)> = self
            .conversations
            .range((user, 0)..(user + 1, 0))
            .map(|(&(_, other), &(last, unread))| (other, last, unread))
            .collect();
        out.sort_by_key(|x| std::cmp::Reverse(x.1));
        out
    }

    /// The messages between `a` and `b`, newest first.
    pub fn messages(&self, a: usize, b: usize) -> Vec<usize> {
        (0..self.messages.len())
            .rev()
            .filter(|&m| self.messages[m] == (a, b) || self.messages[m] == (b, a))
            .collect()
    }

    /// Direct message `m`'s sender and recipient.
    pub fn message(&self, m: usize) -> Option<(usize, usize)> {
        self.messages.get(m).copied()
    }

    /// Whether `user` takes direct messages from anyone.
    pub fn dms_open(&self, user: usize) -> bool {
        self.dms_open.contains(&user)
    }

    /// The owner of group `g`.
    pub fn group_owner(&self, g: usize) -> Option<usize> {
        self.groups.get(g).map(|(owner, _)| *owner)
    }

    /// How many groups were set up.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// The members of group `g`, ascending.
    pub fn members(&self, g: usize) -> Vec<usize> {
        self.groups
            .get(g)
            .map(|(_, m)| m.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The groups `a` is a member of, ascending.
    pub fn member_groups(&self, a: usize) -> Vec<usize> {
        (0..self.groups.len())
            .filter(|&g| self.groups[g].1.contains(&a))
            .collect()
    }

    /// Whether `a` blocks `b`.
    pub fn blocks(&self, a: usize, b: usize) -> bool {
        self.blocks.contains(&(a, b))
    }

    /// Whether `a` mutes `b`.
    pub fn mutes(&self, a: usize, b: usize) -> bool {
        self.mutes.contains(&(a, b))
    }

    /// `requester` deletes post `post` (an index; past the end is unknown).
    pub fn delete(&mut self, requester: usize, post: usize) -> Outcome {
        if let Err(e) = self.known(requester) {
            return Outcome::Failed(e);
        }
        let Some(p) = self.posts.get(post) else {
            return Outcome::Failed(failure(Error::UnknownPost(PostId(0))));
        };
        if p.deleted {
            return Outcome::Changed(false);
        }
        if p.author != requester {
            // Someone else's post: its existence shows only if visible.
            return Outcome::Failed(if self.may_see(requester, post, false) {
                failure(Error::NotAllowed(""))
            } else {
                failure(Error::UnknownPost(PostId(0)))
            });
        }
        let p = &mut self.posts[post];
        p.deleted = true;
        p.text.clear();
        self.changes.push(ModelChange::Deleted(post, requester));
        Outcome::Changed(true)
    }

    /// Whether post `post` exists and is live, and its author and text.
    pub fn post_of(&self, post: usize) -> Option<(usize, &str)> {
        self.posts
            .get(post)
            .filter(|p| !p.deleted)
            .map(|p| (p.author, p.text.as_str()))
    }

    /// The original a post reposts, if it is a repost.
    pub fn repost_of(&self, post: usize) -> Option<usize> {
        self.posts.get(post).and_then(|p| p.repost_of)
    }

    /// What anyone sees of post `post` by id.
    pub fn public_view(&self, post: usize) -> PublicView<'_> {
        match self.posts.get(post) {
            None => PublicView::Hidden,
            Some(p) if p.deleted => PublicView::Deleted,
            Some(_) if !self.public(post) => PublicView::Hidden,
            Some(p) => PublicView::Visible(p.author, &p.text),
        }
    }

    /// Whether anyone may see live post `p`: public, by an account that is
    /// not protected, and for a repost a live such original.
    fn public(&self, p: usize) -> bool {
        let post = &self.posts[p];
        !post.deleted
            && post.group.is_none()
            && !self.protected.contains(&post.author)
            && post.repost_of.is_none_or(|o| self.public(o))
    }

    /// Followers of `user`, ascending.
    pub fn followers(&self, user: usize) -> Vec<usize> {
        self.edges
            .keys()
            .filter(|(_, b)| *b == user)
            .map(|(a, _)| *a)
            .collect()
    }

    /// Accounts `user` follows, ascending.
    pub fn following(&self, user: usize) -> Vec<usize> {
        self.edges
            .keys()
            .filter(|(a, _)| *a == user)
            .map(|(_, b)| *b)
            .collect()
    }

    /// `user`'s live posts, newest first.
    pub fn own_posts(&self, user: usize) -> Vec<usize> {
        (0..self.posts.len())
            .rev()
            .filter(|&i| self.posts[i].author == user && !self.posts[i].deleted)
            .collect()
    }

    /// `user`'s posts as anyone sees them, newest first: public ones, and
    /// reposts of live public posts; nothing of a protected account.
    pub fn author_timeline(&self, user: usize) -> Vec<usize> {
        self.own_posts(user)
            .into_iter()
            .filter(|&i| self.public(i))
            .collect()
    }

    /// Whether repost `r` is the one appearance of its original in
    /// `user`'s home timeline: not when the user wrote the original or
    /// follows its author, nor when an older live repost of it by the user
    /// or an unmuted followee exists.
    fn first_appearance(&self, user: usize, r: usize) -> bool {
        let (reposter, Some(original)) = (self.posts[r].author, self.posts[r].repost_of) else {
            return true;
        };
        let reaches = |u: usize| u == user || self.edges.contains_key(&(user, u));
        if reaches(self.posts[original].author) {
            return false;
        }
        !(0..r).any(|q| {
            let other = &self.posts[q];
            other.repost_of == Some(original)
                && !other.deleted
                && other.author != reposter
                && reaches(other.author)
                && !self.mutes.contains(&(user, other.author))
        })
    }

    /// `user`'s home timeline by definition, newest first, all of it (the
    /// inbox cap bounds storage, not what a reader can scroll to): their own
    /// live posts, and for each followee its live posts after the follow
    /// plus, of the posts before it, the newest `backfill_posts` still live.
    pub fn home_timeline(&self, user: usize) -> Vec<usize> {
        let mut set: BTreeSet<usize> = self.own_posts(user).into_iter().collect();
        for (&(_, followee), &since) in self.edges.range((user, 0)..(user + 1, 0)) {
            let theirs: Vec<usize> = (0..self.posts.len())
                .rev()
                .filter(|&i| self.posts[i].author == followee)
                .collect();
            let older = theirs.iter().filter(|&&i| Some(i) <= since);
            let backfilled = older.take(self.config.backfill_posts);
            let newer = theirs.iter().filter(|&&i| Some(i) > since);
            set.extend(newer.chain(backfilled).filter(|&&i| !self.posts[i].deleted));
        }
        // Then what the viewer sees of it: audiences, blocks, mutes, and
        // each post once however many reposts reach it.
        set.into_iter()
            .rev()
            .filter(|&i| self.may_see(user, i, true) && self.first_appearance(user, i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_compare_by_kind_and_variant_not_payload() {
        let same = [
            (Error::UnknownUser(UserId(1)), Error::UnknownUser(UserId(2))),
            (
                Error::TextTooLong { len: 3, max: 2 },
                Error::TextTooLong { len: 9, max: 1 },
            ),
            (Error::NotAllowed("a"), Error::NotAllowed("b")),
            (Error::SelfFollow, Error::SelfFollow),
        ];
        for (a, b) in &same {
            assert_eq!(Failure::of(a), Failure::of(b), "{a:?} and {b:?}");
        }
        // Same kind, another variant: a different failure.
        let differ = [
            (Error::NotAllowed("a"), Error::Blocked("a")),
            (
                Error::UnknownUser(UserId(1)),
                Error::UnknownUsername("a".into()),
            ),
            (Error::UnknownPost(PostId(1)), Error::PostDeleted(PostId(1))),
            (
                Error::InvalidText("a"),
                Error::TextTooLong { len: 3, max: 2 },
            ),
        ];
        for (a, b) in &differ {
            assert_eq!(a.kind(), b.kind());
            assert_ne!(Failure::of(a), Failure::of(b), "{a:?} and {b:?}");
        }
        assert_eq!(Failure::of(&Error::PhoneTaken).kind(), ErrorKind::Conflict);
    }

    #[test]
    fn backfill_takes_the_newest_posts_before_the_follow_and_skips_deleted() {
        let mut m = Model::new(Config {
            backfill_posts: 2,
            ..Config::default()
        });
        m.create_user("a");
        m.create_user("b");
        for t in ["p0", "p1", "p2", "p3"] {
            m.post(1, t);
        }
        m.delete(1, 3);
        m.follow(0, 1);
        // Newest two before the follow are p3 (deleted) and p2.
        assert_eq!(m.home_timeline(0), vec![2]);
        m.post(1, "p4");
        assert_eq!(m.home_timeline(0), vec![4, 2]);
        m.unfollow(0, 1);
        assert_eq!(m.home_timeline(0), Vec::<usize>::new());
    }
}
