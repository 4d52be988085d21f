//! A job from end to end in one process (the embedded default): the planner's stages run one after
//! another on the compute pool; and the training step of the `train` task.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::compare::{Compiled, Scratch};
use crate::hash::{hash_str, mix64};
use crate::model::{self, Model, TfTable};
use crate::output::write_json;
use crate::spec::{JobSpec, Mode};
use crate::standardise::Table;
use crate::storage::ScratchFiles;
use crate::task::{Output, Planner, Task, run_task_with};
use crate::{EngineError, Progress};

/// Records drawn from each side to estimate u.
pub(crate) const SAMPLE_RECORDS: usize = 20_000;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SourceSummary {
    pub name: String,
    pub input: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// Accepted records of the large side with no key in common with the other side.
    pub pruned: u64,
    pub invalid_values: BTreeMap<String, u64>,
    /// Per field, the values not read by shape (`99/9/99`: never a value itself).
    #[serde(default)]
    pub unread_shapes: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per column of a `vn_id` field, numbers read by restoring leading zeros a spreadsheet dropped.
    #[serde(default)]
    pub repaired_ids: BTreeMap<String, u64>,
    /// Of `rejected`, records without a value for any blocking rule.
    #[serde(default)]
    pub no_blocking_key: u64,
    /// How the source's ambiguous values were read: per date field its day/month order, per ID
    /// column whether lost leading zeros were restored (see `crate::conventions`).
    #[serde(default)]
    pub conventions: BTreeMap<String, String>,
    /// Of `input`, the records replayed from the input's cache instead of read from its files.
    #[serde(default)]
    pub from_cache: u64,
    /// Accepted records whose PIN fails its checks (`invalid_pin`) or disagrees with the record's
    /// sex or birth year (`pin_sex_differs`, `pin_year_differs`, `pin_sex_and_year_differ`).
    #[serde(default)]
    pub pin_checks: BTreeMap<String, u64>,
}

/// The grouping of records into entities (`clusters/`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterSummary {
    /// Pairs at or above this probability join records.
    pub threshold: f64,
    /// The most records an entity may hold (from the spec, or automatic).
    pub max_size: u32,
    pub entities: u64,
    pub largest_entity: u32,
    /// The largest connected component before any was cut.
    pub largest_component: u32,
    /// Connected components over `max_size`, cut at their weakest links, and their records.
    pub components_cut: u64,
    pub records_in_cut_components: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RuleSummary {
    pub name: String,
    pub candidate_pairs: u64,
    pub oversized_blocks: u64,
    pub oversized_pairs_skipped: u64,
    pub largest_oversized_block: u64,
}

/// How the compare and score stages were cut: partitions far above the mean in record pairs (left
/// records × right records) are cut into slices (see `execution.split_above`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skew {
    pub mean_record_pairs: u64,
    pub split: Vec<SplitPartition>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitPartition {
    pub partition: u32,
    pub slices: u32,
    pub record_pairs: u64,
}

/// What `summary.json` holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    pub mode: String,
    pub sources: Vec<SourceSummary>,
    pub candidate_pairs: u64,
    pub rules: Vec<RuleSummary>,
    /// Partitions compared and scored in slices.
    #[serde(default)]
    pub skew: Skew,
    pub pairs_written: u64,
    pub matches: u64,
    pub entities: u64,
    /// How records were grouped into entities, and the components cut.
    #[serde(default)]
    pub clusters: ClusterSummary,
    /// Link jobs: pairs of right records found to be one person through a left record's
    /// candidates (the `duplicates/` output).
    #[serde(default)]
    pub duplicate_pairs: u64,
    /// Link jobs: left records per reconciliation status.
    pub statuses: BTreeMap<String, u64>,
    pub thresholds: BTreeMap<String, f64>,
    pub prior: f64,
    /// Seconds per stage, and in total.
    pub timings: BTreeMap<String, f64>,
    pub warnings: Vec<String>,
    pub output: String,
}

pub(crate) fn sample_hash(seed: u64, id: &str) -> u64 {
    sample_hash_of(seed, hash_str(id))
}

/// [`sample_hash`] from the id's [`hash_str`].
pub(crate) fn sample_hash_of(seed: u64, id_hash: u64) -> u64 {
    mix64(id_hash ^ seed)
}

