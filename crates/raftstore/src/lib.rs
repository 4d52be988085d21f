//! A Raft-replicated state machine: raft-rs for consensus, raft-engine for the log, tonic between peers.
//!
//! The caller brings a deterministic [`StateMachine`] (commands in, replies out, as bytes) and gets a
//! [`RaftHandle`] to propose commands, read linearizably and change membership, plus the transport server
//! to mount on its tonic server. This crate knows nothing of what the commands mean.
//!
//! Runtime view: one thread per node owns the `RawNode`, the log store and the state machine (fsync
//! blocks, so never on the async runtime); handles and the transport server talk to it through a
//! mailbox; peer streams and snapshot sends run as tasks on the caller's runtime.
//!
//! On disk (`data_dir`): `log/` (raft-engine: entries after the latest snapshot and the hard state) and
//! `snapshot` (the state machine, the members' addresses, the index, term and conf state it was taken at,
//! replaced atomically). A restart restores the snapshot and applies the committed log after it again.
//!
//! Membership: only the seed bootstraps (one voter); others start empty and are added by
//! [`RaftHandle::add_node`] (learner, caught up by snapshot, then voter). Each change carries the node's
//! address, so every member learns it from the log.

mod config;
mod error;
mod handle;
mod logger;
mod node;
mod snapshot;
mod storage;
mod transport;

use std::sync::mpsc;

pub use config::NodeConfig;
pub use error::RaftError;
pub use handle::{NodeStatus, RaftHandle, Role};
pub use khop_proto::v1::raft_transport_server::RaftTransportServer;
pub use transport::RaftPeerService;

/// The replicated state. Runs on the node's Raft thread.
pub trait StateMachine: Send + 'static {
    /// Applies a committed command and returns the reply for its proposer. Deterministic: the same
    /// commands in the same order give the same state and replies on every node. `index` is the command's
    /// log index, increasing.
    fn apply(&mut self, index: u64, command: &[u8]) -> Vec<u8>;
    /// The whole state, to be given to [`StateMachine::restore`] on this or another node.
    fn snapshot(&self) -> Vec<u8>;
    /// Replaces the whole state with a snapshot's.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String>;
}

/// Starts a node: opens (or, for the seed, bootstraps) `cfg.data_dir`, restores the state machine and
/// starts the Raft thread. Mount the returned server on a tonic server at the node's address.
pub async fn start<S: StateMachine>(
    cfg: NodeConfig,
    sm: S,
) -> Result<(RaftHandle<S>, RaftTransportServer<RaftPeerService<S>>), RaftError> {
    let (mailbox_tx, mailbox_rx) = mpsc::channel();
    let (status_tx, status_rx) = tokio::sync::watch::channel(NodeStatus::starting(cfg.id));
    let (alive_tx, alive_rx) = tokio::sync::watch::channel(());
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let peers = transport::Peers::new(
        cfg.id,
        tokio::runtime::Handle::current(),
        mailbox_tx.clone(),
        cfg.max_message_bytes,
        transport::PeerAuth::new(cfg.peer_token.as_deref()),
    );
    let server =
        RaftPeerService::server(cfg.id, mailbox_tx.clone(), alive_rx, cfg.max_message_bytes);
    let (id, wait, tick) = (cfg.id, node::reply_wait(&cfg), cfg.tick);
    let election_timeout = cfg.tick * cfg.election_ticks as u32;
    let thread = std::thread::Builder::new()
        .name(format!("raft-{id}"))
        .spawn(
            move || match node::Node::open(cfg, sm, mailbox_rx, peers, status_tx, alive_tx) {
                Ok(node) => {
                    let _ = ready_tx.send(Ok(()));
                    node.run();
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            },
        )?;
    match ready_rx.await {
        Ok(Ok(())) => Ok((
            RaftHandle::new(
                id,
                mailbox_tx,
                status_rx,
                thread,
                wait,
                tick,
                election_timeout,
            ),
            server,
        )),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(RaftError::Storage(
            "the raft thread died while starting".to_string(),
        )),
    }
}
