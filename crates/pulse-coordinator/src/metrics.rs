//! The server's metrics, named and described in one place. They go through the `metrics`
//! facade; `pulsed --metrics-listen` installs a Prometheus exporter (without one, recording is
//! a no-op).

use metrics::{Unit, counter, describe_counter};

/// Events of `Ingest`/`IngestStream` requests, by `result` (`accepted` | `duplicate`).
const INGEST_EVENTS: &str = "pulse_ingest_events_total";
/// Failed requests, by gRPC `code`.
const REQUEST_ERRORS: &str = "pulse_request_errors_total";
/// Tick rounds proposed to every shard, by `result` (`ok` | `error`).
const TICK_ROUNDS: &str = "pulse_tick_rounds_total";

/// Registers the descriptions of every metric (call once, after installing a recorder).
pub fn describe_metrics() {
    describe_counter!(INGEST_EVENTS, Unit::Count, "events of ingest requests, by result");
    describe_counter!(REQUEST_ERRORS, Unit::Count, "failed requests, by grpc code");
    describe_counter!(TICK_ROUNDS, Unit::Count, "tick rounds proposed to every shard, by result");
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

/// Counts one tick round.
pub(crate) fn tick_round(ok: bool) {
    counter!(TICK_ROUNDS, "result" => if ok { "ok" } else { "error" }).increment(1);
}
