//! Entities from scored pairs: connected components, with a threshold of their own and no silent
//! giant components (see [`cluster`]).

use crate::job::ClusterSummary;
use crate::spec::{Clusters, JobSpec};

/// A pair of records as node numbers (left records first, then right ones), with its probability.
pub(crate) type Edge = (u32, u32, f64);

/// Entities: the connected components of the pairs (`edges`, between node numbers) at or above the
/// cluster threshold, every record a node (left records first, then right ones). A component larger than the cap
/// (`clusters.max_size`, or automatic: [`auto_max_size`]) is cut at its weakest links: its pairs are
/// joined strongest first (ties in record order), and a pair that would make an entity larger than
/// the cap is left out. Components within the cap are exactly the connected components. Each
/// record's entity is its smallest node number, so entity names do not depend on the order pairs
/// come in.
pub(crate) fn cluster(edges: &[Edge], nodes: usize, spec: &JobSpec) -> (Vec<u32>, ClusterSummary) {
    let threshold = spec.clusters.threshold.unwrap_or(spec.thresholds.match_);
    let edges = || edges.iter().copied().filter(move |e| e.2 >= threshold);
    let mut forest = Forest::new(nodes);
    for (a, b, _) in edges() {
        forest.union(a, b, u32::MAX);
    }
    let roots = forest.roots();
    let sizes = forest.sizes_of_roots(&roots);
    let max_size = spec
        .clusters
        .max_size
        .unwrap_or_else(|| auto_max_size(&sizes));
    let oversized: Vec<u32> = sizes
        .iter()
        .filter(|&&(_, n)| n > max_size)
        .map(|&(root, _)| root)
        .collect();
    let mut summary = ClusterSummary {
        threshold,
        max_size,
        components_cut: oversized.len() as u64,
        records_in_cut_components: sizes
            .iter()
            .filter(|s| s.1 > max_size)
            .map(|s| u64::from(s.1))
            .sum(),
        largest_component: sizes.iter().map(|s| s.1).max().unwrap_or(1).max(1),
        ..ClusterSummary::default()
    };
    let roots = if oversized.is_empty() {
        roots
    } else {
        // Again from single records: pairs outside the oversized components as before, then
        // those inside them strongest first, under the cap.
        let cut = |node: u32| oversized.binary_search(&roots[node as usize]).is_ok();
        let mut forest = Forest::new(nodes);
        let mut inside = Vec::new();
        for (a, b, p) in edges() {
            if cut(a) {
                inside.push((a, b, p));
            } else {
                forest.union(a, b, u32::MAX);
            }
        }
        inside.sort_by(|x, y| y.2.total_cmp(&x.2).then((x.0, x.1).cmp(&(y.0, y.1))));
        for (a, b, _) in inside {
            forest.union(a, b, max_size);
        }
        forest.roots()
    };
    summary.entities = roots
        .iter()
        .enumerate()
        .filter(|&(i, &r)| i as u32 == r)
        .count() as u64;
    summary.largest_entity = Forest::count_by_root(&roots).into_iter().max().unwrap_or(0);
    (roots, summary)
}

/// The automatic cap on an entity's size: ten times the 99th percentile of the sizes of the
/// components holding more than one record, and at least [`Clusters::MIN_AUTO_SIZE`]. A component
/// far beyond what the others are is people chained together by a few wrong links, not a person.
fn auto_max_size(sizes: &[(u32, u32)]) -> u32 {
    let mut multi: Vec<u32> = sizes.iter().map(|s| s.1).filter(|&n| n > 1).collect();
    multi.sort_unstable();
    let p99 = match multi.len() {
        0 => 0,
        n => multi[(n * 99).div_ceil(100) - 1],
    };
    p99.saturating_mul(10).max(Clusters::MIN_AUTO_SIZE)
}

