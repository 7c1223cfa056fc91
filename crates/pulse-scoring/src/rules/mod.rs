//! Custom segments: CEL `enter` / `exit` rules over a customer's scored activity, with
//! hysteresis (DESIGN.md section 3, "Custom segments").
//!
//! ```text
//!  SegmentDefinition ──compile (once, at definition time)──► CompiledSegment ─┐
//!    invalid CEL / unknown variable → ScoringError::InvalidRule                ├─► RuleSet
//!                                                                              │
//!  CustomerActivity ──► CEL context (built once per customer) ──► every rule ──┴─► member ids
//! ```
//!
//! - [`SegmentDefinition`]: `{id, name, enter, exit}` as the API defines it.
//! - [`CompiledSegment`]: the definition with its programs compiled by the `cel` crate;
//!   [`CompiledSegment::evaluate`] applies the hysteresis for one customer.
//! - [`RuleSet`]: all segments sorted by id; [`RuleSet::evaluate_all`] returns the customer's
//!   memberships after an update.
//!
//! ## Hysteresis
//!
//! A non-member enters when `enter` holds. A member stays until `exit` holds; a blank `exit`
//! means `!(enter)`. With `enter: activity_index >= 70`, `exit: activity_index < 60`, a
//! customer at 50 → 75 → 65 → 55 → 65 is out, in, in, out, out.
//!
//! ## Errors while evaluating
//!
//! A rule that fails for a customer — reading a missing map key, comparing `null` with `<`,
//! calling an unknown function, producing a non-bool — yields
//! [`crate::ScoringError::RuleEvaluation`] from [`CompiledSegment::evaluate`]. It never panics.
//! Callers keep the current membership (that is what [`CompiledSegment::next_membership`] and
//! [`RuleSet::evaluate_all`] do) and count or log the error
//! ([`RuleSet::evaluate_all_with_errors`] reports them). CEL's `&&` and `||` absorb errors
//! (`false && error` is `false`), so guard optional data: `has_lifetime && p_alive < 0.3`,
//! `'beauty' in categories && categories['beauty'].affinity > 0.3`.
//!
//! ## Variables
//!
//! Every rule sees these variables ([`RULE_VARIABLES`]); any other identifier is rejected at
//! compile time (identifiers bound by macros such as `categories.exists(c, ...)` and type names
//! such as `double` are fine).
//!
//! | variable             | CEL type            | value                                                        |
//! |----------------------|---------------------|--------------------------------------------------------------|
//! | `activity_index`     | double              | activity index, 0–100                                        |
//! | `level`              | string              | `HIGH`, `MEDIUM`, `LOW`, `INACTIVE`                          |
//! | `trend`              | double              | short- vs long-term activity rate − 1 (0 = steady)           |
//! | `segment`            | string              | `DAILY`, `WEEKLY`, `MONTHLY`, `DORMANT`, `CHURNED`           |
//! | `lifecycle`          | string              | `NEW`, `RETURNING`, `RESURRECTING`, `DORMANT`                |
//! | `weekday_pattern`    | string              | `MONDAY` … `SUNDAY`, or `NONE`                               |
//! | `l7`, `l30`, `l90`   | int                 | active days in the last 7 / 30 / 90 days                     |
//! | `recency_days`       | double              | real days since the latest event                             |
//! | `purchases`          | int                 | number of purchases (not decayed)                            |
//! | `revenue`            | double              | total purchase amount (not decayed)                          |
//! | `aov`                | double              | average order value; 0 without purchases                     |
//! | `has_lifetime`       | bool                | whether a BG/NBD prediction exists                           |
//! | `p_alive`            | double or **null**  | P(alive); `null` without a prediction                        |
//! | `expected_purchases` | double or **null**  | expected purchases in the horizon; `null` without one        |
//! | `has_rfm`            | bool                | whether the customer has an RFM score                        |
//! | `rfm_segment`        | string              | RFM segment name (`Champions`, `At risk`, …); `""` without   |
//! | `rfm_r`, `rfm_f`, `rfm_m` | int            | RFM scores 1–5; 0 without an RFM score                       |
//! | `first_seen_ms`      | int                 | earliest event, Unix ms                                      |
//! | `last_seen_ms`       | int                 | latest event, Unix ms                                        |
//! | `as_of_ms`           | int                 | the instant the activity describes, Unix ms                  |
//! | `categories`         | map(string, map)    | category → `{index: double, affinity: double, trend: double, last_seen_ms: int}` |
//!
//! `categories` is a map, and CEL maps have no iteration order (this one differs between
//! processes): results must not depend on it, or raft replicas could disagree on memberships.
//! `exists`, `all`, `exists_one`, `in`, `size` and key lookups are order-independent; do not
//! index into a list built with `map` / `filter` over `categories`.
//!
//! `p_alive` and `expected_purchases` are `null`, not a made-up number, when there is no
//! lifetime prediction (no purchases or no fitted model): `p_alive < 0.3` then fails to
//! evaluate (the membership is kept) instead of silently treating the customer as alive or
//! dead. Test `has_lifetime` first.

