//! Personal ID numbers: the 12-digit PIN (CCCD number) and the old 9-digit CMND.
//!
//! An ID is the strongest single piece of linkage evidence, so its field is read strictly: a PIN is
//! accepted only if its province code exists, and anything doubtful becomes `Invalid` with a reason
//! rather than a guess. The one repair made is for leading zeros lost in spreadsheets, because every
//! PIN and most CMND numbers start with `0` and Excel drops them systematically. The PIN has no check
//! digit (NOTES §1.1), so typing errors can only be recognised by comparing two numbers
//! ([`relate_ids`]) or a PIN with the record's own sex and birth year ([`check_pin`]).

use std::fmt;
use std::sync::LazyLock;

use crate::Sex;
use crate::admin::fold_lower;
use crate::reference::{OldProvince, old_by_pin_code, old_provinces};

/// Formats a 12-digit PIN: 3-digit province (birth registration) code, century+sex digit (0 male/1
/// female for 1900-1999, 2/3 for 2000-2099, ...), 2-digit year, 6-digit serial.
///
/// Never fails, so a generator can call it without unwrapping: out-of-range parts are reduced to their
/// field width (code modulo 1000, serial modulo 10^6) and a birth year outside 1900..=2399 gets the
/// digit of the nearest century, so [`check_pin`] will report the year as inconsistent.
pub fn format_pin(pin_province_code: u16, sex: Sex, birth_year: i32, serial: u32) -> String {
    let digit = century_sex_digit(sex, birth_year.clamp(1900, 2399)).unwrap_or(0);
    format!(
        "{:03}{}{:02}{:06}",
        pin_province_code % 1000,
        digit,
        birth_year.rem_euclid(100),
        serial % 1_000_000
    )
}

/// The century+sex digit for a sex and birth year (None before 1900 or after 2399).
pub fn century_sex_digit(sex: Sex, birth_year: i32) -> Option<u8> {
    if !(1900..=2399).contains(&birth_year) {
        return None;
    }
    let century = u8::try_from((birth_year - 1900) / 100).ok()?;
    Some(century * 2 + u8::from(sex == Sex::Female))
}

/// What an ID field holds after cleaning (strip spaces, dots, dashes; full-width digits to ASCII).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdNumber {
    /// A structurally valid 12-digit PIN.
    Pin(Pin),
    /// An old 9-digit CMND number. `known_prefix` says whether its first two or three digits are a
    /// prefix some province's police issued; the prefix table is incomplete (NOTES §1.7), so an
    /// unknown prefix is a weak warning, not a reason to reject the number.
    Cmnd9 { number: String, known_prefix: bool },
    /// Empty / null-like ("", "-", "0", "null", "không có" ...).
    Missing,
    /// Anything else, with the reason (wrong length, bad province code, non-digit ...).
    Invalid { cleaned: String, reason: IdProblem },
}

/// An ID field as read, and whether reading it restored leading zeros (see [`parse_id_with`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdReading {
    pub id: IdNumber,
    /// The number became a PIN or a CMND only by restoring leading zeros a spreadsheet dropped: a
    /// guess, which a well-formed number of the same record always beats.
    pub repaired: bool,
}

impl IdNumber {
    /// The digits of a PIN or CMND, for blocking keys and display; `None` when missing or invalid.
    pub fn digits(&self) -> Option<&str> {
        match self {
            IdNumber::Pin(pin) => Some(&pin.digits),
            IdNumber::Cmnd9 { number, .. } => Some(number),
            IdNumber::Missing | IdNumber::Invalid { .. } => None,
        }
    }

    /// The digits comparison levels look at: a PIN's or a CMND's, and also those of 12 digits that
    /// fail the PIN checks ([`IdProblem::UnknownProvinceCode`], [`IdProblem::ImpossibleCentury`]),
    /// which are most often a PIN with a typing error in its prefix: kept, flagged invalid, so that
    /// the one-digit and transposition levels still see the pair.
    pub fn compared_digits(&self) -> Option<&str> {
        match self {
            IdNumber::Invalid {
                cleaned,
                reason: IdProblem::UnknownProvinceCode | IdProblem::ImpossibleCentury,
            } => Some(cleaned),
            _ => self.digits(),
        }
    }
}

