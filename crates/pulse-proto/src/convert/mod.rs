//! Proto ↔ domain conversions: the only place where `pulse.v1` wire types meet the types of
//! `pulse-scoring` (STYLE rule 5).
//!
//! ```text
//!   wire (pulse_proto::v1)                  domain (pulse_scoring)
//!   Event ─────────── From ───────────────▶ EventInput   (then Event::validate)
//!   Event ◀────────── From ──────────────── Event, EventInput
//!   CustomerActivity ◀── From ───────────── CustomerActivity (owned or &)
//!   ScoringConfig ─── TryFrom (+validate) ▶ ScoringConfig
//!   ScoringConfig ◀── From ──────────────── ScoringConfig (owned or &)
//!   RfmEdges ──────── TryFrom ────────────▶ RfmEdges     (exactly 4 edges each)
//!   LifetimeParams ◀─ From ───────────────▶ LifetimeParams
//!   LifetimeModel ─── From ───────────────▶ LifetimeParams
//!   SegmentDefinition ◀── From ───────────▶ SegmentDefinition (compile() validates)
//!   Transition ◀───── From ──────────────── Transition   (resume_token set by storage)
//!   enums ─────────── TryFrom ────────────▶ enums        (UNSPECIFIED is an error)
//!   enums ◀────────── From ──────────────── enums
//! ```
//!
//! Direction matters: proto → domain may fail (an unset enum, a missing message, a wrong
//! number of edges) and then names the field in a [`crate::ConvertError`]; domain → proto
//! never fails. The one exception is [`pulse_scoring::EventInput`]: an event's unknown kind
//! becomes `kind: None` so that [`pulse_scoring::Event::validate`] reports it together with
//! every other bad field of the event.
//!
//! Files: `enums.rs` ([`ProtoEnum`] and every enum pair), `event.rs`, `activity.rs`,
//! `config.rs` (scoring config, weights, RFM edges, lifetime parameters), `segment.rs` (custom
//! segment definitions, transitions).

mod activity;
mod config;
mod enums;
mod event;
mod segment;

pub use enums::ProtoEnum;
