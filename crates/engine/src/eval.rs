//! Evaluation against a truth table: precision, recall and F1 of the pairs, of the clusters and, in a
//! link job, of the best match per left record; recall by corruption class. Two records are the same
//! entity exactly when their entity ids are equal.
//!
//! The truth is any table with a record id and an entity id per record, in CSV or Parquet files (a file
//! or a directory of them), its columns named by [`TruthColumns`] and every column read as text:
//! `khop datagen`'s `truth/` (`source`, `record_id`, `person_id`, `corruptions`) is the default layout.

use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Display;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, ListArray, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Float64Type};
use khop_vn::text::Encoding;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

use crate::EngineError;
use crate::hash::hash_str;
use crate::scan::CsvRecords;

/// Precision, recall and F1 of `correct` predictions among `predicted`, out of `truth` true ones; a
/// ratio with nothing to divide by is 1.
fn scores(truth: u64, predicted: u64, correct: u64) -> (f64, f64, f64) {
    let ratio = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    let precision = ratio(correct, predicted);
    let recall = ratio(correct, truth);
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    (precision, recall, f1)
}

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
        let (precision, recall, f1) = scores(true_pairs, predicted_pairs, true_positives);
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

/// Link jobs: each left record's reconciliation taken as its one answer, as an analyst reads it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BestMatch {
    /// Left records with at least one true partner in the right source.
    pub with_partner: u64,
    /// Left records `matched`.
    pub matched: u64,
    /// Left records matched to a record of the same entity.
    pub correct: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl BestMatch {
    fn new(with_partner: u64, matched: u64, correct: u64) -> Self {
        let (precision, recall, f1) = scores(with_partner, matched, correct);
        BestMatch {
            with_partner,
            matched,
            correct,
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
    /// Link jobs with a `reconciliation/`.
    pub best_match: Option<BestMatch>,
    /// Recall among true pairs where either record carries the class.
    pub recall_by_class: BTreeMap<String, ClassRecall>,
    /// Link jobs: left records with no counterpart on the right, by reconciliation status.
    pub no_counterpart: BTreeMap<String, u64>,
}

/// The columns of a truth table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TruthColumns {
    /// The record id, as the job's input has it.
    pub id: String,
    /// The entity (person) id: records with equal values are the same entity.
    pub entity: String,
    /// The source of each record, as the job names its inputs. `None`: `source` in a file that has
    /// one; in a file without, record ids must be unique across the table.
    pub source: Option<String>,
    /// Each record's corruption classes: a list, or text separated by `;`. `None`: `corruptions` in
    /// a file that has one.
    pub corruptions: Option<String>,
}

impl Default for TruthColumns {
    fn default() -> Self {
        TruthColumns {
            id: "record_id".into(),
            entity: "person_id".into(),
            source: None,
            corruptions: None,
        }
    }
}

/// Where a truth file's columns are, by position in its header (or schema).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Layout {
    id: usize,
    entity: usize,
    source: Option<usize>,
    corruptions: Option<usize>,
}

impl Layout {
    /// The layout of a file whose columns are `header`; a column named but absent is an error that
    /// names it.
    fn of(header: &[impl AsRef<str>], columns: &TruthColumns) -> Result<Layout, String> {
        let find = |name: &str| header.iter().position(|h| h.as_ref() == name);
        let required = |name: &str| find(name).ok_or_else(|| format!("no column `{name}`"));
        let optional = |named: &Option<String>, default: &str| match named {
            Some(name) => required(name).map(Some),
            None => Ok(find(default)),
        };
        Ok(Layout {
            id: required(&columns.id)?,
            entity: required(&columns.entity)?,
            source: optional(&columns.source, "source")?,
            corruptions: optional(&columns.corruptions, "corruptions")?,
        })
    }
}

fn truth_error(file: &Path, message: impl Display) -> EngineError {
    EngineError::Other(format!("truth {}: {message}", file.display()))
}

