//! [`NameParser`]: [`parse_name`] and [`name_key`] for long runs of names, a word at a time.
//!
//! Every step of [`parse_name`] and [`name_key`] works word by word (NFC, tone style, case, cleaning,
//! folding, the key's merges) except one: mojibake detection weighs the whole string. But detection
//! only looks at text whose characters all lie within Windows-1252, and one word beyond it (ă, đ, ơ,
//! ư, ạ…, which most Vietnamese names have) rules it out for the whole name; and it weighs each word
//! alone, a word that is a Vietnamese syllable as written ("Lê", "Hà") counting for nothing. So a name
//! that is ASCII, or has such a word, or has no word that detection would count ("Lê Thu Trang", 3% of
//! a register's names), is the concatenation of its words' canonical forms, and each distinct
//! whitespace-separated piece of raw text is worked out once and remembered: about 8,000 distinct words
//! make up the names of a population register, against millions of distinct full names.
//!
//! **Invariant:** [`NameParser::parse`] gives exactly `parse_name(raw).unwrap_or_default()` and the
//! [`name_key`] of each of its parts, whatever it parsed before. Names the word path cannot decide
//! that way (text that detection would look at, Ê Đê names, very long words) go through
//! [`parse_name`] and [`name_key`] themselves, and short ones are remembered whole. The tests check
//! the two paths agree on names of every corruption class the generator makes.

use rustc_hash::FxHashMap;

use super::{WordFacts, arrange, clean_words, is_ede_prefix, key_of_folded, name_key, parse_name};
use crate::text::{
    canonical_unrepaired, fold_diacritics, may_be_mojibake, nfc_cow, no_mojibake_evidence,
};

/// A name's parts in canonical form and their [`name_key`]s, as [`NameParser::parse`] gives them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyedName {
    pub surname: String,
    pub middle: String,
    pub given: String,
    pub surname_key: String,
    pub middle_key: String,
    pub given_key: String,
}

impl KeyedName {
    /// `parse_name(raw).unwrap_or_default()` and the [`name_key`] of each part: what
    /// [`NameParser::parse`] gives, the slow way.
    pub fn parse(raw: &str) -> KeyedName {
        let name = parse_name(raw).unwrap_or_default();
        KeyedName {
            surname_key: name_key(&name.surname),
            middle_key: name_key(&name.middle),
            given_key: name_key(&name.given),
            surname: name.surname,
            middle: name.middle,
            given: name.given,
        }
    }

    fn clear(&mut self) {
        for part in self.parts_mut() {
            part.clear();
        }
    }

    fn parts_mut(&mut self) -> [&mut String; 6] {
        [
            &mut self.surname,
            &mut self.middle,
            &mut self.given,
            &mut self.surname_key,
            &mut self.middle_key,
            &mut self.given_key,
        ]
    }

    /// Surname, middle, given, then their keys.
    pub fn parts(&self) -> [&str; 6] {
        [
            &self.surname,
            &self.middle,
            &self.given,
            &self.surname_key,
            &self.middle_key,
            &self.given_key,
        ]
    }
}

/// Parses names as [`parse_name`] and [`name_key`] do, remembering each raw word it meets (see the
/// module's doc). Holds at most [`NameParser::MAX_PIECES`] pieces of text, then starts afresh; a
/// result never depends on what the parser holds.
#[derive(Default)]
pub struct NameParser {
    /// Raw piece of text → its index in `pieces`.
    index: FxHashMap<Box<str>, u32>,
    pieces: Vec<Piece>,
    /// The words of the name being parsed: (piece, word of the piece).
    current: Vec<(u32, u32)>,
    /// Whole names the word path refused, parsed the slow way: mostly short names whose letters all
    /// lie within Windows-1252 ("Lê Hà") and mojibake, both of which repeat.
    refused: FxHashMap<Box<str>, KeyedName>,
    out: KeyedName,
}

