//! Tasks: a job cut into stages of tasks that hand files to each other, so that any process that can
//! reach the scratch directory can run any task. The embedded runner ([`crate::run_job`]) and the
//! cluster's workers run the same tasks; the [`Planner`] says which tasks come next from the outputs
//! committed so far.
//!
//! Stages of a link job:
//! 1. `standardise <left>`: one task per input file, or per run of whole row groups of a Parquet file
//!    over `execution.task_rows` (a [`Piece`]): standardised records written as one Arrow batch
//!    per partition of their blocking keys (a record goes to each partition one of its keys falls in),
//!    plus a per-file sample for training, the ids of accepted records, rejects and term frequencies;
//! 2. `ids <left>`: ids repeated across files become rejects; the left keys, for pruning;
//! 3. `standardise <right>`: as 1, sending a record only to the partitions of the keys it shares
//!    with the left, and keeping only records that share one (pruning);
//! 4. `ids <right>`;
//! 5. `compare`: one task per partition (per slice of a skewed partition, see [`plan_slices`]):
//!    the candidate pairs with their gammas ([`Gammas`]), and gamma pattern counts for training;
//! 6. `train`: u from the samples, m by EM over the pattern counts, term-frequency tables;
//! 7. `score`: one task per compare task: its pairs weighed by the model (records are not compared
//!    again), the right side's values for the pairs worth showing;
//! 8. `write`: clusters, reconciliation and every output file (see [`crate::finish`]).
//!
//! A dedupe job has one side and 7 stages: `standardise`, which writes each task's records as one
//! batch (one partition); `ids`, which also finds the keys at least two of the side's records have;
//! `partition <side>`, one task per standardised part, which sends each record to the partitions of
//! those of its keys only (through any other key it meets no record: most copies of a record would
//! be read and never paired); then 5 to 8.
//!
//! **Invariant:** a task's output depends only on its [`Task`] (the spec and the committed outputs of
//! earlier stages it names): never on which attempt, worker or thread count ran it. Records are
//! numbered by `file_index << 40 | row in file`, which orders them as the input does.

use std::collections::{BTreeMap, BinaryHeap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, AsArray, RecordBatch, StringBuilder, UInt8Builder, UInt32Array,
    UInt32Builder, UInt64Array, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt8Type, UInt32Type};
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::EngineError;
use crate::blocking::{Blocks, Index, Oversized, Slice};
use crate::checks::{PinCheck, PinFields};
use crate::compare::{Compiled, Rows, Scratch, compile, gamma_vector, gamma_vector_of};
use crate::exchange::{
    batch_to_table, number_column, table_schema, table_to_batch, text_column, u64_column,
};
use crate::hash::{KeySet, mix64, partition_of, sort_hashes};
use crate::job::{
    SAMPLE_RECORDS, Skew, SplitPartition, Summary, sample_hash, sample_hash_of, train,
};
use crate::model::{ChunkTf, Model, Scorer, TfCounter, TfTable, probability};
use crate::scan::{Piece, input_files, pieces, row_groups};
use crate::spec::{InputFormat, JobSpec, Mode};
use crate::standardise::{Plan, SourceCounts, Strings, Table, standardise_input};
use crate::storage::ScratchFiles;

/// Bits of a record number that hold its row within its file.
const ROW_BITS: u32 = 40;

/// A record's number: its file and row, ordered as the input is.
pub fn record_number(file_index: u32, row: u64) -> u64 {
    (u64::from(file_index) << ROW_BITS) | row
}

/// The file and row of a record number.
pub fn split_record_number(number: u64) -> (u32, u64) {
    ((number >> ROW_BITS) as u32, number & ((1 << ROW_BITS) - 1))
}

/// One task: what to do, with everything it needs to know.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Task {
    pub spec: JobSpec,
    /// The stage's position in the job and its name.
    pub stage: usize,
    pub stage_name: String,
    /// The task's position in its stage.
    pub index: usize,
    pub work: Work,
}

/// What a task does.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Work {
    Standardise {
        side: usize,
        file_index: u32,
        file: String,
        /// The row groups to read when the file is cut into several tasks (`execution.task_rows`);
        /// `None`: the whole file.
        #[serde(default)]
        piece: Option<Piece>,
        /// The other side's keys (link jobs, large side): records sharing none are pruned.
        prune_by: Option<PathBuf>,
    },
    Ids {
        side: usize,
        parts: Vec<Part>,
        /// Which of the side's keys to write.
        #[serde(deserialize_with = "keys_out")]
        keys: KeysOut,
    },
    /// A dedupe's standardised part, written as one partition, sent on to the partitions of the keys
    /// its records share with another record of the side.
    Partition {
        side: usize,
        part: Part,
        /// The `ids` task's keys file ([`KeysOut::Shared`]).
        keys_file: PathBuf,
    },
    Compare {
        partition: u32,
        #[serde(default)]
        slice: Slice,
        sides: Vec<Side>,
    },
    Train {
        sides: Vec<Side>,
        compared: Vec<Compared>,
    },
    Score {
        /// The partition or slice's pairs, from compare.
        gammas: Gammas,
        sides: Vec<Side>,
        trained: Trained,
    },
    Write {
        sides: Vec<Side>,
        compared: Vec<Compared>,
        trained: Trained,
        scored: Vec<ScoredPart>,
        /// How the compare and score stages were cut, for the summary.
        #[serde(default)]
        skew: Skew,
    },
}

impl Work {
    /// Tasks over one partition: single-threaded, many per stage.
    pub fn is_partition_task(&self) -> bool {
        matches!(self, Work::Compare { .. } | Work::Score { .. })
    }
}

/// Which keys of a side an `ids` task writes, per rule sorted and distinct.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeysOut {
    None,
    /// Every key of the side: a link's first side, whose keys prune the second.
    All,
    /// The keys at least two records of the side have: a dedupe's, whose records are partitioned by
    /// them.
    Shared,
}

/// A [`KeysOut`], or the bool that tasks committed before it held (`true`: every key), so that a link
/// job in flight across an upgrade still runs.
fn keys_out<'de, D: serde::Deserializer<'de>>(d: D) -> Result<KeysOut, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Bool(bool),
        Keys(KeysOut),
    }
    Ok(match Either::deserialize(d)? {
        Either::Bool(true) => KeysOut::All,
        Either::Bool(false) => KeysOut::None,
        Either::Keys(keys) => keys,
    })
}

/// What a task hands on: small, the files it wrote named inside.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Output {
    Standardised(Part),
    Ids(Ids),
    Compared(Compared),
    Trained(Trained),
    Scored(ScoredPart),
    Written(Box<Summary>),
}

/// One input file, standardised.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Part {
    pub file_index: u32,
    /// Records in the file (lines that were not records included).
    pub records: u64,
    pub counts: SourceCounts,
    /// Standardised records: batch `p` holds partition `p`; the last batch is the training sample.
    /// A dedupe's standardise task writes all its records as one partition (batch 0), which its
    /// `partition` stage then sends on to `execution.partitions` partitions.
    pub partitions_file: PathBuf,
    /// Every accepted record: `row` (record number), `hash` (of the id), `id`, `kept`.
    pub ids_file: PathBuf,
    pub rejects_file: PathBuf,
    pub tf_file: PathBuf,
    /// Records in each partition's batch: what the planner weighs partitions by. Only the committed
    /// output carries them; the parts handed to later tasks leave them out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partition_records: Vec<u64>,
}

/// Ids repeated across the files of one side, and (for pruning) the side's keys.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ids {
    /// Records whose id an earlier record has: `row`, `id`, sorted by row.
    pub duplicates_file: PathBuf,
    pub duplicates: u64,
    /// Per rule, one batch of sorted distinct keys (see [`KeysOut`]).
    pub keys_file: Option<PathBuf>,
}

/// One side's standardised files and repeated ids.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Side {
    pub input: usize,
    pub parts: Vec<Part>,
    pub ids: Ids,
}

/// Gamma pattern counts of one partition's candidate pairs, and the pairs themselves.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Compared {
    pub patterns: Vec<(u64, u64)>,
    /// Per rule: the patterns of every pair whose keys agree under it (its training session).
    pub sessions: Vec<Vec<(u64, u64)>>,
    pub per_rule: Vec<u64>,
    pub prior_pairs: u64,
    pub oversized: Vec<Oversized>,
    pub gammas: Gammas,
}

/// The candidate pairs of one partition (or slice), with their gammas, as compare found them: what
/// score weighs once the model is trained, without comparing the records again.
///
/// **Invariant:** `left` and `right` in the file are rows of the partition's tables as
/// [`Loaded::new`] builds them from the task's sides, which is the same for compare and score
/// (parts in file order, repeated ids left out). `tables` (a digest of each table's record numbers)
/// lets score check that.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Gammas {
    pub partition: u32,
    pub slice: Slice,
    /// Columns `left` (u32), `right` (u32), `gammas` (u64), `rule` (u8), in blocking order.
    pub file: PathBuf,
    pub tables: [u64; 2],
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Trained {
    pub model_file: PathBuf,
    pub tf_file: PathBuf,
}

/// One partition's scored pairs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScoredPart {
    pub partition: u32,
    pub pairs: u64,
    pub pairs_file: PathBuf,
    /// Link jobs: the standardised right records of the pairs at or above the review threshold,
    /// which the write stage compares with each other ([`crate::entities`]).
    #[serde(default)]
    pub candidates_file: Option<PathBuf>,
}

/// A stage to run: its name and tasks.
#[derive(Clone, Debug)]
pub struct StagePlan {
    pub name: String,
    pub tasks: Vec<Task>,
}

/// The names of a job's stages, in order, known before any is planned (a link job has 8, a dedupe job
/// 7): the cluster submits them up front and plans each from the outputs of the ones before.
pub fn stage_names(spec: &JobSpec) -> Vec<String> {
    let mut names = Vec::new();
    for input in &spec.inputs {
        names.push(format!("standardise {}", input.name));
        names.push(format!("ids {}", input.name));
        if spec.mode == Mode::Dedupe {
            names.push(format!("partition {}", input.name));
        }
    }
    names.extend(["compare", "train", "score", "write"].map(String::from));
    names
}

/// Plans a job's stages one at a time from the outputs committed so far. An input's files are listed
/// when its `standardise` stage is planned, the only stage that reads them (the only IO of planning
/// besides Parquet footers): a stage planned later neither lists them again nor fails if they have
/// moved since.
#[derive(Clone, Debug)]
pub struct Planner {
    spec: JobSpec,
}

impl Planner {
    /// A planner of `spec`, which checks that every input has files (a clear error before anything
    /// runs, rather than when the input's stage comes).
    /// Lists every input, then fixes what the spec leaves to the job (the reference day of dates,
    /// each input's [`crate::conventions`], partitions bounded by the inputs' size:
    /// [`crate::limits`]): [`Planner::spec`] is the spec to store for the job.
    pub fn new(mut spec: JobSpec) -> Result<Planner, EngineError> {
        for input in &spec.inputs {
            input_files(input)?;
        }
        crate::conventions::resolve(&mut spec, crate::conventions::today);
        crate::limits::bound_partitions(&mut spec);
        Ok(Planner { spec })
    }

