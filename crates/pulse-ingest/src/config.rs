//! [`BatchConfig`]: group-commit knobs.

/// How requests are grouped into shard proposals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Most events in one proposal (one raft entry). A single request larger than this is still
    /// proposed whole: a request is never split across entries, so it applies atomically.
    pub max_batch_events: usize,
    /// Linger: how long a small batch waits for company when a pipeline slot is free, µs.
    /// 0 (the default) proposes at once; under load batches still grow by themselves while
    /// earlier proposals are in flight, so a linger only helps many clients that each send
    /// little at a steady low rate.
    pub max_batch_delay_us: u64,
    /// Requests queued per shard before new ones are refused with `Overloaded`.
    pub queue_capacity: usize,
    /// Proposals of one shard in flight at once (pipelining while earlier ones commit).
    pub max_in_flight: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self { max_batch_events: 4096, max_batch_delay_us: 0, queue_capacity: 1024, max_in_flight: 4 }
    }
}
