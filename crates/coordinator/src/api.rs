//! The gRPC services: `JobService` (operators), `ClusterService` (engineers), `WorkerService` (workers).
//! Every handler checks the caller's role first, then proposes or reads through Raft; errors become a
//! `Status` in one place (`crate::error`).

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use khop_engine::JobSpec;
use khop_engine::task::{Planner, stage_names};
use khop_proto::v1::{self, cluster_service_server, job_service_server, worker_service_server};
use khop_raftstore::Role as RaftRole;
use khop_scheduler::{Command, Outcome, Plan, Reply, StagePlan, TaskPlan, WorkerState};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::auth::Role;
use crate::core::{Core, job_is_over, job_proto, now_ms, store_spec, with_summary};
use crate::error::Error;

/// The largest spec accepted.
const MAX_SPEC_BYTES: usize = 1 << 20;
/// A worker queues at most this many tasks beyond its free slots.
const MAX_QUEUE_SLOTS: u32 = 4;

#[derive(Clone)]
pub(crate) struct Api(pub(crate) Arc<Core>);

impl Api {
    fn check<T>(&self, request: &Request<T>, allowed: &[Role]) -> Result<(), Status> {
        self.0.tokens.check(request.metadata(), allowed)
    }
}

const READERS: &[Role] = &[Role::Operator, Role::Engineer];

