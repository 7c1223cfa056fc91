//! Opening a node's RocksDB.

use std::path::Path;

use rocksdb::{ColumnFamilyDescriptor, DB, Options};

use crate::column_family::ALL_COLUMN_FAMILIES;
use crate::error::{Result, StorageError};

/// Opens (creating if missing) the database at `path` with every Pulse column family.
///
/// An existing database whose column families differ from [`ALL_COLUMN_FAMILIES`] is refused
/// rather than silently extended: it was written by another version or is not Pulse's.
pub fn open_rocksdb(path: &Path) -> Result<DB> {
    let mut expected: Vec<String> = ALL_COLUMN_FAMILIES.iter().map(|cf| (*cf).to_owned()).collect();
    expected.push(rocksdb::DEFAULT_COLUMN_FAMILY_NAME.to_owned());
    expected.sort();
    if path.join("CURRENT").exists() {
        let mut found = DB::list_cf(&Options::default(), path)?;
        found.sort();
        if found != expected {
            return Err(StorageError::ColumnFamilyMismatch {
                path: path.display().to_string(),
                found,
                expected,
            });
        }
    }
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    let families = ALL_COLUMN_FAMILIES
        .iter()
        .map(|name| ColumnFamilyDescriptor::new(*name, Options::default()))
        .collect::<Vec<_>>();
    Ok(DB::open_cf_descriptors(&options, path, families)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column_family::CF_STATE;

    #[test]
    fn opens_with_every_family_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = open_rocksdb(dir.path()).unwrap();
            let cf = db.cf_handle(CF_STATE).unwrap();
            db.put_cf(cf, b"k", b"v").unwrap();
        }
        let db = open_rocksdb(dir.path()).unwrap();
        let cf = db.cf_handle(CF_STATE).unwrap();
        assert_eq!(db.get_cf(cf, b"k").unwrap().as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn refuses_foreign_column_families() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut options = Options::default();
            options.create_if_missing(true);
            options.create_missing_column_families(true);
            DB::open_cf(&options, dir.path(), ["something_else"]).unwrap();
        }
        let err = open_rocksdb(dir.path()).unwrap_err();
        assert!(matches!(err, StorageError::ColumnFamilyMismatch { .. }), "{err}");
    }
}
