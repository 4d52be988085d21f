//! Tests: a harness that applies commands, checks the invariants after every one and that refused ones
//! change nothing; scenarios; heartbeats kept out of the log; tables of refusals; a seeded randomised
//! run.

mod heartbeats;
mod random;
mod refusals;
mod scenarios;

use std::collections::BTreeSet;

use crate::{
    Assignment, AttemptId, AttemptState, Command, Config, Error, JobState, Machine, Outcome, Plan,
    Reply, StagePlan, TaskPlan, TaskState,
};

/// Applies commands in order, as the Raft log would, and keeps the log for replays.
pub(crate) struct Harness {
    pub m: Machine,
    pub index: u64,
    pub now: u64,
    pub term: u64,
    /// (index, command, reply as bytes)
    pub log: Vec<(u64, Command, Vec<u8>)>,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_config(Config::default())
    }

    pub fn with_config(config: Config) -> Harness {
        Harness {
            m: Machine::new(config),
            index: 0,
            now: 1_000,
            term: 1,
            log: Vec::new(),
        }
    }

    /// Applies a command; a refusal must leave the snapshot byte for byte as it was.
    pub fn run(&mut self, command: Command) -> Result<Reply, Error> {
        self.index += 1;
        let before = self.m.snapshot();
        let result = self.m.execute(self.index, command.clone());
        if let Err(e) = &result {
            assert_eq!(
                String::from_utf8_lossy(&before),
                String::from_utf8_lossy(&self.m.snapshot()),
                "refused command {command:?} ({e}) changed the state"
            );
        }
        check_invariants(&self.m);
        let reply = result.clone().unwrap_or_else(Reply::from);
        self.log.push((self.index, command, reply.to_bytes()));
        result
    }

    pub fn ok(&mut self, command: Command) -> Reply {
        let c = format!("{command:?}");
        self.run(command)
            .unwrap_or_else(|e| panic!("{c} refused: {e}"))
    }

    pub fn refused(&mut self, command: Command) -> Error {
        let c = format!("{command:?}");
        match self.run(command) {
            Ok(reply) => panic!("{c} accepted: {reply:?}"),
            Err(e) => e,
        }
    }

    pub fn submit(&mut self, job_id: &str, plan: Plan) -> Reply {
        let now_ms = self.now;
        self.ok(Command::SubmitJob {
            job_id: Some(job_id.into()),
            name: format!("{job_id} name"),
            spec_toml: "[job]\n".into(),
            plan,
            now_ms,
            request_id: None,
        })
    }

    pub fn register(&mut self, worker_id: &str) -> Reply {
        let now_ms = self.now;
        self.ok(register(worker_id, now_ms))
    }

    pub fn poll_cmd(&self, worker_id: &str, free_slots: u32, running: &[AttemptId]) -> Command {
        Command::Poll {
            worker_id: worker_id.into(),
            term: self.term,
            free_slots,
            running: running.to_vec(),
            now_ms: self.now,
            queue_slots: 0,
            leaving: false,
        }
    }

    /// (assignments, cancel, drain)
    pub fn poll(
        &mut self,
        worker_id: &str,
        free_slots: u32,
        running: &[AttemptId],
    ) -> (Vec<Assignment>, Vec<AttemptId>, bool) {
        self.polled(self.poll_cmd(worker_id, free_slots, running))
    }

    /// Applies a `Poll` command: (assignments, cancel, drain).
    pub fn polled(&mut self, poll: Command) -> (Vec<Assignment>, Vec<AttemptId>, bool) {
        match self.ok(poll) {
            Reply::Polled {
                assignments,
                cancel,
                drain,
            } => (assignments, cancel, drain),
            other => panic!("poll replied {other:?}"),
        }
    }

    pub fn report_cmd(&self, worker_id: &str, attempt_id: AttemptId, outcome: Outcome) -> Command {
        let term = self.m.attempt(attempt_id).map_or(self.term, |a| a.term);
        Command::ReportTask {
            worker_id: worker_id.into(),
            attempt_id,
            term,
            outcome,
            now_ms: self.now,
        }
    }

    pub fn report(
        &mut self,
        worker_id: &str,
        attempt_id: AttemptId,
        outcome: Outcome,
    ) -> Result<Reply, Error> {
        self.run(self.report_cmd(worker_id, attempt_id, outcome))
    }

    pub fn succeed(&mut self, worker_id: &str, attempt_id: AttemptId) -> Reply {
        let result_json = format!("{{\"attempt\":{attempt_id}}}");
        self.report(
            worker_id,
            attempt_id,
            Outcome::Succeeded {
                result_json,
                elapsed_ms: 0,
            },
        )
        .unwrap_or_else(|e| panic!("success of {attempt_id} refused: {e}"))
    }

    pub fn expire(&mut self) -> (Vec<AttemptId>, Vec<String>) {
        let now_ms = self.now;
        match self.ok(Command::ExpireLeases { now_ms }) {
            Reply::Expired {
                attempts,
                workers_lost,
                ..
            } => (attempts, workers_lost),
            other => panic!("expire replied {other:?}"),
        }
    }

    pub fn job_state(&self, job_id: &str) -> JobState {
        self.m.job(job_id).expect("job").state
    }
}

pub(crate) fn register(worker_id: &str, now_ms: u64) -> Command {
    Command::RegisterWorker {
        worker_id: worker_id.into(),
        name: format!("{worker_id} host"),
        address: format!("{worker_id}.local:7070"),
        cores: 4,
        protocol_version: crate::PROTOCOL_VERSION,
        now_ms,
    }
}

