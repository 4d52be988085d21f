//! Standardise: raw text columns become compact, comparable values, one column per field part, and
//! each record gets its blocking keys. Records that cannot be used go to rejects with a reason.

use std::collections::HashMap;

use arrow::array::{Array, RecordBatch, StringArray};
use khop_vn::Sex;
use khop_vn::admin::resolve_province;
use khop_vn::date::{PartialDate, parse_date};
use khop_vn::id::{IdNumber, parse_id};
use khop_vn::name::{name_key, parse_name};
use khop_vn::text::{canonical_name, fold_diacritics};
use rayon::prelude::*;

use crate::EngineError;
use crate::hash::{KeyHasher, hash_str};
use crate::scan::{Piece, Scanned, text};
use crate::spec::{Input, JobSpec, Standardiser};

/// Many strings in one buffer: a column of text without a heap allocation per value. An empty string
/// stands for a missing value.
#[derive(Clone, Debug, Default)]
pub struct Strings {
    data: String,
    ends: Vec<usize>,
}

impl Strings {
    pub fn push(&mut self, s: &str) {
        self.data.push_str(s);
        self.ends.push(self.data.len());
    }

    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The strings as an Arrow column (one copy of the bytes).
    pub fn to_array(&self) -> StringArray {
        let mut offsets = Vec::with_capacity(self.ends.len() + 1);
        offsets.push(0i32);
        offsets.extend(self.ends.iter().map(|&e| e as i32));
        StringArray::new(
            arrow::buffer::OffsetBuffer::new(offsets.into()),
            arrow::buffer::Buffer::from(self.data.as_bytes()),
            None,
        )
    }

    /// Strings from an Arrow column; nulls become empty strings.
    pub fn from_array(array: &StringArray) -> Strings {
        let offsets = array.value_offsets();
        let (first, last) = (offsets[0] as usize, offsets[offsets.len() - 1] as usize);
        let bytes = &array.value_data()[first..last];
        let data = std::str::from_utf8(bytes).map_or_else(
            |_| (0..array.len()).map(|i| array.value(i)).collect::<String>(),
            str::to_owned,
        );
        let ends = offsets[1..].iter().map(|&o| o as usize - first).collect();
        Strings { data, ends }
    }

    pub(crate) fn append(&mut self, other: &Strings) {
        let base = self.data.len();
        self.data.push_str(&other.data);
        self.ends.extend(other.ends.iter().map(|e| e + base));
    }

    pub(crate) fn select(&self, rows: &[usize]) -> Strings {
        let mut out = Strings::default();
        for &r in rows {
            out.push(self.get(r));
        }
        out
    }
}

/// A date packed as `year << 16 | month << 8 | day`; 0 is missing, month and day 0 are unknown.
pub type PackedDate = u32;

pub fn pack_date(d: &PartialDate) -> PackedDate {
    ((d.year.max(0) as u32) << 16)
        | (u32::from(d.month.unwrap_or(0)) << 8)
        | u32::from(d.day.unwrap_or(0))
}

pub fn unpack_date(p: PackedDate) -> Option<PartialDate> {
    if p == 0 {
        return None;
    }
    let nonzero = |v: u32| (v != 0).then_some(v as u8);
    Some(PartialDate {
        year: (p >> 16) as i32,
        month: nonzero((p >> 8) & 0xff),
        day: nonzero(p & 0xff),
    })
}

/// The standardised values of one field, for every record of a table.
#[derive(Clone, Debug)]
pub enum FieldValues {
    Name {
        /// Canonical parts: mojibake repaired, NFC, one tone style, lowercase.
        surname: Strings,
        middle: Strings,
        given: Strings,
        /// The same parts as keys: accents folded, y/i and regional variants merged.
        surname_key: Strings,
        middle_key: Strings,
        given_key: Strings,
    },
    Date(Vec<PackedDate>),
    Id {
        pin: Strings,
        cmnd: Strings,
    },
    Province {
        /// New (34-unit) code; 0 when missing.
        new: Vec<u8>,
        /// Old (63-unit) code when the text names one; 0 otherwise.
        old: Vec<u8>,
    },
    /// 0 missing, 1 male, 2 female.
    Sex(Vec<u8>),
    Text(Strings),
}

