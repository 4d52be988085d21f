//! How an input's ambiguous values are read, decided once per job from a sample of the input.
//!
//! Some values do not say how to read them: `03/04/1990` is 3 April in a day-first export and
//! 4 March in a month-first one; `1085012345` is a PIN whose two leading zeros a spreadsheet dropped,
//! or a 10-digit tax code. Their column does say: by its unambiguous dates (`25/03/1990` can only be
//! day-first), and by whether its repaired numbers carry the record's own birth year as a PIN does.
//! When a job is planned, the first [`SAMPLE_RECORDS`] records of each input's first file decide
//! every convention `[inputs.conventions]` does not set, and the decisions are written into the spec
//! that every task receives, so an input is read one way whatever its files, pieces or workers. The
//! reference day of two-digit years (`[dates] reference`) is fixed the same way.
//!
//! Only counts are logged, never a value.

use khop_vn::date::{PartialDate, parse_date_with};
use khop_vn::id::{IdNumber, parse_id_with};

use crate::EngineError;
use crate::scan::{Scanned, input_files, scan, text};
use crate::spec::{DateOrder, Input, JobSpec, Standardiser};

/// Records read from the start of each input to decide its conventions.
pub const SAMPLE_RECORDS: usize = 10_000;

/// Month-first dates are read month-first only when at least this many sampled values can only be
/// month-first...
const MIN_MONTH_FIRST: u64 = 10;
/// ...and they outnumber the values that can only be day-first by this factor: a few `25/03` typed
/// into a month-first export, or the reverse, are typing errors, not a convention.
const MONTH_FIRST_MAJORITY: u64 = 4;

/// With at least this many repaired PINs beside a readable birth year, the column's repair is
/// decided by how many of them encode that year.
const MIN_REPAIRS_JUDGED: u64 = 20;

/// Fixes what the spec leaves to the job: the reference day (`today`, as `YYYY-MM-DD`) and each
/// input's conventions from a sample of it.
pub fn resolve(spec: &mut JobSpec, today: impl FnOnce() -> String) {
    if spec.dates.reference.is_none() {
        spec.dates.reference = Some(today());
    }
    for i in 0..spec.inputs.len() {
        let input = &spec.inputs[i];
        let dates = mapped_fields(spec, input, Standardiser::Date)
            .into_iter()
            .filter(|field| !input.conventions.date_order.contains_key(*field))
            .map(|field| (field.to_owned(), input.columns[field].names()[0].to_owned()))
            .collect::<Vec<_>>();
        let ids = mapped_fields(spec, input, Standardiser::VnId)
            .into_iter()
            .flat_map(|field| input.columns[field].names())
            .filter(|column| !input.conventions.id_repair.contains_key(*column))
            .map(str::to_owned)
            .collect::<Vec<_>>();
        if dates.is_empty() && ids.is_empty() {
            continue;
        }
        // A sample that cannot be read leaves the defaults: the stage that reads the input says
        // what is wrong with it, as it would without conventions.
        let sample = match sample(input) {
            Ok(Some(sample)) => sample,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(input = input.name, "conventions left to defaults: {e}");
                continue;
            }
        };
        let birth = birth_facts(spec, input, &sample.batch);
        let input = &mut spec.inputs[i];
        for (field, column) in dates {
            let order = date_order(&sample, &column);
            tracing::info!(
                input = input.name,
                field,
                "dates: {} ({} sampled values day-first only, {} month-first only)",
                order.0.name(),
                order.1,
                order.2
            );
            input.conventions.date_order.insert(field, order.0);
        }
        for column in ids {
            let repair = id_repair(&sample, &column, &birth);
            tracing::info!(
                input = input.name,
                column,
                "ids: leading zeros {} ({})",
                if repair.0 { "restored" } else { "not restored" },
                repair.1
            );
            input.conventions.id_repair.insert(column, repair.0);
        }
    }
}

