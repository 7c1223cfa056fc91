//! [`CustomerActivity`] → `pulse.v1.CustomerActivity` (and its parts).
//!
//! Only this direction exists: activity is computed by the domain and sent to clients, never
//! received. Unknown RFM scores and lifetime predictions stay unset messages; a customer without
//! purchases has no `last_purchase_ms` (an unset `optional int64`, not 0).

use pulse_scoring::{CategoryActivity, Components, CustomerActivity, LifetimePrediction, RfmScore};

use crate::convert::ProtoEnum;
use crate::v1;

impl From<CustomerActivity> for v1::CustomerActivity {
    fn from(activity: CustomerActivity) -> Self {
        v1::CustomerActivity {
            customer_id: activity.customer_id,
            as_of_ms: activity.as_of_ms,
            activity_index: activity.activity_index,
            level: activity.level.to_proto_i32(),
            components: Some(activity.components.into()),
            trend: activity.trend,
            segment: activity.segment.to_proto_i32(),
            lifecycle: activity.lifecycle.to_proto_i32(),
            weekday_pattern: activity.weekday_pattern.to_proto_i32(),
            active_days_7: activity.active_days_7,
            active_days_30: activity.active_days_30,
            active_days_90: activity.active_days_90,
            first_seen_ms: activity.first_seen_ms,
            last_seen_ms: activity.last_seen_ms,
            last_purchase_ms: activity.last_purchase_ms,
            purchase_count: activity.purchase_count,
            total_amount: activity.total_amount,
            average_order_value: activity.average_order_value,
            rfm: activity.rfm.map(Into::into),
            lifetime: activity.lifetime.map(Into::into),
            categories: activity.categories.into_iter().map(Into::into).collect(),
            custom_segments: activity.custom_segments,
            recency_days: activity.recency_days,
        }
    }
}

impl From<&CustomerActivity> for v1::CustomerActivity {
    fn from(activity: &CustomerActivity) -> Self {
        Self::from(activity.clone())
    }
}

impl From<Components> for v1::Components {
    fn from(components: Components) -> Self {
        v1::Components {
            recency: components.recency,
            frequency: components.frequency,
            monetary: components.monetary,
            engagement: components.engagement,
        }
    }
}

impl From<RfmScore> for v1::RfmScore {
    fn from(score: RfmScore) -> Self {
        v1::RfmScore {
            r: score.r.into(),
            f: score.f.into(),
            m: score.m.into(),
            segment: score.segment.name().to_owned(),
        }
    }
}

impl From<LifetimePrediction> for v1::LifetimePrediction {
    fn from(prediction: LifetimePrediction) -> Self {
        v1::LifetimePrediction {
            p_alive: prediction.p_alive,
            expected_purchases_30d: prediction.expected_purchases,
        }
    }
}

