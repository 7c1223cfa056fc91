//! The command line. Its flags are relied on by external harnesses: add, never rename.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Load-test harness for Pulse: drives a scenario against one or more gateways and prints a
/// ghz-style summary (and `--json FILE` with the same figures).
#[derive(Debug, Clone, Parser)]
#[command(name = "pulse-loadgen", version, about)]
pub struct Cli {
    /// Gateways to spread connections over, `HOST:PORT[,HOST:PORT...]`.
    #[arg(long, value_delimiter = ',', required_unless_present = "write_events")]
    pub addr: Vec<String>,
    /// What to run.
    #[arg(long, value_enum, default_value_t = ScenarioKind::Get)]
    pub scenario: ScenarioKind,
    /// Measured time (after the warm-up), e.g. `30s`, `2m`.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Time run but not measured before the measurement starts.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Requests in flight at once (closed loop), or the most in flight (open loop).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// HTTP/2 connections, shared round-robin by the workers and spread over `--addr` (with
    /// `--routing client`, only the preload and the gateway-only scenarios use them).
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Open loop: requests per second on a fixed schedule, latencies measured from each
    /// request's scheduled start (corrected for coordinated omission). Unset = closed loop.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Events per Ingest request (ingest, mixed writes) or customers per BatchGetActivity;
    /// default 500 for ingest, 100 for batch-get, 10 for mixed writes.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Customers in the synthetic population.
    #[arg(long, default_value_t = 10_000)]
    pub customers: usize,
    /// Seed of the population and of every random choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the summary as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Mixed scenario: share of requests that are reads (GetActivity), the rest Ingest.
    #[arg(long, default_value_t = 0.9)]
    pub read_ratio: f64,
    /// Days of history per customer sent before the read scenarios (and written by
    /// `--write-events`).
    #[arg(long, default_value_t = 30)]
    pub history_days: u32,
    /// Do not send the population's history before a read scenario (it is already loaded).
    #[arg(long)]
    pub no_preload: bool,
    /// "Now" for event timestamps, Unix ms (for a server on a manual clock); default the wall clock.
    #[arg(long)]
    pub now_ms: Option<i64>,
    /// Deadline of each request.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Instead of load: write the population's history as pulse.v1.Event JSON lines to this
    /// file (for `pulsectl ingest`) and exit.
    #[arg(long)]
    pub write_events: Option<PathBuf>,
    /// Who routes each request to its shard's leader: `gateway` (a gateway forwards it, one
    /// extra hop) or `client` (pulse-client's route table, `--addr` as seeds). `client` applies
    /// to ingest, get, batch-get and mixed; segment-list and watch always use the gateways.
    #[arg(long, value_enum, default_value_t = Routing::Gateway)]
    pub routing: Routing,
}

/// Who routes requests to shard leaders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Routing {
    /// Requests go to the `--addr` gateways, which forward each one to its shard's leader.
    Gateway,
    /// `pulse_client::Client` sends each request straight to its shard's leader (an ingest
    /// batch split by shard).
    Client,
}

impl Routing {
    /// The name as given on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Routing::Gateway => "gateway",
            Routing::Client => "client",
        }
    }
}

/// The scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScenarioKind {
    /// Ingest batches of `--batch-size` events; `eps` counts events.
    Ingest,
    /// GetActivity of one customer drawn by popularity.
    Get,
    /// BatchGetActivity of `--batch-size` customers; `eps` counts customers.
    BatchGet,
    /// GetActivity and Ingest mixed by `--read-ratio`.
    Mixed,
    /// ListSegmentMembers of one activity segment, 100 members a page.
    SegmentList,
    /// End-to-end latency from an Ingest acknowledgement to the transition it causes arriving
    /// on a WatchTransitions stream.
    Watch,
}

impl ScenarioKind {
    /// The name as given on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ScenarioKind::Ingest => "ingest",
            ScenarioKind::Get => "get",
            ScenarioKind::BatchGet => "batch-get",
            ScenarioKind::Mixed => "mixed",
            ScenarioKind::SegmentList => "segment-list",
            ScenarioKind::Watch => "watch",
        }
    }

    /// The default `--batch-size` of the scenario.
    pub fn default_batch_size(self) -> usize {
        match self {
            ScenarioKind::Ingest => 500,
            ScenarioKind::BatchGet => 100,
            _ => 10,
        }
    }

    /// Whether the scenario's requests are point requests that `--routing client` can send
    /// straight to shard leaders (segment listings and the watch stream need a gateway).
    pub fn client_routable(self) -> bool {
        matches!(
            self,
            ScenarioKind::Ingest | ScenarioKind::Get | ScenarioKind::BatchGet | ScenarioKind::Mixed
        )
    }

    /// Whether the scenario reads customers that must exist first.
    pub fn reads_customers(self) -> bool {
        matches!(
            self,
            ScenarioKind::Get | ScenarioKind::BatchGet | ScenarioKind::Mixed | ScenarioKind::SegmentList
        )
    }
}