/// The fields of `standardiser` that `input` maps.
fn mapped_fields<'a>(
    spec: &'a JobSpec,
    input: &'a Input,
    standardiser: Standardiser,
) -> Vec<&'a str> {
    spec.fields
        .iter()
        .filter(|(field, s)| **s == standardiser && input.columns.contains_key(*field))
        .map(|(field, _)| field.as_str())
        .collect()
}

/// Error message that stops a scan once the sample is read.
const SAMPLED: &str = "sample read";

/// The first records of the input's first file; `None` for an input without files (refused later,
/// by the stage that reads it).
fn sample(input: &Input) -> Result<Option<Scanned>, EngineError> {
    let Some(file) = input_files(input)?.into_iter().next() else {
        return Ok(None);
    };
    first_records(input, &[file], SAMPLE_RECORDS)
}

/// The first `limit` records of `files` of `input` (in that order) in one batch, with the lines
/// among them that could not be read; `None` when the files hold neither. Record numbers are those
/// within each record's file. Reading stops once the sample is complete: a sample of a large input
/// costs its size, not the input's.
pub fn first_records(
    input: &Input,
    files: &[String],
    limit: usize,
) -> Result<Option<Scanned>, EngineError> {
    let (mut batches, mut rows, mut bad) = (Vec::new(), Vec::new(), Vec::new());
    for file in files {
        if rows.len() >= limit {
            break;
        }
        let batch_rows = (limit - rows.len()).min(1 << 16);
        let stopped = scan(input, file, None, batch_rows, |scanned| {
            let keep = (limit - rows.len()).min(scanned.rows.len());
            // The lines that could not be read before the first record left out.
            let end = scanned.rows.get(keep).copied().unwrap_or(u64::MAX);
            bad.extend(scanned.bad.into_iter().filter(|b| b.row < end));
            batches.push(scanned.batch.slice(0, keep));
            rows.extend_from_slice(&scanned.rows[..keep]);
            if rows.len() >= limit {
                Err(EngineError::Other(SAMPLED.into()))
            } else {
                Ok(())
            }
        });
        match stopped {
            Ok(()) => {}
            Err(EngineError::Other(m)) if m == SAMPLED => {}
            Err(e) => return Err(e),
        }
    }
    let Some(first) = batches.first() else {
        return Ok(None);
    };
    let batch = arrow::compute::concat_batches(&first.schema(), &batches)?;
    Ok(Some(Scanned { batch, rows, bad }))
}

/// Day-first unless the column's unambiguous values are clearly month-first; with the counts of
/// values that can only be day-first and only month-first.
pub(crate) fn date_order(sample: &Scanned, column: &str) -> (DateOrder, u64, u64) {
    let values = text(&sample.batch, column);
    let (mut day_first, mut month_first) = (0u64, 0u64);
    for row in 0..sample.batch.num_rows() {
        match khop_vn::date::day_month_evidence(values.get(row)) {
            Some(khop_vn::date::DayMonthOrder::DayFirst) => day_first += 1,
            Some(khop_vn::date::DayMonthOrder::MonthFirst) => month_first += 1,
            None => {}
        }
    }
    let order = if month_first >= MIN_MONTH_FIRST && month_first > MONTH_FIRST_MAJORITY * day_first
    {
        DateOrder::MonthFirst
    } else {
        DateOrder::DayFirst
    };
    (order, day_first, month_first)
}

/// Per sampled record, the birth year its first date field gives, when the input maps one.
fn birth_facts(
    spec: &JobSpec,
    input: &Input,
    batch: &arrow::array::RecordBatch,
) -> Vec<Option<i32>> {
    let Some(field) = mapped_fields(spec, input, Standardiser::Date)
        .into_iter()
        .next()
    else {
        return Vec::new();
    };
    let rules = spec.date_rules(input, field);
    let values = text(batch, input.columns[field].names()[0]);
    (0..batch.num_rows())
        .map(|row| {
            parse_date_with(values.get(row), &rules)
                .ok()
                .map(|d: PartialDate| d.year)
        })
        .collect()
}

