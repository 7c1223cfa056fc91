//! [`MetadataStateMachine`]: the coordinator raft group's state machine — the registered nodes
//! and the shards' placement ([`ClusterMetadata`]), changed only by [`MetadataCommand`]s.
//!
//! The metadata is small (nodes and shard descriptors), so every applied command writes it whole,
//! with the apply index, in the entry's batch. Readers (the registry service, the gateway's
//! route table) see it through a [`MetadataView`] once the batch is written.

use std::sync::{Arc, PoisonError, RwLock};

use prost::Message;
use pulse_proto::internal::v1::{
    ClusterMetadata, CreateShardsCommand, MetadataCommand, NodeRecord, RegisterNodeCommand, ShardDescriptor,
    metadata_command,
};
use pulse_raft::{CommittedEntry, StateMachine, StateMachineError};
use pulse_storage::{ColumnFamily, StorageEngine, WriteBatch};

/// The raft group id of the coordinator group (in the coordinators' own engines).
pub const METADATA_GROUP_ID: u64 = 1;

/// `meta` key of the whole metadata.
const METADATA_KEY: &[u8] = b"\x00\x00\x00\x00\x00\x00\x00\x01\x20";
/// `meta` key of the group's apply index.
const APPLY_INDEX_KEY: &[u8] = b"\x00\x00\x00\x00\x00\x00\x00\x01\x21";

/// What applying a metadata command answers to its proposer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataOutput {
    /// The node registered (or re-registered) with this id in this cluster.
    NodeRegistered {
        /// Node id.
        node_id: u64,
        /// Cluster id.
        cluster_id: u64,
    },
    /// The shards were created by this command (false: they existed already).
    ShardsCreated(bool),
    /// The command could not be decoded (never proposed by this version).
    Rejected(String),
}

/// Shared read access to the latest written metadata.
#[derive(Clone, Debug)]
pub struct MetadataView {
    current: Arc<RwLock<Arc<ClusterMetadata>>>,
}

impl MetadataView {
    /// The metadata as of the last written entry.
    pub fn current(&self) -> Arc<ClusterMetadata> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// The coordinator group's state machine over the coordinator's engine.
pub struct MetadataStateMachine<E> {
    /// The metadata including applied but maybe not yet written entries.
    working: ClusterMetadata,
    applied_index: u64,
    published: Arc<RwLock<Arc<ClusterMetadata>>>,
    /// The machine writes only through the runtime's batches into this engine type.
    engine: std::marker::PhantomData<fn() -> E>,
}

impl<E: StorageEngine> MetadataStateMachine<E> {
    /// Loads the stored metadata (empty on a new coordinator) and its apply index.
    pub fn open(engine: E) -> Result<(Self, MetadataView), StateMachineError> {
        let working = match engine.get(ColumnFamily::Meta, METADATA_KEY)? {
            Some(raw) => ClusterMetadata::decode(raw.as_slice())?,
            None => ClusterMetadata { next_node_id: 1, ..ClusterMetadata::default() },
        };
        let applied_index = match engine.get(ColumnFamily::Meta, APPLY_INDEX_KEY)? {
            Some(raw) => u64::from_be_bytes(
                raw.as_slice().try_into().map_err(|_| format!("apply index of {} bytes", raw.len()))?,
            ),
            None => 0,
        };
        let published = Arc::new(RwLock::new(Arc::new(working.clone())));
        let view = MetadataView { current: published.clone() };
        Ok((Self { working, applied_index, published, engine: std::marker::PhantomData }, view))
    }

    fn check_group(shard_id: u64) -> Result<(), StateMachineError> {
        if shard_id == METADATA_GROUP_ID {
            Ok(())
        } else {
            Err(format!("the coordinator hosts only group {METADATA_GROUP_ID}, not {shard_id}").into())
        }
    }

    fn stage(&mut self, index: u64, batch: &mut WriteBatch) {
        self.applied_index = index;
        batch.put(ColumnFamily::Meta, METADATA_KEY, &self.working.encode_to_vec());
        batch.put(ColumnFamily::Meta, APPLY_INDEX_KEY, &index.to_be_bytes());
    }

