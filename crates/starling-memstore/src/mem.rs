//! The in-memory backend: the reference implementation of the storage seam.
//!
//! Ordered maps under one lock; a batch is applied while holding it, so it
//! is atomic. Cloning shares the state, which lets a test "reopen" an
//! engine over what a previous engine left behind.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::RwLock;
use starling_core::{
    AuthorMode, Change, ChangeRecord, Counts, Durability, Edge, EdgeMode, FanoutJob, Group,
    GroupId, InboxEntry, LinkKind, Mutation, Post, PostId, Result, User, UserId, Username,
};
use starling_store::{
    Backend, ChangeStore, Direction, FanoutQueue, GraphStore, InboxStore, PostStore,
};

/// The in-memory backend. Clones share one store.
#[derive(Clone, Debug, Default)]
pub struct MemBackend {
    pub(crate) state: Arc<RwLock<State>>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    users: BTreeMap<UserId, User>,
    names: HashMap<String, UserId>,
    following: BTreeMap<(UserId, UserId), PostId>,
    followers: BTreeMap<(UserId, UserId), (PostId, EdgeMode)>,
    pulled: BTreeMap<(UserId, UserId), PostId>,
    author_modes: HashMap<UserId, AuthorMode>,
    last_reads: BTreeMap<UserId, u64>,
    floors: HashMap<UserId, PostId>,
    counts: HashMap<UserId, Counts>,
    posts: BTreeMap<PostId, Post>,
    author_index: BTreeSet<(UserId, PostId)>,
    inbox: BTreeMap<(UserId, PostId), UserId>,
    jobs: BTreeMap<PostId, FanoutJob>,
    links: BTreeMap<(LinkKind, u64, u64), u64>,
    groups: BTreeMap<GroupId, Group>,
    changes: BTreeMap<u64, Change>,
    change_floor: u64,
    pub(crate) direct: crate::mem_direct::DirectState,
}

impl MemBackend {
    /// An empty store.
    pub fn new() -> MemBackend {
        MemBackend::default()
    }
}

impl State {
    fn apply(&mut self, m: &Mutation) {
        match m {
            Mutation::PutUser(user) => {
                self.names.insert(user.name.folded(), user.id);
                self.users.insert(user.id, user.clone());
            }
            Mutation::AddEdge {
                follower,
                followee,
                since,
                mode,
            } => {
                self.following.insert((*follower, *followee), *since);
                self.set_mode(*follower, *followee, *since, *mode);
                self.counts.entry(*follower).or_default().following += 1;
                self.counts.entry(*followee).or_default().followers += 1;
            }
            Mutation::RemoveEdge { follower, followee } => {
                self.following.remove(&(*follower, *followee));
                self.followers.remove(&(*followee, *follower));
                self.pulled.remove(&(*follower, *followee));
                let f = self.counts.entry(*follower).or_default();
                f.following = f.following.wrapping_sub(1);
                let g = self.counts.entry(*followee).or_default();
                g.followers = g.followers.wrapping_sub(1);
            }
            Mutation::PutPost(post) => {
                self.author_index.insert((post.author, post.id));
                self.posts.insert(post.id, post.clone());
            }
            Mutation::InboxPut { owner, entry } => {
                self.inbox.insert((*owner, entry.post), entry.author);
            }
            Mutation::InboxDelete { owner, post } => {
                self.inbox.remove(&(*owner, *post));
            }
            Mutation::InboxTrim { owner, through } => {
                let floor = self.floors.entry(*owner).or_insert(*through);
                *floor = (*floor).max(*through);
                let doomed: Vec<_> = self
                    .inbox
                    .range((*owner, PostId(0))..=(*owner, *through))
                    .map(|(k, _)| *k)
                    .collect();
                for k in doomed {
                    self.inbox.remove(&k);
                }
            }
            Mutation::PutJob(job) => {
                self.jobs.insert(job.post, *job);
            }
            Mutation::DeleteJob(post) => {
                self.jobs.remove(post);
            }
            Mutation::SetEdgeMode {
                follower,
                followee,
                since,
                mode,
            } => self.set_mode(*follower, *followee, *since, *mode),
            Mutation::SetAuthorMode { author, mode } => {
                self.author_modes.insert(*author, *mode);
            }
            Mutation::SetLastRead { user, at_ms } => {
                self.last_reads.insert(*user, *at_ms);
            }
            Mutation::DeletePulled { reader, author } => {
                self.pulled.remove(&(*reader, *author));
            }
            Mutation::SetCounts { user, counts } => {
                self.counts.insert(*user, *counts);
            }
            Mutation::PutFollowerEntry {
                followee,
                follower,
                since,
                mode,
            } => {
                self.followers
                    .insert((*followee, *follower), (*since, *mode));
            }
            Mutation::DeleteFollowerEntry { followee, follower } => {
                self.followers.remove(&(*followee, *follower));
            }
            Mutation::DeleteAuthorIndex { author, post } => {
                self.author_index.remove(&(*author, *post));
            }
            Mutation::PutLink {
                kind,
                from,
                to,
                value,
            } => {
                self.links.insert((*kind, *from, *to), *value);
            }
            Mutation::DeleteLink { kind, from, to } => {
                self.links.remove(&(*kind, *from, *to));
            }
            Mutation::PutGroup(group) => {
                self.groups.insert(group.id, group.clone());
            }
            Mutation::DeleteGroup(id) => {
                self.groups.remove(id);
            }
            Mutation::Direct(m) => self.direct.apply(m),
            Mutation::PutChange(record) => {
                self.changes.insert(record.position, record.change);
            }
            Mutation::TrimChanges { through } => {
                self.change_floor = self.change_floor.max(*through);
                self.changes = self.changes.split_off(&through.saturating_add(1));
                if *through == u64::MAX {
                    self.changes.clear();
                }
            }
        }
    }
}

