//! Events: the input of the model, their validation and normalisation, and derived ids.
//!
//! An [`EventInput`] is what a client sent; [`Event::validate`] turns it into an [`Event`] or a
//! [`ScoringError::InvalidEvent`] naming every bad field. Normalisation is part of validation,
//! so two replicas (or a replay) that validate the same input get the same event.

use std::fmt;

use xxhash_rust::xxh3::Xxh3;

use crate::config::ScoringConfig;
use crate::error::{FieldViolation, Result, ScoringError};

/// Longest accepted `customer_id`, bytes.
pub const MAX_CUSTOMER_ID_BYTES: usize = 128;
/// Longest accepted `event_id`, bytes.
pub const MAX_EVENT_ID_BYTES: usize = 128;
/// Longest accepted category after normalisation, bytes.
pub const MAX_CATEGORY_BYTES: usize = 64;
/// Longest accepted channel, bytes.
pub const MAX_CHANNEL_BYTES: usize = 64;
/// Prefix of event ids derived from the event's content.
pub const DERIVED_EVENT_ID_PREFIX: &str = "~";

/// What happened. The kinds are weighted differently in the activity index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// A purchase; its amount counts as spend.
    Purchase,
    /// A visit (web, app, store).
    Visit,
    /// An interaction (click, message, review).
    Interaction,
    /// A payment (bill, card payment).
    Payment,
    /// A support contact.
    Support,
}

impl EventKind {
    /// Number of kinds; counters are arrays indexed by [`EventKind::index`].
    pub const COUNT: usize = 5;
    /// Every kind, in index order.
    pub const ALL: [EventKind; Self::COUNT] = [
        EventKind::Purchase,
        EventKind::Visit,
        EventKind::Interaction,
        EventKind::Payment,
        EventKind::Support,
    ];

    /// Position of this kind in per-kind arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The short name (`PURCHASE`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            EventKind::Purchase => "PURCHASE",
            EventKind::Visit => "VISIT",
            EventKind::Interaction => "INTERACTION",
            EventKind::Payment => "PAYMENT",
            EventKind::Support => "SUPPORT",
        }
    }

    /// Parses a short name (`PURCHASE`) or a full proto name (`EVENT_KIND_PURCHASE`).
    pub fn from_name(name: &str) -> Option<Self> {
        let short = name.strip_prefix("EVENT_KIND_").unwrap_or(name);
        EventKind::ALL.into_iter().find(|k| k.name() == short)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An event as received, before validation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventInput {
    /// Customer the event belongs to.
    pub customer_id: String,
    /// Idempotency key; empty means "derive from the content".
    pub event_id: String,
    /// When it happened, Unix ms.
    pub timestamp_ms: i64,
    /// What happened; `None` when the client left it unspecified or sent an unknown value.
    pub kind: Option<EventKind>,
    /// Transaction category, free text.
    pub category: String,
    /// Amount; spend for purchases.
    pub amount: f64,
    /// Channel (web, app, store, ...), free text.
    pub channel: String,
}

/// A validated, normalised event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// 1–128 bytes.
    pub customer_id: String,
    /// Client-given or derived idempotency key, 1–128 bytes.
    pub event_id: String,
    /// When it happened, Unix ms, at most `max_future_skew_ms` ahead of the clock at validation.
    pub timestamp_ms: i64,
    /// What happened.
    pub kind: EventKind,
    /// Trimmed, lowercased, 1–64 bytes; `None` when absent or blank.
    pub category: Option<String>,
    /// Finite and ≥ 0.
    pub amount: f64,
    /// Trimmed, 1–64 bytes; `None` when absent or blank.
    pub channel: Option<String>,
}

impl Event {
    /// Validates and normalises `input` against the clock `now_ms`.
    ///
    /// Every violated rule is reported (not just the first), each naming its field.
    pub fn validate(input: EventInput, now_ms: i64, config: &ScoringConfig) -> Result<Event> {
        let mut bad = Vec::new();
        let id_len = input.customer_id.len();
        if id_len == 0 {
            bad.push(FieldViolation::new("customer_id", "must not be empty"));
        } else if id_len > MAX_CUSTOMER_ID_BYTES {
            bad.push(FieldViolation::new(
                "customer_id",
                format!("is {id_len} bytes, at most {MAX_CUSTOMER_ID_BYTES} allowed"),
            ));
        }
        if input.event_id.len() > MAX_EVENT_ID_BYTES {
            bad.push(FieldViolation::new(
                "event_id",
                format!("is {} bytes, at most {MAX_EVENT_ID_BYTES} allowed", input.event_id.len()),
            ));
        }
        let latest = now_ms.saturating_add(config.max_future_skew_ms);
        if input.timestamp_ms < 0 {
            bad.push(FieldViolation::new("timestamp_ms", "must not be negative"));
        } else if input.timestamp_ms > latest {
            bad.push(FieldViolation::new(
                "timestamp_ms",
                format!(
                    "{} is more than {} ms ahead of the clock ({now_ms})",
                    input.timestamp_ms, config.max_future_skew_ms
                ),
            ));
        }
        if input.kind.is_none() {
            bad.push(FieldViolation::new(
                "kind",
                "must be one of PURCHASE, VISIT, INTERACTION, PAYMENT, SUPPORT",
            ));
        }
        let category = normalise_text(&input.category, true);
        if let Some(c) = &category
            && c.len() > MAX_CATEGORY_BYTES
        {
            bad.push(FieldViolation::new(
                "category",
                format!("is {} bytes after trimming, at most {MAX_CATEGORY_BYTES} allowed", c.len()),
            ));
        }
        if !input.amount.is_finite() {
            bad.push(FieldViolation::new("amount", "must be a finite number"));
        } else if input.amount < 0.0 {
            bad.push(FieldViolation::new("amount", format!("must not be negative, got {}", input.amount)));
        }
        let channel = normalise_text(&input.channel, false);
        if let Some(c) = &channel
            && c.len() > MAX_CHANNEL_BYTES
        {
            bad.push(FieldViolation::new(
                "channel",
                format!("is {} bytes after trimming, at most {MAX_CHANNEL_BYTES} allowed", c.len()),
            ));
        }
        let Some(kind) = input.kind else {
            return Err(ScoringError::InvalidEvent { violations: bad });
        };
        if !bad.is_empty() {
            return Err(ScoringError::InvalidEvent { violations: bad });
        }
        let mut event = Event {
            customer_id: input.customer_id,
            event_id: input.event_id,
            timestamp_ms: input.timestamp_ms,
            kind,
            category,
            // -0.0 and 0.0 are the same amount; keep one representation so derived ids agree.
            amount: if input.amount == 0.0 { 0.0 } else { input.amount },
            channel,
        };
        if event.event_id.is_empty() {
            event.event_id = event.derived_id();
        }
        Ok(event)
    }

