//! The write stage: clusters over the matched pairs, the reconciliation table, and every output file.
//! One task, after every partition is scored: it reads the scored pairs and the kept records' ids, not
//! the standardised records.
//!
//! **Invariant:** outputs are written in record order (pairs by left then right record number, clusters
//! and reconciliation by record number), and an entity is named after its first record, so the files
//! do not depend on how the job was cut into tasks.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Float64Builder, RecordBatch, StringArray,
    StringBuilder, UInt8Builder, UInt32Builder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt8Type, UInt64Type};

use crate::EngineError;
use crate::checks::PinCheck;
use crate::compare::{Compiled, NULL, compile, gamma_at};
use crate::exchange::{text_column, u64_column};
use crate::hash::hash_bytes;
use crate::job::{ClusterSummary, RuleSummary, Skew, SourceSummary, Summary};
use crate::output::{write_dataset, write_json};
use crate::spec::{Clusters, JobSpec};
use crate::standardise::{FieldReport, Reject, Strings};
use crate::storage::ScratchFiles;
use crate::task::{
    Compared, ScoredPart, Side, Trained, kept_records, load_trained, split_record_number,
};

/// A scored pair, its records as positions in the sides' [`Records`].
#[derive(Clone, Copy, Debug)]
struct Scored {
    left: u32,
    right: u32,
    weight: f64,
    probability: f64,
    gammas: u64,
    rule: u8,
    /// Where the pair's right-side values are: batch and row of the scored files.
    at: (u32, u32),
}

/// The kept records of one side, in record order.
struct Records {
    source: String,
    rows: Vec<u64>,
    ids: Strings,
    pin_checks: Vec<PinCheck>,
}

impl Records {
    fn load(spec: &JobSpec, files: &ScratchFiles, side: &Side) -> Result<Records, EngineError> {
        let kept = kept_records(files, side)?;
        Ok(Records {
            source: spec.inputs[side.input].name.clone(),
            rows: kept.rows,
            ids: kept.ids,
            pin_checks: kept.pin_checks,
        })
    }

    fn len(&self) -> usize {
        self.rows.len()
    }

    fn position(&self, row: u64) -> Result<u32, EngineError> {
        self.rows
            .binary_search(&row)
            .map(|p| p as u32)
            .map_err(|_| {
                EngineError::Other("a scored pair names a record that was not kept".into())
            })
    }
}

