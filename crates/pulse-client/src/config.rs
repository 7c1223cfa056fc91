//! [`ClientConfig`]: deadlines and backoff of a [`Client`](crate::Client), with defaults in one
//! place and one validation.

use std::time::Duration;

use crate::error::{Error, Result};

/// How long a call may take and how it backs off between attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Deadline of one client call, every retry and route refresh included (default 10 s). A
    /// split call (ingest, batch read) gives all its parts the same deadline.
    pub request_timeout: Duration,
    /// Bound of establishing one TCP/HTTP2 connection to a node (default 1 s), so a dead node
    /// costs at most this per attempt.
    pub connect_timeout: Duration,
    /// Wait after the first failed attempt (default 5 ms); doubles up to `max_backoff`.
    pub first_backoff: Duration,
    /// Longest wait between two attempts (default 200 ms).
    pub max_backoff: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(1),
            first_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(200),
        }
    }
}

impl ClientConfig {
    /// Checks the invariants: positive timeouts and backoffs, `first_backoff <= max_backoff`.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
            ("first_backoff", self.first_backoff),
        ];
        for (field, value) in positive {
            if value.is_zero() {
                return Err(Error::InvalidConfig { field, description: "must be positive".into() });
            }
        }
        if self.first_backoff > self.max_backoff {
            return Err(Error::InvalidConfig {
                field: "max_backoff",
                description: format!("must be at least first_backoff ({:?})", self.first_backoff),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_field() {
        ClientConfig::default().validate().unwrap();
        let zero = ClientConfig { request_timeout: Duration::ZERO, ..ClientConfig::default() };
        assert!(matches!(zero.validate(), Err(Error::InvalidConfig { field: "request_timeout", .. })));
        let inverted = ClientConfig { max_backoff: Duration::from_millis(1), ..ClientConfig::default() };
        assert!(matches!(inverted.validate(), Err(Error::InvalidConfig { field: "max_backoff", .. })));
    }
}
