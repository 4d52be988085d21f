//! Stable hashing of blocking keys and ids.
//!
//! **Invariant:** these hashes are part of the data's definition: a key's hash decides which partition
//! the key goes to, an id's hash which records are drawn for training and what a cluster's entity id
//! is. Every node of a cluster must compute them alike: a change to any of them is a new
//! `PROTOCOL_VERSION` (`khop_proto` and `khop_scheduler`), so that nodes of two versions never share
//! a job. Never use `std`'s `DefaultHasher` (its algorithm may change) or DataFusion's hash
//! repartitioning (fixed internal seed) for routing.

/// The hash of a blocking key's bytes (version 2): eight bytes at a time, each word folded into the
/// state by a 64x64->128-bit multiply whose halves are xored, finished with SplitMix64's mixer. Every
/// key of every record of every input is hashed, so this is on the hottest path of standardising:
/// FNV-1a (version 1) took a multiply per byte, a chain of about 4 cycles a byte.
pub struct KeyHasher;

impl KeyHasher {
    /// The hash of a key's bytes; never 0, which stands for "no key".
    pub fn hash(bytes: &[u8]) -> u64 {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        // The length in the seed: keys that differ only by trailing zero bytes differ.
        let mut h = 0x243f_6a88_85a3_08d3 ^ (bytes.len() as u64).wrapping_mul(K);
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let word: [u8; 8] = word.try_into().expect("chunks of 8 bytes");
            h = fold_mul(h ^ u64::from_le_bytes(word), K);
        }
        if !words.remainder().is_empty() {
            h = fold_mul(h ^ tail_word(bytes), K);
        }
        mix64(h) | 1
    }
}

/// The last `bytes.len() % 8` bytes (at least one) as a little-endian word, zero-padded above. A key
/// of eight bytes or more has its last eight read as one word and shifted: copying the tail into a
/// zeroed stack word was a `memcpy` call and a load stalled on store forwarding, about 2% of a link.
fn tail_word(bytes: &[u8]) -> u64 {
    let rest = bytes.len() % 8;
    debug_assert!(rest > 0);
    match bytes.len().checked_sub(8) {
        Some(start) => {
            let last: [u8; 8] = bytes[start..].try_into().expect("eight bytes");
            u64::from_le_bytes(last) >> ((8 - rest) * 8)
        }
        None => bytes
            .iter()
            .rev()
            .fold(0u64, |word, &b| (word << 8) | u64::from(b)),
    }
}

/// The 128-bit product's halves xored: every bit of either factor reaches every bit of the result.
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The hash of an id's (or any other text's) bytes: 64-bit FNV-1a finished with SplitMix64's mixer;
/// never 0. Ids are hashed once per record, far less than keys, and this hash picks the training
/// sample and names entities, so it stays as it has always been.
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(h) | 1
}

/// [`hash_bytes`] of a text.
pub fn hash_str(s: &str) -> u64 {
    hash_bytes(s.as_bytes())
}

pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The partition of a key hash among `partitions`.
pub fn partition_of(key: u64, partitions: u32) -> u32 {
    // The high bits: the low bit is forced to 1.
    ((u128::from(key >> 1) * u128::from(partitions)) >> 63) as u32
}

/// The slice, among `slices`, of a record number: how a split partition's pairs are shared out (by
/// their left record), the same on every worker.
pub fn slice_of(record: u64, slices: u32) -> u32 {
    partition_of(mix64(record) | 1, slices)
}

/// Sorts hashes (values spread evenly over `u64`, as every hash of this module is), as
/// `par_sort_unstable` does, but without one comparison sort over them all: one pass sends each hash
/// to one of 1024 buckets by its top bits, then the buckets (about 10 k hashes each for 10 M, small
/// enough for the cache) are sorted side by side. Finding a population's repeated ids sorts 10 M
/// hashes (`perf`: `par_sort_unstable` there was 2.7% of the 10 M link's CPU; this sort's own time
/// was not measured apart from the session's other changes). Takes a second buffer the size of
/// `hashes` for the pass.
pub fn sort_hashes(hashes: &mut Vec<u64>) {
    use rayon::prelude::*;
    const BITS: u32 = 10;
    if hashes.len() < 1 << 16 {
        hashes.sort_unstable();
        return;
    }
    let bucket = |h: u64| (h >> (64 - BITS)) as usize;
    let mut counts = vec![0usize; 1 << BITS];
    for &h in hashes.iter() {
        counts[bucket(h)] += 1;
    }
    let mut next: Vec<usize> = counts
        .iter()
        .scan(0, |start, &n| {
            let at = *start;
            *start += n;
            Some(at)
        })
        .collect();
    let mut sorted = vec![0u64; hashes.len()];
    for &h in hashes.iter() {
        let b = bucket(h);
        sorted[next[b]] = h;
        next[b] += 1;
    }
    let mut buckets = Vec::with_capacity(counts.len());
    let mut rest = &mut sorted[..];
    for n in counts {
        let (bucket, tail) = rest.split_at_mut(n);
        buckets.push(bucket);
        rest = tail;
    }
    buckets.into_par_iter().for_each(|b| b.sort_unstable());
    *hashes = sorted;
}

