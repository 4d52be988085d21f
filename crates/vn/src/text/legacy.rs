//! TCVN3 (ABC) and VNI-Windows text as it looks when its bytes are read as Windows-1252: encoding,
//! decoding and detection.
//!
//! Both encodings only produce characters up to U+00FF, so text with any other character (ă, đ, ơ, ư,
//! ạ…, combining marks) is genuine Unicode. What is left is decided word by word with the syllable
//! validator: a word counts as evidence for an encoding when it is *not* a Vietnamese syllable as it
//! stands but becomes one once decoded. A word that is already a syllable ("Ngô", "Hoà") is never
//! evidence, which is what keeps genuine names from being "repaired".

use std::sync::LazyLock;

use super::Legacy;
use super::letters::{self, SLOTS, count_tones, is_syllable};

const CSV: &str = include_str!("../../data/legacy_encodings.csv");

/// One row of the encoding table.
pub(crate) struct Row {
    pub letter: char,
    pub vni: &'static str,
    pub tcvn3: &'static str,
}

/// Rows of the table; malformed lines are skipped (the data is compiled in and checked by tests).
pub(crate) fn rows() -> impl Iterator<Item = Row> {
    CSV.lines().skip(1).filter_map(|line| {
        let mut f = line.split(',');
        let mut letter = f.next()?.chars();
        let (c, None) = (letter.next()?, letter.next()) else {
            return None;
        };
        let vni = f.nth(1)?;
        let tcvn3 = f.nth(1)?;
        Some(Row {
            letter: c,
            vni,
            tcvn3,
        })
    })
}

/// Decoding table of one encoding. All mojibake characters are ≤ U+00FF, hence arrays of 256.
struct Decoder {
    single: [Option<char>; 256],
    /// For a first character, the (second character, letter) pairs it starts.
    pairs: Vec<Vec<(char, char)>>,
}

