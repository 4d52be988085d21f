//! One column of a sample: how often it is empty, the shapes of its values and how common the
//! commonest are, which of khop's standardisers read them, and the kind of data it most likely holds.
//!
//! Every value is read by each standardiser's own reader (`khop_vn`'s date, ID, name and province
//! parsers, the engine's sex and phone readers, the identifier normaliser). A reader alone does not
//! tell a kind: the name parser reads any word, the phone reader any 9 to 11 digits, the sex reader
//! `0` and `1`. So the kind is decided from evidence that only that kind gives (a known surname first
//! or last, the shape of a date, a `0` and ten digits), checked in an order where a narrow kind comes
//! before a broad one ([`decide`]).
//!
//! **Privacy:** a value's text is kept only once it has occurred [`MIN_SHOWN`] times in the sample,
//! and reported only if it occurs in at least [`shown_threshold`] records; every other value is
//! counted, and described by its shape (`99/99/9999`), never by its content.

use std::hash::{Hash, Hasher};

use khop_vn::admin::resolve_province;
use khop_vn::date::{DateRules, parse_date_with};
use khop_vn::id::{IdNumber, normalise_identifier, parse_id_with};
use khop_vn::name::{is_known_surname, name_key, parse_name};
use khop_vn::shape::value_shape;
use khop_vn::text::fold_diacritics;
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use serde::Serialize;

use crate::scan::Text;
use crate::spec::Standardiser;
use crate::standardise::{normalise_phone, parse_sex};

/// A value's text is kept once it has occurred this many times in the sample...
pub const MIN_SHOWN: u64 = 10;

/// ...and shown only if it occurs in at least this many of `rows` records: [`MIN_SHOWN`], and 1% of
/// the rows. A sex code, a province, a default date typed into thousands of records are shown; a
/// name, a birth date or an ID number, which a few records share at most, never are.
pub fn shown_threshold(rows: u64) -> u64 {
    MIN_SHOWN.max(rows.div_ceil(100))
}

/// What kind of data a column most likely holds, and so how a job should read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Vietnamese full names: `vn_name`.
    Name,
    /// One part of a name (a surname, a given name) in a column of its own: `text`.
    NamePart,
    Date,
    /// 12-digit PINs and 9-digit CMNDs: `vn_id`.
    VnId,
    /// Another identifier (a record number, a tax code, a passport): `id`.
    Identifier,
    Sex,
    /// A province, or an address that ends with one: `vn_province`.
    Province,
    Phone,
    /// Anything else: `text`.
    Text,
    /// Nothing but empty values in the sample.
    Empty,
}

impl Kind {
    /// The standardiser a job reads the kind with; `None` for an empty column.
    pub fn standardiser(self) -> Option<Standardiser> {
        Some(match self {
            Kind::Name => Standardiser::VnName,
            Kind::NamePart | Kind::Text => Standardiser::Text,
            Kind::Date => Standardiser::Date,
            Kind::VnId => Standardiser::VnId,
            Kind::Identifier => Standardiser::Id,
            Kind::Sex => Standardiser::Sex,
            Kind::Province => Standardiser::VnProvince,
            Kind::Phone => Standardiser::Phone,
            Kind::Empty => return None,
        })
    }

    /// The kind in a word or two, as reports print it.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Name => "name",
            Kind::NamePart => "name part",
            Kind::Date => "date",
            Kind::VnId => "PIN/CMND",
            Kind::Identifier => "identifier",
            Kind::Sex => "sex",
            Kind::Province => "province",
            Kind::Phone => "phone",
            Kind::Text => "text",
            Kind::Empty => "empty",
        }
    }

    /// The reader whose unread values are reported for the kind (`text` reads everything).
    fn reader(self) -> Option<Flag> {
        match self {
            Kind::Name => Some(Flag::Name),
            Kind::Date => Some(Flag::Date),
            Kind::VnId => Some(Flag::VnId),
            Kind::Identifier => Some(Flag::Id),
            Kind::Sex => Some(Flag::Sex),
            Kind::Province => Some(Flag::Province),
            Kind::Phone => Some(Flag::Phone),
            Kind::NamePart | Kind::Text | Kind::Empty => None,
        }
    }
}

