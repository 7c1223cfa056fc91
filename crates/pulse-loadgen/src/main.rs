//! # pulse-loadgen — the load-test harness
//!
//! ```text
//! pulse-loadgen --addr HOST:PORT[,HOST:PORT] --scenario NAME --duration 30s --warmup 5s
//!               --concurrency N [--rate R] [--batch-size B] [--customers N] [--seed S] [--json FILE]
//!               [--routing gateway|client]
//! ```
//!
//! - `cli`: the command line (a contract with external harnesses).
//! - `population`: the synthetic customers (patterns, Zipf popularity, correlated categories,
//!   log-normal amounts), deterministic by seed; `--write-events FILE` writes their history.
//! - `scenario`: what one request of each scenario sends (`ingest`, `get`, `batch-get`,
//!   `mixed`, `segment-list`, `watch`).
//! - `driver`: closed and open loops (coordinated-omission corrected), warm-up, progress bar.
//! - `report`: HDR-histogram measurements, the ghz-style summary and its JSON.

mod cli;
mod driver;
mod population;
mod report;
mod scenario;

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use pulse_proto::v1;
use pulse_proto::v1::activity_service_client::ActivityServiceClient;
use tokio::task::JoinSet;
use tonic::transport::{Channel, Endpoint};

use crate::cli::{Cli, Routing, ScenarioKind};
use crate::driver::{Schedule, drive};
use crate::population::Population;
use crate::scenario::{ClientWorker, Request, Shared, WatchBook, WatchWorker, follow_watch, wall_clock_ms};

