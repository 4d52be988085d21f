//! A job from end to end, in-process: the stages of the crate docs, each a set of tasks run on the
//! compute pool, and the outputs.

use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, RecordBatch, StringBuilder, UInt8Builder,
    UInt32Builder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rayon::prelude::*;
use serde::Serialize;

use crate::blocking::{Blocks, Index, Oversized};
use crate::compare::{Compiled, NULL, Scratch, compile, gamma_at, gamma_vector};
use crate::hash::{hash_str, mix64};
use crate::model::{self, Model, TfTable, probability};
use crate::output::{write_dataset, write_json};
use crate::spec::{JobSpec, Level, Mode};
use crate::standardise::{Reject, SourceCounts, Table, standardise_input};
use crate::{EngineError, Progress};

/// Records drawn from each side to estimate u.
const SAMPLE_RECORDS: usize = 20_000;

#[derive(Clone, Debug, Default, Serialize)]
pub struct SourceSummary {
    pub name: String,
    pub input: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// Accepted records of the large side with no key in common with the other side.
    pub pruned: u64,
    pub invalid_values: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RuleSummary {
    pub name: String,
    pub candidate_pairs: u64,
    pub oversized_blocks: u64,
    pub oversized_pairs_skipped: u64,
    pub largest_oversized_block: u64,
}

/// What `summary.json` holds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub mode: String,
    pub sources: Vec<SourceSummary>,
    pub candidate_pairs: u64,
    pub rules: Vec<RuleSummary>,
    pub pairs_written: u64,
    pub matches: u64,
    pub entities: u64,
    /// Link jobs: left records per reconciliation status.
    pub statuses: BTreeMap<String, u64>,
    pub thresholds: BTreeMap<String, f64>,
    pub prior: f64,
    /// Seconds per stage, and in total.
    pub timings: BTreeMap<String, f64>,
    pub warnings: Vec<String>,
    pub output: String,
}

/// Keeps the records with the `k` smallest hashes of their ids: a uniform sample, chosen the same way
/// whatever order or thread count the records come in.
struct BottomK {
    k: usize,
    heap: BinaryHeap<u64>,
}

impl BottomK {
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
}

fn sample_hash(seed: u64, id: &str) -> u64 {
    mix64(hash_str(id) ^ seed)
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

struct Stage<'a> {
    progress: &'a dyn Progress,
    timings: &'a mut BTreeMap<String, f64>,
}

impl Stage<'_> {
    fn run<T>(
        &mut self,
        name: &str,
        total: Option<u64>,
        f: impl FnOnce(&dyn Progress) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        let started = Instant::now();
        self.progress.start(name, total);
        let result = f(self.progress)?;
        self.progress.finish(name);
        *self.timings.entry(name.to_owned()).or_default() += started.elapsed().as_secs_f64();
        Ok(result)
    }
}

/// A scored candidate pair.
#[derive(Clone, Copy, Debug)]
struct Scored {
    left: u32,
    right: u32,
    weight: f64,
    probability: f64,
    gammas: u64,
    rule: u8,
}

/// Runs a job to completion and writes its outputs under `spec.output`.
pub fn run_job(spec: &JobSpec, progress: &dyn Progress) -> Result<Summary, EngineError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(spec.execution.threads)
        .build()
        .map_err(|e| EngineError::Other(format!("thread pool: {e}")))?;
    pool.install(|| run_in_pool(spec, progress))
}

