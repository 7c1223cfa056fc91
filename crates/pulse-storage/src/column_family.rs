//! Column families. Their names are part of the on-disk format: renaming one loses data, so a
//! node refuses to open a database whose families differ from these.

use std::fmt;

/// Raft log entries, hard state, conf state and truncated state, by shard.
pub const CF_RAFT: &str = "raft";
/// Customer state, key `h | customer_id`.
pub const CF_STATE: &str = "state";
/// Segment membership, key `dimension | segment | h | customer_id`.
pub const CF_INDEX: &str = "index";
/// Time-driven re-evaluation, key `shard | due_ms | h | customer_id`.
pub const CF_TIMERS: &str = "timers";
/// Transitions, key `shard | raft_index | seq`: the watch cursor.
pub const CF_CHANGELOG: &str = "changelog";
/// Node identity, shard descriptors, apply state.
pub const CF_META: &str = "meta";
/// Event ids seen within the deduplication window, key `h | customer_id | 0xFF | id hash`.
pub const CF_DEDUP: &str = "dedup";

/// Every column family a node's database has, besides RocksDB's `default`.
pub const ALL_COLUMN_FAMILIES: [&str; 7] =
    [CF_RAFT, CF_STATE, CF_INDEX, CF_TIMERS, CF_CHANGELOG, CF_META, CF_DEDUP];

/// Families added after the first on-disk format, oldest first: a database written before one
/// of them existed lacks it, and opening it creates the family (empty) instead of refusing.
pub const ADDED_COLUMN_FAMILIES: [&str; 1] = [CF_DEDUP];

/// A column family of a node's database, as a type so that a misspelt name cannot compile.
///
/// Every operation of [`StorageEngine`](crate::StorageEngine) names one. The discriminants are
/// the positions in [`ColumnFamily::ALL`] (see [`ColumnFamily::index`]); they are not written to
/// disk, only [`ColumnFamily::name`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ColumnFamily {
    /// [`CF_RAFT`]: the raft logs of every shard replica on the node.
    Raft = 0,
    /// [`CF_STATE`]: customer state.
    State = 1,
    /// [`CF_INDEX`]: segment membership.
    Index = 2,
    /// [`CF_TIMERS`]: time-driven re-evaluation.
    Timers = 3,
    /// [`CF_CHANGELOG`]: recorded transitions.
    Changelog = 4,
    /// [`CF_META`]: node identity, shard descriptors, apply state.
    Meta = 5,
    /// [`CF_DEDUP`]: event ids within the deduplication window.
    Dedup = 6,
}

impl ColumnFamily {
    /// Every column family, in the order of [`ColumnFamily::index`].
    pub const ALL: [ColumnFamily; 7] = [
        ColumnFamily::Raft,
        ColumnFamily::State,
        ColumnFamily::Index,
        ColumnFamily::Timers,
        ColumnFamily::Changelog,
        ColumnFamily::Meta,
        ColumnFamily::Dedup,
    ];

    /// The on-disk name (one of the `CF_*` constants).
    pub const fn name(self) -> &'static str {
        match self {
            ColumnFamily::Raft => CF_RAFT,
            ColumnFamily::State => CF_STATE,
            ColumnFamily::Index => CF_INDEX,
            ColumnFamily::Timers => CF_TIMERS,
            ColumnFamily::Changelog => CF_CHANGELOG,
            ColumnFamily::Meta => CF_META,
            ColumnFamily::Dedup => CF_DEDUP,
        }
    }

    /// Position in [`ColumnFamily::ALL`], in `0..7`: lets engines keep per-family data in arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The family with this on-disk name, if it is one of ours.
    pub fn from_name(name: &str) -> Option<ColumnFamily> {
        ColumnFamily::ALL.into_iter().find(|cf| cf.name() == name)
    }
}

impl fmt::Display for ColumnFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_indexes_and_constants_agree() {
        for (position, cf) in ColumnFamily::ALL.into_iter().enumerate() {
            assert_eq!(cf.index(), position);
            assert_eq!(cf.name(), ALL_COLUMN_FAMILIES[position]);
            assert_eq!(ColumnFamily::from_name(cf.name()), Some(cf));
            assert_eq!(cf.to_string(), cf.name());
        }
        assert_eq!(ColumnFamily::from_name("default"), None);
    }
}
