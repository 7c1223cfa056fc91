//! The one place where raft messages meet the wire (STYLE rule 5): a [`ShardMessage`] to and
//! from a `RaftEnvelope` holding raft-rs's `eraftpb::Message` in its protobuf (rust-protobuf 2)
//! encoding.

use protobuf::Message as _;
use pulse_proto::internal::v1::{RaftEnvelope, SnapshotHeader};
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

/// Splits a `MsgSnapshot` into the header of its `SendSnapshot` stream (the message without
/// the snapshot data) and the data, which follows in chunks.
pub(super) fn encode_snapshot(
    from_node_id: u64,
    message: &ShardMessage,
) -> TransportResult<(SnapshotHeader, Vec<u8>)> {
    let mut without_data = message.message.clone();
    let data = without_data.mut_snapshot().take_data().to_vec();
    let bytes = without_data
        .write_to_bytes()
        .map_err(|error| TransportError::Encode { shard_id: message.shard_id, reason: error.to_string() })?;
    let header = SnapshotHeader {
        from_node_id,
        to_node_id: message.message.to,
        shard_id: message.shard_id,
        message: bytes,
        total_bytes: data.len() as u64,
    };
    Ok((header, data))
}

/// Rebuilds the `MsgSnapshot` of a received `SendSnapshot` stream: its header's message with
/// the received `data` put back.
pub(super) fn decode_snapshot(header: &SnapshotHeader, data: Vec<u8>) -> TransportResult<ShardMessage> {
    let decode_error = |reason: String| TransportError::Decode { shard_id: header.shard_id, reason };
    let mut message =
        Message::parse_from_bytes(&header.message).map_err(|error| decode_error(error.to_string()))?;
    if message.get_msg_type() != raft::eraftpb::MessageType::MsgSnapshot {
        return Err(decode_error(format!("expected MsgSnapshot, got {:?}", message.get_msg_type())));
    }
    message.mut_snapshot().set_data(data.into());
    Ok(ShardMessage { shard_id: header.shard_id, message })
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

    #[test]
    fn a_snapshot_message_travels_as_header_plus_data() {
        let mut message = Message::default();
        message.set_msg_type(MessageType::MsgSnapshot);
        message.set_from(1);
        message.set_to(2);
        message.mut_snapshot().mut_metadata().index = 40;
        message.mut_snapshot().set_data(b"state bytes".to_vec().into());
        let original = ShardMessage { shard_id: 3, message };

        let (header, data) = encode_snapshot(1, &original).unwrap();
        assert_eq!((header.from_node_id, header.to_node_id, header.shard_id), (1, 2, 3));
        assert_eq!((header.total_bytes, data.as_slice()), (11, &b"state bytes"[..]));
        assert!(header.message.len() < 40, "the data is not in the header");
        assert_eq!(decode_snapshot(&header, data).unwrap(), original);
    }
}
