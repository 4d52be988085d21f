//! Standardise: raw text columns become compact, comparable values, one column per field part, and
//! each record gets its blocking keys. Records that cannot be used go to rejects with a reason.

use arrow::array::{Array, RecordBatch, StringArray};
use khop_vn::Sex;
use khop_vn::admin::resolve_province;
use khop_vn::date::{DateRules, PartialDate, parse_date_with};
use khop_vn::id::{IdNumber, normalise_identifier, parse_id_with};
use khop_vn::name::{NameParser, parse_person_name};
use khop_vn::shape::value_shape;
use khop_vn::text::{canonical_name, fold_diacritics};
use khop_vn::textkey::TextKey;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::EngineError;
use crate::hash::{IdSet, KeyHasher, hash_str};
use crate::scan::{Piece, Scanned, Text, text};
use crate::spec::{Input, JobSpec, Standardiser};

/// Many strings in one buffer: a column of text without a heap allocation per value. An empty string
/// stands for a missing value.
///
/// **Invariant:** `offsets` are Arrow's: they start with 0, and string `i` is
/// `data[offsets[i]..offsets[i + 1]]`; so a column moves to and from Arrow without converting them.
/// Strings read from an Arrow column without nulls ([`Strings::from_array`]) are the column itself,
/// in `column`, with `data` and `offsets` left empty, until the first change copies its values out:
/// reading a table back (a scratch file, a cache entry) copies nothing that is only looked at.
#[derive(Clone)]
pub struct Strings {
    data: String,
    /// i32 as in Arrow's `StringArray`, which bounds a column to 2 GiB either way.
    offsets: Vec<i32>,
    column: Option<StringArray>,
}

impl Default for Strings {
    fn default() -> Self {
        Strings::with_capacity(0, 0)
    }
}

/// The values, however they are held.
impl std::fmt::Debug for Strings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries((0..self.len()).map(|i| self.get(i)))
            .finish()
    }
}

impl Strings {
    /// Empty, with room for `strings` strings of `bytes` bytes in all.
    pub fn with_capacity(strings: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(strings + 1);
        offsets.push(0);
        Strings {
            data: String::with_capacity(bytes),
            offsets,
            column: None,
        }
    }

    #[inline]
    pub fn push(&mut self, s: &str) {
        self.own();
        self.data.push_str(s);
        self.offsets.push(self.data.len() as i32);
    }

    #[inline]
    pub fn get(&self, i: usize) -> &str {
        match &self.column {
            Some(column) => column.value(i),
            None => &self.data[self.offsets[i] as usize..self.offsets[i + 1] as usize],
        }
    }