    /// A planner of `spec` that lists nothing until a stage needs it: for the later stages of a job
    /// whose inputs were checked when it began.
    pub fn resumed(spec: JobSpec) -> Planner {
        Planner { spec }
    }

    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }

    /// The standardise tasks' shares of a side: each file, a Parquet file over `execution.task_rows`
    /// cut into runs of row groups (read from the files' footers). `(file index, file, piece)`.
    fn pieces(&self, side: usize) -> Result<Vec<(u32, String, Option<Piece>)>, EngineError> {
        let input = &self.spec.inputs[side];
        let files = &input_files(input)?;
        if input.format == InputFormat::Csv {
            return Ok(files
                .iter()
                .enumerate()
                .map(|(i, f)| (i as u32, f.clone(), None))
                .collect());
        }
        let groups = files
            .iter()
            .map(|f| row_groups(input, f))
            .collect::<Result<Vec<_>, _>>()?;
        let input_rows: u64 = groups.iter().flatten().sum();
        let mut out = Vec::new();
        for (i, (file, groups)) in files.iter().zip(&groups).enumerate() {
            for mut piece in pieces(groups, self.spec.execution.task_rows) {
                piece.input_rows = input_rows;
                out.push((i as u32, file.clone(), Some(piece)));
            }
            if groups.is_empty() {
                // A file without rows is still read, so that its schema is checked.
                out.push((i as u32, file.clone(), None));
            }
        }
        Ok(out)
    }

    /// The stage after those in `done` (the committed outputs of every earlier stage, in task
    /// order), or `None` when the job is complete.
    pub fn next(&self, done: &[Vec<Output>]) -> Result<Option<StagePlan>, EngineError> {
        let spec = &self.spec;
        let link = spec.mode == Mode::Link;
        let stage = done.len();
        let name_of = |side: usize| spec.inputs[side].name.as_str();
        // The stages whose outputs are a side's partitioned parts and its ids.
        let parts_stage = |side: usize| if link { 2 * side } else { 2 };
        let ids_stage = |side: usize| if link { 2 * side + 1 } else { 1 };
        let ids_of = |side: usize| {
            one(&done[ids_stage(side)], |o| match o {
                Output::Ids(i) => Some(i.clone()),
                _ => None,
            })
        };
        let side_of = |side: usize| -> Result<Side, EngineError> {
            let mut parts = parts(&done[parts_stage(side)])?;
            for part in &mut parts {
                part.partition_records = Vec::new();
            }
            Ok(Side {
                input: side,
                parts,
                ids: ids_of(side)?,
            })
        };
        let sides =
            || -> Result<Vec<Side>, EngineError> { (0..spec.inputs.len()).map(side_of).collect() };
        let first_shared = if link { 4 } else { 3 };
        let task = |name: &str, index: usize, work: Work| Task {
            spec: spec.clone(),
            stage,
            stage_name: name.to_owned(),
            index,
            work,
        };
        let plan = |name: String, works: Vec<Work>| StagePlan {
            tasks: works
                .into_iter()
                .enumerate()
                .map(|(i, w)| task(&name, i, w))
                .collect(),
            name,
        };
        let standardise = |side: usize, prune_by: Option<PathBuf>| -> Result<_, EngineError> {
            let works = self
                .pieces(side)?
                .into_iter()
                .map(|(file_index, file, piece)| Work::Standardise {
                    side,
                    file_index,
                    file,
                    piece,
                    prune_by: prune_by.clone(),
                })
                .collect();
            Ok(plan(format!("standardise {}", name_of(side)), works))
        };
        let ids = |side: usize, std_stage: usize| -> Result<StagePlan, EngineError> {
            Ok(plan(
                format!("ids {}", name_of(side)),
                vec![Work::Ids {
                    side,
                    parts: parts(&done[std_stage])?,
                    keys: match (link, side) {
                        (true, 0) => KeysOut::All,
                        (true, _) => KeysOut::None,
                        (false, _) => KeysOut::Shared,
                    },
                }],
            ))
        };
        // Compare and score are cut the same way, from the standardised parts' counts.
        let skew = || -> Result<Skew, EngineError> {
            let sides = (0..spec.inputs.len())
                .map(|side| parts(&done[parts_stage(side)]))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(plan_slices(spec, &sides))
        };
        let slices = |skew: &Skew| -> Vec<(u32, Slice)> {
            (0..spec.execution.partitions)
                .flat_map(|partition| {
                    let count = skew
                        .split
                        .iter()
                        .find(|s| s.partition == partition)
                        .map_or(1, |s| s.slices);
                    (0..count).map(move |index| (partition, Slice { index, count }))
                })
                .collect()
        };
        Ok(Some(match (stage, stage.checked_sub(first_shared)) {
            (0, _) => standardise(0, None)?,
            (1, _) => ids(0, 0)?,
            (2, None) if !link => {
                let keys_file = ids_of(0)?.keys_file.ok_or_else(out_of_order)?;
                let works = parts(&done[0])?
                    .into_iter()
                    .map(|mut part| {
                        part.partition_records = Vec::new();
                        Work::Partition {
                            side: 0,
                            part,
                            keys_file: keys_file.clone(),
                        }
                    })
                    .collect();
                plan(format!("partition {}", name_of(0)), works)
            }
            (2, None) => {
                let left = ids_of(0)?.keys_file.ok_or_else(out_of_order)?;
                standardise(1, Some(left))?
            }
            (3, None) => ids(1, 2)?,
            (_, Some(0)) => {
                let sides = sides()?;
                let skew = skew()?;
                for s in &skew.split {
                    tracing::info!(
                        partition = s.partition,
                        slices = s.slices,
                        record_pairs = s.record_pairs,
                        mean = skew.mean_record_pairs,
                        "a skewed partition is compared and scored in slices"
                    );
                }
                plan(
                    "compare".into(),
                    slices(&skew)
                        .into_iter()
                        .map(|(partition, slice)| Work::Compare {
                            partition,
                            slice,
                            sides: sides.clone(),
                        })
                        .collect(),
                )
            }
            (_, Some(1)) => plan(
                "train".into(),
                vec![Work::Train {
                    sides: sides()?,
                    compared: compared(&done[first_shared])?,
                }],
            ),
            (_, Some(2)) => {
                let sides = sides()?;
                let trained = trained(&done[first_shared + 1])?;
                let compared = compared(&done[first_shared])?;
                let cut = slices(&skew()?);
                if compared.len() != cut.len()
                    || compared
                        .iter()
                        .zip(&cut)
                        .any(|(c, &(p, s))| (c.gammas.partition, c.gammas.slice) != (p, s))
                {
                    return Err(out_of_order());
                }
                plan(
                    "score".into(),
                    compared
                        .into_iter()
                        .map(|c| Work::Score {
                            gammas: c.gammas,
                            sides: sides.clone(),
                            trained: trained.clone(),
                        })
                        .collect(),
                )
            }
            (_, Some(3)) => plan(
                "write".into(),
                vec![Work::Write {
                    sides: sides()?,
                    compared: compared(&done[first_shared])?,
                    trained: trained(&done[first_shared + 1])?,
                    scored: done[first_shared + 2]
                        .iter()
                        .map(|o| match o {
                            Output::Scored(s) => Ok(s.clone()),
                            _ => Err(out_of_order()),
                        })
                        .collect::<Result<_, _>>()?,
                    skew: skew()?,
                }],
            ),
            _ => return Ok(None),
        }))
    }
}

/// How skewed the partitions are, and which to cut into how many slices: a partition whose record
/// pairs exceed `execution.split_above` × the mean over all partitions, and
/// `execution.split_min_pairs`, gets one slice per mean's worth of record pairs (at least 2, at most
/// `execution.max_slices`, at most one per left record). Record pairs (left records × right records,
/// n(n−1)/2 for dedupe) bound the candidate pairs from above and cost nothing to count.
///
/// A function of the spec and the standardised parts' counts only (`sides`: the parts of each side),
/// never of workers or timing: the compare and score stages are cut the same way.
pub(crate) fn plan_slices(spec: &JobSpec, sides: &[Vec<Part>]) -> Skew {
    let e = &spec.execution;
    let partitions = e.partitions as usize;
    let records: Vec<Vec<u64>> = sides
        .iter()
        .map(|parts| {
            let mut counts = vec![0u64; partitions];
            for part in parts {
                for (c, n) in counts.iter_mut().zip(&part.partition_records) {
                    *c += n;
                }
            }
            counts
        })
        .collect();
    let record_pairs: Vec<u64> = (0..partitions)
        .map(|p| match records.as_slice() {
            [one] => one[p].saturating_mul(one[p].saturating_sub(1)) / 2,
            [left, right, ..] => left[p].saturating_mul(right[p]),
            [] => 0,
        })
        .collect();
    let mean = record_pairs.iter().map(|&n| n as f64).sum::<f64>() / partitions.max(1) as f64;
    let split = record_pairs
        .iter()
        .enumerate()
        .filter(|&(_, &n)| n > e.split_min_pairs && n as f64 > e.split_above * mean)
        .filter_map(|(p, &n)| {
            let slices = ((n as f64 / mean).ceil() as u64)
                .max(2)
                .min(u64::from(e.max_slices))
                .min(records[0][p]) as u32;
            (slices > 1).then_some(SplitPartition {
                partition: p as u32,
                slices,
                record_pairs: n,
            })
        })
        .collect();
    Skew {
        mean_record_pairs: mean.round() as u64,
        split,
    }
}

fn out_of_order() -> EngineError {
    EngineError::Other("task outputs do not match the job's stages".into())
}

fn parts(outputs: &[Output]) -> Result<Vec<Part>, EngineError> {
    outputs
        .iter()
        .map(|o| match o {
            Output::Standardised(p) => Ok(p.clone()),
            _ => Err(out_of_order()),
        })
        .collect()
}

fn one<T>(outputs: &[Output], pick: impl Fn(&Output) -> Option<T>) -> Result<T, EngineError> {
    match outputs {
        [o] => pick(o).ok_or_else(out_of_order),
        _ => Err(out_of_order()),
    }
}

fn compared(outputs: &[Output]) -> Result<Vec<Compared>, EngineError> {
    outputs
        .iter()
        .map(|o| match o {
            Output::Compared(c) => Ok(c.clone()),
            _ => Err(out_of_order()),
        })
        .collect()
}

fn trained(outputs: &[Output]) -> Result<Trained, EngineError> {
    one(outputs, |o| match o {
        Output::Trained(t) => Some(t.clone()),
        _ => None,
    })
}

/// Runs one task. `attempt` names this run of it: every file it writes carries it, so two attempts of
/// one task never write the same file. Files are named by keys relative to the job's scratch
/// location ([`ScratchFiles`]): `NN-stage/index-attempt.what`.
pub fn run_task(task: &Task, attempt: &str) -> Result<Output, EngineError> {
    run_task_with(task, attempt, &ScratchFiles::of(&task.spec)?)
}

