//! `khop link`: runs a job on the embedded default and prints its summary. The embedded default is the
//! cluster's own code path in one process: one coordinator (a one-voter Raft group persisted in a
//! temporary directory, `khop-link-<pid>-*`, which the next run removes if a signal killed this one)
//! and `--workers` workers (one by default) sharing a slot per thread, on a 127.0.0.1 port with a
//! token made for the run; the job is submitted and followed over gRPC like any other, so what
//! `khop link` does is what a cluster does.

use std::path::PathBuf;

use anyhow::{Context, bail};
use khop_engine::{JobSpec, Summary};
use khop_proto::v1;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job spec (TOML; docs/job-spec.md).
    job: PathBuf,
    /// Write the outputs here instead of the spec's `output`.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Worker threads [default: the spec's execution.threads, or all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Workers in the process; the threads' slots are shared out among them. The outputs do not
    /// depend on it.
    #[arg(long, default_value_t = 1)]
    workers: u32,
    /// Run the engine's stages directly, without the in-process coordinator and worker (no Raft, no
    /// gRPC): the same outputs; the baseline benches/scale_out.sh measures scheduling against.
    #[arg(long)]
    direct: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.job)
        .with_context(|| format!("reading {}", args.job.display()))?;
    let base = args
        .job
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    // Checked here first, so that a bad spec is reported against its file before anything starts.
    let mut spec =
        JobSpec::from_toml(&text, &base).with_context(|| args.job.display().to_string())?;
    if let Some(output) = &args.output {
        spec.output = output.clone();
    }
    let threads = match args.threads.unwrap_or(spec.execution.threads) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    // The worker's tasks share the global pool. It exists already when `khop demo` generated the data
    // first in this process; then it has every core, the default.
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        && args.threads.is_some()
    {
        tracing::warn!("--threads {threads}: {e}");
    }
    let summary = if args.direct {
        spec.execution.threads = threads;
        khop_engine::run_job(&spec, &super::progress::Bars::new())?
    } else {
        let request = super::remote::submission(&args.job, args.output.as_deref(), None)?;
        let slots = u32::try_from(threads).unwrap_or(u32::MAX);
        let job = run_in_process(request, args.workers, slots)?;
        if job.state != v1::JobState::Succeeded as i32 {
            bail!(
                "the job is {}: {}",
                super::remote::state_name(job.state),
                job.error
            );
        }
        let output = std::path::absolute(&spec.output)?;
        serde_json::from_slice::<Summary>(
            &std::fs::read(output.join("summary.json"))
                .with_context(|| format!("reading {}/summary.json", output.display()))?,
        )
        .context("summary.json")?
    };
    if args.json {
        say!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    say!(
        "khop link: {} job, outputs under {}",
        summary.mode,
        summary.output
    );
    for s in &summary.sources {
        say!(
            "  {:<16} {:>11} records: {:>11} accepted, {:>7} rejected, {:>11} without a shared key{}",
            s.name,
            s.input,
            s.accepted,
            s.rejected,
            s.pruned,
            match s.from_cache {
                0 => String::new(),
                n if n == s.input => ", all from the cache".to_owned(),
                n => format!(", {n} from the cache"),
            }
        );
    }
    say!(
        "  {:<16} {:>11} candidate pairs, {} written, {} matches, {} entities",
        "pairs",
        summary.candidate_pairs,
        summary.pairs_written,
        summary.matches,
        summary.entities
    );
    if !summary.statuses.is_empty() {
        let statuses: Vec<String> = summary
            .statuses
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        say!(
            "  {:<16} {}; {} pairs of right records found to be one person",
            "reconciliation",
            statuses.join(", "),
            summary.duplicate_pairs
        );
    }
    for w in &summary.warnings {
        say!("  warning: {w}");
    }
    let total = summary.timings.get("total").copied().unwrap_or_default();
    say!(
        "  {:<16} {total:.2} s, peak memory {}",
        "time",
        super::peak_memory_bytes()
            .map(|b| format!("{:.0} MiB", b as f64 / (1 << 20) as f64))
            .unwrap_or_else(|| "unknown".into())
    );
    let link_only = if summary.mode == "link" {
        "reconciliation/ duplicates/ "
    } else {
        ""
    };
    say!(
        "  {:<16} pairs/ clusters/ {link_only}rejects/ model.json summary.json",
        "written"
    );
    Ok(())
}

