//! Storage fault injection at the seam: a backend wrapper whose writes and
//! syncs fail on demand, to prove that a failure poisons the engine and that
//! every operation is stored all or none.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use starling_core::{
    AuthorMode, Config, Counts, Durability, Edge, FanoutJob, Group, GroupId, InboxEntry, LinkKind,
    Mutation, Post, PostId, Result, StorageError, User, UserId, Username,
};
use starling_store::{
    Backend, DirectStore, Direction, FanoutQueue, GraphStore, InboxLoad, InboxStore, PostStore,
};

/// When writes fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPlan {
    /// Never.
    Never,
    /// The write after `n` successful ones fails, and every later one.
    AfterWrites(u64),
    /// Each write fails with probability 1 / `one_in`, drawn from `seed`.
    Random {
        /// Seed of the draw, for replay.
        seed: u64,
        /// One failure in this many writes, on average.
        one_in: u64,
    },
}

/// How a failing write fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The write fails before anything is stored.
    Write,
    /// The write is stored but its sync reports failure, so the caller
    /// cannot know whether it will survive (as after a failed fsync).
    Sync,
}

/// A backend whose writes fail according to a [`FaultPlan`].
pub struct FaultyBackend<B> {
    inner: B,
    plan: FaultPlan,
    kind: FaultKind,
    writes: AtomicU64,
    draw: Mutex<u64>,
}

impl<B> FaultyBackend<B> {
    /// Wraps `inner`.
    pub fn new(inner: B, plan: FaultPlan, kind: FaultKind) -> FaultyBackend<B> {
        let seed = match plan {
            FaultPlan::Random { seed, .. } => seed,
            _ => 0,
        };
        FaultyBackend {
            inner,
            plan,
            kind,
            writes: AtomicU64::new(0),
            draw: Mutex::new(seed ^ 0x9E37_79B9_7F4A_7C15),
        }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Writes attempted so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    fn fails_now(&self) -> bool {
        let n = self.writes.fetch_add(1, Ordering::SeqCst);
        match self.plan {
            FaultPlan::Never => false,
            FaultPlan::AfterWrites(after) => n >= after,
            FaultPlan::Random { one_in, .. } => {
                // SplitMix64: a seeded, replayable draw.
                let mut state = self.draw.lock();
                *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = *state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                one_in > 0 && z.is_multiple_of(one_in)
            }
        }
    }
}

impl<B: Backend> FaultyBackend<B> {
    /// Runs one write of the inner backend, failing it as planned.
    fn write(&self, write: impl FnOnce(&B) -> Result<()>) -> Result<()> {
        if !self.fails_now() {
            return write(&self.inner);
        }
        match self.kind {
            FaultKind::Write => Err(starling_core::Error::Storage(StorageError::new(
                "injected write failure",
            ))),
            FaultKind::Sync => {
                write(&self.inner)?;
                Err(starling_core::Error::Storage(StorageError::new(
                    "injected sync failure",
                )))
            }
        }
    }
}

impl<B: Backend> Backend for FaultyBackend<B> {
    fn apply(&self, batch: &[Mutation], durability: Durability) -> Result<()> {
        self.write(|inner| inner.apply(batch, durability))
    }

    /// The inner backend's bulk load, so that its own path is the one
    /// tested; it counts as one write.
    fn apply_bulk_inbox(&self, entries: &[(UserId, InboxEntry)]) -> Result<()> {
        self.write(|inner| inner.apply_bulk_inbox(entries))
    }

    /// The inner backend's load in parts; each part and the finish count
    /// as one write.
    fn bulk_inbox_load(&self) -> Result<Box<dyn InboxLoad + '_>> {
        Ok(Box::new(FaultyLoad {
            backend: self,
            inner: self.inner.bulk_inbox_load()?,
        }))
    }

    fn settle(&self) -> Result<()> {
        self.inner.settle()
    }

    fn mint_user_id(&self, durability: Durability) -> Result<Option<UserId>> {
        self.inner.mint_user_id(durability)
    }

    fn mint_group_id(&self, durability: Durability) -> Result<Option<starling_core::GroupId>> {
        self.inner.mint_group_id(durability)
    }

    fn post_id_node(&self, configured: u16) -> Result<u16> {
        self.inner.post_id_node(configured)
    }
}

