//! Birth dates as they appear in Vietnamese records: in many formats, and often known only to the year.
//!
//! Household books often held only the year of birth (NOTES §5.1), and forms fill the unknown parts
//! with `00`, so a date is a [`PartialDate`] rather than a calendar date, and comparison has a level for
//! "compatible as far as both are known".
//!
//! How a column is read is its [`DateRules`]. Day-first is the Vietnamese convention and the default;
//! a column written month-first (software that wrote mm/dd) says so with [`DayMonthOrder::MonthFirst`],
//! and [`day_month_evidence`] tells from a sample which convention a column follows. Either way an
//! impossible reading is repaired (`03/25/1985` under day-first), as the repair is unambiguous.
//! Two-digit years (`15/6/99`, common in exports) are read only when the rules give a reference year:
//! `yy` is then the latest year at or before it ending in `yy`, because a birth year is never in the
//! future. Excel serial day numbers (`32874`, a cell whose date format was lost) are read too.

use std::fmt;

use crate::admin::fold_lower;

/// The earliest birth year accepted by default: older values are typing errors, not people.
pub const EARLIEST_YEAR: i32 = 1880;
/// The latest birth year accepted by default.
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
    /// Not a format this parser knows. Two-digit years are read only under
    /// [`DateRules::reference_year`] (the latest year at or before it ending in those digits) and are
    /// unrecognised otherwise; so are a lone two-digit number, `Jun 05` (day or year?), and a compact
    /// six-digit value that is a valid date both as `ddmmyy` and as `yymmdd`.
    Unrecognised,
    /// A year outside the rules' range ([`EARLIEST_YEAR`]..=[`LATEST_YEAR`] by default), a two-digit
    /// year put before it by the century rule included.
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

/// Which number of `a/b/yyyy` is the day when both could be (both at most 12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DayMonthOrder {
    /// `03/04/1990` is 3 April: the Vietnamese convention.
    DayFirst,
    /// `03/04/1990` is 4 March: software that writes US dates.
    MonthFirst,
}

/// How one column's dates are read: a convention of the system that wrote it, not of each value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateRules {
    /// The earliest year read; earlier ones are [`DateProblem::OutOfRange`]. 1000 is as low as it
    /// is meant to go: a year has four digits, so an earlier one is read only zero-padded (`0999`).
    pub earliest_year: i32,
    /// The latest year read.
    pub latest_year: i32,
    /// Two-digit years: `None` refuses them ([`DateProblem::Unrecognised`]); `Some(r)` reads `yy` as
    /// the latest year <= r ending in yy (r = 2026: 99 -> 1999, 26 -> 2026, 27 -> 1927: a birth year is
    /// never in the future). A year so read that falls before `earliest_year` is OutOfRange.
    pub reference_year: Option<i32>,
    /// How `a/b/yyyy` (and `a/b/yy`, compact `ddmmyyyy`) with both a and b <= 12 is read; an
    /// impossible reading is still repaired (03/25/1985 read month-first under DayFirst; 25/03/1985
    /// read day-first under MonthFirst).
    pub order: DayMonthOrder,
}

impl Default for DateRules {
    /// Four-digit years in [`EARLIEST_YEAR`]..=[`LATEST_YEAR`], day first.
    fn default() -> Self {
        DateRules {
            earliest_year: EARLIEST_YEAR,
            latest_year: LATEST_YEAR,
            reference_year: None,
            order: DayMonthOrder::DayFirst,
        }
    }
}

impl DateRules {
    /// The year written as `value` in `len` digits: four as written, two by the century rule when
    /// the rules allow two-digit years.
    fn year(&self, value: u32, len: usize) -> Result<i64, DateProblem> {
        match (len, self.reference_year) {
            (4, _) => Ok(i64::from(value)),
            (2, Some(reference)) => {
                let reference = i64::from(reference);
                Ok(reference - (reference - i64::from(value)).rem_euclid(100))
            }
            _ => Err(DateProblem::Unrecognised),
        }
    }

    fn in_range(&self, year: i64) -> bool {
        (i64::from(self.earliest_year)..=i64::from(self.latest_year)).contains(&year)
    }

