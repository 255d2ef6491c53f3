//! Posting: publish (public, to a group, as a reply), repost and delete,
//! all through the one [`Shared::append`] that stores a post with its
//! indexes and queues its fan-out.

use starling_core::{
    Audience, AuthorMode, Change, EdgeMode, Error, FanoutJob, GroupId, InboxEntry, JobKind,
    LinkKind, Mutation, Post, PostId, PostText, Result, UserId, mentioned_names,
};
use starling_graph::{blocked_either, is_protected};
use starling_inbox::view::delivered_to;
use starling_log::unix_millis;
use starling_store::Backend;

use crate::base::{Shared, record};
use crate::engine::Engine;
use crate::events::Event;

/// How [`Engine::publish`] publishes a post.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PostOptions {
    /// The post it replies to (a public post the author may see).
    pub reply_to: Option<PostId>,
    /// Who may see it: public, or one of the author's groups.
    pub audience: Audience,
}

/// The links a post's record implies: its place among its parent's
/// replies, its original's reposts, its group's posts.
fn post_links(post: &Post) -> Vec<Mutation> {
    let mut links = Vec::new();
    if let Some(parent) = post.reply_to {
        links.push(Mutation::PutLink {
            kind: LinkKind::Replies,
            from: parent.0,
            to: post.id.0,
            value: post.author.0,
        });
    }
    if let Some(original) = post.repost_of {
        links.push(Mutation::PutLink {
            kind: LinkKind::Reposts,
            from: original.0,
            to: post.author.0,
            value: post.id.0,
        });
    }
    if let Audience::Group(group) = post.audience {
        links.push(Mutation::PutLink {
            kind: LinkKind::GroupPosts,
            from: group.0,
            to: !post.id.0,
            value: 0,
        });
    }
    links
}

impl<B: Backend> Engine<B> {
    /// Publishes a public post. Returns once the post and its fan-out job
    /// are durable (per the configured durability); delivery to followers'
    /// inboxes continues in the background. See [`Engine::publish`].
    pub fn post(&self, author: UserId, text: &str) -> Result<Post> {
        self.publish(author, text, PostOptions::default())
    }

    /// Publishes a post as `options` say: public or to one of the author's
    /// groups, possibly replying to another post. `@username` mentions are
    /// resolved now: each mentioned account that may see the post (and has
    /// no block with the author) gets it in their mentions feed.
    pub fn publish(&self, author: UserId, text: &str, options: PostOptions) -> Result<Post> {
        let s = &self.shared;
        let text = PostText::parse(text, s.config.max_post_chars)?;
        s.known(&[author])?;
        if let Audience::Group(group) = options.audience {
            let found = s.backend.group(group)?.ok_or(Error::UnknownGroup(group))?;
            if found.owner != author {
                return Err(Error::NotAllowed("only a group's owner posts to it"));
            }
        }
        let reply_to = match options.reply_to {
            Some(parent) => Some(self.reply_target(author, parent)?),
            None => None,
        };
        let mut post = Post::new(PostId(0), author, text.into_string());
        post.reply_to = reply_to;
        post.audience = options.audience;
        let mentions = self.resolve_mentions(&post)?;
        s.append(post, &mentions)
    }

    /// Replies to `parent` (publicly).
    pub fn reply(&self, author: UserId, parent: PostId, text: &str) -> Result<Post> {
        let options = PostOptions {
            reply_to: Some(parent),
            ..PostOptions::default()
        };
        self.publish(author, text, options)
    }

    /// Addresses a post to one of the author's groups: it reaches only the
    /// members who follow the author.
    pub fn post_to_group(&self, author: UserId, group: GroupId, text: &str) -> Result<Post> {
        let options = PostOptions {
            audience: Audience::Group(group),
            ..PostOptions::default()
        };
        self.publish(author, text, options)
    }

    /// Reposts `post` (a repost of a repost reposts the original) into
    /// `user`'s followers' timelines. Reposting the same post again returns
    /// the existing repost. Group posts cannot be reposted.
    pub fn repost(&self, user: UserId, post: PostId) -> Result<Post> {
        let s = self.shared.known(&[user])?;
        let target = self.get_post_as(user, post)?;
        let original = match target.repost_of {
            Some(of) => self.get_post_as(user, of)?,
            None => target,
        };
        if original.audience != Audience::Public {
            return Err(Error::NotAllowed("group posts cannot be reposted"));
        }
        if original.author != user && is_protected(&s.backend, original.author)? {
            return Err(Error::NotAllowed(
                "posts of protected accounts cannot be reposted",
            ));
        }
        let mut repost = Post::new(PostId(0), user, String::new());
        repost.repost_of = Some(original.id);
        s.append(repost, &[])
    }

