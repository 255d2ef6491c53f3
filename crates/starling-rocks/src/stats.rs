//! Statistics of the database: bytes written (for write amplification)
//! and the size of each column family.

use rocksdb::ColumnFamily;
use starling_core::Result;

use crate::db::{RocksBackend, storage};
use crate::families::FAMILIES;

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

impl RocksBackend {
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
}