/// A structurally valid PIN with the facts encoded in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    /// The 12 ASCII digits.
    pub digits: String,
    /// The code of the province where the birth was registered (`1` for `001`); always one of the 63.
    pub province_code: u16,
    pub sex: Sex,
    pub birth_year: i32,
}

impl Pin {
    /// The pre-2025 province where the birth was registered.
    pub fn province(&self) -> Option<&'static OldProvince> {
        old_by_pin_code(self.province_code)
    }
}

/// Why an ID field is not a usable number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdProblem {
    /// Contains something other than digits and separators (letters, masking stars, two numbers).
    NonDigit,
    /// Digits only, but neither 12 (PIN) nor 9 (CMND), even allowing for lost leading zeros.
    WrongLength,
    /// 12 digits whose first three are not one of the 63 province codes.
    UnknownProvinceCode,
    /// 12 digits whose fourth (century and sex) digit says born in 2100 or later.
    ImpossibleCentury,
    /// A filler typed to get past a mandatory field: one repeated digit or a run like `123456789`.
    Placeholder,
}

impl fmt::Display for IdProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdProblem::NonDigit => "contains characters other than digits",
            IdProblem::WrongLength => "neither 12 digits (PIN) nor 9 digits (CMND)",
            IdProblem::UnknownProvinceCode => "the first three digits are not a province code",
            IdProblem::ImpossibleCentury => "the century digit says born in 2100 or later",
            IdProblem::Placeholder => "a placeholder, not a real number",
        })
    }
}

/// Spellings of "no value" seen in ID fields, after cleaning and folding (spaces removed).
const NULL_WORDS: &[&str] = &[
    "null", "none", "nil", "nan", "na", "n/a", "#n/a", "x", "?", "khong", "khongco", "ko", "kco",
    "k/c", "kc", "chuaco", "chuacap", "khongro", "chuaro",
];

/// Which 3-digit codes open a valid PIN, indexed by the code.
static PIN_CODES: LazyLock<[bool; 1000]> = LazyLock::new(|| {
    let mut valid = [false; 1000];
    for p in old_provinces() {
        if let Some(slot) = valid.get_mut(usize::from(p.pin_code)) {
            *slot = true;
        }
    }
    valid
});

/// Known CMND prefixes: 2-digit ones indexed 0..100, 3-digit ones indexed 100..1100.
static CMND_PREFIXES: LazyLock<Vec<bool>> = LazyLock::new(|| {
    let mut known = vec![false; 1100];
    for p in old_provinces() {
        for prefix in &p.cmnd_prefixes {
            if let Some(i) = prefix_index(prefix) {
                known[i] = true;
            }
        }
    }
    known
});

fn prefix_index(prefix: &str) -> Option<usize> {
    let value: usize = prefix.parse().ok()?;
    match prefix.len() {
        2 => Some(value),
        3 => Some(100 + value),
        _ => None,
    }
}

/// The value of a run of ASCII digits (at most 3 here, so no overflow).
fn digits_value(digits: &[u8]) -> usize {
    digits
        .iter()
        .fold(0, |acc, d| acc * 10 + usize::from(d - b'0'))
}

fn has_known_cmnd_prefix(number: &str) -> bool {
    let b = number.as_bytes();
    let known = &*CMND_PREFIXES;
    (b.len() >= 2 && known[digits_value(&b[..2])])
        || (b.len() >= 3 && known[100 + digits_value(&b[..3])])
}

/// The provinces whose police issued CMND numbers starting like `number`. Several provinces share a
/// prefix (NOTES §1.7), so this is a set of candidates, never one answer.
pub fn cmnd_issuing_provinces(number: &str) -> impl Iterator<Item = &'static OldProvince> + '_ {
    old_provinces().iter().filter(move |p| {
        p.cmnd_prefixes
            .iter()
            .any(|prefix| number.len() > prefix.len() && number.starts_with(prefix.as_str()))
    })
}

