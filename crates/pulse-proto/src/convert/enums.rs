//! Enum pairs: every domain enum of `pulse-scoring` and its `pulse.v1` counterpart.
//!
//! The proto enums have one extra value, `_UNSPECIFIED` = 0, and on the wire an enum field is a
//! plain `i32` that may hold any number. Domain → proto is [`From`]; proto → domain is
//! [`TryFrom`] (the error names the field the enum usually lives in) or
//! [`ProtoEnum::from_proto_i32`] with the caller's field path. Both mapping directions are
//! exhaustive `match`es, so adding a value on either side without mapping it does not compile.

use pulse_scoring::{ActivityLevel, ActivitySegment, Dimension, EventKind, Lifecycle, Weekday};

use crate::error::{ConvertError, Result};
use crate::v1;

/// A domain enum with a `pulse.v1` counterpart whose zero value is `_UNSPECIFIED`.
pub trait ProtoEnum: Copy + Sized {
    /// The generated proto enum.
    type Proto: Copy + Into<i32> + TryFrom<i32>;

    /// Full proto name of the enum, for error messages (`pulse.v1.EventKind`).
    const PROTO_NAME: &'static str;

    /// Field path named by the [`TryFrom`] conversion, the name the enum has in messages
    /// (`kind` for `EventKind`).
    const DEFAULT_FIELD: &'static str;

    /// The proto value of `self`.
    fn to_proto(self) -> Self::Proto;

    /// The domain value of `proto`; `None` for `_UNSPECIFIED`.
    fn from_proto(proto: Self::Proto) -> Option<Self>;

    /// The wire number of `self`, as stored in a message's enum field.
    fn to_proto_i32(self) -> i32 {
        self.to_proto().into()
    }

    /// Converts the wire number of an enum field; `_UNSPECIFIED` and numbers the enum does not
    /// define are a [`ConvertError::InvalidEnumValue`] naming `field`.
    fn from_proto_i32(value: i32, field: &str) -> Result<Self> {
        Self::Proto::try_from(value)
            .ok()
            .and_then(Self::from_proto)
            .ok_or_else(|| ConvertError::invalid_enum(field, Self::PROTO_NAME, value))
    }
}

/// Implements [`ProtoEnum`], `From<domain> for proto` and `TryFrom<proto> for domain` for one
/// pair, mapping the listed variants one to one.
macro_rules! proto_enum {
    (
        $domain:ident => $proto:ty, $proto_name:literal, field $field:literal {
            $($variant:ident => $proto_variant:ident),+ $(,)?
        }
    ) => {
        impl ProtoEnum for $domain {
            type Proto = $proto;
            const PROTO_NAME: &'static str = $proto_name;
            const DEFAULT_FIELD: &'static str = $field;

            fn to_proto(self) -> $proto {
                match self {
                    $($domain::$variant => <$proto>::$proto_variant,)+
                }
            }

            fn from_proto(proto: $proto) -> Option<Self> {
                match proto {
                    <$proto>::Unspecified => None,
                    $(<$proto>::$proto_variant => Some($domain::$variant),)+
                }
            }
        }

        impl From<$domain> for $proto {
            fn from(value: $domain) -> Self {
                value.to_proto()
            }
        }

        impl TryFrom<$proto> for $domain {
            type Error = ConvertError;

            fn try_from(proto: $proto) -> Result<Self> {
                <$domain>::from_proto(proto).ok_or_else(|| {
                    ConvertError::invalid_enum($field, $proto_name, proto.into())
                })
            }
        }
    };
}

proto_enum!(EventKind => v1::EventKind, "pulse.v1.EventKind", field "kind" {
    Purchase => Purchase,
    Visit => Visit,
    Interaction => Interaction,
    Payment => Payment,
    Support => Support,
});

proto_enum!(ActivityLevel => v1::ActivityLevel, "pulse.v1.ActivityLevel", field "level" {
    High => High,
    Medium => Medium,
    Low => Low,
    Inactive => Inactive,
});

proto_enum!(ActivitySegment => v1::ActivitySegment, "pulse.v1.ActivitySegment", field "segment" {
    Daily => Daily,
    Weekly => Weekly,
    Monthly => Monthly,
    Dormant => Dormant,
    Churned => Churned,
});

proto_enum!(Lifecycle => v1::Lifecycle, "pulse.v1.Lifecycle", field "lifecycle" {
    New => New,
    Returning => Returning,
    Resurrecting => Resurrecting,
    Dormant => Dormant,
});

