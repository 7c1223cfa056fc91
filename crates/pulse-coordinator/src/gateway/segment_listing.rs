//! `ListSegmentMembers`: one segment's members across every local shard, streamed in
//! customer-id order with resumable page tokens.
//!
//! Each shard's index lists its members in customer-id order, so the listing is a k-way merge:
//! to emit the next `n` members, take up to `n + 1` from every shard after the cursor, sort, and
//! emit the first `n` (the extra one tells whether the segment goes on). A page token is the
//! hex encoding of `dimension:segment` and the last customer id emitted, so a token cannot be
//! replayed against another segment.

use pulse_proto::{ProtoEnum, v1};
use pulse_scoring::{ActivityLevel, ActivitySegment, Dimension, Lifecycle, RfmSegment};
use tokio::sync::mpsc;
use tonic::Status;
use tracing::warn;

use crate::clock::Clock;
use crate::error::{Result, ServerError};
use crate::local_shards::LocalShards;

/// Members read from each shard per round of the merge when the page is unbounded.
const ROUND_SIZE: usize = 1_000;

/// A validated listing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listing {
    dimension: Dimension,
    segment: String,
    /// Continue after this customer id.
    after: Option<String>,
    /// Members to stream at most; `None` = the whole segment.
    limit: Option<usize>,
}

impl Listing {
    /// Validates `request` against the segment vocabularies and the custom segments defined.
    pub(crate) fn parse(request: v1::ListSegmentMembersRequest, shards: &LocalShards) -> Result<Self> {
        let invalid = |field: &str, description: String| ServerError::InvalidArgument {
            field: field.to_owned(),
            description,
        };
        let dimension = Dimension::from_proto_i32(request.dimension, "dimension")
            .map_err(|e| invalid("dimension", e.to_string()))?;
        let segment = request.segment;
        let known = match dimension {
            Dimension::ActivitySegment => ActivitySegment::from_name(&segment).is_some(),
            Dimension::Lifecycle => Lifecycle::from_name(&segment).is_some(),
            Dimension::Level => ActivityLevel::from_name(&segment).is_some(),
            Dimension::RfmSegment => RfmSegment::from_name(&segment).is_some(),
            Dimension::Custom => {
                if shards.is_empty() || !shards.reader(0).has_custom_segment(&segment) {
                    return Err(ServerError::SegmentNotFound { segment });
                }
                true
            }
        };
        if !known {
            return Err(invalid("segment", format!("{segment:?} is not a segment of {}", dimension.name())));
        }
        let after = match request.page_token.as_str() {
            "" => None,
            token => Some(
                decode_token(token, dimension, &segment)
                    .ok_or_else(|| invalid("page_token", "not a token of this segment's listing".into()))?,
            ),
        };
        let limit = match request.page_size {
            0 => None,
            size => Some(size as usize),
        };
        Ok(Self { dimension, segment, after, limit })
    }

    /// Streams the members into `out` until the page is full, the segment ends, or the client
    /// goes away.
    pub(crate) async fn stream(
        mut self,
        shards: LocalShards,
        clock: Clock,
        out: mpsc::Sender<Result<v1::SegmentMember, Status>>,
    ) {
        let now_ms = clock.now_ms();
        loop {
            let round = self.limit.map_or(ROUND_SIZE, |left| left.min(ROUND_SIZE));
            if round == 0 {
                return;
            }
            let mut merged = Vec::new();
            for position in 0..shards.len() {
                let reader = shards.reader(position);
                match reader.segment_members(self.dimension, &self.segment, self.after.as_deref(), round + 1)
                {
                    Ok(members) => merged.extend(members),
                    Err(error) => {
                        let _ = out.send(Err(Status::from(ServerError::Node(error)))).await;
                        return;
                    }
                }
            }
            merged.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let segment_goes_on = merged.len() > round;
            merged.truncate(round);
            let emitted = merged.len();
            for (i, (customer_id, since_ms)) in merged.into_iter().enumerate() {
                let position = shards.position_of(&customer_id);
                let activity_index = match shards.reader(position).activity(&customer_id, now_ms) {
                    Ok(Some(activity)) => activity.activity_index,
                    // Erased or updated past `now` since the scan: still a member as scanned.
                    Ok(None) | Err(_) => 0.0,
                };
                let last_of_segment = !segment_goes_on && i + 1 == emitted;
                let next_page_token = if last_of_segment {
                    String::new()
                } else {
                    encode_token(self.dimension, &self.segment, &customer_id)
                };
                self.after = Some(customer_id.clone());
                let member = v1::SegmentMember { customer_id, activity_index, since_ms, next_page_token };
                if out.send(Ok(member)).await.is_err() {
                    warn!(segment = %self.segment, "segment listing abandoned by the client");
                    return;
                }
            }
            if let Some(left) = self.limit.as_mut() {
                *left -= emitted;
            }
            if !segment_goes_on {
                return;
            }
        }
    }
}

fn token_scope(dimension: Dimension, segment: &str) -> String {
    format!("{}:{segment}\0", dimension.name())
}

/// The page token of a listing of `segment` of `dimension` (the wire enum value) that resumes
/// after `customer_id`; a cluster gateway merging the shards' listings makes its own.
pub(crate) fn segment_page_token(dimension: i32, segment: &str, customer_id: &str) -> String {
    match Dimension::from_proto_i32(dimension, "dimension") {
        Ok(dimension) => encode_token(dimension, segment, customer_id),
        Err(_) => String::new(),
    }
}

fn encode_token(dimension: Dimension, segment: &str, customer_id: &str) -> String {
    let plain = format!("{}{customer_id}", token_scope(dimension, segment));
    plain.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_token(token: &str, dimension: Dimension, segment: &str) -> Option<String> {
    if !token.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..token.len()).step_by(2).map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok()).collect();
    let plain = String::from_utf8(bytes?).ok()?;
    let customer_id = plain.strip_prefix(&token_scope(dimension, segment))?;
    (!customer_id.is_empty()).then(|| customer_id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_stay_in_their_segment() {
        let token = encode_token(Dimension::Lifecycle, "NEW", "alice");
        assert_eq!(decode_token(&token, Dimension::Lifecycle, "NEW").as_deref(), Some("alice"));
        assert_eq!(decode_token(&token, Dimension::Lifecycle, "DORMANT"), None);
        assert_eq!(decode_token(&token, Dimension::Level, "NEW"), None);
        assert_eq!(decode_token("zz", Dimension::Lifecycle, "NEW"), None);
        assert_eq!(decode_token("abc", Dimension::Lifecycle, "NEW"), None);
    }
}
