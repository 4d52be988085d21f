//! The character encodings Vietnamese records are exported in, as bytes: UTF-8, the Vietnamese
//! Windows code page (Windows-1258), and the legacy font encodings TCVN3 (ABC) and VNI-Windows.
//!
//! A CSV file written by an older system is often not UTF-8: a Windows application of the 2000s
//! writes Windows-1258, whose tone marks are combining characters after the letter; files typed with
//! .VnTime or VNI-Times fonts hold TCVN3 or VNI bytes. The two font encodings are decoded through
//! Windows-1252, which is how their bytes look when read as text, and then with the same tables that
//! repair their mojibake ([`super::decode_mojibake`]): one table per encoding, whichever way the text
//! arrives.
//!
//! All four are ASCII-compatible: bytes below 0x80 are ASCII in each, and no byte of a multi-byte
//! character is below 0x80, so a CSV file's delimiters, quotes and line breaks are found in its bytes
//! before any decoding.

use std::borrow::Cow;
use std::sync::LazyLock;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::decompose_canonical;

use super::{Legacy, decode_mojibake, to_mojibake};

/// How a file's bytes are text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    Utf8,
    /// The Vietnamese Windows code page: precomposed vowels with ă, â, ê, ô, ơ, ư, đ, and the five
    /// tone marks as combining characters.
    Windows1258,
    /// A legacy font encoding (TCVN3 or VNI-Windows).
    Legacy(Legacy),
}

impl Encoding {
    pub const ALL: [Encoding; 4] = [
        Encoding::Utf8,
        Encoding::Windows1258,
        Encoding::Legacy(Legacy::Tcvn3),
        Encoding::Legacy(Legacy::Vni),
    ];

    /// The encoding's name in a job spec.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Windows1258 => "windows-1258",
            Encoding::Legacy(Legacy::Tcvn3) => "tcvn3",
            Encoding::Legacy(Legacy::Vni) => "vni",
        }
    }

    /// The encoding named `name` ([`Encoding::name`], any case).
    pub fn from_name(name: &str) -> Option<Encoding> {
        Encoding::ALL
            .into_iter()
            .find(|e| e.name().eq_ignore_ascii_case(name))
    }
}

/// Where bytes stop being text in an encoding: the offset of the first byte that is not, and its
/// value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Undecodable {
    pub offset: usize,
    pub byte: u8,
}

/// `bytes` as text in `enc`. UTF-8 is given as it is (borrowed); the other encodings' text is NFC
/// (Windows-1258's combining tone marks composed with their letters). ASCII is borrowed in every
/// encoding.
pub fn decode_bytes(bytes: &[u8], enc: Encoding) -> Result<Cow<'_, str>, Undecodable> {
    if let Encoding::Utf8 = enc {
        return std::str::from_utf8(bytes)
            .map(Cow::Borrowed)
            .map_err(|e| Undecodable {
                offset: e.valid_up_to(),
                byte: bytes[e.valid_up_to()],
            });
    }
    if bytes.is_ascii() {
        // ASCII bytes are ASCII text in every encoding here.
        return Ok(Cow::Borrowed(
            std::str::from_utf8(bytes).unwrap_or_default(),
        ));
    }
    let table = match enc {
        Encoding::Windows1258 => &TABLES.windows_1258,
        _ => &TABLES.windows_1252,
    };
    let mut text = String::with_capacity(bytes.len() + bytes.len() / 2);
    for (offset, &byte) in bytes.iter().enumerate() {
        if byte < 0x80 {
            text.push(char::from(byte));
        } else {
            match table[usize::from(byte - 0x80)] {
                Some(c) => text.push(c),
                None => return Err(Undecodable { offset, byte }),
            }
        }
    }
    Ok(Cow::Owned(match enc {
        Encoding::Legacy(legacy) => decode_mojibake(&text, legacy),
        _ => text.nfc().collect(),
    }))
}

