//! Compare: the comparison kernels. For a pair of records, each comparison gives the first of its
//! ordered levels that holds: its gamma. Gammas of a pair are packed 4 bits per comparison in a `u64`.
//!
//! Gamma codes: 0 is the null level (a side is missing), 1..=L the spec's levels in order, L+1 "else".

use khop_vn::date::PartialDate;
use khop_vn::id::{IdRelation, relate_digits, same_pin_prefix};

use crate::spec::{JobSpec, Level, Standardiser};
use crate::standardise::{FieldValues, PackedDate, Table, unpack_date};

pub const MAX_COMPARISONS: usize = 16;
pub const NULL: u8 = 0;

/// Which part of a name field a comparison looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamePart {
    Full,
    Surname,
    Middle,
    Given,
}

/// A comparison of the spec, resolved against the field list.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub name: String,
    pub field: usize,
    pub standardiser: Standardiser,
    pub part: NamePart,
    pub levels: Vec<Level>,
    pub term_frequency: bool,
}

impl Compiled {
    /// Number of gamma values: null, the levels, else.
    pub fn gammas(&self) -> usize {
        self.levels.len() + 2
    }

    pub fn else_gamma(&self) -> u8 {
        self.levels.len() as u8 + 1
    }

    pub fn gamma_name(&self, gamma: u8) -> String {
        match gamma {
            NULL => "null".into(),
            g if g == self.else_gamma() => "else".into(),
            g => self.levels[usize::from(g) - 1].name(),
        }
    }
}

pub fn compile(spec: &JobSpec) -> Vec<Compiled> {
    spec.comparisons
        .iter()
        .map(|c| {
            let (field, part) = c.field.split_once('.').unwrap_or((&c.field, "full"));
            let field_index = spec.fields.keys().position(|f| f == field).unwrap_or(0);
            Compiled {
                name: c.name.clone(),
                field: field_index,
                standardiser: spec.fields[field],
                part: match part {
                    "surname" => NamePart::Surname,
                    "middle" => NamePart::Middle,
                    "given" => NamePart::Given,
                    _ => NamePart::Full,
                },
                levels: c.levels.clone(),
                term_frequency: c.term_frequency,
            }
        })
        .collect()
}

/// A name part's canonical text and key (`parts`: [`Value::Name`]), borrowed when it is one part,
/// joined for the full name.
fn name_part<'a>(
    parts: &[&'a str; 6],
    part: NamePart,
    buf: &'a mut (String, String),
) -> Option<(&'a str, &'a str)> {
    let (text, key) = match one_part(parts, part) {
        Some(one) => one,
        None => {
            let (text, key) = buf;
            text.clear();
            key.clear();
            for part in [NamePart::Surname, NamePart::Middle, NamePart::Given] {
                let (t, k) = one_part(parts, part)?;
                if !t.is_empty() {
                    if !text.is_empty() {
                        text.push(' ');
                        key.push(' ');
                    }
                    text.push_str(t);
                    key.push_str(k);
                }
            }
            (text.as_str(), key.as_str())
        }
    };
    (!text.is_empty()).then_some((text, key))
}

/// One part of a name (not [`NamePart::Full`]): its canonical text and key, empty when missing.
fn one_part<'a>(parts: &[&'a str; 6], part: NamePart) -> Option<(&'a str, &'a str)> {
    let i = match part {
        NamePart::Surname => 0,
        NamePart::Middle => 1,
        NamePart::Given => 2,
        NamePart::Full => return None,
    };
    Some((parts[i], parts[i + 3]))
}

fn sorted_words(s: &str) -> Vec<&str> {
    let mut words: Vec<&str> = s.split(' ').filter(|w| !w.is_empty()).collect();
    words.sort_unstable();
    words
}

/// The characters of `s` in an array on the stack; `None` when there are more than `MAX`.
fn chars<const MAX: usize>(s: &str) -> Option<([char; MAX], usize)> {
    let mut out = ['\0'; MAX];
    let mut n = 0;
    for c in s.chars() {
        *out.get_mut(n)? = c;
        n += 1;
    }
    Some((out, n))
}

/// `strsim::osa_distance` (edit distance with adjacent transpositions), without its three allocations
/// for strings of up to 32 characters (name-part keys, phones: nearly every value compared). It is the
/// `damerau` level of every candidate pair whose phones or given names differ.
fn osa_distance(a: &str, b: &str) -> usize {
    const MAX: usize = 32;
    let (Some((a_chars, la)), Some((b_chars, lb))) = (chars::<MAX>(a), chars::<MAX>(b)) else {
        return strsim::osa_distance(a, b);
    };
    let (a_chars, b_chars) = (&a_chars[..la], &b_chars[..lb]);
    // Three rows of the distance table, as strsim keeps them: two rows back, the last, this one.
    let mut two = [0u8; MAX + 1];
    let mut last = [0u8; MAX + 1];
    let mut this = [0u8; MAX + 1];
    for j in 0..=lb {
        (two[j], last[j]) = (j as u8, j as u8);
    }
    for (i, &x) in a_chars.iter().enumerate() {
        this[0] = i as u8 + 1;
        for (j, &y) in b_chars.iter().enumerate() {
            let cost = u8::from(x != y);
            let mut d = (this[j] + 1).min(last[j + 1] + 1).min(last[j] + cost);
            if i > 0 && j > 0 && x != y && x == b_chars[j - 1] && y == a_chars[i - 1] {
                d = d.min(two[j - 1] + 1);
            }
            this[j + 1] = d;
        }
        std::mem::swap(&mut two, &mut last);
        std::mem::swap(&mut last, &mut this);
    }
    usize::from(last[lb])
}

