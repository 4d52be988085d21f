//! The one error type of the crate, and its classification into the codes the gRPC edge maps to.

use serde::{Deserialize, Serialize};

use crate::state::{JobState, WorkerState};
use crate::{AttemptId, JobId, SNAPSHOT_FORMAT, WorkerId};

/// Why a command was refused (or a snapshot not restored). A refused command changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the command is not valid JSON for this protocol: {0}")]
    Undecodable(String),
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    #[error(
        "worker {worker} speaks protocol version {got}, this coordinator speaks version {want}: \
         run the same khop release on workers and coordinators"
    )]
    ProtocolMismatch {
        worker: WorkerId,
        got: u32,
        want: u32,
    },
    #[error("unknown job {0}")]
    UnknownJob(JobId),
    #[error("job {job} has no stage {stage}")]
    UnknownStage { job: JobId, stage: usize },
    #[error("unknown worker {0}: register it first")]
    UnknownWorker(WorkerId),
    #[error("unknown attempt {0}")]
    UnknownAttempt(AttemptId),
    #[error("job {0} already exists")]
    JobExists(JobId),
    #[error("worker {worker} is already registered as {name:?} at {address:?}")]
    WorkerExists {
        worker: WorkerId,
        name: String,
        address: String,
    },
    #[error(
        "request_id: {request_id:?} already submitted job {job} with another name or spec: \
         use a new request id for a new job"
    )]
    RequestReused { request_id: String, job: JobId },
    #[error("worker {worker} is {state:?}: register it again")]
    WorkerGone {
        worker: WorkerId,
        state: WorkerState,
    },
    #[error("attempt {attempt} is held by worker {holder}, not by {worker}")]
    NotHolder {
        attempt: AttemptId,
        worker: WorkerId,
        holder: WorkerId,
    },
    #[error(
        "attempt {attempt} was leased in term {lease_term}: a report from term {term} is stale"
    )]
    StaleTerm {
        attempt: AttemptId,
        term: u64,
        lease_term: u64,
    },
    #[error(
        "task {stage}/{task} of job {job} is already committed by attempt {by}: attempt {attempt} is fenced, \
         discard its output"
    )]
    AlreadyCommitted {
        job: JobId,
        stage: usize,
        task: usize,
        by: AttemptId,
        attempt: AttemptId,
    },
    #[error("attempt {attempt} is no longer running ({state}): its report is not accepted")]
    AttemptNotRunning { attempt: AttemptId, state: String },
    #[error("job {job} is {state:?}")]
    JobNotRunning { job: JobId, state: JobState },
    #[error("job {0} is still running")]
    JobStillRunning(JobId),
    #[error("stage {stage} of job {job} is already planned")]
    StageAlreadyPlanned { job: JobId, stage: usize },
    #[error("stage {stage} of job {job} waits for stage {dependency} to be done")]
    StageNotReady {
        job: JobId,
        stage: usize,
        dependency: usize,
    },
    #[error("worker {worker} is {state:?}")]
    WorkerNotActive {
        worker: WorkerId,
        state: WorkerState,
    },
    #[error("snapshot format {0} is not supported: this build reads format {SNAPSHOT_FORMAT}")]
    UnsupportedSnapshot(u64),
    #[error("the snapshot is unreadable: {0}")]
    BadSnapshot(String),
}

/// The error classes, mapped one to one onto gRPC status codes at the edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    InvalidArgument,
    NotFound,
    FailedPrecondition,
    AlreadyExists,
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        use Error::*;
        match self {
            Undecodable(_) | InvalidArgument { .. } | BadSnapshot(_) => ErrorCode::InvalidArgument,
            UnknownJob(_) | UnknownStage { .. } | UnknownWorker(_) | UnknownAttempt(_) => {
                ErrorCode::NotFound
            }
            JobExists(_) | WorkerExists { .. } | RequestReused { .. } => ErrorCode::AlreadyExists,
            ProtocolMismatch { .. }
            | WorkerGone { .. }
            | NotHolder { .. }
            | StaleTerm { .. }
            | AlreadyCommitted { .. }
            | AttemptNotRunning { .. }
            | JobNotRunning { .. }
            | JobStillRunning(_)
            | StageAlreadyPlanned { .. }
            | StageNotReady { .. }
            | WorkerNotActive { .. }
            | UnsupportedSnapshot(_) => ErrorCode::FailedPrecondition,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
