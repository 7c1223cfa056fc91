//! [`ConvertError`]: why a wire value could not become a domain value.
//!
//! Every variant names the offending field with its path in the message (`kind`,
//! `rfm_edges.recency_days`, `events[3].kind`), so the gRPC layer can report it as a
//! `google.rpc.BadRequest` field violation (see [`ConvertError::violations`]).

use pulse_scoring::{FieldViolation, ScoringError};

/// Result of conversions.
pub type Result<T, E = ConvertError> = std::result::Result<T, E>;

/// A proto value that has no domain meaning.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConvertError {
    /// An enum field holds its `_UNSPECIFIED` zero value or a number the enum does not define.
    #[error("{field}: {value} is not a valid {enum_name} (unspecified or unknown value)")]
    InvalidEnumValue {
        /// Path of the field (`kind`, `dimensions[2]`).
        field: String,
        /// Full proto name of the enum (`pulse.v1.EventKind`).
        enum_name: &'static str,
        /// The number received.
        value: i32,
    },
    /// A required message field is absent.
    #[error("{field}: must be set")]
    MissingField {
        /// Path of the field (`kind_weights`).
        field: String,
    },
    /// A repeated field that must hold a fixed number of values holds another number.
    #[error("{field}: must hold exactly {expected} values, got {actual}")]
    WrongLength {
        /// Path of the field (`rfm_edges.monetary`).
        field: String,
        /// Number of values required.
        expected: usize,
        /// Number of values received.
        actual: usize,
    },
    /// The converted value failed the domain's validation (the scoring config); the domain
    /// error names every bad field.
    #[error(transparent)]
    Invalid(#[from] ScoringError),
}

impl ConvertError {
    /// An [`ConvertError::InvalidEnumValue`] of `field`.
    pub fn invalid_enum(field: impl Into<String>, enum_name: &'static str, value: i32) -> Self {
        Self::InvalidEnumValue { field: field.into(), enum_name, value }
    }

    /// A [`ConvertError::MissingField`] of `field`.
    pub fn missing(field: impl Into<String>) -> Self {
        Self::MissingField { field: field.into() }
    }

    /// The field path this error names; for [`ConvertError::Invalid`] the first violation's
    /// field, or `None` when the domain error names none.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidEnumValue { field, .. }
            | Self::MissingField { field }
            | Self::WrongLength { field, .. } => Some(field),
            Self::Invalid(ScoringError::InvalidEvent { violations })
            | Self::Invalid(ScoringError::InvalidConfig { violations }) => {
                violations.first().map(|v| v.field.as_str())
            }
            Self::Invalid(ScoringError::InvalidRule { field, .. }) => Some(field),
            Self::Invalid(_) => None,
        }
    }

    /// Prefixes the field path with the path of the enclosing field: a
    /// `MissingField { field: "purchase" }` nested under `kind_weights` becomes
    /// `kind_weights.purchase`; under `events[3]` a `kind` becomes `events[3].kind`.
    /// Domain validation errors ([`ConvertError::Invalid`]) are left as they are.
    pub fn nested_in(self, parent: &str) -> Self {
        let join = |field: String| format!("{parent}.{field}");
        match self {
            Self::InvalidEnumValue { field, enum_name, value } => {
                Self::InvalidEnumValue { field: join(field), enum_name, value }
            }
            Self::MissingField { field } => Self::MissingField { field: join(field) },
            Self::WrongLength { field, expected, actual } => {
                Self::WrongLength { field: join(field), expected, actual }
            }
            invalid @ Self::Invalid(_) => invalid,
        }
    }

    /// The error as `google.rpc.BadRequest`-style field violations: one for a conversion
    /// error, every violation for a domain validation error.
    pub fn violations(&self) -> Vec<FieldViolation> {
        match self {
            Self::InvalidEnumValue { field, enum_name, value } => vec![FieldViolation::new(
                field,
                format!("{value} is not a valid {enum_name} (unspecified or unknown value)"),
            )],
            Self::MissingField { field } => vec![FieldViolation::new(field, "must be set")],
            Self::WrongLength { field, expected, actual } => {
                vec![FieldViolation::new(field, format!("must hold exactly {expected} values, got {actual}"))]
            }
            Self::Invalid(ScoringError::InvalidEvent { violations })
            | Self::Invalid(ScoringError::InvalidConfig { violations }) => violations.clone(),
            Self::Invalid(ScoringError::InvalidRule { field, message, .. }) => {
                vec![FieldViolation::new(*field, message.clone())]
            }
            Self::Invalid(other) => vec![FieldViolation::new("", other.to_string())],
        }
    }
}
