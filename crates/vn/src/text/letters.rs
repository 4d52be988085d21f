//! Vietnamese letters split into base letter and tone, and a validator for written syllables.
//!
//! The letter table is derived (with Unicode NFD) from the 134 letters of the legacy-encoding table, so
//! the letters known here and the letters that can be encoded can never disagree.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use unicode_normalization::UnicodeNormalization;

/// The six tones in the usual order: 0 ngang (none), 1 huyền, 2 sắc, 3 hỏi, 4 ngã, 5 nặng.
pub(crate) type Tone = u8;
const SAC: Tone = 2;
const NANG: Tone = 5;

/// One letter, split into its parts. Case is kept in `base` and `plain`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Letter {
    /// The letter without its tone but with its vowel mark: `ấ` → `â`, `Ở` → `Ơ`.
    pub base: char,
    /// The letter without any mark: `ấ` → `a`, `đ` → `d`.
    pub plain: char,
    pub tone: Tone,
    /// The whole letter in lowercase (a table lookup is faster than `char::to_lowercase`).
    pub lower: char,
}

// Every Vietnamese letter outside ASCII lies in one of these two ranges, so a dense array indexed by
// code point is a cheaper lookup than a hash map for per-character work on millions of names.
const LATIN_FIRST: u32 = 0x00C0;
const LATIN_LAST: u32 = 0x01B0;
const EXT_FIRST: u32 = 0x1EA0;
const EXT_LAST: u32 = 0x1EF9;
pub(crate) const SLOTS: usize = (LATIN_LAST - LATIN_FIRST + 1 + EXT_LAST - EXT_FIRST + 1) as usize;

/// Index of `c` in the dense per-letter arrays, if it lies in the Vietnamese letter ranges.
pub(crate) fn slot(c: char) -> Option<usize> {
    let u = c as u32;
    if (LATIN_FIRST..=LATIN_LAST).contains(&u) {
        Some((u - LATIN_FIRST) as usize)
    } else if (EXT_FIRST..=EXT_LAST).contains(&u) {
        Some((LATIN_LAST - LATIN_FIRST + 1 + u - EXT_FIRST) as usize)
    } else {
        None
    }
}

struct Letters {
    by_slot: Vec<Option<Letter>>,
    /// (base, tone) → letter, for moving or changing a tone.
    compose: HashMap<(char, Tone), char>,
}

static LETTERS: LazyLock<Letters> = LazyLock::new(|| {
    let mut by_slot = vec![None; SLOTS];
    let mut compose = HashMap::new();
    for row in super::legacy::rows() {
        let c = row.letter;
        let (base, plain, tone) = split(c);
        if let Some(i) = slot(c) {
            by_slot[i] = Some(Letter {
                base,
                plain,
                tone,
                lower: lower(c),
            });
        }
        compose.insert((base, tone), c);
    }
    // Ð/ð (Latin eth) look exactly like Đ/đ and arrive by copy-paste (NOTES §4.4): read them as đ.
    for (eth, d, plain) in [('Ð', 'Đ', 'D'), ('ð', 'đ', 'd')] {
        if let Some(i) = slot(eth) {
            by_slot[i] = Some(Letter {
                base: d,
                plain,
                tone: 0,
                lower: 'đ',
            });
        }
    }
    Letters { by_slot, compose }
});

/// Splits a precomposed letter into (base with vowel mark, plain letter, tone) using its NFD.
fn split(c: char) -> (char, char, Tone) {
    match c {
        // đ has no decomposition: it is a letter of its own (NOTES §4.1).
        'đ' | 'Đ' => return (c, if c == 'đ' { 'd' } else { 'D' }, 0),
        _ => {}
    }
    let mut parts = std::iter::once(c).nfd();
    let plain = parts.next().unwrap_or(c);
    let mut base = plain;
    let mut tone = 0;
    for mark in parts {
        match tone_of_mark(mark) {
            Some(t) => tone = t,
            None => base = unicode_normalization::char::compose(base, mark).unwrap_or(base),
        }
    }
    (base, plain, tone)
}

fn tone_of_mark(mark: char) -> Option<Tone> {
    match mark {
        '\u{300}' => Some(1),
        '\u{301}' => Some(2),
        '\u{309}' => Some(3),
        '\u{303}' => Some(4),
        '\u{323}' => Some(5),
        _ => None,
    }
}

