//! The commands that talk to a running cluster: `submit`, `status`, `watch`, `cancel`, `workers`,
//! `cluster`. Each tries the coordinators given (`--coordinators`, default `KHOP_COORDINATORS`),
//! follows the leader, and sends `KHOP_TOKEN` as the bearer token. Every read prints JSON with `--json`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use khop_client::Coordinators;
use khop_proto::v1;
use serde_json::{Value, json};

/// How long a command keeps trying (elections take a second or two).
const DEADLINE: Duration = Duration::from_secs(20);

#[derive(Debug, clap::Args)]
pub struct Remote {
    /// Coordinator addresses, comma-separated [default: KHOP_COORDINATORS].
    #[arg(long, value_delimiter = ',', global = true)]
    coordinators: Vec<String>,
}

/// The coordinators given, or `KHOP_COORDINATORS`, each checked (`http://host:port`).
pub fn addresses(given: &[String]) -> anyhow::Result<Vec<String>> {
    let (given, from): (Vec<String>, &str) = if given.is_empty() {
        let listed = std::env::var("KHOP_COORDINATORS").unwrap_or_default();
        (
            listed.split(',').map(str::to_owned).collect(),
            "KHOP_COORDINATORS",
        )
    } else {
        (given.to_vec(), "--coordinators")
    };
    let addresses: Vec<String> = given
        .iter()
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect();
    if addresses.is_empty() {
        bail!("no coordinators: give --coordinators or set KHOP_COORDINATORS");
    }
    for a in &addresses {
        khop_client::check_address(a).map_err(|e| anyhow::anyhow!("{from}: {e}"))?;
    }
    Ok(addresses)
}

impl Remote {
    fn connect(&self) -> anyhow::Result<Coordinators> {
        Coordinators::new(
            &addresses(&self.coordinators)?,
            khop_client::token_from_env().as_deref(),
        )
        .map_err(anyhow::Error::msg)
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// A failed call as one line: the gRPC code and the coordinator's message.
fn failed(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", described(&status))
}

/// The gRPC code and message, and for the codes a person can act on, what to check.
fn described(status: &tonic::Status) -> String {
    let hint = match status.code() {
        tonic::Code::Unavailable => {
            " (is a coordinator running at that address, reachable from here, and does the \
             cluster have a leader? check --coordinators or KHOP_COORDINATORS, and `khop health`)"
        }
        tonic::Code::Unauthenticated => " (set KHOP_TOKEN to a token the coordinators accept)",
        tonic::Code::PermissionDenied => " (this token's role may not do this)",
        _ => "",
    };
    format!("{:?}: {}{hint}", status.code(), status.message())
}

macro_rules! call {
    ($coordinators:expr, $service:ident, $method:ident, $request:expr) => {{
        let request = $request;
        $coordinators
            .call(DEADLINE, |c| {
                let request = request.clone();
                async move { c.$service().$method(request).await }
            })
            .await
            .map_err(failed)
    }};
}

#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// The job spec (TOML; docs/job-spec.md). Relative paths in it are taken from its directory, which
    /// must be the same path on the coordinators and workers (shared storage).
    job: PathBuf,
    /// Write the outputs here instead of the spec's `output`.
    #[arg(long)]
    output: Option<PathBuf>,
    /// A name for people [default: the spec's file name].
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("{}", path.display()))
}

/// A job spec file made into a submission: its text, its directory as the base of relative paths,
/// and the output (absolute paths, which every node resolves the same way).
pub(crate) fn submission(
    job: &Path,
    output: Option<&Path>,
    name: Option<String>,
) -> anyhow::Result<v1::SubmitJobRequest> {
    let spec_toml =
        std::fs::read_to_string(job).with_context(|| format!("reading {}", job.display()))?;
    let job = absolute(job)?;
    let base_dir = job
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let output = output
        .map(absolute)
        .transpose()?
        .map(|o| o.display().to_string());
    let name = name.unwrap_or_else(|| {
        job.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    Ok(v1::SubmitJobRequest {
        spec_toml,
        output,
        name,
        base_dir,
        // One id for this submit, sent again on every retry: a retry never queues a second job.
        request_id: Some(khop_client::new_request_id()),
    })
}

/// Submits a job; its id.
pub(crate) async fn submit_job(
    coordinators: &Coordinators,
    request: v1::SubmitJobRequest,
) -> anyhow::Result<String> {
    let reply = call!(coordinators, jobs, submit_job, request)?;
    Ok(reply.job_id)
}

pub fn submit(args: SubmitArgs) -> anyhow::Result<()> {
    let request = submission(&args.job, args.output.as_deref(), args.name)?;
    let coordinators = args.remote.connect()?;
    let id = runtime()?.block_on(submit_job(&coordinators, request))?;
    say!("{id}");
    Ok(())
}

pub(crate) fn state_name(state: i32) -> String {
    v1::JobState::try_from(state)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("JOB_STATE_")
                .to_lowercase()
        })
        .unwrap_or_else(|_| "unknown".into())
}