/// One whitespace-separated piece of raw text, worked out.
struct Piece {
    /// Whether its NFC form has a character beyond Windows-1252, which rules out mojibake detection
    /// for any text it is part of.
    beyond_cp1252: bool,
    /// Whether no word of its NFC form is evidence of mojibake ("Lê", "Hà", "Trang"): a name made of
    /// such pieces only is left alone by detection, even with every character within Windows-1252.
    no_evidence: bool,
    /// Its canonical words (usually one; none for punctuation).
    words: Vec<Word>,
}

/// One canonical word of a piece.
struct Word {
    text: Box<str>,
    /// What the order decision knows of it.
    facts: WordFacts,
    /// `name_key(text)`: its key as a part on its own.
    key: Box<str>,
    /// Its key inside a longer part that detection leaves alone: folded and merged, not repaired.
    inner_key: Box<str>,
    ascii: bool,
    beyond_cp1252: bool,
    /// Whether it is no evidence of mojibake on its own (see [`Piece::no_evidence`]).
    no_evidence: bool,
}

impl Piece {
    fn new(raw: &str) -> Piece {
        let nfc = nfc_cow(raw);
        let canon = if raw.is_ascii() {
            raw.to_ascii_lowercase()
        } else {
            canonical_unrepaired(&nfc)
        };
        let words = clean_words(&canon)
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(|w| Word {
                text: w.into(),
                facts: WordFacts::of(w),
                key: name_key(w).into(),
                inner_key: key_of_folded(&fold_diacritics(w)).into(),
                ascii: w.is_ascii(),
                beyond_cp1252: !w.is_ascii() && !may_be_mojibake(w),
                no_evidence: no_mojibake_evidence(w),
            })
            .collect();
        Piece {
            beyond_cp1252: !nfc.is_ascii() && !may_be_mojibake(&nfc),
            no_evidence: no_mojibake_evidence(&nfc),
            words,
        }
    }
}

impl NameParser {
    /// Pieces of text held at most (a few MiB); the parser empties itself when it reaches it.
    pub const MAX_PIECES: usize = 1 << 16;
    /// Longer pieces are never held: rare, and they would make the parser's memory unbounded.
    pub const MAX_PIECE_BYTES: usize = 48;
    /// Refused names held at most (about a MiB), and the longest held.
    pub const MAX_REFUSED: usize = 1 << 12;
    pub const MAX_REFUSED_BYTES: usize = 64;

    /// `raw` parsed: `parse_name(raw).unwrap_or_default()` and the [`name_key`] of each part.
    pub fn parse(&mut self, raw: &str) -> &KeyedName {
        self.out.clear();
        if self.parse_by_words(raw) {
            return &self.out;
        }
        if raw.len() > Self::MAX_REFUSED_BYTES {
            self.out = KeyedName::parse(raw);
            return &self.out;
        }
        if !self.refused.contains_key(raw) {
            if self.refused.len() >= Self::MAX_REFUSED {
                self.refused.clear();
            }
            self.refused.insert(raw.into(), KeyedName::parse(raw));
        }
        &self.refused[raw]
    }

