//! `khop datagen`: writes a synthetic dataset and prints what was written.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use khop_datagen::{DatagenConfig, DatagenSpec, Format, Source, generate};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Population records (people in the population database, duplicates included).
    #[arg(long, default_value_t = 1_000_000)]
    population: u64,
    /// Civil-servant records [default: 2.5% of --population].
    #[arg(long)]
    civil_servants: Option<u64>,
    /// Seed: the same seed, sizes and config give the same bytes.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Output directory.
    #[arg(long, default_value = "out/data")]
    out: PathBuf,
    /// Format of the two input databases (the truth is always Parquet).
    #[arg(long, default_value = "parquet")]
    format: Format,
    /// A TOML file of corruption rates and population settings (see docs/datagen.md).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override one rate, e.g. --rate civil_servants.name_typo=0.05 (repeatable).
    #[arg(long = "rate", value_name = "SOURCE.CLASS=RATE")]
    rates: Vec<String>,
    /// Worker threads [default: all cores]. The output does not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            DatagenConfig::from_toml(&text).with_context(|| path.display().to_string())?
        }
        None => DatagenConfig::default(),
    };
    for rate in &args.rates {
        let Some((path, value)) = rate.split_once('=') else {
            bail!("--rate {rate}: expected SOURCE.CLASS=RATE");
        };
        let value: f64 = value
            .parse()
            .with_context(|| format!("--rate {rate}: `{value}` is not a number"))?;
        config.set_rate(path, value).context("--rate")?;
    }
    if args.print_config {
        say!("{}", config.to_toml().trim_end_matches('\n'));
        return Ok(());
    }
    let civil_servants = args
        .civil_servants
        .unwrap_or_else(|| (args.population as f64 * 0.025).round() as u64);
    let spec = DatagenSpec {
        population: args.population,
        civil_servants,
        seed: args.seed,
        format: args.format,
        config,
        threads: args.threads,
    };
    let started = Instant::now();
    let manifest = generate(&spec, &args.out)?;
    let seconds = started.elapsed().as_secs_f64();
    let records = args.population + civil_servants;
    say!(
        "khop datagen: seed {}, {} format",
        spec.seed,
        spec.format.name()
    );
    for source in Source::ALL {
        let m = manifest.source(source);
        say!(
            "  {:<15} {:>12} records in {:>4} files under {}",
            source.name(),
            m.records,
            m.files.len(),
            args.out.join(source.name()).display()
        );
    }
    say!(
        "  {:<15} {:>12} civil servants with no counterpart in the population",
        "unmatched",
        manifest.unmatched_civil_servants
    );
    say!(
        "  {:<15} {:>12} records under {}",
        "truth",
        records,
        args.out.join("truth").display()
    );
    say!(
        "  {:<15} {}",
        "manifest",
        args.out.join("manifest.json").display()
    );
    say!(
        "  {records} records in {seconds:.2} s ({:.0} records/s), peak memory {}",
        records as f64 / seconds,
        super::peak_memory_bytes()
            .map(|b| format!("{:.0} MiB", b as f64 / (1 << 20) as f64))
            .unwrap_or_else(|| "unknown".into())
    );
    Ok(())
}
