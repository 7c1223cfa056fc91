//! `WatchTransitions`: every shard's changelog streamed as it grows, resumable exactly once.
//!
//! A watch keeps one cursor `(raft_index, seq)` per shard: the last changelog entry it has
//! passed. It scans each shard's changelog after its cursor (in `spawn_blocking`), sends the
//! entries that pass the filter, and when every shard is drained waits for the node's
//! applied-entries signal (`LocalShards::applied_changes`, raised by the raft loop after an
//! entry's batch is written) — no polling. Sends go through a bounded channel, so a slow client
//! slows the scan down instead of growing a buffer; the watch ends when the client goes away.
//!
//! Resume token: `0x01 | (shard_id u64 | raft_index u64 | seq u32)*`, big-endian, one triple
//! per shard in shard-id order. The token on a transition is the cursor vector *including* that
//! transition, so resuming from it sends everything after it and nothing up to it. A shard
//! missing from a token is read from its oldest retained entry; an unknown shard id, a wrong
//! version or length is INVALID_ARGUMENT; a cursor below a shard's retention-pruned position is
//! OUT_OF_RANGE (its transitions are gone).

use std::collections::{BTreeMap, HashSet};

use pulse_node::ChangelogEntry;
use pulse_proto::{ProtoEnum, v1};
use pulse_scoring::Dimension;
use tokio::sync::{mpsc, watch};
use tonic::Status;
use tracing::debug;

use crate::error::{Result, ServerError};
use crate::local_shards::LocalShards;

/// Version byte of the resume token.
const TOKEN_VERSION: u8 = 1;
/// Bytes per shard cursor in the token.
const CURSOR_BYTES: usize = 20;
/// Changelog entries read per shard per scan.
const SCAN_LIMIT: usize = 256;

/// A shard's position in its changelog: the last entry passed, `None` = before the first.
type Cursor = Option<(u64, u32)>;

/// A validated watch: filters and one cursor per local shard (by position).
#[derive(Debug, Clone)]
pub(crate) struct Watch {
    dimensions: HashSet<i32>,
    segments: HashSet<String>,
    /// `(shard_id, cursor)` per shard position.
    cursors: Vec<(u64, Cursor)>,
}

fn bad_token(description: impl Into<String>) -> ServerError {
    ServerError::InvalidArgument { field: "resume_token".into(), description: description.into() }
}

/// Response metadata of `WatchTransitions`: the resume token of the watch's starting point
/// (hex), so a caller can resume from there even before the first transition arrives (a
/// cluster gateway re-opening a shard's stream on a new leader does).
pub(crate) const WATCH_START_HEADER: &str = "x-pulse-watch-start";

/// The resume token of a cursor vector.
pub(crate) fn encode_token(cursors: &[(u64, Cursor)]) -> Vec<u8> {
    let mut sorted: Vec<&(u64, Cursor)> = cursors.iter().collect();
    sorted.sort_by_key(|(shard_id, _)| *shard_id);
    let mut token = Vec::with_capacity(1 + CURSOR_BYTES * sorted.len());
    token.push(TOKEN_VERSION);
    for (shard_id, cursor) in sorted {
        let (index, seq) = cursor.unwrap_or((0, 0));
        token.extend_from_slice(&shard_id.to_be_bytes());
        token.extend_from_slice(&index.to_be_bytes());
        token.extend_from_slice(&seq.to_be_bytes());
    }
    token
}

/// The cursors of a token by shard id; `None` when malformed.
pub(crate) fn decode_token(token: &[u8]) -> Option<BTreeMap<u64, (u64, u32)>> {
    let (&version, body) = token.split_first()?;
    if version != TOKEN_VERSION || !body.len().is_multiple_of(CURSOR_BYTES) {
        return None;
    }
    let mut cursors = BTreeMap::new();
    for chunk in body.chunks_exact(CURSOR_BYTES) {
        let shard_id = u64::from_be_bytes(chunk[..8].try_into().ok()?);
        let index = u64::from_be_bytes(chunk[8..16].try_into().ok()?);
        let seq = u32::from_be_bytes(chunk[16..].try_into().ok()?);
        if cursors.insert(shard_id, (index, seq)).is_some() {
            return None;
        }
    }
    Some(cursors)
}

