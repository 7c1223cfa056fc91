//! [`RuleSet`]: every custom segment of the cluster, evaluated together per customer.

use super::compiled::CompiledSegment;
use super::context::activity_context;
use super::definition::SegmentDefinition;
use crate::activity::CustomerActivity;
use crate::error::{Result, ScoringError};

/// The compiled custom segments, sorted by id, ids unique.
///
/// Evaluation builds the customer's CEL context once and runs every rule against it.
#[derive(Debug, Default)]
pub struct RuleSet {
    /// Sorted by id, no duplicates.
    segments: Vec<CompiledSegment>,
}

impl RuleSet {
    /// A set of already compiled segments; a repeated id is a [`ScoringError::InvalidRule`]
    /// on `id`.
    pub fn new(mut segments: Vec<CompiledSegment>) -> Result<Self> {
        segments.sort_by(|a, b| a.id().cmp(b.id()));
        if let Some(pair) = segments.windows(2).find(|pair| pair[0].id() == pair[1].id()) {
            return Err(ScoringError::InvalidRule {
                segment_id: pair[0].id().to_owned(),
                field: "id",
                message: "defined more than once".to_owned(),
            });
        }
        Ok(Self { segments })
    }

    /// Compiles every definition (see [`CompiledSegment::compile`]); the first bad one is the
    /// error.
    pub fn compile(definitions: &[SegmentDefinition]) -> Result<Self> {
        let mut segments = Vec::with_capacity(definitions.len());
        for definition in definitions {
            segments.push(CompiledSegment::compile(definition.clone())?);
        }
        Self::new(segments)
    }

    /// Number of segments.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// Whether there are no segments.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// The segment with `id`.
    pub fn get(&self, id: &str) -> Option<&CompiledSegment> {
        let index = self.segments.binary_search_by(|s| s.id().cmp(id)).ok()?;
        self.segments.get(index)
    }

    /// The segments, sorted by id.
    pub fn iter(&self) -> impl Iterator<Item = &CompiledSegment> {
        self.segments.iter()
    }

    /// The sorted ids of the segments the customer is in after this update, given the ids it
    /// was in (`current`, any order).
    ///
    /// Each segment applies [`CompiledSegment::evaluate`]'s hysteresis; a rule that fails to
    /// evaluate keeps the customer's current membership of that segment (see
    /// [`Self::evaluate_all_with_errors`] to observe the failures). Ids in `current` that name
    /// no segment of this set (deleted segments) are dropped.
    pub fn evaluate_all(&self, activity: &CustomerActivity, current: &[String]) -> Vec<String> {
        self.evaluate_all_with_errors(activity, current).0
    }

    /// [`Self::evaluate_all`], also returning the [`ScoringError::RuleEvaluation`] of every
    /// rule that failed (in id order), for the caller to count or log.
    pub fn evaluate_all_with_errors(
        &self,
        activity: &CustomerActivity,
        current: &[String],
    ) -> (Vec<String>, Vec<ScoringError>) {
        let mut members = Vec::new();
        let mut errors = Vec::new();
        if self.segments.is_empty() {
            return (members, errors);
        }
        let mut current: Vec<&str> = current.iter().map(String::as_str).collect();
        current.sort_unstable();
        let context = activity_context(activity);
        for segment in &self.segments {
            let is_member = current.binary_search(&segment.id()).is_ok();
            let now_member = match segment.evaluate_in(&context, is_member) {
                Ok(now_member) => now_member,
                Err(error) => {
                    errors.push(error);
                    is_member
                }
            };
            if now_member {
                members.push(segment.id().to_owned());
            }
        }
        (members, errors)
    }
}