impl From<CategoryActivity> for v1::CategoryActivity {
    fn from(category: CategoryActivity) -> Self {
        v1::CategoryActivity {
            category: category.category,
            activity_index: category.activity_index,
            affinity: category.affinity,
            trend: category.trend,
            last_seen_ms: category.last_seen_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use pulse_scoring::{ActivityLevel, ActivitySegment, Lifecycle, RfmSegment, Weekday};
    use serde_json::{Value, json};

    use super::*;

    fn activity() -> CustomerActivity {
        CustomerActivity {
            customer_id: "c1".into(),
            as_of_ms: 1_700_000_000_000,
            activity_index: 72.5,
            level: ActivityLevel::High,
            components: Components { recency: 1.0, frequency: 0.5, monetary: 0.25, engagement: 0.125 },
            trend: 0.5,
            segment: ActivitySegment::Daily,
            lifecycle: Lifecycle::Returning,
            weekday_pattern: Weekday::None,
            active_days_7: 5,
            active_days_30: 12,
            active_days_90: 20,
            first_seen_ms: 1_690_000_000_000,
            last_seen_ms: 1_699_999_000_000,
            last_purchase_ms: Some(1_699_000_000_000),
            purchase_count: 3,
            total_amount: 30.0,
            average_order_value: 10.0,
            recency_days: 0.25,
            rfm: Some(RfmScore { r: 5, f: 4, m: 3, segment: RfmSegment::Champions }),
            lifetime: Some(LifetimePrediction { p_alive: 0.9, expected_purchases: 1.5 }),
            categories: vec![CategoryActivity {
                category: "beauty".into(),
                activity_index: 60.0,
                affinity: 1.0,
                trend: 0.0,
                last_seen_ms: 1_699_000_000_000,
            }],
            custom_segments: vec!["vip".into()],
        }
    }

    #[test]
    fn every_field_is_carried() {
        let wire = v1::CustomerActivity::from(&activity());
        assert_eq!(wire.customer_id, "c1");
        assert_eq!(wire.level(), v1::ActivityLevel::High);
        assert_eq!(wire.segment(), v1::ActivitySegment::Daily);
        assert_eq!(wire.lifecycle(), v1::Lifecycle::Returning);
        assert_eq!(wire.weekday_pattern(), v1::Weekday::None);
        assert_eq!(
            wire.components,
            Some(v1::Components { recency: 1.0, frequency: 0.5, monetary: 0.25, engagement: 0.125 })
        );
        assert_eq!((wire.active_days_7, wire.active_days_30, wire.active_days_90), (5, 12, 20));
        assert_eq!(wire.last_purchase_ms, Some(1_699_000_000_000));
        assert_eq!(wire.purchase_count, 3);
        assert_eq!(wire.recency_days, 0.25);
        assert_eq!(wire.rfm, Some(v1::RfmScore { r: 5, f: 4, m: 3, segment: "Champions".into() }));
        assert_eq!(wire.lifetime, Some(v1::LifetimePrediction { p_alive: 0.9, expected_purchases_30d: 1.5 }));
        assert_eq!(wire.categories.len(), 1);
        assert_eq!(wire.categories[0].category, "beauty");
        assert_eq!(wire.custom_segments, ["vip"]);
        assert_eq!(wire, v1::CustomerActivity::from(activity()));
    }

    #[test]
    fn json_uses_enum_names_and_camel_case() {
        let json = serde_json::to_value(v1::CustomerActivity::from(activity())).unwrap();
        assert_eq!(json["customerId"], "c1");
        assert_eq!(json["level"], "ACTIVITY_LEVEL_HIGH");
        assert_eq!(json["segment"], "ACTIVITY_SEGMENT_DAILY");
        assert_eq!(json["lifecycle"], "LIFECYCLE_RETURNING");
        assert_eq!(json["weekdayPattern"], "WEEKDAY_NONE");
        assert_eq!(json["activeDays7"], 5);
        assert_eq!(json["purchaseCount"], "3");
        assert_eq!(json["lastPurchaseMs"], "1699000000000");
        assert_eq!(json["rfm"], json!({"r": 5, "f": 4, "m": 3, "segment": "Champions"}));
        assert_eq!(json["lifetime"], json!({"pAlive": 0.9, "expectedPurchases30d": 1.5}));
        assert_eq!(json["categories"][0]["lastSeenMs"], "1699000000000");
        assert_eq!(json["customSegments"], json!(["vip"]));
        let back: v1::CustomerActivity = serde_json::from_value(json).unwrap();
        assert_eq!(back, v1::CustomerActivity::from(activity()));
    }

    #[test]
    fn unknowns_stay_absent_and_defaults_are_printed() {
        let bare = CustomerActivity {
            last_purchase_ms: None,
            purchase_count: 0,
            rfm: None,
            lifetime: None,
            trend: 0.0,
            ..activity()
        };
        let json = serde_json::to_value(v1::CustomerActivity::from(bare)).unwrap();
        let object = json.as_object().unwrap();
        for absent in ["lastPurchaseMs", "rfm", "lifetime"] {
            assert!(!object.contains_key(absent), "{absent} must be absent: {json}");
        }
        // Scalars at their default are still printed, so every line has the same keys.
        assert_eq!(json["trend"], Value::from(0.0));
        assert_eq!(json["purchaseCount"], "0");
    }
}
