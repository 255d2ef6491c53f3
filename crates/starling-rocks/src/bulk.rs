//! Bulk inbox loads: the inbox entries of a fan-out walk written as one
//! sorted table file, with the inbox family's options (but uncompressed and
//! without a filter: see `RocksBackend::open_with`), and
//! ingested whole, past the memtable and the write-ahead log.
//!
//! A load takes its entries in parts (the pages of one hold of the
//! author's lock) and writes them on to one file while they come in key
//! order, as the pages of a walk do; a part that does not starts a new
//! file, and the files are ingested one after the other, so the later of
//! two entries for one key wins. One file a walk, not one a page: each
//! lands in level 0 (see below), and fewer, larger files there are less
//! for compaction to merge and keep loads from falling back to the
//! memtable.
//!
//! Ingestion keeps the order of writes. The file is ingested with RocksDB's
//! default global sequence number assignment (never `ingest_behind`): it
//! gets a sequence number newer than every write before it (a memtable its
//! keys overlap is flushed first), and every write after it is newer still.
//! So a retraction, unfollow or trim applied after an ingest removes its
//! entries, and an ingest never lands below a delete made before it.
//!
//! Ingestion syncs the file and the manifest before it returns, so the
//! entries are on stable storage before the job's cursor, written after
//! them, can be. Staged files live in a folder of their own inside the
//! database folder; a load dropped unfinished removes its files, a file
//! staged and never ingested (a crash between the two) is removed at the
//! next open, and the job it belonged to resumes at its cursor and stages
//! it again: nothing lost, and since entries are keyed by (owner, post),
//! nothing doubled.
//!
//! A load ingests only while the inbox family's level 0 holds fewer than
//! [`BULK_LEVEL0_LIMIT`] files. A file whose keys overlap the tree's (the
//! next post of an author to the same followers) lands in level 0, one
//! file a load, and compaction merges level 0 down at its own pace: loads
//! faster than that would pile files up until RocksDB slows every write.
//! Past the limit a load goes through the memtable like any batch, and
//! ingests again once compaction has caught up.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use rocksdb::{IngestExternalFileOptions, SstFileWriter};
use starling_core::{Durability, InboxEntry, Mutation, Result, UserId, codec};
use starling_store::{Backend, InboxLoad};

use crate::db::{RocksBackend, staging_error as io, storage};
use crate::families::INBOX;

/// Level-0 files of the inbox family from which a bulk load goes through
/// the memtable instead of being ingested (see the module's
/// documentation). Compaction starts merging level 0 at 4 files and
/// RocksDB slows writes at 20.
pub(crate) const BULK_LEVEL0_LIMIT: u64 = 8;

/// Key and value bytes of one inbox entry, for the write statistics.
const ENTRY_BYTES: u64 = 16 + 8;

/// The key of an entry.
fn key(&(owner, e): &(UserId, InboxEntry)) -> [u8; 16] {
    codec::inbox_key(owner, e.post)
}

/// `entries` in strictly increasing key order: as they are when they are
/// (a fan-out page holds one post for followers in id order), else sorted,
/// keeping the later of two with the same key.
fn in_key_order(entries: &[(UserId, InboxEntry)]) -> Cow<'_, [(UserId, InboxEntry)]> {
    if entries.windows(2).all(|w| key(&w[0]) < key(&w[1])) {
        return Cow::Borrowed(entries);
    }
    let mut all = entries.to_vec();
    // Stable: of equal keys, the later stays last.
    all.sort_by_key(key);
    let mut kept: Vec<(UserId, InboxEntry)> = Vec::with_capacity(all.len());
    for e in all {
        match kept.last_mut() {
            Some(last) if key(last) == key(&e) => *last = e,
            _ => kept.push(e),
        }
    }
    Cow::Owned(kept)
}

impl RocksBackend {
    /// Stores `entries` as inbox puts: a load of one part.
    pub(crate) fn bulk_inbox(&self, entries: &[(UserId, InboxEntry)]) -> Result<()> {
        let mut load = self.inbox_load()?;
        load.add(entries)?;
        Box::new(load).finish()
    }

