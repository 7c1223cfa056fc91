//! [`RocksEngineOptions`]: the tuning knobs of a node's RocksDB, and what RocksDB is told.

use rocksdb::{BlockBasedIndexType, BlockBasedOptions, Cache, DBCompressionType, Options};

use crate::column_family::ColumnFamily;

const MIB: usize = 1024 * 1024;
/// Share of a memtable's size given to its bloom filter (TiKV uses the same for its hot
/// families).
const MEMTABLE_BLOOM_RATIO: f64 = 0.1;

/// Tuning of a node's RocksDB. The defaults suit a small node (2–8 cores, a few GiB of RAM);
/// every field is a budget, not a requirement, and RocksDB's defaults apply to everything not
/// listed here.
#[derive(Clone, Debug, PartialEq)]
pub struct RocksEngineOptions {
    /// Block cache shared by every column family, in bytes (uncompressed data, index and filter
    /// blocks). Default 256 MiB. Index and filter blocks live in it too, so this bounds the read
    /// side's memory however many shards the node hosts.
    pub block_cache_bytes: usize,
    /// Background flush + compaction threads. Default 4: enough that a flush never waits behind
    /// a long compaction, few enough not to starve request threads on small machines.
    pub max_background_jobs: i32,
    /// Size of one memtable of one family before it is flushed, in bytes. Default 64 MiB.
    pub write_buffer_bytes: usize,
    /// All memtables of all families together, in bytes; above it the largest is flushed.
    /// Default 256 MiB (seven families could otherwise hold 7 × 2 × 64 MiB).
    pub total_write_buffer_bytes: usize,
    /// Write-ahead log size that forces the families holding the oldest log file to flush, in
    /// bytes. Default 512 MiB. Without it a rarely written family (`meta`) would pin every log
    /// file since its last write, and a restart would replay all of them.
    pub max_total_wal_bytes: u64,
    /// Bloom filter bits per key on the families read by point lookups (`raft`, `state`,
    /// `meta`, `dedup`). Default 10 (about 1 % false positives). The scanned families (`index`,
    /// `timers`, `changelog`) get no filter: it would cost memory and never be consulted by a
    /// range scan.
    pub bloom_bits_per_key: f64,
}

impl Default for RocksEngineOptions {
    fn default() -> RocksEngineOptions {
        RocksEngineOptions {
            block_cache_bytes: 256 * MIB,
            max_background_jobs: 4,
            write_buffer_bytes: 64 * MIB,
            total_write_buffer_bytes: 256 * MIB,
            max_total_wal_bytes: 512 * MIB as u64,
            bloom_bits_per_key: 10.0,
        }
    }
}

impl RocksEngineOptions {
    /// Database-wide options. The write-ahead log stays on (RocksDB's default): it is what
    /// makes a synced batch durable.
    pub(crate) fn db_options(&self) -> Options {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_max_background_jobs(self.max_background_jobs.max(1));
        options.set_db_write_buffer_size(self.total_write_buffer_bytes);
        options.set_max_total_wal_size(self.max_total_wal_bytes);
        // Write SST files out in 1 MiB steps instead of one large fsync at the end, which would
        // stall the synced raft writes sharing the disk.
        options.set_bytes_per_sync(MIB as u64);
        // RocksDB's own info LOG files: keep a bounded history.
        options.set_keep_log_file_num(10);
        options
    }

    /// Options of one family; `cache` is the block cache every family shares.
    pub(crate) fn cf_options(&self, cf: ColumnFamily, cache: &Cache) -> Options {
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(cache);
        // Index and filter blocks are charged to the cache (bounded memory with many SST files);
        // level-0 ones stay pinned because every read consults them.
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        // Format 5: the faster, more accurate bloom filter implementation.
        table.set_format_version(5);
        let point_lookups =
            matches!(cf, ColumnFamily::Raft | ColumnFamily::State | ColumnFamily::Meta | ColumnFamily::Dedup);
        if point_lookups {
            // Whole-key filters, no prefix extractor: a prefix extractor turns iterators into
            // prefix-seek mode by default, which silently truncates the range scans we rely on.
            table.set_bloom_filter(self.bloom_bits_per_key, false);
        }
        // The families keyed by customer hash: millions of keys, most point reads missing.
        let customer_keyed = matches!(cf, ColumnFamily::State | ColumnFamily::Dedup);
        if customer_keyed {
            // Partitioned filters and index (RocksDB's advice for large filters): a family with
            // millions of keys has multi-MiB filter blocks, and one such block in a cache shard
            // that pinned level-0 blocks already fill is dropped as soon as it is released, then
            // read from disk and checksummed again by the next lookup (we saw the apply path
            // spend all its time there). Partitions are metadata-block sized; only the top
            // level stays pinned.
            table.set_index_type(BlockBasedIndexType::TwoLevelIndexSearch);
            table.set_partition_filters(true);
            table.set_metadata_block_size(4096);
            table.set_pin_top_level_index_and_filter(true);
        }

        let mut options = Options::default();
        options.set_block_based_table_factory(&table);
        if customer_keyed {
            // A whole-key bloom filter in the memtable: most point reads there miss (a new
            // event id, a new customer), and without it each miss walks the memtable's skip list
            // (the top of the ingest profile once event ids got their own keys).
            options.set_memtable_prefix_bloom_ratio(MEMTABLE_BLOOM_RATIO);
            options.set_memtable_whole_key_filtering(true);
        }
        options.set_write_buffer_size(self.write_buffer_bytes);
        // Level sizes derived from the last level: stable space amplification as data grows.
        options.set_level_compaction_dynamic_level_bytes(true);
        if cf == ColumnFamily::Raft {
            // Raft log entries live until the next log compaction (seconds to minutes):
            // compressing them at every flush costs CPU for files about to be deleted.
            options.set_compression_type(DBCompressionType::None);
        } else {
            // TiKV's default: no compression where flushes and the first compactions write
            // (levels 0 and 1, rewritten soon and hot in the profile), LZ4 in the middle, ZSTD
            // where most of the data ends up.
            use DBCompressionType::{Lz4, None as Plain, Zstd};
            options.set_compression_per_level(&[Plain, Plain, Lz4, Lz4, Lz4, Zstd, Zstd]);
            options.set_bottommost_compression_type(Zstd);
        }
        options
    }
}
