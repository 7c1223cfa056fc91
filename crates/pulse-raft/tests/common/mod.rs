//! Shared by the integration tests: a state machine that records every apply durably and in
//! memory (to prove exactly-once), configs, and bounded waits.

#![allow(dead_code)] // each test binary uses a different part

use std::future::Future;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pulse_raft::{CommittedEntry, RaftConfig, SnapshotData, StateMachine, StateMachineError};
use pulse_storage::{ColumnFamily, MemoryEngine, StorageEngine, StorageError, WriteBatch, WriteOptions};

/// One apply call seen by [`RecordingStateMachine`]: `(shard_id, index, data)`; empty data for
/// entries the runtime handled itself.
pub type ApplyRecord = (u64, u64, Vec<u8>);

/// A state machine that stores each command under `shard · index` in `state` and the apply
/// index under `shard` in `meta`, in the batch the runtime writes, and refuses to apply an index
/// twice or out of order (checked against what is durable). `fail_from_index` makes it fail
/// (like a crash mid-apply) from that index on.
pub struct RecordingStateMachine<E> {
    engine: E,
    applies: Arc<Mutex<Vec<ApplyRecord>>>,
    fail_from_index: Option<u64>,
    /// `applied_written` calls: `(shard_id, index, apply index readable in the engine then)`.
    written: Arc<Mutex<Vec<(u64, u64, u64)>>>,
    /// `install_snapshot` calls: `(shard_id, index)`.
    snapshots_installed: Arc<Mutex<Vec<(u64, u64)>>>,
}

impl<E: StorageEngine> RecordingStateMachine<E> {
    pub fn new(engine: E) -> Self {
        RecordingStateMachine {
            engine,
            applies: Arc::default(),
            fail_from_index: None,
            written: Arc::default(),
            snapshots_installed: Arc::default(),
        }
    }

    pub fn failing_from(engine: E, index: u64) -> Self {
        RecordingStateMachine { fail_from_index: Some(index), ..RecordingStateMachine::new(engine) }
    }

    /// The apply calls of this instance's life, shared with the test.
    pub fn applies(&self) -> Arc<Mutex<Vec<ApplyRecord>>> {
        self.applies.clone()
    }

    /// The snapshots this instance installed: `(shard_id, index)`.
    pub fn snapshots_installed(&self) -> Arc<Mutex<Vec<(u64, u64)>>> {
        self.snapshots_installed.clone()
    }

    /// The `applied_written` calls of this instance's life: `(shard_id, index, apply index
    /// readable in the engine at the call)`.
    pub fn written(&self) -> Arc<Mutex<Vec<(u64, u64, u64)>>> {
        self.written.clone()
    }

    fn check_next(&mut self, shard_id: u64, index: u64) -> Result<(), StateMachineError> {
        if self.fail_from_index.is_some_and(|from| index >= from) {
            return Err(format!("injected failure at index {index}").into());
        }
        let applied = self.applied_index(shard_id)?;
        if index != applied + 1 {
            return Err(format!("shard {shard_id}: index {index} applied after {applied}").into());
        }
        Ok(())
    }

    fn record(&mut self, shard_id: u64, index: u64, data: &[u8], batch: &mut WriteBatch) {
        batch.put(ColumnFamily::Meta, &apply_key(shard_id), &index.to_be_bytes());
        self.applies.lock().unwrap().push((shard_id, index, data.to_vec()));
    }
}

impl<E: StorageEngine> StateMachine for RecordingStateMachine<E> {
    /// The index the command applied at.
    type Output = u64;

    fn applied_index(&mut self, shard_id: u64) -> Result<u64, StateMachineError> {
        let stored = self.engine.get(ColumnFamily::Meta, &apply_key(shard_id))?;
        Ok(stored.map_or(0, |bytes| u64::from_be_bytes(bytes.try_into().unwrap())))
    }

    fn apply(
        &mut self,
        shard_id: u64,
        entry: CommittedEntry<'_>,
        batch: &mut WriteBatch,
    ) -> Result<u64, StateMachineError> {
        self.check_next(shard_id, entry.index)?;
        let key = data_key(shard_id, entry.index);
        if self.engine.get(ColumnFamily::State, &key)?.is_some() {
            return Err(format!("shard {shard_id}: index {} applied twice", entry.index).into());
        }
        batch.put(ColumnFamily::State, &key, entry.data);
        self.record(shard_id, entry.index, entry.data, batch);
        Ok(entry.index)
    }

    fn record_applied(
        &mut self,
        shard_id: u64,
        index: u64,
        _term: u64,
        batch: &mut WriteBatch,
    ) -> Result<(), StateMachineError> {
        self.check_next(shard_id, index)?;
        self.record(shard_id, index, &[], batch);
        Ok(())
    }

    fn applied_written(&mut self, shard_id: u64, index: u64) {
        let readable = self.applied_index(shard_id).unwrap_or(0);
        self.written.lock().unwrap().push((shard_id, index, readable));
    }

    fn produces_snapshots(&self) -> bool {
        true
    }

    /// The shard's commands as `index (8) · len (4) · data` records.
    fn snapshot_data(&mut self, shard_id: u64) -> Result<SnapshotData, StateMachineError> {
        let mut data = Vec::new();
        for (index, command) in stored_commands(&self.engine, shard_id) {
            data.extend_from_slice(&index.to_be_bytes());
            data.extend_from_slice(&(command.len() as u32).to_be_bytes());
            data.extend_from_slice(&command);
        }
        Ok(SnapshotData { applied_index: self.applied_index(shard_id)?, data })
    }

