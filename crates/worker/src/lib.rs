//! The khop worker: registers with the coordinators, polls the leader for task leases (the poll is its
//! heartbeat), runs each leased task on one of its task threads with the engine's `run_task_with`, and
//! reports the outcome.
//!
//! Runtime view: the async runtime only polls and reports; tasks are CPU heavy and blocking, so they run
//! on dedicated threads, one per slot, started with the worker and kept for its life
//! ([`TaskThreads`]), and hand their result back through a channel. A report goes out as soon as a
//! task ends, independent of the poll loop, and the attempt stays in the heartbeat's `running` list
//! until the report is answered, so its lease never lapses while the worker is alive.
//!
//! Each poll also asks for one task more than the free slots (`queue_slots`), which the leader grants
//! while there is more work than all workers' slots: it waits in the worker until a slot frees, so the
//! next task starts the moment one ends instead of after a report and a poll have gone through Raft.
//!
//! Orders from the poll reply: `cancel` drops attempts (their threads may run on; the result is not
//! reported), `drain` ends the worker once it holds nothing.
//!
//! Leaving (`run`'s `leave`, SIGTERM for `khop worker`): the worker's polls say so and ask for no more
//! tasks, the leader marks it draining, and the worker ends once the attempts it holds (running or
//! queued) have run and been reported; its `stop` (a second signal) ends it at once.
//!
//! **Architecture invariant:** the worker holds no job state: what it knows of a job is in the task
//! payload it was leased, what it produces is in files under the job's scratch directory and in the
//! report. Killing a worker loses its running attempts only; the coordinators lease them again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use khop_client::Coordinators;
use khop_engine::storage::ScratchFiles;
use khop_engine::task::{Task, run_task_with};
use khop_proto::v1;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tonic::Code;

/// How to start a worker.
#[derive(Debug, Clone)]
pub struct Config {
    /// Coordinator addresses (`http://host:port`); any of them, the leader is found from there.
    pub coordinators: Vec<String>,
    /// Tasks run side by side.
    pub slots: u32,
    /// A name for people (host name).
    pub name: String,
    pub token: Option<String>,
    /// Holds every task this long before running it: for fault-injection tests only (a worker that is
    /// surely killed mid-task).
    pub task_delay: Duration,
    /// Every task of every job this worker runs, and every other task of those jobs, runs in this
    /// process (the embedded `khop link`): tasks then hand their files to each other in memory
    /// ([`khop_engine::storage::ScratchFiles::in_process`]). Never for a worker of a cluster.
    pub scratch_in_process: bool,
}

/// How this worker runs each task.
#[derive(Clone, Copy)]
struct TaskSettings {
    delay: Duration,
    scratch_in_process: bool,
}

/// An attempt this worker holds: running, or finished and being reported.
struct Held {
    term: u64,
    /// The task has ended and its report is on its way: a cancel that crosses the report (the
    /// coordinators committed it, or gave up on the attempt) stops nothing.
    ended: bool,
}

/// What a task thread hands back.
struct Finished {
    generation: u64,
    worker_id: String,
    attempt_id: String,
    term: u64,
    outcome: v1::report_task_request::Outcome,
    /// How long the task ran (the fault-injection delay not included).
    elapsed: Duration,
}

