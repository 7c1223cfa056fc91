//! The one place where raft messages meet the wire (STYLE rule 5): a [`ShardMessage`] to and
//! from a `RaftEnvelope` holding raft-rs's `eraftpb::Message` in its protobuf (rust-protobuf 2)
//! encoding.

use protobuf::Message as _;
use pulse_proto::internal::v1::RaftEnvelope;
use pulse_raft::ShardMessage;
use raft::eraftpb::Message;

use super::error::{TransportError, TransportResult};

/// Encodes `message` for the wire. The shard epoch fields stay 0 ("unknown") until shards carry
/// epochs.
pub(super) fn encode(message: &ShardMessage) -> TransportResult<RaftEnvelope> {
    let bytes = message
        .message
        .write_to_bytes()
        .map_err(|error| TransportError::Encode { shard_id: message.shard_id, reason: error.to_string() })?;
    Ok(RaftEnvelope { shard_id: message.shard_id, message: bytes, conf_ver: 0, version: 0 })
}

/// Decodes a received envelope.
pub(super) fn decode(envelope: &RaftEnvelope) -> TransportResult<ShardMessage> {
    let message = Message::parse_from_bytes(&envelope.message)
        .map_err(|error| TransportError::Decode { shard_id: envelope.shard_id, reason: error.to_string() })?;
    Ok(ShardMessage { shard_id: envelope.shard_id, message })
}

#[cfg(test)]
mod tests {
    use raft::eraftpb::{Entry, MessageType};

    use super::*;

    #[test]
    fn a_message_survives_the_round_trip_and_garbage_is_refused() {
        let mut message = Message::default();
        message.set_msg_type(MessageType::MsgAppend);
        message.set_from(1);
        message.set_to(2);
        message.set_term(7);
        let mut entry = Entry::default();
        entry.set_index(5);
        entry.set_data(b"payload".to_vec().into());
        message.set_entries(vec![entry].into());
        let original = ShardMessage { shard_id: 9, message };

        let envelope = encode(&original).unwrap();
        assert_eq!(envelope.shard_id, 9);
        assert_eq!(decode(&envelope).unwrap(), original);

        let garbage = RaftEnvelope { shard_id: 9, message: vec![0xFF; 8], conf_ver: 0, version: 0 };
        assert!(matches!(decode(&garbage), Err(TransportError::Decode { shard_id: 9, .. })));
    }
}
