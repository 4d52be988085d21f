//! The async face of a node: proposals, linearizable reads, membership, status.

use std::collections::BTreeMap;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use raft::eraftpb::{ConfChange, ConfChangeType};
use tokio::sync::{oneshot, watch};

use crate::node::{Cmd, ReadFn, Reply};
use crate::{RaftError, StateMachine};

/// A node's role in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    PreCandidate,
    /// Receives the log, does not vote.
    Learner,
}

/// What a node knows of itself and the cluster, published after every step of its loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub id: u64,
    pub role: Role,
    pub leader_id: Option<u64>,
    pub term: u64,
    pub commit: u64,
    pub applied: u64,
    /// The index of the latest snapshot; the log starts after it.
    pub snapshot_index: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    /// Members' transport addresses, this node's included.
    pub addresses: BTreeMap<u64, String>,
    /// On the leader only: the highest index known to be replicated on each member.
    pub matched: BTreeMap<u64, u64>,
}

impl NodeStatus {
    pub(crate) fn starting(id: u64) -> Self {
        Self {
            id,
            role: Role::Follower,
            leader_id: None,
            term: 0,
            commit: 0,
            applied: 0,
            snapshot_index: 0,
            voters: Vec::new(),
            learners: Vec::new(),
            addresses: BTreeMap::new(),
            matched: BTreeMap::new(),
        }
    }

    /// The leader's id and address, if known.
    pub fn leader(&self) -> Option<(u64, String)> {
        let id = self.leader_id?;
        Some((id, self.addresses.get(&id).cloned().unwrap_or_default()))
    }
}

/// A handle on a running node; cheap to clone.
pub struct RaftHandle<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for RaftHandle<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<S> {
    id: u64,
    mailbox: Sender<Cmd<S>>,
    status: watch::Receiver<NodeStatus>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Membership changes go one at a time, each applied before the next.
    conf_lock: tokio::sync::Mutex<()>,
    wait: std::time::Duration,
    tick: std::time::Duration,
    election_timeout: std::time::Duration,
}

impl<S: StateMachine> RaftHandle<S> {
    pub(crate) fn new(
        id: u64,
        mailbox: Sender<Cmd<S>>,
        status: watch::Receiver<NodeStatus>,
        thread: JoinHandle<()>,
        wait: std::time::Duration,
        tick: std::time::Duration,
        election_timeout: std::time::Duration,
    ) -> Self {
        let inner = Inner {
            id,
            mailbox,
            status,
            thread: Mutex::new(Some(thread)),
            conf_lock: tokio::sync::Mutex::new(()),
            wait,
            tick,
            election_timeout,
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// This node's id.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Replicates `command` and returns what the state machine answered when it applied it. Only the
    /// leader accepts; a follower answers [`RaftError::NotLeader`] with the leader it knows of.
    pub async fn propose(&self, command: Vec<u8>) -> Result<Vec<u8>, RaftError> {
        self.ask(|reply| Cmd::Propose { command, reply }).await
    }

    /// Runs `f` on the state once every command committed before the call has been applied (Raft's
    /// read index, confirmed by a quorum): a linearizable read, which writes nothing to the log. Leader
    /// only; a new leader holds it until it has committed an entry of its own term.
    pub async fn read<R, F>(&self, f: F) -> Result<R, RaftError>
    where
        R: Send + 'static,
        F: FnOnce(&S) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let read: ReadFn<S> = Box::new(move |state: Result<&S, RaftError>| {
            let _ = tx.send(state.map(f));
        });
        self.inner
            .mailbox
            .send(Cmd::Read(read))
            .map_err(|_| RaftError::Stopped)?;
        match tokio::time::timeout(self.inner.wait, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RaftError::Stopped),
            Err(_) => Err(RaftError::Timeout),
        }
    }

    /// The node's view now.
    pub fn status(&self) -> NodeStatus {
        self.inner.status.borrow().clone()
    }

    /// Status updates: leader changes, commits, membership.
    pub fn subscribe(&self) -> watch::Receiver<NodeStatus> {
        self.inner.status.clone()
    }

