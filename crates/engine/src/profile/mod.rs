//! `khop profile`: what an input holds, column by column, before a job is written for it.
//!
//! A bounded sample (the first [`DEFAULT_ROWS`] records, read with the engine's own readers) gives
//! per column the share of empty values, the shapes of the values and their shares, the distinct
//! values and how common the commonest are, the share each standardiser reads, the kind the column
//! most likely is and the values that kind's reader leaves unread, counted by shape ([`column`]).
//! [`suggest`] writes a job spec for one input (dedupe) or two (link) from the profiles.
//!
//! **Privacy:** the inputs are personal data. A value's content is reported only when it is frequent
//! ([`column::shown_threshold`]: at least 10 records and 1% of those read); every other value is
//! only counted, and described by its shape.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::EngineError;
use crate::conventions::{date_order, first_records, id_repair, today};
use crate::scan::{Scanned, text};
use crate::spec::{CsvOptions, DateOrder, Dates, InputFormat};

pub mod column;
mod read;
pub mod suggest;

use column::{Counts, Evidence, KindPass, Readers, decide};
pub use column::{
    Hints, Kind, ReaderShare, ShapeCount, TopValue, shown_threshold, standardiser_name,
};

/// Records read from the start of an input unless asked otherwise.
pub const DEFAULT_ROWS: usize = 100_000;

/// The commonest values reported per column.
const TOP_VALUES: usize = 5;
/// The commonest shapes reported per column, and of its unread values.
const TOP_SHAPES: usize = 8;

/// How inputs are read.
#[derive(Clone, Debug)]
pub struct Options {
    /// Records read from the start of each input.
    pub rows: usize,
    /// Parquet or CSV; by default from the file's extension, or the files a directory holds.
    pub format: Option<InputFormat>,
    /// A CSV input's delimiter; by default the commonest of `,` `;` tab `|` in its header.
    pub delimiter: Option<char>,
    /// A CSV input's encoding (`utf-8`, `windows-1258`, `tcvn3`, `vni`); UTF-8 by default.
    pub encoding: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rows: DEFAULT_ROWS,
            format: None,
            delimiter: None,
            encoding: None,
        }
    }
}

/// The profile of one input (the `--json` output is a list of these).
#[derive(Clone, Debug, Serialize)]
pub struct InputProfile {
    /// The input's name in a suggested job: its file or directory name, as letters, digits and `_`.
    pub name: String,
    pub path: String,
    pub format: InputFormat,
    /// How a CSV input was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csv: Option<CsvOptions>,
    /// The input's files (all are listed; records are read from the first ones until the sample
    /// is complete).
    pub files: usize,
    /// Records read, from the start of the input.
    pub rows_read: u64,
    /// The most records that were to be read (`--rows`).
    pub row_limit: u64,
    /// Whether the sample is the whole input (fewer records than the limit).
    pub whole_input: bool,
    /// CSV lines among those read that are no record (a wrong number of fields, a quote never
    /// closed, bytes that are not text in the encoding): a job rejects them.
    pub unreadable_lines: u64,
    /// A value is shown only where it occurs in at least this many of the records read.
    pub shown_threshold: u64,
    /// The first column whose values are all present and all distinct, preferring identifiers: a
    /// job's `id`.
    pub record_id: Option<String>,
    pub columns: Vec<ColumnProfile>,
}

/// One column of an input's sample.
#[derive(Clone, Debug, Serialize)]
pub struct ColumnProfile {
    pub name: String,
    pub kind: Kind,
    /// The standardiser a job reads the kind with.
    pub standardiser: Option<crate::spec::Standardiser>,
    /// The evidence for the kind, in words.
    pub why: String,
    /// Records whose value is empty or blank, and their share of the records read.
    pub empty: u64,
    pub null_rate: f64,
    /// Distinct non-empty values in the sample.
    pub distinct: u64,
    /// The share of the non-empty values that the commonest value holds.
    pub top_share: f64,
    /// The commonest values, commonest first; `value` only where it is frequent enough to show.
    pub top: Vec<TopValue>,
    /// The commonest shapes of the non-empty values (digits as 9, letters as a)...
    pub shapes: Vec<ShapeCount>,
    /// ...and the values of every other shape.
    pub other_shapes: u64,
    /// Every standardiser's reader: how many of the non-empty values it reads.
    pub readers: Vec<ReaderShare>,
    /// Non-empty values the kind's standardiser does not read, and their commonest shapes.
    pub unread: u64,
    pub unread_shapes: Vec<ShapeCount>,
    /// A date column's day/month order, decided as a job decides it from its sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_order: Option<DateOrder>,
    /// A `vn_id` column: whether numbers that lost their leading zeros are restored, decided as a
    /// job decides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_repair: Option<bool>,
}

/// A profile with what [`suggest`] needs beyond the report.
pub struct Profiled {
    pub profile: InputProfile,
    pub(crate) facts: Vec<Facts>,
}

/// What suggesting a job needs to know of a column that the report does not say.
pub(crate) struct Facts {
    pub hints: Hints,
    pub evidence: Evidence,
    pub keys: rustc_hash::FxHashSet<u64>,
    pub has_cmnd: bool,
}

