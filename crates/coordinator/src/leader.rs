//! The leader's loop: expires leases and loses silent workers (from the state and the leader's
//! liveness table, proposing `Expire` only when something is due, so an idle cluster writes nothing),
//! plans each job's next stage once the stages before it are done, and finishes jobs (summary, scratch
//! removal). Runs on every coordinator, acts only while it leads; what it decides goes through the
//! log, so followers never plan and a new leader carries on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use khop_engine::job::{Summary, remove_scratch, write_summary};
use khop_engine::task::{Output, Planner, stage_names};
use khop_raftstore::Role as RaftRole;
use khop_scheduler::{Command, Job, JobState, Machine, TaskPlan};

use crate::core::{Core, load_spec, now_ms, seconds};
use crate::error::Error;
use crate::liveness::Live;

/// Something the leader has to do for a job.
enum Work {
    /// Plan stage `stage` from the committed outputs of every stage before it.
    Plan {
        job_id: String,
        stage: usize,
        stage_name: String,
        spec_toml: String,
        done: Vec<Vec<String>>,
    },
    /// The job is over: write the summary (if it succeeded) and remove its scratch files.
    Finish {
        job_id: String,
        spec_toml: String,
        written: Option<String>,
        /// The summary's timings, as the embedded runner writes them: seconds per stage (first lease
        /// to last commit) and `total` (submission to the last commit).
        timings: BTreeMap<String, f64>,
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
                    stage_name: job.stages[stage].name.clone(),
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
                    timings: timings(job),
                });
            }
        }
    }
    work
}

/// Seconds per done stage and in total, named like the embedded runner's.
fn timings(job: &Job) -> BTreeMap<String, f64> {
    let mut timings: BTreeMap<String, f64> = BTreeMap::new();
    for stage in &job.stages {
        if let (Some(started), Some(finished)) = (stage.started_ms, stage.finished_ms) {
            *timings.entry(stage.name.clone()).or_default() +=
                seconds(finished.saturating_sub(started));
        }
    }
    let finished = job.finished_ms.unwrap_or(job.submitted_ms);
    timings.insert(
        "total".into(),
        seconds(finished.saturating_sub(job.submitted_ms)),
    );
    timings
}

/// What the leader proposes for a stage it tried to plan: its tasks, or, when the planner failed
/// (an input no longer listable, a committed output that is not what the stage needs), the job's
/// failure with the reason. Planning errors name files and fields, never record contents.
fn planned_command(
    job_id: String,
    stage: usize,
    stage_name: &str,
    planned: Result<Vec<TaskPlan>, Error>,
    now_ms: u64,
) -> Command {
    match planned {
        Ok(tasks) => Command::AddStageTasks {
            job_id,
            stage,
            tasks,
            now_ms,
        },
        Err(e) => Command::FailJob {
            job_id,
            reason: format!("cannot plan stage {stage} ({stage_name}): {e}"),
            now_ms,
        },
    }
}

/// Plans the next stage (IO: a `standardise` stage lists its input's files and reads Parquet footers).
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
    let planned = Planner::resumed(spec)
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
fn finish(
    spec_toml: &str,
    written: Option<&str>,
    timings: BTreeMap<String, f64>,
) -> Result<(), Error> {
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
    // Woken by the tick (whether anything is due to expire) or at once by a committed change: a stage's last report, a
    // submit, a cancel; so a job moves on to its next stage without waiting for the tick.
    let mut changes = core.changes.subscribe();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = changes.changed() => {}
        }
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
            forget_workers_after_ms = want.forget_workers_after_ms,
            forget_jobs_after_ms = want.forget_jobs_after_ms,
            "scheduler config set"
        );
    }
    Ok(())
}