/// Rows of `table` in the sample: the `SAMPLE_RECORDS` smallest id hashes.
fn sample_rows(table: &Table, seed: u64) -> Vec<usize> {
    let mut hashed: Vec<(u64, usize)> = (0..table.len())
        .map(|r| (sample_hash(seed, table.ids.get(r)), r))
        .collect();
    if hashed.len() > SAMPLE_RECORDS {
        hashed.select_nth_unstable(SAMPLE_RECORDS);
        hashed.truncate(SAMPLE_RECORDS);
    }
    hashed.sort_unstable();
    hashed.into_iter().map(|(_, r)| r).collect()
}

/// Pairs `range` of the random pairs of sample records whose gammas give u, each as the positions of
/// its two records in the samples (`left` and `right`: rows of the two tables): pair `i` is drawn by a
/// hash of `seed` and `i`, a dedupe's pairs of a record with itself left out.
///
/// Only the counts of their gammas are kept, which do not depend on the order the pairs are compared
/// in; so they are returned grouped by tiles of rows of each table ([`tile_shift`]), and the records a
/// run of pairs reads stay in the core's cache instead of being fetched from anywhere in the samples.
/// Grouped by a counting sort (a pass to count each tile's pairs, one to put them in place): a
/// comparison sort of 2 M pairs cost more than comparing them.
fn u_pairs(
    range: std::ops::Range<u64>,
    seed: u64,
    (left, right): (&[usize], &[usize]),
    dedupe: bool,
) -> Vec<(u32, u32)> {
    let (Some(&left_max), Some(&right_max)) = (left.iter().max(), right.iter().max()) else {
        return Vec::new();
    };
    let drawn: Vec<(u32, u32)> = range
        .into_par_iter()
        .filter_map(|i| {
            let h = mix64(seed ^ mix64(i.wrapping_add(0x75)));
            let l = (h % left.len() as u64) as usize;
            let r = ((h >> 32) % right.len() as u64) as usize;
            (!(dedupe && left[l] == right[r])).then_some((l as u32, r as u32))
        })
        .collect();
    let shift = tile_shift(left_max, right_max);
    let right_tiles = (right_max >> shift) + 1;
    let tile_of = |&(l, r): &(u32, u32)| {
        (left[l as usize] >> shift) * right_tiles + (right[r as usize] >> shift)
    };
    // Each tile's first place in the result, then the pairs put in place in the order drawn.
    let mut next = vec![0usize; ((left_max >> shift) + 1) * right_tiles];
    for pair in &drawn {
        next[tile_of(pair)] += 1;
    }
    let mut start = 0;
    for slot in &mut next {
        (*slot, start) = (start, start + *slot);
    }
    let mut pairs = vec![(0, 0); drawn.len()];
    for pair in drawn {
        let slot = &mut next[tile_of(&pair)];
        pairs[*slot] = pair;
        *slot += 1;
    }
    pairs
}

/// Rows of a tile's side, as a shift: 1,024 rows (what a core's cache holds of a few columns), more
/// where the tables are so large that there would be over 2^20 tiles (their counts would outweigh the
/// pairs).
fn tile_shift(left_max: usize, right_max: usize) -> u32 {
    let mut shift = 10;
    while ((left_max >> shift) + 1).saturating_mul((right_max >> shift) + 1) > 1 << 20 {
        shift += 1;
    }
    shift
}

/// The gammas of one name-part comparison over the u pairs, remembered per pair of distinct values:
/// the samples' values of a name part are few (a few hundred surnames, a few thousand given names), a
/// gamma depends on the two values only ([`Compiled::part_value`]), and most of the 2 M random pairs
/// repeat a pair of values already compared. A value is known by its number among the samples'
/// distinct values; the table holds, per pair of numbers, 0 or the gamma + 1. Threads fill it side by
/// side: two that compare the same values write the same gamma.
struct PairMemo {
    /// Value number of each left and right sample record, by its position in the sample.
    left: Vec<u32>,
    right: Vec<u32>,
    values: usize,
    gammas: Vec<AtomicU8>,
}

impl PairMemo {
    /// The most pairs of values remembered (one byte each): comparisons with more distinct values
    /// than its square root are compared pair by pair.
    const MAX_CELLS: usize = 1 << 24;