#[derive(Default)]
struct State {
    /// Bumped at every registration: results of attempts leased to an earlier registration are dropped.
    generation: u64,
    held: BTreeMap<String, Held>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Calls that must eventually get through (the coordinators may be electing or restarting).
const PATIENT: Duration = Duration::from_secs(3600);

/// Runs the worker until it is drained (`Ok`), refused for good (`Err`, e.g. a protocol mismatch), or
/// `stop` resolves. Once `leave` resolves it takes no more tasks and ends (`Ok`) when those it holds
/// are done and reported.
pub async fn run(
    cfg: Config,
    leave: impl std::future::Future<Output = ()> + Send,
    stop: impl std::future::Future<Output = ()> + Send,
) -> Result<(), String> {
    let coordinators = Arc::new(Coordinators::new(&cfg.coordinators, cfg.token.as_deref())?);
    let state: Shared = Arc::default();
    let slot_count = cfg.slots.max(1);
    let slots = Arc::new(Semaphore::new(slot_count as usize));
    let threads = TaskThreads::start(slot_count)?;
    let wake = Arc::new(Notify::new());
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let reporter = tokio::spawn(report_loop(
        Arc::clone(&coordinators),
        Arc::clone(&state),
        Arc::clone(&wake),
        done_rx,
    ));
    let (leaving, left) = tokio::sync::watch::channel(false);
    let result = tokio::select! {
        r = work(&cfg, &coordinators, (&state, &slots, &threads), (&wake, left), done_tx) => r,
        () = async {
            // `stop` is watched from the start: a worker that never leaves still stops.
            tokio::pin!(leave, stop);
            tokio::select! {
                () = &mut stop => {}
                () = &mut leave => {
                    tracing::info!("worker leaving: no new tasks; it ends when those it holds are done (signal again to stop now)");
                    let _ = leaving.send(true);
                    wake.notify_one();
                    stop.await;
                }
            }
        } => {
            tracing::info!("worker stopping");
            Ok(())
        }
    };
    reporter.abort();
    result
}

async fn register(
    cfg: &Config,
    coordinators: &Coordinators,
) -> Result<v1::RegisterWorkerResponse, String> {
    let request = v1::RegisterWorkerRequest {
        protocol_version: khop_proto::PROTOCOL_VERSION,
        address: String::new(),
        cores: cfg.slots,
        name: cfg.name.clone(),
    };
    loop {
        let result = coordinators
            .call(PATIENT, |c| {
                let request = request.clone();
                async move { c.workers().register_worker(request).await }
            })
            .await;
        match result {
            Ok(reply) => return Ok(reply),
            Err(s)
                if matches!(
                    s.code(),
                    Code::FailedPrecondition
                        | Code::Unauthenticated
                        | Code::PermissionDenied
                        | Code::InvalidArgument
                ) =>
            {
                return Err(format!("registration refused: {}", s.message()));
            }
            Err(s) => {
                tracing::warn!(error = %s.message(), "cannot register yet");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn work(
    cfg: &Config,
    coordinators: &Coordinators,
    (state, slots, threads): (&Shared, &Arc<Semaphore>, &TaskThreads),
    (wake, mut left): (&Notify, tokio::sync::watch::Receiver<bool>),
    done_tx: mpsc::UnboundedSender<Finished>,
) -> Result<(), String> {
    loop {
        let registered = tokio::select! {
            r = register(cfg, coordinators) => r?,
            _ = left.wait_for(|&leaving| leaving) => {
                tracing::info!("left before registering: exiting");
                return Ok(());
            }
        };
        let worker_id = registered.worker_id.clone();
        let generation = {
            let mut s = lock(state);
            s.generation += 1;
            s.held.clear();
            s.generation
        };
        let poll_every = Duration::from_millis(registered.poll_ms.max(50));
        let lease = Duration::from_millis(registered.lease_ms.max(100));
        tracing::info!(worker = %worker_id, slots = cfg.slots, "worker registered");
        loop {
            let leaving = *left.borrow();
            let (running, free, queue) = {
                let s = lock(state);
                let held = s.held.len() as u32;
                let free = cfg.slots.saturating_sub(held);
                // Room for one queued task beyond the slots.
                let queue = u32::from(held <= cfg.slots);
                let running = s.held.keys().cloned().collect::<Vec<String>>();
                if leaving {
                    (running, 0, 0)
                } else {
                    (running, free, queue)
                }
            };
            let request = v1::PollTasksRequest {
                worker_id: worker_id.clone(),
                free_slots: free,
                running,
                queue_slots: queue,
                leaving,
            };
            let polled = coordinators
                .call(lease, |c| {
                    let request = request.clone();
                    async move { c.workers().poll_tasks(request).await }
                })
                .await;
            let (pause, drained) = match polled {
                Ok(reply) => {
                    let drained = reply.drain;
                    let given = reply.tasks.len() as u32;
                    {
                        let mut s = lock(state);
                        for attempt in &reply.cancel {
                            match s.held.remove(attempt) {
                                Some(h) if h.ended => tracing::debug!(
                                    attempt = %attempt,
                                    "the coordinators no longer hold this ended attempt"
                                ),
                                Some(_) => tracing::info!(attempt = %attempt, "attempt cancelled"),
                                None => {}
                            }
                        }
                        for task in &reply.tasks {
                            s.held.insert(
                                task.attempt_id.clone(),
                                Held {
                                    term: task.term,
                                    ended: false,
                                },
                            );
                        }
                    }
                    for task in reply.tasks {
                        start(
                            task,
                            (generation, worker_id.clone()),
                            (Arc::clone(state), Arc::clone(slots), threads.clone()),
                            TaskSettings {
                                delay: cfg.task_delay,
                                scratch_in_process: cfg.scratch_in_process,
                            },
                            done_tx.clone(),
                        );
                    }
                    // With slots still free the coordinator has already waited (long poll).
                    let pause = if free > given {
                        Duration::ZERO
                    } else {
                        poll_every
                    };
                    (pause, drained)
                }
                Err(s) if matches!(s.code(), Code::NotFound | Code::FailedPrecondition) => {
                    if leaving {
                        // Its attempts were given back when it was declared lost: nothing is held.
                        tracing::warn!(worker = %worker_id, error = %s.message(), "registration lost while leaving: exiting");
                        return Ok(());
                    }
                    tracing::warn!(worker = %worker_id, error = %s.message(), "registration lost: registering again");
                    break;
                }
                Err(s) => {
                    tracing::warn!(error = %s.message(), "poll failed");
                    (poll_every, false)
                }
            };
            // Told to drain, or leaving (then even when the poll failed: with nothing held there is
            // nothing to finish or report).
            if (drained || leaving) && lock(state).held.is_empty() {
                tracing::info!(worker = %worker_id, "drained: exiting");
                return Ok(());
            }
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// The threads tasks run on: one per slot, started with the worker and kept for its life. A task
/// needs a slot's permit before it is handed over, and gives it back only when it returns (a cancelled
/// task runs on and keeps its slot), so there is always an idle thread for a task handed over.
///
/// Why not a thread per task: a 1 M dedupe runs ~150 short tasks, and each fresh thread started with
/// an empty allocator heap, so the memory its task touched came freshly from the kernel (`perf`: a
/// third of the in-process dedupe's CPU samples were in the kernel, most of them clearing pages,
/// against an eighth when the same stages run on long-lived threads, `khop link --direct`). A kept
/// thread also keeps the engine's per-thread memo of names and provinces from one task to the next.
#[derive(Clone)]
struct TaskThreads {
    sender: std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>,
}

impl TaskThreads {
    fn start(count: u32) -> Result<Self, String> {
        let (sender, receiver) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..count {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("task-{n}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next task, never while one runs.
                        let next = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        match next {
                            // A task's own panic is caught in `run_on_thread`; this catches the
                            // rest, so that a thread is never lost and a slot never left without one.
                            Ok(run) => {
                                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
                            }
                            // The worker has ended: every sender is gone.
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| format!("cannot start a task thread: {e}"))?;
        }
        Ok(TaskThreads { sender })
    }
}

/// Runs a task on a task thread (never on the runtime that heartbeats) once a slot is free; a queued
/// attempt cancelled meanwhile never starts.
fn start(
    task: v1::TaskAssignment,
    (generation, worker_id): (u64, String),
    (state, slots, threads): (Shared, Arc<Semaphore>, TaskThreads),
    settings: TaskSettings,
    done: mpsc::UnboundedSender<Finished>,
) {
    tokio::spawn(async move {
        let Ok(slot) = slots.acquire_owned().await else {
            return;
        };
        let held = {
            let s = lock(&state);
            s.generation == generation && s.held.contains_key(&task.attempt_id)
        };
        if held {
            run_on_thread(
                &threads,
                task,
                (generation, worker_id),
                settings,
                done,
                slot,
            );
        }
    });
}

fn run_on_thread(
    threads: &TaskThreads,
    task: v1::TaskAssignment,
    (generation, worker_id): (u64, String),
    settings: TaskSettings,
    done: mpsc::UnboundedSender<Finished>,
    slot: OwnedSemaphorePermit,
) {
    let attempt_id = task.attempt_id.clone();
    tracing::info!(job = %task.job_id, stage = %task.stage, task = task.task_index, attempt = %attempt_id, "task started");
    let run = Box::new(move || {
        std::thread::sleep(settings.delay);
        let started = std::time::Instant::now();
        let outcome = std::panic::catch_unwind(|| {
            execute(
                &task.payload_json,
                &task.attempt_id,
                settings.scratch_in_process,
            )
        })
        .unwrap_or_else(|_| {
            v1::report_task_request::Outcome::Failed(v1::TaskFailed {
                reason: "the task panicked".into(),
                retryable: true,
            })
        });
        let elapsed = started.elapsed();
        drop(slot);
        let ok = matches!(outcome, v1::report_task_request::Outcome::Succeeded(_));
        tracing::info!(job = %task.job_id, stage = %task.stage, task = task.task_index, attempt = %task.attempt_id, ok, seconds = elapsed.as_secs_f64(), "task ended");
        let _ = done.send(Finished {
            generation,
            worker_id,
            attempt_id: task.attempt_id,
            term: task.term,
            outcome,
            elapsed,
        });
    });
    if threads.sender.send(run).is_err() {
        tracing::error!(attempt = %attempt_id, "the task threads have stopped");
    }
}

fn execute(
    payload: &str,
    attempt_id: &str,
    scratch_in_process: bool,
) -> v1::report_task_request::Outcome {
    use v1::report_task_request::Outcome;
    let failed =
        |reason: String, retryable: bool| Outcome::Failed(v1::TaskFailed { reason, retryable });
    let task: Task = match serde_json::from_str(payload) {
        Ok(task) => task,
        Err(e) => {
            return failed(
                format!("the task payload is not an engine task: {e}"),
                false,
            );
        }
    };
    let files = if scratch_in_process {
        ScratchFiles::in_process(&task.spec)
    } else {
        ScratchFiles::of(&task.spec)
    };
    match files.and_then(|files| run_task_with(&task, &format!("a{attempt_id}"), &files)) {
        Ok(output) => match serde_json::to_string(&output) {
            Ok(result_json) => Outcome::Succeeded(v1::TaskSucceeded { result_json }),
            Err(e) => failed(format!("task output to JSON: {e}"), false),
        },
        // A bad spec or input fails the same way on every worker; anything else (IO) may not.
        Err(e) => failed(e.to_string(), !e.is_permanent()),
    }
}

/// Reports every finished attempt that is still held, each as soon as it ends.
async fn report_loop(
    coordinators: Arc<Coordinators>,
    state: Shared,
    wake: Arc<Notify>,
    mut done: mpsc::UnboundedReceiver<Finished>,
) {
    while let Some(finished) = done.recv().await {
        let coordinators = Arc::clone(&coordinators);
        let state = Arc::clone(&state);
        let wake = Arc::clone(&wake);
        tokio::spawn(async move {
            let held = {
                let mut s = lock(&state);
                let generation = s.generation;
                match s.held.get_mut(&finished.attempt_id) {
                    Some(h) if generation == finished.generation && h.term == finished.term => {
                        h.ended = true;
                        true
                    }
                    _ => false,
                }
            };
            if held {
                report(&coordinators, &finished).await;
            }
            {
                let mut s = lock(&state);
                if s.generation == finished.generation {
                    s.held.remove(&finished.attempt_id);
                }
            }
            wake.notify_one();
        });
    }
}

async fn report(coordinators: &Coordinators, finished: &Finished) {
    let request = v1::ReportTaskRequest {
        worker_id: finished.worker_id.clone(),
        attempt_id: finished.attempt_id.clone(),
        term: finished.term,
        outcome: Some(finished.outcome.clone()),
        elapsed_ms: u64::try_from(finished.elapsed.as_millis()).unwrap_or(u64::MAX),
    };
    let result = coordinators
        .call(Duration::from_secs(60), |c| {
            let request = request.clone();
            async move { c.workers().report_task(request).await }
        })
        .await;
    match result {
        Ok(reply) if reply.accepted => {
            tracing::info!(attempt = %finished.attempt_id, "reported");
        }
        Ok(_) => {
            tracing::info!(attempt = %finished.attempt_id, "report not accepted: attempt dropped")
        }
        Err(s) => {
            tracing::warn!(attempt = %finished.attempt_id, error = %s.message(), "report failed: attempt dropped")
        }
    }
}

#[cfg(test)]
mod tests {
    use khop_engine::JobSpec;
    use khop_engine::task::Planner;

    use super::*;

    /// A task of the first stage (standardising the civil servants) of the generated data's job over
    /// CSV files in `dir`, the civil servants' file holding `civil_servants`.
    fn first_task(dir: &std::path::Path, civil_servants: &[u8]) -> String {
        for (input, text) in [
            ("civil_servants", civil_servants),
            ("population", &b"record_id,full_name\n1,An\n"[..]),
        ] {
            std::fs::create_dir_all(dir.join(input)).unwrap();
            std::fs::write(dir.join(input).join("part-00000.csv"), text).unwrap();
        }
        let text = include_str!("../../datagen/src/job.toml").replace("{format}", "csv");
        let spec = JobSpec::from_toml(&text, dir).unwrap();
        let stage = Planner::new(spec).unwrap().next(&[]).unwrap().unwrap();
        serde_json::to_string(&stage.tasks[0]).unwrap()
    }

    fn failure(outcome: v1::report_task_request::Outcome) -> (String, bool) {
        match outcome {
            v1::report_task_request::Outcome::Failed(f) => (f.reason, f.retryable),
            other => panic!("not a failure: {other:?}"),
        }
    }

    /// A failure every attempt would meet is reported as not retryable, naming the file and the
    /// column; one another attempt may get past is retryable.
    #[test]
    fn bad_inputs_fail_for_good_and_io_errors_for_a_while() {
        let dir = std::env::temp_dir().join(format!("khop-worker-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cases: [(&[u8], &str); 4] = [
            (
                b"ma_ho_so,full_name\n1,An\n",
                "column `record_id` not found",
            ),
            (b"", "the file is empty: no header"),
            // A header (after a byte order mark) of the id column alone: the first field's column
            // is missing.
            (b"\xEF\xBB\xBFrecord_id\n", "not found (columns: record_id)"),
            (b"\xFF\xFEr\0", "UTF-16"),
        ];
        for (n, (text, message)) in cases.into_iter().enumerate() {
            let payload = first_task(&dir.join(n.to_string()), text);
            let (reason, retryable) = failure(execute(&payload, "1", false));
            assert!(!retryable, "{reason}");
            assert!(reason.contains(message), "{reason}");
            assert!(reason.contains("part-00000.csv"), "{reason}");
        }
        // The file gone since the task was planned: an IO error, which another attempt (on a worker
        // that sees the file) may not meet.
        let gone = dir.join("gone");
        let payload = first_task(&gone, b"record_id\n");
        std::fs::remove_file(gone.join("civil_servants/part-00000.csv")).unwrap();
        let (reason, retryable) = failure(execute(&payload, "1", false));
        assert!(retryable, "{reason}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
