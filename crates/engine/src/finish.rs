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
    Array, ArrayRef, AsArray, BooleanBuilder, Float64Builder, ListBuilder, RecordBatch,
    StringArray, StringBuilder, UInt8Builder, UInt32Builder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt8Type, UInt64Type};

use crate::EngineError;
use crate::checks::PinCheck;
use crate::clusters::{Edge, cluster};
use crate::compare::{Compiled, NULL, compile, gamma_at};
use crate::entities::{self, Candidates, Duplicate};
use crate::exchange::{text_column, u64_column};
use crate::hash::hash_bytes;
use crate::job::{RuleSummary, Skew, SourceSummary, Summary};
use crate::model::Scorer;
use crate::output::{write_dataset, write_json};
use crate::spec::JobSpec;
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

    // Link jobs: each left record's candidates compared with each other (`crate::entities`).
    let duplicates = match &right {
        Some(right) => right_duplicates(
            spec,
            files,
            trained,
            &comparisons,
            scored_parts,
            &scored,
            right,
        )?,
        None => Vec::new(),
    };
    let match_threshold = spec.thresholds.match_;
    let offset = if dedupe { 0 } else { left.len() as u32 };
    let edges: Vec<Edge> = scored
        .iter()
        .map(|s| (s.left, s.right + offset, s.probability))
        .chain(
            duplicates
                .iter()
                .map(|d| (d.a + offset, d.b + offset, d.probability)),
        )
        .collect();
    let (entities, grouping) = cluster(
        &edges,
        left.len() + right.as_ref().map_or(0, Records::len),
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
            let people = entities::people(right.len(), &duplicates);
            let (batch, counts) =
                reconciliation(spec, &comparisons, &scored, (&left, right), &shown, &people)?;
            write_dataset(
                &out_dir.join("reconciliation"),
                batch.schema(),
                &["left_id", "right_id"],
                [batch],
            )?;
            write_dataset(
                &out_dir.join("duplicates"),
                duplicates_schema(&comparisons),
                &["right_id", "duplicate_id"],
                [duplicates_batch(&comparisons, &duplicates, (&left, right))?],
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
        duplicate_pairs: duplicates.len() as u64,
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

fn text_field(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

/// A pair's evidence, after the columns that name its records: weight, probability, the gammas.
fn evidence_fields(comparisons: &[Compiled]) -> impl Iterator<Item = Field> + '_ {
    [
        Field::new("match_weight", DataType::Float64, false),
        Field::new("match_probability", DataType::Float64, false),
    ]
    .into_iter()
    .chain(
        comparisons
            .iter()
            .map(|c| Field::new(format!("gamma_{}", c.name), DataType::UInt8, false)),
    )
}

fn pairs_schema(comparisons: &[Compiled]) -> SchemaRef {
    let mut fields = vec![
        text_field("left_source", false),
        text_field("left_id", false),
        text_field("right_source", false),
        text_field("right_id", false),
    ];
    fields.extend(evidence_fields(comparisons));
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

/// The right-side pairs found to be one person through a left record's candidates at or above
/// review (see [`crate::entities`]).
fn right_duplicates(
    spec: &JobSpec,
    files: &ScratchFiles,
    trained: &Trained,
    comparisons: &[Compiled],
    parts: &[ScoredPart],
    scored: &[Scored],
    right: &Records,
) -> Result<Vec<Duplicate>, EngineError> {
    let review = spec.thresholds.review;
    let mut per_left = Vec::new();
    for group in scored.chunk_by(|a, b| a.left == b.left) {
        let mut strong: Vec<&Scored> = group.iter().filter(|s| s.probability >= review).collect();
        if strong.len() < 2 {
            continue;
        }
        strong.sort_by(|a, b| {
            b.probability
                .total_cmp(&a.probability)
                .then(a.right.cmp(&b.right))
        });
        let list: Vec<(u32, u64)> = strong
            .iter()
            .take(entities::MAX_CANDIDATES)
            .map(|s| (s.right, right.rows[s.right as usize]))
            .collect();
        per_left.push((group[0].left, list));
    }
    if per_left.is_empty() {
        return Ok(Vec::new());
    }
    // Only the records of left records with several candidates are read back.
    let needed: rustc_hash::FxHashSet<u64> = per_left
        .iter()
        .flat_map(|(_, list)| list.iter().map(|&(_, record)| record))
        .collect();
    let candidates = Candidates::load(spec, files, parts, &needed)?;
    let (model, tf) = load_trained(files, trained, comparisons)?;
    let scorer = Scorer::new(&model, tf, comparisons);
    Ok(entities::duplicates(
        spec,
        comparisons,
        &scorer,
        &candidates,
        per_left.into_iter(),
    ))
}

fn duplicates_schema(comparisons: &[Compiled]) -> SchemaRef {
    let mut fields = vec![
        text_field("source", false),
        text_field("right_id", false),
        text_field("duplicate_id", false),
        text_field("found_through", false),
    ];
    fields.extend(evidence_fields(comparisons));
    Arc::new(Schema::new(fields))
}

/// The `duplicates/` rows: each pair of right records found to be one person, the left record
/// through which they were found, and the pair's evidence.
fn duplicates_batch(
    comparisons: &[Compiled],
    duplicates: &[Duplicate],
    (left, right): (&Records, &Records),
) -> Result<RecordBatch, EngineError> {
    let mut source = StringBuilder::new();
    let (mut a, mut b, mut via) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let (mut weight, mut probability) = (Float64Builder::new(), Float64Builder::new());
    let mut gammas: Vec<UInt8Builder> = comparisons.iter().map(|_| UInt8Builder::new()).collect();
    for d in duplicates {
        source.append_value(&right.source);
        a.append_value(right.ids.get(d.a as usize));
        b.append_value(right.ids.get(d.b as usize));
        via.append_value(left.ids.get(d.via as usize));
        weight.append_value(d.weight);
        probability.append_value(d.probability);
        for (c, g) in gammas.iter_mut().enumerate() {
            g.append_value(gamma_at(d.gammas, c));
        }
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(source.finish()),
        Arc::new(a.finish()),
        Arc::new(b.finish()),
        Arc::new(via.finish()),
        Arc::new(weight.finish()),
        Arc::new(probability.finish()),
    ];
    columns.extend(gammas.iter_mut().map(|g| Arc::new(g.finish()) as ArrayRef));
    Ok(RecordBatch::try_new(
        duplicates_schema(comparisons),
        columns,
    )?)
}

/// One row per left record: its best match on the right, a status, every right record of the same
/// person (`people`: a root per right record, from [`entities::people`]), and per comparison
/// whether the two sides differ and the right side's value.
fn reconciliation(
    spec: &JobSpec,
    comparisons: &[Compiled],
    scored: &[Scored],
    (left, right): (&Records, &Records),
    right_values: &[RecordBatch],
    people: &[u32],
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
    let mut same_person = ListBuilder::new(StringBuilder::new());
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
        let above: Vec<&Scored> = candidates
            .iter()
            .filter(|s| s.probability >= match_t)
            .collect();
        let above_match = above.len();
        // Matches that are all one person (the same record, or records found to be duplicates).
        let one_person = above
            .windows(2)
            .all(|w| people[w[0].right as usize] == people[w[1].right as usize]);
        let state = match best {
            Some(_) if above_match > 1 && !one_person => "ambiguous",
            Some(_) if above_match >= 1 => "matched",
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
                // The best candidate's person: every candidate at or above review found to be it.
                let person = people[b.right as usize];
                for s in candidates
                    .iter()
                    .filter(|s| s.probability >= review_t && people[s.right as usize] == person)
                {
                    same_person
                        .values()
                        .append_value(right.ids.get(s.right as usize));
                }
                same_person.append(true);
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
                same_person.append(false);
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
        Field::new(
            "same_person_right_ids",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(left_id.finish()),
        Arc::new(status.finish()),
        Arc::new(right_id.finish()),
        Arc::new(probability.finish()),
        Arc::new(matches.finish()),
        Arc::new(pin_check.finish()),
        Arc::new(right_pin_check.finish()),
        Arc::new(same_person.finish()),
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
