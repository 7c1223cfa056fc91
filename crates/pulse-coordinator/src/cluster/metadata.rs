//! [`MetadataStateMachine`]: the coordinator raft group's state machine — the registered nodes
//! (with their drain and removal marks), the shards' placement and the scheduler's replica moves
//! in progress ([`ClusterMetadata`]), changed only by [`MetadataCommand`]s.
//!
//! The metadata is small (nodes and shard descriptors), so every applied command writes it whole,
//! with the apply index, in the entry's batch. Readers (the registry service, the gateway's
//! route table) see it through a [`MetadataView`] once the batch is written.

use std::sync::{Arc, PoisonError, RwLock};

use prost::Message;
use pulse_proto::internal::v1::{
    BeginMoveCommand, ClusterMetadata, CreateShardsCommand, MetadataCommand, NodeRecord, RegisterNodeCommand,
    ReplicaDescriptor, SetReplicasCommand, ShardDescriptor, metadata_command,
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
    /// A move, replica, drain or removal command applied; `changed` is false when it had
    /// been applied before (every such command is idempotent).
    Applied {
        /// Whether the metadata changed.
        changed: bool,
    },
    /// A valid command that does not apply to the metadata as it is (unknown node or shard,
    /// a move on a shard that has one): nothing changed.
    Refused(String),
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
                // A drained node that restarts (maintenance, a rolling update) is back in
                // service; one being removed stays drained.
                node.draining = node.removing;
                node.node_id
            }
            None => {
                let node_id = metadata.next_node_id.max(1);
                metadata.next_node_id = node_id + 1;
                metadata.nodes.push(NodeRecord {
                    node_id,
                    store_id: command.store_id,
                    address: command.address,
                    draining: false,
                    removing: false,
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

    fn changed(&mut self, changed: bool) -> MetadataOutput {
        if changed {
            self.working.version += 1;
        }
        MetadataOutput::Applied { changed }
    }

    /// Records the move and lists its target as a learner of the shard (so the target hosts an
    /// empty replica before the shard's leader adds it to the raft group).
    fn begin_move(&mut self, command: BeginMoveCommand) -> MetadataOutput {
        let Some(mv) = command.r#move else { return MetadataOutput::Refused("a move is required".into()) };
        let metadata = &mut self.working;
        if metadata.moves.iter().any(|m| m == &mv) {
            return self.changed(false);
        }
        if metadata.moves.iter().any(|m| m.shard_id == mv.shard_id) {
            return MetadataOutput::Refused(format!("shard {} has a move in progress", mv.shard_id));
        }
        let Some(address) =
            metadata.nodes.iter().find(|n| n.node_id == mv.to_node).map(|n| n.address.clone())
        else {
            return MetadataOutput::Refused(format!("node {} is not registered", mv.to_node));
        };
        let Some(shard) = metadata.shards.iter_mut().find(|s| s.shard_id == mv.shard_id) else {
            return MetadataOutput::Refused(format!("shard {} does not exist", mv.shard_id));
        };
        if shard.replicas.iter().any(|r| r.node_id == mv.to_node) {
            return MetadataOutput::Refused(format!(
                "node {} holds shard {} already",
                mv.to_node, mv.shard_id
            ));
        }
        shard.replicas.push(ReplicaDescriptor { node_id: mv.to_node, address, learner: true });
        shard.conf_ver += 1;
        metadata.moves.push(mv);
        metadata.moves.sort_by_key(|m| m.shard_id);
        self.changed(true)
    }

    /// Sets the shard's replicas to the given raft membership. The target of a move in
    /// progress stays listed (as a learner if raft does not have it yet), so that it keeps its
    /// replica until the move ends.
    fn set_replicas(&mut self, command: SetReplicasCommand) -> MetadataOutput {
        let metadata = &mut self.working;
        let target = metadata.moves.iter().find(|m| m.shard_id == command.shard_id).map(|m| m.to_node);
        let address_of = |node_id: u64| {
            metadata
                .nodes
                .iter()
                .find(|n| n.node_id == node_id)
                .map(|n| n.address.clone())
                .unwrap_or_default()
        };
        let mut replicas: Vec<ReplicaDescriptor> = command
            .voters
            .iter()
            .map(|&node_id| ReplicaDescriptor { node_id, address: address_of(node_id), learner: false })
            .chain(command.learners.iter().map(|&node_id| ReplicaDescriptor {
                node_id,
                address: address_of(node_id),
                learner: true,
            }))
            .collect();
        if let Some(target) = target
            && !replicas.iter().any(|r| r.node_id == target)
        {
            replicas.push(ReplicaDescriptor { node_id: target, address: address_of(target), learner: true });
        }
        replicas.sort_by_key(|r| r.node_id);
        let Some(shard) = metadata.shards.iter_mut().find(|s| s.shard_id == command.shard_id) else {
            return MetadataOutput::Refused(format!("shard {} does not exist", command.shard_id));
        };
        let mut current = shard.replicas.clone();
        current.sort_by_key(|r| r.node_id);
        if current == replicas {
            return self.changed(false);
        }
        shard.replicas = replicas;
        shard.conf_ver += 1;
        self.changed(true)
    }

    fn end_move(&mut self, shard_id: u64) -> MetadataOutput {
        let before = self.working.moves.len();
        self.working.moves.retain(|m| m.shard_id != shard_id);
        let changed = self.working.moves.len() != before;
        self.changed(changed)
    }

    fn drain_node(&mut self, node_id: u64) -> MetadataOutput {
        let Some(node) = self.working.nodes.iter_mut().find(|n| n.node_id == node_id) else {
            return MetadataOutput::Refused(format!("node {node_id} is not registered"));
        };
        let changed = !node.draining;
        node.draining = true;
        self.changed(changed)
    }

    /// Forgets a node that holds no replica and is the target of no move; marks one that does
    /// for removal once empty (the coordinator only asks that for a down node).
    fn remove_node(&mut self, node_id: u64) -> MetadataOutput {
        let metadata = &mut self.working;
        let Some(position) = metadata.nodes.iter().position(|n| n.node_id == node_id) else {
            return MetadataOutput::Refused(format!("node {node_id} is not registered"));
        };
        if holds_replicas(metadata, node_id) {
            let node = &mut metadata.nodes[position];
            let changed = !(node.removing && node.draining);
            node.removing = true;
            node.draining = true;
            return self.changed(changed);
        }
        metadata.nodes.remove(position);
        self.changed(true)
    }
}

/// Whether `node_id` holds a replica of some shard or is the target of a move.
pub fn holds_replicas(metadata: &ClusterMetadata, node_id: u64) -> bool {
    metadata.shards.iter().any(|s| s.replicas.iter().any(|r| r.node_id == node_id))
        || metadata.moves.iter().any(|m| m.to_node == node_id)
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
            Ok(MetadataCommand { command: Some(metadata_command::Command::BeginMove(command)) }) => {
                self.begin_move(command)
            }
            Ok(MetadataCommand { command: Some(metadata_command::Command::SetReplicas(command)) }) => {
                self.set_replicas(command)
            }
            Ok(MetadataCommand { command: Some(metadata_command::Command::EndMove(command)) }) => {
                self.end_move(command.shard_id)
            }
            Ok(MetadataCommand { command: Some(metadata_command::Command::DrainNode(command)) }) => {
                self.drain_node(command.node_id)
            }
            Ok(MetadataCommand { command: Some(metadata_command::Command::RemoveNode(command)) }) => {
                self.remove_node(command.node_id)
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