/// Whether `osa_distance(a, b) <= max`. For `max` 1 (the usual level: one typo) and ASCII text (keys
/// and phones) it is answered in one pass, without the distance table: equal, or one substitution,
/// one adjacent transposition, or one insertion.
fn osa_within(a: &str, b: &str, max: usize) -> bool {
    if max != 1 || !a.is_ascii() || !b.is_ascii() {
        return osa_distance(a, b) <= max;
    }
    a == b || khop_vn::name::one_edit_apart(a.as_bytes(), b.as_bytes())
}

/// `strsim::jaro_winkler`, the same arithmetic in the same order (so the same `f64`), without its
/// allocation and with the matched characters kept as bits, for strings of up to 64 characters
/// (every name-part key): the `jaro_winkler` level of nearly every candidate pair, and of most random
/// pairs drawn for u, where names differ. ASCII strings (keys are folded) are compared as their bytes,
/// which are their characters, without decoding them.
fn jaro_winkler(a: &str, b: &str) -> f64 {
    const MAX: usize = 64;
    if a.is_ascii() && b.is_ascii() && a.len() <= MAX && b.len() <= MAX {
        return jaro_winkler_of(a.as_bytes(), b.as_bytes());
    }
    let (Some((a_chars, a_len)), Some((b_chars, b_len))) = (chars::<MAX>(a), chars::<MAX>(b))
    else {
        return strsim::jaro_winkler(a, b);
    };
    jaro_winkler_of(&a_chars[..a_len], &b_chars[..b_len])
}

/// [`jaro_winkler`] of two sequences of characters, each at most 64 long.
fn jaro_winkler_of<T: PartialEq>(a_chars: &[T], b_chars: &[T]) -> f64 {
    let (a_len, b_len) = (a_chars.len(), b_chars.len());
    debug_assert!(a_len <= 64 && b_len <= 64);
    if a_len == 0 && b_len == 0 {
        return 1.0;
    } else if a_len == 0 || b_len == 0 {
        return 0.0;
    }
    let search_range = (a_len.max(b_len) / 2).saturating_sub(1);
    let (mut a_flags, mut b_flags) = (0u64, 0u64);
    let mut matches = 0usize;
    for (i, x) in a_chars.iter().enumerate() {
        let min_bound = i.saturating_sub(search_range);
        let max_bound = b_len.min(i + search_range + 1);
        for (j, y) in b_chars.iter().enumerate().take(max_bound).skip(min_bound) {
            if x == y && b_flags & (1 << j) == 0 {
                a_flags |= 1 << i;
                b_flags |= 1 << j;
                matches += 1;
                break;
            }
        }
    }
    if matches == 0 {
        return 0.0;
    }
    // The matched characters of each side, in order; a transposition is a pair that differs.
    let mut transpositions = 0usize;
    let mut b_rest = b_flags;
    let mut a_rest = a_flags;
    while a_rest != 0 {
        let (i, j) = (a_rest.trailing_zeros(), b_rest.trailing_zeros());
        transpositions += usize::from(a_chars[i as usize] != b_chars[j as usize]);
        a_rest &= a_rest - 1;
        b_rest &= b_rest - 1;
    }
    transpositions /= 2;
    let sim = ((matches as f64 / a_len as f64)
        + (matches as f64 / b_len as f64)
        + ((matches - transpositions) as f64 / matches as f64))
        / 3.0;
    if sim > 0.7 {
        let prefix = a_chars
            .iter()
            .take(4)
            .zip(b_chars)
            .take_while(|(x, y)| x == y)
            .count();
        sim + 0.1 * prefix as f64 * (1.0 - sim)
    } else {
        sim
    }
}

fn text_level(level: &Level, a: (&str, &str), b: (&str, &str)) -> bool {
    match level {
        Level::Exact => a.0 == b.0,
        Level::ExactKey => a.1 == b.1,
        Level::Tokens => sorted_words(a.1) == sorted_words(b.1),
        Level::JaroWinkler { threshold } => jaro_winkler(a.1, b.1) >= *threshold,
        Level::Levenshtein { max } => strsim::levenshtein(a.1, b.1) <= *max as usize,
        Level::Damerau { max } => osa_within(a.1, b.1, *max as usize),
        Level::Words { max, missing_word } => {
            khop_vn::name::name_edits(a.1, b.1, *max, *missing_word).is_some()
        }
        // Identifiers of any scheme (`id` fields), digit by digit as `vn_id`'s.
        Level::OneDigit => relate_digits(a.0, b.0) == IdRelation::OneDigit,
        Level::Transposition => relate_digits(a.0, b.0) == IdRelation::Transposition,
        Level::TwoDigits => matches!(
            relate_digits(a.0, b.0),
            IdRelation::OneDigit | IdRelation::Transposition | IdRelation::TwoDigits
        ),
        _ => false,
    }
}

