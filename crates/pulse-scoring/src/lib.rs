//! # pulse-scoring — the Pulse activity model
//!
//! Pure functions and small value types, no I/O: everything here is deterministic so that raft
//! replicas applying the same entries end up byte-identical (DESIGN.md section 3).
//!
//! ## Layout
//! - `event`: event input, validation and normalisation, derived ids.
//! - `config`: [`ScoringConfig`], every parameter with its contract default.
//! - `state/`: [`CustomerState`] — decayed counters per kind and category, the active-day bitmap,
//!   purchase days, memberships — its `apply` of one event and its compact binary codec;
//!   [`RecentEventIds`], the deduplication window kept beside it.
//! - [`score()`]: [`CustomerActivity`] at any `as_of`: index, components, level, trend,
//!   categories, L7/L30/L90, activity segment, lifecycle, weekday pattern, RFM, lifetime.
//! - [`next_reevaluation_ms`]: when time alone can next change a customer's memberships.
//! - `segment`: segment vocabularies and their rules.
//! - `rfm/`: RFM values, quintile edges, the R/F/M segment map and mergeable sketches.
//! - `lifetime/`: BG/NBD and modified BG/NBD: P(alive), expected purchases, log-likelihood and
//!   the maximum-likelihood fit.
//! - `rules/`: custom segments as CEL `enter`/`exit` rules with hysteresis.
//! - `transition`: memberships before/after an update → the transitions to record.

mod activity;
mod config;
mod error;
mod event;
mod lifetime;
mod rfm;
mod rules;
mod schedule;
mod score;
mod segment;
mod state;
mod transition;

pub use activity::{CategoryActivity, Components, CustomerActivity};
pub use config::{IndexWeights, KindWeights, MS_PER_DAY, ScoringConfig};
pub use error::{FieldViolation, Result, ScoringError};
pub use event::{
    DERIVED_EVENT_ID_PREFIX, Event, EventInput, EventKind, MAX_CATEGORY_BYTES, MAX_CHANNEL_BYTES,
    MAX_CUSTOMER_ID_BYTES, MAX_EVENT_ID_BYTES,
};
pub use lifetime::{
    FittedModel, HistoryCounts, LifetimeParams, LifetimePrediction, PurchaseHistory, fit, hyp2f1,
    log_likelihood,
};
pub use rfm::{MAX_SKETCH_VALUE, RfmEdges, RfmScore, RfmSegment, RfmSketch, RfmValues};
pub use rules::{
    CompiledSegment, MAX_RULE_EXPRESSION_BYTES, MAX_SEGMENT_ID_BYTES, MAX_SEGMENT_NAME_BYTES, RULE_VARIABLES,
    RuleSet, SegmentDefinition,
};
pub use schedule::next_reevaluation_ms;
pub use score::{activity_index_at, purchase_history, score};
pub use segment::{ActivityLevel, ActivitySegment, Dimension, Lifecycle, Weekday};
pub use state::{
    ActiveDays, CategoryState, CustomerState, HISTORY_DAYS, MAX_RETAINED_DAYS, PurchaseDays, RecentEventIds,
    event_id_hash,
};
pub use transition::{Cause, Membership, Memberships, Transition};
