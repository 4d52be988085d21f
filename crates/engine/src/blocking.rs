//! Blocking: candidate pairs are pairs of records with equal keys under some rule. Keys are routed to
//! partitions by a stable hash ([`crate::hash::partition_of`]); a partition is the unit of work of the
//! compare and score tasks, and holds every record of every rule whose key falls in it.
//!
//! A partition with far more work than the others is split into [`Slice`]s: slice `j` of `k` produces
//! the partition's pairs whose left record (for dedupe, the pair's first record) falls in slice `j` by
//! [`crate::hash::slice_of`], so the slices' pairs are the partition's pairs, each in one slice.
//!
//! **Invariant:** each candidate pair is produced exactly once, by the first rule (in spec order) whose
//! keys it shares, and is tagged with that rule: a later rule skips pairs an earlier rule's keys
//! already join.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::hash::{partition_of, slice_of};
use crate::standardise::Table;

/// One key of one record under one rule, ordered by key, then record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    key: u64,
    row: u32,
}

/// The keys of one table that fall in one partition, per rule, sorted so equal keys are neighbours.
/// A partition's table also holds records that are there for another rule's key: their keys under
/// this rule belong to other partitions and are left out.
pub struct Index {
    rules: Vec<Vec<Entry>>,
}

impl Index {
    pub fn build(table: &Table, partitions: u32, partition: u32) -> Index {
        let rules = table
            .keys
            .iter()
            .map(|keys| {
                let mut entries: Vec<Entry> = keys
                    .iter()
                    .enumerate()
                    .filter(|(_, k)| **k != 0 && partition_of(**k, partitions) == partition)
                    .map(|(row, &key)| Entry {
                        key,
                        row: row as u32,
                    })
                    .collect();
                entries.par_sort_unstable();
                entries
            })
            .collect();
        Index { rules }
    }
}

/// Blocks skipped because they would produce more pairs than the cap.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Oversized {
    pub blocks: u64,
    pub pairs: u64,
    pub largest: u64,
}

impl Oversized {
    pub fn merge(&mut self, other: &Oversized) {
        self.blocks += other.blocks;
        self.pairs += other.pairs;
        self.largest = self.largest.max(other.largest);
    }
}

/// Which share of a partition's pairs a task produces: slice `index` of `count` (0 of 1: all of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    pub index: u32,
    pub count: u32,
}

impl Slice {
    pub const WHOLE: Slice = Slice { index: 0, count: 1 };

    /// Whether the pairs whose left record is `record` (a record number) are this slice's.
    pub fn holds(self, record: u64) -> bool {
        self.count <= 1 || slice_of(record, self.count) == self.index
    }
}

impl Default for Slice {
    fn default() -> Self {
        Slice::WHOLE
    }
}

/// What a compare task works on: both sides (the same table twice for dedupe) and their indexes.
pub struct Blocks<'a> {
    pub left: &'a Table,
    pub right: &'a Table,
    pub left_index: &'a Index,
    pub right_index: &'a Index,
    pub dedupe: bool,
    pub max_block_pairs: u64,
}

/// Runs of equal keys in a sorted slice.
fn groups(entries: &[Entry]) -> impl Iterator<Item = &[Entry]> {
    entries.chunk_by(|a, b| a.key == b.key)
}

