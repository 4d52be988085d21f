//! The coordinators' job state machine: which jobs exist, how far each has come, which worker runs which
//! task attempt under which lease, and which attempt's output was committed. The coordinators replicate
//! it with Raft: every coordinator applies the same commands in the same order to a [`Machine`] and ends
//! in the same state.
//!
//! # State
//! - **Jobs** (submission order kept in `seq`): a name, the spec (TOML, stored as text), a state
//!   (`Running`, `Succeeded`, `Failed` with a reason, `Cancelled`), an optional model, whether their
//!   scratch files were cleaned, the client's request id they were submitted with.
//! - **Request ids**: each client request id and the job it submitted, so that a retried submit gets
//!   the same job.
//! - **Stages** of a job, in plan order, each depending on earlier stages. A stage may be submitted
//!   unplanned (`planned: false`, no tasks) and planned later from earlier stages' committed outputs
//!   (`AddStageTasks`): the linkage engine only knows how many score tasks it needs once standardising
//!   is done. A stage keeps when its first task was leased and when its last task committed.
//! - **Tasks** of a stage: an opaque JSON payload for the worker, a state (`Pending`, `Running`,
//!   `Committed`, `Failed`), the attempts made, the failures counted against the retry budget, and the
//!   committed output (the result JSON of the first attempt that succeeded, and how long that attempt
//!   ran as its worker measured it).
//! - **Attempts**: one lease of a task to a worker, numbered in lease order, with the Raft term it was
//!   leased in and its expiry as last written to the log.
//! - **Workers**: name, address (may be empty), cores, state (`Active`, `Draining`, then gone: `Lost`,
//!   `Removed`, or `Left` once a drained worker was told to stop), the last heartbeat written to the
//!   log, the attempts they hold and the cancellations waiting for their next poll.
//!
//! Heartbeats that change nothing else are not written to the log (see [`Machine::quiet_poll`]): the
//! leader keeps when it last heard from each worker and renewed each lease in memory, so a worker's
//! `last_seen_ms` and an attempt's `lease_expires_ms` here are lower bounds, and the leader's `Expire`
//! names what it found silent or expired.
//!
//! # Commands
//! [`Command`]s come in as JSON ([`Machine::apply`]) and [`Reply`]s go out as JSON. Time is never read
//! from a clock: the leader puts `now_ms` into the commands that need it.
//! - `SubmitJob` stores a planned job (or, for a request id already seen, answers with its job);
//!   `AddStageTasks` plans an unplanned stage once its dependencies are done; `CancelJob`; `FailJob`
//!   (the coordinator cannot plan the job's next stage); `SetModel`; `CleanupJob` (forgets the
//!   attempts of a finished job).
//! - `RegisterWorker` (refused unless the worker speaks [`PROTOCOL_VERSION`]); `Poll`, the heartbeat,
//!   renews the leases of the attempts the worker still runs, leases it up to `free_slots` runnable tasks
//!   and tells it what to cancel and whether it is drained (proposed only when it changes more than
//!   the heartbeat: [`Machine::quiet_poll`]); `ReportTask` records progress, commits a success, or
//!   retries a failure within the budget (else the job fails); `DrainWorker`, `RemoveWorker`.
//! - `Expire`, proposed by the leader only when something is due: the workers it names (silent for
//!   longer than `worker_timeout_ms` by the leader's account) are lost if still live, the attempts it
//!   names (leases expired) are abandoned if still running, named items that are not are ignored;
//!   then workers gone for longer than `forget_workers_after_ms` are forgotten once no attempt names
//!   them, and jobs finished longer than `forget_jobs_after_ms` ago are forgotten (with their request
//!   ids) once their scratch is cleaned: the state stays bounded while workers and jobs keep coming.
//!   `ExpireLeases` does the same from the replicated times alone: the leader proposed it every tick
//!   before it held liveness in memory, and logs that hold it still replay alike.
//! - `SetConfig`: lease length, worker timeout, retry budget, how long gone workers and finished jobs
//!   are kept.
//!
//! A refused command is answered with `Reply::Error { code, message }` ([`Error`], [`ErrorCode`]).
//!
//! # Invariants
//! 1. **Deterministic**: the state is a function of the commands applied, in order (and, for jobs
//!    submitted without an id, their log indexes). No clocks, no randomness, no IO, no hash-ordered
//!    maps: the same commands give the same replies and byte-identical snapshots.
//! 2. **A refused command changes nothing**: every command is checked in full before the state changes.
//! 3. **A task is committed at most once**: the first attempt to report success commits its output
//!    (even if its lease had expired, as long as nothing else committed), and the output never changes;
//!    any later attempt is fenced and told so. Outputs are what later stages read, so none is ever
//!    duplicated or replaced.
//! 4. **At most one running attempt per task.** A running attempt is held by exactly one live worker and
//!    appears in that worker's `attempts`; an abandoned, failed, cancelled or fenced attempt never runs
//!    again (a new attempt is leased instead). Every attempt's worker exists: a worker is forgotten
//!    only once no attempt names it.
//! 5. **Leases follow the plan**: a task is leased only when its job is running, its stage is planned
//!    and every stage it depends on is done; leases go oldest job first, then stage, then task.
//! 6. **A job succeeds exactly when every stage is planned and every task committed**; it fails when a
//!    task fails without retry or beyond the retry budget (the reason names the stage and task), or by
//!    `FailJob`. A finished job never changes state again and holds no running attempts: they are
//!    cancelled and put on their workers' cancel lists.
//! 7. **One code path loses a worker** (expiry, removal, restart): its attempts are abandoned and their
//!    tasks leased again. Only failure reports count against the retry budget.
//! 8. **Reports are fenced by term**: a report carrying a term older than the one its attempt was leased
//!    in is refused.
//! 9. **A quiet poll is a poll that changes nothing but heartbeats**: when [`Machine::quiet_poll`]
//!    answers, `Poll` would give the same answer (no assignments, the same cancels, no drain) and
//!    change only the worker's `last_seen_ms` and its attempts' lease expiries; when it does not,
//!    `Poll` is refused or changes more (both tested against `Poll` in seeded random runs).
//!
//! **Architecture invariant:** this crate is pure: no IO, no clocks, no randomness, no async, no gRPC,
//! no Raft and no linkage. It depends on serde, serde_json and thiserror only; the coordinator adapts
//! [`Machine`] to the raftstore's state machine trait and the engine's planner produces the [`Plan`].

mod command;
mod error;
mod machine;
mod state;

#[cfg(test)]
mod tests;

pub use command::{Assignment, Command, LostWorker, Outcome, Plan, Reply, StagePlan, TaskPlan};
pub use error::{Error, ErrorCode};
pub use machine::{JobProgress, Machine, QuietPoll, StageProgress, StageState, check_request_id};
pub use state::{
    AbandonCause, Attempt, AttemptState, Committed, Config, Job, JobState, Stage, Task, TaskState,
    Worker, WorkerState,
};

pub type JobId = String;
pub type WorkerId = String;
/// Attempts are numbered from 1 in lease order.
pub type AttemptId = u64;

/// The worker protocol version: a worker registering with another one is refused. The same number as
/// `khop_proto::PROTOCOL_VERSION` (which says what each version changed).
pub const PROTOCOL_VERSION: u32 = 2;

/// The snapshot format version: [`Machine::restore`] refuses any other.
pub const SNAPSHOT_FORMAT: u64 = 1;

/// The id of a job submitted without one: named after the log index of its `SubmitJob`, so every
/// coordinator names it alike.
pub fn job_id_for_index(index: u64) -> JobId {
    format!("job-{index:010}")
}
