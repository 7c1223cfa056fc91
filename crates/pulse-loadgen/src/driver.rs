//! [`drive`]: runs workers in a closed or open loop for warm-up + duration, with a live progress
//! bar, and gathers what they measured.
//!
//! - **Closed loop** (`rate = None`): each of `concurrency` workers sends its next request as
//!   soon as the previous one answers; latency = the request's own time.
//! - **Open loop** (`rate = Some(r)`): request `k` is scheduled at `start + k / r` whether or not
//!   earlier ones have answered; `concurrency` workers take the schedule's slots in turn. The
//!   latency is measured from the *scheduled* start, so a stalled server is charged for the
//!   requests it delayed (no coordinated omission).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::report::Recorder;

/// One request's outcome: its status and the units (events, customers) it carried.
pub type Outcome = (tonic::Code, u64);

/// A load worker: sends one request per call.
pub trait Worker: Send + 'static {
    /// Sends one request and waits for its answer.
    fn call(&mut self) -> impl Future<Output = Outcome> + Send;
}

/// How long and how hard to drive.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Run but not measured first.
    pub warmup: Duration,
    /// Measured.
    pub duration: Duration,
    /// Open-loop rate, requests/s; `None` = closed loop.
    pub rate: Option<f64>,
}

/// Live counters for the progress bar.
#[derive(Debug, Default)]
struct Live {
    requests: AtomicU64,
    errors: AtomicU64,
}

/// Runs `workers` on `schedule`; returns the merged measurements and the measured time.
pub async fn drive<W: Worker>(workers: Vec<W>, schedule: Schedule, label: &str) -> (Recorder, Duration) {
    let start = Instant::now();
    let measure_from = start + schedule.warmup;
    let end = measure_from + schedule.duration;
    let live = Arc::new(Live::default());
    let ticket = Arc::new(AtomicU64::new(0));
    let progress = progress_bar(label, schedule, live.clone(), start);

    let mut running = JoinSet::new();
    for mut worker in workers {
        let (live, ticket) = (live.clone(), ticket.clone());
        running.spawn(async move {
            let mut recorder = Recorder::default();
            loop {
                let began = match schedule.rate {
                    None => Instant::now(),
                    Some(rate) => {
                        let k = ticket.fetch_add(1, Ordering::Relaxed);
                        let slot = start + Duration::from_secs_f64(k as f64 / rate);
                        // Every slot before the end is sent, however late (that lateness is
                        // the latency); a server too slow to catch up within another
                        // `duration` gets the rest of the schedule dropped.
                        if slot >= end || Instant::now() >= end + schedule.duration {
                            break;
                        }
                        tokio::time::sleep_until(slot).await;
                        slot
                    }
                };
                if began >= end {
                    break;
                }
                let (code, units) = worker.call().await;
                live.requests.fetch_add(1, Ordering::Relaxed);
                if code != tonic::Code::Ok {
                    live.errors.fetch_add(1, Ordering::Relaxed);
                }
                if began >= measure_from {
                    recorder.record(began.elapsed(), code, units);
                }
            }
            recorder
        });
    }
    let mut total = Recorder::default();
    while let Some(joined) = running.join_next().await {
        match joined {
            Ok(recorder) => total.merge(&recorder),
            Err(error) => eprintln!("pulse-loadgen: a worker failed: {error}"),
        }
    }
    progress.abort();
    // Requests in flight at the end finish after `end`; they are measured, so is their time.
    (total, Instant::now().saturating_duration_since(measure_from).max(schedule.duration))
}

/// A progress bar on stderr (hidden when stderr is not a terminal) showing elapsed time, the
/// current request rate and the errors so far; the returned task updates it.
fn progress_bar(
    label: &str,
    schedule: Schedule,
    live: Arc<Live>,
    start: Instant,
) -> tokio::task::JoinHandle<()> {
    let total_ms = (schedule.warmup + schedule.duration).as_millis() as u64;
    let bar = ProgressBar::with_draw_target(Some(total_ms), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {elapsed_precise} {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_owned());
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_millis(250));
        let (mut last_requests, mut last_at) = (0, Instant::now());
        loop {
            ticker.tick().await;
            let requests = live.requests.load(Ordering::Relaxed);
            let now = Instant::now();
            let rate =
                (requests - last_requests) as f64 / now.duration_since(last_at).as_secs_f64().max(1e-3);
            (last_requests, last_at) = (requests, now);
            let phase = if now < start + schedule.warmup { "warm-up" } else { "measuring" };
            bar.set_position((now.duration_since(start).as_millis() as u64).min(total_ms));
            bar.set_message(format!(
                "{phase} {rate:.0} req/s, {requests} requests, {} errors",
                live.errors.load(Ordering::Relaxed)
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers after a fixed delay, failing every tenth call.
    struct Fixed {
        delay: Duration,
        calls: u64,
    }

    impl Worker for Fixed {
        async fn call(&mut self) -> Outcome {
            tokio::time::sleep(self.delay).await;
            self.calls += 1;
            if self.calls.is_multiple_of(10) { (tonic::Code::Unavailable, 0) } else { (tonic::Code::Ok, 2) }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn closed_loop_measures_after_the_warmup_only() {
        let workers = (0..4).map(|_| Fixed { delay: Duration::from_millis(10), calls: 0 }).collect();
        let schedule =
            Schedule { warmup: Duration::from_secs(1), duration: Duration::from_secs(2), rate: None };
        let (recorder, elapsed) = drive(workers, schedule, "test").await;
        let summary = recorder.summarize("test", "gateway", elapsed);
        // 4 workers × 100 calls/s × 2 s, with paused time exact to a call or two
        assert!((790..=810).contains(&summary.count), "{}", summary.count);
        assert!((summary.latency_ms.p50 - 10.0).abs() < 0.1);
        assert_eq!(summary.errors, summary.status_codes.get("UNAVAILABLE").copied().unwrap_or(0));
        assert!(summary.errors > 70);
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_charges_queueing_to_latency() {
        // One worker taking 20 ms per request against an 80 req/s schedule: every request waits
        // for the previous one, so latency from the scheduled start keeps growing; all 80
        // scheduled requests are sent, the last one 1.6 s after the start instead of 0.99 s.
        let workers = vec![Fixed { delay: Duration::from_millis(20), calls: 0 }];
        let schedule =
            Schedule { warmup: Duration::ZERO, duration: Duration::from_secs(1), rate: Some(80.0) };
        let (recorder, elapsed) = drive(workers, schedule, "test").await;
        let summary = recorder.summarize("test", "gateway", elapsed);
        assert_eq!(summary.count, 80);
        assert!(summary.latency_ms.max > 550.0, "queueing shows: {}", summary.latency_ms.max);
        assert!((summary.latency_ms.min - 20.0).abs() < 0.1);
    }
}
