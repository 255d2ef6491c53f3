//! Column families, options, and the seam's reads and writes over RocksDB.

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType,
    Direction as Scan, IteratorMode, MergeOperands, Options, ReadOptions, SliceTransform,
    WriteBatch, WriteOptions,
};
use starling_core::codec::{self, CounterKind};
use starling_core::{
    AuthorMode, Config, Counts, Durability, Edge, EdgeMode, Error, FanoutJob, Group, GroupId,
    InboxEntry, LinkKind, Mutation, Post, PostId, Result, StorageError, User, UserId, Username,
};
use starling_graph::{Direction, GraphStore};
use starling_inbox::{Backend, FanoutQueue, InboxStore, OpenBackend};
use starling_log::PostStore;

use crate::direct;

const USERS: &str = "users";
const NAMES: &str = "names";
const FOLLOWING: &str = "following";
const FOLLOWERS: &str = "followers";
const COUNTERS: &str = "counters";
const POSTS: &str = "posts";
const AUTHOR_POSTS: &str = "author_posts";
pub(crate) const INBOX: &str = "inbox";
const INBOX_FLOORS: &str = "inbox_floors";
const PULLED: &str = "pulled";
const AUTHORS: &str = "authors";
const LAST_READS: &str = "last_reads";
const JOBS: &str = "jobs";
const LINKS: &str = "links";
const GROUPS: &str = "groups";

/// Every column family, in the order they are opened.
const FAMILIES: [&str; 26] = [
    USERS,
    NAMES,
    FOLLOWING,
    FOLLOWERS,
    COUNTERS,
    POSTS,
    AUTHOR_POSTS,
    INBOX,
    INBOX_FLOORS,
    PULLED,
    AUTHORS,
    LAST_READS,
    JOBS,
    LINKS,
    GROUPS,
    direct::PROFILES,
    direct::AVATARS,
    direct::PHONES,
    direct::PHONE_INDEX,
    direct::MESSAGES,
    direct::CONVERSATIONS,
    direct::CONVERSATION_INDEX,
    direct::DEVICE_SUBS,
    direct::OUTBOX,
    direct::LEASES,
    direct::USAGE,
];

/// Families whose keys start with an 8-byte user id and are scanned per user.
const PER_USER: [&str; 5] = [FOLLOWING, FOLLOWERS, AUTHOR_POSTS, INBOX, PULLED];

/// Starling's storage over one RocksDB database.
pub struct RocksBackend {
    pub(crate) db: DB,
    /// Kept for its statistics object, which the database writes into.
    opts: Options,
}

/// Bytes RocksDB wrote since open, from its statistics. Write amplification
/// is `(wal + flush + compaction) / logical` (with the WAL) or
/// `(flush + compaction) / logical` (without).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Bytes handed to the database by writes (keys and values).
    pub logical: u64,
    /// Bytes appended to the write-ahead log.
    pub wal: u64,
    /// Bytes written by memtable flushes.
    pub flush: u64,
    /// Bytes written by compactions.
    pub compaction: u64,
}

impl WriteStats {
    /// Physical bytes per logical byte, counting the WAL.
    pub fn amplification_with_wal(&self) -> f64 {
        ratio(self.wal + self.flush + self.compaction, self.logical)
    }

