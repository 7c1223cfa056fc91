//! [`CompiledSegment`]: a validated [`SegmentDefinition`] with its CEL programs compiled once.

use cel::{Context, Program, Value};

use super::context::{RULE_VARIABLES, STDLIB, activity_context, first_unknown_variable};
use super::definition::SegmentDefinition;
use crate::activity::CustomerActivity;
use crate::error::{Result, ScoringError};

/// A custom segment ready to evaluate: [`SegmentDefinition::validate`] passed and `enter` (and
/// `exit`, unless blank) parsed and checked to read only [`RULE_VARIABLES`].
#[derive(Debug)]
pub struct CompiledSegment {
    /// The definition as given.
    definition: SegmentDefinition,
    /// Compiled `enter`.
    enter: Program,
    /// Compiled `exit`; `None` for the default `!(enter)`.
    exit: Option<Program>,
}

impl CompiledSegment {
    /// Validates `definition` and compiles its expressions.
    ///
    /// Errors are [`ScoringError::InvalidRule`] naming the field: `id` / `name` / `enter` /
    /// `exit` for bad metadata (see [`SegmentDefinition::validate`]); `enter` / `exit` with the
    /// CEL parser's message for an expression that does not parse; and `enter` / `exit` with
    /// "unknown variable `x`; known: ..." for one that reads a variable no customer has (a typo
    /// would otherwise fail on every evaluation). Unknown *functions* are not detected here;
    /// they fail at evaluation.
    pub fn compile(definition: SegmentDefinition) -> Result<Self> {
        definition.validate()?;
        let enter = compile_expression(&definition.id, "enter", &definition.enter)?;
        let exit = if definition.has_default_exit() {
            None
        } else {
            Some(compile_expression(&definition.id, "exit", &definition.exit)?)
        };
        Ok(Self { definition, enter, exit })
    }

    /// The segment id.
    pub fn id(&self) -> &str {
        &self.definition.id
    }

    /// The segment's human-readable name.
    pub fn name(&self) -> &str {
        &self.definition.name
    }

    /// The definition this was compiled from.
    pub fn definition(&self) -> &SegmentDefinition {
        &self.definition
    }

    /// The customer's membership after this update, with hysteresis: a non-member becomes a
    /// member iff `enter` holds; a member stays unless `exit` holds (by default: unless `enter`
    /// no longer holds).
    ///
    /// Errors are [`ScoringError::RuleEvaluation`]: the expression failed (a missing map key,
    /// an ordering comparison with `null`, an unknown function, ...) or produced something
    /// other than a bool. Nothing panics. Callers should keep the current membership, as
    /// [`Self::next_membership`] does, and count or log the error: a rule that fails for one
    /// customer usually works for others (e.g. `categories['beauty']` without a `'beauty' in
    /// categories` guard).
    pub fn evaluate(&self, activity: &CustomerActivity, is_member: bool) -> Result<bool> {
        self.evaluate_in(&activity_context(activity), is_member)
    }

    /// [`Self::evaluate`], treating an evaluation error as "no change": the current membership
    /// `is_member` is returned.
    pub fn next_membership(&self, activity: &CustomerActivity, is_member: bool) -> bool {
        self.evaluate(activity, is_member).unwrap_or(is_member)
    }

    /// [`Self::evaluate`] in a context already built for the customer.
    pub(super) fn evaluate_in(&self, context: &Context<'_, '_>, is_member: bool) -> Result<bool> {
        if !is_member {
            return self.holds("enter", &self.enter, context);
        }
        match &self.exit {
            Some(exit) => Ok(!self.holds("exit", exit, context)?),
            None => self.holds("enter", &self.enter, context),
        }
    }

    /// Runs `program` and requires a bool.
    fn holds(&self, field: &'static str, program: &Program, context: &Context<'_, '_>) -> Result<bool> {
        let failed = |message: String| ScoringError::RuleEvaluation {
            segment_id: self.definition.id.clone(),
            field,
            message,
        };
        match program.execute(context) {
            Ok(Value::Bool(holds)) => Ok(holds),
            Ok(other) => Err(failed(format!("evaluated to {other:?}, expected a bool"))),
            Err(error) => Err(failed(error.to_string())),
        }
    }
}

/// Parses `source` and checks its variables.
fn compile_expression(segment_id: &str, field: &'static str, source: &str) -> Result<Program> {
    let invalid =
        |message: String| ScoringError::InvalidRule { segment_id: segment_id.to_owned(), field, message };
    let program = STDLIB.compile(source).map_err(|errors| {
        let message = errors.to_string();
        invalid(if message.is_empty() { "syntax error".to_owned() } else { message })
    })?;
    if let Some(unknown) = first_unknown_variable(program.expression()) {
        return Err(invalid(format!("unknown variable `{unknown}`; known: {}", RULE_VARIABLES.join(", "))));
    }
    Ok(program)
}
