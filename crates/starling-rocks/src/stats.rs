//! Statistics of the database: bytes written (for write amplification)
//! and the size of each column family.

use std::sync::atomic::Ordering;

use rocksdb::ColumnFamily;
use starling_core::Result;

use crate::db::{RocksBackend, storage};
use crate::families::FAMILIES;

/// Bytes written since open, from RocksDB's statistics and the bulk loads'
/// own counts. Write amplification is `(wal + flush + compaction + ingest)
/// / logical` (with the WAL) or `(flush + compaction + ingest) / logical`
/// (without): a bulk-loaded entry is written once into its table file
/// instead of into the WAL and a flush.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Bytes handed to the database by writes and bulk loads (keys and
    /// values).
    pub logical: u64,
    /// Bytes appended to the write-ahead log.
    pub wal: u64,
    /// Bytes written by memtable flushes.
    pub flush: u64,
    /// Bytes written by compactions.
    pub compaction: u64,
    /// Bytes of the table files bulk loads wrote and ingested.
    pub ingest: u64,
}

impl WriteStats {
    /// Physical bytes per logical byte, counting the WAL.
    pub fn amplification_with_wal(&self) -> f64 {
        ratio(
            self.wal + self.flush + self.compaction + self.ingest,
            self.logical,
        )
    }

    /// Physical bytes per logical byte, not counting the WAL.
    pub fn amplification_without_wal(&self) -> f64 {
        ratio(self.flush + self.compaction + self.ingest, self.logical)
    }

    /// What was written between `before` and these figures.
    pub fn since(&self, before: &WriteStats) -> WriteStats {
        WriteStats {
            logical: self.logical.saturating_sub(before.logical),
            wal: self.wal.saturating_sub(before.wal),
            flush: self.flush.saturating_sub(before.flush),
            compaction: self.compaction.saturating_sub(before.compaction),
            ingest: self.ingest.saturating_sub(before.ingest),
        }
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
            logical: t(Ticker::BytesWritten) + self.bulk_logical.load(Ordering::Relaxed),
            wal: t(Ticker::WalFileBytes),
            flush: t(Ticker::FlushWriteBytes),
            compaction: t(Ticker::CompactWriteBytes),
            ingest: self.bulk_file_bytes.load(Ordering::Relaxed),
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

/// Write stalls and compaction debt since open, from RocksDB's statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StallStats {
    /// Microseconds writers were delayed or stopped.
    pub micros: u64,
    /// Writes delayed (slowed down) by the write controller, every family.
    pub delays: u64,
    /// Writes stopped until compaction or flush caught up, every family.
    pub stops: u64,
    /// RocksDB's estimate of the bytes compaction still has to rewrite.
    pub pending_compaction_bytes: u64,
}

impl RocksBackend {
    /// Write stalls since open and the compaction debt now.
    pub fn stall_stats(&self) -> Result<StallStats> {
        let micros = self
            .opts
            .get_ticker_count(rocksdb::statistics::Ticker::StallMicros);
        let mut stats = StallStats {
            micros,
            ..StallStats::default()
        };
        // Causes of the whole database (the write buffer manager).
        let db = self
            .db
            .property_value("rocksdb.db-write-stall-stats")
            .map_err(storage)?
            .unwrap_or_default();
        for (key, n) in stall_entries(&db) {
            if key.ends_with("-stops") {
                stats.stops += n;
            } else if key.ends_with("-delays") {
                stats.delays += n;
            }
        }
        for &name in &FAMILIES {
            let cf = self.cf(name);
            let text = self
                .db
                .property_value_cf(cf, "rocksdb.cf-write-stall-stats")
                .map_err(storage)?
                .unwrap_or_default();
            for (key, n) in stall_entries(&text) {
                match key {
                    "total-stops" => stats.stops += n,
                    "total-delays" => stats.delays += n,
                    _ => {}
                }
            }
            stats.pending_compaction_bytes += self
                .db
                .property_int_value_cf(cf, "rocksdb.estimate-pending-compaction-bytes")
                .map_err(storage)?
                .unwrap_or(0);
        }
        Ok(stats)
    }
}

/// The counts of a write-stall property's text,
/// `Write Stall (count): name: n, name: n, ...`.
fn stall_entries(text: &str) -> impl Iterator<Item = (&str, u64)> {
    let body = text.split_once("):").map_or(text, |(_, rest)| rest);
    body.split([',', '\n']).filter_map(|kv| {
        let (k, v) = kv.split_once(':')?;
        Some((k.trim(), v.trim().parse().ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::stall_entries;

    #[test]
    fn stall_counts_are_read_from_the_property_text() {
        let text = "Write Stall (count): l0-file-count-limit-stops: 12, \
                    total-delays: 3, total-stops: 12\n";
        let entries: Vec<_> = stall_entries(text).collect();
        assert_eq!(
            entries,
            [
                ("l0-file-count-limit-stops", 12),
                ("total-delays", 3),
                ("total-stops", 12)
            ]
        );
        assert_eq!(stall_entries("").count(), 0);
    }

    #[test]
    fn stall_stats_of_a_new_database_are_zero() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db =
            crate::RocksBackend::open(dir.path(), &starling_core::Config::default()).expect("open");
        let stats = db.stall_stats().expect("stall stats");
        assert_eq!((stats.delays, stats.stops, stats.micros), (0, 0, 0));
    }
}