    /// Adds a node reachable at `addr`: as a learner, then, once it has caught up with the commit index
    /// at the time it was added, as a voter. Adding a voter again is a no-op. Leader only.
    pub async fn add_node(&self, id: u64, addr: String) -> Result<(), RaftError> {
        let _one_at_a_time = self.inner.conf_lock.lock().await;
        let status = self.status();
        if status.voters.contains(&id) {
            return Ok(());
        }
        if !status.learners.contains(&id) {
            self.conf_change(ConfChangeType::AddLearnerNode, id, &addr)
                .await?;
        }
        let target = self.status().commit;
        let deadline = tokio::time::Instant::now() + self.inner.wait;
        loop {
            let status = self.status();
            if status.role != crate::Role::Leader {
                return Err(RaftError::NotLeader {
                    leader: status.leader(),
                });
            }
            if status.matched.get(&id).is_some_and(|&m| m >= target) {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RaftError::Timeout);
            }
            tokio::time::sleep(self.inner.tick).await;
        }
        self.conf_change(ConfChangeType::AddNode, id, &addr).await
    }

    /// Removes a voter or learner; removing an unknown node is a no-op. Leader only.
    pub async fn remove_node(&self, id: u64) -> Result<(), RaftError> {
        let _one_at_a_time = self.inner.conf_lock.lock().await;
        let status = self.status();
        if !status.voters.contains(&id) && !status.learners.contains(&id) {
            return Ok(());
        }
        self.conf_change(ConfChangeType::RemoveNode, id, "").await
    }

    /// Hands leadership to voter `id` and waits until this node sees it lead. Leader only.
    pub async fn transfer_leader(&self, id: u64) -> Result<(), RaftError> {
        let status = self.status();
        if status.leader_id == Some(id) {
            return Ok(());
        }
        if status.role != crate::Role::Leader {
            return Err(RaftError::NotLeader {
                leader: status.leader(),
            });
        }
        if !status.voters.contains(&id) {
            return Err(RaftError::ConfChange(format!("node {id} is not a voter")));
        }
        // The transferee ignores the hand-over until it has applied its own promotion, and the leader
        // gives up after an election timeout: ask again until it happens or the request times out.
        let deadline = tokio::time::Instant::now() + self.inner.wait;
        let mut updates = self.subscribe();
        loop {
            self.inner
                .mailbox
                .send(Cmd::TransferLeader(id))
                .map_err(|_| RaftError::Stopped)?;
            let attempt = tokio::time::Instant::now() + self.inner.election_timeout;
            let led = updates.wait_for(|s| s.leader_id == Some(id));
            match tokio::time::timeout_at(attempt.min(deadline), led).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(_)) => return Err(RaftError::Stopped),
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(RaftError::Timeout);
                }
                Err(_) => {}
            }
        }
    }

    /// Stops the node's loop and waits for it, so the data dir can be opened again. Other handles get
    /// [`RaftError::Stopped`]; the transport server answers UNAVAILABLE until the caller drops it.
    pub async fn shutdown(&self) {
        let _ = self.inner.mailbox.send(Cmd::Shutdown);
        let thread = self.inner.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    async fn conf_change(
        &self,
        change_type: ConfChangeType,
        id: u64,
        addr: &str,
    ) -> Result<(), RaftError> {
        let change = ConfChange {
            change_type,
            node_id: id,
            context: addr.as_bytes().to_vec().into(),
            ..Default::default()
        };
        self.ask(|reply| Cmd::ConfChange { change, reply })
            .await
            .map(|_| ())
    }

    async fn ask(&self, cmd: impl FnOnce(Reply) -> Cmd<S>) -> Result<Vec<u8>, RaftError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .mailbox
            .send(cmd(tx))
            .map_err(|_| RaftError::Stopped)?;
        match tokio::time::timeout(self.inner.wait, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RaftError::Stopped),
            Err(_) => Err(RaftError::Timeout),
        }
    }
}