pub(crate) fn tasks(n: usize) -> Vec<TaskPlan> {
    (0..n)
        .map(|i| TaskPlan {
            payload_json: format!("{{\"partition\":{i}}}"),
        })
        .collect()
}

pub(crate) fn stage(name: &str, n: usize, depends_on: &[usize]) -> StagePlan {
    StagePlan {
        name: name.into(),
        tasks: tasks(n),
        depends_on: depends_on.to_vec(),
        planned: true,
    }
}

pub(crate) fn unplanned(name: &str, depends_on: &[usize]) -> StagePlan {
    StagePlan {
        name: name.into(),
        tasks: vec![],
        depends_on: depends_on.to_vec(),
        planned: false,
    }
}

/// standardise (2 tasks) → block (2 tasks) → score (planned later).
pub(crate) fn three_stages() -> Plan {
    Plan {
        stages: vec![
            stage("standardise", 2, &[]),
            stage("block", 2, &[0]),
            unplanned("score", &[1]),
        ],
    }
}

pub(crate) fn ids(assignments: &[Assignment]) -> Vec<AttemptId> {
    assignments.iter().map(|a| a.attempt_id).collect()
}

pub(crate) fn tasks_of(assignments: &[Assignment]) -> Vec<(String, usize, usize)> {
    assignments
        .iter()
        .map(|a| (a.job_id.clone(), a.stage, a.task))
        .collect()
}

/// The written invariants of the crate docs, checked on the whole state.
pub(crate) fn check_invariants(m: &Machine) {
    let attempts = m.attempts_map();
    for job in m.jobs() {
        let mut all_committed = true;
        for (si, stage) in job.stages.iter().enumerate() {
            all_committed &= stage.planned;
            // A stage is stamped finished exactly when it is done, and never before it started.
            assert_eq!(
                stage.finished_ms.is_some(),
                stage.is_done(),
                "{}/{si}",
                job.id
            );
            if let Some(finished) = stage.finished_ms {
                assert!(
                    stage.started_ms.is_some_and(|s| s <= finished),
                    "{}/{si}",
                    job.id
                );
            }
            for (ti, task) in stage.tasks.iter().enumerate() {
                let at = format!("{}/{si}/{ti}", job.id);
                all_committed &= task.state == TaskState::Committed;
                assert_eq!(
                    task.state == TaskState::Committed,
                    task.output.is_some(),
                    "{at}"
                );
                assert_eq!(
                    task.state == TaskState::Running,
                    task.current_attempt.is_some(),
                    "{at}"
                );
                if job.state != JobState::Running {
                    assert!(
                        task.current_attempt.is_none(),
                        "{at}: finished job holds an attempt"
                    );
                }
                if task.state == TaskState::Running {
                    assert!(
                        stage.planned && stage.depends_on.iter().all(|&d| job.stages[d].is_done()),
                        "{at}: leased before its dependencies were done"
                    );
                }
                // At most one running attempt, and the committed one is the only success.
                let states: Vec<&AttemptState> = task
                    .attempts
                    .iter()
                    .filter_map(|a| attempts.get(a))
                    .map(|a| &a.state)
                    .collect();
                let running = states
                    .iter()
                    .filter(|s| ***s == AttemptState::Running)
                    .count();
                let succeeded = states
                    .iter()
                    .filter(|s| ***s == AttemptState::Succeeded)
                    .count();
                assert!(running <= 1, "{at}: {running} running attempts");
                if let Some(a) = task.current_attempt {
                    assert_eq!(attempts[&a].state, AttemptState::Running, "{at}");
                }
                if !job.scratch_cleaned {
                    assert_eq!(
                        succeeded,
                        usize::from(task.output.is_some()),
                        "{at}: successes"
                    );
                    if let Some(out) = &task.output {
                        assert_eq!(
                            attempts[&out.attempt_id].state,
                            AttemptState::Succeeded,
                            "{at}"
                        );
                    }
                }
            }
        }
        assert_eq!(
            job.state == JobState::Succeeded,
            all_committed,
            "job {}",
            job.id
        );
        assert_eq!(
            job.state == JobState::Running,
            job.finished_ms.is_none(),
            "job {}",
            job.id
        );
    }
    // Workers' held sets are exactly the running attempts.
    let mut held = BTreeSet::new();
    for w in m.workers() {
        if !w.state.is_live() {
            assert!(
                w.attempts.is_empty(),
                "{} is {:?} but holds attempts",
                w.id,
                w.state
            );
        }
        for id in &w.attempts {
            let a = &attempts[id];
            assert_eq!(a.state, AttemptState::Running, "attempt {id}");
            assert_eq!(a.worker_id, w.id, "attempt {id}");
            held.insert(*id);
        }
    }
    for (id, a) in attempts {
        assert!(
            m.worker(&a.worker_id).is_some(),
            "attempt {id} names a forgotten worker"
        );
        if a.state == AttemptState::Running {
            assert!(held.contains(id), "running attempt {id} held by no worker");
            let task = &m.job(&a.job_id).expect("job").stages[a.stage].tasks[a.task];
            assert_eq!(task.current_attempt, Some(*id), "attempt {id}");
        }
    }
}

pub(crate) fn progress(records: u64) -> Outcome {
    Outcome::Progress { records }
}

pub(crate) fn failed(retryable: bool) -> Outcome {
    Outcome::Failed {
        reason: "disk full".into(),
        retryable,
    }
}