/// Seconds from submission to the end (0 while the job runs).
fn job_wall_seconds(job: &v1::Job) -> f64 {
    if job.finished_unix_ms == 0 {
        return 0.0;
    }
    (job.finished_unix_ms - job.submitted_unix_ms).max(0) as f64 / 1000.0
}

fn job_json(job: &v1::Job) -> Value {
    json!({
        "id": job.id,
        "name": job.name,
        "state": state_name(job.state),
        "error": job.error,
        "output": job.output,
        "submitted_unix_ms": job.submitted_unix_ms,
        "finished_unix_ms": job.finished_unix_ms,
        "wall_seconds": job_wall_seconds(job),
        "task_seconds": job.stages.iter().map(|s| s.task_seconds).sum::<f64>(),
        "stages": job.stages.iter().map(|s| json!({
            "name": s.name,
            "state": state_name(s.state),
            "tasks": s.tasks_total,
            "tasks_total": s.tasks_total,
            "tasks_done": s.tasks_done,
            "tasks_running": s.tasks_running,
            "tasks_failed": s.tasks_failed,
            "records_done": s.records_done,
            "started_ms": s.started_unix_ms,
            "finished_ms": s.finished_unix_ms,
            "wall_seconds": s.wall_seconds,
            "task_seconds": s.task_seconds,
        })).collect::<Vec<_>>(),
        "summary": serde_json::from_str::<Value>(&job.summary_json).unwrap_or(Value::Null),
    })
}