/// A standardiser's name in a job spec (`vn_name`, `date`, ...).
pub fn standardiser_name(standardiser: Standardiser) -> &'static str {
    match standardiser {
        Standardiser::VnName => "vn_name",
        Standardiser::PersonName => "person_name",
        Standardiser::Date => "date",
        Standardiser::VnId => "vn_id",
        Standardiser::VnProvince => "vn_province",
        Standardiser::Sex => "sex",
        Standardiser::Phone => "phone",
        Standardiser::Text => "text",
        Standardiser::Id => "id",
    }
}

/// What one reading of a value found. The first seven are the standardisers' readers, in the order
/// they are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Flag {
    /// The name parser finds words in it, and it has no digits (which a name standardiser drops).
    Name,
    Date,
    /// A PIN or a CMND (leading zeros restored where that makes one).
    VnId,
    Sex,
    Province,
    Phone,
    /// The identifier normaliser keeps something.
    Id,
    /// Two words or more, a known Vietnamese surname first or last.
    VnName,
    /// One word, a known Vietnamese surname.
    Surname,
    /// Not a bare number, or eight digits (`yyyymmdd`): what a date column's values look like.
    DateShaped,
    /// A PIN or CMND only by restoring leading zeros.
    Repaired,
    /// A CMND.
    Cmnd,
    /// No letters, and a Vietnamese phone number ([`phone_shaped`]).
    PhoneShaped,
    Letters,
    Digits,
    /// One word of letters only.
    Word,
}

const FLAGS: usize = Flag::Word as usize + 1;

/// The standardisers' readers, as reported, with the flag of each.
const READERS: [(Standardiser, Flag); 7] = [
    (Standardiser::VnName, Flag::Name),
    (Standardiser::Date, Flag::Date),
    (Standardiser::VnId, Flag::VnId),
    (Standardiser::Sex, Flag::Sex),
    (Standardiser::VnProvince, Flag::Province),
    (Standardiser::Phone, Flag::Phone),
    (Standardiser::Id, Flag::Id),
];

/// One value as the readers saw it.
#[derive(Clone, Copy, Debug, Default)]
struct Reading {
    flags: u32,
    /// The province's new code, when the province reader read one.
    province: u8,
}

impl Reading {
    fn has(self, flag: Flag) -> bool {
        self.flags & (1 << flag as u32) != 0
    }

    fn set(&mut self, flag: Flag, on: bool) {
        if on {
            self.flags |= 1 << flag as u32;
        }
    }
}

/// How a column's values are read: its dates' rules (their day/month order decided from the
/// column, as a job decides it) and whether ID numbers get lost leading zeros back.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Readers {
    pub dates: DateRules,
    pub id_repair: bool,
}

/// Reads one trimmed, non-empty value with every reader.
fn read(raw: &str, readers: &Readers) -> Reading {
    let mut r = Reading::default();
    let letters = raw.chars().any(char::is_alphabetic);
    let digits = raw.chars().any(|c| c.is_ascii_digit());
    r.set(Flag::Letters, letters);
    r.set(Flag::Digits, digits);
    if letters {
        if let Some(name) = parse_name(raw)
            && !name.given.is_empty()
        {
            r.set(Flag::Name, !digits);
            let several = !name.surname.is_empty();
            r.set(Flag::VnName, several && is_known_surname(&name.surname));
            r.set(
                Flag::Surname,
                !several && name.middle.is_empty() && is_known_surname(&name.given),
            );
        }
        r.set(Flag::Word, raw.chars().all(char::is_alphabetic));
        if let Some(province) = resolve_province(raw) {
            r.set(Flag::Province, true);
            r.province = province.new_code;
        }
    }
    if digits {
        r.set(Flag::Date, parse_date_with(raw, &readers.dates).is_ok());
        let bare = raw.bytes().all(|b| b.is_ascii_digit());
        r.set(Flag::DateShaped, !bare || raw.len() == 8);
        if !letters {
            let id = parse_id_with(raw, readers.id_repair);
            r.set(
                Flag::VnId,
                matches!(id.id, IdNumber::Pin(_) | IdNumber::Cmnd9 { .. }),
            );
            r.set(Flag::Cmnd, matches!(id.id, IdNumber::Cmnd9 { .. }));
            r.set(Flag::Repaired, id.repaired);
        }
        let phone = normalise_phone(raw);
        r.set(Flag::Phone, !phone.is_empty());
        r.set(Flag::PhoneShaped, !letters && phone_shaped(&phone));
    }
    if raw.chars().count() <= 8 {
        r.set(Flag::Sex, parse_sex(raw).is_some());
    }
    r.set(
        Flag::Id,
        normalise_identifier(raw).is_some_and(|id| !id.is_empty()),
    );
    r
}

