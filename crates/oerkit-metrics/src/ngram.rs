//! N-grams as packed integers: items (characters, words) get small per-segment ids and an
//! n-gram is its ids side by side in one `u64` or `u128`, so counting is integer hashing.

/// An n-gram packed into an integer: one `bits`-wide lane per item id (ids are >= 1, so
/// n-grams of different orders never share a key).
pub(crate) trait PackedKey: Copy + Eq + std::hash::Hash {
    fn lane(id: u32, lane: usize, bits: u32) -> Self;
    fn or(self, other: Self) -> Self;
}

impl PackedKey for u64 {
    #[inline]
    fn lane(id: u32, lane: usize, bits: u32) -> Self {
        (id as u64) << (bits as usize * lane)
    }
    #[inline]
    fn or(self, other: Self) -> Self {
        self | other
    }
}

impl PackedKey for u128 {
    #[inline]
    fn lane(id: u32, lane: usize, bits: u32) -> Self {
        (id as u128) << (bits as usize * lane)
    }
    #[inline]
    fn or(self, other: Self) -> Self {
        self | other
    }
}

/// Keys of all n-grams of orders 1..=`max_order` of `ids`, order by order; `ends[n - 1]` is
/// where order `n` ends in `keys`. Order `n` extends order `n - 1` by one lane.
pub(crate) fn ngram_keys<K: PackedKey>(
    ids: &[u32],
    max_order: usize,
    bits: u32,
    keys: &mut Vec<K>,
    ends: &mut Vec<usize>,
) {
    keys.clear();
    ends.clear();
    keys.extend(ids.iter().map(|&id| K::lane(id, 0, bits)));
    ends.push(keys.len());
    let mut prev_start = 0;
    for n in 2..=max_order {
        let start = keys.len();
        for i in 0..ids.len().saturating_sub(n - 1) {
            let key = keys[prev_start + i].or(K::lane(ids[i + n - 1], n - 1, bits));
            keys.push(key);
        }
        ends.push(keys.len());
        prev_start = start;
    }
}
