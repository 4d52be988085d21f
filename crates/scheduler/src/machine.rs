//! [`Machine`]: applies commands to the state, takes and restores snapshots, answers the coordinator's
//! reads. Every command handler validates everything first and changes the state only after, so that a
//! refused command changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::command::{Assignment, Command, LostWorker, Outcome, Plan, Reply, TaskPlan, to_json};
use crate::error::Error;
use crate::state::{
    AbandonCause, Attempt, AttemptState, Committed, Config, Job, JobState, Stage, Task, TaskState,
    Worker, WorkerState,
};
use crate::{AttemptId, JobId, PROTOCOL_VERSION, SNAPSHOT_FORMAT, WorkerId, job_id_for_index};

/// The coordinators' job state machine. Feed it the Raft log in order with [`Machine::apply`] (or
/// [`Machine::execute`]); the same commands give the same replies and byte-identical snapshots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Machine {
    state: State,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    /// [`SNAPSHOT_FORMAT`]; first in the JSON so that a reader sees it before anything else.
    format: u64,
    config: Config,
    next_job_seq: u64,
    next_attempt_id: AttemptId,
    jobs: BTreeMap<JobId, Job>,
    workers: BTreeMap<WorkerId, Worker>,
    attempts: BTreeMap<AttemptId, Attempt>,
    /// Client request ids → the job each submitted: a retried submit finds its job here.
    #[serde(default)]
    requests: BTreeMap<String, JobId>,
}

impl Default for State {
    fn default() -> State {
        State {
            format: SNAPSHOT_FORMAT,
            config: Config::default(),
            next_job_seq: 0,
            next_attempt_id: 1,
            jobs: BTreeMap::new(),
            workers: BTreeMap::new(),
            attempts: BTreeMap::new(),
            requests: BTreeMap::new(),
        }
    }
}

/// A job's progress, per stage, for status reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobProgress {
    pub job_id: JobId,
    pub state: JobState,
    pub error: Option<String>,
    pub stages: Vec<StageProgress>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageProgress {
    pub name: String,
    pub state: StageState,
    pub tasks_total: usize,
    pub tasks_done: usize,
    pub tasks_running: usize,
    /// Tasks that failed for good (their job failed).
    pub tasks_failed: usize,
    /// Failed attempts, retried or not.
    pub failed_attempts: u64,
    /// Committed tasks' records plus running attempts' last progress.
    pub records_done: u64,
    /// When its first task was leased, and when its last task committed (leader clock).
    pub started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
    /// The committed attempts' run times, summed (as their workers measured them).
    pub task_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StageState {
    /// A dependency is not done yet.
    Waiting,
    /// Dependencies done; waiting for `AddStageTasks`.
    Unplanned,
    Running,
    Done,
    /// Not done, and its job is over (failed or cancelled).
    Stopped,
}

/// What a poll that changes nothing but heartbeats answers ([`Machine::quiet_poll`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuietPoll {
    /// The attempts the worker runs and holds: the leases the poll renews.
    pub renew: Vec<AttemptId>,
    /// The attempts the worker runs but does not hold, ascending: it must stop them.
    pub cancel: Vec<AttemptId>,
}

type Result<T> = std::result::Result<T, Error>;

impl Machine {
    pub fn new(config: Config) -> Machine {
        Machine {
            state: State {
                config,
                ..State::default()
            },
        }
    }

    /// The Raft state machine's apply: a JSON [`Command`] in, a JSON [`Reply`] out. Refusals are
    /// `Reply::Error` and change nothing.
    pub fn apply(&mut self, index: u64, command: &[u8]) -> Vec<u8> {
        let reply = match Command::from_bytes(command) {
            Ok(command) => self.execute(index, command).unwrap_or_else(Reply::from),
            Err(e) => Reply::from(e),
        };
        reply.to_bytes()
    }

    /// The whole state as JSON, with its format version.
    pub fn snapshot(&self) -> Vec<u8> {
        to_json(&self.state)
    }

    /// Replaces the state with a snapshot's. Refuses (and keeps the current state) a snapshot of
    /// another format version or one that does not parse.
    pub fn restore(&mut self, snapshot: &[u8]) -> Result<()> {
        #[derive(Deserialize)]
        struct Header {
            format: u64,
        }
        let header: Header =
            serde_json::from_slice(snapshot).map_err(|e| Error::BadSnapshot(e.to_string()))?;
        if header.format != SNAPSHOT_FORMAT {
            return Err(Error::UnsupportedSnapshot(header.format));
        }
        self.state =
            serde_json::from_slice(snapshot).map_err(|e| Error::BadSnapshot(e.to_string()))?;
        Ok(())
    }

