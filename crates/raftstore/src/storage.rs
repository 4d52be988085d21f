//! The Raft log and hard state in raft-engine, and the latest snapshot, behind raft-rs's `Storage`.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};
use raft_engine::{Command, Engine, LogBatch, MessageExt};

use crate::{RaftError, snapshot};

/// The raft-engine group that holds this node's log (one Raft group per node).
const GROUP: u64 = 1;
const HARD_STATE_KEY: &[u8] = b"hard_state";

struct EntryExt;

impl MessageExt for EntryExt {
    type Entry = Entry;

    fn index(e: &Entry) -> u64 {
        e.index
    }
}

/// Log entries after the latest snapshot, the hard state, and that snapshot.
///
/// The conf state is the snapshot's: entries after it, conf changes included, are applied again on
/// restart, so the membership is always the one of the applied index.
pub(crate) struct LogStore {
    engine: Engine,
    dir: PathBuf,
    hard_state: HardState,
    snapshot: Snapshot,
    /// Set when raft-rs asked for a snapshot the node must take first (see [`raft::Storage::snapshot`]).
    wants_snapshot: Cell<bool>,
}

impl LogStore {
    pub(crate) fn open(dir: &Path) -> Result<Self, RaftError> {
        std::fs::create_dir_all(dir)?;
        let cfg = raft_engine::Config {
            dir: dir.join("log").display().to_string(),
            ..Default::default()
        };
        let engine = Engine::open(cfg)?;
        let hard_state = engine
            .get_message::<HardState>(GROUP, HARD_STATE_KEY)?
            .unwrap_or_default();
        let snapshot = snapshot::read_file(dir)?.unwrap_or_default();
        Ok(Self {
            engine,
            dir: dir.to_path_buf(),
            hard_state,
            snapshot,
            wants_snapshot: Cell::new(false),
        })
    }

    /// Nothing was ever persisted here.
    pub(crate) fn is_empty(&self) -> bool {
        self.snapshot.get_metadata().index == 0 && self.hard_state == HardState::default()
    }

    pub(crate) fn latest_snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    pub(crate) fn take_wants_snapshot(&self) -> bool {
        self.wants_snapshot.replace(false)
    }

    /// The first state of a new cluster: a snapshot at index 1, term 1 holding `conf_state`.
    pub(crate) fn bootstrap(
        &mut self,
        conf_state: ConfState,
        data: Vec<u8>,
    ) -> Result<(), RaftError> {
        let mut snap = Snapshot {
            data: data.into(),
            ..Default::default()
        };
        snap.mut_metadata().index = 1;
        snap.mut_metadata().term = 1;
        snap.mut_metadata().set_conf_state(conf_state);
        let hs = HardState {
            term: 1,
            commit: 1,
            ..Default::default()
        };
        let mut batch = LogBatch::default();
        self.put_hard_state(&mut batch, &hs)?;
        self.engine.write(&mut batch, true)?;
        snapshot::write_file(&self.dir, &snap)?;
        self.snapshot = snap;
        Ok(())
    }

    pub(crate) fn append(
        &mut self,
        batch: &mut LogBatch,
        entries: &[Entry],
    ) -> Result<(), RaftError> {
        batch.add_entries::<EntryExt>(GROUP, entries)?;
        Ok(())
    }

    pub(crate) fn put_hard_state(
        &mut self,
        batch: &mut LogBatch,
        hs: &HardState,
    ) -> Result<(), RaftError> {
        batch.put_message(GROUP, HARD_STATE_KEY.to_vec(), hs)?;
        self.hard_state = hs.clone();
        Ok(())
    }

    /// Persists the commit index of a light ready, before its entries are applied.
    pub(crate) fn persist_commit(&mut self, commit: u64) -> Result<(), RaftError> {
        let mut hs = self.hard_state.clone();
        hs.commit = commit;
        let mut batch = LogBatch::default();
        self.put_hard_state(&mut batch, &hs)?;
        self.engine.write(&mut batch, false)?;
        Ok(())
    }

