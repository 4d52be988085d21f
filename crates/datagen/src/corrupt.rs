//! Corruption: how a person's true attributes become the text of one record, with the errors real
//! Vietnamese government data has. Every class that can apply to a record is counted as applicable,
//! and every class that changed the record is recorded, so rates can be checked exactly and the truth
//! says what happened to each record.

use khop_vn::date::days_in_month;
use khop_vn::text::{fold_diacritics, nfd, to_tcvn3_mojibake, to_vni_mojibake};

use crate::config::{Class, Rates};
use crate::model::{WordForms, word_forms};
use crate::person::Person;
use crate::rng::Rng;

/// The classes applied to one record, as a bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied(pub u32);

impl Applied {
    pub fn contains(self, class: Class) -> bool {
        self.0 & class.bit() != 0
    }

    pub fn classes(self) -> impl Iterator<Item = Class> {
        Class::ALL.into_iter().filter(move |c| self.contains(*c))
    }
}

/// Per-class counts of records where a class could apply and where it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally {
    pub applicable: [u64; Class::ALL.len()],
    pub applied: [u64; Class::ALL.len()],
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            applicable: [0; Class::ALL.len()],
            applied: [0; Class::ALL.len()],
        }
    }
}

impl Tally {
    pub fn merge(&mut self, other: &Tally) {
        for i in 0..Class::ALL.len() {
            self.applicable[i] += other.applicable[i];
            self.applied[i] += other.applied[i];
        }
    }
}

/// The corruption context of one record: its rates, its own random stream, and what it has done.
pub struct Corruptor<'a> {
    rates: &'a Rates,
    pub rng: Rng,
    pub applied: Applied,
    tally: &'a mut Tally,
}

impl<'a> Corruptor<'a> {
    pub fn new(rates: &'a Rates, rng: Rng, tally: &'a mut Tally) -> Self {
        Corruptor {
            rates,
            rng,
            applied: Applied::default(),
            tally,
        }
    }

    fn record(&mut self, class: Class) {
        self.applied.0 |= class.bit();
        self.tally.applied[class as usize] += 1;
    }

    /// A class decided elsewhere (duplicates are chosen before the record is drawn), counted here.
    pub fn note(&mut self, class: Class, hit: bool) {
        self.tally.applicable[class as usize] += 1;
        if hit {
            self.record(class);
        }
    }

    /// An independent class: drawn at its rate where it applies.
    pub fn maybe(&mut self, class: Class, applicable: bool) -> bool {
        let u = self.rng.unit();
        if !applicable {
            return false;
        }
        self.tally.applicable[class as usize] += 1;
        let hit = u < self.rates.get(class);
        if hit {
            self.record(class);
        }
        hit
    }

    /// One of a group of mutually exclusive classes, each at its own rate where it applies: one draw,
    /// laid over consecutive bands. The rates of a group must sum to at most 1.
    fn exclusive(&mut self, group: &[(Class, bool)]) -> Option<Class> {
        let u = self.rng.unit();
        let mut lower = 0.0;
        let mut chosen = None;
        for &(class, applicable) in group {
            let upper = lower + self.rates.get(class);
            if applicable {
                self.tally.applicable[class as usize] += 1;
                if chosen.is_none() && (lower..upper).contains(&u) {
                    chosen = Some(class);
                }
            }
            lower = upper;
        }
        if let Some(class) = chosen {
            self.record(class);
        }
        chosen
    }

