//! Character-level similarity of memory sources: normalised Levenshtein distance over characters
//! (`1 - distance / max(length)`), and a cheap upper bound that skips most candidates before the
//! quadratic distance is computed.

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
}
