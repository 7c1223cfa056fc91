//! [`RfmSegment`]: the ten named segments of the (R, F) score grid.
//!
//! ```text
//!        F=1             F=2             F=3             F=4          F=5
//!  R=5   New             Potential loy.  Potential loy.  Champions    Champions
//!  R=4   Promising       Potential loy.  Potential loy.  Loyal        Loyal
//!  R=3   About to sleep  About to sleep  Need attention  Loyal        Loyal
//!  R=2   Hibernating     Hibernating     At risk         At risk      Can't lose them
//!  R=1   Hibernating     Hibernating     At risk         At risk      Can't lose them
//! ```

use std::fmt;

/// A customer's RFM segment, from the recency and frequency scores (DESIGN.md section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RfmSegment {
    /// R5, F4–5: bought recently and often.
    Champions,
    /// R3–4, F4–5: buy often, fairly recently.
    Loyal,
    /// R4–5, F2–3: recent customers with a few purchases.
    PotentialLoyalists,
    /// R5, F1: first purchase very recently.
    New,
    /// R4, F1: one recent purchase.
    Promising,
    /// R3, F3: average recency and frequency.
    NeedAttention,
    /// R3, F1–2: few purchases, going quiet.
    AboutToSleep,
    /// R1–2, F3–4: used to buy regularly, not lately.
    AtRisk,
    /// R1–2, F5: the most frequent buyers, not lately.
    CantLoseThem,
    /// R1–2, F1–2: few purchases, long ago.
    Hibernating,
}

impl RfmSegment {
    /// Every segment, in declaration order.
    pub const ALL: &'static [RfmSegment] = &[
        Self::Champions,
        Self::Loyal,
        Self::PotentialLoyalists,
        Self::New,
        Self::Promising,
        Self::NeedAttention,
        Self::AboutToSleep,
        Self::AtRisk,
        Self::CantLoseThem,
        Self::Hibernating,
    ];

    /// The name used in the API, exactly as in DESIGN.md ("Potential loyalists", "Can't lose
    /// them", ...).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Champions => "Champions",
            Self::Loyal => "Loyal",
            Self::PotentialLoyalists => "Potential loyalists",
            Self::New => "New",
            Self::Promising => "Promising",
            Self::NeedAttention => "Need attention",
            Self::AboutToSleep => "About to sleep",
            Self::AtRisk => "At risk",
            Self::CantLoseThem => "Can't lose them",
            Self::Hibernating => "Hibernating",
        }
    }

    /// Parses a name as produced by [`Self::name`] (exact, case-sensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|segment| segment.name() == name)
    }

    /// The segment of recency score `r` and frequency score `f`.
    ///
    /// Scores are 1–5; a score outside that range is clamped into it (0 counts as 1, 9 as 5),
    /// so every input names a segment.
    pub const fn from_scores(r: u8, f: u8) -> RfmSegment {
        let r = clamp_score(r);
        let f = clamp_score(f);
        // One arm per row of the grid in the module docs.
        match r {
            5 => match f {
                1 => Self::New,
                2 | 3 => Self::PotentialLoyalists,
                _ => Self::Champions,
            },
            4 => match f {
                1 => Self::Promising,
                2 | 3 => Self::PotentialLoyalists,
                _ => Self::Loyal,
            },
            3 => match f {
                1 | 2 => Self::AboutToSleep,
                3 => Self::NeedAttention,
                _ => Self::Loyal,
            },
            _ => match f {
                1 | 2 => Self::Hibernating,
                3 | 4 => Self::AtRisk,
                _ => Self::CantLoseThem,
            },
        }
    }
}

/// `score` clamped into 1..=5.
const fn clamp_score(score: u8) -> u8 {
    if score < 1 {
        1
    } else if score > 5 {
        5
    } else {
        score
    }
}

impl fmt::Display for RfmSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Every (R, F) pair → segment name, from `testdata/rfm/segment_map.txt`
    /// (`r=5 f=4 -> Champions`, one per line, `#` starts a comment).
    #[test]
    fn segment_map_matches_fixture() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/rfm/segment_map.txt");
        let text = std::fs::read_to_string(path).unwrap();
        let mut seen = BTreeMap::new();
        for (number, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap().trim();
            if line.is_empty() {
                continue;
            }
            let at = format!("segment_map.txt:{}: {raw}", number + 1);
            let (scores, name) = line.split_once("->").unwrap_or_else(|| panic!("{at}: no ->"));
            let (r, f) = scores.trim().split_once(' ').unwrap_or_else(|| panic!("{at}: want `r=.. f=..`"));
            let r: u8 = r.strip_prefix("r=").and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{at}"));
            let f: u8 = f.strip_prefix("f=").and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{at}"));
            let name = name.trim();
            assert!(RfmSegment::from_name(name).is_some(), "{at}: unknown segment {name:?}");
            assert_eq!(RfmSegment::from_scores(r, f).name(), name, "{at}");
            assert!(seen.insert((r, f), name.to_owned()).is_none(), "{at}: duplicate pair");
        }
        let all_pairs: Vec<(u8, u8)> = (1..=5).flat_map(|r| (1..=5).map(move |f| (r, f))).collect();
        assert_eq!(seen.keys().copied().collect::<Vec<_>>(), all_pairs, "all 25 pairs, once each");
        for segment in RfmSegment::ALL {
            assert!(seen.values().any(|name| name == segment.name()), "{segment} never reached");
        }
    }

    #[test]
    fn names_round_trip() {
        for &segment in RfmSegment::ALL {
            assert_eq!(RfmSegment::from_name(segment.name()), Some(segment));
            assert_eq!(segment.to_string(), segment.name());
        }
        assert_eq!(RfmSegment::ALL.len(), 10);
        assert_eq!(RfmSegment::from_name("champions"), None);
        assert_eq!(RfmSegment::CantLoseThem.name(), "Can't lose them");
    }

    #[test]
    fn out_of_range_scores_are_clamped() {
        assert_eq!(RfmSegment::from_scores(0, 0), RfmSegment::Hibernating);
        assert_eq!(RfmSegment::from_scores(9, 9), RfmSegment::Champions);
    }
}
