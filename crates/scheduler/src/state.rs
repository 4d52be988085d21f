//! The replicated state: jobs, their stages and tasks, task attempts and their leases, workers.
//!
//! Everything here is plain data, read by the coordinator through [`crate::Machine`]'s accessors and
//! changed only by [`crate::Machine::execute`]. Maps are `BTreeMap`s and sets `BTreeSet`s so that the same
//! commands give byte-identical snapshots.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{AttemptId, JobId, WorkerId};

/// Tunables, replicated with the state (changed by `Command::SetConfig`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// How long a lease lasts after it is granted or renewed by a poll.
    pub lease_ms: u64,
    /// A worker silent (no poll) for longer than this is lost (the leader's next `Expire`).
    pub worker_timeout_ms: u64,
    /// Retries of a task after retryable failures: a task may fail `retry_budget` times and run again;
    /// one more failure fails the job.
    pub retry_budget: u32,
    /// A worker gone (lost, removed, left) and last heard from longer ago than this is forgotten at the
    /// next `Expire`, once no attempt names it: a cluster whose workers come and go (autoscaling,
    /// restarts under new names) keeps a bounded list. Until then `khop workers` shows it.
    #[serde(default = "Config::default_forget_workers_after_ms")]
    pub forget_workers_after_ms: u64,
    /// A job finished longer ago than this, its scratch files removed, is forgotten at the next
    /// `Expire`, with its request id: the state (and every Raft snapshot) stays bounded while
    /// jobs keep coming. Its outputs and `summary.json` stay where they were written.
    #[serde(default = "Config::default_forget_jobs_after_ms")]
    pub forget_jobs_after_ms: u64,
}

impl Config {
    /// A day: long enough to see in the morning which workers went away in the night.
    pub const DEFAULT_FORGET_WORKERS_AFTER_MS: u64 = 24 * 3600 * 1000;
    /// Thirty days of job history in `khop status`.
    pub const DEFAULT_FORGET_JOBS_AFTER_MS: u64 = 30 * 24 * 3600 * 1000;

    fn default_forget_workers_after_ms() -> u64 {
        Config::DEFAULT_FORGET_WORKERS_AFTER_MS
    }

    fn default_forget_jobs_after_ms() -> u64 {
        Config::DEFAULT_FORGET_JOBS_AFTER_MS
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            lease_ms: 10_000,
            worker_timeout_ms: 30_000,
            retry_budget: 4,
            forget_workers_after_ms: Config::DEFAULT_FORGET_WORKERS_AFTER_MS,
            forget_jobs_after_ms: Config::DEFAULT_FORGET_JOBS_AFTER_MS,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub name: String,
    pub spec_toml: String,
    /// Submission order: leases go to the oldest job first.
    pub seq: u64,
    pub state: JobState,
    /// Why the job failed, when it did.
    pub error: Option<String>,
    pub submitted_ms: u64,
    /// When the job left `Running`.
    pub finished_ms: Option<u64>,
    pub stages: Vec<Stage>,
    pub model_json: Option<String>,
    /// The coordinator has removed the job's scratch files (`Command::CleanupJob`).
    pub scratch_cleaned: bool,
    /// The client's request id it was submitted with, if any (`Command::SubmitJob`).
    #[serde(default)]
    pub request_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    /// Indexes of earlier stages that must be done before this one's tasks run.
    pub depends_on: Vec<usize>,
    /// False until `Command::AddStageTasks` gives the stage its tasks.
    pub planned: bool,
    pub tasks: Vec<Task>,
    /// When its first task was leased (the leader's clock); a stage done without tasks started when it
    /// was done.
    #[serde(default)]
    pub started_ms: Option<u64>,
    /// When its last task committed (or when it was planned without tasks).
    #[serde(default)]
    pub finished_ms: Option<u64>,
}

impl Stage {
    /// Planned, and every task committed (a planned stage without tasks is done at once).
    pub fn is_done(&self) -> bool {
        self.planned && self.tasks.iter().all(|t| t.state == TaskState::Committed)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    /// Waiting for a lease (or for its stage's dependencies).
    Pending,
    /// One attempt holds a lease on it: `Task::current_attempt`.
    Running,
    /// `Task::output` holds the result of the first succeeded attempt.
    Committed,
    /// Failed for good: its job has failed.
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub payload_json: String,
    pub state: TaskState,
    /// The running attempt: `Some` exactly when `state` is `Running`.
    pub current_attempt: Option<AttemptId>,
    /// Every attempt ever leased, in order.
    pub attempts: Vec<AttemptId>,
    /// Retryable and non-retryable failures reported so far.
    pub failures: u32,
    /// `Some` exactly when `state` is `Committed`; never changes once set.
    pub output: Option<Committed>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    pub attempt_id: AttemptId,
    pub result_json: String,
    /// Records done by the committed attempt, from its last progress report.
    pub records: u64,
    /// How long the committed attempt ran, as its worker measured it.
    #[serde(default)]
    pub elapsed_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub id: AttemptId,
    pub job_id: JobId,
    pub stage: usize,
    pub task: usize,
    pub worker_id: WorkerId,
    /// The Raft term in which the lease was granted: reports from older terms are refused.
    pub term: u64,
    pub leased_ms: u64,
    /// As last written to the log (the lease, or a poll that went through the log); the leader
    /// renews leases in memory on quiet polls, so the lease may run later than this.
    pub lease_expires_ms: u64,
    pub state: AttemptState,
    /// From the last progress report.
    pub records: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttemptState {
    Running,
    /// Its result is the task's committed output.
    Succeeded,
    Failed {
        reason: String,
    },
    /// Given up by the coordinator; the task was made runnable again. A late success still commits if
    /// nothing else has.
    Abandoned {
        cause: AbandonCause,
    },
    /// Its job was cancelled or failed.
    Cancelled,
    /// Another attempt of the task committed first.
    Fenced,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AbandonCause {
    LeaseExpired,
    WorkerLost,
    WorkerRemoved,
    WorkerRestarted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerState {
    Active,
    /// Gets no new leases; told to stop (`drain` in the poll reply) once its attempts are over.
    Draining,
    /// Silent for longer than `Config::worker_timeout_ms`.
    Lost,
    /// Forgotten by an operator (`RemoveWorker`).
    Removed,
    /// Drained and told so: the poll reply that said `drain` was its last (the process exits on it).
    Left,
}

impl WorkerState {
    pub fn is_live(self) -> bool {
        matches!(self, WorkerState::Active | WorkerState::Draining)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Worker {
    pub id: WorkerId,
    /// A name for people (the host name).
    #[serde(default)]
    pub name: String,
    /// Where the worker serves from, if it does; may be empty.
    pub address: String,
    pub cores: u32,
    pub state: WorkerState,
    pub registered_ms: u64,
    /// Time of the last registration or poll written to the log, or, for a lost worker, when the
    /// leader last heard from it. The leader keeps later quiet polls in memory.
    pub last_seen_ms: u64,
    /// Its running attempts: exactly the attempts in state `Running` with this `worker_id`.
    pub attempts: BTreeSet<AttemptId>,
    /// Attempts to cancel, sent (and forgotten) with the next poll reply.
    pub pending_cancels: BTreeSet<AttemptId>,
}
