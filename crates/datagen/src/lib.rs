//! `khop datagen`: a synthetic Vietnamese population database and civil-servant database, with the
//! ground truth of who is who and what errors each record carries.
//!
//! Layout written under the output directory:
//! - `population/part-NNNNN.{parquet,csv}` and `civil_servants/part-NNNNN.{parquet,csv}`: the inputs;
//! - `truth/{population,civil_servants}-NNNNN.parquet`: `source`, `record_id`, `person_id`,
//!   `corruptions` (list of class names). The truth never appears in the inputs;
//! - `manifest.json`: counts, files, and per class the records where it could apply and where it did;
//! - `datagen.toml`: the effective configuration;
//! - `job.toml`: a linkage job for the dataset (civil servants against the population), for `khop link`.
//!
//! **Architecture invariant:** every byte is a pure function of `(seed, config, sizes)`. Records are
//! split into fixed parts of [`PART_ROWS`] rows whatever the thread count; each part is produced on its
//! own from counter-based randomness ([`rng`]) and written by one thread, so the same seed gives the
//! same files on any machine with any number of threads, and memory stays bounded by a few row groups
//! per thread however large the population.

pub mod config;
pub mod corrupt;
pub mod model;
pub mod person;
pub mod records;
pub mod rng;
mod writer;

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

pub use config::{Class, DatagenConfig, HARD_TOML, Source};
pub use corrupt::Tally;
pub use records::Dataset;
pub use writer::Format;

/// Rows per output file.
pub const PART_ROWS: u64 = 1 << 19;
/// Rows per Parquet row group, and per batch held in memory.
pub const BATCH_ROWS: u64 = 1 << 17;

#[derive(Debug, thiserror::Error)]
pub enum DatagenError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct DatagenSpec {
    pub population: u64,
    pub civil_servants: u64,
    pub seed: u64,
    pub format: Format,
    pub config: DatagenConfig,
    /// Worker threads; `None` uses every core. Does not change the output.
    pub threads: Option<usize>,
}

/// Per-class counts for one source, as written in the manifest.
#[derive(Debug, Serialize)]
pub struct ClassCount {
    pub rate: f64,
    pub applicable: u64,
    pub applied: u64,
}

#[derive(Debug, Serialize)]
pub struct SourceManifest {
    pub records: u64,
    pub files: Vec<String>,
    pub truth_files: Vec<String>,
    pub corruptions: std::collections::BTreeMap<String, ClassCount>,
}

/// What was written; saved as `manifest.json`.
#[derive(Debug, Serialize)]
pub struct Manifest {
    pub generator: String,
    pub seed: u64,
    pub format: String,
    pub population: SourceManifest,
    pub civil_servants: SourceManifest,
    /// Civil servants with no counterpart in the population database.
    pub unmatched_civil_servants: u64,
}

impl Manifest {
    pub fn source(&self, source: Source) -> &SourceManifest {
        match source {
            Source::Population => &self.population,
            Source::CivilServants => &self.civil_servants,
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DatagenError + '_ {
    move |source| DatagenError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Generates the dataset under `out`. Files of an earlier run in the three data directories are
/// replaced; nothing else in `out` is touched.
pub fn generate(spec: &DatagenSpec, out: &Path) -> Result<Manifest, DatagenError> {
    if spec.population == 0 {
        return Err(DatagenError::Config(
            "--population must be at least 1".into(),
        ));
    }
    let dataset = Dataset::new(
        spec.seed,
        spec.population,
        spec.civil_servants,
        spec.config.clone(),
    )?;
    for dir in ["population", "civil_servants", "truth"] {
        writer::clear_dir(&out.join(dir))?;
    }

    let parts: Vec<(Source, u64)> = Source::ALL
        .iter()
        .flat_map(|&source| {
            (0..dataset.records(source).div_ceil(PART_ROWS)).map(move |part| (source, part))
        })
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(spec.threads.unwrap_or(0))
        .build()
        .map_err(|e| DatagenError::Config(format!("--threads: {e}")))?;
    let results: Vec<Result<writer::PartOutput, DatagenError>> = pool.install(|| {
        parts
            .par_iter()
            .map(|&(source, part)| writer::write_part(&dataset, source, part, spec.format, out))
            .collect()
    });

    let mut manifests = Vec::new();
    let mut results = results.into_iter();
    for source in Source::ALL {
        let mut tally = Tally::default();
        let mut files = Vec::new();
        let mut truth_files = Vec::new();
        for _ in 0..dataset.records(source).div_ceil(PART_ROWS) {
            let part = results.next().expect("one result per part")?;
            tally.merge(&part.tally);
            files.push(part.file);
            truth_files.push(part.truth_file);
        }
        let rates = spec.config.rates(source);
        let corruptions = Class::ALL
            .iter()
            .filter(|&&c| source == Source::Population || !c.population_only())
            .map(|&c| {
                (
                    c.name().to_owned(),
                    ClassCount {
                        rate: rates.get(c),
                        applicable: tally.applicable[c as usize],
                        applied: tally.applied[c as usize],
                    },
                )
            })
            .collect();
        manifests.push(SourceManifest {
            records: dataset.records(source),
            files,
            truth_files,
            corruptions,
        });
    }
    let civil_servants = manifests.pop().expect("two sources");
    let population = manifests.pop().expect("two sources");
    let manifest = Manifest {
        generator: format!("khop-datagen {}", env!("CARGO_PKG_VERSION")),
        seed: spec.seed,
        format: spec.format.name().to_owned(),
        population,
        civil_servants,
        unmatched_civil_servants: dataset.unmatched,
    };
    let manifest_path = out.join("manifest.json");
    let json = serde_json::to_string_pretty(&manifest).unwrap_or_default();
    std::fs::write(&manifest_path, json + "\n").map_err(io_error(&manifest_path))?;
    let job_path = out.join("job.toml");
    let job = include_str!("job.toml").replace("{format}", spec.format.name());
    std::fs::write(&job_path, job).map_err(io_error(&job_path))?;
    let config_path = out.join("datagen.toml");
    std::fs::write(&config_path, spec.config.to_toml()).map_err(io_error(&config_path))?;
    Ok(manifest)
}