    pub fn len(&self) -> usize {
        match &self.column {
            Some(column) => column.len(),
            None => self.offsets.len() - 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of all the strings together.
    fn bytes(&self) -> usize {
        match &self.column {
            Some(column) => {
                let offsets = column.value_offsets();
                (offsets[offsets.len() - 1] - offsets[0]) as usize
            }
            None => self.data.len(),
        }
    }

    /// The strings as an Arrow column; the bytes and offsets are moved, not copied.
    pub fn into_array(self) -> StringArray {
        if let Some(column) = self.column {
            return column;
        }
        StringArray::new(
            arrow::buffer::OffsetBuffer::new(self.offsets.into()),
            arrow::buffer::Buffer::from_vec(self.data.into_bytes()),
            None,
        )
    }

    /// Strings from an Arrow column; nulls become empty strings. A column without nulls is taken as
    /// it is (its buffers are shared, not copied).
    pub fn from_array(array: &StringArray) -> Strings {
        if array.null_count() > 0 {
            // A null slot may still span bytes: they are not its value.
            let mut strings = Strings::with_capacity(array.len(), array.value_data().len());
            for value in array.iter() {
                strings.push(value.unwrap_or_default());
            }
            return strings;
        }
        Strings {
            data: String::new(),
            offsets: vec![0],
            column: Some(array.clone()),
        }
    }

    /// Copies the values of a column taken by [`Strings::from_array`] out, before a change.
    #[inline]
    fn own(&mut self) {
        if self.column.is_some() {
            self.copy_column_out();
        }
    }

    #[cold]
    fn copy_column_out(&mut self) {
        let Some(column) = self.column.take() else {
            return;
        };
        let offsets = column.value_offsets();
        let first = offsets[0];
        // Value by value: each is valid UTF-8 already (Arrow checked the column when it was built or
        // read), where checking the whole run of bytes again was 1% of a 10 M link's CPU.
        let mut data = String::with_capacity((offsets[offsets.len() - 1] - first) as usize);
        for i in 0..column.len() {
            data.push_str(column.value(i));
        }
        self.offsets = offsets.iter().map(|&o| o - first).collect();
        self.data = data;
    }

    pub(crate) fn append(&mut self, other: &Strings) {
        self.own();
        if other.column.is_some() {
            self.data.reserve(other.bytes());
            self.offsets.reserve(other.len());
            for i in 0..other.len() {
                self.push(other.get(i));
            }
            return;
        }
        let base = self.data.len() as i32;
        self.data.push_str(&other.data);
        self.offsets
            .extend(other.offsets[1..].iter().map(|o| o + base));
    }

    /// The strings of `targets` (source row, destination), each pushed to its destination in
    /// `targets` order (`sizes[d]` of them go to destination `d`): one pass over this column for any
    /// number of destinations.
    pub(crate) fn scatter(&self, targets: &[(u32, u32)], sizes: &[usize]) -> Vec<Strings> {
        let per_row = self.bytes() / self.len().max(1);
        let mut out: Vec<Strings> = sizes
            .iter()
            .map(|&n| Strings::with_capacity(n, n * per_row))
            .collect();
        for &(r, d) in targets {
            out[d as usize].push(self.get(r as usize));
        }
        out
    }
}

/// [`Strings::scatter`] for a column of fixed-size values.
fn scatter_values<T: Copy>(values: &[T], targets: &[(u32, u32)], sizes: &[usize]) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = sizes.iter().map(|&n| Vec::with_capacity(n)).collect();
    for &(r, d) in targets {
        out[d as usize].push(values[r as usize]);
    }
    out
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
// A table holds one per field, never one per record: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
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
    /// Bytes of text a value is given room for up front: about a name part's or a phone's.
    const BYTES_PER_VALUE: usize = 10;

    /// No values, with room for `rows` of them (text columns: [`FieldValues::BYTES_PER_VALUE`] each).
    pub(crate) fn with_capacity(standardiser: Standardiser, rows: usize) -> Self {
        let strings = || Strings::with_capacity(rows, rows * Self::BYTES_PER_VALUE);
        match standardiser {
            Standardiser::VnName | Standardiser::PersonName => FieldValues::Name {
                surname: strings(),
                middle: strings(),
                given: strings(),
                surname_key: strings(),
                middle_key: strings(),
                given_key: strings(),
            },
            Standardiser::Date => FieldValues::Date(Vec::with_capacity(rows)),
            Standardiser::VnId => FieldValues::Id {
                pin: strings(),
                cmnd: strings(),
            },
            Standardiser::VnProvince => FieldValues::Province {
                new: Vec::with_capacity(rows),
                old: Vec::with_capacity(rows),
            },
            Standardiser::Sex => FieldValues::Sex(Vec::with_capacity(rows)),
            Standardiser::Phone | Standardiser::Text | Standardiser::Id => {
                FieldValues::Text(strings())
            }
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

    /// [`Strings::scatter`] for every column of the field.
    pub(crate) fn scatter(&self, targets: &[(u32, u32)], sizes: &[usize]) -> Vec<FieldValues> {
        use FieldValues::*;
        let strings = |s: &Strings| s.scatter(targets, sizes);
        let values = |v: &[u8]| scatter_values(v, targets, sizes);
        match self {
            Name {
                surname,
                middle,
                given,
                surname_key,
                middle_key,
                given_key,
            } => {
                let mut columns =
                    [surname, middle, given, surname_key, middle_key, given_key].map(strings);
                (0..sizes.len())
                    .map(|d| {
                        let [s, m, g, sk, mk, gk] =
                            columns.each_mut().map(|c| std::mem::take(&mut c[d]));
                        Name {
                            surname: s,
                            middle: m,
                            given: g,
                            surname_key: sk,
                            middle_key: mk,
                            given_key: gk,
                        }
                    })
                    .collect()
            }
            Date(v) => scatter_values(v, targets, sizes)
                .into_iter()
                .map(Date)
                .collect(),
            Id { pin, cmnd } => strings(pin)
                .into_iter()
                .zip(strings(cmnd))
                .map(|(pin, cmnd)| Id { pin, cmnd })
                .collect(),
            Province { new, old } => values(new)
                .into_iter()
                .zip(values(old))
                .map(|(new, old)| Province { new, old })
                .collect(),
            Sex(v) => values(v).into_iter().map(Sex).collect(),
            Text(s) => strings(s).into_iter().map(Text).collect(),
        }
    }

    /// Writes the bytes of blocking key `part` of record `row` into `out`; false when missing.
    pub(crate) fn key_bytes(&self, part: KeyPart, row: usize, out: &mut Vec<u8>) -> bool {
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
                KeyPart::Surname => push(out, surname_key.get(row)),
                KeyPart::Middle => push(out, middle_key.get(row)),
                KeyPart::Given => push(out, given_key.get(row)),
                KeyPart::NameWords | KeyPart::NameTokens => {
                    let words = [surname_key, middle_key, given_key]
                        .into_iter()
                        .flat_map(|s| s.get(row).split(' '))
                        .filter(|w| !w.is_empty());
                    if part == KeyPart::NameWords {
                        let start = out.len();
                        for w in words {
                            out.extend_from_slice(w.as_bytes());
                            out.push(b' ');
                        }
                        out.len() > start
                    } else {
                        sorted_words_into(words, out)
                    }
                }
                _ => false,
            },
            FieldValues::Date(dates) => {
                let Some(d) = unpack_date(dates[row]) else {
                    return false;
                };
                match (part, d.month, d.day) {
                    (KeyPart::Year, _, _) => out.extend_from_slice(&d.year.to_le_bytes()),
                    (KeyPart::YearMonth, Some(m), _) => {
                        out.extend_from_slice(&d.year.to_le_bytes());
                        out.push(m);
                    }
                    (KeyPart::Whole, Some(m), Some(day)) => {
                        out.extend_from_slice(&d.year.to_le_bytes());
                        out.extend_from_slice(&[m, day]);
                    }
                    (KeyPart::SortedDate, Some(m), Some(day)) => {
                        out.extend_from_slice(&d.year.to_le_bytes());
                        out.extend_from_slice(&[m.min(day), m.max(day)]);
                    }
                    _ => return false,
                }
                true
            }
            FieldValues::Id { pin, cmnd } => match part {
                KeyPart::Pin => push(out, pin.get(row)),
                KeyPart::Cmnd => push(out, cmnd.get(row)),
                _ => false,
            },
            FieldValues::Province { new, old } => {
                let code = if part == KeyPart::OldProvince {
                    old[row]
                } else {
                    new[row]
                };
                out.push(code);
                code != 0
            }
            FieldValues::Sex(v) => {
                out.push(v[row]);
                v[row] != 0
            }
            FieldValues::Text(s) => match part {
                KeyPart::Whole => push(out, s.get(row)),
                KeyPart::Text(form) => form.write(s.get(row), out),
                _ => false,
            },
        }
    }
}

/// The words of a name, sorted, each followed by a space; false when there are none. Names of up to
/// 16 words (all of them, in practice) are sorted on the stack.
fn sorted_words_into<'a>(words: impl Iterator<Item = &'a str>, out: &mut Vec<u8>) -> bool {
    // Each word with its first 8 bytes as a big-endian number (zero-padded): two words whose
    // numbers differ are in the numbers' order (a shorter word padded with zeros sorts before any
    // word it is a prefix of), so most comparisons are one integer comparison instead of a call to
    // `memcmp`; equal numbers fall back to comparing the words. This runs for every record.
    // The number is built in a register: copying the bytes into a zeroed stack word and reading it
    // back as one stalled on store forwarding (the hottest instruction of the stage in `perf`).
    let prefixed = |w: &'a str| {
        let b = w.as_bytes();
        let head = match b.first_chunk::<8>() {
            Some(first) => u64::from_be_bytes(*first),
            None => b
                .iter()
                .fold(0u64, |x, &c| (x << 8) | u64::from(c))
                .checked_shl(8 * (8 - b.len() as u32))
                .unwrap_or(0),
        };
        (head, w)
    };
    let mut small = [(0u64, ""); 16];
    let mut n = 0;
    let mut spilled: Vec<(u64, &str)> = Vec::new();
    for w in words {
        if n < small.len() {
            small[n] = prefixed(w);
            n += 1;
        } else {
            if spilled.is_empty() {
                spilled.extend_from_slice(&small);
            }
            spilled.push(prefixed(w));
        }
    }
    let sorted = if spilled.is_empty() {
        &mut small[..n]
    } else {
        &mut spilled[..]
    };
    sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    for (_, w) in sorted.iter() {
        out.extend_from_slice(w.as_bytes());
        out.push(b' ');
    }
    n > 0
}

