//! The Raft loop: one thread owns the `RawNode`, the log store and the state machine, fed by a mailbox of
//! commands (messages from peers, proposals, reads, membership changes), ticking on its own clock.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use protobuf::Message as _;
use raft::eraftpb::{
    ConfChange, ConfChangeSingle, ConfChangeType, ConfChangeV2, ConfState, Entry, EntryType,
    HardState, Message, Snapshot,
};
use raft::{RawNode, ReadState, SnapshotStatus, StateRole};
use raft_engine::LogBatch;
use tokio::sync::{oneshot, watch};

use crate::storage::LogStore;
use crate::transport::Peers;
use crate::{NodeConfig, NodeStatus, RaftError, Role, StateMachine, snapshot};

pub(crate) type Reply = oneshot::Sender<Result<Vec<u8>, RaftError>>;
/// A read: called once, with the state when it is linearizable, or with the reason it is not.
pub(crate) type ReadFn<S> = Box<dyn FnOnce(Result<&S, RaftError>) + Send>;

/// What the Raft loop is asked to do.
pub(crate) enum Cmd<S> {
    Step(Message),
    Propose { command: Vec<u8>, reply: Reply },
    ConfChange { change: ConfChange, reply: Reply },
    Read(ReadFn<S>),
    TransferLeader(u64),
    ReportSnapshot { to: u64, ok: bool },
    Unreachable(u64),
    Shutdown,
}

struct Pending {
    id: u64,
    reply: Reply,
    deadline: Instant,
}

struct PendingRead<S> {
    read: ReadFn<S>,
    deadline: Instant,
    /// Asked of raft-rs: a leader that has not yet committed an entry of its term holds the read
    /// until it has (raft-rs would drop it, and the read would wait for its deadline).
    asked: bool,
    /// The read index, once the quorum has confirmed it.
    index: Option<u64>,
}

pub(crate) struct Node<S: StateMachine> {
    cfg: NodeConfig,
    raw: RawNode<LogStore>,
    sm: S,
    mailbox: Receiver<Cmd<S>>,
    peers: Peers<S>,
    /// Members' addresses as of the applied index (this node's own included).
    addresses: BTreeMap<u64, String>,
    conf_state: ConfState,
    applied: u64,
    applied_term: u64,
    /// Proposals by the log index they were appended at.
    pending: BTreeMap<u64, Pending>,
    reads: HashMap<u64, PendingRead<S>>,
    /// Replies to applied proposals, sent once the status showing their effect is published.
    replies: Vec<(Reply, Result<Vec<u8>, RaftError>)>,
    next_id: u64,
    status: watch::Sender<NodeStatus>,
    /// Dropped when the loop ends, which tells the transport server.
    _alive: watch::Sender<()>,
}

/// The request id carried in an entry's context.
fn context(id: u64) -> Vec<u8> {
    id.to_le_bytes().to_vec()
}

fn context_id(ctx: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(ctx.try_into().ok()?))
}

