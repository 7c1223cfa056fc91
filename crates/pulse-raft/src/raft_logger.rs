//! [`TracingDrain`]: raft-rs logs through `slog`; this forwards its records to `tracing`, so a
//! node has one log stream and one filter (`RUST_LOG=raft=debug`).
//!
//! raft-rs's `info` records (every election, every new raft) are downgraded to `debug`: with
//! thousands of shards they would drown the node's log. The runtime logs the events that matter
//! (leadership changes, membership changes, failures) itself, with the shard id.

use std::fmt::{self, Write as _};

use slog::{Drain, KV as _, Level, Never, OwnedKVList, Record};

/// Target of the forwarded records.
const TARGET: &str = "raft";

/// A `slog` drain that emits each record as a `tracing` event under the `raft` target.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TracingDrain;

/// The root logger of the raft groups of this node.
pub(crate) fn raft_logger() -> slog::Logger {
    slog::Logger::root(TracingDrain, slog::o!())
}

impl Drain for TracingDrain {
    type Ok = ();
    type Err = Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), Never> {
        if !self.is_enabled(record.level()) {
            return Ok(());
        }
        let mut fields = FieldWriter(String::new());
        // The writer never fails; a value whose formatting fails is left out.
        let _ = record.kv().serialize(record, &mut fields);
        let _ = values.serialize(record, &mut fields);
        let fields = fields.0.trim_start();
        let message = record.msg();
        match record.level() {
            Level::Critical | Level::Error => tracing::error!(target: TARGET, fields, "{message}"),
            Level::Warning => tracing::warn!(target: TARGET, fields, "{message}"),
            Level::Info | Level::Debug => tracing::debug!(target: TARGET, fields, "{message}"),
            Level::Trace => tracing::trace!(target: TARGET, fields, "{message}"),
        }
        Ok(())
    }

    fn is_enabled(&self, level: Level) -> bool {
        match level {
            Level::Critical | Level::Error => tracing::enabled!(target: TARGET, tracing::Level::ERROR),
            Level::Warning => tracing::enabled!(target: TARGET, tracing::Level::WARN),
            Level::Info | Level::Debug => tracing::enabled!(target: TARGET, tracing::Level::DEBUG),
            Level::Trace => tracing::enabled!(target: TARGET, tracing::Level::TRACE),
        }
    }
}

/// Collects a record's key-values as ` key=value` pairs.
struct FieldWriter(String);

impl slog::Serializer for FieldWriter {
    fn emit_arguments(&mut self, key: slog::Key, value: &fmt::Arguments<'_>) -> slog::Result {
        write!(self.0, " {key}={value}")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_reach_the_drain_without_panicking() {
        // No subscriber is installed: the drain must be a cheap no-op then.
        let logger = raft_logger().new(slog::o!("shard_id" => 7));
        slog::info!(logger, "became leader at term {term}", term = 3; "raft_id" => 1);
        slog::warn!(logger, "stepped down");
        let mut fields = FieldWriter(String::new());
        slog::Serializer::emit_arguments(&mut fields, "term", &format_args!("{}", 3)).unwrap();
        assert_eq!(fields.0, " term=3");
    }
}
