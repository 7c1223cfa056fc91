//! [`RocksEngine`]: the storage trait over one RocksDB per node.

use std::fmt;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{Cache, ColumnFamilyDescriptor, DB, DBRawIterator, Options, ReadOptions, properties};

use crate::column_family::{ADDED_COLUMN_FAMILIES, ALL_COLUMN_FAMILIES, ColumnFamily};
use crate::engine::{RocksEngineOptions, StorageEngine, WriteBatch, WriteOp, WriteOptions};
use crate::error::{Result, StorageError};

/// The production [`StorageEngine`]: one RocksDB per node, shared by every shard replica on it.
///
/// Cheap to clone (an `Arc`); the database closes when the last clone is dropped.
///
/// Column family handles are looked up by name on each call (a map of seven entries) because the
/// `rocksdb` crate ties them to a borrow of the database; a batch write resolves them once.
/// Batches are converted into a `rocksdb::WriteBatch` at write time: one copy of the keys and
/// values, which `benches/benches/storage.rs` measures against writing a native batch.
#[derive(Clone)]
pub struct RocksEngine {
    inner: Arc<Inner>,
}

struct Inner {
    db: DB,
    path: PathBuf,
    /// Reused for every write: `set_sync(true)`.
    sync_write: rocksdb::WriteOptions,
    /// Reused for every write: `set_sync(false)`.
    no_sync_write: rocksdb::WriteOptions,
    /// Reused for every point read (the crate would otherwise create and free one per call).
    point_read: ReadOptions,
}

/// Every family handle of an open database, indexed by [`ColumnFamily::index`].
type Handles<'a> = [&'a rocksdb::ColumnFamily; ColumnFamily::ALL.len()];

impl RocksEngine {
    /// Opens (creating if missing) the database at `path` with every Pulse column family and
    /// the default [`RocksEngineOptions`].
    pub fn open(path: &Path) -> Result<RocksEngine> {
        RocksEngine::open_with(path, &RocksEngineOptions::default())
    }

    /// Opens (creating if missing) the database at `path` with every Pulse column family.
    ///
    /// An existing database whose column families differ from [`ALL_COLUMN_FAMILIES`] is
    /// refused rather than silently extended: it was written by another version or is not
    /// Pulse's. The one exception is an older Pulse database lacking only families of
    /// [`ADDED_COLUMN_FAMILIES`]: those are created, empty.
    pub fn open_with(path: &Path, options: &RocksEngineOptions) -> Result<RocksEngine> {
        let open_error = |source| StorageError::Open { path: path.display().to_string(), source };
        let mut expected: Vec<String> = ALL_COLUMN_FAMILIES.iter().map(|cf| (*cf).to_owned()).collect();
        expected.push(rocksdb::DEFAULT_COLUMN_FAMILY_NAME.to_owned());
        expected.sort();
        if path.join("CURRENT").exists() {
            let mut found = DB::list_cf(&Options::default(), path).map_err(open_error)?;
            found.sort();
            let only_added_missing = found.iter().all(|cf| expected.contains(cf))
                && expected
                    .iter()
                    .all(|cf| found.contains(cf) || ADDED_COLUMN_FAMILIES.contains(&cf.as_str()));
            if !only_added_missing {
                return Err(StorageError::ColumnFamilyMismatch {
                    path: path.display().to_string(),
                    found,
                    expected,
                });
            }
        }
        let cache = Cache::new_lru_cache(options.block_cache_bytes).map_err(open_error)?;
        let families = ColumnFamily::ALL
            .iter()
            .map(|cf| ColumnFamilyDescriptor::new(cf.name(), options.cf_options(*cf, &cache)))
            .collect::<Vec<_>>();
        let db = DB::open_cf_descriptors(&options.db_options(), path, families).map_err(open_error)?;
        let mut sync_write = rocksdb::WriteOptions::default();
        sync_write.set_sync(true);
        let mut no_sync_write = rocksdb::WriteOptions::default();
        no_sync_write.set_sync(false);
        let point_read = ReadOptions::default();
        let inner = Inner { db, path: path.to_owned(), sync_write, no_sync_write, point_read };
        let engine = RocksEngine { inner: Arc::new(inner) };
        engine.handles()?;
        Ok(engine)
    }