/// Parses, resolves and plans the first stage of a submitted job (IO: lists the input files).
fn plan_submission(req: &v1::SubmitJobRequest) -> Result<(JobSpec, Plan), Error> {
    if let Some(id) = &req.request_id {
        khop_scheduler::check_request_id(id)?;
    }
    if req.spec_toml.len() > MAX_SPEC_BYTES {
        return Err(Error::TooLarge(format!(
            "spec_toml: {} bytes, the limit is {MAX_SPEC_BYTES}",
            req.spec_toml.len()
        )));
    }
    let base = Path::new(&req.base_dir);
    if !req.base_dir.is_empty() && !base.is_absolute() {
        return Err(Error::InvalidArgument(format!(
            "base_dir: {:?} must be an absolute path",
            req.base_dir
        )));
    }
    let mut spec = JobSpec::from_toml(&req.spec_toml, base)?;
    if let Some(output) = &req.output {
        spec.output = base.join(output);
    }
    let relative = std::iter::once(("output", spec.output.display().to_string()))
        .chain(spec.inputs.iter().map(|i| ("inputs.path", i.path.clone())))
        .chain(
            spec.execution
                .scratch
                .iter()
                .map(|s| ("execution.scratch", s.clone())),
        )
        .find(|(_, p)| !khop_engine::storage::is_url(p) && Path::new(p).is_relative());
    if let Some((field, path)) = relative {
        return Err(Error::InvalidArgument(format!(
            "{field}: {path:?} is relative and no base_dir was given: use absolute paths"
        )));
    }
    let planner = Planner::new(spec)?;
    let spec = planner.spec().clone();
    let first = planner
        .next(&[])?
        .ok_or_else(|| Error::Internal("the planner gave no first stage".into()))?;
    let names = stage_names(&spec);
    if names.first() != Some(&first.name) {
        return Err(Error::Internal(format!(
            "the planner's first stage {:?} is not {:?}",
            first.name,
            names.first()
        )));
    }
    let tasks = first
        .tasks
        .iter()
        .map(|t| {
            serde_json::to_string(t)
                .map(|payload_json| TaskPlan { payload_json })
                .map_err(|e| Error::Internal(format!("task to JSON: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut tasks = Some(tasks);
    let stages = names
        .into_iter()
        .enumerate()
        .map(|(i, name)| StagePlan {
            name,
            tasks: if i == 0 {
                tasks.take().unwrap_or_default()
            } else {
                Vec::new()
            },
            depends_on: if i == 0 { Vec::new() } else { vec![i - 1] },
            planned: i == 0,
        })
        .collect();
    Ok((spec, Plan { stages }))
}

#[tonic::async_trait]
impl job_service_server::JobService for Api {
    async fn submit_job(
        &self,
        request: Request<v1::SubmitJobRequest>,
    ) -> Result<Response<v1::SubmitJobResponse>, Status> {
        self.check(&request, &[Role::Operator])?;
        // Only the leader plans: a follower says so before doing any IO.
        let status = self.0.raft.status();
        if status.role != RaftRole::Leader {
            return Err(Error::Raft(khop_raftstore::RaftError::NotLeader {
                leader: status.leader(),
            })
            .into());
        }
        let req = request.into_inner();
        let name = req.name.clone();
        let request_id = req.request_id.clone();
        let (spec, plan) = tokio::task::spawn_blocking(move || plan_submission(&req))
            .await
            .map_err(|e| Status::internal(format!("planning: {e}")))??;
        let spec_toml = store_spec(&spec)?;
        let reply = self
            .0
            .propose(Command::SubmitJob {
                job_id: None,
                name,
                spec_toml,
                plan,
                now_ms: now_ms(),
                request_id: request_id.clone(),
            })
            .await?;
        match reply {
            Reply::JobSubmitted { job_id, .. } => {
                tracing::info!(job = %job_id, request = request_id.as_deref().unwrap_or(""), "job submitted");
                Ok(Response::new(v1::SubmitJobResponse { job_id }))
            }
            other => Err(unexpected(&other)),
        }
    }

    async fn get_job(
        &self,
        request: Request<v1::GetJobRequest>,
    ) -> Result<Response<v1::Job>, Status> {
        self.check(&request, READERS)?;
        let id = request.into_inner().job_id;
        Ok(Response::new(get_job(&self.0, id).await?))
    }

    async fn list_jobs(
        &self,
        request: Request<v1::ListJobsRequest>,
    ) -> Result<Response<v1::ListJobsResponse>, Status> {
        self.check(&request, READERS)?;
        let jobs = self
            .0
            .read(|m| {
                m.jobs()
                    .into_iter()
                    .rev()
                    .map(|j| job_proto(m, j))
                    .collect::<Vec<_>>()
            })
            .await?;
        let mut out = Vec::with_capacity(jobs.len());
        for job in jobs {
            out.push(with_summary(job).await);
        }
        Ok(Response::new(v1::ListJobsResponse { jobs: out }))
    }

    type WatchJobStream = Pin<Box<dyn Stream<Item = Result<v1::JobEvent, Status>> + Send>>;

    async fn watch_job(
        &self,
        request: Request<v1::WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        self.check(&request, READERS)?;
        let id = request.into_inner().job_id;
        let first = get_job(&self.0, id.clone()).await?;
        let core = Arc::clone(&self.0);
        let mut changes = core.changes.subscribe();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut last = first;
            if tx
                .send(Ok(v1::JobEvent {
                    job: Some(last.clone()),
                }))
                .await
                .is_err()
            {
                return;
            }
            while !job_is_over(&last) {
                // At each committed change (at most every 50 ms), and every 500 ms in any case.
                tokio::time::sleep(Duration::from_millis(50)).await;
                tokio::select! {
                    _ = changes.changed() => {}
                    () = tokio::time::sleep(Duration::from_millis(450)) => {}
                }
                let job = match get_job(&core, id.clone()).await {
                    Ok(job) => job,
                    Err(status) => {
                        // The stream ends; the client reconnects (to the new leader).
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                };
                if job != last {
                    last = job;
                    let event = v1::JobEvent {
                        job: Some(last.clone()),
                    };
                    if tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn cancel_job(
        &self,
        request: Request<v1::CancelJobRequest>,
    ) -> Result<Response<v1::CancelJobResponse>, Status> {
        self.check(&request, &[Role::Operator])?;
        let job_id = request.into_inner().job_id;
        match self
            .0
            .propose(Command::CancelJob {
                job_id: job_id.clone(),
                now_ms: now_ms(),
            })
            .await
        {
            // Cancelling a finished job is a no-op.
            Ok(_)
            | Err(Error::Refused {
                code: khop_scheduler::ErrorCode::FailedPrecondition,
                ..
            }) => {
                tracing::info!(job = %job_id, "job cancelled");
                Ok(Response::new(v1::CancelJobResponse {}))
            }
            Err(e) => Err(e.into()),
        }
    }
}

async fn get_job(core: &Core, id: String) -> Result<v1::Job, Status> {
    let job = core
        .read(move |m| {
            m.job(&id)
                .map(|j| job_proto(m, j))
                .ok_or_else(|| Error::from(khop_scheduler::Error::UnknownJob(id)))
        })
        .await??;
    Ok(with_summary(job).await)
}

fn unexpected(reply: &Reply) -> Status {
    Status::internal(format!("unexpected reply from the scheduler: {reply:?}"))
}

fn parse_attempt(id: &str) -> Result<u64, Status> {
    id.parse()
        .map_err(|_| Status::invalid_argument(format!("attempt_id: {id:?} is not an attempt id")))
}

fn worker_state(state: WorkerState) -> v1::WorkerState {
    match state {
        WorkerState::Active => v1::WorkerState::Active,
        WorkerState::Draining => v1::WorkerState::Draining,
        WorkerState::Lost | WorkerState::Removed => v1::WorkerState::Lost,
        WorkerState::Left => v1::WorkerState::Left,
    }
}

#[tonic::async_trait]
impl cluster_service_server::ClusterService for Api {
    async fn list_workers(
        &self,
        request: Request<v1::ListWorkersRequest>,
    ) -> Result<Response<v1::ListWorkersResponse>, Status> {
        self.check(&request, &[Role::Engineer])?;
        let mut workers = self
            .0
            .read(|m| {
                m.workers()
                    .into_iter()
                    .filter(|w| w.state != WorkerState::Removed)
                    .map(|w| {
                        (
                            w.registered_ms,
                            v1::Worker {
                                id: w.id.clone(),
                                name: w.name.clone(),
                                address: w.address.clone(),
                                cores: w.cores,
                                state: worker_state(w.state) as i32,
                                running: w.attempts.iter().map(u64::to_string).collect(),
                                last_seen_unix_ms: w.last_seen_ms as i64,
                            },
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .await?;
        // Polls answered without the log were heard by this leader only.
        {
            let liveness = self.0.liveness();
            for (_, w) in &mut workers {
                if let Some(heard) = liveness.heard_from(&w.id) {
                    w.last_seen_unix_ms = w.last_seen_unix_ms.max(heard as i64);
                }
            }
        }
        workers.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
        Ok(Response::new(v1::ListWorkersResponse {
            workers: workers.into_iter().map(|(_, w)| w).collect(),
        }))
    }

    async fn drain_worker(
        &self,
        request: Request<v1::DrainWorkerRequest>,
    ) -> Result<Response<v1::DrainWorkerResponse>, Status> {
        self.check(&request, &[Role::Engineer])?;
        let worker_id = request.into_inner().worker_id;
        self.0
            .propose(Command::DrainWorker {
                worker_id: worker_id.clone(),
            })
            .await?;
        tracing::info!(worker = %worker_id, "worker draining");
        Ok(Response::new(v1::DrainWorkerResponse {}))
    }

    async fn remove_worker(
        &self,
        request: Request<v1::RemoveWorkerRequest>,
    ) -> Result<Response<v1::RemoveWorkerResponse>, Status> {
        self.check(&request, &[Role::Engineer])?;
        let worker_id = request.into_inner().worker_id;
        self.0
            .propose(Command::RemoveWorker {
                worker_id: worker_id.clone(),
            })
            .await?;
        tracing::info!(worker = %worker_id, "worker removed");
        Ok(Response::new(v1::RemoveWorkerResponse {}))
    }

    async fn cluster_status(
        &self,
        request: Request<v1::ClusterStatusRequest>,
    ) -> Result<Response<v1::ClusterStatusResponse>, Status> {
        self.check(&request, &[Role::Engineer])?;
        let s = self.0.raft.status();
        let coordinators = s
            .addresses
            .iter()
            .filter(|(id, _)| s.voters.contains(*id) || s.learners.contains(*id))
            .map(|(&id, address)| {
                let role = if id == s.id {
                    match s.role {
                        RaftRole::Leader => v1::CoordinatorRole::Leader,
                        RaftRole::Follower => v1::CoordinatorRole::Follower,
                        RaftRole::Candidate => v1::CoordinatorRole::Candidate,
                        RaftRole::PreCandidate => v1::CoordinatorRole::PreCandidate,
                        RaftRole::Learner => v1::CoordinatorRole::Learner,
                    }
                } else if s.leader_id == Some(id) {
                    v1::CoordinatorRole::Leader
                } else if s.learners.contains(&id) {
                    v1::CoordinatorRole::Learner
                } else {
                    v1::CoordinatorRole::Follower
                };
                v1::Coordinator {
                    id,
                    address: address.clone(),
                    role: role as i32,
                    is_leader: s.leader_id == Some(id),
                    match_index: s.matched.get(&id).copied().unwrap_or(0),
                    commit_index: if id == s.id { s.commit } else { 0 },
                }
            })
            .collect();
        Ok(Response::new(v1::ClusterStatusResponse {
            coordinators,
            leader_id: s.leader_id.unwrap_or(0),
            term: s.term,
            commit_index: s.commit,
            applied_index: s.applied,
            answered_by: s.id,
        }))
    }

    async fn add_coordinator(
        &self,
        request: Request<v1::AddCoordinatorRequest>,
    ) -> Result<Response<v1::AddCoordinatorResponse>, Status> {
        self.check(&request, &[Role::Engineer])?;
        let req = request.into_inner();
        if req.id == 0 {
            return Err(Status::invalid_argument("id: must not be 0"));
        }
        if !req.address.starts_with("http://") && !req.address.starts_with("https://") {
            return Err(Status::invalid_argument(
                "address: must be http://host:port or https://host:port",
            ));
        }
        self.0
            .raft
            .add_node(req.id, req.address.clone())
            .await
            .map_err(Error::from)?;
        tracing::info!(coordinator = req.id, address = %req.address, "coordinator added");
        Ok(Response::new(v1::AddCoordinatorResponse {}))
    }

    async fn remove_coordinator(
        &self,
        request: Request<v1::RemoveCoordinatorRequest>,
    ) -> Result<Response<v1::RemoveCoordinatorResponse>, Status> {
        self.check(&request, &[Role::Engineer])?;
        let id = request.into_inner().id;
        self.0.raft.remove_node(id).await.map_err(Error::from)?;
        tracing::info!(coordinator = id, "coordinator removed");
        Ok(Response::new(v1::RemoveCoordinatorResponse {}))
    }

    async fn transfer_leader(
        &self,
        request: Request<v1::TransferLeaderRequest>,
    ) -> Result<Response<v1::TransferLeaderResponse>, Status> {
        self.check(&request, &[Role::Engineer])?;
        let id = request.into_inner().id;
        self.0.raft.transfer_leader(id).await.map_err(Error::from)?;
        tracing::info!(coordinator = id, "leadership transferred");
        Ok(Response::new(v1::TransferLeaderResponse {}))
    }
}

impl Api {
    /// One look at a poll: a linearizable read decides whether it would change the state beyond the
    /// heartbeat (`Machine::quiet_poll`). If not, it is answered from that read and recorded in the
    /// leader's liveness table, writing nothing; else `Poll` is proposed as the log's own heartbeat.
    /// The read is Raft's ReadIndex: only a leader a quorum still follows can answer it.
    async fn poll_once(
        &self,
        worker_id: &str,
        (free_slots, queue_slots, leaving): (u32, u32, bool),
        running: &[u64],
    ) -> Result<Reply, Status> {
        let quiet = {
            let (worker_id, running) = (worker_id.to_string(), running.to_vec());
            self.0
                .read(move |m| {
                    m.quiet_poll(&worker_id, (free_slots, queue_slots, leaving), &running)
                })
                .await?
        };
        if let Some(quiet) = quiet {
            let status = self.0.raft.status();
            if status.role == RaftRole::Leader {
                self.0
                    .liveness()
                    .polled(status.term, now_ms(), worker_id, &quiet.renew);
            }
            return Ok(Reply::Polled {
                assignments: Vec::new(),
                cancel: quiet.cancel,
                drain: false,
            });
        }
        Ok(self
            .0
            .propose(Command::Poll {
                worker_id: worker_id.to_string(),
                term: self.0.raft.status().term,
                free_slots,
                running: running.to_vec(),
                now_ms: now_ms(),
                queue_slots,
                leaving,
            })
            .await?)
    }
}

/// A poll's reply as the worker gets it.
fn polled(reply: Reply) -> Result<Response<v1::PollTasksResponse>, Status> {
    match reply {
        Reply::Polled {
            assignments,
            cancel,
            drain,
        } => Ok(Response::new(v1::PollTasksResponse {
            tasks: assignments
                .into_iter()
                .map(|a| v1::TaskAssignment {
                    job_id: a.job_id,
                    stage: a.stage_name,
                    task_index: a.task as u32,
                    attempt_id: a.attempt_id.to_string(),
                    term: a.term,
                    payload_json: a.payload_json,
                })
                .collect(),
            drain,
            cancel: cancel.iter().map(u64::to_string).collect(),
        })),
        other => Err(unexpected(&other)),
    }
}

#[tonic::async_trait]
impl worker_service_server::WorkerService for Api {
    async fn register_worker(
        &self,
        request: Request<v1::RegisterWorkerRequest>,
    ) -> Result<Response<v1::RegisterWorkerResponse>, Status> {
        self.check(&request, &[Role::Worker])?;
        let req = request.into_inner();
        let now = now_ms();
        // Named by the leader at proposal time, so every coordinator applies the same id.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let worker_id = format!("w-{:x}", nanos % (1u128 << 64));
        let reply = self
            .0
            .propose(Command::RegisterWorker {
                worker_id,
                name: req.name.clone(),
                address: req.address.clone(),
                cores: req.cores,
                protocol_version: req.protocol_version,
                now_ms: now,
            })
            .await?;
        match reply {
            Reply::WorkerRegistered {
                worker_id,
                lease_ms,
                ..
            } => {
                tracing::info!(worker = %worker_id, name = %req.name, cores = req.cores, "worker registered");
                Ok(Response::new(v1::RegisterWorkerResponse {
                    worker_id,
                    lease_ms,
                    poll_ms: self.0.settings.poll_ms.min(lease_ms / 3).max(50),
                }))
            }
            other => Err(unexpected(&other)),
        }
    }

    async fn poll_tasks(
        &self,
        request: Request<v1::PollTasksRequest>,
    ) -> Result<Response<v1::PollTasksResponse>, Status> {
        self.check(&request, &[Role::Worker])?;
        let req = request.into_inner();
        let running = req
            .running
            .iter()
            .map(|a| parse_attempt(a))
            .collect::<Result<Vec<_>, _>>()?;
        let worker_id = req.worker_id.clone();
        let asks = (
            req.free_slots,
            req.queue_slots.min(MAX_QUEUE_SLOTS),
            req.leaving,
        );
        // Subscribed before the first look, so that a change committed meanwhile still wakes it.
        let mut changes = self.0.changes.subscribe();
        // Long poll: a worker with free slots waits here until a task is runnable or poll_ms has
        // passed. It looks again as soon as a change is committed (a stage planned, a lease expired, a
        // task failed), and every 250 ms in any case.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(self.0.settings.poll_ms);
        let reply = loop {
            let reply = self.poll_once(&worker_id, asks, &running).await?;
            let idle = matches!(&reply, Reply::Polled { assignments, cancel, drain }
                if assignments.is_empty() && cancel.is_empty() && !drain);
            if !idle || req.free_slots == 0 || tokio::time::Instant::now() >= deadline {
                break reply;
            }
            let recheck = (tokio::time::Instant::now() + Duration::from_millis(250)).min(deadline);
            tokio::select! {
                _ = changes.changed() => {}
                () = tokio::time::sleep_until(recheck) => {}
            }
        };
        polled(reply)
    }

    async fn report_task(
        &self,
        request: Request<v1::ReportTaskRequest>,
    ) -> Result<Response<v1::ReportTaskResponse>, Status> {
        self.check(&request, &[Role::Worker])?;
        let req = request.into_inner();
        let attempt_id = parse_attempt(&req.attempt_id)?;
        let outcome = match req.outcome {
            Some(v1::report_task_request::Outcome::Progress(p)) => Outcome::Progress {
                records: p.records_done,
            },
            Some(v1::report_task_request::Outcome::Succeeded(s)) => Outcome::Succeeded {
                result_json: s.result_json,
                elapsed_ms: req.elapsed_ms,
            },
            Some(v1::report_task_request::Outcome::Failed(f)) => Outcome::Failed {
                reason: f.reason,
                retryable: f.retryable,
            },
            None => return Err(Status::invalid_argument("outcome: missing")),
        };
        let result = self
            .0
            .propose(Command::ReportTask {
                worker_id: req.worker_id.clone(),
                attempt_id,
                term: req.term,
                outcome,
                now_ms: now_ms(),
            })
            .await;
        match result {
            Ok(_) => Ok(Response::new(v1::ReportTaskResponse { accepted: true })),
            // Fenced, stale term, not the holder, no longer running: the worker drops the attempt.
            Err(Error::Refused {
                code: khop_scheduler::ErrorCode::FailedPrecondition,
                message,
            }) => {
                tracing::info!(worker = %req.worker_id, attempt = attempt_id, %message, "report not accepted");
                Ok(Response::new(v1::ReportTaskResponse { accepted: false }))
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(spec: &str, base_dir: &str) -> v1::SubmitJobRequest {
        v1::SubmitJobRequest {
            spec_toml: spec.to_string(),
            output: None,
            name: "t".into(),
            base_dir: base_dir.into(),
            request_id: None,
        }
    }

    #[test]
    fn bad_submissions_name_the_problem() {
        let good = include_str!("../../datagen/src/job.toml").replace("{format}", "parquet");
        let bad_value = good.replace("partitions = 64", "partitions = \"many\"");
        let cases = [
            (
                request(&good, ""),
                tonic::Code::InvalidArgument,
                "is relative",
            ),
            (
                request(&good, "relative/dir"),
                tonic::Code::InvalidArgument,
                "base_dir",
            ),
            (
                request(&bad_value, "/x"),
                tonic::Code::InvalidArgument,
                "execution.partitions",
            ),
            (
                request(&good, "/nonexistent-khop-dir"),
                tonic::Code::InvalidArgument,
                "input",
            ),
            (
                request(&"#".repeat(MAX_SPEC_BYTES + 1), "/x"),
                tonic::Code::ResourceExhausted,
                "spec_toml",
            ),
            (
                v1::SubmitJobRequest {
                    request_id: Some("not an id".into()),
                    ..request(&good, "/x")
                },
                tonic::Code::InvalidArgument,
                "request_id",
            ),
        ];
        for (req, code, needle) in cases {
            let status = Status::from(plan_submission(&req).unwrap_err());
            assert_eq!(status.code(), code, "{}", status.message());
            assert!(status.message().contains(needle), "{}", status.message());
        }
    }
}