/// A set of key hashes answering membership with one probe (open addressing, linear probing): pruning
/// asks it of every key of every record of the large side, against the small side's keys. A binary
/// search of a sorted vector costs a cache miss per step once the small side has millions of keys.
///
/// Most keys asked are not members (91% of a population's records share no key with the civil
/// servants), so a filter of 8 bits a key answers most of them first, an eighth of the table's size
/// (a 250 k-key set: 256 KB against 4 MB, which stays in cache). It is a blocked Bloom filter: a
/// key's three bits lie in one 64-byte block, so a question is one cache line read. A clear bit means
/// "not a member"; three set bits (every member, and about one key in thirty of the others) send the
/// key on to the table, each time a cache miss. One bit a key (as before) let one key in nine through,
/// and those misses were most of the time pruning took (`perf`, 2.7% of the 10 M link's CPU).
pub struct KeySet {
    /// Twice as many slots as keys, at least, so probes are short and always end; 0 is an empty slot.
    slots: Vec<u64>,
    shift: u32,
    /// The filter: the bits of [`KeySet::filter_bits`] are set for every member.
    filter: Vec<FilterBlock>,
    filter_shift: u32,
}

/// 512 bits of a [`KeySet`]'s filter, on one cache line.
#[derive(Clone, Copy, Default)]
#[repr(align(64))]
struct FilterBlock([u64; 8]);

impl KeySet {
    /// The set of `keys`; 0 ("no key") is never a member.
    pub fn new(keys: &[u64]) -> KeySet {
        let capacity = (keys.len() * 2).next_power_of_two().max(2);
        // 8 bits a key, in blocks of 512; at most 2^20 blocks, so the bits that pick a block never
        // overlap those that pick bits inside it (see `filter_bits`).
        let blocks = (keys.len() / 64).next_power_of_two().clamp(1, 1 << 20);
        let mut set = KeySet {
            slots: vec![0; capacity],
            shift: 64 - capacity.trailing_zeros(),
            filter: vec![FilterBlock::default(); blocks],
            filter_shift: 64 - blocks.trailing_zeros(),
        };
        for &key in keys.iter().filter(|&&k| k != 0) {
            let at = set.probe(key);
            set.slots[at] = key;
            let (block, bits) = set.filter_bits(key);
            for (word, bit) in bits {
                set.filter[block].0[word] |= bit;
            }
        }
        set
    }

    /// The slot holding `key`, or the empty slot where it would go.
    fn probe(&self, key: u64) -> usize {
        let mask = self.slots.len() - 1;
        // Keys are hashes already; the multiply only guards against keys that are not.
        let mut at = (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize;
        while self.slots[at] != 0 && self.slots[at] != key {
            at = (at + 1) & mask;
        }
        at
    }

    /// The key's block of the filter and its three bits there (word, mask): from other bits of the
    /// key than those that pick its slot; the block from the top bits, each bit from 9 bits of bits
    /// 16 to 42 (never the lowest, which a multiply mixes least).
    #[inline]
    fn filter_bits(&self, key: u64) -> (usize, [(usize, u64); 3]) {
        let m = key.wrapping_mul(0xd6e8_feb8_6659_fd93);
        let block = if self.filter_shift == 64 {
            0
        } else {
            (m >> self.filter_shift) as usize
        };
        let bit = |shift: u32| {
            let b = (m >> shift) & 511;
            ((b / 64) as usize, 1u64 << (b % 64))
        };
        (block, [bit(16), bit(25), bit(34)])
    }

    /// Whether the filter lets `key` through: true for every member.
    #[inline]
    fn passes_filter(&self, key: u64) -> bool {
        let (block, bits) = self.filter_bits(key);
        let block = &self.filter[block].0;
        bits.iter().all(|&(word, bit)| block[word] & bit != 0)
    }

    pub fn contains(&self, key: u64) -> bool {
        key != 0 && self.passes_filter(key) && self.slots[self.probe(key)] == key
    }

    /// `hits[i] |= self.contains(keys[i])` for every `i`, over a whole column of keys: no filter read
    /// waits on another, so the processor keeps many of their cache misses in flight at once, which a
    /// record-by-record `contains` (its keys hashed between two reads) does not.
    pub fn mark_members(&self, keys: &[u64], hits: &mut [bool]) {
        debug_assert_eq!(keys.len(), hits.len());
        for (hit, &key) in hits.iter_mut().zip(keys) {
            *hit = *hit || self.contains(key);
        }
    }
}

/// The ids a task has seen, by their hashes ([`hash_str`], never 0), to find repeated ids: one probe
/// per insert (open addressing, linear probing, at most half full), where a general hash set reads a
/// control byte and then the slot, two cache misses once a task's ids outgrow the cache.
pub struct IdSet {
    /// 0 is an empty slot.
    slots: Vec<u64>,
    len: usize,
    shift: u32,
}

impl IdSet {
    /// A set with room for `ids` ids before it first grows.
    pub fn with_capacity(ids: usize) -> IdSet {
        let capacity = (ids * 2).next_power_of_two().max(16);
        IdSet {
            slots: vec![0; capacity],
            len: 0,
            shift: 64 - capacity.trailing_zeros(),
        }
    }

