//! Key codecs of the shard's column families. Integers are big-endian so byte order is numeric
//! order; customer keys start with the customer's hash so a shard (a hash range) is a key range
//! in `state`, and a split moves no key.

use pulse_scoring::Dimension;
use pulse_storage::{customer_hash, state_key};

/// Suffix of a customer's legacy deduplication window key in `state`, and separator of its
/// `dedup` keys. UTF-8 never contains 0xFF, so neither can collide with another customer's key.
pub(crate) const EVENT_IDS_SUFFIX: u8 = 0xFF;
/// Separator between segment and customer id in `index` keys (segment names never contain it).
const INDEX_SEPARATOR: u8 = 0x00;
/// `meta` key tag of the apply index.
const META_APPLY_INDEX: u8 = 0x01;
/// The shard id whose `meta` namespace holds node-level keys (shard ids start at 1).
const NODE_SHARD_ID: u64 = 0;
/// `meta` key tag (under [`NODE_SHARD_ID`]) of the node's shard layout.
const META_NODE_LAYOUT: u8 = 0x10;
/// `meta` key tag of the shard's scoring config and segment definitions.
const META_CONFIG: u8 = 0x02;
/// `meta` key tag of the shard's config re-evaluation cursor (the next `state` key to
/// re-evaluate under a newly installed config).
const META_REEVALUATION_CURSOR: u8 = 0x03;
/// `meta` key tag of the cursor of the newest changelog entry pruned by retention.
const META_PRUNED_CHANGELOG: u8 = 0x04;
/// `meta` key tag of the shard's last consistency hash `(raft_index, hash)`.
const META_CONSISTENCY_HASH: u8 = 0x05;

/// The hash range a shard owns, both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardRange {
    /// Smallest hash in the shard.
    pub start_hash: u64,
    /// Largest hash in the shard.
    pub end_hash: u64,
}

impl ShardRange {
    /// The whole hash space (a single-shard deployment).
    pub const FULL: ShardRange = ShardRange { start_hash: 0, end_hash: u64::MAX };

    /// Whether `hash` falls in the range.
    pub fn contains(&self, hash: u64) -> bool {
        (self.start_hash..=self.end_hash).contains(&hash)
    }

    /// `count` equal ranges covering the hash space (the pre-split of a new cluster); the last
    /// range absorbs the remainder of the division.
    pub fn split_evenly(count: u64) -> Vec<ShardRange> {
        let count = count.max(1);
        let width = u64::MAX / count;
        (0..count)
            .map(|i| ShardRange {
                start_hash: i * width,
                end_hash: if i + 1 == count { u64::MAX } else { (i + 1) * width - 1 },
            })
            .collect()
    }

    /// First `state` key of the range (inclusive).
    pub fn state_start(&self) -> Vec<u8> {
        self.start_hash.to_be_bytes().to_vec()
    }

    /// End of the range in `state` (exclusive); `None` when the range ends the hash space.
    pub fn state_end(&self) -> Option<Vec<u8>> {
        self.end_hash.checked_add(1).map(|end| end.to_be_bytes().to_vec())
    }
}

/// Key of a customer's legacy deduplication window in `state` (one value holding every id of
/// the window; replaced by [`dedup_key`]s the first time the customer is touched).
pub fn event_ids_key(customer_id: &str) -> Vec<u8> {
    let mut key = state_key(customer_id);
    key.push(EVENT_IDS_SUFFIX);
    key
}

/// Prefix of every `dedup` key of a customer: `h | customer_id | 0xFF`.
pub fn dedup_prefix(customer_id: &str) -> Vec<u8> {
    event_ids_key(customer_id)
}

/// `dedup` key of one event id (by its 64-bit hash) of a customer:
/// `h | customer_id | 0xFF | id_hash`. Starting with the customer's hash, a shard's ids are a
/// key range, like its states.
pub fn dedup_key(customer_id: &str, id_hash: u64) -> Vec<u8> {
    let mut key = dedup_prefix(customer_id);
    key.extend_from_slice(&id_hash.to_be_bytes());
    key
}

/// Prefix of every `index` key of one segment: `dimension | segment | 0x00`.
pub fn index_segment_prefix(dimension: Dimension, segment: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + segment.len());
    key.push(dimension_tag(dimension));
    key.extend_from_slice(segment.as_bytes());
    key.push(INDEX_SEPARATOR);
    key
}

/// `index` key of a customer in a segment. Ordered by customer id within the segment, so
/// member listings stream in customer-id order and resume from a customer id.
pub fn index_key(dimension: Dimension, segment: &str, customer_id: &str) -> Vec<u8> {
    let mut key = index_segment_prefix(dimension, segment);
    key.extend_from_slice(customer_id.as_bytes());
    key
}

/// Stable one-byte tag of a dimension in `index` keys.
pub fn dimension_tag(dimension: Dimension) -> u8 {
    match dimension {
        Dimension::ActivitySegment => 1,
        Dimension::Lifecycle => 2,
        Dimension::Level => 3,
        Dimension::RfmSegment => 4,
        Dimension::Custom => 5,
    }
}

