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

/// mimalloc's `mi_option_purge_delay` (its place in `mi_option_e`, mimalloc.h of the v3 sources that
/// libmimalloc-sys builds; the crate names no constant for it). The test below checks the index
/// against the option's documented default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long memory freed to mimalloc stays with the process before it is returned to the kernel:
/// 10 s instead of mimalloc's 1 s. A job's stages free the buffers of one stage and allocate those of
/// the next more than a second later; returned memory is faulted in and cleared again by the kernel
/// (with the 1 s default, system time was a fifth of a 1 M dedupe's CPU time and the link of 250 k
/// against 10 M took 8% longer: benches/results/2026-11-24-vs-splink.md). An idle worker still gives its memory back, ten
/// seconds after its last task. `MIMALLOC_PURGE_DELAY` in the environment wins. The delay is not the
/// whole story: mimalloc v3 still hands some 64 KiB slices back at once (`strace -e madvise`: about
/// 1,200 per 1 M dedupe run in process, 500 with `khop link --direct`); `-1` (never) removes them, but
/// was no faster in alternated runs (benches/results/2026-11-24-vs-splink.md), and a worker must give
/// memory back.
const PURGE_DELAY_MS: std::ffi::c_long = 10_000;

/// mimalloc's `mi_option_allow_thp` (its place in `mi_option_e`, as [`MI_OPTION_PURGE_DELAY`]).
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// No transparent huge pages: mimalloc asks the kernel for them by default (`madvise(MADV_HUGEPAGE)`
/// on the arenas it maps before `main`), and each first touch of a 2 MiB region is then a 2 MiB page
/// to clear, used or not. Measured after another process had freed 1.3 GB (as Splink does before
/// khop in the benchmark, and as on any busy host), `MIMALLOC_ALLOW_THP=0` against the default: system
/// time halved on the 10 M link (2.04 -> 1.06 s, wall 9.39 -> 8.98 s) and fell by a third on the 1 M
/// dedupe (0.88 -> 0.59 s, wall 2.21 -> 2.12 s), peak memory 40-50 MB lower
/// (benches/results/2026-11-25-vs-splink.md, `5a19edd`). Setting mimalloc's option in `main` comes too late for the arenas already advised, so
/// `tune_allocator` also turns THP off for the process, as mimalloc does when the variable is set.
/// `MIMALLOC_ALLOW_THP` in the environment wins.
const ALLOW_THP: std::ffi::c_long = 0;

fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        set_allocator_option(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
    }
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        set_allocator_option(MI_OPTION_ALLOW_THP, ALLOW_THP);
        // SAFETY: `prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)` takes integers only and sets a flag of this
        // process (kept by its children); pages already faulted in are left as they are. Failure (an
        // old kernel) leaves THP as it was, which is only slower.
        #[cfg(target_os = "linux")]
        #[allow(unsafe_code)]
        let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

fn set_allocator_option(option: libmimalloc_sys::mi_option_t, value: std::ffi::c_long) {
    // SAFETY: `mi_option_set` takes no pointer; it stores an integer in mimalloc's table of options,
    // which mimalloc reads atomically, and may be called at any time from any thread.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(option, value)
    };
}

use clap::{Parser, Subcommand};

const ENVIRONMENT: &str = "\
Environment:
  KHOP_COORDINATORS  coordinator addresses (http://host:port, comma-separated) for the cluster
                     commands and workers, when --coordinators is not given
  KHOP_TOKEN         the bearer token the cluster commands and workers send (docs/operations.md)
  KHOP_LOG           log filter, e.g. `info` or `khop_coordinator=debug` (default: warn for demo
                     and link, info for the others)";

#[derive(Debug, Parser)]
#[command(
    name = "khop",
    version,
    about = "Record linkage for Vietnamese national databases",
    after_help = ENVIRONMENT
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
    /// What each column of an input holds (empty values, shapes, distinct values, what each
    /// standardiser reads), never a rare value; --suggest writes a job spec for the inputs.
    Profile(cmd::profile::Args),
    /// Run a coordinator: one Raft member of the cluster's control plane.
    Coordinator(cmd::serve::CoordinatorArgs),
    /// Run a worker: polls the coordinators for tasks and runs them. SIGTERM or SIGINT: it takes no
    /// more tasks and exits 0 once those it holds are done (a second signal: at once).
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
    /// Whether each coordinator is ready (up and knows a leader); exit status 1 if any is not. Needs
    /// no token: for container health checks.
    Health(cmd::remote::HealthArgs),
}

fn main() -> std::process::ExitCode {
    tune_allocator();
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
        // Colours for a person at a terminal only: a log file, `docker logs` or journald gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Datagen(args) => cmd::datagen::run(args),
        Command::Link(args) => cmd::link::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Profile(args) => cmd::profile::run(args),
        Command::Coordinator(args) => cmd::serve::coordinator(args),
        Command::Worker(args) => cmd::serve::worker(args),
        Command::Submit(args) => cmd::remote::submit(args),
        Command::Status(args) => cmd::remote::status(args),
        Command::Watch(args) => cmd::remote::watch(args),
        Command::Cancel(args) => cmd::remote::cancel(args),
        Command::Workers(args) => cmd::remote::workers(args),
        Command::Cluster(args) => cmd::remote::cluster(args),
        Command::Health(args) => cmd::remote::health(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every flag and argument of every command says what it is for in `--help`.
    #[test]
    fn every_flag_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.get_help().is_none() && !["help", "version"].contains(&id) {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(
            &<super::Cli as clap::CommandFactory>::command(),
            "khop",
            &mut missing,
        );
        assert!(missing.is_empty(), "without help: {missing:?}");
    }
    /// `MI_OPTION_PURGE_DELAY` and `MI_OPTION_ALLOW_THP` are those options: each reads mimalloc's
    /// default for its option (1000 ms and 1 in v3's options.c; their neighbours' defaults differ)
    /// before `tune_allocator`, and what it sets after.
    #[test]
    fn the_allocator_options_set_are_the_purge_delay_and_huge_pages() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some()
            || std::env::var_os("MIMALLOC_ALLOW_THP").is_some()
        {
            return; // mimalloc reads the environment's values instead
        }
        // SAFETY: as in `tune_allocator`: an integer read from mimalloc's table of options.
        #[allow(unsafe_code)]
        let get = |option| unsafe { libmimalloc_sys::mi_option_get(option) };
        assert_eq!(get(super::MI_OPTION_PURGE_DELAY), 1000);
        assert_eq!(get(super::MI_OPTION_ALLOW_THP), 1);
        super::tune_allocator();
        assert_eq!(get(super::MI_OPTION_PURGE_DELAY), super::PURGE_DELAY_MS);
        assert_eq!(get(super::MI_OPTION_ALLOW_THP), super::ALLOW_THP);
        // SAFETY: as in `tune_allocator`: integers only.
        #[cfg(target_os = "linux")]
        #[allow(unsafe_code)]
        let thp_disabled = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        #[cfg(target_os = "linux")]
        assert_eq!(thp_disabled, 1, "THP off for the process");
    }
}
