//! Validation of a whole request: every event is validated and normalised; one bad event rejects
//! the request, and every bad field of every bad event is reported with its index.

use std::fmt;

use pulse_scoring::{Event, EventInput, ScoringConfig, ScoringError};

use crate::error::{IngestError, Result};

/// One bad field of one event of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventViolation {
    /// Position of the event in the request.
    pub index: usize,
    /// The field's name (`amount`); the API field path is `events[index].field`.
    pub field: String,
    /// What is wrong, for a human.
    pub description: String,
}

impl EventViolation {
    /// The field path as a `google.rpc.BadRequest` names it: `events[3].amount`.
    pub fn field_path(&self) -> String {
        format!("events[{}].{}", self.index, self.field)
    }
}

impl fmt::Display for EventViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field_path(), self.description)
    }
}

/// Validates every event of a request against the clock `now_ms`.
///
/// Returns the normalised events in request order, or every violation. An empty request is
/// valid (and does nothing).
pub fn validate_batch(inputs: Vec<EventInput>, now_ms: i64, config: &ScoringConfig) -> Result<Vec<Event>> {
    let mut events = Vec::with_capacity(inputs.len());
    let mut violations = Vec::new();
    for (index, input) in inputs.into_iter().enumerate() {
        match Event::validate(input, now_ms, config) {
            Ok(event) => events.push(event),
            Err(ScoringError::InvalidEvent { violations: bad }) => {
                violations.extend(bad.into_iter().map(|v| EventViolation {
                    index,
                    field: v.field,
                    description: v.description,
                }));
            }
            Err(other) => violations.push(EventViolation {
                index,
                field: String::new(),
                description: other.to_string(),
            }),
        }
    }
    if violations.is_empty() { Ok(events) } else { Err(IngestError::InvalidEvents { violations }) }
}

#[cfg(test)]
mod tests {
    use pulse_scoring::EventKind;

    use super::*;

    fn input(id: &str, amount: f64) -> EventInput {
        EventInput {
            customer_id: id.into(),
            timestamp_ms: 1_000,
            kind: Some(EventKind::Purchase),
            amount,
            ..EventInput::default()
        }
    }

    #[test]
    fn names_index_and_field_of_every_bad_event() {
        let config = ScoringConfig::default();
        let err =
            validate_batch(vec![input("a", 1.0), input("", -1.0), input("c", f64::NAN)], 1_000, &config)
                .unwrap_err();
        let IngestError::InvalidEvents { violations } = err else { panic!("unexpected {err:?}") };
        let paths: Vec<String> = violations.iter().map(EventViolation::field_path).collect();
        assert_eq!(paths, ["events[1].customer_id", "events[1].amount", "events[2].amount"]);
    }

    #[test]
    fn valid_batch_is_normalised_in_order() {
        let config = ScoringConfig::default();
        let events = validate_batch(vec![input("a", 1.0), input("b", 2.0)], 1_000, &config).unwrap();
        assert_eq!(events.iter().map(|e| e.customer_id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert!(events.iter().all(|e| !e.event_id.is_empty()), "ids derived");
    }
}
