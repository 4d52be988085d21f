//! `khop demo`: the main job on the embedded default, end to end: generate a dataset, link the civil
//! servants against the population with the job `khop datagen` writes, and evaluate against the truth.

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Population records.
    #[arg(long, default_value_t = 1_000_000)]
    population: u64,
    /// Civil-servant records [default: 2.5% of --population].
    #[arg(long)]
    civil_servants: Option<u64>,
    /// The data's seed: the same seed and sizes give the same data.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Where the data and the outputs go.
    #[arg(long, default_value = "out/demo")]
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    use clap::Parser;
    let population = args.population.to_string();
    let seed = args.seed.to_string();
    let data = args.out.join("data");
    let mut datagen = vec![
        "datagen",
        "--population",
        &population,
        "--seed",
        &seed,
        "--out",
        data.to_str().unwrap_or("out/demo/data"),
    ];
    let civil_servants = args.civil_servants.map(|m| m.to_string());
    if let Some(m) = &civil_servants {
        datagen.extend(["--civil-servants", m]);
    }
    let parse = |argv: &[&str]| {
        crate::Cli::try_parse_from(std::iter::once("khop").chain(argv.iter().copied()))
    };
    let crate::Command::Datagen(datagen) = parse(&datagen)?.command else {
        unreachable!("parsed as datagen")
    };
    super::datagen::run(datagen)?;
    say!("");
    let job = data.join("job.toml");
    let link_dir = data.join("link");
    let (job, link_dir) = (job.to_string_lossy(), link_dir.to_string_lossy());
    let crate::Command::Link(link) = parse(&["link", &job])?.command else {
        unreachable!("parsed as link")
    };
    super::link::run(link)?;
    say!("");
    let truth = data.join("truth");
    let crate::Command::Eval(eval) = parse(&[
        "eval",
        "--truth",
        &truth.to_string_lossy(),
        "--output",
        &link_dir,
    ])?
    .command
    else {
        unreachable!("parsed as eval")
    };
    super::eval::run(eval)
}