/// Writes pairs, clusters, reconciliation (link jobs), rejects and the model under `spec.output`, and
/// returns the job's summary (without timings: the runner adds them and writes `summary.json`).
pub fn write(
    spec: &JobSpec,
    files: &ScratchFiles,
    sides: &[Side],
    compared: &[Compared],
    trained: &Trained,
    scored_parts: &[ScoredPart],
    skew: &Skew,
) -> Result<Summary, EngineError> {
    let comparisons = compile(spec);
    let dedupe = sides.len() == 1;
    let (left, right) = rayon::join(
        || Records::load(spec, files, &sides[0]),
        || {
            (!dedupe)
                .then(|| Records::load(spec, files, &sides[1]))
                .transpose()
        },
    );
    let (left, right) = (left?, right?);
    let right_records = right.as_ref().unwrap_or(&left);

    // Every scored pair, in record order (a split partition's slices each hold some of its pairs).
    let mut shown = Vec::new();
    let mut scored = Vec::new();
    for part in scored_parts {
        for batch in files.ipc(&part.pairs_file)?.read_all()? {
            let b = shown.len() as u32;
            let (l, r) = (
                u64_column(&batch, "left_row")?,
                u64_column(&batch, "right_row")?,
            );
            let column = |name: &str| {
                batch
                    .column_by_name(name)
                    .cloned()
                    .ok_or_else(|| EngineError::Other(format!("pairs file: no column `{name}`")))
            };
            let (w, p, g, rule) = (
                column("weight")?,
                column("probability")?,
                column("gammas")?,
                column("rule")?,
            );
            let (w, p) = (
                w.as_primitive::<arrow::datatypes::Float64Type>(),
                p.as_primitive::<arrow::datatypes::Float64Type>(),
            );
            let (g, rule) = (
                g.as_primitive::<UInt64Type>(),
                rule.as_primitive::<UInt8Type>(),
            );
            for i in 0..batch.num_rows() {
                scored.push(Scored {
                    left: left.position(l[i])?,
                    right: right_records.position(r[i])?,
                    weight: w.value(i),
                    probability: p.value(i),
                    gammas: g.value(i),
                    rule: rule.value(i),
                    at: (b, i as u32),
                });
            }
            shown.push(batch);
        }
    }
    scored.sort_unstable_by_key(|s| (s.left, s.right));
    if scored
        .windows(2)
        .any(|w| (w[0].left, w[0].right) == (w[1].left, w[1].right))
    {
        return Err(EngineError::Other("a pair was scored twice".into()));
    }

    let match_threshold = spec.thresholds.match_;
    let (entities, grouping) = cluster(
        &scored,
        (left.len(), right.as_ref().map_or(0, Records::len)),
        spec,
    );
    let out_dir = &spec.output;
    std::fs::create_dir_all(out_dir)
        .map_err(|e| EngineError::Output(format!("{}: {e}", out_dir.display())))?;
    // The three datasets are independent files, each written by one thread: side by side.
    let ((pairs, clusters), statuses) = rayon::join(
        || {
            rayon::join(
                || {
                    write_dataset(
                        &out_dir.join("pairs"),
                        pairs_schema(&comparisons),
                        &["left_id", "right_id"],
                        pairs_batches(&scored, &comparisons, spec, &left, right_records),
                    )
                },
                || {
                    write_dataset(
                        &out_dir.join("clusters"),
                        clusters_schema(),
                        &["record_id", "entity_id"],
                        clusters_batches(&left, right.as_ref(), &entities),
                    )
                },
            )
        },
        || -> Result<BTreeMap<_, _>, EngineError> {
            let Some(right) = &right else {
                return Ok(BTreeMap::new());
            };
            let (batch, counts) =
                reconciliation(spec, &comparisons, &scored, (&left, right), &shown)?;
            write_dataset(
                &out_dir.join("reconciliation"),
                batch.schema(),
                &["left_id", "right_id"],
                [batch],
            )?;
            Ok(counts)
        },
    );
    pairs?;
    clusters?;
    let statuses = statuses?;
    let mut rejects: Vec<(&str, Reject)> = Vec::new();
    for side in sides {
        let name = spec.inputs[side.input].name.as_str();
        rejects.extend(
            side_rejects(spec, files, side)?
                .into_iter()
                .map(|r| (name, r)),
        );
    }
    write_dataset(
        &out_dir.join("rejects"),
        rejects_schema(),
        &["record_id"],
        [rejects_batch(&rejects)?],
    )?;
    let (model, _) = load_trained(files, trained, &comparisons)?;
    write_json(&out_dir.join("model.json"), &model)?;

    let mut warnings = Vec::new();
    let rules: Vec<RuleSummary> = spec
        .blocking
        .iter()
        .enumerate()
        .map(|(q, rule)| {
            let mut summary = RuleSummary {
                name: rule.name.clone(),
                ..RuleSummary::default()
            };
            for c in compared {
                summary.candidate_pairs += c.per_rule[q];
                let o = &c.oversized[q];
                summary.oversized_blocks += o.blocks;
                summary.oversized_pairs_skipped += o.pairs;
                summary.largest_oversized_block = summary.largest_oversized_block.max(o.largest);
            }
            if summary.oversized_blocks > 0 {
                warnings.push(format!(
                    "rule `{}`: {} blocks over execution.max_block_pairs ({}) skipped, {} pairs, \
                     the largest {} pairs: make the rule more selective",
                    rule.name,
                    summary.oversized_blocks,
                    spec.execution.max_block_pairs,
                    summary.oversized_pairs_skipped,
                    summary.largest_oversized_block
                ));
            }
            summary
        })
        .collect();
    for side in sides {
        let mut per_file: BTreeMap<u32, u64> = BTreeMap::new();
        for part in &side.parts {
            *per_file.entry(part.file_index).or_default() += part.counts.input;
        }
        let per_file: Vec<u64> = per_file.into_values().collect();
        warnings.extend(no_records_warning(&spec.inputs[side.input].name, &per_file));
    }
    warnings.extend(crate::limits::partitions_warning(&spec.execution));
    if grouping.components_cut > 0 {
        warnings.push(format!(
            "clusters: {} connected components over {} records (the largest {}, {} records in all) \
             were cut at their weakest links: a few wrong pairs chain people together; review them, \
             or raise clusters.threshold",
            grouping.components_cut,
            grouping.max_size,
            grouping.largest_component,
            grouping.records_in_cut_components
        ));
    }
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let sources: Vec<SourceSummary> = sides
        .iter()
        .zip(std::iter::once(&left).chain(right.as_ref()))
        .map(|(side, kept)| {
            let mut s = SourceSummary {
                name: spec.inputs[side.input].name.clone(),
                ..SourceSummary::default()
            };
            for part in &side.parts {
                s.input += part.counts.input;
                s.accepted += part.counts.accepted;
                s.rejected += part.counts.rejected;
                s.from_cache += part.counts.from_cache;
                for (field, n) in &part.counts.invalid_values {
                    *s.invalid_values.entry(field.clone()).or_default() += n;
                }
                for (field, shapes) in &part.counts.unread_shapes {
                    let into = s.unread_shapes.entry(field.clone()).or_default();
                    for (shape, n) in shapes {
                        FieldReport::add_shape(into, shape.clone(), *n);
                    }
                }
                for (column, n) in &part.counts.repaired_ids {
                    *s.repaired_ids.entry(column.clone()).or_default() += n;
                }
                s.no_blocking_key += part.counts.no_blocking_key;
                for (flag, n) in &part.counts.pin_checks {
                    *s.pin_checks.entry(flag.clone()).or_default() += n;
                }
            }
            let input = &spec.inputs[side.input];
            for (field, order) in &input.conventions.date_order {
                s.conventions.insert(field.clone(), order.name().to_owned());
            }
            for (column, repair) in &input.conventions.id_repair {
                let how = if *repair { "restored" } else { "not restored" };
                s.conventions
                    .insert(column.clone(), format!("leading zeros {how}"));
            }
            s.accepted -= side.ids.duplicates;
            s.rejected += side.ids.duplicates;
            s.pruned = s.accepted - kept.len() as u64;
            s
        })
        .collect();
    for s in &sources {
        warnings.extend(source_warnings(s));
    }
    Ok(Summary {
        mode: if dedupe { "dedupe" } else { "link" }.into(),
        sources,
        candidate_pairs: rules.iter().map(|r| r.candidate_pairs).sum(),
        rules,
        skew: skew.clone(),
        pairs_written: scored.len() as u64,
        matches: scored
            .iter()
            .filter(|s| s.probability >= match_threshold)
            .count() as u64,
        entities: grouping.entities,
        clusters: grouping,
        statuses,
        thresholds: BTreeMap::from([
            ("match".to_owned(), spec.thresholds.match_),
            ("review".to_owned(), spec.thresholds.review),
            (
                "min_pair_probability".to_owned(),
                spec.execution.min_pair_probability,
            ),
        ]),
        prior: model.prior,
        timings: BTreeMap::new(),
        warnings,
        output: out_dir.display().to_string(),
    })
}

