//! Birth dates as they appear in Vietnamese records: in many formats, and often known only to the year.
//!
//! Household books often held only the year of birth (NOTES §5.1), and forms fill the unknown parts
//! with `00`, so a date is a [`PartialDate`] rather than a calendar date, and comparison has a level for
//! "compatible as far as both are known". Day-first is the Vietnamese convention; the only other
//! reading accepted is month-first when day-first is impossible (`03/25/1985`), because such dates come
//! from software that wrote mm/dd and the repair is unambiguous. Two-digit years are never guessed.

use std::fmt;

use crate::admin::fold_lower;

/// The earliest birth year accepted: older values are typing errors, not people.
pub const EARLIEST_YEAR: i32 = 1880;
/// The latest birth year accepted.
pub const LATEST_YEAR: i32 = 2100;
/// Beyond this many years apart, two birth years carry no sign of a typing or lunar-age error and
/// relate as [`DateRelation::Different`]; it also keeps the number of comparison levels bounded.
pub const MAX_YEARS_APART: u16 = 10;

/// A date that may be known only to the year or year-month.
///
/// A day is only meaningful with a month: the constructors never build a day without a month.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartialDate {
    pub year: i32,
    pub month: Option<u8>,
    pub day: Option<u8>,
}

impl PartialDate {
    /// A complete date, if it exists in the (proleptic Gregorian) calendar.
    pub fn full(year: i32, month: u8, day: u8) -> Option<Self> {
        let last = days_in_month(year, month)?;
        (1..=last).contains(&day).then_some(PartialDate {
            year,
            month: Some(month),
            day: Some(day),
        })
    }

    /// A date known to the month, if the month exists.
    pub fn year_month(year: i32, month: u8) -> Option<Self> {
        (1..=12).contains(&month).then_some(PartialDate {
            year,
            month: Some(month),
            day: None,
        })
    }

    pub fn year_only(year: i32) -> Self {
        PartialDate {
            year,
            month: None,
            day: None,
        }
    }

    pub fn is_full(&self) -> bool {
        self.month.is_some() && self.day.is_some()
    }

    /// `1985-03-07`, `1985-03` or `1985`: ISO 8601 with reduced precision.
    pub fn to_iso(&self) -> String {
        match (self.month, self.day) {
            (Some(m), Some(d)) => format!("{:04}-{m:02}-{d:02}", self.year),
            (Some(m), None) => format!("{:04}-{m:02}", self.year),
            (None, _) => format!("{:04}", self.year),
        }
    }
}

impl fmt::Display for PartialDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso())
    }
}

/// The number of days in a month, or `None` if the month does not exist.
pub fn days_in_month(year: i32, month: u8) -> Option<u8> {
    let leap = year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0);
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => Some(31),
        4 | 6 | 9 | 11 => Some(30),
        2 if leap => Some(29),
        2 => Some(28),
        _ => None,
    }
}

/// Why a date field could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateProblem {
    /// Blank, or a null-like value (`-`, `null`, `00/00/0000`, `không rõ`).
    Empty,
    /// Not a format this parser knows, including two-digit years, which are ambiguous.
    Unrecognised,
    /// A year outside [`EARLIEST_YEAR`]..=[`LATEST_YEAR`].
    OutOfRange,
    /// A month above 12 that cannot be read as a day either (`13/13/2000`).
    NoSuchMonth,
    /// A day that does not exist in its month (`31/02/1990`, `29/02/1999`).
    NoSuchDay,
}

impl fmt::Display for DateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DateProblem::Empty => "empty",
            DateProblem::Unrecognised => "not a recognised date format",
            DateProblem::OutOfRange => "year out of range",
            DateProblem::NoSuchMonth => "no such month",
            DateProblem::NoSuchDay => "no such day in that month",
        })
    }
}

/// Spellings of "no value" in date fields, folded, words joined without spaces.
const NULL_WORDS: &[&str] = &[
    "null", "none", "nil", "nan", "na", "x", "khong", "khongro", "chuaro", "khongco", "chuaco",
    "kr",
];

#[derive(Debug)]
enum Tok {
    /// A run of digits: its value and how many digits it had (`07` is 7, length 2).
    Num(u32, usize),
    /// A run of letters, folded and lowercased.
    Word(String),
}