impl FieldValues {
    pub(crate) fn empty(standardiser: Standardiser) -> Self {
        match standardiser {
            Standardiser::VnName => FieldValues::Name {
                surname: Strings::default(),
                middle: Strings::default(),
                given: Strings::default(),
                surname_key: Strings::default(),
                middle_key: Strings::default(),
                given_key: Strings::default(),
            },
            Standardiser::Date => FieldValues::Date(Vec::new()),
            Standardiser::VnId => FieldValues::Id {
                pin: Strings::default(),
                cmnd: Strings::default(),
            },
            Standardiser::VnProvince => FieldValues::Province {
                new: Vec::new(),
                old: Vec::new(),
            },
            Standardiser::Sex => FieldValues::Sex(Vec::new()),
            Standardiser::Phone | Standardiser::Text => FieldValues::Text(Strings::default()),
        }
    }

    pub(crate) fn append(&mut self, other: &FieldValues) {
        use FieldValues::*;
        match (self, other) {
            (
                Name {
                    surname,
                    middle,
                    given,
                    surname_key,
                    middle_key,
                    given_key,
                },
                Name {
                    surname: s2,
                    middle: m2,
                    given: g2,
                    surname_key: sk2,
                    middle_key: mk2,
                    given_key: gk2,
                },
            ) => {
                surname.append(s2);
                middle.append(m2);
                given.append(g2);
                surname_key.append(sk2);
                middle_key.append(mk2);
                given_key.append(gk2);
            }
            (Date(a), Date(b)) => a.extend_from_slice(b),
            (Id { pin, cmnd }, Id { pin: p2, cmnd: c2 }) => {
                pin.append(p2);
                cmnd.append(c2);
            }
            (Province { new, old }, Province { new: n2, old: o2 }) => {
                new.extend_from_slice(n2);
                old.extend_from_slice(o2);
            }
            (Sex(a), Sex(b)) => a.extend_from_slice(b),
            (Text(a), Text(b)) => a.append(b),
            _ => unreachable!("fields keep their standardiser"),
        }
    }

    pub(crate) fn select(&self, rows: &[usize]) -> FieldValues {
        use FieldValues::*;
        match self {
            Name {
                surname,
                middle,
                given,
                surname_key,
                middle_key,
                given_key,
            } => Name {
                surname: surname.select(rows),
                middle: middle.select(rows),
                given: given.select(rows),
                surname_key: surname_key.select(rows),
                middle_key: middle_key.select(rows),
                given_key: given_key.select(rows),
            },
            Date(v) => Date(rows.iter().map(|&r| v[r]).collect()),
            Id { pin, cmnd } => Id {
                pin: pin.select(rows),
                cmnd: cmnd.select(rows),
            },
            Province { new, old } => Province {
                new: rows.iter().map(|&r| new[r]).collect(),
                old: rows.iter().map(|&r| old[r]).collect(),
            },
            Sex(v) => Sex(rows.iter().map(|&r| v[r]).collect()),
            Text(s) => Text(s.select(rows)),
        }
    }

    /// Writes the bytes of blocking key `part` of record `row` into `out`; false when missing.
    pub fn key_bytes(&self, part: &str, row: usize, out: &mut Vec<u8>) -> bool {
        let push = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(s.as_bytes());
            !s.is_empty()
        };
        match self {
            FieldValues::Name {
                surname_key,
                middle_key,
                given_key,
                ..
            } => match part {
                "surname_key" => push(out, surname_key.get(row)),
                "middle_key" => push(out, middle_key.get(row)),
                "given_key" => push(out, given_key.get(row)),
                "key" | "tokens_key" => {
                    let mut words: Vec<&str> = [surname_key, middle_key, given_key]
                        .iter()
                        .flat_map(|s| s.get(row).split(' '))
                        .filter(|w| !w.is_empty())
                        .collect();
                    if part == "tokens_key" {
                        words.sort_unstable();
                    }
                    for w in &words {
                        out.extend_from_slice(w.as_bytes());
                        out.push(b' ');
                    }
                    !words.is_empty()
                }
                _ => false,
            },
            FieldValues::Date(dates) => {
                let Some(d) = unpack_date(dates[row]) else {
                    return false;
                };
                match (part, d.month, d.day) {
                    ("year", _, _) => out.extend_from_slice(&d.year.to_le_bytes()),
                    ("year_month", Some(m), _) => {
                        out.extend_from_slice(&d.year.to_le_bytes());
                        out.push(m);
                    }
                    ("", Some(m), Some(day)) => {
                        out.extend_from_slice(&d.year.to_le_bytes());
                        out.extend_from_slice(&[m, day]);
                    }
                    ("sorted", Some(m), Some(day)) => {
                        out.extend_from_slice(&d.year.to_le_bytes());
                        out.extend_from_slice(&[m.min(day), m.max(day)]);
                    }
                    _ => return false,
                }
                true
            }
            FieldValues::Id { pin, cmnd } => match part {
                "pin" => push(out, pin.get(row)),
                "cmnd" => push(out, cmnd.get(row)),
                _ => false,
            },
            FieldValues::Province { new, old } => {
                let code = if part == "old" { old[row] } else { new[row] };
                out.push(code);
                code != 0
            }
            FieldValues::Sex(v) => {
                out.push(v[row]);
                v[row] != 0
            }
            FieldValues::Text(s) => push(out, s.get(row)),
        }
    }
}