/// [`run_task`], handing files through `files` ([`ScratchFiles::in_process`] where every task of
/// the job runs in this process).
pub fn run_task_with(
    task: &Task,
    attempt: &str,
    files: &ScratchFiles,
) -> Result<Output, EngineError> {
    let spec = &task.spec;
    let base = PathBuf::from(format!(
        "{:02}-{}",
        task.stage,
        task.stage_name
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    ));
    let file = |what: &str| base.join(format!("{:05}-{attempt}.{what}", task.index));
    match &task.work {
        Work::Standardise {
            side,
            file_index,
            file: input_file,
            piece,
            prune_by,
        } => standardise(
            spec,
            files,
            *side,
            (*file_index, input_file, piece.as_ref()),
            prune_by.as_deref(),
            &file,
        )
        .map(Output::Standardised),
        Work::Ids { side, parts, keys } => {
            ids(spec, files, (*side, parts), *keys, &file).map(Output::Ids)
        }
        Work::Partition {
            side,
            part,
            keys_file,
        } => partition(spec, files, (*side, part), keys_file, &file).map(Output::Standardised),
        Work::Compare {
            partition,
            slice,
            sides,
        } => compare(spec, files, (*partition, *slice), sides, &file).map(Output::Compared),
        Work::Train { sides, compared } => {
            train_task(spec, files, sides, compared, &file).map(Output::Trained)
        }
        Work::Score {
            gammas,
            sides,
            trained,
        } => score(spec, files, gammas, sides, trained, &file).map(Output::Scored),
        Work::Write {
            sides,
            compared,
            trained,
            scored,
            skew,
        } => crate::finish::write(spec, files, sides, compared, trained, scored, skew)
            .map(|s| Output::Written(Box::new(s))),
    }
}

/// Keeps the `k` smallest hashes offered.
struct BottomK {
    k: usize,
    heap: BinaryHeap<u64>,
}

impl BottomK {
    fn new(k: usize) -> Self {
        BottomK {
            k,
            heap: BinaryHeap::new(),
        }
    }

    fn offer(&mut self, h: u64) -> bool {
        if self.heap.len() < self.k {
            self.heap.push(h);
            true
        } else if self.heap.peek().is_some_and(|&max| h < max) {
            self.heap.pop();
            self.heap.push(h);
            true
        } else {
            false
        }
    }

    /// Whether `h` is among the kept hashes (given it was offered).
    fn holds(&self, h: u64) -> bool {
        self.heap.len() < self.k || self.heap.peek().is_some_and(|&max| h <= max)
    }
}

/// The seeds of the samples a side's records are drawn into (for u): the side's own in a link job, two
/// from the one side of a dedupe job. `job::train` draws with the same seeds.
pub(crate) fn sample_seeds(spec: &JobSpec) -> Vec<u64> {
    let seed = spec.training.seed;
    match spec.mode {
        Mode::Dedupe => vec![seed, seed ^ 0x5eed],
        Mode::Link => vec![seed],
    }
}

fn ids_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("row", DataType::UInt64, false),
        Field::new("hash", DataType::UInt64, false),
        Field::new("id", DataType::Utf8, false),
        Field::new("kept", DataType::UInt8, false),
        // `crate::checks::PinCheck` flags.
        Field::new("pin_check", DataType::UInt8, false),
    ]))
}

pub(crate) fn rejects_file_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("record_id", DataType::Utf8, false),
        Field::new("row", DataType::UInt64, false),
        Field::new("reason", DataType::Utf8, false),
    ]))
}

fn keys_of(files: &ScratchFiles, file: &Path) -> Result<Vec<Vec<u64>>, EngineError> {
    files
        .ipc(file)?
        .read_all()?
        .iter()
        .map(|b| u64_column(b, "key"))
        .collect()
}

/// The keys of an `ids` task's keys file as sets, one per rule: the other side's keys for pruning a
/// link's second side, or a dedupe's shared keys. The sets of the last file asked for are kept by the
/// process, so a worker builds them once per job, not once per task: a national job has hundreds of
/// standardise tasks on its large side, each pruned by millions of keys of the small side. They are
/// found again by their content (a hash of every key), never by the file's name, so a job that reuses
/// another's scratch location cannot be pruned by the other job's keys.
fn key_sets(files: &ScratchFiles, file: &Path) -> Result<Arc<Vec<KeySet>>, EngineError> {
    static LAST: std::sync::Mutex<Option<(u64, Arc<Vec<KeySet>>)>> = std::sync::Mutex::new(None);
    let rules = keys_of(files, file)?;
    // Keys are hashes already: two weighted sums tell two keys files apart (and cost a fraction of
    // building the sets).
    let mut digest = rules.len() as u64;
    for keys in &rules {
        let (sum, weighted) = keys
            .iter()
            .zip(1u64..)
            .fold((0u64, 0u64), |(s, w), (&k, i)| {
                (s.wrapping_add(k), w.wrapping_add(k.wrapping_mul(2 * i + 1)))
            });
        digest = mix64(digest ^ mix64(sum ^ keys.len() as u64) ^ weighted);
    }
    // A poisoned cache is still a valid cache: it only ever holds finished sets.
    let mut last = LAST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((d, sets)) = last.as_ref()
        && *d == digest
    {
        return Ok(sets.clone());
    }
    // Dropped before the new sets are built: at most one job's sets in memory.
    *last = None;
    let sets = Arc::new(
        rules
            .iter()
            .map(|keys| KeySet::new(keys))
            .collect::<Vec<_>>(),
    );
    *last = Some((digest, sets.clone()));
    Ok(sets)
}

/// The partitions record `row`'s keys (`keys`: per rule, a column) fall in, each once. With `other`
/// (per rule, the keys of the other side in a pruned link job, or the keys another record of the side
/// has in a dedupe), only those keys: through any other key the record meets no record it could be
/// paired with, so sending it there would only be read and never paired.
fn partitions_of(
    keys: &[Vec<u64>],
    row: usize,
    partitions: u32,
    other: Option<&[KeySet]>,
    out: &mut Vec<u32>,
) {
    out.clear();
    for (rule, keys) in keys.iter().enumerate() {
        let k = keys[row];
        if k != 0 && other.is_none_or(|sets| sets[rule].contains(k)) {
            let p = partition_of(k, partitions);
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
}

/// The sample a standardise task keeps for training: the whole sample (`SAMPLE_RECORDS`) for a whole
/// file, but for a piece of a large input only what its share of the input can hold of the input's
/// sample, with a wide margin: twice the expected share plus 256 (the chance that a piece holds more
/// of the input's sample than that is negligible; if it did, the sample would be a slightly
/// different one, still the same in every run). Without the bound, hundreds of pieces would each keep
/// a whole sample.
fn piece_sample(piece: Option<&Piece>) -> usize {
    let whole = SAMPLE_RECORDS as u64;
    let bound = piece.map_or(whole, |p| {
        (2 * whole * p.rows).div_ceil(p.input_rows.max(1)) + 256
    });
    bound.min(whole) as usize
}

/// What a standardise task keeps of each accepted record: term frequencies and the ids of all of them,
/// and in the table only those that share a key with the other side (all when nothing prunes) or may
/// be drawn into the training sample.
struct Pruner<'a> {
    comparisons: &'a [Compiled],
    /// Per blocking rule, the other side's keys; `None` keeps every record.
    other_keys: Option<Arc<Vec<KeySet>>>,
    seeds: Vec<u64>,
    samples: Vec<BottomK>,
    tf: Vec<TfCounter>,
    /// Every accepted record: record number, id hash, id, whether it shares a key, its PIN's checks.
    accepted: (
        UInt64Builder,
        UInt64Builder,
        StringBuilder,
        UInt8Builder,
        UInt8Builder,
    ),
    /// The fields a PIN is checked against, and the records flagged, by flag name.
    pin_fields: Option<PinFields>,
    pin_checks: BTreeMap<String, u64>,
    /// Per record of the table being built, whether it shares a key with the other side, and its id's
    /// hash (so whether it is in the sample is known without hashing its id again).
    shares: Vec<bool>,
    id_hashes: Vec<u64>,
    file_index: u32,
}

/// A chunk's term frequencies and, per record, whether it shares a key with the other side.
struct PreparedChunk {
    tf: Vec<ChunkTf>,
    shared: Vec<bool>,
}

impl Pruner<'_> {
    /// Calls `each(comparison, row, value)` for the term-frequency values of records `rows`, a
    /// comparison at a time over the records, so each loop reads one column.
    fn tf_values(
        &self,
        t: &Table,
        rows: impl Iterator<Item = usize> + Clone,
        mut each: impl FnMut(usize, usize, &str),
    ) {
        let mut buf = (String::new(), String::new());
        for (i, c) in self.comparisons.iter().enumerate() {
            if !c.term_frequency {
                continue;
            }
            for r in rows.clone() {
                if let Some(v) = c.tf_value(t, r, &mut buf) {
                    each(i, r, v);
                }
            }
        }
    }
}

impl crate::standardise::Keeper for Pruner<'_> {
    type Prepared = PreparedChunk;

    fn prepare(&self, part: &Table, usable: &[bool]) -> PreparedChunk {
        // A chunk's records have a few thousand distinct name parts at most.
        let mut tf: Vec<ChunkTf> = self
            .comparisons
            .iter()
            .map(|c| ChunkTf::with_capacity(if c.term_frequency { 4096 } else { 0 }))
            .collect();
        let usable_rows = (0..part.len()).filter(|&r| usable[r]);
        self.tf_values(part, usable_rows, |i, r, v| tf[i].add(v, r as u32));
        // A rule at a time over the chunk's keys, not a record at a time (see `mark_members`).
        let mut shared = usable.to_vec();
        if let Some(other) = &self.other_keys {
            let mut hits = vec![false; part.len()];
            for (set, keys) in other.iter().zip(&part.keys) {
                set.mark_members(keys, &mut hits);
            }
            for (s, hit) in shared.iter_mut().zip(hits) {
                *s &= hit;
            }
        }
        PreparedChunk { tf, shared }
    }

    fn unprepare(&mut self, part: &Table, prepared: &mut PreparedChunk, r: usize) {
        self.tf_values(part, std::iter::once(r), |i, _, v| prepared.tf[i].remove(v));
    }

    fn keep(&mut self, t: &Table, prepared: &PreparedChunk, r: usize, id_hash: u64) -> bool {
        let mut sampled = false;
        for (sample, seed) in self.samples.iter_mut().zip(&self.seeds) {
            sampled |= sample.offer(sample_hash_of(*seed, id_hash));
        }
        let shared = prepared.shared[r];
        self.accepted
            .0
            .append_value(record_number(self.file_index, t.rows[r]));
        self.accepted.1.append_value(id_hash);
        self.accepted.2.append_value(t.ids.get(r));
        self.accepted.3.append_value(u8::from(shared));
        let check = self
            .pin_fields
            .map_or(PinCheck::default(), |f| f.check(t, r));
        self.accepted.4.append_value(check.0);
        if let Some(name) = check.name() {
            *self.pin_checks.entry(name.to_owned()).or_default() += 1;
        }
        if shared || sampled {
            self.shares.push(shared);
            self.id_hashes.push(id_hash);
        }
        shared || sampled
    }

    fn finish(&mut self, part: &Table, prepared: PreparedChunk) {
        let mut buf = (String::new(), String::new());
        for ((a, b), c) in self.tf.iter_mut().zip(prepared.tf).zip(self.comparisons) {
            a.merge_chunk(b, |row| {
                c.tf_value(part, row as usize, &mut buf)
                    .unwrap_or_default()
                    .into()
            });
        }
    }

    fn keeps_all(&self) -> bool {
        self.other_keys.is_none()
    }
}

