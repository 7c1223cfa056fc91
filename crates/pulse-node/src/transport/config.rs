//! [`GrpcTransportConfig`]: queue sizes, batching, connection and reconnection timings.

use std::time::Duration;

use serde::Deserialize;

use super::error::{TransportError, TransportResult};

/// How the outgoing side of the gRPC raft transport queues, batches and (re)connects.
///
/// Defaults are in [`Default`] only. Call [`GrpcTransportConfig::validate`] once at startup;
/// [`GrpcTransport::new`](super::GrpcTransport::new) calls it too. Durations are in
/// milliseconds, sizes in bytes.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcTransportConfig {
    /// Messages queued per destination node while its stream is busy or (re)connecting; beyond
    /// it new messages are dropped and counted (raft retransmits). Bounds the memory a dead or
    /// slow peer can hold.
    pub queue_capacity: usize,
    /// Most messages put in one `RaftMessageBatch`.
    pub max_batch_messages: usize,
    /// Soft bound on the encoded raft messages of one batch, in bytes: a batch takes no further
    /// message once it holds this much (a single larger message still goes, alone). Keep it well
    /// under [`MAX_DECODING_MESSAGE_BYTES`](super::MAX_DECODING_MESSAGE_BYTES).
    pub max_batch_bytes: usize,
    /// Time allowed to establish a TCP + HTTP/2 connection to a peer, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Interval of HTTP/2 keepalive pings on an idle or busy connection, in milliseconds: a
    /// silently dead peer is noticed within `keepalive_interval_ms + keepalive_timeout_ms`.
    pub keepalive_interval_ms: u64,
    /// Time to wait for a keepalive ping's answer before closing the connection, in
    /// milliseconds.
    pub keepalive_timeout_ms: u64,
    /// Wait before the first reconnection after a failure, in milliseconds; doubles on every
    /// further failure up to `reconnect_backoff_max_ms`, and starts again from here once a
    /// connection succeeds.
    pub reconnect_backoff_initial_ms: u64,
    /// Longest wait between two reconnections, in milliseconds.
    pub reconnect_backoff_max_ms: u64,
    /// Rate limit of one outgoing snapshot stream, in bytes per second: snapshots are sent in
    /// the background and must not starve the raft traffic of the same link.
    pub snapshot_max_bytes_per_sec: u64,
    /// Longest time one snapshot may take to send and be handed over, in milliseconds, on top
    /// of its size at `snapshot_max_bytes_per_sec`: past it the send is reported failed and
    /// raft retries later.
    pub snapshot_timeout_ms: u64,
}

impl Default for GrpcTransportConfig {
    fn default() -> Self {
        GrpcTransportConfig {
            queue_capacity: 4096,
            max_batch_messages: 256,
            max_batch_bytes: 4 * 1024 * 1024,
            connect_timeout_ms: 1_000,
            keepalive_interval_ms: 10_000,
            keepalive_timeout_ms: 5_000,
            reconnect_backoff_initial_ms: 100,
            reconnect_backoff_max_ms: 5_000,
            snapshot_max_bytes_per_sec: 64 * 1024 * 1024,
            snapshot_timeout_ms: 60_000,
        }
    }
}

impl GrpcTransportConfig {
    /// Checks every field; the transport is only built from a valid config.
    pub fn validate(&self) -> TransportResult<()> {
        let positive: [(&'static str, u64); 9] = [
            ("queue_capacity", self.queue_capacity as u64),
            ("max_batch_messages", self.max_batch_messages as u64),
            ("max_batch_bytes", self.max_batch_bytes as u64),
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("keepalive_interval_ms", self.keepalive_interval_ms),
            ("keepalive_timeout_ms", self.keepalive_timeout_ms),
            ("reconnect_backoff_initial_ms", self.reconnect_backoff_initial_ms),
            ("snapshot_max_bytes_per_sec", self.snapshot_max_bytes_per_sec),
            ("snapshot_timeout_ms", self.snapshot_timeout_ms),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(invalid(field, "must be positive".into()));
            }
        }
        if self.max_batch_bytes > super::MAX_DECODING_MESSAGE_BYTES / 2 {
            return Err(invalid(
                "max_batch_bytes",
                format!(
                    "must be at most half the receiver's limit of {} bytes",
                    super::MAX_DECODING_MESSAGE_BYTES
                ),
            ));
        }
        if self.reconnect_backoff_max_ms < self.reconnect_backoff_initial_ms {
            return Err(invalid(
                "reconnect_backoff_max_ms",
                "must be at least reconnect_backoff_initial_ms".into(),
            ));
        }
        Ok(())
    }

    pub(super) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub(super) fn keepalive_interval(&self) -> Duration {
        Duration::from_millis(self.keepalive_interval_ms)
    }

    pub(super) fn keepalive_timeout(&self) -> Duration {
        Duration::from_millis(self.keepalive_timeout_ms)
    }

    pub(super) fn backoff_initial(&self) -> Duration {
        Duration::from_millis(self.reconnect_backoff_initial_ms)
    }

    pub(super) fn backoff_max(&self) -> Duration {
        Duration::from_millis(self.reconnect_backoff_max_ms)
    }
}

fn invalid(field: &'static str, reason: String) -> TransportError {
    TransportError::InvalidConfig { field, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zeroes_are_not() {
        GrpcTransportConfig::default().validate().unwrap();
        let zero_queue = GrpcTransportConfig { queue_capacity: 0, ..GrpcTransportConfig::default() };
        assert!(matches!(
            zero_queue.validate(),
            Err(TransportError::InvalidConfig { field: "queue_capacity", .. })
        ));
        let inverted = GrpcTransportConfig {
            reconnect_backoff_initial_ms: 10,
            reconnect_backoff_max_ms: 5,
            ..GrpcTransportConfig::default()
        };
        assert!(inverted.validate().is_err());
    }
}