/// More digits than this in one run is not a date (the longest form is `YYYYMMDD`).
const MAX_NUM_LEN: usize = 8;
/// More tokens than this is not a date (`sinh ngày 7 tháng 3 năm 1985` has 7).
const MAX_TOKENS: usize = 8;

/// Splits into digit runs and letter runs; everything else separates.
fn tokenise(s: &str) -> Result<Vec<Tok>, DateProblem> {
    let mut toks = Vec::with_capacity(4);
    let mut num: Option<(u32, usize)> = None;
    let mut word = String::new();
    let flush_word = |word: &mut String, toks: &mut Vec<Tok>| {
        if !word.is_empty() {
            toks.push(Tok::Word(fold_lower(word)));
            word.clear();
        }
    };
    for c in s.chars() {
        let digit = match c {
            '0'..='9' => Some(u32::from(c) - u32::from('0')),
            '０'..='９' => Some(u32::from(c) - u32::from('０')),
            _ => None,
        };
        if let Some(d) = digit {
            flush_word(&mut word, &mut toks);
            let (value, len) = num.unwrap_or((0, 0));
            if len >= MAX_NUM_LEN {
                return Err(DateProblem::Unrecognised);
            }
            num = Some((value * 10 + d, len + 1));
            continue;
        }
        if let Some((value, len)) = num.take() {
            toks.push(Tok::Num(value, len));
        }
        if c.is_alphabetic() || ('\u{300}'..='\u{36f}').contains(&c) {
            word.push(c);
        } else {
            flush_word(&mut word, &mut toks);
        }
        if toks.len() > MAX_TOKENS {
            return Err(DateProblem::Unrecognised);
        }
    }
    if let Some((value, len)) = num {
        toks.push(Tok::Num(value, len));
    }
    flush_word(&mut word, &mut toks);
    if toks.len() > MAX_TOKENS {
        return Err(DateProblem::Unrecognised);
    }
    Ok(toks)
}

/// Drops a trailing time of day (`1985-03-07T00:00:00`, `07/03/1985 00:00:00 AM`), as written by
/// database and spreadsheet exports.
fn strip_time(s: &str) -> &str {
    let Some(colon) = s.find(':') else {
        return s;
    };
    let head = s[..colon].trim_end_matches(|c: char| c.is_ascii_digit());
    match head.chars().next_back() {
        Some(c) if c.is_whitespace() || c == 'T' || c == 't' => &head[..head.len() - c.len_utf8()],
        _ => s,
    }
}

/// Parses ISO "1985-03-07", Vietnamese day-first "07/03/1985", "7/3/1985", "07-03-1985",
/// "07.03.1985", compact "19850307", "ngày 7 tháng 3 năm 1985", year-only "1985", placeholders
/// "00/00/1985" and "00/03/1985" (partial), "03/1985" (month/year). Day-first is the Vietnamese
/// convention: "07/03/1985" is 7 March. Years outside 1880..=2100 are OutOfRange. Two-digit years are
/// Unrecognised (ambiguous).
///
/// Also read: a trailing time of day, full-width digits, compact day-first "07031985" (and "7031985"
/// with its leading zero lost), English month names ("07-Mar-1985", the Oracle export format), and
/// month-first when day-first is impossible ("03/25/1985"). A day given without a month ("07/00/1985")
/// is dropped, leaving the year.
pub fn parse_date(raw: &str) -> Result<PartialDate, DateProblem> {
    let toks = tokenise(strip_time(raw.trim()))?;
    if toks.is_empty() || toks.iter().all(|t| matches!(t, Tok::Num(0, _))) {
        return Err(DateProblem::Empty);
    }
    let words: Vec<&str> = toks
        .iter()
        .filter_map(|t| match t {
            Tok::Word(w) => Some(w.as_str()),
            Tok::Num(..) => None,
        })
        .collect();
    if words.len() == toks.len() {
        return if NULL_WORDS.contains(&words.concat().as_str()) {
            Err(DateProblem::Empty)
        } else {
            Err(DateProblem::Unrecognised)
        };
    }
    if words.is_empty() {
        return numeric(&toks);
    }
    if words.iter().any(|w| matches!(*w, "thang" | "nam")) {
        return labelled(&toks);
    }
    // Leading filler: "sinh ngày 07/03/1985", "ngày 07/03/1985".
    let start = toks
        .iter()
        .take_while(|t| matches!(t, Tok::Word(w) if matches!(w.as_str(), "sinh" | "ngay")))
        .count();
    let toks = &toks[start..];
    if toks.iter().all(|t| matches!(t, Tok::Num(..))) {
        return numeric(toks);
    }
    with_month_name(toks)
}

