//! Seeded random runs: polls, reports (late, stale, stray), expiries (by the log's times, and named by
//! a leader, stray names included), crashes, removals, drains, cancels, lazily planned stages and
//! leader changes, interleaved. The harness checks the invariants after every command and that
//! refusals change nothing; this file checks that every committed task was committed exactly once, by
//! the attempt whose success was accepted first, that every poll `quiet_poll` answers is answered
//! alike by `Poll` and changes nothing but heartbeats (and every other poll is refused or changes
//! more), and that a replay of the log gives the same replies and snapshot.

use std::collections::BTreeMap;

use super::*;
use crate::LostWorker;

/// splitmix64: enough randomness for choosing actions, and no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        (!items.is_empty()).then(|| &items[self.below(items.len() as u64) as usize])
    }
}

const WORKERS: [&str; 4] = ["w0", "w1", "w2", "w3"];

type TaskKey = (String, usize, usize);

struct World {
    h: Harness,
    rng: Rng,
    /// What each worker process believes it runs; `None` while the process is down.
    procs: BTreeMap<&'static str, Option<BTreeSet<AttemptId>>>,
    /// The attempt whose success the machine accepted, per task.
    commits: BTreeMap<TaskKey, AttemptId>,
    /// Jobs submitted so far (some may have been forgotten since).
    submitted: u64,
    /// Polls `quiet_poll` answered, and polls it left to the log.
    quiet_polls: u64,
    loud_polls: u64,
}

impl World {
    fn new(seed: u64) -> World {
        let config = Config {
            lease_ms: 10_000,
            worker_timeout_ms: 30_000,
            retry_budget: 3,
            // Short, so that runs forget gone workers (and meet them again) and finished jobs.
            forget_workers_after_ms: 20_000,
            forget_jobs_after_ms: 30_000,
        };
        let mut w = World {
            h: Harness::with_config(config),
            rng: Rng(seed),
            procs: BTreeMap::new(),
            commits: BTreeMap::new(),
            submitted: 0,
            quiet_polls: 0,
            loud_polls: 0,
        };
        for id in WORKERS {
            w.h.register(id);
            w.procs.insert(id, Some(BTreeSet::new()));
        }
        for _ in 0..3 {
            w.submit();
        }
        w
    }

    fn submit(&mut self) {
        let s0 = 1 + self.rng.below(8) as usize;
        let s1 = self.rng.below(6) as usize;
        let deps: &[usize] = if self.rng.below(2) == 0 {
            &[1]
        } else {
            &[0, 1]
        };
        let plan = Plan {
            stages: vec![
                stage("s0", s0, &[]),
                stage("s1", s1, &[0]),
                unplanned("s2", deps),
            ],
        };
        let job_id = format!("j{}", self.submitted);
        self.submitted += 1;
        self.h.submit(&job_id, plan);
    }

    fn random_job(&mut self) -> String {
        format!("j{}", self.rng.below(self.submitted + 1))
    }

    fn poll(&mut self, worker: &'static str, slots: u32) {
        let Some(Some(running)) = self.procs.get(worker).cloned() else {
            return;
        };
        let running: Vec<AttemptId> = running.into_iter().collect();
        let quiet = self.h.m.quiet_poll(worker, (slots, 0, false), &running);
        let before = self.h.m.snapshot_without_heartbeats();
        let result = self.h.run(self.h.poll_cmd(worker, slots, &running));
        let changed = self.h.m.snapshot_without_heartbeats() != before;
        match (quiet, &result) {
            (Some(q), Ok(reply)) => {
                let want = Reply::Polled {
                    assignments: vec![],
                    cancel: q.cancel,
                    drain: false,
                };
                assert_eq!(
                    reply, &want,
                    "{worker}: the quiet answer differs from Poll's"
                );
                assert!(
                    !changed,
                    "{worker}: a quiet poll changed more than heartbeats"
                );
                self.quiet_polls += 1;
            }
            (Some(_), Err(e)) => panic!("{worker}: quiet, but Poll refused: {e}"),
            (None, Ok(_)) => {
                assert!(
                    changed,
                    "{worker}: left to the log, but Poll changed no more"
                );
                self.loud_polls += 1;
            }
            (None, Err(_)) => {}
        }
        match result {
            Ok(Reply::Polled {
                assignments,
                cancel,
                drain,
            }) => {
                let held = self.procs.get_mut(worker).unwrap().as_mut().unwrap();
                held.extend(ids(&assignments));
                for id in cancel {
                    held.remove(&id);
                }
                if drain {
                    self.procs.insert(worker, None);
                }
            }
            Err(Error::WorkerGone { .. } | Error::UnknownWorker(_)) => self.restart(worker),
            other => panic!("poll of {worker}: {other:?}"),
        }
    }

