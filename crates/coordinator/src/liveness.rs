//! Liveness held by the leader, in memory: when each worker last polled this leader and when this
//! leader last renewed each running attempt's lease. Polls that change nothing else are answered from
//! a read and recorded here instead of in the Raft log, so an idle cluster writes nothing.
//!
//! The table belongs to an epoch: the Raft term it was built in. A leader of a new term starts an
//! empty table, and until it hears from them counts every worker as seen, and every running attempt
//! as renewed, when its epoch started: the old leader may have heard from them a moment before in
//! memory, and a new leader must never expire what it cannot know was renewed. A deposed leader
//! cannot record anything that matters: its reads need a quorum (Raft ReadIndex), so it cannot answer
//! a poll once another leader was elected, and whatever it renewed before that the new leader's grace
//! covers. See `docs/design/2026-12-08-leases-held-by-the-leader.md`.

use std::collections::{BTreeMap, BTreeSet};

use khop_scheduler::{AttemptId, Command, LostWorker, Machine, WorkerId};

#[derive(Clone, Debug, Default)]
pub(crate) struct Liveness {
    /// The Raft term this table was built in (0: none yet).
    epoch: u64,
    /// When this leader first acted in the epoch (its clock).
    started_ms: u64,
    /// Worker → when it last polled this leader.
    seen: BTreeMap<WorkerId, u64>,
    /// Running attempt → when this leader last renewed its lease.
    renewed: BTreeMap<AttemptId, u64>,
}

impl Liveness {
    /// Moves to `term`'s epoch if it is newer (a fresh table, started now); false for an older term
    /// (a caller that read the term before a change of leader).
    fn enter(&mut self, term: u64, now_ms: u64) -> bool {
        if term > self.epoch {
            *self = Liveness {
                epoch: term,
                started_ms: now_ms,
                ..Liveness::default()
            };
        }
        term == self.epoch
    }

    /// A poll answered in `term` without the log: the worker is alive now, and the attempts it holds
    /// are renewed now.
    pub(crate) fn polled(&mut self, term: u64, now_ms: u64, worker_id: &str, renew: &[AttemptId]) {
        if !self.enter(term, now_ms) {
            return;
        }
        self.seen.insert(worker_id.to_string(), now_ms);
        for &id in renew {
            self.renewed.insert(id, now_ms);
        }
    }

    /// The table as of `term` (entered if new), to decide with outside the lock.
    pub(crate) fn view(&mut self, term: u64, now_ms: u64) -> Liveness {
        self.enter(term, now_ms);
        self.clone()
    }

    /// When a worker last polled this leader without the log, if it has in this epoch.
    pub(crate) fn heard_from(&self, worker_id: &str) -> Option<u64> {
        self.seen.get(worker_id).copied()
    }

    /// When the leader last heard from a worker: its last heartbeat in the log, in this table, or
    /// the epoch's start, whichever is latest.
    pub(crate) fn last_seen(&self, worker_id: &str, logged_ms: u64) -> u64 {
        let seen = self.seen.get(worker_id).copied().unwrap_or(0);
        logged_ms.max(seen).max(self.started_ms)
    }

    /// When an attempt's lease expires: as the log says, as this leader renewed it, or a lease from
    /// the epoch's start, whichever is latest.
    fn lease_expires(&self, attempt_id: AttemptId, logged_ms: u64, lease_ms: u64) -> u64 {
        let renewed = self.renewed.get(&attempt_id).copied().unwrap_or(0);
        logged_ms.max(renewed.max(self.started_ms).saturating_add(lease_ms))
    }

    /// What is due at `now_ms` by this table and the replicated state: live workers silent for longer
    /// than the worker timeout, running attempts (of the other workers) whose lease has expired, gone
    /// workers and finished jobs to forget. `None` when nothing is: then nothing is proposed.
    pub(crate) fn due(&self, machine: &Machine, now_ms: u64) -> Option<Command> {
        let config = machine.config();
        let mut workers_lost = Vec::new();
        let mut attempts = Vec::new();
        for w in machine.workers() {
            if !w.state.is_live() {
                continue;
            }
            let last_seen_ms = self.last_seen(&w.id, w.last_seen_ms);
            if now_ms.saturating_sub(last_seen_ms) > config.worker_timeout_ms {
                workers_lost.push(LostWorker {
                    worker_id: w.id.clone(),
                    last_seen_ms,
                });
                continue;
            }
            for &id in &w.attempts {
                let logged = machine.attempt(id).map_or(0, |a| a.lease_expires_ms);
                if self.lease_expires(id, logged, config.lease_ms) <= now_ms {
                    attempts.push(id);
                }
            }
        }
        if workers_lost.is_empty() && attempts.is_empty() && !machine.forgetting_due(now_ms) {
            return None;
        }
        Some(Command::Expire {
            now_ms,
            workers_lost,
            attempts,
        })
    }

    /// Keeps only the live workers and running attempts of `machine` (read in `term`), so the table
    /// stays as small as the state's live part.
    pub(crate) fn retain(&mut self, term: u64, live: &Live) {
        if term != self.epoch {
            return;
        }
        self.seen.retain(|w, _| live.workers.contains(w));
        self.renewed.retain(|a, _| live.attempts.contains(a));
    }
}

/// The live workers and their running attempts, as read from the state.
#[derive(Debug, Default)]
pub(crate) struct Live {
    workers: BTreeSet<WorkerId>,
    attempts: BTreeSet<AttemptId>,
}

impl Live {
    pub(crate) fn of(machine: &Machine) -> Live {
        let mut live = Live::default();
        for w in machine.workers() {
            if w.state.is_live() {
                live.workers.insert(w.id.clone());
                live.attempts.extend(w.attempts.iter().copied());
            }
        }
        live
    }
}