    fn reply_target(&self, author: UserId, parent: PostId) -> Result<PostId> {
        let parent = self.get_post_as(author, parent)?;
        let parent = match parent.repost_of {
            Some(of) => self.get_post_as(author, of)?,
            None => parent,
        };
        if parent.audience != Audience::Public {
            return Err(Error::NotAllowed(
                "replies to group posts are not supported",
            ));
        }
        Ok(parent.id)
    }

    /// The accounts `post` mentions that get it in their mentions feed.
    fn resolve_mentions(&self, post: &Post) -> Result<Vec<UserId>> {
        let s = &self.shared;
        let mut out = Vec::new();
        for name in mentioned_names(&post.text) {
            let Some(user) = s.backend.user_id_by_name(&name)? else {
                continue;
            };
            if user == post.author || out.contains(&user) {
                continue;
            }
            if blocked_either(&s.backend, user, post.author)? {
                continue;
            }
            if post.audience != Audience::Public
                && !(delivered_to(&s.backend, post, user)?
                    && s.backend.edge(user, post.author)?.is_some())
            {
                continue;
            }
            out.push(user);
        }
        Ok(out)
    }

    /// Deletes `post`, which `requester` must have written: the text is
    /// dropped, a tombstone stays, and the post is retracted from every
    /// inbox. Returns whether it was live.
    pub fn delete_post(&self, requester: UserId, post: PostId) -> Result<bool> {
        let s = self.shared.known(&[requester])?;
        let author = match s.stored_post(post)? {
            None => return Err(Error::UnknownPost(post)),
            Some(p) if p.deleted => return Ok(false),
            // One's own post, whoever else may see it (a repost whose
            // original is gone included).
            Some(p) if p.author == requester => p.author,
            // Someone else's: refused, without telling whether it exists
            // when the requester may not see it.
            Some(_) => {
                return Err(match self.get_post_as(requester, post) {
                    Ok(_) => Error::NotAllowed("only the author may delete a post"),
                    Err(e) => e,
                });
            }
        };
        s.check_writable()?;
        s.tombstone(author, post, true)
    }
}

impl<B: Backend> Shared<B> {
    /// Turns `post` of `author` into a tombstone if it is live, in one
    /// batch: the tombstone, the author's own inbox entry, the repost link,
    /// the change record, and a retraction job when entries may have
    /// reached other inboxes (a pending fan-out job, or, with
    /// `from_followers`, any follower at all; an account deletion passes
    /// false, its edges take the entries with them). Returns whether the
    /// post was live.
    pub(crate) fn tombstone(
        &self,
        author: UserId,
        post: PostId,
        from_followers: bool,
    ) -> Result<bool> {
        let retract = {
            let _author = self.authors.lock(author);
            // The record is rewritten: no like or unlike in between.
            let _post = self.posts.lock_post(post);
            let Some(live) = self.stored_post(post)?.filter(|p| !p.deleted) else {
                return Ok(false);
            };
            let retract = (from_followers && self.backend.counts(author)?.followers > 0)
                || self.backend.job(post)?.is_some();
            let job = if retract {
                Mutation::PutJob(FanoutJob {
                    post,
                    author,
                    kind: JobKind::Retract,
                    cursor: None,
                })
            } else {
                Mutation::DeleteJob(post)
            };
            let mut batch = vec![
                Mutation::PutPost(live.tombstone()),
                Mutation::InboxDelete {
                    owner: author,
                    post,
                },
                job,
                record(Change::Deleted { post, author }),
            ];
            if let Some(original) = live.repost_of {
                // The user may repost it again; nobody's timeline counts it.
                batch.push(Mutation::DeleteLink {
                    kind: LinkKind::Reposts,
                    from: original.0,
                    to: author.0,
                });
            }
            self.write(&batch, self.config.durability)?;
            self.publish_inbox_changes(&batch);
            retract
        };
        if retract {
            self.enqueue(post);
        }
        Ok(true)
    }