    /// Applies one command. `index` is its Raft log index, used only to name a job submitted without
    /// an id.
    pub fn execute(&mut self, index: u64, command: Command) -> Result<Reply> {
        match command {
            Command::SubmitJob {
                job_id,
                name,
                spec_toml,
                plan,
                now_ms,
                request_id,
            } => {
                if let Some(reply) = self.resubmitted(request_id.as_deref(), &name, &spec_toml)? {
                    return Ok(reply);
                }
                let job_id = job_id.unwrap_or_else(|| job_id_for_index(index));
                self.submit_job(job_id, name, spec_toml, plan, now_ms, request_id)
            }
            Command::AddStageTasks {
                job_id,
                stage,
                tasks,
                now_ms,
            } => self.add_stage_tasks(&job_id, stage, tasks, now_ms),
            Command::RegisterWorker {
                worker_id,
                name,
                address,
                cores,
                protocol_version,
                now_ms,
            } => self.register_worker(worker_id, name, address, cores, protocol_version, now_ms),
            Command::Poll {
                worker_id,
                term,
                free_slots,
                running,
                now_ms,
                queue_slots,
                leaving,
            } => self.poll(
                &worker_id,
                term,
                (free_slots, queue_slots, leaving),
                &running,
                now_ms,
            ),
            Command::ReportTask {
                worker_id,
                attempt_id,
                term,
                outcome,
                now_ms,
            } => self.report(&worker_id, attempt_id, term, outcome, now_ms),
            Command::ExpireLeases { now_ms } => Ok(self.expire_leases(now_ms)),
            Command::Expire {
                now_ms,
                workers_lost,
                attempts,
            } => Ok(self.expire(now_ms, &workers_lost, &attempts)),
            Command::DrainWorker { worker_id } => self.drain_worker(&worker_id),
            Command::RemoveWorker { worker_id } => self.remove_worker(&worker_id),
            Command::CancelJob { job_id, now_ms } => self.cancel_job(&job_id, now_ms),
            Command::FailJob {
                job_id,
                reason,
                now_ms,
            } => self.fail_job(&job_id, reason, now_ms),
            Command::SetModel { job_id, model_json } => self.set_model(&job_id, model_json),
            Command::CleanupJob { job_id } => self.cleanup_job(&job_id),
            Command::SetConfig { config } => self.set_config(config),
        }
    }

    // ---- reads -------------------------------------------------------------------------------

    pub fn config(&self) -> &Config {
        &self.state.config
    }

    pub fn job(&self, job_id: &str) -> Option<&Job> {
        self.state.jobs.get(job_id)
    }

    /// All jobs, oldest first.
    pub fn jobs(&self) -> Vec<&Job> {
        let mut jobs: Vec<&Job> = self.state.jobs.values().collect();
        jobs.sort_by_key(|j| j.seq);
        jobs
    }

    pub fn worker(&self, worker_id: &str) -> Option<&Worker> {
        self.state.workers.get(worker_id)
    }

    /// All workers ever registered (lost and removed ones too), by id.
    pub fn workers(&self) -> Vec<&Worker> {
        self.state.workers.values().collect()
    }

    /// An attempt, until `CleanupJob` forgets its job's attempts.
    pub fn attempt(&self, attempt_id: AttemptId) -> Option<&Attempt> {
        self.state.attempts.get(&attempt_id)
    }

    pub fn job_progress(&self, job_id: &str) -> Option<JobProgress> {
        let job = self.state.jobs.get(job_id)?;
        let stages = job
            .stages
            .iter()
            .enumerate()
            .map(|(i, stage)| {
                let count = |s: TaskState| stage.tasks.iter().filter(|t| t.state == s).count();
                let records_done = stage
                    .tasks
                    .iter()
                    .map(|t| match (&t.output, t.current_attempt) {
                        (Some(out), _) => out.records,
                        (None, Some(a)) => self.state.attempts.get(&a).map_or(0, |a| a.records),
                        (None, None) => 0,
                    })
                    .sum();
                StageProgress {
                    name: stage.name.clone(),
                    state: stage_state(job, i),
                    tasks_total: stage.tasks.len(),
                    tasks_done: count(TaskState::Committed),
                    tasks_running: count(TaskState::Running),
                    tasks_failed: count(TaskState::Failed),
                    failed_attempts: stage.tasks.iter().map(|t| u64::from(t.failures)).sum(),
                    records_done,
                    started_ms: stage.started_ms,
                    finished_ms: stage.finished_ms,
                    task_ms: stage
                        .tasks
                        .iter()
                        .filter_map(|t| t.output.as_ref())
                        .map(|o| o.elapsed_ms)
                        .sum(),
                }
            })
            .collect();
        Some(JobProgress {
            job_id: job.id.clone(),
            state: job.state,
            error: job.error.clone(),
            stages,
        })
    }