struct Tables {
    /// [TCVN3, VNI] mojibake of each letter, by `letters::slot`.
    encode: Vec<Option<[&'static str; 2]>>,
    decode: [Decoder; 2],
    /// Non-ASCII characters used by either encoding: they are part of words even when not alphabetic
    /// (TCVN3 writes ư as a soft hyphen and ơ as `¬`).
    alphabet: [bool; 256],
}

fn index(enc: Legacy) -> usize {
    match enc {
        Legacy::Tcvn3 => 0,
        Legacy::Vni => 1,
    }
}

static TABLES: LazyLock<Tables> = LazyLock::new(|| {
    let mut encode = vec![None; SLOTS];
    let new_decoder = || Decoder {
        single: [None; 256],
        pairs: vec![Vec::new(); 256],
    };
    let mut decode = [new_decoder(), new_decoder()];
    let mut alphabet = [false; 256];
    for row in rows() {
        if let Some(i) = letters::slot(row.letter) {
            encode[i] = Some([row.tcvn3, row.vni]);
        }
        for (d, moji) in decode.iter_mut().zip([row.tcvn3, row.vni]) {
            let mut cs = moji.chars();
            let (Some(a), second, None) = (cs.next(), cs.next(), cs.next()) else {
                continue;
            };
            if (a as u32) > 0xFF || second.is_some_and(|b| (b as u32) > 0xFF) {
                continue;
            }
            for ch in std::iter::once(a).chain(second) {
                if !ch.is_ascii() {
                    alphabet[ch as usize] = true;
                }
            }
            match second {
                None => {
                    d.single[a as usize].get_or_insert(row.letter);
                }
                Some(b) => d.pairs[a as usize].push((b, row.letter)),
            }
        }
    }
    Tables {
        encode,
        decode,
        alphabet,
    }
});

/// `s` (NFC) encoded with `enc` and shown as cp1252; characters without a code are kept as they are.
pub(crate) fn encode(s: &str, enc: Legacy) -> String {
    let t = &*TABLES;
    let mut out = String::with_capacity(s.len() + s.len() / 4);
    for c in s.chars() {
        match letters::slot(c).and_then(|i| t.encode[i]) {
            Some(m) => out.push_str(m[index(enc)]),
            None => out.push(c),
        }
    }
    out
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || ((c as u32) <= 0xFF && TABLES.alphabet[c as usize])
}

/// Calls `f(segment, is_word)` for the maximal runs of word and non-word characters of `s`, in order.
fn segments<'a>(s: &'a str, mut f: impl FnMut(&'a str, bool)) {
    let mut start = 0;
    let mut in_word = None;
    for (i, c) in s.char_indices() {
        let w = is_word_char(c);
        if in_word != Some(w) {
            if let Some(prev) = in_word {
                f(&s[start..i], prev);
            }
            start = i;
            in_word = Some(w);
        }
    }
    if let Some(prev) = in_word {
        f(&s[start..], prev);
    }
}

/// Appends the decoding of one word to `out`; true if TCVN3 capitals had to be restored.
fn decode_word(word: &str, enc: Legacy, out: &mut String) -> bool {
    let d = &TABLES.decode[index(enc)];
    let start = out.len();
    let mut cs = word.chars().peekable();
    while let Some(c) = cs.next() {
        let i = c as usize;
        if i > 0xFF {
            out.push(c);
            continue;
        }
        let paired = cs
            .peek()
            .and_then(|&n| d.pairs[i].iter().find(|(b, _)| *b == n).map(|&(_, l)| l));
        if let Some(l) = paired {
            cs.next();
            out.push(l);
        } else {
            out.push(d.single[i].unwrap_or(c));
        }
    }
    // Real TCVN3 typed capitals with a caps font that reuses the lowercase codes ("NGUYÔN"), so a word
    // whose ASCII letters are all capitals (two or more) was all capitals: restore that case.
    if enc == Legacy::Tcvn3 {
        let upper = word.chars().filter(char::is_ascii_uppercase).count();
        if upper >= 2 && !word.chars().any(|c| c.is_ascii_lowercase()) {
            let tail = out.split_off(start);
            out.extend(tail.chars().flat_map(char::to_uppercase));
            return tail.chars().any(char::is_lowercase);
        }
    }
    false
}

/// `s` decoded from `enc` mojibake, without any detection. `s` should be NFC.
pub(crate) fn decode(s: &str, enc: Legacy) -> String {
    let mut out = String::with_capacity(s.len());
    segments(s, |seg, word| {
        if word {
            decode_word(seg, enc, &mut out);
        } else {
            out.push_str(seg);
        }
    });
    out
}

/// What the words of a string say for one encoding.
#[derive(Clone, Copy, Default)]
struct Evidence {
    /// Words that are not syllables as written but are once decoded.
    words: usize,
    /// Of those, decoded to ALL CAPS in a string that has lowercase letters.
    shouting: usize,
    /// Of those, needing TCVN3 capitals restored.
    recased: usize,
    /// Tone marks in those decodings.
    tones: usize,
}

/// Which encoding `s` (NFC) is mojibake of, if any. See the module comment for the method.
pub(crate) fn detect(s: &str) -> Option<Legacy> {
    if !super::may_be_mojibake(s) {
        return None;
    }
    let [t, v] = evidence(s, s.chars().any(char::is_lowercase));
    if t.words == 0 && v.words == 0 {
        None
    } else if t.words != v.words {
        Some(if t.words > v.words {
            Legacy::Tcvn3
        } else {
            Legacy::Vni
        })
    } else if (v.shouting, v.recased, v.tones) < (t.shouting, t.recased, t.tones) {
        // A tie: "Thuû" is TCVN3 Thuỷ and VNI Thủ, "thö" VNI thư and TCVN3 thử, "BOÏ" VNI BỌ and
        // caps-font TCVN3 BOẼ, "LÖ" TCVN3 Lệ and VNI LƯ. Prefer the reading whose case fits the rest
        // of the string, then the one that needs no case repair, then the one with fewer tone marks
        // (most syllables carry none), then TCVN3, the official encoding.
        Some(Legacy::Vni)
    } else {
        Some(Legacy::Tcvn3)
    }
}

/// What the words of `s` (NFC) say for each encoding: each word is weighed alone, so the evidence of
/// a string is the sum of its words' (words never span a space: see `spaces_end_words` in the tests).
/// `has_lower`: whether the whole string has a lowercase letter.
fn evidence(s: &str, has_lower: bool) -> [Evidence; 2] {
    let mut evidence = [Evidence::default(); 2];
    let mut buf = String::new();
    segments(s, |seg, word| {
        // One character alone is no evidence: « × ¶ ¹ and the like decode to one-letter words.
        if !word || seg.is_ascii() || seg.chars().nth(1).is_none() {
            return;
        }
        if is_syllable(seg) {
            // The one exception to "a syllable is genuine": VNI writes Thị, the commonest word of
            // Vietnamese names (the middle name of most women), as "Thò", and the verb thò never
            // occurs in a name. Without this, "Cao Thò An" would stay unrepaired.
            if matches!(seg, "Thò" | "thò" | "THÒ") {
                evidence[1].words += 1;
            }
            return;
        }
        for (enc, ev) in [Legacy::Tcvn3, Legacy::Vni]
            .into_iter()
            .zip(evidence.iter_mut())
        {
            buf.clear();
            let recased = decode_word(seg, enc, &mut buf);
            if is_syllable(&buf) {
                ev.words += 1;
                ev.shouting += usize::from(has_lower && !buf.chars().any(char::is_lowercase));
                ev.recased += usize::from(recased);
                ev.tones += count_tones(&buf);
            }
        }
    });
    evidence
}

/// Whether no word of `s` (NFC) is evidence of either encoding: then [`detect`] finds no mojibake in
/// any text made of `s` and other such pieces, separated by whitespace.
pub(crate) fn no_evidence(s: &str) -> bool {
    evidence(s, false).iter().all(|e| e.words == 0)
}
