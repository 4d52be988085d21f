//! `khop`: one binary for every role. On one machine it runs everything in-process on local files (the
//! embedded default); the same binary runs as coordinator or worker on many hosts.
//!
//! This file only parses the command line and dispatches; each subcommand lives in `cmd/`.

mod cmd;

/// mimalloc rather than glibc's malloc: standardising and comparing allocate and free many buffers
/// of a few hundred KiB to a few MiB from every thread, which glibc maps and returns to the kernel
/// again and again (page faults and page clearing were a seventh of a link job's CPU time).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "khop",
    version,
    about = "Record linkage for Vietnamese national databases"
)]
struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// The main job end to end on one machine: generate data, link it, evaluate, show the outputs.
    Demo(cmd::demo::Args),
    /// Generate a synthetic population database and civil-servant database with ground truth.
    Datagen(cmd::datagen::Args),
    /// Run a linkage job in-process (the embedded default: one coordinator and one worker in this
    /// process) and write its outputs.
    Link(cmd::link::Args),
    /// Precision, recall and F1 of a job's outputs against a truth table.
    Eval(cmd::eval::Args),
    /// Run a coordinator: one Raft member of the cluster's control plane.
    Coordinator(cmd::serve::CoordinatorArgs),
    /// Run a worker: polls the coordinators for tasks and runs them.
    Worker(cmd::serve::WorkerArgs),
    /// Submit a job to the cluster; prints its id.
    Submit(cmd::remote::SubmitArgs),
    /// A job's (or every job's) state and progress.
    Status(cmd::remote::StatusArgs),
    /// Follow a job until it ends, a progress bar per stage.
    Watch(cmd::remote::JobArgs),
    /// Cancel a job.
    Cancel(cmd::remote::JobArgs),
    /// The cluster's workers.
    Workers(cmd::remote::WorkersArgs),
    /// The coordinators; drain or remove workers, add or remove coordinators, transfer leadership.
    Cluster(cmd::remote::ClusterArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The long-running roles log what they do; the commands that run a job here show progress bars
    // and a summary instead (their in-process coordinator and worker only warn).
    let default_level = match cli.command {
        Command::Demo(_) | Command::Link(_) => "warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KHOP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Datagen(args) => cmd::datagen::run(args),
        Command::Link(args) => cmd::link::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Coordinator(args) => cmd::serve::coordinator(args),
        Command::Worker(args) => cmd::serve::worker(args),
        Command::Submit(args) => cmd::remote::submit(args),
        Command::Status(args) => cmd::remote::status(args),
        Command::Watch(args) => cmd::remote::watch(args),
        Command::Cancel(args) => cmd::remote::cancel(args),
        Command::Workers(args) => cmd::remote::workers(args),
        Command::Cluster(args) => cmd::remote::cluster(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