impl State {
    fn set_mode(&mut self, follower: UserId, followee: UserId, since: PostId, mode: EdgeMode) {
        self.followers.insert((followee, follower), (since, mode));
        match mode {
            EdgeMode::Pull => self.pulled.insert((follower, followee), since),
            EdgeMode::Push => self.pulled.remove(&(follower, followee)),
        };
    }
}

/// Keys after `after`, or all of them.
fn after_key<K>(after: Option<K>) -> (Bound<K>, Bound<K>) {
    (
        after.map_or(Bound::Unbounded, Bound::Excluded),
        Bound::Unbounded,
    )
}

/// A range of (user, post) keys.
type PostRange = (Bound<(UserId, PostId)>, Bound<(UserId, PostId)>);

/// `user`'s (user, post) keys below `before`, or all of them; iterated in
/// reverse they come newest first.
fn older_than(user: UserId, before: Option<PostId>) -> PostRange {
    let end = match before {
        Some(b) => Bound::Excluded((user, b)),
        None => Bound::Included((user, PostId(u64::MAX))),
    };
    (Bound::Included((user, PostId(0))), end)
}

impl GraphStore for MemBackend {
    fn user(&self, id: UserId) -> Result<Option<User>> {
        Ok(self.state.read().users.get(&id).cloned())
    }

    fn user_id_by_name(&self, name: &Username) -> Result<Option<UserId>> {
        Ok(self.state.read().names.get(&name.folded()).copied())
    }

    fn last_user_id(&self) -> Result<Option<UserId>> {
        Ok(self.state.read().users.keys().next_back().copied())
    }

    fn edge(&self, follower: UserId, followee: UserId) -> Result<Option<PostId>> {
        Ok(self
            .state
            .read()
            .following
            .get(&(follower, followee))
            .copied())
    }

    fn follower_edges(
        &self,
        followee: UserId,
        followers: &[UserId],
        out: &mut Vec<Edge>,
    ) -> Result<()> {
        let state = self.state.read();
        out.extend(followers.iter().filter_map(|&user| {
            state
                .followers
                .get(&(followee, user))
                .map(|&(since, mode)| Edge { user, since, mode })
        }));
        Ok(())
    }

    fn follower_edge(&self, followee: UserId, follower: UserId) -> Result<Option<Edge>> {
        Ok(self
            .state
            .read()
            .followers
            .get(&(followee, follower))
            .map(|&(since, mode)| Edge {
                user: follower,
                since,
                mode,
            }))
    }

    fn edges(
        &self,
        user: UserId,
        dir: Direction,
        after: Option<UserId>,
        limit: usize,
        out: &mut Vec<Edge>,
    ) -> Result<()> {
        let state = self.state.read();
        let start = match after {
            Some(a) => Bound::Excluded((user, a)),
            None => Bound::Included((user, UserId(0))),
        };
        let range = (start, Bound::Included((user, UserId(u64::MAX))));
        match dir {
            Direction::Followers => out.extend(state.followers.range(range).take(limit).map(
                |(&(_, other), &(since, mode))| Edge {
                    user: other,
                    since,
                    mode,
                },
            )),
            Direction::Following => out.extend(state.following.range(range).take(limit).map(
                |(&(_, other), &since)| Edge {
                    user: other,
                    since,
                    mode: EdgeMode::Push,
                },
            )),
        }
        Ok(())
    }

    fn counts(&self, user: UserId) -> Result<Counts> {
        Ok(self
            .state
            .read()
            .counts
            .get(&user)
            .copied()
            .unwrap_or_default())
    }

    fn author_mode(&self, author: UserId) -> Result<AuthorMode> {
        Ok(self
            .state
            .read()
            .author_modes
            .get(&author)
            .copied()
            .unwrap_or_default())
    }

    fn link(&self, kind: LinkKind, from: u64, to: u64) -> Result<Option<u64>> {
        Ok(self.state.read().links.get(&(kind, from, to)).copied())
    }

