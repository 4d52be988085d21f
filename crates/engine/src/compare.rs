//! Compare: the comparison kernels. For a pair of records, each comparison gives the first of its
//! ordered levels that holds: its gamma. Gammas of a pair are packed 4 bits per comparison in a `u64`.
//!
//! Gamma codes: 0 is the null level (a side is missing), 1..=L the spec's levels in order, L+1 "else".

use khop_vn::date::PartialDate;
use khop_vn::id::{IdRelation, relate_digits, same_pin_prefix};

use crate::spec::{JobSpec, Level, Standardiser};
use crate::standardise::{FieldValues, Table, unpack_date};

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

/// A name part's canonical text and key, borrowed when it is one part, joined for the full name.
fn name_part<'a>(
    values: &'a FieldValues,
    part: NamePart,
    row: usize,
    buf: &'a mut (String, String),
) -> Option<(&'a str, &'a str)> {
    let (text, key) = match part {
        NamePart::Surname | NamePart::Middle | NamePart::Given => one_part(values, part, row)?,
        NamePart::Full => {
            let (text, key) = buf;
            text.clear();
            key.clear();
            for part in [NamePart::Surname, NamePart::Middle, NamePart::Given] {
                let (t, k) = one_part(values, part, row)?;
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
fn one_part(values: &FieldValues, part: NamePart, row: usize) -> Option<(&str, &str)> {
    let FieldValues::Name {
        surname,
        middle,
        given,
        surname_key,
        middle_key,
        given_key,
    } = values
    else {
        return None;
    };
    match part {
        NamePart::Surname => Some((surname.get(row), surname_key.get(row))),
        NamePart::Middle => Some((middle.get(row), middle_key.get(row))),
        NamePart::Given => Some((given.get(row), given_key.get(row))),
        NamePart::Full => None,
    }
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
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let prefix = short.iter().zip(long).take_while(|(x, y)| x == y).count();
    match long.len() - short.len() {
        0 if prefix == short.len() => true,
        // One substitution: the rest agrees; one transposition: the next two are swapped.
        0 => {
            short[prefix + 1..] == long[prefix + 1..]
                || (prefix + 1 < short.len()
                    && short[prefix] == long[prefix + 1]
                    && short[prefix + 1] == long[prefix]
                    && short[prefix + 2..] == long[prefix + 2..])
        }
        // One insertion: the longer without its first differing character is the shorter.
        1 => short[prefix..] == long[prefix + 1..],
        _ => false,
    }
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
        _ => false,
    }
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

/// Scratch space reused across pairs, so comparing allocates nothing in the common case.
#[derive(Default)]
pub struct Scratch {
    a: (String, String),
    b: (String, String),
}

impl Compiled {
    /// The gamma of this comparison for record `ra` of `a` against record `rb` of `b`.
    pub fn gamma(&self, a: &Table, ra: usize, b: &Table, rb: usize, scratch: &mut Scratch) -> u8 {
        let (Some(va), Some(vb)) = (&a.fields[self.field], &b.fields[self.field]) else {
            return NULL;
        };
        let first_holding = |holds: &dyn Fn(&Level) -> bool| {
            self.levels
                .iter()
                .position(holds)
                .map_or(self.else_gamma(), |i| i as u8 + 1)
        };
        match (va, vb) {
            (FieldValues::Name { .. }, FieldValues::Name { .. }) => {
                let (Some(x), Some(y)) = (
                    name_part(va, self.part, ra, &mut scratch.a),
                    name_part(vb, self.part, rb, &mut scratch.b),
                ) else {
                    return NULL;
                };
                first_holding(&|l| text_level(l, x, y))
            }
            (FieldValues::Date(da), FieldValues::Date(db)) => {
                let (Some(x), Some(y)) = (unpack_date(da[ra]), unpack_date(db[rb])) else {
                    return NULL;
                };
                first_holding(&|l| date_level(l, &x, &y))
            }
            (FieldValues::Id { pin: pa, cmnd: ca }, FieldValues::Id { pin: pb, cmnd: cb }) => {
                match id_relation((pa.get(ra), ca.get(ra)), (pb.get(rb), cb.get(rb))) {
                    Some(related) => first_holding(&|l| id_level(l, related)),
                    None => NULL,
                }
            }
            (FieldValues::Province { new: na, .. }, FieldValues::Province { new: nb, .. }) => {
                if na[ra] == 0 || nb[rb] == 0 {
                    return NULL;
                }
                first_holding(&|l| matches!(l, Level::Exact | Level::ExactKey) && na[ra] == nb[rb])
            }
            (FieldValues::Sex(sa), FieldValues::Sex(sb)) => {
                if sa[ra] == 0 || sb[rb] == 0 {
                    return NULL;
                }
                first_holding(&|l| matches!(l, Level::Exact | Level::ExactKey) && sa[ra] == sb[rb])
            }
            (FieldValues::Text(ta), FieldValues::Text(tb)) => {
                let (x, y) = (ta.get(ra), tb.get(rb));
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
        one_part(t.fields[self.field].as_ref()?, self.part, row)
    }

    /// The value this comparison looks at, as text for outputs (`right_<comparison>` columns).
    pub fn display(&self, t: &Table, row: usize) -> Option<String> {
        let values = t.fields[self.field].as_ref()?;
        match values {
            FieldValues::Name { .. } => {
                let mut buf = (String::new(), String::new());
                name_part(values, self.part, row, &mut buf).map(|(text, _)| text.to_owned())
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
            v @ FieldValues::Name { .. } => name_part(v, self.part, row, buf).map(|(_, key)| key),
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

/// The gamma of comparison `i` in a packed vector.
pub fn gamma_at(vector: u64, i: usize) -> u8 {
    ((vector >> (4 * i)) & 0xf) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
