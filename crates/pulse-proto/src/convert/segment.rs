//! Custom segment definitions and transitions.
//!
//! `pulse.v1.SegmentDefinition` ↔ [`SegmentDefinition`] is structural both ways; checking the
//! id, name and CEL expressions is [`pulse_scoring::CompiledSegment::compile`]'s job, which
//! names the bad field itself. [`Transition`] → `pulse.v1.Transition` leaves `resume_token`
//! empty: the token is a position in a shard's changelog, known only to the storage layer, which
//! sets it with [`v1::Transition::with_resume_token`].

use pulse_scoring::{SegmentDefinition, Transition};

use crate::convert::ProtoEnum;
use crate::v1;

impl From<v1::SegmentDefinition> for SegmentDefinition {
    fn from(definition: v1::SegmentDefinition) -> Self {
        SegmentDefinition {
            id: definition.id,
            name: definition.name,
            enter: definition.enter,
            exit: definition.exit,
        }
    }
}

impl From<SegmentDefinition> for v1::SegmentDefinition {
    fn from(definition: SegmentDefinition) -> Self {
        v1::SegmentDefinition {
            id: definition.id,
            name: definition.name,
            enter: definition.enter,
            exit: definition.exit,
        }
    }
}

impl From<&SegmentDefinition> for v1::SegmentDefinition {
    fn from(definition: &SegmentDefinition) -> Self {
        Self::from(definition.clone())
    }
}

impl From<Transition> for v1::Transition {
    /// Everything but `resume_token`, which stays empty.
    fn from(transition: Transition) -> Self {
        v1::Transition {
            customer_id: transition.customer_id,
            dimension: transition.dimension.to_proto_i32(),
            from: transition.from,
            to: transition.to,
            at_ms: transition.at_ms,
            cause: transition.cause.as_str().to_owned(),
            resume_token: Vec::new(),
        }
    }
}

impl From<&Transition> for v1::Transition {
    /// Everything but `resume_token`, which stays empty.
    fn from(transition: &Transition) -> Self {
        Self::from(transition.clone())
    }
}

impl v1::Transition {
    /// The same transition carrying `resume_token`, the opaque cursor that resumes a watch
    /// right after it.
    pub fn with_resume_token(self, resume_token: impl Into<Vec<u8>>) -> Self {
        v1::Transition { resume_token: resume_token.into(), ..self }
    }
}

#[cfg(test)]
mod tests {
    use pulse_scoring::{Cause, CompiledSegment, Dimension};

    use super::*;

    #[test]
    fn definitions_round_trip_and_compile() {
        let wire = v1::SegmentDefinition {
            id: "vip".into(),
            name: "Very important".into(),
            enter: "activity_index >= 70.0".into(),
            exit: "activity_index < 60.0".into(),
        };
        let domain = SegmentDefinition::from(wire.clone());
        assert_eq!(v1::SegmentDefinition::from(&domain), wire);
        assert_eq!(CompiledSegment::compile(domain).unwrap().id(), "vip");
    }

    #[test]
    fn transitions_carry_cause_names() {
        let base = Transition {
            customer_id: "c1".into(),
            dimension: Dimension::ActivitySegment,
            from: "DAILY".into(),
            to: "WEEKLY".into(),
            at_ms: 1_700_000_000_000,
            cause: Cause::Time,
        };
        let wire = v1::Transition::from(&base).with_resume_token(vec![1, 2, 3]);
        assert_eq!(wire.dimension(), v1::Dimension::ActivitySegment);
        assert_eq!((wire.from.as_str(), wire.to.as_str(), wire.cause.as_str()), ("DAILY", "WEEKLY", "TIME"));
        assert_eq!(wire.resume_token, [1, 2, 3]);
        let by_event = v1::Transition::from(Transition { cause: Cause::Event("e-9".into()), ..base });
        assert_eq!(by_event.cause, "e-9");
        assert!(by_event.resume_token.is_empty());
        let json = serde_json::to_value(&wire).unwrap();
        assert_eq!(json["dimension"], "DIMENSION_ACTIVITY_SEGMENT");
        assert_eq!(json["resumeToken"], "AQID", "bytes are base64 in JSON");
    }
}
