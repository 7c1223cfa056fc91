//! [`MembershipChange`]: the membership changes a shard's leader accepts, and [`Membership`],
//! the voters and learners after one applied.
//!
//! A replica joins a group as a learner (it receives the log but does not vote, so a slow
//! newcomer cannot stall commits), catches up, and is then promoted to voter; a replica leaves
//! with [`MembershipChange::RemoveReplica`]. Each change moves one replica, so it is a "simple"
//! raft change (no joint consensus), proposed as a `ConfChangeV2` and answered once applied.

use raft::eraftpb::{ConfChangeSingle, ConfChangeType, ConfChangeV2, ConfState};

/// One membership change of a shard's raft group, by node id (a replica's raft id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    /// Adds a learner: the node must host an (empty) replica of the shard, created with
    /// [`RuntimeHandle::join_shard`](crate::RuntimeHandle::join_shard); it catches up by
    /// snapshot, then from the log.
    AddLearner(u64),
    /// Makes a learner a voter. Promote only a learner that caught up (its `matched` index close
    /// to the leader's), or commits stall until it does.
    PromoteLearner(u64),
    /// Removes a voter or learner. Not the leader itself (transfer leadership first), nor the
    /// last voter.
    RemoveReplica(u64),
}

impl MembershipChange {
    /// The node the change is about.
    pub fn node_id(self) -> u64 {
        match self {
            MembershipChange::AddLearner(node_id)
            | MembershipChange::PromoteLearner(node_id)
            | MembershipChange::RemoveReplica(node_id) => node_id,
        }
    }

    /// Why the change cannot apply to the membership `current` with `leader_id` leading, if it
    /// cannot (raft-rs would reject it at apply time, which stops every replica).
    pub(crate) fn check(self, current: &ConfState, leader_id: u64) -> Result<(), String> {
        let node_id = self.node_id();
        if node_id == raft::INVALID_ID {
            return Err("node id 0 is not a valid replica".into());
        }
        let is_voter = current.voters.contains(&node_id);
        let is_learner = current.learners.contains(&node_id);
        match self {
            MembershipChange::AddLearner(_) if is_voter || is_learner => {
                Err(format!("node {node_id} is already a member"))
            }
            MembershipChange::PromoteLearner(_) if !is_learner => {
                Err(format!("node {node_id} is not a learner"))
            }
            MembershipChange::RemoveReplica(_) if !is_voter && !is_learner => {
                Err(format!("node {node_id} is not a member"))
            }
            MembershipChange::RemoveReplica(_) if node_id == leader_id => {
                Err(format!("node {node_id} leads: transfer leadership first"))
            }
            MembershipChange::RemoveReplica(_) if is_voter && current.voters.len() == 1 => {
                Err(format!("node {node_id} is the last voter"))
            }
            _ if !current.voters_outgoing.is_empty() => Err("the group is in a joint configuration".into()),
            _ => Ok(()),
        }
    }

    /// The raft change proposing it.
    pub(crate) fn to_conf_change(self) -> ConfChangeV2 {
        let (change_type, node_id) = match self {
            MembershipChange::AddLearner(node_id) => (ConfChangeType::AddLearnerNode, node_id),
            MembershipChange::PromoteLearner(node_id) => (ConfChangeType::AddNode, node_id),
            MembershipChange::RemoveReplica(node_id) => (ConfChangeType::RemoveNode, node_id),
        };
        let mut single = ConfChangeSingle::default();
        single.set_change_type(change_type);
        single.node_id = node_id;
        let mut change = ConfChangeV2::default();
        change.set_changes(vec![single].into());
        change
    }
}

/// The members of a shard's raft group, as of an applied membership change; both lists sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    /// Node ids of the voters.
    pub voters: Vec<u64>,
    /// Node ids of the learners (receive the log, do not vote).
    pub learners: Vec<u64>,
}

impl From<&ConfState> for Membership {
    fn from(conf_state: &ConfState) -> Membership {
        let mut membership =
            Membership { voters: conf_state.voters.clone(), learners: conf_state.learners.clone() };
        membership.voters.sort_unstable();
        membership.learners.sort_unstable();
        membership
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_changes_are_refused_before_raft_sees_them() {
        let current = ConfState::from((vec![1, 2, 3], vec![4]));
        assert!(MembershipChange::AddLearner(5).check(&current, 1).is_ok());
        assert!(MembershipChange::AddLearner(4).check(&current, 1).is_err());
        assert!(MembershipChange::AddLearner(2).check(&current, 1).is_err());
        assert!(MembershipChange::PromoteLearner(4).check(&current, 1).is_ok());
        assert!(MembershipChange::PromoteLearner(2).check(&current, 1).is_err());
        assert!(MembershipChange::RemoveReplica(2).check(&current, 1).is_ok());
        assert!(MembershipChange::RemoveReplica(4).check(&current, 1).is_ok());
        assert!(MembershipChange::RemoveReplica(1).check(&current, 1).is_err(), "the leader");
        assert!(MembershipChange::RemoveReplica(9).check(&current, 1).is_err());
        let alone = ConfState::from((vec![1], vec![]));
        assert!(MembershipChange::RemoveReplica(1).check(&alone, 2).is_err(), "the last voter");
    }

    #[test]
    fn changes_become_single_conf_changes() {
        let change = MembershipChange::PromoteLearner(4).to_conf_change();
        assert_eq!(change.get_changes().len(), 1);
        assert_eq!(change.get_changes()[0].get_change_type(), ConfChangeType::AddNode);
        assert_eq!(change.get_changes()[0].node_id, 4);
    }
}