/// `s` as bytes in `enc`, or the first character `enc` cannot write. Windows-1258 writes a letter
/// the code page lacks precomposed as its base letter and a combining tone mark, as Windows does.
/// For tests and generators: the inverse of [`decode_bytes`].
pub fn encode_bytes(s: &str, enc: Encoding) -> Result<Vec<u8>, char> {
    let (text, table) = match enc {
        Encoding::Utf8 => return Ok(s.as_bytes().to_vec()),
        Encoding::Windows1258 => (s.nfc().collect::<String>(), &TABLES.windows_1258),
        Encoding::Legacy(legacy) => {
            // A character outside the encoding's letters would come back as another one (Ð is
            // TCVN3's é).
            let mut one = [0; 4];
            for c in s.nfc().filter(|c| !c.is_ascii()) {
                let c_text = c.encode_utf8(&mut one);
                if decode_mojibake(&to_mojibake(c_text, legacy), legacy) != *c_text {
                    return Err(c);
                }
            }
            (to_mojibake(s, legacy), &TABLES.windows_1252)
        }
    };
    let byte = |c: char| -> Option<u8> {
        if c.is_ascii() {
            return Some(c as u8);
        }
        let i = table.iter().position(|&t| t == Some(c))?;
        u8::try_from(0x80 + i).ok()
    };
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        if let Some(b) = byte(c) {
            out.push(b);
            continue;
        }
        if enc != Encoding::Windows1258 {
            return Err(c);
        }
        // A letter with a tone mark the code page has no single byte for: the letter without its
        // tone (ấ -> â), then the tone as a combining mark.
        let mut marks = Vec::new();
        decompose_canonical(c, |d| marks.push(d));
        let (tones, rest): (Vec<char>, Vec<char>) = marks.into_iter().partition(|m| {
            matches!(
                m,
                '\u{0300}' | '\u{0301}' | '\u{0303}' | '\u{0309}' | '\u{0323}'
            )
        });
        let base: String = rest.into_iter().collect::<String>().nfc().collect();
        let mut base_chars = base.chars();
        match (base_chars.next().and_then(byte), base_chars.next()) {
            (Some(b), None) if !tones.is_empty() => out.push(b),
            _ => return Err(c),
        }
        for tone in tones {
            out.push(byte(tone).ok_or(c)?);
        }
    }
    Ok(out)
}

/// Whether `c` is a character of Windows-1252 (Latin-1, and the letters and punctuation the code
/// page puts at 0x80..0x9F), the characters legacy font encodings look like when read as text.
pub(super) fn is_cp1252(c: char) -> bool {
    (c as u32) <= 0xFF || TABLES.windows_1252[..0x20].contains(&Some(c))
}

/// Per code page, the character of each byte from 0x80 (`None` where the code page has none).
struct Tables {
    windows_1252: [Option<char>; 128],
    windows_1258: [Option<char>; 128],
}

/// Windows-1252's bytes 0x80..0x9F (from 0xA0 it is Latin-1); `\0` where it has no character.
const WINDOWS_1252_HIGH: [char; 32] = [
    '€', '\0', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\0', 'Ž', '\0', '\0', '‘',
    '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\0', 'ž', 'Ÿ',
];

/// Where Windows-1258 differs from Windows-1252 (`\0`: no character). Source: the code page as
/// Python's `cp1258` codec and the Unicode mapping table `CP1258.TXT` give it.
const WINDOWS_1258_CHANGES: [(u8, char); 18] = [
    (0x8A, '\0'),
    (0x8E, '\0'),
    (0x9A, '\0'),
    (0x9E, '\0'),
    (0xC3, 'Ă'),
    (0xCC, '\u{0300}'),
    (0xD0, 'Đ'),
    (0xD2, '\u{0309}'),
    (0xD5, 'Ơ'),
    (0xDD, 'Ư'),
    (0xDE, '\u{0303}'),
    (0xE3, 'ă'),
    (0xEC, '\u{0301}'),
    (0xF0, 'đ'),
    (0xF2, '\u{0323}'),
    (0xF5, 'ơ'),
    (0xFD, 'ư'),
    (0xFE, '₫'),
];

static TABLES: LazyLock<Tables> = LazyLock::new(|| {
    let mut windows_1252 = [None; 128];
    for (i, slot) in windows_1252.iter_mut().enumerate() {
        let c = match WINDOWS_1252_HIGH.get(i) {
            Some(&c) => c,
            None => char::from(0x80 + i as u8),
        };
        *slot = (c != '\0').then_some(c);
    }
    let mut windows_1258 = windows_1252;
    for (byte, c) in WINDOWS_1258_CHANGES {
        windows_1258[usize::from(byte - 0x80)] = (c != '\0').then_some(c);
    }
    Tables {
        windows_1252,
        windows_1258,
    }
});