    /// The committed results of a stage's tasks, in task order: the inputs of the stages planned from
    /// it. Complete once the stage is done.
    pub fn committed_outputs(&self, job_id: &str, stage: usize) -> Result<Vec<(usize, String)>> {
        let job = self
            .state
            .jobs
            .get(job_id)
            .ok_or_else(|| Error::UnknownJob(job_id.into()))?;
        let stage = job.stages.get(stage).ok_or_else(|| Error::UnknownStage {
            job: job_id.into(),
            stage,
        })?;
        Ok(stage
            .tasks
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.output.as_ref().map(|o| (i, o.result_json.clone())))
            .collect())
    }

    /// Tasks that a poll could lease now.
    pub fn runnable_count(&self) -> usize {
        self.runnable(usize::MAX).len()
    }

    /// What `Command::Poll` would answer, when applying it would change nothing but the worker's
    /// `last_seen_ms` and the leases of the attempts it holds: the worker is live, nothing waits on
    /// its cancel list, it is not leaving while active, not draining without attempts (it would be
    /// told to stop), and would lease nothing. `None` when the poll would change more or be refused:
    /// then it must go through the log. The coordinator answers the rest from a read, so that idle
    /// workers' heartbeats write nothing.
    pub fn quiet_poll(
        &self,
        worker_id: &str,
        (free_slots, queue_slots, leaving): (u32, u32, bool),
        running: &[AttemptId],
    ) -> Option<QuietPoll> {
        let worker = self
            .state
            .workers
            .get(worker_id)
            .filter(|w| w.state.is_live())?;
        let draining = leaving || worker.state == WorkerState::Draining;
        let leases = || {
            let slots = free_slots as usize + self.queue_granted(queue_slots);
            !self.runnable(slots.min(1)).is_empty()
        };
        if (leaving && worker.state == WorkerState::Active)
            || !worker.pending_cancels.is_empty()
            || (draining && worker.attempts.is_empty())
            || (!draining && leases())
        {
            return None;
        }
        let (renew, cancel) = held_or_not(worker, running);
        Some(QuietPoll {
            renew,
            cancel: cancel.into_iter().collect(),
        })
    }

    /// Whether a gone worker or a finished job is due to be forgotten at `now_ms`
    /// (`Config::forget_workers_after_ms`, `Config::forget_jobs_after_ms`).
    pub fn forgetting_due(&self, now_ms: u64) -> bool {
        !self.workers_to_forget(now_ms).is_empty() || !self.jobs_to_forget(now_ms).is_empty()
    }

    // ---- jobs --------------------------------------------------------------------------------

    /// The job a request id already submitted, if it did: the same submit retried (after a lost
    /// reply or a leader change) gets the same job, never a second one.
    fn resubmitted(
        &self,
        request_id: Option<&str>,
        name: &str,
        spec_toml: &str,
    ) -> Result<Option<Reply>> {
        let Some(request_id) = request_id else {
            return Ok(None);
        };
        check_request_id(request_id)?;
        let Some(job_id) = self.state.requests.get(request_id) else {
            return Ok(None);
        };
        let job = self.known_job(job_id)?;
        if job.name != name || job.spec_toml != spec_toml {
            return Err(Error::RequestReused {
                request_id: request_id.into(),
                job: job_id.clone(),
            });
        }
        Ok(Some(Reply::JobSubmitted {
            job_id: job_id.clone(),
            state: job.state,
        }))
    }

    fn submit_job(
        &mut self,
        job_id: JobId,
        name: String,
        spec_toml: String,
        plan: Plan,
        now_ms: u64,
        request_id: Option<String>,
    ) -> Result<Reply> {
        check_id("job_id", &job_id)?;
        if self.state.jobs.contains_key(&job_id) {
            return Err(Error::JobExists(job_id));
        }
        check_plan(&plan)?;

        let stages = plan
            .stages
            .into_iter()
            .map(|s| Stage {
                name: s.name,
                depends_on: s.depends_on,
                planned: s.planned,
                tasks: s.tasks.into_iter().map(new_task).collect(),
                started_ms: None,
                finished_ms: None,
            })
            .collect();
        let job = Job {
            id: job_id.clone(),
            name,
            spec_toml,
            seq: self.state.next_job_seq,
            state: JobState::Running,
            error: None,
            submitted_ms: now_ms,
            finished_ms: None,
            stages,
            model_json: None,
            scratch_cleaned: false,
            request_id: request_id.clone(),
        };
        self.state.next_job_seq += 1;
        self.state.jobs.insert(job_id.clone(), job);
        if let Some(request_id) = request_id {
            self.state.requests.insert(request_id, job_id.clone());
        }
        let state = self.finish_if_done(&job_id, now_ms);
        Ok(Reply::JobSubmitted { job_id, state })
    }

    fn add_stage_tasks(
        &mut self,
        job_id: &str,
        stage: usize,
        tasks: Vec<TaskPlan>,
        now_ms: u64,
    ) -> Result<Reply> {
        let job = self.running_job(job_id)?;
        let s = job.stages.get(stage).ok_or_else(|| Error::UnknownStage {
            job: job_id.into(),
            stage,
        })?;
        if s.planned {
            return Err(Error::StageAlreadyPlanned {
                job: job_id.into(),
                stage,
            });
        }
        if let Some(&dependency) = s.depends_on.iter().find(|&&d| !job.stages[d].is_done()) {
            return Err(Error::StageNotReady {
                job: job_id.into(),
                stage,
                dependency,
            });
        }
        check_tasks("tasks", &tasks)?;

        let count = tasks.len();
        let s = &mut self.job_mut(job_id).stages[stage];
        s.tasks = tasks.into_iter().map(new_task).collect();
        s.planned = true;
        let state = self.finish_if_done(job_id, now_ms);
        Ok(Reply::StagePlanned {
            job_id: job_id.into(),
            stage,
            tasks: count,
            state,
        })
    }

    fn cancel_job(&mut self, job_id: &str, now_ms: u64) -> Result<Reply> {
        self.running_job(job_id)?;
        self.finish_job(job_id, JobState::Cancelled, None, now_ms);
        Ok(Reply::Done)
    }

    fn fail_job(&mut self, job_id: &str, reason: String, now_ms: u64) -> Result<Reply> {
        self.running_job(job_id)?;
        if reason.trim().is_empty() {
            return Err(Error::invalid("reason", "empty: say why the job fails"));
        }
        self.finish_job(job_id, JobState::Failed, Some(reason), now_ms);
        Ok(Reply::Done)
    }

    fn set_model(&mut self, job_id: &str, model_json: String) -> Result<Reply> {
        self.known_job(job_id)?;
        check_json("model_json", &model_json)?;
        self.job_mut(job_id).model_json = Some(model_json);
        Ok(Reply::Done)
    }

    fn cleanup_job(&mut self, job_id: &str) -> Result<Reply> {
        let job = self.known_job(job_id)?;
        if job.state == JobState::Running {
            return Err(Error::JobStillRunning(job_id.into()));
        }
        if job.scratch_cleaned {
            return Ok(Reply::Done);
        }
        self.job_mut(job_id).scratch_cleaned = true;
        self.state.attempts.retain(|_, a| a.job_id != job_id);
        Ok(Reply::Done)
    }

    fn set_config(&mut self, config: Config) -> Result<Reply> {
        if config.lease_ms == 0 {
            return Err(Error::invalid("config.lease_ms", "must be positive"));
        }
        if config.worker_timeout_ms == 0 {
            return Err(Error::invalid(
                "config.worker_timeout_ms",
                "must be positive",
            ));
        }
        self.state.config = config;
        Ok(Reply::Done)
    }

    // ---- workers -----------------------------------------------------------------------------

    fn register_worker(
        &mut self,
        worker_id: WorkerId,
        name: String,
        address: String,
        cores: u32,
        protocol_version: u32,
        now_ms: u64,
    ) -> Result<Reply> {
        if protocol_version != PROTOCOL_VERSION {
            return Err(Error::ProtocolMismatch {
                worker: worker_id,
                got: protocol_version,
                want: PROTOCOL_VERSION,
            });
        }
        check_id("worker_id", &worker_id)?;
        check_text("name", &name, 1, 128)?;
        check_text("address", &address, 0, 256)?;
        if address.contains(char::is_whitespace) {
            return Err(Error::invalid("address", "has white space"));
        }
        if cores == 0 {
            return Err(Error::invalid("cores", "a worker needs at least one core"));
        }
        if let Some(old) = self.state.workers.get(&worker_id)
            && old.state.is_live()
        {
            if old.name != name || old.address != address {
                return Err(Error::WorkerExists {
                    worker: worker_id,
                    name: old.name.clone(),
                    address: old.address.clone(),
                });
            }
            // The same worker restarted: whatever it ran before is gone.
            self.drop_worker(&worker_id, WorkerState::Lost, AbandonCause::WorkerRestarted);
        }
        let config = self.state.config;
        self.state.workers.insert(
            worker_id.clone(),
            Worker {
                id: worker_id.clone(),
                name,
                address,
                cores,
                state: WorkerState::Active,
                registered_ms: now_ms,
                last_seen_ms: now_ms,
                attempts: BTreeSet::new(),
                pending_cancels: BTreeSet::new(),
            },
        );
        Ok(Reply::WorkerRegistered {
            worker_id,
            protocol_version: PROTOCOL_VERSION,
            lease_ms: config.lease_ms,
            worker_timeout_ms: config.worker_timeout_ms,
        })
    }

    fn poll(
        &mut self,
        worker_id: &str,
        term: u64,
        (free_slots, queue_slots, leaving): (u32, u32, bool),
        running: &[AttemptId],
        now_ms: u64,
    ) -> Result<Reply> {
        self.live_worker(worker_id)?;
        if leaving {
            // A worker leaving on its own (a signal) is drained as `DrainWorker` drains it.
            self.drain_worker(worker_id)?;
        }
        let active = self.live_worker(worker_id)?.state == WorkerState::Active;

        let lease_expires_ms = now_ms.saturating_add(self.state.config.lease_ms);
        let (renew, not_held) = held_or_not(self.known_worker(worker_id)?, running);
        let worker = self.worker_mut(worker_id);
        worker.last_seen_ms = now_ms;
        let mut cancel = std::mem::take(&mut worker.pending_cancels);
        cancel.extend(not_held);
        for id in renew {
            if let Some(a) = self.state.attempts.get_mut(&id) {
                a.lease_expires_ms = lease_expires_ms;
            }
        }
        let assignments = if active {
            let slots = free_slots as usize + self.queue_granted(queue_slots);
            self.lease(worker_id, term, slots, now_ms)
        } else {
            Vec::new()
        };
        let worker = self.worker_mut(worker_id);
        let drain = worker.state == WorkerState::Draining && worker.attempts.is_empty();
        if drain {
            // This reply tells the process to exit: it is gone from now on. Should the reply be
            // lost, its next poll is refused (`WorkerGone`) and it exits on that.
            worker.state = WorkerState::Left;
        }
        Ok(Reply::Polled {
            assignments,
            cancel: cancel.into_iter().collect(),
            drain,
        })
    }

    /// Of `queue_slots` asked, those granted: all while more tasks are runnable than the active
    /// workers have slots in all (so that queueing never leaves a worker idle while another holds
    /// queued work), none otherwise.
    fn queue_granted(&self, queue_slots: u32) -> usize {
        if queue_slots == 0 {
            return 0;
        }
        let slots: u64 = self
            .state
            .workers
            .values()
            .filter(|w| w.state == WorkerState::Active)
            .map(|w| u64::from(w.cores))
            .sum();
        if self.runnable_count() as u64 > slots {
            queue_slots as usize
        } else {
            0
        }
    }

    fn drain_worker(&mut self, worker_id: &str) -> Result<Reply> {
        let worker = self.known_worker(worker_id)?;
        match worker.state {
            WorkerState::Active => self.worker_mut(worker_id).state = WorkerState::Draining,
            WorkerState::Draining => {}
            state => {
                return Err(Error::WorkerNotActive {
                    worker: worker_id.into(),
                    state,
                });
            }
        }
        Ok(Reply::Done)
    }

    fn remove_worker(&mut self, worker_id: &str) -> Result<Reply> {
        let worker = self.known_worker(worker_id)?;
        if worker.state == WorkerState::Removed {
            return Err(Error::WorkerNotActive {
                worker: worker_id.into(),
                state: worker.state,
            });
        }
        self.drop_worker(worker_id, WorkerState::Removed, AbandonCause::WorkerRemoved);
        Ok(Reply::Done)
    }

    /// The one way a worker goes away (lost, removed, restarted): its running attempts are abandoned
    /// at once and their tasks made runnable again.
    fn drop_worker(
        &mut self,
        worker_id: &str,
        state: WorkerState,
        cause: AbandonCause,
    ) -> Vec<AttemptId> {
        let worker = self.worker_mut(worker_id);
        worker.state = state;
        worker.pending_cancels.clear();
        let attempts: Vec<AttemptId> = worker.attempts.iter().copied().collect();
        for &id in &attempts {
            self.abandon(id, cause);
        }
        attempts
    }

    /// `ExpireLeases`: decides from the replicated times alone, then expires as `Expire` does.
    fn expire_leases(&mut self, now_ms: u64) -> Reply {
        let timeout = self.state.config.worker_timeout_ms;
        let (lost, live): (Vec<&Worker>, Vec<&Worker>) = self
            .state
            .workers
            .values()
            .filter(|w| w.state.is_live())
            .partition(|w| now_ms.saturating_sub(w.last_seen_ms) > timeout);
        let workers_lost: Vec<LostWorker> = lost
            .iter()
            .map(|w| LostWorker {
                worker_id: w.id.clone(),
                last_seen_ms: w.last_seen_ms,
            })
            .collect();
        let attempts: Vec<AttemptId> = live
            .iter()
            .flat_map(|w| w.attempts.iter().copied())
            .filter(|id| {
                self.state
                    .attempts
                    .get(id)
                    .is_some_and(|a| a.lease_expires_ms <= now_ms)
            })
            .collect();
        self.expire(now_ms, &workers_lost, &attempts)
    }

    /// Loses the named workers still live (their attempts abandoned), abandons the named attempts
    /// still running, ignores the rest; then forgets what is due at `now_ms`.
    fn expire(
        &mut self,
        now_ms: u64,
        workers_lost: &[LostWorker],
        attempts: &[AttemptId],
    ) -> Reply {
        let mut lost: Vec<WorkerId> = Vec::new();
        let mut abandoned = BTreeSet::new();
        for named in workers_lost {
            let id = named.worker_id.as_str();
            if !self
                .state
                .workers
                .get(id)
                .is_some_and(|w| w.state.is_live())
            {
                continue;
            }
            let worker = self.worker_mut(id);
            worker.last_seen_ms = worker.last_seen_ms.max(named.last_seen_ms);
            abandoned.extend(self.drop_worker(id, WorkerState::Lost, AbandonCause::WorkerLost));
            lost.push(id.into());
        }
        for &id in attempts {
            if self
                .state
                .attempts
                .get(&id)
                .is_some_and(|a| a.state == AttemptState::Running)
            {
                self.abandon(id, AbandonCause::LeaseExpired);
                abandoned.insert(id);
            }
        }
        Reply::Expired {
            attempts: abandoned.into_iter().collect(),
            workers_lost: lost,
            workers_forgotten: self.forget_workers(now_ms),
            jobs_forgotten: self.forget_jobs(now_ms),
        }
    }

    /// Drops the jobs finished longer than `Config::forget_jobs_after_ms` ago whose scratch files are
    /// removed (`CleanupJob` has forgotten their attempts), with their request ids.
    fn forget_jobs(&mut self, now_ms: u64) -> Vec<JobId> {
        let forgotten = self.jobs_to_forget(now_ms);
        for id in &forgotten {
            if let Some(request_id) = self.state.jobs.remove(id).and_then(|j| j.request_id) {
                self.state.requests.remove(&request_id);
            }
        }
        forgotten
    }

    /// Drops the workers gone for longer than `Config::forget_workers_after_ms` that no attempt names
    /// (an attempt's worker always exists: a late report of an abandoned attempt still finds it).
    fn forget_workers(&mut self, now_ms: u64) -> Vec<WorkerId> {
        let forgotten = self.workers_to_forget(now_ms);
        for id in &forgotten {
            self.state.workers.remove(id);
        }
        forgotten
    }

    fn jobs_to_forget(&self, now_ms: u64) -> Vec<JobId> {
        let after = self.state.config.forget_jobs_after_ms;
        self.state
            .jobs
            .values()
            .filter(|j| {
                j.scratch_cleaned
                    && j.finished_ms
                        .is_some_and(|f| now_ms.saturating_sub(f) > after)
            })
            .map(|j| j.id.clone())
            .collect()
    }

    fn workers_to_forget(&self, now_ms: u64) -> Vec<WorkerId> {
        let after = self.state.config.forget_workers_after_ms;
        let old = |w: &Worker| !w.state.is_live() && now_ms.saturating_sub(w.last_seen_ms) > after;
        if !self.state.workers.values().any(old) {
            return Vec::new();
        }
        let named: BTreeSet<&str> = self
            .state
            .attempts
            .values()
            .map(|a| a.worker_id.as_str())
            .collect();
        self.state
            .workers
            .values()
            .filter(|w| old(w) && !named.contains(w.id.as_str()))
            .map(|w| w.id.clone())
            .collect()
    }

    // ---- tasks and attempts --------------------------------------------------------------------

    /// Pending tasks of running jobs whose stage is planned with all dependencies done: oldest job
    /// first, then stage, then task. At most `limit`.
    fn runnable(&self, limit: usize) -> Vec<(JobId, usize, usize)> {
        let mut found = Vec::new();
        if limit == 0 {
            return found;
        }
        let mut jobs: Vec<&Job> = self
            .state
            .jobs
            .values()
            .filter(|j| j.state == JobState::Running)
            .collect();
        jobs.sort_by_key(|j| j.seq);
        for job in jobs {
            for (si, stage) in job.stages.iter().enumerate() {
                if !stage.planned || !stage.depends_on.iter().all(|&d| job.stages[d].is_done()) {
                    continue;
                }
                for (ti, task) in stage.tasks.iter().enumerate() {
                    if task.state == TaskState::Pending {
                        found.push((job.id.clone(), si, ti));
                        if found.len() == limit {
                            return found;
                        }
                    }
                }
            }
        }
        found
    }

    fn lease(&mut self, worker_id: &str, term: u64, slots: usize, now_ms: u64) -> Vec<Assignment> {
        let lease_expires_ms = now_ms.saturating_add(self.state.config.lease_ms);
        let mut assignments = Vec::new();
        for (job_id, stage, task) in self.runnable(slots) {
            let id = self.state.next_attempt_id;
            self.state.next_attempt_id += 1;
            self.state.attempts.insert(
                id,
                Attempt {
                    id,
                    job_id: job_id.clone(),
                    stage,
                    task,
                    worker_id: worker_id.into(),
                    term,
                    leased_ms: now_ms,
                    lease_expires_ms,
                    state: AttemptState::Running,
                    records: 0,
                },
            );
            self.worker_mut(worker_id).attempts.insert(id);
            let s = &mut self.job_mut(&job_id).stages[stage];
            s.started_ms.get_or_insert(now_ms);
            let stage_name = s.name.clone();
            let t = &mut s.tasks[task];
            t.state = TaskState::Running;
            t.current_attempt = Some(id);
            t.attempts.push(id);
            assignments.push(Assignment {
                attempt_id: id,
                job_id,
                stage,
                stage_name,
                task,
                payload_json: t.payload_json.clone(),
                term,
                lease_expires_ms,
            });
        }
        assignments
    }

    fn report(
        &mut self,
        worker_id: &str,
        attempt_id: AttemptId,
        term: u64,
        outcome: Outcome,
        now_ms: u64,
    ) -> Result<Reply> {
        let attempt = self
            .state
            .attempts
            .get(&attempt_id)
            .ok_or(Error::UnknownAttempt(attempt_id))?;
        if attempt.worker_id != worker_id {
            return Err(Error::NotHolder {
                attempt: attempt_id,
                worker: worker_id.into(),
                holder: attempt.worker_id.clone(),
            });
        }
        if term < attempt.term {
            return Err(Error::StaleTerm {
                attempt: attempt_id,
                term,
                lease_term: attempt.term,
            });
        }
        let job = self.known_job(&attempt.job_id)?;
        let task = &job.stages[attempt.stage].tasks[attempt.task];
        if let Some(out) = &task.output {
            if out.attempt_id != attempt_id {
                return Err(Error::AlreadyCommitted {
                    job: job.id.clone(),
                    stage: attempt.stage,
                    task: attempt.task,
                    by: out.attempt_id,
                    attempt: attempt_id,
                });
            }
            if matches!(outcome, Outcome::Succeeded { .. }) {
                // The same success again (the worker retried a report whose reply it lost).
                return Ok(Reply::Reported {
                    task: TaskState::Committed,
                    job: job.state,
                });
            }
        }
        if job.state != JobState::Running {
            return Err(Error::JobNotRunning {
                job: job.id.clone(),
                state: job.state,
            });
        }
        let running = attempt.state == AttemptState::Running;
        let not_running = || Error::AttemptNotRunning {
            attempt: attempt_id,
            state: format!("{:?}", attempt.state),
        };
        match outcome {
            Outcome::Progress { records } => {
                if !running {
                    return Err(not_running());
                }
                self.attempt_mut(attempt_id).records = records;
                Ok(Reply::Reported {
                    task: TaskState::Running,
                    job: JobState::Running,
                })
            }
            Outcome::Succeeded {
                result_json,
                elapsed_ms,
            } => {
                // A late success of an abandoned attempt still commits: its output is as good as any.
                if !running && !matches!(attempt.state, AttemptState::Abandoned { .. }) {
                    return Err(not_running());
                }
                check_json("outcome.result_json", &result_json)?;
                Ok(self.commit(attempt_id, result_json, elapsed_ms, now_ms))
            }
            Outcome::Failed { reason, retryable } => {
                if !running {
                    return Err(not_running());
                }
                Ok(self.fail_attempt(attempt_id, reason, retryable, now_ms))
            }
        }
    }

    /// The first success of a task: its output is committed, any other running attempt fenced.
    fn commit(
        &mut self,
        attempt_id: AttemptId,
        result_json: String,
        elapsed_ms: u64,
        now_ms: u64,
    ) -> Reply {
        let attempt = self.attempt_mut(attempt_id);
        attempt.state = AttemptState::Succeeded;
        let (job_id, stage, task, holder, records) = (
            attempt.job_id.clone(),
            attempt.stage,
            attempt.task,
            attempt.worker_id.clone(),
            attempt.records,
        );
        self.worker_mut(&holder).attempts.remove(&attempt_id);

        let t = &mut self.job_mut(&job_id).stages[stage].tasks[task];
        let other = t.current_attempt.take().filter(|&a| a != attempt_id);
        t.state = TaskState::Committed;
        t.output = Some(Committed {
            attempt_id,
            result_json,
            records,
            elapsed_ms,
        });
        if let Some(other) = other {
            let fenced = self.attempt_mut(other);
            fenced.state = AttemptState::Fenced;
            let holder = fenced.worker_id.clone();
            let worker = self.worker_mut(&holder);
            worker.attempts.remove(&other);
            worker.pending_cancels.insert(other);
        }
        let job = self.finish_if_done(&job_id, now_ms);
        Reply::Reported {
            task: TaskState::Committed,
            job,
        }
    }

    fn fail_attempt(
        &mut self,
        attempt_id: AttemptId,
        reason: String,
        retryable: bool,
        now_ms: u64,
    ) -> Reply {
        let budget = self.state.config.retry_budget;
        let attempt = self.attempt_mut(attempt_id);
        attempt.state = AttemptState::Failed {
            reason: reason.clone(),
        };
        let (job_id, stage, task, holder) = (
            attempt.job_id.clone(),
            attempt.stage,
            attempt.task,
            attempt.worker_id.clone(),
        );
        self.worker_mut(&holder).attempts.remove(&attempt_id);

        let s = &mut self.job_mut(&job_id).stages[stage];
        let stage_name = s.name.clone();
        let t = &mut s.tasks[task];
        t.current_attempt = None;
        t.failures += 1;
        if retryable && t.failures <= budget {
            t.state = TaskState::Pending;
            return Reply::Reported {
                task: TaskState::Pending,
                job: JobState::Running,
            };
        }
        t.state = TaskState::Failed;
        let why = if retryable {
            format!(
                "stage {stage} ({stage_name}), task {task}: failed {} times (retry budget {budget}), \
                 the last: {reason}",
                t.failures
            )
        } else {
            format!("stage {stage} ({stage_name}), task {task}: failed, not retryable: {reason}")
        };
        self.finish_job(&job_id, JobState::Failed, Some(why), now_ms);
        Reply::Reported {
            task: TaskState::Failed,
            job: JobState::Failed,
        }
    }

    /// Gives up on a running attempt; its task becomes runnable again.
    fn abandon(&mut self, attempt_id: AttemptId, cause: AbandonCause) {
        let attempt = self.attempt_mut(attempt_id);
        attempt.state = AttemptState::Abandoned { cause };
        let (job_id, stage, task, holder) = (
            attempt.job_id.clone(),
            attempt.stage,
            attempt.task,
            attempt.worker_id.clone(),
        );
        self.worker_mut(&holder).attempts.remove(&attempt_id);
        let t = &mut self.job_mut(&job_id).stages[stage].tasks[task];
        if t.current_attempt == Some(attempt_id) {
            t.current_attempt = None;
            t.state = TaskState::Pending;
        }
    }

    /// Ends a running job; its running attempts are cancelled and go on their workers' cancel lists.
    fn finish_job(&mut self, job_id: &str, state: JobState, error: Option<String>, now_ms: u64) {
        let job = self.job_mut(job_id);
        job.state = state;
        job.error = error;
        job.finished_ms = Some(now_ms);
        let mut running = Vec::new();
        for t in job.stages.iter_mut().flat_map(|s| s.tasks.iter_mut()) {
            if let Some(a) = t.current_attempt.take() {
                t.state = TaskState::Pending;
                running.push(a);
            }
        }
        for id in running {
            let attempt = self.attempt_mut(id);
            attempt.state = AttemptState::Cancelled;
            let holder = attempt.worker_id.clone();
            let worker = self.worker_mut(&holder);
            worker.attempts.remove(&id);
            worker.pending_cancels.insert(id);
        }
    }

    /// Stamps the stages that have just become done, and marks a running job succeeded once every
    /// stage is done; returns the job's state. Called wherever a stage can become done: submission,
    /// planning, commit.
    fn finish_if_done(&mut self, job_id: &str, now_ms: u64) -> JobState {
        let job = self.job_mut(job_id);
        for stage in &mut job.stages {
            if stage.finished_ms.is_none() && stage.is_done() {
                stage.started_ms.get_or_insert(now_ms);
                stage.finished_ms = Some(now_ms);
            }
        }
        if job.state == JobState::Running && job.stages.iter().all(Stage::is_done) {
            job.state = JobState::Succeeded;
            job.finished_ms = Some(now_ms);
        }
        job.state
    }

    // ---- lookups ---------------------------------------------------------------------------------

    fn known_job(&self, job_id: &str) -> Result<&Job> {
        self.state
            .jobs
            .get(job_id)
            .ok_or_else(|| Error::UnknownJob(job_id.into()))
    }

    fn running_job(&self, job_id: &str) -> Result<&Job> {
        let job = self.known_job(job_id)?;
        if job.state != JobState::Running {
            return Err(Error::JobNotRunning {
                job: job_id.into(),
                state: job.state,
            });
        }
        Ok(job)
    }

    fn known_worker(&self, worker_id: &str) -> Result<&Worker> {
        self.state
            .workers
            .get(worker_id)
            .ok_or_else(|| Error::UnknownWorker(worker_id.into()))
    }

    fn live_worker(&self, worker_id: &str) -> Result<&Worker> {
        let worker = self.known_worker(worker_id)?;
        if !worker.state.is_live() {
            return Err(Error::WorkerGone {
                worker: worker_id.into(),
                state: worker.state,
            });
        }
        Ok(worker)
    }

    // The `*_mut` lookups are called only after validation found the entry, or on ids the state
    // itself holds (an attempt's job and worker always exist): a miss is a bug in this module.

    fn job_mut(&mut self, job_id: &str) -> &mut Job {
        self.state
            .jobs
            .get_mut(job_id)
            .expect("job checked before mutation")
    }

    fn worker_mut(&mut self, worker_id: &str) -> &mut Worker {
        self.state
            .workers
            .get_mut(worker_id)
            .expect("worker checked before mutation")
    }

    fn attempt_mut(&mut self, attempt_id: AttemptId) -> &mut Attempt {
        self.state
            .attempts
            .get_mut(&attempt_id)
            .expect("attempt checked before mutation")
    }

    #[cfg(test)]
    pub(crate) fn attempts_map(&self) -> &BTreeMap<AttemptId, Attempt> {
        &self.state.attempts
    }

    /// The snapshot with every worker's `last_seen_ms` and every attempt's lease expiry set to 0:
    /// what a heartbeat may change, left out.
    #[cfg(test)]
    pub(crate) fn snapshot_without_heartbeats(&self) -> Vec<u8> {
        let mut state = self.state.clone();
        for w in state.workers.values_mut() {
            w.last_seen_ms = 0;
        }
        for a in state.attempts.values_mut() {
            a.lease_expires_ms = 0;
        }
        to_json(&state)
    }
}