impl<'a, B> TryFrom<(&'a Path, &'a Config)> for FaultyBackend<B>
where
    B: TryFrom<(&'a Path, &'a Config), Error = starling_core::Error>,
{
    type Error = starling_core::Error;

    /// Opens the inner backend at a path, with no faults planned.
    fn try_from(at: (&'a Path, &'a Config)) -> Result<Self> {
        Ok(FaultyBackend::new(
            B::try_from(at)?,
            FaultPlan::Never,
            FaultKind::Write,
        ))
    }
}

impl<B: GraphStore> GraphStore for FaultyBackend<B> {
    fn user(&self, id: UserId) -> Result<Option<User>> {
        self.inner.user(id)
    }
    fn user_id_by_name(&self, name: &Username) -> Result<Option<UserId>> {
        self.inner.user_id_by_name(name)
    }
    fn last_user_id(&self) -> Result<Option<UserId>> {
        self.inner.last_user_id()
    }
    fn edge(&self, follower: UserId, followee: UserId) -> Result<Option<PostId>> {
        self.inner.edge(follower, followee)
    }
    fn edges(
        &self,
        user: UserId,
        dir: Direction,
        after: Option<UserId>,
        limit: usize,
        out: &mut Vec<Edge>,
    ) -> Result<()> {
        self.inner.edges(user, dir, after, limit, out)
    }
    fn counts(&self, user: UserId) -> Result<Counts> {
        self.inner.counts(user)
    }
    fn author_mode(&self, author: UserId) -> Result<AuthorMode> {
        self.inner.author_mode(author)
    }
    fn follower_edge(&self, followee: UserId, follower: UserId) -> Result<Option<Edge>> {
        self.inner.follower_edge(followee, follower)
    }
    fn follower_edges(
        &self,
        followee: UserId,
        followers: &[UserId],
        out: &mut Vec<Edge>,
    ) -> Result<()> {
        self.inner.follower_edges(followee, followers, out)
    }
    fn link(&self, kind: LinkKind, from: u64, to: u64) -> Result<Option<u64>> {
        self.inner.link(kind, from, to)
    }
    fn links(
        &self,
        kind: LinkKind,
        from: u64,
        after: Option<u64>,
        limit: usize,
        out: &mut Vec<(u64, u64)>,
    ) -> Result<()> {
        self.inner.links(kind, from, after, limit, out)
    }
    fn group(&self, id: GroupId) -> Result<Option<Group>> {
        self.inner.group(id)
    }
    fn last_group_id(&self) -> Result<Option<GroupId>> {
        self.inner.last_group_id()
    }
}

impl<B: PostStore> PostStore for FaultyBackend<B> {
    fn posts(&self, ids: &[PostId], out: &mut Vec<Option<Post>>) -> Result<()> {
        self.inner.posts(ids, out)
    }
    fn author_posts(
        &self,
        author: UserId,
        before: Option<PostId>,
        limit: usize,
        out: &mut Vec<PostId>,
    ) -> Result<()> {
        self.inner.author_posts(author, before, limit, out)
    }
    fn last_post_id(&self) -> Result<Option<PostId>> {
        self.inner.last_post_id()
    }
    fn scan_posts(&self, after: Option<PostId>, limit: usize, out: &mut Vec<Post>) -> Result<()> {
        self.inner.scan_posts(after, limit, out)
    }
}

impl<B: InboxStore> InboxStore for FaultyBackend<B> {
    fn inbox(
        &self,
        owner: UserId,
        before: Option<PostId>,
        limit: usize,
        out: &mut Vec<InboxEntry>,
    ) -> Result<()> {
        self.inner.inbox(owner, before, limit, out)
    }
    fn inbox_floor(&self, owner: UserId) -> Result<Option<PostId>> {
        self.inner.inbox_floor(owner)
    }
    fn pulled(&self, reader: UserId, out: &mut Vec<Edge>) -> Result<()> {
        self.inner.pulled(reader, out)
    }
    fn last_reads(
        &self,
        after: Option<UserId>,
        limit: usize,
        out: &mut Vec<(UserId, u64)>,
    ) -> Result<()> {
        self.inner.last_reads(after, limit, out)
    }
}