/// Whether a column's numbers that lost leading zeros are restored, and why.
///
/// Where the sampled records give birth years, a column whose repaired PINs mostly encode their own
/// record's birth year is a PIN column a spreadsheet damaged; one whose repaired numbers do not is
/// another kind of number (a tax code padded with zeros reads as a PIN of a random year). Without
/// birth years, a column is of another kind when most of its numbers have a length that neither a
/// PIN, a CMND nor a damaged PIN has (10 or 8 digits) and hardly any has 9, 11 or 12.
pub(crate) fn id_repair(sample: &Scanned, column: &str, birth: &[Option<i32>]) -> (bool, String) {
    let values = text(&sample.batch, column);
    let (mut repaired, mut judged, mut agree) = (0u64, 0u64, 0u64);
    let mut lengths = [0u64; 14];
    let mut numbers = 0u64;
    for row in 0..sample.batch.num_rows() {
        let raw = values.get(row);
        let reading = parse_id_with(raw, true);
        let digits = raw.bytes().filter(u8::is_ascii_digit).count();
        if digits > 0
            && raw
                .bytes()
                .all(|b| b.is_ascii_digit() || b" .-".contains(&b))
        {
            numbers += 1;
            lengths[digits.min(13)] += 1;
        }
        if !reading.repaired {
            continue;
        }
        repaired += 1;
        if let (IdNumber::Pin(pin), Some(Some(year))) = (&reading.id, birth.get(row)) {
            judged += 1;
            agree += u64::from(pin.birth_year == *year);
        }
    }
    if repaired == 0 {
        return (true, "no number in the sample needed it".into());
    }
    if judged >= MIN_REPAIRS_JUDGED {
        let repair = agree * 2 >= judged;
        return (
            repair,
            format!("{agree} of {judged} repaired PINs sampled encode their record's birth year"),
        );
    }
    let well_formed_or_damaged = lengths[9] + lengths[11] + lengths[12];
    let other = lengths[10].max(lengths[8]);
    let another_kind = other * 2 >= numbers && well_formed_or_damaged * 20 < numbers;
    (
        !another_kind,
        format!(
            "of {numbers} sampled numbers, {other} have 10 or 8 digits and \
             {well_formed_or_damaged} have 9, 11 or 12"
        ),
    )
}