fn standardise(
    spec: &JobSpec,
    files: &ScratchFiles,
    side: usize,
    (file_index, input_file, piece): (u32, &str, Option<&Piece>),
    prune_by: Option<&Path>,
    file: &dyn Fn(&str) -> PathBuf,
) -> Result<Part, EngineError> {
    let input = &spec.inputs[side];
    let comparisons = compile(spec);
    let other_keys = prune_by.map(|keys| key_sets(files, keys)).transpose()?;
    let seeds = sample_seeds(spec);
    let mut keeper = Pruner {
        comparisons: &comparisons,
        other_keys,
        samples: seeds
            .iter()
            .map(|_| BottomK::new(piece_sample(piece)))
            .collect(),
        seeds: seeds.clone(),
        tf: comparisons.iter().map(|_| TfCounter::default()).collect(),
        accepted: Default::default(),
        pin_fields: PinFields::of(spec),
        pin_checks: BTreeMap::new(),
        shares: Vec::new(),
        id_hashes: Vec::new(),
        file_index,
    };
    let result = standardise_input(spec, input, (input_file, piece), &mut keeper, |_| {})?;
    let Pruner {
        samples,
        tf,
        mut accepted,
        shares,
        id_hashes,
        other_keys,
        pin_checks,
        ..
    } = keeper;
    let mut counts = result.counts;
    counts.pin_checks = pin_checks;
    let mut table = result.table;
    for row in table.rows.iter_mut() {
        *row = record_number(file_index, *row);
    }

    let in_sample = |r: usize| {
        samples
            .iter()
            .zip(&seeds)
            .any(|(s, seed)| s.holds(sample_hash_of(*seed, id_hashes[r])))
    };
    let schema = table_schema(spec, input);
    let partitions_file = file("partitions.arrow");
    let partition_records = match spec.mode {
        // A dedupe's records are written as one partition, the table itself (nothing prunes them),
        // then the sample: which of their keys another record has is known only once every part is
        // standardised (its `partition` stage).
        Mode::Dedupe => {
            debug_assert!(shares.len() == table.len() && shares.iter().all(|&s| s));
            let sample: Vec<usize> = (0..table.len()).filter(|&r| in_sample(r)).collect();
            let sample = table.select(&sample);
            let records = vec![table.len() as u64];
            files.write_ipc(
                &partitions_file,
                &schema,
                [
                    table_to_batch(&schema, table),
                    table_to_batch(&schema, sample),
                ],
            )?;
            records
        }
        // Records by partition, then the sample (destination `partitions`).
        Mode::Link => {
            let partitions = spec.execution.partitions;
            let mut targets: Vec<(u32, u32)> = Vec::with_capacity(table.len() * 2);
            let mut scratch = Vec::new();
            for (r, &shared) in shares.iter().enumerate() {
                if shared {
                    partitions_of(
                        &table.keys,
                        r,
                        partitions,
                        other_keys.as_deref().map(Vec::as_slice),
                        &mut scratch,
                    );
                    targets.extend(scratch.iter().map(|&p| (r as u32, p)));
                }
                if in_sample(r) {
                    targets.push((r as u32, partitions));
                }
            }
            // In groups of destinations: one pass over the table per group, and only one group's
            // copies of the records in memory at a time.
            const GROUP: u32 = 16;
            let mut partition_records = vec![0u64; partitions as usize];
            let batches = (0..=partitions).step_by(GROUP as usize).flat_map(|first| {
                let group: Vec<(u32, u32)> = targets
                    .iter()
                    .filter(|(_, d)| (first..first + GROUP).contains(d))
                    .map(|&(r, d)| (r, d - first))
                    .collect();
                let size = GROUP.min(partitions + 1 - first);
                let tables = table.scatter(&group, size as usize);
                for (d, t) in (first..).zip(&tables) {
                    if let Some(n) = partition_records.get_mut(d as usize) {
                        *n = t.len() as u64;
                    }
                }
                tables.into_iter().map(|t| table_to_batch(&schema, t))
            });
            files.write_ipc(&partitions_file, &schema, batches)?;
            drop(table);
            partition_records
        }
    };
    let ids_file = file("ids.arrow");
    write_batch(
        files,
        &ids_file,
        ids_schema(),
        &mut [
            &mut accepted.0,
            &mut accepted.1,
            &mut accepted.2,
            &mut accepted.3,
            &mut accepted.4,
        ],
    )?;
    let rejects_file = file("rejects.arrow");
    let mut rejects = (
        StringBuilder::new(),
        UInt64Builder::new(),
        StringBuilder::new(),
    );
    for r in &result.rejects {
        rejects.0.append_value(&r.record_id);
        rejects.1.append_value(r.row);
        rejects.2.append_value(&r.reason);
    }
    write_batch(
        files,
        &rejects_file,
        rejects_file_schema(),
        &mut [&mut rejects.0, &mut rejects.1, &mut rejects.2],
    )?;
    let tf_file = file("tf.json");
    let tf: Vec<TfTable> = tf.into_iter().map(TfCounter::into_table).collect();
    files.write_json(&tf_file, &tf)?;
    Ok(Part {
        file_index,
        records: counts.input,
        counts,
        partitions_file,
        ids_file,
        rejects_file,
        tf_file,
        partition_records,
    })
}

fn duplicates_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("row", DataType::UInt64, false),
        Field::new("id", DataType::Utf8, false),
    ]))
}

/// Id hashes the `ids` task holds at once (8 bytes each: 256 MiB): a side with more is checked in
/// several passes over its ids files, each over one range of hashes, so that its memory does not grow
/// with the side (100 M records would otherwise take 2.4 GB).
const HASHES_PER_PASS: u64 = 32 << 20;

/// How many passes hold about `per_pass` of `total` hashes each, and which pass a hash belongs to:
/// pass `k` takes the k-th of the passes' equal ranges of hash values.
fn hash_passes(total: u64, per_pass: u64) -> (u64, impl Fn(u64) -> u64) {
    let passes = total.div_ceil(per_pass.max(1)).max(1);
    (passes, move |h: u64| {
        ((u128::from(h) * u128::from(passes)) >> 64) as u64
    })
}

/// Records whose id an earlier record (in record order) of another file has: (record number, position
/// of its part in `parts`), sorted; about `hashes_per_pass` hashes are held at once. A hash seen at an
/// earlier record number is a repeated id (a false repeat needs a 64-bit collision); parts were each
/// checked on their own already.
fn repeated_ids(
    files: &ScratchFiles,
    parts: &[Part],
    hashes_per_pass: u64,
) -> Result<Vec<(u64, u32)>, EngineError> {
    let hashes_of = |part: &Part| -> Result<Vec<RecordBatch>, EngineError> {
        files
            .ipc_columns(&part.ids_file, &ids_schema(), &["row", "hash"])?
            .read_all()
    };
    let total: u64 = parts.iter().map(|p| p.counts.accepted).sum();
    let (passes, range_of) = hash_passes(total, hashes_per_pass);
    let mut repeated_hashes: Vec<u64> = Vec::new();
    for pass in 0..passes {
        let mut hashes: Vec<u64> =
            Vec::with_capacity((total / passes + total / passes / 8) as usize);
        for part in parts {
            for batch in hashes_of(part)? {
                let h = u64_column(&batch, "hash")?;
                hashes.extend(h.into_iter().filter(|&h| range_of(h) == pass));
            }
        }
        sort_hashes(&mut hashes);
        repeated_hashes.extend(
            hashes
                .chunk_by(|a, b| a == b)
                .filter(|run| run.len() > 1)
                .map(|run| run[0]),
        );
    }
    if repeated_hashes.is_empty() {
        return Ok(Vec::new());
    }
    // The few records with a repeated hash: all but the first of each hash are repeats.
    let mut runs: Vec<(u64, u64, u32)> = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        for batch in hashes_of(part)? {
            let (rows, h) = (u64_column(&batch, "row")?, u64_column(&batch, "hash")?);
            runs.extend(
                h.into_iter()
                    .zip(rows)
                    .filter(|(h, _)| repeated_hashes.binary_search(h).is_ok())
                    .map(|(h, r)| (h, r, i as u32)),
            );
        }
    }
    runs.sort_unstable();
    let mut repeated: Vec<(u64, u32)> = runs
        .chunk_by(|a, b| a.0 == b.0)
        .flat_map(|run| run[1..].iter().map(|&(_, row, part)| (row, part)))
        .collect();
    repeated.sort_unstable();
    Ok(repeated)
}

fn ids(
    spec: &JobSpec,
    files: &ScratchFiles,
    (side, parts): (usize, &[Part]),
    keys: KeysOut,
    file: &dyn Fn(&str) -> PathBuf,
) -> Result<Ids, EngineError> {
    let repeated = repeated_ids(files, parts, HASHES_PER_PASS)?;
    let mut out = (UInt64Builder::new(), StringBuilder::new());
    for (part, rows) in repeated.chunk_by(|a, b| a.1 == b.1).map(|c| (c[0].1, c)) {
        let batch = files.ipc(&parts[part as usize].ids_file)?.read_all()?;
        for b in &batch {
            let (all_rows, ids) = (u64_column(b, "row")?, text_column(b, "id")?);
            for &(row, _) in rows {
                if let Ok(at) = all_rows.binary_search(&row) {
                    out.0.append_value(row);
                    out.1.append_value(ids.get(at));
                }
            }
        }
    }
    let duplicates_file = file("duplicates.arrow");
    let duplicates = out.0.len() as u64;
    write_batch(
        files,
        &duplicates_file,
        duplicates_schema(),
        &mut [&mut out.0, &mut out.1],
    )?;
    let repeated: Vec<u64> = repeated.into_iter().map(|(r, _)| r).collect();
    let sets = match keys {
        KeysOut::None => None,
        KeysOut::All => Some(all_keys(spec, files, parts, &repeated)?),
        KeysOut::Shared => Some(shared_keys(
            spec,
            files,
            (side, parts),
            &repeated,
            HASHES_PER_PASS,
        )?),
    };
    let keys_file = match sets {
        Some(sets) => {
            let schema = Arc::new(Schema::new(vec![Field::new(
                "key",
                DataType::UInt64,
                false,
            )]));
            let path = file("keys.arrow");
            files.write_ipc(
                &path,
                &schema,
                sets.into_iter().map(|set| {
                    Ok(RecordBatch::try_new(
                        schema.clone(),
                        vec![Arc::new(UInt64Array::from(set)) as ArrayRef],
                    )?)
                }),
            )?;
            Some(path)
        }
        None => None,
    };
    Ok(Ids {
        duplicates_file,
        duplicates,
        keys_file,
    })
}

