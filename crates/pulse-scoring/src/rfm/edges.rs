//! [`RfmEdges`]: the cluster-wide quintile cut points and the scoring rule.

use serde::{Deserialize, Serialize};

use super::{RfmScore, RfmSegment, RfmValues};
use crate::error::{FieldViolation, Result, ScoringError};

/// Quintile cut points (the 20, 40, 60 and 80 % quantiles) of R, F and M over all customers with
/// purchases, as computed by [`crate::RfmSketch::edges`] and stored in the scoring config.
///
/// Invariant (checked by [`Self::validate`]): every edge is finite and non-negative and each
/// array is non-decreasing. Equal edges are normal: they are how heavy ties show up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RfmEdges {
    /// Version of these edges; bumped by every refresh so scores name the edges they used.
    pub version: u64,
    /// Recency edges, real days since the latest purchase.
    pub recency_days: [f64; 4],
    /// Frequency edges, purchases.
    pub frequency: [f64; 4],
    /// Monetary edges, total spend in the currency unit of event amounts.
    pub monetary: [f64; 4],
}

impl RfmEdges {
    /// Checks that every edge is finite and non-negative and that each array is
    /// non-decreasing; every bad edge is reported as `rfm_edges.<dimension>[<i>]`.
    pub fn validate(&self) -> Result<()> {
        let mut violations = Vec::new();
        for (dimension, edges) in [
            ("recency_days", &self.recency_days),
            ("frequency", &self.frequency),
            ("monetary", &self.monetary),
        ] {
            for (i, &edge) in edges.iter().enumerate() {
                let field = format!("rfm_edges.{dimension}[{i}]");
                if !(edge.is_finite() && edge >= 0.0) {
                    violations
                        .push(FieldViolation::new(field, format!("must be a finite number ≥ 0, got {edge}")));
                    continue;
                }
                if i > 0 && edges[i - 1].is_finite() && edge < edges[i - 1] {
                    violations.push(FieldViolation::new(
                        field,
                        format!("must be ≥ rfm_edges.{dimension}[{}] ({}), got {edge}", i - 1, edges[i - 1]),
                    ));
                }
            }
        }
        if violations.is_empty() { Ok(()) } else { Err(ScoringError::InvalidConfig { violations }) }
    }

    /// Scores `values` against these edges.
    ///
    /// - F and M: `1 + #{edges e : value > e}`.
    /// - R: `5 − #{edges e : recency_days > e}` (5 = most recent).
    ///
    /// Tie rule: a value equal to an edge counts as *not above* it. With heavy ties, e.g.
    /// frequency edges `[1, 1, 2, 4]`, a customer with F = 1 scores 1 (not 3) and one with F = 2
    /// scores 3; a recency exactly on an edge gets the more recent of the two scores.
    /// A NaN recency or spend (never produced by the scorer) scores lowest: R 1, M 1.
    pub fn score(&self, values: &RfmValues) -> RfmScore {
        let recency = values.recency_days;
        // NaN counts as older than every edge.
        let older_than = self.recency_days.iter().filter(|&&edge| recency.is_nan() || recency > edge).count();
        let frequency = values.frequency as f64;
        let more_frequent_than = self.frequency.iter().filter(|&&edge| frequency > edge).count();
        let monetary = values.monetary;
        let spent_more_than = self.monetary.iter().filter(|&&edge| monetary > edge).count();

        // Each count is within 0..=4, so every score is within 1..=5.
        let r = 5 - count_u8(older_than);
        let f = 1 + count_u8(more_frequent_than);
        let m = 1 + count_u8(spent_more_than);
        RfmScore { r, f, m, segment: RfmSegment::from_scores(r, f) }
    }
}