    fn new(
        comparison: &Compiled,
        (left, right): (&Table, &Table),
        (left_sample, right_sample): (&[usize], &[usize]),
    ) -> Option<PairMemo> {
        let mut numbers: FxHashMap<(&str, &str), u32> = FxHashMap::default();
        let mut number_of = |t, row| {
            let value = comparison.part_value(t, row)?;
            let next = numbers.len() as u32;
            Some(*numbers.entry(value).or_insert(next))
        };
        let left_numbers: Vec<u32> = left_sample
            .iter()
            .map(|&r| number_of(left, r))
            .collect::<Option<_>>()?;
        let right_numbers: Vec<u32> = right_sample
            .iter()
            .map(|&r| number_of(right, r))
            .collect::<Option<_>>()?;
        let values = numbers.len();
        let cells = values
            .checked_mul(values)
            .filter(|&c| c <= Self::MAX_CELLS)?;
        Some(PairMemo {
            left: left_numbers,
            right: right_numbers,
            values,
            gammas: (0..cells).map(|_| AtomicU8::new(0)).collect(),
        })
    }

    /// The gamma of the sample records at positions `(l, r)`: remembered, or `compare()`d.
    fn gamma(&self, (l, r): (usize, usize), compare: impl FnOnce() -> u8) -> u8 {
        let cell = &self.gammas[self.left[l] as usize * self.values + self.right[r] as usize];
        match cell.load(Ordering::Relaxed) {
            0 => {
                let gamma = compare();
                cell.store(gamma + 1, Ordering::Relaxed);
                gamma
            }
            known => known - 1,
        }
    }
}

/// Runs a job to completion in this process, as the embedded default: the stages of [`crate::task`]
/// one after another, on a pool of `spec.execution.threads`. Writes the outputs under `spec.output`
/// and removes the scratch files when the job succeeds.
pub fn run_job(spec: &JobSpec, progress: &dyn Progress) -> Result<Summary, EngineError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(spec.execution.threads)
        .build()
        .map_err(|e| EngineError::Other(format!("thread pool: {e}")))?;
    pool.install(|| run_in_pool(spec, progress))
}

fn run_in_pool(spec: &JobSpec, progress: &dyn Progress) -> Result<Summary, EngineError> {
    let started = Instant::now();
    let planner = Planner::new(spec.clone())?;
    let files = ScratchFiles::in_process(spec)?;
    let mut done: Vec<Vec<Output>> = Vec::new();
    let mut timings = BTreeMap::new();
    while let Some(stage) = planner.next(&done)? {
        let stage_started = Instant::now();
        progress.start(&stage.name, Some(stage.tasks.len() as u64));
        let run = |task: &Task| {
            let output = run_task_with(task, "local", &files);
            progress.advance(1);
            output
        };
        // Tasks that use every core themselves (standardise, train) run one at a time, so that
        // work-stealing never holds several of them in memory at once; partition tasks side by side.
        let outputs: Vec<Output> = if stage.tasks.iter().all(|t| t.work.is_partition_task()) {
            stage.tasks.par_iter().map(run).collect::<Result<_, _>>()?
        } else {
            stage.tasks.iter().map(run).collect::<Result<_, _>>()?
        };
        progress.finish(&stage.name);
        *timings.entry(stage.name).or_default() += stage_started.elapsed().as_secs_f64();
        done.push(outputs);
    }
    let summary = match done.last().map(Vec::as_slice) {
        Some([Output::Written(summary)]) => (**summary).clone(),
        _ => {
            return Err(EngineError::Other(
                "the job ended without its write stage".into(),
            ));
        }
    };
    timings.insert("total".into(), started.elapsed().as_secs_f64());
    let summary = write_summary(spec, summary, timings)?;
    remove_scratch(spec);
    Ok(summary)
}

/// Writes `summary.json` with the stages' timings.
pub fn write_summary(
    spec: &JobSpec,
    mut summary: Summary,
    timings: BTreeMap<String, f64>,
) -> Result<Summary, EngineError> {
    summary.timings = timings;
    write_json(&spec.output.join("summary.json"), &summary)?;
    Ok(summary)
}

/// Removes a finished job's scratch files; what cannot be removed is left with a warning.
pub fn remove_scratch(spec: &JobSpec) {
    if let Err(e) = crate::storage::remove_scratch(spec) {
        tracing::warn!("scratch files left: {e}");
    }
}

