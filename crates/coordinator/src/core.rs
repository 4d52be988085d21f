//! What every handler and the leader loop share: the Raft handle, proposals and reads with their
//! errors classified, the stored form of a job's spec, and jobs as the API shows them.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use khop_engine::JobSpec;
use khop_proto::v1;
use khop_raftstore::RaftHandle;
use khop_scheduler::{Command, Job, JobState, Machine, Reply, StageState};

use crate::auth::Tokens;
use crate::error::Error;
use crate::liveness::Liveness;
use crate::sm::SchedulerSm;

pub(crate) struct Core {
    pub(crate) raft: RaftHandle<SchedulerSm>,
    pub(crate) tokens: Tokens,
    pub(crate) settings: Settings,
    /// Bumped after every command this node committed that can give someone something to do: a
    /// stage to plan or a job to finish (the leader loop), tasks to lease (long polls), progress to
    /// show (watchers). Polls that lease nothing and expiries that change nothing do not bump it, so waiting on
    /// it never spins. Only the leader proposes, so only the leader's counter moves.
    pub(crate) changes: tokio::sync::watch::Sender<u64>,
    /// What this node, while it leads, has heard from workers without the log: quiet polls.
    pub(crate) liveness: std::sync::Mutex<Liveness>,
}

/// The tunables a coordinator is started with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Replicated to the scheduler by the leader (`SetConfig`) when it differs.
    pub scheduler: khop_scheduler::Config,
    /// How long a worker's poll waits for work before it returns empty.
    pub poll_ms: u64,
    /// The leader's loop: lease expiry (proposed only when something is due), planning, finishing
    /// jobs.
    pub tick_ms: u64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            scheduler: khop_scheduler::Config::default(),
            poll_ms: 1000,
            tick_ms: 200,
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Core {
    /// Proposes a command on this node (the leader) and returns the scheduler's reply; a refusal is
    /// `Error::Refused`.
    pub(crate) async fn propose(&self, command: Command) -> Result<Reply, Error> {
        let bytes = self.raft.propose(command.to_bytes()).await?;
        match Reply::from_bytes(&bytes)? {
            Reply::Error { code, message } => Err(Error::Refused { code, message }),
            reply => {
                if changes_something(&command, &reply) {
                    self.changes.send_modify(|n| *n = n.wrapping_add(1));
                }
                Ok(reply)
            }
        }
    }

    /// The liveness table (held briefly: never across an await).
    pub(crate) fn liveness(&self) -> std::sync::MutexGuard<'_, Liveness> {
        self.liveness.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A linearizable read of the scheduler's state (leader only).
    pub(crate) async fn read<R, F>(&self, f: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce(&Machine) -> R + Send + 'static,
    {
        Ok(self.raft.read(move |sm: &SchedulerSm| f(&sm.0)).await?)
    }
}

/// The spec as the coordinators store it: resolved (absolute paths, output override applied) and
/// written back as TOML, so that the leader can rebuild the planner after any failover.
pub(crate) fn store_spec(spec: &JobSpec) -> Result<String, Error> {
    let text = toml::to_string(spec).map_err(|e| Error::Internal(format!("spec to TOML: {e}")))?;
    let back = load_spec(&text)?;
    if &back != spec {
        return Err(Error::Internal("the spec does not survive TOML".into()));
    }
    Ok(text)
}

/// Whether a committed command can give the leader loop, a long poll or a watcher something new.
fn changes_something(command: &Command, reply: &Reply) -> bool {
    match (command, reply) {
        (
            Command::Poll { .. },
            Reply::Polled {
                assignments,
                cancel,
                drain,
            },
        ) => !assignments.is_empty() || !cancel.is_empty() || *drain,
        (
            Command::ExpireLeases { .. } | Command::Expire { .. },
            Reply::Expired {
                attempts,
                workers_lost,
                workers_forgotten,
                jobs_forgotten,
            },
        ) => {
            !attempts.is_empty()
                || !workers_lost.is_empty()
                || !workers_forgotten.is_empty()
                || !jobs_forgotten.is_empty()
        }
        (Command::Poll { .. } | Command::ExpireLeases { .. } | Command::Expire { .. }, _) => false,
        _ => true,
    }
}

pub(crate) fn load_spec(text: &str) -> Result<JobSpec, Error> {
    Ok(JobSpec::from_toml(text, Path::new("/"))?)
}

fn proto_state(state: StageState, job: JobState) -> v1::JobState {
    match state {
        StageState::Waiting | StageState::Unplanned => v1::JobState::Queued,
        StageState::Running => v1::JobState::Running,
        StageState::Done => v1::JobState::Succeeded,
        StageState::Stopped if job == JobState::Failed => v1::JobState::Failed,
        StageState::Stopped => v1::JobState::Cancelled,
    }
}

/// A job as the API shows it. A succeeded job stays `RUNNING` until the leader has written its
/// summary and removed its scratch files, so that `SUCCEEDED` means every output is in place.
pub(crate) fn job_proto(machine: &Machine, job: &Job) -> v1::Job {
    let state = match job.state {
        JobState::Running => v1::JobState::Running,
        JobState::Succeeded if job.scratch_cleaned => v1::JobState::Succeeded,
        JobState::Succeeded => v1::JobState::Running,
        JobState::Failed => v1::JobState::Failed,
        JobState::Cancelled => v1::JobState::Cancelled,
    };
    // A stage still running has run until now; one stopped with its job, until the job ended.
    let now = job.finished_ms.unwrap_or_else(now_ms);
    let stages = machine
        .job_progress(&job.id)
        .map(|p| {
            p.stages
                .into_iter()
                .map(|s| v1::StageProgress {
                    name: s.name,
                    state: proto_state(s.state, job.state) as i32,
                    tasks_total: s.tasks_total as u32,
                    tasks_done: s.tasks_done as u32,
                    tasks_running: s.tasks_running as u32,
                    tasks_failed: s.tasks_failed as u32,
                    records_done: s.records_done,
                    started_unix_ms: s.started_ms.unwrap_or(0) as i64,
                    finished_unix_ms: s.finished_ms.unwrap_or(0) as i64,
                    wall_seconds: s.started_ms.map_or(0.0, |start| {
                        seconds(s.finished_ms.unwrap_or(now).saturating_sub(start))
                    }),
                    task_seconds: seconds(s.task_ms),
                })
                .collect()
        })
        .unwrap_or_default();
    let output = load_spec(&job.spec_toml)
        .map(|s| s.output.display().to_string())
        .unwrap_or_default();
    v1::Job {
        id: job.id.clone(),
        name: job.name.clone(),
        state: state as i32,
        error: job.error.clone().unwrap_or_default(),
        stages,
        submitted_unix_ms: job.submitted_ms as i64,
        started_unix_ms: job.submitted_ms as i64,
        finished_unix_ms: if state == v1::JobState::Running {
            0
        } else {
            job.finished_ms.unwrap_or(0) as i64
        },
        output,
        summary_json: String::new(),
    }
}

pub(crate) fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Fills in `summary_json` of a succeeded job from its `summary.json` (a small file the leader wrote).
pub(crate) async fn with_summary(mut job: v1::Job) -> v1::Job {
    if job.state == v1::JobState::Succeeded as i32 {
        let path = Path::new(&job.output).join("summary.json");
        job.summary_json = tokio::fs::read_to_string(path).await.unwrap_or_default();
    }
    job
}

pub(crate) fn job_is_over(job: &v1::Job) -> bool {
    matches!(
        v1::JobState::try_from(job.state),
        Ok(v1::JobState::Succeeded | v1::JobState::Failed | v1::JobState::Cancelled)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resolved_spec_survives_storage() {
        let text = include_str!("../../datagen/src/job.toml").replace("{format}", "parquet");
        let spec = JobSpec::from_toml(&text, Path::new("/shared/data")).unwrap();
        let stored = store_spec(&spec).unwrap();
        assert_eq!(load_spec(&stored).unwrap(), spec);
        assert!(stored.contains("/shared/data/population"));
    }
}