    fn register(&mut self, command: RegisterNodeCommand) -> MetadataOutput {
        let metadata = &mut self.working;
        if metadata.cluster_id == 0 {
            metadata.cluster_id = command.new_cluster_id.max(1);
        }
        let node_id = match metadata.nodes.iter_mut().find(|node| node.store_id == command.store_id) {
            Some(node) => {
                node.address = command.address;
                node.node_id
            }
            None => {
                let node_id = metadata.next_node_id.max(1);
                metadata.next_node_id = node_id + 1;
                metadata.nodes.push(NodeRecord {
                    node_id,
                    store_id: command.store_id,
                    address: command.address,
                });
                node_id
            }
        };
        // Replica addresses follow the node's address.
        let address = metadata.nodes.iter().find(|node| node.node_id == node_id).map(|n| n.address.clone());
        for shard in &mut metadata.shards {
            for replica in shard.replicas.iter_mut().filter(|r| r.node_id == node_id) {
                replica.address.clone_from(address.as_ref().expect("node just registered"));
            }
        }
        metadata.version += 1;
        MetadataOutput::NodeRegistered { node_id, cluster_id: metadata.cluster_id }
    }

    fn create_shards(&mut self, command: CreateShardsCommand) -> MetadataOutput {
        if !self.working.shards.is_empty() || command.shards.is_empty() {
            return MetadataOutput::ShardsCreated(false);
        }
        self.working.shards = command.shards;
        self.working.version += 1;
        MetadataOutput::ShardsCreated(true)
    }
}

impl<E: StorageEngine> StateMachine for MetadataStateMachine<E> {
    type Output = MetadataOutput;

    fn applied_index(&mut self, shard_id: u64) -> Result<u64, StateMachineError> {
        Self::check_group(shard_id)?;
        Ok(self.applied_index)
    }

    fn apply(
        &mut self,
        shard_id: u64,
        entry: CommittedEntry<'_>,
        batch: &mut WriteBatch,
    ) -> Result<MetadataOutput, StateMachineError> {
        Self::check_group(shard_id)?;
        let output = match MetadataCommand::decode(entry.data) {
            Ok(MetadataCommand { command: Some(metadata_command::Command::RegisterNode(command)) }) => {
                self.register(command)
            }
            Ok(MetadataCommand { command: Some(metadata_command::Command::CreateShards(command)) }) => {
                self.create_shards(command)
            }
            Ok(MetadataCommand { command: None }) => {
                MetadataOutput::Rejected("empty metadata command".into())
            }
            Err(error) => MetadataOutput::Rejected(format!("undecodable metadata command: {error}")),
        };
        self.stage(entry.index, batch);
        Ok(output)
    }

    fn record_applied(
        &mut self,
        shard_id: u64,
        index: u64,
        _term: u64,
        batch: &mut WriteBatch,
    ) -> Result<(), StateMachineError> {
        Self::check_group(shard_id)?;
        self.stage(index, batch);
        Ok(())
    }