/// A count of at most four edges as `u8`.
fn count_u8(count: usize) -> u8 {
    debug_assert!(count <= 4, "at most four edges");
    u8::try_from(count.min(4)).unwrap_or(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Edges and values → expected scores, from `testdata/rfm/scores.txt`.
    ///
    /// Format, one case per line (`#` starts a comment):
    /// ```text
    /// edges r=1,7,30,90 f=1,1,2,4 m=10,25,50,100
    /// values r=0.5 f=1 m=10 -> r=5 f=1 m=1 segment=New
    /// ```
    /// An `edges` line applies to the `values` lines after it.
    #[test]
    fn scores_match_fixture() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/rfm/scores.txt");
        let text = std::fs::read_to_string(path).unwrap();
        let mut edges: Option<RfmEdges> = None;
        let mut cases = 0;
        for (number, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap().trim();
            if line.is_empty() {
                continue;
            }
            let at = format!("scores.txt:{}: {raw}", number + 1);
            if let Some(rest) = line.strip_prefix("edges ") {
                let fields = key_values(rest);
                let parsed = RfmEdges {
                    version: 1,
                    recency_days: four(&fields, "r", &at),
                    frequency: four(&fields, "f", &at),
                    monetary: four(&fields, "m", &at),
                };
                parsed.validate().unwrap_or_else(|e| panic!("{at}: {e}"));
                edges = Some(parsed);
            } else if let Some(rest) = line.strip_prefix("values ") {
                let (input, expected) = rest.split_once("->").unwrap_or_else(|| panic!("{at}: no ->"));
                let input = key_values(input);
                let expected = key_values(expected);
                let values = RfmValues {
                    recency_days: input["r"].parse().unwrap(),
                    frequency: input["f"].parse().unwrap(),
                    monetary: input["m"].parse().unwrap(),
                };
                let edges = edges.as_ref().unwrap_or_else(|| panic!("{at}: values before edges"));
                let score = edges.score(&values);
                let want = RfmScore {
                    r: expected["r"].parse().unwrap(),
                    f: expected["f"].parse().unwrap(),
                    m: expected["m"].parse().unwrap(),
                    segment: RfmSegment::from_name(&expected["segment"].replace('_', " "))
                        .unwrap_or_else(|| panic!("{at}: unknown segment")),
                };
                assert_eq!(score, want, "{at}");
                cases += 1;
            } else {
                panic!("{at}: expected `edges` or `values`");
            }
        }
        assert!(cases >= 20, "only {cases} cases in the fixture");
    }

    fn key_values(text: &str) -> std::collections::HashMap<String, String> {
        text.split_whitespace()
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or_else(|| panic!("bad pair {pair:?}"));
                (key.to_owned(), value.to_owned())
            })
            .collect()
    }

    fn four(fields: &std::collections::HashMap<String, String>, key: &str, at: &str) -> [f64; 4] {
        let parsed: Vec<f64> = fields[key].split(',').map(|v| v.parse().unwrap()).collect();
        parsed.try_into().unwrap_or_else(|_| panic!("{at}: `{key}` needs four edges"))
    }

    fn edges() -> RfmEdges {
        RfmEdges {
            version: 3,
            recency_days: [2.0, 7.0, 30.0, 90.0],
            frequency: [1.0, 1.0, 2.0, 4.0],
            monetary: [10.0, 25.0, 50.0, 100.0],
        }
    }

    #[test]
    fn valid_edges_pass() {
        edges().validate().unwrap();
        let all_equal = RfmEdges { frequency: [1.0; 4], ..edges() };
        all_equal.validate().unwrap();
    }

    #[test]
    fn every_bad_edge_is_named() {
        let bad = RfmEdges {
            recency_days: [2.0, f64::NAN, 30.0, 90.0],
            frequency: [1.0, 3.0, 2.0, 4.0],
            monetary: [-1.0, 25.0, f64::INFINITY, 10.0],
            ..edges()
        };
        let Err(ScoringError::InvalidConfig { violations }) = bad.validate() else {
            panic!("expected invalid config");
        };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "rfm_edges.recency_days[1]",
                "rfm_edges.frequency[2]",
                "rfm_edges.monetary[0]",
                "rfm_edges.monetary[2]",
            ]
        );
    }

    #[test]
    fn serde_rejects_unknown_fields() {
        let json =
            r#"{"version":1,"recency_days":[1,2,3,4],"frequency":[1,2,3,4],"monetary":[1,2,3,4],"x":1}"#;
        assert!(serde_json::from_str::<RfmEdges>(json).is_err());
        let json = r#"{"version":1,"recency_days":[1,2,3,4],"frequency":[1,2,3,4],"monetary":[1,2,3,4]}"#;
        assert_eq!(serde_json::from_str::<RfmEdges>(json).unwrap().frequency, [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn nan_scores_lowest() {
        let score = edges().score(&RfmValues { recency_days: f64::NAN, frequency: 1, monetary: f64::NAN });
        assert_eq!((score.r, score.f, score.m), (1, 1, 1));
    }
}