async fn step(core: &Core) -> Result<(), Error> {
    let term = core.raft.status().term;
    let now = now_ms();
    let liveness = core.liveness().view(term, now);
    let (due, live, work) = core
        .read(move |m| (liveness.due(m, now), Live::of(m), pending(m)))
        .await?;
    core.liveness().retain(term, &live);
    if let Some(command) = due {
        // Decided with this term's table: proposed only while this node still leads in that term.
        let status = core.raft.status();
        if status.role == RaftRole::Leader && status.term == term {
            expire(core, command).await?;
        }
    }
    for work in work {
        match work {
            Work::Plan {
                job_id,
                stage,
                stage_name,
                spec_toml,
                done,
            } => {
                let planned = blocking(move || plan(&spec_toml, stage, &done)).await;
                match &planned {
                    Ok(tasks) => {
                        tracing::info!(job = %job_id, stage, tasks = tasks.len(), "stage planned")
                    }
                    Err(e) => {
                        tracing::error!(job = %job_id, stage, error = %e, "cannot plan the next stage: failing the job")
                    }
                }
                let command = planned_command(job_id, stage, &stage_name, planned, now_ms());
                core.propose(command).await?;
            }
            Work::Finish {
                job_id,
                spec_toml,
                written,
                timings,
            } => {
                let succeeded = written.is_some();
                if let Err(e) =
                    blocking(move || finish(&spec_toml, written.as_deref(), timings)).await
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

async fn expire(core: &Core, command: Command) -> Result<(), Error> {
    if let khop_scheduler::Reply::Expired {
        attempts,
        workers_lost,
        workers_forgotten,
        jobs_forgotten,
    } = core.propose(command).await?
    {
        if !attempts.is_empty() || !workers_lost.is_empty() {
            tracing::info!(?attempts, ?workers_lost, "leases expired");
        }
        if !workers_forgotten.is_empty() {
            tracing::info!(workers = ?workers_forgotten, "gone workers forgotten");
        }
        if !jobs_forgotten.is_empty() {
            tracing::info!(jobs = ?jobs_forgotten, "finished jobs forgotten");
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use khop_engine::JobSpec;
    use khop_proto::v1;
    use khop_scheduler::{Plan, Reply, StagePlan};

    use super::*;
    use crate::core::{job_proto, store_spec};

    fn stored_spec() -> String {
        let text = include_str!("../../datagen/src/job.toml").replace("{format}", "parquet");
        store_spec(&JobSpec::from_toml(&text, Path::new("/shared/data")).unwrap()).unwrap()
    }

    #[test]
    fn the_scheduler_and_the_wire_speak_one_protocol_version() {
        // The worker sends khop_proto's; the scheduler refuses any but its own.
        assert_eq!(
            khop_proto::PROTOCOL_VERSION,
            khop_scheduler::PROTOCOL_VERSION
        );
    }

    #[test]
    fn a_stage_that_cannot_be_planned_fails_its_job_with_the_reason() {
        let spec_toml = stored_spec();
        let names = stage_names(&load_spec(&spec_toml).unwrap());
        let mut machine = Machine::default();
        let job_plan = Plan {
            stages: names
                .iter()
                .enumerate()
                .map(|(i, name)| StagePlan {
                    name: name.clone(),
                    tasks: Vec::new(),
                    depends_on: if i == 0 { vec![] } else { vec![i - 1] },
                    planned: i == 0,
                })
                .collect(),
        };
        // Stage 0 has no tasks here, so it is done at once and stage 1 is the leader's to plan.
        machine
            .execute(
                1,
                Command::SubmitJob {
                    job_id: Some("j1".into()),
                    name: "t".into(),
                    spec_toml: spec_toml.clone(),
                    plan: job_plan,
                    now_ms: 1_000,
                    request_id: None,
                },
            )
            .unwrap();
        let work = pending(&machine);
        let [
            Work::Plan {
                job_id,
                stage,
                stage_name,
                done,
                ..
            },
        ] = work.as_slice()
        else {
            panic!("the leader should plan stage 1");
        };
        assert_eq!((job_id.as_str(), *stage, done.len()), ("j1", 1, 1));

        // A committed output that is not an engine output: the planner cannot read it.
        let unreadable = vec![vec![r#"{"kind":"nothing_known"}"#.to_string()]];
        let planned = plan(&spec_toml, 1, &unreadable);
        assert!(planned.is_err());
        let command = planned_command("j1".into(), 1, stage_name, planned, 2_000);
        let Command::FailJob { reason, .. } = &command else {
            panic!("expected FailJob, got {command:?}");
        };
        assert!(
            reason.starts_with("cannot plan stage 1 (ids civil_servants): "),
            "{reason}"
        );
        assert_eq!(machine.execute(2, command).unwrap(), Reply::Done);

        // The job is FAILED with the reason, as the API shows it; the leader only cleans up now.
        let job = job_proto(&machine, machine.job("j1").unwrap());
        assert_eq!(job.state, v1::JobState::Failed as i32);
        assert!(job.error.contains("cannot plan stage 1"), "{}", job.error);
        assert!(matches!(
            pending(&machine).as_slice(),
            [Work::Finish { written: None, .. }]
        ));
    }

    #[test]
    fn summary_timings_have_every_done_stage_and_the_total() {
        let mut machine = Machine::default();
        let stages = ["a", "b"]
            .iter()
            .map(|name| StagePlan {
                name: name.to_string(),
                tasks: vec![khop_scheduler::TaskPlan {
                    payload_json: "{}".into(),
                }],
                depends_on: vec![],
                planned: true,
            })
            .collect();
        let mut index = 0;
        let mut run = |m: &mut Machine, c: Command| {
            index += 1;
            m.execute(index, c).unwrap()
        };
        run(
            &mut machine,
            Command::SubmitJob {
                job_id: Some("j1".into()),
                name: "t".into(),
                spec_toml: String::new(),
                plan: Plan { stages },
                now_ms: 1_000,
                request_id: None,
            },
        );
        run(
            &mut machine,
            Command::RegisterWorker {
                worker_id: "w1".into(),
                name: "host".into(),
                address: String::new(),
                cores: 2,
                protocol_version: khop_scheduler::PROTOCOL_VERSION,
                now_ms: 1_000,
            },
        );
        let Reply::Polled { assignments, .. } = run(
            &mut machine,
            Command::Poll {
                worker_id: "w1".into(),
                term: 1,
                free_slots: 2,
                running: vec![],
                now_ms: 2_000,
                queue_slots: 0,
                leaving: false,
            },
        ) else {
            panic!("poll");
        };
        for (a, now_ms) in assignments.iter().zip([3_500, 4_000]) {
            run(
                &mut machine,
                Command::ReportTask {
                    worker_id: "w1".into(),
                    attempt_id: a.attempt_id,
                    term: 1,
                    outcome: khop_scheduler::Outcome::Succeeded {
                        result_json: "{}".into(),
                        elapsed_ms: 1_200,
                    },
                    now_ms,
                },
            );
        }
        let job = machine.job("j1").unwrap();
        assert_eq!(
            timings(job),
            BTreeMap::from([
                ("a".to_string(), 1.5),
                ("b".to_string(), 2.0),
                ("total".to_string(), 3.0)
            ])
        );
        let shown = job_proto(&machine, job);
        let a = &shown.stages[0];
        assert_eq!(
            (
                a.started_unix_ms,
                a.finished_unix_ms,
                a.wall_seconds,
                a.task_seconds
            ),
            (2_000, 3_500, 1.5, 1.2)
        );
    }
}