/// The parts of `c` if it is an ASCII letter, a Vietnamese letter or Ð/ð; `None` otherwise.
pub(crate) fn letter(c: char) -> Option<Letter> {
    if c.is_ascii_alphabetic() {
        return Some(Letter {
            base: c,
            plain: c,
            tone: 0,
            lower: c.to_ascii_lowercase(),
        });
    }
    slot(c).and_then(|i| LETTERS.by_slot[i])
}

/// `base` carrying `tone`; `None` if no such letter exists (`tone` on a consonant).
pub(crate) fn with_tone(base: char, tone: Tone) -> Option<char> {
    if tone == 0 {
        return Some(base);
    }
    LETTERS.compose.get(&(base, tone)).copied()
}

/// Whether `c` is a vowel letter (a ă â e ê i o ô ơ u ư y, any tone, any case).
pub(crate) fn is_vowel(c: char) -> bool {
    letter(c).is_some_and(|l| {
        matches!(
            l.plain.to_ascii_lowercase(),
            'a' | 'e' | 'i' | 'o' | 'u' | 'y'
        )
    })
}

/// Number of letters in `s` that carry a tone mark.
pub(crate) fn count_tones(s: &str) -> usize {
    s.chars()
        .filter(|&c| letter(c).is_some_and(|l| l.tone != 0))
        .count()
}