/// Removes separators and converts full-width digits; other characters are kept so that a non-digit
/// field can be told apart from an empty one.
fn clean(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '0'..='9' => out.push(c),
            '０'..='９' => out.push(char::from(b'0' + (u32::from(c) - u32::from('０')) as u8)),
            '.' | '-' | '_' | '\'' | '"' | '‐' | '‑' | '‒' | '–' | '—' | '−' | '．' | '－'
            | '‘' | '’' | '“' | '”' => {}
            c if c.is_whitespace() => {}
            _ => out.push(c),
        }
    }
    out
}

/// One digit repeated, or a straight ascending or descending run: a piece of "01234567890123456789"
/// or "98765432109876543210". `digits` are ASCII digits. Counted, not searched for: every ID read
/// asks this.
fn is_placeholder(digits: &str) -> bool {
    let b = digits.as_bytes();
    let Some(&first) = b.first() else {
        return true;
    };
    let first = usize::from(first - b'0');
    // Each digit `step` (mod 10) above the one before it.
    let run = |step: u8| {
        b.windows(2)
            .all(|w| (w[0] - b'0' + step) % 10 == w[1] - b'0')
    };
    // A run starting at digit d fits in the twenty digits from d's first place: d in the ascending
    // string, 9 - d in the descending one.
    b.iter().all(|&d| d == b[0])
        || (first + b.len() <= 20 && run(1))
        || (9 - first + b.len() <= 20 && run(9))
}

/// Reads a 12-digit string as a PIN, or says why it is not one.
fn pin_from_digits(digits: String) -> IdNumber {
    let b = digits.as_bytes();
    let code = digits_value(&b[..3]);
    if !PIN_CODES[code] {
        return IdNumber::Invalid {
            cleaned: digits,
            reason: IdProblem::UnknownProvinceCode,
        };
    }
    let g = i32::from(b[3] - b'0');
    if g >= 4 {
        return IdNumber::Invalid {
            cleaned: digits,
            reason: IdProblem::ImpossibleCentury,
        };
    }
    let yy = i32::from(b[4] - b'0') * 10 + i32::from(b[5] - b'0');
    IdNumber::Pin(Pin {
        province_code: code as u16,
        sex: if g % 2 == 0 { Sex::Male } else { Sex::Female },
        birth_year: 1900 + 100 * (g / 2) + yy,
        digits,
    })
}

fn zero_padded(digits: &str, width: usize) -> String {
    format!("{digits:0>width$}")
}

/// Reads an ID field. Leading zeros lost by a spreadsheet are restored when the result is valid: an
/// 11- or 10-digit number not starting with `0` is read as a PIN if the padded form is one, and an
/// 8-digit number as a CMND if the padded prefix is known.
pub fn parse_id(raw: &str) -> IdNumber {
    parse_id_with(raw, true).id
}

