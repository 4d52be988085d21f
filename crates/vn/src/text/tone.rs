//! Word-level spelling variants that leave the pronunciation alone: tone-mark placement (hòa/hoà) and
//! final i/y (Lý/Lí). Both take NFC text and borrow it back when no word changes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use unicode_normalization::char::is_combining_mark;

use super::ToneStyle;
use super::letters::{is_vowel, letter, with_tone};

const CSV: &str = include_str!("../../data/tone_placement.csv");

/// Old-style nucleus pair → new-style pair, and back, for every case combination (`Ủy` as well as
/// `ủy` and `ỦY`, since the word may be capitalised).
struct Pairs {
    to_new: HashMap<(char, char), (char, char)>,
    to_old: HashMap<(char, char), (char, char)>,
}

static PAIRS: LazyLock<Pairs> = LazyLock::new(|| {
    let mut p = Pairs {
        to_new: HashMap::new(),
        to_old: HashMap::new(),
    };
    let two = |s: &str| {
        let mut cs = s.chars();
        match (cs.next(), cs.next(), cs.next()) {
            (Some(a), Some(b), None) => Some((a, b)),
            _ => None,
        }
    };
    for line in CSV.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (Some(old), Some(new)) = (f.get(2).and_then(|s| two(s)), f.get(3).and_then(|s| two(s)))
        else {
            continue;
        };
        for (up_a, up_b) in [(false, false), (false, true), (true, false), (true, true)] {
            let o = (case(old.0, up_a), case(old.1, up_b));
            let n = (case(new.0, up_a), case(new.1, up_b));
            p.to_new.insert(o, n);
            p.to_old.insert(n, o);
        }
    }
    p
});

fn case(c: char, upper: bool) -> char {
    let mapped: String = if upper {
        c.to_uppercase().collect()
    } else {
        c.to_lowercase().collect()
    };
    let mut m = mapped.chars();
    match (m.next(), m.next()) {
        (Some(x), None) => x,
        _ => c,
    }
}

/// A letter for word splitting. Vietnamese letters are found in the letter table first because
/// `char::is_alphabetic` is a slow table search for non-ASCII characters.
pub(crate) fn is_letter(c: char) -> bool {
    c.is_ascii_alphabetic() || (!c.is_ascii() && (letter(c).is_some() || c.is_alphabetic()))
}

/// Rewrites word endings. For each word (maximal run of letters) of two letters or more, `f` gets its
/// last three letters (two if that is all there is) and may return new last two letters. Words
/// followed by a combining mark are skipped: their last letter is not what it seems, and changing it
/// could leave text that is not NFC. Borrows `s` when nothing changes, the usual case.
fn rewrite_word_ends(s: &str, mut f: impl FnMut(&[char]) -> Option<(char, char)>) -> Cow<'_, str> {
    let mut out: Option<String> = None;
    let mut copied = 0; // bytes of `s` already in `out`
    let (mut tail, mut tail_at, mut len) = (['\0'; 3], [0usize; 3], 0usize);
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if !is_letter(c) {
            len = 0;
            continue;
        }
        tail = [tail[1], tail[2], c];
        tail_at = [tail_at[1], tail_at[2], i];
        len += 1;
        let next = it.peek().map(|&(_, n)| n);
        if next.is_some_and(is_letter) {
            continue;
        }
        if len >= 2
            && !next.is_some_and(is_combining_mark)
            && let Some((a, b)) = f(&tail[3 - len.min(3)..])
        {
            let o = out.get_or_insert_with(|| String::with_capacity(s.len() + 8));
            o.push_str(&s[copied..tail_at[1]]);
            o.push(a);
            o.push(b);
            copied = i + c.len_utf8();
        }
        len = 0;
    }
    match out {
        None => Cow::Borrowed(s),
        Some(mut o) => {
            o.push_str(&s[copied..]);
            Cow::Owned(o)
        }
    }
}

/// `s` (NFC) with the tone of every word-final oa/oe/uy nucleus in `style`'s position.
pub(crate) fn restyle(s: &str, style: ToneStyle) -> Cow<'_, str> {
    let map = match style {
        ToneStyle::New => &PAIRS.to_new,
        ToneStyle::Old => &PAIRS.to_old,
    };
    let plain = |c: char| letter(c).map(|l| l.plain.to_ascii_lowercase());
    rewrite_word_ends(s, |t| {
        let (x, y) = (t[t.len() - 2], t[t.len() - 1]);
        // Cheap filter before hashing: the pair must be o/u followed by a/e/y.
        if !matches!(plain(y), Some('a' | 'e' | 'y')) || !matches!(plain(x), Some('o' | 'u')) {
            return None;
        }
        let new = map.get(&(x, y))?;
        // Word-final pair = open syllable. After qu the u is part of the initial (quý has one vowel),
        // and after another vowel the pair is not the nucleus.
        match t {
            [before, _, _] if is_vowel(*before) || matches!(before, 'q' | 'Q') => None,
            _ => Some(*new),
        }
    })
}

/// `s` (NFC) with every word-final i ↔ y that follows a consonant swapped, tone and case kept.
pub(crate) fn swap_final_i_y(s: &str) -> Cow<'_, str> {
    rewrite_word_ends(s, |t| {
        let (before, last) = (t[t.len() - 2], t[t.len() - 1]);
        let l = letter(last)?;
        let other = match l.base {
            'i' => 'y',
            'y' => 'i',
            'I' => 'Y',
            'Y' => 'I',
            _ => return None,
        };
        if is_vowel(before) || letter(before).is_none() {
            return None;
        }
        // After g, gh and ngh only i is ever written (gì, ghi, Nghi): a y there is no variant.
        let g_h = matches!(before, 'h' | 'H') && matches!(t, [g, _, _] if matches!(g, 'g' | 'G'));
        if matches!(before, 'g' | 'G') || g_h {
            return None;
        }
        Some((before, with_tone(other, l.tone)?))
    })
}
