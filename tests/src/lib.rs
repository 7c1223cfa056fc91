//! # pulse-tests — shared harness of the end-to-end tests
//!
//! - [`TestServer`]: a standalone server started in-process on `127.0.0.1:0` over a directory,
//!   stopped through its shutdown future.
//! - [`bounded`]: every wait of a test is bounded by [`WAIT`].
//! - [`totals`]: purchase count and spend per customer of the events a test sent.
//! - [`cluster`]: a real cluster of `pulsed` processes (coordinator + nodes) and its waits.
//! - [`process`]: real `pulsed` child processes (standalone, coordinator, node) for crash and
//!   cluster tests.
//! - [`netns`]: a private network of Linux network namespaces (one per process) that a test
//!   can cut a process off from and heal (partition tests; needs root and iproute2).
//! - Time constants of the manual clock the tests run on.

pub mod cluster;
pub mod netns;
pub mod process;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use pulse_coordinator::{ClockKind, ServerConfig, Standalone};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// 2026-01-05T00:00:00Z (a Monday).
pub const DAY0: i64 = 1_767_571_200_000;
/// One day, ms.
pub const DAY_MS: i64 = 86_400_000;
/// The manual clock of [`TestServer::start`]: ten days after [`DAY0`].
pub const START_MS: i64 = DAY0 + 10 * DAY_MS;
/// Bound of every single wait of a test.
pub const WAIT: Duration = Duration::from_secs(20);

/// A standalone server on 127.0.0.1:0 over a directory.
pub struct TestServer {
    /// Where it listens.
    pub address: SocketAddr,
    stop: oneshot::Sender<()>,
    serving: JoinHandle<pulse_coordinator::Result<()>>,
}

impl TestServer {
    /// A server with a manual clock at [`START_MS`] and otherwise default settings.
    pub async fn start(data_dir: &Path) -> Self {
        Self::start_with(ServerConfig {
            data_dir: data_dir.to_path_buf(),
            clock: ClockKind::Manual,
            manual_clock_start_ms: START_MS,
            ..ServerConfig::default()
        })
        .await
    }

    /// A server with `config` (its `listen` is ignored: the server binds 127.0.0.1:0).
    pub async fn start_with(config: ServerConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = bounded(Standalone::start(config)).await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(server.serve(listener, async move {
            let _ = stopped.await;
        }));
        Self { address, stop, serving }
    }

    /// A connected channel to the server.
    pub async fn channel(&self) -> Channel {
        bounded(Channel::from_shared(format!("http://{}", self.address)).unwrap().connect()).await.unwrap()
    }

    /// Shuts the server down gracefully and waits until it has stopped.
    pub async fn stop(self) {
        self.stop.send(()).unwrap();
        bounded(self.serving).await.unwrap().unwrap();
    }
}

/// `future`, failing the test if it takes longer than [`WAIT`].
pub async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future).await.expect("bounded wait timed out")
}

/// Purchase count and spend per customer of `events` (what a test sent, to compare with what a
/// server holds).
pub fn totals<'a>(
    events: impl Iterator<Item = &'a pulse_proto::v1::Event>,
) -> std::collections::BTreeMap<String, (u64, f64)> {
    let mut totals = std::collections::BTreeMap::new();
    for event in events {
        let entry = totals.entry(event.customer_id.clone()).or_insert((0, 0.0));
        entry.0 += 1;
        entry.1 += event.amount;
    }
    totals
}