/// A record that cannot be used, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reject {
    pub record_id: String,
    /// Zero-based row of the record in the input, in file order.
    pub row: u64,
    pub reason: String,
}

/// Counts about one source's standardisation.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SourceCounts {
    pub input: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// Accepted records dropped before comparison because no blocking key matched the other side.
    pub pruned: u64,
    /// Per field: values present but not understood (an ID of 10 digits, a date "31/02/1990").
    pub invalid_values: std::collections::BTreeMap<String, u64>,
}

/// One source's records, standardised, with their blocking keys.
#[derive(Debug)]
pub struct Table {
    pub source: String,
    pub ids: Strings,
    /// Zero-based row of each record in its input, in file order.
    pub rows: Vec<u64>,
    /// Per spec field (in `spec.fields` order); `None` when this input does not map the field.
    pub fields: Vec<Option<FieldValues>>,
    /// Per blocking rule, per record: the key hash, 0 when a part is missing.
    pub keys: Vec<Vec<u64>>,
}

impl Table {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub(crate) fn append(&mut self, other: Table) {
        self.ids.append(&other.ids);
        self.rows.extend(other.rows);
        for (a, b) in self.fields.iter_mut().zip(&other.fields) {
            if let (Some(a), Some(b)) = (a, b) {
                a.append(b);
            }
        }
        for (a, b) in self.keys.iter_mut().zip(other.keys) {
            a.extend(b);
        }
    }

    pub(crate) fn select(&self, rows: &[usize]) -> Table {
        Table {
            source: self.source.clone(),
            ids: self.ids.select(rows),
            rows: rows.iter().map(|&r| self.rows[r]).collect(),
            fields: self
                .fields
                .iter()
                .map(|f| f.as_ref().map(|f| f.select(rows)))
                .collect(),
            keys: self
                .keys
                .iter()
                .map(|k| rows.iter().map(|&r| k[r]).collect())
                .collect(),
        }
    }
}

/// How the fields and keys of a spec map onto one input.
pub struct Plan<'a> {
    spec: &'a JobSpec,
    input: &'a Input,
    /// Per blocking rule, its keys as (field index, part).
    rules: Vec<Vec<(usize, String)>>,
}

impl<'a> Plan<'a> {
    pub fn new(spec: &'a JobSpec, input: &'a Input) -> Self {
        let field_index = |name: &str| spec.fields.keys().position(|f| f == name);
        let rules = spec
            .blocking
            .iter()
            .map(|rule| {
                rule.keys
                    .iter()
                    .filter_map(|key| {
                        let (field, part) = key.split_once('.').unwrap_or((key, ""));
                        field_index(field).map(|i| (i, part.to_owned()))
                    })
                    .collect()
            })
            .collect();
        Plan { spec, input, rules }
    }

    pub(crate) fn empty_table(&self) -> Table {
        Table {
            source: self.input.name.clone(),
            ids: Strings::default(),
            rows: Vec::new(),
            fields: self
                .spec
                .fields
                .iter()
                .map(|(name, s)| {
                    self.input
                        .columns
                        .contains_key(name)
                        .then(|| FieldValues::empty(*s))
                })
                .collect(),
            keys: vec![Vec::new(); self.spec.blocking.len()],
        }
    }

