//! Vietnamese text: Unicode forms, legacy encodings, tone placement, folding.
//!
//! The same name reaches the national databases in several byte-level and spelling forms (NOTES §4):
//! NFC or NFD; TCVN3 or VNI legacy bytes read as Windows-1252 ("NguyÔn", "Nguyeãn"); old or new
//! tone placement (Thủy/Thuỷ); i or y (Lý/Lí); Ð (eth) for Đ. This module produces each of those
//! forms (for the generator) and undoes them (for linkage):
//! - [`nfc`], [`nfd`]; [`fold_diacritics`] for blocking keys;
//! - [`to_tcvn3_mojibake`], [`to_vni_mojibake`], [`detect_mojibake`], [`repair_mojibake`];
//! - [`to_mojibake`] and [`decode_mojibake`] when the encoding is known;
//! - [`with_tone_style`], [`swap_i_y`]; and [`canonical_name`], the comparison form of a name;
//! - [`is_syllable`], the spelling check that mojibake detection relies on;
//! - [`decode_bytes`] and [`encode_bytes`]: a file's bytes in UTF-8, Windows-1258, TCVN3 or VNI
//!   ([`Encoding`]) as text, and back.
//!
//! Tables: `data/legacy_encodings.csv` (134 letters in Unicode, VNI, TCVN3) and
//! `data/tone_placement.csv`, compiled in and parsed once. Sources in `data/SOURCES.md`.
//!
//! Mojibake detection relies on two facts: both legacy encodings only ever produce characters up to
//! U+00FF, and genuine Vietnamese words are well-formed syllables ([`is_syllable`]). A word is
//! evidence of an encoding only if it is *not* a syllable as written but becomes one when decoded, so
//! genuine names are left alone (one exception: VNI "Thò" counts as Thị). Limits: a word whose legacy
//! form is itself a valid Unicode word ("Vũ" in TCVN3 is "Vò", "Sơn" in VNI is "Sôn") is left as
//! written unless another word of the string gives the encoding away, and a few words read validly in
//! both encodings ("Thuû": TCVN3 Thuỷ or VNI Thủ) are resolved by a fixed tie rule. On 289,800
//! synthetic full names (NFC, NFD, UPPER) nothing genuine was taken for mojibake, and about 0.6% of
//! TCVN3 and 0.5% of VNI forms stayed unrepaired, all names whose only accented words are like "Vò".

use std::borrow::Cow;

use unicode_normalization::char::{decompose_canonical, is_combining_mark};
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick, is_nfd_quick};

mod encoding;
mod legacy;
mod letters;
mod tone;

pub use encoding::{Encoding, Undecodable, decode_bytes, encode_bytes};
pub use letters::is_syllable;

/// A legacy 8-bit Vietnamese encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Legacy {
    /// TCVN 5712 "TCVN3" / ABC (.VnTime fonts), dominant in the North.
    Tcvn3,
    /// VNI-Windows (VNI-Times fonts), dominant in the South; two bytes per accented vowel.
    Vni,
}

/// Where the tone mark goes on the nuclei oa, oe, uy of an open syllable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ToneStyle {
    /// On the first vowel: hòa, thủy (still used in legal texts).
    Old,
    /// On the main vowel, per MOET Decision 1989/QĐ-BGDĐT (2018): hoà, thuỷ.
    New,
}

/// NFC of `s`, borrowing when it already is (the common case, checked cheaply).
pub(crate) fn nfc_cow(s: &str) -> Cow<'_, str> {
    if s.is_ascii() || is_nfc_quick(s.chars()) == IsNormalized::Yes {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.nfc().collect())
    }
}

/// Unicode NFC.
pub fn nfc(s: &str) -> String {
    nfc_cow(s).into_owned()
}

/// Unicode NFD.
pub fn nfd(s: &str) -> String {
    if s.is_ascii() || is_nfd_quick(s.chars()) == IsNormalized::Yes {
        s.to_owned()
    } else {
        s.nfd().collect()
    }
}

/// Accent folding for blocking keys: all tone and vowel marks removed, đ→d, Đ→D, Ð (eth)→D, ð→d,
/// case kept. "Nguyễn Đức Thuỷ" → "Nguyen Duc Thuy". Accepts NFC or NFD; marks on non-Vietnamese
/// letters are removed too (ç→c).
pub fn fold_diacritics(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else if let Some(l) = letters::letter(c) {
            out.push(l.plain);
        } else {
            decompose_canonical(c, |d| {
                if !is_combining_mark(d) {
                    out.push(d);
                }
            });
        }
    }
    out
}

/// NFC Vietnamese text encoded in TCVN3 (ABC) and shown as Windows-1252, the mojibake of a legacy
/// TCVN3 field read as cp1252/Latin-1: "Nguyễn Văn Hùng" → "NguyÔn V¨n Hïng". TCVN3 ư is 0xAD, an
/// invisible soft hyphen. Capitals follow the table (from duydev/vietnamese-conversion): Ă Â Ê Ô Ơ Ư Đ
/// have codes, the other capitals are written as the capital base letter plus the lowercase code
/// ("Á" → "A¸", "Ấ" → "¢Ê"), so case survives. Characters outside the table are kept.
pub fn to_tcvn3_mojibake(s: &str) -> String {
    legacy::encode(&nfc_cow(s), Legacy::Tcvn3)
}