    /// Physical bytes per logical byte, not counting the WAL.
    pub fn amplification_without_wal(&self) -> f64 {
        ratio(self.flush + self.compaction, self.logical)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Size figures of one column family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyStats {
    /// The family's name.
    pub name: &'static str,
    /// RocksDB's estimate of its live keys.
    pub estimated_keys: u64,
    /// Bytes of its SST files.
    pub sst_bytes: u64,
    /// Bytes in its memtables.
    pub memtable_bytes: u64,
}

pub(crate) fn storage(e: rocksdb::Error) -> Error {
    Error::Storage(StorageError::from_source("RocksDB", e))
}

/// Merge operator of the inbox floors: keeps the largest big-endian u64.
fn max_floor(_key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    let mut max = match existing {
        Some(v) => codec::decode_millis(v).ok()?,
        None => 0,
    };
    for op in operands {
        max = max.max(codec::decode_millis(op).ok()?);
    }
    Some(codec::encode_millis(max).to_vec())
}

/// Merge operator of the counters family: adds big-endian i64 operands.
/// A malformed operand fails the merge, which RocksDB reports as corruption.
fn add_counts(_key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    let mut sum = match existing {
        Some(v) => codec::decode_count(v).ok()?,
        None => 0,
    };
    for op in operands {
        sum = sum.wrapping_add(codec::decode_count(op).ok()?);
    }
    Some(codec::encode_count(sum).to_vec())
}

pub(crate) fn family_options(name: &str, cache: &Cache) -> Options {
    let mut opts = Options::default();
    opts.set_compression_type(DBCompressionType::Lz4);
    opts.set_bottommost_compression_type(DBCompressionType::Zstd);
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_bloom_filter(10.0, false);
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    if PER_USER.contains(&name) {
        opts.set_prefix_extractor(SliceTransform::create_fixed_prefix(8));
        opts.set_memtable_prefix_bloom_ratio(0.1);
        table.set_whole_key_filtering(true);
    }
    if name == LINKS {
        // Scanned by (kind, from): a 9-byte prefix.
        opts.set_prefix_extractor(SliceTransform::create_fixed_prefix(9));
        opts.set_memtable_prefix_bloom_ratio(0.1);
        table.set_whole_key_filtering(true);
    }
    opts.set_block_based_table_factory(&table);
    match name {
        INBOX => opts.set_write_buffer_size(128 << 20),
        COUNTERS => opts.set_merge_operator_associative("starling.add", add_counts),
        INBOX_FLOORS => opts.set_merge_operator_associative("starling.max", max_floor),
        _ => opts.set_write_buffer_size(32 << 20),
    }
    direct::tune_family(name, &mut opts);
    opts
}

/// Database-wide options.
pub(crate) fn db_options() -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_max_background_jobs(2);
    opts.set_bytes_per_sync(1 << 20);
    opts.set_db_write_buffer_size(512 << 20);
    opts.set_keep_log_file_num(4);
    opts.enable_statistics();
    opts.set_statistics_level(rocksdb::statistics::StatsLevel::ExceptHistogramOrTimers);
    opts
}

/// The block cache all families of one database share.
pub(crate) fn shared_cache() -> Cache {
    Cache::new_lru_cache(256 << 20)
}

impl OpenBackend for RocksBackend {
    fn open(path: &Path, _config: &Config) -> Result<RocksBackend> {
        RocksBackend::open_with(path, db_options())
    }
}

impl RocksBackend {
    fn open_with(path: &Path, db_opts: Options) -> Result<RocksBackend> {
        let cache = shared_cache();
        let families = FAMILIES
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, family_options(name, &cache)));
        let db = DB::open_cf_descriptors(&db_opts, path, families).map_err(storage)?;
        Ok(RocksBackend { db, opts: db_opts })
    }

    /// Opens the Starling store at `path` as it is, creating nothing: the
    /// open mode of tools that inspect a store (a checker must never create
    /// what it checks). A folder that is missing, holds no database, or
    /// holds a RocksDB database without Starling's column families is
    /// refused with [`Error::NoStore`], and is left as it was.
    ///
    /// ```
    /// use starling_core::{Config, Error};
    /// use starling_inbox::OpenBackend;
    /// use starling_rocks::RocksBackend;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let refused = RocksBackend::open_existing(dir.path(), &Config::default());
    /// assert!(matches!(refused, Err(Error::NoStore { .. })));
    /// assert_eq!(std::fs::read_dir(dir.path())?.count(), 0, "nothing created");
    /// drop(RocksBackend::open(dir.path(), &Config::default())?);
    /// assert!(RocksBackend::open_existing(dir.path(), &Config::default()).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_existing(path: &Path, _config: &Config) -> Result<RocksBackend> {
        let no = |reason| Error::NoStore {
            path: path.to_path_buf(),
            reason,
        };
        if !path.exists() {
            return Err(no("the folder does not exist"));
        }
        if !path.is_dir() {
            return Err(no("it is not a folder"));
        }
        if !path.join("CURRENT").is_file() {
            return Err(no("the folder holds no database"));
        }
        let families = DB::list_cf(&Options::default(), path).map_err(storage)?;
        if ![USERS, POSTS, INBOX]
            .iter()
            .all(|f| families.iter().any(|have| have == f))
        {
            return Err(no("the database is not a Starling store"));
        }
        let mut db_opts = db_options();
        db_opts.create_if_missing(false);
        // A store written by an older version may lack a family added
        // since; adding it is the upgrade every open performs.
        RocksBackend::open_with(path, db_opts)
    }

    /// Bytes written since open, for write amplification.
    pub fn write_stats(&self) -> WriteStats {
        let t = |ticker| self.opts.get_ticker_count(ticker);
        use rocksdb::statistics::Ticker;
        WriteStats {
            logical: t(Ticker::BytesWritten),
            wal: t(Ticker::WalFileBytes),
            flush: t(Ticker::FlushWriteBytes),
            compaction: t(Ticker::CompactWriteBytes),
        }
    }

    /// Size figures of every column family.
    pub fn family_stats(&self) -> Result<Vec<FamilyStats>> {
        let int = |cf: &ColumnFamily, p: &str| -> Result<u64> {
            Ok(self
                .db
                .property_int_value_cf(cf, p)
                .map_err(storage)?
                .unwrap_or(0))
        };
        FAMILIES
            .iter()
            .map(|&name| {
                let cf = self.cf(name);
                Ok(FamilyStats {
                    name,
                    estimated_keys: int(cf, "rocksdb.estimate-num-keys")?,
                    sst_bytes: int(cf, "rocksdb.total-sst-files-size")?,
                    memtable_bytes: int(cf, "rocksdb.cur-size-all-mem-tables")?,
                })
            })
            .collect()
    }

    /// Writes a consistent point-in-time copy of the database to `path` (a
    /// folder that must not exist), hard-linking files where it can. The
    /// copy opens as a database of its own.
    pub fn checkpoint(&self, path: &Path) -> Result<()> {
        let cp = rocksdb::checkpoint::Checkpoint::new(&self.db).map_err(storage)?;
        cp.create_checkpoint(path).map_err(storage)
    }

    /// Flushes every memtable and waits, so size figures include all data.
    pub fn flush(&self) -> Result<()> {
        for name in FAMILIES {
            self.db.flush_cf(self.cf(name)).map_err(storage)?;
        }
        Ok(())
    }

    pub(crate) fn cf(&self, name: &str) -> &ColumnFamily {
        // Every family in FAMILIES is created at open and never dropped.
        #[allow(clippy::expect_used)]
        self.db
            .cf_handle(name)
            .expect("column family opened at start")
    }

    pub(crate) fn get(&self, family: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(self.cf(family), key).map_err(storage)
    }

    /// Scans `family` forward from `start` within `user`'s prefix, calling
    /// `each` with (key, value) until it returns false or `limit` is reached.
    fn scan_user(
        &self,
        family: &str,
        user: UserId,
        start: &[u8],
        limit: usize,
        mut each: impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<()> {
        if limit == 0 {
            return Ok(());
        }
        let mut read = ReadOptions::default();
        read.set_iterate_upper_bound(codec::user_prefix_end(user));
        read.set_prefix_same_as_start(true);
        let mut iter = self.db.raw_iterator_cf_opt(self.cf(family), read);
        iter.seek(start);
        let mut n = 0;
        while iter.valid() && n < limit {
            if let (Some(k), Some(v)) = (iter.key(), iter.value()) {
                each(k, v)?;
                n += 1;
            }
            iter.next();
        }
        iter.status().map_err(storage)
    }

    fn last_key(&self, family: &str) -> Result<Option<Vec<u8>>> {
        let mut iter = self.db.iterator_cf(self.cf(family), IteratorMode::End);
        match iter.next() {
            Some(Ok((k, _))) => Ok(Some(k.to_vec())),
            Some(Err(e)) => Err(storage(e)),
            None => Ok(None),
        }
    }

    /// Where a newest-first scan of a per-user family starts, strictly
    /// below `before`; `None` when nothing can be older.
    fn newest_first_start(user: UserId, before: Option<PostId>) -> Option<[u8; 16]> {
        match before {
            None => Some(codec::inbox_key(user, PostId(u64::MAX))),
            Some(PostId(0)) => None,
            Some(PostId(b)) => Some(codec::inbox_key(user, PostId(b - 1))),
        }
    }
}