impl<S: StateMachine> Node<S> {
    /// Opens the store (bootstrapping the seed), restores the state machine from the latest snapshot and
    /// creates the `RawNode` with `applied` at that snapshot.
    pub(crate) fn open(
        cfg: NodeConfig,
        mut sm: S,
        mailbox: Receiver<Cmd<S>>,
        peers: Peers<S>,
        status: watch::Sender<NodeStatus>,
        alive: watch::Sender<()>,
    ) -> Result<Self, RaftError> {
        let mut store = LogStore::open(&cfg.data_dir)?;
        if store.is_empty() && cfg.bootstrap {
            let own = cfg.peers.get(&cfg.id).ok_or_else(|| {
                RaftError::Storage(format!("peers: no address for this node ({})", cfg.id))
            })?;
            let addresses = BTreeMap::from([(cfg.id, own.clone())]);
            let conf_state = ConfState {
                voters: vec![cfg.id],
                ..Default::default()
            };
            store.bootstrap(
                conf_state,
                snapshot::encode_data(&addresses, &sm.snapshot()),
            )?;
            tracing::info!(node = cfg.id, "bootstrapped a one-voter cluster");
        }
        let snap = store.latest_snapshot().clone();
        let meta = snap.get_metadata();
        let mut addresses = BTreeMap::new();
        if meta.index > 0 {
            let (members, state) = snapshot::decode_data(&snap.data)?;
            sm.restore(state).map_err(RaftError::Storage)?;
            addresses = members;
        }
        // The configured addresses win: they are what the operator says now.
        addresses.extend(cfg.peers.iter().map(|(id, addr)| (*id, addr.clone())));

        let raft_cfg = raft::Config {
            id: cfg.id,
            election_tick: cfg.election_ticks,
            heartbeat_tick: cfg.heartbeat_ticks,
            applied: meta.index,
            max_size_per_msg: cfg.max_command_bytes() as u64,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        raft_cfg
            .validate()
            .map_err(|e| RaftError::Storage(format!("raft config: {e}")))?;
        let (applied, applied_term, conf_state) =
            (meta.index, meta.term, meta.get_conf_state().clone());
        let raw = RawNode::new(&raft_cfg, store, &crate::logger::raft_logger(cfg.id))
            .map_err(|e| RaftError::Storage(e.to_string()))?;
        let mut node = Self {
            next_id: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64),
            cfg,
            raw,
            sm,
            mailbox,
            peers,
            addresses: BTreeMap::new(),
            conf_state,
            applied,
            applied_term,
            pending: BTreeMap::new(),
            reads: HashMap::new(),
            replies: Vec::new(),
            status,
            _alive: alive,
        };
        node.set_addresses(addresses);
        node.publish_status();
        Ok(node)
    }

    pub(crate) fn run(mut self) {
        // A sole voter (a fresh seed, `khop link`'s in-process coordinator) would win its election
        // anyway, after an election timeout of nothing: it campaigns at once, and commits its
        // term's first entry before anyone sees it lead.
        if self.conf_state.voters == [self.cfg.id]
            && self.conf_state.learners.is_empty()
            && let Err(e) = self
                .raw
                .campaign()
                .map_err(|e| RaftError::Storage(format!("campaign: {e}")))
                .and_then(|()| self.on_ready())
        {
            tracing::warn!(node = self.cfg.id, error = %e, "no campaign at start");
        }
        self.publish_status();
        let tick = self.cfg.tick;
        let mut next_tick = Instant::now() + tick;
        'main: loop {
            let first = match self
                .mailbox
                .recv_timeout(next_tick.saturating_duration_since(Instant::now()))
            {
                Ok(cmd) => Some(cmd),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            // Take what else is waiting (bounded, so ticks keep their pace under load).
            let mut next = first;
            let mut budget = 4096;
            while let Some(cmd) = next.take() {
                if matches!(cmd, Cmd::Shutdown) {
                    break 'main;
                }
                self.handle(cmd);
                budget -= 1;
                if budget > 0 {
                    next = self.mailbox.try_recv().ok();
                }
            }
            let now = Instant::now();
            if now >= next_tick {
                self.raw.tick();
                next_tick = (next_tick + tick).max(now);
                self.expire(now);
            }
            let ready = self.on_ready().and_then(|()| {
                if self.ask_held_reads() {
                    self.on_ready()
                } else {
                    Ok(())
                }
            });
            if let Err(e) = ready.and_then(|()| self.maybe_snapshot()) {
                tracing::error!(node = self.cfg.id, error = %e, "raft node stops");
                break;
            }
            self.publish_status();
            for (reply, result) in self.replies.drain(..) {
                let _ = reply.send(result);
            }
        }
        self.fail_all(RaftError::Stopped, RaftError::Stopped);
        tracing::info!(node = self.cfg.id, "raft node stopped");
    }

    fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    fn not_leader(&self) -> RaftError {
        let leader = self.raw.raft.leader_id;
        RaftError::NotLeader {
            leader: (leader != raft::INVALID_ID).then(|| {
                (
                    leader,
                    self.addresses.get(&leader).cloned().unwrap_or_default(),
                )
            }),
        }
    }