/// A record's corruption classes, read only for the records that need them.
enum Classes<'a> {
    None,
    List(&'a ListArray, usize),
    Text(&'a str),
}

impl Classes<'_> {
    fn to_vec(&self) -> Vec<String> {
        match self {
            Classes::None => Vec::new(),
            Classes::List(lists, row) if lists.is_null(*row) => Vec::new(),
            Classes::List(lists, row) => {
                let values = lists.value(*row);
                let values = values.as_string::<i32>();
                (0..values.len())
                    .filter(|&i| !values.is_null(i))
                    .map(|i| values.value(i).to_owned())
                    .collect()
            }
            Classes::Text(text) => split_classes(text),
        }
    }
}

/// The classes of a text cell: `;`-separated, spaces around each trimmed, empty ones dropped.
fn split_classes(text: &str) -> Vec<String> {
    text.split(';')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

/// One record of the truth, its values as text. Records with no id or no entity are not given: they
/// are the same entity as no other record.
struct TruthRow<'a> {
    file: &'a Path,
    /// `None` where the file has no source column.
    source: Option<&'a str>,
    id: &'a str,
    entity: &'a str,
    classes: Classes<'a>,
}

/// The CSV and Parquet files of a truth path: the file itself, or a directory's `.csv` and `.parquet`
/// files, sorted.
fn truth_files(truth: &Path) -> Result<Vec<PathBuf>, EngineError> {
    if truth.is_file() {
        return Ok(vec![truth.to_owned()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(truth)
        .map_err(|e| truth_error(truth, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "csv" || e == "parquet"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(truth_error(truth, "no .csv or .parquet files"));
    }
    Ok(files)
}

/// Whether a file is Parquet (its first bytes say so, whatever its name); otherwise it is read as CSV.
fn is_parquet(file: &Path) -> Result<bool, EngineError> {
    let mut magic = [0u8; 4];
    let mut f = File::open(file).map_err(|e| truth_error(file, e))?;
    Ok(f.read_exact(&mut magic).is_ok() && &magic == b"PAR1")
}

/// Calls `each` with every record of the truth, one file and one batch in memory at a time (a
/// national truth table has 100 M rows).
fn for_each_truth_row(
    files: &[PathBuf],
    columns: &TruthColumns,
    mut each: impl FnMut(&TruthRow) -> Result<(), EngineError>,
) -> Result<(), EngineError> {
    for file in files {
        if is_parquet(file)? {
            parquet_rows(file, columns, &mut each)?;
        } else {
            csv_rows(file, columns, &mut each)?;
        }
    }
    Ok(())
}

fn parquet_rows(
    file: &Path,
    columns: &TruthColumns,
    each: &mut impl FnMut(&TruthRow) -> Result<(), EngineError>,
) -> Result<(), EngineError> {
    let error = |e: &dyn Display| truth_error(file, e);
    let opened = File::open(file).map_err(|e| error(&e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(opened).map_err(|e| error(&e))?;
    let schema = builder.schema().clone();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let layout = Layout::of(&names, columns).map_err(|e| error(&e))?;
    let used = [
        Some(layout.id),
        Some(layout.entity),
        layout.source,
        layout.corruptions,
    ];
    let mask = ProjectionMask::roots(builder.parquet_schema(), used.into_iter().flatten());
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| error(&e))?;
    let name = |i: usize| schema.field(i).name().as_str();
    for batch in reader {
        let batch = batch.map_err(|e| error(&e))?;
        let text = |i: usize| -> Result<StringArray, EngineError> {
            let column = batch.column_by_name(name(i)).expect("projected");
            let cast = cast(column, &DataType::Utf8).map_err(|_| {
                error(&format!(
                    "column `{}` of type {} cannot be read as text",
                    name(i),
                    column.data_type()
                ))
            })?;
            Ok(cast.as_string::<i32>().clone())
        };
        let (ids, entities) = (text(layout.id)?, text(layout.entity)?);
        let sources = layout.source.map(&text).transpose()?;
        let corruptions = layout.corruptions.map(|i| {
            let column = batch.column_by_name(name(i)).expect("projected");
            match column.data_type() {
                DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
                    let list = DataType::List(Field::new_list_field(DataType::Utf8, true).into());
                    cast(column, &list)
                        .map(|c| Corruptions::List(c.as_list::<i32>().clone()))
                        .map_err(|_| {
                            error(&format!(
                                "column `{}` of type {} cannot be read as a list of text",
                                name(i),
                                column.data_type()
                            ))
                        })
                }
                _ => text(i).map(Corruptions::Text),
            }
        });
        let corruptions = corruptions.transpose()?;
        for row in 0..batch.num_rows() {
            if ids.is_null(row) || entities.is_null(row) {
                continue;
            }
            let source = match &sources {
                Some(s) if s.is_null(row) => continue,
                Some(s) => Some(s.value(row)),
                None => None,
            };
            let classes = match &corruptions {
                Some(Corruptions::List(lists)) => Classes::List(lists, row),
                Some(Corruptions::Text(text)) if !text.is_null(row) => {
                    Classes::Text(text.value(row))
                }
                _ => Classes::None,
            };
            each(&TruthRow {
                file,
                source,
                id: ids.value(row),
                entity: entities.value(row),
                classes,
            })?;
        }
    }
    Ok(())
}

/// A Parquet batch's corruption column, as a list or as text.
enum Corruptions {
    List(ListArray),
    Text(StringArray),
}

fn csv_rows(
    file: &Path,
    columns: &TruthColumns,
    each: &mut impl FnMut(&TruthRow) -> Result<(), EngineError>,
) -> Result<(), EngineError> {
    let opened = File::open(file).map_err(|e| truth_error(file, e))?;
    let mut records = CsvRecords::new(BufReader::new(opened), b',', Encoding::Utf8);
    let header: Vec<String> = match records.next_record().map_err(|e| truth_error(file, e))? {
        Some(header) => (0..header.len())
            .map(|i| header.field(i).trim().to_owned())
            .collect(),
        None => return Ok(()),
    };
    let layout = Layout::of(&header, columns).map_err(|e| truth_error(file, e))?;
    loop {
        let line = records.line();
        let Some(record) = records.next_record().map_err(|e| truth_error(file, e))? else {
            return Ok(());
        };
        if record.len() == 1 && record.field(0).is_empty() {
            continue;
        }
        if let Some((field, _)) = record.undecodable {
            let column = header.get(field).map_or("past the header", String::as_str);
            return Err(truth_error(
                file,
                format!("line {line}: column `{column}` is not UTF-8 text"),
            ));
        }
        if record.len() != header.len() {
            return Err(truth_error(
                file,
                format!(
                    "line {line}: {} fields where the header has {}",
                    record.len(),
                    header.len()
                ),
            ));
        }
        let (id, entity) = (record.field(layout.id), record.field(layout.entity));
        if id.is_empty() || entity.is_empty() {
            continue;
        }
        each(&TruthRow {
            file,
            source: layout.source.map(|i| record.field(i)),
            id,
            entity,
            classes: layout
                .corruptions
                .map_or(Classes::None, |i| Classes::Text(record.field(i))),
        })?;
    }
}

/// The Parquet files of an output directory, sorted.
fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>, EngineError> {
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

/// Calls `each` with every batch of the Parquet files of an output directory, one batch in memory at
/// a time.
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

/// A record: its source and its id.
type Key = (String, String);

/// The job's sources, as its `summary.json` names them, and the source of a truth record.
struct JobSources<'a> {
    names: Vec<String>,
    output: &'a Path,
    /// Link jobs whose truth has no source column: the ids of the first input's records (kept in
    /// `clusters/` or rejected in `rejects/`: every one is in one or the other), read when first needed.
    left: OnceCell<HashSet<String>>,
}

impl JobSources<'_> {
    fn dedupe(&self) -> bool {
        self.names.len() == 1
    }

    /// The position of a truth record's source among the job's; `None` for a source the job did not
    /// read. Without a source column, a link job's record is on the left when the left input has its
    /// id, else on the right.
    fn of(&self, row: &TruthRow) -> Result<Option<usize>, EngineError> {
        Ok(match row.source {
            Some(s) => self.names.iter().position(|n| n == s),
            None if self.dedupe() => Some(0),
            None => Some(usize::from(!self.left_ids()?.contains(row.id))),
        })
    }

    fn left_ids(&self) -> Result<&HashSet<String>, EngineError> {
        if let Some(ids) = self.left.get() {
            return Ok(ids);
        }
        let mut ids = HashSet::new();
        for dir in ["clusters", "rejects"] {
            for_each_batch(&self.output.join(dir), |batch| {
                let (sources, records) = (strings(batch, "source")?, strings(batch, "record_id")?);
                for (s, r) in sources.into_iter().zip(records) {
                    if let (Some(s), Some(r)) = (s, r)
                        && s == self.names[0]
                    {
                        ids.insert(r.to_owned());
                    }
                }
                Ok(())
            })?;
        }
        Ok(self.left.get_or_init(|| ids))
    }
}

/// The values that occur more than once.
fn repeated(mut values: Vec<u64>) -> HashSet<u64> {
    values.sort_unstable();
    values
        .chunk_by(|a, b| a == b)
        .filter(|run| run.len() > 1)
        .map(|run| run[0])
        .collect()
}

/// Evaluates the outputs in `output` against the truth at `truth` (a file or a directory), whose
/// columns are `columns`.
pub fn evaluate(
    truth: &Path,
    output: &Path,
    columns: &TruthColumns,
) -> Result<Report, EngineError> {
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(output.join("summary.json")).map_err(|e| {
            EngineError::Other(format!("{}: {e}", output.join("summary.json").display()))
        })?,
    )
    .map_err(|e| EngineError::Other(e.to_string()))?;
    let threshold = summary["thresholds"]["match"].as_f64().unwrap_or(0.5);
    let job = JobSources {
        names: summary["sources"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        output,
        left: OnceCell::new(),
    };
    if job.names.is_empty() {
        return Err(EngineError::Other(format!(
            "{}: no sources",
            output.join("summary.json").display()
        )));
    }
    let sources = &job.names;
    let dedupe = job.dedupe();
    let files = truth_files(truth)?;

    // The entities whose records can form a true pair: in a link job those with a record in the first
    // source (the few), in a dedupe job those with more than one record. Only their records are held
    // below, so the truth of a national population never is. Entities are told apart by a hash of
    // their id here; a collision only holds a few more records.
    let mut of_interest: HashSet<u64> = HashSet::new();
    let mut all_entities: Vec<u64> = Vec::new();
    let mut unsourced_ids: Vec<u64> = Vec::new();
    for_each_truth_row(&files, columns, |row| {
        if row.source.is_none() {
            unsourced_ids.push(hash_str(row.id));
        }
        match job.of(row)? {
            Some(_) if dedupe => all_entities.push(hash_str(row.entity)),
            Some(0) => {
                of_interest.insert(hash_str(row.entity));
            }
            _ => {}
        }
        Ok(())
    })?;
    if dedupe {
        of_interest.extend(repeated(std::mem::take(&mut all_entities)));
    }
    // Without a source column an id must name one record; ids whose hashes repeat are checked by text.
    let repeated_ids = repeated(unsourced_ids);
    let mut seen_ids: HashSet<String> = HashSet::new();

    // Truth of those entities: record -> entity, and each record's corruption classes. Records of
    // other entities are the same entity as no record outside their own, so they are left out.
    let mut person: HashMap<Key, String> = HashMap::new();
    let mut classes: HashMap<Key, Vec<String>> = HashMap::new();
    let mut by_person: HashMap<String, Vec<Key>> = HashMap::new();
    for_each_truth_row(&files, columns, |row| {
        if row.source.is_none()
            && repeated_ids.contains(&hash_str(row.id))
            && !seen_ids.insert(row.id.to_owned())
        {
            return Err(truth_error(
                row.file,
                format!(
                    "column `{}` repeats a record id and there is no source column to tell the \
                     records apart (name one)",
                    columns.id
                ),
            ));
        }
        let Some(s) = job.of(row)? else {
            return Ok(());
        };
        if !of_interest.contains(&hash_str(row.entity)) {
            return Ok(());
        }
        let key = (sources[s].clone(), row.id.to_owned());
        person.insert(key.clone(), row.entity.to_owned());
        by_person
            .entry(row.entity.to_owned())
            .or_default()
            .push(key.clone());
        let record_classes = row.classes.to_vec();
        if !record_classes.is_empty() {
            classes.insert(key, record_classes);
        }
        Ok(())
    })?;
    drop(seen_ids);
    // True pairs, normalised (left source first; within a source, smaller id first).
    let order = |a: &Key, b: &Key| -> (Key, Key) {
        let rank = |k: &Key| sources.iter().position(|s| s == &k.0).unwrap_or(9);
        if (rank(a), &a.1) <= (rank(b), &b.1) {
            (a.clone(), b.clone())
        } else {
            (b.clone(), a.clone())
        }
    };
    let mut true_pairs: HashSet<(Key, Key)> = HashSet::new();
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
    let mut predicted: HashSet<(Key, Key)> = HashSet::new();
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
    let mut sizes: Vec<u64> = Vec::new();
    for_each_batch(&output.join("clusters"), |batch| {
        sizes.extend(
            strings(batch, "entity_id")?
                .into_iter()
                .flatten()
                .map(hash_str),
        );
        Ok(())
    })?;
    let several = repeated(sizes);
    let mut entities: HashMap<u64, Vec<Key>> = HashMap::new();
    for_each_batch(&output.join("clusters"), |batch| {
        let (s, r, e) = (
            strings(batch, "source")?,
            strings(batch, "record_id")?,
            strings(batch, "entity_id")?,
        );
        for i in 0..batch.num_rows() {
            if let (Some(s), Some(r), Some(e)) = (s[i], r[i], e[i]) {
                let h = hash_str(e);
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
    let same_entity = |a: &Key, b: &Key| person.get(a).is_some_and(|p| person.get(b) == Some(p));
    let mut cluster_pairs = 0u64;
    let mut cluster_tp = 0u64;
    for members in entities.values() {
        for (i, a) in members.iter().enumerate() {
            for b in &members[i + 1..] {
                if (a.0 != b.0) == dedupe {
                    continue;
                }
                cluster_pairs += 1;
                cluster_tp += u64::from(same_entity(a, b));
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

    // Link jobs: each left record's one answer, and what became of those with no counterpart.
    let mut no_counterpart = BTreeMap::new();
    let mut best_match = None;
    if !dedupe && output.join("reconciliation").is_dir() {
        let has_partner = |key: &Key| {
            person
                .get(key)
                .is_some_and(|p| by_person[p].iter().any(|(s, _)| s != &sources[0]))
        };
        let (mut matched, mut correct) = (0u64, 0u64);
        for_each_batch(&output.join("reconciliation"), |batch| {
            let (ids, statuses, rights) = (
                strings(batch, "left_id")?,
                strings(batch, "status")?,
                strings(batch, "right_id")?,
            );
            for i in 0..batch.num_rows() {
                let (Some(id), Some(status)) = (ids[i], statuses[i]) else {
                    continue;
                };
                let key = (sources[0].clone(), id.to_owned());
                if status == "matched" {
                    matched += 1;
                    if let Some(right) = rights[i] {
                        correct +=
                            u64::from(same_entity(&key, &(sources[1].clone(), right.into())));
                    }
                }
                if !has_partner(&key) {
                    *no_counterpart.entry(status.to_owned()).or_default() += 1;
                }
            }
            Ok(())
        })?;
        let with_partner = person
            .keys()
            .filter(|k| k.0 == sources[0] && has_partner(k))
            .count() as u64;
        best_match = Some(BestMatch::new(with_partner, matched, correct));
    }

    Ok(Report {
        match_threshold: threshold,
        pairs,
        clusters,
        best_match,
        recall_by_class,
        no_counterpart,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float64Array, Int64Array, ListBuilder, StringBuilder};
    use parquet::arrow::ArrowWriter;

    use super::*;

    #[test]
    fn scores_are_ratios_with_one_for_nothing_to_divide() {
        let cases = [
            ((4, 4, 2), (0.5, 0.5, 0.5)),
            ((5, 4, 2), (0.5, 0.4, 4.0 / 9.0)),
            ((0, 0, 0), (1.0, 1.0, 1.0)),
            ((3, 2, 0), (0.0, 0.0, 0.0)),
            ((3, 0, 0), (1.0, 0.0, 0.0)),
        ];
        for ((truth, predicted, correct), (p, r, f1)) in cases {
            let got = scores(truth, predicted, correct);
            let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
            assert!(
                close(got.0, p) && close(got.1, r) && close(got.2, f1),
                "{truth} {predicted} {correct}: {got:?}"
            );
        }
    }

    #[test]
    fn a_layout_finds_named_and_default_columns() {
        let columns = |source: Option<&str>, corruptions: Option<&str>| TruthColumns {
            id: "rec_id".into(),
            entity: "entity".into(),
            source: source.map(str::to_owned),
            corruptions: corruptions.map(str::to_owned),
        };
        let layout = |id, entity, source, corruptions| Layout {
            id,
            entity,
            source,
            corruptions,
        };
        let cases: [(&[&str], TruthColumns, Result<Layout, String>); 6] = [
            (
                &["entity", "rec_id"],
                columns(None, None),
                Ok(layout(1, 0, None, None)),
            ),
            (
                &["source", "rec_id", "entity", "corruptions"],
                columns(None, None),
                Ok(layout(1, 2, Some(0), Some(3))),
            ),
            (
                &["db", "rec_id", "entity", "source", "notes"],
                columns(Some("db"), Some("notes")),
                Ok(layout(1, 2, Some(0), Some(4))),
            ),
            (
                &["rec_id", "person_id"],
                columns(None, None),
                Err("no column `entity`".into()),
            ),
            (
                &["rec_id", "entity", "source"],
                columns(Some("db"), None),
                Err("no column `db`".into()),
            ),
            (
                &["rec_id", "entity"],
                columns(None, Some("classes")),
                Err("no column `classes`".into()),
            ),
        ];
        for (header, columns, expected) in cases {
            assert_eq!(Layout::of(header, &columns), expected, "{header:?}");
        }
    }

    #[test]
    fn text_classes_split_on_semicolons() {
        let cases: [(&str, &[&str]); 4] = [
            ("", &[]),
            ("typo", &["typo"]),
            ("typo; swap ;", &["typo", "swap"]),
            (" ; ", &[]),
        ];
        for (text, expected) in cases {
            assert_eq!(split_classes(text), expected, "{text:?}");
        }
    }

    fn text_column(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    fn write_parquet(dir: &Path, columns: Vec<(&str, ArrayRef)>) {
        std::fs::create_dir_all(dir).unwrap();
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let file = File::create(dir.join("part-00000.parquet")).unwrap();
        let mut writer = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    /// The truth of the job in [`job_output`]: (source, record id, entity, corruption classes).
    /// Left `a4` and `a5` have no counterpart; `a7` was rejected by the job; `b2`, `b3x` and `b10`
    /// are true partners the job did not find.
    const TRUTH: [(&str, &str, u64, &str); 16] = [
        ("left", "a1", 1, ""),
        ("left", "a2", 2, ""),
        ("left", "a3", 3, ""),
        ("left", "a4", 4, ""),
        ("left", "a5", 5, ""),
        ("left", "a6", 6, ""),
        ("left", "a7", 10, ""),
        ("right", "b1", 1, "typo"),
        ("right", "b2", 2, ""),
        ("right", "b3", 3, ""),
        ("right", "b3x", 3, "swap;typo"),
        ("right", "b6", 6, ""),
        ("right", "b7", 7, ""),
        ("right", "b9", 9, ""),
        ("right", "b10", 10, ""),
        ("right", "b11", 11, ""),
    ];

    /// A link job's outputs, written as `khop link` writes them: match threshold 0.9.
    fn job_output(dir: &Path) {
        std::fs::write(
            dir.join("summary.json"),
            r#"{"thresholds":{"match":0.9,"review":0.5},"sources":[{"name":"left"},{"name":"right"}]}"#,
        )
        .unwrap();
        let pairs = [
            ("a1", "b1", 0.99),
            ("a2", "b7", 0.95),
            ("a3", "b3", 0.97),
            ("a4", "b9", 0.92),
            ("a6", "b6", 0.6),
            ("a2", "b2", 0.3),
        ];
        let left = vec![Some("left"); pairs.len()];
        let right = vec![Some("right"); pairs.len()];
        write_parquet(
            &dir.join("pairs"),
            vec![
                ("left_source", text_column(&left)),
                ("left_id", text_column(&pairs.map(|p| Some(p.0)))),
                ("right_source", text_column(&right)),
                ("right_id", text_column(&pairs.map(|p| Some(p.1)))),
                (
                    "match_probability",
                    Arc::new(Float64Array::from(pairs.map(|p| p.2).to_vec())),
                ),
            ],
        );
        let clusters = [
            ("left", "a1", "e1"),
            ("right", "b1", "e1"),
            ("left", "a2", "e2"),
            ("right", "b7", "e2"),
            ("left", "a3", "e3"),
            ("right", "b3", "e3"),
            ("left", "a4", "e4"),
            ("right", "b9", "e4"),
            ("left", "a5", "e5"),
            ("left", "a6", "e6"),
            ("right", "b6", "e7"),
            ("right", "b2", "e8"),
            ("right", "b3x", "e9"),
        ];
        write_parquet(
            &dir.join("clusters"),
            vec![
                ("source", text_column(&clusters.map(|c| Some(c.0)))),
                ("record_id", text_column(&clusters.map(|c| Some(c.1)))),
                ("entity_id", text_column(&clusters.map(|c| Some(c.2)))),
            ],
        );
        let reconciliation = [
            ("a1", "matched", Some("b1")),
            ("a2", "matched", Some("b7")),
            ("a3", "matched", Some("b3")),
            ("a4", "matched", Some("b9")),
            ("a5", "unmatched", None),
            ("a6", "review", Some("b6")),
        ];
        write_parquet(
            &dir.join("reconciliation"),
            vec![
                ("left_id", text_column(&reconciliation.map(|r| Some(r.0)))),
                ("status", text_column(&reconciliation.map(|r| Some(r.1)))),
                ("right_id", text_column(&reconciliation.map(|r| r.2))),
            ],
        );
        write_parquet(
            &dir.join("rejects"),
            vec![
                ("source", text_column(&[Some("left")])),
                ("record_id", text_column(&[Some("a7")])),
            ],
        );
    }

    /// `khop datagen`'s layout: Parquet, integer entity ids, a list of classes.
    fn parquet_truth(file: &Path) {
        let mut lists = ListBuilder::new(StringBuilder::new());
        for (.., classes) in TRUTH {
            for c in split_classes(classes) {
                lists.values().append_value(c);
            }
            lists.append(true);
        }
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("source", text_column(&TRUTH.map(|t| Some(t.0)))),
            ("record_id", text_column(&TRUTH.map(|t| Some(t.1)))),
            (
                "person_id",
                Arc::new(Int64Array::from(TRUTH.map(|t| t.2 as i64).to_vec())),
            ),
            ("corruptions", Arc::new(lists.finish())),
        ];
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let mut writer =
            ArrowWriter::try_new(File::create(file).unwrap(), batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    /// CSV lines of the truth records of `source` (all of them for `None`), with entity ids as text,
    /// and the source column when `source_column` is given.
    fn csv_truth(source: Option<&str>, source_column: Option<&str>) -> String {
        let mut text = match source_column {
            Some(c) => format!("{c},rec_id,entity,classes\n"),
            None => "rec_id,entity,classes\n".to_owned(),
        };
        for (s, id, entity, classes) in TRUTH {
            if source.is_some_and(|x| x != s) {
                continue;
            }
            if source_column.is_some() {
                text += &format!("{s},");
            }
            text += &format!("{id},person-{entity:03},\"{classes}\"\n");
        }
        text
    }

    fn csv_columns(source: Option<&str>) -> TruthColumns {
        TruthColumns {
            id: "rec_id".into(),
            entity: "entity".into(),
            source: source.map(str::to_owned),
            corruptions: Some("classes".into()),
        }
    }

    #[test]
    fn every_truth_layout_gives_the_same_report() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("out");
        std::fs::create_dir_all(&output).unwrap();
        job_output(&output);

        let parquet = dir.path().join("truth.parquet");
        parquet_truth(&parquet);
        let csv = dir.path().join("truth.csv");
        std::fs::write(&csv, csv_truth(None, None)).unwrap();
        let directory = dir.path().join("truth");
        std::fs::create_dir_all(&directory).unwrap();
        for source in ["left", "right"] {
            let text = csv_truth(Some(source), Some("db"));
            std::fs::write(directory.join(format!("{source}.csv")), text).unwrap();
        }

        let report = evaluate(&parquet, &output, &TruthColumns::default()).unwrap();
        let expected = |r: &Report| {
            let counts = |m: &Metrics| (m.true_pairs, m.predicted_pairs, m.true_positives);
            let b = r.best_match.as_ref().unwrap();
            (
                counts(&r.pairs),
                counts(&r.clusters),
                (b.with_partner, b.matched, b.correct),
                r.recall_by_class
                    .iter()
                    .map(|(c, r)| format!("{c} {} of {}", r.found, r.true_pairs))
                    .collect::<Vec<_>>(),
                r.no_counterpart.clone(),
            )
        };
        assert_eq!(
            expected(&report),
            (
                (6, 4, 2),
                (6, 4, 2),
                (5, 4, 2),
                vec!["swap 0 of 1".to_owned(), "typo 1 of 2".to_owned()],
                BTreeMap::from([("matched".into(), 1), ("unmatched".into(), 1)]),
            )
        );
        assert_eq!(report.match_threshold, 0.9);
        assert_eq!(report.best_match.as_ref().unwrap().precision, 0.5);
        assert_eq!(report.best_match.as_ref().unwrap().recall, 0.4);

        let json = |r: &Report| serde_json::to_value(r).unwrap();
        for (truth, columns) in [
            (&csv, csv_columns(None)),
            (&directory, csv_columns(Some("db"))),
        ] {
            let other = evaluate(truth, &output, &columns).unwrap();
            assert_eq!(json(&other), json(&report), "{}", truth.display());
        }
    }

    #[test]
    fn bad_truth_tables_are_refused_naming_file_and_column_not_content() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("out");
        std::fs::create_dir_all(&output).unwrap();
        job_output(&output);
        let cases: [(&str, TruthColumns, &str); 4] = [
            (
                "rec_id,entity\na1,person-1\nb1,person-1\na1,person-2\n",
                csv_columns(None).with_no_corruptions(),
                "column `rec_id` repeats a record id",
            ),
            (
                "rec_id,entity\na1,person-1,extra\n",
                csv_columns(None).with_no_corruptions(),
                "line 2: 3 fields where the header has 2",
            ),
            (
                "rec_id,person\na1,person-1\n",
                csv_columns(None).with_no_corruptions(),
                "no column `entity`",
            ),
            (
                "rec_id,entity,db\na1,person-1,left\n",
                csv_columns(Some("source")).with_no_corruptions(),
                "no column `source`",
            ),
        ];
        for (i, (text, columns, message)) in cases.into_iter().enumerate() {
            let file = dir.path().join(format!("truth-{i}.csv"));
            std::fs::write(&file, text).unwrap();
            let error = evaluate(&file, &output, &columns).unwrap_err().to_string();
            assert!(error.contains(message), "{text:?}: {error}");
            assert!(error.contains(&file.display().to_string()), "{error}");
            assert!(!error.contains("person-"), "{error}");
        }
    }

    impl TruthColumns {
        fn with_no_corruptions(mut self) -> Self {
            self.corruptions = None;
            self
        }
    }
}