/// The temporary Raft directory of a run: `khop-link-<pid>-<random>`, removed when the run ends.
const RAFT_DIR_PREFIX: &str = "khop-link-";

/// Removes the Raft directories that runs killed by a signal left in `dir`: those whose process is
/// gone (`/proc/<pid>` missing). Where `/proc` is not there, nothing is removed.
fn remove_stale_raft_dirs(dir: &std::path::Path) {
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(RAFT_DIR_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => {
                    tracing::info!(dir = %entry.path().display(), "removed the Raft directory of a run that was killed")
                }
                Err(e) => {
                    tracing::debug!(dir = %entry.path().display(), "a stale Raft directory: {e}")
                }
            }
        }
    }
}

/// Starts a coordinator and `workers` workers (`slots` shared out among them) on this process's
/// runtime, submits the job, follows it to its end, and stops them.
fn run_in_process(
    request: v1::SubmitJobRequest,
    workers: u32,
    slots: u32,
) -> anyhow::Result<v1::Job> {
    if workers == 0 {
        bail!("--workers: at least 1");
    }
    remove_stale_raft_dirs(&std::env::temp_dir());
    let raft_dir = tempfile::Builder::new()
        .prefix(&format!("{RAFT_DIR_PREFIX}{}-", std::process::id()))
        .tempdir()
        .context("a directory for the Raft log")?;
    let listen = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .context("a port on 127.0.0.1")?;
    let address = format!("http://{listen}");
    let token = khop_client::new_request_id();
    let coordinator = khop_coordinator::Config {
        id: 1,
        listen,
        data_dir: raft_dir.path().to_path_buf(),
        peers: [(1, address.clone())].into(),
        bootstrap: true,
        tokens: khop_coordinator::Tokens::single(&token),
        settings: khop_coordinator::Settings::default(),
    };
    let worker = |n: u32| khop_worker::Config {
        coordinators: vec![address.clone()],
        // Worker n gets its share of the slots, the first ones the remainder; each at least one.
        slots: (slots / workers + u32::from(n < slots % workers)).max(1),
        name: format!("embedded-{n}"),
        token: Some(token.clone()),
        task_delay: std::time::Duration::ZERO,
        // The coordinator and every worker are this process.
        scratch_in_process: true,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let (stop_coordinator, coordinator_stopped) = tokio::sync::oneshot::channel::<()>();
        let coordinator = tokio::spawn(khop_coordinator::serve(coordinator, async {
            let _ = coordinator_stopped.await;
        }));
        let (stop_workers, workers_stopped) = tokio::sync::watch::channel(false);
        let running: Vec<_> = (0..workers)
            .map(|n| {
                let mut stopped = workers_stopped.clone();
                tokio::spawn(khop_worker::run(
                    worker(n),
                    std::future::pending(),
                    async move {
                        let _ = stopped.wait_for(|&stop| stop).await;
                    },
                ))
            })
            .collect();
        let followed = async {
            let coordinators =
                khop_client::Coordinators::new(std::slice::from_ref(&address), Some(&token))
                    .map_err(anyhow::Error::msg)?;
            let id = super::remote::submit_job(&coordinators, request).await?;
            let bars = super::progress::Bars::new();
            super::remote::follow_job(&coordinators, &id, &bars).await
        }
        .await;
        let _ = stop_workers.send(true);
        let mut ended = Vec::new();
        for worker in running {
            ended.push(worker.await);
        }
        let _ = stop_coordinator.send(());
        let coordinator = coordinator.await;
        let job = followed?;
        for worker in ended {
            worker
                .context("a worker")?
                .map_err(|e| anyhow::anyhow!("a worker: {e}"))?;
        }
        coordinator
            .context("the coordinator")?
            .map_err(|e| anyhow::anyhow!("the coordinator: {e}"))?;
        Ok(job)
    })
}