    /// The full name as this record shows it.
    pub fn name(&mut self, person: &Person) -> String {
        let mut surname = person.surname;
        let variant = match surname {
            "Hoàng" => Some("Huỳnh"),
            "Huỳnh" => Some("Hoàng"),
            "Vũ" => Some("Võ"),
            "Võ" => Some("Vũ"),
            _ => None,
        };
        if self.maybe(Class::NameRegionalVariant, variant.is_some()) {
            surname = variant.unwrap_or(surname);
        }
        let mut words: Vec<&'static str> = Vec::with_capacity(4);
        words.push(surname);
        words.extend(person.middles.iter().copied());
        words.push(person.given);
        let forms: Vec<&WordForms> = words.iter().map(|w| word_forms(w)).collect();

        let iy = self.maybe(Class::NameIY, forms.iter().any(|f| f.iy.is_some()));
        let tone_applicable = forms.iter().any(|f| {
            if iy {
                f.iy_tone.is_some()
            } else {
                f.tone.is_some()
            }
        });
        let tone = self.maybe(Class::NameToneStyle, tone_applicable);
        let mut name = String::with_capacity(32);
        for (word, f) in words.iter().zip(&forms) {
            let after_iy = if iy { f.iy.as_deref() } else { None }.unwrap_or(word);
            let form = match (iy, tone) {
                (true, true) => f.iy_tone.as_deref().unwrap_or(after_iy),
                (false, true) => f.tone.as_deref().unwrap_or(word),
                _ => after_iy,
            };
            if !name.is_empty() {
                name.push(' ');
            }
            name.push_str(form);
        }
        // Where the surname stands once the words are reordered, for a typo inside it.
        let mut surname_at = 0;
        match self.exclusive(&[
            (Class::NameOrder, words.len() >= 2),
            (Class::NameRotation, words.len() >= 3),
        ]) {
            Some(Class::NameOrder) => {
                let mut parts: Vec<&str> = name.split(' ').collect();
                if self.rng.chance(0.5) {
                    // Western order: the surname moved to the end.
                    parts.rotate_left(1);
                    surname_at = parts.len() - 1;
                } else {
                    // Given name first, as some forms ask for it.
                    parts.rotate_right(1);
                    surname_at = 1;
                }
                name = parts.join(" ");
            }
            Some(Class::NameRotation) => {
                // First and last words swapped, the middle names left in place: `An Văn Nguyễn`.
                let mut parts: Vec<&str> = name.split(' ').collect();
                surname_at = parts.len() - 1;
                parts.swap(0, surname_at);
                name = parts.join(" ");
            }
            _ => {}
        }
        match self.exclusive(&[(Class::NameTypo, true), (Class::NameSurnameTypo, true)]) {
            Some(Class::NameTypo) => name = typo(&name, &mut self.rng),
            Some(Class::NameSurnameTypo) => {
                let mut parts: Vec<String> = name.split(' ').map(str::to_owned).collect();
                parts[surname_at] = typo(&parts[surname_at], &mut self.rng);
                name = parts.join(" ");
            }
            _ => {}
        }
        if self.maybe(Class::NameDStroke, name.contains(['Đ', 'đ'])) {
            name = if self.rng.chance(0.5) {
                name.replace('Đ', "D").replace('đ', "d")
            } else {
                // The capital eth, identical on screen, from copy-paste out of web pages and PDFs.
                name.replace('Đ', "\u{00D0}")
            };
        }
        if self.maybe(Class::NameUpper, true) {
            name = name.to_uppercase();
        }
        // Every non-ASCII letter of a Vietnamese name carries a mark that folding drops, and all but
        // the stroked D (and its look-alike) decompose in NFD.
        let non_ascii = !name.is_ascii();
        let folded_differs = non_ascii;
        let nfd_differs = name
            .chars()
            .any(|c| !c.is_ascii() && !matches!(c, 'Đ' | 'đ' | 'Ð' | 'ð'));
        match self.exclusive(&[
            (Class::NameNoDiacritics, folded_differs),
            (Class::NameTcvn3, non_ascii),
            (Class::NameVni, non_ascii),
            (Class::NameNfd, nfd_differs),
        ]) {
            Some(Class::NameNoDiacritics) => fold_diacritics(&name),
            Some(Class::NameTcvn3) => to_tcvn3_mojibake(&name),
            Some(Class::NameVni) => to_vni_mojibake(&name),
            Some(Class::NameNfd) => nfd(&name),
            _ => name,
        }
    }

    /// A name typed again by another clerk for a second registration: one slip in half of them. Part
    /// of the duplicate's class, not counted as a name class.
    pub fn retype(&mut self, name: String) -> String {
        if self.rng.chance(0.5) {
            typo(&name, &mut self.rng)
        } else {
            name
        }
    }

    /// The birth date as this record shows it; `iso` says which format the source writes normally.
    pub fn birth_date(&mut self, person: &Person, iso: bool) -> String {
        let (mut year, mut month, mut day) =
            (person.birth_year, person.birth_month, person.birth_day);
        let error = self.exclusive(&[
            (Class::DobYearOnly, true),
            (Class::DobDayMonthSwap, day <= 12 && day != month),
            (Class::DobYearOffByOne, true),
        ]);
        match error {
            Some(Class::DobDayMonthSwap) => std::mem::swap(&mut day, &mut month),
            Some(Class::DobYearOffByOne) => year += if self.rng.chance(0.5) { 1 } else { -1 },
            _ => {}
        }
        let last = days_in_month(year, month).unwrap_or(28);
        if day > last {
            // 29 February moved to a common year: clerks write 28.
            day = last;
        }
        let format = self.exclusive(&[
            (Class::DobOtherFormat, true),
            (Class::DobTwoDigitYear, error != Some(Class::DobYearOnly)),
        ]);
        let other = format == Some(Class::DobOtherFormat);
        if error == Some(Class::DobYearOnly) {
            return if other {
                format!("00/00/{year}")
            } else {
                year.to_string()
            };
        }
        if format == Some(Class::DobTwoDigitYear) {
            return two_digit_year(year, month, day, &mut self.rng);
        }
        // The seven ways dates are written; each source has its usual one, "other" is any of the rest.
        let usual = if iso { 0 } else { 6 };
        let style = if other {
            let s = self.rng.below(6);
            if s >= usual { s + 1 } else { s }
        } else {
            usual
        };
        match style {
            0 => format!("{year:04}-{month:02}-{day:02}"),
            1 => format!("{day}/{month}/{year}"),
            2 => format!("{day:02}-{month:02}-{year:04}"),
            3 => format!("{day:02}.{month:02}.{year:04}"),
            4 => format!("{year:04}{month:02}{day:02}"),
            5 => format!("ngày {day:02} tháng {month:02} năm {year:04}"),
            _ => format!("{day:02}/{month:02}/{year:04}"),
        }
    }

