//! [`StoredCustomer`]: the value under a customer's `state` key.

use pulse_scoring::CustomerState;

use crate::error::{NodeError, Result};

/// A customer's state plus the shard's bookkeeping for it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredCustomer {
    /// When the customer's timer is due (time-driven re-evaluation), Unix ms; `None` when time
    /// alone can change nothing more. Kept here so the old timer key can be deleted.
    pub due_ms: Option<i64>,
    /// The model state.
    pub state: CustomerState,
}

impl StoredCustomer {
    /// `due flag (0|1) | due_ms (8 bytes BE, when flagged) | CustomerState encoding`.
    pub fn encode(&self) -> Vec<u8> {
        let state = self.state.encode();
        let mut out = Vec::with_capacity(9 + state.len());
        match self.due_ms {
            Some(due) => {
                out.push(1);
                out.extend_from_slice(&due.to_be_bytes());
            }
            None => out.push(0),
        }
        out.extend_from_slice(&state);
        out
    }

    /// Decodes [`Self::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt =
            |reason: &str| NodeError::Corrupt { what: "stored customer", reason: reason.to_owned() };
        let (due_ms, rest) = match bytes.first() {
            Some(0) => (None, &bytes[1..]),
            Some(1) if bytes.len() >= 9 => {
                let raw: [u8; 8] = bytes[1..9].try_into().map_err(|_| corrupt("short due time"))?;
                (Some(i64::from_be_bytes(raw)), &bytes[9..])
            }
            _ => return Err(corrupt("bad header")),
        };
        Ok(Self { due_ms, state: CustomerState::decode(rest)? })
    }
}