/// Of the attempts a worker says it runs, those it holds (their leases are renewed) and those it
/// does not (it must stop them).
fn held_or_not(worker: &Worker, running: &[AttemptId]) -> (Vec<AttemptId>, BTreeSet<AttemptId>) {
    let (held, not_held): (Vec<AttemptId>, Vec<AttemptId>) = running
        .iter()
        .partition(|&&id| worker.attempts.contains(&id));
    (held, not_held.into_iter().collect())
}

fn stage_state(job: &Job, stage: usize) -> StageState {
    let s = &job.stages[stage];
    if s.is_done() {
        StageState::Done
    } else if job.state != JobState::Running {
        StageState::Stopped
    } else if !s.depends_on.iter().all(|&d| job.stages[d].is_done()) {
        StageState::Waiting
    } else if !s.planned {
        StageState::Unplanned
    } else {
        StageState::Running
    }
}

fn new_task(plan: TaskPlan) -> Task {
    Task {
        payload_json: plan.payload_json,
        state: TaskState::Pending,
        current_attempt: None,
        attempts: Vec::new(),
        failures: 0,
        output: None,
    }
}

/// 1 to `max` of A-Z a-z 0-9 . _ -
fn id_chars(id: &str, max: usize) -> bool {
    !id.is_empty()
        && id.len() <= max
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Ids name scratch directories: short, and safe in a path.
fn check_id(field: &str, id: &str) -> Result<()> {
    if id_chars(id, 64) && !id.starts_with('.') {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("{id:?} is not 1 to 64 of A-Z a-z 0-9 . _ - (not starting with .)"),
        ))
    }
}