    /// The personal ID field as this record shows it, from the PIN it should hold.
    pub fn pin(&mut self, pin: &str, cmnd: Option<&str>) -> Option<String> {
        let digits = pin.as_bytes();
        let transposable = digits.windows(2).any(|w| w[0] != w[1]);
        match self.exclusive(&[
            (Class::PinMissing, true),
            (Class::PinOldCmnd, cmnd.is_some()),
            (Class::PinDigitError, true),
            (Class::PinTransposition, transposable),
            (Class::PinPrefixTypo, digits.len() >= 3),
        ]) {
            Some(Class::PinMissing) => None,
            Some(Class::PinOldCmnd) => cmnd.map(str::to_owned),
            Some(Class::PinDigitError) => {
                let wrong = if self.rng.chance(0.7) { 1 } else { 2 };
                let mut out = digits.to_vec();
                let first = self.rng.below(out.len() as u64) as usize;
                let second =
                    (first + 1 + self.rng.below(out.len() as u64 - 1) as usize) % out.len();
                for &i in [first, second].iter().take(wrong) {
                    out[i] = other_digit(out[i], &mut self.rng);
                }
                Some(String::from_utf8_lossy(&out).into_owned())
            }
            Some(Class::PinTransposition) => {
                let candidates: Vec<usize> = (0..digits.len() - 1)
                    .filter(|&i| digits[i] != digits[i + 1])
                    .collect();
                let i = candidates[self.rng.below(candidates.len() as u64) as usize];
                let mut out = digits.to_vec();
                out.swap(i, i + 1);
                Some(String::from_utf8_lossy(&out).into_owned())
            }
            Some(Class::PinPrefixTypo) => Some(prefix_typo(pin, &mut self.rng)),
            _ => Some(pin.to_owned()),
        }
    }
}

/// Another digit than `d`, any of the nine.
fn other_digit(d: u8, rng: &mut Rng) -> u8 {
    b'0' + ((d - b'0' + 1 + rng.below(9) as u8) % 10)
}

