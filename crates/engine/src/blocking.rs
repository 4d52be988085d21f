//! Blocking: candidate pairs are pairs of records with equal keys under some rule. Keys are routed to
//! partitions by a stable hash ([`crate::hash::partition_of`]); a partition is the unit of work of the
//! compare and score tasks, and holds every record of every rule whose key falls in it.
//!
//! **Invariant:** each candidate pair is produced exactly once, by the first rule (in spec order) whose
//! keys it shares, and is tagged with that rule: a later rule skips pairs an earlier rule's keys
//! already join.

use rayon::prelude::*;

use crate::hash::partition_of;
use crate::standardise::Table;

/// One key of one record under one rule, ordered by partition, then key, then record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    partition: u32,
    key: u64,
    row: u32,
}

/// The keys of one table under every rule, sorted so each partition's keys are one slice.
pub struct Index {
    rules: Vec<Vec<Entry>>,
}

impl Index {
    pub fn build(table: &Table, partitions: u32) -> Index {
        let rules = table
            .keys
            .iter()
            .map(|keys| {
                let mut entries: Vec<Entry> = keys
                    .par_iter()
                    .enumerate()
                    .filter(|(_, k)| **k != 0)
                    .map(|(row, &key)| Entry {
                        partition: partition_of(key, partitions),
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

    fn slice(&self, rule: usize, partition: u32) -> &[Entry] {
        let entries = &self.rules[rule];
        let start = entries.partition_point(|e| e.partition < partition);
        let end = entries.partition_point(|e| e.partition <= partition);
        &entries[start..end]
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

    /// Calls `each(left_row, right_row, rule)` for every candidate pair of `partition`, rule by rule,
    /// in a fixed order. Returns, per rule, the blocks skipped as oversized.
    pub fn for_each_pair(
        &self,
        partition: u32,
        mut each: impl FnMut(usize, usize, usize),
    ) -> Vec<Oversized> {
        let rules = self.left.keys.len();
        let mut oversized = vec![Oversized::default(); rules];
        for (rule, skipped) in oversized.iter_mut().enumerate() {
            let left = self.left_index.slice(rule, partition);
            if self.dedupe {
                for group in groups(left) {
                    let n = group.len() as u64;
                    let pairs = n * n.saturating_sub(1) / 2;
                    if pairs > self.max_block_pairs {
                        skipped.blocks += 1;
                        skipped.pairs += pairs;
                        skipped.largest = skipped.largest.max(pairs);
                        continue;
                    }
                    for (i, a) in group.iter().enumerate() {
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
            let right = self.right_index.slice(rule, partition);
            let mut right_groups = groups(right).peekable();
            for group in groups(left) {
                let key = group[0].key;
                while right_groups.peek().is_some_and(|g| g[0].key < key) {
                    right_groups.next();
                }
                let Some(matching) = right_groups.peek().filter(|g| g[0].key == key) else {
                    continue;
                };
                let pairs = group.len() as u64 * matching.len() as u64;
                if pairs > self.max_block_pairs {
                    skipped.blocks += 1;
                    skipped.pairs += pairs;
                    skipped.largest = skipped.largest.max(pairs);
                    continue;
                }
                for a in group {
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