    fn handle(&mut self, cmd: Cmd<S>) {
        match cmd {
            Cmd::Step(msg) => {
                if let Err(e) = self.raw.step(msg) {
                    tracing::debug!(node = self.cfg.id, error = %e, "raft message ignored");
                }
            }
            Cmd::Propose { command, reply } => {
                if !self.is_leader() {
                    let _ = reply.send(Err(self.not_leader()));
                } else if command.len() > self.cfg.max_command_bytes() {
                    let _ = reply.send(Err(RaftError::TooLarge {
                        size: command.len(),
                        limit: self.cfg.max_command_bytes(),
                    }));
                } else {
                    let id = self.new_id();
                    let before = self.raw.raft.raft_log.last_index();
                    let result = self.raw.propose(context(id), command);
                    self.track(id, before, result, reply);
                }
            }
            Cmd::ConfChange { change, reply } => {
                if !self.is_leader() {
                    let _ = reply.send(Err(self.not_leader()));
                } else if self.raw.raft.has_pending_conf() {
                    let _ = reply.send(Err(RaftError::ConfChange(
                        "another membership change is in progress".into(),
                    )));
                } else {
                    let id = self.new_id();
                    let before = self.raw.raft.raft_log.last_index();
                    let result = self.raw.propose_conf_change(context(id), change);
                    self.track(id, before, result, reply);
                }
            }
            Cmd::Read(read) => {
                if !self.is_leader() {
                    read(Err(self.not_leader()));
                } else {
                    let id = self.new_id();
                    let asked = self.raw.raft.commit_to_current_term();
                    if asked {
                        self.raw.read_index(context(id));
                    }
                    let deadline = Instant::now() + self.cfg.request_timeout;
                    self.reads.insert(
                        id,
                        PendingRead {
                            read,
                            deadline,
                            asked,
                            index: None,
                        },
                    );
                }
            }
            Cmd::TransferLeader(to) => {
                if self.is_leader() {
                    self.raw.transfer_leader(to);
                }
            }
            Cmd::ReportSnapshot { to, ok } => {
                let status = if ok {
                    SnapshotStatus::Finish
                } else {
                    SnapshotStatus::Failure
                };
                self.raw.report_snapshot(to, status);
            }
            Cmd::Unreachable(to) => self.raw.report_unreachable(to),
            Cmd::Shutdown => {}
        }
    }

    fn new_id(&mut self) -> u64 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    /// Remembers a proposal by the index it was appended at; raft-rs may also drop it without a word.
    fn track(&mut self, id: u64, before: u64, result: raft::Result<()>, reply: Reply) {
        let last = self.raw.raft.raft_log.last_index();
        if result.is_ok() && last > before {
            let deadline = Instant::now() + self.cfg.request_timeout;
            self.pending.insert(
                last,
                Pending {
                    id,
                    reply,
                    deadline,
                },
            );
        } else {
            let _ = reply.send(Err(RaftError::ProposalDropped));
        }
    }