/// Today's date in UTC, `YYYY-MM-DD`.
pub fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The proleptic Gregorian date of a count of days since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::text_batch;

    /// A sample of one column `c` holding `values`.
    fn sample_of(values: &[&str]) -> Scanned {
        let values: Vec<Option<&str>> = values.iter().map(|v| Some(*v)).collect();
        Scanned {
            batch: text_batch(&["c".to_owned()], |_| values.clone()),
            rows: (0..values.len() as u64).collect(),
            bad: Vec::new(),
        }
    }

    /// `n` copies of each value.
    fn many(groups: &[(&'static str, usize)]) -> Vec<&'static str> {
        groups
            .iter()
            .flat_map(|&(v, n)| std::iter::repeat_n(v, n))
            .collect()
    }

    #[test]
    fn a_columns_unambiguous_dates_decide_its_order() {
        let cases: &[(&[(&str, usize)], DateOrder)] = &[
            // Vietnamese exports: day first, whatever the ambiguous values.
            (
                &[("25/03/1990", 50), ("03/04/1990", 500)],
                DateOrder::DayFirst,
            ),
            // Only ambiguous values: the Vietnamese convention.
            (&[("03/04/1990", 500)], DateOrder::DayFirst),
            // A US export.
            (
                &[("03/25/1990", 50), ("03/04/1990", 500)],
                DateOrder::MonthFirst,
            ),
            (&[("12/31/99", 40), ("01/02/03", 10)], DateOrder::MonthFirst),
            // A few month-first values in a day-first column are typing errors.
            (
                &[("03/25/1990", 9), ("03/04/1990", 500)],
                DateOrder::DayFirst,
            ),
            (
                &[("03/25/1990", 40), ("25/03/1990", 20)],
                DateOrder::DayFirst,
            ),
            // ISO dates say nothing.
            (&[("1990-03-25", 500)], DateOrder::DayFirst),
        ];
        for (groups, expected) in cases {
            let sample = sample_of(&many(groups));
            assert_eq!(date_order(&sample, "c").0, *expected, "{groups:?}");
        }
    }

    #[test]
    fn a_column_of_another_kind_of_number_is_not_repaired() {
        // (values, birth year of every record or none, repair)
        type Case = (&'static [(&'static str, usize)], Option<i32>, bool);
        let cases: &[Case] = &[
            // PINs as they should be.
            (&[("001085012345", 100)], Some(1985), true),
            // A spreadsheet dropped the zeros of PINs of 1985: they carry the birth year.
            (&[("1085012345", 60), ("79085012345", 40)], Some(1985), true),
            // 10-digit tax codes read as PINs would carry random years.
            (&[("8012345678", 100)], Some(1985), false),
            // Without birth years, by shape: tax codes are 10 digits, and nothing else.
            (&[("8012345678", 100)], None, false),
            // Damaged PINs are mostly 11 digits.
            (&[("1085012345", 30), ("79085012345", 70)], None, true),
            // Nothing needed repair.
            (&[("001085012345", 10), ("", 90)], None, true),
        ];
        for (groups, year, expected) in cases {
            let values = many(groups);
            let sample = sample_of(&values);
            let birth = vec![*year; values.len()];
            let (repair, why) = id_repair(&sample, "c", &birth);
            assert_eq!(repair, *expected, "{groups:?} {year:?}: {why}");
        }
    }

    #[test]
    fn a_sample_is_the_first_records_of_the_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for (f, lines) in [(0, 3), (1, 4)] {
            let path = dir.path().join(format!("part-{f}.csv"));
            let mut text = String::from("id,name\n");
            for i in 0..lines {
                text.push_str(&format!("{f}-{i},x\n"));
            }
            // A line the header does not fit: no record, but read among them.
            if f == 1 {
                text.insert_str("id,name\n".len(), "bad\n");
            }
            std::fs::write(&path, text).unwrap();
            files.push(path.to_string_lossy().into_owned());
        }
        let input = Input {
            name: "people".into(),
            path: dir.path().to_string_lossy().into_owned(),
            format: crate::spec::InputFormat::Csv,
            id: "id".into(),
            columns: Default::default(),
            cache: None,
            csv: None,
            conventions: Default::default(),
        };
        // (limit, ids sampled, lines that were no record)
        let cases: &[(usize, &[&str], usize)] = &[
            (2, &["0-0", "0-1"], 0),
            (3, &["0-0", "0-1", "0-2"], 0),
            (5, &["0-0", "0-1", "0-2", "1-0", "1-1"], 1),
            (100, &["0-0", "0-1", "0-2", "1-0", "1-1", "1-2", "1-3"], 1),
        ];
        for &(limit, ids, bad) in cases {
            let sample = first_records(&input, &files, limit).unwrap().unwrap();
            let column = text(&sample.batch, "id");
            let got: Vec<&str> = (0..sample.batch.num_rows())
                .map(|r| column.get(r))
                .collect();
            assert_eq!(got, ids, "{limit}");
            assert_eq!(sample.rows.len(), ids.len(), "{limit}");
            assert_eq!(sample.bad.len(), bad, "{limit}");
        }
    }

    #[test]
    fn days_become_calendar_dates() {
        let cases: &[(i64, (i64, u32, u32))] = &[
            (0, (1970, 1, 1)),
            (59, (1970, 3, 1)),
            (10_956, (1999, 12, 31)),
            (11_016, (2000, 2, 29)),
            (20_794, (2026, 12, 7)),
            (-1, (1969, 12, 31)),
        ];
        for &(days, date) in cases {
            assert_eq!(civil_from_days(days), date, "{days}");
        }
    }
}
