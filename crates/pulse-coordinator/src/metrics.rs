//! The server's metrics, named and described in one place. They go through the `metrics`
//! facade; `pulsed --metrics-listen` installs a Prometheus exporter (without one, recording is
//! a no-op).

use std::time::Duration;

use metrics::{Unit, counter, describe_counter};
use pulse_raft::{RuntimeHandle, StatsSnapshot};

/// Events of `Ingest`/`IngestStream` requests, by `result` (`accepted` | `duplicate`).
const INGEST_EVENTS: &str = "pulse_ingest_events_total";
/// Failed requests, by gRPC `code`.
const REQUEST_ERRORS: &str = "pulse_request_errors_total";
/// Tick rounds proposed to every shard, by `result` (`ok` | `error`).
const TICK_ROUNDS: &str = "pulse_tick_rounds_total";
/// Replica moves of the scheduler, by `event` (`started` | `finished` | `abandoned`).
const REPLICA_MOVES: &str = "pulse_scheduler_moves_total";
/// Leader transfers the scheduler made to balance leaders.
const LEADER_TRANSFERS: &str = "pulse_scheduler_leader_transfers_total";

/// How often the raft runtime's counters are copied into the metrics.
const RAFT_EXPORT_INTERVAL: Duration = Duration::from_secs(5);

/// The raft runtime's counters (`pulse_raft::RuntimeStats`): name, description, value.
fn raft_counters(stats: &StatsSnapshot) -> [(&'static str, &'static str, u64); 12] {
    [
        ("pulse_raft_rounds_total", "rounds of the raft ready loop", stats.rounds),
        ("pulse_raft_log_fsyncs_total", "fsynced raft log writes (group commits)", stats.log_fsyncs),
        ("pulse_raft_entries_applied_total", "raft entries applied", stats.entries_applied),
        ("pulse_raft_proposals_ok_total", "proposals applied", stats.proposals_ok),
        ("pulse_raft_proposals_failed_total", "proposals answered with an error", stats.proposals_failed),
        ("pulse_raft_reads_ok_total", "read index requests answered", stats.reads_ok),
        ("pulse_raft_reads_failed_total", "read index requests failed", stats.reads_failed),
        ("pulse_raft_messages_sent_total", "raft messages handed to the transport", stats.messages_sent),
        ("pulse_raft_replicas_failed_total", "replicas stopped by a fatal error", stats.replicas_failed),
        ("pulse_raft_replica_ticks_total", "raft ticks of awake replicas", stats.replica_ticks),
        ("pulse_raft_hibernations_total", "replicas of idle shards that went to sleep", stats.hibernations),
        ("pulse_raft_wakeups_total", "hibernating replicas woken up", stats.wakeups),
    ]
}

/// Registers the descriptions of every metric (call once, after installing a recorder).
pub fn describe_metrics() {
    describe_counter!(INGEST_EVENTS, Unit::Count, "events of ingest requests, by result");
    describe_counter!(REQUEST_ERRORS, Unit::Count, "failed requests, by grpc code");
    describe_counter!(TICK_ROUNDS, Unit::Count, "tick rounds proposed to every shard, by result");
    describe_counter!(REPLICA_MOVES, Unit::Count, "replica moves of the scheduler, by event");
    describe_counter!(LEADER_TRANSFERS, Unit::Count, "leader transfers made to balance leaders");
    for (name, description, _) in raft_counters(&StatsSnapshot::default()) {
        describe_counter!(name, Unit::Count, description);
    }
}

/// Copies the counters of `runtime` into the metrics every few seconds, until aborted.
pub(crate) async fn export_raft_stats<O: Send + 'static>(runtime: RuntimeHandle<O>) {
    let mut ticker = tokio::time::interval(RAFT_EXPORT_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        for (name, _, value) in raft_counters(&runtime.stats().snapshot()) {
            counter!(name).absolute(value);
        }
    }
}

/// Counts the events of one ingest request.
pub(crate) fn ingest_events(accepted: u32, duplicates: u32) {
    counter!(INGEST_EVENTS, "result" => "accepted").increment(u64::from(accepted));
    counter!(INGEST_EVENTS, "result" => "duplicate").increment(u64::from(duplicates));
}

/// Counts one failed request.
pub(crate) fn request_error(code: tonic::Code) {
    counter!(REQUEST_ERRORS, "code" => format!("{code:?}")).increment(1);
}

/// Counts a replica move event (`started`, `finished`, `abandoned`).
pub(crate) fn replica_move(event: &'static str) {
    counter!(REPLICA_MOVES, "event" => event).increment(1);
}

/// Counts a leader-balancing transfer.
pub(crate) fn leader_transfer() {
    counter!(LEADER_TRANSFERS).increment(1);
}

/// Counts one tick round.
pub(crate) fn tick_round(ok: bool) {
    counter!(TICK_ROUNDS, "result" => if ok { "ok" } else { "error" }).increment(1);
}