/// A source's losses worth a warning: a field whose values were not read for more than
/// [`WARN_LOSS`] of its records (with the commonest shapes), and records rejected for lacking every
/// blocking key beyond the same share.
fn source_warnings(s: &SourceSummary) -> Vec<String> {
    let share = |n: u64| n as f64 / s.input.max(1) as f64;
    let mut warnings = Vec::new();
    for (field, n) in &s.invalid_values {
        if share(*n) <= WARN_LOSS {
            continue;
        }
        let mut shapes: Vec<(&String, &u64)> = s
            .unread_shapes
            .get(field)
            .map(|m| m.iter().collect())
            .unwrap_or_default();
        shapes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let shown: Vec<String> = shapes
            .iter()
            .take(3)
            .map(|(shape, n)| format!("`{shape}`: {n}"))
            .collect();
        warnings.push(format!(
            "source `{}`: field `{field}`: {n} of {} values not read ({:.2}%), by shape {}",
            s.name,
            s.input,
            100.0 * share(*n),
            shown.join(", ")
        ));
    }
    if share(s.no_blocking_key) > WARN_LOSS {
        warnings.push(format!(
            "source `{}`: {} of {} records rejected without a value for any blocking rule ({:.2}%)",
            s.name,
            s.no_blocking_key,
            s.input,
            100.0 * share(s.no_blocking_key)
        ));
    }
    warnings
}