/// A Vietnamese number as the phone standardiser leaves it: a mobile (`0` and a network's digit, 3,
/// 5, 7, 8 or 9, then eight more) or a landline (`02` and nine more). A 10-digit tax code starts with
/// its province's two digits (`01` for Hà Nội): no network's.
fn phone_shaped(phone: &str) -> bool {
    let b = phone.as_bytes();
    match b.len() {
        10 => b[0] == b'0' && b"35789".contains(&b[1]),
        11 => b.starts_with(b"02"),
        _ => false,
    }
}

/// Readings of distinct values are remembered up to this many per column: a column of a few
/// values (sex, provinces) is read once per value, not once per record.
const MEMO: usize = 4096;

/// Readings remembered by value.
#[derive(Default)]
struct Memo(FxHashMap<Box<str>, Reading>);

impl Memo {
    fn read(&mut self, raw: &str, readers: &Readers) -> Reading {
        if let Some(r) = self.0.get(raw) {
            return *r;
        }
        let r = read(raw, readers);
        if self.0.len() < MEMO {
            self.0.insert(raw.into(), r);
        }
        r
    }
}

/// A distinct value of a column: how often it occurs, where first, and its text once it is
/// frequent enough to be shown.
struct Seen {
    count: u64,
    first: usize,
    text: Option<Box<str>>,
}

/// The counts of one column of a sample (the first pass over its values).
pub(crate) struct Counts {
    rows: u64,
    empty: u64,
    values: FxHashMap<u64, Seen>,
    shapes: FxHashMap<String, u64>,
    flags: [u64; FLAGS],
    /// New province codes read (34 fit).
    provinces: u64,
}

/// 64 bits of a value, to count distinct values without keeping them.
fn fingerprint(value: &str) -> u64 {
    let mut h = FxHasher::default();
    value.hash(&mut h);
    h.finish()
}

impl Counts {
    /// Counts rows `0..rows` of `values`.
    pub fn of(values: &Text, rows: usize, readers: &Readers) -> Counts {
        let mut counts = Counts {
            rows: rows as u64,
            empty: 0,
            values: FxHashMap::default(),
            shapes: FxHashMap::default(),
            flags: [0; FLAGS],
            provinces: 0,
        };
        let mut memo = Memo::default();
        for row in 0..rows {
            let raw = values.get(row).trim();
            if raw.is_empty() {
                counts.empty += 1;
                continue;
            }
            let seen = counts.values.entry(fingerprint(raw)).or_insert(Seen {
                count: 0,
                first: row,
                text: None,
            });
            seen.count += 1;
            if seen.count == MIN_SHOWN {
                seen.text = Some(raw.into());
            }
            *counts.shapes.entry(value_shape(raw)).or_default() += 1;
            let reading = memo.read(raw, readers);
            for (i, n) in counts.flags.iter_mut().enumerate() {
                *n += u64::from(reading.flags & (1 << i) != 0);
            }
            if reading.has(Flag::Province) && reading.province < 64 {
                counts.provinces |= 1 << reading.province;
            }
        }
        counts
    }

    pub fn non_empty(&self) -> u64 {
        self.rows - self.empty
    }

    pub fn distinct(&self) -> u64 {
        self.values.len() as u64
    }

