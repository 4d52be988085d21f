//! Vietnamese personal names: splitting a full name into surname, middle name(s) and given name, the
//! blocking key of a name, and the surname list.
//!
//! Order is surname, middle name(s), given name (NOTES §2.1), but records also carry two rotations of
//! it: the surname moved last ("Văn An Nguyễn") and the given name moved first ("An Nguyễn Văn").
//! [`parse_name`] decides between the written order and those two rotations with the surname list
//! `data/surnames.csv` (67 surnames with their population shares) and the given-name list
//! `data/given_names.csv` (175 names; sources of both in `data/SOURCES.md`), compiled in and parsed
//! once. [`name_edits`] compares two whole names in any order, with typos, where parts cannot be
//! trusted.
//!
//! [`name_key`] is the coarse form for blocking: accents folded and the spellings that real records
//! confuse merged (Thủy/Thuỷ/Thuy, Lý/Lí, Vy/Vi, Huỳnh/Hoàng, Võ/Vũ, Đ/D). Huỳnh/Hoàng and Võ/Vũ are
//! regional forms of one surname (NOTES §2.3): in a key they are equal, but two records that differ
//! only there are a weak match, so compare the canonical parts as well when scoring.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use unicode_normalization::char::is_combining_mark;

use crate::text::{canonical_name, fold_diacritics};
use fuzzy::word_edits;

mod fuzzy;
mod parser;

pub use fuzzy::{name_edits, one_edit_apart, words_match_fuzzy};
pub use parser::{KeyedName, NameParser};

/// A personal name split into its parts, in canonical comparison form ([`canonical_name`]: mojibake
/// repaired, NFC, new tone style, lowercase, single spaces), with punctuation and digits removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedName {
    pub surname: String,
    /// Middle words joined by one space; may be empty.
    pub middle: String,
    pub given: String,
    /// True when the words were reordered to put the surname first.
    pub reordered: bool,
}

impl ParsedName {
    /// "surname middle given" with single spaces (empty parts skipped). For Ê Đê names, whose written
    /// order is kept by [`parse_name`], this puts the last word first: "kdăm niê y ngông".
    pub fn full(&self) -> String {
        let mut out =
            String::with_capacity(self.surname.len() + self.middle.len() + self.given.len() + 2);
        for part in [&self.surname, &self.middle, &self.given] {
            if !part.is_empty() {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(part);
            }
        }
        out
    }
}

/// Splits a full name into surname, middle name(s) and given name.
///
/// The input goes through [`canonical_name`] (so NFD, TCVN3/VNI mojibake, capitals, Ð and extra
/// spaces are all fine); then every character that is not a letter or an apostrophe separates words
/// ("Nguyễn-Văn An," has three words), and typographic apostrophes (’ ʼ ‘ ` ´) become `'`.
///
/// Order, decided from the words with the surname list (see [`is_known_surname`]) and the given-name
/// list (`data/given_names.csv`, 175 names). The written order stays unless another is clearly better
/// supported:
/// 1. Ê Đê names, starting with the word `Y` or with `H'` (case-insensitive; also `H' Nghia` and the
///    bare `H Nghia`, both read as `h'nghia`), keep their written order: given = the prefixed name
///    ("y ngông", "h'nghia"), surname = the last remaining word, middle = the words in between.
///    "Y Ngông Niê Kdăm" → given "y ngông", middle "niê", surname "kdăm".
/// 2. One word: given name only.
/// 3. With at least three words, if the last word is "văn" or "thị" (written with their marks:
///    middle names, all but never given names) and the second word is a known surname that is more
///    frequent than the first word as a surname, known or mistyped (see 5), or the first is none:
///    given name first. "Hoàng Nguyễn Văn" → nguyễn / văn / hoàng.
/// 4. A known surname at the start: written order. "Nguyễn Lê Minh Anh" is normal order with the
///    mother's surname Lê as first middle name.
/// 5. A mistyped surname at the start: written order, unless the last word is a known surname, not
///    a listed given name, more frequent than the surname the first word is mistyped from. A word is
///    a mistyped surname when its [`name_key`] or folded form is one Damerau edit from a known
///    surname's, it has at least four letters in key form, and it is neither a known surname nor a
///    listed given name (Thanh, Trung, Trang are names, not typos of Thân, Trương, Trần).
///    "Nguyn Minh Hoàng", "Ngyuễn Thị Lan", "Tarn Minh Hà" keep their order; "Đình Hùng Nguyễn"
///    (Đình is one mark from Đinh, and a middle name) is surname last by 6.
/// 6. Otherwise a known surname at the end, after a listed given name or after a name starting with
///    "văn" or "thị": surname last. "Văn An Nguyễn" → nguyễn / văn / an.
/// 7. Otherwise, with at least three words, a known surname in second position after a listed given
///    name at the start: given name first. "An Nguyễn Văn" → nguyễn / văn / an.
/// 8. Otherwise the written order.
///
/// "Văn" is a listed surname (0.3%) but is overwhelmingly a middle name, so it counts as no surname
/// for these decisions (a name that starts with it and has no other surname keeps its written order,
/// with Văn as surname). A rotation (6, 7) never leaves "văn" or "thị" as the given name.
///
/// Limits, from the lists having 67 surnames and 175 given names: a reordered name whose given name
/// is not listed keeps its written order ("Minh Tú Nguyễn" → minh / tú / nguyễn); a normal-order name
/// with an unlisted surname is rotated when a listed surname comes last after a listed given name
/// ("Khổng Minh Hoàng" → hoàng / khổng / minh), and so is one whose mistyped surname has under four
/// letters ("Bù Minh Hoàng" → hoàng / bù / minh); a surname-last name whose first word is a listed
/// surname keeps its written order ("Lê Minh Anh Nguyễn" → lê / minh anh / nguyễn), and so does one
/// whose first word looks like a mistyped surname and whose last word can be a given name ("Đình
/// Minh Hoàng" → đình / minh / hoàng); without marks "van"/"thi" are not middle-only, so "Ha Nguyen
/// Thi" stays ha / nguyen / thi. `reordered` marks every rotation, so a scorer can try the written
/// order too, and [`name_edits`] compares whole names in any order.
///
/// Returns `Some` with all parts empty for empty or blank input, and `None` when the input has
/// characters but no letters at all ("..", "123").
pub fn parse_name(raw: &str) -> Option<ParsedName> {
    let canon = canonical_name(raw);
    let cleaned = clean_words(&canon);
    if cleaned.is_empty() {
        return raw.trim().is_empty().then(ParsedName::default);
    }
    let words: Vec<&str> = cleaned.split(' ').collect();
    if let Some(parsed) = parse_ede(&words) {
        return Some(parsed);
    }
    if words.len() == 1 {
        return Some(ParsedName {
            given: words[0].to_owned(),
            ..ParsedName::default()
        });
    }
    let (order, surname, middle, given) = arrange(words.len(), |i| WordFacts::of(words[i]));
    Some(ParsedName {
        surname: words[surname].to_owned(),
        middle: join(&words[middle]),
        given: words[given].to_owned(),
        reordered: order != Order::Written,
    })
}

