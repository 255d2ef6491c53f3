//! The raw RocksDB baseline that fan-out is measured against: the same
//! number of inbox-sized keys (16 bytes, 8-byte value) written in sorted
//! write batches to a fresh database opened with the inbox family's options.
//! Benchmarks report fan-out as a ratio of this, measured in the same run.

use std::path::Path;
use std::time::{Duration, Instant};

use rocksdb::{ColumnFamilyDescriptor, DB, WriteBatch, WriteOptions};
use starling_core::{Error, PostId, Result, UserId, codec};

use crate::families::{
    INBOX, InboxCompaction, db_options, family_options, set_inbox_compaction, shared_cache,
};

/// A database holding the inbox family alone, opened with the engine's
/// inbox options: the raw side of the fan-out benchmarks. Each
/// [`InboxBaseline::write_post`] writes one post's inbox keys, so a
/// sequence of calls is the raw counterpart of an author posting again and
/// again to the same followers (steady state), and the first call on a new
/// database is the counterpart of a first post to fresh inboxes.
pub struct InboxBaseline {
    db: DB,
    next_post: u64,
}

fn storage(e: rocksdb::Error) -> Error {
    Error::Storage(starling_core::StorageError::from_source("RocksDB", e))
}

impl InboxBaseline {
    /// Opens (creating if needed) the baseline database at `path` with the
    /// engine's database options and its inbox family's options.
    pub fn open(path: &Path) -> Result<InboxBaseline> {
        let opts = db_options();
        let cache = shared_cache();
        let mut inbox = family_options(INBOX, &cache);
        set_inbox_compaction(&mut inbox, InboxCompaction::default());
        let cf = ColumnFamilyDescriptor::new(INBOX, inbox);
        let db = DB::open_cf_descriptors(&opts, path, [cf]).map_err(storage)?;
        Ok(InboxBaseline {
            db,
            // Post ids grow with time, as the engine's do; the inbox key
            // holds them inverted, so each post's keys sort before the
            // older entries of the same owner.
            next_post: u64::MAX / 2,
        })
    }

    /// Writes the inbox keys (16 bytes, 8-byte value) of the next post for
    /// owners 1..=`entries`, in sorted write batches of `batch` keys,
    /// unsynced through the write-ahead log, as fan-out writes them.
    /// Returns the time the writes took.
    pub fn write_post(&mut self, entries: u64, batch: usize) -> Result<Duration> {
        if batch == 0 {
            return Err(Error::InvalidConfig("baseline batch must be at least 1"));
        }
        let handle = self
            .db
            .cf_handle(INBOX)
            .ok_or(Error::Corrupt("baseline column family missing"))?;
        let post = PostId(self.next_post);
        self.next_post += 1;
        let value = codec::encode_inbox_value(UserId(7));
        let write = WriteOptions::default();
        let started = Instant::now();
        let mut wb = WriteBatch::default();
        for owner in 1..=entries {
            wb.put_cf(handle, codec::inbox_key(UserId(owner), post), value);
            if wb.len() >= batch {
                self.db
                    .write_opt(std::mem::take(&mut wb), &write)
                    .map_err(storage)?;
            }
        }
        if !wb.is_empty() {
            self.db.write_opt(wb, &write).map_err(storage)?;
        }
        Ok(started.elapsed())
    }
}

/// Writes `entries` inbox keys for one post (owners 1..=entries) in sorted
/// batches of `batch` into a fresh database at `path`, unsynced, as fan-out
/// does. Returns the time the writes took.
pub fn sorted_inbox_writes(path: &Path, entries: u64, batch: usize) -> Result<Duration> {
    InboxBaseline::open(path)?.write_post(entries, batch)
}

/// The times of [`steady_inbox_writes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SteadyTimes {
    /// The first post's writes, into the fresh database.
    pub first: Duration,
    /// The writes of posts 2 to `posts`, into the database the earlier
    /// posts filled.
    pub rest: Duration,
}