/// Events per Ingest request of the preload.
const PRELOAD_BATCH: usize = 500;
/// Ingest requests in flight during the preload.
const PRELOAD_CONCURRENCY: usize = 8;
/// How long the watch scenario waits, after the load, for the last transitions.
const WATCH_GRACE: Duration = Duration::from_secs(5);

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let population = Population::new(cli.customers, cli.seed);
    let now_ms = cli.now_ms.unwrap_or_else(wall_clock_ms);
    if let Some(path) = &cli.write_events {
        return write_events(&population, now_ms, cli.history_days, path);
    }
    let channels = connect(&cli).await?;
    let routing = cli.effective_routing();
    if routing != cli.routing {
        eprintln!(
            "pulse-loadgen: the {} scenario needs the gateways; --routing {} ignored",
            cli.scenario.name(),
            cli.routing.name()
        );
    }
    let routed = match routing {
        Routing::Gateway => None,
        Routing::Client => Some(connect_client(&cli).await?),
    };
    if cli.scenario.reads_customers() && !cli.no_preload {
        preload(&population, now_ms, cli.history_days, &channels).await?;
    }
    let shared = Arc::new(Shared {
        population,
        batch_size: cli.batch_size(),
        read_ratio: cli.read_ratio,
        now_ms: cli.now_ms,
        run_id: format!("lg{}-{}", cli.seed, wall_clock_ms()),
        next_event: AtomicU64::new(0),
        timeout: cli.timeout,
    });
    let schedule = Schedule { warmup: cli.warmup, duration: cli.duration, rate: cli.rate };
    let channel_of = |index: usize| channels[index % channels.len()].clone();
    let summary = if cli.scenario == ScenarioKind::Watch {
        let book = Arc::new(WatchBook::default());
        let (watching, established) = tokio::sync::oneshot::channel();
        let watch = tokio::spawn(follow_watch(channel_of(0), book.clone(), shared.run_id.clone(), watching));
        tokio::time::timeout(cli.timeout, established)
            .await
            .context("the watch stream did not open in time")?
            .context("the watch stream failed to open")?;
        let workers = (0..cli.concurrency)
            .map(|i| WatchWorker::new(channel_of(i), shared.clone(), book.clone(), cli.seed, i))
            .collect();
        let measuring = tokio::spawn({
            let book = book.clone();
            let warmup = cli.warmup;
            async move {
                tokio::time::sleep(warmup).await;
                book.start_measuring();
            }
        });
        let (_, elapsed) = drive(workers, schedule, cli.scenario.name()).await;
        measuring.abort();
        // The last acknowledged events' transitions may still be on their way.
        let deadline = tokio::time::Instant::now() + WATCH_GRACE;
        while !book.settled() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        watch.abort();
        let (mut latencies, lost) = book.finish();
        for _ in 0..lost {
            latencies.record(WATCH_GRACE, tonic::Code::DeadlineExceeded, 0);
        }
        latencies.summarize(cli.scenario.name(), routing.name(), elapsed)
    } else {
        let request = match cli.scenario {
            ScenarioKind::Ingest => Request::Ingest,
            ScenarioKind::Get => Request::Get,
            ScenarioKind::BatchGet => Request::BatchGet,
            ScenarioKind::Mixed => Request::Mixed,
            ScenarioKind::SegmentList | ScenarioKind::Watch => Request::SegmentList,
        };
        let workers = (0..cli.concurrency)
            .map(|i| ClientWorker::new(channel_of(i), routed.clone(), shared.clone(), cli.seed, i, request))
            .collect();
        let (recorder, elapsed) = drive(workers, schedule, cli.scenario.name()).await;
        recorder.summarize(cli.scenario.name(), routing.name(), elapsed)
    };
    print!("{}", summary.render());
    if let Some(path) = &cli.json {
        let json = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `--connections` channels spread over the `--addr` gateways, each connected before the run.
async fn connect(cli: &Cli) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(cli.connections);
    for i in 0..cli.connections {
        let address = &cli.addr[i % cli.addr.len()];
        let endpoint = Endpoint::from_shared(format!("http://{address}"))
            .with_context(|| format!("--addr {address}"))?
            .connect_timeout(cli.timeout)
            .tcp_nodelay(true);
        let channel =
            endpoint.connect().await.with_context(|| format!("connecting to the gateway at {address}"))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// The client of `--routing client`, seeded with the `--addr` gateways, each call bounded by
/// `--timeout`. One client (route table and per-node channels) is shared by all workers.
async fn connect_client(cli: &Cli) -> anyhow::Result<pulse_client::Client> {
    let config = pulse_client::ClientConfig { request_timeout: cli.timeout, ..Default::default() };
    pulse_client::Client::connect_with(&cli.addr, config)
        .await
        .context("--routing client: fetching the route table from --addr")
}

/// Sends every customer's history (deterministic event ids: re-sending is deduplicated).
async fn preload(
    population: &Population,
    now_ms: i64,
    days: u32,
    channels: &[Channel],
) -> anyhow::Result<()> {
    let events: Vec<v1::Event> =
        population.customers().iter().flat_map(|c| population.history(c, now_ms, days)).collect();
    eprintln!("pulse-loadgen: preloading {} events of {} customers", events.len(), population.len());
    let started = std::time::Instant::now();
    let mut batches = events.chunks(PRELOAD_BATCH).map(<[v1::Event]>::to_vec).enumerate();
    let mut in_flight = JoinSet::new();
    let (mut accepted, mut duplicates) = (0u64, 0u64);
    loop {
        while in_flight.len() < PRELOAD_CONCURRENCY {
            let Some((index, events)) = batches.next() else { break };
            let mut client = ActivityServiceClient::new(channels[index % channels.len()].clone());
            in_flight.spawn(async move { client.ingest(v1::IngestRequest { events }).await });
        }
        let Some(done) = in_flight.join_next().await else { break };
        let response = done?.context("preload: Ingest failed")?.into_inner();
        accepted += u64::from(response.accepted);
        duplicates += u64::from(response.duplicates);
    }
    eprintln!(
        "pulse-loadgen: preloaded in {:.1} s ({accepted} accepted, {duplicates} already there)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes the population's history as pulse.v1.Event JSON lines (the input of `pulsectl ingest`).
fn write_events(
    population: &Population,
    now_ms: i64,
    days: u32,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut written = 0u64;
    for customer in population.customers() {
        for event in population.history(customer, now_ms, days) {
            serde_json::to_writer(&mut out, &event)?;
            out.write_all(b"\n")?;
            written += 1;
        }
    }
    out.flush()?;
    eprintln!(
        "pulse-loadgen: wrote {written} events of {} customers to {}",
        population.len(),
        path.display()
    );
    Ok(())
}