/// Where the surname, the middle words and the given name are among `n >= 2` words, by rules 3 to 8
/// of [`parse_name`], from what `facts(i)` says of word i.
fn arrange(
    n: usize,
    facts: impl Fn(usize) -> WordFacts,
) -> (Order, usize, std::ops::Range<usize>, usize) {
    let last = n - 1;
    // Each word's facts once: with two or three words, these four are two or three words.
    let (first, second) = (facts(0), facts(1));
    let last_word = if last == 1 { second } else { facts(last) };
    let before_last = match last - 1 {
        0 => first,
        1 => second,
        i => facts(i),
    };
    let first_as_surname = first.surname.or(first.typo_of);
    let order = if n >= 3
        && last_word.middle_only
        && second
            .surname
            .is_some_and(|s| first_as_surname.is_none_or(|f| f < s))
    {
        Order::GivenFirst
    } else if first.surname.is_some() {
        Order::Written
    } else if let Some(typo) = first.typo_of
        && (last_word.given || last_word.surname.is_none_or(|s| s <= typo))
    {
        Order::Written
    } else if last_word.surname.is_some()
        && !before_last.middle_only
        && (before_last.given || first.middle_only)
    {
        Order::SurnameLast
    } else if n >= 3 && second.surname.is_some() && first.given && !first.middle_only {
        Order::GivenFirst
    } else {
        Order::Written
    };
    match order {
        Order::Written => (order, 0, 1..last, last),
        Order::SurnameLast => (order, last, 0..last - 1, last - 1),
        Order::GivenFirst => (order, 1, 2..n, 0),
    }
}

/// The blocking key of a name part or a whole name: [`canonical_name`], then [`fold_diacritics`],
/// then the merges that real records confuse:
/// - `y` → `i` everywhere except as the first letter of a word (Lý/Lí → "li", Vy/Vi → "vi",
///   Thủy/Thuy → "thui", Nguyễn → "nguien"; Yến stays "yen");
/// - the whole words "huynh" → "hoang" and "vo" → "vu" (regional forms of one surname, NOTES §2.3);
/// - đ, Đ, Ð, ð → d;
/// - only ASCII lowercase letters and single spaces are kept: apostrophes, soft hyphens and letters
///   with no ASCII form are dropped inside a word ("H'Nghia" → "hnghia"), and every other character
///   (spaces, punctuation, digits) separates words ("Nguyễn-Văn" → "nguien van").
///
/// Deterministic and idempotent: `name_key(&name_key(x)) == name_key(x)`. Different names can share a
/// key (Hùng and Hưng are both "hung"); that is what a blocking key is for.
pub fn name_key(part: &str) -> String {
    if part.is_ascii() {
        // Nothing to repair or fold: case, spaces and the merges only (the common case).
        key_of_folded(part)
    } else {
        key_of_folded(&fold_diacritics(&canonical_name(part)))
    }
}

/// Relative frequency (a fraction, not a percent) of a surname in the national population, if it is in
/// the list: `"nguyễn"` or `"nguyen"` → `Some(0.384)`.
///
/// Input with diacritics is matched exactly after [`canonical_name`] (any case, NFC or NFD, old or new
/// tone style), so "Nguyên" (a given name) is not Nguyễn and "hoàng" is Hoàng alone (0.036). ASCII
/// input is read as folded or [`name_key`] form and gets the summed share of every listed surname with
/// that key: "hoang" and "huynh" are Hoàng + Huỳnh (0.051), "vu" and "vo" Vũ + Võ (0.039), "vi" and
/// "vy" Vi + Vy. The shares mix a national count with regional samples (see `data/SOURCES.md`): use
/// them as relative weights.
pub fn surname_frequency(surname: &str) -> Option<f64> {
    SURNAMES.share(surname)
}

/// Whether `word` is in the surname list; canonical, any-case, or folded/[`name_key`] form, as for
/// [`surname_frequency`].
pub fn is_known_surname(word: &str) -> bool {
    SURNAMES.share(word).is_some()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    Written,
    SurnameLast,
    GivenFirst,
}

/// A list of names, keyed two ways. Shares are fractions.
struct NameTable {
    /// Canonical form ("nguyễn") → share of that name.
    canonical: HashMap<String, f64>,
    /// Folded ("nguyen", "huynh") and key ("nguien", "hoang") forms → summed share of all names with
    /// that key.
    ascii: HashMap<String, f64>,
}

impl NameTable {
    /// From a compiled-in CSV of `name,percent` rows under a header.
    fn parse(csv: &str) -> NameTable {
        let rows: Vec<(String, f64)> = csv
            .lines()
            .skip(1)
            .filter_map(|line| {
                let (name, percent) = line.split_once(',')?;
                // A malformed row is a defect of the embedded file, caught by the tests; never panic
                // here.
                let percent: f64 = percent.trim().parse().ok()?;
                Some((canonical_name(name), percent / 100.0))
            })
            .filter(|(name, _)| !name.is_empty())
            .collect();
        let mut by_key: HashMap<String, f64> = HashMap::new();
        for (name, share) in &rows {
            *by_key.entry(name_key(name)).or_default() += share;
        }
        let mut ascii = by_key.clone();
        for (name, _) in &rows {
            let folded = fold_diacritics(name);
            if let Some(&share) = by_key.get(&name_key(name)) {
                ascii.insert(folded, share);
            }
        }
        NameTable {
            canonical: rows.into_iter().collect(),
            ascii,
        }
    }