impl GraphStore for RocksBackend {
    fn user(&self, id: UserId) -> Result<Option<User>> {
        self.get(USERS, &codec::user_key(id))?
            .map(|v| codec::decode_user(id, &v))
            .transpose()
    }

    fn user_id_by_name(&self, name: &Username) -> Result<Option<UserId>> {
        self.get(NAMES, &codec::name_key(name))?
            .map(|v| codec::decode_user_id(&v))
            .transpose()
    }

    fn last_user_id(&self) -> Result<Option<UserId>> {
        self.last_key(USERS)?
            .map(|k| codec::decode_user_key(&k))
            .transpose()
    }

    fn edge(&self, follower: UserId, followee: UserId) -> Result<Option<PostId>> {
        self.get(FOLLOWING, &codec::edge_key(follower, followee))?
            .map(|v| codec::decode_edge(followee, &v).map(|e| e.since))
            .transpose()
    }

    fn follower_edge(&self, followee: UserId, follower: UserId) -> Result<Option<Edge>> {
        self.get(FOLLOWERS, &codec::edge_key(followee, follower))?
            .map(|v| codec::decode_edge(follower, &v))
            .transpose()
    }

    fn follower_edges(
        &self,
        followee: UserId,
        followers: &[UserId],
        out: &mut Vec<Edge>,
    ) -> Result<()> {
        let keys: Vec<[u8; 16]> = followers
            .iter()
            .map(|f| codec::edge_key(followee, *f))
            .collect();
        // Ascending followers under one followee: the keys are sorted.
        let found = self
            .db
            .batched_multi_get_cf(self.cf(FOLLOWERS), keys.iter(), true);
        for (follower, value) in followers.iter().zip(found) {
            if let Some(v) = value.map_err(storage)? {
                out.push(codec::decode_edge(*follower, &v)?);
            }
        }
        Ok(())
    }

