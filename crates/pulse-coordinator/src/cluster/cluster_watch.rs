//! `WatchTransitions` through a cluster gateway: one watch per shard on its leader, merged.
//!
//! Every shard's changelog is replicated byte for byte, so a shard's cursor `(raft_index, seq)`
//! means the same on every replica: when a shard's stream breaks (its leader died, moved, or
//! shut down), it is re-opened on the new leader from the last cursor this gateway passed on,
//! and nothing is skipped or repeated. The merged stream's resume token holds every shard's
//! cursor (the same format as a single node's), so a client resumes through any gateway.
//!
//! Transitions are passed on only once every shard's stream has started (each answers its
//! starting cursor in the `x-pulse-watch-start` header), so a token never lacks a shard.

use std::collections::{BTreeMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use pulse_proto::v1;
use pulse_proto::v1::activity_service_client::ActivityServiceClient;
use pulse_proto::v1::activity_service_server::ActivityService;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Status};
use tracing::debug;

use super::router::{Router, SHARDS_HEADER, Target, retryable};
use super::routing_gateway::LocalReplicas;
use crate::gateway::{WATCH_START_HEADER, decode_watch_token, encode_watch_token};

/// Events buffered from the shards' streams before they wait for the merger.
const SHARD_BUFFER: usize = 64;

/// A shard's stream of transitions, from either side.
type TransitionStream = Pin<Box<dyn Stream<Item = Result<v1::Transition, Status>> + Send>>;

/// What a shard's follower tells the merger.
enum ShardEvent {
    /// The shard's stream started at this cursor (a one-shard token).
    Started(u64, Vec<u8>),
    /// A transition of the shard, its token a one-shard token.
    Transition(u64, v1::Transition),
    /// The watch cannot go on (a bad or expired token, no leader before the deadline).
    Failed(Status),
}

/// Where a merged watch reads from.
#[derive(Clone)]
pub(crate) struct WatchSources {
    pub(crate) router: Arc<Router>,
    pub(crate) local: Option<LocalReplicas>,
    /// Deadline of opening one shard's stream (retries included).
    pub(crate) open_timeout: Duration,
}

/// Streams the merged watch of `request` into `out` until the client goes away, the process
/// shuts down, or a shard's stream fails for good. `ready` is told once every shard's stream
/// has started (the watch then covers everything recorded from this point), or why none could.
pub(crate) async fn merged_watch(
    sources: WatchSources,
    request: v1::WatchTransitionsRequest,
    shutdown: watch::Receiver<bool>,
    out: mpsc::Sender<Result<v1::Transition, Status>>,
    ready: oneshot::Sender<Result<(), Status>>,
) {
    let mut ready = Some(ready);
    let fail = |ready: &mut Option<oneshot::Sender<Result<(), Status>>>, status: Status| match ready.take() {
        Some(ready) => {
            let _ = ready.send(Err(status));
            None
        }
        None => Some(status),
    };
    sources.router.wait_for_shards(Instant::now() + sources.open_timeout).await;
    let shard_ids: Vec<u64> = sources.router.shards().iter().map(|s| s.shard_id).collect();
    if shard_ids.is_empty() {
        let _ = fail(&mut ready, Status::unavailable("the cluster has no shards yet"));
        return;
    }
    let resumed = if request.resume_token.is_empty() {
        None
    } else {
        match decode_watch_token(&request.resume_token) {
            Some(cursors) if cursors.keys().all(|id| shard_ids.contains(id)) => Some(cursors),
            Some(_) => {
                let _ = out.send(Err(bad_token("names a shard this cluster does not have"))).await;
                return;
            }
            None => {
                let _ = out
                    .send(Err(bad_token("not a WatchTransitions resume token (wrong version or length)")))
                    .await;
                return;
            }
        }
    };
    let (events, mut inbox) = mpsc::channel(SHARD_BUFFER);
    let mut followers = JoinSet::new();
    for &shard_id in &shard_ids {
        // Resumed: each shard from its cursor in the token ((0, 0) = before the first entry,
        // as a missing shard means on a single node). New: from now, as each shard says.
        let token = resumed.as_ref().map(|cursors| {
            encode_watch_token(&[(shard_id, Some(cursors.get(&shard_id).copied().unwrap_or((0, 0))))])
        });
        let base = v1::WatchTransitionsRequest { resume_token: Vec::new(), ..request.clone() };
        followers.spawn(follow_shard(sources.clone(), shard_id, base, token, events.clone()));
    }
    drop(events);
    let mut cursors: BTreeMap<u64, Option<(u64, u32)>> = shard_ids
        .iter()
        .map(|&id| (id, resumed.as_ref().map(|c| c.get(&id).copied().unwrap_or((0, 0)))))
        .collect();
    let mut starting: HashSet<u64> = shard_ids.iter().copied().collect();
    let mut held: Vec<(u64, v1::Transition)> = Vec::new();
    let stopping = stopped(shutdown);
    tokio::pin!(stopping);
    loop {
        let event = tokio::select! {
            event = inbox.recv() => event,
            () = out.closed() => return,
            () = &mut stopping => {
                let _ = out.send(Err(Status::unavailable("the server is shutting down"))).await;
                return;
            }
        };
        let Some(event) = event else { return };
        match event {
            ShardEvent::Started(shard_id, token) => {
                if starting.remove(&shard_id) && resumed.is_none() {
                    let cursor = decode_watch_token(&token).and_then(|c| c.get(&shard_id).copied());
                    cursors.insert(shard_id, cursor);
                }
                if starting.is_empty() {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Ok(()));
                    }
                    for (shard_id, transition) in std::mem::take(&mut held) {
                        if !pass_on(&mut cursors, shard_id, transition, &out).await {
                            return;
                        }
                    }
                }
            }
            ShardEvent::Transition(shard_id, transition) if !starting.is_empty() => {
                held.push((shard_id, transition))
            }
            ShardEvent::Transition(shard_id, transition) => {
                if !pass_on(&mut cursors, shard_id, transition, &out).await {
                    return;
                }
            }
            ShardEvent::Failed(status) => {
                if let Some(status) = fail(&mut ready, status) {
                    let _ = out.send(Err(status)).await;
                }
                return;
            }
        }
    }
}

