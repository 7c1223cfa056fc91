//! [`StoredCustomer`]: the value under a customer's `state` key.

use pulse_scoring::CustomerState;

use crate::error::{NodeError, Result};

/// Header flag: `due_ms` follows.
const HAS_DUE: u8 = 0x01;
/// Header flag: `ids_swept_ms` follows (the customer's event ids are in the `dedup` family).
const HAS_SWEPT: u8 = 0x02;

/// A customer's state plus the shard's bookkeeping for it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredCustomer {
    /// When the customer's timer is due (time-driven re-evaluation), Unix ms; `None` when time
    /// alone can change nothing more. Kept here so the old timer key can be deleted.
    pub due_ms: Option<i64>,
    /// When the customer's event ids in the `dedup` family were last swept of expired ones
    /// (the arrival time of that entry). `None` for a customer written before that family
    /// existed: its ids, if any, are still in the legacy window value in `state`.
    pub ids_swept_ms: Option<i64>,
    /// The model state.
    pub state: CustomerState,
}

impl StoredCustomer {
    /// `flags (u8: 0x01 due, 0x02 swept) | due_ms (8 bytes BE, if 0x01) | ids_swept_ms (8 bytes
    /// BE, if 0x02) | CustomerState encoding`. Values written before the swept flag existed
    /// (flags 0 or 1) decode unchanged.
    pub fn encode(&self) -> Vec<u8> {
        let state = self.state.encode();
        let mut out = Vec::with_capacity(17 + state.len());
        let flags =
            u8::from(self.due_ms.is_some()) * HAS_DUE + u8::from(self.ids_swept_ms.is_some()) * HAS_SWEPT;
        out.push(flags);
        for value in [self.due_ms, self.ids_swept_ms].into_iter().flatten() {
            out.extend_from_slice(&value.to_be_bytes());
        }
        out.extend_from_slice(&state);
        out
    }

    /// Decodes [`Self::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt =
            |reason: &str| NodeError::Corrupt { what: "stored customer", reason: reason.to_owned() };
        let (&flags, mut rest) = bytes.split_first().ok_or_else(|| corrupt("empty"))?;
        if flags & !(HAS_DUE | HAS_SWEPT) != 0 {
            return Err(corrupt("bad header"));
        }
        let mut take = |flag: u8| -> Result<Option<i64>> {
            if flags & flag == 0 {
                return Ok(None);
            }
            let (raw, after) = rest.split_first_chunk::<8>().ok_or_else(|| corrupt("short header"))?;
            rest = after;
            Ok(Some(i64::from_be_bytes(*raw)))
        };
        let due_ms = take(HAS_DUE)?;
        let ids_swept_ms = take(HAS_SWEPT)?;
        Ok(Self { due_ms, ids_swept_ms, state: CustomerState::decode(rest)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_header_combination_round_trips_and_old_values_still_decode() {
        let state = CustomerState {
            events: 3,
            first_seen_ms: 1_000,
            last_seen_ms: 2_000,
            ..CustomerState::default()
        };
        for due_ms in [None, Some(1_700_000_000_000)] {
            for ids_swept_ms in [None, Some(-5), Some(1_700_000_123_456)] {
                let stored = StoredCustomer { due_ms, ids_swept_ms, state: state.clone() };
                assert_eq!(StoredCustomer::decode(&stored.encode()).unwrap(), stored);
            }
        }
        // Written before the swept flag existed: `0 | state` and `1 | due | state`.
        let mut old = vec![1];
        old.extend_from_slice(&42i64.to_be_bytes());
        old.extend_from_slice(&state.encode());
        let decoded = StoredCustomer::decode(&old).unwrap();
        assert_eq!((decoded.due_ms, decoded.ids_swept_ms), (Some(42), None));
        assert_eq!(decoded.state, state);
    }

    #[test]
    fn a_bad_header_is_corrupt() {
        for bytes in [&[][..], &[4, 0][..], &[2, 0, 0][..], &[3, 0, 0, 0, 0, 0, 0, 0, 1][..]] {
            let error = StoredCustomer::decode(bytes).unwrap_err();
            assert!(
                matches!(error, NodeError::Corrupt { what: "stored customer", .. }),
                "{bytes:?}: {error}"
            );
        }
    }
}