    /// Standardises rows `range` of a scanned batch; `numbers[i]` is row i's record number in the input.
    fn standardise_rows(
        &self,
        batch: &RecordBatch,
        range: std::ops::Range<usize>,
        numbers: &[u64],
        caches: &mut Caches,
    ) -> (Table, Vec<Reject>, Vec<u64>) {
        let mut table = self.empty_table();
        let mut rejects = Vec::new();
        let mut invalid = vec![0u64; self.spec.fields.len()];
        let ids = text(batch, &self.input.id);
        let columns: Vec<Vec<StringArray>> = self
            .spec
            .fields
            .keys()
            .map(|f| {
                self.input
                    .columns
                    .get(f)
                    .map(|c| c.names().iter().map(|n| text(batch, n)).collect())
                    .unwrap_or_default()
            })
            .collect();
        let mut key_buf = Vec::with_capacity(64);
        for row in range {
            let id = if ids.is_null(row) {
                ""
            } else {
                ids.value(row).trim()
            };
            if id.is_empty() {
                rejects.push(Reject {
                    record_id: String::new(),
                    row: numbers[row],
                    reason: format!("missing record id (column `{}`)", self.input.id),
                });
                continue;
            }
            for (f, (values, standardiser)) in table
                .fields
                .iter_mut()
                .zip(self.spec.fields.values())
                .enumerate()
            {
                let Some(values) = values else { continue };
                let raw: Vec<&str> = columns[f]
                    .iter()
                    .map(|c| if c.is_null(row) { "" } else { c.value(row) })
                    .collect();
                if !standardise_value(*standardiser, &raw, values, caches) {
                    invalid[f] += 1;
                }
            }
            table.ids.push(id);
            table.rows.push(numbers[row]);
            let r = table.ids.len() - 1;
            for (rule, parts) in self.rules.iter().enumerate() {
                key_buf.clear();
                let mut present = true;
                for (field, part) in parts {
                    present &= table.fields[*field]
                        .as_ref()
                        .is_some_and(|v| v.key_bytes(part, r, &mut key_buf));
                    key_buf.push(0xff);
                }
                table.keys[rule].push(if present {
                    KeyHasher::hash(&key_buf)
                } else {
                    0
                });
            }
        }
        (table, rejects, invalid)
    }
}

/// Standardises every row of one in-memory batch of `input`, as [`standardise_input`] does for each
/// chunk it scans, but without files, threads, rejects or id checks: rows without an id are skipped.
/// For benchmarks (`benches/benches/kernels.rs`) and tests that need a [`Table`] of a few records.
pub fn standardise_batch(spec: &JobSpec, input: &Input, batch: &RecordBatch) -> Table {
    Plan::new(spec, input)
        .standardise_rows(
            batch,
            0..batch.num_rows(),
            &(0..batch.num_rows() as u64).collect::<Vec<_>>(),
            &mut Caches::default(),
        )
        .0
}

/// Memo of values that repeat a lot, so each distinct raw text is standardised once per thread of a
/// task: provinces, and full names (a few hundred thousand distinct names make up most of a national
/// register, and a name costs about a microsecond to parse and key). Values are pure functions of the
/// raw text, so what is cached never changes a result.
#[derive(Default)]
struct Caches {
    provinces: HashMap<String, (u8, u8)>,
    names: HashMap<Box<str>, NameParts>,
}

impl Caches {
    /// Entries each memo holds at most: it is emptied when full (about 150 bytes a name entry).
    const MAX_ENTRIES: usize = 1 << 17;
    /// Longer raw names are not cached: rare, and they would make entries unbounded.
    const MAX_NAME_BYTES: usize = 96;
}

/// A name as it is stored: canonical surname, middle and given name, then their keys.
fn name_parts(raw: &str) -> [String; 6] {
    let p = parse_name(raw).unwrap_or_default();
    let [sk, mk, gk] = [&p.surname, &p.middle, &p.given].map(|part| name_key(part));
    [p.surname, p.middle, p.given, sk, mk, gk]
}

/// [`name_parts`] in one buffer, for the memo.
struct NameParts {
    text: Box<str>,
    ends: [u16; 6],
}

impl NameParts {
    /// None when the parts do not fit the buffer's offsets (never for names under `MAX_NAME_BYTES`).
    fn new(parts: &[String; 6]) -> Option<NameParts> {
        let mut text = String::new();
        let mut ends = [0u16; 6];
        for (end, part) in ends.iter_mut().zip(parts) {
            text.push_str(part);
            *end = u16::try_from(text.len()).ok()?;
        }
        Some(NameParts {
            text: text.into_boxed_str(),
            ends,
        })
    }

    fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[usize::from(start)..usize::from(self.ends[i])]
    }
}

/// Standardises one field value from its raw column texts; false when present but not understood.
fn standardise_value(
    standardiser: Standardiser,
    raw: &[&str],
    values: &mut FieldValues,
    caches: &mut Caches,
) -> bool {
    let first = raw.first().copied().unwrap_or("").trim();
    match (standardiser, values) {
        (
            Standardiser::VnName,
            FieldValues::Name {
                surname,
                middle,
                given,
                surname_key,
                middle_key,
                given_key,
            },
        ) => {
            let columns = [surname, middle, given, surname_key, middle_key, given_key];
            let cacheable = first.len() <= Caches::MAX_NAME_BYTES;
            let has_given = if let Some(parts) = caches.names.get(first).filter(|_| cacheable) {
                for (i, column) in columns.into_iter().enumerate() {
                    column.push(parts.get(i));
                }
                !parts.get(2).is_empty()
            } else {
                let parts = name_parts(first);
                for (column, part) in columns.into_iter().zip(&parts) {
                    column.push(part);
                }
                if cacheable && let Some(entry) = NameParts::new(&parts) {
                    if caches.names.len() >= Caches::MAX_ENTRIES {
                        caches.names.clear();
                    }
                    caches.names.insert(first.into(), entry);
                }
                !parts[2].is_empty()
            };
            first.is_empty() || has_given
        }
        (Standardiser::Date, FieldValues::Date(dates)) => match parse_date(first) {
            Ok(d) => {
                dates.push(pack_date(&d));
                true
            }
            Err(_) => {
                dates.push(0);
                first.is_empty()
            }
        },
        (Standardiser::VnId, FieldValues::Id { pin, cmnd }) => {
            let (mut p, mut c) = (String::new(), String::new());
            let mut ok = true;
            for text in raw {
                match parse_id(text) {
                    IdNumber::Pin(x) if p.is_empty() => p = x.digits,
                    IdNumber::Cmnd9 { number, .. } if c.is_empty() => c = number,
                    IdNumber::Invalid { .. } => ok = false,
                    _ => {}
                }
            }
            pin.push(&p);
            cmnd.push(&c);
            ok
        }
        (Standardiser::VnProvince, FieldValues::Province { new, old }) => {
            let (n, o) = match caches.provinces.get(first) {
                Some(&v) => v,
                None => {
                    let v = resolve_province(first)
                        .map(|p| (p.new_code, p.old_nso_code.unwrap_or(0)))
                        .unwrap_or((0, 0));
                    if caches.provinces.len() < Caches::MAX_ENTRIES {
                        caches.provinces.insert(first.to_owned(), v);
                    }
                    v
                }
            };
            new.push(n);
            old.push(o);
            n != 0 || first.is_empty()
        }
        (Standardiser::Sex, FieldValues::Sex(v)) => {
            let sex = parse_sex(first);
            v.push(match sex {
                Some(Sex::Male) => 1,
                Some(Sex::Female) => 2,
                None => 0,
            });
            sex.is_some() || first.is_empty()
        }
        (Standardiser::Phone, FieldValues::Text(s)) => {
            let phone = normalise_phone(first);
            s.push(&phone);
            !phone.is_empty() || first.is_empty()
        }
        (Standardiser::Text, FieldValues::Text(s)) => {
            s.push(&canonical_name(first));
            true
        }
        _ => unreachable!("field values are created from their standardiser"),
    }
}

/// `Nam`/`Nữ` and the usual codes.
pub fn parse_sex(raw: &str) -> Option<Sex> {
    // Folded, so "Nữ", "NỮ", "nu" and the NFD forms are one value.
    let folded = fold_diacritics(raw.trim()).to_ascii_lowercase();
    match folded.as_str() {
        "nam" | "m" | "male" | "1" | "trai" => Some(Sex::Male),
        "nu" | "f" | "female" | "0" | "2" | "gai" => Some(Sex::Female),
        _ => None,
    }
}

/// Digits of a Vietnamese phone number, with the country code made a leading 0; empty when it is not
/// one (fewer than 9 or more than 11 digits).
pub fn normalise_phone(raw: &str) -> String {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let local = if let Some(rest) = digits.strip_prefix("84")
        && (9..=10).contains(&rest.len())
        && raw.trim_start().starts_with(['+', '8'])
    {
        format!("0{rest}")
    } else {
        digits
    };
    if (9..=11).contains(&local.len()) {
        local
    } else {
        String::new()
    }
}

