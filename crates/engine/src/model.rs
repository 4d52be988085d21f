//! The Fellegi–Sunter model: per comparison level, m (the probability of the level among matches) and
//! u (among non-matches); the prior λ that two random records match; term-frequency tables.
//!
//! Training follows the unsupervised recipe that Splink made standard: u from comparing random record
//! pairs, m by expectation–maximisation over the blocked pairs (with u held fixed), λ from a
//! deterministic rule. EM runs over the distinct gamma patterns and their counts, so it sees every
//! blocked pair at the cost of a few thousand patterns, and its result does not depend on the order
//! pairs were found in.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use serde::{Deserialize, Serialize};

use crate::EngineError;
use crate::compare::{Compiled, NULL, gamma_at};

/// Probabilities are kept away from 0 and 1 so every weight is finite.
const FLOOR: f64 = 1e-9;
/// A level no match showed in training is rare among matches, not impossible: its weight is bounded
/// (about -14 bits against a common level) so one odd field cannot veto every other agreement.
const M_FLOOR: f64 = 1e-5;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LevelModel {
    pub name: String,
    /// The gamma value of this level in `gamma_<comparison>` columns.
    pub gamma: u8,
    pub m: f64,
    pub u: f64,
    /// log2(m / u): the evidence this level adds to a pair's match weight.
    pub weight: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComparisonModel {
    pub name: String,
    /// Levels in gamma order, the null level (gamma 0, weight 0) excluded.
    pub levels: Vec<LevelModel>,
    pub term_frequency: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TfSummary {
    pub comparison: String,
    pub distinct_values: u64,
    pub total: u64,
    /// The most frequent values and their relative frequency.
    pub top: Vec<(String, f64)>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Training {
    pub u_pairs: u64,
    pub blocked_pairs: u64,
    pub gamma_patterns: u64,
    pub em_iterations: u32,
    pub em_converged: bool,
    /// EM's estimate of the share of matches among blocked pairs.
    pub blocked_match_share: f64,
    /// How the prior was set: `rule:<name>` or `em`.
    pub prior_from: String,
}

/// What `model.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// λ: the probability that two records drawn at random are the same person.
    pub prior: f64,
    pub comparisons: Vec<ComparisonModel>,
    pub term_frequencies: Vec<TfSummary>,
    pub training: Training,
}

/// Term frequencies of one comparison's values: how often each value occurs among all records, as
/// tasks hand them on (counted by [`TfCounter`]).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TfTable {
    pub counts: FxHashMap<String, u64>,
    pub total: u64,
}

impl TfTable {
    pub fn merge(&mut self, other: TfTable) {
        for (value, n) in other.counts {
            *self.counts.entry(value).or_default() += n;
        }
        self.total += other.total;
    }

    pub fn frequency(&self, value: &str) -> Option<f64> {
        self.counts
            .get(value)
            .map(|&c| c as f64 / self.total.max(1) as f64)
    }

    pub fn summary(&self, comparison: &str) -> TfSummary {
        let mut top: Vec<(&String, &u64)> = self.counts.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        TfSummary {
            comparison: comparison.to_owned(),
            distinct_values: self.counts.len() as u64,
            total: self.total,
            top: top
                .into_iter()
                .take(20)
                .map(|(v, &c)| (v.clone(), c as f64 / self.total.max(1) as f64))
                .collect(),
        }
    }
}

/// A [`TfTable`] being counted, by a 64-bit hash of each value: counting a value hashes its text once
/// and finds its count by a number, and the text is copied only when the value is first met. A task
/// counts its records a chunk at a time ([`ChunkTf`], in parallel) and merges the chunks here in
/// input order. Standardising counts three name parts of every record of the population this way.
///
/// **Invariant:** two values are counted apart unless their hashes collide (2^-64 a pair of distinct
/// values; the table is then the same in every run, as the hash is fixed).
#[derive(Default)]
pub struct TfCounter {
    counts: FxHashMap<u64, (u64, Box<str>)>,
    total: u64,
}

impl TfCounter {
    fn hash(value: &str) -> u64 {
        use std::hash::BuildHasher;
        rustc_hash::FxBuildHasher.hash_one(value)
    }

    /// Adds a chunk's counts; `value(row)` gives the text of a value this counter has not met yet,
    /// from the row the chunk remembered for it.
    pub fn merge_chunk(&mut self, other: ChunkTf, mut value: impl FnMut(u32) -> Box<str>) {
        for (h, (n, row)) in other.counts {
            self.counts.entry(h).or_insert_with(|| (0, value(row))).0 += n;
        }
        self.total += other.total;
    }

    pub fn into_table(self) -> TfTable {
        TfTable {
            counts: self
                .counts
                .into_values()
                .map(|(n, value)| (value.into(), n))
                .collect(),
            total: self.total,
        }
    }
}

/// A chunk of records' term frequencies, counted as a [`TfCounter`] counts them but holding, for each
/// value, a row of the chunk that has it instead of a copy of its text: the chunk's records are at
/// hand when it is merged into its task's counter ([`TfCounter::merge_chunk`]), which copies the text
/// of values it has not met. Copying every distinct value of every chunk, to free most copies again
/// at the merge, was a few million allocations for a 10 M population.
#[derive(Default)]
pub struct ChunkTf {
    counts: FxHashMap<u64, (u64, u32)>,
    total: u64,
}

impl ChunkTf {
    /// Room for `values` distinct values before the table grows.
    pub fn with_capacity(values: usize) -> Self {
        ChunkTf {
            counts: FxHashMap::with_capacity_and_hasher(values, Default::default()),
            total: 0,
        }
    }

    /// Counts `value`, which row `row` of the chunk has.
    pub fn add(&mut self, value: &str, row: u32) {
        self.counts
            .entry(TfCounter::hash(value))
            .or_insert((0, row))
            .0 += 1;
        self.total += 1;
    }

    /// Takes back one [`ChunkTf::add`] of `value` (a record counted, then found to be a duplicate).
    /// A value whose remembered row is taken back is met in another row too unless its count falls
    /// to 0, and the rows hold equal text.
    pub fn remove(&mut self, value: &str) {
        let h = TfCounter::hash(value);
        if let Some((n, _)) = self.counts.get_mut(&h) {
            *n -= 1;
            if *n == 0 {
                self.counts.remove(&h);
            }
            self.total -= 1;
        }
    }
}

/// Per comparison, per gamma: a probability.
pub type Table = Vec<Vec<f64>>;

/// u from gamma counts of random pairs: the share of each level among non-null comparisons.
pub fn u_from_counts(comparisons: &[Compiled], counts: &[Vec<u64>]) -> Table {
    comparisons
        .iter()
        .zip(counts)
        .map(|(c, counts)| {
            let non_null: u64 = counts.iter().skip(1).sum();
            // A level never seen among random pairs is rare, not impossible: half a count.
            let floor = 0.5 / non_null.max(1) as f64;
            (0..c.gammas())
                .map(|g| {
                    if g == usize::from(NULL) {
                        1.0
                    } else {
                        (counts[g] as f64 / non_null.max(1) as f64).max(floor)
                    }
                })
                .collect()
        })
        .collect()
}

/// Starting m: most matches agree at the first level, fewer at each following one.
fn initial_m(comparisons: &[Compiled]) -> Table {
    comparisons
        .iter()
        .map(|c| {
            let levels = c.gammas() - 1;
            let mut m = vec![1.0];
            let raw: Vec<f64> = (0..levels).map(|i| 0.1f64.powi(i as i32)).collect();
            let total: f64 = raw.iter().sum();
            m.extend(raw.iter().map(|r| r / total));
            m
        })
        .collect()
}

pub struct EmResult {
    pub m: Table,
    pub lambda: f64,
    pub iterations: u32,
    pub converged: bool,
}

/// How a comparison takes part in an EM session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Left out: the session's blocking rule is on this comparison's field, so every pair agrees on it
    /// by construction.
    Off,
    /// Its m is known from an earlier session: it weighs the pairs but is not re-estimated.
    Fixed,
    /// Its m is estimated.
    Free,
}