    /// The process starts afresh and registers (again).
    fn restart(&mut self, worker: &'static str) {
        let now_ms = self.h.now;
        self.h.ok(register(worker, now_ms));
        self.procs.insert(worker, Some(BTreeSet::new()));
    }

    fn report(
        &mut self,
        worker: &'static str,
        attempt_id: AttemptId,
        outcome: Outcome,
        stale: bool,
    ) {
        let Some(attempt) = self.h.m.attempt(attempt_id).cloned() else {
            let _ = self.h.run(self.h.report_cmd(worker, attempt_id, outcome));
            return;
        };
        let done = !matches!(outcome, Outcome::Progress { .. });
        let success = matches!(outcome, Outcome::Succeeded { .. });
        let permanent = matches!(
            outcome,
            Outcome::Failed {
                retryable: false,
                ..
            }
        );
        let mut command = self.h.report_cmd(worker, attempt_id, outcome);
        if stale && let Command::ReportTask { term, .. } = &mut command {
            *term = term.saturating_sub(1);
        }
        let result = self.h.run(command);
        if stale && attempt.term > 0 {
            assert!(
                matches!(result, Err(Error::StaleTerm { .. })) || attempt.worker_id != worker,
                "{result:?}"
            );
        }
        let key = (attempt.job_id.clone(), attempt.stage, attempt.task);
        if permanent && result.is_ok() {
            let job = self.h.m.job(&key.0).unwrap();
            assert_eq!(job.state, JobState::Failed, "{key:?}: a permanent failure");
            assert!(
                job.error
                    .as_deref()
                    .is_some_and(|e| e.ends_with("broken input")),
                "{key:?}: {:?}",
                job.error
            );
        }
        if success && result.is_ok() {
            let first = *self.commits.entry(key.clone()).or_insert(attempt_id);
            assert_eq!(first, attempt_id, "{key:?} committed twice");
        }
        if let Some(&first) = self.commits.get(&key) {
            let task = &self.h.m.job(&key.0).unwrap().stages[key.1].tasks[key.2];
            assert_eq!(
                task.output.as_ref().map(|o| o.attempt_id),
                Some(first),
                "{key:?}"
            );
        }
        if done && let Some(Some(held)) = self.procs.get_mut(worker) {
            held.remove(&attempt_id);
        }
    }

    fn random_outcome(&mut self) -> Outcome {
        match self.rng.below(100) {
            0..25 => Outcome::Progress {
                records: self.rng.below(1000),
            },
            25..80 => Outcome::Succeeded {
                result_json: format!("{{\"n\":{}}}", self.rng.below(100)),
                elapsed_ms: 0,
            },
            80..97 => Outcome::Failed {
                reason: "flaky".into(),
                retryable: true,
            },
            _ => Outcome::Failed {
                reason: "broken input".into(),
                retryable: false,
            },
        }
    }

    /// Plans every unplanned stage whose dependencies are done, as the coordinator would.
    fn plan_ready_stages(&mut self) {
        let mut ready = Vec::new();
        for job in self.h.m.jobs() {
            for (i, s) in job.stages.iter().enumerate() {
                if job.state == JobState::Running
                    && !s.planned
                    && s.depends_on.iter().all(|&d| job.stages[d].is_done())
                {
                    ready.push((job.id.clone(), i));
                }
            }
        }
        for (job_id, stage) in ready {
            let n = self.rng.below(6) as usize;
            let now_ms = self.h.now;
            self.h.ok(Command::AddStageTasks {
                job_id,
                stage,
                tasks: tasks(n),
                now_ms,
            });
        }
    }