/// Which part of a field a blocking key uses (`field.part` in the spec; see [`crate::spec::block_keys`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyPart {
    /// The field itself: a full date, a province's new code, a sex, a phone, a text.
    Whole,
    /// `key`: a name's word keys in order.
    NameWords,
    /// `tokens_key`: a name's word keys sorted, so order variants meet.
    NameTokens,
    Surname,
    Middle,
    Given,
    Year,
    YearMonth,
    /// `sorted`: year, then day and month in either order.
    SortedDate,
    Pin,
    Cmnd,
    /// `old`: a province's old (63-unit) code.
    OldProvince,
    /// A coarse form of a text (`folded`, `prefix3`, `phonetic`…): see [`khop_vn::textkey`].
    Text(TextKey),
}

impl KeyPart {
    fn parse(part: &str) -> Option<KeyPart> {
        Some(match part {
            "" => KeyPart::Whole,
            "key" => KeyPart::NameWords,
            "tokens_key" => KeyPart::NameTokens,
            "surname_key" => KeyPart::Surname,
            "middle_key" => KeyPart::Middle,
            "given_key" => KeyPart::Given,
            "year" => KeyPart::Year,
            "year_month" => KeyPart::YearMonth,
            "sorted" => KeyPart::SortedDate,
            "pin" => KeyPart::Pin,
            "cmnd" => KeyPart::Cmnd,
            "old" => KeyPart::OldProvince,
            _ => KeyPart::Text(TextKey::parse(part)?),
        })
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

/// What standardising one field of some records could not read, and what it repaired.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FieldReport {
    /// Values present but not understood.
    pub unread: u64,
    /// Of those, how many of each [`value_shape`]; at most [`FieldReport::MAX_SHAPES`] shapes, the
    /// rest counted under [`FieldReport::OTHER_SHAPES`].
    pub shapes: std::collections::BTreeMap<String, u64>,
    /// Per column: numbers read only by restoring leading zeros (`vn_id` fields).
    pub repaired: std::collections::BTreeMap<String, u64>,
}

impl FieldReport {
    pub const MAX_SHAPES: usize = 20;
    pub const OTHER_SHAPES: &'static str = "(other shapes)";

    /// Counts a value that was not understood.
    fn unread(&mut self, raw: &str) {
        self.unread += 1;
        Self::add_shape(&mut self.shapes, value_shape(raw), 1);
    }

    /// Counts `n` values of `shape` in `shapes`, which holds at most [`Self::MAX_SHAPES`] of them.
    pub fn add_shape(shapes: &mut std::collections::BTreeMap<String, u64>, shape: String, n: u64) {
        let key = if shapes.len() < Self::MAX_SHAPES || shapes.contains_key(&shape) {
            shape
        } else {
            Self::OTHER_SHAPES.to_owned()
        };
        *shapes.entry(key).or_default() += n;
    }

    /// Adds another report of the same field.
    pub fn merge(&mut self, other: &FieldReport) {
        self.unread += other.unread;
        for (shape, n) in &other.shapes {
            Self::add_shape(&mut self.shapes, shape.clone(), *n);
        }
        for (column, n) in &other.repaired {
            *self.repaired.entry(column.clone()).or_default() += n;
        }
    }
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
    /// Per field: how many values of each shape were not understood ([`value_shape`]: `99/9/99`,
    /// never the value).
    #[serde(default)]
    pub unread_shapes: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
    /// Per column of a `vn_id` field: numbers read only by restoring leading zeros.
    #[serde(default)]
    pub repaired_ids: std::collections::BTreeMap<String, u64>,
    /// Accepted-looking records rejected because every blocking rule needs a value they lack.
    #[serde(default)]
    pub no_blocking_key: u64,
    /// Of `input`, the records replayed from the input's cache instead of read from its files.
    #[serde(default)]
    pub from_cache: u64,
    /// Accepted records whose PIN fails its checks or disagrees with the record, by flag
    /// ([`crate::checks::PinCheck::name`]).
    #[serde(default)]
    pub pin_checks: std::collections::BTreeMap<String, u64>,
}

/// One source's records, standardised, with their blocking keys.
#[derive(Clone, Debug)]
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

    /// Adds `other`'s records (of the same input) after this table's.
    pub(crate) fn append(&mut self, other: Table) {
        if self.is_empty() {
            // Nothing to keep: take the other's columns rather than copy them.
            *self = other;
            return;
        }
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
        let targets: Vec<(u32, u32)> = rows.iter().map(|&r| (r as u32, 0)).collect();
        self.scatter(&targets, 1).pop().expect("one destination")
    }

    /// The records of `targets` (row, destination) as `destinations` tables, each in `targets`
    /// order: a record may go to several. One pass over each column, however many destinations
    /// (selecting each destination's rows in turn would pass over the whole table for each).
    pub(crate) fn scatter(&self, targets: &[(u32, u32)], destinations: usize) -> Vec<Table> {
        let mut sizes = vec![0usize; destinations];
        for &(_, d) in targets {
            sizes[d as usize] += 1;
        }
        // The columns side by side: a task scattering its table to partitions has the cores to
        // itself when it is its stage's only task (the first input of a link is often one file).
        let ((ids, rows), (fields, keys)) = rayon::join(
            || {
                rayon::join(
                    || self.ids.scatter(targets, &sizes),
                    || scatter_values(&self.rows, targets, &sizes),
                )
            },
            || {
                rayon::join(
                    || {
                        self.fields
                            .par_iter()
                            .map(|f| f.as_ref().map(|f| f.scatter(targets, &sizes)))
                            .collect::<Vec<_>>()
                    },
                    || {
                        self.keys
                            .par_iter()
                            .map(|k| scatter_values(k, targets, &sizes))
                            .collect::<Vec<_>>()
                    },
                )
            },
        );
        let (mut ids, mut rows) = (ids.into_iter(), rows.into_iter());
        let mut fields: Vec<_> = fields.into_iter().map(|f| f.map(Vec::into_iter)).collect();
        let mut keys: Vec<_> = keys.into_iter().map(Vec::into_iter).collect();
        (0..destinations)
            .map(|_| Table {
                source: self.source.clone(),
                ids: ids.next().unwrap_or_default(),
                rows: rows.next().unwrap_or_default(),
                fields: fields
                    .iter_mut()
                    .map(|f| f.as_mut().and_then(Iterator::next))
                    .collect(),
                keys: keys
                    .iter_mut()
                    .map(|k| k.next().unwrap_or_default())
                    .collect(),
            })
            .collect()
    }
}

