//! Blocking keys of free text: coarse forms of a value under which its misspellings still meet.
//!
//! A `text` field blocks on its exact canonical form by default, so two records whose value differs
//! by one letter never share that key. The forms here trade precision for recall, for rules that need
//! to survive a typo:
//! - `folded`: accents and đ folded away, lowercase, words separated by single spaces
//!   ("Đồng  Nai" → "dong nai");
//! - `initial`, `prefix3`, `prefix5`: the first 1, 3 or 5 letters and digits of the folded form,
//!   spaces and punctuation skipped ("O'Brien" → "obr");
//! - `phonetic`: the Double Metaphone primary code (Apache commons-codec's, through the `rphonetic`
//!   crate) of each word of the folded form, for names written by ear ("Conner"/"Connor" → "KNR",
//!   "Smith"/"Smyth" → "SM0"). Made for English-like spellings; Vietnamese names have their own key
//!   ([`crate::name::name_key`]).
//!
//! Every form is a function of the value alone, so two records' keys are equal exactly when the
//! forms are, and a missing form (an empty value, or a value with no letter or digit) is no key.

use rphonetic::{DoubleMetaphone, Encoder};

use crate::text::fold_diacritics;

/// Which coarse form of a text a blocking key uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TextKey {
    Folded,
    Initial,
    Prefix3,
    Prefix5,
    Phonetic,
}

impl TextKey {
    /// Every form with the name a job spec gives it (`field.folded`).
    pub const ALL: [(&'static str, TextKey); 5] = [
        ("folded", TextKey::Folded),
        ("initial", TextKey::Initial),
        ("prefix3", TextKey::Prefix3),
        ("prefix5", TextKey::Prefix5),
        ("phonetic", TextKey::Phonetic),
    ];

    pub fn parse(name: &str) -> Option<TextKey> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }

    /// Appends the form of `text` to `out`; false when the text has none (nothing was appended).
    pub fn write(self, text: &str, out: &mut Vec<u8>) -> bool {
        let folded = fold_diacritics(text).to_ascii_lowercase();
        let start = out.len();
        match self {
            TextKey::Folded => {
                for word in folded.split_whitespace() {
                    if out.len() > start {
                        out.push(b' ');
                    }
                    out.extend_from_slice(word.as_bytes());
                }
            }
            TextKey::Initial | TextKey::Prefix3 | TextKey::Prefix5 => {
                let n = match self {
                    TextKey::Initial => 1,
                    TextKey::Prefix3 => 3,
                    _ => 5,
                };
                out.extend(folded.bytes().filter(u8::is_ascii_alphanumeric).take(n));
            }
            TextKey::Phonetic => {
                let encoder = DoubleMetaphone::default();
                for word in folded.split_whitespace() {
                    // Letters only: the encoder is written for them, and digits have no sound.
                    let letters: String = word.chars().filter(char::is_ascii_alphabetic).collect();
                    if letters.is_empty() {
                        continue;
                    }
                    let code = encoder.encode(&letters);
                    if code.is_empty() {
                        continue;
                    }
                    if out.len() > start {
                        out.push(b' ');
                    }
                    out.extend_from_slice(code.as_bytes());
                }
            }
        }
        out.len() > start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: TextKey, text: &str) -> Option<String> {
        let mut out = Vec::new();
        kind.write(text, &mut out)
            .then(|| String::from_utf8(out).unwrap())
    }

    #[test]
    fn forms_of_text() {
        use TextKey::*;
        let cases: &[(TextKey, &str, Option<&str>)] = &[
            (Folded, "Đồng  Nai", Some("dong nai")),
            (Folded, "  ", None),
            (Folded, "", None),
            (Initial, "Ö'Brien", Some("o")),
            (Prefix3, "O'Brien", Some("obr")),
            (Prefix3, "li", Some("li")),
            (Prefix3, "--", None),
            (Prefix5, "st. kilda", Some("stkil")),
            (Prefix5, "Nguyễn Văn", Some("nguye")),
            (Phonetic, "Conner", Some("KNR")),
            (Phonetic, "connor", Some("KNR")),
            (Phonetic, "Smith", Some("SM0")),
            (Phonetic, "smyth", Some("SM0")),
            (Phonetic, "mary ann", Some("MR AN")),
            (Phonetic, "42", None),
            (Phonetic, "", None),
        ];
        for &(kind, text, want) in cases {
            assert_eq!(key(kind, text).as_deref(), want, "{kind:?} of {text:?}");
        }
    }

    #[test]
    fn names_parse_and_append_after_what_is_there() {
        for (name, kind) in TextKey::ALL {
            assert_eq!(TextKey::parse(name), Some(kind));
        }
        assert_eq!(TextKey::parse("prefix4"), None);
        let mut out = b"x|".to_vec();
        assert!(TextKey::Folded.write("A b", &mut out));
        assert_eq!(out, b"x|a b");
        assert!(!TextKey::Phonetic.write("", &mut out));
        assert_eq!(out, b"x|a b");
    }

    #[test]
    fn any_text_has_a_form_or_none_without_panicking() {
        for text in [
            "\u{0}",
            "ß",
            "ǅ",
            "🙂 x",
            "a\u{301}",
            "İ",
            "ffi",
            "\u{feff}abc",
        ] {
            for (_, kind) in TextKey::ALL {
                let _ = key(kind, text);
            }
        }
    }
}