    fn links(
        &self,
        kind: LinkKind,
        from: u64,
        after: Option<u64>,
        limit: usize,
        out: &mut Vec<(u64, u64)>,
    ) -> Result<()> {
        let start = match after {
            Some(a) => Bound::Excluded((kind, from, a)),
            None => Bound::Included((kind, from, 0)),
        };
        let end = Bound::Included((kind, from, u64::MAX));
        let state = self.state.read();
        out.extend(
            state
                .links
                .range((start, end))
                .take(limit)
                .map(|(k, v)| (k.2, *v)),
        );
        Ok(())
    }

    fn group(&self, id: GroupId) -> Result<Option<Group>> {
        Ok(self.state.read().groups.get(&id).cloned())
    }

    fn last_group_id(&self) -> Result<Option<GroupId>> {
        Ok(self.state.read().groups.keys().next_back().copied())
    }
}

impl PostStore for MemBackend {
    fn posts(&self, ids: &[PostId], out: &mut Vec<Option<Post>>) -> Result<()> {
        let state = self.state.read();
        out.extend(ids.iter().map(|id| state.posts.get(id).cloned()));
        Ok(())
    }

    fn author_posts(
        &self,
        author: UserId,
        before: Option<PostId>,
        limit: usize,
        out: &mut Vec<PostId>,
    ) -> Result<()> {
        let state = self.state.read();
        out.extend(
            state
                .author_index
                .range(older_than(author, before))
                .rev()
                .take(limit)
                .map(|&(_, id)| id),
        );
        Ok(())
    }

    fn last_post_id(&self) -> Result<Option<PostId>> {
        Ok(self.state.read().posts.keys().next_back().copied())
    }

    fn scan_posts(&self, after: Option<PostId>, limit: usize, out: &mut Vec<Post>) -> Result<()> {
        let state = self.state.read();
        out.extend(
            state
                .posts
                .range(after_key(after))
                .take(limit)
                .map(|(_, p)| p.clone()),
        );
        Ok(())
    }
}

impl InboxStore for MemBackend {
    fn inbox(
        &self,
        owner: UserId,
        before: Option<PostId>,
        limit: usize,
        out: &mut Vec<InboxEntry>,
    ) -> Result<()> {
        let state = self.state.read();
        out.extend(
            state
                .inbox
                .range(older_than(owner, before))
                .rev()
                .take(limit)
                .map(|(&(_, post), &author)| InboxEntry { post, author }),
        );
        Ok(())
    }

    fn inbox_floor(&self, owner: UserId) -> Result<Option<PostId>> {
        Ok(self.state.read().floors.get(&owner).copied())
    }

    fn pulled(&self, reader: UserId, out: &mut Vec<Edge>) -> Result<()> {
        let state = self.state.read();
        out.extend(
            state
                .pulled
                .range((reader, UserId(0))..=(reader, UserId(u64::MAX)))
                .map(|(&(_, author), &since)| Edge {
                    user: author,
                    since,
                    mode: EdgeMode::Pull,
                }),
        );
        Ok(())
    }

    fn last_reads(
        &self,
        after: Option<UserId>,
        limit: usize,
        out: &mut Vec<(UserId, u64)>,
    ) -> Result<()> {
        let state = self.state.read();
        out.extend(
            state
                .last_reads
                .range(after_key(after))
                .take(limit)
                .map(|(&u, &t)| (u, t)),
        );
        Ok(())
    }
}

impl FanoutQueue for MemBackend {
    fn job(&self, post: PostId) -> Result<Option<FanoutJob>> {
        Ok(self.state.read().jobs.get(&post).copied())
    }

    fn jobs(&self, after: Option<PostId>, limit: usize, out: &mut Vec<FanoutJob>) -> Result<()> {
        let state = self.state.read();
        out.extend(
            state
                .jobs
                .range(after_key(after))
                .take(limit)
                .map(|(_, j)| *j),
        );
        Ok(())
    }
}

impl ChangeStore for MemBackend {
    fn changes_after(&self, after: u64, limit: usize, out: &mut Vec<ChangeRecord>) -> Result<()> {
        let state = self.state.read();
        out.extend(
            state
                .changes
                .range((Bound::Excluded(after), Bound::Unbounded))
                .take(limit)
                .map(|(&position, &change)| ChangeRecord { position, change }),
        );
        Ok(())
    }

    fn change_floor(&self) -> Result<u64> {
        Ok(self.state.read().change_floor)
    }

    fn last_change_position(&self) -> Result<u64> {
        let state = self.state.read();
        Ok(state.changes.keys().next_back().copied().unwrap_or(0))
    }
}

impl Backend for MemBackend {
    fn apply(&self, batch: &[Mutation], _durability: Durability) -> Result<()> {
        let mut state = self.state.write();
        for m in batch {
            state.apply(m);
        }
        Ok(())
    }
}