fn run_in_pool(spec: &JobSpec, progress: &dyn Progress) -> Result<Summary, EngineError> {
    let started = Instant::now();
    let mut timings = BTreeMap::new();
    let mut stage = Stage {
        progress,
        timings: &mut timings,
    };
    let comparisons = compile(spec);
    let seed = spec.training.seed;
    let dedupe = spec.mode == Mode::Dedupe;

    // 1. Standardise. The left side whole; in a link job the right side pruned to the records that
    //    share a key with the left, plus a uniform sample for estimating u.
    let left_input = &spec.inputs[0];
    let left = stage.run(&format!("standardise {}", left_input.name), None, |p| {
        standardise_input(spec, left_input, None, |n| p.advance(n))
    })?;
    let mut right_terms: Vec<TfTable> = vec![TfTable::default(); comparisons.len()];
    let right = if dedupe {
        None
    } else {
        let right_input = &spec.inputs[1];
        let key_sets: Vec<HashSet<u64>> = left
            .table
            .keys
            .iter()
            .map(|keys| keys.iter().copied().filter(|&k| k != 0).collect())
            .collect();
        let mut sample = BottomK {
            k: SAMPLE_RECORDS,
            heap: BinaryHeap::new(),
        };
        let mut tf_buf = (String::new(), String::new());
        let mut keep = |t: &Table, r: usize| {
            // Term frequencies over every accepted record, before pruning: the pruned side is the
            // records most like the other side's, so its values would look more common than they are.
            count_terms(&comparisons, t, r, &mut right_terms, &mut tf_buf);
            let shares_key = key_sets
                .iter()
                .zip(&t.keys)
                .any(|(set, keys)| keys[r] != 0 && set.contains(&keys[r]));
            // Offer every record to the sample, so the sample does not depend on the keys.
            let sampled = sample.offer(sample_hash(seed, t.ids.get(r)));
            shares_key || sampled
        };
        Some(
            stage.run(&format!("standardise {}", right_input.name), None, |p| {
                standardise_input(spec, right_input, Some(&mut keep), |n| p.advance(n))
            })?,
        )
    };
    let left_table = &left.table;
    let right_table = right.as_ref().map_or(left_table, |r| &r.table);

    // 2. Index the keys by partition.
    let partitions = spec.execution.partitions;
    let (left_index, right_index) = stage.run("index", None, |_| {
        let l = Index::build(left_table, partitions);
        let r = (!dedupe).then(|| Index::build(right_table, partitions));
        Ok((l, r))
    })?;
    let blocks = Blocks {
        left: left_table,
        right: right_table,
        left_index: &left_index,
        right_index: right_index.as_ref().unwrap_or(&left_index),
        dedupe,
        max_block_pairs: spec.execution.max_block_pairs,
    };
    let prior_rule = spec
        .training
        .prior_rule
        .as_ref()
        .and_then(|name| spec.blocking.iter().position(|b| &b.name == name));

    // 3. Compare: gamma patterns of every candidate pair, per partition, merged in order.
    struct CompareOut {
        patterns: HashMap<u64, u64>,
        /// Per rule, the patterns of every pair whose keys agree under it (not only those it found
        /// first): the training session of that rule.
        sessions: HashMap<(usize, u64), u64>,
        per_rule: Vec<u64>,
        prior_pairs: u64,
        oversized: Vec<Oversized>,
    }
    let outs: Vec<CompareOut> = stage.run("compare", Some(u64::from(partitions)), |p| {
        Ok((0..partitions)
            .into_par_iter()
            .map_init(Scratch::default, |scratch, partition| {
                let mut out = CompareOut {
                    patterns: HashMap::new(),
                    sessions: HashMap::new(),
                    per_rule: vec![0; spec.blocking.len()],
                    prior_pairs: 0,
                    oversized: Vec::new(),
                };
                out.oversized = blocks.for_each_pair(partition, |l, r, rule| {
                    let g = gamma_vector(&comparisons, left_table, l, right_table, r, scratch);
                    *out.patterns.entry(g).or_default() += 1;
                    out.per_rule[rule] += 1;
                    for q in 0..spec.blocking.len() {
                        let k = left_table.keys[q][l];
                        if k != 0 && k == right_table.keys[q][r] {
                            *out.sessions.entry((q, g)).or_default() += 1;
                            if prior_rule == Some(q) {
                                out.prior_pairs += 1;
                            }
                        }
                    }
                });
                p.advance(1);
                out
            })
            .collect())
    })?;
    let mut patterns: BTreeMap<u64, u64> = BTreeMap::new();
    let mut sessions: Vec<BTreeMap<u64, u64>> = vec![BTreeMap::new(); spec.blocking.len()];
    let mut per_rule = vec![0u64; spec.blocking.len()];
    let mut oversized = vec![Oversized::default(); spec.blocking.len()];
    let mut prior_pairs = 0;
    for out in outs {
        for (g, n) in out.patterns {
            *patterns.entry(g).or_default() += n;
        }
        for ((q, g), n) in out.sessions {
            *sessions[q].entry(g).or_default() += n;
        }
        for (a, b) in per_rule.iter_mut().zip(&out.per_rule) {
            *a += b;
        }
        for (a, b) in oversized.iter_mut().zip(&out.oversized) {
            a.merge(b);
        }
        prior_pairs += out.prior_pairs;
    }
    let candidate_pairs: u64 = per_rule.iter().sum();

    // 4. Train, or load a saved model.
    let right_accepted = right
        .as_ref()
        .map_or(left.counts.accepted, |r| r.counts.accepted);
    let total_pairs = if dedupe {
        let n = left.counts.accepted as f64;
        n * (n - 1.0) / 2.0
    } else {
        left.counts.accepted as f64 * right_accepted as f64
    };
    let tf_tables = stage.run("term frequencies", None, |_| {
        Ok(term_frequencies(&comparisons, left_table, right_terms))
    })?;
    let model = stage.run("train", None, |_| match &spec.training.model {
        Some(path) => Model::load(path, &comparisons),
        None => Ok(train(
            spec,
            &comparisons,
            (left_table, right_table),
            (&patterns, &sessions),
            (
                prior_rule,
                prior_pairs,
                candidate_pairs,
                total_pairs.max(1.0),
            ),
            &tf_tables,
        )),
    })?;

    // 5. Score every candidate pair; keep those above the floor.
    let weights = model.weights();
    let prior_weight = model.prior_weight();
    let min_probability = spec.execution.min_pair_probability;
    let tf_first_level: Vec<bool> = comparisons
        .iter()
        .map(|c| c.term_frequency && matches!(c.levels[0], Level::Exact | Level::ExactKey))
        .collect();
    let mut scored: Vec<Scored> = stage.run("score", Some(u64::from(partitions)), |p| {
        let parts: Vec<Vec<Scored>> = (0..partitions)
            .into_par_iter()
            .map_init(
                || (Scratch::default(), (String::new(), String::new())),
                |(scratch, buf), partition| {
                    let mut out = Vec::new();
                    blocks.for_each_pair(partition, |l, r, rule| {
                        let gammas =
                            gamma_vector(&comparisons, left_table, l, right_table, r, scratch);
                        let mut weight = prior_weight;
                        for (i, c) in comparisons.iter().enumerate() {
                            let g = gamma_at(gammas, i);
                            if g == 1 && tf_first_level[i] {
                                let frequency = c
                                    .tf_value(left_table, l, buf)
                                    .and_then(|v| tf_tables[i].frequency(v));
                                if let Some(f) = frequency {
                                    weight += (model.m_of(i, 1) / f.max(1e-12)).log2();
                                    continue;
                                }
                            }
                            weight += weights[i][usize::from(g)];
                        }
                        let probability = probability(weight);
                        if probability >= min_probability {
                            out.push(Scored {
                                left: l as u32,
                                right: r as u32,
                                weight,
                                probability,
                                gammas,
                                rule: rule as u8,
                            });
                        }
                    });
                    p.advance(1);
                    out
                },
            )
            .collect();
        Ok(parts.into_iter().flatten().collect())
    })?;
    scored.par_sort_unstable_by_key(|s| (s.left, s.right));

    // 6. Cluster the matches and reconcile.
    let match_threshold = spec.thresholds.match_;
    let (entities, entity_count) = stage.run("cluster", None, |_| {
        Ok(cluster(
            &scored,
            left_table.len(),
            if dedupe { 0 } else { right_table.len() },
            match_threshold,
        ))
    })?;

    // 7. Write.
    let out_dir = &spec.output;
    std::fs::create_dir_all(out_dir)
        .map_err(|e| EngineError::Output(format!("{}: {e}", out_dir.display())))?;
    let mut statuses = BTreeMap::new();
    stage.run("write", None, |_| {
        write_dataset(
            &out_dir.join("pairs"),
            pairs_schema(&comparisons),
            pairs_batches(&scored, &comparisons, spec, left_table, right_table),
        )?;
        write_dataset(
            &out_dir.join("clusters"),
            clusters_schema(),
            clusters_batches(left_table, (!dedupe).then_some(right_table), &entities),
        )?;
        if !dedupe {
            let (batch, counts) =
                reconciliation(spec, &comparisons, &scored, left_table, right_table)?;
            statuses = counts;
            write_dataset(&out_dir.join("reconciliation"), batch.schema(), [batch])?;
        }
        let mut all_rejects: Vec<(&str, &Reject)> = Vec::new();
        for (name, rejects) in std::iter::once((&left_input.name, &left.rejects))
            .chain(right.as_ref().map(|r| (&spec.inputs[1].name, &r.rejects)))
        {
            let mut sorted: Vec<&Reject> = rejects.iter().collect();
            sorted.sort_by_key(|r| r.row);
            all_rejects.extend(sorted.into_iter().map(|r| (name.as_str(), r)));
        }
        write_dataset(
            &out_dir.join("rejects"),
            rejects_schema(),
            [rejects_batch(&all_rejects)?],
        )?;
        write_json(&out_dir.join("model.json"), &model)?;
        Ok(())
    })?;

    timings.insert("total".into(), started.elapsed().as_secs_f64());
    let mut warnings = Vec::new();
    let rules: Vec<RuleSummary> =
        spec.blocking
            .iter()
            .zip(per_rule.iter().zip(&oversized))
            .map(|(rule, (&pairs, over))| {
                if over.blocks > 0 {
                    warnings.push(format!(
                    "rule `{}`: {} blocks over execution.max_block_pairs ({}) skipped, {} pairs, \
                     the largest {} pairs: make the rule more selective",
                    rule.name, over.blocks, spec.execution.max_block_pairs, over.pairs, over.largest
                ));
                }
                RuleSummary {
                    name: rule.name.clone(),
                    candidate_pairs: pairs,
                    oversized_blocks: over.blocks,
                    oversized_pairs_skipped: over.pairs,
                    largest_oversized_block: over.largest,
                }
            })
            .collect();
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let source_summary = |name: &str, c: &SourceCounts| SourceSummary {
        name: name.to_owned(),
        input: c.input,
        accepted: c.accepted,
        rejected: c.rejected,
        pruned: c.pruned,
        invalid_values: c.invalid_values.clone(),
    };
    let mut sources = vec![source_summary(&left_input.name, &left.counts)];
    if let Some(r) = &right {
        sources.push(source_summary(&spec.inputs[1].name, &r.counts));
    }
    let summary = Summary {
        mode: if dedupe { "dedupe" } else { "link" }.into(),
        sources,
        candidate_pairs,
        rules,
        pairs_written: scored.len() as u64,
        matches: scored
            .iter()
            .filter(|s| s.probability >= match_threshold)
            .count() as u64,
        entities: entity_count,
        statuses,
        thresholds: BTreeMap::from([
            ("match".to_owned(), spec.thresholds.match_),
            ("review".to_owned(), spec.thresholds.review),
            ("min_pair_probability".to_owned(), min_probability),
        ]),
        prior: model.prior,
        timings,
        warnings,
        output: out_dir.display().to_string(),
    };
    write_json(&out_dir.join("summary.json"), &summary)?;
    Ok(summary)
}

