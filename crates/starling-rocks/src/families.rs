//! The column families: their names, their options, and the merge
//! operators of the families updated by merges (counters, inbox floors,
//! the change feed's floor).

use rocksdb::{
    BlockBasedOptions, Cache, DBCompressionType, MergeOperands, Options, SliceTransform,
};
use starling_core::codec;

pub(crate) const USERS: &str = "users";
pub(crate) const NAMES: &str = "names";
pub(crate) const FOLLOWING: &str = "following";
pub(crate) const FOLLOWERS: &str = "followers";
pub(crate) const COUNTERS: &str = "counters";
pub(crate) const POSTS: &str = "posts";
pub(crate) const AUTHOR_POSTS: &str = "author_posts";
pub(crate) const INBOX: &str = "inbox";
pub(crate) const INBOX_FLOORS: &str = "inbox_floors";
pub(crate) const PULLED: &str = "pulled";
pub(crate) const AUTHORS: &str = "authors";
pub(crate) const LAST_READS: &str = "last_reads";
pub(crate) const JOBS: &str = "jobs";
pub(crate) const LINKS: &str = "links";
pub(crate) const GROUPS: &str = "groups";
pub(crate) const CHANGES: &str = "changes";

/// Every column family, in the order they are opened.
pub(crate) const FAMILIES: [&str; 29] = [
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
    PROFILES,
    AVATARS,
    PHONES,
    PHONE_INDEX,
    PHONE_CLAIMS,
    CLAIM_INDEX,
    MESSAGES,
    CONVERSATIONS,
    CONVERSATION_INDEX,
    DEVICE_SUBS,
    OUTBOX,
    LEASES,
    USAGE,
    CHANGES,
];

/// Families whose keys start with an 8-byte user id and are scanned per user.
pub(crate) const PER_USER: [&str; 5] = [FOLLOWING, FOLLOWERS, AUTHOR_POSTS, INBOX, PULLED];

pub(crate) const PROFILES: &str = "profiles";
pub(crate) const AVATARS: &str = "avatars";
pub(crate) const PHONES: &str = "phones";
pub(crate) const PHONE_INDEX: &str = "phone_index";
pub(crate) const PHONE_CLAIMS: &str = "phone_claims";
pub(crate) const CLAIM_INDEX: &str = "phone_claim_index";
pub(crate) const MESSAGES: &str = "dm_messages";
pub(crate) const CONVERSATIONS: &str = "conversations";
pub(crate) const CONVERSATION_INDEX: &str = "conversation_index";
pub(crate) const DEVICE_SUBS: &str = "device_subs";
pub(crate) const OUTBOX: &str = "device_outbox";
pub(crate) const LEASES: &str = "device_leases";
pub(crate) const USAGE: &str = "device_usage";

/// Merge operator of the inbox floors and of the largest message id:
/// keeps the largest big-endian u64.
fn max_u64(_key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
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
        opts.set_prefix_extractor(SliceTransform::create_fixed_prefix(codec::USER_PREFIX_LEN));
        opts.set_memtable_prefix_bloom_ratio(0.1);
        // An inbox is only ever read by its owner's prefix, never by a
        // whole key: its filters hold prefixes alone, half the hashing
        // when a flush, a compaction or a bulk load builds them.
        table.set_whole_key_filtering(name != INBOX);
    }
    if name == LINKS {
        // Scanned by (kind, from).
        opts.set_prefix_extractor(SliceTransform::create_fixed_prefix(codec::LINK_PREFIX_LEN));
        opts.set_memtable_prefix_bloom_ratio(0.1);
        table.set_whole_key_filtering(true);
    }
    opts.set_block_based_table_factory(&table);
    match name {
        INBOX => opts.set_write_buffer_size(128 << 20),
        COUNTERS => opts.set_merge_operator_associative("starling.add", add_counts),
        INBOX_FLOORS => opts.set_merge_operator_associative("starling.max", max_u64),
        CHANGES => {
            opts.set_write_buffer_size(32 << 20);
            // Only the feed's floor is ever merged.
            opts.set_merge_operator_associative("starling.max", max_u64);
        }
        CONVERSATIONS => {
            opts.set_write_buffer_size(32 << 20);
            // Only the largest-message-id key is ever merged.
            opts.set_merge_operator_associative("starling.max", max_u64);
        }
        _ => opts.set_write_buffer_size(32 << 20),
    }
    tune_family(name, &mut opts);
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

/// How the inbox family compacts. A store may be reopened under either
/// style: each level of a leveled tree is a sorted run of a universal one,
/// and universal compaction keeps its runs in levels, oldest lowest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InboxCompaction {
    /// Leveled compaction: the least space, each entry rewritten once per
    /// level it moves down.
    Leveled,
    /// Universal (tiered) compaction: sorted runs merged when their sizes
    /// call for it, fewer rewrites for more space between merges. The
    /// default: over a 30-minute soak it wrote 2.6 times the inbox bytes
    /// against leveled's 4.3 (3.8 against 5.7 over the last 10 minutes),
    /// for about the same disk bytes per entry (README, "Long run").
    #[default]
    Universal,
}

