//! [`ShardStatus`]: a snapshot of one replica, for admin APIs and tests.

/// The raft role of a replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardRole {
    /// Accepts proposals and reads.
    Leader,
    /// Replicates the leader's log.
    Follower,
    /// Asking for votes.
    Candidate,
    /// Probing whether it could win an election (pre-vote), without disturbing the term.
    PreCandidate,
}

impl From<raft::StateRole> for ShardRole {
    fn from(role: raft::StateRole) -> ShardRole {
        match role {
            raft::StateRole::Leader => ShardRole::Leader,
            raft::StateRole::Follower => ShardRole::Follower,
            raft::StateRole::Candidate => ShardRole::Candidate,
            raft::StateRole::PreCandidate => ShardRole::PreCandidate,
        }
    }
}

/// The state of one replica when the status was taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardStatus {
    /// The shard.
    pub shard_id: u64,
    /// This replica's raft id (the node id).
    pub node_id: u64,
    /// Its role.
    pub role: ShardRole,
    /// Node id of the leader it knows of, if any.
    pub leader_id: Option<u64>,
    /// Current raft term.
    pub term: u64,
    /// Highest index known committed.
    pub commit_index: u64,
    /// Highest index applied to the state machine.
    pub applied_index: u64,
    /// First index still in the log (everything before was compacted).
    pub first_index: u64,
    /// Last index in the durable log.
    pub last_index: u64,
    /// Voting members (node ids).
    pub voters: Vec<u64>,
    /// Non-voting members (node ids).
    pub learners: Vec<u64>,
    /// Proposals waiting for their entry to apply.
    pub pending_proposals: usize,
    /// Read index requests not answered yet.
    pub pending_reads: usize,
    /// Whether the replica is hibernating (not ticking, see the `hibernation` module).
    pub hibernating: bool,
}