    fn step(&mut self) {
        self.h.now += self.rng.below(1_500);
        let worker = *self.rng.pick(&WORKERS).unwrap();
        match self.rng.below(100) {
            0..35 => {
                let slots = self.rng.below(4) as u32;
                self.poll(worker, slots);
            }
            35..65 => {
                let held: Vec<AttemptId> = match self.procs.get(worker) {
                    Some(Some(held)) => held.iter().copied().collect(),
                    _ => return,
                };
                if let Some(&id) = self.rng.pick(&held) {
                    let outcome = self.random_outcome();
                    let stale = self.rng.below(20) == 0;
                    self.report(worker, id, outcome, stale);
                }
            }
            65..70 => {
                self.h.expire();
            }
            70..75 => {
                // What a leader found silent or expired; stale and unknown names among them.
                let mut workers_lost = Vec::new();
                for w in WORKERS {
                    if self.rng.below(4) == 0 {
                        workers_lost.push(LostWorker {
                            worker_id: w.into(),
                            last_seen_ms: self.h.now.saturating_sub(self.rng.below(40_000)),
                        });
                    }
                }
                let known = self.h.m.attempts_map().len() as u64 + 2;
                let attempts = (0..self.rng.below(3))
                    .map(|_| 1 + self.rng.below(known))
                    .collect();
                let now_ms = self.h.now;
                self.h.ok(Command::Expire {
                    now_ms,
                    workers_lost,
                    attempts,
                });
            }
            75..79 => {
                self.procs.insert(worker, None);
            }
            79..85 => {
                if self.procs[worker].is_none() {
                    self.restart(worker);
                }
            }
            85..87 => {
                let _ = self.h.run(Command::RemoveWorker {
                    worker_id: worker.into(),
                });
            }
            87..89 => {
                let _ = self.h.run(Command::DrainWorker {
                    worker_id: worker.into(),
                });
            }
            89 => {
                let job = self.random_job();
                let now_ms = self.h.now;
                let _ = self.h.run(Command::CancelJob {
                    job_id: job,
                    now_ms,
                });
            }
            90..94 => {
                // A stray or late report: any attempt, any worker.
                let id = 1 + self.rng.below(self.h.m.attempts_map().len() as u64 + 2);
                let outcome = self.random_outcome();
                self.report(worker, id, outcome, false);
            }
            94 => self.h.term += 1,
            95 => {
                let job = self.random_job();
                let _ = self.h.run(Command::CleanupJob { job_id: job });
            }
            96 => self.submit(),
            _ => self.plan_ready_stages(),
        }
    }

    /// Every worker back, every task run to success: each job must end.
    fn finish(&mut self) {
        for worker in WORKERS {
            self.restart(worker);
        }
        for _ in 0..200 {
            if self.h.m.jobs().iter().all(|j| j.state != JobState::Running) {
                return;
            }
            self.h.now += 1_000;
            self.plan_ready_stages();
            for worker in WORKERS {
                self.poll(worker, 4);
                let held: Vec<AttemptId> = self.procs[worker].iter().flatten().copied().collect();
                for id in held {
                    let result_json = format!("{{\"attempt\":{id}}}");
                    self.report(
                        worker,
                        id,
                        Outcome::Succeeded {
                            result_json,
                            elapsed_ms: 0,
                        },
                        false,
                    );
                }
            }
            self.h.expire();
        }
        panic!("jobs still running: {:?}", self.h.m.jobs());
    }
}

#[test]
fn random_interleavings_keep_the_invariants() {
    // What the runs must have gone through, summed over seeds: (a piece of a reply, how many seen).
    let mut seen = [
        ("is already committed by attempt", 0),
        ("\"workers_lost\":[\"", 0),
        ("\"job\":\"Failed\"", 0),
        ("\"job\":\"Succeeded\"", 0),
        ("a report from term", 0),
        ("\"cancel\":[1", 0),
        ("\"drain\":true", 0),
        ("\"workers_forgotten\":[\"", 0),
        ("\"jobs_forgotten\":[\"", 0),
        ("\"StagePlanned\"", 0),
    ];
    let (mut quiet, mut loud) = (0, 0);
    for seed in 0..40 {
        let mut w = World::new(seed);
        for _ in 0..500 {
            w.step();
        }
        w.finish();
        (quiet, loud) = (quiet + w.quiet_polls, loud + w.loud_polls);

        for job in w.h.m.jobs() {
            for (si, stage) in job.stages.iter().enumerate() {
                let outputs = w.h.m.committed_outputs(&job.id, si).unwrap();
                let committed: Vec<usize> = (0..stage.tasks.len())
                    .filter(|&t| w.commits.contains_key(&(job.id.clone(), si, t)))
                    .collect();
                assert_eq!(
                    outputs.iter().map(|o| o.0).collect::<Vec<_>>(),
                    committed,
                    "seed {seed}: {} {si}",
                    job.id
                );
                if job.state == JobState::Succeeded {
                    assert_eq!(outputs.len(), stage.tasks.len(), "seed {seed}");
                }
            }
        }

        let mut replay = Machine::new(Config {
            lease_ms: 10_000,
            worker_timeout_ms: 30_000,
            retry_budget: 3,
            forget_workers_after_ms: 20_000,
            forget_jobs_after_ms: 30_000,
        });
        for (index, command, reply) in &w.h.log {
            assert_eq!(
                &replay.apply(*index, &command.to_bytes()),
                reply,
                "seed {seed}: {command:?}"
            );
        }
        assert_eq!(replay.snapshot(), w.h.m.snapshot(), "seed {seed}");
        for (_, _, reply) in &w.h.log {
            let reply = String::from_utf8_lossy(reply);
            for (piece, count) in &mut seen {
                *count += usize::from(reply.contains(*piece));
            }
        }
    }
    for (piece, count) in seen {
        assert!(count > 0, "no run produced {piece}");
    }
    assert!(quiet > 0 && loud > 0, "quiet polls {quiet}, others {loud}");
}