    /// The share of `word` in any form: canonical, any case, or folded/[`name_key`] (see
    /// [`surname_frequency`]).
    fn share(&self, word: &str) -> Option<f64> {
        if word.is_ascii() {
            if let Some(&share) = self.ascii.get(word) {
                return Some(share);
            }
            let lower = word.trim().to_ascii_lowercase();
            return self.ascii.get(lower.as_str()).copied();
        }
        if let Some(&share) = self.canonical.get(word) {
            return Some(share);
        }
        let canon = canonical_name(word);
        if canon.is_ascii() {
            self.ascii.get(canon.as_str()).copied()
        } else {
            self.canonical.get(canon.as_str()).copied()
        }
    }

    /// The share of a word already in canonical form.
    fn share_of_canonical(&self, word: &str) -> Option<f64> {
        if word.is_ascii() {
            self.ascii.get(word).copied()
        } else {
            self.canonical.get(word).copied()
        }
    }
}

static SURNAMES: LazyLock<NameTable> =
    LazyLock::new(|| NameTable::parse(include_str!("../data/surnames.csv")));

/// Given names, only to tell whether a word can be the given name of a reordered name.
static GIVEN_NAMES: LazyLock<NameTable> =
    LazyLock::new(|| NameTable::parse(include_str!("../data/given_names.csv")));

/// The share of a canonical word as a surname for the order decision: `None` when unknown, and for
/// "văn"/"van", which is listed but is nearly always a middle name.
fn order_share(word: &str) -> Option<f64> {
    if word == "văn" || word == "van" {
        return None;
    }
    SURNAMES.share_of_canonical(word)
}

/// What the order decision ([`arrange`]) knows of one canonical word.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct WordFacts {
    /// [`order_share`]: its share as a listed surname.
    surname: Option<f64>,
    /// [`typo_share`]: the share of the listed surname it is one typo from.
    typo_of: Option<f64>,
    /// A listed given name.
    given: bool,
    /// [`is_middle_only`].
    middle_only: bool,
}

impl WordFacts {
    fn of(word: &str) -> WordFacts {
        let surname = order_share(word);
        let given = GIVEN_NAMES.share_of_canonical(word).is_some();
        let middle_only = is_middle_only(word);
        // Most words of a name are listed, and need no key.
        let listed = surname.is_some() || given || middle_only;
        WordFacts {
            surname,
            typo_of: if listed { None } else { typo_share(word) },
            given,
            middle_only,
        }
    }
}

/// Words under this many letters in key form are one edit from too many names ("lan" from La and
/// Lang, "tam" from Lâm) to be taken for a mistyped surname.
const MIN_TYPO_LETTERS: usize = 4;

/// The share of the listed surname (the most frequent, if several) that a canonical word, neither a
/// listed surname nor a listed given name nor middle-only ([`WordFacts::of`] asks only then), is one
/// Damerau edit from, in key or folded form: "nguyn", "ngyuễn" (Nguyễn), "tarn" (Trần). Given names
/// one edit from a surname ("thanh" from Thân, "trung" from Trương, "trang" from Trần) are names,
/// not typos.
fn typo_share(word: &str) -> Option<f64> {
    let key = name_key(word);
    if key.len() < MIN_TYPO_LETTERS {
        return None;
    }
    let folded = fold_diacritics(word);
    SURNAMES
        .ascii
        .iter()
        .filter(|(surname, _)| surname.as_str() != "van")
        .filter(|(surname, _)| {
            let surname = surname.as_bytes();
            word_edits(key.as_bytes(), surname, 1).is_some()
                || word_edits(folded.as_bytes(), surname, 1).is_some()
        })
        .map(|(_, &share)| share)
        .max_by(f64::total_cmp)
}

/// A canonical word that is only ever a middle name: "văn", "thị". Without marks ("van", "thi") it
/// could be the given names Vân or Thi, so those do not count.
fn is_middle_only(word: &str) -> bool {
    word == "văn" || word == "thị"
}

/// Whether a name whose first canonical word is `first` may be in Ê Đê order ([`parse_ede`]).
fn is_ede_prefix(first: &str) -> bool {
    matches!(first, "y" | "h'" | "h") || (first.len() > 2 && first.starts_with("h'"))
}

/// Ê Đê order (NOTES §2.1): the name starts with the sex prefix `Y` (male) or `H'` (female).
fn parse_ede(words: &[&str]) -> Option<ParsedName> {
    let first = words[0];
    if !is_ede_prefix(first) {
        return None;
    }
    let (given, rest) = if first == "y" {
        match words.get(1) {
            Some(next) => (format!("y {next}"), &words[2..]),
            None => return None,
        }
    } else if first == "h'" || first == "h" {
        // "H' Nghia" and "H Nghia" (apostrophe lost) are read as "H'Nghia".
        match words.get(1) {
            Some(next) => (format!("h'{next}"), &words[2..]),
            None => return None,
        }
    } else {
        (first.to_owned(), &words[1..])
    };
    let (surname, middle) = match rest.split_last() {
        Some((last, middle)) => ((*last).to_owned(), join(middle)),
        None => (String::new(), String::new()),
    };
    Some(ParsedName {
        surname,
        middle,
        given,
        reordered: false,
    })
}

fn join(words: &[&str]) -> String {
    let mut out = String::with_capacity(words.iter().map(|w| w.len() + 1).sum());
    for word in words {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Apostrophes as typed or typeset: kept inside a word as `'`.
fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '’' | '‘' | 'ʼ' | '`' | '´' | 'ʻ')
}

/// Invisible format characters that can sit inside a word (soft hyphen — also TCVN3 ư left
/// unrepaired —, zero-width joiners, BOM, word joiner): dropped without splitting the word.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}'
    )
}

