//! [`SegmentDefinition`]: a custom segment as the API defines it, and its metadata checks.

use serde::{Deserialize, Serialize};

use crate::error::{Result, ScoringError};

/// Longest segment id, bytes.
pub const MAX_SEGMENT_ID_BYTES: usize = 64;
/// Longest segment name, bytes.
pub const MAX_SEGMENT_NAME_BYTES: usize = 128;
/// Longest `enter` or `exit` expression, bytes; keeps compilation and evaluation cheap.
pub const MAX_RULE_EXPRESSION_BYTES: usize = 4096;

/// A custom segment: CEL expressions over a customer's scored activity with hysteresis
/// (DESIGN.md section 3, "Custom segments").
///
/// A customer outside the segment enters when `enter` holds; a member leaves when `exit` holds.
/// An empty `exit` means `!(enter)`: members leave as soon as `enter` stops holding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentDefinition {
    /// Stable identifier, 1–64 bytes of `[A-Za-z0-9_.-]`; memberships and transitions name it.
    pub id: String,
    /// Human-readable name, at most 128 bytes.
    pub name: String,
    /// CEL expression (bool) that admits a non-member; must not be empty.
    pub enter: String,
    /// CEL expression (bool) that removes a member; empty (or blank) means `!(enter)`.
    #[serde(default)]
    pub exit: String,
}

impl SegmentDefinition {
    /// Checks the metadata and that `enter` is present: id 1–64 bytes of `[A-Za-z0-9_.-]`, name
    /// at most 128 bytes, `enter` not blank, both expressions at most
    /// [`MAX_RULE_EXPRESSION_BYTES`]. The expressions themselves are checked by
    /// [`crate::CompiledSegment::compile`].
    ///
    /// Errors are [`ScoringError::InvalidRule`] with `field` `id`, `name`, `enter` or `exit`.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &'static str, message: String| ScoringError::InvalidRule {
            segment_id: self.id.clone(),
            field,
            message,
        };
        if self.id.is_empty() {
            return Err(invalid("id", "must not be empty".to_owned()));
        }
        if self.id.len() > MAX_SEGMENT_ID_BYTES {
            return Err(invalid(
                "id",
                format!("must be at most {MAX_SEGMENT_ID_BYTES} bytes, got {}", self.id.len()),
            ));
        }
        if let Some(bad) = self.id.chars().find(|&c| !is_id_char(c)) {
            return Err(invalid("id", format!("may only contain [A-Za-z0-9_.-], found {bad:?}")));
        }
        if self.name.len() > MAX_SEGMENT_NAME_BYTES {
            return Err(invalid(
                "name",
                format!("must be at most {MAX_SEGMENT_NAME_BYTES} bytes, got {}", self.name.len()),
            ));
        }
        if self.enter.trim().is_empty() {
            return Err(invalid("enter", "must not be empty".to_owned()));
        }
        for (field, expression) in [("enter", &self.enter), ("exit", &self.exit)] {
            if expression.len() > MAX_RULE_EXPRESSION_BYTES {
                return Err(invalid(
                    field,
                    format!("must be at most {MAX_RULE_EXPRESSION_BYTES} bytes, got {}", expression.len()),
                ));
            }
        }
        Ok(())
    }

    /// Whether members leave only when `enter` stops holding (`exit` is blank).
    pub fn has_default_exit(&self) -> bool {
        self.exit.trim().is_empty()
    }
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(id: &str) -> SegmentDefinition {
        SegmentDefinition {
            id: id.to_owned(),
            name: "VIP".to_owned(),
            enter: "activity_index >= 70".to_owned(),
            exit: String::new(),
        }
    }

    fn field_of(definition: &SegmentDefinition) -> Option<&'static str> {
        match definition.validate() {
            Ok(()) => None,
            Err(ScoringError::InvalidRule { field, .. }) => Some(field),
            Err(other) => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn metadata_rules() {
        assert_eq!(field_of(&definition("vip-2024.q1_A")), None);
        assert_eq!(field_of(&definition(&"a".repeat(64))), None);
        assert_eq!(field_of(&definition("")), Some("id"));
        assert_eq!(field_of(&definition(&"a".repeat(65))), Some("id"));
        assert_eq!(field_of(&definition("has space")), Some("id"));
        assert_eq!(field_of(&definition("é")), Some("id"));
        assert_eq!(field_of(&SegmentDefinition { name: "n".repeat(129), ..definition("x") }), Some("name"));
        assert_eq!(field_of(&SegmentDefinition { name: String::new(), ..definition("x") }), None);
        assert_eq!(field_of(&SegmentDefinition { enter: "  ".to_owned(), ..definition("x") }), Some("enter"));
        assert_eq!(field_of(&SegmentDefinition { exit: "1".repeat(5000), ..definition("x") }), Some("exit"));
    }

    #[test]
    fn serde_defaults_exit_and_rejects_unknown_fields() {
        let parsed: SegmentDefinition =
            serde_json::from_str(r#"{"id":"vip","name":"VIP","enter":"level == 'HIGH'"}"#).unwrap();
        assert!(parsed.has_default_exit());
        assert!(
            serde_json::from_str::<SegmentDefinition>(r#"{"id":"v","name":"","enter":"true","x":1}"#)
                .is_err()
        );
    }
}