/// `timers` key: `shard | due_ms | h | customer_id`.
pub fn timer_key(shard_id: u64, due_ms: i64, customer_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(24 + customer_id.len());
    key.extend_from_slice(&shard_id.to_be_bytes());
    key.extend_from_slice(&(due_ms.max(0) as u64).to_be_bytes());
    key.extend_from_slice(&customer_hash(customer_id).to_be_bytes());
    key.extend_from_slice(customer_id.as_bytes());
    key
}

/// The `(due_ms, customer_id)` of a timer key of `shard_id`.
pub fn parse_timer_key(key: &[u8]) -> Option<(i64, &str)> {
    if key.len() <= 24 {
        return None;
    }
    let due = u64::from_be_bytes(key[8..16].try_into().ok()?);
    let customer = std::str::from_utf8(&key[24..]).ok()?;
    Some((i64::try_from(due).ok()?, customer))
}

/// Prefix of a shard's timers.
pub fn timers_prefix(shard_id: u64) -> Vec<u8> {
    shard_id.to_be_bytes().to_vec()
}

/// `changelog` key: `shard | raft_index | seq`.
pub fn changelog_key(shard_id: u64, raft_index: u64, seq: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(20);
    key.extend_from_slice(&shard_id.to_be_bytes());
    key.extend_from_slice(&raft_index.to_be_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The `(raft_index, seq)` of a changelog key.
pub fn parse_changelog_key(key: &[u8]) -> Option<(u64, u32)> {
    if key.len() != 20 {
        return None;
    }
    Some((u64::from_be_bytes(key[8..16].try_into().ok()?), u32::from_be_bytes(key[16..20].try_into().ok()?)))
}

/// Prefix of a shard's changelog.
pub fn changelog_prefix(shard_id: u64) -> Vec<u8> {
    shard_id.to_be_bytes().to_vec()
}

/// `meta` key of a shard's apply index.
pub fn apply_index_key(shard_id: u64) -> Vec<u8> {
    meta_key(shard_id, META_APPLY_INDEX)
}

/// `meta` key of a shard's scoring config.
pub fn config_key(shard_id: u64) -> Vec<u8> {
    meta_key(shard_id, META_CONFIG)
}

/// `meta` key of a shard's config re-evaluation cursor: present while customers remain to be
/// re-evaluated under the config installed last; its value is the next `state` key to visit.
pub fn reevaluation_cursor_key(shard_id: u64) -> Vec<u8> {
    meta_key(shard_id, META_REEVALUATION_CURSOR)
}

/// `meta` key of the node's shard layout: in the namespace of shard id 0, which no shard has.
pub fn node_layout_key() -> Vec<u8> {
    meta_key(NODE_SHARD_ID, META_NODE_LAYOUT)
}

/// `meta` key of the cursor `(raft_index, seq)` of the newest changelog entry pruned by
/// retention (absent before the first pruning).
pub fn pruned_changelog_key(shard_id: u64) -> Vec<u8> {
    meta_key(shard_id, META_PRUNED_CHANGELOG)
}

/// `meta` key of the shard's last consistency hash: `raft_index | hash` (two big-endian u64),
/// written by a `ComputeHash` entry (absent before the first).
pub fn consistency_hash_key(shard_id: u64) -> Vec<u8> {
    meta_key(shard_id, META_CONSISTENCY_HASH)
}

fn meta_key(shard_id: u64, tag: u8) -> Vec<u8> {
    let mut key = shard_id.to_be_bytes().to_vec();
    key.push(tag);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_split_covers_the_hash_space() {
        let ranges = ShardRange::split_evenly(16);
        assert_eq!(ranges.len(), 16);
        assert_eq!(ranges[0].start_hash, 0);
        assert_eq!(ranges[15].end_hash, u64::MAX);
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].end_hash + 1, pair[1].start_hash, "contiguous");
        }
    }

    #[test]
    fn timer_and_changelog_keys_round_trip_and_sort() {
        let a = timer_key(3, 1_000, "alice");
        let b = timer_key(3, 2_000, "alice");
        assert!(a < b && b < timer_key(4, 0, "x"));
        assert_eq!(parse_timer_key(&b), Some((2_000, "alice")));
        let c = changelog_key(3, 10, 2);
        assert_eq!(parse_changelog_key(&c), Some((10, 2)));
        assert!(changelog_key(3, 10, 2) < changelog_key(3, 11, 0));
    }

    #[test]
    fn index_keys_order_by_customer_within_a_segment() {
        let a = index_key(Dimension::ActivitySegment, "DAILY", "alice");
        let b = index_key(Dimension::ActivitySegment, "DAILY", "bob");
        let c = index_key(Dimension::ActivitySegment, "DAILYX", "aaron");
        assert!(a < b && b < c, "the separator keeps segments apart");
        assert!(a.starts_with(&index_segment_prefix(Dimension::ActivitySegment, "DAILY")));
        let ids = event_ids_key("bob");
        assert!(ids.starts_with(&state_key("bob")) && ids.last() == Some(&EVENT_IDS_SUFFIX));
        let id = dedup_key("bob", 7);
        assert!(id.starts_with(&dedup_prefix("bob")) && id.ends_with(&7u64.to_be_bytes()));
        assert!(!dedup_key("bo", u64::MAX).starts_with(&dedup_prefix("bob")), "no prefix overlap");
    }
}