/// Whether each side's surname is the other's given name, by keys ([`Value::Name`] order: texts,
/// then keys); never for a name whose surname and given name are one word.
fn surname_given_swapped(a: &[&str; 6], b: &[&str; 6]) -> bool {
    let (a_surname, a_given, b_surname, b_given) = (a[3], a[5], b[3], b[5]);
    !a_surname.is_empty()
        && !a_given.is_empty()
        && a_surname != a_given
        && a_surname == b_given
        && a_given == b_surname
}

fn date_level(level: &Level, a: &PartialDate, b: &PartialDate) -> bool {
    let both_full = a.is_full() && b.is_full();
    match level {
        Level::Exact | Level::ExactKey => both_full && a == b,
        Level::DayMonthSwapped => {
            both_full && a.year == b.year && a.month == b.day && a.day == b.month && a != b
        }
        Level::SameYearMonth => a.year == b.year && a.month.is_some() && a.month == b.month,
        Level::SameYear => a.year == b.year,
        Level::WithinYears { years } => a.year.abs_diff(b.year) <= u32::from(*years),
        Level::Partial => {
            !both_full
                && a.year == b.year
                && (a.month.is_none() || b.month.is_none() || a.month == b.month)
        }
        _ => false,
    }
}

/// How two records' IDs relate, and whether their PINs share the prefix before the serial.
fn id_relation(a: (&str, &str), b: (&str, &str)) -> Option<(IdRelation, bool)> {
    let rank = |r: IdRelation| match r {
        IdRelation::Exact => 0,
        IdRelation::OneDigit => 1,
        IdRelation::Transposition => 2,
        IdRelation::TwoDigits => 3,
        _ => 4,
    };
    let pins = (!a.0.is_empty() && !b.0.is_empty()).then(|| relate_digits(a.0, b.0));
    let cmnds = (!a.1.is_empty() && !b.1.is_empty()).then(|| relate_digits(a.1, b.1));
    let relation = match (pins, cmnds) {
        (Some(p), Some(c)) => Some(if rank(c) < rank(p) { c } else { p }),
        (Some(r), None) | (None, Some(r)) => Some(r),
        (None, None) => {
            let a_any = !a.0.is_empty() || !a.1.is_empty();
            let b_any = !b.0.is_empty() || !b.1.is_empty();
            (a_any && b_any).then_some(IdRelation::OldVsNew)
        }
    };
    relation.map(|r| (r, same_pin_prefix(a.0, b.0)))
}

fn id_level(level: &Level, (relation, same_prefix): (IdRelation, bool)) -> bool {
    match level {
        Level::Exact | Level::ExactKey => relation == IdRelation::Exact,
        Level::OneDigit => relation == IdRelation::OneDigit,
        Level::Transposition => relation == IdRelation::Transposition,
        Level::TwoDigits => matches!(
            relation,
            IdRelation::OneDigit | IdRelation::Transposition | IdRelation::TwoDigits
        ),
        Level::SamePrefix => same_prefix && relation != IdRelation::Exact,
        Level::OldVsNew => relation == IdRelation::OldVsNew,
        _ => false,
    }
}

