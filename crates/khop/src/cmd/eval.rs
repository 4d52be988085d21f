//! `khop eval`: quality of a job's outputs against a truth table.

use std::path::PathBuf;

use khop_engine::eval::{TruthColumns, evaluate};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The truth: a CSV or Parquet file, or a directory of them (`khop datagen`'s `truth/`). Every
    /// column is read as text.
    #[arg(long)]
    truth: PathBuf,
    /// The job's output directory.
    #[arg(long)]
    output: PathBuf,
    /// The truth's record id column.
    #[arg(long, value_name = "COL", default_value = "record_id")]
    truth_id: String,
    /// The truth's entity id column: records with equal values are the same entity.
    #[arg(long, value_name = "COL", default_value = "person_id")]
    truth_entity: String,
    /// The truth's source column, holding the job's input names [default: `source` where a file has
    /// one; without one, record ids must be unique across the truth].
    #[arg(long, value_name = "COL")]
    truth_source: Option<String>,
    /// The truth's corruption classes, a list or text separated by `;`, for recall by class
    /// [default: `corruptions` where a file has one].
    #[arg(long, value_name = "COL")]
    truth_corruptions: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let columns = TruthColumns {
        id: args.truth_id,
        entity: args.truth_entity,
        source: args.truth_source,
        corruptions: args.truth_corruptions,
    };
    let report = evaluate(&args.truth, &args.output, &columns)?;
    std::fs::write(
        args.output.join("eval.json"),
        serde_json::to_string_pretty(&report)? + "\n",
    )?;
    if args.json {
        say!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    say!("khop eval: match threshold {}", report.match_threshold);
    for (name, m) in [("pairs", &report.pairs), ("clusters", &report.clusters)] {
        say!(
            "  {name:<10} precision {:.5}  recall {:.5}  F1 {:.5}  ({} true, {} predicted, {} correct)",
            m.precision,
            m.recall,
            m.f1,
            m.true_pairs,
            m.predicted_pairs,
            m.true_positives
        );
    }
    if let Some(b) = &report.best_match {
        say!(
            "  {:<10} precision {:.5}  recall {:.5}  F1 {:.5}  ({} left records with a partner, {} matched, {} correct)",
            "best match",
            b.precision,
            b.recall,
            b.f1,
            b.with_partner,
            b.matched,
            b.correct
        );
    }
    if !report.no_counterpart.is_empty() {
        let statuses: Vec<String> = report
            .no_counterpart
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        say!("  records with no counterpart: {}", statuses.join(", "));
    }
    if !report.recall_by_class.is_empty() {
        say!("  recall by corruption class:");
    }
    for (class, r) in &report.recall_by_class {
        say!(
            "    {class:<24} {:.5}  ({} of {})",
            r.recall,
            r.found,
            r.true_pairs
        );
    }
    say!("  written: {}", args.output.join("eval.json").display());
    Ok(())
}
