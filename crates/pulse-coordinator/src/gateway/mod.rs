//! The gateway: the public gRPC services of `pulse.v1`, served by every `pulsed` process.
//!
//! Handlers are thin adapters (STYLE rule 6): take the request, convert and validate it, call
//! [`LocalShards`](crate::LocalShards), convert the answer. Every error becomes a
//! `tonic::Status` in [`status`] and nowhere else.
//!
//! - [`ActivityGateway`]: `pulse.v1.ActivityService` (ingest, point reads, erasure, segment
//!   listings; `segment_listing` merges the shards' member lists; `collective` merges the
//!   per-shard partials of stats, migration, top-K and affinity; `watch` streams transitions).
//! - [`AdminGateway`]: `pulse.v1.AdminService` (scoring config, custom segment definitions,
//!   lifetime fit, RFM edges, the manual clock).
//! - [`ClusterGateway`]: `pulse.v1.ClusterService` (UNIMPLEMENTED until the cluster of issue 5).

mod activity;
mod admin;
mod cluster;
mod collective;
mod segment_listing;
mod status;
mod watch;

pub use activity::ActivityGateway;
pub use admin::AdminGateway;
pub use cluster::ClusterGateway;
pub(crate) use collective::DEFAULT_TOP_LIMIT;
pub(crate) use segment_listing::segment_page_token;
pub(crate) use watch::{
    WATCH_START_HEADER, decode_token as decode_watch_token, encode_token as encode_watch_token,
};

/// Responses of one `IngestStream` buffered before the server stops reading requests.
const INGEST_STREAM_BUFFER: usize = 16;

/// Answers an `IngestStream`: each request through `ingest`, one response per request in order;
/// the stream ends after the first failure (sent as its status) or when the client goes away.
pub(crate) fn answer_ingest_stream<F, Fut>(
    mut requests: tonic::Streaming<pulse_proto::v1::IngestRequest>,
    ingest: F,
) -> tokio_stream::wrappers::ReceiverStream<Result<pulse_proto::v1::IngestResponse, tonic::Status>>
where
    F: Fn(Vec<pulse_proto::v1::Event>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<pulse_proto::v1::IngestResponse, tonic::Status>> + Send,
{
    use tokio_stream::StreamExt;
    let (responses, stream) = tokio::sync::mpsc::channel(INGEST_STREAM_BUFFER);
    tokio::spawn(async move {
        while let Some(next) = requests.next().await {
            let answer = match next {
                Ok(request) => ingest(request.events).await,
                Err(status) => Err(status),
            };
            let failed = answer.is_err();
            if responses.send(answer).await.is_err() || failed {
                break;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(stream)
}
