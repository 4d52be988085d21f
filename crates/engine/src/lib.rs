//! The linkage engine: from two sources (or one) to matched pairs, clusters of records that are the
//! same person, and a reconciliation table.
//!
//! A job runs as stages of tasks over partitions:
//! 1. **standardise** ([`standardise`], reading through [`scan`]): raw columns to comparable values and
//!    blocking keys; unusable records to rejects. In a link job the large side is pruned as it is read:
//!    only records sharing a key with the small side are kept. A record is written only to the
//!    partitions of the keys it can be paired through: in a link job those the other side has, in a
//!    dedupe those another record of the side has (counted once the side is standardised).
//! 2. **index** ([`blocking`]): keys sorted by partition (a stable hash of the key).
//! 3. **compare**: per partition, candidate pairs and their gamma patterns ([`compare`]).
//! 4. **train** ([`model`]): u from random pairs, m by EM over the patterns, the prior from a rule.
//! 5. **score**: per partition, match weights and probabilities.
//! 6. **cluster** and **write** ([`output`]): connected components, reconciliation, files.
//!
//! **Architecture invariant:** the engine knows nothing of gRPC, Raft or the cluster. Its results depend
//! only on the inputs and the spec: partitions are processed in parallel but merged in partition order,
//! samples are drawn by hashing with the spec's seed, and EM runs over ordered pattern counts, so the
//! same job gives the same pairs, scores and entity ids with any number of threads.

pub mod blocking;
pub mod cache;
pub mod checks;
pub mod clusters;
pub mod compare;
pub mod conventions;
pub mod entities;
pub mod eval;
pub mod exchange;
pub mod finish;
pub mod hash;
pub mod job;
pub mod limits;
pub mod model;
pub mod output;
pub mod profile;
pub mod scan;
pub mod spec;
pub mod standardise;
pub mod storage;
pub mod task;

pub use job::{Summary, run_job};
pub use spec::JobSpec;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A bad job spec: `path` names the offending field.
    #[error("job spec: {path}: {message}")]
    Spec { path: String, message: String },
    /// An input that could not be read this time (IO, the object store): another attempt may.
    #[error("input `{source_name}`: {message}")]
    Input {
        source_name: String,
        message: String,
    },
    /// An input no attempt can read as it is: a column missing, a file not in its format or
    /// encoding, an empty file. The message names the file and column, never a record's content.
    #[error("input `{source_name}`: {message}")]
    BadInput {
        source_name: String,
        message: String,
    },
    #[error("output: {0}")]
    Output(String),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("{0}")]
    Other(String),
}

impl EngineError {
    /// Whether the error comes from the job itself (its spec, its inputs' bytes), so that running
    /// the task again, anywhere, fails the same way.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            EngineError::Spec { .. } | EngineError::BadInput { .. }
        )
    }
}

/// Progress of a job, stage by stage, for progress bars and `WatchJob` streams.
pub trait Progress: Sync {
    /// A stage begins; `total` is its amount of work when known (records, partitions).
    fn start(&self, stage: &str, total: Option<u64>);
    fn advance(&self, amount: u64);
    fn finish(&self, stage: &str);
}

/// Progress that goes nowhere.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish(&self, _: &str) {}
}