/// Whether `cursor` lies below the shard's pruned position (entries it has not seen are gone).
fn is_pruned_past(cursor: Cursor, pruned: Option<(u64, u32)>) -> bool {
    match pruned {
        Some(pruned) => cursor.is_none_or(|cursor| cursor < pruned),
        None => false,
    }
}

fn out_of_range(shard_id: u64) -> ServerError {
    ServerError::OutOfRange {
        field: "resume_token".into(),
        description: format!(
            "shard {shard_id} no longer retains the transitions after this token (older than the transition retention)"
        ),
    }
}

impl Watch {
    /// Validates `request` and positions the cursors: after the token's, or at each shard's
    /// last applied entry for an empty token (only transitions recorded from now on). Call
    /// after a read barrier on every shard.
    pub(crate) async fn start(request: v1::WatchTransitionsRequest, shards: &LocalShards) -> Result<Self> {
        let mut dimensions = HashSet::new();
        for (i, &value) in request.dimensions.iter().enumerate() {
            let field = format!("dimensions[{i}]");
            Dimension::from_proto_i32(value, &field)
                .map_err(|e| ServerError::InvalidArgument { field, description: e.to_string() })?;
            dimensions.insert(value);
        }
        let segments: HashSet<String> = request.segments.into_iter().collect();
        let token = if request.resume_token.is_empty() {
            None
        } else {
            let cursors = decode_token(&request.resume_token)
                .ok_or_else(|| bad_token("not a WatchTransitions resume token (wrong version or length)"))?;
            let known: HashSet<u64> = shards.configs().iter().map(|c| c.shard_id).collect();
            if let Some(unknown) = cursors.keys().find(|id| !known.contains(id)) {
                return Err(bad_token(format!("names shard {unknown}, which this cluster does not have")));
            }
            Some(cursors)
        };
        let readers: Vec<_> = (0..shards.len()).map(|p| shards.reader(p).clone()).collect();
        let cursors = tokio::task::spawn_blocking(move || -> Result<Vec<(u64, Cursor)>> {
            let mut cursors = Vec::with_capacity(readers.len());
            for reader in &readers {
                let shard_id = reader.shard().shard_id;
                let cursor = match &token {
                    // Nothing after the last applied entry: its seq u32::MAX passes every
                    // transition it recorded.
                    None => Some((reader.applied_index()?, u32::MAX)),
                    Some(token) => {
                        let cursor = token.get(&shard_id).copied();
                        if is_pruned_past(cursor, reader.pruned_changelog()?) {
                            return Err(out_of_range(shard_id));
                        }
                        cursor
                    }
                };
                cursors.push((shard_id, cursor));
            }
            Ok(cursors)
        })
        .await
        .map_err(|e| ServerError::Task(e.to_string()))??;
        Ok(Self { dimensions, segments, cursors })
    }

    /// The resume token of where this watch starts.
    pub(crate) fn start_token(&self) -> Vec<u8> {
        encode_token(&self.cursors)
    }

    fn wants(&self, transition: &v1::Transition) -> bool {
        (self.dimensions.is_empty() || self.dimensions.contains(&transition.dimension))
            && (self.segments.is_empty()
                || self.segments.contains(&transition.from)
                || self.segments.contains(&transition.to))
    }