    /// The share of the non-empty values the `vn_id` reader reads, with or without restoring
    /// leading zeros.
    fn vn_id_share(&self, repair: bool) -> f64 {
        let repaired = if repair {
            0
        } else {
            self.flags[Flag::Repaired as usize]
        };
        share(
            self.flags[Flag::VnId as usize].saturating_sub(repaired),
            self.non_empty(),
        )
    }

    /// Whether any value read as a CMND.
    pub fn has_cmnd(&self) -> bool {
        self.flags[Flag::Cmnd as usize] > 0
    }

    /// The evidence [`decide`] weighs.
    pub fn evidence(&self, hints: Hints, id_repair: bool) -> Evidence {
        Evidence {
            non_empty: self.non_empty(),
            distinct: self.distinct(),
            provinces: self.provinces.count_ones() as u64,
            shares: std::array::from_fn(|i| share(self.flags[i], self.non_empty())),
            vn_id: self.vn_id_share(id_repair),
            hints,
        }
    }

    /// The share of each standardiser's reader, in the order of [`READERS`].
    pub fn readers(&self, id_repair: bool) -> Vec<ReaderShare> {
        READERS
            .iter()
            .map(|&(standardiser, flag)| {
                let read = if flag == Flag::VnId {
                    (self.vn_id_share(id_repair) * self.non_empty() as f64).round() as u64
                } else {
                    self.flags[flag as usize]
                };
                ReaderShare {
                    standardiser,
                    read,
                    share: share(read, self.non_empty()),
                }
            })
            .collect()
    }

    /// The most common values, at most `n`, commonest first (ties: first seen first); a value's
    /// text only where it occurs in at least `shown` records.
    pub fn top(&self, n: usize, shown: u64) -> Vec<TopValue> {
        let mut seen: Vec<&Seen> = self.values.values().collect();
        seen.sort_by(|a, b| b.count.cmp(&a.count).then(a.first.cmp(&b.first)));
        seen.into_iter()
            .take(n)
            .map(|s| {
                let text = s.text.as_deref().filter(|_| s.count >= shown);
                TopValue {
                    value: text.map(str::to_owned),
                    count: s.count,
                    share: share(s.count, self.non_empty()),
                }
            })
            .collect()
    }

    /// The commonest shapes, at most `n`, and the count of values of the others.
    pub fn shapes(&self, n: usize) -> (Vec<ShapeCount>, u64) {
        top_shapes(&self.shapes, n, self.non_empty())
    }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The `n` commonest shapes of `shapes` (ties by shape), with their share of `total`, and the count
/// of values of the other shapes.
fn top_shapes(shapes: &FxHashMap<String, u64>, n: usize, total: u64) -> (Vec<ShapeCount>, u64) {
    let mut all: Vec<(&String, &u64)> = shapes.iter().collect();
    all.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let rest = all.iter().skip(n).map(|(_, c)| **c).sum();
    let top = all
        .into_iter()
        .take(n)
        .map(|(shape, &count)| ShapeCount {
            shape: shape.clone(),
            count,
            share: share(count, total),
        })
        .collect();
    (top, rest)
}

/// A standardiser's reader on a column: how many of its non-empty values it reads.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReaderShare {
    pub standardiser: Standardiser,
    pub read: u64,
    pub share: f64,
}

/// One of a column's commonest values.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TopValue {
    /// The value, only where it is frequent enough to be shown (see [`shown_threshold`]).
    pub value: Option<String>,
    pub count: u64,
    /// Of the column's non-empty values.
    pub share: f64,
}

/// Values of one shape.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShapeCount {
    pub shape: String,
    pub count: u64,
    pub share: f64,
}

/// What a column's name suggests, for the cases its values leave open (`1`/`0` as sex, a given
/// name in a column of its own) and to tell a birth date or birthplace from other dates and places.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hints {
    pub sex: bool,
    pub date: bool,
    /// Of birth: `ngay_sinh`, `dob`, `noi_sinh`, `place_of_birth`.
    pub birth: bool,
    /// A name or a part of one: `name`, `ho_ten`, `ho`, `ten`, `given_name`.
    pub name: bool,
    /// A surname: `surname`, `last_name`, `family_name`, `ho`.
    pub surname: bool,
    /// A given name: `given_name`, `first_name`, `ten`.
    pub given: bool,
}