    fn author_mode(&self, author: UserId) -> Result<AuthorMode> {
        self.get(AUTHORS, &codec::user_key(author))?
            .map_or(Ok(AuthorMode::Push), |v| codec::decode_author_mode(&v))
    }

    fn link(&self, kind: LinkKind, from: u64, to: u64) -> Result<Option<u64>> {
        self.get(LINKS, &codec::link_key(kind, from, to))?
            .map(|v| codec::decode_link_value(&v))
            .transpose()
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
            None => codec::link_key(kind, from, 0),
            Some(u64::MAX) => return Ok(()),
            Some(a) => codec::link_key(kind, from, a + 1),
        };
        let prefix = codec::link_prefix(kind, from);
        let mut read = ReadOptions::default();
        read.set_prefix_same_as_start(true);
        let mut iter = self.db.raw_iterator_cf_opt(self.cf(LINKS), read);
        iter.seek(start);
        let mut n = 0;
        while iter.valid() && n < limit {
            if let (Some(k), Some(v)) = (iter.key(), iter.value()) {
                if !k.starts_with(&prefix) {
                    break;
                }
                let (_, _, to) = codec::decode_link_key(k)?;
                out.push((to, codec::decode_link_value(v)?));
                n += 1;
            }
            iter.next();
        }
        iter.status().map_err(storage)
    }

    fn group(&self, id: GroupId) -> Result<Option<Group>> {
        self.get(GROUPS, &codec::group_key(id))?
            .map(|v| codec::decode_group(id, &v))
            .transpose()
    }

    fn last_group_id(&self) -> Result<Option<GroupId>> {
        self.last_key(GROUPS)?
            .map(|k| codec::decode_group_key(&k))
            .transpose()
    }

    fn edges(
        &self,
        user: UserId,
        dir: Direction,
        after: Option<UserId>,
        limit: usize,
        out: &mut Vec<Edge>,
    ) -> Result<()> {
        let family = match dir {
            Direction::Followers => FOLLOWERS,
            Direction::Following => FOLLOWING,
        };
        let start = match after {
            None => UserId(0),
            Some(UserId(u64::MAX)) => return Ok(()),
            Some(UserId(a)) => UserId(a + 1),
        };
        self.scan_user(
            family,
            user,
            &codec::edge_key(user, start),
            limit,
            |k, v| {
                let (_, other) = codec::decode_edge_key(k)?;
                out.push(codec::decode_edge(other, v)?);
                Ok(())
            },
        )
    }

    fn counts(&self, user: UserId) -> Result<Counts> {
        let cf = self.cf(COUNTERS);
        let keys = [
            codec::counter_key(user, CounterKind::Followers),
            codec::counter_key(user, CounterKind::Following),
        ];
        let mut values = self
            .db
            .batched_multi_get_cf(cf, keys.iter(), true)
            .into_iter()
            .map(|r| match r.map_err(storage)? {
                Some(v) => codec::decode_count(&v).map(|c| c.max(0) as u64),
                None => Ok(0),
            });
        let followers = values.next().unwrap_or(Ok(0))?;
        let following = values.next().unwrap_or(Ok(0))?;
        Ok(Counts {
            followers,
            following,
        })
    }
}