fn print_job(job: &v1::Job) {
    say!("{}  {}  {}", job.id, state_name(job.state), job.name);
    if !job.error.is_empty() {
        say!("  error: {}", job.error);
    }
    for s in &job.stages {
        say!(
            "  {:<24} {:<10} {:>5}/{:<5} running {:<4} wall {:>8.1} s  tasks {:>8.1} s",
            s.name,
            state_name(s.state),
            s.tasks_done,
            s.tasks_total,
            s.tasks_running,
            s.wall_seconds,
            s.task_seconds
        );
    }
    say!("  output: {}", job.output);
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// A job id; every job when left out.
    job: Option<String>,
    /// Print the jobs as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

pub fn status(args: StatusArgs) -> anyhow::Result<()> {
    let coordinators = args.remote.connect()?;
    let jobs = runtime()?.block_on(async {
        match &args.job {
            Some(id) => call!(
                coordinators,
                jobs,
                get_job,
                v1::GetJobRequest { job_id: id.clone() }
            )
            .map(|j| vec![j]),
            None => call!(coordinators, jobs, list_jobs, v1::ListJobsRequest {}).map(|r| r.jobs),
        }
    })?;
    if args.json {
        let value = match (&args.job, jobs.as_slice()) {
            (Some(_), [job]) => job_json(job),
            _ => Value::Array(jobs.iter().map(job_json).collect()),
        };
        say!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        jobs.iter().for_each(print_job);
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct JobArgs {
    /// The job's id (as `khop submit` printed it).
    job: String,
    #[command(flatten)]
    remote: Remote,
}

/// Follows a job until it ends, driving a progress bar per stage; the job as it ended.
pub(crate) async fn follow_job(
    coordinators: &Coordinators,
    job_id: &str,
    bars: &super::progress::Bars,
) -> anyhow::Result<v1::Job> {
    use khop_engine::Progress as _;
    let mut shown: Vec<(String, u32)> = Vec::new();
    let mut current: Option<String> = None;
    loop {
        let request = v1::WatchJobRequest {
            job_id: job_id.to_string(),
        };
        let mut stream = call!(coordinators, jobs, watch_job, request)?;
        let mut last = None;
        // A stream that breaks (leader change) is opened again.
        while let Ok(Some(event)) = stream.message().await {
            let Some(job) = event.job else { continue };
            for stage in &job.stages {
                let started =
                    stage.tasks_total > 0 && (stage.tasks_done > 0 || stage.tasks_running > 0);
                if !started && stage.state != v1::JobState::Succeeded as i32 {
                    continue;
                }
                if current.as_deref() != Some(&stage.name)
                    && !shown.iter().any(|(n, _)| n == &stage.name)
                {
                    if let Some(done) = current.take() {
                        bars.finish(&done);
                    }
                    bars.start(&stage.name, Some(u64::from(stage.tasks_total)));
                    shown.push((stage.name.clone(), 0));
                    current = Some(stage.name.clone());
                }
                if let Some(entry) = shown.iter_mut().find(|(n, _)| n == &stage.name)
                    && current.as_deref() == Some(&stage.name)
                    && stage.tasks_done > entry.1
                {
                    bars.advance(u64::from(stage.tasks_done - entry.1));
                    entry.1 = stage.tasks_done;
                }
            }
            last = Some(job);
        }
        if let Some(job) = last.filter(|j| {
            matches!(
                v1::JobState::try_from(j.state),
                Ok(v1::JobState::Succeeded | v1::JobState::Failed | v1::JobState::Cancelled)
            )
        }) {
            if let Some(done) = current.take() {
                bars.finish(&done);
            }
            return Ok::<_, anyhow::Error>(job);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Follows a job until it ends: a progress bar per stage. Fails unless the job succeeds.
pub fn watch(args: JobArgs) -> anyhow::Result<()> {
    let coordinators = args.remote.connect()?;
    let bars = super::progress::Bars::new();
    let last = runtime()?.block_on(follow_job(&coordinators, &args.job, &bars))?;
    print_job(&last);
    if last.state != v1::JobState::Succeeded as i32 {
        bail!("job {} is {}", last.id, state_name(last.state));
    }
    Ok(())
}

pub fn cancel(args: JobArgs) -> anyhow::Result<()> {
    let coordinators = args.remote.connect()?;
    runtime()?.block_on(async {
        call!(
            coordinators,
            jobs,
            cancel_job,
            v1::CancelJobRequest {
                job_id: args.job.clone()
            }
        )
    })?;
    say!("{} cancelled", args.job);
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// How long each coordinator may take to answer.
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
    #[command(flatten)]
    remote: Remote,
}

/// Asks each coordinator given whether it is ready (knows a leader, so that calls to it are answered):
/// a line each, and an error (exit status 1) unless every one is. No token: the health service is
/// open, so a container's health check needs no secret.
pub fn health(args: HealthArgs) -> anyhow::Result<()> {
    let addresses = addresses(&args.remote.coordinators)?;
    let coordinators = Coordinators::new(&addresses, None).map_err(anyhow::Error::msg)?;
    let timeout = std::time::Duration::from_millis(args.timeout_ms);
    let rt = runtime()?;
    let mut unready = Vec::new();
    for address in &addresses {
        let answer = rt.block_on(async {
            let conn = coordinators.connect(address)?;
            tokio::time::timeout(timeout, conn.ready())
                .await
                .unwrap_or_else(|_| {
                    Err(tonic::Status::deadline_exceeded(format!(
                        "no answer within {} ms",
                        args.timeout_ms
                    )))
                })
        });
        let ready = matches!(answer, Ok(true));
        match answer {
            Ok(true) => say!("{address}  ready"),
            Ok(false) => say!("{address}  not ready: knows no leader"),
            Err(status) => say!("{address}  unreachable: {}", failed(status)),
        }
        if !ready {
            unready.push(address.as_str());
        }
    }
    if !unready.is_empty() {
        bail!("not ready: {}", unready.join(", "));
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct WorkersArgs {
    /// Print the workers as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

fn worker_state(state: i32) -> String {
    v1::WorkerState::try_from(state)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("WORKER_STATE_")
                .to_lowercase()
        })
        .unwrap_or_else(|_| "unknown".into())
}

pub fn workers(args: WorkersArgs) -> anyhow::Result<()> {
    let coordinators = args.remote.connect()?;
    let reply = runtime()?.block_on(async {
        call!(
            coordinators,
            cluster,
            list_workers,
            v1::ListWorkersRequest {}
        )
    })?;
    if args.json {
        let workers: Vec<Value> = reply
            .workers
            .iter()
            .map(|w| {
                json!({
                    "id": w.id, "name": w.name, "address": w.address, "cores": w.cores,
                    "state": worker_state(w.state), "running": w.running,
                    "last_seen_unix_ms": w.last_seen_unix_ms,
                })
            })
            .collect();
        say!("{}", serde_json::to_string_pretty(&workers)?);
    } else {
        for w in &reply.workers {
            say!(
                "{:<22} {:<9} {:>3} slots  running {:<3} {:<24} {}",
                w.id,
                worker_state(w.state),
                w.cores,
                w.running.len(),
                w.name,
                if w.address.is_empty() {
                    "-"
                } else {
                    &w.address
                }
            );
        }
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    action: Option<ClusterAction>,
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Debug, clap::Subcommand)]
enum ClusterAction {
    /// Stop leasing tasks to a worker; it exits once its tasks are done.
    Drain {
        /// The worker's id (`khop workers`).
        worker: String,
    },
    /// Forget a worker now; its tasks run again elsewhere.
    RemoveWorker {
        /// The worker's id (`khop workers`).
        worker: String,
    },
    /// Add a coordinator (started with an empty data dir) at ADDRESS (http://host:port).
    #[command(visible_alias = "add-coordinator")]
    Add {
        /// The new coordinator's id (its `--id`), never one used before.
        id: u64,
        /// Where the others reach it: http://host:port.
        address: String,
    },
    /// Remove a coordinator from the Raft group.
    #[command(visible_alias = "remove-coordinator")]
    Remove {
        /// The coordinator's id (`khop cluster`).
        id: u64,
    },
    /// Hand leadership to another coordinator.
    TransferLeader {
        /// The coordinator's id (`khop cluster`).
        id: u64,
    },
}

fn role_name(role: i32) -> String {
    v1::CoordinatorRole::try_from(role)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("COORDINATOR_ROLE_")
                .to_lowercase()
        })
        .unwrap_or_else(|_| "unknown".into())
}

pub fn cluster(args: ClusterArgs) -> anyhow::Result<()> {
    let coordinators = args.remote.connect()?;
    let rt = runtime()?;
    let done = |what: String| -> anyhow::Result<()> {
        say!("{what}");
        Ok(())
    };
    match args.action {
        Some(ClusterAction::Drain { worker }) => {
            rt.block_on(async {
                call!(
                    coordinators,
                    cluster,
                    drain_worker,
                    v1::DrainWorkerRequest {
                        worker_id: worker.clone()
                    }
                )
            })?;
            done(format!("{worker} draining"))
        }
        Some(ClusterAction::RemoveWorker { worker }) => {
            rt.block_on(async {
                call!(
                    coordinators,
                    cluster,
                    remove_worker,
                    v1::RemoveWorkerRequest {
                        worker_id: worker.clone()
                    }
                )
            })?;
            done(format!("{worker} removed"))
        }
        Some(ClusterAction::Add { id, address }) => {
            khop_client::check_address(&address).map_err(anyhow::Error::msg)?;
            rt.block_on(async {
                call!(
                    coordinators,
                    cluster,
                    add_coordinator,
                    v1::AddCoordinatorRequest {
                        id,
                        address: address.clone()
                    }
                )
            })?;
            done(format!("coordinator {id} added"))
        }
        Some(ClusterAction::Remove { id }) => {
            rt.block_on(async {
                call!(
                    coordinators,
                    cluster,
                    remove_coordinator,
                    v1::RemoveCoordinatorRequest { id }
                )
            })?;
            done(format!("coordinator {id} removed"))
        }
        Some(ClusterAction::TransferLeader { id }) => {
            rt.block_on(async {
                call!(
                    coordinators,
                    cluster,
                    transfer_leader,
                    v1::TransferLeaderRequest { id }
                )
            })?;
            done(format!("coordinator {id} leads"))
        }
        None => {
            let s = rt.block_on(async {
                call!(
                    coordinators,
                    cluster,
                    cluster_status,
                    v1::ClusterStatusRequest {}
                )
            })?;
            if args.json {
                let value = json!({
                    "leader_id": s.leader_id, "term": s.term, "commit_index": s.commit_index,
                    "applied_index": s.applied_index, "answered_by": s.answered_by,
                    "coordinators": s.coordinators.iter().map(|c| json!({
                        "id": c.id, "address": c.address, "role": role_name(c.role),
                        "is_leader": c.is_leader, "match_index": c.match_index,
                        "commit_index": c.commit_index,
                    })).collect::<Vec<_>>(),
                });
                say!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                say!(
                    "leader {}  term {}  commit {}  applied {}  (answered by {})",
                    s.leader_id,
                    s.term,
                    s.commit_index,
                    s.applied_index,
                    s.answered_by
                );
                for c in &s.coordinators {
                    say!("  {:>3} {:<10} {}", c.id, role_name(c.role), c.address);
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_a_person_can_act_on_say_what_to_check() {
        let unreachable =
            tonic::Status::unavailable("coordinator http://10.0.0.9:7400: transport error");
        let text = described(&unreachable);
        assert!(
            text.starts_with("Unavailable: coordinator http://10.0.0.9:7400"),
            "{text}"
        );
        assert!(text.contains("KHOP_COORDINATORS"), "{text}");
        assert!(described(&tonic::Status::unauthenticated("no token")).contains("KHOP_TOKEN"));
        assert_eq!(
            described(&tonic::Status::not_found("job x")),
            "NotFound: job x"
        );
    }
}