/// One record's standardised value of one field, borrowed: all that a comparison of the field looks
/// at. Read from a [`Table`]'s columns ([`Value::of`]) or from a record's [`Rows`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// Canonical surname, middle and given name, then the three as keys.
    Name([&'a str; 6]),
    Date(PackedDate),
    Id {
        pin: &'a str,
        cmnd: &'a str,
    },
    /// The new (34-unit) province code; 0 when missing.
    Province(u8),
    /// 0 missing, 1 male, 2 female.
    Sex(u8),
    Text(&'a str),
}

impl<'a> Value<'a> {
    /// Record `row`'s value in a table's column of one field.
    pub fn of(values: &'a FieldValues, row: usize) -> Value<'a> {
        Value::for_part(values, NamePart::Full, row)
    }

    /// [`Value::of`], but of a name only what `part` needs: one part's text and key (the other
    /// parts empty), or all of them for the full name.
    fn for_part(values: &'a FieldValues, part: NamePart, row: usize) -> Value<'a> {
        match values {
            FieldValues::Name {
                surname,
                surname_key,
                ..
            } if part == NamePart::Surname => {
                Value::Name([surname.get(row), "", "", surname_key.get(row), "", ""])
            }
            FieldValues::Name {
                middle, middle_key, ..
            } if part == NamePart::Middle => {
                Value::Name(["", middle.get(row), "", "", middle_key.get(row), ""])
            }
            FieldValues::Name {
                given, given_key, ..
            } if part == NamePart::Given => {
                Value::Name(["", "", given.get(row), "", "", given_key.get(row)])
            }
            FieldValues::Name {
                surname,
                middle,
                given,
                surname_key,
                middle_key,
                given_key,
            } => Value::Name([
                surname.get(row),
                middle.get(row),
                given.get(row),
                surname_key.get(row),
                middle_key.get(row),
                given_key.get(row),
            ]),
            FieldValues::Date(d) => Value::Date(d[row]),
            FieldValues::Id { pin, cmnd } => Value::Id {
                pin: pin.get(row),
                cmnd: cmnd.get(row),
            },
            FieldValues::Province { new, .. } => Value::Province(new[row]),
            FieldValues::Sex(s) => Value::Sex(s[row]),
            FieldValues::Text(s) => Value::Text(s.get(row)),
        }
    }
}

/// Scratch space reused across pairs, so comparing allocates nothing in the common case.
#[derive(Default)]
pub struct Scratch {
    a: (String, String),
    b: (String, String),
}

impl Compiled {
    /// Whether a level looks at more of a name than the comparison's part (the other part, for
    /// `surname_given_swapped`).
    fn reads_other_parts(&self) -> bool {
        self.levels.contains(&Level::SurnameGivenSwapped)
    }

    /// The name parts this comparison's levels read: its own, or all of them.
    fn parts_read(&self) -> NamePart {
        if self.reads_other_parts() {
            NamePart::Full
        } else {
            self.part
        }
    }

    /// The gamma of this comparison for record `ra` of `a` against record `rb` of `b`.
    pub fn gamma(&self, a: &Table, ra: usize, b: &Table, rb: usize, scratch: &mut Scratch) -> u8 {
        match (&a.fields[self.field], &b.fields[self.field]) {
            (Some(va), Some(vb)) => self.gamma_of(
                Value::for_part(va, self.parts_read(), ra),
                Value::for_part(vb, self.parts_read(), rb),
                scratch,
            ),
            _ => NULL,
        }
    }

    /// The gamma of this comparison for two records' values of its field.
    pub fn gamma_of(&self, x: Value, y: Value, scratch: &mut Scratch) -> u8 {
        let first_holding = |holds: &dyn Fn(&Level) -> bool| {
            self.levels
                .iter()
                .position(holds)
                .map_or(self.else_gamma(), |i| i as u8 + 1)
        };
        match (x, y) {
            (Value::Name(pa), Value::Name(pb)) => {
                let (Some(x), Some(y)) = (
                    name_part(&pa, self.part, &mut scratch.a),
                    name_part(&pb, self.part, &mut scratch.b),
                ) else {
                    return NULL;
                };
                first_holding(&|l| match l {
                    Level::SurnameGivenSwapped => surname_given_swapped(&pa, &pb),
                    _ => text_level(l, x, y),
                })
            }
            (Value::Date(da), Value::Date(db)) => {
                let (Some(x), Some(y)) = (unpack_date(da), unpack_date(db)) else {
                    return NULL;
                };
                first_holding(&|l| date_level(l, &x, &y))
            }
            (Value::Id { pin: pa, cmnd: ca }, Value::Id { pin: pb, cmnd: cb }) => {
                match id_relation((pa, ca), (pb, cb)) {
                    Some(related) => first_holding(&|l| id_level(l, related)),
                    None => NULL,
                }
            }
            (Value::Province(na), Value::Province(nb)) | (Value::Sex(na), Value::Sex(nb)) => {
                if na == 0 || nb == 0 {
                    return NULL;
                }
                first_holding(&|l| matches!(l, Level::Exact | Level::ExactKey) && na == nb)
            }
            (Value::Text(x), Value::Text(y)) => {
                if x.is_empty() || y.is_empty() {
                    return NULL;
                }
                first_holding(&|l| text_level(l, (x, x), (y, y)))
            }
            _ => NULL,
        }
    }

    /// For a comparison of one name part, record `row`'s text and key of that part (empty when
    /// missing): all its gamma depends on, so two records with equal values have equal gammas against
    /// any third. `None` for every other comparison.
    pub(crate) fn part_value<'a>(&self, t: &'a Table, row: usize) -> Option<(&'a str, &'a str)> {
        if self.reads_other_parts() {
            return None;
        }
        match Value::for_part(t.fields[self.field].as_ref()?, self.part, row) {
            Value::Name(parts) => one_part(&parts, self.part),
            _ => None,
        }
    }

    /// The value this comparison looks at, as text for outputs (`right_<comparison>` columns).
    pub fn display(&self, t: &Table, row: usize) -> Option<String> {
        let values = t.fields[self.field].as_ref()?;
        match values {
            FieldValues::Name { .. } => {
                let Value::Name(parts) = Value::for_part(values, self.part, row) else {
                    return None;
                };
                let mut buf = (String::new(), String::new());
                name_part(&parts, self.part, &mut buf).map(|(text, _)| text.to_owned())
            }
            FieldValues::Date(d) => unpack_date(d[row]).map(|d| d.to_iso()),
            FieldValues::Id { pin, cmnd } => match (pin.get(row), cmnd.get(row)) {
                ("", "") => None,
                ("", c) => Some(c.to_owned()),
                (p, _) => Some(p.to_owned()),
            },
            FieldValues::Province { new, .. } => {
                khop_vn::reference::new_by_code(new[row]).map(|p| p.official_name.clone())
            }
            FieldValues::Sex(s) => match s[row] {
                1 => Some("Nam".into()),
                2 => Some("Nữ".into()),
                _ => None,
            },
            FieldValues::Text(s) => Some(s.get(row).to_owned()).filter(|s| !s.is_empty()),
        }
    }

    /// The key a term-frequency table counts for this comparison: the part's key (names) or the text.
    pub fn tf_value<'a>(
        &self,
        t: &'a Table,
        row: usize,
        buf: &'a mut (String, String),
    ) -> Option<&'a str> {
        match t.fields[self.field].as_ref()? {
            v @ FieldValues::Name { .. } => match Value::for_part(v, self.part, row) {
                Value::Name(parts) => name_part(&parts, self.part, buf).map(|(_, key)| key),
                _ => None,
            },
            FieldValues::Text(s) => Some(s.get(row)).filter(|s| !s.is_empty()),
            _ => None,
        }
    }
}

/// The gammas of all comparisons for one pair, 4 bits each.
pub fn gamma_vector(
    comparisons: &[Compiled],
    a: &Table,
    ra: usize,
    b: &Table,
    rb: usize,
    scratch: &mut Scratch,
) -> u64 {
    comparisons.iter().enumerate().fold(0u64, |acc, (i, c)| {
        acc | (u64::from(c.gamma(a, ra, b, rb, scratch)) << (4 * i))
    })
}

/// The gammas of all comparisons for one pair, from the two records' values (`xa[f]`: the first
/// record's value of field `f`, `None` when its table has none): [`gamma_vector`] for records read
/// from [`Rows`].
pub fn gamma_vector_of(
    comparisons: &[Compiled],
    xa: &[Option<Value>],
    xb: &[Option<Value>],
    scratch: &mut Scratch,
) -> u64 {
    comparisons.iter().enumerate().fold(0u64, |acc, (i, c)| {
        let g = match (xa[c.field], xb[c.field]) {
            (Some(x), Some(y)) => c.gamma_of(x, y, scratch),
            _ => NULL,
        };
        acc | (u64::from(g) << (4 * i))
    })
}

/// The shape of a field's values in [`Rows`]: how many slots, of which kind.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Name,
    Date,
    Id,
    Province,
    Sex,
    Text,
}