impl PostStore for RocksBackend {
    fn posts(&self, ids: &[PostId], out: &mut Vec<Option<Post>>) -> Result<()> {
        let keys: Vec<[u8; 8]> = ids.iter().map(|id| codec::post_key(*id)).collect();
        let found = self
            .db
            .batched_multi_get_cf(self.cf(POSTS), keys.iter(), false);
        for (id, value) in ids.iter().zip(found) {
            out.push(
                value
                    .map_err(storage)?
                    .map(|v| codec::decode_post(*id, &v))
                    .transpose()?,
            );
        }
        Ok(())
    }

    fn author_posts(
        &self,
        author: UserId,
        before: Option<PostId>,
        limit: usize,
        out: &mut Vec<PostId>,
    ) -> Result<()> {
        let Some(start) = Self::newest_first_start(author, before) else {
            return Ok(());
        };
        self.scan_user(AUTHOR_POSTS, author, &start, limit, |k, _| {
            out.push(codec::decode_author_post_key(k)?.1);
            Ok(())
        })
    }

    fn last_post_id(&self) -> Result<Option<PostId>> {
        self.last_key(POSTS)?
            .map(|k| codec::decode_post_key(&k))
            .transpose()
    }

    fn scan_posts(&self, after: Option<PostId>, limit: usize, out: &mut Vec<Post>) -> Result<()> {
        let Some(start) = key_after(after.map(|p| p.0)) else {
            return Ok(());
        };
        self.scan_all(POSTS, &start, limit, |k, v| {
            out.push(codec::decode_post(codec::decode_post_key(k)?, v)?);
            Ok(())
        })
    }
}

impl InboxStore for RocksBackend {
    fn inbox(
        &self,
        owner: UserId,
        before: Option<PostId>,
        limit: usize,
        out: &mut Vec<InboxEntry>,
    ) -> Result<()> {
        let Some(start) = Self::newest_first_start(owner, before) else {
            return Ok(());
        };
        self.scan_user(INBOX, owner, &start, limit, |k, v| {
            let (_, post) = codec::decode_inbox_key(k)?;
            out.push(codec::decode_inbox_entry(post, v)?);
            Ok(())
        })
    }

    fn inbox_floor(&self, owner: UserId) -> Result<Option<PostId>> {
        self.get(INBOX_FLOORS, &codec::user_key(owner))?
            .map(|v| codec::decode_millis(&v).map(PostId))
            .transpose()
    }

    fn pulled(&self, reader: UserId, out: &mut Vec<Edge>) -> Result<()> {
        let start = codec::pulled_key(reader, UserId(0));
        self.scan_user(PULLED, reader, &start, usize::MAX, |k, v| {
            out.push(codec::decode_pulled(k, v)?);
            Ok(())
        })
    }

    fn last_reads(
        &self,
        after: Option<UserId>,
        limit: usize,
        out: &mut Vec<(UserId, u64)>,
    ) -> Result<()> {
        let Some(start) = key_after(after.map(|u| u.0)) else {
            return Ok(());
        };
        self.scan_all(LAST_READS, &start, limit, |k, v| {
            out.push((codec::decode_user_key(k)?, codec::decode_millis(v)?));
            Ok(())
        })
    }
}

impl RocksBackend {
    fn scan_all(
        &self,
        family: &str,
        start: &[u8],
        limit: usize,
        mut each: impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<()> {
        let iter = self
            .db
            .iterator_cf(self.cf(family), IteratorMode::From(start, Scan::Forward));
        for item in iter.take(limit) {
            let (k, v) = item.map_err(storage)?;
            each(&k, &v)?;
        }
        Ok(())
    }
}

/// The first key after `after` in a family keyed by a big-endian u64, or
/// `None` when nothing can follow.
fn key_after(after: Option<u64>) -> Option<[u8; 8]> {
    match after {
        None => Some(0u64.to_be_bytes()),
        Some(u64::MAX) => None,
        Some(a) => Some((a + 1).to_be_bytes()),
    }
}

impl FanoutQueue for RocksBackend {
    fn job(&self, post: PostId) -> Result<Option<FanoutJob>> {
        self.get(JOBS, &codec::job_key(post))?
            .map(|v| codec::decode_job(post, &v))
            .transpose()
    }