    /// A new bulk load: through a table file, or through the memtable
    /// while level 0 is full (see the module's documentation).
    pub(crate) fn inbox_load(&self) -> Result<InboxFileLoad<'_>> {
        Ok(InboxFileLoad {
            memtable: self.inbox_level0_files()? >= BULK_LEVEL0_LIMIT,
            db: self,
            open: None,
            files: Vec::new(),
            file_bytes: 0,
            entries: 0,
        })
    }

    /// Files in the inbox family's level 0.
    pub(crate) fn inbox_level0_files(&self) -> Result<u64> {
        Ok(self
            .db
            .property_int_value_cf(self.cf(INBOX), "rocksdb.num-files-at-level0")
            .map_err(storage)?
            .unwrap_or(0))
    }

    /// Ingests a staged table file into the inbox family, above every
    /// write made before (see the module's documentation).
    fn ingest_inbox(&self, file: &Path) -> Result<()> {
        let mut opts = IngestExternalFileOptions::default();
        opts.set_move_files(true);
        opts.set_snapshot_consistency(true);
        opts.set_allow_global_seqno(true);
        opts.set_allow_blocking_flush(true);
        opts.set_ingest_behind(false);
        self.db
            .ingest_external_file_cf_opts(self.cf(INBOX), &opts, vec![file])
            .map_err(storage)
    }
}

/// A table file being written: its writer, its path and its last key.
struct OpenFile<'a> {
    writer: SstFileWriter<'a>,
    path: PathBuf,
    last: [u8; 16],
}

/// A bulk load of inbox entries in parts: each part written on to one
/// table file while parts come in key order (the pages of a fan-out
/// walk), a new file when one does not; the files ingested at
/// [`InboxLoad::finish`]. One file for a whole walk means one file in
/// level 0 for compaction to merge, not one a page.
pub(crate) struct InboxFileLoad<'a> {
    db: &'a RocksBackend,
    /// Level 0 was full when the load began: each part goes through the
    /// memtable when it is added.
    memtable: bool,
    open: Option<OpenFile<'a>>,
    /// Files written whole, in the order they are to be ingested.
    files: Vec<PathBuf>,
    file_bytes: u64,
    entries: u64,
}

impl<'a> InboxFileLoad<'a> {
    /// Finishes the open file (the writer syncs it), if any.
    fn close(&mut self) -> Result<()> {
        if let Some(OpenFile {
            mut writer, path, ..
        }) = self.open.take()
        {
            // Listed first, so that a failed file is removed with the rest.
            self.files.push(path.clone());
            writer.finish().map_err(storage)?;
            self.file_bytes += std::fs::metadata(&path).map_err(io)?.len();
        }
        Ok(())
    }