/// Reads an ID field as [`parse_id`] does, restoring lost leading zeros only with `repair`: a caller
/// turns it off for a column whose numbers are mostly of another length (a 10-digit tax code column is
/// not a PIN column that lost two zeros).
pub fn parse_id_with(raw: &str, repair: bool) -> IdReading {
    let cleaned = clean(raw);
    let read = |id| IdReading {
        id,
        repaired: false,
    };
    if cleaned.is_empty() {
        return read(IdNumber::Missing);
    }
    if !cleaned.bytes().all(|b| b.is_ascii_digit()) {
        if NULL_WORDS.contains(&fold_lower(&cleaned).as_str()) {
            return read(IdNumber::Missing);
        }
        return read(IdNumber::Invalid {
            cleaned,
            reason: IdProblem::NonDigit,
        });
    }
    if cleaned.bytes().all(|b| b == b'0') {
        return read(IdNumber::Missing);
    }
    if cleaned.len() >= 8 && is_placeholder(&cleaned) {
        return read(IdNumber::Invalid {
            cleaned,
            reason: IdProblem::Placeholder,
        });
    }
    let lost_zeros = repair && !cleaned.starts_with('0');
    let wrong_length = |cleaned| {
        read(IdNumber::Invalid {
            cleaned,
            reason: IdProblem::WrongLength,
        })
    };
    match cleaned.len() {
        12 => read(pin_from_digits(cleaned)),
        9 => {
            let known_prefix = has_known_cmnd_prefix(&cleaned);
            read(IdNumber::Cmnd9 {
                number: cleaned,
                known_prefix,
            })
        }
        10 | 11 if lost_zeros => match pin_from_digits(zero_padded(&cleaned, 12)) {
            pin @ IdNumber::Pin(_) => IdReading {
                id: pin,
                repaired: true,
            },
            _ => wrong_length(cleaned),
        },
        8 if lost_zeros && has_known_cmnd_prefix(&zero_padded(&cleaned, 9)) => IdReading {
            id: IdNumber::Cmnd9 {
                number: zero_padded(&cleaned, 9),
                known_prefix: true,
            },
            repaired: true,
        },
        _ => wrong_length(cleaned),
    }
}

/// Consistency of a PIN with the record's own sex and birth year: which parts disagree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PinConsistency {
    pub sex_mismatch: bool,
    pub year_mismatch: bool,
}

impl PinConsistency {
    /// Nothing disagrees (an unknown sex or year cannot disagree).
    pub fn is_consistent(&self) -> bool {
        !self.sex_mismatch && !self.year_mismatch
    }
}

/// Compares the sex and birth year encoded in a PIN with the record's. A disagreement means a typing
/// error in the PIN or the record, or a PIN later cancelled and re-issued (NOTES §1.5).
pub fn check_pin(pin: &Pin, sex: Option<Sex>, birth_year: Option<i32>) -> PinConsistency {
    PinConsistency {
        sex_mismatch: sex.is_some_and(|s| s != pin.sex),
        year_mismatch: birth_year.is_some_and(|y| y != pin.birth_year),
    }
}

/// How two ID strings relate, for comparison levels: Exact, OneDigit (one substitution),
/// Transposition (two adjacent digits swapped), TwoDigits, OldVsNew (one side a 9-digit CMND, other a
/// PIN: cannot be compared directly), Different, Missing (either side missing/invalid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdRelation {
    Exact,
    OneDigit,
    Transposition,
    TwoDigits,
    OldVsNew,
    Different,
    Missing,
}

/// Relates two parsed IDs. Typing errors are measured as substitutions only: both numbers have a fixed
/// length, so a dropped or inserted digit already made one side invalid.
pub fn relate_ids(a: &IdNumber, b: &IdNumber) -> IdRelation {
    match (a, b) {
        (IdNumber::Pin(x), IdNumber::Pin(y)) => relate_digits(&x.digits, &y.digits),
        (IdNumber::Cmnd9 { number: x, .. }, IdNumber::Cmnd9 { number: y, .. }) => {
            relate_digits(x, y)
        }
        (IdNumber::Pin(_), IdNumber::Cmnd9 { .. }) | (IdNumber::Cmnd9 { .. }, IdNumber::Pin(_)) => {
            IdRelation::OldVsNew
        }
        _ => IdRelation::Missing,
    }
}