impl<B: FanoutQueue> FanoutQueue for FaultyBackend<B> {
    fn job(&self, post: PostId) -> Result<Option<FanoutJob>> {
        self.inner.job(post)
    }
    fn jobs(&self, after: Option<PostId>, limit: usize, out: &mut Vec<FanoutJob>) -> Result<()> {
        self.inner.jobs(after, limit, out)
    }
}

impl<B: starling_store::ChangeStore> starling_store::ChangeStore for FaultyBackend<B> {
    fn changes_after(
        &self,
        after: u64,
        limit: usize,
        out: &mut Vec<starling_core::ChangeRecord>,
    ) -> Result<()> {
        self.inner.changes_after(after, limit, out)
    }
    fn change_floor(&self) -> Result<u64> {
        self.inner.change_floor()
    }
    fn last_change_position(&self) -> Result<u64> {
        self.inner.last_change_position()
    }
}

impl<B: DirectStore> DirectStore for FaultyBackend<B> {
    fn profile(&self, user: UserId) -> Result<Option<starling_core::Profile>> {
        self.inner.profile(user)
    }
    fn avatar(&self, user: UserId) -> Result<Option<starling_core::Avatar>> {
        self.inner.avatar(user)
    }
    fn phone_of(&self, user: UserId) -> Result<Option<starling_core::Phone>> {
        self.inner.phone_of(user)
    }
    fn user_by_phone(&self, phone: &starling_core::Phone) -> Result<Option<UserId>> {
        self.inner.user_by_phone(phone)
    }
    fn phone_claim(&self, user: UserId) -> Result<Option<starling_core::PhoneClaim>> {
        self.inner.phone_claim(user)
    }
    fn phone_claims(
        &self,
        phone: &starling_core::Phone,
        out: &mut Vec<starling_core::PhoneClaim>,
    ) -> Result<()> {
        self.inner.phone_claims(phone, out)
    }
    fn last_message_id(&self) -> Result<Option<PostId>> {
        self.inner.last_message_id()
    }
    fn conversation(
        &self,
        owner: UserId,
        with: UserId,
    ) -> Result<Option<starling_core::Conversation>> {
        self.inner.conversation(owner, with)
    }
    fn conversations(
        &self,
        owner: UserId,
        before: Option<PostId>,
        limit: usize,
        out: &mut Vec<starling_core::Conversation>,
    ) -> Result<()> {
        self.inner.conversations(owner, before, limit, out)
    }
    fn messages(
        &self,
        a: UserId,
        b: UserId,
        before: Option<PostId>,
        limit: usize,
        out: &mut Vec<starling_core::DirectMessage>,
    ) -> Result<()> {
        self.inner.messages(a, b, before, limit, out)
    }
    fn device_sub(&self, followee: UserId, follower: UserId) -> Result<bool> {
        self.inner.device_sub(followee, follower)
    }
    fn device_subs(
        &self,
        followee: UserId,
        after: Option<UserId>,
        through: UserId,
        limit: usize,
        out: &mut Vec<UserId>,
    ) -> Result<()> {
        self.inner.device_subs(followee, after, through, limit, out)
    }
    fn delivery(
        &self,
        id: starling_core::DeliveryId,
    ) -> Result<Option<starling_core::DeviceDelivery>> {
        self.inner.delivery(id)
    }
    fn due_deliveries(
        &self,
        now_ms: u64,
        limit: usize,
        out: &mut Vec<starling_core::DeviceDelivery>,
    ) -> Result<()> {
        self.inner.due_deliveries(now_ms, limit, out)
    }
    fn device_usage(&self, user: UserId, day: u32) -> Result<starling_core::DeviceUsage> {
        self.inner.device_usage(user, day)
    }
}

/// A load of the inner backend whose steps fail as the plan says.
struct FaultyLoad<'a, B> {
    backend: &'a FaultyBackend<B>,
    inner: Box<dyn InboxLoad + 'a>,
}

impl<B: Backend> InboxLoad for FaultyLoad<'_, B> {
    fn add(&mut self, entries: &[(UserId, InboxEntry)]) -> Result<()> {
        let inner = &mut self.inner;
        self.backend.write(|_| inner.add(entries))
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let FaultyLoad { backend, inner } = *self;
        backend.write(|_| inner.finish())
    }
}