impl Hints {
    /// The hints of a column named `column` (any case, with or without Vietnamese marks).
    pub fn of(column: &str) -> Hints {
        let folded = fold_diacritics(column).to_lowercase();
        let words: Vec<&str> = folded
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let compact: String = words.concat();
        let has = |parts: &[&str]| parts.iter().any(|p| compact.contains(p));
        let word = |ws: &[&str]| words.iter().any(|w| ws.contains(w));
        let surname = has(&["surname", "lastname", "familyname"]) || compact == "ho";
        let given = has(&["given", "firstname", "forename"]) || compact == "ten";
        Hints {
            sex: has(&["sex", "gender", "gioitinh", "phai"]) || word(&["gioi", "gt"]),
            date: has(&["date", "ngay", "dob", "birth", "time"]),
            birth: has(&["birth", "dob", "sinh", "bday"]),
            name: surname
                || given
                || has(&["name", "hoten", "hovaten", "holot", "tendem", "tenlot"])
                || word(&["ho", "ten", "first", "last", "given", "middle"]),
            surname,
            given,
        }
    }
}

/// A column's evidence: shares of its non-empty values.
#[derive(Clone, Debug)]
pub struct Evidence {
    pub non_empty: u64,
    pub distinct: u64,
    /// Distinct provinces read.
    pub provinces: u64,
    shares: [f64; FLAGS],
    /// Read by `vn_id` with the column's decided repair of leading zeros.
    vn_id: f64,
    pub hints: Hints,
}

/// How a text column's values compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextStyle {
    /// A part of a name: term frequencies, exact, then two Jaro-Winkler levels.
    NamePart,
    /// Few distinct values (a state, a category): exact only.
    Category,
    /// Numbers (a postcode, a street number): exact, then one edit.
    Number,
    /// Mostly one word (a suburb, a town): term frequencies, exact, then Jaro-Winkler.
    Words,
    /// Longer text (an address line): exact, then Jaro-Winkler.
    Free,
}

/// Text columns with at most this many distinct values are categories.
const CATEGORY_VALUES: u64 = 50;

impl Evidence {
    /// How the column's values compare as text.
    pub fn text_style(&self, kind: Kind) -> TextStyle {
        if kind == Kind::NamePart {
            TextStyle::NamePart
        } else if self.distinct <= CATEGORY_VALUES {
            TextStyle::Category
        } else if self.share(Flag::Digits) >= 0.9 && self.share(Flag::Letters) < 0.1 {
            TextStyle::Number
        } else if self.share(Flag::Word) >= 0.5 {
            TextStyle::Words
        } else {
            TextStyle::Free
        }
    }

    /// Whether a name-part column holds surnames, as far as its values or its name say.
    pub fn surnames(&self) -> bool {
        self.share(Flag::Surname) >= 0.5 || (self.hints.surname && !self.hints.given)
    }

    fn share(&self, flag: Flag) -> f64 {
        if flag == Flag::VnId {
            self.vn_id
        } else {
            self.shares[flag as usize]
        }
    }
}