/// How two digit strings of the same kind relate: equal, one substitution, one adjacent transposition,
/// two substitutions, or different (including different lengths).
pub fn relate_digits(a: &str, b: &str) -> IdRelation {
    if a.len() != b.len() {
        return IdRelation::Different;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut first = None;
    let mut second = None;
    for i in 0..a.len() {
        if a[i] != b[i] {
            match (first, second) {
                (None, _) => first = Some(i),
                (Some(_), None) => second = Some(i),
                _ => return IdRelation::Different,
            }
        }
    }
    match (first, second) {
        (None, _) => IdRelation::Exact,
        (Some(_), None) => IdRelation::OneDigit,
        (Some(i), Some(j)) if j == i + 1 && a[i] == b[j] && a[j] == b[i] => {
            IdRelation::Transposition
        }
        _ => IdRelation::TwoDigits,
    }
}

/// Digits of a PIN before its serial: province of birth registration (3), century+sex (1), birth
/// year (2).
pub const PIN_PREFIX_LEN: usize = 6;

/// Whether two 12-digit PINs agree on everything but the serial: the same province of birth
/// registration, century+sex and birth year. A PIN re-issued to the same person keeps this prefix, a
/// stranger's PIN rarely shares it. False unless both are 12 digits.
pub fn same_pin_prefix(a: &str, b: &str) -> bool {
    a.len() == 12
        && b.len() == 12
        && a.as_bytes()[..PIN_PREFIX_LEN] == b.as_bytes()[..PIN_PREFIX_LEN]
}

/// The comparable form of an identifier of any scheme (a passport, a tax code, a foreign or agency
/// number): ASCII letters uppercased and digits, with the separators people type between groups
/// (spaces, `.`, `-`, `/`, `_`) removed: `c 123-456.7` → `C1234567`. `None` for a value that is not
/// an identifier: one holding any other character, one of only zeros (a placeholder), or one longer
/// than [`MAX_IDENTIFIER`] characters. An empty value is `Some("")` (missing, not unread).
pub fn normalise_identifier(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '0'..='9' | 'A'..='Z' => out.push(c),
            'a'..='z' => out.push(c.to_ascii_uppercase()),
            ' ' | '.' | '-' | '/' | '_' | '\t' => {}
            _ => return None,
        }
    }
    let placeholder = !out.is_empty() && out.bytes().all(|b| b == b'0');
    (!placeholder && out.len() <= MAX_IDENTIFIER).then_some(out)
}