/// The words of a canonical name, letters and inner apostrophes only, joined by single spaces.
/// Borrows when there is nothing to remove (the common case).
fn clean_words(canon: &str) -> Cow<'_, str> {
    if canon.chars().all(|c| c == ' ' || c.is_alphabetic()) {
        // canonical_name already collapsed and trimmed the spaces.
        return Cow::Borrowed(canon);
    }
    let mut out = String::with_capacity(canon.len());
    // Byte index in `out` where the current word starts, if one is open.
    let mut word: Option<usize> = None;
    for c in canon.chars() {
        if c.is_alphabetic() || (word.is_some() && is_combining_mark(c)) {
            if word.is_none() {
                if !out.is_empty() {
                    out.push(' ');
                }
                word = Some(out.len());
            }
            out.push(c);
        } else if is_apostrophe(c) {
            // Kept after a letter, once: "h'nghia"; a leading apostrophe is dropped.
            if word.is_some() && !out.ends_with('\'') {
                out.push('\'');
            }
        } else if !is_invisible(c)
            && let Some(start) = word.take()
        {
            // Anything else ends the word; invisible format characters are dropped.
            end_word(&mut out, start);
        }
    }
    if let Some(start) = word {
        end_word(&mut out, start);
    }
    Cow::Owned(out)
}

/// Drops trailing apostrophes of the word starting at `start`, except the Ê Đê prefix "h'".
fn end_word(out: &mut String, start: usize) {
    if &out[start..] != "h'" {
        while out.len() > start && out.ends_with('\'') {
            out.pop();
        }
    }
}

/// [`name_key`] after canonicalisation and folding: lowercase ASCII letters and single spaces, with the
/// y → i and whole-word merges.
fn key_of_folded(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    // Byte index in `out` where the current word starts, if one is open.
    let mut word: Option<usize> = None;
    for c in s.chars() {
        if c.is_ascii_alphabetic() {
            let l = c.to_ascii_lowercase();
            if word.is_none() {
                if !out.is_empty() {
                    out.push(' ');
                }
                word = Some(out.len());
                out.push(l);
            } else {
                out.push(if l == 'y' { 'i' } else { l });
            }
        } else if is_apostrophe(c) || is_invisible(c) || is_combining_mark(c) || c.is_alphabetic() {
            // Dropped without splitting the word (non-ASCII letters have no ASCII form here).
        } else if let Some(start) = word.take() {
            merge_word(&mut out, start);
        }
    }
    if let Some(start) = word {
        merge_word(&mut out, start);
    }
    out
}

/// The whole-word merges of [`name_key`], applied to the last word of `out` (after y → i).
fn merge_word(out: &mut String, start: usize) {
    let merged = match &out[start..] {
        "huinh" => "hoang",
        "vo" => "vu",
        _ => return,
    };
    out.truncate(start);
    out.push_str(merged);
}

/// Words before a name that are not the name.
const TITLES: &[&str] = &[
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "madam", "ông", "bà", "anh", "chị",
];
/// Words after a name that are not the name.
const SUFFIXES: &[&str] = &["jr", "sr", "ii", "iii", "iv"];