/// The share of a source's records a field may fail to read before the job warns.
const WARN_LOSS: f64 = 0.001;

/// The warning for an input whose files, or some of them, hold no records (a CSV header alone, a
/// Parquet file of no rows), given each file's records in name order: the job runs, as an empty delta
/// may be legitimate, but more often the export went wrong, and the summary must say so.
fn no_records_warning(name: &str, per_file: &[u64]) -> Option<String> {
    const NAMED: usize = 10;
    let empty: Vec<usize> = (0..per_file.len()).filter(|&f| per_file[f] == 0).collect();
    if empty.is_empty() {
        return None;
    }
    if empty.len() == per_file.len() {
        let files = if per_file.len() == 1 {
            "its file holds".to_owned()
        } else {
            format!("its {} files hold", per_file.len())
        };
        return Some(format!("input `{name}` has no records: {files} none"));
    }
    let mut named: Vec<String> = empty
        .iter()
        .take(NAMED)
        .map(|f| (f + 1).to_string())
        .collect();
    if empty.len() > NAMED {
        named.push(format!("{} more", empty.len() - NAMED));
    }
    Some(format!(
        "input `{name}`: {} of its {} files have no records (in name order: {})",
        empty.len(),
        per_file.len(),
        named.join(", ")
    ))
}

/// A side's rejects in input order, rows counted across its files: those of each file, and the
/// records whose id an earlier file already had.
fn side_rejects(
    spec: &JobSpec,
    files: &ScratchFiles,
    side: &Side,
) -> Result<Vec<Reject>, EngineError> {
    let mut parts: Vec<_> = side.parts.iter().collect();
    parts.sort_by_key(|p| p.file_index);
    let mut base = BTreeMap::new();
    let mut next = 0u64;
    for p in &parts {
        base.insert(p.file_index, next);
        next += p.records;
    }
    let global = |number: u64| {
        let (file, row) = split_record_number(number);
        base.get(&file).copied().unwrap_or(0) + row
    };
    let mut rejects = Vec::new();
    for p in &parts {
        let offset = base[&p.file_index];
        for batch in files.ipc(&p.rejects_file)?.read_all()? {
            let (ids, rows, reasons) = (
                text_column(&batch, "record_id")?,
                u64_column(&batch, "row")?,
                text_column(&batch, "reason")?,
            );
            for (i, row) in rows.into_iter().enumerate() {
                rejects.push(Reject {
                    record_id: ids.get(i).to_owned(),
                    row: offset + row,
                    reason: reasons.get(i).to_owned(),
                });
            }
        }
    }
    let id_column = &spec.inputs[side.input].id;
    for batch in files.ipc(&side.ids.duplicates_file)?.read_all()? {
        let (rows, ids) = (u64_column(&batch, "row")?, text_column(&batch, "id")?);
        for (i, row) in rows.into_iter().enumerate() {
            rejects.push(Reject {
                record_id: ids.get(i).to_owned(),
                row: global(row),
                reason: format!("duplicate record id (column `{id_column}`)"),
            });
        }
    }
    rejects.sort_by_key(|r| r.row);
    Ok(rejects)
}

