//! Errors of the activity model. Every variant names what was wrong so that the gRPC layer can
//! turn it into a precise status (`google.rpc.BadRequest` field violations for bad input).

use std::fmt;

/// Result of pulse-scoring operations.
pub type Result<T, E = ScoringError> = std::result::Result<T, E>;

/// One bad field of an input, as reported in a `google.rpc.BadRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's name as in the API (`customer_id`, `amount`, `enter`, ...).
    pub field: String,
    /// What is wrong with it, for a human.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self { field: field.into(), description: description.into() }
    }
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// Everything that can go wrong in the activity model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoringError {
    /// An event failed validation; every bad field is listed.
    #[error("invalid event: {}", join(violations))]
    InvalidEvent {
        /// The bad fields, in field order.
        violations: Vec<FieldViolation>,
    },
    /// A read asked for an instant before the customer's latest event (history is not kept).
    #[error("as_of_ms {as_of_ms} is earlier than the customer's last event at {last_seen_ms}")]
    AsOfBeforeLastEvent {
        /// The requested instant, Unix ms.
        as_of_ms: i64,
        /// The customer's latest event, Unix ms.
        last_seen_ms: i64,
    },
    /// A scoring configuration value is out of range.
    #[error("invalid scoring config: {}", join(violations))]
    InvalidConfig {
        /// The bad fields, dotted paths (`weights.recency`).
        violations: Vec<FieldViolation>,
    },
    /// A custom segment rule does not compile; `message` is the CEL parser's.
    #[error("invalid segment rule {segment_id:?} in `{field}`: {message}")]
    InvalidRule {
        /// Id of the segment definition.
        segment_id: String,
        /// `enter` or `exit` (or `id` / `name` for bad metadata).
        field: &'static str,
        /// The parser's message.
        message: String,
    },
    /// A custom segment rule failed while evaluating for one customer (a missing map key, an
    /// ordering comparison with `null`, a non-bool result, ...). Not a request error: callers
    /// keep the customer's current membership and count the failure.
    #[error("segment rule {segment_id:?} `{field}` failed to evaluate: {message}")]
    RuleEvaluation {
        /// Id of the segment definition.
        segment_id: String,
        /// `enter` or `exit`.
        field: &'static str,
        /// What went wrong, from the CEL interpreter.
        message: String,
    },
    /// Lifetime (BG/NBD) parameters are unusable (non-positive or not finite).
    #[error("invalid lifetime parameters: {reason}")]
    InvalidLifetimeParams {
        /// What is wrong.
        reason: String,
    },
    /// The BG/NBD maximum-likelihood fit did not converge to a finite optimum.
    #[error("lifetime model fit failed: {reason}")]
    FitFailed {
        /// Why, including the optimiser's termination status.
        reason: String,
    },
    /// A stored encoding (customer state, sketch) could not be decoded.
    #[error("corrupt {what}: {reason}")]
    Decode {
        /// What was being decoded (`customer state`, `rfm sketch`, ...).
        what: &'static str,
        /// Where decoding failed.
        reason: String,
    },
}

fn join(violations: &[FieldViolation]) -> String {
    let parts: Vec<String> = violations.iter().map(ToString::to_string).collect();
    parts.join("; ")
}
