//! The leader's loop: expires leases, plans each job's next stage once the stages before it are done,
//! and finishes jobs (summary, scratch removal). Runs on every coordinator, acts only while it leads;
//! what it decides goes through the log, so followers never plan and a new leader carries on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use khop_engine::job::{Summary, remove_scratch, write_summary};
use khop_engine::task::{Output, Planner, stage_names};
use khop_raftstore::Role as RaftRole;
use khop_scheduler::{Command, JobState, Machine, TaskPlan};

use crate::core::{Core, load_spec, now_ms};
use crate::error::Error;

/// Something the leader has to do for a job.
enum Work {
    /// Plan stage `stage` from the committed outputs of every stage before it.
    Plan {
        job_id: String,
        stage: usize,
        spec_toml: String,
        done: Vec<Vec<String>>,
    },
    /// The job is over: write the summary (if it succeeded) and remove its scratch files.
    Finish {
        job_id: String,
        spec_toml: String,
        written: Option<String>,
        total_ms: u64,
    },
}

fn pending(machine: &Machine) -> Vec<Work> {
    let mut work = Vec::new();
    for job in machine.jobs() {
        match job.state {
            JobState::Running => {
                let Some(stage) = job.stages.iter().position(|s| !s.planned) else {
                    continue;
                };
                if !job.stages[stage]
                    .depends_on
                    .iter()
                    .all(|&d| job.stages[d].is_done())
                    || !job.stages[..stage].iter().all(|s| s.is_done())
                {
                    continue;
                }
                let done = (0..stage)
                    .map(|i| {
                        machine
                            .committed_outputs(&job.id, i)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(_, json)| json)
                            .collect()
                    })
                    .collect();
                work.push(Work::Plan {
                    job_id: job.id.clone(),
                    stage,
                    spec_toml: job.spec_toml.clone(),
                    done,
                });
            }
            _ if job.scratch_cleaned => {}
            state => {
                let written = (state == JobState::Succeeded)
                    .then(|| {
                        machine
                            .committed_outputs(&job.id, job.stages.len().saturating_sub(1))
                            .ok()
                            .and_then(|o| o.into_iter().next())
                            .map(|(_, json)| json)
                    })
                    .flatten();
                work.push(Work::Finish {
                    job_id: job.id.clone(),
                    spec_toml: job.spec_toml.clone(),
                    written,
                    total_ms: job
                        .finished_ms
                        .unwrap_or(job.submitted_ms)
                        .saturating_sub(job.submitted_ms),
                });
            }
        }
    }
    work
}

/// Plans the next stage (IO: the planner lists the input files).
fn plan(spec_toml: &str, stage: usize, done: &[Vec<String>]) -> Result<Vec<TaskPlan>, Error> {
    let spec = load_spec(spec_toml)?;
    let done: Vec<Vec<Output>> = done
        .iter()
        .map(|outputs| {
            outputs
                .iter()
                .map(|json| serde_json::from_str(json))
                .collect::<Result<_, _>>()
        })
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Internal(format!("a committed output is not an engine output: {e}")))?;
    let want = stage_names(&spec);
    let planned = Planner::new(spec)?
        .next(&done)?
        .ok_or_else(|| Error::Internal(format!("the planner has no stage {stage}")))?;
    if want.get(stage) != Some(&planned.name) {
        return Err(Error::Internal(format!(
            "the planner's stage {stage} is {:?}, the job's is {:?}",
            planned.name,
            want.get(stage)
        )));
    }
    planned
        .tasks
        .iter()
        .map(|t| {
            serde_json::to_string(t)
                .map(|payload_json| TaskPlan { payload_json })
                .map_err(|e| Error::Internal(format!("task to JSON: {e}")))
        })
        .collect()
}