    /// Stores a new post (its id assigned here, under the author's lock)
    /// with its indexes, the author's own inbox entry, its mentions and its
    /// fan-out job, in one batch, then queues the job. A repost of a post
    /// the author already reposted returns that repost instead.
    fn append(&self, mut post: Post, mentions: &[UserId]) -> Result<Post> {
        let author = post.author;
        self.check_writable()?;
        let (post, jobs, told) = {
            let _author = self.authors.lock(author);
            if let Some(original) = post.repost_of
                && let Some(existing) =
                    self.backend.link(LinkKind::Reposts, original.0, author.0)?
                && let Some(existing) = self.stored_post(PostId(existing))?.filter(|p| !p.deleted)
            {
                return Ok(existing);
            }
            post.id = self.ids.next();
            let followers = self.backend.counts(author)?.followers;
            let mode = self.backend.author_mode(author)?;
            let mut batch = vec![
                Mutation::InboxPut {
                    owner: author,
                    entry: InboxEntry {
                        post: post.id,
                        author,
                    },
                },
                Mutation::PutPost(post.clone()),
                record(Change::Posted {
                    post: post.id,
                    author,
                }),
            ];
            batch.extend(post_links(&post));
            batch.extend(mentions.iter().map(|user| Mutation::PutLink {
                kind: LinkKind::Mentions,
                from: user.0,
                to: !post.id.0,
                value: author.0,
            }));
            let mut jobs = Vec::new();
            if followers > 0 && mode != AuthorMode::Pulled {
                if mode == AuthorMode::Push && followers > self.config.push_threshold {
                    // Turn every edge to pull once; until that job is done,
                    // posts are still fanned out.
                    let promote = FanoutJob {
                        post: self.ids.next(),
                        author,
                        kind: JobKind::Promote,
                        cursor: None,
                    };
                    batch.push(Mutation::SetAuthorMode {
                        author,
                        mode: AuthorMode::Promoting,
                    });
                    batch.push(Mutation::PutJob(promote));
                    jobs.push(promote.post);
                }
                batch.push(Mutation::PutJob(FanoutJob {
                    post: post.id,
                    author,
                    kind: JobKind::Deliver,
                    cursor: None,
                }));
                jobs.push(post.id);
            } else if mode == AuthorMode::Pulled
                && post.repost_of.is_none()
                && self.has_device_subscribers(author)?
            {
                // No fan-out for a pulled author, but texts still go out to
                // those who asked for them.
                batch.push(Mutation::PutJob(FanoutJob {
                    post: post.id,
                    author,
                    kind: JobKind::Device,
                    cursor: None,
                }));
                jobs.push(post.id);
            }
            // A protected author's mention reaches every mentioned feed
            // (read time decides who sees it, so approving a follower
            // later shows it), but only followers are told now.
            let mut told = Vec::with_capacity(mentions.len());
            if !self.hub.is_empty() && !mentions.is_empty() {
                let protected = is_protected(&self.backend, author)?;
                for &user in mentions {
                    if !protected || self.backend.edge(user, author)?.is_some() {
                        told.push(user);
                    }
                }
            }
            self.write(&batch, self.config.durability)?;
            self.activity.posted(author, unix_millis());
            (post, jobs, told)
        };
        self.hub.publish(
            std::iter::once((author, Event::TimelineAdded { post: post.id })).chain(
                told.iter()
                    .map(|&user| (user, Event::Mention { post: post.id })),
            ),
        );
        for job in jobs {
            self.enqueue(job);
        }
        self.publish_pulled(&post)?;
        Ok(post)
    }

    /// Tells subscribers who pull `post`'s author (no fan-out writes it to
    /// them) that it is in their timeline. Costs one edge read per
    /// subscribed user, and only when someone is subscribed.
    fn publish_pulled(&self, post: &Post) -> Result<()> {
        if self.hub.is_empty() {
            return Ok(());
        }
        let mut events = Vec::new();
        for user in self.hub.subscribed_users() {
            if user == post.author {
                continue;
            }
            if let Some(edge) = self.backend.follower_edge(post.author, user)?
                && edge.mode == EdgeMode::Pull
                && delivered_to(&self.backend, post, user)?
            {
                events.push((user, Event::TimelineAdded { post: post.id }));
            }
        }
        self.hub.publish(events);
        Ok(())
    }
}