proto_enum!(Weekday => v1::Weekday, "pulse.v1.Weekday", field "weekday_pattern" {
    None => None,
    Monday => Monday,
    Tuesday => Tuesday,
    Wednesday => Wednesday,
    Thursday => Thursday,
    Friday => Friday,
    Saturday => Saturday,
    Sunday => Sunday,
});

proto_enum!(Dimension => v1::Dimension, "pulse.v1.Dimension", field "dimension" {
    ActivitySegment => ActivitySegment,
    Lifecycle => Lifecycle,
    Level => Level,
    RfmSegment => RfmSegment,
    Custom => Custom,
});

#[cfg(test)]
mod tests {
    use std::fmt::Debug;

    use super::*;

    /// Every domain value survives domain → proto → domain, the proto value's name is
    /// `PREFIX_` + the domain short name, and the zero value is rejected naming the field.
    fn check_pair<D>(values: &[D], short_name: impl Fn(D) -> &'static str, prefix: &str)
    where
        D: ProtoEnum + PartialEq + Debug,
        D::Proto: ProtoName,
    {
        for &value in values {
            let proto = value.to_proto();
            assert_eq!(D::from_proto(proto), Some(value));
            assert_eq!(D::from_proto_i32(value.to_proto_i32(), "f").unwrap(), value);
            assert_eq!(proto.proto_name(), format!("{prefix}_{}", short_name(value)));
            assert_ne!(value.to_proto_i32(), 0, "{value:?} must not map to UNSPECIFIED");
        }
        let err = D::from_proto_i32(0, "outer.field").unwrap_err();
        assert_eq!(err.field(), Some("outer.field"));
        assert!(err.to_string().contains(D::PROTO_NAME), "{err}");
        let err = D::from_proto_i32(999, "x").unwrap_err();
        assert_eq!(err, ConvertError::invalid_enum("x", D::PROTO_NAME, 999));
    }

    /// `as_str_name` of the generated enums, behind a trait so `check_pair` can be generic.
    trait ProtoName {
        fn proto_name(self) -> &'static str;
    }

    macro_rules! proto_name {
        ($($ty:ty),+) => {
            $(impl ProtoName for $ty {
                fn proto_name(self) -> &'static str {
                    self.as_str_name()
                }
            })+
        };
    }

    proto_name!(
        v1::EventKind,
        v1::ActivityLevel,
        v1::ActivitySegment,
        v1::Lifecycle,
        v1::Weekday,
        v1::Dimension
    );

    #[test]
    fn every_pair_round_trips_with_matching_names() {
        check_pair(&EventKind::ALL, EventKind::name, "EVENT_KIND");
        check_pair(ActivityLevel::ALL, ActivityLevel::name, "ACTIVITY_LEVEL");
        check_pair(ActivitySegment::ALL, ActivitySegment::name, "ACTIVITY_SEGMENT");
        check_pair(Lifecycle::ALL, Lifecycle::name, "LIFECYCLE");
        check_pair(Weekday::ALL, Weekday::name, "WEEKDAY");
        check_pair(Dimension::ALL, Dimension::name, "DIMENSION");
    }

    #[test]
    fn event_kinds_are_numbered_in_domain_order() {
        for (i, kind) in EventKind::ALL.into_iter().enumerate() {
            assert_eq!(kind.to_proto_i32(), i32::try_from(i).unwrap() + 1);
        }
    }

    #[test]
    fn weekday_none_is_not_unspecified() {
        assert_eq!(Weekday::None.to_proto(), v1::Weekday::None);
        assert_eq!(v1::Weekday::None as i32, 1);
        assert_eq!(Weekday::try_from(v1::Weekday::None).unwrap(), Weekday::None);
        let err = Weekday::try_from(v1::Weekday::Unspecified).unwrap_err();
        assert_eq!(err.field(), Some("weekday_pattern"));
    }

    #[test]
    fn try_from_names_the_default_field() {
        let err = EventKind::try_from(v1::EventKind::Unspecified).unwrap_err();
        assert_eq!(
            err.to_string(),
            "kind: 0 is not a valid pulse.v1.EventKind (unspecified or unknown value)"
        );
        let err = EventKind::try_from(v1::EventKind::Unspecified).unwrap_err().nested_in("events[3]");
        assert_eq!(err.field(), Some("events[3].kind"));
        let err = Dimension::from_proto_i32(7, "dimensions[1]").unwrap_err();
        assert_eq!(err.field(), Some("dimensions[1]"));
    }
}