/// Decides whether an accepted record (a row of a freshly standardised chunk) is kept.
pub type Keep<'a> = dyn FnMut(&Table, usize) -> bool + 'a;

/// The result of standardising one input.
pub struct Standardised {
    pub table: Table,
    pub rejects: Vec<Reject>,
    pub counts: SourceCounts,
}

/// Scans and standardises one file of an input, or a piece of it. Rows are processed in parallel
/// chunks and put back in input order, so the table is the same whatever the thread count. `keep` may
/// drop accepted records that cannot meet the other side (link jobs prune the large side by the small
/// side's keys).
pub fn standardise_input(
    spec: &JobSpec,
    input: &Input,
    (file, piece): (&str, Option<&Piece>),
    mut keep: Option<&mut Keep>,
    mut progress: impl FnMut(u64),
) -> Result<Standardised, EngineError> {
    let plan = Plan::new(spec, input);
    let mut table = plan.empty_table();
    let mut rejects = Vec::new();
    let mut counts = SourceCounts::default();
    let mut invalid = vec![0u64; spec.fields.len()];
    // Ids are remembered by a 64-bit hash: exact enough (a false duplicate needs a collision among
    // 2^32 ids) and a fraction of the memory of the ids themselves at national scale.
    let mut seen_ids: std::collections::HashSet<u64> = std::collections::HashSet::new();
    const CHUNK: usize = 8192;
    // One memo per thread of the pool, kept across batches (rayon may run a thread's chunks in any
    // order; a memo only ever saves work) and dropped with the task.
    let caches: Vec<std::sync::Mutex<Caches>> = (0..rayon::current_num_threads())
        .map(|_| Default::default())
        .collect();
    crate::scan::scan(input, file, piece, 65_536, |scanned| {
        let Scanned {
            batch,
            rows: numbers,
            bad,
        } = scanned;
        let lines = (numbers.len() + bad.len()) as u64;
        rejects.extend(bad.into_iter().map(|b| Reject {
            record_id: b.record_id,
            row: b.row,
            reason: b.reason,
        }));
        let n = batch.num_rows();
        let chunks: Vec<_> = (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| {
                let range = c * CHUNK..((c + 1) * CHUNK).min(n);
                let slot = rayon::current_thread_index().unwrap_or(0) % caches.len();
                // Only this thread locks its slot; a poisoned memo is still a valid memo.
                let mut caches = caches[slot]
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                plan.standardise_rows(&batch, range, &numbers, &mut caches)
            })
            .collect();
        for (part, part_rejects, part_invalid) in chunks {
            rejects.extend(part_rejects);
            for (a, b) in invalid.iter_mut().zip(part_invalid) {
                *a += b;
            }
            // Duplicate ids and unusable records are found here, in input order, so the first of two
            // records with one id is the one kept.
            let mut rows = Vec::with_capacity(part.len());
            for r in 0..part.len() {
                let (id, row) = (part.ids.get(r), part.rows[r]);
                if part.keys.iter().all(|k| k[r] == 0) {
                    rejects.push(Reject {
                        record_id: id.to_owned(),
                        row,
                        reason: "no blocking key: every rule needs a value this record lacks"
                            .into(),
                    });
                    continue;
                }
                if !seen_ids.insert(hash_str(id)) {
                    rejects.push(Reject {
                        record_id: id.to_owned(),
                        row,
                        reason: format!("duplicate record id (column `{}`)", input.id),
                    });
                    continue;
                }
                counts.accepted += 1;
                if keep.as_mut().is_none_or(|keep| keep(&part, r)) {
                    rows.push(r);
                } else {
                    counts.pruned += 1;
                }
            }
            table.append(if rows.len() == part.len() {
                part
            } else {
                part.select(&rows)
            });
        }
        counts.input += lines;
        progress(lines);
        Ok(())
    })?;
    counts.rejected = rejects.len() as u64;
    counts.invalid_values = spec
        .fields
        .keys()
        .cloned()
        .zip(invalid)
        .filter(|(_, n)| *n > 0)
        .collect();
    Ok(Standardised {
        table,
        rejects,
        counts,
    })
}
