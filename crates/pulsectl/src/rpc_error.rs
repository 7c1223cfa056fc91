//! A failed RPC as a message a person can act on: the RPC, the gRPC code by its canonical name,
//! the server's message, and the `google.rpc.BadRequest` field violations and
//! `google.rpc.RetryInfo` delay the server attached.

use std::fmt;

use tonic::{Code, Status};
use tonic_types::StatusExt;

/// An RPC that ended with a non-OK status.
#[derive(Debug)]
pub struct RpcError {
    /// The RPC's name (`GetActivity`).
    pub rpc: &'static str,
    /// What the server (or the transport) answered.
    pub status: Status,
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}: {}", self.rpc, code_name(self.status.code()), self.status.message())?;
        for (field, description) in field_violations(&self.status) {
            write!(f, "\n  {field}: {description}")?;
        }
        if let Some(delay) = self.status.get_details_retry_info().and_then(|info| info.retry_delay) {
            write!(f, "\n  retry after {} ms", delay.as_millis())?;
        }
        Ok(())
    }
}

impl std::error::Error for RpcError {}

/// The `(field, description)` pairs of the status's `google.rpc.BadRequest`, if any.
pub fn field_violations(status: &Status) -> Vec<(String, String)> {
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| (v.field, v.description)).collect())
        .unwrap_or_default()
}

/// The canonical name of a gRPC code (`INVALID_ARGUMENT`), as grpcurl and the docs spell it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Names the RPC of a failed call: `client.get_activity(req).await.rpc("GetActivity")?`.
pub trait RpcResultExt<T> {
    /// The value, or an [`RpcError`] naming `rpc`.
    fn rpc(self, rpc: &'static str) -> Result<T, RpcError>;
}

impl<T> RpcResultExt<T> for Result<T, Status> {
    fn rpc(self, rpc: &'static str) -> Result<T, RpcError> {
        self.map_err(|status| RpcError { rpc, status })
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::{ErrorDetails, FieldViolation};

    use super::*;

    #[test]
    fn shows_code_message_and_every_violation() {
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "2 invalid events",
            ErrorDetails::with_bad_request(vec![
                FieldViolation::new("events[0].kind", "is required"),
                FieldViolation::new("events[3].amount", "must be >= 0"),
            ]),
        );
        let text = RpcError { rpc: "Ingest", status }.to_string();
        assert_eq!(
            text,
            "Ingest failed: INVALID_ARGUMENT: 2 invalid events\n  events[0].kind: is required\n  \
             events[3].amount: must be >= 0"
        );
        let plain = RpcError { rpc: "TopCustomers", status: Status::unimplemented("not yet") };
        assert_eq!(plain.to_string(), "TopCustomers failed: UNIMPLEMENTED: not yet");
    }
}
