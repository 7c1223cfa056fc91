//! The scenarios' workers: what one request of each scenario sends and counts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pulse_proto::v1;
use pulse_proto::v1::activity_service_client::ActivityServiceClient;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

use crate::driver::{Outcome, Worker};
use crate::population::Population;
use crate::report::Recorder;

/// The activity segments a `segment-list` request lists, one at random.
const LISTED_SEGMENTS: &[&str] = &["DAILY", "WEEKLY", "MONTHLY", "DORMANT", "CHURNED"];
/// Members per page of a `segment-list` request.
const LIST_PAGE_SIZE: u32 = 100;

/// What every worker of a run shares.
#[derive(Debug)]
pub struct Shared {
    /// The customers.
    pub population: Population,
    /// Events (ingest) or customers (batch-get) per request.
    pub batch_size: usize,
    /// Mixed: share of reads.
    pub read_ratio: f64,
    /// "Now" of event timestamps when fixed (manual-clock server); `None` = the wall clock.
    pub now_ms: Option<i64>,
    /// Makes this run's event ids unique, so a re-run sends new events, not duplicates.
    pub run_id: String,
    /// Next event number of the run.
    pub next_event: AtomicU64,
    /// Deadline of each request.
    pub timeout: Duration,
}

impl Shared {
    fn now_ms(&self) -> i64 {
        self.now_ms.unwrap_or_else(wall_clock_ms)
    }

    /// `count` new events of customers drawn by popularity, stamped within the last minute.
    fn fresh_events(&self, count: usize, rng: &mut StdRng) -> Vec<v1::Event> {
        let now = self.now_ms();
        (0..count)
            .map(|_| {
                let customer = self.population.pick(rng);
                let number = self.next_event.fetch_add(1, Ordering::Relaxed);
                let event_id = format!("{}-{number}", self.run_id);
                self.population.event(customer, event_id, now - rng.random_range(0..60_000), rng)
            })
            .collect()
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        request
    }
}

/// The wall clock, Unix ms.
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Which request a [`ClientWorker`] sends.
#[derive(Debug, Clone, Copy)]
pub enum Request {
    /// Ingest of `batch_size` events.
    Ingest,
    /// GetActivity of one customer.
    Get,
    /// BatchGetActivity of `batch_size` customers.
    BatchGet,
    /// GetActivity or Ingest by `read_ratio`.
    Mixed,
    /// One page of ListSegmentMembers.
    SegmentList,
}

/// A worker of the request/response scenarios.
pub struct ClientWorker {
    /// The gateway connection: every request with gateway routing, segment listings always.
    client: ActivityServiceClient<Channel>,
    /// With `--routing client`: the run's shared client, which sends Ingest, GetActivity and
    /// BatchGetActivity straight to shard leaders instead of through `client`'s gateway.
    routed: Option<pulse_client::Client>,
    shared: Arc<Shared>,
    rng: StdRng,
    request: Request,
}

impl ClientWorker {
    /// Worker number `index` on `channel`; its point requests go through `routed` when given.
    pub fn new(
        channel: Channel,
        routed: Option<pulse_client::Client>,
        shared: Arc<Shared>,
        seed: u64,
        index: usize,
        request: Request,
    ) -> Self {
        Self {
            client: ActivityServiceClient::new(channel),
            routed,
            shared,
            rng: StdRng::seed_from_u64(seed.wrapping_add(index as u64 + 1)),
            request,
        }
    }

    async fn ingest(&mut self) -> Outcome {
        let events = self.shared.fresh_events(self.shared.batch_size, &mut self.rng);
        let count = events.len() as u64;
        if let Some(routed) = &self.routed {
            return match routed.ingest(events).await {
                Ok(_) => (tonic::Code::Ok, count),
                Err(error) => (error.code(), 0),
            };
        }
        let request = self.shared.request(v1::IngestRequest { events });
        match self.client.ingest(request).await {
            Ok(_) => (tonic::Code::Ok, count),
            Err(status) => (status.code(), 0),
        }
    }

    async fn get(&mut self) -> Outcome {
        let customer_id = self.shared.population.pick(&mut self.rng).id.clone();
        if let Some(routed) = &self.routed {
            // as the gateway request below: as of the leader's now, default consistency
            return match routed.get_activity(&customer_id, 0, v1::Consistency::Unspecified).await {
                Ok(_) => (tonic::Code::Ok, 1),
                Err(error) => (error.code(), 0),
            };
        }
        let request = self.shared.request(v1::GetActivityRequest { customer_id, ..Default::default() });
        match self.client.get_activity(request).await {
            Ok(_) => (tonic::Code::Ok, 1),
            Err(status) => (status.code(), 0),
        }
    }

    async fn batch_get(&mut self) -> Outcome {
        let customer_ids = (0..self.shared.batch_size)
            .map(|_| self.shared.population.pick(&mut self.rng).id.clone())
            .collect();
        if let Some(routed) = &self.routed {
            return match routed.batch_get_activity(customer_ids, 0, v1::Consistency::Unspecified).await {
                Ok(response) => (tonic::Code::Ok, response.activities.len() as u64),
                Err(error) => (error.code(), 0),
            };
        }
        let request = self.shared.request(v1::BatchGetActivityRequest { customer_ids, ..Default::default() });
        match self.client.batch_get_activity(request).await {
            Ok(response) => (tonic::Code::Ok, response.get_ref().activities.len() as u64),
            Err(status) => (status.code(), 0),
        }
    }