/// Expectation–maximisation of m and the match share over gamma patterns, u fixed. `known` gives the
/// m of the `Fixed` comparisons; the `Free` ones start from a default and are estimated.
pub fn em(
    comparisons: &[Compiled],
    roles: &[Role],
    known: &Table,
    patterns: &BTreeMap<u64, u64>,
    u: &Table,
    max_iterations: u32,
    tolerance: f64,
) -> EmResult {
    let mut m = initial_m(comparisons);
    for (i, role) in roles.iter().enumerate() {
        if *role == Role::Fixed {
            m[i].clone_from(&known[i]);
        }
    }
    let mut lambda: f64 = 0.5;
    let total: f64 = patterns.values().map(|&n| n as f64).sum();
    let mut iterations = 0;
    let mut converged = false;
    while iterations < max_iterations {
        iterations += 1;
        let mut m_sums: Table = comparisons.iter().map(|c| vec![0.0; c.gammas()]).collect();
        let mut matches = 0.0;
        for (&pattern, &count) in patterns {
            let (mut log_m, mut log_u) = (lambda.ln(), (1.0 - lambda).ln());
            for (i, _) in comparisons.iter().enumerate() {
                let g = usize::from(gamma_at(pattern, i));
                if roles[i] != Role::Off && g != usize::from(NULL) {
                    log_m += m[i][g].max(FLOOR).ln();
                    log_u += u[i][g].max(FLOOR).ln();
                }
            }
            let p = 1.0 / (1.0 + (log_u - log_m).exp());
            let weighted = p * count as f64;
            matches += weighted;
            for (i, sums) in m_sums.iter_mut().enumerate() {
                sums[usize::from(gamma_at(pattern, i))] += weighted;
            }
        }
        let mut change: f64 = 0.0;
        for (i, sums) in m_sums.iter().enumerate() {
            let non_null: f64 = sums.iter().skip(1).sum();
            if roles[i] != Role::Free || non_null <= 0.0 {
                continue;
            }
            for g in 1..sums.len() {
                let new = (sums[g] / non_null).clamp(M_FLOOR, 1.0 - M_FLOOR);
                change = change.max((new - m[i][g]).abs());
                m[i][g] = new;
            }
        }
        let new_lambda = (matches / total.max(1.0)).clamp(FLOOR, 1.0 - FLOOR);
        change = change.max((new_lambda - lambda).abs());
        lambda = new_lambda;
        if change < tolerance {
            converged = true;
            break;
        }
    }
    EmResult {
        m,
        lambda,
        iterations,
        converged,
    }
}