/// The kind of a column, and why, in words.
pub fn decide(e: &Evidence) -> (Kind, String) {
    let pct = |flag| format!("{:.1}%", 100.0 * e.share(flag));
    if e.non_empty == 0 {
        return (Kind::Empty, "no value in the sample".into());
    }
    let unique = e.distinct as f64 / e.non_empty as f64;
    if e.share(Flag::Sex) >= 0.9
        && e.distinct <= 10
        && (e.share(Flag::Letters) >= 0.5 || e.hints.sex)
    {
        return (
            Kind::Sex,
            format!(
                "{} read as sex, {} distinct values",
                pct(Flag::Sex),
                e.distinct
            ),
        );
    }
    if e.share(Flag::Date) >= 0.8 && (e.share(Flag::DateShaped) >= 0.5 || e.hints.date) {
        return (Kind::Date, format!("{} read as dates", pct(Flag::Date)));
    }
    if e.share(Flag::VnId) >= 0.8 && unique >= 0.5 {
        return (
            Kind::VnId,
            format!("{} read as PINs or CMNDs", pct(Flag::VnId)),
        );
    }
    if e.share(Flag::PhoneShaped) >= 0.8 {
        return (
            Kind::Phone,
            format!("{} Vietnamese phone numbers", pct(Flag::PhoneShaped)),
        );
    }
    // An address or an agency's name also names a province, but in many ways per province.
    if e.share(Flag::Province) >= 0.8 && e.distinct <= 5 * e.provinces.max(1) {
        return (
            Kind::Province,
            format!(
                "{} read as provinces, {} distinct",
                pct(Flag::Province),
                e.provinces
            ),
        );
    }
    if e.share(Flag::VnName) >= 0.5 {
        return (
            Kind::Name,
            format!(
                "{} Vietnamese names (a known surname first or last)",
                pct(Flag::VnName)
            ),
        );
    }
    if e.share(Flag::Surname) >= 0.5 {
        return (
            Kind::NamePart,
            format!("{} Vietnamese surnames", pct(Flag::Surname)),
        );
    }
    if e.hints.name && e.share(Flag::Word) >= 0.8 {
        return (
            Kind::NamePart,
            format!(
                "{} single words, in a column named as a name",
                pct(Flag::Word)
            ),
        );
    }
    if e.share(Flag::Id) >= 0.9 && e.share(Flag::Digits) >= 0.9 && unique >= 0.5 {
        return (
            Kind::Identifier,
            format!(
                "{} identifiers (digits and letters), {:.1}% distinct",
                pct(Flag::Id),
                100.0 * unique
            ),
        );
    }
    (Kind::Text, "no other kind fits".into())
}

/// The second pass over a column, once its kind is known: the values its reader does not read, by
/// shape, and the fingerprints of the values as the kind compares them (for pairing the columns of
/// two inputs by their values).
pub(crate) struct KindPass {
    pub unread: FxHashMap<String, u64>,
    pub unread_total: u64,
    pub keys: FxHashSet<u64>,
}

/// Fingerprints kept per column to pair columns by their values.
const MAX_KEYS: usize = 200_000;

impl KindPass {
    pub fn of(values: &Text, rows: usize, kind: Kind, readers: &Readers) -> KindPass {
        let mut pass = KindPass {
            unread: FxHashMap::default(),
            unread_total: 0,
            keys: FxHashSet::default(),
        };
        let mut memo = Memo::default();
        for row in 0..rows {
            let raw = values.get(row).trim();
            if raw.is_empty() {
                continue;
            }
            if let Some(flag) = kind.reader()
                && !memo.read(raw, readers).has(flag)
            {
                *pass.unread.entry(value_shape(raw)).or_default() += 1;
                pass.unread_total += 1;
                continue;
            }
            if pass.keys.len() < MAX_KEYS
                && let Some(key) = compared_key(raw, kind, readers)
            {
                pass.keys.insert(fingerprint(&key));
            }
        }
        pass
    }

    /// The commonest shapes of the unread values, at most `n`.
    pub fn unread_shapes(&self, n: usize) -> Vec<ShapeCount> {
        top_shapes(&self.unread, n, self.unread_total).0
    }
}

/// A value as a job of its kind compares it, near enough: equal keys are the same value.
fn compared_key(raw: &str, kind: Kind, readers: &Readers) -> Option<String> {
    match kind {
        Kind::Name => parse_name(raw).map(|n| name_key(&n.full())),
        Kind::Date => parse_date_with(raw, &readers.dates)
            .ok()
            .map(|d| d.to_iso()),
        Kind::VnId => parse_id_with(raw, readers.id_repair)
            .id
            .digits()
            .map(str::to_owned),
        Kind::Identifier => normalise_identifier(raw),
        Kind::Sex => parse_sex(raw).map(|s| format!("{s:?}")),
        Kind::Province => resolve_province(raw).map(|p| p.new_code.to_string()),
        Kind::Phone => Some(normalise_phone(raw)).filter(|p| !p.is_empty()),
        Kind::NamePart | Kind::Text => Some(fold_diacritics(&raw.to_lowercase())),
        Kind::Empty => None,
    }
}

#[cfg(test)]
mod tests;