/// Entities: the connected components of the pairs at or above the cluster threshold, with
/// every record a node (left records first, then right ones). A component larger than the cap
/// (`clusters.max_size`, or automatic: [`auto_max_size`]) is cut at its weakest links: its pairs are
/// joined strongest first (ties in record order), and a pair that would make an entity larger than
/// the cap is left out. Components within the cap are exactly the connected components. Each
/// record's entity is its smallest node number, so entity names do not depend on the order pairs
/// come in.
fn cluster(
    scored: &[Scored],
    (left, right): (usize, usize),
    spec: &JobSpec,
) -> (Vec<u32>, ClusterSummary) {
    let threshold = spec.clusters.threshold.unwrap_or(spec.thresholds.match_);
    let offset = if right == 0 { 0 } else { left as u32 };
    let edges = || {
        scored
            .iter()
            .filter(move |s| s.probability >= threshold)
            .map(move |s| (s.left, s.right + offset, s.probability))
    };
    let nodes = left + right;
    let mut forest = Forest::new(nodes);
    for (a, b, _) in edges() {
        forest.union(a, b, u32::MAX);
    }
    let roots = forest.roots();
    let sizes = forest.sizes_of_roots(&roots);
    let max_size = spec
        .clusters
        .max_size
        .unwrap_or_else(|| auto_max_size(&sizes));
    let oversized: Vec<u32> = sizes
        .iter()
        .filter(|&&(_, n)| n > max_size)
        .map(|&(root, _)| root)
        .collect();
    let mut summary = ClusterSummary {
        threshold,
        max_size,
        components_cut: oversized.len() as u64,
        records_in_cut_components: sizes
            .iter()
            .filter(|s| s.1 > max_size)
            .map(|s| u64::from(s.1))
            .sum(),
        largest_component: sizes.iter().map(|s| s.1).max().unwrap_or(1).max(1),
        ..ClusterSummary::default()
    };
    let roots = if oversized.is_empty() {
        roots
    } else {
        // Again from single records: pairs outside the oversized components as before, then
        // those inside them strongest first, under the cap.
        let cut = |node: u32| oversized.binary_search(&roots[node as usize]).is_ok();
        let mut forest = Forest::new(nodes);
        let mut inside = Vec::new();
        for (a, b, p) in edges() {
            if cut(a) {
                inside.push((a, b, p));
            } else {
                forest.union(a, b, u32::MAX);
            }
        }
        inside.sort_by(|x, y| y.2.total_cmp(&x.2).then((x.0, x.1).cmp(&(y.0, y.1))));
        for (a, b, _) in inside {
            forest.union(a, b, max_size);
        }
        forest.roots()
    };
    summary.entities = roots
        .iter()
        .enumerate()
        .filter(|&(i, &r)| i as u32 == r)
        .count() as u64;
    summary.largest_entity = Forest::count_by_root(&roots).into_iter().max().unwrap_or(0);
    (roots, summary)
}

/// The automatic cap on an entity's size: ten times the 99th percentile of the sizes of the
/// components holding more than one record, and at least [`Clusters::MIN_AUTO_SIZE`]. A component
/// far beyond what the others are is people chained together by a few wrong links, not a person.
fn auto_max_size(sizes: &[(u32, u32)]) -> u32 {
    let mut multi: Vec<u32> = sizes.iter().map(|s| s.1).filter(|&n| n > 1).collect();
    multi.sort_unstable();
    let p99 = match multi.len() {
        0 => 0,
        n => multi[(n * 99).div_ceil(100) - 1],
    };
    p99.saturating_mul(10).max(Clusters::MIN_AUTO_SIZE)
}

