//! Character-level similarity of memory sources: normalised Levenshtein distance over characters
//! (`1 - distance / max(length)`), a character-trigram index that finds the few entries that can reach a
//! similarity threshold without scanning the memory ([`TrigramIndex`]), and a cheap upper bound that skips
//! most remaining candidates before the quadratic distance is computed.

use std::collections::HashMap;

/// How often each character occurs in `s`.
pub fn char_counts(s: &str) -> HashMap<char, u32> {
    let mut counts = HashMap::new();
    for c in s.chars() {
        *counts.entry(c).or_insert(0) += 1;
    }
    counts
}

/// An upper bound of the similarity of the text counted in `counts` (`len` characters) and `other`.
///
/// An alignment matches at most as many characters as the two texts share (as multisets), and every
/// character of the longer text left unmatched costs at least one edit, so
/// `distance >= max(len) - shared` and `similarity <= shared / max(len)`.
pub fn upper_bound(counts: &HashMap<char, u32>, len: usize, other: &str) -> f64 {
    let mut remaining = counts.clone();
    let mut other_len = 0usize;
    let mut shared = 0usize;
    for c in other.chars() {
        other_len += 1;
        if let Some(n) = remaining.get_mut(&c) {
            if *n > 0 {
                *n -= 1;
                shared += 1;
            }
        }
    }
    let longest = len.max(other_len);
    if longest == 0 {
        1.0
    } else {
        shared as f64 / longest as f64
    }
}

type Trigram = [char; 3];

/// The character trigrams of `s` with their counts (unpadded: a text of n characters has n - 2).
fn trigrams(s: &str) -> HashMap<Trigram, u32> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = HashMap::new();
    for w in chars.windows(3) {
        *out.entry([w[0], w[1], w[2]]).or_insert(0) += 1;
    }
    out
}

/// An inverted index from character trigrams to the memory entries (by position) that contain them.
///
/// Candidate rule (the q-gram lemma): every edit destroys at most 3 of the trigrams of the longer text
/// (L characters, L - 2 trigrams), so two texts at edit distance k share at least L - 2 - 3k trigrams
/// (counted with multiplicity). A match needs k <= (1 - t) L, hence shares at least (3t - 2) L - 2 >=
/// (3t - 2) n - 2 trigrams with the query of n characters. Entries below that cannot match; the rest are
/// checked exactly. Below a threshold of 2/3, or for very short queries, the rule prunes nothing and
/// [`TrigramIndex::candidates`] says so.
#[derive(Debug, Default)]
pub struct TrigramIndex {
    postings: HashMap<Trigram, Vec<(u32, u32)>>,
    len: usize,
}

impl TrigramIndex {
    /// Indexes `keys` (entry i is `keys[i]`).
    pub fn build<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        let mut index = TrigramIndex::default();
        for (i, key) in keys.into_iter().enumerate() {
            for (gram, n) in trigrams(key) {
                index.postings.entry(gram).or_default().push((i as u32, n));
            }
            index.len = i + 1;
        }
        index
    }

    /// Positions of the entries that may be at least `threshold` similar to `query`, or `None` when the
    /// index cannot rule any out (every entry must then be checked).
    pub fn candidates(&self, query: &str, threshold: f64) -> Option<Vec<usize>> {
        let n = query.chars().count() as f64;
        let needed = (3.0 * threshold - 2.0) * n - 2.0;
        // Rounding guard: the bound is real-valued, shared counts are integers.
        let needed = (needed - 1e-9).ceil();
        if needed < 1.0 {
            return None;
        }
        let mut shared = vec![0u32; self.len];
        let mut touched = Vec::new();
        for (gram, q) in trigrams(query) {
            if let Some(list) = self.postings.get(&gram) {
                for &(entry, e) in list {
                    let slot = &mut shared[entry as usize];
                    if *slot == 0 {
                        touched.push(entry as usize);
                    }
                    *slot += q.min(e);
                }
            }
        }
        let mut out: Vec<usize> = touched
            .into_iter()
            .filter(|&i| f64::from(shared[i]) >= needed)
            .collect();
        out.sort_unstable();
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_never_below_the_similarity() {
        let texts = [
            "",
            "a",
            "Open the <g1>File</g1> menu.",
            "Open the <g1>Edit</g1> menu!",
            "menu the Open",
            "ééé aaa",
            "aaa ééé",
            "The shell is a program where users can type commands.",
            "The Shell is a programme in which users type commands",
            "完全に違う文です",
        ];
        for a in texts {
            for b in texts {
                let exact = strsim::normalized_levenshtein(a, b);
                let bound = upper_bound(&char_counts(a), a.chars().count(), b);
                assert!(
                    bound + 1e-12 >= exact,
                    "{a:?} vs {b:?}: bound {bound} < similarity {exact}"
                );
            }
        }
        assert_eq!(upper_bound(&char_counts("abc"), 3, "xyz"), 0.0);
    }

    /// Every entry at or above the threshold is a candidate (the index never loses a match), on texts
    /// with repeats, reorderings and non-ASCII characters, at several thresholds.
    #[test]
    fn trigram_candidates_keep_every_match() {
        let texts = [
            "Open the <g1>File</g1> menu.",
            "Open the <g1>Edit</g1> menu!",
            "Open the File menu.",
            "The shell is a program where users can type commands.",
            "The Shell is a programme in which users type commands",
            "The shell is a program where users can type command.",
            "aaaaaaaaaaaaaaaaaaaa",
            "aaaaaaaaaabaaaaaaaaa",
            "ééé aaa ééé aaa",
            "ééé aab ééé aaa",
            "完全に違う文です",
            "完全に違う文でした",
            "ab",
            "",
        ];
        let index = TrigramIndex::build(texts.iter().copied());
        for threshold in [0.67, 0.75, 0.8, 0.9, 1.0] {
            for q in texts {
                let Some(found) = index.candidates(q, threshold) else {
                    continue;
                };
                for (i, t) in texts.iter().enumerate() {
                    if strsim::normalized_levenshtein(q, t) >= threshold {
                        assert!(found.contains(&i), "{q:?} ~ {t:?} at {threshold} lost");
                    }
                }
            }
        }
        // It prunes: a long sentence does not pull in unrelated ones.
        let found = index.candidates(texts[3], 0.75).unwrap();
        assert!(found.contains(&3) && found.contains(&5), "{found:?}");
        assert!(found.iter().all(|&i| (3..=5).contains(&i)), "{found:?}");
        assert!(index.candidates("short", 0.75).is_none());
        assert!(index.candidates(texts[3], 0.5).is_none());
    }
}