    /// The word path; false (with nothing written) for a name it cannot decide exactly.
    fn parse_by_words(&mut self, raw: &str) -> bool {
        if self.pieces.len() >= Self::MAX_PIECES {
            self.index.clear();
            self.pieces.clear();
        }
        self.current.clear();
        let (mut beyond_cp1252, mut no_evidence) = (false, true);
        for piece in raw.split_whitespace() {
            if piece.len() > Self::MAX_PIECE_BYTES {
                return false;
            }
            let i = match self.index.get(piece) {
                Some(&i) => i,
                None => {
                    let i = self.pieces.len() as u32;
                    self.pieces.push(Piece::new(piece));
                    self.index.insert(piece.into(), i);
                    i
                }
            };
            let piece = &self.pieces[i as usize];
            beyond_cp1252 |= piece.beyond_cp1252;
            no_evidence &= piece.no_evidence;
            self.current
                .extend((0..piece.words.len() as u32).map(|w| (i, w)));
        }
        // Otherwise mojibake detection would look at the whole name, and might repair it.
        if !(raw.is_ascii() || beyond_cp1252 || no_evidence) {
            return false;
        }
        let (pieces, current) = (&self.pieces, &self.current);
        let word = |k: usize| {
            let (piece, w) = current[k];
            &pieces[piece as usize].words[w as usize]
        };
        if current.is_empty() {
            // Blank, or no letters at all: every part empty.
            return true;
        }
        if is_ede_prefix(&word(0).text) {
            return false;
        }
        let (surname, middle, given) = if current.len() == 1 {
            (None, 0..0, 0)
        } else {
            let (_, surname, middle, given) = arrange(current.len(), |k| word(k).facts);
            (Some(surname), middle, given)
        };
        let out = &mut self.out;
        if let Some(s) = surname {
            out.surname.push_str(&word(s).text);
            out.surname_key.push_str(&word(s).key);
        }
        out.given.push_str(&word(given).text);
        out.given_key.push_str(&word(given).key);
        push_middle(middle.map(word), &mut out.middle, &mut out.middle_key);
        true
    }
}