/// Request ids are chosen by clients: 1 to 128 of the characters of an id. Public so that the
/// coordinator can refuse a bad one before it plans anything.
pub fn check_request_id(id: &str) -> Result<()> {
    if id_chars(id, 128) {
        Ok(())
    } else {
        Err(Error::invalid(
            "request_id",
            "must be 1 to 128 of A-Z a-z 0-9 . _ -",
        ))
    }
}

/// Text for people: `min` to `max` bytes, no control characters.
fn check_text(field: &str, text: &str, min: usize, max: usize) -> Result<()> {
    if text.len() < min || (min > 0 && text.trim().is_empty()) {
        return Err(Error::invalid(field, "empty"));
    }
    if text.len() > max {
        return Err(Error::invalid(
            field,
            format!("{} bytes, the limit is {max}", text.len()),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(Error::invalid(field, "has control characters"));
    }
    Ok(())
}

fn check_json(field: &str, text: &str) -> Result<()> {
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(drop)
        .map_err(|e| Error::invalid(field, format!("not JSON: {e}")))
}

fn check_tasks(field: &str, tasks: &[TaskPlan]) -> Result<()> {
    for (i, t) in tasks.iter().enumerate() {
        check_json(&format!("{field}[{i}].payload_json"), &t.payload_json)?;
    }
    Ok(())
}

fn check_plan(plan: &Plan) -> Result<()> {
    if plan.stages.is_empty() {
        return Err(Error::invalid(
            "plan.stages",
            "a job needs at least one stage",
        ));
    }
    for (i, s) in plan.stages.iter().enumerate() {
        if s.name.trim().is_empty() {
            return Err(Error::invalid(format!("plan.stages[{i}].name"), "empty"));
        }
        for (k, &d) in s.depends_on.iter().enumerate() {
            if d >= i {
                return Err(Error::invalid(
                    format!("plan.stages[{i}].depends_on[{k}]"),
                    format!("stage {d} is not an earlier stage"),
                ));
            }
        }
        if !s.planned && !s.tasks.is_empty() {
            return Err(Error::invalid(
                format!("plan.stages[{i}].tasks"),
                "a stage with planned = false gets its tasks later, with AddStageTasks",
            ));
        }
        check_tasks(&format!("plan.stages[{i}].tasks"), &s.tasks)?;
    }
    Ok(())
}