impl Cli {
    /// Checks the flags' values, naming the bad one.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.concurrency >= 1, "--concurrency must be at least 1");
        anyhow::ensure!(self.connections >= 1, "--connections must be at least 1");
        anyhow::ensure!(self.customers >= 1, "--customers must be at least 1");
        anyhow::ensure!(!self.duration.is_zero(), "--duration must be positive");
        if let Some(rate) = self.rate {
            anyhow::ensure!(rate.is_finite() && rate > 0.0, "--rate must be a positive number");
        }
        if let Some(batch_size) = self.batch_size {
            anyhow::ensure!((1..=10_000).contains(&batch_size), "--batch-size must be within 1..=10000");
        }
        anyhow::ensure!((0.0..=1.0).contains(&self.read_ratio), "--read-ratio must be within [0, 1]");
        anyhow::ensure!(self.history_days >= 1, "--history-days must be at least 1");
        if let Some(bad) = self.addr.iter().find(|a| a.is_empty() || !a.contains(':')) {
            anyhow::bail!("--addr: {bad:?} is not HOST:PORT");
        }
        Ok(())
    }

    /// The routing the run actually uses: `--routing`, except that scenarios which are not
    /// [client-routable](ScenarioKind::client_routable) always go through the gateways.
    pub fn effective_routing(&self) -> Routing {
        if self.scenario.client_routable() { self.routing } else { Routing::Gateway }
    }

    /// `--batch-size` or the scenario's default.
    pub fn batch_size(&self) -> usize {
        self.batch_size.unwrap_or_else(|| self.scenario.default_batch_size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_command_line_parses() {
        let cli = Cli::try_parse_from([
            "pulse-loadgen",
            "--addr",
            "127.0.0.1:50051,127.0.0.1:50052",
            "--scenario",
            "batch-get",
            "--duration",
            "30s",
            "--warmup",
            "5s",
            "--concurrency",
            "64",
            "--rate",
            "1000",
            "--batch-size",
            "100",
            "--customers",
            "5000",
            "--seed",
            "9",
            "--json",
            "out.json",
        ])
        .unwrap();
        cli.validate().unwrap();
        assert_eq!(cli.addr.len(), 2);
        assert_eq!(cli.scenario, ScenarioKind::BatchGet);
        assert_eq!(cli.duration, Duration::from_secs(30));
        assert_eq!(cli.rate, Some(1000.0));
        assert_eq!(cli.batch_size(), 100);
        assert_eq!(cli.routing, Routing::Gateway, "gateway routing is the default");
    }

    #[test]
    fn routing_client_parses_and_applies_to_point_scenarios_only() {
        let cli = Cli::try_parse_from(["pulse-loadgen", "--addr", "127.0.0.1:50051", "--routing", "client"])
            .unwrap();
        cli.validate().unwrap();
        assert_eq!(cli.routing, Routing::Client);
        assert_eq!(cli.effective_routing(), Routing::Client, "get is client-routable");
        let cli = Cli::try_parse_from([
            "pulse-loadgen",
            "--addr",
            "127.0.0.1:50051",
            "--routing",
            "client",
            "--scenario",
            "watch",
        ])
        .unwrap();
        assert_eq!(cli.effective_routing(), Routing::Gateway, "watch needs a gateway");
        let cli = Cli::try_parse_from(["pulse-loadgen", "--addr", "127.0.0.1:50051", "--routing", "gateway"])
            .unwrap();
        assert_eq!(cli.routing, Routing::Gateway);
        assert!(Cli::try_parse_from(["pulse-loadgen", "--addr", "x:1", "--routing", "direct"]).is_err());
    }

    #[test]
    fn bad_values_are_named() {
        let cli = Cli::try_parse_from(["pulse-loadgen", "--addr", "x:1", "--concurrency", "0"]).unwrap();
        assert!(cli.validate().unwrap_err().to_string().contains("--concurrency"));
        let cli = Cli::try_parse_from(["pulse-loadgen", "--addr", "nohost"]).unwrap();
        assert!(cli.validate().unwrap_err().to_string().contains("--addr"));
        assert!(Cli::try_parse_from(["pulse-loadgen"]).is_err(), "--addr is required for load");
        assert!(Cli::try_parse_from(["pulse-loadgen", "--write-events", "f.jsonl"]).is_ok());
    }
}
