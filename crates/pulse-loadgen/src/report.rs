//! [`Recorder`] (what one worker measured) and [`Summary`] (the run's figures, printed
//! ghz-style and written as JSON under keys external harnesses rely on).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency the histogram tracks, µs (one minute); slower requests count as this.
const MAX_LATENCY_US: u64 = 60_000_000;

/// What one worker measured after the warm-up.
#[derive(Debug, Clone)]
pub struct Recorder {
    latencies_us: Histogram<u64>,
    /// Events (ingest) or customers (reads) processed by successful requests.
    units: u64,
    /// Responses per gRPC status code name.
    status_codes: BTreeMap<String, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            // three significant digits: 0.1 % relative error at any latency
            latencies_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds"),
            units: 0,
            status_codes: BTreeMap::new(),
        }
    }
}

impl Recorder {
    /// Records one request: its latency, its status code and, when it succeeded, its units.
    pub fn record(&mut self, latency: Duration, code: tonic::Code, units: u64) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).clamp(1, MAX_LATENCY_US);
        self.latencies_us.record(micros).expect("value clamped into the histogram's range");
        if code == tonic::Code::Ok {
            self.units += units;
        }
        *self.status_codes.entry(code_name(code).to_owned()).or_default() += 1;
    }

    /// Adds another worker's measurements.
    pub fn merge(&mut self, other: &Recorder) {
        self.latencies_us.add(&other.latencies_us).expect("histograms with the same bounds");
        self.units += other.units;
        for (code, count) in &other.status_codes {
            *self.status_codes.entry(code.clone()).or_default() += count;
        }
    }

    /// The run's figures over `elapsed` (the measured time, warm-up excluded), for `scenario`
    /// sent with `routing` (`gateway` or `client`).
    pub fn summarize(&self, scenario: &str, routing: &str, elapsed: Duration) -> Summary {
        let count = self.latencies_us.len();
        let ok = self.status_codes.get(code_name(tonic::Code::Ok)).copied().unwrap_or(0);
        let seconds = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        let ms = |micros: u64| micros as f64 / 1_000.0;
        let quantile = |q: f64| if count == 0 { 0.0 } else { ms(self.latencies_us.value_at_quantile(q)) };
        Summary {
            scenario: scenario.to_owned(),
            routing: routing.to_owned(),
            count,
            errors: count - ok,
            duration_s: elapsed.as_secs_f64(),
            rps: count as f64 / seconds,
            eps: self.units as f64 / seconds,
            latency_ms: LatencySummary {
                avg: if count == 0 { 0.0 } else { self.latencies_us.mean() / 1_000.0 },
                min: if count == 0 { 0.0 } else { ms(self.latencies_us.min()) },
                max: if count == 0 { 0.0 } else { ms(self.latencies_us.max()) },
                p50: quantile(0.50),
                p90: quantile(0.90),
                p95: quantile(0.95),
                p99: quantile(0.99),
                p999: quantile(0.999),
            },
            status_codes: self.status_codes.clone(),
        }
    }
}

/// Latency figures, ms.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LatencySummary {
    /// Mean.
    pub avg: f64,
    /// Fastest.
    pub min: f64,
    /// Slowest.
    pub max: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
}

/// A run's figures; the JSON keys are a contract with external harnesses.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// Who routed the requests to shard leaders: `gateway` or `client` (pulse-client).
    pub routing: String,
    /// Requests measured (after the warm-up), successful or not.
    pub count: u64,
    /// Requests that did not end with OK.
    pub errors: u64,
    /// Measured time, seconds.
    pub duration_s: f64,
    /// Requests per second.
    pub rps: f64,
    /// Events (ingest) or customers (reads) per second, successful requests only.
    pub eps: f64,
    /// Latency distribution.
    pub latency_ms: LatencySummary,
    /// Responses per gRPC status code name.
    pub status_codes: BTreeMap<String, u64>,
}

impl Summary {
    /// The ghz-style text report.
    pub fn render(&self) -> String {
        let l = &self.latency_ms;
        let mut out = String::new();
        let _ = writeln!(out, "\nSummary ({}):", self.scenario);
        let _ = writeln!(out, "  Routing:      {}", self.routing);
        let _ = writeln!(out, "  Count:        {}", self.count);
        let _ = writeln!(out, "  Total:        {:.2} s", self.duration_s);
        let _ = writeln!(out, "  Slowest:      {:.2} ms", l.max);
        let _ = writeln!(out, "  Fastest:      {:.2} ms", l.min);
        let _ = writeln!(out, "  Average:      {:.2} ms", l.avg);
        let _ = writeln!(out, "  Requests/sec: {:.1}", self.rps);
        let _ = writeln!(out, "  Events/sec:   {:.1}", self.eps);
        let _ = writeln!(out, "\nLatency distribution:");
        for (label, value) in [("50", l.p50), ("90", l.p90), ("95", l.p95), ("99", l.p99), ("99.9", l.p999)] {
            let _ = writeln!(out, "  {label:>5} % in {value:.2} ms");
        }
        let _ = writeln!(out, "\nStatus code distribution:");
        for (code, count) in &self.status_codes {
            let _ = writeln!(out, "  [{code}]   {count} responses");
        }
        out
    }
}

/// The canonical name of a gRPC status code (`OK`, `UNAVAILABLE`, ...).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_rates_and_quantiles() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        for ms in 1..=100 {
            a.record(Duration::from_millis(ms), tonic::Code::Ok, 10);
        }
        b.record(Duration::from_millis(500), tonic::Code::Unavailable, 10);
        a.merge(&b);
        let summary = a.summarize("get", "client", Duration::from_secs(2));
        assert_eq!((summary.count, summary.errors), (101, 1));
        assert!((summary.rps - 50.5).abs() < 1e-9);
        assert!((summary.eps - 500.0).abs() < 1e-9, "failed requests carry no units");
        assert!((summary.latency_ms.p50 - 51.0).abs() < 0.1, "{}", summary.latency_ms.p50);
        assert!((summary.latency_ms.max - 500.0).abs() < 0.5);
        assert!((summary.latency_ms.min - 1.0).abs() < 0.01);
        assert_eq!(summary.status_codes["OK"], 100);
        assert_eq!(summary.status_codes["UNAVAILABLE"], 1);

        let json = serde_json::to_value(&summary).unwrap();
        for key in [
            "scenario",
            "routing",
            "count",
            "errors",
            "duration_s",
            "rps",
            "eps",
            "latency_ms",
            "status_codes",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
        for key in ["avg", "min", "max", "p50", "p90", "p95", "p99", "p999"] {
            assert!(json["latency_ms"].get(key).is_some(), "latency_ms.{key}");
        }
        assert_eq!(json["routing"], "client");
        assert!(summary.render().contains("[UNAVAILABLE]   1 responses"));
        assert!(summary.render().contains("Routing:      client"));
    }

    #[test]
    fn an_empty_run_reports_zeros() {
        let summary = Recorder::default().summarize("ingest", "gateway", Duration::from_secs(1));
        assert_eq!(summary.count, 0);
        assert_eq!(summary.latency_ms.p99, 0.0);
    }
}
