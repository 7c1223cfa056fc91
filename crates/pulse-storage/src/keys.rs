//! Key codecs. Integers are big-endian so that RocksDB's byte order is numeric order, and every
//! customer key starts with the customer's hash so that a shard (a hash range) is a key range.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::error::{Result, StorageError};

/// `h = xxh3_64(customer_id bytes, seed 0)`: the position of a customer in the hash space that
/// shards divide into ranges.
pub fn customer_hash(customer_id: &str) -> u64 {
    xxh3_64_with_seed(customer_id.as_bytes(), 0)
}

/// Key of a customer's state in `state`: `h (8 bytes BE) | customer_id`.
pub fn state_key(customer_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + customer_id.len());
    key.extend_from_slice(&customer_hash(customer_id).to_be_bytes());
    key.extend_from_slice(customer_id.as_bytes());
    key
}

/// The `(hash, customer_id)` of a `state` key.
pub fn state_key_customer(key: &[u8]) -> Result<(u64, &str)> {
    let malformed = |reason: &str| StorageError::MalformedKey { what: "state", reason: reason.to_owned() };
    if key.len() <= 8 {
        return Err(malformed("shorter than hash + customer id"));
    }
    let (hash, id) = key.split_at(8);
    let mut raw = [0u8; 8];
    raw.copy_from_slice(hash);
    let id = std::str::from_utf8(id).map_err(|_| malformed("customer id is not UTF-8"))?;
    Ok((u64::from_be_bytes(raw), id))
}

/// The smallest key greater than every key that starts with `prefix`: the exclusive end of a
/// prefix scan. `None` when there is no such key (`prefix` is empty or all `0xff`), i.e. scan to
/// the end of the column family.
pub fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let last_non_max = prefix.iter().rposition(|byte| *byte != u8::MAX)?;
    let mut end = prefix[..=last_non_max].to_vec();
    end[last_non_max] += 1;
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_keys_round_trip_and_sort_by_hash() {
        let mut keys: Vec<Vec<u8>> = ["alice", "bob", "carol", "dave"].iter().map(|c| state_key(c)).collect();
        keys.sort();
        let hashes: Vec<u64> = keys.iter().map(|k| state_key_customer(k).unwrap().0).collect();
        assert!(hashes.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(state_key_customer(&state_key("bob")).unwrap(), (customer_hash("bob"), "bob"));
        assert!(state_key_customer(b"short").is_err());
    }

    #[test]
    fn prefix_upper_bound_is_the_first_key_after_the_prefix() {
        assert_eq!(prefix_upper_bound(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_upper_bound(&[1, 0xff, 0xff]), Some(vec![2]));
        assert_eq!(prefix_upper_bound(&[0xff, 0xff]), None);
        assert_eq!(prefix_upper_bound(b""), None);
    }

    #[test]
    fn hash_is_xxh3_seed_zero() {
        // Reference value of xxh3_64("") with seed 0, fixed by the algorithm's specification.
        assert_eq!(customer_hash(""), 0x2d06_8005_38d3_94c2);
    }
}
