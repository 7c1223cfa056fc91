//! `pulse.v1.Event` ↔ [`EventInput`] / [`Event`].
//!
//! Wire → domain is infallible on purpose: the result is an unvalidated [`EventInput`], and
//! [`Event::validate`] reports every bad field at once, an unknown `kind` included (as
//! `kind: None`). Domain → wire writes absent categories and channels as empty strings.

use pulse_scoring::{Event, EventInput, EventKind};

use crate::convert::ProtoEnum;
use crate::v1;

impl From<v1::Event> for EventInput {
    fn from(event: v1::Event) -> Self {
        let kind = v1::EventKind::try_from(event.kind).ok().and_then(EventKind::from_proto);
        EventInput {
            customer_id: event.customer_id,
            event_id: event.event_id,
            timestamp_ms: event.timestamp_ms,
            kind,
            category: event.category,
            amount: event.amount,
            channel: event.channel,
        }
    }
}

impl From<Event> for v1::Event {
    fn from(event: Event) -> Self {
        v1::Event {
            customer_id: event.customer_id,
            event_id: event.event_id,
            timestamp_ms: event.timestamp_ms,
            kind: event.kind.to_proto_i32(),
            category: event.category.unwrap_or_default(),
            amount: event.amount,
            channel: event.channel.unwrap_or_default(),
        }
    }
}

impl From<&Event> for v1::Event {
    fn from(event: &Event) -> Self {
        Self::from(event.clone())
    }
}

impl From<EventInput> for v1::Event {
    /// `kind: None` becomes `EVENT_KIND_UNSPECIFIED`.
    fn from(input: EventInput) -> Self {
        v1::Event {
            customer_id: input.customer_id,
            event_id: input.event_id,
            timestamp_ms: input.timestamp_ms,
            kind: input.kind.map_or(v1::EventKind::Unspecified.into(), ProtoEnum::to_proto_i32),
            category: input.category,
            amount: input.amount,
            channel: input.channel,
        }
    }
}

#[cfg(test)]
mod tests {
    use pulse_scoring::{ScoringConfig, ScoringError};

    use super::*;

    fn wire() -> v1::Event {
        v1::Event {
            customer_id: "c1".into(),
            event_id: "e1".into(),
            timestamp_ms: 1_700_000_000_000,
            kind: v1::EventKind::Purchase.into(),
            category: " Beauty ".into(),
            amount: 12.5,
            channel: "web".into(),
        }
    }

    #[test]
    fn wire_to_input_keeps_every_field() {
        let input = EventInput::from(wire());
        assert_eq!(
            input,
            EventInput {
                customer_id: "c1".into(),
                event_id: "e1".into(),
                timestamp_ms: 1_700_000_000_000,
                kind: Some(EventKind::Purchase),
                category: " Beauty ".into(),
                amount: 12.5,
                channel: "web".into(),
            }
        );
        // And back: an input converts to the wire event it came from.
        assert_eq!(v1::Event::from(input), wire());
    }

    #[test]
    fn unknown_and_unspecified_kinds_are_named_by_validation() {
        for kind in [0, 6, -1] {
            let input = EventInput::from(v1::Event { kind, ..wire() });
            assert_eq!(input.kind, None);
            let err = Event::validate(input, 1_700_000_000_000, &ScoringConfig::default()).unwrap_err();
            let ScoringError::InvalidEvent { violations } = err else { panic!("unexpected {err:?}") };
            let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
            assert_eq!(fields, ["kind"]);
        }
        assert_eq!(v1::Event::from(EventInput { kind: None, ..EventInput::default() }).kind, 0);
    }

    #[test]
    fn validated_event_round_trips_through_the_wire() {
        let config = ScoringConfig::default();
        let event = Event::validate(wire().into(), 1_700_000_000_000, &config).unwrap();
        let back = v1::Event::from(&event);
        assert_eq!(back.category, "beauty");
        assert_eq!(back.kind, v1::EventKind::Purchase as i32);
        let again = Event::validate(back.into(), 1_700_000_000_000, &config).unwrap();
        assert_eq!(again, event);
        // Absent category and channel are written as empty strings.
        let bare = Event { category: None, channel: None, ..event };
        let wire = v1::Event::from(bare);
        assert_eq!((wire.category.as_str(), wire.channel.as_str()), ("", ""));
    }

    #[test]
    fn json_line_in_camel_case_parses() {
        let line = r#"{"customerId":"c1","eventId":"e1","timestampMs":"1700000000000","kind":"EVENT_KIND_PURCHASE","category":"Beauty","amount":12.5}"#;
        let event: v1::Event = serde_json::from_str(line).unwrap();
        assert_eq!(event, v1::Event { category: "Beauty".into(), channel: String::new(), ..wire() });
    }

    #[test]
    fn json_accepts_snake_case_numbers_and_enum_numbers() {
        let line =
            r#"{"customer_id":"c1","event_id":"e1","timestamp_ms":1700000000000,"kind":1,"amount":"12.5"}"#;
        let event: v1::Event = serde_json::from_str(line).unwrap();
        assert_eq!(event.timestamp_ms, 1_700_000_000_000);
        assert_eq!(event.kind, v1::EventKind::Purchase as i32);
        assert!((event.amount - 12.5).abs() < f64::EPSILON);
    }

    #[test]
    fn json_rejects_unknown_kinds_and_fields() {
        let err = serde_json::from_str::<v1::Event>(r#"{"kind":"EVENT_KIND_REFUND"}"#).unwrap_err();
        assert!(err.to_string().contains("EVENT_KIND_REFUND"), "{err}");
        let err = serde_json::from_str::<v1::Event>(r#"{"customer":"c1"}"#).unwrap_err();
        assert!(err.to_string().contains("customer"), "{err}");
    }

    #[test]
    fn json_writes_camel_case_and_enum_names() {
        let json = serde_json::to_value(wire()).unwrap();
        assert_eq!(json["customerId"], "c1");
        assert_eq!(json["timestampMs"], "1700000000000");
        assert_eq!(json["kind"], "EVENT_KIND_PURCHASE");
        let back: v1::Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, wire());
    }
}