    /// A new table file in the staging folder.
    fn create(db: &'a RocksBackend) -> Result<OpenFile<'a>> {
        std::fs::create_dir_all(&db.staging).map_err(io)?;
        let n = db.staged.fetch_add(1, Ordering::Relaxed);
        let path = db.staging.join(format!("inbox-{n}.sst"));
        let writer = SstFileWriter::create(&db.inbox_opts);
        if let Err(e) = writer.open(&path) {
            let _ = std::fs::remove_file(&path);
            return Err(storage(e));
        }
        Ok(OpenFile {
            writer,
            path,
            last: [0; 16],
        })
    }
}

impl InboxLoad for InboxFileLoad<'_> {
    fn add(&mut self, entries: &[(UserId, InboxEntry)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        if self.memtable {
            let batch: Vec<Mutation> = entries
                .iter()
                .map(|&(owner, entry)| Mutation::InboxPut { owner, entry })
                .collect();
            return self.db.apply(&batch, Durability::Buffered);
        }
        let entries = in_key_order(entries);
        let (Some(first), Some(last)) = (entries.first().map(key), entries.last().map(key)) else {
            return Ok(());
        };
        if self.open.as_ref().is_some_and(|f| first <= f.last) {
            self.close()?;
        }
        let file = match &mut self.open {
            Some(file) => file,
            None => self.open.insert(InboxFileLoad::create(self.db)?),
        };
        for e in entries.iter() {
            file.writer
                .put(key(e), codec::encode_inbox_value(e.1.author))
                .map_err(storage)?;
        }
        file.last = last;
        self.entries += entries.len() as u64;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.close()?;
        // Each file above the one before it: of two for one key, the
        // later added wins. A file not taken out yet is removed on drop.
        while !self.files.is_empty() {
            let file = self.files.remove(0);
            let ingested = self.db.ingest_inbox(&file);
            // Ingestion moved the file in (or failed): the staged name goes.
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound && ingested.is_ok() => {
                    return Err(io(e));
                }
                _ => {}
            }
            ingested?;
        }
        self.db
            .bulk_logical
            .fetch_add(self.entries * ENTRY_BYTES, Ordering::Relaxed);
        self.db
            .bulk_file_bytes
            .fetch_add(self.file_bytes, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for InboxFileLoad<'_> {
    /// A load dropped unfinished leaves no staged file behind.
    fn drop(&mut self) {
        let open = self.open.take().map(|f| f.path);
        for file in open.into_iter().chain(self.files.drain(..)) {
            let _ = std::fs::remove_file(file);
        }
    }
}

#[cfg(test)]
mod tests {
    use starling_core::{Config, Durability, InboxEntry, Mutation, PostId, UserId};
    use starling_store::{Backend, InboxLoad, InboxStore};

    use super::{BULK_LEVEL0_LIMIT, ENTRY_BYTES};
    use crate::RocksBackend;
    use crate::db::STAGING;

    fn open(dir: &std::path::Path) -> RocksBackend {
        RocksBackend::open(dir, &Config::default()).expect("database opens")
    }

    /// One post to owners 1..=n, as a fan-out page delivers it.
    fn page(post: u64, n: u64) -> Vec<(UserId, InboxEntry)> {
        (1..=n)
            .map(|o| {
                (
                    UserId(o),
                    InboxEntry {
                        post: PostId(post),
                        author: UserId(999),
                    },
                )
            })
            .collect()
    }

    /// Each owner's inbox, as post ids.
    fn inboxes(db: &RocksBackend, n: u64) -> Vec<Vec<u64>> {
        (1..=n)
            .map(|o| {
                let mut out = Vec::new();
                db.inbox(UserId(o), None, 64, &mut out).expect("inbox");
                out.iter().map(|e| e.post.0).collect()
            })
            .collect()
    }

    fn staged_files(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir.join(STAGING)).map_or(0, |d| d.count())
    }

    /// A crash after a load's table files are staged and before they are
    /// ingested loses nothing that was delivered and leaves nothing
    /// behind: the reopen removes the files, the entries are absent, and
    /// the resumed load (the job starting again at its cursor) stores each
    /// once.
    #[test]
    fn a_crash_between_staging_and_ingesting_loses_and_doubles_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let entries = page(50, 300);
        let db = open(dir.path());
        let mut load = db.inbox_load().expect("load");
        load.add(&entries[..100]).expect("a part");
        load.add(&entries[100..]).expect("the next part");
        assert_eq!(staged_files(dir.path()), 1, "parts in key order, one file");
        load.add(&entries[..10]).expect("a part out of order");
        load.close().expect("staged");
        assert_eq!(staged_files(dir.path()), 2, "a part out of order, a file");
        // The process dies here: nothing finishes or drops the load.
        std::mem::forget(load);
        drop(db);
        let db = open(dir.path());
        assert_eq!(staged_files(dir.path()), 0, "the reopen removed the files");
        assert!(
            inboxes(&db, 300).iter().all(Vec::is_empty),
            "nothing ingested"
        );
        db.apply_bulk_inbox(&entries).expect("resumed load");
        assert!(inboxes(&db, 300).iter().all(|i| i == &[50]));
        assert_eq!(staged_files(dir.path()), 0, "ingested files leave no copy");
    }

