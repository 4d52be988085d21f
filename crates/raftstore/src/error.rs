//! The one error type of the crate.

/// Why a request to the Raft node did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RaftError {
    /// This node is not the leader; `leader` is the one it knows of (id and address), if any.
    #[error("not the leader (leader: {})", leader_text(.leader))]
    NotLeader { leader: Option<(u64, String)> },
    /// Leadership changed or the entry was overwritten before the command was applied. The command may
    /// or may not have been applied: retry only if it is idempotent.
    #[error("the proposal was dropped; its outcome is unknown")]
    ProposalDropped,
    /// No answer within the request timeout (for instance, no quorum).
    #[error("timed out")]
    Timeout,
    /// A command larger than the transport can carry.
    #[error("command of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    /// A membership change was refused (another one is in progress, unknown node, ...).
    #[error("membership change refused: {0}")]
    ConfChange(String),
    /// The node has been shut down.
    #[error("the raft node is stopped")]
    Stopped,
    /// The log, the snapshot file or the state machine failed; the node stops.
    #[error("storage: {0}")]
    Storage(String),
}

fn leader_text(leader: &Option<(u64, String)>) -> String {
    match leader {
        Some((id, addr)) => format!("{id} at {addr}"),
        None => "unknown".to_string(),
    }
}

impl From<raft_engine::Error> for RaftError {
    fn from(e: raft_engine::Error) -> Self {
        RaftError::Storage(e.to_string())
    }
}

impl From<std::io::Error> for RaftError {
    fn from(e: std::io::Error) -> Self {
        RaftError::Storage(e.to_string())
    }
}

impl From<protobuf::ProtobufError> for RaftError {
    fn from(e: protobuf::ProtobufError) -> Self {
        RaftError::Storage(e.to_string())
    }
}