/// How the fields and keys of a spec map onto one input.
pub struct Plan<'a> {
    spec: &'a JobSpec,
    input: &'a Input,
    /// Per blocking rule, its keys as (field index, part).
    rules: Vec<Vec<(usize, KeyPart)>>,
    /// Per field (in `spec.fields` order), how this input's values are read.
    reading: Vec<Reading>,
}

/// How one field of an input is read, beyond its standardiser.
enum Reading {
    Plain,
    Date(DateRules),
    /// Per column: its name, and whether lost leading zeros are restored.
    Id(Vec<(String, bool)>),
}

impl Reading {
    fn of(spec: &JobSpec, input: &Input, field: &str, standardiser: Standardiser) -> Reading {
        match standardiser {
            Standardiser::Date => Reading::Date(spec.date_rules(input, field)),
            Standardiser::VnId => Reading::Id(
                input
                    .columns
                    .get(field)
                    .map(|c| c.names())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| {
                        let repair = input.conventions.id_repair.get(c).copied();
                        (c.to_owned(), repair.unwrap_or(true))
                    })
                    .collect(),
            ),
            _ => Reading::Plain,
        }
    }
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
                        // The spec is validated: every key names a field and one of its parts.
                        let (field, part) = key.split_once('.').unwrap_or((key, ""));
                        Some((field_index(field)?, KeyPart::parse(part)?))
                    })
                    .collect()
            })
            .collect();
        let reading = spec
            .fields
            .iter()
            .map(|(field, standardiser)| Reading::of(spec, input, field, *standardiser))
            .collect();
        Plan {
            spec,
            input,
            rules,
            reading,
        }
    }

    pub(crate) fn empty_table(&self) -> Table {
        self.table_with_capacity(0)
    }

    /// An empty table with room for `rows` records.
    fn table_with_capacity(&self, rows: usize) -> Table {
        Table {
            source: self.input.name.clone(),
            ids: Strings::with_capacity(rows, rows * FieldValues::BYTES_PER_VALUE),
            rows: Vec::with_capacity(rows),
            fields: self
                .spec
                .fields
                .iter()
                .map(|(name, s)| {
                    self.input
                        .columns
                        .contains_key(name)
                        .then(|| FieldValues::with_capacity(*s, rows))
                })
                .collect(),
            keys: vec![Vec::with_capacity(rows); self.spec.blocking.len()],
        }
    }

    /// Standardises rows `range` of a scanned batch; `numbers[i]` is row i's record number in the input.
    fn standardise_rows(
        &self,
        batch: &RecordBatch,
        range: std::ops::Range<usize>,
        numbers: &[u64],
        caches: &mut Caches,
    ) -> (Table, Vec<Reject>, Vec<FieldReport>) {
        let mut table = self.table_with_capacity(range.len());
        let mut rejects = Vec::new();
        let mut reports = vec![FieldReport::default(); self.spec.fields.len()];
        let ids = text(batch, &self.input.id);
        let columns: Vec<Vec<Text>> = self
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
        // The records with an id, then each field for all of them, then each rule's keys: a column
        // at a time, so each loop reads one column of the batch in order and dispatches on its
        // standardiser once, not once per record.
        let mut valid = Vec::with_capacity(range.len());
        for row in range {
            let id = trim(ids.get(row));
            if id.is_empty() {
                rejects.push(Reject {
                    record_id: String::new(),
                    row: numbers[row],
                    reason: format!("missing record id (column `{}`)", self.input.id),
                });
                continue;
            }
            table.ids.push(id);
            table.rows.push(numbers[row]);
            valid.push(row);
        }
        for (f, (values, standardiser)) in table
            .fields
            .iter_mut()
            .zip(self.spec.fields.values())
            .enumerate()
        {
            if let Some(values) = values {
                let column = (&self.reading[f], columns[f].as_slice());
                standardise_column(
                    *standardiser,
                    column,
                    &valid,
                    values,
                    caches,
                    &mut reports[f],
                );
            }
        }
        let mut key_buf = Vec::with_capacity(64);
        for (parts, keys) in self.rules.iter().zip(&mut table.keys) {
            for r in 0..valid.len() {
                key_buf.clear();
                let mut present = true;
                for (field, part) in parts {
                    present &= table.fields[*field]
                        .as_ref()
                        .is_some_and(|v| v.key_bytes(*part, r, &mut key_buf));
                    key_buf.push(0xff);
                }
                keys.push(if present {
                    KeyHasher::hash(&key_buf)
                } else {
                    0
                });
            }
        }
        (table, rejects, reports)
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

thread_local! {
    /// Each thread's memo, kept for the thread's life: across the batches and tasks it standardises,
    /// so a worker's second task starts with the common names known. Bounded.
    static CACHES: std::cell::RefCell<Caches> = std::cell::RefCell::new(Caches::default());
}

/// Memo of values that repeat a lot, so each distinct raw text is standardised once per thread:
/// provinces, and the words of names ([`NameParser`]: a national register's names use a few thousand
/// words). Values are pure functions of the raw text, so what is cached never changes a result.
#[derive(Default)]
struct Caches {
    provinces: FxHashMap<String, (u8, u8)>,
    names: NameParser,
}

impl Caches {
    /// Province texts the memo holds at most (there are a few hundred spellings in practice).
    const MAX_PROVINCES: usize = 1 << 17;
}

/// Standardises one field of records `rows` from its raw columns (the spec's columns for the field, in
/// order; only IDs read more than the first) into `values`, read as `reading` says; counts in `report`
/// the values present but not understood, and the repaired ones. One loop per standardiser, over one
/// column in row order.
fn standardise_column(
    standardiser: Standardiser,
    (reading, columns): (&Reading, &[Text]),
    rows: &[usize],
    values: &mut FieldValues,
    caches: &mut Caches,
    report: &mut FieldReport,
) {
    // The first column's trimmed text of each row.
    let firsts = rows
        .iter()
        .map(|&row| columns.first().map_or("", |c| trim(c.get(row))));
    let mut count = |understood: bool, raw: &str| {
        if !understood {
            report.unread(raw);
        }
    };
    match (standardiser, values) {
        (
            Standardiser::VnName | Standardiser::PersonName,
            FieldValues::Name {
                surname,
                middle,
                given,
                surname_key,
                middle_key,
                given_key,
            },
        ) => {
            let mut columns = [surname, middle, given, surname_key, middle_key, given_key];
            let mut other: [String; 6];
            for first in firsts {
                let parts: [&str; 6] = if standardiser == Standardiser::VnName {
                    caches.names.parse(first).parts()
                } else {
                    other = parse_person_name(first).unwrap_or_default();
                    other.each_ref().map(String::as_str)
                };
                for (column, part) in columns.iter_mut().zip(parts) {
                    column.push(part);
                }
                count(first.is_empty() || !parts[2].is_empty(), first);
            }
        }
        (Standardiser::Date, FieldValues::Date(dates)) => {
            let default_rules = DateRules::default();
            let rules = match reading {
                Reading::Date(rules) => rules,
                _ => &default_rules,
            };
            for first in firsts {
                match parse_date_with(first, rules) {
                    Ok(d) => dates.push(pack_date(&d)),
                    Err(_) => {
                        dates.push(0);
                        count(first.is_empty(), first);
                    }
                }
            }
        }
        (Standardiser::VnId, FieldValues::Id { pin, cmnd }) => {
            let repairs: Vec<bool> = match reading {
                Reading::Id(columns) => columns.iter().map(|(_, repair)| *repair).collect(),
                _ => vec![true; columns.len()],
            };
            let mut repaired = vec![0u64; columns.len()];
            for &row in rows {
                // Per kind, the digits and how they were read: a well-formed number of the record
                // beats a repaired one, which beats 12 digits that failed the PIN checks, whatever
                // the column order; among equals the first column wins.
                let mut p: Option<(String, u8, usize)> = None;
                let mut c: Option<(String, u8, usize)> = None;
                let mut unread = None;
                for (i, column) in columns.iter().enumerate() {
                    let raw = column.get(row);
                    let reading = parse_id_with(raw, repairs[i]);
                    let slot = match &reading.id {
                        IdNumber::Cmnd9 { .. } => &mut c,
                        IdNumber::Pin(_) => &mut p,
                        IdNumber::Invalid { .. } => {
                            unread.get_or_insert(raw);
                            &mut p
                        }
                        IdNumber::Missing => continue,
                    };
                    let Some(digits) = reading.id.compared_digits() else {
                        continue;
                    };
                    let rank = match reading.id {
                        IdNumber::Invalid { .. } => 2,
                        _ => u8::from(reading.repaired),
                    };
                    if slot.as_ref().is_none_or(|(_, held, _)| rank < *held) {
                        *slot = Some((digits.to_owned(), rank, i));
                    }
                }
                for (_, rank, column) in p.iter().chain(&c) {
                    repaired[*column] += u64::from(*rank == 1);
                }
                pin.push(p.as_ref().map_or("", |(d, ..)| d));
                cmnd.push(c.as_ref().map_or("", |(d, ..)| d));
                if let Some(raw) = unread {
                    count(false, raw);
                }
            }
            if let Reading::Id(names) = reading {
                for ((name, _), n) in names.iter().zip(repaired) {
                    if n > 0 {
                        *report.repaired.entry(name.clone()).or_default() += n;
                    }
                }
            }
        }
        (Standardiser::VnProvince, FieldValues::Province { new, old }) => {
            for first in firsts {
                let (n, o) = match caches.provinces.get(first) {
                    Some(&v) => v,
                    None => {
                        let v = resolve_province(first)
                            .map(|p| (p.new_code, p.old_nso_code.unwrap_or(0)))
                            .unwrap_or((0, 0));
                        if caches.provinces.len() < Caches::MAX_PROVINCES {
                            caches.provinces.insert(first.to_owned(), v);
                        }
                        v
                    }
                };
                new.push(n);
                old.push(o);
                count(n != 0 || first.is_empty(), first);
            }
        }
        (Standardiser::Sex, FieldValues::Sex(v)) => {
            for first in firsts {
                let sex = parse_sex(first);
                v.push(match sex {
                    Some(Sex::Male) => 1,
                    Some(Sex::Female) => 2,
                    None => 0,
                });
                count(sex.is_some() || first.is_empty(), first);
            }
        }
        (Standardiser::Phone, FieldValues::Text(s)) => {
            let mut buf = [0; 12];
            for first in firsts {
                let phone = phone_digits(first, &mut buf);
                s.push(phone);
                count(!phone.is_empty() || first.is_empty(), first);
            }
        }
        (Standardiser::Id, FieldValues::Text(s)) => {
            for first in firsts {
                let id = normalise_identifier(first);
                s.push(id.as_deref().unwrap_or(""));
                count(id.is_some() || first.is_empty(), first);
            }
        }
        (Standardiser::Text, FieldValues::Text(s)) => {
            for first in firsts {
                s.push(&canonical_name(first));
            }
        }
        _ => unreachable!("field values are created from their standardiser"),
    }
}

/// `s.trim()`, answered from its two end bytes when they are visible ASCII (nearly every value): the
/// general trim decodes characters at both ends, and runs for every field of every record.
fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(a), Some(b)) if a.is_ascii_graphic() && b.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// `Nam`/`Nữ` and the usual codes.
pub fn parse_sex(raw: &str) -> Option<Sex> {
    let raw = raw.trim();
    // "Nữ" and "NỮ" (NFC) are most female values of a Vietnamese register: answered without folding,
    // which allocates.
    if matches!(raw, "Nữ" | "NỮ" | "nữ") {
        return Some(Sex::Female);
    }
    // Folded, so "Nữ", "NỮ", "nu" and the NFD forms are one value; the codes are short, so an ASCII
    // value is lowered on the stack (this runs once per record).
    let mut lower = [0u8; 6];
    let folded;
    let text: &[u8] = if raw.is_ascii() && raw.len() <= lower.len() {
        lower[..raw.len()].copy_from_slice(raw.as_bytes());
        lower[..raw.len()].make_ascii_lowercase();
        &lower[..raw.len()]
    } else {
        folded = fold_diacritics(raw).to_ascii_lowercase();
        folded.as_bytes()
    };
    match text {
        b"nam" | b"m" | b"male" | b"1" | b"trai" => Some(Sex::Male),
        b"nu" | b"f" | b"female" | b"0" | b"2" | b"gai" => Some(Sex::Female),
        _ => None,
    }
}

