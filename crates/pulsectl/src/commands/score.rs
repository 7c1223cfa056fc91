//! `pulsectl score`: scores a file of events offline, without a server.
//!
//! Reads JSON lines of `pulse.v1.Event`, validates each event against the clock `--as-of-ms`,
//! drops duplicate `(customer_id, event_id)` pairs, applies the events to one state per
//! customer and prints one `pulse.v1.CustomerActivity` JSON line per customer, sorted by
//! customer id. The model and its defaults are exactly the server's (`pulse-scoring` with the
//! default `ScoringConfig`), so the output is what `GetActivity` would answer at that instant
//! for a cluster that ingested the same file.
//!
//! Unlike the server, which keeps duplicates out for the dedup window only, a duplicate is
//! recognised anywhere in the file. An event later than `--as-of-ms` is an error (the server
//! would refuse to score before a customer's last event).

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use pulse_proto::v1;
use pulse_scoring::{CustomerState, Event, EventInput, LifetimeParams, ScoringConfig, score};

use crate::jsonl;

/// Arguments of `pulsectl score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// JSON lines of pulse.v1.Event in the protobuf JSON mapping (camelCase or snake_case keys;
    /// 64-bit integers as strings or numbers); blank lines are skipped; `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    pub events: PathBuf,

    /// The instant to score at, Unix ms; also the clock events are validated against.
    #[arg(long, value_name = "MS", allow_hyphen_values = true)]
    pub as_of_ms: i64,

    /// BG/NBD population parameters `r,alpha,a,b` (alpha in days), e.g. from
    /// `AdminService.FitLifetimeModel`; without them no lifetime prediction is printed.
    #[arg(long, value_name = "R,ALPHA,A,B", value_parser = parse_lifetime_params)]
    pub lifetime_params: Option<LifetimeParams>,
}

/// Counts reported on stderr when scoring is done.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Summary {
    /// Valid events read, duplicates included.
    events: u64,
    /// Events whose `(customer_id, event_id)` pair was seen before in the file.
    duplicates: u64,
    /// Customers scored (one output line each).
    customers: u64,
}

/// Runs `pulsectl score`.
pub fn run(args: &ScoreArgs) -> Result<()> {
    let config = ScoringConfig { lifetime: args.lifetime_params, ..ScoringConfig::default() };
    config.validate().context("--lifetime-params")?;

    let source = args.events.display().to_string();
    let reader: Box<dyn BufRead> = if source == "-" {
        Box::new(io::stdin().lock())
    } else {
        let file = File::open(&args.events).with_context(|| format!("cannot open {source}"))?;
        Box::new(BufReader::new(file))
    };
    let (states, mut summary) = apply_events(reader, args.as_of_ms, &config).context(source)?;

    let stdout = io::stdout().lock();
    let mut out = BufWriter::new(stdout);
    for (customer_id, state) in &states {
        let activity = score(customer_id, state, args.as_of_ms, &config)
            .with_context(|| format!("scoring customer {customer_id:?}"))?;
        jsonl::write(&mut out, &v1::CustomerActivity::from(activity)).context("writing output")?;
        summary.customers += 1;
    }
    out.flush().context("writing output")?;
    eprintln!(
        "events={} applied={} duplicates={} customers={}",
        summary.events,
        summary.events - summary.duplicates,
        summary.duplicates,
        summary.customers
    );
    Ok(())
}

/// Reads, validates and deduplicates every event and applies it to its customer's state.
/// States are keyed (and so iterated) by customer id.
fn apply_events(
    reader: impl BufRead,
    as_of_ms: i64,
    config: &ScoringConfig,
) -> Result<(BTreeMap<String, CustomerState>, Summary)> {
    let mut states: BTreeMap<String, CustomerState> = BTreeMap::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut summary = Summary::default();
    for line in jsonl::read::<_, v1::Event>(reader) {
        let line = line?;
        let number = line.number;
        let event = Event::validate(EventInput::from(line.message), as_of_ms, config)
            .with_context(|| format!("line {number}"))?;
        if event.timestamp_ms > as_of_ms {
            bail!("line {number}: timestamp_ms: {} is after --as-of-ms {as_of_ms}", event.timestamp_ms);
        }
        summary.events += 1;
        if !seen.insert((event.customer_id.clone(), event.event_id.clone())) {
            summary.duplicates += 1;
            continue;
        }
        states.entry(event.customer_id.clone()).or_default().apply(&event, config);
    }
    Ok((states, summary))
}

/// Parses `r,alpha,a,b` into classic (not modified) BG/NBD parameters.
fn parse_lifetime_params(text: &str) -> Result<LifetimeParams, String> {
    let values: Vec<f64> = text
        .split(',')
        .map(|part| part.trim().parse::<f64>().map_err(|e| format!("{part:?}: {e}")))
        .collect::<Result<_, _>>()?;
    let [r, alpha, a, b] = values[..] else {
        return Err(format!("expected 4 comma-separated numbers r,alpha,a,b, got {}", values.len()));
    };
    Ok(LifetimeParams { r, alpha, a, b, modified: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_params_parse() {
        let params = parse_lifetime_params("0.243, 4.414,0.793,2.426").unwrap();
        assert_eq!(params, LifetimeParams { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426, modified: false });
        assert!(parse_lifetime_params("1,2,3").unwrap_err().contains("got 3"));
        assert!(parse_lifetime_params("1,2,x,4").unwrap_err().starts_with("\"x\""));
    }

    #[test]
    fn duplicates_are_counted_not_applied() {
        let input = r#"{"customerId":"b","eventId":"1","timestampMs":"1000","kind":"EVENT_KIND_VISIT"}

{"customerId":"a","eventId":"1","timestampMs":"2000","kind":"EVENT_KIND_PURCHASE","amount":5}
{"customerId":"b","eventId":"1","timestampMs":"1500","kind":"EVENT_KIND_VISIT"}
{"customerId":"a","eventId":"2","timestampMs":"2000","kind":"EVENT_KIND_PURCHASE","amount":5}
"#;
        let (states, summary) = apply_events(input.as_bytes(), 10_000, &ScoringConfig::default()).unwrap();
        assert_eq!(summary, Summary { events: 4, duplicates: 1, customers: 0 });
        assert_eq!(states.keys().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn errors_name_line_and_field() {
        let config = ScoringConfig::default();
        let input = "{\"customerId\":\"a\",\"timestampMs\":\"1000\",\"kind\":\"EVENT_KIND_VISIT\"}\n\
                     {\"customerId\":\"a\",\"timestampMs\":\"1000\",\"kind\":\"EVENT_KIND_VISIT\",\"amount\":-1}\n";
        let err = apply_events(input.as_bytes(), 10_000, &config).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.starts_with("line 2: invalid event: amount"), "{text}");
        let late = "{\"customerId\":\"a\",\"timestampMs\":\"20000\",\"kind\":\"EVENT_KIND_VISIT\"}\n";
        let err = apply_events(late.as_bytes(), 10_000, &config).unwrap_err();
        assert_eq!(format!("{err:#}"), "line 1: timestamp_ms: 20000 is after --as-of-ms 10000");
    }
}