/// A name of any language as its parts and their keys, in [`ParsedName`] order: canonical surname,
/// middle and given name, then the three keys (accents folded, lowercase, letters and digits only:
/// `O'Brien` → `obrien`). `Smith, John A.` is read surname first; otherwise the first word is the
/// given name, the last the surname, the words between the middle name (`Mary Ann van der Berg`:
/// given `mary`, middle `ann van der`, surname `berg`). A single word is a given name. Titles
/// (`Mr`, `Dr`, `Ông`…) and suffixes (`Jr`, `III`…) are left out. `None` when no word is left.
pub fn parse_person_name(raw: &str) -> Option<[String; 6]> {
    let canonical = canonical_name(raw);
    let (before, after) = match canonical.split_once(',') {
        Some((surname, rest)) => (Some(surname), rest),
        None => (None, canonical.as_str()),
    };
    let clean = |w: &str| -> String { w.trim_matches(|c: char| !c.is_alphanumeric()).to_owned() };
    let words = |text: &str| -> Vec<String> {
        text.split_whitespace()
            .map(clean)
            .filter(|w| !w.is_empty())
            .collect()
    };
    let mut rest = words(after);
    while rest.len() > 1 && TITLES.contains(&rest[0].as_str()) {
        rest.remove(0);
    }
    while rest.len() > 1 && rest.last().is_some_and(|w| SUFFIXES.contains(&w.as_str())) {
        rest.pop();
    }
    let (surname, given, middle) = match before.map(words) {
        Some(surname) if !surname.is_empty() && !rest.is_empty() => {
            let given = rest.remove(0);
            (surname.join(" "), given, rest.join(" "))
        }
        Some(surname) if !surname.is_empty() => (String::new(), surname.join(" "), String::new()),
        _ => match rest.len() {
            0 => return None,
            1 => (String::new(), rest.remove(0), String::new()),
            n => {
                let surname = rest.pop().unwrap_or_default();
                let given = rest.remove(0);
                debug_assert_eq!(rest.len(), n - 2);
                (surname, given, rest.join(" "))
            }
        },
    };
    let key = |part: &str| -> String {
        fold_diacritics(part)
            .to_lowercase()
            .split_whitespace()
            .map(|w| {
                w.chars()
                    .filter(|c| c.is_alphanumeric())
                    .collect::<String>()
            })
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let keys = [key(&surname), key(&middle), key(&given)];
    let [sk, mk, gk] = keys;
    Some([surname, middle, given, sk, mk, gk])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_any_language() {
        // raw -> (surname, middle, given, surname key, given key)
        type Read<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);
        let cases: &[(&str, Option<Read>)] = &[
            ("John Smith", Some(("smith", "", "john", "smith", "john"))),
            (
                "Smith, John A.",
                Some(("smith", "a", "john", "smith", "john")),
            ),
            (
                "  MARY  ann   O'Brien ",
                Some(("o'brien", "ann", "mary", "obrien", "mary")),
            ),
            (
                "Dr. José García Jr.",
                Some(("garcía", "", "josé", "garcia", "jose")),
            ),
            (
                "Mary Ann van der Berg",
                Some(("berg", "ann van der", "mary", "berg", "mary")),
            ),
            ("Zoë", Some(("", "", "zoë", "", "zoe"))),
            ("Smith,", Some(("", "", "smith", "", "smith"))),
            (
                "Anne-Marie Dupont",
                Some(("dupont", "", "anne-marie", "dupont", "annemarie")),
            ),
            (" , ", None),
            ("", None),
            ("Mr", Some(("", "", "mr", "", "mr"))),
        ];
        for &(raw, want) in cases {
            let got = parse_person_name(raw);
            let got = got.as_ref().map(|p| {
                (
                    p[0].as_str(),
                    p[1].as_str(),
                    p[2].as_str(),
                    p[3].as_str(),
                    p[5].as_str(),
                )
            });
            assert_eq!(got, want, "{raw:?}");
        }
    }
    use crate::text::{nfd, to_tcvn3_mojibake, to_vni_mojibake};

    /// (surname, middle, given, reordered)
    type Parts = (&'static str, &'static str, &'static str, bool);

    fn parts(raw: &str) -> Option<(String, String, String, bool)> {
        parse_name(raw).map(|p| (p.surname, p.middle, p.given, p.reordered))
    }

    fn check(cases: &[(&str, Option<Parts>)]) {
        for (raw, expected) in cases {
            let expected =
                expected.map(|(s, m, g, r)| (s.to_owned(), m.to_owned(), g.to_owned(), r));
            assert_eq!(parts(raw), expected, "{raw:?}");
        }
    }

    #[test]
    fn normal_order_names() {
        check(&[
            ("Lê Anh", Some(("lê", "", "anh", false))),
            ("Nguyễn Văn An", Some(("nguyễn", "văn", "an", false))),
            ("Trần Thị Thuỷ", Some(("trần", "thị", "thuỷ", false))),
            ("Trần Thị Thủy", Some(("trần", "thị", "thuỷ", false))),
            ("Phạm Đức Mạnh", Some(("phạm", "đức", "mạnh", false))),
            ("Huỳnh Quốc Bảo", Some(("huỳnh", "quốc", "bảo", false))),
            ("Võ Thị Mỹ Duyên", Some(("võ", "thị mỹ", "duyên", false))),
            (
                "Nguyễn Thị Ngọc Minh Anh",
                Some(("nguyễn", "thị ngọc minh", "anh", false)),
            ),
            // A surname first wins, even when the last word is a surname too (Hoàng is a given name).
            ("Trần Minh Hoàng", Some(("trần", "minh", "hoàng", false))),
            ("Nguyễn Thị Vân", Some(("nguyễn", "thị", "vân", false))),
            // The mother's surname as first middle name.
            (
                "Nguyễn Lê Minh Anh",
                Some(("nguyễn", "lê minh", "anh", false)),
            ),
            (
                "Lê Nguyễn Bảo Ngọc",
                Some(("lê", "nguyễn bảo", "ngọc", false)),
            ),
            ("Hoàng Nguyễn Vân", Some(("hoàng", "nguyễn", "vân", false))),
            // Unknown surname, nothing known elsewhere: written order.
            ("Khổng Minh Tuấn", Some(("khổng", "minh", "tuấn", false))),
            (
                "Tôn Nữ Thị Ngọc Anh",
                Some(("tôn", "nữ thị ngọc", "anh", false)),
            ),
            // Văn as a real surname.
            ("Văn Thị Hoa", Some(("văn", "thị", "hoa", false))),
            // Single word, empty, blank, no letters.
            ("An", Some(("", "", "an", false))),
            ("NGUYỄN", Some(("", "", "nguyễn", false))),
            ("", Some(("", "", "", false))),
            ("   \t ", Some(("", "", "", false))),
            ("...", None),
            (" - , 123 ", None),
            ("'", None),
        ]);
    }

    #[test]
    fn surface_forms() {
        check(&[
            ("NGUYỄN VĂN HÙNG", Some(("nguyễn", "văn", "hùng", false))),
            (
                "  nguyễn   văn\thùng  ",
                Some(("nguyễn", "văn", "hùng", false)),
            ),
            ("Nguyen Van Hung", Some(("nguyen", "van", "hung", false))),
            ("NGUYEN THI THUY", Some(("nguyen", "thi", "thuy", false))),
            ("Đặng Văn Đức", Some(("đặng", "văn", "đức", false))),
            ("Ðặng Văn Ðức", Some(("đặng", "văn", "đức", false))),
            ("ðặng văn ðức", Some(("đặng", "văn", "đức", false))),
            ("Dang Van Duc", Some(("dang", "van", "duc", false))),
            ("Nguyễn-Văn An,", Some(("nguyễn", "văn", "an", false))),
            ("Nguyễn Văn A.", Some(("nguyễn", "văn", "a", false))),
            (
                "Lê\u{00A0}Thị\u{200B}Lan",
                Some(("lê", "thị", "lan", false)),
            ),
        ]);
        // NFD and legacy-encoding mojibake come back to the canonical parts.
        let names: &[(&str, Parts)] = &[
            ("Nguyễn Văn Hùng", ("nguyễn", "văn", "hùng", false)),
            ("Trần Thị Thuỷ", ("trần", "thị", "thuỷ", false)),
            ("Phạm Đức Mạnh", ("phạm", "đức", "mạnh", false)),
            ("Lê Thị Hương", ("lê", "thị", "hương", false)),
            ("Huỳnh Quốc Bảo", ("huỳnh", "quốc", "bảo", false)),
            ("Võ Thị Mỹ Duyên", ("võ", "thị mỹ", "duyên", false)),
            ("Đỗ Thị Ngọc Ánh", ("đỗ", "thị ngọc", "ánh", false)),
            ("Văn An Nguyễn", ("nguyễn", "văn", "an", true)),
            ("Y Ngông Niê Kdăm", ("kdăm", "niê", "y ngông", false)),
        ];
        for (name, expected) in names {
            let (s, m, g, r) = *expected;
            let expected = Some((s.to_owned(), m.to_owned(), g.to_owned(), r));
            for form in [
                nfd(name),
                name.to_uppercase(),
                to_tcvn3_mojibake(name),
                to_vni_mojibake(name),
                to_tcvn3_mojibake(&name.to_uppercase()),
                to_vni_mojibake(&name.to_uppercase()),
            ] {
                assert_ne!(&form, name);
                assert_eq!(parts(&form), expected, "{name} as {form:?}");
            }
        }
    }

    #[test]
    fn order_variants() {
        check(&[
            // Three words: surname last, given first.
            ("Văn An Nguyễn", Some(("nguyễn", "văn", "an", true))),
            ("An Nguyễn Văn", Some(("nguyễn", "văn", "an", true))),
            ("Van An Nguyen", Some(("nguyen", "van", "an", true))),
            ("An Nguyen Van", Some(("nguyen", "van", "an", true))),
            ("Thị Lan Trần", Some(("trần", "thị", "lan", true))),
            ("Lan Trần Thị", Some(("trần", "thị", "lan", true))),
            ("Minh Tuấn Phạm", Some(("phạm", "minh", "tuấn", true))),
            ("Tuấn Phạm Minh", Some(("phạm", "minh", "tuấn", true))),
            ("Hùng Huỳnh Văn", Some(("huỳnh", "văn", "hùng", true))),
            // The given name is a surname too: "văn"/"thị" last gives it away.
            ("Hoàng Nguyễn Văn", Some(("nguyễn", "văn", "hoàng", true))),
            ("Mai Trần Thị", Some(("trần", "thị", "mai", true))),
            // ... but not against a more frequent surname first.
            ("Nguyễn Lê Văn", Some(("nguyễn", "lê", "văn", false))),
            // Four words.
            (
                "Thị Minh Anh Nguyễn",
                Some(("nguyễn", "thị minh", "anh", true)),
            ),
            (
                "Anh Nguyễn Thị Minh",
                Some(("nguyễn", "thị minh", "anh", true)),
            ),
            (
                "Văn Minh Tuấn Phạm",
                Some(("phạm", "văn minh", "tuấn", true)),
            ),
            (
                "Tuấn Phạm Văn Minh",
                Some(("phạm", "văn minh", "tuấn", true)),
            ),
            (
                "Anh Nguyễn Lê Minh",
                Some(("nguyễn", "lê minh", "anh", true)),
            ),
            (
                "THI MINH ANH NGUYEN",
                Some(("nguyen", "thi minh", "anh", true)),
            ),
            // Two words: both rotations are the same.
            ("An Nguyễn", Some(("nguyễn", "", "an", true))),
            ("Anh Lê", Some(("lê", "", "anh", true))),
            // No rotation that would leave văn/thị as the given name.
            ("Thị Nguyễn", Some(("thị", "", "nguyễn", false))),
            ("Ông Thị Vy", Some(("ông", "thị", "vy", false))),
            ("Văn Nguyễn An", Some(("văn", "nguyễn", "an", false))),
        ]);
        // The written order of a reordered name parses back to the same parts, not reordered.
        for raw in [
            "Văn An Nguyễn",
            "An Nguyễn Văn",
            "Thị Minh Anh Nguyễn",
            "Hoàng Nguyễn Văn",
        ] {
            let p = parse_name(raw).unwrap_or_default();
            let again = parse_name(&p.full()).unwrap_or_default();
            assert_eq!(
                (&again.surname, &again.middle, &again.given),
                (&p.surname, &p.middle, &p.given),
                "{raw}"
            );
            assert!(!again.reordered, "{raw}");
        }
    }

    #[test]
    fn mistyped_surnames_keep_the_written_order() {
        check(&[
            // One edit from Nguyễn, Trần, Phạm, Huỳnh: the surname stays first. All but "Nguyn Văn
            // Hoàng" and "Ngyuễn Thị Lan" used to be rotated, the surname then compared against the
            // other record's given name.
            ("Nguyn Minh Hoàng", Some(("nguyn", "minh", "hoàng", false))),
            ("Nguyn Văn Hoàng", Some(("nguyn", "văn", "hoàng", false))),
            ("Nguyn Van Hoang", Some(("nguyn", "van", "hoang", false))),
            ("Ngyuễn Thị Lan", Some(("ngyuễn", "thị", "lan", false))),
            ("Ngyuễn Minh Long", Some(("ngyuễn", "minh", "long", false))),
            ("Tarn Minh Hà", Some(("tarn", "minh", "hà", false))),
            ("TARN MINH HA", Some(("tarn", "minh", "ha", false))),
            ("Trầnn Quốc Hà", Some(("trầnn", "quốc", "hà", false))),
            ("Phmạ Minh Quang", Some(("phmạ", "minh", "quang", false))),
            ("Huỳn Minh Long", Some(("huỳn", "minh", "long", false))),
            // A mistyped surname weighs as the surname it is mistyped from, against văn/thị last.
            ("Trần Nguyễn Văn", Some(("nguyễn", "văn", "trần", true))),
            ("Tarn Nguyễn Văn", Some(("nguyễn", "văn", "tarn", true))),
            ("Nguyễn Hoàng Văn", Some(("nguyễn", "hoàng", "văn", false))),
            // (Was hoàng / văn / nguyn.)
            ("Nguyn Hoàng Văn", Some(("nguyn", "hoàng", "văn", false))),
            // A more frequent surname last that is no given name: the first word is a middle name.
            ("Đình Hùng Nguyễn", Some(("nguyễn", "đình", "hùng", true))),
            ("Đăng Khoa Trần", Some(("trần", "đăng", "khoa", true))),
            // Given names one edit from a surname (Thân, Trương, Trần) are not typos: still rotated.
            ("Thanh Nguyễn Minh", Some(("nguyễn", "minh", "thanh", true))),
            ("Trung Phạm Quốc", Some(("phạm", "quốc", "trung", true))),
            ("Trang Nguyễn Minh", Some(("nguyễn", "minh", "trang", true))),
            // An unlisted surname before an unlisted given name: no evidence for a rotation (this
            // was rotated to hoàng / nam / phí).
            ("Phí Hoàng Nam", Some(("phí", "hoàng", "nam", false))),
            // Văn or Thị first is evidence enough for surname last, whatever the given name.
            ("Văn Tú Nguyễn", Some(("nguyễn", "văn", "tú", true))),
            ("Thị Hà Trần", Some(("trần", "thị", "hà", true))),
        ]);
    }

    #[test]
    fn documented_limits() {
        check(&[
            // Unlisted given name: the rotation is not made.
            ("Minh Tú Nguyễn", Some(("minh", "tú", "nguyễn", false))),
            // Unlisted surname before a listed given name and a listed surname: rotated.
            ("Khổng Minh Hoàng", Some(("hoàng", "khổng", "minh", true))),
            // A mistyped surname of under four letters is not seen.
            ("Bù Minh Hoàng", Some(("hoàng", "bù", "minh", true))),
            // Surname last, first word a surname or like a mistyped one: written order.
            (
                "Lê Minh Anh Nguyễn",
                Some(("lê", "minh anh", "nguyễn", false)),
            ),
            ("Đình Minh Hoàng", Some(("đình", "minh", "hoàng", false))),
            ("Ha Nguyen Thi", Some(("ha", "nguyen", "thi", false))),
        ]);
    }

    #[test]
    fn typo_shares() {
        let cases: &[(&str, Option<f64>)] = &[
            ("nguyn", Some(0.384)),
            ("ngyuễn", Some(0.384)),
            ("nguyển", Some(0.384)),
            ("tarn", Some(0.11)),
            ("trầnn", Some(0.11)),
            ("phmạ", Some(0.071)),
            // Folded "huyn" is one edit from "huynh"; the key share is Hoàng's and Huỳnh's.
            ("huỳn", Some(0.051)),
            ("đình", Some(0.01549)),
            // Known surnames, given names, short words, far words, văn and thị.
            ("nguyễn", None),
            ("nguyen", None),
            ("thanh", None),
            ("trung", None),
            ("trang", None),
            ("lan", None),
            ("phí", None),
            ("bù", None),
            ("khổng", None),
            ("minh", None),
            ("văn", None),
            ("thị", None),
            ("", None),
        ];
        for (word, expected) in cases {
            let got = WordFacts::of(word).typo_of;
            assert_eq!(got.is_some(), expected.is_some(), "{word}: {got:?}");
            if let (Some(got), Some(expected)) = (got, expected) {
                assert!((got - expected).abs() < 1e-9, "{word}: {got}");
            }
        }
    }

    #[test]
    fn ede_names_keep_written_order() {
        check(&[
            ("Y Ngông Niê Kdăm", Some(("kdăm", "niê", "y ngông", false))),
            ("y ngông niê kdăm", Some(("kdăm", "niê", "y ngông", false))),
            ("Y Ngông Niê", Some(("niê", "", "y ngông", false))),
            ("Y Ngông", Some(("", "", "y ngông", false))),
            ("H'Nghia Êban", Some(("êban", "", "h'nghia", false))),
            ("h’nghia êban", Some(("êban", "", "h'nghia", false))),
            ("H' Nghia Êban", Some(("êban", "", "h'nghia", false))),
            ("H Nghia Êban", Some(("êban", "", "h'nghia", false))),
            ("H'Hen Niê", Some(("niê", "", "h'hen", false))),
            ("H'Nghia", Some(("", "", "h'nghia", false))),
            // The prefix alone is just a word.
            ("Y", Some(("", "", "y", false))),
            ("H'", Some(("", "", "h'", false))),
        ]);
        // Legacy mojibake, with a smart-quote apostrophe too. (A name with no Kinh syllable, like
        // "H'Nghia Êban", is not recognised as mojibake by text::repair_mojibake.)
        for name in ["Y Ngông Niê Kdăm", "H'Ngông Niê", "H’Ngông Niê"] {
            let expected = parts(name);
            for form in [to_tcvn3_mojibake(name), to_vni_mojibake(name)] {
                assert_eq!(parts(&form), expected, "{name} as {form:?}");
                assert_eq!(name_key(&form), name_key(name), "{name} as {form:?}");
            }
        }
        assert_eq!(
            parse_name("Y Ngông Niê Kdăm").map(|p| p.full()),
            Some("kdăm niê y ngông".to_owned())
        );
    }

    #[test]
    fn full_joins_non_empty_parts() {
        let cases: &[(&str, &str)] = &[
            ("Văn An Nguyễn", "nguyễn văn an"),
            ("  NGUYỄN  Lê Minh ANH ", "nguyễn lê minh anh"),
            ("Lê Anh", "lê anh"),
            ("An", "an"),
            ("", ""),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                parse_name(raw).map(|p| p.full()).as_deref(),
                Some(*expected),
                "{raw}"
            );
        }
    }

    #[test]
    fn name_key_forms() {
        let cases: &[(&str, &str)] = &[
            ("Nguyễn Văn Hùng", "nguien van hung"),
            ("Thủy", "thui"),
            ("Lý", "li"),
            ("Yến", "yen"),
            ("Huỳnh", "hoang"),
            ("Võ", "vu"),
            ("Võ Văn Kiệt", "vu van kiet"),
            ("Đức", "duc"),
            ("H'Nghia Êban", "hnghia eban"),
            ("  Nguyễn-Văn,  An. ", "nguien van an"),
            ("Lê2Lan", "le lan"),
            ("", ""),
            ("...", ""),
            ("Voi", "voi"),
            ("Huynhh", "huinhh"),
        ];
        for (input, expected) in cases {
            assert_eq!(name_key(input), *expected, "{input:?}");
        }
    }

    #[test]
    fn name_key_equalities_for_linkage() {
        let groups: &[&[&str]] = &[
            &[
                "Thủy", "Thuỷ", "THUỶ", "THỦY", "Thuy", "thuy", "Thuý", "Thúy",
            ],
            &["Lý", "Lí", "LY", "li"],
            &["Vy", "Vi", "Vỹ", "VĨ"],
            &["Huỳnh", "Hoàng", "HUYNH", "hoang"],
            &["Võ", "Vũ", "VO", "vu"],
            &["Đức", "Duc", "Ðức", "ðức", "ĐỨC"],
            &["Nguyễn Thị Thuỷ", "Nguyen Thi Thuy", "NGUYỄN  THỊ THỦY"],
            &["Lê Thị Hương", "Le Thi Huong"],
        ];
        for group in groups {
            let key = name_key(group[0]);
            for form in *group {
                assert_eq!(name_key(form), key, "{form} vs {}", group[0]);
            }
        }
        // NFD and legacy mojibake key like the Unicode text.
        for name in [
            "Nguyễn Văn Hùng",
            "Trần Thị Thuỷ",
            "Phạm Đức Mạnh",
            "Lê Thị Hương",
            "Huỳnh Quốc Bảo",
            "Võ Thị Mỹ Duyên",
            "Đặng Ngọc Ánh",
        ] {
            let key = name_key(name);
            assert_eq!(name_key(&nfd(name)), key, "NFD {name}");
            assert_eq!(name_key(&to_tcvn3_mojibake(name)), key, "TCVN3 {name}");
            assert_eq!(name_key(&to_vni_mojibake(name)), key, "VNI {name}");
        }
    }

    #[test]
    fn name_key_keeps_different_names_apart() {
        let pairs: &[(&str, &str)] = &[
            ("An", "Anh"),
            ("Lan", "Lam"),
            ("Trang", "Tran"),
            ("Nguyễn Văn An", "Nguyễn An"),
            ("Vy", "Vũ"),
            ("Hoa", "Hoà Hoa"),
            ("Yến", "Iến"),
        ];
        for (a, b) in pairs {
            assert_ne!(name_key(a), name_key(b), "{a} vs {b}");
        }
        // Accepted: accent folding merges Hùng and Hưng.
        assert_eq!(name_key("Hùng"), name_key("Hưng"));
    }

    #[test]
    fn name_key_is_idempotent() {
        let inputs = [
            "Nguyễn Văn Hùng",
            "Huỳnh",
            "HUYNH",
            "Võ",
            "vo",
            "yy",
            "y",
            "Yyy Yy",
            "Thủy",
            "H'Nghia Êban",
            "  a  ,, b ",
            "ß Straße",
            "Đặng-Ðức",
            "huinh",
            "NguyÔn V¨n Hïng",
            "\u{0301}e\u{0301}",
            "日本 名前",
            "",
        ];
        for input in inputs {
            let key = name_key(input);
            assert_eq!(name_key(&key), key, "{input:?}");
            assert!(
                key.bytes().all(|b| b.is_ascii_lowercase() || b == b' '),
                "{input:?} -> {key:?}"
            );
            assert!(!key.starts_with(' ') && !key.ends_with(' ') && !key.contains("  "));
        }
    }

    #[test]
    fn surname_lookups() {
        let known: &[(&str, f64)] = &[
            ("nguyễn", 0.384),
            ("Nguyễn", 0.384),
            ("NGUYỄN", 0.384),
            ("nguyen", 0.384),
            ("NGUYEN", 0.384),
            ("nguien", 0.384),
            ("trần", 0.11),
            ("hoàng", 0.03648),
            ("huỳnh", 0.01452),
            ("hoang", 0.051),
            ("huynh", 0.051),
            ("vũ", 0.017),
            ("võ", 0.022),
            ("vu", 0.039),
            ("vo", 0.039),
            ("lý", 0.005),
            ("đặng", 0.021),
            ("Ðặng", 0.021),
            ("dang", 0.021),
            ("vi", 0.00302 + 0.00067),
            ("vy", 0.00302 + 0.00067),
            ("lầu", 0.0022),
        ];
        for (word, share) in known {
            let got = surname_frequency(word);
            assert!(
                got.is_some_and(|g| (g - share).abs() < 1e-9),
                "{word}: {got:?}"
            );
            assert!(is_known_surname(word), "{word}");
        }
        for word in [
            "nguyên",
            "minh",
            "anh",
            "thị",
            "thi",
            "vân",
            "",
            " ",
            "thay",
            "nguyễn văn",
        ] {
            assert_eq!(surname_frequency(word), None, "{word}");
            assert!(!is_known_surname(word), "{word}");
        }
        assert!(
            is_known_surname("văn"),
            "listed, though excluded from order decisions"
        );
    }

    #[test]
    fn surname_table_is_complete() {
        let csv = include_str!("../data/surnames.csv");
        let rows = csv.lines().skip(1).filter(|l| !l.trim().is_empty()).count();
        assert_eq!(rows, 67);
        assert_eq!(
            SURNAMES.canonical.len(),
            rows,
            "every row parses, no duplicates"
        );
        let total: f64 = SURNAMES.canonical.values().sum();
        assert!((1.0..1.1).contains(&total), "{total}");
        for name in SURNAMES.canonical.keys() {
            assert_eq!(&canonical_name(name), name);
            assert!(!name.contains(' '), "{name}");
        }
    }

    #[test]
    fn given_name_table_is_complete() {
        let csv = include_str!("../data/given_names.csv");
        let rows = csv.lines().skip(1).filter(|l| !l.trim().is_empty()).count();
        assert_eq!(rows, 175);
        assert_eq!(
            GIVEN_NAMES.canonical.len(),
            rows,
            "every row parses, no duplicates"
        );
        for name in GIVEN_NAMES.canonical.keys() {
            assert!(!name.is_empty() && !name.contains(' '), "{name}");
        }
        // Canonical lookups, marks matter; ASCII ones are folded.
        for (word, given) in [
            ("anh", true),
            ("thuỷ", true),
            ("an", true),
            ("nguyên", true),
            ("nguyễn", false),
            ("trần", false),
            ("thị", false),
            ("nguyen", true),
            ("tu", false),
        ] {
            assert_eq!(
                GIVEN_NAMES.share_of_canonical(word).is_some(),
                given,
                "{word}"
            );
        }
    }

    #[test]
    fn odd_input_never_panics() {
        let long_word = "a".repeat(10_000);
        let many_words = "Nguyễn ".repeat(1000);
        let inputs = [
            "\0",
            "\u{0301}",
            "a\u{0301}\u{0301}",
            "''''",
            "y y y y",
            "h' h' h'",
            "H'",
            "Y H'Nghia",
            "😀 Nguyễn 😀",
            "Nguyễn\u{00AD}Văn",
            "ǅ ß ŉ İ",
            "\u{FEFF}Lê Lan",
            long_word.as_str(),
            many_words.as_str(),
            "§éc lËp - Tù do",
            "Ngu\u{0300}\u{0303}yen",
        ];
        for input in inputs {
            let _ = name_key(input);
            let _ = is_known_surname(input);
            if let Some(p) = parse_name(input) {
                for part in [&p.surname, &p.middle, &p.given] {
                    assert_eq!(part.trim(), part.as_str(), "{input:?}");
                    assert!(!part.contains("  "), "{input:?}");
                }
            }
        }
    }
}