    /// Directory of the database.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn handle(&self, cf: ColumnFamily) -> Result<&rocksdb::ColumnFamily> {
        self.inner.db.cf_handle(cf.name()).ok_or(StorageError::MissingColumnFamily { cf })
    }

    fn handles(&self) -> Result<Handles<'_>> {
        Ok([
            self.handle(ColumnFamily::Raft)?,
            self.handle(ColumnFamily::State)?,
            self.handle(ColumnFamily::Index)?,
            self.handle(ColumnFamily::Timers)?,
            self.handle(ColumnFamily::Changelog)?,
            self.handle(ColumnFamily::Meta)?,
            self.handle(ColumnFamily::Dedup)?,
        ])
    }

    /// An iterator over `cf` limited to `[start, end)`, so that RocksDB itself stops at the
    /// bounds (and skips tombstones past them).
    fn bounded_iterator(
        &self,
        cf: ColumnFamily,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<DBRawIterator<'_>> {
        let mut read_options = ReadOptions::default();
        read_options.set_iterate_lower_bound(start);
        if let Some(end) = end {
            read_options.set_iterate_upper_bound(end);
        }
        Ok(self.inner.db.raw_iterator_cf_opt(self.handle(cf)?, read_options))
    }

    fn rocks_error(
        operation: &'static str,
        cf: Option<ColumnFamily>,
    ) -> impl FnOnce(rocksdb::Error) -> StorageError {
        move |source| StorageError::RocksDb { operation, cf, source }
    }
}

/// Visits entries from the iterator's position, stepping with `step`, then reports an iterator
/// error if the walk ended on one.
fn walk<'db, F>(
    mut iterator: DBRawIterator<'db>,
    cf: ColumnFamily,
    step: fn(&mut DBRawIterator<'db>),
    mut visit: F,
) -> Result<()>
where
    F: FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>>,
{
    while let Some((key, value)) = iterator.item() {
        if visit(key, value)?.is_break() {
            return Ok(());
        }
        step(&mut iterator);
    }
    iterator.status().map_err(RocksEngine::rocks_error("scan", Some(cf)))
}

impl StorageEngine for RocksEngine {
    fn get_with<R, F>(&self, cf: ColumnFamily, key: &[u8], read: F) -> Result<Option<R>>
    where
        F: FnOnce(&[u8]) -> Result<R>,
    {
        let value = self
            .inner
            .db
            .get_pinned_cf_opt(self.handle(cf)?, key, &self.inner.point_read)
            .map_err(Self::rocks_error("get", Some(cf)))?;
        value.map(|value| read(&value)).transpose()
    }