mod compiled;
mod context;
mod definition;
mod rule_set;

pub use compiled::CompiledSegment;
pub use context::RULE_VARIABLES;
pub use definition::{
    MAX_RULE_EXPRESSION_BYTES, MAX_SEGMENT_ID_BYTES, MAX_SEGMENT_NAME_BYTES, SegmentDefinition,
};
pub use rule_set::RuleSet;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::{CategoryActivity, Components, CustomerActivity};
    use crate::error::ScoringError;
    use crate::lifetime::LifetimePrediction;
    use crate::rfm::{RfmScore, RfmSegment};
    use crate::segment::{ActivityLevel, ActivitySegment, Lifecycle, Weekday};

    /// A fully specified activity (the struct has no `Default`) at `activity_index`.
    fn activity(activity_index: f64) -> CustomerActivity {
        CustomerActivity {
            customer_id: "c-1".to_owned(),
            as_of_ms: 1_700_000_000_000,
            activity_index,
            level: ActivityLevel::Medium,
            components: Components { recency: 0.8, frequency: 0.5, monetary: 0.4, engagement: 0.2 },
            trend: 0.25,
            segment: ActivitySegment::Weekly,
            lifecycle: Lifecycle::Returning,
            weekday_pattern: Weekday::Tuesday,
            active_days_7: 2,
            active_days_30: 9,
            active_days_90: 20,
            first_seen_ms: 1_690_000_000_000,
            last_seen_ms: 1_699_990_000_000,
            last_purchase_ms: Some(1_699_900_000_000),
            purchase_count: 6,
            total_amount: 420.0,
            average_order_value: 70.0,
            recency_days: 0.12,
            rfm: Some(RfmScore { r: 4, f: 3, m: 5, segment: RfmSegment::PotentialLoyalists }),
            lifetime: Some(LifetimePrediction { p_alive: 0.9, expected_purchases: 1.5 }),
            categories: vec![
                CategoryActivity {
                    category: "beauty".to_owned(),
                    activity_index: 55.0,
                    affinity: 0.6,
                    trend: 0.1,
                    last_seen_ms: 1_699_990_000_000,
                },
                CategoryActivity {
                    category: "books".to_owned(),
                    activity_index: 20.0,
                    affinity: 0.4,
                    trend: -0.5,
                    last_seen_ms: 1_699_000_000_000,
                },
            ],
            custom_segments: Vec::new(),
        }
    }

    fn segment(id: &str, enter: &str, exit: &str) -> CompiledSegment {
        CompiledSegment::compile(SegmentDefinition {
            id: id.to_owned(),
            name: id.to_uppercase(),
            enter: enter.to_owned(),
            exit: exit.to_owned(),
        })
        .unwrap_or_else(|e| panic!("{id}: {e}"))
    }

    fn compile_error(enter: &str, exit: &str) -> (&'static str, String) {
        let definition = SegmentDefinition {
            id: "bad".to_owned(),
            name: String::new(),
            enter: enter.to_owned(),
            exit: exit.to_owned(),
        };
        match CompiledSegment::compile(definition) {
            Err(ScoringError::InvalidRule { segment_id, field, message }) => {
                assert_eq!(segment_id, "bad");
                (field, message)
            }
            other => panic!("expected InvalidRule, got {other:?}"),
        }
    }

    #[test]
    fn hysteresis_enters_stays_and_leaves() {
        let vip = segment("vip", "activity_index >= 70", "activity_index < 60");
        let mut member = false;
        let mut history = Vec::new();
        for index in [50.0, 75.0, 65.0, 55.0, 65.0] {
            member = vip.evaluate(&activity(index), member).unwrap();
            history.push(member);
        }
        assert_eq!(history, [false, true, true, false, false]);
    }

    #[test]
    fn default_exit_is_not_enter() {
        let vip = segment("vip", "activity_index >= 70", "");
        assert!(vip.evaluate(&activity(75.0), false).unwrap());
        assert!(vip.evaluate(&activity(75.0), true).unwrap());
        assert!(!vip.evaluate(&activity(65.0), true).unwrap(), "leaves as soon as enter fails");
        assert!(!vip.evaluate(&activity(65.0), false).unwrap());
    }

    #[test]
    fn invalid_rule_reports_the_parser_message() {
        let (field, message) = compile_error("activity_index >= ", "");
        assert_eq!(field, "enter");
        assert!(!message.is_empty());
        // The message is the parser's own text, unchanged.
        let parser_message = cel::Env::stdlib().compile("activity_index >= ").unwrap_err().to_string();
        assert_eq!(message, parser_message);
        assert!(message.contains("<input>:1:"), "{message}");

        let (field, message) = compile_error("level == 'HIGH'", "(((");
        assert_eq!(field, "exit");
        assert!(!message.is_empty());
    }

    #[test]
    fn unknown_variables_are_rejected_at_compile_time() {
        let (field, message) = compile_error("activty_index > 10", "");
        assert_eq!(field, "enter");
        assert!(
            message.starts_with("unknown variable `activty_index`; known: activity_index, aov"),
            "{message}"
        );
        let (field, _) = compile_error("true", "categories.exists(c, c == missing)");
        assert_eq!(field, "exit");
        // Macro-bound variables are fine.
        segment("any", "categories.exists(c, categories[c].trend < 0.0)", "");
    }

    #[test]
    fn categories_map_access() {
        let beauty = segment("beauty", "'beauty' in categories && categories['beauty'].affinity > 0.3", "");
        assert!(beauty.evaluate(&activity(10.0), false).unwrap());
        let mut without = activity(10.0);
        without.categories.retain(|c| c.category != "beauty");
        assert!(!beauty.evaluate(&without, false).unwrap(), "guarded: a missing key is just false");
        let fields = segment(
            "fields",
            "categories.books.index == 20.0 && categories.books.trend < 0.0 && \
             categories.books.last_seen_ms == 1699000000000 && size(categories) == 2",
            "",
        );
        assert!(fields.evaluate(&activity(10.0), false).unwrap());
    }

    #[test]
    fn string_comparisons() {
        let weekly = segment("weekly", "segment == 'WEEKLY' && lifecycle != 'NEW'", "");
        assert!(weekly.evaluate(&activity(10.0), false).unwrap());
        let mut daily = activity(10.0);
        daily.segment = ActivitySegment::Daily;
        assert!(!weekly.evaluate(&daily, false).unwrap());
        let named = segment(
            "named",
            "level == 'MEDIUM' && weekday_pattern == 'TUESDAY' && rfm_segment == 'Potential loyalists' \
             && rfm_segment.startsWith('Potential') && segment in ['WEEKLY', 'DAILY']",
            "",
        );
        assert!(named.evaluate(&activity(10.0), false).unwrap());
    }

    #[test]
    fn every_variable_has_its_documented_type() {
        let types = segment(
            "types",
            "type(activity_index) == double && type(level) == string && type(trend) == double \
             && type(segment) == string && type(lifecycle) == string && type(weekday_pattern) == string \
             && type(l7) == int && type(l30) == int && type(l90) == int && type(recency_days) == double \
             && type(purchases) == int && type(revenue) == double && type(aov) == double \
             && type(has_lifetime) == bool && type(p_alive) == double && type(expected_purchases) == double \
             && type(has_rfm) == bool && type(rfm_segment) == string && type(rfm_r) == int \
             && type(rfm_f) == int && type(rfm_m) == int && type(first_seen_ms) == int \
             && type(last_seen_ms) == int && type(as_of_ms) == int && type(categories) == map",
            "",
        );
        assert!(types.evaluate(&activity(10.0), false).unwrap());
        assert_eq!(RULE_VARIABLES.len(), 25, "the rule above reads every variable");
        let values = segment(
            "values",
            "l7 == 2 && l30 == 9 && l90 == 20 && purchases == 6 && revenue == 420.0 && aov == 70.0 \
             && p_alive == 0.9 && expected_purchases == 1.5 && rfm_r == 4 && rfm_f == 3 && rfm_m == 5 \
             && first_seen_ms == 1690000000000 && last_seen_ms == 1699990000000 && trend == 0.25 \
             && as_of_ms - first_seen_ms == 10000000000 && recency_days == 0.12",
            "",
        );
        assert!(values.evaluate(&activity(10.0), false).unwrap());
    }

    #[test]
    fn missing_lifetime_and_rfm() {
        let mut bare = activity(10.0);
        bare.lifetime = None;
        bare.rfm = None;
        let guarded = segment(
            "g",
            "!has_lifetime && p_alive == null && !has_rfm && rfm_segment == '' && rfm_r == 0",
            "",
        );
        assert!(guarded.evaluate(&bare, false).unwrap());
        let churn = segment("churn", "has_lifetime && p_alive < 0.3", "");
        assert!(!churn.evaluate(&bare, false).unwrap());

        // Unguarded comparison with null: an error, and the membership is kept.
        let unguarded = segment("risky", "p_alive < 0.3", "");
        let Err(ScoringError::RuleEvaluation { segment_id, field, message }) =
            unguarded.evaluate(&bare, false)
        else {
            panic!("comparing null must fail");
        };
        assert_eq!((segment_id.as_str(), field), ("risky", "enter"));
        assert!(!message.is_empty());
        assert!(unguarded.next_membership(&bare, true));
        assert!(!unguarded.next_membership(&bare, false));
    }

    #[test]
    fn non_boolean_result_is_an_error() {
        let index = segment("index", "activity_index", "");
        let result = index.evaluate(&activity(10.0), false);
        let Err(ScoringError::RuleEvaluation { field, message, .. }) = result else {
            panic!("expected RuleEvaluation, got {result:?}");
        };
        assert_eq!(field, "enter");
        assert!(message.contains("expected a bool"), "{message}");
        let exit = segment("exit", "true", "'yes'");
        assert!(exit.evaluate(&activity(10.0), true).is_err());
        assert!(exit.next_membership(&activity(10.0), true), "error keeps the member in");
    }

    #[test]
    fn evaluation_errors_do_not_panic() {
        for (i, enter) in [
            "categories['garden'].affinity > 0.1",
            "purchases / 0 > 1",
            "no_such_function(l7)",
            "l7 + 9223372036854775807 > 0",
            "level > 1",
            "rfm_segment.matches('(') ",
            "[1, 2][5] == 1",
        ]
        .into_iter()
        .enumerate()
        {
            let rule = segment(&format!("e{i}"), enter, "");
            assert!(
                matches!(rule.evaluate(&activity(10.0), false), Err(ScoringError::RuleEvaluation { .. })),
                "{enter}"
            );
        }
    }

    #[test]
    fn rule_set_evaluates_all_with_hysteresis() {
        let rules = RuleSet::new(vec![
            segment("vip", "activity_index >= 70", "activity_index < 60"),
            segment("beauty", "'beauty' in categories && categories['beauty'].affinity > 0.3", ""),
            segment("broken", "categories['garden'].index > 1", ""),
            segment("daily", "segment == 'DAILY'", ""),
        ])
        .unwrap();
        assert_eq!(
            rules.iter().map(CompiledSegment::id).collect::<Vec<_>>(),
            ["beauty", "broken", "daily", "vip"]
        );
        assert_eq!(rules.get("vip").map(CompiledSegment::name), Some("VIP"));

        let current: Vec<String> = vec!["vip".into(), "broken".into(), "deleted".into()];
        let (members, errors) = rules.evaluate_all_with_errors(&activity(65.0), &current);
        // vip: member at 65 stays; broken: error keeps membership; deleted: dropped.
        assert_eq!(members, ["beauty", "broken", "vip"]);
        assert_eq!(errors.len(), 1);
        assert!(
            matches!(&errors[0], ScoringError::RuleEvaluation { segment_id, .. } if segment_id == "broken")
        );
        assert_eq!(rules.evaluate_all(&activity(65.0), &[]), ["beauty"]);
        assert_eq!(rules.evaluate_all(&activity(55.0), &["vip".to_owned()]), ["beauty"]);
        assert!(RuleSet::default().evaluate_all(&activity(90.0), &current).is_empty());
    }

    #[test]
    fn rule_set_rejects_duplicate_ids() {
        let result = RuleSet::new(vec![segment("a", "true", ""), segment("a", "false", "")]);
        assert!(matches!(result, Err(ScoringError::InvalidRule { field: "id", .. })));
        let definitions = [SegmentDefinition {
            id: "ok".to_owned(),
            name: String::new(),
            enter: "l7 >= 5".to_owned(),
            exit: String::new(),
        }];
        assert_eq!(RuleSet::compile(&definitions).unwrap().len(), 1);
    }

    #[test]
    fn compiled_rules_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<CompiledSegment>();
        assert_send_sync::<RuleSet>();
    }
}