/// Union-find over node numbers, each set named after its smallest node.
pub(crate) struct Forest {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl Forest {
    pub(crate) fn new(nodes: usize) -> Forest {
        Forest {
            parent: (0..nodes as u32).collect(),
            size: vec![1; nodes],
        }
    }

    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let up = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = up;
            x = up;
        }
        x
    }

    /// Joins the sets of `a` and `b` unless together they would hold more than `cap` nodes.
    pub(crate) fn union(&mut self, a: u32, b: u32, cap: u32) {
        let (a, b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        let size = self.size[a as usize].saturating_add(self.size[b as usize]);
        if size > cap {
            return;
        }
        let (low, high) = (a.min(b), a.max(b));
        self.parent[high as usize] = low;
        self.size[low as usize] = size;
    }

    /// Each node's set, named after its smallest node.
    pub(crate) fn roots(&mut self) -> Vec<u32> {
        (0..self.parent.len() as u32)
            .map(|x| self.find(x))
            .collect()
    }

    /// (root, size) of every set, by root.
    fn sizes_of_roots(&self, roots: &[u32]) -> Vec<(u32, u32)> {
        roots
            .iter()
            .enumerate()
            .filter(|&(i, &r)| i as u32 == r)
            .map(|(_, &r)| (r, self.size[r as usize]))
            .collect()
    }

    /// How many nodes each root holds (indexed by node; 0 for a node that is not a root).
    fn count_by_root(roots: &[u32]) -> Vec<u32> {
        let mut counts = vec![0u32; roots.len()];
        for &r in roots {
            counts[r as usize] += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(a: u32, b: u32, probability: f64) -> Edge {
        (a, b, probability)
    }

    fn spec_with(clusters: &str) -> JobSpec {
        let text =
            crate::spec::tests::GOOD.replace("[thresholds]", &format!("{clusters}\n[thresholds]"));
        let mut spec = JobSpec::from_toml(&text, std::path::Path::new("/jobs")).unwrap();
        spec.thresholds.match_ = 0.95;
        spec
    }

    /// Records 0..30 chained strongly except one weak link (14, 15), and 200 pairs of two records
    /// after them: the chain is far larger than the rest.
    fn chain_and_pairs() -> (Vec<Edge>, usize) {
        let mut scored: Vec<Edge> = (0..29)
            .map(|i| pair(i, i + 1, if i == 14 { 0.96 } else { 0.999 }))
            .collect();
        scored.extend((0..200).map(|k| pair(30 + 2 * k, 31 + 2 * k, 0.99)));
        (scored, 430)
    }

    #[test]
    fn a_component_far_larger_than_the_rest_is_cut_at_its_weakest_link() {
        let (scored, n) = chain_and_pairs();
        let (roots, summary) = cluster(&scored, n, &spec_with(""));
        assert_eq!(summary.max_size, 20, "ten times 2 is under the minimum");
        assert_eq!(summary.largest_component, 30);
        assert_eq!(summary.components_cut, 1);
        assert_eq!(summary.records_in_cut_components, 30);
        assert_eq!(summary.largest_entity, 15);
        assert!(roots[..15].iter().all(|&r| r == 0), "{roots:?}");
        assert!(roots[15..30].iter().all(|&r| r == 15), "{roots:?}");
        assert_eq!(summary.entities, 2 + 200);
    }

    #[test]
    fn components_within_the_cap_are_the_connected_components() {
        let (scored, n) = chain_and_pairs();
        let (roots, summary) = cluster(&scored, n, &spec_with("[clusters]\nmax_size = 30"));
        assert_eq!(summary.components_cut, 0);
        assert_eq!(summary.largest_entity, 30);
        assert!(roots[..30].iter().all(|&r| r == 0));
        assert_eq!((roots[30], roots[31], roots[32]), (30, 30, 32));
        // A threshold of its own leaves the weak link out, whatever the cap.
        let spec = spec_with("[clusters]\nmax_size = 30\nthreshold = 0.97");
        let (roots, summary) = cluster(&scored, n, &spec);
        assert_eq!((summary.threshold, summary.components_cut), (0.97, 0));
        assert_eq!((roots[14], roots[15]), (0, 15));
    }

    #[test]
    fn in_a_link_job_right_records_follow_the_left_ones() {
        // Left 0 and 1 both match right 0 (node 3): one entity of three, named after left 0.
        let scored = [pair(0, 3, 0.99), pair(1, 3, 0.98), pair(2, 4, 0.5)];
        let (roots, summary) = cluster(&scored, 5, &spec_with(""));
        assert_eq!(roots, vec![0, 0, 2, 0, 4]);
        assert_eq!((summary.entities, summary.largest_entity), (3, 3));
    }
}
