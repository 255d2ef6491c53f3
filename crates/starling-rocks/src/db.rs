//! The database handle: opening, family handles, point reads, checkpoints
//! and flushes.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, DB, Options};
use starling_core::{Config, Error, Result, StorageError};

use crate::families::{
    FAMILIES, INBOX, InboxCompaction, POSTS, USERS, db_options, family_options,
    set_inbox_compaction, shared_cache,
};

/// Starling's storage over one RocksDB database.
pub struct RocksBackend {
    pub(crate) db: DB,
    /// Kept for its statistics object, which the database writes into.
    pub(crate) opts: Options,
    /// The inbox family's options, which bulk loads write table files with
    /// (lz4 throughout).
    pub(crate) inbox_opts: Options,
    /// Where bulk loads stage their table files.
    pub(crate) staging: PathBuf,
    /// Table files staged since open, which names the next one.
    pub(crate) staged: AtomicU64,
    /// Bulk loads since open: key and value bytes loaded, and bytes of
    /// the table files that carried them (see `WriteStats`).
    pub(crate) bulk_logical: AtomicU64,
    pub(crate) bulk_file_bytes: AtomicU64,
}

pub(crate) fn storage(e: rocksdb::Error) -> Error {
    Error::Storage(StorageError::from_source("RocksDB", e))
}

/// The folder, inside the database folder, where table files are staged.
pub(crate) const STAGING: &str = "bulk-staging";

/// A failure of the staging folder, as a storage error.
pub(crate) fn staging_error(e: std::io::Error) -> Error {
    Error::Storage(StorageError::from_source("staging folder", e))
}

/// Removes the staging folder of the database at `db`, if there is one
/// (what it holds was staged and never ingested), and returns its path;
/// the first bulk load creates it.
pub(crate) fn reset_staging(db: &Path) -> Result<PathBuf> {
    let dir = db.join(STAGING);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(dir),
        Err(e) => Err(staging_error(e)),
    }
}

impl RocksBackend {
    /// Opens (creating if missing) the database at `path`, with every
    /// column family.
    pub fn open(path: &Path, _config: &Config) -> Result<RocksBackend> {
        RocksBackend::open_with(path, db_options(), InboxCompaction::default())
    }

    /// Opens (creating if missing) the database at `path` as
    /// [`RocksBackend::open`] does, its inbox family compacting with
    /// `inbox`.
    pub fn open_with_inbox_compaction(
        path: &Path,
        _config: &Config,
        inbox: InboxCompaction,
    ) -> Result<RocksBackend> {
        RocksBackend::open_with(path, db_options(), inbox)
    }

    /// Opens the Starling store at `path` as it is, creating nothing: the
    /// open mode of tools that inspect a store (a checker must never create
    /// what it checks). A folder that is missing, holds no database, or
    /// holds a RocksDB database without Starling's column families is
    /// refused with [`Error::NoStore`], and is left as it was.
    ///
    /// ```
    /// use starling_core::{Config, Error};
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
        RocksBackend::open_with(path, db_opts, InboxCompaction::default())
    }

    fn open_with(path: &Path, db_opts: Options, inbox: InboxCompaction) -> Result<RocksBackend> {
        let cache = shared_cache();
        let families = FAMILIES.iter().map(|name| {
            let mut opts = family_options(name, &cache);
            if *name == INBOX {
                set_inbox_compaction(&mut opts, inbox);
            }
            ColumnFamilyDescriptor::new(*name, opts)
        });
        let mut inbox_opts = family_options(INBOX, &cache);
        // Staged files are written uncompressed: compressing took about 6%
        // of the fan-out worker's time, and the compaction that merges the
        // file down out of level 0 compresses its entries.
        inbox_opts.set_compression_type(rocksdb::DBCompressionType::None);
        inbox_opts.set_bottommost_compression_type(rocksdb::DBCompressionType::None);
        // And without a filter, which is a sixth of the worker's time: a
        // walk's file holds an entry for each of the author's followers,
        // who would pass its filter anyway, and any other reader pays a
        // lookup in its index until compaction merges it into a file with
        // a filter.
        inbox_opts.set_block_based_table_factory(&rocksdb::BlockBasedOptions::default());
        let db = DB::open_cf_descriptors(&db_opts, path, families).map_err(storage)?;
        // Opened first: the database's lock keeps another process's
        // staging folder from being emptied under it.
        let staging = reset_staging(path)?;
        Ok(RocksBackend {
            db,
            opts: db_opts,
            inbox_opts,
            staging,
            staged: AtomicU64::new(0),
            bulk_logical: AtomicU64::new(0),
            bulk_file_bytes: AtomicU64::new(0),
        })
    }

    /// The folder the database lives in.
    pub fn path(&self) -> &Path {
        self.db.path()
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

    /// Waits until no flush or compaction is pending or running: the
    /// background work a load left behind, done before a measurement.
    pub fn wait_for_compactions(&self) -> Result<()> {
        self.db
            .wait_for_compact(&rocksdb::WaitForCompactOptions::default())
            .map_err(storage)
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
}

/// A backend that lives at a path converts from a path and a configuration,
/// which is how `Engine::open` opens it.
impl<'a> TryFrom<(&'a Path, &'a Config)> for RocksBackend {
    type Error = Error;

    fn try_from((path, config): (&'a Path, &'a Config)) -> Result<RocksBackend> {
        RocksBackend::open(path, config)
    }
}