/// Digits of a Vietnamese phone number, with the country code made a leading 0; empty when it is not
/// one (fewer than 9 or more than 11 digits).
pub fn normalise_phone(raw: &str) -> String {
    phone_digits(raw, &mut [0; 12]).to_owned()
}

/// [`normalise_phone`] into `buf`, without an allocation (it runs once per record).
fn phone_digits<'a>(raw: &str, buf: &'a mut [u8; 12]) -> &'a str {
    let mut n = 0;
    for b in raw.bytes().filter(u8::is_ascii_digit) {
        if n == buf.len() {
            return ""; // more digits than a number with its country code has
        }
        buf[n] = b;
        n += 1;
    }
    let local = if buf[..n].starts_with(b"84")
        && (9..=10).contains(&(n - 2))
        && raw.trim_start().starts_with(['+', '8'])
    {
        buf[1] = b'0';
        &buf[1..n]
    } else {
        &buf[..n]
    };
    if (9..=11).contains(&local.len()) {
        std::str::from_utf8(local).unwrap_or_default()
    } else {
        ""
    }
}

/// What a task does with the records it standardises, besides standardising them, in two steps:
/// [`Keeper::prepare`] runs on each chunk in parallel (work that depends on one record only), then
/// [`Keeper::keep`] runs on each accepted record, in input order, on one thread. A record found to
/// repeat an earlier id after `prepare` saw it is handed to [`Keeper::unprepare`] instead of `keep`.
pub trait Keeper: Sync {
    /// What `prepare` works out for a chunk.
    type Prepared: Send;

