//! Whole names compared word by word, in any order and with typos.
//!
//! Part-wise comparison fails when a record swaps or rotates the words of a name ("An Văn Nguyễn" for
//! "Nguyễn Văn An") in a way [`parse_name`](super::parse_name) cannot undo. Here two names agree when
//! their words pair up one to one, in any order, within a number of edits: the least total over all
//! pairings, found exactly by dynamic programming over the subsets of one name's words (a greedy
//! pairing is wrong when a word's best partner is the only good partner of another word: "le anh an"
//! against "le an ann"). At most [`MAX_WORDS`] words, so the table has at most 256 cells and lives
//! on the stack, as does everything else: no allocation, for use on every candidate pair. Most pairs
//! of different people stop before any word distance, on a bound from their letter counts, or after
//! one row of word distances; a word distance stops once above the budget.

/// Most words a name may have to be compared word by word (Vietnamese names have 2 to 5); longer
/// names agree only when their keys are equal.
const MAX_WORDS: usize = 8;

/// Longest word compared with edits (a Vietnamese syllable has at most 7 letters); longer words agree
/// only when equal.
const MAX_WORD_BYTES: usize = 24;

/// The least number of Damerau-Levenshtein edits (optimal string alignment: insertions, deletions,
/// substitutions and adjacent transpositions), summed over the word pairs, that pair the words of
/// `a` and `b` one to one in any order; `None` when it is above `max_edits`.
///
/// `a` and `b` are name keys ([`name_key`](super::name_key) form: ASCII lowercase words, single
/// spaces; other bytes are compared as they are). When one name has one word more (a dropped middle
/// name), that word is left unpaired, at no cost, only if `allow_missing_word` and the shorter name
/// has at least two words: a caller asks without it first to tell "same words" from "one word
/// missing". A blank name agrees with nothing, not even another blank one: it is a missing value.
/// Names of more than eight words, and words of more than 24 letters, agree only when equal.
///
/// `Some(0)` is "the same words in any order"; a caller builds its levels from the count.
pub fn name_edits(a: &str, b: &str, max_edits: u32, allow_missing_word: bool) -> Option<u32> {
    let blank = |s: &str| s.bytes().all(|c| c == b' ');
    if blank(a) || blank(b) {
        return None;
    }
    if a == b {
        return Some(0);
    }
    let (Some((wa, na)), Some((wb, nb))) = (words(a), words(b)) else {
        return None;
    };
    // Rows: the shorter name's words; columns: the other's.
    let ((rows, nr), (cols, nc)) = if na <= nb {
        ((wa, na), (wb, nb))
    } else {
        ((wb, nb), (wa, na))
    };
    match nc - nr {
        0 => {}
        1 if allow_missing_word && nr >= 2 => {}
        _ => return None,
    }
    // Word distances are at most MAX_WORD_BYTES, so sums fit in u16 well below the cap.
    let cap = max_edits.min(200) as u16;
    // (With no edits allowed, the first word without an equal partner ends the search sooner.)
    if cap > 0 && letters_bound(&rows[..nr], &cols[..nc]) > u32::from(cap) {
        return None;
    }
    let over = cap + 1;
    let mut cost = [[over; MAX_WORDS]; MAX_WORDS];
    // Each row's cheapest pair, summed, bounds the total from below: most different names stop here.
    let mut lower = 0;
    for (i, row) in rows[..nr].iter().enumerate() {
        let mut least = over;
        for (j, col) in cols[..nc].iter().enumerate() {
            let d = word_edits(row, col, u32::from(cap)).map_or(over, |d| d as u16);
            cost[i][j] = d;
            least = least.min(d);
        }
        lower += least;
        if lower > cap {
            return None;
        }
    }
    // best[mask]: the least cost of pairing the first popcount(mask) rows with the columns in mask.
    let mut best = [u16::MAX; 1 << MAX_WORDS];
    best[0] = 0;
    let mut answer = over;
    for mask in 0..1usize << nc {
        let so_far = best[mask];
        if so_far > cap {
            continue;
        }
        let row = mask.count_ones() as usize;
        if row == nr {
            answer = answer.min(so_far);
            continue;
        }
        for (j, &c) in cost[row][..nc].iter().enumerate() {
            let bit = 1 << j;
            if mask & bit == 0 {
                let next = &mut best[mask | bit];
                *next = (*next).min(so_far + c);
            }
        }
    }
    (answer <= cap).then_some(u32::from(answer))
}