impl Kind {
    fn of(values: &FieldValues) -> Kind {
        match values {
            FieldValues::Name { .. } => Kind::Name,
            FieldValues::Date(_) => Kind::Date,
            FieldValues::Id { .. } => Kind::Id,
            FieldValues::Province { .. } => Kind::Province,
            FieldValues::Sex(_) => Kind::Sex,
            FieldValues::Text(_) => Kind::Text,
        }
    }

    fn slots(self) -> usize {
        match self {
            Kind::Name => 6,
            Kind::Id => 2,
            Kind::Date | Kind::Province | Kind::Sex | Kind::Text => 1,
        }
    }
}

/// A table's compared values laid out record after record, so that comparing a pair reads a few
/// cache lines of each record instead of one or two per value. Candidate pairs reach the records of
/// a partition in no useful order; read column by column, the values' cache misses were three
/// fifths of the compare stage (`perf`, 2026-11-25).
///
/// **Invariant:** record `r` owns slots `r * stride .. (r + 1) * stride` of `heads`: first where its
/// text starts in `text`, then the slots of each laid-out field in `layout` order. A string slot holds
/// where the string ends in `text` (it starts where the record's previous string ended); a number
/// slot holds the number (a packed date, a province code, a sex). [`Rows::values`] gives exactly
/// what [`Value::of`] gives on the table.
pub struct Rows {
    /// The fields some comparison reads and the table has, in field order, with their kind.
    layout: Vec<(usize, Kind)>,
    stride: usize,
    heads: Vec<usize>,
    text: String,
    /// The spec's number of fields (the length of [`Rows::values`]'s output).
    fields: usize,
}

impl Rows {
    /// The values of `table` that `comparisons` read.
    pub fn of(table: &Table, comparisons: &[Compiled]) -> Rows {
        let mut layout: Vec<(usize, Kind)> = comparisons
            .iter()
            .filter_map(|c| Some((c.field, Kind::of(table.fields[c.field].as_ref()?))))
            .collect();
        layout.sort_unstable_by_key(|&(f, _)| f);
        layout.dedup_by_key(|&mut (f, _)| f);
        // The laid-out fields' columns, looked up once.
        let columns: Vec<&FieldValues> = layout
            .iter()
            .filter_map(|&(f, _)| table.fields[f].as_ref())
            .collect();
        let stride = 1 + layout.iter().map(|(_, k)| k.slots()).sum::<usize>();
        let mut heads = Vec::with_capacity(table.len() * stride);
        let mut text = String::new();
        for r in 0..table.len() {
            heads.push(text.len());
            for values in &columns {
                let mut string = |s: &str| {
                    text.push_str(s);
                    heads.push(text.len());
                };
                match Value::of(values, r) {
                    Value::Name(parts) => parts.into_iter().for_each(&mut string),
                    Value::Id { pin, cmnd } => [pin, cmnd].into_iter().for_each(&mut string),
                    Value::Text(t) => string(t),
                    Value::Date(d) => heads.push(d as usize),
                    Value::Province(c) | Value::Sex(c) => heads.push(usize::from(c)),
                }
            }
        }
        Rows {
            layout,
            stride,
            heads,
            text,
            fields: table.fields.len(),
        }
    }

