//! [`RouteCache`]: the client's copy of the cluster's route table — which hash range each shard
//! owns, which nodes hold its replicas, which one leads, where each node listens — and how it
//! is corrected by refreshed tables and leader hints.
//!
//! Every shard entry carries its epoch ([`ShardEpoch`], from `ShardInfo.conf_ver` and
//! `.version`). A refreshed table never replaces an entry with an older epoch (a lagging
//! gateway's table), and a leader hint only applies to the epoch it was earned at (a hint about
//! a shard that changed membership or range since is dropped).

use std::collections::HashMap;

use pulse_proto::v1;
use xxhash_rust::xxh3::xxh3_64;

/// The hash that places a customer in a shard: xxh3_64 of the customer id's bytes, seed 0 (the
/// same function as the servers', `pulse_storage::customer_hash`).
pub fn customer_hash(customer_id: &str) -> u64 {
    xxh3_64(customer_id.as_bytes())
}

/// Epoch of a shard's routing entry; greater is newer. Ordered by `version` (range splits),
/// then `conf_ver` (membership changes); both only grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct ShardEpoch {
    /// `ShardInfo.version`: bumped by every split of the range.
    pub version: u64,
    /// `ShardInfo.conf_ver`: bumped by every membership change.
    pub conf_ver: u64,
}

/// One shard as the client routes to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShardRoute {
    /// Shard id, > 0.
    pub shard_id: u64,
    /// First hash of the range, inclusive.
    pub start_hash: u64,
    /// Last hash of the range, inclusive.
    pub end_hash: u64,
    /// Node ids of the voting replicas.
    pub replicas: Vec<u64>,
    /// Node id of the leader as last known; 0 = unknown.
    pub leader: u64,
    /// Epoch of this entry.
    pub epoch: ShardEpoch,
}

impl From<v1::ShardInfo> for ShardRoute {
    fn from(shard: v1::ShardInfo) -> Self {
        Self {
            shard_id: shard.shard_id,
            start_hash: shard.start_hash,
            end_hash: shard.end_hash,
            replicas: shard.replicas,
            leader: shard.leader,
            epoch: ShardEpoch { version: shard.version, conf_ver: shard.conf_ver },
        }
    }
}

/// One replica to try: the node, its address, and the epoch of the entry it was picked from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pick {
    /// The node.
    pub node_id: u64,
    /// Its `HOST:PORT`.
    pub address: String,
    /// Epoch of the shard entry (for [`RouteCache::note_leader`]).
    pub epoch: ShardEpoch,
}

/// The route table. Invariant: `shards` is ordered by `start_hash`.
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteCache {
    shards: Vec<ShardRoute>,
    addresses: HashMap<u64, String>,
    /// Counts the tables applied, so concurrent calls missing on one table refresh it once.
    generation: u64,
}

impl RouteCache {
    /// Merges a freshly fetched table: its shards and nodes replace the cached ones, except a
    /// cached shard entry with a newer epoch (kept whole), or with the same epoch and a known
    /// leader where the table knows none (the leader is kept).
    pub fn apply(&mut self, state: v1::ClusterState) {
        let mut cached: HashMap<u64, ShardRoute> =
            self.shards.drain(..).map(|shard| (shard.shard_id, shard)).collect();
        let mut shards = Vec::with_capacity(state.shards.len());
        for fresh in state.shards.into_iter().map(ShardRoute::from) {
            let merged = match cached.remove(&fresh.shard_id) {
                Some(old) if old.epoch > fresh.epoch => old,
                Some(old) if old.epoch == fresh.epoch && fresh.leader == 0 => {
                    ShardRoute { leader: old.leader, ..fresh }
                }
                _ => fresh,
            };
            shards.push(merged);
        }
        shards.sort_by_key(|shard| shard.start_hash);
        self.shards = shards;
        self.addresses = state.nodes.into_iter().map(|node| (node.node_id, node.address)).collect();
        self.generation += 1;
    }

    /// How many tables were applied.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the table holds no shard (the cluster is forming, or nothing was fetched yet).
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// The shard whose range holds `customer_id`'s hash, if any.
    pub fn shard_of(&self, customer_id: &str) -> Option<&ShardRoute> {
        let hash = customer_hash(customer_id);
        let position = self.shards.partition_point(|shard| shard.start_hash <= hash);
        let shard = &self.shards[position.checked_sub(1)?];
        (hash <= shard.end_hash).then_some(shard)
    }

    /// The `HOST:PORT` of `node_id`, if the table lists it.
    pub fn address(&self, node_id: u64) -> Option<&str> {
        self.addresses.get(&node_id).map(String::as_str)
    }

    /// Every node address the table lists, in node id order.
    pub fn addresses(&self) -> Vec<&str> {
        let mut nodes: Vec<(&u64, &String)> = self.addresses.iter().collect();
        nodes.sort();
        nodes.into_iter().map(|(_, address)| address.as_str()).collect()
    }

    /// Records a hint that `leader` leads `shard_id`, if the shard's entry is still at `epoch`
    /// (the hint answered a call routed by that entry). Returns whether the hint is usable: it
    /// applied and names a node whose address is known.
    pub fn note_leader(&mut self, shard_id: u64, epoch: ShardEpoch, leader: u64) -> bool {
        if leader == 0 || !self.addresses.contains_key(&leader) {
            return false;
        }
        let Some(shard) = self.shards.iter_mut().find(|s| s.shard_id == shard_id) else {
            return false;
        };
        if shard.epoch != epoch {
            return false;
        }
        shard.leader = leader;
        true
    }