/// Sets the inbox family's compaction style.
pub(crate) fn set_inbox_compaction(opts: &mut Options, style: InboxCompaction) {
    if style == InboxCompaction::Universal {
        opts.set_compaction_style(rocksdb::DBCompactionStyle::Universal);
    }
}

/// Avatars at least this large go to blob files, out of the LSM tree.
const MIN_BLOB_SIZE: u64 = 4096;

/// Family options beyond the defaults every family gets.
pub(crate) fn tune_family(name: &str, opts: &mut Options) {
    if name == AVATARS {
        // BlobDB: large values live in blob files, so compactions of the
        // tree move only keys and blob references, not pictures.
        opts.set_enable_blob_files(true);
        opts.set_min_blob_size(MIN_BLOB_SIZE);
        opts.set_enable_blob_gc(true);
        // Pictures are compressed already.
        opts.set_blob_compression_type(rocksdb::DBCompressionType::None);
    }
}

#[cfg(test)]
mod tests {
    use starling_core::Config;

    use super::{INBOX, InboxCompaction, USERS};
    use crate::RocksBackend;

    /// The compaction style each family was opened with, as the options
    /// file RocksDB writes beside the database records it.
    fn styles(dir: &std::path::Path) -> Vec<(String, String)> {
        let newest = std::fs::read_dir(dir)
            .expect("folder")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter(|n| n.starts_with("OPTIONS-"))
            .max_by_key(|n| n[8..].parse::<u64>().unwrap_or(0))
            .expect("an options file");
        let text = std::fs::read_to_string(dir.join(newest)).expect("options");
        let mut family = String::new();
        let mut out = Vec::new();
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix("[CFOptions \"") {
                family = name.trim_end_matches("\"]").to_owned();
            } else if let Some(style) = line.strip_prefix("compaction_style=") {
                out.push((family.clone(), style.to_owned()));
            }
        }
        out
    }

    #[test]
    fn the_inbox_family_alone_takes_the_compaction_asked_for() {
        for (asked, want) in [
            (InboxCompaction::Leveled, "kCompactionStyleLevel"),
            (InboxCompaction::Universal, "kCompactionStyleUniversal"),
        ] {
            let dir = tempfile::tempdir().expect("temp dir");
            let db =
                RocksBackend::open_with_inbox_compaction(dir.path(), &Config::default(), asked)
                    .expect("opens");
            drop(db);
            let styles = styles(dir.path());
            let of = |f: &str| styles.iter().find(|(n, _)| n == f).map(|(_, s)| s.as_str());
            assert_eq!(of(INBOX), Some(want), "{styles:?}");
            assert_eq!(of(USERS), Some("kCompactionStyleLevel"), "{styles:?}");
        }
    }
}

#[cfg(test)]
mod switching {
    use starling_core::{Config, Durability, InboxEntry, Mutation, PostId, UserId};
    use starling_store::{Backend, InboxStore};

    use super::{INBOX, InboxCompaction};
    use crate::RocksBackend;

    /// Every owner's inbox, as post ids.
    fn inboxes(db: &RocksBackend) -> Vec<Vec<u64>> {
        (1..=200)
            .map(|o| {
                let mut out = Vec::new();
                db.inbox(UserId(o), None, 20, &mut out).expect("read");
                out.iter().map(|e| e.post.0).collect()
            })
            .collect()
    }

    /// Writes post `post` to owners 1..=200 and flushes it to a table file.
    fn round(db: &RocksBackend, post: u64) {
        let batch: Vec<Mutation> = (1..=200)
            .map(|o| Mutation::InboxPut {
                owner: UserId(o),
                entry: InboxEntry {
                    post: PostId(post),
                    author: UserId(9),
                },
            })
            .collect();
        db.apply(&batch, Durability::Buffered).expect("write");
        db.flush().expect("flush");
    }

    /// A store keeps its entries whichever style it is opened with, back
    /// and forth: a leveled tree (files in level 0 and the last level) is
    /// a valid universal one, and the other way round.
    #[test]
    fn a_store_reopens_under_either_style() {
        let dir = tempfile::tempdir().expect("temp dir");
        let open = |style| {
            RocksBackend::open_with_inbox_compaction(dir.path(), &Config::default(), style)
                .expect("opens")
        };
        let db = open(InboxCompaction::Leveled);
        for post in 1..=4 {
            round(&db, post);
        }
        db.db
            .compact_range_cf(db.cf(INBOX), None::<&[u8]>, None::<&[u8]>);
        round(&db, 5);
        round(&db, 6);
        let want = inboxes(&db);
        assert!(
            want.iter().all(|i| i == &[6, 5, 4, 3, 2, 1]),
            "{:?}",
            want[0]
        );
        drop(db);
        for style in [
            InboxCompaction::Universal,
            InboxCompaction::Leveled,
            InboxCompaction::Universal,
        ] {
            let db = open(style);
            assert_eq!(inboxes(&db), want, "{style:?}");
            db.db
                .compact_range_cf(db.cf(INBOX), None::<&[u8]>, None::<&[u8]>);
            assert_eq!(inboxes(&db), want, "{style:?} compacted");
        }
    }
}