/// Writes `posts` posts' inbox keys for owners 1..=`entries` into ONE
/// database at `path` (opened with the inbox family's options and kept
/// across the sequence), each post in sorted batches of `batch`: the raw
/// counterpart of an author posting again and again to the same followers.
pub fn steady_inbox_writes(
    path: &Path,
    entries: u64,
    posts: usize,
    batch: usize,
) -> Result<SteadyTimes> {
    if posts < 2 {
        return Err(Error::InvalidConfig(
            "a steady baseline needs at least 2 posts",
        ));
    }
    let mut db = InboxBaseline::open(path)?;
    let first = db.write_post(entries, batch)?;
    let mut rest = Duration::ZERO;
    for _ in 1..posts {
        rest += db.write_post(entries, batch)?;
    }
    Ok(SteadyTimes { first, rest })
}

/// `threads` threads each write `per_thread` synced single-key batches
/// (a post-sized value) into a fresh database at `path`; returns the wall
/// time. The baseline for durable post acknowledgement: RocksDB groups
/// concurrent synced writers into one fsync, as it does for the engine.
pub fn synced_writes(path: &Path, threads: usize, per_thread: u64) -> Result<Duration> {
    let _ = std::fs::remove_dir_all(path);
    let db = DB::open(&db_options(), path).map_err(storage)?;
    let value = [b'x'; 120];
    let started = Instant::now();
    let failures = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..threads as u64 {
            let (db, failures) = (&db, &failures);
            s.spawn(move || {
                let mut opts = WriteOptions::default();
                opts.set_sync(true);
                for i in 0..per_thread {
                    let mut wb = WriteBatch::default();
                    wb.put(codec::inbox_key(UserId(t), PostId(i)), value);
                    if db.write_opt(wb, &opts).is_err() {
                        failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let took = started.elapsed();
    if failures.into_inner() > 0 {
        return Err(Error::Storage(starling_core::StorageError::new(
            "baseline write failed",
        )));
    }
    Ok(took)
}

/// As [`synced_writes`], returning each write's latency in milliseconds.
pub fn synced_write_latencies(path: &Path, threads: usize, per_thread: u64) -> Result<Vec<f64>> {
    let _ = std::fs::remove_dir_all(path);
    let db = DB::open(&db_options(), path).map_err(storage)?;
    let value = [b'x'; 120];
    let all = std::sync::Mutex::new(Vec::new());
    let failures = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..threads as u64 {
            let (db, all, failures) = (&db, &all, &failures);
            s.spawn(move || {
                let mut opts = WriteOptions::default();
                opts.set_sync(true);
                let mut mine = Vec::with_capacity(per_thread as usize);
                for i in 0..per_thread {
                    let mut wb = WriteBatch::default();
                    wb.put(codec::inbox_key(UserId(t), PostId(i)), value);
                    let started = Instant::now();
                    if db.write_opt(wb, &opts).is_err() {
                        failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    mine.push(started.elapsed().as_secs_f64() * 1e3);
                }
                if let Ok(mut all) = all.lock() {
                    all.extend(mine);
                }
            });
        }
    });
    if failures.into_inner() > 0 {
        return Err(Error::Storage(starling_core::StorageError::new(
            "baseline write failed",
        )));
    }
    Ok(all.into_inner().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(db: &InboxBaseline) -> usize {
        let cf = db.db.cf_handle(INBOX).expect("inbox family");
        let mut n = 0;
        for kv in db.db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
            kv.expect("key");
            n += 1;
        }
        n
    }

    #[test]
    fn each_post_adds_one_key_per_owner() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut db = InboxBaseline::open(dir.path()).expect("open");
        db.write_post(1_000, 300).expect("first post");
        assert_eq!(keys(&db), 1_000);
        db.write_post(1_000, 300).expect("second post");
        assert_eq!(keys(&db), 2_000);
    }

    #[test]
    fn steady_writes_keep_one_database() {
        let dir = tempfile::tempdir().expect("temp dir");
        steady_inbox_writes(dir.path(), 500, 3, 100).expect("steady");
        let db = InboxBaseline::open(dir.path()).expect("reopen");
        assert_eq!(keys(&db), 1_500);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(steady_inbox_writes(dir.path(), 10, 1, 10).is_err());
        let mut db = InboxBaseline::open(&dir.path().join("b")).expect("open");
        assert!(db.write_post(10, 0).is_err());
    }
}