    fn home(&self, id: u64) -> usize {
        (id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    /// Adds `id` (a nonzero hash); false when it was there already.
    pub fn insert(&mut self, id: u64) -> bool {
        debug_assert_ne!(id, 0, "0 marks an empty slot");
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut at = self.home(id);
        loop {
            match self.slots[at] {
                0 => {
                    self.slots[at] = id;
                    self.len += 1;
                    return true;
                }
                s if s == id => return false,
                _ => at = (at + 1) & mask,
            }
        }
    }

    /// Reads the slot each of `ids` starts its probe at, so that inserting them one by one afterwards
    /// finds those slots in cache: these reads do not wait on one another, the inserts' would. Changes
    /// nothing in the set.
    pub fn warm(&self, ids: &[u64]) {
        let sum = ids
            .iter()
            .fold(0u64, |acc, &id| acc.wrapping_add(self.slots[self.home(id)]));
        std::hint::black_box(sum);
    }

    fn grow(&mut self) {
        let old = std::mem::replace(self, IdSet::with_capacity(self.slots.len()));
        for id in old.slots.into_iter().filter(|&id| id != 0) {
            self.insert(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_sets_hold_exactly_their_keys() {
        for n in [0u64, 1, 2, 3, 1000] {
            // Duplicates and the "no key" 0 among the keys; small values, as no real hash is.
            let keys: Vec<u64> = (0..n).chain(0..n / 2).chain([0]).collect();
            let set = KeySet::new(&keys);
            for k in 0..3 * n + 3 {
                assert_eq!(set.contains(k), k != 0 && k < n, "n {n}, key {k}");
            }
            let hashed: Vec<u64> = (0..n).map(|i| hash_str(&i.to_string())).collect();
            let set = KeySet::new(&hashed);
            assert!(hashed.iter().all(|&k| set.contains(k)));
            assert!((n..2 * n).all(|i| !set.contains(hash_str(&i.to_string()))));
        }
    }

    #[test]
    fn id_sets_report_each_repeat_and_grow() {
        let mut set = IdSet::with_capacity(0);
        let ids: Vec<u64> = (0..10_000).map(|i| hash_str(&i.to_string())).collect();
        set.warm(&ids);
        assert!(
            ids.iter().all(|&id| set.insert(id)),
            "first sight of each id"
        );
        assert!(
            ids.iter().all(|&id| !set.insert(id)),
            "every repeat is seen"
        );
        assert!(set.insert(hash_str("10000")));
        assert_eq!(set.len, 10_001);
    }

    #[test]
    fn marking_members_agrees_with_contains() {
        let members: Vec<u64> = (0..5_000).map(|i| hash_str(&format!("m{i}"))).collect();
        let set = KeySet::new(&members);
        // Members, non-members and "no key", after some already marked.
        let asked: Vec<u64> = (0..20_000)
            .map(|i| match i % 4 {
                0 => members[i % members.len()],
                3 => 0,
                _ => hash_str(&format!("x{i}")),
            })
            .collect();
        let mut hits: Vec<bool> = (0..asked.len()).map(|i| i % 7 == 0).collect();
        let expected: Vec<bool> = asked
            .iter()
            .zip(&hits)
            .map(|(&k, &h)| h || set.contains(k))
            .collect();
        set.mark_members(&asked, &mut hits);
        assert_eq!(hits, expected);
        assert!(hits.iter().filter(|&&h| h).count() > asked.len() / 4);
    }

    /// The filter lets few non-members through to the table: about one in thirty at 8 bits a key
    /// (one bit a key let one in nine through).
    #[test]
    fn the_filter_lets_few_non_members_through() {
        let members: Vec<u64> = (0..50_000).map(|i| hash_str(&format!("m{i}"))).collect();
        let set = KeySet::new(&members);
        assert!(members.iter().all(|&k| set.passes_filter(k)));
        let asked = 200_000;
        let through = (0..asked)
            .filter(|i| set.passes_filter(hash_str(&format!("x{i}"))))
            .count();
        assert!(
            through * 20 < asked,
            "{through} of {asked} non-members pass the filter"
        );
    }

    #[test]
    fn hashes_sort_as_a_comparison_sort_does() {
        for n in [0u64, 5, 70_000, 300_000] {
            // Repeats, the extremes, and hashes crowded into one bucket.
            let mut hashes: Vec<u64> = (0..n)
                .map(|i| match i % 5 {
                    0 => hash_str(&(i / 10).to_string()),
                    1 => u64::MAX - i % 3,
                    2 => i % 7,
                    _ => hash_str(&i.to_string()),
                })
                .collect();
            let mut expected = hashes.clone();
            expected.sort_unstable();
            sort_hashes(&mut hashes);
            assert_eq!(hashes, expected, "{n} hashes");
        }
    }

    #[test]
    fn hashes_are_stable_and_nonzero() {
        // Pinned: changing these moves every key to another partition, draws another training sample
        // and renames every entity (a new PROTOCOL_VERSION; see the module's invariant).
        assert_eq!(hash_str(""), mix64(0xcbf2_9ce4_8422_2325) | 1);
        assert_eq!(hash_str("P0001"), 0x3e5c_4f00_cdfe_7097);
        assert_eq!(KeyHasher::hash(b""), 0xe9e0_033e_3bad_af37);
        assert_eq!(KeyHasher::hash(b"nguyen an \xff"), 0xe1b1_28ec_b4ab_227b);
        assert_ne!(hash_str("a"), hash_str("b"));
        assert_ne!(KeyHasher::hash(&[]), 0);
    }

    #[test]
    fn a_key_s_tail_is_its_last_bytes_zero_padded() {
        let bytes: Vec<u8> = (0..40u32).map(|i| (i * 37 + 0x91) as u8).collect();
        for len in (1..=40).filter(|n| n % 8 != 0) {
            let key = &bytes[..len];
            let mut padded = [0u8; 8];
            padded[..len % 8].copy_from_slice(&key[len - len % 8..]);
            assert_eq!(tail_word(key), u64::from_le_bytes(padded), "length {len}");
        }
    }

    #[test]
    fn key_hashes_tell_apart_keys_that_differ_anywhere() {
        // Every length across the word boundaries, every byte position, trailing zero bytes.
        let mut seen = std::collections::HashSet::new();
        for len in 0..=24usize {
            let base: Vec<u8> = (0..len as u8).map(|i| b'a' + i % 26).collect();
            assert!(seen.insert(KeyHasher::hash(&base)), "length {len}");
            for at in 0..len {
                for bit in 0..8 {
                    let mut key = base.clone();
                    key[at] ^= 1 << bit;
                    assert!(
                        seen.insert(KeyHasher::hash(&key)),
                        "length {len}, byte {at}, bit {bit}"
                    );
                }
            }
            let mut padded = base.clone();
            padded.push(0);
            assert_ne!(
                KeyHasher::hash(&base),
                KeyHasher::hash(&padded),
                "length {len}"
            );
        }
        assert!(seen.iter().all(|&h| h != 0));
    }

    #[test]
    fn partitions_are_in_range_and_spread() {
        let mut counts = [0u32; 8];
        for i in 0..80_000u32 {
            let p = partition_of(hash_str(&i.to_string()), 8);
            counts[p as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn slices_are_stable_in_range_and_spread() {
        // Pinned: changing these moves pairs between the slices of a split partition.
        assert_eq!(slice_of(0, 1), 0);
        assert_eq!(
            (0..8).map(|r| slice_of(r, 4)).collect::<Vec<_>>(),
            [0, 1, 3, 0, 2, 2, 3, 0]
        );
        let mut counts = [0u32; 5];
        for r in 0..50_000u64 {
            counts[slice_of(((r % 7) << 40) | r, 5) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }
}