/// Per rule, every key of the side's records but those of `repeated` (record numbers, sorted),
/// sorted and distinct.
fn all_keys(
    spec: &JobSpec,
    files: &ScratchFiles,
    parts: &[Part],
    repeated: &[u64],
) -> Result<Vec<Vec<u64>>, EngineError> {
    let mut sets: Vec<Vec<u64>> = vec![Vec::new(); spec.blocking.len()];
    for part in parts {
        let mut f = files.ipc(&part.partitions_file)?;
        for p in 0..spec.execution.partitions as usize {
            let batch = f.batch(p)?;
            let rows = u64_column(&batch, "_row")?;
            for (q, set) in sets.iter_mut().enumerate() {
                let keys = u64_column(&batch, &format!("_key{q}"))?;
                set.extend(
                    keys.into_iter()
                        .zip(&rows)
                        .filter(|(k, r)| *k != 0 && repeated.binary_search(r).is_err())
                        .map(|(k, _)| k),
                );
            }
        }
    }
    for set in &mut sets {
        sort_hashes(set);
        set.dedup();
    }
    Ok(sets)
}

/// Per rule, the keys that at least two of the side's records but those of `repeated` (record
/// numbers, sorted) have, sorted: a dedupe's parts, each one partition (batch 0). About
/// `keys_per_pass` keys are held at once: a side with more is read in several passes, each over one
/// range of key values (keys are hashes).
fn shared_keys(
    spec: &JobSpec,
    files: &ScratchFiles,
    (side, parts): (usize, &[Part]),
    repeated: &[u64],
    keys_per_pass: u64,
) -> Result<Vec<Vec<u64>>, EngineError> {
    let rules = spec.blocking.len();
    let schema = table_schema(spec, &spec.inputs[side]);
    let names: Vec<String> = std::iter::once("_row".to_string())
        .chain((0..rules).map(|q| format!("_key{q}")))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let total: u64 = parts.iter().map(|p| p.counts.accepted).sum::<u64>() * rules as u64;
    let (passes, range_of) = hash_passes(total, keys_per_pass);
    let mut shared: Vec<Vec<u64>> = vec![Vec::new(); rules];
    for pass in 0..passes {
        let mut keys: Vec<Vec<u64>> = vec![Vec::new(); rules];
        for part in parts {
            let batch = files
                .ipc_columns(&part.partitions_file, &schema, &names)?
                .batch(0)?;
            let rows = u64_column(&batch, "_row")?;
            for (q, keys) in keys.iter_mut().enumerate() {
                keys.extend(
                    u64_column(&batch, names[q + 1])?
                        .into_iter()
                        .zip(&rows)
                        .filter(|&(k, r)| {
                            k != 0
                                && range_of(k) == pass
                                && (repeated.is_empty() || repeated.binary_search(r).is_err())
                        })
                        .map(|(k, _)| k),
                );
            }
        }
        for (keys, shared) in keys.iter_mut().zip(&mut shared) {
            sort_hashes(keys);
            shared.extend(
                keys.chunk_by(|a, b| a == b)
                    .filter(|run| run.len() > 1)
                    .map(|run| run[0]),
            );
        }
    }
    Ok(shared)
}

/// A dedupe's standardised part (all its records as partition 0, then its sample) sent on to the
/// partitions of the keys in `keys_file` (the side's shared keys): batch `p` of the new file holds
/// the part's records with such a key in partition `p`, in record order; the sample follows as it was.
fn partition(
    spec: &JobSpec,
    files: &ScratchFiles,
    (side, part): (usize, &Part),
    keys_file: &Path,
    file: &dyn Fn(&str) -> PathBuf,
) -> Result<Part, EngineError> {
    let shared = key_sets(files, keys_file)?;
    let partitions = spec.execution.partitions;
    let mut f = files.ipc(&part.partitions_file)?;
    let (records, sample) = (f.batch(0)?, f.batch(1)?);
    let keys = (0..spec.blocking.len())
        .map(|q| u64_column(&records, &format!("_key{q}")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows: Vec<Vec<u32>> = vec![Vec::new(); partitions as usize];
    let mut scratch = Vec::new();
    for r in 0..records.num_rows() {
        partitions_of(&keys, r, partitions, Some(shared.as_slice()), &mut scratch);
        for &p in &scratch {
            rows[p as usize].push(r as u32);
        }
    }
    drop(keys);
    let partition_records = rows.iter().map(|r| r.len() as u64).collect();
    let batches = rows
        .into_par_iter()
        .map(|rows| {
            Ok(arrow::compute::take_record_batch(
                &records,
                &UInt32Array::from(rows),
            )?)
        })
        .collect::<Vec<Result<RecordBatch, EngineError>>>();
    let partitions_file = file("partitions.arrow");
    let schema = table_schema(spec, &spec.inputs[side]);
    files.write_ipc(
        &partitions_file,
        &schema,
        batches.into_iter().chain([Ok(sample)]),
    )?;
    Ok(Part {
        partitions_file,
        partition_records,
        ..part.clone()
    })
}

/// The record numbers of a side's repeated ids, sorted.
pub(crate) fn repeated_rows(files: &ScratchFiles, side: &Side) -> Result<Vec<u64>, EngineError> {
    let mut rows = Vec::new();
    for batch in files.ipc(&side.ids.duplicates_file)?.read_all()? {
        rows.extend(u64_column(&batch, "row")?);
    }
    rows.sort_unstable();
    Ok(rows)
}

/// Batch `batch` of every part of a side, as one table in record order, without repeated ids.
fn load_side(
    spec: &JobSpec,
    files: &ScratchFiles,
    side: &Side,
    batch: usize,
) -> Result<Table, EngineError> {
    let input = &spec.inputs[side.input];
    let repeated = repeated_rows(files, side)?;
    let mut table = Plan::new(spec, input).empty_table();
    let mut parts: Vec<&Part> = side.parts.iter().collect();
    parts.sort_by_key(|p| p.file_index);
    for part in parts {
        let b = files.ipc(&part.partitions_file)?.batch(batch)?;
        let t = batch_to_table(spec, input, &b)?;
        if repeated.is_empty() {
            table.append(t);
        } else {
            let rows: Vec<usize> = (0..t.len())
                .filter(|&r| repeated.binary_search(&t.rows[r]).is_err())
                .collect();
            table.append(t.select(&rows));
        }
    }
    Ok(table)
}

/// A side's training sample, in record order: of the records its parts kept for sampling (the last
/// batch of each partitions file), those among the [`SAMPLE_RECORDS`] smallest id hashes of the side
/// under a seed of [`sample_seeds`], as `job::train` draws them. The ids are read first and the chosen
/// records after, so the task never holds every part's sample (191 parts of up to 20,000 records at
/// 100 M records).
fn load_sample(spec: &JobSpec, files: &ScratchFiles, side: &Side) -> Result<Table, EngineError> {
    let input = &spec.inputs[side.input];
    let batch = spec.execution.partitions as usize;
    let schema = table_schema(spec, input);
    let seeds = sample_seeds(spec);
    let repeated = repeated_rows(files, side)?;
    let mut parts: Vec<&Part> = side.parts.iter().collect();
    parts.sort_by_key(|p| p.file_index);
    let mut samples: Vec<BottomK> = seeds.iter().map(|_| BottomK::new(SAMPLE_RECORDS)).collect();
    for part in &parts {
        let b = files
            .ipc_columns(&part.partitions_file, &schema, &["_row", "_id"])?
            .batch(batch)?;
        let (rows, ids) = (u64_column(&b, "_row")?, text_column(&b, "_id")?);
        for (r, row) in rows.iter().enumerate() {
            if repeated.binary_search(row).is_err() {
                for (sample, seed) in samples.iter_mut().zip(&seeds) {
                    sample.offer(sample_hash(*seed, ids.get(r)));
                }
            }
        }
    }
    let mut table = Plan::new(spec, input).empty_table();
    for part in parts {
        let t = batch_to_table(
            spec,
            input,
            &files.ipc(&part.partitions_file)?.batch(batch)?,
        )?;
        let rows: Vec<usize> = (0..t.len())
            .filter(|&r| {
                repeated.binary_search(&t.rows[r]).is_err()
                    && samples
                        .iter()
                        .zip(&seeds)
                        .any(|(s, seed)| s.holds(sample_hash(*seed, t.ids.get(r))))
            })
            .collect();
        table.append(t.select(&rows));
    }
    Ok(table)
}

/// Both sides' records of one partition (the same table twice for dedupe).
struct Loaded {
    left: Table,
    right: Option<Table>,
}

impl Loaded {
    fn new(
        spec: &JobSpec,
        files: &ScratchFiles,
        sides: &[Side],
        batch: usize,
    ) -> Result<Loaded, EngineError> {
        Ok(Loaded {
            left: load_side(spec, files, &sides[0], batch)?,
            right: sides
                .get(1)
                .map(|s| load_side(spec, files, s, batch))
                .transpose()?,
        })
    }

    fn right(&self) -> &Table {
        self.right.as_ref().unwrap_or(&self.left)
    }
}

/// Calls `each(left_row, right_row, rule)` for the candidate pairs of `partition` in `slice`.
fn for_each_pair(
    spec: &JobSpec,
    loaded: &Loaded,
    (partition, slice): (u32, Slice),
    each: impl FnMut(usize, usize, usize),
) -> Vec<Oversized> {
    let partitions = spec.execution.partitions;
    let left_index = Index::build(&loaded.left, partitions, partition);
    let right_index = loaded
        .right
        .as_ref()
        .map(|r| Index::build(r, partitions, partition));
    let blocks = Blocks {
        left: &loaded.left,
        right: loaded.right(),
        left_index: &left_index,
        right_index: right_index.as_ref().unwrap_or(&left_index),
        dedupe: loaded.right.is_none(),
        max_block_pairs: spec.execution.max_block_pairs,
    };
    blocks.for_each_pair(slice, each)
}

fn prior_rule(spec: &JobSpec) -> Option<usize> {
    spec.training
        .prior_rule
        .as_ref()
        .and_then(|name| spec.blocking.iter().position(|b| &b.name == name))
}

/// Writes what `columns` hold, in `schema`'s order, as the one batch of an IPC file.
fn write_batch(
    files: &ScratchFiles,
    path: &Path,
    schema: SchemaRef,
    columns: &mut [&mut dyn ArrayBuilder],
) -> Result<(), EngineError> {
    let columns = columns.iter_mut().map(|c| c.finish()).collect();
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    files.write_ipc(path, &schema, [Ok(batch)])
}

/// A digest of a table's record numbers, to tell that two tasks loaded the same records.
fn rows_digest(table: &Table) -> u64 {
    table
        .rows
        .iter()
        .fold(table.len() as u64, |h, &r| mix64(h ^ r))
}

fn gammas_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("left", DataType::UInt32, false),
        Field::new("right", DataType::UInt32, false),
        Field::new("gammas", DataType::UInt64, false),
        Field::new("rule", DataType::UInt8, false),
    ]))
}

/// The fewest records (both sides) of a partition whose compare task may lay them out ([`Rows`]):
/// below, their columns (~150 bytes a record) stay in the cache and laying them out only costs. At
/// 10 M x 250 k a partition holds ~53 k records and the 1 M dedupe's ~16 k, both slower laid out;
/// at national scale ~530 k, 35% faster (benches/results/2026-11-25-national.md).
const ROWS_MIN_RECORDS: usize = 100_000;