    /// Answers what waited past the request timeout (no quorum, or a read raft-rs dropped).
    fn expire(&mut self, now: Instant) {
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(i, _)| *i)
            .collect();
        for index in expired {
            if let Some(p) = self.pending.remove(&index) {
                let _ = p.reply.send(Err(RaftError::Timeout));
            }
        }
        let expired: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(r) = self.reads.remove(&id) {
                (r.read)(Err(RaftError::Timeout));
            }
        }
    }

    /// Answers every waiting proposal with `proposals` and every waiting read with `reads`.
    fn fail_all(&mut self, proposals: RaftError, reads: RaftError) {
        for (_, p) in std::mem::take(&mut self.pending) {
            let _ = p.reply.send(Err(proposals.clone()));
        }
        for (_, r) in std::mem::take(&mut self.reads) {
            (r.read)(Err(reads.clone()));
        }
    }

    /// One `Ready`, in the order raft-rs requires.
    fn on_ready(&mut self) -> Result<(), RaftError> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut rd = self.raw.ready();
        if let Some(ss) = rd.ss()
            && ss.raft_state != StateRole::Leader
        {
            // What this node proposed may still commit under the next leader, or may not; reads must
            // go to the new leader.
            let leader = (ss.leader_id != raft::INVALID_ID).then(|| {
                (
                    ss.leader_id,
                    self.addresses
                        .get(&ss.leader_id)
                        .cloned()
                        .unwrap_or_default(),
                )
            });
            self.fail_all(RaftError::ProposalDropped, RaftError::NotLeader { leader });
        }
        self.peers.send(rd.take_messages());
        if !rd.snapshot().is_empty() {
            self.install_snapshot(rd.snapshot().clone(), rd.hs())?;
        }
        self.on_read_states(rd.take_read_states());
        self.apply(rd.take_committed_entries())?;

        let mut batch = LogBatch::default();
        let store = self.raw.mut_store();
        store.append(&mut batch, rd.entries())?;
        if let Some(hs) = rd.hs() {
            store.put_hard_state(&mut batch, hs)?;
        }
        store.write(&mut batch, rd.must_sync())?;
        self.peers.send(rd.take_persisted_messages());

        let mut light = self.raw.advance(rd);
        if let Some(commit) = light.commit_index() {
            self.raw.mut_store().persist_commit(commit)?;
        }
        self.peers.send(light.take_messages());
        self.apply(light.take_committed_entries())?;
        self.raw.advance_apply();
        self.run_reads();
        Ok(())
    }

    fn install_snapshot(
        &mut self,
        snap: Snapshot,
        hs: Option<&HardState>,
    ) -> Result<(), RaftError> {
        let meta = snap.get_metadata().clone();
        let (addresses, state) = snapshot::decode_data(&snap.data)?;
        self.sm.restore(state).map_err(RaftError::Storage)?;
        self.raw.mut_store().install_snapshot(snap, hs)?;
        self.applied = meta.index;
        self.applied_term = meta.term;
        self.conf_state = meta.get_conf_state().clone();
        let mut addresses = addresses;
        if let Some(own) = self.cfg.peers.get(&self.cfg.id) {
            addresses.insert(self.cfg.id, own.clone());
        }
        self.set_addresses(addresses);
        tracing::info!(
            node = self.cfg.id,
            index = meta.index,
            term = meta.term,
            "installed a snapshot"
        );
        Ok(())
    }

    fn set_addresses(&mut self, addresses: BTreeMap<u64, String>) {
        for id in self.addresses.keys() {
            if !addresses.contains_key(id) {
                self.peers.remove(*id);
            }
        }
        for (id, addr) in &addresses {
            self.peers.set(*id, addr);
        }
        self.addresses = addresses;
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), RaftError> {
        for entry in entries {
            if entry.index <= self.applied {
                continue;
            }
            let reply = match entry.get_entry_type() {
                // Entries without a context are the leader's empty entries (or refused conf changes).
                EntryType::EntryNormal if entry.context.is_empty() => None,
                EntryType::EntryNormal => Some(Ok(self.sm.apply(entry.index, &entry.data))),
                EntryType::EntryConfChange => {
                    let v1 = ConfChange::parse_from_bytes(&entry.data)?;
                    let single = ConfChangeSingle {
                        change_type: v1.change_type,
                        node_id: v1.node_id,
                        ..Default::default()
                    };
                    let change = ConfChangeV2 {
                        changes: vec![single].into(),
                        context: v1.context,
                        ..Default::default()
                    };
                    Some(self.apply_conf_change(change).map(|()| Vec::new()))
                }
                EntryType::EntryConfChangeV2 => {
                    let change = ConfChangeV2::parse_from_bytes(&entry.data)?;
                    Some(self.apply_conf_change(change).map(|()| Vec::new()))
                }
            };
            self.applied = entry.index;
            self.applied_term = entry.term;
            self.answer(entry.index, &entry.context, reply);
        }
        Ok(())
    }

    /// Applies a membership change; an invalid one (removing an unknown node) changes nothing, the same way
    /// on every node.
    fn apply_conf_change(&mut self, change: ConfChangeV2) -> Result<(), RaftError> {
        let cs = self
            .raw
            .apply_conf_change(&change)
            .map_err(|e| RaftError::ConfChange(e.to_string()))?;
        self.conf_state = cs;
        let mut addresses = self.addresses.clone();
        let address = String::from_utf8_lossy(&change.context).into_owned();
        for ConfChangeSingle {
            change_type,
            node_id,
            ..
        } in &change.changes
        {
            match change_type {
                ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                    if !address.is_empty() {
                        addresses.insert(*node_id, address.clone());
                    }
                }
                ConfChangeType::RemoveNode => {
                    addresses.remove(node_id);
                    if *node_id == self.cfg.id {
                        tracing::info!(
                            node = self.cfg.id,
                            "this node was removed from the cluster"
                        );
                    }
                }
            }
        }
        self.set_addresses(addresses);
        tracing::info!(node = self.cfg.id, voters = ?self.conf_state.voters, learners = ?self.conf_state.learners, "membership changed");
        Ok(())
    }

    /// Answers the proposal appended at `index`, and as dropped those below it that never got there (their
    /// entries were overwritten by another leader's).
    fn answer(&mut self, index: u64, ctx: &[u8], reply: Option<Result<Vec<u8>, RaftError>>) {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() >= index {
                break;
            }
            let _ = entry.remove().reply.send(Err(RaftError::ProposalDropped));
        }
        if let Some(p) = self.pending.remove(&index) {
            let result = if context_id(ctx) == Some(p.id) {
                reply.unwrap_or_else(|| Ok(Vec::new()))
            } else {
                Err(RaftError::ProposalDropped)
            };
            self.replies.push((p.reply, result));
        }
    }

    /// Asks raft-rs for the reads held while this leader had not committed an entry of its term, once
    /// it has; true if it asked any.
    fn ask_held_reads(&mut self) -> bool {
        if !self.is_leader() || !self.raw.raft.commit_to_current_term() {
            return false;
        }
        let mut asked = false;
        for (&id, read) in self.reads.iter_mut().filter(|(_, r)| !r.asked) {
            self.raw.read_index(context(id));
            read.asked = true;
            asked = true;
        }
        asked
    }

    fn on_read_states(&mut self, states: Vec<ReadState>) {
        for rs in states {
            if let Some(read) = context_id(&rs.request_ctx).and_then(|id| self.reads.get_mut(&id)) {
                read.index = Some(rs.index);
            }
        }
    }

    fn run_reads(&mut self) {
        let applied = self.applied;
        let ready: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, r)| r.index.is_some_and(|i| i <= applied))
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            if let Some(r) = self.reads.remove(&id) {
                (r.read)(Ok(&self.sm));
            }
        }
    }

    /// Takes a snapshot every `snapshot_every` applied entries, or when raft-rs needs one for a peer,
    /// once everything up to the applied index is on disk.
    fn maybe_snapshot(&mut self) -> Result<(), RaftError> {
        let store = self.raw.store();
        let last = store.latest_snapshot().get_metadata().index;
        let wanted = store.take_wants_snapshot();
        if self.applied <= last || (!wanted && self.applied < last + self.cfg.snapshot_every) {
            return Ok(());
        }
        let mut snap = Snapshot {
            data: snapshot::encode_data(&self.addresses, &self.sm.snapshot()).into(),
            ..Default::default()
        };
        let meta = snap.mut_metadata();
        meta.index = self.applied;
        meta.term = self.applied_term;
        meta.set_conf_state(self.conf_state.clone());
        self.raw.mut_store().save_snapshot(snap)?;
        tracing::info!(
            node = self.cfg.id,
            index = self.applied,
            wanted,
            "took a snapshot and compacted the log"
        );
        Ok(())
    }

    fn publish_status(&self) {
        let raft = &self.raw.raft;
        let role = match raft.state {
            StateRole::Leader => Role::Leader,
            StateRole::Candidate => Role::Candidate,
            StateRole::PreCandidate => Role::PreCandidate,
            StateRole::Follower if self.conf_state.learners.contains(&self.cfg.id) => Role::Learner,
            StateRole::Follower => Role::Follower,
        };
        let matched = if role == Role::Leader {
            raft.prs()
                .iter()
                .map(|(id, pr)| (*id, pr.matched))
                .collect()
        } else {
            BTreeMap::new()
        };
        let status = NodeStatus {
            id: self.cfg.id,
            role,
            leader_id: (raft.leader_id != raft::INVALID_ID).then_some(raft.leader_id),
            term: raft.term,
            commit: raft.raft_log.committed,
            applied: self.applied,
            snapshot_index: self.raw.store().latest_snapshot().get_metadata().index,
            voters: self.conf_state.voters.clone(),
            learners: self.conf_state.learners.clone(),
            addresses: self.addresses.clone(),
            matched,
        };
        self.status.send_if_modified(|current| {
            if *current == status {
                false
            } else {
                *current = status;
                true
            }
        });
    }
}

/// How long a caller waits at most for a reply the loop always sends by its deadline.
pub(crate) fn reply_wait(cfg: &NodeConfig) -> Duration {
    cfg.request_timeout + cfg.tick * 4
}