    /// Room for one record's values: one per field of the spec, all `None`.
    pub fn no_values<'a>(&self) -> Vec<Option<Value<'a>>> {
        vec![None; self.fields]
    }

    /// Record `r`'s values into `out` (from [`Rows::no_values`]): the laid-out fields are set, the
    /// others stay `None`.
    pub fn values<'a>(&'a self, r: usize, out: &mut [Option<Value<'a>>]) {
        let mut cursor = Cursor {
            head: &self.heads[r * self.stride..(r + 1) * self.stride],
            slot: 1,
            start: self.heads[r * self.stride],
            text: &self.text,
        };
        for &(f, kind) in &self.layout {
            out[f] = Some(match kind {
                // `from_fn` calls in index order: the parts in the order they were laid out.
                Kind::Name => Value::Name(std::array::from_fn(|_| cursor.string())),
                Kind::Id => {
                    let pin = cursor.string();
                    Value::Id {
                        pin,
                        cmnd: cursor.string(),
                    }
                }
                Kind::Text => Value::Text(cursor.string()),
                Kind::Date => Value::Date(cursor.number() as PackedDate),
                Kind::Province => Value::Province(cursor.number() as u8),
                Kind::Sex => Value::Sex(cursor.number() as u8),
            });
        }
    }
}

/// Reads one record's slots of [`Rows`] in order.
struct Cursor<'a> {
    head: &'a [usize],
    slot: usize,
    start: usize,
    text: &'a str,
}

impl<'a> Cursor<'a> {
    fn string(&mut self) -> &'a str {
        let end = self.head[self.slot];
        self.slot += 1;
        let s = &self.text[self.start..end];
        self.start = end;
        s
    }

    fn number(&mut self) -> usize {
        self.slot += 1;
        self.head[self.slot - 1]
    }
}

