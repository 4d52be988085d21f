//! `khop coordinator` and `khop worker`: the long-running roles.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};

#[derive(Debug, clap::Args)]
pub struct CoordinatorArgs {
    /// This coordinator's id: 1, 2, 3, ... (never 0, never reused).
    #[arg(long)]
    id: u64,
    /// The socket to serve the API and the Raft transport on, e.g. 0.0.0.0:7400.
    #[arg(long)]
    listen: SocketAddr,
    /// The Raft log and snapshots of this coordinator.
    #[arg(long)]
    data_dir: PathBuf,
    /// Every coordinator as ID=http://host:port, comma-separated, this one's included.
    #[arg(long, value_delimiter = ',')]
    peers: Vec<String>,
    /// On the seed only: create the cluster when the data dir is empty, then add the other peers.
    #[arg(long)]
    bootstrap: bool,
    /// Tokens and their roles (TOML: `[tokens]` then `"<token>" = "operator"`); default: KHOP_TOKEN as
    /// a single token with every role.
    #[arg(long)]
    auth: Option<PathBuf>,
    /// How long a task lease lasts without a heartbeat renewing it.
    #[arg(long, default_value_t = 10_000)]
    lease_ms: u64,
    /// A worker silent for this long is lost and its attempts run elsewhere.
    #[arg(long, default_value_t = 30_000)]
    worker_timeout_ms: u64,
    /// Retries of a task after retryable failures.
    #[arg(long, default_value_t = 4)]
    retry_budget: u32,
    /// A worker gone (lost, removed, or left after a drain) is forgotten this long after it was last
    /// heard from; until then `khop workers` lists it.
    #[arg(long, default_value_t = khop_coordinator::SchedulerConfig::DEFAULT_FORGET_WORKERS_AFTER_MS)]
    forget_workers_after_ms: u64,
    /// A finished job is forgotten this long after it finished (`khop status` no longer lists it); its
    /// outputs and summary.json stay where they were written.
    #[arg(long, default_value_t = khop_coordinator::SchedulerConfig::DEFAULT_FORGET_JOBS_AFTER_MS)]
    forget_jobs_after_ms: u64,
    /// How long a worker's poll waits for work.
    #[arg(long, default_value_t = 1000)]
    poll_ms: u64,
}

fn parse_peers(items: &[String]) -> anyhow::Result<BTreeMap<u64, String>> {
    let mut peers = BTreeMap::new();
    for item in items.iter().filter(|i| !i.trim().is_empty()) {
        let (id, address) = item
            .split_once('=')
            .with_context(|| format!("--peers: {item:?} is not ID=http://host:port"))?;
        let id: u64 = id
            .trim()
            .parse()
            .with_context(|| format!("--peers: {id:?} is not a coordinator id"))?;
        let address = address.trim();
        khop_client::check_address(address).map_err(|e| anyhow::anyhow!("--peers: {e}"))?;
        peers.insert(id, address.to_owned());
    }
    Ok(peers)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Resolves on SIGINT or SIGTERM.
async fn interrupted() {
    signalled(1).await;
}

/// Resolves once the process has had `count` SIGINT or SIGTERM signals. The handler (the `ctrlc`
/// crate, "termination") runs on a thread of its own and is installed once, by the first call; tokio's
/// signal feature would change the build of every crate that depends on tokio.
async fn signalled(count: u32) {
    static SIGNALS: std::sync::OnceLock<Result<tokio::sync::watch::Sender<u32>, String>> =
        std::sync::OnceLock::new();
    let signals = SIGNALS.get_or_init(|| {
        let (tx, _) = tokio::sync::watch::channel(0u32);
        let handler = tx.clone();
        ctrlc::set_handler(move || handler.send_modify(|n| *n += 1))
            .map(|()| tx)
            .map_err(|e| e.to_string())
    });
    match signals {
        Ok(tx) => {
            let _ = tx.subscribe().wait_for(|&n| n >= count).await;
        }
        Err(e) => {
            tracing::warn!("no signal handler ({e}); stop with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}

pub fn coordinator(args: CoordinatorArgs) -> anyhow::Result<()> {
    let peers = parse_peers(&args.peers)?;
    if !peers.contains_key(&args.id) {
        bail!(
            "--peers must give this coordinator's own address ({}=http://...)",
            args.id
        );
    }
    let tokens = match (&args.auth, khop_client::token_from_env()) {
        (Some(path), _) => khop_coordinator::Tokens::from_file(path).map_err(anyhow::Error::msg)?,
        (None, Some(token)) => khop_coordinator::Tokens::single(&token),
        (None, None) => bail!("no tokens: give --auth FILE or set KHOP_TOKEN"),
    };
    let cfg = khop_coordinator::Config {
        id: args.id,
        listen: args.listen,
        data_dir: args.data_dir,
        peers,
        bootstrap: args.bootstrap,
        tokens,
        settings: khop_coordinator::Settings {
            scheduler: khop_coordinator::SchedulerConfig {
                lease_ms: args.lease_ms,
                worker_timeout_ms: args.worker_timeout_ms,
                retry_budget: args.retry_budget,
                forget_workers_after_ms: args.forget_workers_after_ms,
                forget_jobs_after_ms: args.forget_jobs_after_ms,
            },
            poll_ms: args.poll_ms,
            ..Default::default()
        },
    };
    runtime()?
        .block_on(khop_coordinator::serve(cfg, interrupted()))
        .map_err(anyhow::Error::msg)
}

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// Coordinator addresses, comma-separated [default: KHOP_COORDINATORS].
    #[arg(long, value_delimiter = ',')]
    coordinators: Vec<String>,
    /// Tasks run side by side [default: --threads, or every core]. A compare or score task uses one
    /// thread, a standardise, train or write task the whole pool: one slot per thread keeps every
    /// core busy in every stage.
    #[arg(long)]
    slots: Option<u32>,
    /// A name for people [default: the host name].
    #[arg(long)]
    name: Option<String>,
    /// Threads for the CPU work of this worker's tasks, shared by its slots [default: every core].
    /// Several workers on one host (benches/scale_out.sh) each get their share.
    #[arg(long)]
    threads: Option<usize>,
}

pub fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .map_err(|e| anyhow::anyhow!("--threads {threads}: {e}"))?;
    }
    let name = args.name.unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "worker".into())
    });
    let cfg = khop_worker::Config {
        coordinators: super::remote::addresses(&args.coordinators)?,
        slots: args
            .slots
            .or(args.threads.and_then(|t| u32::try_from(t).ok()))
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32))
            .max(1),
        name,
        token: khop_client::token_from_env(),
        task_delay: std::time::Duration::from_millis(
            std::env::var("KHOP_WORKER_TASK_DELAY_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        ),
        // Other workers, on other hosts, read this one's files.
        scratch_in_process: false,
    };
    runtime()?
        .block_on(khop_worker::run(cfg, signalled(1), signalled(2)))
        .map_err(anyhow::Error::msg)
}