/// A slip in the first three digits of an ID, the province code of a PIN: two of them swapped where
/// they differ (`029…` for `092…`), or one replaced. Always changes those digits, and only those.
fn prefix_typo(id: &str, rng: &mut Rng) -> String {
    let mut out = id.as_bytes().to_vec();
    let pairs: Vec<(usize, usize)> = [(0, 1), (1, 2), (0, 2)]
        .into_iter()
        .filter(|&(a, b)| out[a] != out[b])
        .collect();
    if !pairs.is_empty() && rng.chance(0.5) {
        let (a, b) = pairs[rng.below(pairs.len() as u64) as usize];
        out.swap(a, b);
    } else {
        let i = rng.below(3) as usize;
        out[i] = other_digit(out[i], rng);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A date with the year in two digits, as old systems and spreadsheets write it: `5/3/80`,
/// `05-03-80`, `05/03/80`, `05.03.80`, and Oracle's default `05-MAR-80`.
fn two_digit_year(year: i32, month: u8, day: u8, rng: &mut Rng) -> String {
    const MONTHS: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    let yy = year.rem_euclid(100);
    match rng.below(5) {
        0 => format!("{day}/{month}/{yy:02}"),
        1 => format!("{day:02}-{month:02}-{yy:02}"),
        2 => format!("{day:02}/{month:02}/{yy:02}"),
        3 => format!("{day:02}.{month:02}.{yy:02}"),
        _ => format!("{day:02}-{}-{yy:02}", MONTHS[usize::from(month) - 1]),
    }
}

/// One keyboard slip in a letter: substitution, deletion, doubling or transposition with the next
/// letter. Always changes the text.
fn typo(name: &str, rng: &mut Rng) -> String {
    let chars: Vec<char> = name.chars().collect();
    let letters: Vec<usize> = (0..chars.len())
        .filter(|&i| chars[i].is_alphabetic())
        .collect();
    if letters.is_empty() {
        return format!("{name}x");
    }
    let i = letters[rng.below(letters.len() as u64) as usize];
    let mut out = chars.clone();
    match rng.below(4) {
        0 => {
            const KEYS: &[u8] = b"abcdeghiklmnopqrstuvxy";
            let mut c = KEYS[rng.below(KEYS.len() as u64) as usize] as char;
            if c.eq_ignore_ascii_case(&chars[i]) {
                c = if c == 'a' { 'e' } else { 'a' };
            }
            out[i] = if chars[i].is_uppercase() {
                c.to_ascii_uppercase()
            } else {
                c
            };
        }
        1 if letters.len() > 1 => {
            out.remove(i);
        }
        2 if i + 1 < chars.len() && chars[i + 1].is_alphabetic() && chars[i] != chars[i + 1] => {
            out.swap(i, i + 1);
        }
        _ => out.insert(i, chars[i]),
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use khop_vn::date::{DateRules, PartialDate, parse_date_with};

    #[test]
    fn typos_always_change_the_text() {
        for i in 0..2000 {
            let mut rng = Rng::new(1, 2, i);
            for name in ["Nguyễn Văn An", "Lê A", "Ô"] {
                assert_ne!(typo(name, &mut rng), name);
            }
        }
    }

    #[test]
    fn prefix_typos_change_the_first_three_digits_only() {
        let pins = [
            "092085012345",
            "001190000001",
            "079300123456",
            "000000000000",
        ];
        let mut shapes = std::collections::BTreeSet::new();
        for i in 0..2000 {
            let mut rng = Rng::new(5, 6, i);
            for pin in pins {
                let out = prefix_typo(pin, &mut rng);
                assert_eq!(out.len(), pin.len(), "{pin} -> {out}");
                assert_ne!(out[..3], pin[..3], "{pin} -> {out}");
                assert_eq!(out[3..], pin[3..], "{pin} -> {out}");
                // A swap keeps the three digits, a replaced digit does not.
                let sorted = |s: &str| {
                    let mut d = s.as_bytes()[..3].to_vec();
                    d.sort_unstable();
                    d
                };
                shapes.insert(sorted(pin) == sorted(&out));
            }
        }
        // Both kinds of slip occur: a swap of two digits, and a replaced one.
        assert_eq!(shapes.len(), 2);
    }

    #[test]
    fn two_digit_years_read_back_as_the_date() {
        let rules = DateRules {
            reference_year: Some(2026),
            ..DateRules::default()
        };
        let dates = [
            (1980, 3, 5),
            (1999, 6, 15),
            (2000, 2, 29),
            (1927, 12, 3),
            (2008, 1, 1),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..200 {
            let mut rng = Rng::new(7, 8, i);
            for (year, month, day) in dates {
                let text = two_digit_year(year, month, day, &mut rng);
                assert_eq!(
                    parse_date_with(&text, &rules),
                    Ok(PartialDate::full(year, month, day).unwrap()),
                    "{text}"
                );
                seen.insert(text);
            }
        }
        // Five distinct shapes of each date: every day or month here has one digit, so `d/m/yy` is
        // not `dd/mm/yy`.
        assert_eq!(seen.len(), dates.len() * 5);
    }

    #[test]
    fn exclusive_groups_keep_each_rate() {
        let mut rates = Rates::civil_servants_default();
        rates.set(Class::PinMissing, 0.2);
        rates.set(Class::PinOldCmnd, 0.3);
        rates.set(Class::PinDigitError, 0.1);
        rates.set(Class::PinTransposition, 0.1);
        let mut tally = Tally::default();
        for i in 0..20_000 {
            let mut c = Corruptor::new(&rates, Rng::new(3, 4, i), &mut tally);
            let cmnd = (i % 2 == 0).then_some("012345678");
            c.pin("001085012345", cmnd);
        }
        for (class, rate) in [
            (Class::PinMissing, 0.2),
            (Class::PinOldCmnd, 0.3),
            (Class::PinDigitError, 0.1),
        ] {
            let i = class as usize;
            let observed = tally.applied[i] as f64 / tally.applicable[i] as f64;
            assert!((observed - rate).abs() < 0.015, "{class}: {observed}");
        }
        assert_eq!(tally.applicable[Class::PinOldCmnd as usize], 10_000);
    }
}
