//! `pulsectl ingest`: sends a file of events in batches over `IngestStream`.
//!
//! The whole file is read and every event validated locally first (the server's rules, except
//! the future-skew check, which needs the server's clock): a bad line fails the command naming
//! `FILE:LINE` and the field, and nothing is sent. Then batches of `--batch-size` events go out
//! over one stream, a progress bar on stderr when it is a terminal. A batch the server rejects
//! (INVALID_ARGUMENT ends the stream) is reported with its field violations mapped back to file
//! lines, and the rest is sent on a new stream; RESOURCE_EXHAUSTED is retried after the
//! server's RetryInfo delay. The summary gives events sent, accepted, duplicates, rejected
//! batches, elapsed time and events/s; any rejected batch makes the exit status non-zero.

use std::fs::File;
use std::io::{BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use pulse_proto::v1;
use pulse_scoring::{Event, EventInput, ScoringConfig};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::csv_events;
use crate::gateway::Gateway;
use crate::jsonl::{self, Line, LineError};
use crate::output::{self, Output, print_line};
use crate::rpc_error::{RpcError, code_name, field_violations};

/// Consecutive RESOURCE_EXHAUSTED answers tolerated before giving up.
const MAX_OVERLOAD_RETRIES: u32 = 20;
/// Wait after RESOURCE_EXHAUSTED when the server sent no RetryInfo.
const DEFAULT_RETRY_DELAY: Duration = Duration::from_millis(200);
/// Batches queued ahead of the server's answers.
const BATCHES_IN_FLIGHT: usize = 4;

/// Arguments of `pulsectl ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The events: JSON lines of pulse.v1.Event (protobuf JSON mapping) or CSV with a header
    /// `customer_id,event_id,timestamp_ms,kind,category,amount,channel`.
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,

    /// Format of the file [default: csv for a `.csv` file, jsonl otherwise].
    #[arg(long, value_enum)]
    pub format: Option<FileFormat>,

    /// Events per IngestRequest, 1-10000.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch_size: u32,
}

/// Formats of an events file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FileFormat {
    /// One pulse.v1.Event JSON object per line.
    Jsonl,
    /// CSV with a header row.
    Csv,
}

/// One IngestRequest and the file lines its events came from.
#[derive(Debug)]
struct Batch {
    /// The request.
    request: v1::IngestRequest,
    /// File line of each event, by index in the request.
    lines: Vec<usize>,
}

/// A batch the server refused.
#[derive(Debug)]
struct Rejection {
    /// 0-based batch number.
    batch: usize,
    /// File lines of the batch's first and last event.
    lines: (usize, usize),
    /// The server's answer.
    status: Status,
    /// The field violations, with the file line of the event each one names.
    violations: Vec<(String, String, Option<usize>)>,
}

/// What was sent and what the server answered.
#[derive(Debug, Default)]
struct Summary {
    /// Events in batches the server acknowledged.
    sent: u64,
    /// Events applied.
    accepted: u64,
    /// Events recognised as duplicates.
    duplicates: u64,
    /// Batches refused.
    rejections: Vec<Rejection>,
}

/// Runs `pulsectl ingest`.
pub async fn run(address: &str, output: Output, args: &IngestArgs) -> Result<()> {
    let events = read_events(&args.file, args.format)?;
    let gateway = Gateway::connect(address).await?;
    let total = events.len() as u64;
    let batches = Arc::new(into_batches(events, args.batch_size as usize));

    let progress = if output.is_json() || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} events {per_sec} eta {eta}")
                .context("progress bar template")?,
        );
        bar
    };
    let started = Instant::now();
    let sent = send(&gateway, &batches, &progress).await;
    progress.finish_and_clear();
    let elapsed = started.elapsed();
    let summary = match sent {
        Ok(summary) => summary,
        Err((summary, error)) => {
            report(output, &args.file, &summary, total, elapsed)?;
            return Err(error.into());
        }
    };
    report(output, &args.file, &summary, total, elapsed)?;
    if !summary.rejections.is_empty() {
        bail!("{} of {} batches rejected", summary.rejections.len(), batches.len());
    }
    Ok(())
}