/// The gamma of comparison `i` in a packed vector.
pub fn gamma_at(vector: u64, i: usize) -> u8 {
    ((vector >> (4 * i)) & 0xf) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_levels_pair_words_in_any_order_with_typos() {
        let words = |max, missing_word| Level::Words { max, missing_word };
        // (level, a, b, holds), on keys
        let cases = [
            (words(0, false), "nguien van an", "an van nguien", true),
            (words(0, false), "nguien van an", "nguien van anh", false),
            (words(1, false), "nguien van an", "ngien van an", true),
            (words(1, false), "nguien van an", "an van ngien", true),
            (words(1, false), "nguien van an", "nguien an", false),
            (words(1, true), "nguien van an", "nguien an", true),
            (words(2, true), "nguien van an", "tran thi lan", false),
        ];
        for (level, a, b, holds) in cases {
            assert_eq!(
                text_level(&level, (a, a), (b, b)),
                holds,
                "{level:?} {a} {b}"
            );
        }
    }

    /// The first of the generator job's ID levels that holds, as the `ids` comparison would give it.
    fn ids_gamma(a: (&str, &str), b: (&str, &str)) -> Option<&'static str> {
        let levels = [
            (Level::Exact, "exact"),
            (Level::OneDigit, "one_digit"),
            (Level::Transposition, "transposition"),
            (Level::TwoDigits, "two_digits"),
            (Level::SamePrefix, "same_prefix"),
            (Level::OldVsNew, "old_vs_new"),
        ];
        let related = id_relation(a, b)?;
        Some(
            levels
                .iter()
                .find(|(l, _)| id_level(l, related))
                .map_or("else", |(_, name)| *name),
        )
    }

    /// Records of every kind of value (typed several ways, partial, invalid, missing), for each input
    /// of the generator's job, standardised.
    fn generator_tables(spec: &JobSpec) -> Vec<Table> {
        let value = |column: &str| -> Vec<Option<&str>> {
            match column {
                "record_id" => vec![
                    Some("r1"),
                    Some("r2"),
                    Some("r3"),
                    Some("r4"),
                    Some("r5"),
                    Some("r6"),
                    Some("r7"),
                    Some("r8"),
                ],
                "full_name" => vec![
                    Some("Nguyễn Văn An"),
                    Some("NGUYEN VAN AN"),
                    Some("Trần Thị Bình"),
                    Some("Lê An"),
                    None,
                    Some("Phạm Minh Tuấn Anh"),
                    Some("Nguyen Van Anh"),
                    Some("Đỗ Thị Hoà"),
                ],
                "sex" => vec![
                    Some("Nam"),
                    Some("nam"),
                    Some("Nữ"),
                    Some("F"),
                    None,
                    Some("M"),
                    Some("X"),
                    Some("nu"),
                ],
                "date_of_birth" => vec![
                    Some("1990-01-02"),
                    Some("02/01/1990"),
                    Some("1985"),
                    None,
                    Some("1990-02-01"),
                    Some("31/02/1990"),
                    Some("1991-01"),
                    Some("1989-12-30"),
                ],
                "pin" => vec![
                    Some("001090012345"),
                    Some("001090012354"),
                    None,
                    Some("079185000123"),
                    Some("12"),
                    Some("001090012346"),
                    None,
                    Some("001090012345"),
                ],
                "cmnd" => vec![
                    Some("012345678"),
                    None,
                    Some("012345679"),
                    None,
                    Some("987654321"),
                    None,
                    Some("012345678"),
                    None,
                ],
                "place_of_birth" | "address_province" => vec![
                    Some("Hà Nội"),
                    Some("Ha Noi"),
                    Some("TP Hồ Chí Minh"),
                    None,
                    Some("Hà Tây"),
                    Some("Bắc Ninh"),
                    Some("x"),
                    Some("Hà Nội"),
                ],
                _ => vec![
                    Some("0912345678"),
                    Some("0912345679"),
                    None,
                    Some("+84912345678"),
                    Some("abc"),
                    Some("0912345687"),
                    Some("0987654321"),
                    None,
                ],
            }
        };
        spec.inputs
            .iter()
            .map(|input| {
                let batch = crate::scan::text_batch(&crate::scan::columns_of(input), value);
                crate::standardise::standardise_batch(spec, input, &batch)
            })
            .collect()
    }

    #[test]
    fn rows_give_the_gammas_the_tables_give() {
        let text = include_str!("../../datagen/src/job.toml").replace("{format}", "csv");
        // Also with a field one side does not have (the civil servants without phones).
        let without_phone = text.replacen("phone = \"phone\"\n", "", 1);
        let mut absent = Vec::new();
        for text in [text, without_phone] {
            let spec = JobSpec::from_toml(&text, std::path::Path::new("/nonexistent")).unwrap();
            let comparisons = compile(&spec);
            let tables = generator_tables(&spec);
            absent.push(tables[0].fields.iter().filter(|f| f.is_none()).count());
            let rows: Vec<Rows> = tables.iter().map(|t| Rows::of(t, &comparisons)).collect();
            let mut scratch = Scratch::default();
            let mut seen = std::collections::BTreeSet::new();
            for (a, rows_a) in tables.iter().zip(&rows) {
                for (b, rows_b) in tables.iter().zip(&rows) {
                    let (mut xa, mut xb) = (rows_a.no_values(), rows_b.no_values());
                    for ra in 0..a.len() {
                        rows_a.values(ra, &mut xa);
                        for (f, (got, values)) in xa.iter().zip(&a.fields).enumerate() {
                            let want = values.as_ref().map(|v| Value::of(v, ra));
                            let laid_out = comparisons.iter().any(|c| c.field == f);
                            assert_eq!(*got, want.filter(|_| laid_out), "field {f} of row {ra}");
                        }
                        for rb in 0..b.len() {
                            rows_b.values(rb, &mut xb);
                            let from_rows = gamma_vector_of(&comparisons, &xa, &xb, &mut scratch);
                            let from_tables =
                                gamma_vector(&comparisons, a, ra, b, rb, &mut scratch);
                            assert_eq!(from_rows, from_tables, "rows {ra} and {rb}");
                            seen.insert(from_tables);
                        }
                    }
                }
            }
            // The records reach many levels, nulls included.
            assert!(seen.len() > 20, "{} gamma vectors", seen.len());
        }
        assert_eq!(
            absent,
            [0, 1],
            "the civil servants' phones are left out the second time"
        );
    }

    #[test]
    fn osa_distance_is_strsim_s() {
        let words = [
            "",
            "a",
            "ab",
            "ba",
            "abc",
            "acb",
            "bca",
            "hung",
            "huong",
            "hugn",
            "nguyen",
            "nguyne",
            "ngyuen",
            "0912345678",
            "0912345687",
            "0921345678",
            "091234567",
            "84912345678",
            "thủy",
            "thuỷ",
            "thuy",
            "đức",
            "duc",
            "abcdefghijklmnopqrstuvwxyzabcdef",
            "abcdefghijklmnopqrstuvwxyzabcdfe",
            "abcdefghijklmnopqrstuvwxyzabcdefg",
            "bacdefghijklmnopqrstuvwxyzabcdefgh",
        ];
        for a in words {
            for b in words {
                assert_eq!(
                    osa_distance(a, b),
                    strsim::osa_distance(a, b),
                    "{a:?} vs {b:?}"
                );
            }
        }
    }

    #[test]
    fn one_typo_is_an_osa_distance_of_at_most_one() {
        let words = [
            "",
            "a",
            "b",
            "ab",
            "ba",
            "abc",
            "acb",
            "bac",
            "cab",
            "abcd",
            "abdc",
            "bacd",
            "abxd",
            "axcd",
            "abd",
            "acd",
            "bcd",
            "abcde",
            "aabb",
            "abab",
            "0912345678",
            "0912345687",
            "0921345678",
            "091234567",
            "09123456789",
            "0812345678",
            "hung",
            "huong",
            "hugn",
            "thuy",
            "thủy",
            "thuỷ",
            "nguien",
            "nguyen",
        ];
        for a in words {
            for b in words {
                for max in 0..=2 {
                    assert_eq!(
                        osa_within(a, b, max),
                        osa_distance(a, b) <= max,
                        "{a:?} vs {b:?} within {max}"
                    );
                }
            }
        }
    }

    #[test]
    fn jaro_winkler_is_strsim_s_to_the_bit() {
        let mut words: Vec<String> = [
            "", "a", "ab", "ba", "abc", "acb", "bca", "hung", "huong", "hugn", "nguyen", "nguyne",
            "ngyuen", "nguyn", "martha", "marhta", "dwayne", "duane", "dixon", "dicksonx", "thủy",
            "thuỷ", "thuy", "đức", "duc", "van", "văn", "thi", "thị", "aaaa", "aaab", "baaa",
        ]
        .map(String::from)
        .to_vec();
        // Around the 64-character limit, on both sides of it.
        let alphabet = "abcdefghijklmnopqrstuvwxyz";
        for n in [63, 64, 65, 80] {
            let s: String = alphabet.chars().cycle().take(n).collect();
            let mut swapped: Vec<char> = s.chars().collect();
            swapped.swap(1, n - 2);
            words.push(s);
            words.push(swapped.into_iter().collect());
        }
        for a in &words {
            for b in &words {
                assert_eq!(
                    jaro_winkler(a, b).to_bits(),
                    strsim::jaro_winkler(a, b).to_bits(),
                    "{a:?} vs {b:?}"
                );
            }
        }
    }

    #[test]
    fn id_levels() {
        // PIN and CMND of one side, then of the other.
        #[rustfmt::skip]
        let cases: &[(&str, &str, &str, &str, Option<&str>)] = &[
            ("001085012345", "", "001085012345", "", Some("exact")),
            ("001085012345", "", "001085012346", "", Some("one_digit")),
            ("001085012345", "", "001085012354", "", Some("transposition")),
            ("001085012345", "", "001085012399", "", Some("two_digits")),
            // A re-issued PIN: the same province, sex and year, another serial.
            ("001085012345", "", "001085987654", "", Some("same_prefix")),
            // Another province, sex or birth year: a stranger's PIN.
            ("001085012345", "", "002085987654", "", Some("else")),
            ("001085012345", "", "001185987654", "", Some("else")),
            ("001085012345", "", "001086987654", "", Some("else")),
            // The CMNDs agree although the PINs do not: the closest relation wins.
            ("001085012345", "271450001", "001085987654", "271450001", Some("exact")),
            ("001085012345", "271450001", "001085987654", "023456780", Some("same_prefix")),
            ("001085012345", "", "", "271450001", Some("old_vs_new")),
            ("", "271450001", "", "271450002", Some("one_digit")),
            ("", "271450001", "", "023456780", Some("else")),
            ("001085012345", "", "", "", None),
            ("", "", "", "", None),
        ];
        for &(pa, ca, pb, cb, expected) in cases {
            assert_eq!(
                ids_gamma((pa, ca), (pb, cb)),
                expected,
                "{pa}/{ca} vs {pb}/{cb}"
            );
            assert_eq!(
                ids_gamma((pb, cb), (pa, ca)),
                expected,
                "{pb}/{cb} vs {pa}/{ca}"
            );
        }
    }

    #[test]
    fn surname_and_given_name_written_in_each_other_s_place() {
        let compiled = |part| Compiled {
            name: "n".into(),
            field: 0,
            standardiser: Standardiser::PersonName,
            part,
            levels: vec![Level::ExactKey, Level::SurnameGivenSwapped],
            term_frequency: false,
        };
        // Texts (surname, middle, given), then keys.
        let name = |s: &'static str, g: &'static str| Value::Name([s, "", g, s, "", g]);
        let cases = [
            (name("smith", "john"), name("smith", "john"), "exact_key"),
            (
                name("smith", "john"),
                name("john", "smith"),
                "surname_given_swapped",
            ),
            (name("smith", "john"), name("john", "smyth"), "else"),
            (name("lee", "lee"), name("lee", "lee"), "exact_key"),
            (name("", "john"), name("john", ""), "null"),
        ];
        for part in [NamePart::Surname, NamePart::Given] {
            let c = compiled(part);
            for (a, b, level) in cases {
                let gamma = c.gamma_of(a, b, &mut Scratch::default());
                assert_eq!(c.gamma_name(gamma), level, "{part:?}: {a:?} vs {b:?}");
            }
        }
    }

    /// An `id` field (any scheme) takes the digit levels of `vn_id` on its normalised values.
    #[test]
    fn identifier_levels() {
        let compiled = Compiled {
            name: "passport".into(),
            field: 0,
            standardiser: Standardiser::Id,
            part: NamePart::Full,
            levels: vec![
                Level::Exact,
                Level::OneDigit,
                Level::Transposition,
                Level::TwoDigits,
                Level::Damerau { max: 1 },
            ],
            term_frequency: false,
        };
        let cases = [
            ("C1234567", "C1234567", "exact"),
            ("C1234567", "C1234568", "one_digit"),
            ("C1234567", "C1234576", "transposition"),
            ("C1234567", "B1234568", "two_digits"),
            ("C1234567", "C123456", "damerau<=1"),
            ("C1234567", "X7654321", "else"),
            ("C1234567", "", "null"),
        ];
        for (a, b, level) in cases {
            let gamma = compiled.gamma_of(Value::Text(a), Value::Text(b), &mut Scratch::default());
            assert_eq!(compiled.gamma_name(gamma), level, "{a} vs {b}");
        }
    }
}