/// Moves the shard's cursor to the transition's and sends it with the merged token; false when
/// the client is gone.
async fn pass_on(
    cursors: &mut BTreeMap<u64, Option<(u64, u32)>>,
    shard_id: u64,
    mut transition: v1::Transition,
    out: &mpsc::Sender<Result<v1::Transition, Status>>,
) -> bool {
    if let Some(cursor) = decode_watch_token(&transition.resume_token).and_then(|c| c.get(&shard_id).copied())
    {
        cursors.insert(shard_id, Some(cursor));
    }
    let all: Vec<(u64, Option<(u64, u32)>)> = cursors.iter().map(|(id, cursor)| (*id, *cursor)).collect();
    transition.resume_token = encode_watch_token(&all);
    out.send(Ok(transition)).await.is_ok()
}

/// Follows one shard: opens its watch on the leader (from `token`, or from now), passes the
/// transitions on, and re-opens from the last one when the stream breaks.
async fn follow_shard(
    sources: WatchSources,
    shard_id: u64,
    base: v1::WatchTransitionsRequest,
    mut token: Option<Vec<u8>>,
    events: mpsc::Sender<ShardEvent>,
) {
    let mut started = false;
    loop {
        let request =
            v1::WatchTransitionsRequest { resume_token: token.clone().unwrap_or_default(), ..base.clone() };
        let deadline = Instant::now() + sources.open_timeout;
        let opened = sources
            .router
            .call_leader(shard_id, deadline, |target| {
                open(sources.local.clone(), target, shard_id, request.clone())
            })
            .await;
        let (start, mut stream) = match opened {
            Ok(opened) => opened,
            Err(status) => {
                let _ = events.send(ShardEvent::Failed(status)).await;
                return;
            }
        };
        if !started {
            started = true;
            let start = token.clone().unwrap_or(start);
            token = Some(start.clone());
            if events.send(ShardEvent::Started(shard_id, start)).await.is_err() {
                return;
            }
        }
        loop {
            match stream.next().await {
                Some(Ok(transition)) => {
                    token = Some(transition.resume_token.clone());
                    if events.send(ShardEvent::Transition(shard_id, transition)).await.is_err() {
                        return;
                    }
                }
                Some(Err(status)) if !retryable(&status) => {
                    let _ = events.send(ShardEvent::Failed(status)).await;
                    return;
                }
                Some(Err(status)) => {
                    debug!(shard_id, %status, "shard watch broke; re-opening on the leader");
                    break;
                }
                None => {
                    debug!(shard_id, "shard watch ended; re-opening on the leader");
                    break;
                }
            }
        }
    }
}

/// Opens the watch of one shard on `target`: its starting token and its stream.
async fn open(
    local: Option<LocalReplicas>,
    target: Target,
    shard_id: u64,
    request: v1::WatchTransitionsRequest,
) -> Result<(Vec<u8>, TransitionStream), Status> {
    let response = match target {
        Target::Local => {
            let local = local.ok_or_else(|| Status::unavailable("this process hosts no replica"))?;
            let response = local.gateway(&[shard_id])?.watch_transitions(Request::new(request)).await?;
            let (metadata, stream, _) = response.into_parts();
            (metadata, Box::pin(stream) as TransitionStream)
        }
        Target::Remote(channel) => {
            // No deadline: the stream lives as long as the watch.
            let mut call = Request::new(request);
            call.metadata_mut()
                .insert(SHARDS_HEADER, shard_id.to_string().parse().expect("digits are valid metadata"));
            let response = ActivityServiceClient::new(channel).watch_transitions(call).await?;
            let (metadata, stream, _) = response.into_parts();
            (metadata, Box::pin(stream) as TransitionStream)
        }
    };
    let (metadata, stream) = response;
    let start = metadata
        .get(WATCH_START_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(decode_hex)
        .ok_or_else(|| {
        Status::internal(format!("shard {shard_id}: the watch did not say where it starts"))
    })?;
    Ok((start, stream))
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

fn bad_token(description: &str) -> Status {
    Status::from(crate::error::ServerError::InvalidArgument {
        field: "resume_token".into(),
        description: description.to_owned(),
    })
}

/// Resolves once `shutdown` is `true`; never when its sender is gone without saying so.
async fn stopped(mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