fn compare(
    spec: &JobSpec,
    files: &ScratchFiles,
    (partition, slice): (u32, Slice),
    sides: &[Side],
    file: &dyn Fn(&str) -> PathBuf,
) -> Result<Compared, EngineError> {
    let loaded = Loaded::new(spec, files, sides, partition as usize)?;
    let comparisons = compile(spec);
    let prior_rule = prior_rule(spec);
    let rules = spec.blocking.len();
    let (left, right) = (&loaded.left, loaded.right());
    // Counted per candidate pair: a fast hash (the counts are sorted before they leave the task).
    let mut patterns: FxHashMap<u64, u64> = FxHashMap::default();
    let mut sessions: Vec<FxHashMap<u64, u64>> = vec![FxHashMap::default(); rules];
    let mut per_rule = vec![0u64; rules];
    let mut prior_pairs = 0;
    let mut scratch = Scratch::default();
    let mut out = (
        UInt32Builder::new(),
        UInt32Builder::new(),
        UInt64Builder::new(),
        UInt8Builder::new(),
    );
    // The candidate pairs first, then their gammas: whether to lay the records out first depends on
    // how many pairs there are for each record.
    let mut pairs: Vec<(u32, u32, u8)> = Vec::new();
    let oversized = for_each_pair(spec, &loaded, (partition, slice), |l, r, rule| {
        pairs.push((l as u32, r as u32, rule as u8));
    });
    // Records laid out one after another ([`Rows`]) are read in a few cache lines each, where their
    // values in columns take one or two each: that pays once a partition's columns are too large for
    // the cache and it has more pairs than records to lay out (`execution.rows_above`; 0: always).
    let records = left.len() + loaded.right.as_ref().map_or(0, Table::len);
    let rows_above = spec.execution.rows_above;
    let laid_out = (rows_above == 0.0
        || (records >= ROWS_MIN_RECORDS && pairs.len() as f64 > rows_above * records as f64))
        .then(|| {
            let left_rows = Rows::of(left, &comparisons);
            let right_rows = loaded.right.as_ref().map(|r| Rows::of(r, &comparisons));
            (left_rows, right_rows)
        });
    let mut values = laid_out
        .as_ref()
        .map(|(l, r)| (l.no_values(), r.as_ref().unwrap_or(l).no_values()));
    for (l, r, rule) in pairs {
        let (l, r, rule) = (l as usize, r as usize, usize::from(rule));
        let g = match (&laid_out, &mut values) {
            (Some((left_rows, right_rows)), Some((xa, xb))) => {
                left_rows.values(l, xa);
                right_rows.as_ref().unwrap_or(left_rows).values(r, xb);
                gamma_vector_of(&comparisons, xa, xb, &mut scratch)
            }
            _ => gamma_vector(&comparisons, left, l, right, r, &mut scratch),
        };
        out.0.append_value(l as u32);
        out.1.append_value(r as u32);
        out.2.append_value(g);
        out.3.append_value(rule as u8);
        *patterns.entry(g).or_default() += 1;
        per_rule[rule] += 1;
        for (q, session) in sessions.iter_mut().enumerate() {
            let k = left.keys[q][l];
            if k != 0 && k == right.keys[q][r] {
                *session.entry(g).or_default() += 1;
                if prior_rule == Some(q) {
                    prior_pairs += 1;
                }
            }
        }
    }
    let gammas_file = file("gammas.arrow");
    write_batch(
        files,
        &gammas_file,
        gammas_schema(),
        &mut [&mut out.0, &mut out.1, &mut out.2, &mut out.3],
    )?;
    let sorted = |m: FxHashMap<u64, u64>| -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = m.into_iter().collect();
        v.sort_unstable();
        v
    };
    Ok(Compared {
        patterns: sorted(patterns),
        sessions: sessions.into_iter().map(sorted).collect(),
        per_rule,
        prior_pairs,
        oversized,
        gammas: Gammas {
            partition,
            slice,
            file: gammas_file,
            tables: [rows_digest(left), rows_digest(right)],
        },
    })
}

/// Accepted records of a side: those read, less those rejected across files for a repeated id.
fn accepted(side: &Side) -> u64 {
    side.parts.iter().map(|p| p.counts.accepted).sum::<u64>() - side.ids.duplicates
}

fn train_task(
    spec: &JobSpec,
    files: &ScratchFiles,
    sides: &[Side],
    compared: &[Compared],
    file: &dyn Fn(&str) -> PathBuf,
) -> Result<Trained, EngineError> {
    let comparisons = compile(spec);
    let mut patterns: BTreeMap<u64, u64> = BTreeMap::new();
    let mut sessions: Vec<BTreeMap<u64, u64>> = vec![BTreeMap::new(); spec.blocking.len()];
    let (mut candidate_pairs, mut prior_pairs) = (0, 0);
    for c in compared {
        for &(g, n) in &c.patterns {
            *patterns.entry(g).or_default() += n;
        }
        for (q, session) in c.sessions.iter().enumerate() {
            for &(g, n) in session {
                *sessions[q].entry(g).or_default() += n;
            }
        }
        candidate_pairs += c.per_rule.iter().sum::<u64>();
        prior_pairs += c.prior_pairs;
    }
    let mut tf: Vec<TfTable> = comparisons.iter().map(|_| TfTable::default()).collect();
    for part in sides.iter().flat_map(|s| &s.parts) {
        let text = files.read_to_string(&part.tf_file)?;
        let tables: Vec<TfTable> = serde_json::from_str(&text)
            .map_err(|e| EngineError::Other(format!("{}: {e}", part.tf_file.display())))?;
        for (a, b) in tf.iter_mut().zip(tables) {
            a.merge(b);
        }
    }
    let samples: Vec<Table> = sides
        .iter()
        .map(|s| load_sample(spec, files, s))
        .collect::<Result<_, _>>()?;
    let total_pairs = match sides {
        [one] => {
            let n = accepted(one) as f64;
            n * (n - 1.0) / 2.0
        }
        _ => accepted(&sides[0]) as f64 * accepted(&sides[1]) as f64,
    };
    let model = match &spec.training.model {
        Some(path) => Model::load(path, &comparisons)?,
        None => train(
            spec,
            &comparisons,
            (&samples[0], samples.last().unwrap_or(&samples[0])),
            (&patterns, &sessions),
            (
                prior_rule(spec),
                prior_pairs,
                candidate_pairs,
                total_pairs.max(1.0),
            ),
            &tf,
        ),
    };
    let (model_file, tf_file) = (file("model.json"), file("tf.json"));
    files.write_json(&model_file, &model)?;
    files.write_json(&tf_file, &tf)?;
    Ok(Trained {
        model_file,
        tf_file,
    })
}

/// The trained model and term-frequency tables.
pub(crate) fn load_trained(
    files: &ScratchFiles,
    trained: &Trained,
    comparisons: &[Compiled],
) -> Result<(Model, Vec<TfTable>), EngineError> {
    let model = Model::parse(
        &files.read_to_string(&trained.model_file)?,
        &trained.model_file.display().to_string(),
        comparisons,
    )?;
    let text = files.read_to_string(&trained.tf_file)?;
    let tf = serde_json::from_str(&text)
        .map_err(|e| EngineError::Other(format!("{}: {e}", trained.tf_file.display())))?;
    Ok((model, tf))
}

pub(crate) fn pairs_file_schema(comparisons: &[Compiled]) -> SchemaRef {
    let mut fields = vec![
        Field::new("left_row", DataType::UInt64, false),
        Field::new("right_row", DataType::UInt64, false),
        Field::new("weight", DataType::Float64, false),
        Field::new("probability", DataType::Float64, false),
        Field::new("gammas", DataType::UInt64, false),
        Field::new("rule", DataType::UInt8, false),
    ];
    fields.extend(
        comparisons
            .iter()
            .map(|c| Field::new(format!("right_{}", c.name), DataType::Utf8, true)),
    );
    Arc::new(Schema::new(fields))
}

fn score(
    spec: &JobSpec,
    files: &ScratchFiles,
    gammas: &Gammas,
    sides: &[Side],
    trained: &Trained,
    file: &dyn Fn(&str) -> PathBuf,
) -> Result<ScoredPart, EngineError> {
    let comparisons = compile(spec);
    let (model, tf_tables) = load_trained(files, trained, &comparisons)?;
    let partition = gammas.partition;
    let loaded = Loaded::new(spec, files, sides, partition as usize)?;
    let (left, right) = (&loaded.left, loaded.right());
    if [rows_digest(left), rows_digest(right)] != gammas.tables {
        return Err(EngineError::Other(format!(
            "score: partition {partition} does not hold the records compare found pairs in"
        )));
    }
    let pairs_in = files.ipc(&gammas.file)?.read_all()?;
    let scorer = Scorer::new(&model, tf_tables, &comparisons);
    let min_probability = spec.execution.min_pair_probability;
    let review = spec.thresholds.review;
    let mut buf = (String::new(), String::new());
    // Per term-frequency comparison, per left record: its adjusted weight at the first level (`None`
    // inside when its value has no frequency), worked out at its first pair: a record is in several.
    let mut tf_weights: Vec<Vec<Option<Option<f64>>>> = (0..comparisons.len())
        .map(|i| {
            if scorer.adjusts(i) {
                vec![None; left.len()]
            } else {
                Vec::new()
            }
        })
        .collect();
    let mut out = (
        UInt64Builder::new(),
        UInt64Builder::new(),
        arrow::array::Float64Builder::new(),
        arrow::array::Float64Builder::new(),
        UInt64Builder::new(),
        UInt8Builder::new(),
    );
    let mut shown: Vec<StringBuilder> = comparisons.iter().map(|_| StringBuilder::new()).collect();
    let mut pairs = 0u64;
    // Link jobs: the right records worth comparing with each other (see `crate::entities`).
    let mut candidate = vec![
        false;
        if spec.mode == Mode::Link {
            right.len()
        } else {
            0
        }
    ];
    for b in &pairs_in {
        let (l, r) = (
            number_column::<UInt32Type>(b, "left")?,
            number_column::<UInt32Type>(b, "right")?,
        );
        let (g, q) = (
            u64_column(b, "gammas")?,
            number_column::<UInt8Type>(b, "rule")?,
        );
        for (((l, r), gammas), rule) in l.into_iter().zip(r).zip(g).zip(q) {
            let (l, r) = (l as usize, r as usize);
            if l >= left.len() || r >= right.len() {
                return Err(EngineError::Other(format!(
                    "gamma file of partition {partition}: a pair outside the partition's tables"
                )));
            }
            let weight = scorer.weight(gammas, |i| {
                *tf_weights[i][l]
                    .get_or_insert_with(|| scorer.tf_weight(&comparisons, i, left, l, &mut buf))
            });
            let p = probability(weight);
            if p < min_probability {
                continue;
            }
            pairs += 1;
            out.0.append_value(left.rows[l]);
            out.1.append_value(right.rows[r]);
            out.2.append_value(weight);
            out.3.append_value(p);
            out.4.append_value(gammas);
            out.5.append_value(rule);
            // The right side's values, for the reconciliation table of pairs worth showing.
            for (c, b) in comparisons.iter().zip(shown.iter_mut()) {
                b.append_option((p >= review).then(|| c.display(right, r)).flatten());
            }
            if p >= review
                && let Some(c) = candidate.get_mut(r)
            {
                *c = true;
            }
        }
    }
    let mut columns: Vec<&mut dyn ArrayBuilder> = vec![
        &mut out.0, &mut out.1, &mut out.2, &mut out.3, &mut out.4, &mut out.5,
    ];
    columns.extend(shown.iter_mut().map(|b| b as &mut dyn ArrayBuilder));
    let pairs_file = file("pairs.arrow");
    write_batch(
        files,
        &pairs_file,
        pairs_file_schema(&comparisons),
        &mut columns,
    )?;
    let candidates_file = if candidate.contains(&true) {
        let rows: Vec<usize> = (0..candidate.len()).filter(|&r| candidate[r]).collect();
        let schema = table_schema(spec, &spec.inputs[1]);
        let file = file("candidates.arrow");
        files.write_ipc(
            &file,
            &schema,
            [table_to_batch(&schema, right.select(&rows))],
        )?;
        Some(file)
    } else {
        None
    };
    Ok(ScoredPart {
        partition,
        pairs,
        pairs_file,
        candidates_file,
    })
}