/// Adds record `row` of `t` to the term-frequency tables of the comparisons that ask for them.
fn count_terms(
    comparisons: &[Compiled],
    t: &Table,
    row: usize,
    tables: &mut [TfTable],
    buf: &mut (String, String),
) {
    for (c, table) in comparisons.iter().zip(tables) {
        if c.term_frequency
            && let Some(v) = c.tf_value(t, row, buf)
        {
            table.add(v);
        }
    }
}

/// Term-frequency tables for the comparisons that ask for them, over every accepted record of both
/// sides: the left table's counted here, and `right`, the right side's counted as it was read (before
/// pruning; empty in a dedupe job).
fn term_frequencies(comparisons: &[Compiled], left: &Table, right: Vec<TfTable>) -> Vec<TfTable> {
    comparisons
        .par_iter()
        .zip(right)
        .map(|(c, right)| {
            let mut table = TfTable::default();
            if !c.term_frequency {
                return table;
            }
            let mut buf = (String::new(), String::new());
            for row in 0..left.len() {
                if let Some(v) = c.tf_value(left, row, &mut buf) {
                    table.add(v);
                }
            }
            table.merge(right);
            table
        })
        .collect()
}

/// u from random pairs of the two samples, m by EM, and the prior.
fn train(
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
    // A link job's right table is pruned to the records that share a key with the left side, plus the
    // uniform sample kept while reading it: the smallest id hashes under `seed`, which this draws
    // again. Any other seed would draw mostly kept records, the left side's look-alikes, and bias u.
    // A dedupe job draws both samples from one table, so the right one takes another seed.
    let right_sample = sample_rows(right, if dedupe { seed ^ 0x5eed } else { seed });
    let pairs = spec.training.u_pairs;
    let chunks = 64u64;
    let counts: Vec<Vec<Vec<u64>>> = (0..chunks)
        .into_par_iter()
        .map_init(Scratch::default, |scratch, chunk| {
            let mut counts: Vec<Vec<u64>> =
                comparisons.iter().map(|c| vec![0; c.gammas()]).collect();
            if left_sample.is_empty() || right_sample.is_empty() {
                return counts;
            }
            let range = chunk * pairs / chunks..(chunk + 1) * pairs / chunks;
            for i in range {
                let h = mix64(seed ^ mix64(i.wrapping_add(0x75)));
                let l = left_sample[(h % left_sample.len() as u64) as usize];
                let r = right_sample[((h >> 32) % right_sample.len() as u64) as usize];
                if dedupe && l == r {
                    continue;
                }
                let g = gamma_vector(comparisons, left, l, right, r, scratch);
                for (c, counts) in counts.iter_mut().enumerate() {
                    counts[usize::from(gamma_at(g, c))] += 1;
                }
            }
            counts
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
        u_pairs: pairs,
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

/// Connected components of the pairs at or above the threshold. Nodes are left rows, then right rows.
/// Each component is named after its smallest node, so entity ids do not depend on the order pairs
/// were found in.
fn cluster(scored: &[Scored], left: usize, right: usize, threshold: f64) -> (Vec<u32>, u64) {
    let mut parent: Vec<u32> = (0..(left + right) as u32).collect();
    fn find(parent: &mut [u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            parent[x as usize] = parent[parent[x as usize] as usize];
            x = parent[x as usize];
        }
        x
    }
    let offset = if right == 0 { 0 } else { left as u32 };
    for s in scored.iter().filter(|s| s.probability >= threshold) {
        let (a, b) = (
            find(&mut parent, s.left),
            find(&mut parent, s.right + offset),
        );
        if a != b {
            let (low, high) = (a.min(b), a.max(b));
            parent[high as usize] = low;
        }
    }
    let roots: Vec<u32> = (0..parent.len() as u32)
        .map(|x| find(&mut parent, x))
        .collect();
    let entities = roots
        .iter()
        .enumerate()
        .filter(|&(i, &r)| i as u32 == r)
        .count() as u64;
    (roots, entities)
}

fn text_field(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn pairs_schema(comparisons: &[Compiled]) -> SchemaRef {
    let mut fields = vec![
        text_field("left_source", false),
        text_field("left_id", false),
        text_field("right_source", false),
        text_field("right_id", false),
        Field::new("match_weight", DataType::Float64, false),
        Field::new("match_probability", DataType::Float64, false),
    ];
    fields.extend(
        comparisons
            .iter()
            .map(|c| Field::new(format!("gamma_{}", c.name), DataType::UInt8, false)),
    );
    fields.push(text_field("rule", false));
    Arc::new(Schema::new(fields))
}

fn pairs_batches<'a>(
    scored: &'a [Scored],
    comparisons: &'a [Compiled],
    spec: &'a JobSpec,
    left: &'a Table,
    right: &'a Table,
) -> impl Iterator<Item = RecordBatch> + 'a {
    scored.chunks(128 * 1024).map(move |chunk| {
        let n = chunk.len();
        let mut ls = StringBuilder::with_capacity(n, n * 8);
        let mut li = StringBuilder::with_capacity(n, n * 12);
        let mut rs = StringBuilder::with_capacity(n, n * 8);
        let mut ri = StringBuilder::with_capacity(n, n * 12);
        let mut w = Float64Builder::with_capacity(n);
        let mut p = Float64Builder::with_capacity(n);
        let mut gammas: Vec<UInt8Builder> = comparisons
            .iter()
            .map(|_| UInt8Builder::with_capacity(n))
            .collect();
        let mut rule = StringBuilder::with_capacity(n, n * 8);
        for s in chunk {
            ls.append_value(&left.source);
            li.append_value(left.ids.get(s.left as usize));
            rs.append_value(&right.source);
            ri.append_value(right.ids.get(s.right as usize));
            w.append_value(s.weight);
            p.append_value(s.probability);
            for (i, g) in gammas.iter_mut().enumerate() {
                g.append_value(gamma_at(s.gammas, i));
            }
            rule.append_value(&spec.blocking[usize::from(s.rule)].name);
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(ls.finish()),
            Arc::new(li.finish()),
            Arc::new(rs.finish()),
            Arc::new(ri.finish()),
            Arc::new(w.finish()),
            Arc::new(p.finish()),
        ];
        columns.extend(gammas.iter_mut().map(|g| Arc::new(g.finish()) as ArrayRef));
        columns.push(Arc::new(rule.finish()));
        RecordBatch::try_new(pairs_schema(comparisons), columns).expect("pairs schema")
    })
}

fn clusters_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text_field("source", false),
        text_field("record_id", false),
        text_field("entity_id", false),
    ]))
}

