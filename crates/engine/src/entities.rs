//! Entities, not rows: in a link job, the right-side candidates of each left record are compared
//! with each other.
//!
//! A person registered twice in the population (a second PIN, or only an old CMND) gives a civil
//! servant two strong candidates. Alone, the reconciliation could only call that `ambiguous` or
//! pick one, and the register's duplicate went unreported. So the score tasks keep the standardised
//! right records of every pair at or above the review threshold, and the write stage compares each
//! left record's candidates pairwise with the same model (a dedupe of the right side restricted to
//! those candidates: a few pairs per left record). Candidates that match each other are one person:
//! the left record is `matched` to that person and the reconciliation names every record of it;
//! it is `ambiguous` only when its matches are different people. The right-side pairs found are the
//! `duplicates/` output, with their evidence, for the register's owner, and join the entities.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;

use crate::EngineError;
use crate::clusters::Forest;
use crate::compare::{Compiled, Scratch, gamma_vector};
use crate::exchange::batch_to_table;
use crate::model::{Scorer, probability};
use crate::spec::JobSpec;
use crate::standardise::Table;
use crate::storage::ScratchFiles;
use crate::task::ScoredPart;

/// The most candidates of one left record compared with each other (its best by probability): a
/// common name at the review threshold must not cost a quadratic number of pairs.
pub const MAX_CANDIDATES: usize = 20;

/// The standardised right records of the pairs at or above review, once each.
pub(crate) struct Candidates {
    table: Table,
    /// Record number → row of `table`.
    rows: FxHashMap<u64, usize>,
}

impl Candidates {
    /// Reads, of what the score tasks kept, the records `needed` (record numbers); a record kept
    /// by several partitions is read once.
    pub(crate) fn load(
        spec: &JobSpec,
        files: &ScratchFiles,
        parts: &[ScoredPart],
        needed: &rustc_hash::FxHashSet<u64>,
    ) -> Result<Candidates, EngineError> {
        let input = &spec.inputs[1];
        let mut table = crate::standardise::Plan::new(spec, input).empty_table();
        let mut rows = FxHashMap::default();
        for file in parts.iter().filter_map(|p| p.candidates_file.as_ref()) {
            for batch in files.ipc(file)?.read_all()? {
                let t = batch_to_table(spec, input, &batch)?;
                // A partition holds each record once; other partitions may hold it too.
                let new: Vec<usize> = (0..t.len())
                    .filter(|&r| needed.contains(&t.rows[r]) && !rows.contains_key(&t.rows[r]))
                    .collect();
                let start = table.len();
                for (i, &r) in new.iter().enumerate() {
                    rows.insert(t.rows[r], start + i);
                }
                table.append(t.select(&new));
            }
        }
        Ok(Candidates { table, rows })
    }
}

/// Two right records found to be one person through a left record's candidates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Duplicate {
    /// Positions of the two right records among the side's kept records, `a < b`.
    pub a: u32,
    pub b: u32,
    pub weight: f64,
    pub probability: f64,
    pub gammas: u64,
    /// The left record (position) whose candidates they were.
    pub via: u32,
}

/// Compares the candidates of each left record pairwise: `per_left` gives a left record and its
/// candidates at or above review (right positions with their record numbers), its best
/// [`MAX_CANDIDATES`] at most. Returns the pairs at or above the match threshold, each once, in
/// (a, b) order.
pub(crate) fn duplicates(
    spec: &JobSpec,
    comparisons: &[Compiled],
    scorer: &Scorer,
    candidates: &Candidates,
    per_left: impl Iterator<Item = (u32, Vec<(u32, u64)>)>,
) -> Vec<Duplicate> {
    let threshold = spec.thresholds.match_;
    let t = &candidates.table;
    let mut seen = BTreeSet::new();
    let mut found = Vec::new();
    let mut scratch = Scratch::default();
    let mut buf = (String::new(), String::new());
    for (left, mut list) in per_left {
        // Right positions in order, so a pair is always (smaller, larger).
        list.sort_unstable();
        for (i, &(a, record_a)) in list.iter().enumerate() {
            let Some(&ra) = candidates.rows.get(&record_a) else {
                continue;
            };
            for &(b, record_b) in &list[i + 1..] {
                let Some(&rb) = candidates.rows.get(&record_b) else {
                    continue;
                };
                if !seen.insert((a, b)) {
                    continue;
                }
                let gammas = gamma_vector(comparisons, t, ra, t, rb, &mut scratch);
                let weight = scorer.weight(gammas, |c| {
                    scorer.tf_weight(comparisons, c, t, ra, &mut buf)
                });
                let p = probability(weight);
                if p >= threshold {
                    found.push(Duplicate {
                        a,
                        b,
                        weight,
                        probability: p,
                        gammas,
                        via: left,
                    });
                }
            }
        }
    }
    found.sort_unstable_by_key(|d| (d.a, d.b));
    found
}

/// Which right records are one person by the duplicates found: a root per right position (the
/// smallest position of its group).
pub(crate) fn people(right: usize, duplicates: &[Duplicate]) -> Vec<u32> {
    let mut forest = Forest::new(right);
    for d in duplicates {
        forest.union(d.a, d.b, u32::MAX);
    }
    forest.roots()
}