impl Model {
    pub fn build(
        comparisons: &[Compiled],
        m: &Table,
        u: &Table,
        prior: f64,
        term_frequencies: Vec<TfSummary>,
        training: Training,
    ) -> Model {
        let comparisons = comparisons
            .iter()
            .enumerate()
            .map(|(i, c)| ComparisonModel {
                name: c.name.clone(),
                term_frequency: c.term_frequency,
                levels: (1..c.gammas())
                    .map(|g| LevelModel {
                        name: c.gamma_name(g as u8),
                        gamma: g as u8,
                        m: m[i][g],
                        u: u[i][g],
                        weight: (m[i][g].max(FLOOR) / u[i][g].max(FLOOR)).log2(),
                    })
                    .collect(),
            })
            .collect();
        Model {
            prior: prior.clamp(FLOOR, 1.0 - FLOOR),
            comparisons,
            term_frequencies,
            training,
        }
    }

    /// A saved model, checked against the job's comparisons.
    pub fn load(path: &std::path::Path, comparisons: &[Compiled]) -> Result<Model, EngineError> {
        let text = std::fs::read_to_string(path).map_err(|e| EngineError::Spec {
            path: "training.model".into(),
            message: format!("{}: {e}", path.display()),
        })?;
        Self::parse(&text, &path.display().to_string(), comparisons)
    }

    /// A model from its JSON text (`origin` names where it came from, for errors), checked against
    /// the job's comparisons.
    pub fn parse(text: &str, origin: &str, comparisons: &[Compiled]) -> Result<Model, EngineError> {
        let model: Model = serde_json::from_str(text).map_err(|e| EngineError::Spec {
            path: "training.model".into(),
            message: format!("{origin}: {e}"),
        })?;
        let matches = model.comparisons.len() == comparisons.len()
            && model
                .comparisons
                .iter()
                .zip(comparisons)
                .all(|(m, c)| m.name == c.name && m.levels.len() == c.gammas() - 1);
        if !matches {
            return Err(EngineError::Spec {
                path: "training.model".into(),
                message: "the saved model's comparisons and levels differ from the spec's".into(),
            });
        }
        Ok(model)
    }

    /// Per comparison, per gamma: the weight (0 for null).
    pub fn weights(&self) -> Table {
        self.comparisons
            .iter()
            .map(|c| {
                let mut w = vec![0.0];
                w.extend(c.levels.iter().map(|l| l.weight));
                w
            })
            .collect()
    }

    pub fn prior_weight(&self) -> f64 {
        (self.prior / (1.0 - self.prior)).log2()
    }

    pub fn m_of(&self, comparison: usize, gamma: u8) -> f64 {
        self.comparisons[comparison].levels[usize::from(gamma) - 1].m
    }
}