fn clusters_batches<'a>(
    left: &'a Table,
    right: Option<&'a Table>,
    roots: &'a [u32],
) -> impl Iterator<Item = RecordBatch> + 'a {
    let node = move |i: usize| -> (&'a Table, usize) {
        if i < left.len() {
            (left, i)
        } else {
            (right.unwrap_or(left), i - left.len())
        }
    };
    (0..roots.len())
        .collect::<Vec<_>>()
        .chunks(128 * 1024)
        .map(|c| c.to_vec())
        .collect::<Vec<_>>()
        .into_iter()
        .map(move |chunk| {
            let n = chunk.len();
            let mut source = StringBuilder::with_capacity(n, n * 8);
            let mut id = StringBuilder::with_capacity(n, n * 12);
            let mut entity = StringBuilder::with_capacity(n, n * 17);
            for i in chunk {
                let (t, r) = node(i);
                source.append_value(&t.source);
                id.append_value(t.ids.get(r));
                let (rt, rr) = node(roots[i] as usize);
                let h = hash_str(&format!("{}\u{0}{}", rt.source, rt.ids.get(rr)));
                entity.append_value(format!("E{h:016x}"));
            }
            RecordBatch::try_new(
                clusters_schema(),
                vec![
                    Arc::new(source.finish()),
                    Arc::new(id.finish()),
                    Arc::new(entity.finish()),
                ],
            )
            .expect("clusters schema")
        })
}

