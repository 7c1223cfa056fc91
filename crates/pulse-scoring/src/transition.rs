//! Memberships and transitions: where a customer stands in every dimension, and the record of
//! each move between segments.
//!
//! The stored [`Memberships`] are the customer's last evaluated classification. After every
//! update (an event, or a clock tick) the caller scores the customer and calls
//! [`Memberships::update`], which changes the memberships and returns one [`Transition`] per
//! dimension whose segment changed. A customer seen for the first time enters from `""`.

use std::collections::BTreeSet;
use std::fmt;

use crate::activity::CustomerActivity;
use crate::segment::Dimension;

/// The segment a customer is in along one dimension, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Segment short name (`DAILY`, `Champions`, a custom segment id).
    pub segment: String,
    /// When the customer entered it, Unix ms.
    pub since_ms: i64,
}

/// Current memberships of one customer in every dimension.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Memberships {
    /// Activity segment; `None` before the first evaluation.
    pub activity_segment: Option<Membership>,
    /// Lifecycle stage.
    pub lifecycle: Option<Membership>,
    /// Activity level.
    pub level: Option<Membership>,
    /// RFM segment; `None` without purchases or without edges.
    pub rfm_segment: Option<Membership>,
    /// Custom segments the customer is in, sorted by id.
    pub custom: Vec<Membership>,
}

/// Why a transition happened.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Cause {
    /// An event arrived; its id.
    Event(String),
    /// Time passed (a clock tick re-evaluated the customer).
    Time,
    /// The scoring configuration or a segment definition changed.
    Config,
}

impl Cause {
    /// The API spelling: the event id, `TIME` or `CONFIG`.
    pub fn as_str(&self) -> &str {
        match self {
            Cause::Event(id) => id,
            Cause::Time => "TIME",
            Cause::Config => "CONFIG",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One move of one customer between segments of one dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The customer.
    pub customer_id: String,
    /// Which classification changed.
    pub dimension: Dimension,
    /// Segment left; `""` when the customer had none (first classification, custom segment entered).
    pub from: String,
    /// Segment entered; `""` when the customer has none now (custom segment left, RFM lost).
    pub to: String,
    /// When, Unix ms.
    pub at_ms: i64,
    /// What caused it.
    pub cause: Cause,
}

impl Memberships {
    /// The segment of `dimension` (for custom: all ids).
    pub fn segments(&self, dimension: Dimension) -> Vec<&Membership> {
        match dimension {
            Dimension::ActivitySegment => self.activity_segment.iter().collect(),
            Dimension::Lifecycle => self.lifecycle.iter().collect(),
            Dimension::Level => self.level.iter().collect(),
            Dimension::RfmSegment => self.rfm_segment.iter().collect(),
            Dimension::Custom => self.custom.iter().collect(),
        }
    }

    /// Ids of the custom segments the customer is in, sorted.
    pub fn custom_ids(&self) -> Vec<String> {
        self.custom.iter().map(|m| m.segment.clone()).collect()
    }

    /// Moves the memberships to what `activity` says (its `custom_segments` included) and
    /// returns the transitions, in dimension order then segment id order.
    pub fn update(&mut self, activity: &CustomerActivity, cause: &Cause) -> Vec<Transition> {
        let at_ms = activity.as_of_ms;
        let mut out = Vec::new();
        let mut single = |dimension: Dimension, slot: &mut Option<Membership>, now: Option<&str>| {
            let before = slot.as_ref().map(|m| m.segment.as_str());
            if before == now {
                return;
            }
            out.push(Transition {
                customer_id: activity.customer_id.clone(),
                dimension,
                from: before.unwrap_or("").to_owned(),
                to: now.unwrap_or("").to_owned(),
                at_ms,
                cause: cause.clone(),
            });
            *slot = now.map(|segment| Membership { segment: segment.to_owned(), since_ms: at_ms });
        };
        single(Dimension::ActivitySegment, &mut self.activity_segment, Some(activity.segment.name()));
        single(Dimension::Lifecycle, &mut self.lifecycle, Some(activity.lifecycle.name()));
        single(Dimension::Level, &mut self.level, Some(activity.level.name()));
        single(Dimension::RfmSegment, &mut self.rfm_segment, activity.rfm.map(|r| r.segment.name()));

        // Custom segments: leave those no longer wanted, enter the new ones, keep `since_ms`
        // of the rest. Few segments per customer, so linear lookups are cheapest.
        let wanted: BTreeSet<&str> = activity.custom_segments.iter().map(String::as_str).collect();
        for membership in &self.custom {
            if !wanted.contains(membership.segment.as_str()) {
                out.push(transition(
                    activity,
                    Dimension::Custom,
                    membership.segment.clone(),
                    String::new(),
                    cause,
                ));
            }
        }
        let mut next = Vec::with_capacity(wanted.len());
        for id in wanted {
            match self.custom.iter().find(|m| m.segment == id) {
                Some(kept) => next.push(kept.clone()),
                None => {
                    out.push(transition(activity, Dimension::Custom, String::new(), id.to_owned(), cause));
                    next.push(Membership { segment: id.to_owned(), since_ms: at_ms });
                }
            }
        }
        self.custom = next;
        out
    }
}

fn transition(
    activity: &CustomerActivity,
    dimension: Dimension,
    from: String,
    to: String,
    cause: &Cause,
) -> Transition {
    Transition {
        customer_id: activity.customer_id.clone(),
        dimension,
        from,
        to,
        at_ms: activity.as_of_ms,
        cause: cause.clone(),
    }
}
