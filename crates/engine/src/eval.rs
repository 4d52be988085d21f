//! Evaluation against a truth table: precision, recall and F1 of the pairs and of the clusters, and
//! recall by corruption class. The truth is `khop datagen`'s: `source`, `record_id`, `person_id`,
//! `corruptions`; two records are the same person exactly when their `person_id`s are equal.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, UInt64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

use crate::EngineError;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Metrics {
    pub true_pairs: u64,
    pub predicted_pairs: u64,
    pub true_positives: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl Metrics {
    fn new(true_pairs: u64, predicted_pairs: u64, true_positives: u64) -> Self {
        let ratio = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
        let precision = ratio(true_positives, predicted_pairs);
        let recall = ratio(true_positives, true_pairs);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Metrics {
            true_pairs,
            predicted_pairs,
            true_positives,
            precision,
            recall,
            f1,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ClassRecall {
    pub true_pairs: u64,
    pub found: u64,
    pub recall: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub match_threshold: f64,
    pub pairs: Metrics,
    pub clusters: Metrics,
    /// Recall among true pairs where either record carries the class.
    pub recall_by_class: BTreeMap<String, ClassRecall>,
    /// Link jobs: left records with no counterpart on the right, by reconciliation status.
    pub no_counterpart: BTreeMap<String, u64>,
}

/// The Parquet files of a dataset directory, sorted.
fn parquet_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, EngineError> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| EngineError::Input {
            source_name: dir.display().to_string(),
            message: e.to_string(),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    paths.sort();
    Ok(paths)
}

/// Calls `each` with every batch of the Parquet files in `dir`, one batch in memory at a time (a
/// national truth table has 100 M rows).
fn for_each_batch(
    dir: &Path,
    mut each: impl FnMut(&RecordBatch) -> Result<(), EngineError>,
) -> Result<(), EngineError> {
    for path in parquet_files(dir)? {
        let file = File::open(&path).map_err(|e| EngineError::Input {
            source_name: path.display().to_string(),
            message: e.to_string(),
        })?;
        for batch in ParquetRecordBatchReaderBuilder::try_new(file)?.build()? {
            each(&batch?)?;
        }
    }
    Ok(())
}

fn person_ids(batch: &RecordBatch) -> Result<&arrow::array::UInt64Array, EngineError> {
    batch
        .column_by_name("person_id")
        .and_then(|c| c.as_primitive_opt::<UInt64Type>())
        .ok_or_else(|| EngineError::Other("truth: `person_id` missing".into()))
}

fn strings<'a>(batch: &'a RecordBatch, name: &str) -> Result<Vec<Option<&'a str>>, EngineError> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| EngineError::Other(format!("column `{name}` missing")))?;
    let array = column
        .as_string_opt::<i32>()
        .ok_or_else(|| EngineError::Other(format!("column `{name}` is not text")))?;
    Ok((0..array.len())
        .map(|i| (!array.is_null(i)).then(|| array.value(i)))
        .collect())
}

/// Evaluates the outputs in `output` against the truth in `truth`.
pub fn evaluate(truth: &Path, output: &Path) -> Result<Report, EngineError> {
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(output.join("summary.json")).map_err(|e| {
            EngineError::Other(format!("{}: {e}", output.join("summary.json").display()))
        })?,
    )
    .map_err(|e| EngineError::Other(e.to_string()))?;
    let threshold = summary["thresholds"]["match"].as_f64().unwrap_or(0.5);
    let sources: Vec<String> = summary["sources"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let dedupe = sources.len() == 1;

    // The people whose records can form a true pair: in a link job those with a record in the first
    // source (the few), in a dedupe job those with more than one record. Only their records are held
    // below, so the truth of a national population never is.
    let first = sources.first().cloned().unwrap_or_default();
    let mut of_interest: HashSet<u64> = HashSet::new();
    let mut all_persons: Vec<u64> = Vec::new();
    for_each_batch(truth, |batch| {
        let (source, persons) = (strings(batch, "source")?, person_ids(batch)?);
        for (i, s) in source.iter().enumerate() {
            match s {
                Some(s) if dedupe && sources.iter().any(|x| x == s) => {
                    all_persons.push(persons.value(i))
                }
                Some(s) if !dedupe && *s == first => {
                    of_interest.insert(persons.value(i));
                }
                _ => {}
            }
        }
        Ok(())
    })?;
    if dedupe {
        all_persons.sort_unstable();
        of_interest.extend(
            all_persons
                .chunk_by(|a, b| a == b)
                .filter(|run| run.len() > 1)
                .map(|run| run[0]),
        );
    }
    drop(all_persons);

    // Truth of those people: (source, record) -> person, and each record's corruption classes. Records
    // of other people are the same person as no record outside their own, so they are left out.
    let mut person: HashMap<(String, String), u64> = HashMap::new();
    let mut classes: HashMap<(String, String), Vec<String>> = HashMap::new();
    let mut by_person: HashMap<u64, Vec<(String, String)>> = HashMap::new();
    for_each_batch(truth, |batch| {
        let source = strings(batch, "source")?;
        let record = strings(batch, "record_id")?;
        let persons = person_ids(batch)?;
        let lists = batch
            .column_by_name("corruptions")
            .and_then(|c| c.as_list_opt::<i32>());
        for i in 0..batch.num_rows() {
            let (Some(s), Some(r)) = (source[i], record[i]) else {
                continue;
            };
            let p = persons.value(i);
            if !sources.iter().any(|x| x == s) || !of_interest.contains(&p) {
                continue;
            }
            let key = (s.to_owned(), r.to_owned());
            person.insert(key.clone(), p);
            by_person.entry(p).or_default().push(key.clone());
            if let Some(lists) = lists {
                let values = lists.value(i);
                let values = values.as_string::<i32>();
                classes.insert(
                    key,
                    (0..values.len())
                        .map(|j| values.value(j).to_owned())
                        .collect(),
                );
            }
        }
        Ok(())
    })?;
    // True pairs, normalised (left source first; within a source, smaller id first).
    let order =
        |a: &(String, String), b: &(String, String)| -> ((String, String), (String, String)) {
            let rank = |k: &(String, String)| sources.iter().position(|s| s == &k.0).unwrap_or(9);
            if (rank(a), &a.1) <= (rank(b), &b.1) {
                (a.clone(), b.clone())
            } else {
                (b.clone(), a.clone())
            }
        };
    let mut true_pairs: HashSet<((String, String), (String, String))> = HashSet::new();
    for records in by_person.values() {
        for (i, a) in records.iter().enumerate() {
            for b in &records[i + 1..] {
                let cross = a.0 != b.0;
                if cross != dedupe {
                    true_pairs.insert(order(a, b));
                }
            }
        }
    }

    // Predicted pairs.
    let mut predicted: HashSet<((String, String), (String, String))> = HashSet::new();
    for_each_batch(&output.join("pairs"), |batch| {
        let (ls, li, rs, ri) = (
            strings(batch, "left_source")?,
            strings(batch, "left_id")?,
            strings(batch, "right_source")?,
            strings(batch, "right_id")?,
        );
        let probability = batch
            .column_by_name("match_probability")
            .and_then(|c| c.as_primitive_opt::<Float64Type>())
            .ok_or_else(|| EngineError::Other("pairs: `match_probability` missing".into()))?;
        for i in 0..batch.num_rows() {
            if probability.value(i) < threshold {
                continue;
            }
            if let (Some(ls), Some(li), Some(rs), Some(ri)) = (ls[i], li[i], rs[i], ri[i]) {
                predicted.insert(order(&(ls.into(), li.into()), &(rs.into(), ri.into())));
            }
        }
        Ok(())
    })?;
    let tp = predicted.intersection(&true_pairs).count() as u64;
    let pairs = Metrics::new(true_pairs.len() as u64, predicted.len() as u64, tp);

    // Cluster pairs: every two records of one entity. Most entities are one record (every kept record
    // of the large side is in `clusters/`): the entities with several are found first, by a hash of
    // their id, and only their members are held.
    let entity_hash = |e: &str| crate::hash::hash_str(e);
    let mut sizes: Vec<u64> = Vec::new();
    for_each_batch(&output.join("clusters"), |batch| {
        sizes.extend(
            strings(batch, "entity_id")?
                .into_iter()
                .flatten()
                .map(entity_hash),
        );
        Ok(())
    })?;
    sizes.sort_unstable();
    let several: HashSet<u64> = sizes
        .chunk_by(|a, b| a == b)
        .filter(|run| run.len() > 1)
        .map(|run| run[0])
        .collect();
    drop(sizes);
    let mut entities: HashMap<u64, Vec<(String, String)>> = HashMap::new();
    for_each_batch(&output.join("clusters"), |batch| {
        let (s, r, e) = (
            strings(batch, "source")?,
            strings(batch, "record_id")?,
            strings(batch, "entity_id")?,
        );
        for i in 0..batch.num_rows() {
            if let (Some(s), Some(r), Some(e)) = (s[i], r[i], e[i]) {
                let h = entity_hash(e);
                if several.contains(&h) {
                    entities
                        .entry(h)
                        .or_default()
                        .push((s.to_owned(), r.to_owned()));
                }
            }
        }
        Ok(())
    })?;
    let mut cluster_pairs = 0u64;
    let mut cluster_tp = 0u64;
    for members in entities.values() {
        for (i, a) in members.iter().enumerate() {
            for b in &members[i + 1..] {
                if (a.0 != b.0) == dedupe {
                    continue;
                }
                cluster_pairs += 1;
                if person.get(a).is_some_and(|p| person.get(b) == Some(p)) {
                    cluster_tp += 1;
                }
            }
        }
    }
    let clusters = Metrics::new(true_pairs.len() as u64, cluster_pairs, cluster_tp);

    let mut recall_by_class: BTreeMap<String, ClassRecall> = BTreeMap::new();
    for pair in &true_pairs {
        let mut seen: Vec<&String> = Vec::new();
        for record in [&pair.0, &pair.1] {
            for c in classes.get(record).into_iter().flatten() {
                if !seen.contains(&c) {
                    seen.push(c);
                }
            }
        }
        let found = predicted.contains(pair);
        for c in seen {
            let entry = recall_by_class.entry(c.clone()).or_default();
            entry.true_pairs += 1;
            entry.found += u64::from(found);
        }
    }
    for entry in recall_by_class.values_mut() {
        entry.recall = entry.found as f64 / entry.true_pairs.max(1) as f64;
    }

    let mut no_counterpart = BTreeMap::new();
    if !dedupe && output.join("reconciliation").is_dir() {
        for_each_batch(&output.join("reconciliation"), |batch| {
            let (ids, statuses) = (strings(batch, "left_id")?, strings(batch, "status")?);
            for i in 0..batch.num_rows() {
                let (Some(id), Some(status)) = (ids[i], statuses[i]) else {
                    continue;
                };
                let key = (sources[0].clone(), id.to_owned());
                let has_counterpart = person
                    .get(&key)
                    .is_some_and(|p| by_person[p].iter().any(|(s, _)| s != &sources[0]));
                if !has_counterpart {
                    *no_counterpart.entry(status.to_owned()).or_default() += 1;
                }
            }
            Ok(())
        })?;
    }

    Ok(Report {
        match_threshold: threshold,
        pairs,
        clusters,
        recall_by_class,
        no_counterpart,
    })
}