fn numeric(toks: &[Tok]) -> Result<PartialDate, DateProblem> {
    let mut nums = [(0u32, 0usize); 3];
    if toks.len() > nums.len() {
        return Err(DateProblem::Unrecognised);
    }
    for (slot, t) in nums.iter_mut().zip(toks) {
        if let Tok::Num(value, len) = t {
            *slot = (*value, *len);
        }
    }
    match &nums[..toks.len()] {
        [(y, 4)] => build(*y, 0, 0),
        [(v, 8)] => {
            let (y, m, d) = (v / 10_000, v / 100 % 100, v % 100);
            if (EARLIEST_YEAR..=LATEST_YEAR).contains(&(y as i32)) {
                build(y, m, d)
            } else {
                day_first(v / 1_000_000, v / 10_000 % 100, v % 10_000)
            }
        }
        [(v, 7)] => day_first(v / 1_000_000, v / 10_000 % 100, v % 10_000),
        [(y, 4), (m, 1 | 2)] => build(*y, *m, 0),
        [(m, 1 | 2), (y, 4)] => build(*y, *m, 0),
        [(y, 4), (m, 1 | 2), (d, 1 | 2)] => build(*y, *m, *d),
        [(d, 1 | 2), (m, 1 | 2), (y, 4)] => day_first(*d, *m, *y),
        _ => Err(DateProblem::Unrecognised),
    }
}

/// `ngày 7 tháng 3 năm 1985`, `tháng 3 năm 1985`, `năm 1985`, `7 tháng 3 năm 1985`.
fn labelled(toks: &[Tok]) -> Result<PartialDate, DateProblem> {
    #[derive(Clone, Copy, PartialEq)]
    enum Part {
        Day,
        Month,
        Year,
    }
    let mut parts: [Option<u32>; 3] = [None; 3];
    let mut label = None;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Word(w) => {
                let part = match w.as_str() {
                    "sinh" if i == 0 => continue,
                    "ngay" => Part::Day,
                    "thang" => Part::Month,
                    "nam" => Part::Year,
                    _ => return Err(DateProblem::Unrecognised),
                };
                if label.replace(part).is_some() {
                    return Err(DateProblem::Unrecognised);
                }
            }
            &Tok::Num(value, len) => {
                let part = match label.take() {
                    Some(part) => part,
                    None if i == 0 => Part::Day,
                    None => return Err(DateProblem::Unrecognised),
                };
                let fits = if part == Part::Year {
                    len == 4
                } else {
                    len <= 2
                };
                let slot = &mut parts[part as usize];
                if !fits || slot.replace(value).is_some() {
                    return Err(DateProblem::Unrecognised);
                }
            }
        }
    }
    match (label, parts) {
        (None, [d, m, Some(y)]) => build(y, m.unwrap_or(0), d.unwrap_or(0)),
        _ => Err(DateProblem::Unrecognised),
    }
}

fn month_number(word: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    if word.len() < 3 {
        return None;
    }
    let i = MONTHS.iter().position(|m| m.starts_with(word))?;
    u32::try_from(i + 1).ok()
}

/// `07-Mar-1985`, `7 March 1985`, `March 7, 1985`, `Mar 1985`.
fn with_month_name(toks: &[Tok]) -> Result<PartialDate, DateProblem> {
    let month = |w: &str| month_number(w).ok_or(DateProblem::Unrecognised);
    match toks {
        [Tok::Num(d, 1 | 2), Tok::Word(m), Tok::Num(y, 4)] => build(*y, month(m)?, *d),
        [Tok::Word(m), Tok::Num(d, 1 | 2), Tok::Num(y, 4)] => build(*y, month(m)?, *d),
        [Tok::Word(m), Tok::Num(y, 4)] => build(*y, month(m)?, 0),
        _ => Err(DateProblem::Unrecognised),
    }
}

/// Day-first, unless the month is impossible and the day is a possible month.
fn day_first(d: u32, m: u32, y: u32) -> Result<PartialDate, DateProblem> {
    if m > 12 && m <= 31 && (1..=12).contains(&d) {
        build(y, d, m)
    } else {
        build(y, m, d)
    }
}