/// Union-find over node numbers, each set named after its smallest node.
struct Forest {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl Forest {
    fn new(nodes: usize) -> Forest {
        Forest {
            parent: (0..nodes as u32).collect(),
            size: vec![1; nodes],
        }
    }

    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let up = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = up;
            x = up;
        }
        x
    }

    /// Joins the sets of `a` and `b` unless together they would hold more than `cap` nodes.
    fn union(&mut self, a: u32, b: u32, cap: u32) {
        let (a, b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        let size = self.size[a as usize].saturating_add(self.size[b as usize]);
        if size > cap {
            return;
        }
        let (low, high) = (a.min(b), a.max(b));
        self.parent[high as usize] = low;
        self.size[low as usize] = size;
    }

    fn roots(&mut self) -> Vec<u32> {
        (0..self.parent.len() as u32)
            .map(|x| self.find(x))
            .collect()
    }

    /// (root, size) of every set, by root.
    fn sizes_of_roots(&self, roots: &[u32]) -> Vec<(u32, u32)> {
        roots
            .iter()
            .enumerate()
            .filter(|&(i, &r)| i as u32 == r)
            .map(|(_, &r)| (r, self.size[r as usize]))
            .collect()
    }

    /// How many nodes each root holds (indexed by node; 0 for a node that is not a root).
    fn count_by_root(roots: &[u32]) -> Vec<u32> {
        let mut counts = vec![0u32; roots.len()];
        for &r in roots {
            counts[r as usize] += 1;
        }
        counts
    }
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
    left: &'a Records,
    right: &'a Records,
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
    left: &'a Records,
    right: Option<&'a Records>,
    roots: &'a [u32],
) -> impl Iterator<Item = RecordBatch> + 'a {
    let node = move |i: usize| -> (&'a Records, usize) {
        if i < left.len() {
            (left, i)
        } else {
            (right.unwrap_or(left), i - left.len())
        }
    };
    const CHUNK: usize = 128 * 1024;
    (0..roots.len())
        .step_by(CHUNK)
        .map(move |start| start..(start + CHUNK).min(roots.len()))
        .map(move |chunk| {
            let n = chunk.len();
            let mut source = StringBuilder::with_capacity(n, n * 8);
            let mut id = StringBuilder::with_capacity(n, n * 12);
            let mut entity = StringBuilder::with_capacity(n, n * 17);
            let mut key = Vec::with_capacity(64);
            for i in chunk {
                let (t, r) = node(i);
                source.append_value(&t.source);
                id.append_value(t.ids.get(r));
                // The root's source and id, NUL between: its `hash_str`, without a String per row.
                let (rt, rr) = node(roots[i] as usize);
                key.clear();
                key.extend_from_slice(rt.source.as_bytes());
                key.push(0);
                key.extend_from_slice(rt.ids.get(rr).as_bytes());
                let h = hash_bytes(&key);
                write!(entity, "E{h:016x}").expect("a StringBuilder takes any text");
                entity.append_value("");
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
    (left, right): (&Records, &Records),
    right_values: &[RecordBatch],
) -> Result<(RecordBatch, BTreeMap<String, u64>), EngineError> {
    let (match_t, review_t) = (spec.thresholds.match_, spec.thresholds.review);
    // Per scored batch, per comparison: the right side's values, looked up once.
    let right_values: Vec<Vec<&StringArray>> = right_values
        .iter()
        .map(|batch| {
            comparisons
                .iter()
                .map(|c| {
                    let name = format!("right_{}", c.name);
                    batch
                        .column_by_name(&name)
                        .and_then(|a| a.as_string_opt::<i32>())
                        .ok_or_else(|| {
                            EngineError::Other(format!("pairs file: no text column `{name}`"))
                        })
                })
                .collect()
        })
        .collect::<Result<_, _>>()?;
    let n = left.len();
    let mut left_id = StringBuilder::with_capacity(n, n * 12);
    let mut status = StringBuilder::with_capacity(n, n * 8);
    let mut right_id = StringBuilder::with_capacity(n, n * 12);
    let mut probability = Float64Builder::with_capacity(n);
    let mut matches = UInt32Builder::with_capacity(n);
    let mut pin_check = StringBuilder::new();
    let mut right_pin_check = StringBuilder::new();
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
        pin_check.append_option(left.pin_checks[l].name());
        let shown = best.filter(|b| b.probability >= review_t);
        match shown {
            Some(b) => {
                right_id.append_value(right.ids.get(b.right as usize));
                right_pin_check.append_option(right.pin_checks[b.right as usize].name());
                probability.append_value(b.probability);
                let (columns, row) = (&right_values[b.at.0 as usize], b.at.1 as usize);
                for (c, column) in columns.iter().enumerate() {
                    let g = gamma_at(b.gammas, c);
                    differs[c].append_option((g != NULL).then_some(g != 1));
                    values[c].append_option((!column.is_null(row)).then(|| column.value(row)));
                }
            }
            None => {
                right_id.append_null();
                right_pin_check.append_null();
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
        text_field("pin_check", true),
        text_field("right_pin_check", true),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(left_id.finish()),
        Arc::new(status.finish()),
        Arc::new(right_id.finish()),
        Arc::new(probability.finish()),
        Arc::new(matches.finish()),
        Arc::new(pin_check.finish()),
        Arc::new(right_pin_check.finish()),
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

fn rejects_batch(rejects: &[(&str, Reject)]) -> Result<RecordBatch, EngineError> {
    let mut source = StringBuilder::new();
    let mut id = StringBuilder::new();
    let mut row = UInt64Builder::new();
    let mut reason = StringBuilder::new();
    for (s, r) in rejects {
        source.append_value(*s);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(left: u32, right: u32, probability: f64) -> Scored {
        Scored {
            left,
            right,
            weight: 0.0,
            probability,
            gammas: 0,
            rule: 0,
            at: (0, 0),
        }
    }

    fn spec_with(clusters: &str) -> JobSpec {
        let text =
            crate::spec::tests::GOOD.replace("[thresholds]", &format!("{clusters}\n[thresholds]"));
        let mut spec = JobSpec::from_toml(&text, std::path::Path::new("/jobs")).unwrap();
        spec.thresholds.match_ = 0.95;
        spec
    }

    /// Records 0..30 chained strongly except one weak link (14, 15), and 200 pairs of two records
    /// after them: the chain is far larger than the rest.
    fn chain_and_pairs() -> (Vec<Scored>, usize) {
        let mut scored: Vec<Scored> = (0..29)
            .map(|i| pair(i, i + 1, if i == 14 { 0.96 } else { 0.999 }))
            .collect();
        scored.extend((0..200).map(|k| pair(30 + 2 * k, 31 + 2 * k, 0.99)));
        (scored, 430)
    }

    #[test]
    fn a_component_far_larger_than_the_rest_is_cut_at_its_weakest_link() {
        let (scored, n) = chain_and_pairs();
        let (roots, summary) = cluster(&scored, (n, 0), &spec_with(""));
        assert_eq!(summary.max_size, 20, "ten times 2 is under the minimum");
        assert_eq!(summary.largest_component, 30);
        assert_eq!(summary.components_cut, 1);
        assert_eq!(summary.records_in_cut_components, 30);
        assert_eq!(summary.largest_entity, 15);
        assert!(roots[..15].iter().all(|&r| r == 0), "{roots:?}");
        assert!(roots[15..30].iter().all(|&r| r == 15), "{roots:?}");
        assert_eq!(summary.entities, 2 + 200);
    }

    #[test]
    fn components_within_the_cap_are_the_connected_components() {
        let (scored, n) = chain_and_pairs();
        let (roots, summary) = cluster(&scored, (n, 0), &spec_with("[clusters]\nmax_size = 30"));
        assert_eq!(summary.components_cut, 0);
        assert_eq!(summary.largest_entity, 30);
        assert!(roots[..30].iter().all(|&r| r == 0));
        assert_eq!((roots[30], roots[31], roots[32]), (30, 30, 32));
        // A threshold of its own leaves the weak link out, whatever the cap.
        let spec = spec_with("[clusters]\nmax_size = 30\nthreshold = 0.97");
        let (roots, summary) = cluster(&scored, (n, 0), &spec);
        assert_eq!((summary.threshold, summary.components_cut), (0.97, 0));
        assert_eq!((roots[14], roots[15]), (0, 15));
    }

    #[test]
    fn in_a_link_job_right_records_follow_the_left_ones() {
        // Left 0 and 1 both match right 0: one entity of three, named after left 0.
        let scored = [pair(0, 0, 0.99), pair(1, 0, 0.98), pair(2, 1, 0.5)];
        let (roots, summary) = cluster(&scored, (3, 2), &spec_with(""));
        assert_eq!(roots, vec![0, 0, 2, 0, 4]);
        assert_eq!((summary.entities, summary.largest_entity), (3, 3));
    }

    #[test]
    fn inputs_without_records_are_warned_of() {
        let many: Vec<u64> = (0..14).map(|f| u64::from(f % 7 != 0 && f < 12)).collect();
        let cases: [(&[u64], Option<&str>); 6] = [
            (&[3], None),
            (&[5, 1, 2], None),
            (&[0], Some("input `cs` has no records: its file holds none")),
            (
                &[0, 0],
                Some("input `cs` has no records: its 2 files hold none"),
            ),
            (
                &[4, 0, 9, 0],
                Some("input `cs`: 2 of its 4 files have no records (in name order: 2, 4)"),
            ),
            (
                &many,
                Some("input `cs`: 4 of its 14 files have no records (in name order: 1, 8, 13, 14)"),
            ),
        ];
        for (per_file, expected) in cases {
            assert_eq!(
                no_records_warning("cs", per_file).as_deref(),
                expected,
                "{per_file:?}"
            );
        }
        let empty = vec![0; 12];
        let mut mostly_empty = empty.clone();
        mostly_empty.push(1);
        assert_eq!(
            no_records_warning("cs", &mostly_empty).as_deref(),
            Some(
                "input `cs`: 12 of its 13 files have no records \
                 (in name order: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 2 more)"
            )
        );
    }
}