    /// The replica to try at `turn` (0, 1, 2… as attempts fail without a usable hint): the
    /// known leader first, then the other replicas in turn; nodes without a known address are
    /// skipped. `None` if the shard is unknown or no replica is reachable by address.
    pub fn pick(&self, shard_id: u64, turn: usize) -> Option<Pick> {
        let shard = self.shards.iter().find(|s| s.shard_id == shard_id)?;
        let mut order: Vec<(u64, &str)> = Vec::with_capacity(shard.replicas.len() + 1);
        let leader_first = std::iter::once(shard.leader).filter(|&leader| leader != 0);
        let followers = shard.replicas.iter().copied().filter(|&replica| replica != shard.leader);
        for node_id in leader_first.chain(followers) {
            if let Some(address) = self.address(node_id) {
                order.push((node_id, address));
            }
        }
        if order.is_empty() {
            return None;
        }
        let (node_id, address) = order[turn % order.len()];
        Some(Pick { node_id, address: address.to_owned(), epoch: shard.epoch })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(node_id: u64) -> v1::NodeInfo {
        v1::NodeInfo { node_id, address: format!("127.0.0.1:{node_id}"), ..Default::default() }
    }

    fn shard(shard_id: u64, range: (u64, u64), leader: u64, conf_ver: u64) -> v1::ShardInfo {
        v1::ShardInfo {
            shard_id,
            start_hash: range.0,
            end_hash: range.1,
            replicas: vec![1, 2, 3],
            leader,
            conf_ver,
            version: 1,
            ..Default::default()
        }
    }

    /// Two shards halving the hash space, listed out of order; node 3 has no address yet.
    fn table(leader_of_2: u64, conf_ver_of_2: u64) -> v1::ClusterState {
        v1::ClusterState {
            nodes: vec![node(1), node(2)],
            shards: vec![
                shard(2, (1 << 63, u64::MAX), leader_of_2, conf_ver_of_2),
                shard(1, (0, (1 << 63) - 1), 1, 1),
            ],
        }
    }

    #[test]
    fn the_hash_is_the_servers() {
        for customer in ["", "alice", "bob", "cluster-07", "ünïcödé", &"x".repeat(128)] {
            assert_eq!(customer_hash(customer), pulse_storage::customer_hash(customer), "{customer:?}");
        }
    }

    #[test]
    fn customers_map_to_the_shard_owning_their_hash() {
        let mut routes = RouteCache::default();
        assert!(routes.is_empty() && routes.shard_of("alice").is_none(), "nothing fetched yet");
        routes.apply(table(2, 1));
        for i in 0..200 {
            let customer = format!("customer-{i}");
            let hash = customer_hash(&customer);
            let shard = routes.shard_of(&customer).unwrap();
            assert!(shard.start_hash <= hash && hash <= shard.end_hash, "{customer} in {shard:?}");
            assert_eq!(shard.shard_id, if hash < 1 << 63 { 1 } else { 2 });
        }

        // A gap in the ranges routes nowhere rather than to a neighbour.
        let mut gapped = table(2, 1);
        gapped.shards[0].start_hash = u64::MAX;
        routes.apply(gapped);
        let in_gap = (0..).map(|i| format!("c{i}")).find(|c| customer_hash(c) >= 1 << 63).unwrap();
        assert!(routes.shard_of(&in_gap).is_none());
    }

    #[test]
    fn the_leader_goes_first_then_the_replicas_with_an_address() {
        let mut routes = RouteCache::default();
        routes.apply(table(2, 1));
        let order: Vec<u64> = (0..4).map(|turn| routes.pick(2, turn).unwrap().node_id).collect();
        assert_eq!(order, vec![2, 1, 2, 1], "node 3 has no address: skipped");
        assert_eq!(routes.pick(2, 0).unwrap().address, "127.0.0.1:2");
        assert!(routes.pick(9, 0).is_none(), "unknown shard");

        routes.apply(table(0, 1));
        assert_eq!(routes.pick(2, 0).unwrap().node_id, 2, "a table without a leader keeps the known one");
    }

    #[test]
    fn hints_apply_at_their_epoch_only() {
        let mut routes = RouteCache::default();
        routes.apply(table(2, 1));
        let epoch = routes.pick(2, 0).unwrap().epoch;
        assert!(routes.note_leader(2, epoch, 1));
        assert_eq!(routes.pick(2, 0).unwrap().node_id, 1, "the hinted leader goes first");
        assert!(!routes.note_leader(2, epoch, 3), "node 3's address is unknown");
        assert!(!routes.note_leader(2, epoch, 0), "0 names no leader");
        assert!(!routes.note_leader(7, epoch, 1), "unknown shard");

        routes.apply(table(2, 2));
        assert!(!routes.note_leader(2, epoch, 1), "the shard changed membership since the hint's call");
        assert_eq!(routes.pick(2, 0).unwrap().node_id, 2);
    }

    #[test]
    fn a_lagging_table_does_not_roll_an_entry_back() {
        let mut routes = RouteCache::default();
        routes.apply(table(2, 5));
        let generation = routes.generation();
        routes.apply(table(1, 4));
        assert_eq!(routes.generation(), generation + 1);
        let entry = routes.pick(2, 0).unwrap();
        assert_eq!((entry.node_id, entry.epoch.conf_ver), (2, 5), "the newer entry is kept whole");
        routes.apply(table(1, 6));
        assert_eq!(routes.pick(2, 0).unwrap().node_id, 1, "a newer entry replaces it");
    }
}