/// Whether [`name_edits`] is within `max_edits`: the words of `a` and `b` (name keys) pair up one to
/// one, in any order, with at most `max_edits` edits summed over the pairs.
pub fn words_match_fuzzy(a: &str, b: &str, max_edits: u32, allow_missing_word: bool) -> bool {
    name_edits(a, b, max_edits, allow_missing_word).is_some()
}

/// A lower bound on the edits of any pairing of `rows` with `cols`, from their letters alone: an edit
/// changes the counts of at most two letters by one each, so the letter counts of the two names
/// differ by at most twice the edits, plus the letters of a word left unpaired. Counting is much
/// cheaper than the word distances, and the names of two different people rarely pass.
fn letters_bound(rows: &[&[u8]], cols: &[&[u8]]) -> u32 {
    // Bytes share a counter by their low five bits: the a-z of keys each get their own, and merging
    // counters only lowers the bound.
    let mut count = [0i32; 32];
    for &c in rows.iter().copied().flatten() {
        count[usize::from(c & 31)] += 1;
    }
    for &c in cols.iter().copied().flatten() {
        count[usize::from(c & 31)] -= 1;
    }
    let apart: u32 = count.iter().map(|c| c.unsigned_abs()).sum();
    let unpaired = if cols.len() > rows.len() {
        cols.iter().map(|w| w.len() as u32).max().unwrap_or(0)
    } else {
        0
    };
    apart.saturating_sub(unpaired).div_ceil(2)
}

/// The words of `s`, on the stack; `None` when it has more than [`MAX_WORDS`].
fn words(s: &str) -> Option<([&[u8]; MAX_WORDS], usize)> {
    let mut out: [&[u8]; MAX_WORDS] = [&[]; MAX_WORDS];
    let mut n = 0;
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        *out.get_mut(n)? = word.as_bytes();
        n += 1;
    }
    Some((out, n))
}

/// The Damerau-Levenshtein (optimal string alignment) distance of two words, compared byte by byte,
/// if it is at most `max`. Stops as soon as a row of the table is all above `max` (the row minimum
/// never decreases). Words longer than [`MAX_WORD_BYTES`] are only equal or not.
pub(crate) fn word_edits(a: &[u8], b: &[u8], max: u32) -> Option<u32> {
    if a == b {
        return Some(0);
    }
    if max == 0 || a.len().abs_diff(b.len()) > max as usize {
        return None;
    }
    if a.len() > MAX_WORD_BYTES || b.len() > MAX_WORD_BYTES {
        return None;
    }
    // One typo, the usual case, without the table.
    if one_edit_apart(a, b) {
        return Some(1);
    }
    if max == 1 {
        return None;
    }
    // Rows two back, last and this of the distance table (entries at most MAX_WORD_BYTES).
    let mut two = [0u8; MAX_WORD_BYTES + 1];
    let mut last = [0u8; MAX_WORD_BYTES + 1];
    let mut this = [0u8; MAX_WORD_BYTES + 1];
    for (j, cell) in last[..=b.len()].iter_mut().enumerate() {
        *cell = j as u8;
    }
    for (i, &x) in a.iter().enumerate() {
        this[0] = i as u8 + 1;
        let mut least = this[0];
        for (j, &y) in b.iter().enumerate() {
            let cost = u8::from(x != y);
            let mut d = (this[j] + 1).min(last[j + 1] + 1).min(last[j] + cost);
            if i > 0 && j > 0 && x != y && x == b[j - 1] && y == a[i - 1] {
                d = d.min(two[j - 1] + 1);
            }
            this[j + 1] = d;
            least = least.min(d);
        }
        if u32::from(least) > max {
            return None;
        }
        std::mem::swap(&mut two, &mut last);
        std::mem::swap(&mut last, &mut this);
    }
    let d = u32::from(last[b.len()]);
    (d <= max).then_some(d)
}