/// The longest identifier [`normalise_identifier`] reads.
pub const MAX_IDENTIFIER: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_of_any_scheme() {
        let cases: &[(&str, Option<&str>)] = &[
            ("c 123-456.7", Some("C1234567")),
            ("0101234567-001", Some("0101234567001")),
            ("AB/12_34", Some("AB1234")),
            ("  ", Some("")),
            ("", Some("")),
            ("000-000", None),
            ("N°123", None),
            ("Số 12", None),
            (
                "12345678901234567890123456789012",
                Some("12345678901234567890123456789012"),
            ),
            ("123456789012345678901234567890123", None),
        ];
        for &(raw, want) in cases {
            assert_eq!(normalise_identifier(raw).as_deref(), want, "{raw:?}");
        }
    }

    #[test]
    fn placeholders_are_the_runs_of_the_two_strings_and_repeated_digits() {
        const UP: &str = "01234567890123456789";
        const DOWN: &str = "98765432109876543210";
        let by_search =
            |d: &str| d.bytes().all(|x| x == d.as_bytes()[0]) || UP.contains(d) || DOWN.contains(d);
        let mut candidates: Vec<String> = Vec::new();
        for len in 1..=24 {
            for first in 0..10u8 {
                for step in [0u8, 1, 9, 2] {
                    let run: String = (0..len)
                        .map(|i| char::from(b'0' + (first + step * (i as u8 % 10)) % 10))
                        .collect();
                    candidates.push(run.clone());
                    // One digit off, at the end.
                    let mut off = run.into_bytes();
                    let last = off.len() - 1;
                    off[last] = b'0' + (off[last] - b'0' + 5) % 10;
                    candidates.push(String::from_utf8(off).unwrap());
                }
            }
        }
        candidates.extend(
            ["001150444910", "313334714", "123456789012", "987654321098"].map(String::from),
        );
        for d in &candidates {
            assert_eq!(is_placeholder(d), by_search(d), "{d}");
        }
    }

    fn pin(digits: &str) -> IdNumber {
        parse_id(digits)
    }

    #[test]
    fn century_digits_follow_the_circular() {
        let cases: &[(Sex, i32, Option<u8>)] = &[
            (Sex::Male, 1900, Some(0)),
            (Sex::Female, 1999, Some(1)),
            (Sex::Male, 2000, Some(2)),
            (Sex::Female, 2099, Some(3)),
            (Sex::Male, 2100, Some(4)),
            (Sex::Female, 2399, Some(9)),
            (Sex::Male, 1899, None),
            (Sex::Female, 2400, None),
            (Sex::Male, i32::MIN, None),
            (Sex::Male, i32::MAX, None),
        ];
        for &(sex, year, digit) in cases {
            assert_eq!(century_sex_digit(sex, year), digit, "{sex:?} {year}");
        }
    }

    #[test]
    fn format_and_parse_round_trip_for_every_province_and_century() {
        for p in old_provinces() {
            for (sex, year, serial) in [
                (Sex::Male, 1985, 12_345),
                (Sex::Female, 1999, 999_999),
                (Sex::Male, 2000, 0),
                (Sex::Female, 2024, 700_001),
            ] {
                let s = format_pin(p.pin_code, sex, year, serial);
                assert_eq!(s.len(), 12, "{s}");
                assert!(s.starts_with(&p.pin_prefix()), "{s}");
                let expected = IdNumber::Pin(Pin {
                    digits: s.clone(),
                    province_code: p.pin_code,
                    sex,
                    birth_year: year,
                });
                assert_eq!(parse_id(&s), expected, "{s}");
            }
        }
    }

    #[test]
    fn format_pin_never_fails() {
        let cases: &[(u16, Sex, i32, u32, &str)] = &[
            (1, Sex::Male, 1985, 12_345, "001085012345"),
            (79, Sex::Female, 2003, 1, "079303000001"),
            (1001, Sex::Male, 1985, 1_000_001, "001085000001"),
            (1, Sex::Male, 1850, 0, "001050000000"),
            (1, Sex::Female, -7, 0, "001193000000"),
        ];
        for &(code, sex, year, serial, expected) in cases {
            assert_eq!(format_pin(code, sex, year, serial), expected);
        }
    }

    #[test]
    fn parse_id_cleans_and_classifies() {
        let p = |digits: &str, code: u16, sex: Sex, birth_year: i32| {
            IdNumber::Pin(Pin {
                digits: digits.to_owned(),
                province_code: code,
                sex,
                birth_year,
            })
        };
        let invalid = |cleaned: &str, reason: IdProblem| IdNumber::Invalid {
            cleaned: cleaned.to_owned(),
            reason,
        };
        let cmnd = |number: &str, known_prefix: bool| IdNumber::Cmnd9 {
            number: number.to_owned(),
            known_prefix,
        };
        let cases: Vec<(&str, IdNumber)> = vec![
            ("001085012345", p("001085012345", 1, Sex::Male, 1985)),
            (" 001 085 012 345 ", p("001085012345", 1, Sex::Male, 1985)),
            ("001.085.012.345", p("001085012345", 1, Sex::Male, 1985)),
            ("001-085-012345", p("001085012345", 1, Sex::Male, 1985)),
            ("'079303000001", p("079303000001", 79, Sex::Female, 2003)),
            (
                "０７９３０３０００００１",
                p("079303000001", 79, Sex::Female, 2003),
            ),
            ("096190123456", p("096190123456", 96, Sex::Female, 1990)),
            (
                "001485000001",
                invalid("001485000001", IdProblem::ImpossibleCentury),
            ),
            // Leading zeros lost in a spreadsheet.
            ("1085012345", p("001085012345", 1, Sex::Male, 1985)),
            ("79303000001", p("079303000001", 79, Sex::Female, 2003)),
            ("13579246", cmnd("013579246", true)),
            ("023456789", cmnd("023456789", true)),
            ("271450001", cmnd("271450001", true)),
            ("285123456", cmnd("285123456", true)),
            ("095123456", cmnd("095123456", true)),
            ("991234567", cmnd("991234567", false)),
            ("", IdNumber::Missing),
            ("   ", IdNumber::Missing),
            ("-", IdNumber::Missing),
            ("0", IdNumber::Missing),
            ("000000000000", IdNumber::Missing),
            ("null", IdNumber::Missing),
            ("NULL", IdNumber::Missing),
            ("N/A", IdNumber::Missing),
            ("không có", IdNumber::Missing),
            ("Không Có", IdNumber::Missing),
            ("khong co", IdNumber::Missing),
            ("chưa cấp", IdNumber::Missing),
            ("00108501234a", invalid("00108501234a", IdProblem::NonDigit)),
            ("0010850*****", invalid("0010850*****", IdProblem::NonDigit)),
            (
                "CCCD 001085012345",
                invalid("CCCD001085012345", IdProblem::NonDigit),
            ),
            (
                "0010850123456",
                invalid("0010850123456", IdProblem::WrongLength),
            ),
            (
                "00108501234",
                invalid("00108501234", IdProblem::WrongLength),
            ),
            ("1234567", invalid("1234567", IdProblem::WrongLength)),
            (
                "99085012345",
                invalid("99085012345", IdProblem::WrongLength),
            ),
            (
                "003085012345",
                invalid("003085012345", IdProblem::UnknownProvinceCode),
            ),
            (
                "097085012345",
                invalid("097085012345", IdProblem::UnknownProvinceCode),
            ),
            (
                "100085012345",
                invalid("100085012345", IdProblem::UnknownProvinceCode),
            ),
            (
                "111111111111",
                invalid("111111111111", IdProblem::Placeholder),
            ),
            ("123456789", invalid("123456789", IdProblem::Placeholder)),
            ("987654321", invalid("987654321", IdProblem::Placeholder)),
            (
                "012345678901",
                invalid("012345678901", IdProblem::Placeholder),
            ),
        ];
        for (raw, expected) in cases {
            assert_eq!(parse_id(raw), expected, "{raw:?}");
        }
    }

    #[test]
    fn repairs_are_said_and_can_be_refused() {
        // (raw, repair, digits compared, repaired)
        let cases: &[(&str, bool, Option<&str>, bool)] = &[
            ("001085012345", true, Some("001085012345"), false),
            ("001085012345", false, Some("001085012345"), false),
            ("1085012345", true, Some("001085012345"), true),
            // A 10-digit tax code column read without repair: not a PIN.
            ("1085012345", false, None, false),
            ("79303000001", true, Some("079303000001"), true),
            ("79303000001", false, None, false),
            ("13579246", true, Some("013579246"), true),
            ("13579246", false, None, false),
            ("271450001", false, Some("271450001"), false),
            // 12 digits failing the PIN checks are kept for the typo levels.
            ("029085012345", true, Some("029085012345"), false),
            ("001585012345", false, Some("001585012345"), false),
            // Other invalid values are not.
            ("0010850123456", true, None, false),
            ("00108501234a", true, None, false),
            ("111111111111", true, None, false),
            ("", true, None, false),
        ];
        for &(raw, repair, compared, repaired) in cases {
            let reading = parse_id_with(raw, repair);
            assert_eq!(reading.id.compared_digits(), compared, "{raw} {repair}");
            assert_eq!(reading.repaired, repaired, "{raw} {repair}");
            if repair {
                assert_eq!(reading.id, parse_id(raw), "{raw}");
            }
        }
    }

    #[test]
    fn every_problem_has_a_message() {
        for problem in [
            IdProblem::NonDigit,
            IdProblem::WrongLength,
            IdProblem::UnknownProvinceCode,
            IdProblem::ImpossibleCentury,
            IdProblem::Placeholder,
        ] {
            assert!(!problem.to_string().is_empty());
        }
    }

    #[test]
    fn parse_id_survives_odd_input() {
        for raw in [
            "\u{0}",
            "🙂🙂",
            "٠١٢٣٤٥٦٧٨٩",
            "\u{301}",
            "𝟎𝟎𝟏",
            "-.-.-",
            "1",
            "00000000001",
        ] {
            let _ = parse_id(raw);
        }
    }

    #[test]
    fn check_pin_reports_each_disagreement() {
        let IdNumber::Pin(p) = parse_id("001185012345") else {
            panic!("valid PIN");
        };
        let cases: &[(Option<Sex>, Option<i32>, bool, bool)] = &[
            (Some(Sex::Female), Some(1985), false, false),
            (Some(Sex::Male), Some(1985), true, false),
            (Some(Sex::Female), Some(1986), false, true),
            (Some(Sex::Male), Some(2085), true, true),
            (None, None, false, false),
        ];
        for &(sex, year, sex_mismatch, year_mismatch) in cases {
            let c = check_pin(&p, sex, year);
            assert_eq!(
                c,
                PinConsistency {
                    sex_mismatch,
                    year_mismatch
                },
                "{sex:?} {year:?}"
            );
            assert_eq!(c.is_consistent(), !sex_mismatch && !year_mismatch);
        }
    }

    #[test]
    fn relate_ids_covers_every_level() {
        let cases: &[(&str, &str, IdRelation)] = &[
            ("001085012345", "001 085 012 345", IdRelation::Exact),
            ("001085012345", "001085012346", IdRelation::OneDigit),
            ("001085012345", "001085012354", IdRelation::Transposition),
            ("001085012345", "001085021345", IdRelation::Transposition),
            ("001085012345", "001085012399", IdRelation::TwoDigits),
            ("001085012345", "001085912340", IdRelation::TwoDigits),
            ("001085012345", "079185987654", IdRelation::Different),
            ("271450001", "271450001", IdRelation::Exact),
            ("271450001", "271450002", IdRelation::OneDigit),
            ("271450001", "271540001", IdRelation::Transposition),
            ("271450001", "381450001", IdRelation::TwoDigits),
            ("271450001", "023456780", IdRelation::Different),
            ("001085012345", "271450001", IdRelation::OldVsNew),
            ("271450001", "001085012345", IdRelation::OldVsNew),
            ("001085012345", "", IdRelation::Missing),
            ("", "001085012345", IdRelation::Missing),
            ("003085012345", "003085012345", IdRelation::Missing),
            ("", "", IdRelation::Missing),
        ];
        for &(a, b, expected) in cases {
            assert_eq!(relate_ids(&pin(a), &pin(b)), expected, "{a} vs {b}");
        }
    }

    #[test]
    fn pin_prefixes() {
        let cases: &[(&str, &str, bool)] = &[
            ("001085012345", "001085012345", true),
            ("001085012345", "001085987654", true),
            ("001085012345", "001085012346", true),
            ("001085012345", "002085012345", false),
            ("001085012345", "001185012345", false),
            ("001085012345", "001084012345", false),
            ("001085012345", "079185987654", false),
            ("271450001", "271450002", false),
            ("001085012345", "271450001", false),
            ("001085012345", "", false),
            ("", "", false),
        ];
        for &(a, b, expected) in cases {
            assert_eq!(same_pin_prefix(a, b), expected, "{a} vs {b}");
            assert_eq!(same_pin_prefix(b, a), expected, "{b} vs {a}");
        }
    }

    #[test]
    fn digits_and_issuers() {
        assert_eq!(parse_id("001 085 012 345").digits(), Some("001085012345"));
        assert_eq!(parse_id("271450001").digits(), Some("271450001"));
        assert_eq!(parse_id("").digits(), None);
        let IdNumber::Pin(p) = parse_id("046085012345") else {
            panic!("valid PIN");
        };
        assert_eq!(
            p.province().map(|p| p.name.as_str()),
            Some("Thừa Thiên Huế")
        );

        let issuers: Vec<&str> = cmnd_issuing_provinces("271450001")
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(
            issuers,
            ["Đồng Nai", "Bà Rịa - Vũng Tàu"],
            "NOTES §1.7: the shared 27 range"
        );
        let issuers: Vec<&str> = cmnd_issuing_provinces("285123456")
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(issuers, ["Bình Phước"]);
        assert_eq!(cmnd_issuing_provinces("991234567").count(), 0);
    }
}