#[cfg(test)]
mod tests {
    use khop_scheduler::{Config, Plan, Reply, StagePlan, TaskPlan};

    use super::*;

    const LEASE: u64 = 10_000;
    const TIMEOUT: u64 = 30_000;

    /// w1 holds attempt 1 and w2 attempt 2, both leased at 1 000 (their last heartbeats in the log);
    /// w3 holds nothing.
    fn machine() -> Machine {
        let mut m = Machine::new(Config {
            lease_ms: LEASE,
            worker_timeout_ms: TIMEOUT,
            ..Config::default()
        });
        let mut index = 0;
        let mut run = |m: &mut Machine, c: Command| {
            index += 1;
            m.execute(index, c).unwrap()
        };
        let stage = StagePlan {
            name: "s".into(),
            tasks: vec![
                TaskPlan {
                    payload_json: "{}".into(),
                };
                2
            ],
            depends_on: vec![],
            planned: true,
        };
        run(
            &mut m,
            Command::SubmitJob {
                job_id: Some("j1".into()),
                name: "t".into(),
                spec_toml: String::new(),
                plan: Plan {
                    stages: vec![stage],
                },
                now_ms: 1_000,
                request_id: None,
            },
        );
        for w in ["w1", "w2", "w3"] {
            run(
                &mut m,
                Command::RegisterWorker {
                    worker_id: w.into(),
                    name: w.into(),
                    address: String::new(),
                    cores: 1,
                    protocol_version: khop_scheduler::PROTOCOL_VERSION,
                    now_ms: 1_000,
                },
            );
        }
        for w in ["w1", "w2"] {
            let reply = run(
                &mut m,
                Command::Poll {
                    worker_id: w.into(),
                    term: 1,
                    free_slots: 1,
                    running: vec![],
                    now_ms: 1_000,
                    queue_slots: 0,
                    leaving: false,
                },
            );
            assert!(matches!(reply, Reply::Polled { assignments, .. } if assignments.len() == 1));
        }
        m
    }

    /// (workers lost, attempts expired), or `None` when nothing is due.
    fn due(table: &Liveness, m: &Machine, now_ms: u64) -> Option<(Vec<String>, Vec<AttemptId>)> {
        match table.due(m, now_ms)? {
            Command::Expire {
                workers_lost,
                attempts,
                ..
            } => Some((
                workers_lost.into_iter().map(|w| w.worker_id).collect(),
                attempts,
            )),
            other => panic!("due gave {other:?}"),
        }
    }

    #[test]
    fn quiet_polls_keep_workers_and_leases_alive_without_the_log() {
        let m = machine();
        let mut table = Liveness::default();
        table.view(1, 1_000);
        // w1 polls this leader every 5 s, renewing attempt 1; w2 and w3 fall silent.
        for t in (6_000..=41_000).step_by(5_000) {
            table.polled(1, t, "w1", &[1]);
        }
        assert_eq!(due(&table, &m, 11_000), Some((vec![], vec![2])));
        assert_eq!(
            due(&table, &m, 31_001),
            Some((vec!["w2".into(), "w3".into()], vec![]))
        );
        assert_eq!(table.last_seen("w1", 1_000), 41_000);
        // Nothing due: nothing to propose.
        let mut quiet = Liveness::default();
        quiet.view(1, 1_000);
        quiet.polled(1, 9_000, "w1", &[1]);
        quiet.polled(1, 9_000, "w2", &[2]);
        quiet.polled(1, 9_000, "w3", &[]);
        assert_eq!(due(&quiet, &m, 18_000), None);
    }

    #[test]
    fn a_new_epoch_starts_empty_with_a_grace_of_one_timeout() {
        let m = machine();
        let mut table = Liveness::default();
        table.view(1, 1_000);
        table.polled(1, 50_000, "w1", &[1]);
        // A new leader (term 3) at 60 000 has heard from nobody: all counted as seen at 60 000.
        let view = table.view(3, 60_000);
        assert_eq!(view.last_seen("w1", 1_000), 60_000, "the old epoch is gone");
        assert_eq!(due(&view, &m, 60_000 + LEASE - 1), None);
        assert_eq!(due(&view, &m, 60_000 + LEASE), Some((vec![], vec![1, 2])));
        assert_eq!(
            due(&view, &m, 60_000 + TIMEOUT + 1),
            Some((vec!["w1".into(), "w2".into(), "w3".into()], vec![]))
        );
        // A poll answered in the old term, recorded late, is ignored.
        table.polled(1, 61_000, "w3", &[]);
        assert_eq!(table.view(3, 61_000).last_seen("w3", 1_000), 60_000);
        table.polled(3, 62_000, "w3", &[]);
        assert_eq!(table.view(3, 62_000).last_seen("w3", 1_000), 62_000);
    }

    #[test]
    fn the_table_keeps_only_live_workers_and_running_attempts() {
        let m = machine();
        let mut table = Liveness::default();
        table.polled(1, 2_000, "w1", &[1, 7]);
        table.polled(1, 2_000, "gone", &[]);
        table.retain(1, &Live::of(&m));
        assert_eq!(table.seen.keys().collect::<Vec<_>>(), ["w1"]);
        assert_eq!(table.renewed.keys().collect::<Vec<_>>(), [&1]);
        // A retain read in an older term leaves a newer epoch alone.
        table.polled(2, 3_000, "gone", &[]);
        table.retain(1, &Live::of(&m));
        assert!(table.seen.contains_key("gone"));
    }
}