    /// A load dropped unfinished (its job stopped or failed) removes its
    /// files at once and stores nothing.
    #[test]
    fn a_load_dropped_unfinished_leaves_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = open(dir.path());
        let mut load = db.inbox_load().expect("load");
        load.add(&page(50, 300)).expect("a part");
        load.add(&page(40, 5)).expect("a part out of order");
        assert_eq!(staged_files(dir.path()), 2);
        drop(load);
        assert_eq!(staged_files(dir.path()), 0);
        assert!(inboxes(&db, 300).iter().all(Vec::is_empty));
    }

    /// A crash after the ingest and before the cursor is written: the job
    /// loads the same keys again, and each owner holds the post once;
    /// what the load stored survives a reopen.
    #[test]
    fn a_crash_between_ingesting_and_the_cursor_doubles_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let entries = page(50, 300);
        let db = open(dir.path());
        db.apply_bulk_inbox(&entries).expect("load");
        drop(db);
        let db = open(dir.path());
        assert!(inboxes(&db, 300).iter().all(|i| i == &[50]), "durable");
        db.apply_bulk_inbox(&entries).expect("the load again");
        db.apply_bulk_inbox(&page(60, 300)).expect("the next post");
        drop(db);
        let db = open(dir.path());
        assert!(inboxes(&db, 300).iter().all(|i| i == &[60, 50]));
    }

    /// Writes keep their order across ingests, flushes and compactions: a
    /// delete or trim made before a load does not hide it, and one made
    /// after it is never undone by the file, wherever it lands.
    #[test]
    fn ingested_files_never_land_below_a_newer_delete() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = open(dir.path());
        let delete = |owner: u64| Mutation::InboxDelete {
            owner: UserId(owner),
            post: PostId(50),
        };
        // Deletes in the memtable, then a load over them.
        db.apply(&[delete(1), delete(2)], Durability::Buffered)
            .expect("deletes before");
        db.apply_bulk_inbox(&page(50, 10)).expect("load");
        assert!(inboxes(&db, 10).iter().all(|i| i == &[50]), "load wins");
        // Then deletes and a trim after the load, in the memtable.
        db.apply(
            &[
                delete(3),
                Mutation::InboxTrim {
                    owner: UserId(4),
                    through: PostId(50),
                },
            ],
            Durability::Buffered,
        )
        .expect("deletes after");
        // A second load of another post, flushes and a full compaction.
        db.apply_bulk_inbox(&page(60, 10)).expect("load");
        db.flush().expect("flush");
        db.db
            .compact_range_cf(db.cf(crate::families::INBOX), None::<&[u8]>, None::<&[u8]>);
        let mut want = vec![vec![60, 50]; 10];
        want[2] = vec![60];
        want[3] = vec![60];
        assert_eq!(inboxes(&db, 10), want);
        drop(db);
        assert_eq!(inboxes(&open(dir.path()), 10), want, "after a reopen");
    }

    /// Loads over the same owners pile files up in level 0 only to the
    /// limit; past it they go through the memtable, and they ingest again
    /// once compaction has emptied level 0. Every entry is stored either
    /// way, and the write statistics count the ingested ones.
    #[test]
    fn loads_stop_ingesting_while_level_zero_is_full() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = open(dir.path());
        let inbox = db.cf(crate::families::INBOX);
        db.db
            .set_options_cf(inbox, &[("disable_auto_compactions", "true")])
            .expect("compaction off");
        // The first loads land in the empty levels below level 0.
        let loads = BULK_LEVEL0_LIMIT + 20;
        for post in 1..=loads {
            db.apply_bulk_inbox(&page(post, 50)).expect("load");
        }
        let level0 = db.inbox_level0_files().expect("level 0");
        assert!(
            level0 <= BULK_LEVEL0_LIMIT,
            "{level0} files in level 0 after {loads} loads"
        );
        let stats = db.write_stats();
        assert!(
            stats.ingest > 0 && stats.logical >= loads * 50 * ENTRY_BYTES,
            "{stats:?}"
        );
        let want: Vec<u64> = (1..=loads).rev().take(64).collect();
        assert!(inboxes(&db, 50).iter().all(|i| i == &want));

        db.db
            .set_options_cf(inbox, &[("disable_auto_compactions", "false")])
            .expect("compaction on");
        db.db.compact_range_cf(inbox, None::<&[u8]>, None::<&[u8]>);
        assert_eq!(db.inbox_level0_files().expect("level 0"), 0);
        db.apply_bulk_inbox(&page(loads + 1, 50)).expect("load");
        assert!(
            db.write_stats().ingest > stats.ingest,
            "the load after compaction was ingested"
        );
        let want: Vec<u64> = (1..=loads + 1).rev().take(64).collect();
        assert!(inboxes(&db, 50).iter().all(|i| i == &want));
    }
}