/// Writes `summary.json` (succeeded jobs) and removes the scratch files.
fn finish(spec_toml: &str, written: Option<&str>, total_ms: u64) -> Result<(), Error> {
    let spec = load_spec(spec_toml)?;
    if let Some(json) = written {
        let summary: Summary = match serde_json::from_str(json) {
            Ok(Output::Written(summary)) => *summary,
            Ok(_) | Err(_) => {
                return Err(Error::Internal(
                    "the last stage's output is not a written summary".into(),
                ));
            }
        };
        // The scheduler keeps no per-stage times: the summary has the job's total only.
        let timings = BTreeMap::from([("total".to_string(), total_ms as f64 / 1000.0)]);
        write_summary(&spec, summary, timings)?;
    }
    remove_scratch(&spec);
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("blocking task: {e}")))?
}

/// Runs until the process ends.
pub(crate) async fn run(core: Arc<Core>) {
    let mut tick = tokio::time::interval(Duration::from_millis(core.settings.tick_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut configured_in_term = 0;
    loop {
        tick.tick().await;
        let status = core.raft.status();
        if status.role != RaftRole::Leader {
            continue;
        }
        if configured_in_term != status.term {
            match configure(&core).await {
                Ok(()) => configured_in_term = status.term,
                Err(e) => tracing::debug!(error = %e, "config not replicated yet"),
            }
        }
        if let Err(e) = step(&core).await {
            tracing::debug!(error = %e, "leader step");
        }
    }
}

async fn configure(core: &Core) -> Result<(), Error> {
    let want = core.settings.scheduler;
    if core.read(|m| *m.config()).await? != want {
        core.propose(Command::SetConfig { config: want }).await?;
        tracing::info!(
            lease_ms = want.lease_ms,
            worker_timeout_ms = want.worker_timeout_ms,
            retry_budget = want.retry_budget,
            "scheduler config set"
        );
    }
    Ok(())
}

async fn step(core: &Core) -> Result<(), Error> {
    if let khop_scheduler::Reply::Expired {
        attempts,
        workers_lost,
    } = core
        .propose(Command::ExpireLeases { now_ms: now_ms() })
        .await?
        && (!attempts.is_empty() || !workers_lost.is_empty())
    {
        tracing::info!(?attempts, ?workers_lost, "leases expired");
    }
    for work in core.read(pending).await? {
        match work {
            Work::Plan {
                job_id,
                stage,
                spec_toml,
                done,
            } => {
                let planned = blocking(move || plan(&spec_toml, stage, &done)).await;
                let command = match planned {
                    Ok(tasks) => {
                        tracing::info!(job = %job_id, stage, tasks = tasks.len(), "stage planned");
                        Command::AddStageTasks {
                            job_id,
                            stage,
                            tasks,
                            now_ms: now_ms(),
                        }
                    }
                    Err(e) => {
                        // The scheduler has no "fail job" command: a job that cannot be planned is
                        // cancelled, with the reason in the log.
                        tracing::error!(job = %job_id, stage, error = %e, "cannot plan the next stage: cancelling the job");
                        Command::CancelJob {
                            job_id,
                            now_ms: now_ms(),
                        }
                    }
                };
                core.propose(command).await?;
            }
            Work::Finish {
                job_id,
                spec_toml,
                written,
                total_ms,
            } => {
                let succeeded = written.is_some();
                if let Err(e) =
                    blocking(move || finish(&spec_toml, written.as_deref(), total_ms)).await
                {
                    tracing::error!(job = %job_id, error = %e, "cannot finish the job; will retry");
                    continue;
                }
                core.propose(Command::CleanupJob {
                    job_id: job_id.clone(),
                })
                .await?;
                tracing::info!(job = %job_id, succeeded, "job finished");
            }
        }
    }
    Ok(())
}

/// On a freshly bootstrapped seed: adds the other `--peers` one at a time until each is a voter.
pub(crate) async fn join_peers(core: Arc<Core>, peers: BTreeMap<u64, String>) {
    for (id, address) in peers {
        if id == core.raft.id() {
            continue;
        }
        loop {
            let status = core.raft.status();
            if status.voters.contains(&id) {
                break;
            }
            if status.role == RaftRole::Leader {
                match core.raft.add_node(id, address.clone()).await {
                    Ok(()) => {
                        tracing::info!(coordinator = id, %address, "coordinator joined");
                        break;
                    }
                    Err(e) => {
                        tracing::info!(coordinator = id, error = %e, "coordinator not joined yet; retrying")
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
