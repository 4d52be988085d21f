//! What a node needs to know to start.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The configuration of one Raft node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id; never 0, never reused for another node.
    pub id: u64,
    /// Where the log (raft-engine) and the state machine snapshot live. Owned by this node alone.
    pub data_dir: PathBuf,
    /// Known nodes and the http address of their Raft transport, this node included. Only used to reach
    /// peers before the persisted membership says otherwise; the membership itself comes from the log.
    pub peers: BTreeMap<u64, String>,
    /// Creates a one-voter cluster of this node when the data dir is empty. Set on the seed only: the
    /// others start empty and are added with [`crate::RaftHandle::add_node`], caught up by snapshot.
    pub bootstrap: bool,
    /// One Raft tick.
    pub tick: Duration,
    /// Ticks without a heartbeat before a follower campaigns (randomised up to twice this).
    pub election_ticks: usize,
    /// Ticks between leader heartbeats.
    pub heartbeat_ticks: usize,
    /// Applied entries between state machine snapshots; the log is compacted up to each snapshot.
    pub snapshot_every: u64,
    /// The largest gRPC message between peers, a whole snapshot included. Appends are cut to half of it,
    /// and a command larger than that is refused.
    pub max_message_bytes: usize,
    /// How long `propose`, `read` and each step of a membership change may wait before giving up.
    pub request_timeout: Duration,
    /// Sent to peers as `authorization: Bearer <token>` on every Raft message, for servers that check
    /// who calls their transport. `None` sends no credentials.
    pub peer_token: Option<String>,
}

impl NodeConfig {
    /// A configuration with the defaults below for everything but identity and place.
    pub fn new(id: u64, data_dir: impl Into<PathBuf>, peers: BTreeMap<u64, String>) -> Self {
        Self {
            id,
            data_dir: data_dir.into(),
            peers,
            bootstrap: false,
            tick: Duration::from_millis(100),
            election_ticks: 10,
            heartbeat_ticks: 2,
            snapshot_every: 10_000,
            max_message_bytes: 64 << 20,
            request_timeout: Duration::from_secs(5),
            peer_token: None,
        }
    }

    pub(crate) fn max_command_bytes(&self) -> usize {
        self.max_message_bytes / 2
    }
}
