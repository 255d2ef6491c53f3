//! The reference model.

use std::collections::{BTreeMap, BTreeSet};

use starling_core::{Config, Error, PostText, Username};

/// What an operation returned, reduced to what the model can predict: a
/// value, or the kind of error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A user was created; its index.
    User(usize),
    /// A post was created; its index.
    Post(usize),
    /// The operation changed something (`true`) or found it already done.
    Changed(bool),
    /// The operation failed with this error kind.
    Failed(&'static str),
}

/// The kind of an error, for comparing outcomes.
pub fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::UnknownUser(_) => "unknown user",
        Error::UnknownUsername(_) => "unknown username",
        Error::UnknownPost(_) => "unknown post",
        Error::PostDeleted(_) => "post deleted",
        Error::InvalidUsername(_) => "invalid username",
        Error::UsernameTaken(_) => "username taken",
        Error::InvalidText(_) => "invalid text",
        Error::TextTooLong { .. } => "text too long",
        Error::SelfFollow => "self follow",
        Error::NotAllowed(_) => "not allowed",
        Error::MalformedCursor => "malformed cursor",
        Error::PageSize { .. } => "page size",
        _ => "other",
    }
}

#[derive(Clone, Debug)]
struct ModelPost {
    author: usize,
    text: String,
    deleted: bool,
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
}

impl Model {
    /// An empty model with the engine's configuration.
    pub fn new(config: Config) -> Model {
        Model {
            config,
            users: Vec::new(),
            edges: BTreeMap::new(),
            posts: Vec::new(),
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
            Op::Reopen | Op::Check => Outcome::Changed(false),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How many users exist.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// How many posts were made (deleted ones included).
    pub fn post_count(&self) -> usize {
        self.posts.len()
    }

    fn known(&self, user: usize) -> Result<(), &'static str> {
        if user < self.users.len() {
            Ok(())
        } else {
            Err("unknown user")
        }
    }

    /// Creates a user.
    pub fn create_user(&mut self, name: &str) -> Outcome {
        let Ok(parsed) = Username::parse(name) else {
            return Outcome::Failed("invalid username");
        };
        if self
            .users
            .iter()
            .any(|u| u.eq_ignore_ascii_case(parsed.as_str()))
        {
            return Outcome::Failed("username taken");
        }
        self.users.push(name.to_owned());
        Outcome::User(self.users.len() - 1)
    }

    /// A user's index by name.
    pub fn user_by_name(&self, name: &str) -> Result<usize, &'static str> {
        if Username::parse(name).is_err() {
            return Err("invalid username");
        }
        self.users
            .iter()
            .position(|u| u.eq_ignore_ascii_case(name))
            .ok_or("unknown username")
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
            return Outcome::Failed("self follow");
        }
        if let Err(e) = self.known(a).and(self.known(b)) {
            return Outcome::Failed(e);
        }
        if self.edges.contains_key(&(a, b)) {
            return Outcome::Changed(false);
        }
        let since = self.newest_post_of(b);
        self.edges.insert((a, b), since);
        Outcome::Changed(true)
    }

    /// `a` unfollows `b`.
    pub fn unfollow(&mut self, a: usize, b: usize) -> Outcome {
        if a == b {
            return Outcome::Failed("self follow");
        }
        if let Err(e) = self.known(a).and(self.known(b)) {
            return Outcome::Failed(e);
        }
        Outcome::Changed(self.edges.remove(&(a, b)).is_some())
    }

    /// `author` posts `text`.
    pub fn post(&mut self, author: usize, text: &str) -> Outcome {
        if let Err(e) = PostText::parse(text, self.config.max_post_chars) {
            return Outcome::Failed(error_kind(&e));
        }
        if let Err(e) = self.known(author) {
            return Outcome::Failed(e);
        }
        self.posts.push(ModelPost {
            author,
            text: text.to_owned(),
            deleted: false,
        });
        Outcome::Post(self.posts.len() - 1)
    }

    /// `requester` deletes post `post` (an index; past the end is unknown).
    pub fn delete(&mut self, requester: usize, post: usize) -> Outcome {
        if let Err(e) = self.known(requester) {
            return Outcome::Failed(e);
        }
        let Some(p) = self.posts.get_mut(post) else {
            return Outcome::Failed("unknown post");
        };
        if p.deleted {
            return Outcome::Changed(false);
        }
        if p.author != requester {
            return Outcome::Failed("not allowed");
        }
        p.deleted = true;
        p.text.clear();
        Outcome::Changed(true)
    }

    /// Whether post `post` exists and is live, and its author and text.
    pub fn post_of(&self, post: usize) -> Option<(usize, &str)> {
        self.posts
            .get(post)
            .filter(|p| !p.deleted)
            .map(|p| (p.author, p.text.as_str()))
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
    pub fn author_timeline(&self, user: usize) -> Vec<usize> {
        (0..self.posts.len())
            .rev()
            .filter(|&i| self.posts[i].author == user && !self.posts[i].deleted)
            .collect()
    }

    /// `user`'s home timeline by definition, newest first, all of it (the
    /// inbox cap bounds storage, not what a reader can scroll to): their own
    /// live posts, and for each followee its live posts after the follow
    /// plus, of the posts before it, the newest `backfill_posts` still live.
    pub fn home_timeline(&self, user: usize) -> Vec<usize> {
        let mut set: BTreeSet<usize> = self.author_timeline(user).into_iter().collect();
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
        set.into_iter().rev().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