/// NFC Vietnamese text encoded in VNI-Windows and shown as Windows-1252: "Xin chào các bạn" →
/// "Xin chaøo caùc baïn". Case is kept.
pub fn to_vni_mojibake(s: &str) -> String {
    legacy::encode(&nfc_cow(s), Legacy::Vni)
}

/// [`to_tcvn3_mojibake`] or [`to_vni_mojibake`] by encoding.
pub fn to_mojibake(s: &str, enc: Legacy) -> String {
    legacy::encode(&nfc_cow(s), enc)
}

/// Which legacy encoding `s` looks like it is in, if any. `None` for ASCII, for anything with a
/// character beyond cp1252 (genuine ă đ ơ ư ạ…, combining marks), and when no word of `s` needs
/// decoding to be Vietnamese.
pub fn detect_mojibake(s: &str) -> Option<Legacy> {
    legacy::detect(&nfc_cow(s))
}

/// `s` decoded from `enc` mojibake without detection, NFC. For when the source encoding is known.
pub fn decode_mojibake(s: &str, enc: Legacy) -> String {
    legacy::decode(&nfc_cow(s), enc)
}

/// Whether [`repair_mojibake`] could change NFC text `nfc`: only text with a non-ASCII character and
/// every character within Windows-1252 is looked at (both legacy encodings only produce those).
pub(crate) fn may_be_mojibake(nfc: &str) -> bool {
    !nfc.is_ascii() && nfc.chars().all(encoding::is_cp1252)
}

/// Whether no word of NFC text `nfc` is evidence of mojibake: then [`repair_mojibake`] leaves alone
/// any text whose whitespace-separated pieces are all such text (detection weighs each word alone).
pub(crate) fn no_mojibake_evidence(nfc: &str) -> bool {
    legacy::no_evidence(nfc)
}

/// TCVN3/VNI mojibake decoded back to NFC Unicode when detected; otherwise the NFC of `s`.
///
/// Round trip: `repair_mojibake(&to_tcvn3_mojibake(x)) == nfc(x)` (same for VNI) whenever some word
/// of `x` has a legacy form that is not valid Vietnamese as written, in lower, Title or UPPER case;
/// that holds for about 94% of single syllables and 99.5% of full names. Exceptions: every accented
/// word's legacy form is itself valid Unicode ("ngụ" → TCVN3 "ngô", "cơ" → VNI "cô"), and is left
/// alone; or the string reads validly in both encodings and the tie rule picks the other one
/// ("thủ" → VNI "thuû" = TCVN3 "thuỷ"). All-capital words typed with a TCVN3 caps font (the
/// lowercase codes: "NGUYÔN") come back in capitals; a single capital typed that way ("µnh") comes
/// back lowercase.
pub fn repair_mojibake(s: &str) -> String {
    let n = nfc_cow(s);
    match legacy::detect(&n) {
        Some(enc) => legacy::decode(&n, enc),
        None => n.into_owned(),
    }
}

/// Rewrites every word into one tone-placement style (hòa ↔ hoà, thủy ↔ thuỷ, khỏe ↔ khoẻ). Only
/// word-final oa, oe, uy after a consonant or at the start of the word change: "quý", "hoàn",
/// "huỳnh", "khuya" never do. Input NFC or NFD, output NFC, case kept.
pub fn with_tone_style(s: &str, style: ToneStyle) -> String {
    tone::restyle(&nfc_cow(s), style).into_owned()
}

/// The i/y variant of each word whose final i or y follows a consonant, with any tone: Lý ↔ Lí,
/// Kỳ ↔ Kì, Mỹ ↔ Mĩ, Vỹ ↔ Vĩ, Thy ↔ Thi. Unchanged: y or i after a vowel (Duy, Huy, Thúy, Quý, Tài)
/// and i after g, gh, ngh (gì, Nghi), where y is never written. Every eligible word changes, the
/// middle name "Thị" too ("Thỵ"); to vary only the given name, pass only that word. Output NFC, case
/// kept.
pub fn swap_i_y(s: &str) -> String {
    tone::swap_final_i_y(&nfc_cow(s)).into_owned()
}

/// Canonical comparison form of a name: mojibake repaired, NFC, Ð/ð read as đ, new tone style,
/// whitespace collapsed to single spaces and trimmed, lowercase. Diacritics are kept.
/// "  NGUYỄN   Thị  THỦY " → "nguyễn thị thuỷ".
pub fn canonical_name(s: &str) -> String {
    if s.is_ascii() {
        // Nothing to repair, normalise or restyle: only spaces and case (the common case).
        let mut out = String::with_capacity(s.len());
        for word in s.split_whitespace() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.extend(word.chars().map(|c| c.to_ascii_lowercase()));
        }
        return out;
    }
    canonical_unrepaired(&repair_mojibake(s))
}

/// The steps of [`canonical_name`] after mojibake repair, for NFC text known not to need it: new tone
/// style, single spaces, lowercase.
pub(crate) fn canonical_unrepaired(nfc: &str) -> String {
    let styled = tone::restyle(nfc, ToneStyle::New);
    let mut out = String::with_capacity(styled.len());
    for word in styled.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        for c in word.chars() {
            match c {
                _ if c.is_ascii() => out.push(c.to_ascii_lowercase()),
                // Ð lowercases to ð, not đ (NOTES §4.4).
                'Ð' | 'ð' => out.push('đ'),
                _ => match letters::letter(c) {
                    Some(l) => out.push(l.lower),
                    None => out.extend(c.to_lowercase()),
                },
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
