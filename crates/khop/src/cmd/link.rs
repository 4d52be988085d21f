//! `khop link`: runs a job in-process on the embedded default and prints its summary.

use std::path::PathBuf;

use anyhow::Context;
use khop_engine::{JobSpec, run_job};

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
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.job)
        .with_context(|| format!("reading {}", args.job.display()))?;
    let base = args
        .job
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let mut spec =
        JobSpec::from_toml(&text, &base).with_context(|| args.job.display().to_string())?;
    if let Some(output) = args.output {
        spec.output = output;
    }
    if let Some(threads) = args.threads {
        spec.execution.threads = threads;
    }
    let summary = run_job(&spec, &super::progress::Bars::new())?;
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