/// How a pair's gammas become its match weight: the prior's weight plus each comparison's weight
/// at its gamma, the first level of a term-frequency comparison adjusted by how common the first
/// record's value is (`m / frequency`).
pub struct Scorer {
    weights: Table,
    prior_weight: f64,
    /// Per comparison, whether its first level is adjusted by term frequency.
    tf_first_level: Vec<bool>,
    /// Per comparison, `m` of its first level (0 when it has no levels).
    first_m: Vec<f64>,
    tf_tables: Vec<TfTable>,
}

impl Scorer {
    pub fn new(model: &Model, tf_tables: Vec<TfTable>, comparisons: &[Compiled]) -> Scorer {
        use crate::spec::Level;
        Scorer {
            weights: model.weights(),
            prior_weight: model.prior_weight(),
            tf_first_level: comparisons
                .iter()
                .map(|c| c.term_frequency && matches!(c.levels[0], Level::Exact | Level::ExactKey))
                .collect(),
            first_m: (0..comparisons.len())
                .map(|i| model.comparisons[i].levels.first().map_or(0.0, |l| l.m))
                .collect(),
            tf_tables,
        }
    }

    /// Whether comparison `i`'s first level is adjusted by term frequency.
    pub fn adjusts(&self, i: usize) -> bool {
        self.tf_first_level[i]
    }

    /// Comparison `i`'s adjusted first-level weight for record `row` of `table`; `None` when its
    /// value has no frequency (the level's own weight applies).
    pub fn tf_weight(
        &self,
        comparisons: &[Compiled],
        i: usize,
        table: &crate::standardise::Table,
        row: usize,
        buf: &mut (String, String),
    ) -> Option<f64> {
        let frequency = self.tf_tables[i].frequency(comparisons[i].tf_value(table, row, buf)?)?;
        Some((self.first_m[i] / frequency.max(1e-12)).log2())
    }

    /// The weight of a pair with `gammas`; `tf(i)` gives comparison `i`'s adjusted first-level
    /// weight, asked only where [`Scorer::adjusts`] and the pair is at the first level.
    pub fn weight(&self, gammas: u64, mut tf: impl FnMut(usize) -> Option<f64>) -> f64 {
        let mut weight = self.prior_weight;
        for (i, w) in self.weights.iter().enumerate() {
            let g = gamma_at(gammas, i);
            if g == 1
                && self.tf_first_level[i]
                && let Some(adjusted) = tf(i)
            {
                weight += adjusted;
                continue;
            }
            weight += w[usize::from(g)];
        }
        weight
    }
}