/// Builds a date from its parts, `0` meaning unknown.
fn build(y: u32, m: u32, d: u32) -> Result<PartialDate, DateProblem> {
    let year = i32::try_from(y).map_err(|_| DateProblem::OutOfRange)?;
    if !(EARLIEST_YEAR..=LATEST_YEAR).contains(&year) {
        return Err(DateProblem::OutOfRange);
    }
    if m == 0 {
        return Ok(PartialDate::year_only(year));
    }
    let month = u8::try_from(m)
        .ok()
        .filter(|m| *m <= 12)
        .ok_or(DateProblem::NoSuchMonth)?;
    if d == 0 {
        return PartialDate::year_month(year, month).ok_or(DateProblem::NoSuchMonth);
    }
    let day = u8::try_from(d).map_err(|_| DateProblem::NoSuchDay)?;
    PartialDate::full(year, month, day).ok_or(DateProblem::NoSuchDay)
}

/// How two dates relate, for comparison levels, best first: Exact, DayMonthSwapped (both full, d/m
/// swapped), SameYearMonth, SameYear, WithinYears(n) (|year diff| = n, n>=1), Partial (one side partial
/// and compatible: same year, and month equal where both known), Different, Missing.
///
/// `Exact` needs two full dates: two equal year-only dates agree on far less, so they are `Partial`.
/// `Different` is a year difference above [`MAX_YEARS_APART`]. Missing dates are the caller's `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateRelation {
    Exact,
    DayMonthSwapped,
    Partial,
    SameYearMonth,
    SameYear,
    WithinYears(u16),
    Different,
}