/// Every record kept on a side (accepted, not a repeated id, and for a pruned side sharing a key):
/// record numbers in order, ids and PIN checks.
pub(crate) fn kept_records(files: &ScratchFiles, side: &Side) -> Result<KeptRecords, EngineError> {
    let repeated = repeated_rows(files, side)?;
    let mut parts: Vec<&Part> = side.parts.iter().collect();
    parts.sort_by_key(|p| p.file_index);
    let mut kept = KeptRecords::default();
    let columns = ["row", "id", "kept", "pin_check"];
    for part in parts {
        for batch in files
            .ipc_columns(&part.ids_file, &ids_schema(), &columns)?
            .read_all()?
        {
            let (r, i) = (u64_column(&batch, "row")?, text_column(&batch, "id")?);
            let flags = |name: &str| {
                batch
                    .column_by_name(name)
                    .and_then(|c| c.as_primitive_opt::<UInt8Type>().cloned())
                    .ok_or_else(|| EngineError::Other(format!("ids file: no column `{name}`")))
            };
            let (is_kept, pin_check) = (flags("kept")?, flags("pin_check")?);
            for (at, row) in r.into_iter().enumerate() {
                if is_kept.value(at) == 1 && repeated.binary_search(&row).is_err() {
                    kept.rows.push(row);
                    kept.ids.push(i.get(at));
                    kept.pin_checks.push(PinCheck(pin_check.value(at)));
                }
            }
        }
    }
    Ok(kept)
}

/// The records of a side that reach the write stage, in record order.
#[derive(Default)]
pub(crate) struct KeptRecords {
    pub rows: Vec<u64>,
    pub ids: Strings,
    pub pin_checks: Vec<PinCheck>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::write_ipc;
    use crate::hash::hash_str;

    fn part(file_index: u32, partition_records: &[u64]) -> Part {
        Part {
            file_index,
            records: 0,
            counts: SourceCounts::default(),
            partitions_file: "p".into(),
            ids_file: "i".into(),
            rejects_file: "r".into(),
            tf_file: "t".into(),
            partition_records: partition_records.to_vec(),
        }
    }