/// Whether two different words (or any byte strings) are one edit apart: one substitution, one
/// adjacent transposition, or one insertion. A single pass, after their common prefix; equal strings
/// are not one edit apart.
pub fn one_edit_apart(a: &[u8], b: &[u8]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let prefix = short.iter().zip(long).take_while(|(x, y)| x == y).count();
    match long.len() - short.len() {
        // Equal words are not one edit apart; the caller has answered them.
        0 if prefix == short.len() => false,
        0 => {
            short[prefix + 1..] == long[prefix + 1..]
                || (prefix + 1 < short.len()
                    && short[prefix] == long[prefix + 1]
                    && short[prefix + 1] == long[prefix]
                    && short[prefix + 2..] == long[prefix + 2..])
        }
        1 => short[prefix..] == long[prefix + 1..],
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::name_key;

    /// (a, b, max_edits, allow_missing_word, expected least edits)
    type Case = (&'static str, &'static str, u32, bool, Option<u32>);

    fn check(cases: &[Case]) {
        for &(a, b, max, missing, expected) in cases {
            let (ka, kb) = (name_key(a), name_key(b));
            assert_eq!(
                name_edits(&ka, &kb, max, missing),
                expected,
                "{a} / {b}, max {max}"
            );
            // Symmetric, and the boolean form says the same.
            assert_eq!(name_edits(&kb, &ka, max, missing), expected, "{b} / {a}");
            assert_eq!(
                words_match_fuzzy(&ka, &kb, max, missing),
                expected.is_some()
            );
        }
    }

    #[test]
    fn names_in_any_order_with_typos() {
        check(&[
            ("Nguyễn Văn An", "Nguyễn Văn An", 0, false, Some(0)),
            ("Nguyễn Văn An", "NGUYEN VAN AN", 0, false, Some(0)),
            // Swapped first and last word, and both rotations.
            ("Nguyễn Văn An", "An Văn Nguyễn", 0, false, Some(0)),
            ("Nguyễn Văn An", "Văn An Nguyễn", 0, false, Some(0)),
            ("Nguyễn Văn An", "An Nguyễn Văn", 0, false, Some(0)),
            ("Trần Thị Minh Thư", "Thư Minh Thị Trần", 0, false, Some(0)),
            // One typo, in the written order or not.
            ("Nguyễn Văn Hoàng", "Nguyn Văn Hoàng", 1, false, Some(1)),
            ("Nguyễn Văn Hoàng", "Hoàng Văn Nguyn", 1, false, Some(1)),
            ("Trần Thị Lan", "Tarn Thị Lan", 1, false, Some(1)),
            ("Trần Thị Lan", "Tarn Thị Lan", 0, false, None),
            // Two typos in different words: within two, not within one.
            ("Nguyễn Văn Hoàng", "Ngyuễn Văn Hoàn", 2, false, Some(2)),
            ("Nguyễn Văn Hoàng", "Ngyuễn Văn Hoàn", 1, false, None),
            ("Nguyễn Văn Hoàng", "Hoàn Ngyuễn Văn", 2, false, Some(2)),
            // A dropped middle name, only when allowed, and combined with a typo.
            ("Nguyễn Văn An", "Nguyễn An", 0, true, Some(0)),
            ("Nguyễn Văn An", "Nguyễn An", 2, false, None),
            ("Nguyễn Thị Ngọc Anh", "Anh Nguyễn Ngọc", 0, true, Some(0)),
            ("Nguyễn Thị Ngọc Anh", "Nguyễn Ngọc Ánh", 0, true, Some(0)),
            ("Nguyễn Văn An", "Nguyn An", 1, true, Some(1)),
            ("Nguyễn Văn An", "Nguyn An", 0, true, None),
            // Two words missing, or a one-word name: never.
            ("Nguyễn Văn Minh An", "Nguyễn An", 3, true, None),
            ("Nguyễn An", "An", 3, true, None),
            // Different people: one letter apart is one edit (the threshold decides); another name
            // is far.
            ("Nguyễn Văn An", "Nguyễn Văn Anh", 1, false, Some(1)),
            ("Nguyễn Văn An", "Nguyễn Văn Anh", 0, false, None),
            ("Nguyễn Văn An", "Trần Thị Lan", 3, true, None),
            // nguien–thi 5, van–tran 2, an–lan 1: the best of the six pairings.
            ("Nguyễn Văn An", "Trần Thị Lan", 8, false, Some(8)),
            ("Nguyễn Văn An", "Trần Thị Lan", 7, false, None),
            // Same letters, other words: the words must pair up, not the letters.
            ("Văn An", "Vă Nan", 1, false, None),
            // Empty and blank: a missing name agrees with nothing.
            ("", "", 5, true, None),
            ("", "Nguyễn Văn An", 5, true, None),
            ("  ", "  ", 5, true, None),
            ("...", "An", 5, true, None),
        ]);
    }

    #[test]
    fn the_pairing_is_the_best_not_the_greedy_one() {
        // "anh" is one edit from both "an" and "ann"; pairing it with "an" (the first it meets, and as
        // good as "ann") leaves "an"–"ann" for one more edit. The best pairing needs only one.
        assert_eq!(name_edits("le anh an", "le an ann", 3, false), Some(1));
        assert_eq!(name_edits("le an ann", "le anh an", 1, false), Some(1));
        assert_eq!(name_edits("le anh an", "le ann an", 0, false), None);
    }

    #[test]
    fn long_names_and_long_words() {
        let nine = "a b c d e f g h i";
        assert_eq!(name_edits(nine, nine, 0, false), Some(0));
        assert_eq!(name_edits(nine, "i h g f e d c b a", 9, true), None);
        let eight = "a b c d e f g h";
        assert_eq!(name_edits(eight, "h g f e d c b a", 0, false), Some(0));
        assert_eq!(name_edits(eight, "h g f e d c b", 0, true), Some(0));
        let long = "x".repeat(MAX_WORD_BYTES + 1);
        let other = format!("{}y", "x".repeat(MAX_WORD_BYTES));
        assert_eq!(
            name_edits(&format!("an {long}"), &format!("{long} an"), 0, false),
            Some(0)
        );
        assert_eq!(name_edits(&long, &other, 5, false), None);
    }

    /// Unbounded optimal string alignment distance, the textbook way.
    fn osa(a: &[u8], b: &[u8]) -> u32 {
        let mut d = vec![vec![0u32; b.len() + 1]; a.len() + 1];
        for (i, row) in d.iter_mut().enumerate() {
            row[0] = i as u32;
        }
        for (j, cell) in d[0].iter_mut().enumerate() {
            *cell = j as u32;
        }
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                let cost = u32::from(a[i - 1] != b[j - 1]);
                let mut v = (d[i - 1][j] + 1)
                    .min(d[i][j - 1] + 1)
                    .min(d[i - 1][j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    v = v.min(d[i - 2][j - 2] + 1);
                }
                d[i][j] = v;
            }
        }
        d[a.len()][b.len()]
    }

    /// The least total over every pairing, trying every permutation (and every dropped word).
    fn brute_force(a: &[Vec<u8>], b: &[Vec<u8>], allow_missing_word: bool) -> Option<u32> {
        let (rows, cols) = if a.len() <= b.len() { (a, b) } else { (b, a) };
        let extra = cols.len() - rows.len();
        if rows.is_empty() || extra > 1 || (extra == 1 && !(allow_missing_word && rows.len() >= 2))
        {
            return None;
        }
        fn go(rows: &[Vec<u8>], cols: &[Vec<u8>], used: &mut Vec<bool>) -> u32 {
            let Some((row, rest)) = rows.split_first() else {
                return 0;
            };
            let mut best = u32::MAX;
            for j in 0..cols.len() {
                if !used[j] {
                    used[j] = true;
                    best = best.min(osa(row, &cols[j]) + go(rest, cols, used));
                    used[j] = false;
                }
            }
            best
        }
        Some(go(rows, cols, &mut vec![false; cols.len()]))
    }

    /// A small deterministic generator (xorshift), so the cases are the same on every run.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
        /// A word of 0 to 5 letters from a three-letter alphabet, so that near words are common.
        fn word(&mut self) -> Vec<u8> {
            let len = self.below(6) as usize;
            (0..len).map(|_| b"abn"[self.below(3) as usize]).collect()
        }
    }

    #[test]
    fn word_edits_is_the_textbook_distance_bounded() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let (a, b) = (rng.word(), rng.word());
            let max = rng.below(4) as u32;
            let d = osa(&a, &b);
            assert_eq!(
                word_edits(&a, &b, max),
                (d <= max).then_some(d),
                "{a:?} {b:?} {max}"
            );
        }
    }

    #[test]
    fn name_edits_is_the_best_pairing() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        for _ in 0..5_000 {
            let name = |rng: &mut Rng| -> Vec<Vec<u8>> {
                let n = 1 + rng.below(5) as usize;
                (0..n)
                    .map(|_| {
                        let mut w = rng.word();
                        if w.is_empty() {
                            w.push(b'a');
                        }
                        w
                    })
                    .collect()
            };
            let (a, b) = (name(&mut rng), name(&mut rng));
            let max = rng.below(6) as u32;
            let missing = rng.below(2) == 0;
            let join = |ws: &[Vec<u8>]| {
                ws.iter()
                    .map(|w| String::from_utf8_lossy(w).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let (sa, sb) = (join(&a), join(&b));
            let expected = brute_force(&a, &b, missing).filter(|&d| d <= max);
            // Equal keys agree at no cost whatever the word counts.
            let expected = if sa == sb { Some(0) } else { expected };
            assert_eq!(
                name_edits(&sa, &sb, max, missing),
                expected,
                "{sa:?} {sb:?} {max}"
            );
        }
    }
}