/// Reads and locally validates every event of the file; an error names `FILE:LINE` and field.
fn read_events(path: &Path, format: Option<FileFormat>) -> Result<Vec<Line<v1::Event>>> {
    let name = path.display().to_string();
    let format = format.unwrap_or_else(|| {
        let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        if is_csv { FileFormat::Csv } else { FileFormat::Jsonl }
    });
    let file = File::open(path).with_context(|| format!("cannot open {name}"))?;
    let reader = BufReader::new(file);
    let events = match format {
        FileFormat::Csv => {
            csv_events::read(reader).map_err(|e| anyhow::anyhow!("{name}:{}: {}", e.line, e.message))?
        }
        FileFormat::Jsonl => {
            let mut events = Vec::new();
            for line in jsonl::read::<_, v1::Event>(reader) {
                events.push(line.map_err(|e| located_json_error(&name, e))?);
            }
            events
        }
    };
    // The server's clock is unknown here: the future-skew rule is left to the server.
    let config = ScoringConfig::default();
    for line in &events {
        if let Err(error) = Event::validate(EventInput::from(line.message.clone()), i64::MAX, &config) {
            bail!("{name}:{}: {error}", line.number);
        }
    }
    Ok(events)
}

/// A JSON lines error as `FILE:LINE: field: message (column C)`.
fn located_json_error(name: &str, error: LineError) -> anyhow::Error {
    match error {
        LineError::Io { line, source } => anyhow::anyhow!("{name}:{line}: {source}"),
        LineError::Parse { line, field: Some(field), message, column } => {
            anyhow::anyhow!("{name}:{line}: {field}: {message} (column {column})")
        }
        LineError::Parse { line, field: None, message, column } => {
            anyhow::anyhow!("{name}:{line}: {message} (column {column})")
        }
    }
}

/// Cuts the events into requests of at most `batch_size` events, in file order.
fn into_batches(events: Vec<Line<v1::Event>>, batch_size: usize) -> Vec<Batch> {
    let mut batches = Vec::with_capacity(events.len().div_ceil(batch_size));
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let chunk: Vec<Line<v1::Event>> = events.by_ref().take(batch_size).collect();
        let lines = chunk.iter().map(|line| line.number).collect();
        let request = v1::IngestRequest { events: chunk.into_iter().map(|line| line.message).collect() };
        batches.push(Batch { request, lines });
    }
    batches
}

/// Sends every batch, reopening the stream after a rejected batch or an overload. Returns the
/// summary, or the summary so far and the error that stopped the sending.
async fn send(
    gateway: &Gateway,
    batches: &Arc<Vec<Batch>>,
    progress: &ProgressBar,
) -> Result<Summary, (Summary, RpcError)> {
    let mut summary = Summary::default();
    let mut next = 0;
    let mut overloads = 0;
    while next < batches.len() {
        let (requests, queue) = mpsc::channel(BATCHES_IN_FLIGHT);
        let feed = Arc::clone(batches);
        let start = next;
        let feeder = tokio::spawn(async move {
            for batch in &feed[start..] {
                if requests.send(batch.request.clone()).await.is_err() {
                    break;
                }
            }
        });
        let failure = match gateway.activity().ingest_stream(ReceiverStream::new(queue)).await {
            Err(status) => Some(status),
            Ok(response) => {
                let mut responses = response.into_inner();
                loop {
                    match responses.message().await {
                        Ok(Some(answer)) => {
                            let events = batches[next].request.events.len() as u64;
                            summary.sent += events;
                            summary.accepted += u64::from(answer.accepted);
                            summary.duplicates += u64::from(answer.duplicates);
                            progress.inc(events);
                            next += 1;
                            overloads = 0;
                        }
                        Ok(None) if next < batches.len() => {
                            let message = format!("stream ended after {next} of {} batches", batches.len());
                            break Some(Status::internal(message));
                        }
                        Ok(None) => break None,
                        Err(status) => break Some(status),
                    }
                }
            }
        };
        feeder.abort();
        let Some(status) = failure else { continue };
        match status.code() {
            Code::InvalidArgument => {
                let batch = &batches[next];
                summary.rejections.push(rejection(next, batch, status));
                progress.inc(batch.request.events.len() as u64);
                next += 1;
            }
            Code::ResourceExhausted if overloads < MAX_OVERLOAD_RETRIES => {
                overloads += 1;
                let delay = status.get_details_retry_info().and_then(|info| info.retry_delay);
                tokio::time::sleep(delay.unwrap_or(DEFAULT_RETRY_DELAY)).await;
            }
            _ => return Err((summary, RpcError { rpc: "IngestStream", status })),
        }
    }
    Ok(summary)
}