    fn write(&self, batch: &WriteBatch, options: WriteOptions) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let handles = self.handles()?;
        let mut native = rocksdb::WriteBatch::default();
        for op in batch.iter() {
            match op {
                WriteOp::Put { cf, key, value } => native.put_cf(handles[cf.index()], key, value),
                WriteOp::Delete { cf, key } => native.delete_cf(handles[cf.index()], key),
                WriteOp::DeleteRange { cf, start, end } => {
                    native.delete_range_cf(handles[cf.index()], start, end)
                }
            }
        }
        let write_options = if options.sync { &self.inner.sync_write } else { &self.inner.no_sync_write };
        self.inner.db.write_opt(native, write_options).map_err(Self::rocks_error("write", None))
    }

    fn scan<F>(&self, cf: ColumnFamily, start: &[u8], end: Option<&[u8]>, visit: F) -> Result<()>
    where
        F: FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>>,
    {
        if end.is_some_and(|end| end <= start) {
            return Ok(());
        }
        let mut iterator = self.bounded_iterator(cf, start, end)?;
        iterator.seek(start);
        walk(iterator, cf, DBRawIterator::next, visit)
    }

    fn scan_reverse<F>(&self, cf: ColumnFamily, start: &[u8], end: Option<&[u8]>, visit: F) -> Result<()>
    where
        F: FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>>,
    {
        if end.is_some_and(|end| end <= start) {
            return Ok(());
        }
        let mut iterator = self.bounded_iterator(cf, start, end)?;
        // With an upper bound set, RocksDB positions on the last key strictly below it.
        iterator.seek_to_last();
        walk(iterator, cf, DBRawIterator::prev, visit)
    }

    fn flush(&self) -> Result<()> {
        for cf in ColumnFamily::ALL {
            self.inner.db.flush_cf(self.handle(cf)?).map_err(Self::rocks_error("flush", Some(cf)))?;
        }
        Ok(())
    }

    fn sync_wal(&self) -> Result<()> {
        self.inner.db.flush_wal(true).map_err(Self::rocks_error("sync wal", None))
    }

    fn approximate_size(&self, cf: ColumnFamily) -> Result<u64> {
        let handle = self.handle(cf)?;
        let mut total = 0;
        for property in [properties::ESTIMATE_LIVE_DATA_SIZE, properties::CUR_SIZE_ALL_MEM_TABLES] {
            let value = self
                .inner
                .db
                .property_int_value_cf(handle, property)
                .map_err(Self::rocks_error("size property", Some(cf)))?;
            total += value.unwrap_or(0);
        }
        Ok(total)
    }
}

impl fmt::Debug for RocksEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RocksEngine").field("path", &self.inner.path).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_foreign_column_families() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut options = Options::default();
            options.create_if_missing(true);
            options.create_missing_column_families(true);
            DB::open_cf(&options, dir.path(), ["something_else"]).unwrap();
        }
        let err = RocksEngine::open(dir.path()).unwrap_err();
        assert!(matches!(err, StorageError::ColumnFamilyMismatch { .. }), "{err}");
    }

    #[test]
    fn a_database_from_before_a_family_was_added_gains_it_and_keeps_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let older: Vec<&str> =
            ALL_COLUMN_FAMILIES.into_iter().filter(|cf| !ADDED_COLUMN_FAMILIES.contains(cf)).collect();
        {
            let mut options = Options::default();
            options.create_if_missing(true);
            options.create_missing_column_families(true);
            let db = DB::open_cf(&options, dir.path(), &older).unwrap();
            db.put_cf(db.cf_handle("state").unwrap(), b"alice", b"kept").unwrap();
        }
        let engine = RocksEngine::open(dir.path()).unwrap();
        assert_eq!(engine.get(ColumnFamily::State, b"alice").unwrap().as_deref(), Some(&b"kept"[..]));
        assert_eq!(engine.get(ColumnFamily::Dedup, b"anything").unwrap(), None);
        let mut batch = WriteBatch::new();
        batch.put(ColumnFamily::Dedup, b"id", b"1");
        engine.write(&batch, WriteOptions::SYNC).unwrap();
        drop(engine);
        let engine = RocksEngine::open(dir.path()).unwrap();
        assert_eq!(engine.get(ColumnFamily::Dedup, b"id").unwrap().as_deref(), Some(&b"1"[..]));
    }

    #[test]
    fn open_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let engine = RocksEngine::open(dir.path()).unwrap();
        assert_eq!(engine.path(), dir.path());
        // The lock file is held by the first handle.
        let err = RocksEngine::open(dir.path()).unwrap_err();
        assert!(matches!(err, StorageError::Open { .. }), "{err}");
        assert!(err.to_string().contains(&dir.path().display().to_string()), "{err}");
        assert!(format!("{engine:?}").starts_with("RocksEngine"));
    }
}