/// Probability from a match weight (log2 odds).
pub fn probability(weight: f64) -> f64 {
    let odds = weight.exp2();
    if odds.is_infinite() {
        1.0
    } else {
        odds / (1.0 + odds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Level;
    use crate::spec::Standardiser;

    fn comparison(levels: usize) -> Compiled {
        Compiled {
            name: "c".into(),
            field: 0,
            standardiser: Standardiser::Text,
            part: crate::compare::NamePart::Full,
            levels: vec![Level::Exact; levels],
            term_frequency: false,
        }
    }

    /// Chunks counted by row and merged give the table that counting each value's text gives,
    /// removals included, whichever of a value's rows a chunk remembered.
    #[test]
    fn chunk_counts_merge_into_the_same_table() {
        let rows = ["nguyen", "le", "nguyen", "tran", "le", "nguyen", "pham"];
        let mut direct: FxHashMap<String, u64> = FxHashMap::default();
        let mut merged = TfCounter::default();
        for chunk in rows.chunks(3) {
            let mut counts = ChunkTf::with_capacity(4);
            for (r, v) in chunk.iter().enumerate() {
                counts.add(v, r as u32);
            }
            // The chunk's first record turns out to repeat an id: its value is taken back.
            counts.remove(chunk[0]);
            for v in &chunk[1..] {
                *direct.entry(v.to_string()).or_default() += 1;
            }
            merged.merge_chunk(counts, |r| chunk[r as usize].into());
        }
        let merged = merged.into_table();
        assert_eq!(direct, merged.counts);
        assert_eq!(direct.values().sum::<u64>(), merged.total);
        assert_eq!(merged.total, 4);
        assert_eq!((merged.counts["nguyen"], merged.counts["le"]), (2, 2));
        assert!(!merged.counts.contains_key("pham"));
    }

    #[test]
    fn term_frequencies_count_merge_and_take_back() {
        let rows = ["nguyễn", "nguyễn", "trần", "lê", "nguyễn"];
        let mut a = ChunkTf::default();
        for (r, v) in rows.iter().enumerate() {
            a.add(v, r as u32);
        }
        a.remove("lê");
        a.remove("nguyễn");
        a.remove("phạm");
        let mut counter = TfCounter::default();
        counter.merge_chunk(a, |r| rows[r as usize].into());
        let mut a = counter.into_table();
        assert_eq!(a.total, 3);
        assert_eq!(
            a.frequency("lê"),
            None,
            "a value counted once and taken back is gone"
        );
        assert!(!a.counts.contains_key("lê"));
        assert_eq!(a.frequency("nguyễn"), Some(2.0 / 3.0));
        assert_eq!(a.frequency("trần"), Some(1.0 / 3.0));
        // Tables of several tasks add up.
        let mut c = ChunkTf::default();
        c.add("trần", 0);
        let mut counter = TfCounter::default();
        counter.merge_chunk(c, |_| "trần".into());
        a.merge(counter.into_table());
        assert_eq!(a.total, 4);
        assert_eq!(a.frequency("trần"), Some(2.0 / 4.0));
    }

    #[test]
    fn em_recovers_a_planted_mixture() {
        // Two comparisons with one level each (gamma 1 agree, 2 else). Matches agree 95% / 90%,
        // non-matches 1% / 5%; 20% of pairs are matches.
        let comps = vec![comparison(1), comparison(1)];
        let (mm, mu) = ([0.95, 0.90], [0.01, 0.05]);
        let mut patterns = BTreeMap::new();
        let n = 1_000_000.0;
        for a in [1u64, 2] {
            for b in [1u64, 2] {
                let p = |probs: [f64; 2]| {
                    let pa = if a == 1 { probs[0] } else { 1.0 - probs[0] };
                    let pb = if b == 1 { probs[1] } else { 1.0 - probs[1] };
                    pa * pb
                };
                let count = n * (0.2 * p(mm) + 0.8 * p(mu));
                patterns.insert(a | (b << 4), count.round() as u64);
            }
        }
        let u = vec![vec![1.0, 0.01, 0.99], vec![1.0, 0.05, 0.95]];
        let known = initial_m(&comps);
        let result = em(
            &comps,
            &[Role::Free, Role::Free],
            &known,
            &patterns,
            &u,
            200,
            1e-9,
        );
        assert!(result.converged);
        assert!((result.lambda - 0.2).abs() < 0.01, "{}", result.lambda);
        assert!((result.m[0][1] - 0.95).abs() < 0.01, "{:?}", result.m);
        assert!((result.m[1][1] - 0.90).abs() < 0.01, "{:?}", result.m);
    }

    #[test]
    fn em_holds_fixed_comparisons() {
        // As above, with the first comparison's m known: it weighs the pairs but keeps its value.
        let comps = vec![comparison(1), comparison(1)];
        let (mm, mu) = ([0.95, 0.90], [0.01, 0.05]);
        let mut patterns = BTreeMap::new();
        for a in [1u64, 2] {
            for b in [1u64, 2] {
                let p = |probs: [f64; 2]| {
                    let pa = if a == 1 { probs[0] } else { 1.0 - probs[0] };
                    let pb = if b == 1 { probs[1] } else { 1.0 - probs[1] };
                    pa * pb
                };
                let count = 1_000_000.0 * (0.2 * p(mm) + 0.8 * p(mu));
                patterns.insert(a | (b << 4), count.round() as u64);
            }
        }
        let u = vec![vec![1.0, 0.01, 0.99], vec![1.0, 0.05, 0.95]];
        let known = vec![vec![1.0, 0.95, 0.05], vec![1.0, 0.5, 0.5]];
        let roles = [Role::Fixed, Role::Free];
        let result = em(&comps, &roles, &known, &patterns, &u, 200, 1e-9);
        assert!(result.converged);
        assert_eq!(result.m[0], known[0]);
        assert!((result.m[1][1] - 0.90).abs() < 0.01, "{:?}", result.m);
        let off = em(
            &comps,
            &[Role::Off, Role::Free],
            &known,
            &patterns,
            &u,
            200,
            1e-9,
        );
        assert_eq!(
            off.m[0],
            initial_m(&comps)[0],
            "an Off comparison is left alone"
        );
    }

    #[test]
    fn probabilities() {
        assert_eq!(probability(0.0), 0.5);
        assert!((probability(10.0) - 1024.0 / 1025.0).abs() < 1e-12);
        assert_eq!(probability(f64::INFINITY), 1.0);
        assert!(probability(-2000.0) >= 0.0);
    }
}