pub fn relate_dates(a: &PartialDate, b: &PartialDate) -> DateRelation {
    let same_year = a.year == b.year;
    if a.is_full() && b.is_full() {
        if a == b {
            return DateRelation::Exact;
        }
        if same_year && a.day == b.month && a.month == b.day {
            return DateRelation::DayMonthSwapped;
        }
    } else if same_year && (a.month.is_none() || b.month.is_none() || a.month == b.month) {
        return DateRelation::Partial;
    }
    if same_year {
        return if a.month.is_some() && a.month == b.month {
            DateRelation::SameYearMonth
        } else {
            DateRelation::SameYear
        };
    }
    match u16::try_from(a.year.abs_diff(b.year)) {
        Ok(n) if n <= MAX_YEARS_APART => DateRelation::WithinYears(n),
        _ => DateRelation::Different,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(y: i32, m: u8, d: u8) -> PartialDate {
        PartialDate::full(y, m, d).expect("valid test date")
    }

    fn ym(y: i32, m: u8) -> PartialDate {
        PartialDate::year_month(y, m).expect("valid test month")
    }

    #[test]
    fn constructors_validate() {
        let cases: &[(i32, u8, u8, bool)] = &[
            (1985, 3, 7, true),
            (2000, 2, 29, true),
            (2024, 2, 29, true),
            (1900, 2, 29, false),
            (1999, 2, 29, false),
            (1990, 2, 31, false),
            (1990, 4, 31, false),
            (1990, 12, 31, true),
            (1990, 0, 1, false),
            (1990, 13, 1, false),
            (1990, 1, 0, false),
        ];
        for &(y, m, d, ok) in cases {
            assert_eq!(PartialDate::full(y, m, d).is_some(), ok, "{y}-{m}-{d}");
        }
        assert!(PartialDate::year_month(1985, 0).is_none());
        assert!(!PartialDate::year_only(1985).is_full());
        assert!(full(1985, 3, 7).is_full());
    }

    #[test]
    fn iso_output() {
        let cases = [
            (full(1985, 3, 7), "1985-03-07"),
            (ym(1985, 3), "1985-03"),
            (PartialDate::year_only(1985), "1985"),
        ];
        for (date, iso) in cases {
            assert_eq!(date.to_iso(), iso);
            assert_eq!(date.to_string(), iso);
            assert_eq!(parse_date(iso), Ok(date), "round trip {iso}");
        }
    }

    #[test]
    fn parses_every_supported_format() {
        let cases: Vec<(&str, PartialDate)> = vec![
            ("1985-03-07", full(1985, 3, 7)),
            ("1985-3-7", full(1985, 3, 7)),
            ("1985/03/07", full(1985, 3, 7)),
            ("1985-03-07T00:00:00", full(1985, 3, 7)),
            ("1985-03-07 00:00:00.000", full(1985, 3, 7)),
            ("07/03/1985", full(1985, 3, 7)),
            ("7/3/1985", full(1985, 3, 7)),
            ("07-03-1985", full(1985, 3, 7)),
            ("07.03.1985", full(1985, 3, 7)),
            ("07 03 1985", full(1985, 3, 7)),
            (" 07/03/1985 ", full(1985, 3, 7)),
            ("'07/03/1985", full(1985, 3, 7)),
            ("07/03/1985 12:00:00 AM", full(1985, 3, 7)),
            ("０７/０３/１９８５", full(1985, 3, 7)),
            ("19850307", full(1985, 3, 7)),
            ("07031985", full(1985, 3, 7)),
            ("7031985", full(1985, 3, 7)),
            ("ngày 7 tháng 3 năm 1985", full(1985, 3, 7)),
            ("Ngày 07 Tháng 03 Năm 1985", full(1985, 3, 7)),
            ("ngay 7 thang 3 nam 1985", full(1985, 3, 7)),
            ("Sinh ngày 7 tháng 3 năm 1985", full(1985, 3, 7)),
            ("7 tháng 3 năm 1985", full(1985, 3, 7)),
            (
                "nga\u{300}y 7 tha\u{301}ng 3 na\u{306}m 1985",
                full(1985, 3, 7),
            ),
            ("tháng 3 năm 1985", ym(1985, 3)),
            ("năm 1985", PartialDate::year_only(1985)),
            ("ngày 07/03/1985", full(1985, 3, 7)),
            ("Sinh ngày: 07/03/1985", full(1985, 3, 7)),
            ("07-Mar-1985", full(1985, 3, 7)),
            ("07-MAR-1985", full(1985, 3, 7)),
            ("7 March 1985", full(1985, 3, 7)),
            ("March 7, 1985", full(1985, 3, 7)),
            ("Sept 7, 1985", full(1985, 9, 7)),
            ("Mar 1985", ym(1985, 3)),
            ("1985", PartialDate::year_only(1985)),
            ("1985.0", PartialDate::year_only(1985)),
            ("00/00/1985", PartialDate::year_only(1985)),
            ("0/0/1985", PartialDate::year_only(1985)),
            ("00/03/1985", ym(1985, 3)),
            ("07/00/1985", PartialDate::year_only(1985)),
            ("1985-00-00", PartialDate::year_only(1985)),
            ("1985-03-00", ym(1985, 3)),
            ("19850000", PartialDate::year_only(1985)),
            ("03/1985", ym(1985, 3)),
            ("3/1985", ym(1985, 3)),
            ("1985-03", ym(1985, 3)),
            ("03/25/1985", full(1985, 3, 25)),
            ("29/02/2000", full(2000, 2, 29)),
            ("29/02/2024", full(2024, 2, 29)),
            ("01/01/1880", full(1880, 1, 1)),
            ("31/12/2100", full(2100, 12, 31)),
        ];
        for (raw, expected) in cases {
            assert_eq!(parse_date(raw), Ok(expected), "{raw:?}");
        }
    }

    #[test]
    fn reports_why_a_date_is_rejected() {
        let cases: &[(&str, DateProblem)] = &[
            ("", DateProblem::Empty),
            ("   ", DateProblem::Empty),
            ("-", DateProblem::Empty),
            ("0", DateProblem::Empty),
            ("00/00/0000", DateProblem::Empty),
            ("0000-00-00", DateProblem::Empty),
            ("null", DateProblem::Empty),
            ("N/A", DateProblem::Empty),
            ("không rõ", DateProblem::Empty),
            ("31/02/1990", DateProblem::NoSuchDay),
            ("29/02/1900", DateProblem::NoSuchDay),
            ("29/02/1999", DateProblem::NoSuchDay),
            ("31/04/1990", DateProblem::NoSuchDay),
            ("32/01/1990", DateProblem::NoSuchDay),
            ("1990-02-30", DateProblem::NoSuchDay),
            ("13/13/2000", DateProblem::NoSuchMonth),
            ("00/13/2000", DateProblem::NoSuchMonth),
            ("1985-13", DateProblem::NoSuchMonth),
            ("ngày 7 tháng 13 năm 1985", DateProblem::NoSuchMonth),
            ("07/03/1879", DateProblem::OutOfRange),
            ("07/03/2101", DateProblem::OutOfRange),
            ("0985", DateProblem::OutOfRange),
            ("12345678", DateProblem::OutOfRange),
            ("07/03/85", DateProblem::Unrecognised),
            ("85", DateProblem::Unrecognised),
            ("07-Mar-85", DateProblem::Unrecognised),
            ("070385", DateProblem::Unrecognised),
            ("07/03", DateProblem::Unrecognised),
            ("007/03/1985", DateProblem::Unrecognised),
            ("07/03/19850", DateProblem::Unrecognised),
            ("1985-03-07-01", DateProblem::Unrecognised),
            ("07/03/1985 (âm lịch)", DateProblem::Unrecognised),
            ("abc", DateProblem::Unrecognised),
            ("tháng 3", DateProblem::Unrecognised),
            ("ngày 7 tháng 3 năm 85", DateProblem::Unrecognised),
            ("năm năm 1985", DateProblem::Unrecognised),
            ("07-Foo-1985", DateProblem::Unrecognised),
            ("123456789012345678901234567890", DateProblem::Unrecognised),
            ("1 2 3 4 5 6 7 8 9 10", DateProblem::Unrecognised),
        ];
        for &(raw, expected) in cases {
            assert_eq!(parse_date(raw), Err(expected), "{raw:?}");
        }
        for problem in [
            DateProblem::Empty,
            DateProblem::Unrecognised,
            DateProblem::OutOfRange,
            DateProblem::NoSuchMonth,
            DateProblem::NoSuchDay,
        ] {
            assert!(!problem.to_string().is_empty());
        }
    }

    #[test]
    fn survives_odd_input() {
        for raw in [
            "\u{0}",
            "::::",
            "T:",
            "🙂",
            "\u{301}",
            "9999999999/99/99",
            ":1985",
            "1985 :",
        ] {
            let _ = parse_date(raw);
        }
    }

    #[test]
    fn relates_dates_at_every_level() {
        let y = PartialDate::year_only;
        let cases: &[(PartialDate, PartialDate, DateRelation)] = &[
            (full(1985, 3, 7), full(1985, 3, 7), DateRelation::Exact),
            (
                full(1985, 3, 7),
                full(1985, 7, 3),
                DateRelation::DayMonthSwapped,
            ),
            (full(1985, 3, 7), y(1985), DateRelation::Partial),
            (y(1985), full(1985, 3, 7), DateRelation::Partial),
            (ym(1985, 3), full(1985, 3, 7), DateRelation::Partial),
            (y(1985), y(1985), DateRelation::Partial),
            (
                full(1985, 3, 7),
                full(1985, 3, 8),
                DateRelation::SameYearMonth,
            ),
            (
                full(1998, 1, 12),
                full(1998, 1, 13),
                DateRelation::SameYearMonth,
            ),
            (full(1985, 3, 7), full(1985, 4, 7), DateRelation::SameYear),
            (ym(1985, 3), full(1985, 4, 7), DateRelation::SameYear),
            (ym(1985, 3), ym(1985, 4), DateRelation::SameYear),
            (
                full(1985, 3, 7),
                full(1986, 3, 7),
                DateRelation::WithinYears(1),
            ),
            (
                full(1985, 3, 7),
                full(1986, 7, 3),
                DateRelation::WithinYears(1),
            ),
            (y(1985), full(1983, 3, 7), DateRelation::WithinYears(2)),
            (y(1980), y(1990), DateRelation::WithinYears(MAX_YEARS_APART)),
            (full(1985, 3, 7), full(1996, 3, 7), DateRelation::Different),
            (y(1900), y(2100), DateRelation::Different),
        ];
        for &(a, b, expected) in cases {
            assert_eq!(relate_dates(&a, &b), expected, "{a} vs {b}");
            assert_eq!(relate_dates(&b, &a), expected, "{b} vs {a}");
        }
        let extreme = PartialDate::year_only(i32::MIN);
        assert_eq!(
            relate_dates(&extreme, &y(i32::MAX)),
            DateRelation::Different
        );
    }
}