/// One row per left record: its best match on the right, a status, and per comparison whether the two
/// sides differ and the right side's value.
fn reconciliation(
    spec: &JobSpec,
    comparisons: &[Compiled],
    scored: &[Scored],
    left: &Table,
    right: &Table,
) -> Result<(RecordBatch, BTreeMap<String, u64>), EngineError> {
    let (match_t, review_t) = (spec.thresholds.match_, spec.thresholds.review);
    let n = left.len();
    let mut left_id = StringBuilder::with_capacity(n, n * 12);
    let mut status = StringBuilder::with_capacity(n, n * 8);
    let mut right_id = StringBuilder::with_capacity(n, n * 12);
    let mut probability = Float64Builder::with_capacity(n);
    let mut matches = UInt32Builder::with_capacity(n);
    let mut differs: Vec<BooleanBuilder> = comparisons
        .iter()
        .map(|_| BooleanBuilder::with_capacity(n))
        .collect();
    let mut values: Vec<StringBuilder> = comparisons
        .iter()
        .map(|_| StringBuilder::with_capacity(n, n * 12))
        .collect();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut i = 0;
    for l in 0..n {
        let start = i;
        while i < scored.len() && scored[i].left as usize == l {
            i += 1;
        }
        let candidates = &scored[start..i];
        // The best candidate; ties go to the first right record, for determinism.
        let best = candidates
            .iter()
            .fold(None::<&Scored>, |best, s| match best {
                Some(b) if b.probability >= s.probability => Some(b),
                _ => Some(s),
            });
        let above_match = candidates
            .iter()
            .filter(|s| s.probability >= match_t)
            .count();
        let state = match best {
            Some(_) if above_match > 1 => "ambiguous",
            Some(_) if above_match == 1 => "matched",
            Some(b) if b.probability >= review_t => "review",
            _ => "unmatched",
        };
        *counts.entry(state.to_owned()).or_default() += 1;
        left_id.append_value(left.ids.get(l));
        status.append_value(state);
        matches.append_value(above_match as u32);
        let shown = best.filter(|b| b.probability >= review_t);
        match shown {
            Some(b) => {
                right_id.append_value(right.ids.get(b.right as usize));
                probability.append_value(b.probability);
                for (c, comparison) in comparisons.iter().enumerate() {
                    let g = gamma_at(b.gammas, c);
                    differs[c].append_option((g != NULL).then_some(g != 1));
                    values[c].append_option(comparison.display(right, b.right as usize));
                }
            }
            None => {
                right_id.append_null();
                probability.append_option(best.map(|b| b.probability));
                for c in 0..comparisons.len() {
                    differs[c].append_null();
                    values[c].append_null();
                }
            }
        }
    }
    let mut fields = vec![
        text_field("left_id", false),
        text_field("status", false),
        text_field("right_id", true),
        Field::new("match_probability", DataType::Float64, true),
        Field::new("matches_above_threshold", DataType::UInt32, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(left_id.finish()),
        Arc::new(status.finish()),
        Arc::new(right_id.finish()),
        Arc::new(probability.finish()),
        Arc::new(matches.finish()),
    ];
    for (c, comparison) in comparisons.iter().enumerate() {
        fields.push(Field::new(
            format!("{}_differs", comparison.name),
            DataType::Boolean,
            true,
        ));
        fields.push(text_field(&format!("right_{}", comparison.name), true));
        columns.push(Arc::new(differs[c].finish()));
        columns.push(Arc::new(values[c].finish()));
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
    Ok((batch, counts))
}

fn rejects_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text_field("source", false),
        text_field("record_id", false),
        Field::new("row", DataType::UInt64, false),
        text_field("reason", false),
    ]))
}

fn rejects_batch(rejects: &[(&str, &Reject)]) -> Result<RecordBatch, EngineError> {
    let mut source = StringBuilder::new();
    let mut id = StringBuilder::new();
    let mut row = UInt64Builder::new();
    let mut reason = StringBuilder::new();
    for (s, r) in rejects {
        source.append_value(s);
        id.append_value(&r.record_id);
        row.append_value(r.row);
        reason.append_value(&r.reason);
    }
    Ok(RecordBatch::try_new(
        rejects_schema(),
        vec![
            Arc::new(source.finish()),
            Arc::new(id.finish()),
            Arc::new(row.finish()),
            Arc::new(reason.finish()),
        ],
    )?)
}