    fn applied_written(&mut self, _shard_id: u64, _index: u64) {
        let changed =
            self.published.read().unwrap_or_else(PoisonError::into_inner).version != self.working.version;
        if changed {
            *self.published.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(self.working.clone());
        }
    }
}

/// Encodes a metadata command for proposing.
pub fn encode_command(command: metadata_command::Command) -> Vec<u8> {
    MetadataCommand { command: Some(command) }.encode_to_vec()
}

/// The initial placement: `initial_shards` equal hash ranges, each with `replication_factor`
/// replicas on distinct nodes (rotating over `nodes`, sorted by id) and the first replica as
/// preferred leader, so replicas and leaders are spread evenly.
pub fn initial_placement(
    nodes: &[NodeRecord],
    initial_shards: u64,
    replication_factor: u64,
) -> Vec<ShardDescriptor> {
    let mut nodes: Vec<&NodeRecord> = nodes.iter().collect();
    nodes.sort_by_key(|node| node.node_id);
    let replicas_per_shard = usize::try_from(replication_factor).unwrap_or(usize::MAX).min(nodes.len());
    pulse_node::ShardLayout::split_evenly(initial_shards)
        .shards
        .into_iter()
        .enumerate()
        .map(|(position, shard)| {
            let replicas: Vec<_> = (0..replicas_per_shard)
                .map(|offset| {
                    let node = nodes[(position + offset) % nodes.len()];
                    pulse_proto::internal::v1::ReplicaDescriptor {
                        node_id: node.node_id,
                        address: node.address.clone(),
                        learner: false,
                    }
                })
                .collect();
            ShardDescriptor {
                shard_id: shard.shard_id,
                start_hash: shard.range.start_hash,
                end_hash: shard.range.end_hash,
                conf_ver: 1,
                version: 1,
                preferred_leader: replicas.first().map_or(0, |r| r.node_id),
                replicas,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use pulse_storage::MemoryEngine;

    use super::*;

    fn entry(index: u64, command: metadata_command::Command) -> (u64, Vec<u8>) {
        (index, encode_command(command))
    }

    fn apply(
        machine: &mut MetadataStateMachine<MemoryEngine>,
        engine: &MemoryEngine,
        index: u64,
        data: &[u8],
    ) -> MetadataOutput {
        let mut batch = WriteBatch::new();
        let output =
            machine.apply(METADATA_GROUP_ID, CommittedEntry { index, term: 1, data }, &mut batch).unwrap();
        engine.write(&batch, pulse_storage::WriteOptions::SYNC).unwrap();
        machine.applied_written(METADATA_GROUP_ID, index);
        output
    }

    fn register(store: u8, address: &str) -> metadata_command::Command {
        metadata_command::Command::RegisterNode(RegisterNodeCommand {
            store_id: vec![store; 16],
            address: address.into(),
            new_cluster_id: 77,
        })
    }

    #[test]
    fn nodes_get_stable_ids_and_shards_are_created_once_and_survive_reopen() {
        let engine = MemoryEngine::new();
        let (mut machine, view) = MetadataStateMachine::open(engine.clone()).unwrap();
        let (index, data) = entry(1, register(1, "a:1"));
        assert_eq!(
            apply(&mut machine, &engine, index, &data),
            MetadataOutput::NodeRegistered { node_id: 1, cluster_id: 77 }
        );
        let (index, data) = entry(2, register(2, "b:1"));
        assert_eq!(
            apply(&mut machine, &engine, index, &data),
            MetadataOutput::NodeRegistered { node_id: 2, cluster_id: 77 }
        );
        // Re-registration with a new address keeps the id.
        let (index, data) = entry(3, register(1, "a:2"));
        assert_eq!(
            apply(&mut machine, &engine, index, &data),
            MetadataOutput::NodeRegistered { node_id: 1, cluster_id: 77 }
        );

        let shards = initial_placement(&view.current().nodes, 4, 3);
        assert_eq!(shards.len(), 4);
        assert!(shards.iter().all(|s| s.replicas.len() == 2), "at most one replica per node");
        let leaders: Vec<u64> = shards.iter().map(|s| s.preferred_leader).collect();
        assert_eq!(leaders, vec![1, 2, 1, 2]);
        let create = metadata_command::Command::CreateShards(CreateShardsCommand { shards: shards.clone() });
        let (index, data) = entry(4, create.clone());
        assert_eq!(apply(&mut machine, &engine, index, &data), MetadataOutput::ShardsCreated(true));
        let (index, data) = entry(5, create);
        assert_eq!(apply(&mut machine, &engine, index, &data), MetadataOutput::ShardsCreated(false));
        assert_eq!(view.current().shards, shards);
        assert_eq!(view.current().nodes[0].address, "a:2");

        let (mut reopened, view) = MetadataStateMachine::open(engine).unwrap();
        assert_eq!(reopened.applied_index(METADATA_GROUP_ID).unwrap(), 5);
        assert_eq!(view.current().shards, shards);
        assert_eq!(view.current().next_node_id, 3);
        assert!(reopened.applied_index(2).is_err(), "only the metadata group");
    }

    #[test]
    fn garbage_is_rejected_not_fatal() {
        let engine = MemoryEngine::new();
        let (mut machine, view) = MetadataStateMachine::open(engine.clone()).unwrap();
        assert!(matches!(apply(&mut machine, &engine, 1, b"\xff\xff\xff"), MetadataOutput::Rejected(_)));
        assert_eq!(view.current().nodes.len(), 0);
    }
}
