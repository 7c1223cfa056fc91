//! PLACEHOLDER — owned by the rfm/rules helper; replace entirely.
use crate::error::Result;
use serde::{Deserialize, Serialize};

/// Quintile edges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RfmEdges {
    /// Version.
    pub version: u64,
    /// Recency edges, days.
    pub recency_days: [f64; 4],
    /// Frequency edges.
    pub frequency: [f64; 4],
    /// Monetary edges.
    pub monetary: [f64; 4],
}

impl RfmEdges {
    /// Validate.
    pub fn validate(&self) -> Result<()> {
        Ok(())
    }
    /// Score.
    pub fn score(&self, values: &RfmValues) -> RfmScore {
        let _ = values;
        RfmScore { r: 1, f: 1, m: 1, segment: RfmSegment::Hibernating }
    }
}

/// Raw RFM values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RfmValues {
    /// Days since last purchase.
    pub recency_days: f64,
    /// Purchases.
    pub frequency: u64,
    /// Spend.
    pub monetary: f64,
}

/// Scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RfmScore {
    /// R.
    pub r: u8,
    /// F.
    pub f: u8,
    /// M.
    pub m: u8,
    /// Segment.
    pub segment: RfmSegment,
}

/// Segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RfmSegment {
    /// x
    Champions,
    /// x
    Hibernating,
}
impl RfmSegment {
    /// Name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Champions => "Champions",
            Self::Hibernating => "Hibernating",
        }
    }
    /// Parse.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "Champions" => Some(Self::Champions),
            "Hibernating" => Some(Self::Hibernating),
            _ => None,
        }
    }
}
