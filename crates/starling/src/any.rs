//! `AnyBackend`: the embedded database or a cluster, chosen when the
//! program runs (a server's `--store` flag), behind one engine type.

use std::path::Path;

use starling_core::{
    AuthorMode, Avatar, Config, Conversation, Counts, DeliveryId, DeviceDelivery, DeviceUsage,
    DirectMessage, Durability, Edge, Error, FanoutJob, Group, GroupId, InboxEntry, LinkKind,
    Mutation, Phone, PhoneClaim, Post, PostId, Profile, Result, User, UserId, Username,
};
use starling_rocks::RocksBackend;
use starling_store::{
    Backend, DirectStore, Direction, FanoutQueue, GraphStore, InboxLoad, InboxStore, PostStore,
};
use starling_valkey::{ValkeyBackend, ValkeyOptions};

/// Either backend Starling ships: the embedded RocksDB database or a
/// Valkey cluster. Every call goes to the one it holds.
pub enum AnyBackend {
    /// An embedded RocksDB database.
    Rocks(RocksBackend),
    /// A store on a Valkey (or Redis) cluster.
    Valkey(ValkeyBackend),
}

/// The engine over whichever store [`AnyBackend::at`] reached.
pub type AnyEngine = starling_engine::Engine<AnyBackend>;

/// Whether `store` names a cluster (`valkey://` or `redis://` seed
/// addresses) rather than a folder.
pub fn is_cluster_address(store: &str) -> bool {
    ["valkey://", "redis://", "valkeys://", "rediss://"]
        .iter()
        .any(|scheme| store.trim_start().starts_with(scheme))
}

impl AnyBackend {
    /// The store at `store`: a cluster when it is a comma-separated list
    /// of `valkey://host:port` (or `redis://`) addresses, the store's name
    /// on it being `namespace`; otherwise the RocksDB database in the
    /// folder `store` (created if missing; `namespace` is not used).
    pub fn at(store: &str, namespace: &str, config: &Config) -> Result<AnyBackend> {
        if is_cluster_address(store) {
            let options = ValkeyOptions::from_url_list(store, namespace);
            Ok(AnyBackend::Valkey(ValkeyBackend::connect(&options)?))
        } else {
            Ok(AnyBackend::Rocks(RocksBackend::try_from((
                Path::new(store),
                config,
            ))?))
        }
    }

    /// The RocksDB database, when that is the store.
    pub fn as_rocks(&self) -> Option<&RocksBackend> {
        match self {
            AnyBackend::Rocks(b) => Some(b),
            AnyBackend::Valkey(_) => None,
        }
    }

    /// The cluster store, when that is the store.
    pub fn as_valkey(&self) -> Option<&ValkeyBackend> {
        match self {
            AnyBackend::Rocks(_) => None,
            AnyBackend::Valkey(b) => Some(b),
        }
    }
}

impl std::fmt::Debug for AnyBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnyBackend::Rocks(_) => f.write_str("AnyBackend::Rocks"),
            AnyBackend::Valkey(b) => f.debug_tuple("AnyBackend::Valkey").field(b).finish(),
        }
    }
}

impl From<RocksBackend> for AnyBackend {
    fn from(b: RocksBackend) -> AnyBackend {
        AnyBackend::Rocks(b)
    }
}

impl From<ValkeyBackend> for AnyBackend {
    fn from(b: ValkeyBackend) -> AnyBackend {
        AnyBackend::Valkey(b)
    }
}

impl<'a> TryFrom<(&'a Path, &'a Config)> for AnyBackend {
    type Error = Error;

    /// The RocksDB database at a path: `Engine::open` over either store.
    fn try_from(at: (&'a Path, &'a Config)) -> Result<AnyBackend> {
        RocksBackend::try_from(at).map(AnyBackend::Rocks)
    }
}

impl<'a> TryFrom<starling_store::ClusterAddress<'a>> for AnyBackend {
    type Error = Error;

    /// A cluster store: `Engine::connect` over either store.
    fn try_from(at: starling_store::ClusterAddress<'a>) -> Result<AnyBackend> {
        ValkeyBackend::try_from(at).map(AnyBackend::Valkey)
    }
}