    fn jobs(&self, after: Option<PostId>, limit: usize, out: &mut Vec<FanoutJob>) -> Result<()> {
        let Some(start) = key_after(after.map(|p| p.0)) else {
            return Ok(());
        };
        self.scan_all(JOBS, &start, limit, |k, v| {
            out.push(codec::decode_job(codec::decode_post_key(k)?, v)?);
            Ok(())
        })
    }
}

/// Every family's handle, looked up once per batch rather than per mutation.
struct Families<'a> {
    users: &'a ColumnFamily,
    names: &'a ColumnFamily,
    following: &'a ColumnFamily,
    followers: &'a ColumnFamily,
    counters: &'a ColumnFamily,
    posts: &'a ColumnFamily,
    author_posts: &'a ColumnFamily,
    inbox_floors: &'a ColumnFamily,
    inbox: &'a ColumnFamily,
    pulled: &'a ColumnFamily,
    authors: &'a ColumnFamily,
    last_reads: &'a ColumnFamily,
    jobs: &'a ColumnFamily,
    links: &'a ColumnFamily,
    groups: &'a ColumnFamily,
    direct: direct::DirectFamilies<'a>,
}

impl RocksBackend {
    fn families(&self) -> Families<'_> {
        Families {
            users: self.cf(USERS),
            names: self.cf(NAMES),
            following: self.cf(FOLLOWING),
            followers: self.cf(FOLLOWERS),
            counters: self.cf(COUNTERS),
            posts: self.cf(POSTS),
            author_posts: self.cf(AUTHOR_POSTS),
            inbox_floors: self.cf(INBOX_FLOORS),
            inbox: self.cf(INBOX),
            pulled: self.cf(PULLED),
            authors: self.cf(AUTHORS),
            last_reads: self.cf(LAST_READS),
            jobs: self.cf(JOBS),
            links: self.cf(LINKS),
            groups: self.cf(GROUPS),
            direct: direct::DirectFamilies::new(self),
        }
    }
}