    /// Per chunk, in parallel: `usable[r]` is false for the chunk's records already rejected (no
    /// blocking key); the others may still turn out to repeat an id.
    fn prepare(&self, part: &Table, usable: &[bool]) -> Self::Prepared;

    /// Takes back what `prepare` counted for record `r`, rejected after all as a repeated id.
    fn unprepare(&mut self, part: &Table, prepared: &mut Self::Prepared, r: usize);

    /// Per accepted record, in input order: whether record `r` of the chunk stays in the table.
    /// `id_hash` is [`hash_str`] of its id.
    fn keep(&mut self, part: &Table, prepared: &Self::Prepared, r: usize, id_hash: u64) -> bool;

    /// After the chunk's last `keep`.
    fn finish(&mut self, part: &Table, prepared: Self::Prepared);

    /// Whether every accepted record stays: the table is then sized for the piece's rows up front
    /// instead of growing as chunks are appended.
    fn keeps_all(&self) -> bool {
        false
    }
}

/// The result of standardising one input.
pub struct Standardised {
    pub table: Table,
    pub rejects: Vec<Reject>,
    pub counts: SourceCounts,
}

/// Rows of a scanned batch standardised together, on one thread: the unit of parallel work.
const CHUNK: usize = 8192;

/// Scans and standardises one file of an input, or a piece of it. Rows are processed in parallel
/// chunks and put back in input order, so the table is the same whatever the thread count. `keeper`
/// may drop accepted records that cannot meet the other side (link jobs prune the large side by the
/// small side's keys). An input with a `cache` replays the piece's standardised records from it when
/// they are there, and writes them there when not ([`crate::cache`]); what follows standardisation
/// runs on replayed records as on scanned ones, so the result is the same either way.
pub fn standardise_input<K: Keeper>(
    spec: &JobSpec,
    input: &Input,
    (file, piece): (&str, Option<&Piece>),
    keeper: &mut K,
    mut progress: impl FnMut(u64),
) -> Result<Standardised, EngineError> {
    let plan = Plan::new(spec, input);
    let mut collector = Collector {
        table: match piece {
            Some(piece) if keeper.keeps_all() => plan.table_with_capacity(piece.rows as usize),
            _ => plan.empty_table(),
        },
        rejects: Vec::new(),
        counts: SourceCounts::default(),
        reports: vec![FieldReport::default(); spec.fields.len()],
        // Ids are remembered by a 64-bit hash: exact enough (a false duplicate needs a collision
        // among 2^32 ids) and a fraction of the memory of the ids themselves at national scale.
        seen_ids: IdSet::with_capacity(piece.map_or(0, |p| p.rows as usize)),
        input,
        writer: None,
    };
    let entry = crate::cache::Entry::of(spec, input, file, piece);
    if let Some(hit) = entry.as_ref().and_then(|e| e.read()) {
        let mut records = hit.chunks.into_iter();
        for cached in hit.batches {
            let keeper_ref: &K = keeper;
            let chunks: Vec<_> = records
                .by_ref()
                .take(cached.chunks.len())
                .collect::<Vec<_>>()
                .into_par_iter()
                .zip(cached.chunks)
                .map(|(batch, chunk)| {
                    let part = crate::exchange::batch_to_table(spec, input, &batch)?;
                    Ok(Chunk::new(keeper_ref, part, chunk.rejects, chunk.reports))
                })
                .collect::<Result<_, EngineError>>()?;
            collector.counts.from_cache += cached.lines;
            collector.take(keeper, cached.lines, cached.bad, chunks);
            progress(cached.lines);
        }
    } else {
        collector.writer = entry.as_ref().map(crate::cache::Entry::writer);
        crate::scan::scan(input, file, piece, 65_536, |scanned| {
            let Scanned {
                batch,
                rows: numbers,
                bad,
            } = scanned;
            let lines = (numbers.len() + bad.len()) as u64;
            let bad = bad
                .into_iter()
                .map(|b| Reject {
                    record_id: b.record_id,
                    row: b.row,
                    reason: b.reason,
                })
                .collect();
            let n = batch.num_rows();
            let keeper_ref: &K = keeper;
            let chunks: Vec<_> = (0..n.div_ceil(CHUNK))
                .into_par_iter()
                .map(|c| {
                    let range = c * CHUNK..((c + 1) * CHUNK).min(n);
                    let (part, rejects, reports) = CACHES.with_borrow_mut(|caches| {
                        plan.standardise_rows(&batch, range, &numbers, caches)
                    });
                    Chunk::new(keeper_ref, part, rejects, reports)
                })
                .collect();
            collector.take(keeper, lines, bad, chunks);
            progress(lines);
            Ok(())
        })?;
        if let Some(writer) = collector.writer.take() {
            writer.finish();
        }
    }
    let Collector {
        table,
        rejects,
        mut counts,
        reports,
        ..
    } = collector;
    counts.rejected = rejects.len() as u64;
    for (field, report) in spec.fields.keys().zip(reports) {
        if report.unread > 0 {
            counts.invalid_values.insert(field.clone(), report.unread);
            counts.unread_shapes.insert(field.clone(), report.shapes);
        }
        for (column, n) in report.repaired {
            *counts.repaired_ids.entry(column).or_default() += n;
        }
    }
    Ok(Standardised {
        table,
        rejects,
        counts,
    })
}

/// A chunk of standardised records with what a [`Keeper`] needs of them, worked out in parallel.
struct Chunk<P> {
    part: Table,
    /// Records without an id, and per field the values not understood.
    rejects: Vec<Reject>,
    reports: Vec<FieldReport>,
    /// Whether each record has a blocking key.
    usable: Vec<bool>,
    id_hashes: Vec<u64>,
    prepared: P,
}

impl<P> Chunk<P> {
    fn new<K: Keeper<Prepared = P>>(
        keeper: &K,
        part: Table,
        rejects: Vec<Reject>,
        reports: Vec<FieldReport>,
    ) -> Self {
        let usable: Vec<bool> = (0..part.len())
            .map(|r| part.keys.iter().any(|k| k[r] != 0))
            .collect();
        let id_hashes: Vec<u64> = (0..part.len()).map(|r| hash_str(part.ids.get(r))).collect();
        let prepared = keeper.prepare(&part, &usable);
        Chunk {
            part,
            rejects,
            reports,
            usable,
            id_hashes,
            prepared,
        }
    }
}