    /// An input's files are listed when its stage is planned: a planner checks every input up front
    /// (`new`), and one resumed for a later stage does not need an input it no longer reads.
    #[test]
    fn inputs_are_listed_by_the_stage_that_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.csv");
        std::fs::write(&a, "id,name\n1,An\n").unwrap();
        let mut spec = spec(Mode::Link, "");
        spec.inputs[0].format = InputFormat::Csv;
        spec.inputs[0].path = a.to_string_lossy().into_owned();
        spec.inputs[1].path = dir.path().join("b").to_string_lossy().into_owned();
        // The second input is missing: refused before anything runs, naming it.
        let e = Planner::new(spec.clone()).unwrap_err().to_string();
        assert!(e.contains("no .csv files") && e.contains("/b"), "{e}");
        // Resumed, the first stage plans without it; the stage that reads it says it is missing.
        let first = Planner::resumed(spec.clone()).next(&[]).unwrap().unwrap();
        assert_eq!(first.name, "standardise a");
        assert_eq!(first.tasks.len(), 1);
        std::fs::create_dir(dir.path().join("b")).unwrap();
        std::fs::write(dir.path().join("b/part.csv"), "id,name\n2,Binh\n").unwrap();
        assert!(Planner::new(spec.clone()).is_ok());
        std::fs::remove_file(&a).unwrap();
        // Once read, the first input may move: only `new` (a job's start) looks for it again.
        assert!(Planner::new(spec.clone()).is_err());
        assert_eq!(
            Planner::resumed(spec).pieces(1).unwrap().len(),
            1,
            "the second input's one file"
        );
    }

    fn spec(mode: Mode, execution: &str) -> JobSpec {
        let text = crate::spec::tests::GOOD.replacen(
            "[thresholds]",
            &format!("[execution]\npartitions = 4\n{execution}\n[thresholds]"),
            1,
        );
        let mut spec = JobSpec::from_toml(&text, Path::new("/jobs")).unwrap();
        if mode == Mode::Dedupe {
            spec.mode = mode;
            spec.inputs.truncate(1);
        }
        spec
    }

    #[test]
    fn skewed_partitions_are_cut_into_slices() {
        let any = "split_min_pairs = 0";
        // Records per partition of each side's parts; the spec; the partitions split: (partition,
        // slices).
        type Case<'a> = (&'a [&'a [&'a [u64]]], Mode, &'a str, &'a [(u32, u32)]);
        let cases: &[Case] = &[
            // Record pairs 1000, 1000, 1000, 10000: the mean is 3250, the last over twice that.
            (
                &[&[&[5, 5, 5, 50], &[5, 5, 5, 50]], &[&[100, 100, 100, 100]]],
                Mode::Link,
                any,
                &[(3, 4)],
            ),
            (
                &[&[&[10, 10, 10, 100]], &[&[100, 100, 100, 100]]],
                Mode::Link,
                "split_min_pairs = 10000",
                &[],
            ),
            (
                &[&[&[10, 10, 10, 100]], &[&[100, 100, 100, 100]]],
                Mode::Link,
                "split_min_pairs = 0\nmax_slices = 3",
                &[(3, 3)],
            ),
            (
                &[&[&[10, 10, 10, 100]], &[&[100, 100, 100, 100]]],
                Mode::Link,
                "split_min_pairs = 0\nmax_slices = 1",
                &[],
            ),
            (
                &[&[&[10, 10, 10, 100]], &[&[100, 100, 100, 100]]],
                Mode::Link,
                "split_min_pairs = 0\nsplit_above = 4.0",
                &[],
            ),
            // Not more slices than left records.
            (
                &[&[&[1, 1, 1, 1]], &[&[10, 10, 10, 1000]]],
                Mode::Link,
                any,
                &[],
            ),
            (
                &[&[&[3, 1, 1, 1]], &[&[10, 10, 10, 1000]]],
                Mode::Link,
                any,
                &[],
            ),
            (
                &[&[&[1, 1, 1, 3]], &[&[10, 10, 10, 1000]]],
                Mode::Link,
                any,
                &[(3, 3)],
            ),
            // Dedupe: 6, 6, 6, 780 record pairs, the mean 199.5.
            (&[&[&[4, 4, 4, 40]]], Mode::Dedupe, any, &[(3, 4)]),
            (
                &[&[&[2, 0, 4, 4], &[2, 4, 0, 36]]],
                Mode::Dedupe,
                any,
                &[(3, 4)],
            ),
            (&[&[&[40, 40, 40, 40]]], Mode::Dedupe, any, &[]),
            // split_above = 0 cuts every partition with pairs in two (at least).
            (
                &[&[&[10, 10, 0, 10]], &[&[10, 10, 10, 10]]],
                Mode::Link,
                "split_min_pairs = 0\nsplit_above = 0.0",
                &[(0, 2), (1, 2), (3, 2)],
            ),
            // Parts without counts (committed before they were recorded): nothing to weigh.
            (&[&[&[]], &[&[]]], Mode::Link, any, &[]),
            // The defaults: only partitions of more than 10 million record pairs are split.
            (
                &[&[&[1000, 1000, 1000, 9000]], &[&[1000, 1000, 1000, 1000]]],
                Mode::Link,
                "",
                &[],
            ),
            (
                &[&[&[1000, 1000, 1000, 11000]], &[&[1000, 1000, 1000, 1000]]],
                Mode::Link,
                "",
                &[(3, 4)],
            ),
        ];
        for (sides, mode, execution, expected) in cases {
            let spec = spec(*mode, execution);
            let sides: Vec<Vec<Part>> = sides
                .iter()
                .map(|parts| {
                    parts
                        .iter()
                        .enumerate()
                        .map(|(i, counts)| part(i as u32, counts))
                        .collect()
                })
                .collect();
            let skew = plan_slices(&spec, &sides);
            let split: Vec<(u32, u32)> =
                skew.split.iter().map(|s| (s.partition, s.slices)).collect();
            assert_eq!(&split, expected, "{sides:?} {execution}");
        }
    }

    /// The compare stage is cut into slices from the committed parts only, and each score task weighs
    /// the pairs of the compare task of its slice.
    #[test]
    fn compare_and_score_are_cut_the_same_way() {
        let spec = spec(Mode::Link, "split_min_pairs = 0");
        let planner = Planner::resumed(spec.clone());
        let ids = || {
            Output::Ids(Ids {
                duplicates_file: "d".into(),
                duplicates: 0,
                keys_file: Some("k".into()),
            })
        };
        let mut done = vec![
            vec![
                Output::Standardised(part(0, &[5, 5, 5, 50])),
                Output::Standardised(part(1, &[5, 5, 5, 50])),
            ],
            vec![ids()],
            vec![Output::Standardised(part(0, &[100, 100, 100, 100]))],
            vec![ids()],
        ];
        let cut = |plan: &StagePlan| -> Vec<(u32, Slice)> {
            plan.tasks
                .iter()
                .map(|t| {
                    let (cut, sides) = match &t.work {
                        Work::Compare {
                            partition,
                            slice,
                            sides,
                        } => ((*partition, *slice), sides),
                        Work::Score { gammas, sides, .. } => {
                            ((gammas.partition, gammas.slice), sides)
                        }
                        _ => panic!("not a partition task"),
                    };
                    // The counts are for planning: the tasks do not carry them.
                    assert!(
                        sides
                            .iter()
                            .flat_map(|s| &s.parts)
                            .all(|p| p.partition_records.is_empty())
                    );
                    cut
                })
                .collect()
        };
        let compare = planner.next(&done).unwrap().unwrap();
        assert_eq!(compare.name, "compare");
        let slices = cut(&compare);
        let whole = |p| (p, Slice::WHOLE);
        let of4 = |index| (3, Slice { index, count: 4 });
        assert_eq!(
            slices,
            [whole(0), whole(1), whole(2), of4(0), of4(1), of4(2), of4(3)]
        );
        let compared = |(partition, slice): (u32, Slice)| {
            Output::Compared(Compared {
                gammas: Gammas {
                    partition,
                    slice,
                    file: format!("g{partition}-{}", slice.index).into(),
                    tables: [0, 0],
                },
                ..Compared::default()
            })
        };
        let trained = vec![Output::Trained(Trained {
            model_file: "m".into(),
            tf_file: "t".into(),
        })];
        // Score tasks take compare's outputs in the order compare's tasks were planned.
        let mut swapped: Vec<Output> = slices.iter().copied().map(compared).collect();
        swapped.swap(3, 4);
        done.extend([swapped, trained.clone()]);
        assert!(planner.next(&done).is_err());
        done.truncate(done.len() - 2);
        done.extend([slices.iter().copied().map(compared).collect(), trained]);
        let score = planner.next(&done).unwrap().unwrap();
        assert_eq!(score.name, "score");
        assert_eq!(cut(&score), slices);
        for (task, &(partition, slice)) in score.tasks.iter().zip(&slices) {
            let Work::Score { gammas, .. } = &task.work else {
                panic!("not a score task")
            };
            assert_eq!(
                gammas.file,
                PathBuf::from(format!("g{partition}-{}", slice.index))
            );
        }
        done.push(
            slices
                .iter()
                .map(|&(partition, _)| {
                    Output::Scored(ScoredPart {
                        partition,
                        pairs: 0,
                        pairs_file: "s".into(),
                        candidates_file: None,
                    })
                })
                .collect(),
        );
        let write = planner.next(&done).unwrap().unwrap();
        match &write.tasks[0].work {
            Work::Write { skew, .. } => assert_eq!(
                skew,
                &Skew {
                    mean_record_pairs: 3250,
                    split: vec![SplitPartition {
                        partition: 3,
                        slices: 4,
                        record_pairs: 10_000
                    }],
                }
            ),
            _ => panic!("not the write task"),
        }
    }

    /// A dedupe has one more stage than its side's two: `partition`, one task per standardised part,
    /// by the keys the `ids` task found shared; compare is cut by the partitioned parts' counts.
    #[test]
    fn a_dedupe_partitions_its_parts_by_shared_keys_before_compare() {
        let spec = spec(Mode::Dedupe, "split_min_pairs = 0");
        let names = stage_names(&spec);
        assert_eq!(names.len(), 7);
        assert_eq!(names[2], format!("partition {}", spec.inputs[0].name));
        let planner = Planner::resumed(spec.clone());
        let ids = Output::Ids(Ids {
            duplicates_file: "d".into(),
            duplicates: 0,
            keys_file: Some("k".into()),
        });
        let mut done = vec![
            vec![
                Output::Standardised(part(0, &[30])),
                Output::Standardised(part(1, &[30])),
            ],
            vec![ids],
        ];
        let ids_task = Planner::next(&planner, &done[..1]).unwrap().unwrap();
        assert!(matches!(
            ids_task.tasks[0].work,
            Work::Ids {
                keys: KeysOut::Shared,
                ..
            }
        ));
        let partition = planner.next(&done).unwrap().unwrap();
        assert_eq!(partition.name, names[2]);
        let planned: Vec<(u32, PathBuf)> = partition
            .tasks
            .iter()
            .map(|t| match &t.work {
                Work::Partition {
                    part, keys_file, ..
                } => {
                    assert!(part.partition_records.is_empty());
                    (part.file_index, keys_file.clone())
                }
                _ => panic!("not a partition task"),
            })
            .collect();
        assert_eq!(planned, [(0, "k".into()), (1, "k".into())]);
        done.push(vec![
            Output::Standardised(part(0, &[1, 1, 1, 10])),
            Output::Standardised(part(1, &[1, 1, 1, 10])),
        ]);
        let compare = planner.next(&done).unwrap().unwrap();
        assert_eq!(compare.name, "compare");
        // Partition 3 holds 20 of the 26 partitioned records (the standardised parts' one partition
        // of 30 each does not count): cut into slices, the others whole.
        let slices: Vec<(u32, u32)> = compare
            .tasks
            .iter()
            .map(|t| match &t.work {
                Work::Compare {
                    partition, slice, ..
                } => (*partition, slice.count),
                _ => panic!("not a compare task"),
            })
            .collect();
        assert!(
            slices.iter().all(|&(p, count)| (p == 3) == (count > 1))
                && slices.iter().any(|&(p, _)| p == 3),
            "{slices:?}"
        );
    }

    /// An `ids` task committed before `KeysOut` (a bool) still reads; new ones write the names.
    #[test]
    fn ids_tasks_read_the_keys_flag_of_earlier_versions() {
        let work = |keys: &str| -> Work {
            serde_json::from_str(&format!(
                r#"{{"kind": "ids", "side": 0, "parts": [], "keys": {keys}}}"#
            ))
            .unwrap()
        };
        for (json, expected) in [
            ("true", KeysOut::All),
            ("false", KeysOut::None),
            ("\"shared\"", KeysOut::Shared),
            ("\"all\"", KeysOut::All),
        ] {
            let Work::Ids { keys, .. } = work(json) else {
                panic!("not an ids task")
            };
            assert_eq!(keys, expected, "{json}");
            let again = serde_json::to_string(&Work::Ids {
                side: 0,
                parts: Vec::new(),
                keys,
            })
            .unwrap();
            let Work::Ids { keys: read, .. } = serde_json::from_str(&again).unwrap() else {
                panic!("not an ids task")
            };
            assert_eq!(read, keys);
        }
        assert!(
            serde_json::from_str::<Work>(
                r#"{"kind": "ids", "side": 0, "parts": [], "keys": "some"}"#
            )
            .is_err()
        );
    }

    /// A dedupe's shared keys: those at least two records have, records with a repeated id left
    /// out, the same in one pass over the parts or several.
    #[test]
    fn shared_keys_are_found_in_one_pass_or_several() {
        let dir = tempfile::tempdir().unwrap();
        let files = ScratchFiles::Dir(dir.path().into());
        let mut spec = spec(Mode::Dedupe, "");
        // A second rule (any keys: only its column is read).
        let mut second = spec.blocking[0].clone();
        second.name = "second".into();
        spec.blocking.push(second);
        let rules = spec.blocking.len();
        let schema = table_schema(&spec, &spec.inputs[0]);
        // Per part, per record: its keys under rules 0 and 1 (later rules: none).
        let parts_keys: [&[[u64; 2]]; 3] = [
            &[[7, 0], [u64::MAX, 5], [9, 5]],
            &[[7, 1 << 63], [3, 2]],
            &[[u64::MAX, 1 << 63], [3, 4], [8, 4]],
        ];
        let parts: Vec<Part> = parts_keys
            .iter()
            .enumerate()
            .map(|(f, records)| {
                let n = records.len();
                let columns = schema
                    .fields()
                    .iter()
                    .map(|field| -> ArrayRef {
                        let name = field.name();
                        if name == "_row" {
                            Arc::new(UInt64Array::from_iter_values(
                                (0..n as u64).map(|r| record_number(f as u32, r)),
                            ))
                        } else if let Some(q) = name.strip_prefix("_key") {
                            let q: usize = q.parse().unwrap();
                            Arc::new(UInt64Array::from_iter_values(
                                records.iter().map(|k| k.get(q).copied().unwrap_or(0)),
                            ))
                        } else {
                            arrow::array::new_null_array(field.data_type(), n)
                        }
                    })
                    .collect();
                let nullable = Arc::new(Schema::new(
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.as_ref().clone().with_nullable(true))
                        .collect::<Vec<_>>(),
                ));
                let batch = RecordBatch::try_new(nullable.clone(), columns).unwrap();
                let partitions_file = PathBuf::from(format!("{f}.partitions.arrow"));
                files
                    .write_ipc(&partitions_file, &nullable, [Ok(batch)])
                    .unwrap();
                Part {
                    counts: SourceCounts {
                        accepted: n as u64,
                        ..SourceCounts::default()
                    },
                    partitions_file,
                    ..part(f as u32, &[])
                }
            })
            .collect();
        let expect = |keys: [&[u64]; 2]| -> Vec<Vec<u64>> {
            let mut all = vec![Vec::new(); rules];
            all[0] = keys[0].to_vec();
            all[1] = keys[1].to_vec();
            all
        };
        // The second record of part 2 has an id an earlier record has: key 4 is left with one.
        let repeated = [record_number(2, 1)];
        for per_pass in [1, 2, 5, 1_000] {
            for (repeated, keys) in [
                (&[][..], expect([&[3, 7, u64::MAX], &[4, 5, 1 << 63]])),
                (&repeated[..], expect([&[7, u64::MAX], &[5, 1 << 63]])),
            ] {
                assert_eq!(
                    shared_keys(&spec, &files, (0, &parts), repeated, per_pass).unwrap(),
                    keys,
                    "{per_pass} keys per pass, repeated {repeated:?}"
                );
            }
        }
    }

    #[test]
    fn ids_repeated_across_files_are_found_in_one_pass_or_several() {
        let dir = tempfile::tempdir().unwrap();
        let files: [&[&str]; 3] = [&["a", "b", "c"], &["d", "a", "e"], &["b", "f", "a", "g"]];
        let parts: Vec<Part> = files
            .iter()
            .enumerate()
            .map(|(f, ids)| {
                let ids_file = dir.path().join(format!("{f}.ids.arrow"));
                let rows: Vec<u64> = (0..ids.len() as u64)
                    .map(|r| record_number(f as u32, r))
                    .collect();
                let batch = RecordBatch::try_new(
                    ids_schema(),
                    vec![
                        Arc::new(UInt64Array::from(rows)) as ArrayRef,
                        Arc::new(UInt64Array::from_iter_values(
                            ids.iter().map(|id| hash_str(id)),
                        )),
                        Arc::new(arrow::array::StringArray::from(ids.to_vec())),
                        Arc::new(arrow::array::UInt8Array::from(vec![1u8; ids.len()])),
                        Arc::new(arrow::array::UInt8Array::from(vec![0u8; ids.len()])),
                    ],
                )
                .unwrap();
                write_ipc(&ids_file, &ids_schema(), [Ok(batch)]).unwrap();
                Part {
                    file_index: f as u32,
                    records: ids.len() as u64,
                    counts: SourceCounts {
                        accepted: ids.len() as u64,
                        ..SourceCounts::default()
                    },
                    partitions_file: PathBuf::new(),
                    ids_file,
                    rejects_file: PathBuf::new(),
                    tf_file: PathBuf::new(),
                    partition_records: Vec::new(),
                }
            })
            .collect();
        // The second `a` and `b`, and the third `a`: the first record of each id is the one kept.
        let expected = vec![
            (record_number(1, 1), 1),
            (record_number(2, 0), 2),
            (record_number(2, 2), 2),
        ];
        for per_pass in [1, 2, 3, 1_000] {
            assert_eq!(
                repeated_ids(&ScratchFiles::Dir(dir.path().into()), &parts, per_pass).unwrap(),
                expected,
                "{per_pass} hashes per pass"
            );
        }
    }
}