/// Profiles the input at `path` (a file or a directory of files, or an object-store URL).
pub fn profile(path: &str, options: &Options) -> Result<Profiled, EngineError> {
    let opened = read::open(path, options)?;
    let sample = first_records(&opened.input, &opened.files, options.rows)?;
    let sample = match sample {
        Some(sample) => sample,
        None => Scanned {
            batch: arrow::array::RecordBatch::new_empty(crate::scan::text_schema(&opened.columns)),
            rows: Vec::new(),
            bad: Vec::new(),
        },
    };
    let rows = sample.batch.num_rows();
    let reference = Dates {
        reference: Some(today()),
        ..Dates::default()
    };
    let first: Vec<(DateOrder, Counts)> = opened
        .columns
        .iter()
        .map(|column| first_pass(&sample, column, &reference))
        .collect();
    let hints: Vec<Hints> = opened.columns.iter().map(|c| Hints::of(c)).collect();
    // The birth years that tell a PIN column damaged by a spreadsheet from another kind of number,
    // as a job tells them: from the birth date column (the first date column named so, or else
    // the first date column).
    let dates: Vec<usize> = (0..first.len())
        .filter(|&i| decide(&first[i].1.evidence(hints[i], true)).0 == Kind::Date)
        .collect();
    let birth_column = dates
        .iter()
        .find(|&&i| hints[i].birth)
        .or(dates.first())
        .copied();
    let birth: Vec<Option<i32>> = birth_column.map_or_else(Vec::new, |i| {
        let rules = reference.rules(&opened.columns[i], first[i].0);
        let values = text(&sample.batch, &opened.columns[i]);
        (0..rows)
            .map(|row| {
                khop_vn::date::parse_date_with(values.get(row), &rules)
                    .ok()
                    .map(|d| d.year)
            })
            .collect()
    });
    let (columns, facts): (Vec<_>, Vec<_>) = first
        .into_iter()
        .zip(&opened.columns)
        .zip(hints)
        .map(|(((order, counts), column), hints)| {
            let context = Context {
                sample: &sample,
                reference: &reference,
                birth: &birth,
            };
            second_pass(&context, column, order, counts, hints)
        })
        .unzip();
    let record_id = record_id(&columns, &facts, rows);
    Ok(Profiled {
        profile: InputProfile {
            name: opened.name,
            path: path.to_owned(),
            format: opened.input.format,
            csv: opened.input.csv.clone(),
            files: opened.files.len(),
            rows_read: rows as u64,
            row_limit: options.rows as u64,
            whole_input: rows < options.rows,
            unreadable_lines: sample.bad.len() as u64,
            shown_threshold: shown_threshold(rows as u64),
            record_id,
            columns,
        },
        facts,
    })
}

/// The first pass over a column: its dates' day/month order, as a job decides it, then every
/// value read with that order and with leading zeros restored.
fn first_pass(sample: &Scanned, column: &str, reference: &Dates) -> (DateOrder, Counts) {
    let order = date_order(sample, column).0;
    let readers = Readers {
        dates: reference.rules(column, order),
        id_repair: true,
    };
    let rows = sample.batch.num_rows();
    (
        order,
        Counts::of(&text(&sample.batch, column), rows, &readers),
    )
}

/// What the second pass over a column needs of the whole sample.
struct Context<'a> {
    sample: &'a Scanned,
    reference: &'a Dates,
    /// Per record, the birth year of its birth date column, if any.
    birth: &'a [Option<i32>],
}

/// The column's kind (with the repair of lost leading zeros a job would decide for it, should it
/// hold IDs), then a second pass for the values that kind's reader leaves unread.
fn second_pass(
    context: &Context,
    column: &str,
    order: DateOrder,
    counts: Counts,
    hints: Hints,
) -> (ColumnProfile, Facts) {
    let sample = context.sample;
    let rows = sample.batch.num_rows();
    let may_be_ids = decide(&counts.evidence(hints, true)).0 == Kind::VnId;
    let repair = !may_be_ids || id_repair(sample, column, context.birth).0;
    let evidence = counts.evidence(hints, repair);
    let (kind, why) = decide(&evidence);
    let readers = Readers {
        dates: context.reference.rules(column, order),
        id_repair: repair,
    };
    let pass = KindPass::of(&text(&sample.batch, column), rows, kind, &readers);
    let (shapes, other_shapes) = counts.shapes(TOP_SHAPES);
    let top = counts.top(TOP_VALUES, shown_threshold(rows as u64));
    let empty = rows as u64 - counts.non_empty();
    let profile = ColumnProfile {
        name: column.to_owned(),
        kind,
        standardiser: kind.standardiser(),
        why,
        empty,
        null_rate: if rows == 0 {
            0.0
        } else {
            empty as f64 / rows as f64
        },
        distinct: counts.distinct(),
        top_share: top.first().map_or(0.0, |t| t.share),
        top,
        shapes,
        other_shapes,
        readers: counts.readers(repair),
        unread: pass.unread_total,
        unread_shapes: pass.unread_shapes(TOP_SHAPES),
        date_order: (kind == Kind::Date).then_some(order),
        id_repair: (kind == Kind::VnId).then_some(repair),
    };
    let facts = Facts {
        hints,
        has_cmnd: counts.has_cmnd(),
        keys: pass.keys,
        evidence,
    };
    (profile, facts)
}

/// The column that names each record: every value present and distinct; an identifier first, then
/// text (never a name, a date or a phone, whatever a small sample says).
fn record_id(columns: &[ColumnProfile], facts: &[Facts], rows: usize) -> Option<String> {
    let complete = |i: usize| {
        let c = &columns[i];
        rows > 0 && c.empty == 0 && facts[i].evidence.distinct == rows as u64
    };
    let rank = |kind: Kind| match kind {
        Kind::Identifier => Some(0),
        Kind::Text => Some(1),
        Kind::VnId => Some(2),
        _ => None,
    };
    let mut candidates: BTreeMap<(u8, usize), &str> = BTreeMap::new();
    for (i, c) in columns.iter().enumerate() {
        if let Some(r) = rank(c.kind)
            && complete(i)
        {
            candidates.insert((r, i), &c.name);
        }
    }
    candidates.into_values().next().map(str::to_owned)
}

#[cfg(test)]
mod tests;
