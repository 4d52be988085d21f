//! `khop eval`: quality of a job's outputs against a truth table.

use std::path::PathBuf;

use khop_engine::eval::evaluate;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The truth directory (`khop datagen`'s `truth/`).
    #[arg(long)]
    truth: PathBuf,
    /// The job's output directory.
    #[arg(long)]
    output: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let report = evaluate(&args.truth, &args.output)?;
    std::fs::write(
        args.output.join("eval.json"),
        serde_json::to_string_pretty(&report)? + "\n",
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("khop eval: match threshold {}", report.match_threshold);
    for (name, m) in [("pairs", &report.pairs), ("clusters", &report.clusters)] {
        println!(
            "  {name:<10} precision {:.5}  recall {:.5}  F1 {:.5}  ({} true, {} predicted, {} correct)",
            m.precision, m.recall, m.f1, m.true_pairs, m.predicted_pairs, m.true_positives
        );
    }
    if !report.no_counterpart.is_empty() {
        let statuses: Vec<String> = report
            .no_counterpart
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!("  records with no counterpart: {}", statuses.join(", "));
    }
    println!("  recall by corruption class:");
    for (class, r) in &report.recall_by_class {
        println!(
            "    {class:<24} {:.5}  ({} of {})",
            r.recall, r.found, r.true_pairs
        );
    }
    println!("  written: {}", args.output.join("eval.json").display());
    Ok(())
}