impl Backend for RocksBackend {
    fn apply(&self, batch: &[Mutation], durability: Durability) -> Result<()> {
        let families = self.families();
        let mut wb = WriteBatch::default();
        for m in batch {
            Self::encode(&families, m, &mut wb);
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(durability == Durability::Synced);
        self.db.write_opt(wb, &opts).map_err(storage)
    }
}

impl RocksBackend {
    fn encode(f: &Families<'_>, m: &Mutation, wb: &mut WriteBatch) {
        match m {
            Mutation::PutUser(user) => {
                wb.put_cf(f.users, codec::user_key(user.id), codec::encode_user(user));
                wb.put_cf(
                    f.names,
                    codec::name_key(&user.name),
                    codec::encode_user_id(user.id),
                );
            }
            Mutation::AddEdge {
                follower,
                followee,
                since,
                mode,
            } => {
                wb.put_cf(
                    f.following,
                    codec::edge_key(*follower, *followee),
                    codec::encode_edge_value(*since, EdgeMode::Push),
                );
                Self::set_mode(f, wb, *follower, *followee, *since, *mode);
                Self::count(f, wb, *follower, *followee, 1);
            }
            Mutation::RemoveEdge { follower, followee } => {
                wb.delete_cf(f.following, codec::edge_key(*follower, *followee));
                wb.delete_cf(f.followers, codec::edge_key(*followee, *follower));
                wb.delete_cf(f.pulled, codec::pulled_key(*follower, *followee));
                Self::count(f, wb, *follower, *followee, -1);
            }
            Mutation::SetEdgeMode {
                follower,
                followee,
                since,
                mode,
            } => Self::set_mode(f, wb, *follower, *followee, *since, *mode),
            Mutation::SetAuthorMode { author, mode } => wb.put_cf(
                f.authors,
                codec::user_key(*author),
                codec::encode_author_mode(*mode),
            ),
            Mutation::SetLastRead { user, at_ms } => wb.put_cf(
                f.last_reads,
                codec::user_key(*user),
                codec::encode_millis(*at_ms),
            ),
            Mutation::DeletePulled { reader, author } => {
                wb.delete_cf(f.pulled, codec::pulled_key(*reader, *author));
            }
            Mutation::PutPost(post) => {
                wb.put_cf(f.posts, codec::post_key(post.id), codec::encode_post(post));
                wb.put_cf(
                    f.author_posts,
                    codec::author_post_key(post.author, post.id),
                    [],
                );
            }
            Mutation::InboxPut { owner, entry } => wb.put_cf(
                f.inbox,
                codec::inbox_key(*owner, entry.post),
                codec::encode_inbox_value(entry.author),
            ),
            Mutation::InboxDelete { owner, post } => {
                wb.delete_cf(f.inbox, codec::inbox_key(*owner, *post));
            }
            Mutation::InboxTrim { owner, through } => {
                wb.delete_range_cf(
                    f.inbox,
                    codec::inbox_key(*owner, *through).as_slice(),
                    codec::user_prefix_end(*owner).as_slice(),
                );
                wb.merge_cf(
                    f.inbox_floors,
                    codec::user_key(*owner),
                    codec::encode_millis(through.0),
                );
            }
            Mutation::PutJob(job) => {
                wb.put_cf(f.jobs, codec::job_key(job.post), codec::encode_job(job));
            }
            Mutation::DeleteJob(post) => wb.delete_cf(f.jobs, codec::job_key(*post)),
            Mutation::SetCounts { user, counts } => {
                let cf = f.counters;
                let as_i64 = |n: u64| codec::encode_count(i64::try_from(n).unwrap_or(i64::MAX));
                wb.put_cf(
                    cf,
                    codec::counter_key(*user, CounterKind::Followers),
                    as_i64(counts.followers),
                );
                wb.put_cf(
                    cf,
                    codec::counter_key(*user, CounterKind::Following),
                    as_i64(counts.following),
                );
            }
            Mutation::PutFollowerEntry {
                followee,
                follower,
                since,
                mode,
            } => wb.put_cf(
                f.followers,
                codec::edge_key(*followee, *follower),
                codec::encode_edge_value(*since, *mode),
            ),
            Mutation::DeleteFollowerEntry { followee, follower } => {
                wb.delete_cf(f.followers, codec::edge_key(*followee, *follower));
            }
            Mutation::DeleteAuthorIndex { author, post } => {
                wb.delete_cf(f.author_posts, codec::author_post_key(*author, *post));
            }
            Mutation::PutLink {
                kind,
                from,
                to,
                value,
            } => wb.put_cf(
                f.links,
                codec::link_key(*kind, *from, *to),
                codec::encode_link_value(*value),
            ),
            Mutation::DeleteLink { kind, from, to } => {
                wb.delete_cf(f.links, codec::link_key(*kind, *from, *to));
            }
            Mutation::PutGroup(group) => {
                wb.put_cf(
                    f.groups,
                    codec::group_key(group.id),
                    codec::encode_group(group),
                );
            }
            Mutation::DeleteGroup(id) => wb.delete_cf(f.groups, codec::group_key(*id)),
            Mutation::Direct(m) => direct::encode(&f.direct, m, wb),
        }
    }

    /// The followers-side copy of an edge and the follower's pulled index.
    fn set_mode(
        f: &Families<'_>,
        wb: &mut WriteBatch,
        follower: UserId,
        followee: UserId,
        since: PostId,
        mode: EdgeMode,
    ) {
        wb.put_cf(
            f.followers,
            codec::edge_key(followee, follower),
            codec::encode_edge_value(since, mode),
        );
        let key = codec::pulled_key(follower, followee);
        match mode {
            EdgeMode::Pull => wb.put_cf(f.pulled, key, codec::encode_since(since)),
            EdgeMode::Push => wb.delete_cf(f.pulled, key),
        }
    }

    fn count(
        f: &Families<'_>,
        wb: &mut WriteBatch,
        follower: UserId,
        followee: UserId,
        delta: i64,
    ) {
        let cf = f.counters;
        let delta = codec::encode_count(delta);
        wb.merge_cf(
            cf,
            codec::counter_key(follower, CounterKind::Following),
            delta,
        );
        wb.merge_cf(
            cf,
            codec::counter_key(followee, CounterKind::Followers),
            delta,
        );
    }
}