/// What bulk loads cost later, beside the same entries written through the
/// memtable: `cargo test --release -p starling-rocks --lib bulk_load_costs
/// -- --ignored --nocapture`.
#[cfg(test)]
mod costs {
    use std::time::{Duration, Instant};

    use starling_core::{Config, Durability, InboxEntry, Mutation, PostId, UserId};
    use starling_store::Backend;

    use crate::RocksBackend;
    use crate::families::INBOX;

    const OWNERS: u64 = 200_000;
    const POSTS: u64 = 20;

    fn int(db: &RocksBackend, property: &str) -> u64 {
        db.db
            .property_int_value_cf(db.cf(INBOX), property)
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    fn report(db: &RocksBackend, when: &str) {
        let w = db.write_stats();
        eprintln!(
            "  {when}: L0 files {}, sst MiB {:.1}, flush MiB {:.1}, compaction MiB {:.1}, wal MiB {:.1}",
            int(db, "rocksdb.num-files-at-level0"),
            int(db, "rocksdb.total-sst-files-size") as f64 / 1048576.0,
            w.flush as f64 / 1048576.0,
            w.compaction as f64 / 1048576.0,
            w.wal as f64 / 1048576.0,
        );
    }

    #[test]
    #[ignore = "a measurement: run with --ignored --nocapture"]
    fn bulk_load_costs_later() {
        for bulk in [false, true] {
            let dir = tempfile::tempdir().expect("temp dir");
            let db = RocksBackend::open(dir.path(), &Config::default()).expect("opens");
            let started = Instant::now();
            for post in 1..=POSTS {
                let entry = InboxEntry {
                    post: PostId(post << 22),
                    author: UserId(u64::MAX),
                };
                let entries: Vec<_> = (1..=OWNERS).map(|o| (UserId(o), entry)).collect();
                if bulk {
                    db.apply_bulk_inbox(&entries).expect("load");
                } else {
                    for chunk in entries.chunks(10_000) {
                        let batch: Vec<_> = chunk
                            .iter()
                            .map(|&(owner, entry)| Mutation::InboxPut { owner, entry })
                            .collect();
                        db.apply(&batch, Durability::Buffered).expect("write");
                    }
                }
            }
            let took = started.elapsed().as_secs_f64();
            let mode = if bulk { "ingested" } else { "memtable" };
            eprintln!(
                "{mode}: {POSTS} posts to {OWNERS} inboxes in {took:.2} s ({:.0} entries/s)",
                (POSTS * OWNERS) as f64 / took
            );
            report(&db, "at once");
            let waited = Instant::now();
            while int(&db, "rocksdb.compaction-pending") > 0
                || int(&db, "rocksdb.num-running-compactions") > 0
            {
                if waited.elapsed() > Duration::from_secs(60) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            report(&db, "compactions settled");
            db.flush().expect("flush");
            report(&db, "after a flush");
        }
    }
}
