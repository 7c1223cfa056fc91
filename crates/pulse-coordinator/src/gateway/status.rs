//! The one place where errors become gRPC statuses (STYLE rule 9).
//!
//! | error                                   | code                 | details          |
//! |-----------------------------------------|----------------------|------------------|
//! | invalid events / invalid field / as_of  | `INVALID_ARGUMENT`   | `BadRequest`     |
//! | invalid scoring config (every field)    | `INVALID_ARGUMENT`   | `BadRequest`     |
//! | unknown customer, unknown custom segment | `NOT_FOUND`         |                  |
//! | shard queue full, raft busy             | `RESOURCE_EXHAUSTED` | `RetryInfo`      |
//! | manual-clock operation on a wall clock  | `FAILED_PRECONDITION`|                  |
//! | stale config version, no purchases      | `FAILED_PRECONDITION`|                  |
//! | clock moved backwards                   | `INVALID_ARGUMENT`   | `BadRequest`     |
//! | beyond the transition retention         | `OUT_OF_RANGE`       | `BadRequest`     |
//! | not leader, timeout, stopped, dropped   | `UNAVAILABLE`        |                  |
//! | anything else                           | `INTERNAL`           |                  |

use std::time::Duration;

use pulse_ingest::IngestError;
use pulse_node::NodeError;
use pulse_raft::ProposeError;
use pulse_scoring::ScoringError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};
use tracing::error;

use crate::error::ServerError;
use crate::metrics;

/// Back-off suggested when raft refuses a proposal as busy, ms.
const BUSY_RETRY_AFTER_MS: u64 = 100;

impl From<ServerError> for Status {
    fn from(error: ServerError) -> Self {
        let message = error.to_string();
        let status = match error {
            ServerError::Ingest(IngestError::InvalidEvents { violations }) => {
                let fields: Vec<FieldViolation> = violations
                    .iter()
                    .map(|v| FieldViolation::new(v.field_path(), v.description.clone()))
                    .collect();
                bad_request(message, fields)
            }
            ServerError::InvalidArgument { field, description } => {
                bad_request(message, vec![FieldViolation::new(field, description)])
            }
            ServerError::Node(NodeError::Scoring(ScoringError::AsOfBeforeLastEvent { .. })) => {
                bad_request(message.clone(), vec![FieldViolation::new("as_of_ms", message)])
            }
            ServerError::InvalidFields { violations } => {
                let fields: Vec<FieldViolation> =
                    violations.into_iter().map(|v| FieldViolation::new(v.field, v.description)).collect();
                bad_request(message, fields)
            }
            ServerError::OutOfRange { field, description } => Status::with_error_details(
                Code::OutOfRange,
                message,
                ErrorDetails::with_bad_request(vec![FieldViolation::new(field, description)]),
            ),
            ServerError::ClockBackwards { .. } => {
                bad_request(message.clone(), vec![FieldViolation::new("now_ms", message)])
            }
            ServerError::CustomerNotFound { .. } | ServerError::SegmentNotFound { .. } => {
                Status::not_found(message)
            }
            ServerError::ClockIsWall
            | ServerError::StaleConfigVersion { .. }
            | ServerError::NoPurchases { .. } => Status::failed_precondition(message),
            ServerError::Ingest(IngestError::Overloaded { retry_after_ms, .. }) => {
                retry_later(message, retry_after_ms)
            }
            ServerError::Propose(ProposeError::Busy { .. }) => retry_later(message, BUSY_RETRY_AFTER_MS),
            ServerError::Propose(ProposeError::NotLeader { leader_hint: Some(leader), .. }) => {
                let mut status = Status::unavailable(message);
                let hint = leader.to_string().parse().expect("digits are valid metadata");
                status.metadata_mut().insert(crate::cluster::LEADER_HINT_HEADER, hint);
                status
            }
            ServerError::Ingest(IngestError::ProposalFailed { .. } | IngestError::ShuttingDown { .. })
            | ServerError::Propose(_) => Status::unavailable(message),
            ServerError::Remote(status) => status,
            other => {
                error!(error = %other, "request failed");
                Status::internal(message)
            }
        };
        metrics::request_error(status.code());
        status
    }
}

fn bad_request(message: String, fields: Vec<FieldViolation>) -> Status {
    Status::with_error_details(Code::InvalidArgument, message, ErrorDetails::with_bad_request(fields))
}

fn retry_later(message: String, retry_after_ms: u64) -> Status {
    Status::with_error_details(
        Code::ResourceExhausted,
        message,
        ErrorDetails::with_retry_info(Some(Duration::from_millis(retry_after_ms))),
    )
}

/// The status of an RPC that this version does not serve yet.
pub(crate) fn not_yet(rpc: &str) -> Status {
    Status::unimplemented(format!("{rpc} arrives with issue 3"))
}

#[cfg(test)]
mod tests {
    use pulse_ingest::EventViolation;

    use super::*;

    #[test]
    fn invalid_events_name_each_field_path() {
        let error = ServerError::Ingest(IngestError::InvalidEvents {
            violations: vec![EventViolation {
                index: 1,
                field: "amount".into(),
                description: "must be finite".into(),
            }],
        });
        let status = Status::from(error);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let fields: Vec<&str> =
            details.bad_request().unwrap().field_violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["events[1].amount"]);
    }

    #[test]
    fn overload_carries_retry_info() {
        let status = Status::from(ServerError::Ingest(IngestError::Overloaded {
            shard_id: 1,
            capacity: 8,
            retry_after_ms: 50,
        }));
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(status.get_error_details().retry_info().is_some());
    }

    #[test]
    fn config_errors_name_every_field_or_are_preconditions() {
        let status = Status::from(ServerError::InvalidFields {
            violations: vec![
                pulse_scoring::FieldViolation::new("config.level_low", "must be >= 0"),
                pulse_scoring::FieldViolation::new("config.max_categories", "must be within 1..=255"),
            ],
        });
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let fields: Vec<&str> =
            details.bad_request().unwrap().field_violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["config.level_low", "config.max_categories"]);
        let stale = Status::from(ServerError::StaleConfigVersion { requested: 1, stored: 2 });
        assert_eq!(stale.code(), Code::FailedPrecondition);
        let empty = Status::from(ServerError::NoPurchases { operation: "RefreshRfmEdges" });
        assert_eq!(empty.code(), Code::FailedPrecondition);
        assert_eq!(Status::from(ServerError::ModelFit { reason: "diverged".into() }).code(), Code::Internal);
    }
}