/// A rejected batch, its violations (`events[3].amount`) mapped to file lines.
fn rejection(number: usize, batch: &Batch, status: Status) -> Rejection {
    let violations = field_violations(&status)
        .into_iter()
        .map(|(field, description)| {
            let line = event_index(&field).and_then(|index| batch.lines.get(index).copied());
            (field, description, line)
        })
        .collect();
    let first = batch.lines.first().copied().unwrap_or_default();
    let last = batch.lines.last().copied().unwrap_or_default();
    Rejection { batch: number, lines: (first, last), status, violations }
}

/// `3` from a violation field `events[3].amount`.
fn event_index(field: &str) -> Option<usize> {
    let rest = field.strip_prefix("events[")?;
    rest[..rest.find(']')?].parse().ok()
}

/// Prints the summary: a JSON object with `--json`, a table otherwise.
fn report(output: Output, file: &Path, summary: &Summary, total: u64, elapsed: Duration) -> Result<()> {
    let seconds = elapsed.as_secs_f64();
    let per_second = if seconds > 0.0 { summary.sent as f64 / seconds } else { 0.0 };
    let name = file.display().to_string();
    if output.is_json() {
        let rejected: Vec<_> = summary
            .rejections
            .iter()
            .map(|r| {
                let violations: Vec<_> = r
                    .violations
                    .iter()
                    .map(|(field, description, line)| json!({"field": field, "description": description, "line": line}))
                    .collect();
                json!({
                    "batch": r.batch,
                    "firstLine": r.lines.0,
                    "lastLine": r.lines.1,
                    "code": code_name(r.status.code()),
                    "message": r.status.message(),
                    "fieldViolations": violations,
                })
            })
            .collect();
        return output::print_json(&json!({
            "file": name,
            "events": total,
            "sent": summary.sent,
            "accepted": summary.accepted,
            "duplicates": summary.duplicates,
            "rejectedBatches": rejected,
            "elapsedMs": elapsed.as_millis() as u64,
            "eventsPerSecond": per_second,
        }));
    }
    output::print_table(&output::key_values([
        ("file", name.clone()),
        ("events in file", total.to_string()),
        ("sent", summary.sent.to_string()),
        ("accepted", summary.accepted.to_string()),
        ("duplicates", summary.duplicates.to_string()),
        ("rejected batches", summary.rejections.len().to_string()),
        ("elapsed", format!("{seconds:.3} s")),
        ("events/s", format!("{per_second:.0}")),
    ]))?;
    for r in &summary.rejections {
        print_line(format!(
            "batch {} ({name} lines {}-{}) rejected: {}: {}",
            r.batch,
            r.lines.0,
            r.lines.1,
            code_name(r.status.code()),
            r.status.message()
        ))?;
        for (field, description, line) in &r.violations {
            match line {
                Some(line) => print_line(format!("  {field} ({name}:{line}): {description}"))?,
                None => print_line(format!("  {field}: {description}"))?,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_file_order_and_lines() {
        let events: Vec<Line<v1::Event>> = (0..5)
            .map(|i| Line {
                number: i * 2 + 1,
                message: v1::Event { event_id: i.to_string(), ..Default::default() },
            })
            .collect();
        let batches = into_batches(events, 2);
        let sizes: Vec<usize> = batches.iter().map(|b| b.request.events.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
        assert_eq!(batches[1].lines, [5, 7]);
        assert_eq!(batches[2].request.events[0].event_id, "4");
    }

    #[test]
    fn violations_map_to_event_indexes() {
        assert_eq!(event_index("events[12].timestamp_ms"), Some(12));
        assert_eq!(event_index("events"), None);
        assert_eq!(event_index("customer_id"), None);
    }
}