    /// Scans every shard after its cursor: the entries per shard position, or OUT_OF_RANGE if
    /// retention pruned entries this watch had not passed yet.
    async fn scan(&self, shards: &LocalShards) -> Result<Vec<Vec<ChangelogEntry>>> {
        let readers: Vec<_> = (0..shards.len()).map(|p| shards.reader(p).clone()).collect();
        let cursors = self.cursors.clone();
        tokio::task::spawn_blocking(move || -> Result<Vec<Vec<ChangelogEntry>>> {
            let mut found = Vec::with_capacity(readers.len());
            for (reader, (shard_id, cursor)) in readers.iter().zip(cursors) {
                let entries = reader.changelog_after(cursor, SCAN_LIMIT)?;
                // Read after the scan: a prune racing with it is caught conservatively.
                if is_pruned_past(cursor, reader.pruned_changelog()?) {
                    return Err(out_of_range(shard_id));
                }
                found.push(entries);
            }
            Ok(found)
        })
        .await
        .map_err(|e| ServerError::Task(e.to_string()))?
    }

    /// Streams transitions into `out` until the client goes away, the server shuts down
    /// (`shutdown` becomes `true`; ends with UNAVAILABLE), or a read fails (sent as the
    /// stream's final status).
    pub(crate) async fn stream(
        mut self,
        shards: LocalShards,
        shutdown: watch::Receiver<bool>,
        out: mpsc::Sender<Result<v1::Transition, Status>>,
    ) {
        let mut applied = shards.applied_changes();
        let stopping = stopped(shutdown);
        tokio::pin!(stopping);
        loop {
            // Mark the signal seen before scanning: an entry written after this point wakes
            // the wait below even if the scan already saw it.
            applied.borrow_and_update();
            let found = match self.scan(&shards).await {
                Ok(found) => found,
                Err(error) => {
                    let _ = out.send(Err(Status::from(error))).await;
                    return;
                }
            };
            let mut drained = true;
            for (position, entries) in found.into_iter().enumerate() {
                drained &= entries.len() < SCAN_LIMIT;
                for entry in entries {
                    self.cursors[position].1 = Some((entry.raft_index, entry.seq));
                    if !self.wants(&entry.transition) {
                        continue;
                    }
                    let token = encode_token(&self.cursors);
                    tokio::select! {
                        sent = out.send(Ok(entry.transition.with_resume_token(token))) => {
                            if sent.is_err() {
                                debug!("transition watch closed by the client");
                                return;
                            }
                        }
                        // A client that stops reading must not hold a graceful shutdown.
                        () = &mut stopping => return,
                    }
                }
            }
            if drained {
                tokio::select! {
                    changed = applied.changed() => {
                        if changed.is_err() {
                            let _ = out.send(Err(Status::unavailable("the node is shutting down"))).await;
                            return;
                        }
                    }
                    () = out.closed() => {
                        debug!("transition watch closed by the client");
                        return;
                    }
                    () = &mut stopping => {
                        let _ = out.send(Err(Status::unavailable("the server is shutting down"))).await;
                        return;
                    }
                }
            }
        }
    }
}

/// Resolves once `shutdown` is `true`; never when its sender is gone without saying so.
async fn stopped(mut shutdown: watch::Receiver<bool>) {
    loop {
        let stopping = *shutdown.borrow_and_update();
        if stopping {
            return;
        }
        if shutdown.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let cursors = vec![(2, Some((10, 3))), (1, None)];
        let token = encode_token(&cursors);
        let decoded = decode_token(&token).unwrap();
        assert_eq!(decoded.get(&1), Some(&(0, 0)));
        assert_eq!(decoded.get(&2), Some(&(10, 3)));
        assert!(decode_token(&[]).is_none());
        assert!(decode_token(&[2]).is_none(), "unknown version");
        assert!(decode_token(&token[..token.len() - 1]).is_none(), "truncated");
        let mut twice = token.clone();
        twice.extend_from_slice(&token[1..21]);
        assert!(decode_token(&twice).is_none(), "a shard listed twice");
    }

    #[test]
    fn pruned_cursors_are_detected() {
        assert!(!is_pruned_past(Some((5, 0)), None));
        assert!(!is_pruned_past(Some((5, 0)), Some((5, 0))));
        assert!(is_pruned_past(Some((4, 9)), Some((5, 0))));
        assert!(is_pruned_past(None, Some((1, 0))));
    }
}
