//! The raw RocksDB baseline that fan-out is measured against: the same
//! number of inbox-sized keys (16 bytes, 8-byte value) written in sorted
//! write batches to a fresh database opened with the inbox family's options.
//! Benchmarks report fan-out as a ratio of this, measured in the same run.

use std::path::Path;
use std::time::{Duration, Instant};

use rocksdb::{ColumnFamilyDescriptor, DB, WriteBatch, WriteOptions};
use starling_core::{Error, PostId, Result, UserId, codec};

use crate::backend::{INBOX, db_options, family_options, shared_cache};

/// Writes `entries` inbox keys for one post (owners 1..=entries) in sorted
/// batches of `batch` into a fresh database at `path`, unsynced, as fan-out
/// does. Returns the time the writes took.
pub fn sorted_inbox_writes(path: &Path, entries: u64, batch: usize) -> Result<Duration> {
    let storage = |e: rocksdb::Error| Error::Storage(starling_core::StorageError::new(e.into_string()));
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
            db.write_opt(std::mem::take(&mut wb), &write).map_err(storage)?;
        }
    }
    if !wb.is_empty() {
        db.write_opt(wb, &write).map_err(storage)?;
    }
    Ok(started.elapsed())
}