    /// Builds a date from its parts, `0` meaning unknown.
    fn build(&self, year: i64, m: u32, d: u32) -> Result<PartialDate, DateProblem> {
        let year = i32::try_from(year)
            .ok()
            .filter(|y| self.in_range(i64::from(*y)))
            .ok_or(DateProblem::OutOfRange)?;
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

    /// `a/b/year` in the rules' order, unless that reading's month is impossible and the other's
    /// is not.
    fn day_month(&self, a: u32, b: u32, year: i64) -> Result<PartialDate, DateProblem> {
        let swaps = |month: u32, day: u32| month > 12 && month <= 31 && (1..=12).contains(&day);
        let (d, m) = match self.order {
            DayMonthOrder::DayFirst if swaps(b, a) => (b, a),
            DayMonthOrder::DayFirst => (a, b),
            DayMonthOrder::MonthFirst if swaps(a, b) => (a, b),
            DayMonthOrder::MonthFirst => (b, a),
        };
        self.build(year, m, d)
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

/// An Excel serial day number: five digits, not starting with `0`, optionally with a fraction of a
/// day after `.` or `,` (the decimal comma of a Vietnamese locale).
fn excel_serial(s: &str) -> Option<u32> {
    let (digits, rest) = s.as_bytes().split_at_checked(5)?;
    if digits[0] == b'0' || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    match rest {
        [] => {}
        [b'.' | b',', fraction @ ..]
            if !fraction.is_empty() && fraction.iter().all(u8::is_ascii_digit) => {}
        _ => return None,
    }
    Some(digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
}

/// The date of an Excel serial (1900 system): days since 1899-12-30, right from serial 61 on, past
/// the 29 February 1900 that Excel believes in.
fn from_excel_serial(serial: u32) -> PartialDate {
    // Days since 1970-01-01 (serial 25569) to a civil date: Howard Hinnant's `civil_from_days`.
    let z = i64::from(serial) - 25_569 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // A five-digit serial is a year between 1927 and 2173, a month and a day: all fit.
    PartialDate {
        year: year as i32,
        month: Some(month as u8),
        day: Some(day as u8),
    }
}

/// [`parse_date_with`] under the default [`DateRules`]: four-digit years in 1880..=2100, day first.
pub fn parse_date(raw: &str) -> Result<PartialDate, DateProblem> {
    parse_date_with(raw, &DateRules::default())
}

/// Parses ISO "1985-03-07", Vietnamese day-first "07/03/1985", "7/3/1985", "07-03-1985",
/// "07.03.1985", compact "19850307", "ngày 7 tháng 3 năm 1985", year-only "1985", placeholders
/// "00/00/1985" and "00/03/1985" (partial), "03/1985" (month/year). "07/03/1985" is read in the
/// rules' order, day first by default. Years outside the rules' range are OutOfRange.
///
/// Also read: a trailing time of day, full-width digits, compact day-first "07031985" (and "7031985"
/// with its leading zero lost), English month names ("07-Mar-1985", the Oracle export format;
/// "March 7, 1985", "Mar 1985"), "tháng" and its abbreviation "thg" inside other forms ("15 tháng 6,
/// 1990", "tháng 6/1990", "15 thg 6, 2018"), "T6/1990" and "th6/1990" (only as month/year: both also
/// abbreviate thứ, a weekday, which may precede a full date), and an impossible order repaired
/// ("03/25/1985"). A day given without a month ("07/00/1985") is dropped, leaving the year. Excel
/// serials ("32874", "32874.5": days since 1899-12-30) are read when their year is in range.
///
/// Two-digit years, only under [`DateRules::reference_year`]: "15/6/99", "15-06-99", "6/99",
/// "99-06-15" (year first only when the first number cannot be a day), "15-JUN-99" (Oracle's
/// DD-MON-RR), "Jun 15, 99", "Jun 99" (only when the number cannot be a day), "ngày 15 tháng 6 năm
/// 99", and compact "150699" or "990615" when only one of `ddmmyy` and `yymmdd` is a valid date.
pub fn parse_date_with(raw: &str, rules: &DateRules) -> Result<PartialDate, DateProblem> {
    let s = strip_time(raw.trim());
    if let Some(serial) = excel_serial(s) {
        let date = from_excel_serial(serial);
        return if rules.in_range(i64::from(date.year)) {
            Ok(date)
        } else {
            Err(DateProblem::Unrecognised)
        };
    }
    let toks = tokenise(s)?;
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
        return numeric(&toks, rules);
    }
    if words.iter().any(|w| matches!(*w, "thang" | "thg" | "nam")) {
        return labelled(&toks, rules);
    }
    if let [Tok::Word(w), Tok::Num(m, 1 | 2), Tok::Num(y, len)] = toks.as_slice()
        && matches!(w.as_str(), "t" | "th")
    {
        return rules.build(rules.year(*y, *len)?, *m, 0);
    }
    // Leading filler: "sinh ngày 07/03/1985", "ngày 07/03/1985".
    let start = toks
        .iter()
        .take_while(|t| matches!(t, Tok::Word(w) if matches!(w.as_str(), "sinh" | "ngay")))
        .count();
    let toks = &toks[start..];
    if toks.iter().all(|t| matches!(t, Tok::Num(..))) {
        return numeric(toks, rules);
    }
    with_month_name(toks, rules)
}

fn numeric(toks: &[Tok], rules: &DateRules) -> Result<PartialDate, DateProblem> {
    let mut nums = [(0u32, 0usize); 3];
    if toks.len() > nums.len() {
        return Err(DateProblem::Unrecognised);
    }
    for (slot, t) in nums.iter_mut().zip(toks) {
        if let Tok::Num(value, len) = t {
            *slot = (*value, *len);
        }
    }
    match nums[..toks.len()] {
        [(y, 4)] => rules.build(i64::from(y), 0, 0),
        [(v, 8)] => {
            let iso = rules.build(i64::from(v / 10_000), v / 100 % 100, v % 100);
            if iso.is_ok() {
                return iso;
            }
            let dmy = rules.day_month(v / 1_000_000, v / 10_000 % 100, i64::from(v % 10_000));
            if dmy.is_ok() || !rules.in_range(i64::from(v / 10_000)) {
                dmy
            } else {
                iso
            }
        }
        [(v, 7)] => rules.day_month(v / 1_000_000, v / 10_000 % 100, i64::from(v % 10_000)),
        [(v, 6)] => compact_two_digit_year(v, rules),
        [(y, 4), (m, 1 | 2)] | [(m, 1 | 2), (y, 4)] => rules.build(i64::from(y), m, 0),
        [(m, 1 | 2), (y, 2)] if m <= 12 => rules.build(rules.year(y, 2)?, m, 0),
        [(y, 4), (m, 1 | 2), (d, 1 | 2)] => rules.build(i64::from(y), m, d),
        [(y, 2), (m, 1 | 2), (d, 1 | 2)] if y > 31 => rules.build(rules.year(y, 2)?, m, d),
        [(a, 1 | 2), (b, 1 | 2), (y, len)] => rules.day_month(a, b, rules.year(y, len)?),
        _ => Err(DateProblem::Unrecognised),
    }
}

/// `ddmmyy` or `yymmdd`, whichever alone is a valid date.
fn compact_two_digit_year(v: u32, rules: &DateRules) -> Result<PartialDate, DateProblem> {
    let (a, b, c) = (v / 10_000, v / 100 % 100, v % 100);
    let full = |date: Result<PartialDate, DateProblem>| date.ok().filter(PartialDate::is_full);
    let dmy = full(rules.day_month(a, b, rules.year(c, 2)?));
    let ymd = full(rules.build(rules.year(a, 2)?, b, c));
    match (dmy, ymd) {
        (Some(date), None) | (None, Some(date)) => Ok(date),
        _ => Err(DateProblem::Unrecognised),
    }
}

/// `ngày 7 tháng 3 năm 1985`, `tháng 3 năm 1985`, `năm 1985`, `7 tháng 3 năm 1985`, and a year after
/// the month without its label: `15 tháng 6, 1990`, `tháng 6/1990`, `15 thg 6, 2018`.
fn labelled(toks: &[Tok], rules: &DateRules) -> Result<PartialDate, DateProblem> {
    #[derive(Clone, Copy, PartialEq)]
    enum Part {
        Day,
        Month,
        Year,
    }
    let mut parts: [Option<(u32, usize)>; 3] = [None; 3];
    let mut label = None;
    let mut last = None;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Word(w) => {
                let part = match w.as_str() {
                    "sinh" if i == 0 => continue,
                    "ngay" => Part::Day,
                    "thang" | "thg" => Part::Month,
                    "nam" => Part::Year,
                    _ => return Err(DateProblem::Unrecognised),
                };
                if label.replace(part).is_some() {
                    return Err(DateProblem::Unrecognised);
                }
            }
            &Tok::Num(value, len) => {
                let part = match (label.take(), last) {
                    (Some(part), _) => part,
                    (None, None) => Part::Day,
                    (None, Some(Part::Month)) => Part::Year,
                    (None, Some(_)) => return Err(DateProblem::Unrecognised),
                };
                let slot = &mut parts[part as usize];
                if (part != Part::Year && len > 2) || slot.replace((value, len)).is_some() {
                    return Err(DateProblem::Unrecognised);
                }
                last = Some(part);
            }
        }
    }
    let value = |part: Option<(u32, usize)>| part.map_or(0, |(value, _)| value);
    match (label, parts) {
        (None, [d, m, Some((y, len))]) => rules.build(rules.year(y, len)?, value(m), value(d)),
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

/// `07-Mar-1985`, `7 March 1985`, `March 7, 1985`, `Mar 1985`, and with two-digit years `15-JUN-99`,
/// `Jun 15, 99`, `Jun 99` (only when the number cannot be a day: `Jun 05` may be 5 June).
fn with_month_name(toks: &[Tok], rules: &DateRules) -> Result<PartialDate, DateProblem> {
    let month = |w: &str| month_number(w).ok_or(DateProblem::Unrecognised);
    match *toks {
        [Tok::Num(d, 1 | 2), Tok::Word(ref m), Tok::Num(y, len)]
        | [Tok::Word(ref m), Tok::Num(d, 1 | 2), Tok::Num(y, len)] => {
            rules.build(rules.year(y, len)?, month(m)?, d)
        }
        [Tok::Word(ref m), Tok::Num(y, 4)] => rules.build(i64::from(y), month(m)?, 0),
        [Tok::Word(ref m), Tok::Num(y, 2)] if y > 31 => {
            rules.build(rules.year(y, 2)?, month(m)?, 0)
        }
        _ => Err(DateProblem::Unrecognised),
    }
}

/// What one value says of its column's [`DayMonthOrder`]: `Some(DayFirst)` for a numeric
/// `d/m/yyyy` or `d/m/yy` whose first number is 13..=31 and second 1..=12, `Some(MonthFirst)` for the
/// mirror case, `None` for anything else (both at most 12, ISO, month names, unreadable). Cheap: it
/// runs on samples of every date column.
pub fn day_month_evidence(raw: &str) -> Option<DayMonthOrder> {
    let s = strip_time(raw.trim());
    if s.chars().any(char::is_alphabetic) {
        return None;
    }
    match tokenise(s).ok()?.as_slice() {
        [Tok::Num(a, 1 | 2), Tok::Num(b, 1 | 2), Tok::Num(_, 2 | 4)] => match (a, b) {
            (13..=31, 1..=12) => Some(DayMonthOrder::DayFirst),
            (1..=12, 13..=31) => Some(DayMonthOrder::MonthFirst),
            _ => None,
        },
        _ => None,
    }
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
    fn reads_under_rules() {
        use DateProblem::*;
        let default = DateRules::default();
        let two = DateRules {
            reference_year: Some(2026),
            ..default
        };
        let us = DateRules {
            order: DayMonthOrder::MonthFirst,
            ..default
        };
        let us_two = DateRules {
            order: DayMonthOrder::MonthFirst,
            ..two
        };
        let recent_two = DateRules {
            earliest_year: 2000,
            ..two
        };
        let old = DateRules {
            earliest_year: 1000,
            ..default
        };
        let y = |y| Ok(PartialDate::year_only(y));
        let ym = |y, m| Ok(ym(y, m));
        let full = |y, m, d| Ok(full(y, m, d));
        let cases: Vec<(&str, DateRules, Result<PartialDate, DateProblem>)> = vec![
            // Two-digit years, and the century rule at its boundary.
            ("15/6/99", two, full(1999, 6, 15)),
            ("15/06/99", two, full(1999, 6, 15)),
            ("5/6/99", two, full(1999, 6, 5)),
            ("15-06-99", two, full(1999, 6, 15)),
            ("15.06.99", two, full(1999, 6, 15)),
            ("15 06 99", two, full(1999, 6, 15)),
            ("07/03/85 00:00:00", two, full(1985, 3, 7)),
            ("15/6/26", two, full(2026, 6, 15)),
            ("15/6/27", two, full(1927, 6, 15)),
            ("01/01/00", two, full(2000, 1, 1)),
            ("15/6/99", recent_two, Err(OutOfRange)),
            ("15/6/05", recent_two, full(2005, 6, 15)),
            ("31/02/99", two, Err(NoSuchDay)),
            ("13/13/99", two, Err(NoSuchMonth)),
            ("06/15/99", two, full(1999, 6, 15)),
            ("03/04/99", two, full(1999, 4, 3)),
            ("03/04/99", us_two, full(1999, 3, 4)),
            ("15/6/99", default, Err(Unrecognised)),
            ("15/6/9", two, Err(Unrecognised)),
            ("6/99", two, ym(1999, 6)),
            ("06/26", two, ym(2026, 6)),
            ("00/99", two, y(1999)),
            ("15/06", two, Err(Unrecognised)),
            ("6/99", default, Err(Unrecognised)),
            ("99", two, Err(Unrecognised)),
            ("26", two, Err(Unrecognised)),
            ("99-06-15", two, full(1999, 6, 15)),
            ("99-6-5", two, full(1999, 6, 5)),
            ("32-01-15", two, full(1932, 1, 15)),
            ("99-06-15", default, Err(Unrecognised)),
            ("15-JUN-99", two, full(1999, 6, 15)),
            ("15-jun-99", two, full(1999, 6, 15)),
            ("15 Jun 99", two, full(1999, 6, 15)),
            ("Jun 15, 99", two, full(1999, 6, 15)),
            ("June 15 99", two, full(1999, 6, 15)),
            ("15-JUN-27", two, full(1927, 6, 15)),
            ("Jun-99", two, ym(1999, 6)),
            ("Jun 05", two, Err(Unrecognised)),
            ("15-Jun", two, Err(Unrecognised)),
            ("15-JUN-99", default, Err(Unrecognised)),
            ("ngày 15 tháng 6 năm 99", two, full(1999, 6, 15)),
            ("tháng 6/99", two, ym(1999, 6)),
            ("năm 99", two, y(1999)),
            ("năm 9", two, Err(Unrecognised)),
            // Compact six digits: only when one reading alone is a valid date.
            ("150699", two, full(1999, 6, 15)),
            ("990615", two, full(1999, 6, 15)),
            ("070385", two, full(1985, 3, 7)),
            ("310199", two, full(1999, 1, 31)),
            ("310126", two, Err(Unrecognised)),
            ("010203", two, Err(Unrecognised)),
            ("311399", two, Err(Unrecognised)),
            ("000099", two, Err(Unrecognised)),
            ("150699", default, Err(Unrecognised)),
            // Day or month first.
            ("03/04/1990", default, full(1990, 4, 3)),
            ("03/04/1990", us, full(1990, 3, 4)),
            ("25/03/1985", us, full(1985, 3, 25)),
            ("03/25/1985", us, full(1985, 3, 25)),
            ("03041990", us, full(1990, 3, 4)),
            ("3041990", us, full(1990, 3, 4)),
            ("13/13/2000", us, Err(NoSuchMonth)),
            ("1990-03-04", us, full(1990, 3, 4)),
            // Compact eight digits: yyyymmdd when valid, else ddmmyyyy.
            ("20011990", default, full(1990, 1, 20)),
            ("19901301", default, Err(NoSuchMonth)),
            ("14101066", old, full(1066, 10, 14)),
            // Excel serials.
            ("32874", default, full(1990, 1, 1)),
            ("32874.0", default, full(1990, 1, 1)),
            ("32874.5", default, full(1990, 1, 1)),
            ("32874,25", default, full(1990, 1, 1)),
            (" 36526 ", default, full(2000, 1, 1)),
            ("10000", default, full(1927, 5, 18)),
            ("45000", default, full(2023, 3, 15)),
            ("73415", default, full(2100, 12, 31)),
            ("73416", default, Err(Unrecognised)),
            ("99999", default, Err(Unrecognised)),
            ("32874", recent_two, Err(Unrecognised)),
            ("01234", default, Err(Unrecognised)),
            ("32874.", default, Err(Unrecognised)),
            ("32874.5.1", default, Err(Unrecognised)),
            ("32874/5", default, Err(Unrecognised)),
            ("1990", default, y(1990)),
            // Years before 1880 only when the rules allow them.
            ("07/03/1879", default, Err(OutOfRange)),
            ("07/03/1879", old, full(1879, 3, 7)),
            ("1066", default, Err(OutOfRange)),
            ("1066", old, y(1066)),
            ("1066-10-14", old, full(1066, 10, 14)),
            ("14/10/1066", old, full(1066, 10, 14)),
            ("ngày 14 tháng 10 năm 1066", old, full(1066, 10, 14)),
            ("14 Oct 1066", old, full(1066, 10, 14)),
            ("0999", old, Err(OutOfRange)),
            ("999", old, Err(Unrecognised)),
            ("14/10/999", old, Err(Unrecognised)),
            // Vietnamese month words inside other forms.
            ("15 tháng 6 1990", default, full(1990, 6, 15)),
            ("15 tháng 6, 1990", default, full(1990, 6, 15)),
            ("ngày 15 tháng 6/1990", default, full(1990, 6, 15)),
            ("tháng 6/1990", default, ym(1990, 6)),
            ("tháng 06 năm 1990", default, ym(1990, 6)),
            ("15 thg 6, 2018", default, full(2018, 6, 15)),
            ("thg 6/1990", default, ym(1990, 6)),
            ("sinh 7 tháng 3 năm 1985", default, full(1985, 3, 7)),
            ("T6/1990", default, ym(1990, 6)),
            ("t06-1990", default, ym(1990, 6)),
            ("th6/1990", default, ym(1990, 6)),
            ("Th 6 1990", default, ym(1990, 6)),
            ("T6/99", two, ym(1999, 6)),
            ("T13/1990", default, Err(NoSuchMonth)),
            ("T6", default, Err(Unrecognised)),
            ("Th 6, 15/06/2018", two, Err(Unrecognised)),
            ("15 th6 1990", default, Err(Unrecognised)),
            ("15 tháng 6 1990 năm", default, Err(Unrecognised)),
            ("tháng 6 15 1990", two, Err(Unrecognised)),
        ];
        for (raw, rules, expected) in cases {
            assert_eq!(parse_date_with(raw, &rules), expected, "{raw:?} {rules:?}");
        }
    }

    #[test]
    fn finds_a_columns_order() {
        use DayMonthOrder::*;
        let cases: &[(&str, Option<DayMonthOrder>)] = &[
            ("15/06/1999", Some(DayFirst)),
            ("15/6/99", Some(DayFirst)),
            ("31-12-1999", Some(DayFirst)),
            ("15.06.1999 00:00:00", Some(DayFirst)),
            ("06/15/1999", Some(MonthFirst)),
            ("6/15/99", Some(MonthFirst)),
            ("03/04/1990", None),
            ("13/13/1990", None),
            ("32/01/1999", None),
            ("00/15/1999", None),
            ("1999-06-15", None),
            ("99-06-15", None),
            ("15-Jun-1999", None),
            ("ngày 15/06/1999", None),
            ("150699", None),
            ("15/06", None),
            ("15/06/199", None),
            ("", None),
            ("abc", None),
        ];
        for &(raw, expected) in cases {
            assert_eq!(day_month_evidence(raw), expected, "{raw:?}");
            // Where a value gives its order away, both orders read it alike.
            if expected.is_some() {
                let reference_year = Some(2026);
                let by_order = |order| {
                    parse_date_with(
                        raw,
                        &DateRules {
                            reference_year,
                            order,
                            ..DateRules::default()
                        },
                    )
                };
                assert!(by_order(DayFirst).is_ok(), "{raw:?}");
                assert_eq!(by_order(DayFirst), by_order(MonthFirst), "{raw:?}");
            }
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
            "T",
            "T6/",
            "thg",
            ",",
            "99999.",
            "00000",
            "0000000",
            "99/99/99",
            "99 tháng 99 năm 99",
        ] {
            let _ = parse_date(raw);
            let _ = day_month_evidence(raw);
            for reference_year in [Some(i32::MIN), Some(i32::MAX), Some(0)] {
                let rules = DateRules {
                    earliest_year: i32::MIN,
                    latest_year: i32::MAX,
                    reference_year,
                    order: DayMonthOrder::MonthFirst,
                };
                let _ = parse_date_with(raw, &rules);
            }
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