/// Each listed method of a store trait, sent to the backend held.
macro_rules! forward {
    ($(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        $(
            fn $name(&self $(, $arg: $ty)*) -> $ret {
                match self {
                    AnyBackend::Rocks(b) => b.$name($($arg),*),
                    AnyBackend::Valkey(b) => b.$name($($arg),*),
                }
            }
        )*
    };
}

impl GraphStore for AnyBackend {
    forward! {
        fn user(&self, id: UserId) -> Result<Option<User>>;
        fn user_id_by_name(&self, name: &Username) -> Result<Option<UserId>>;
        fn last_user_id(&self) -> Result<Option<UserId>>;
        fn edge(&self, follower: UserId, followee: UserId) -> Result<Option<PostId>>;
        fn follower_edge(&self, followee: UserId, follower: UserId) -> Result<Option<Edge>>;
        fn edges(&self, user: UserId, dir: Direction, after: Option<UserId>, limit: usize, out: &mut Vec<Edge>) -> Result<()>;
        fn counts(&self, user: UserId) -> Result<Counts>;
        fn author_mode(&self, author: UserId) -> Result<AuthorMode>;
        fn follower_edges(&self, followee: UserId, followers: &[UserId], out: &mut Vec<Edge>) -> Result<()>;
        fn link(&self, kind: LinkKind, from: u64, to: u64) -> Result<Option<u64>>;
        fn links(&self, kind: LinkKind, from: u64, after: Option<u64>, limit: usize, out: &mut Vec<(u64, u64)>) -> Result<()>;
        fn group(&self, id: GroupId) -> Result<Option<Group>>;
        fn last_group_id(&self) -> Result<Option<GroupId>>;
    }
}

impl PostStore for AnyBackend {
    forward! {
        fn posts(&self, ids: &[PostId], out: &mut Vec<Option<Post>>) -> Result<()>;
        fn author_posts(&self, author: UserId, before: Option<PostId>, limit: usize, out: &mut Vec<PostId>) -> Result<()>;
        fn last_post_id(&self) -> Result<Option<PostId>>;
        fn scan_posts(&self, after: Option<PostId>, limit: usize, out: &mut Vec<Post>) -> Result<()>;
    }
}

impl InboxStore for AnyBackend {
    forward! {
        fn inbox(&self, owner: UserId, before: Option<PostId>, limit: usize, out: &mut Vec<InboxEntry>) -> Result<()>;
        fn inbox_floor(&self, owner: UserId) -> Result<Option<PostId>>;
        fn pulled(&self, reader: UserId, out: &mut Vec<Edge>) -> Result<()>;
        fn last_reads(&self, after: Option<UserId>, limit: usize, out: &mut Vec<(UserId, u64)>) -> Result<()>;
    }
}

impl FanoutQueue for AnyBackend {
    forward! {
        fn job(&self, post: PostId) -> Result<Option<FanoutJob>>;
        fn jobs(&self, after: Option<PostId>, limit: usize, out: &mut Vec<FanoutJob>) -> Result<()>;
    }
}

impl DirectStore for AnyBackend {
    forward! {
        fn profile(&self, user: UserId) -> Result<Option<Profile>>;
        fn avatar(&self, user: UserId) -> Result<Option<Avatar>>;
        fn phone_of(&self, user: UserId) -> Result<Option<Phone>>;
        fn user_by_phone(&self, phone: &Phone) -> Result<Option<UserId>>;
        fn phone_claim(&self, user: UserId) -> Result<Option<PhoneClaim>>;
        fn phone_claims(&self, phone: &Phone, out: &mut Vec<PhoneClaim>) -> Result<()>;
        fn last_message_id(&self) -> Result<Option<PostId>>;
        fn conversation(&self, owner: UserId, with: UserId) -> Result<Option<Conversation>>;
        fn conversations(&self, owner: UserId, before: Option<PostId>, limit: usize, out: &mut Vec<Conversation>) -> Result<()>;
        fn messages(&self, a: UserId, b: UserId, before: Option<PostId>, limit: usize, out: &mut Vec<DirectMessage>) -> Result<()>;
        fn device_sub(&self, followee: UserId, follower: UserId) -> Result<bool>;
        fn device_subs(&self, followee: UserId, after: Option<UserId>, through: UserId, limit: usize, out: &mut Vec<UserId>) -> Result<()>;
        fn delivery(&self, id: DeliveryId) -> Result<Option<DeviceDelivery>>;
        fn due_deliveries(&self, now_ms: u64, limit: usize, out: &mut Vec<DeviceDelivery>) -> Result<()>;
        fn device_usage(&self, user: UserId, day: u32) -> Result<DeviceUsage>;
    }
}

impl starling_store::ChangeStore for AnyBackend {
    forward! {
        fn changes_after(&self, after: u64, limit: usize, out: &mut Vec<starling_core::ChangeRecord>) -> Result<()>;
        fn change_floor(&self) -> Result<u64>;
        fn last_change_position(&self) -> Result<u64>;
    }
}

impl Backend for AnyBackend {
    forward! {
        fn apply(&self, batch: &[Mutation], durability: Durability) -> Result<()>;
        fn apply_bulk_inbox(&self, entries: &[(UserId, InboxEntry)]) -> Result<()>;
        fn bulk_inbox_load(&self) -> Result<Box<dyn InboxLoad + '_>>;
        fn settle(&self) -> Result<()>;
        fn mint_user_id(&self, durability: Durability) -> Result<Option<UserId>>;
        fn mint_group_id(&self, durability: Durability) -> Result<Option<GroupId>>;
        fn post_id_node(&self, configured: u16) -> Result<u16>;
    }
}

#[cfg(test)]
mod tests {
    use starling_core::{Config, InboxEntry, PostId, UserId};
    use starling_store::{Backend, InboxStore};

    use super::AnyBackend;

    /// A bulk load over the embedded database is the database's own: its
    /// parts go on to one table file, stored at the finish and not before
    /// (the default load would store each part when it is added).
    #[test]
    fn a_bulk_load_is_the_backends_own() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = dir.path().to_str().expect("a path in UTF-8");
        let b = AnyBackend::at(store, "", &Config::default()).expect("store");
        let entry = InboxEntry {
            post: PostId(50),
            author: UserId(1),
        };
        let inbox = |b: &AnyBackend| {
            let mut out = Vec::new();
            b.inbox(UserId(7), None, 8, &mut out).expect("inbox");
            out
        };
        let mut load = b.bulk_inbox_load().expect("load");
        load.add(&[(UserId(7), entry)]).expect("a part");
        assert_eq!(inbox(&b), vec![], "nothing stored before the finish");
        load.finish().expect("finish");
        assert_eq!(inbox(&b), vec![entry], "stored by the finish");
    }
}