/// u from random pairs of the two samples, m by EM, and the prior.
pub(crate) fn train(
    spec: &JobSpec,
    comparisons: &[Compiled],
    (left, right): (&Table, &Table),
    (patterns, sessions): (&BTreeMap<u64, u64>, &[BTreeMap<u64, u64>]),
    (prior_rule, prior_pairs, candidate_pairs, total_pairs): (Option<usize>, u64, u64, f64),
    tf_tables: &[TfTable],
) -> Model {
    let seed = spec.training.seed;
    let dedupe = spec.mode == Mode::Dedupe;
    let left_sample = sample_rows(left, seed);
    // The samples are those kept while reading (see `task::sample_seeds`): each side's smallest id
    // hashes under `seed`; a dedupe job draws its two samples from one side, the second under another
    // seed. Records kept for other reasons (a pruned side's look-alikes of the left) never enter them.
    let right_sample = sample_rows(right, if dedupe { seed ^ 0x5eed } else { seed });
    // In blocks of pairs, so memory stays bounded however many pairs the spec asks for.
    const BLOCK: u64 = 1 << 22;
    let n = spec.training.u_pairs;
    let memos: Vec<Option<PairMemo>> = comparisons
        .par_iter()
        .map(|c| PairMemo::new(c, (left, right), (&left_sample, &right_sample)))
        .collect();
    let counts: Vec<Vec<Vec<u64>>> = (0..n.div_ceil(BLOCK))
        .flat_map(|block| {
            let range = block * BLOCK..n.min((block + 1) * BLOCK);
            let pairs = u_pairs(range, seed, (&left_sample, &right_sample), dedupe);
            pairs
                .par_chunks(pairs.len().div_ceil(64).max(1))
                .map_init(Scratch::default, |scratch, pairs| {
                    let mut counts: Vec<Vec<u64>> =
                        comparisons.iter().map(|c| vec![0; c.gammas()]).collect();
                    for &(i, j) in pairs {
                        let at = (i as usize, j as usize);
                        let (l, r) = (left_sample[at.0], right_sample[at.1]);
                        for ((c, memo), counts) in comparisons.iter().zip(&memos).zip(&mut counts) {
                            let mut compare = || c.gamma(left, l, right, r, scratch);
                            let gamma = match memo {
                                Some(memo) => memo.gamma(at, compare),
                                None => compare(),
                            };
                            counts[usize::from(gamma)] += 1;
                        }
                    }
                    counts
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut total: Vec<Vec<u64>> = comparisons.iter().map(|c| vec![0; c.gammas()]).collect();
    for chunk in counts {
        for (a, b) in total.iter_mut().zip(chunk) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
    }
    let u = model::u_from_counts(comparisons, &total);
    // One EM session per blocking rule, over the pairs that agree on its keys, without the
    // comparisons of the rule's own fields (those pairs agree on them by construction, which would
    // teach EM that "match" means "same blocking key"). Sessions run in file order, and a comparison's
    // m comes from the first session that can estimate it; later sessions hold it fixed. Rules on
    // identifiers come first, and their pairs are nearly all matches; a rule on names and birth date
    // also finds namesakes, who agree on much more than random pairs do (sex, middle name, region), so
    // a session of its own would take them for matches and learn that matches often differ in ID and
    // phone. A comparison no session can estimate takes the m of one session over all candidate
    // pairs.
    let all_free = vec![model::Role::Free; comparisons.len()];
    let em = model::em(
        comparisons,
        &all_free,
        &u,
        patterns,
        &u,
        spec.training.em_iterations,
        spec.training.em_tolerance,
    );
    let mut known: Vec<Option<Vec<f64>>> = vec![None; comparisons.len()];
    let mut iterations = em.iterations;
    let mut converged = em.converged;
    for (rule, session) in spec.blocking.iter().zip(sessions) {
        let pairs: u64 = session.values().sum();
        if pairs < 100 {
            continue;
        }
        let fields: Vec<&str> = rule
            .keys
            .iter()
            .map(|k| k.split_once('.').map_or(k.as_str(), |(f, _)| f))
            .collect();
        let roles: Vec<model::Role> = comparisons
            .iter()
            .zip(&known)
            .map(|(c, known)| {
                let field = spec.fields.keys().nth(c.field).map_or("", String::as_str);
                if fields.contains(&field) {
                    model::Role::Off
                } else if known.is_some() {
                    model::Role::Fixed
                } else {
                    model::Role::Free
                }
            })
            .collect();
        if !roles.contains(&model::Role::Free) {
            continue;
        }
        let start: Vec<Vec<f64>> = known
            .iter()
            .zip(&u)
            .map(|(k, u)| k.clone().unwrap_or_else(|| u.clone()))
            .collect();
        let result = model::em(
            comparisons,
            &roles,
            &start,
            session,
            &u,
            spec.training.em_iterations,
            spec.training.em_tolerance,
        );
        iterations += result.iterations;
        converged &= result.converged;
        for (i, role) in roles.iter().enumerate() {
            if *role == model::Role::Free {
                known[i] = Some(result.m[i].clone());
            }
        }
    }
    let m: Vec<Vec<f64>> = known
        .into_iter()
        .zip(&em.m)
        .map(|(k, all)| k.unwrap_or_else(|| all.clone()))
        .collect();
    let (prior, prior_from) = match prior_rule {
        Some(rule) => (
            prior_pairs as f64 / spec.training.prior_recall / total_pairs,
            format!("rule:{}", spec.blocking[rule].name),
        ),
        None => (
            em.lambda * candidate_pairs as f64 / total_pairs,
            "em".to_owned(),
        ),
    };
    let training = model::Training {
        u_pairs: n,
        blocked_pairs: candidate_pairs,
        gamma_patterns: patterns.len() as u64,
        em_iterations: iterations,
        em_converged: converged,
        blocked_match_share: em.lambda,
        prior_from,
    };
    let tf_summaries = comparisons
        .iter()
        .zip(tf_tables)
        .filter(|(c, _)| c.term_frequency)
        .map(|(c, t)| t.summary(&c.name))
        .collect();
    Model::build(comparisons, &m, &u, prior, tf_summaries, training)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u_pairs_are_the_pairs_drawn_grouped_by_tile() {
        // Sample rows out of order, spread over several tiles of each table.
        let left: Vec<usize> = (0..3_000).map(|i| (i * 7_919) % 9_000).collect();
        let right: Vec<usize> = (0..2_000).map(|i| (i * 104_729) % 5_000).collect();
        let pairs = u_pairs(0..50_000, 42, (&left, &right), false);
        assert_eq!(pairs.len(), 50_000);
        // Pair i is drawn by i alone: the pairs of two halves are those of the whole.
        let mut halves = u_pairs(0..20_000, 42, (&left, &right), false);
        halves.extend(u_pairs(20_000..50_000, 42, (&left, &right), false));
        let (mut a, mut b) = (pairs.clone(), halves);
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
        // Each tile's pairs are neighbours: once left, a tile never comes back.
        let tile = |&(l, r): &(u32, u32)| (left[l as usize] >> 10, right[r as usize] >> 10);
        let mut seen = std::collections::HashSet::new();
        let mut previous = None;
        for pair in &pairs {
            let t = tile(pair);
            if previous != Some(t) {
                assert!(seen.insert(t), "tile {t:?} split");
                previous = Some(t);
            }
        }
        assert!(seen.len() > 20, "the samples span {} tiles", seen.len());
    }

    #[test]
    fn a_dedupe_never_pairs_a_record_with_itself() {
        let side: Vec<usize> = (0..50).collect();
        let pairs = u_pairs(0..10_000, 7, (&side, &side), true);
        assert!(!pairs.is_empty() && pairs.len() < 10_000);
        assert!(
            pairs
                .iter()
                .all(|&(l, r)| side[l as usize] != side[r as usize])
        );
        assert!(u_pairs(0..10, 7, (&[], &side), false).is_empty());
    }

    #[test]
    fn tiles_grow_rather_than_outnumber_a_million() {
        assert_eq!(tile_shift(20_000, 20_000), 10);
        let shift = tile_shift(100_000_000, 100_000_000);
        assert!(((100_000_000usize >> shift) + 1).pow(2) <= 1 << 20);
        assert!(((100_000_000usize >> (shift - 1)) + 1).pow(2) > 1 << 20);
    }
}