/// The middle words joined by spaces, and their [`name_key`].
fn push_middle<'a>(
    words: impl ExactSizeIterator<Item = &'a Word> + Clone,
    middle: &mut String,
    key: &mut String,
) {
    for w in words.clone() {
        if !middle.is_empty() {
            middle.push(' ');
        }
        middle.push_str(&w.text);
    }
    if words.len() == 1 {
        key.push_str(words.clone().next().map_or("", |w| &w.key));
    } else if words.clone().all(|w| w.ascii || w.no_evidence)
        || words.clone().any(|w| w.beyond_cp1252)
    {
        // Detection leaves the joined words alone, and the rest of the key is word by word.
        for w in words.filter(|w| !w.inner_key.is_empty()) {
            if !key.is_empty() {
                key.push(' ');
            }
            key.push_str(&w.inner_key);
        }
    } else {
        key.push_str(&name_key(middle));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::ToneStyle;
    use crate::text::{nfd, swap_i_y, to_tcvn3_mojibake, to_vni_mojibake, with_tone_style};

    /// Every form a name reaches the registers in (NOTES §4), and a few the word path must refuse.
    fn variants(name: &str) -> Vec<String> {
        let words: Vec<&str> = name.split(' ').collect();
        let mut rotated = words.clone();
        rotated.rotate_left(1);
        let mut out = vec![
            name.to_owned(),
            nfd(name),
            name.to_uppercase(),
            name.to_lowercase(),
            fold_diacritics(name),
            to_tcvn3_mojibake(name),
            to_vni_mojibake(name),
            to_tcvn3_mojibake(&name.to_uppercase()),
            with_tone_style(name, ToneStyle::Old),
            swap_i_y(name),
            name.replace('Đ', "Ð").replace('đ', "ð"),
            format!("  {}  ", words.join("   ")),
            words.join("\u{a0}"),
            words.join("-"),
            format!("{name}."),
            rotated.join(" "),
            format!(
                "{} {}",
                words[words.len() - 1],
                words[..words.len() - 1].join(" ")
            ),
        ];
        out.extend(words.iter().map(|w| w.to_string()));
        out
    }

    #[test]
    fn the_word_path_gives_what_parse_name_and_name_key_give() {
        let names = [
            "Nguyễn Văn An",
            "Trần Thị Thuỷ",
            "Lê Hà",
            "Lê Thị Hà",
            "Võ Thị Mỹ Duyên",
            "Huỳnh Quốc Bảo",
            "Đặng Đình Đức",
            "Hoàng Nguyễn Văn",
            "Tôn Nữ Thị Ngọc Anh",
            "Văn Thị Hoa",
            "Phí Hoàng Nam",
            "Lý Thị Hòa Bình",
            "Cao Thị An",
            "Y Ngông Niê Kdăm",
            "H'Nghia Niê",
            "Nguyễn Thị Ngọc Minh Anh",
            "Hồ Hà Vy",
            "Lê Mỹ Hoà",
            "Ông Ích Khiêm",
            "Nông Thị Út",
            "Lê Thu Trang",
            "Lê Minh Hoàng",
            "Tô Hà My",
            // Middle names of several words, every letter within Windows-1252.
            "Lê Minh Hoàng Anh",
            "Tô Hà Thu Trang",
            // Mistyped surnames, and words one edit from a surname.
            "Nguyn Minh Hoàng",
            "Ngyuễn Thị Lan",
            "Tarn Minh Hà",
            "Đình Hùng Nguyễn",
            "Thanh Nguyễn Minh",
            "Văn Tú Nguyễn",
        ];
        let mut parser = NameParser::default();
        // Twice: the second time, names the word path refuses come from the parser's memory.
        for _ in 0..2 {
            for name in names {
                for raw in variants(name) {
                    assert_eq!(parser.parse(&raw), &KeyedName::parse(&raw), "{raw:?}");
                }
            }
        }
        let odd = [
            "",
            "  ",
            "...",
            "123 - 45",
            "'",
            "An",
            "a'b'c",
            "中文 名",
            "Cao Thò An",
        ];
        for raw in odd {
            assert_eq!(parser.parse(raw), &KeyedName::parse(raw), "{raw:?}");
        }
    }

    #[test]
    fn common_forms_take_the_word_path_and_the_rest_do_not() {
        let mut parser = NameParser::default();
        let name = "Nguyễn Văn Đức";
        for raw in [
            name.to_owned(),
            nfd(name),
            name.to_uppercase(),
            fold_diacritics(name),
            "Văn Đức Nguyễn".to_owned(),
            // Every letter within Windows-1252, but every word a syllable: no mojibake.
            "Lê Hà".to_owned(),
            "LÊ MINH HOÀNG".to_owned(),
        ] {
            assert!(parser.parse_by_words(&raw), "{raw:?}");
        }
        // Mojibake detection would repair these ("Thò" is VNI for Thị); an Ê Đê name keeps its own
        // order.
        for raw in [
            to_tcvn3_mojibake(name),
            to_vni_mojibake(name),
            "Cao Thò An".to_owned(),
            "Y Ngông Niê Kdăm".to_owned(),
        ] {
            assert!(!parser.parse_by_words(&raw), "{raw:?}");
        }
    }

    #[test]
    fn a_full_parser_starts_afresh_and_still_answers_the_same() {
        let mut parser = NameParser::default();
        // Every piece is new, so the parser fills up and empties itself on the way.
        for i in 0..NameParser::MAX_PIECES + 10 {
            let raw = format!("Nguyễn Văn Z{i}");
            assert_eq!(parser.parse(&raw), &KeyedName::parse(&raw), "{raw:?}");
            assert!(parser.pieces.len() <= NameParser::MAX_PIECES);
        }
        let long = format!("Nguyễn Văn {}", "A".repeat(NameParser::MAX_PIECE_BYTES + 1));
        assert_eq!(parser.parse(&long), &KeyedName::parse(&long));
        // Names the word path refuses (mojibake) fill its other memory.
        for i in 0..NameParser::MAX_REFUSED + 10 {
            let raw = format!("{} Z{i}", to_tcvn3_mojibake("Nguyễn Văn"));
            assert!(!parser.parse_by_words(&raw), "{raw:?}");
            assert_eq!(parser.parse(&raw), &KeyedName::parse(&raw), "{raw:?}");
            assert!(parser.refused.len() <= NameParser::MAX_REFUSED);
        }
    }
}