/// What [`standardise_input`] gathers batch after batch, in input order.
struct Collector<'a> {
    table: Table,
    rejects: Vec<Reject>,
    counts: SourceCounts,
    reports: Vec<FieldReport>,
    seen_ids: IdSet,
    input: &'a Input,
    /// The cache entry being written (a miss of a cached input).
    writer: Option<crate::cache::Writer>,
}

impl Collector<'_> {
    /// Takes the chunks of one scanned batch (`lines` lines, `bad` of them unreadable), in order.
    fn take<K: Keeper>(
        &mut self,
        keeper: &mut K,
        lines: u64,
        bad: Vec<Reject>,
        chunks: Vec<Chunk<K::Prepared>>,
    ) {
        let mut cached = self.writer.as_ref().map(|_| crate::cache::CachedBatch {
            lines,
            bad: bad.clone(),
            chunks: Vec::with_capacity(chunks.len()),
        });
        self.rejects.extend(bad);
        // Duplicate ids and unusable records are found here, in input order, so the first of two
        // records with one id is the one kept.
        let mut kept_rows = Vec::with_capacity(chunks.len());
        let mut parts = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            let Chunk {
                part,
                rejects: part_rejects,
                reports: part_reports,
                usable,
                id_hashes,
                mut prepared,
            } = chunk;
            for (a, b) in self.reports.iter_mut().zip(&part_reports) {
                a.merge(b);
            }
            if let Some(cached) = &mut cached {
                cached.chunks.push(crate::cache::CachedChunk {
                    rejects: part_rejects.clone(),
                    reports: part_reports,
                });
            }
            self.rejects.extend(part_rejects);
            let mut rows = Vec::with_capacity(part.len());
            self.seen_ids.warm(&id_hashes);
            for r in 0..part.len() {
                let (id, row) = (part.ids.get(r), part.rows[r]);
                if !usable[r] {
                    self.counts.no_blocking_key += 1;
                    self.rejects.push(Reject {
                        record_id: id.to_owned(),
                        row,
                        reason: "no blocking key: every rule needs a value this record lacks"
                            .into(),
                    });
                } else if !self.seen_ids.insert(id_hashes[r]) {
                    self.rejects.push(Reject {
                        record_id: id.to_owned(),
                        row,
                        reason: format!("duplicate record id (column `{}`)", self.input.id),
                    });
                    keeper.unprepare(&part, &mut prepared, r);
                } else {
                    self.counts.accepted += 1;
                    if keeper.keep(&part, &prepared, r, id_hashes[r]) {
                        rows.push(r);
                    } else {
                        self.counts.pruned += 1;
                    }
                }
            }
            keeper.finish(&part, prepared);
            kept_rows.push(rows);
            parts.push(part);
        }
        // The kept records of each chunk are copied out in parallel, then appended in order; a
        // cache entry being written takes every record of the chunk.
        let schema = self.writer.as_ref().map(crate::cache::Writer::schema);
        let kept: Vec<(Table, Option<Result<RecordBatch, EngineError>>)> = parts
            .into_par_iter()
            .zip(kept_rows)
            .map(|(part, rows)| match schema {
                Some(schema) => {
                    let kept = part.select(&rows);
                    (kept, Some(crate::exchange::table_to_batch(schema, part)))
                }
                None if rows.len() == part.len() => (part, None),
                None => (part.select(&rows), None),
            })
            .collect();
        let mut records = Vec::new();
        for (part, record_batch) in kept {
            self.table.append(part);
            match record_batch {
                Some(Ok(batch)) => records.push(batch),
                Some(Err(e)) => {
                    // Not expected (the schema is the table's own): the entry is not written.
                    tracing::warn!(error = %e, "input cache entry not written");
                    self.writer = None;
                }
                None => {}
            }
        }
        if let (Some(writer), Some(cached)) = (&mut self.writer, cached) {
            writer.push(cached, records);
        }
        self.counts.input += lines;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::block_keys;

    #[test]
    fn ids_and_dates_are_read_as_their_column_says_and_losses_are_shaped() {
        let mut spec =
            JobSpec::from_toml(crate::spec::tests::GOOD, std::path::Path::new("/jobs")).unwrap();
        spec.dates.reference = Some("2026-12-07".into());
        spec.inputs[0]
            .conventions
            .id_repair
            .insert("cmnd".into(), false);
        let input = &spec.inputs[0];
        let columns = crate::scan::columns_of(input);
        // (pin column, cmnd column, dob) -> (pin slot, cmnd slot, dob)
        type Raw = (&'static str, &'static str, &'static str);
        type Read = (&'static str, &'static str, Option<&'static str>);
        let rows: &[(Raw, Read)] = &[
            // A repaired number never beats a well-formed one, whichever column holds it.
            (
                ("1085012345", "001090012345", "15/6/99"),
                ("001090012345", "", Some("1999-06-15")),
            ),
            (
                ("001090012345", "1085012345", ""),
                ("001090012345", "", None),
            ),
            // Alone, the repair is taken (and counted).
            (
                ("1085012345", "", "1985"),
                ("001085012345", "", Some("1985")),
            ),
            // The cmnd column is of another kind: no repair there.
            (("", "13579246", ""), ("", "", None)),
            // 12 digits failing the PIN checks: kept for the typo levels, and counted unread.
            (
                ("029085012345", "271450001", "31/02/1990"),
                ("029085012345", "271450001", None),
            ),
            (("", "", "abc"), ("", "", None)),
        ];
        let value = |column: &str| -> Vec<Option<&str>> {
            rows.iter()
                .enumerate()
                .map(|(i, r)| match column {
                    "id" => Some(["a", "b", "c", "d", "e", "f"][i]),
                    "pin" => Some(r.0.0),
                    "cmnd" => Some(r.0.1),
                    "dob" => Some(r.0.2),
                    _ => None,
                })
                .collect()
        };
        let batch = crate::scan::text_batch(&columns, value);
        let plan = Plan::new(&spec, input);
        let numbers: Vec<u64> = (0..rows.len() as u64).collect();
        let (table, rejects, reports) =
            plan.standardise_rows(&batch, 0..rows.len(), &numbers, &mut Caches::default());
        assert!(rejects.is_empty());
        let field = |name: &str| spec.fields.keys().position(|f| f == name).unwrap();
        let Some(FieldValues::Id { pin, cmnd }) = &table.fields[field("ids")] else {
            panic!("ids");
        };
        let Some(FieldValues::Date(dates)) = &table.fields[field("dob")] else {
            panic!("dob");
        };
        for (i, (_, read)) in rows.iter().enumerate() {
            assert_eq!((pin.get(i), cmnd.get(i)), (read.0, read.1), "row {i}");
            let date = unpack_date(dates[i]).map(|d| d.to_iso());
            assert_eq!(date.as_deref(), read.2, "row {i}");
        }
        // Unread: the cmnd column's numbers that lost their zeros (two) and the failed PIN.
        let ids = &reports[field("ids")];
        assert_eq!(ids.unread, 3, "{ids:?}");
        assert_eq!(ids.repaired, [("pin".to_owned(), 1)].into());
        let shapes = [("99999999", 1), ("9999999999", 1), ("999999999999", 1)];
        assert_eq!(ids.shapes, shapes.map(|(s, n)| (s.to_owned(), n)).into());
        let dob = &reports[field("dob")];
        assert_eq!(dob.unread, 2);
        assert_eq!(
            dob.shapes,
            [("99/99/9999".to_owned(), 1), ("aaa".to_owned(), 1)].into()
        );
    }

    #[test]
    fn every_blocking_key_a_spec_may_name_is_understood() {
        use Standardiser::*;
        for standardiser in [
            VnName, PersonName, Date, VnId, VnProvince, Sex, Phone, Text, Id,
        ] {
            for part in block_keys(standardiser) {
                assert!(KeyPart::parse(part).is_some(), "{standardiser:?}.{part}");
            }
        }
        assert_eq!(KeyPart::parse("surname"), None);
    }

    /// A column read back from Arrow: a slice's values, and nulls empty even where the null slot
    /// spans bytes (Arrow allows it).
    #[test]
    fn strings_from_an_arrow_column_are_its_values() {
        let column = StringArray::from(vec!["Lê", "", "Nguyễn Văn An", "x"]).slice(1, 3);
        let strings = Strings::from_array(&column);
        assert_eq!(
            (0..strings.len())
                .map(|i| strings.get(i))
                .collect::<Vec<_>>(),
            ["", "Nguyễn Văn An", "x"]
        );
        assert_eq!(Strings::from_array(&column).into_array(), column);
        // Taken in place, then changed: the values are copied out first, offsets rebased.
        let mut changed = Strings::from_array(&column);
        changed.push("Trần");
        changed.append(&Strings::from_array(&column));
        let mut owned = Strings::default();
        owned.push("Lý");
        changed.append(&owned);
        let expected = [
            "",
            "Nguyễn Văn An",
            "x",
            "Trần",
            "",
            "Nguyễn Văn An",
            "x",
            "Lý",
        ];
        assert_eq!(
            (0..changed.len())
                .map(|i| changed.get(i))
                .collect::<Vec<_>>(),
            expected
        );
        assert_eq!(changed.into_array(), StringArray::from(expected.to_vec()));
        // "ab" then a null slot that spans "cd", then "e".
        let with_null = StringArray::new(
            arrow::buffer::OffsetBuffer::new(vec![0, 2, 4, 5].into()),
            arrow::buffer::Buffer::from_vec(b"abcde".to_vec()),
            Some(arrow::buffer::NullBuffer::from(vec![true, false, true])),
        );
        let strings = Strings::from_array(&with_null);
        assert_eq!(
            (0..strings.len())
                .map(|i| strings.get(i))
                .collect::<Vec<_>>(),
            ["ab", "", "e"]
        );
        assert_eq!(strings.into_array(), StringArray::from(vec!["ab", "", "e"]));
    }

    #[test]
    fn sex_codes_in_any_case_and_spelling() {
        let cases = [
            ("Nam", Some(Sex::Male)),
            (" NAM ", Some(Sex::Male)),
            ("m", Some(Sex::Male)),
            ("Male", Some(Sex::Male)),
            ("1", Some(Sex::Male)),
            ("trai", Some(Sex::Male)),
            ("Nữ", Some(Sex::Female)),
            ("NỮ", Some(Sex::Female)),
            ("Nu\u{31b}\u{303}", Some(Sex::Female)),
            ("nu", Some(Sex::Female)),
            ("F", Some(Sex::Female)),
            ("FEMALE", Some(Sex::Female)),
            ("0", Some(Sex::Female)),
            ("2", Some(Sex::Female)),
            ("Gái", Some(Sex::Female)),
            ("", None),
            ("3", None),
            ("namnam", None),
            ("females", None),
            ("Nam Nữ", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(parse_sex(raw), expected, "{raw:?}");
        }
    }

    #[test]
    fn phones_are_their_local_digits() {
        let cases = [
            ("0912345678", "0912345678"),
            ("091 234 5678", "0912345678"),
            ("0912.345.678", "0912345678"),
            ("+84 912 345 678", "0912345678"),
            ("84912345678", "0912345678"),
            ("+84 24 3825 1234", "02438251234"),
            ("(024) 3825 1234", "02438251234"),
            // 84 is a country code only in front: here it is the start of a local number.
            ("0084912345", "0084912345"),
            ("912345678", "912345678"),
            ("12345678", ""),
            ("091234567890", ""),
            ("+84 912 345 678 999", ""),
            ("", ""),
            ("không có", ""),
        ];
        for (raw, expected) in cases {
            assert_eq!(normalise_phone(raw), expected, "{raw:?}");
        }
    }

    #[test]
    fn token_keys_are_the_words_sorted_however_many() {
        let key = |words: &[&str]| {
            let mut out = Vec::new();
            let present = sorted_words_into(words.iter().copied(), &mut out);
            (present, String::from_utf8(out).unwrap())
        };
        assert_eq!(key(&[]), (false, String::new()));
        assert_eq!(
            key(&["thuy", "nguyen", "thi"]),
            (true, "nguyen thi thuy ".into())
        );
        // Words sharing their first 8 bytes, or a prefix of another, sort as plain byte order does.
        let tricky = [
            "nguyenvanb",
            "nguyenvana",
            "nguyen",
            "nguyenv",
            "a",
            "ab",
            "a\0",
            "",
            "nguyenva",
        ];
        let mut expected: Vec<&str> = tricky.to_vec();
        expected.sort_unstable();
        let expected: String = expected.iter().map(|w| format!("{w} ")).collect();
        assert_eq!(key(&tricky), (true, expected));
        // More words than fit on the stack: the same rule.
        let many: Vec<String> = (0..40).rev().map(|i| format!("w{i:02}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let mut expected: Vec<&str> = many.clone();
        expected.sort_unstable();
        assert_eq!(key(&many), (true, format!("{} ", expected.join(" "))));
    }
}
