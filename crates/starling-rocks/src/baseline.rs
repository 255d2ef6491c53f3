//! The raw RocksDB baseline that fan-out is measured against: the same
//! number of inbox-sized keys (16 bytes, 8-byte value) written in sorted
//! write batches to a fresh database opened with the inbox family's options.
//! Benchmarks report fan-out as a ratio of this, measured in the same run.

use std::path::Path;
use std::time::{Duration, Instant};

use rocksdb::{ColumnFamilyDescriptor, DB, WriteBatch, WriteOptions};
use starling_core::{Error, PostId, Result, UserId, codec};

use crate::families::{INBOX, db_options, family_options, shared_cache};

/// Writes `entries` inbox keys for one post (owners 1..=entries) in sorted
/// batches of `batch` into a fresh database at `path`, unsynced, as fan-out
/// does. Returns the time the writes took.
pub fn sorted_inbox_writes(path: &Path, entries: u64, batch: usize) -> Result<Duration> {
    let storage =
        |e: rocksdb::Error| Error::Storage(starling_core::StorageError::from_source("RocksDB", e));
    let opts = db_options();
    let cache = shared_cache();
    let cf = ColumnFamilyDescriptor::new(INBOX, family_options(INBOX, &cache));
    let db = DB::open_cf_descriptors(&opts, path, [cf]).map_err(storage)?;
    let handle = db
        .cf_handle(INBOX)
        .ok_or(Error::Corrupt("baseline column family missing"))?;
    let post = PostId(u64::MAX / 2);
    let value = codec::encode_inbox_value(UserId(7));
    let write = WriteOptions::default();
    let started = Instant::now();
    let mut wb = WriteBatch::default();
    for owner in 1..=entries {
        wb.put_cf(handle, codec::inbox_key(UserId(owner), post), value);
        if wb.len() >= batch {
            db.write_opt(std::mem::take(&mut wb), &write)
                .map_err(storage)?;
        }
    }
    if !wb.is_empty() {
        db.write_opt(wb, &write).map_err(storage)?;
    }
    Ok(started.elapsed())
}

/// `threads` threads each write `per_thread` synced single-key batches
/// (a post-sized value) into a fresh database at `path`; returns the wall
/// time. The baseline for durable post acknowledgement: RocksDB groups
/// concurrent synced writers into one fsync, as it does for the engine.
pub fn synced_writes(path: &Path, threads: usize, per_thread: u64) -> Result<Duration> {
    let storage =
        |e: rocksdb::Error| Error::Storage(starling_core::StorageError::from_source("RocksDB", e));
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
    let storage =
        |e: rocksdb::Error| Error::Storage(starling_core::StorageError::from_source("RocksDB", e));
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