    async fn segment_list(&mut self) -> Outcome {
        let segment = LISTED_SEGMENTS[self.rng.random_range(0..LISTED_SEGMENTS.len())];
        let request = self.shared.request(v1::ListSegmentMembersRequest {
            dimension: v1::Dimension::ActivitySegment as i32,
            segment: segment.to_owned(),
            page_size: LIST_PAGE_SIZE,
            page_token: String::new(),
        });
        let mut stream = match self.client.list_segment_members(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => return (status.code(), 0),
        };
        let mut members = 0;
        while let Some(next) = stream.next().await {
            match next {
                Ok(_) => members += 1,
                Err(status) => return (status.code(), 0),
            }
        }
        (tonic::Code::Ok, members)
    }
}

impl Worker for ClientWorker {
    async fn call(&mut self) -> Outcome {
        match self.request {
            Request::Ingest => self.ingest().await,
            Request::Get => self.get().await,
            Request::BatchGet => self.batch_get().await,
            Request::SegmentList => self.segment_list().await,
            Request::Mixed if self.rng.random_bool(self.shared.read_ratio) => self.get().await,
            Request::Mixed => self.ingest().await,
        }
    }
}

/// Where an event of the watch scenario is: acknowledged first, or its transition seen first.
#[derive(Debug, Clone, Copy)]
enum Sighting {
    Acknowledged(Instant),
    TransitionArrived,
}

/// The watch scenario's shared book: events whose acknowledgement or transition is still
/// awaited, and the latencies measured.
#[derive(Debug, Default)]
pub struct WatchBook {
    pending: Mutex<HashMap<String, Sighting>>,
    latencies: Mutex<Recorder>,
    measuring: std::sync::atomic::AtomicBool,
}

impl WatchBook {
    /// From now on, latencies are recorded (the warm-up is over).
    pub fn start_measuring(&self) {
        self.measuring.store(true, Ordering::Relaxed);
    }

    /// The measured latencies, and how many acknowledged events never showed a transition.
    pub fn finish(&self) -> (Recorder, u64) {
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let lost = pending.values().filter(|s| matches!(s, Sighting::Acknowledged(_))).count() as u64;
        (self.latencies.lock().unwrap_or_else(PoisonError::into_inner).clone(), lost)
    }

    /// Whether every acknowledged event's transition has arrived.
    pub fn settled(&self) -> bool {
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        !pending.values().any(|s| matches!(s, Sighting::Acknowledged(_)))
    }

    fn acknowledged(&self, event_id: String, at: Instant) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        match pending.remove(&event_id) {
            // the transition beat the acknowledgement: delivered no later than acknowledged
            Some(Sighting::TransitionArrived) => self.record(Duration::ZERO),
            _ => {
                pending.insert(event_id, Sighting::Acknowledged(at));
            }
        }
    }

    /// A transition caused by `event_id` arrived on the watch.
    pub fn transition_arrived(&self, event_id: &str) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        match pending.remove(event_id) {
            Some(Sighting::Acknowledged(at)) => self.record(at.elapsed()),
            Some(Sighting::TransitionArrived) | None => {
                pending.insert(event_id.to_owned(), Sighting::TransitionArrived);
            }
        }
    }

    fn record(&self, latency: Duration) {
        if self.measuring.load(Ordering::Relaxed) {
            self.latencies.lock().unwrap_or_else(PoisonError::into_inner).record(latency, tonic::Code::Ok, 1);
        }
    }
}

/// A worker of the watch scenario: ingests one event of a brand-new customer (whose first
/// event always moves it into an activity segment) and books the acknowledgement.
pub struct WatchWorker {
    client: ActivityServiceClient<Channel>,
    shared: Arc<Shared>,
    book: Arc<WatchBook>,
    rng: StdRng,
    index: usize,
}

impl WatchWorker {
    /// Worker number `index` on `channel`.
    pub fn new(channel: Channel, shared: Arc<Shared>, book: Arc<WatchBook>, seed: u64, index: usize) -> Self {
        let rng = StdRng::seed_from_u64(seed.wrapping_add(index as u64 + 1));
        Self { client: ActivityServiceClient::new(channel), shared, book, rng, index }
    }
}

impl Worker for WatchWorker {
    async fn call(&mut self) -> Outcome {
        let number = self.shared.next_event.fetch_add(1, Ordering::Relaxed);
        let mut event = self.shared.fresh_events(1, &mut self.rng).remove(0);
        event.customer_id = format!("{}-w{}-{number}", self.shared.run_id, self.index);
        let event_id = event.event_id.clone();
        let request = self.shared.request(v1::IngestRequest { events: vec![event] });
        match self.client.ingest(request).await {
            Ok(_) => {
                self.book.acknowledged(event_id, Instant::now());
                (tonic::Code::Ok, 1)
            }
            Err(status) => (status.code(), 0),
        }
    }
}

/// Reads the watch stream of activity-segment transitions into `book` until the stream ends;
/// transitions caused by other writers than this run (cause not starting with `run_id`) are
/// ignored. `watching` is told once the stream is established.
pub async fn follow_watch(
    channel: Channel,
    book: Arc<WatchBook>,
    run_id: String,
    watching: tokio::sync::oneshot::Sender<()>,
) -> Result<(), tonic::Status> {
    let mut client = ActivityServiceClient::new(channel);
    let request = v1::WatchTransitionsRequest {
        dimensions: vec![v1::Dimension::ActivitySegment as i32],
        segments: Vec::new(),
        resume_token: Vec::new(),
    };
    let mut stream = client.watch_transitions(request).await?.into_inner();
    let _ = watching.send(());
    while let Some(transition) = stream.message().await? {
        if transition.cause.starts_with(&run_id) {
            book.transition_arrived(&transition.cause);
        }
    }
    Ok(())
}