    pub(crate) fn write(&mut self, batch: &mut LogBatch, sync: bool) -> Result<(), RaftError> {
        if !batch.is_empty() {
            self.engine.write(batch, sync)?;
        }
        Ok(())
    }

    /// Installs a snapshot received from the leader: the commit index reaches it on disk first, then the
    /// snapshot file, then the older log is dropped.
    pub(crate) fn install_snapshot(
        &mut self,
        snap: Snapshot,
        hs: Option<&HardState>,
    ) -> Result<(), RaftError> {
        let meta = snap.get_metadata();
        let mut hard_state = hs.cloned().unwrap_or_else(|| self.hard_state.clone());
        hard_state.term = hard_state.term.max(meta.term);
        hard_state.commit = hard_state.commit.max(meta.index);
        let mut batch = LogBatch::default();
        self.put_hard_state(&mut batch, &hard_state)?;
        self.engine.write(&mut batch, true)?;
        snapshot::write_file(&self.dir, &snap)?;
        // Every entry goes: those after the snapshot come again from the leader.
        let last = self.engine.last_index(GROUP).unwrap_or(0);
        let mut batch = LogBatch::default();
        batch.add_command(
            GROUP,
            Command::Compact {
                index: last.max(meta.index) + 1,
            },
        );
        self.engine.write(&mut batch, true)?;
        self.snapshot = snap;
        Ok(())
    }

    /// Keeps a snapshot this node took of its applied state and compacts the log up to it.
    pub(crate) fn save_snapshot(&mut self, snap: Snapshot) -> Result<(), RaftError> {
        // The commit index on disk must not be behind the applied index in the file.
        self.engine.sync()?;
        snapshot::write_file(&self.dir, &snap)?;
        let index = snap.get_metadata().index;
        self.snapshot = snap;
        self.engine.compact_to(GROUP, index + 1);
        self.engine.purge_expired_files()?;
        Ok(())
    }

    fn snapshot_index(&self) -> u64 {
        self.snapshot.get_metadata().index
    }

    fn last(&self) -> u64 {
        let snap = self.snapshot_index();
        self.engine
            .last_index(GROUP)
            .filter(|&last| last > snap)
            .unwrap_or(snap)
    }
}

fn other(e: impl std::error::Error + Send + Sync + 'static) -> raft::Error {
    raft::Error::Store(StorageError::Other(Box::new(e)))
}

impl raft::Storage for LogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.snapshot.get_metadata().get_conf_state().clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low <= self.snapshot_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let max_size = max_size
            .into()
            .filter(|&m| m != u64::MAX)
            .map(|m| m as usize);
        let mut entries = Vec::with_capacity((high - low) as usize);
        self.engine
            .fetch_entries_to::<EntryExt>(GROUP, low, high, max_size, &mut entries)
            .map_err(other)?;
        if entries.is_empty() && high > low {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(entries)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let snap = self.snapshot_index();
        if idx == snap {
            return Ok(self.snapshot.get_metadata().term);
        }
        if idx < snap {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        match self
            .engine
            .get_entry::<EntryExt>(GROUP, idx)
            .map_err(other)?
        {
            Some(entry) => Ok(entry.term),
            None => Err(raft::Error::Store(StorageError::Unavailable)),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.snapshot_index() + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    /// The latest snapshot if it is recent enough and `to` is a member of it (raft-rs drops a snapshot
    /// whose conf state lacks the receiver); otherwise asks the node for a new one, and raft-rs retries.
    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let meta = self.snapshot.get_metadata();
        let cs = meta.get_conf_state();
        let member = cs.voters.contains(&to)
            || cs.learners.contains(&to)
            || cs.voters_outgoing.contains(&to)
            || cs.learners_next.contains(&to);
        if meta.index >= request_index && member {
            return Ok(self.snapshot.clone());
        }
        self.wants_snapshot.set(true);
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable,
        ))
    }
}

#[cfg(test)]
mod tests {
    use raft::Storage as _;

    use super::*;

    fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
        range
            .map(|index| Entry {
                index,
                term,
                data: vec![index as u8].into(),
                ..Default::default()
            })
            .collect()
    }

    fn persist(store: &mut LogStore, entries: &[Entry], commit: u64) {
        let mut batch = LogBatch::default();
        store.append(&mut batch, entries).unwrap();
        let term = entries.last().map_or(1, |e| e.term);
        store
            .put_hard_state(
                &mut batch,
                &HardState {
                    term,
                    commit,
                    ..Default::default()
                },
            )
            .unwrap();
        store.write(&mut batch, true).unwrap();
    }

    fn snapshot_at(index: u64, term: u64) -> Snapshot {
        let mut snap = Snapshot {
            data: snapshot::encode_data(&Default::default(), b"s").into(),
            ..Default::default()
        };
        snap.mut_metadata().index = index;
        snap.mut_metadata().term = term;
        snap.mut_metadata().mut_conf_state().voters = vec![1, 2];
        snap
    }

    fn compacted<T: std::fmt::Debug>(r: raft::Result<T>) -> bool {
        matches!(r, Err(raft::Error::Store(StorageError::Compacted)))
    }

    /// (first index, last index, terms of first-1 ..= last)
    fn shape(store: &LogStore) -> (u64, u64, Vec<u64>) {
        let (first, last) = (store.first_index().unwrap(), store.last_index().unwrap());
        (
            first,
            last,
            (first - 1..=last).map(|i| store.term(i).unwrap()).collect(),
        )
    }

    #[test]
    fn log_survives_overwrite_compaction_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path()).unwrap();
        assert!(store.is_empty());
        store
            .bootstrap(
                ConfState {
                    voters: vec![1],
                    ..Default::default()
                },
                b"x".to_vec(),
            )
            .unwrap();
        persist(&mut store, &entries(2..=10, 1), 5);
        // A new leader overwrites the uncommitted tail.
        persist(&mut store, &entries(8..=9, 2), 5);
        assert_eq!(shape(&store), (2, 9, vec![1, 1, 1, 1, 1, 1, 1, 2, 2]));

        store.save_snapshot(snapshot_at(5, 1)).unwrap();
        assert_eq!(shape(&store), (6, 9, vec![1, 1, 1, 2, 2]));
        assert!(compacted(store.term(4)));
        assert!(compacted(store.entries(
            5,
            7,
            None,
            GetEntriesContext::empty(false)
        )));
        let got = store
            .entries(6, 10, None, GetEntriesContext::empty(false))
            .unwrap();
        assert_eq!(
            got.iter().map(|e| e.index).collect::<Vec<_>>(),
            vec![6, 7, 8, 9]
        );
        let one = store
            .entries(6, 10, Some(1), GetEntriesContext::empty(false))
            .unwrap();
        assert_eq!(one.len(), 1, "max_size still returns one entry");

        drop(store);
        let store = LogStore::open(dir.path()).unwrap();
        assert_eq!(shape(&store), (6, 9, vec![1, 1, 1, 2, 2]));
        let state = store.initial_state().unwrap();
        assert_eq!((state.hard_state.term, state.hard_state.commit), (2, 5));
        assert_eq!(state.conf_state.voters, vec![1, 2]);
    }

    #[test]
    fn installed_snapshot_replaces_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path()).unwrap();
        persist(&mut store, &entries(1..=4, 1), 2);
        store.install_snapshot(snapshot_at(20, 3), None).unwrap();
        assert_eq!(shape(&store), (21, 20, vec![3]));
        assert_eq!(store.initial_state().unwrap().hard_state.commit, 20);
        persist(&mut store, &entries(21..=22, 3), 22);
        drop(store);
        let store = LogStore::open(dir.path()).unwrap();
        assert_eq!(shape(&store), (21, 22, vec![3, 3, 3]));
    }

    #[test]
    fn snapshot_for_a_non_member_is_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path()).unwrap();
        store
            .bootstrap(
                ConfState {
                    voters: vec![1],
                    ..Default::default()
                },
                b"x".to_vec(),
            )
            .unwrap();
        assert!(raft::Storage::snapshot(&store, 0, 1).is_ok());
        assert!(raft::Storage::snapshot(&store, 0, 2).is_err());
        assert!(store.take_wants_snapshot());
        assert!(!store.take_wants_snapshot());
    }
}
