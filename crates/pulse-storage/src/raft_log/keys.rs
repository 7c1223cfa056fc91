//! Keys of the `raft` column family (the key map is in the module doc of `raft_log`).

use crate::error::{Result, StorageError};

/// Tag of log entries: `shard | 0x01 | index`.
const ENTRY_TAG: u8 = 0x01;
/// Tag of the hard state: `shard | 0x02`.
const HARD_STATE_TAG: u8 = 0x02;
/// Tag of the truncated state: `shard | 0x03`.
const TRUNCATED_STATE_TAG: u8 = 0x03;
/// Tag of the conf state: `shard | 0x04`.
const CONF_STATE_TAG: u8 = 0x04;

/// Length of an entry key: shard, tag, index.
pub(crate) const ENTRY_KEY_LEN: usize = 8 + 1 + 8;

/// `shard (u64 BE) | 0x01 | index (u64 BE)`: entries of a shard sort by index.
pub(crate) fn entry_key(shard_id: u64, index: u64) -> [u8; ENTRY_KEY_LEN] {
    let mut key = [0; ENTRY_KEY_LEN];
    key[..8].copy_from_slice(&shard_id.to_be_bytes());
    key[8] = ENTRY_TAG;
    key[9..].copy_from_slice(&index.to_be_bytes());
    key
}

/// First key after every entry key of `shard_id` (it is the hard state key, which is never an
/// entry): the exclusive end of "all entries of the shard".
pub(crate) fn entries_end(shard_id: u64) -> [u8; 9] {
    hard_state_key(shard_id)
}

/// `shard | 0x02`.
pub(crate) fn hard_state_key(shard_id: u64) -> [u8; 9] {
    tagged(shard_id, HARD_STATE_TAG)
}

/// `shard | 0x03`.
pub(crate) fn truncated_state_key(shard_id: u64) -> [u8; 9] {
    tagged(shard_id, TRUNCATED_STATE_TAG)
}

/// `shard | 0x04`.
pub(crate) fn conf_state_key(shard_id: u64) -> [u8; 9] {
    tagged(shard_id, CONF_STATE_TAG)
}

fn tagged(shard_id: u64, tag: u8) -> [u8; 9] {
    let mut key = [0; 9];
    key[..8].copy_from_slice(&shard_id.to_be_bytes());
    key[8] = tag;
    key
}

/// The index of an entry key of `shard_id`; an error for any other key.
pub(crate) fn entry_index(shard_id: u64, key: &[u8]) -> Result<u64> {
    let malformed = |reason: String| StorageError::MalformedKey { what: "raft entry", reason };
    let Ok(key) = <&[u8; ENTRY_KEY_LEN]>::try_from(key) else {
        return Err(malformed(format!("{} bytes, expected {ENTRY_KEY_LEN}", key.len())));
    };
    let (shard, rest) = key.split_at(8);
    if shard != shard_id.to_be_bytes() || rest[0] != ENTRY_TAG {
        return Err(malformed(format!("{key:02x?} is not an entry key of shard {shard_id}")));
    }
    let mut index = [0; 8];
    index.copy_from_slice(&rest[1..]);
    Ok(u64::from_be_bytes(index))
}

/// Value of the truncated state: `index (u64 BE) | term (u64 BE)`.
pub(crate) fn encode_truncated_state(index: u64, term: u64) -> [u8; 16] {
    let mut value = [0; 16];
    value[..8].copy_from_slice(&index.to_be_bytes());
    value[8..].copy_from_slice(&term.to_be_bytes());
    value
}

/// `(index, term)` of a truncated state value; an error for a value of the wrong size.
pub(crate) fn decode_truncated_state(shard_id: u64, value: &[u8]) -> Result<(u64, u64)> {
    let Ok(value) = <&[u8; 16]>::try_from(value) else {
        return Err(StorageError::RaftLogCorrupt {
            shard_id,
            reason: format!("truncated state is {} bytes, expected 16", value.len()),
        });
    };
    let (index, term) = value.split_at(8);
    let mut index_bytes = [0; 8];
    index_bytes.copy_from_slice(index);
    let mut term_bytes = [0; 8];
    term_bytes.copy_from_slice(term);
    Ok((u64::from_be_bytes(index_bytes), u64::from_be_bytes(term_bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_sort_by_shard_then_index_and_before_the_states() {
        let mut keys = vec![
            entry_key(2, 1).to_vec(),
            conf_state_key(1).to_vec(),
            entry_key(1, 256).to_vec(),
            hard_state_key(1).to_vec(),
            entry_key(1, 2).to_vec(),
            truncated_state_key(1).to_vec(),
            entry_key(1, u64::MAX).to_vec(),
        ];
        keys.sort();
        assert_eq!(
            keys,
            vec![
                entry_key(1, 2).to_vec(),
                entry_key(1, 256).to_vec(),
                entry_key(1, u64::MAX).to_vec(),
                hard_state_key(1).to_vec(),
                truncated_state_key(1).to_vec(),
                conf_state_key(1).to_vec(),
                entry_key(2, 1).to_vec(),
            ]
        );
        assert!(entry_key(1, u64::MAX).as_slice() < entries_end(1).as_slice());
    }

    #[test]
    fn entry_index_round_trips_and_rejects_other_keys() {
        assert_eq!(entry_index(7, &entry_key(7, 42)).unwrap(), 42);
        assert!(entry_index(8, &entry_key(7, 42)).is_err());
        assert!(entry_index(7, &hard_state_key(7)).is_err());
        let mut wrong_tag = entry_key(7, 42);
        wrong_tag[8] = 0x05;
        assert!(entry_index(7, &wrong_tag).is_err());
    }

    #[test]
    fn truncated_state_round_trips_and_rejects_bad_sizes() {
        let value = encode_truncated_state(10, 3);
        assert_eq!(decode_truncated_state(1, &value).unwrap(), (10, 3));
        assert!(decode_truncated_state(1, &value[..15]).is_err());
    }
}