impl Blocks<'_> {
    /// Whether an earlier rule than `rule` already joins the pair.
    fn found_earlier(&self, rule: usize, l: usize, r: usize) -> bool {
        (0..rule).any(|q| {
            let k = self.left.keys[q][l];
            k != 0 && k == self.right.keys[q][r]
        })
    }

    /// Calls `each(left_row, right_row, rule)` for every candidate pair of the indexes' partition in
    /// `slice`, rule by rule, in a fixed order. Returns, per rule, the blocks skipped as oversized (whole
    /// blocks are skipped in every slice, and counted in slice 0 only).
    pub fn for_each_pair(
        &self,
        slice: Slice,
        mut each: impl FnMut(usize, usize, usize),
    ) -> Vec<Oversized> {
        let rules = self.left.keys.len();
        let mut oversized = vec![Oversized::default(); rules];
        let skip = |skipped: &mut Oversized, pairs: u64| {
            if pairs <= self.max_block_pairs {
                return false;
            }
            if slice.index == 0 {
                skipped.blocks += 1;
                skipped.pairs += pairs;
                skipped.largest = skipped.largest.max(pairs);
            }
            true
        };
        let mine = |a: &Entry| slice.holds(self.left.rows[a.row as usize]);
        for (rule, skipped) in oversized.iter_mut().enumerate() {
            let left = &self.left_index.rules[rule];
            if self.dedupe {
                for group in groups(left) {
                    let n = group.len() as u64;
                    if skip(skipped, n * n.saturating_sub(1) / 2) {
                        continue;
                    }
                    for (i, a) in group.iter().enumerate().filter(|(_, a)| mine(a)) {
                        for b in &group[i + 1..] {
                            let (l, r) = (a.row as usize, b.row as usize);
                            if !self.found_earlier(rule, l, r) {
                                each(l, r, rule);
                            }
                        }
                    }
                }
                continue;
            }
            let right = &self.right_index.rules[rule];
            let mut right_groups = groups(right).peekable();
            for group in groups(left) {
                let key = group[0].key;
                while right_groups.peek().is_some_and(|g| g[0].key < key) {
                    right_groups.next();
                }
                let Some(matching) = right_groups.peek().filter(|g| g[0].key == key) else {
                    continue;
                };
                if skip(skipped, group.len() as u64 * matching.len() as u64) {
                    continue;
                }
                for a in group.iter().filter(|a| mine(a)) {
                    for b in *matching {
                        let (l, r) = (a.row as usize, b.row as usize);
                        if !self.found_earlier(rule, l, r) {
                            each(l, r, rule);
                        }
                    }
                }
            }
        }
        oversized
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::hash_str;
    use crate::standardise::Strings;

    /// A table of `n` records (numbered across two files) with the given key per rule; `None` is no key.
    fn table(n: usize, key: impl Fn(usize, usize) -> Option<u32>, rules: usize) -> Table {
        let mut ids = Strings::default();
        for r in 0..n {
            ids.push(&format!("r{r}"));
        }
        Table {
            source: "t".into(),
            ids,
            rows: (0..n as u64)
                .map(|r| match r.checked_sub(n as u64 / 2) {
                    Some(second) => (1 << 40) | second,
                    None => r,
                })
                .collect(),
            fields: Vec::new(),
            keys: (0..rules)
                .map(|q| {
                    (0..n)
                        .map(|r| key(q, r).map_or(0, |k| hash_str(&format!("{q}:{k}"))))
                        .collect()
                })
                .collect(),
        }
    }

    /// Skewed keys: under rule 0 half the records share one key (a hot block), the rest pair up;
    /// rule 1 joins records ten apart (some pairs rule 0 already joins); every 13th record has no
    /// rule-0 key.
    fn skewed(q: usize, r: usize) -> Option<u32> {
        match q {
            0 if r % 13 == 5 => None,
            0 if r.is_multiple_of(2) => Some(0),
            0 => Some(1 + r as u32 / 4),
            _ => Some(r as u32 / 10),
        }
    }

    fn pairs_of(blocks: &Blocks, slice: Slice) -> (Vec<(usize, usize, usize)>, Vec<Oversized>) {
        let mut pairs = Vec::new();
        let oversized = blocks.for_each_pair(slice, |l, r, rule| pairs.push((l, r, rule)));
        (pairs, oversized)
    }

    /// Every pair of every partition is in exactly one slice, whatever the number of slices, and
    /// oversized blocks are reported once; a pair's keys fall in the partition that produced it.
    fn slices_cover_each_pair_once(left: &Table, right: Option<&Table>, partitions: u32) {
        let mut total = 0;
        for max_block_pairs in [u64::MAX, 10_000] {
            for partition in 0..partitions {
                let left_index = Index::build(left, partitions, partition);
                let right_index = right.map(|r| Index::build(r, partitions, partition));
                let blocks = Blocks {
                    left,
                    right: right.unwrap_or(left),
                    left_index: &left_index,
                    right_index: right_index.as_ref().unwrap_or(&left_index),
                    dedupe: right.is_none(),
                    max_block_pairs,
                };
                let (mut whole, whole_oversized) = pairs_of(&blocks, Slice::WHOLE);
                for &(l, _, rule) in &whole {
                    assert_eq!(partition_of(left.keys[rule][l], partitions), partition);
                }
                whole.sort_unstable();
                total += whole.len();
                for count in 2..=7 {
                    let mut union = Vec::new();
                    let mut oversized = vec![Oversized::default(); whole_oversized.len()];
                    for index in 0..count {
                        let (pairs, o) = pairs_of(&blocks, Slice { index, count });
                        for (l, _, _) in &pairs {
                            assert!(Slice { index, count }.holds(left.rows[*l]));
                        }
                        union.extend(pairs);
                        for (a, b) in oversized.iter_mut().zip(&o) {
                            a.merge(b);
                        }
                    }
                    union.sort_unstable();
                    assert_eq!(union, whole, "partition {partition}, {count} slices");
                    assert_eq!(
                        oversized, whole_oversized,
                        "partition {partition}, {count} slices"
                    );
                }
            }
        }
        assert!(total > 600, "too few pairs to test: {total}");
    }

    #[test]
    fn the_slices_of_a_skewed_dedupe_partition_hold_its_pairs_once() {
        slices_cover_each_pair_once(&table(400, skewed, 2), None, 4);
    }

    #[test]
    fn the_slices_of_a_skewed_link_partition_hold_its_pairs_once() {
        let right = table(900, skewed, 2);
        slices_cover_each_pair_once(&table(60, skewed, 2), Some(&right), 4);
    }
}