fn lower(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

/// Initial consonants, longest first so that `ngh` is tried before `ng` (all are tried anyway).
const INITIALS: [&str; 28] = [
    "ngh", "ng", "nh", "ch", "gh", "gi", "kh", "ph", "th", "tr", "qu", "b", "c", "d", "đ", "g",
    "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "x", "",
];

/// Toneless rhymes (medial + nucleus + final) of standard Vietnamese spelling. Slightly generous: a
/// genuine word rejected here could be mistaken for mojibake, a junk one accepted here costs nothing.
const RHYMES: &str = "a e ê i o ô ơ u ư y \
    ai ao au ay âu ây eo êu ia iu oi ôi ơi ua ui ưa ưi ưu iêu yêu uôi ươi ươu \
    oa oai oao oay oe oeo uê uy uya uyu uơ uây \
    am an ang anh ac ach ap at ăm ăn ăng ăc ăp ăt âm ân âng âc âp ât \
    em en eng ec ep et êm ên êng ênh êch êp êt im in inh ich ip it \
    om on ong oc op ot ôm ôn ông ôc ôp ôt ơm ơn ơp ơt \
    um un ung uc up ut ưm ưn ưng ưc ưt \
    iêm iên iêng iêc iêp iêt yêm yên yêt uôm uôn uông uôc uôt ươm ươn ương ươc ươp ươt \
    oam oan oang oanh oac oach oap oat oăm oăn oăng oăc oăt oen oet \
    uân uâng uât uênh uêch uyn uynh uych uyt uyp uyên uyêt";

struct Rhymes {
    all: HashSet<&'static str>,
    /// Rhymes with a medial `u`, minus that `u`: what may follow `qu` (`quý` = qu + y, from `uy`).
    after_qu: HashSet<&'static str>,
}

static RHYME_SET: LazyLock<Rhymes> = LazyLock::new(|| {
    let all: HashSet<&'static str> = RHYMES.split_whitespace().collect();
    let after_qu = all
        .iter()
        .filter_map(|r| r.strip_prefix('u'))
        .filter(|r| !r.is_empty())
        .collect();
    Rhymes { all, after_qu }
});

/// Letters of the Vietnamese alphabet as bases (no f, j, w, z).
fn in_alphabet(b: char) -> bool {
    matches!(
        b,
        'a' | 'ă'
            | 'â'
            | 'b'
            | 'c'
            | 'd'
            | 'đ'
            | 'e'
            | 'ê'
            | 'g'
            | 'h'
            | 'i'
            | 'k'
            | 'l'
            | 'm'
            | 'n'
            | 'o'
            | 'ô'
            | 'ơ'
            | 'p'
            | 'q'
            | 'r'
            | 's'
            | 't'
            | 'u'
            | 'ư'
            | 'v'
            | 'x'
            | 'y'
    )
}

/// Whether `word` is one well-formed Vietnamese written syllable: an initial consonant and a rhyme from
/// the standard inventory, at most one tone, `c/k`, `g/gh`, `ng/ngh` spelt by the following vowel, only
/// sắc or nặng on a syllable closed by c, ch, p, t, and lower, UPPER or Title case. Either tone
/// placement style is accepted. Used to tell genuine text from mojibake.
pub fn is_syllable(word: &str) -> bool {
    let mut chars = word.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let (mut rest_lower, mut rest_upper) = (true, true);
    for c in chars {
        rest_lower &= !c.is_uppercase();
        rest_upper &= !c.is_lowercase();
    }
    if !(rest_lower || (rest_upper && first.is_uppercase())) {
        return false;
    }
    let mut bases = String::with_capacity(16);
    // (tone, index in characters of the letter carrying it)
    let mut tone = (0, 0);
    for (i, c) in word.chars().enumerate() {
        let Some(l) = letter(c) else { return false };
        let b = lower(l.base);
        if !in_alphabet(b) || bases.len() > 12 {
            return false;
        }
        if l.tone != 0 {
            if tone.0 != 0 {
                return false;
            }
            tone = (l.tone, i);
        }
        bases.push(b);
    }
    INITIALS.iter().any(|ini| {
        bases.strip_prefix(ini).is_some_and(|rhyme| {
            let at = tone.1.checked_sub(ini.chars().count());
            rhyme_ok(ini, rhyme, tone.0)
                && (tone.0 == 0 || at.is_some_and(|at| tone_fits(rhyme, at)))
        })
    })
}

/// Whether a tone mark on the `at`-th character of `rhyme` is where Vietnamese spelling puts it: on
/// the vowel with a quality mark (the last one: ươ → ơ), else on the last vowel before a final
/// consonant, else on the first of two vowels (bìa, lụa, tài) or the middle of three (hoài, khuỷu), and
/// on either vowel of open oa, oe, uy (old and new style). Genuine text follows this; VNI mojibake,
/// which writes the tone as a separate character after the vowel ("aù"), does not.
fn tone_fits(rhyme: &str, at: usize) -> bool {
    // One pass, no allocation: vowel positions (first, second, last), count, last marked vowel.
    let (mut first, mut second, mut last, mut vowels, mut marked, mut len) = (0, 0, 0, 0, None, 0);
    for (i, c) in rhyme.chars().enumerate() {
        len = i + 1;
        let is_marked = matches!(c, 'ă' | 'â' | 'ê' | 'ô' | 'ơ' | 'ư');
        if !(is_marked || matches!(c, 'a' | 'e' | 'i' | 'o' | 'u' | 'y')) {
            continue;
        }
        match vowels {
            0 => first = i,
            1 => second = i,
            _ => {}
        }
        last = i;
        vowels += 1;
        if is_marked {
            marked = Some(i);
        }
    }
    if let Some(m) = marked {
        return at == m;
    }
    match vowels {
        0 => false,
        _ if last + 1 < len => at == last,
        1 => at == first,
        2 if matches!(rhyme, "oa" | "oe" | "uy") => at == first || at == last,
        2 => at == first,
        _ => at == second,
    }
}

fn rhyme_ok(initial: &str, rhyme: &str, tone: Tone) -> bool {
    let Some(first) = rhyme.chars().next() else {
        return false;
    };
    let set = &*RHYME_SET;
    let listed = match initial {
        "qu" => set.all.contains(rhyme) || set.after_qu.contains(rhyme),
        // gi swallows the i of iê: giếng = gi + iêng.
        "gi" => {
            first != 'i'
                && (set.all.contains(rhyme)
                    || (first == 'ê' && set.all.contains(format!("i{rhyme}").as_str())))
        }
        _ => set.all.contains(rhyme),
    };
    let front = matches!(first, 'i' | 'e' | 'ê' | 'y');
    let spelt = match initial {
        "k" => front,
        "c" => {
            !front
                && !["uy", "uê", "uâ", "uơ"]
                    .iter()
                    .any(|m| rhyme.starts_with(m))
        }
        "gh" | "ngh" => front && first != 'y',
        // qu already has its medial u: no second medial (o in oa, oe, oă) and no other u.
        "qu" => !["oa", "oe", "oă", "u"].iter().any(|m| rhyme.starts_with(m)),
        "ng" => !front,
        "g" => !matches!(first, 'e' | 'ê' | 'y'),
        _ => true,
    };
    let stop = ["c", "ch", "p", "t"].iter().any(|f| rhyme.ends_with(f));
    listed && spelt && (!stop || tone == SAC || tone == NANG)
}