    /// The id derived from the event's content: `~` followed by the 128-bit xxh3 of the
    /// normalised fields, in hex. Two sends of the same content get the same id.
    pub fn derived_id(&self) -> String {
        let mut hasher = Xxh3::new();
        let mut field = |bytes: &[u8]| {
            hasher.update(&(bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        };
        field(self.customer_id.as_bytes());
        field(&self.timestamp_ms.to_le_bytes());
        field(self.kind.name().as_bytes());
        field(self.category.as_deref().unwrap_or("").as_bytes());
        field(&self.amount.to_bits().to_le_bytes());
        field(self.channel.as_deref().unwrap_or("").as_bytes());
        format!("{DERIVED_EVENT_ID_PREFIX}{:032x}", hasher.digest128())
    }

    /// Amount that counts as spend: the amount of a purchase, 0 otherwise.
    pub fn spend(&self) -> f64 {
        if self.kind == EventKind::Purchase { self.amount } else { 0.0 }
    }
}

/// Trims (and for categories lowercases) free text; blank becomes `None`.
fn normalise_text(text: &str, lowercase: bool) -> Option<String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return None;
    }
    Some(if lowercase { trimmed.to_lowercase() } else { trimmed.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> EventInput {
        EventInput {
            customer_id: "c1".into(),
            event_id: String::new(),
            timestamp_ms: 1_000,
            kind: Some(EventKind::Purchase),
            category: "  Beauty ".into(),
            amount: 12.5,
            channel: " web ".into(),
        }
    }

    fn fields(err: ScoringError) -> Vec<String> {
        match err {
            ScoringError::InvalidEvent { violations } => violations.into_iter().map(|v| v.field).collect(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn normalises_and_derives_id() {
        let config = ScoringConfig::default();
        let event = Event::validate(input(), 1_000, &config).unwrap();
        assert_eq!(event.category.as_deref(), Some("beauty"));
        assert_eq!(event.channel.as_deref(), Some("web"));
        assert!(event.event_id.starts_with(DERIVED_EVENT_ID_PREFIX));
        assert_eq!(event.event_id.len(), 33);
        // Same content, differently spelled category: same derived id.
        let again =
            Event::validate(EventInput { category: "BEAUTY".into(), ..input() }, 1_000, &config).unwrap();
        assert_eq!(event.event_id, again.event_id);
        let other = Event::validate(EventInput { amount: 12.6, ..input() }, 1_000, &config).unwrap();
        assert_ne!(event.event_id, other.event_id);
    }

    #[test]
    fn reports_every_bad_field() {
        let config = ScoringConfig::default();
        let bad = EventInput {
            customer_id: String::new(),
            event_id: "x".repeat(129),
            timestamp_ms: 10 * 60 * 1000 + 1,
            kind: None,
            category: "c".repeat(65),
            amount: f64::NAN,
            channel: "w".repeat(65),
        };
        let err = Event::validate(bad, 0, &config).unwrap_err();
        assert_eq!(
            fields(err),
            ["customer_id", "event_id", "timestamp_ms", "kind", "category", "amount", "channel"]
        );
    }

    #[test]
    fn future_skew_is_inclusive() {
        let config = ScoringConfig::default();
        let now = 1_000_000;
        let at_limit = EventInput { timestamp_ms: now + config.max_future_skew_ms, ..input() };
        assert!(Event::validate(at_limit, now, &config).is_ok());
        let past_limit = EventInput { timestamp_ms: now + config.max_future_skew_ms + 1, ..input() };
        assert_eq!(fields(Event::validate(past_limit, now, &config).unwrap_err()), ["timestamp_ms"]);
        let negative = EventInput { amount: -1.0, ..input() };
        assert_eq!(fields(Event::validate(negative, now, &config).unwrap_err()), ["amount"]);
    }

    #[test]
    fn customer_id_limit_is_bytes() {
        let config = ScoringConfig::default();
        let ok = EventInput { customer_id: "é".repeat(64), ..input() };
        assert!(Event::validate(ok, 1_000, &config).is_ok());
        let too_long = EventInput { customer_id: "é".repeat(65), ..input() };
        assert_eq!(fields(Event::validate(too_long, 1_000, &config).unwrap_err()), ["customer_id"]);
    }
}