    fn install_snapshot(
        &mut self,
        shard_id: u64,
        index: u64,
        _term: u64,
        mut data: &[u8],
        batch: &mut WriteBatch,
    ) -> Result<(), StateMachineError> {
        batch.delete_range(ColumnFamily::State, &data_key(shard_id, 0), &data_key(shard_id + 1, 0));
        while !data.is_empty() {
            if data.len() < 12 {
                return Err("truncated snapshot record".into());
            }
            let command_index = u64::from_be_bytes(data[..8].try_into().unwrap());
            let len = u32::from_be_bytes(data[8..12].try_into().unwrap()) as usize;
            let command = data.get(12..12 + len).ok_or("truncated snapshot record")?;
            batch.put(ColumnFamily::State, &data_key(shard_id, command_index), command);
            data = &data[12 + len..];
        }
        batch.put(ColumnFamily::Meta, &apply_key(shard_id), &index.to_be_bytes());
        self.snapshots_installed.lock().unwrap().push((shard_id, index));
        Ok(())
    }

    fn remove_shard(&mut self, shard_id: u64, batch: &mut WriteBatch) -> Result<(), StateMachineError> {
        batch.delete_range(ColumnFamily::State, &data_key(shard_id, 0), &data_key(shard_id + 1, 0));
        batch.delete(ColumnFamily::Meta, &apply_key(shard_id));
        Ok(())
    }
}

pub fn apply_key(shard_id: u64) -> Vec<u8> {
    shard_id.to_be_bytes().to_vec()
}

pub fn data_key(shard_id: u64, index: u64) -> Vec<u8> {
    [shard_id.to_be_bytes(), index.to_be_bytes()].concat()
}

/// Every command stored for `shard_id`: `(index, data)` in index order.
pub fn stored_commands<E: StorageEngine>(engine: &E, shard_id: u64) -> Vec<(u64, Vec<u8>)> {
    let start = data_key(shard_id, 0);
    let end = data_key(shard_id + 1, 0);
    engine
        .scan_collect(ColumnFamily::State, &start, Some(&end), usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(key, value)| (u64::from_be_bytes(key[8..16].try_into().unwrap()), value))
        .collect()
}

/// Every key of `shard_id` in the `raft` column family (log entries, hard, conf and truncated
/// states all start with the shard id).
pub fn raft_keys<E: StorageEngine>(engine: &E, shard_id: u64) -> Vec<Vec<u8>> {
    let start = shard_id.to_be_bytes();
    let end = (shard_id + 1).to_be_bytes();
    engine
        .scan_collect(ColumnFamily::Raft, &start, Some(&end), usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(key, _)| key)
        .collect()
}

/// Fast ticks; a long election timeout so that elections only happen when a test asks
/// (`campaign`, or a single voter), never by accident on a slow machine.
pub fn test_config() -> RaftConfig {
    RaftConfig { tick_interval_ms: 10, election_ticks: 100, heartbeat_ticks: 3, ..RaftConfig::default() }
}

/// A deadline no healthy test reaches.
pub fn far_deadline() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// Awaits `future`, failing the test after 10 s instead of hanging.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer in 10 s"))
}

/// Polls `probe` every 10 ms until it returns `Some`, for at most 5 s.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..500 {
        if let Some(value) = probe().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not reached in 5 s");
}

/// A [`MemoryEngine`] whose writes start failing on demand, to check that storage failures are
/// fatal and reported, never swallowed.
#[derive(Clone, Default)]
pub struct FailingEngine {
    inner: MemoryEngine,
    fail_writes: Arc<AtomicBool>,
}

impl FailingEngine {
    /// Every write from now on fails.
    pub fn fail_writes(&self) {
        self.fail_writes.store(true, Ordering::SeqCst);
    }
}

impl StorageEngine for FailingEngine {
    fn get_with<R, F>(&self, cf: ColumnFamily, key: &[u8], read: F) -> pulse_storage::Result<Option<R>>
    where
        F: FnOnce(&[u8]) -> pulse_storage::Result<R>,
    {
        self.inner.get_with(cf, key, read)
    }

    fn write(&self, batch: &WriteBatch, options: WriteOptions) -> pulse_storage::Result<()> {
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(StorageError::MalformedKey {
                what: "injected",
                reason: "write failure injected by the test".into(),
            });
        }
        self.inner.write(batch, options)
    }

    fn scan<F>(
        &self,
        cf: ColumnFamily,
        start: &[u8],
        end: Option<&[u8]>,
        visit: F,
    ) -> pulse_storage::Result<()>
    where
        F: FnMut(&[u8], &[u8]) -> pulse_storage::Result<ControlFlow<()>>,
    {
        self.inner.scan(cf, start, end, visit)
    }

    fn scan_reverse<F>(
        &self,
        cf: ColumnFamily,
        start: &[u8],
        end: Option<&[u8]>,
        visit: F,
    ) -> pulse_storage::Result<()>
    where
        F: FnMut(&[u8], &[u8]) -> pulse_storage::Result<ControlFlow<()>>,
    {
        self.inner.scan_reverse(cf, start, end, visit)
    }

    fn flush(&self) -> pulse_storage::Result<()> {
        self.inner.flush()
    }

    fn sync_wal(&self) -> pulse_storage::Result<()> {
        self.inner.sync_wal()
    }

    fn approximate_size(&self, cf: ColumnFamily) -> pulse_storage::Result<u64> {
        self.inner.approximate_size(cf)
    }
}
