//! Commands (what the coordinator proposes through Raft) and replies (what applying one returns), both
//! carried as serde JSON.

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorCode};
use crate::state::{Config, JobState, TaskState};
use crate::{AttemptId, JobId, WorkerId};

/// A job's stages and tasks, as the engine's planner made them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub stages: Vec<StagePlan>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagePlan {
    pub name: String,
    #[serde(default)]
    pub tasks: Vec<TaskPlan>,
    /// Indexes of earlier stages.
    #[serde(default)]
    pub depends_on: Vec<usize>,
    /// False for a stage planned later from earlier committed outputs (`Command::AddStageTasks`); such a
    /// stage has no tasks yet.
    #[serde(default = "yes")]
    pub planned: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskPlan {
    /// Opaque to the scheduler (it only checks that it is JSON): the worker builds its work from it.
    pub payload_json: String,
}

/// What a worker reports about an attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Records done so far by this attempt (a running total, not an increment).
    Progress {
        records: u64,
    },
    Succeeded {
        result_json: String,
        /// How long the attempt ran, measured on the worker.
        #[serde(default)]
        elapsed_ms: u64,
    },
    Failed {
        reason: String,
        retryable: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// `job_id: None` names the job after the log index ([`crate::job_id_for_index`]). A `request_id`
    /// already used answers with the job it created, unchanged (a client's retry).
    SubmitJob {
        job_id: Option<JobId>,
        name: String,
        spec_toml: String,
        plan: Plan,
        now_ms: u64,
        #[serde(default)]
        request_id: Option<String>,
    },
    /// Plans a stage submitted with `planned: false`, once its dependencies are done.
    AddStageTasks {
        job_id: JobId,
        stage: usize,
        tasks: Vec<TaskPlan>,
        now_ms: u64,
    },
    RegisterWorker {
        worker_id: WorkerId,
        /// For people; required.
        #[serde(default)]
        name: String,
        /// May be empty.
        address: String,
        cores: u32,
        protocol_version: u32,
        now_ms: u64,
    },
    /// The worker's heartbeat: renews the leases of `running` and leases up to `free_slots` tasks in
    /// `term` (the leader's current term).
    Poll {
        worker_id: WorkerId,
        term: u64,
        free_slots: u32,
        running: Vec<AttemptId>,
        now_ms: u64,
        /// Tasks to lease beyond `free_slots`, for the worker to queue; granted only while more tasks
        /// are runnable than all active workers have slots (`cores`), so no worker waits for work
        /// queued at another.
        #[serde(default)]
        queue_slots: u32,
        /// The worker is leaving on its own (a signal): it is drained as by `DrainWorker`.
        #[serde(default)]
        leaving: bool,
    },
    /// `term` is the one the attempt was leased in (from its assignment).
    ReportTask {
        worker_id: WorkerId,
        attempt_id: AttemptId,
        term: u64,
        outcome: Outcome,
        now_ms: u64,
    },
    /// Loses the live workers whose replicated `last_seen_ms` is older than the worker timeout,
    /// abandons the running attempts whose replicated lease has expired, and forgets what is due at
    /// `now_ms`. The leader proposed it every tick before it held liveness in memory; it stays so that
    /// logs holding it replay alike, but nothing proposes it now (`Expire` does its work).
    ExpireLeases {
        now_ms: u64,
    },
    /// Proposed by the leader only when something is due. The leader decides from the liveness it
    /// holds in memory (polls that change nothing else are not written to the log), so the command
    /// names what it decided: the machine loses each named worker that is still live and abandons
    /// each named attempt that is still running, ignoring the rest, then forgets the gone workers and
    /// finished jobs due at `now_ms`.
    Expire {
        now_ms: u64,
        #[serde(default)]
        workers_lost: Vec<LostWorker>,
        /// Running attempts whose lease expired.
        #[serde(default)]
        attempts: Vec<AttemptId>,
    },
    DrainWorker {
        worker_id: WorkerId,
    },
    RemoveWorker {
        worker_id: WorkerId,
    },
    CancelJob {
        job_id: JobId,
        now_ms: u64,
    },
    /// Fails a running job for a reason found outside the state machine (its next stage cannot be
    /// planned). The reason is for people; never record contents.
    FailJob {
        job_id: JobId,
        reason: String,
        now_ms: u64,
    },
    SetModel {
        job_id: JobId,
        model_json: String,
    },
    /// Records that the coordinator removed the finished job's scratch files; forgets its attempts.
    CleanupJob {
        job_id: JobId,
    },
    SetConfig {
        config: Config,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    JobSubmitted {
        job_id: JobId,
        state: JobState,
    },
    StagePlanned {
        job_id: JobId,
        stage: usize,
        tasks: usize,
        state: JobState,
    },
    WorkerRegistered {
        worker_id: WorkerId,
        protocol_version: u32,
        lease_ms: u64,
        worker_timeout_ms: u64,
    },
    Polled {
        assignments: Vec<Assignment>,
        /// Attempts the worker must stop (cancelled or failed job, expired lease, fenced), ascending.
        cancel: Vec<AttemptId>,
        /// The worker is drained: it holds no attempts and gets none; it should stop.
        drain: bool,
    },
    Reported {
        task: TaskState,
        job: JobState,
    },
    Expired {
        attempts: Vec<AttemptId>,
        workers_lost: Vec<WorkerId>,
        /// Gone workers dropped from the state (`Config::forget_workers_after_ms`).
        #[serde(default)]
        workers_forgotten: Vec<WorkerId>,
        /// Finished jobs dropped from the state (`Config::forget_jobs_after_ms`).
        #[serde(default)]
        jobs_forgotten: Vec<JobId>,
    },
    Done,
    Error {
        code: ErrorCode,
        message: String,
    },
}

/// A worker the leader found silent for longer than the worker timeout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostWorker {
    pub worker_id: WorkerId,
    /// When the leader last heard from it: becomes its `last_seen_ms` (the replicated one may be
    /// older), from which `Config::forget_workers_after_ms` counts.
    pub last_seen_ms: u64,
}

/// A task leased to a worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub attempt_id: AttemptId,
    pub job_id: JobId,
    pub stage: usize,
    pub stage_name: String,
    pub task: usize,
    pub payload_json: String,
    /// Report with this term.
    pub term: u64,
    pub lease_expires_ms: u64,
}

impl Command {
    pub fn to_bytes(&self) -> Vec<u8> {
        to_json(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Command, Error> {
        serde_json::from_slice(bytes).map_err(|e| Error::Undecodable(e.to_string()))
    }
}

impl Reply {
    pub fn to_bytes(&self) -> Vec<u8> {
        to_json(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Reply, Error> {
        serde_json::from_slice(bytes).map_err(|e| Error::Undecodable(e.to_string()))
    }
}

impl From<Error> for Reply {
    fn from(e: Error) -> Reply {
        Reply::Error {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

/// Serialising these types cannot fail: every map key is a string or an integer, and nothing
/// serialises itself by hand.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("scheduler types always serialise to JSON")
}
