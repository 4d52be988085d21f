//! `khop link`: runs a job on the embedded default and prints its summary. The embedded default is the
//! cluster's own code path in one process: one coordinator (a one-voter Raft group persisted in a
//! temporary directory) and one worker with a slot per thread, on a 127.0.0.1 port with a token made
//! for the run; the job is submitted and followed over gRPC like any other, so what `khop link` does
//! is what a cluster does.

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
        let job = run_in_process(request, u32::try_from(threads).unwrap_or(u32::MAX))?;
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
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    println!(
        "khop link: {} job, outputs under {}",
        summary.mode, summary.output
    );
    for s in &summary.sources {
        println!(
            "  {:<16} {:>11} records: {:>11} accepted, {:>7} rejected, {:>11} without a shared key",
            s.name, s.input, s.accepted, s.rejected, s.pruned
        );
    }
    println!(
        "  {:<16} {:>11} candidate pairs, {} written, {} matches, {} entities",
        "pairs", summary.candidate_pairs, summary.pairs_written, summary.matches, summary.entities
    );
    if !summary.statuses.is_empty() {
        let statuses: Vec<String> = summary
            .statuses
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!("  {:<16} {}", "reconciliation", statuses.join(", "));
    }
    for w in &summary.warnings {
        println!("  warning: {w}");
    }
    let total = summary.timings.get("total").copied().unwrap_or_default();
    println!(
        "  {:<16} {total:.2} s, peak memory {}",
        "time",
        super::peak_memory_bytes()
            .map(|b| format!("{:.0} MiB", b as f64 / (1 << 20) as f64))
            .unwrap_or_else(|| "unknown".into())
    );
    println!(
        "  {:<16} pairs/ clusters/ reconciliation/ rejects/ model.json summary.json",
        "written"
    );
    Ok(())
}

/// Starts a coordinator and a worker on this process's runtime, submits the job, follows it to its
/// end, and stops both.
fn run_in_process(request: v1::SubmitJobRequest, slots: u32) -> anyhow::Result<v1::Job> {
    let raft_dir = tempfile::tempdir().context("a directory for the Raft log")?;
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
    let worker = khop_worker::Config {
        coordinators: vec![address.clone()],
        slots,
        name: "embedded".into(),
        token: Some(token.clone()),
        task_delay: std::time::Duration::ZERO,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let (stop_coordinator, coordinator_stopped) = tokio::sync::oneshot::channel::<()>();
        let (stop_worker, worker_stopped) = tokio::sync::oneshot::channel::<()>();
        let coordinator = tokio::spawn(khop_coordinator::serve(coordinator, async {
            let _ = coordinator_stopped.await;
        }));
        let worker = tokio::spawn(khop_worker::run(worker, async {
            let _ = worker_stopped.await;
        }));
        let followed = async {
            let coordinators = khop_client::Coordinators::new(&[address], Some(&token))
                .map_err(anyhow::Error::msg)?;
            let id = super::remote::submit_job(&coordinators, request).await?;
            let bars = super::progress::Bars::new();
            super::remote::follow_job(&coordinators, &id, &bars).await
        }
        .await;
        let _ = stop_worker.send(());
        let _ = stop_coordinator.send(());
        let (worker, coordinator) = (worker.await, coordinator.await);
        let job = followed?;
        worker
            .context("the worker")?
            .map_err(|e| anyhow::anyhow!("the worker: {e}"))?;
        coordinator
            .context("the coordinator")?
            .map_err(|e| anyhow::anyhow!("the coordinator: {e}"))?;
        Ok(job)
    })
}
