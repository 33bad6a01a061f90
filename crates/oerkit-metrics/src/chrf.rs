//! chrF (Popović 2015) and chrF++ (Popović 2017) exactly as sacrebleu 2.5.1's `CHRF` class.

use rustc_hash::FxHashMap;

use crate::ngram::{ngram_keys, PackedKey};
use crate::signature::Signature;
use crate::text::{is_py_whitespace, py_lower, py_split};
use crate::{Metric, MetricScore, MetricsError, SufficientStats};

/// Largest character n-gram order supported (6 code points pack into one `u128`).
pub const MAX_CHAR_ORDER: usize = 6;
/// Largest word n-gram order supported (4 word ids pack into one `u128`).
pub const MAX_WORD_ORDER: usize = 4;

/// chrF settings; `Default` is sacrebleu's `CHRF()` (chrF2), `ChrfConfig::plus_plus()` is chrF++.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChrfConfig {
    pub char_order: usize,
    pub word_order: usize,
    pub beta: u32,
    pub lowercase: bool,
    /// Keep whitespace inside character n-grams.
    pub whitespace: bool,
    /// chrF++.py-style epsilon smoothing instead of sacrebleu's effective-order averaging.
    pub eps_smoothing: bool,
}

impl Default for ChrfConfig {
    fn default() -> Self {
        ChrfConfig {
            char_order: 6,
            word_order: 0,
            beta: 2,
            lowercase: false,
            whitespace: false,
            eps_smoothing: false,
        }
    }
}

impl ChrfConfig {
    /// chrF++: word bigrams on top of character 6-grams.
    pub fn plus_plus() -> Self {
        ChrfConfig {
            word_order: 2,
            ..Default::default()
        }
    }
}

/// Per order (char 1..=char_order, then word 1..=word_order) the triple
/// `[hyp_ngrams, ref_ngrams, matching_ngrams]`, flattened as in sacrebleu.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChrfStats(pub Vec<u64>);

impl SufficientStats for ChrfStats {
    fn add(&mut self, other: &Self) {
        if self.0.is_empty() {
            self.0 = other.0.clone();
            return;
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a += b;
        }
    }
}

/// A chrF score (`chrF2`, `chrF2++`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct ChrfScore {
    pub score: f64,
    pub char_order: usize,
    pub word_order: usize,
    pub beta: u32,
}

impl MetricScore for ChrfScore {
    fn score(&self) -> f64 {
        self.score
    }
    fn name(&self) -> String {
        format!("chrF{}{}", self.beta, "+".repeat(self.word_order))
    }
    fn verbose(&self) -> Option<String> {
        None
    }
}

/// The chrF metric.
#[derive(Debug, Clone, Default)]
pub struct Chrf {
    pub config: ChrfConfig,
}

/// sacrebleu's `string.punctuation` set used by `_remove_punctuation`.
fn is_ascii_punct(c: char) -> bool {
    c.is_ascii_punctuation()
}

/// sacrebleu's `_remove_punctuation`: a word longer than one character loses one trailing
/// (else one leading) ASCII punctuation character as a separate token.
fn remove_punctuation(sent: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for w in py_split(sent) {
        let mut chars = w.chars();
        let first = chars.next();
        let last = w.chars().next_back();
        if chars.next().is_none() {
            // exactly one code point
            out.push(w);
            continue;
        }
        match (first, last) {
            (_, Some(l)) if is_ascii_punct(l) => {
                let cut = w.len() - l.len_utf8();
                out.push(&w[..cut]);
                out.push(&w[cut..]);
            }
            (Some(f), _) if is_ascii_punct(f) => {
                let cut = f.len_utf8();
                out.push(&w[..cut]);
                out.push(&w[cut..]);
            }
            _ => out.push(w),
        }
    }
    out
}

/// Reusable per-thread buffers: chrF runs on many short segments, and allocating maps and key
/// vectors per segment costs more than the counting itself.
#[derive(Default)]
struct Scratch {
    /// Non-ASCII characters of the current segment → small ids (ASCII `c` is `c + 1`).
    char_ids: FxHashMap<char, u32>,
    hyp_chars: Vec<u32>,
    ref_chars: Vec<Vec<u32>>,
    hyp_words: Vec<u32>,
    ref_words: Vec<Vec<u32>>,
    narrow: KeyBuffers<u64>,
    wide: KeyBuffers<u128>,
}

/// N-gram keys of the hypothesis and one reference, and the reference's counts.
#[derive(Default)]
struct KeyBuffers<K> {
    hyp: Vec<K>,
    hyp_ends: Vec<usize>,
    reference: Vec<K>,
    ref_ends: Vec<usize>,
    counts: FxHashMap<K, u32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// For each order, `[hyp_ngrams, ref_ngrams, matching_ngrams]` appended to `stats`, where matches
/// are sum over n-grams of min(hyp count, ref count) (sacrebleu's `Counter` intersection).
fn match_statistics<K: PackedKey>(buf: &mut KeyBuffers<K>, stats: &mut Vec<u64>) {
    let counts = &mut buf.counts;
    counts.clear();
    for &k in &buf.reference {
        *counts.entry(k).or_insert(0) += 1;
    }
    let mut hyp_start = 0;
    let mut ref_start = 0;
    for (&hyp_end, &ref_end) in buf.hyp_ends.iter().zip(&buf.ref_ends) {
        let mut matches = 0u64;
        for k in &buf.hyp[hyp_start..hyp_end] {
            if let Some(c) = counts.get_mut(k) {
                if *c > 0 {
                    *c -= 1;
                    matches += 1;
                }
            }
        }
        let (hyp_total, ref_total) = ((hyp_end - hyp_start) as u64, (ref_end - ref_start) as u64);
        // sacrebleu does not count hypothesis n-grams when the reference has none of that order
        stats.extend([
            if ref_total == 0 { 0 } else { hyp_total },
            ref_total,
            matches,
        ]);
        hyp_start = hyp_end;
        ref_start = ref_end;
    }
}

/// Per-reference statistics of one item sequence kind (characters or words): all orders.
fn sequence_statistics<K: PackedKey>(
    buf: &mut KeyBuffers<K>,
    hyp: &[u32],
    refs: &[Vec<u32>],
    max_order: usize,
    bits: u32,
    per_ref: &mut [Vec<u64>],
) {
    ngram_keys(hyp, max_order, bits, &mut buf.hyp, &mut buf.hyp_ends);
    for (r, stats) in refs.iter().zip(per_ref.iter_mut()) {
        ngram_keys(r, max_order, bits, &mut buf.reference, &mut buf.ref_ends);
        match_statistics(buf, stats);
    }
}

/// Character ids: ASCII `c` → `c + 1`, other characters numbered from 129 in order of
/// appearance (shared by the hypothesis and its references); returns the largest id.
fn char_ids(
    text: &str,
    whitespace: bool,
    ids: &mut FxHashMap<char, u32>,
    out: &mut Vec<u32>,
) -> u32 {
    out.clear();
    let mut max = 0;
    for c in text.chars() {
        if !whitespace && is_py_whitespace(c) {
            continue;
        }
        let id = if c.is_ascii() {
            c as u32 + 1
        } else {
            let next = 129 + ids.len() as u32;
            *ids.entry(c).or_insert(next)
        };
        max = max.max(id);
        out.push(id);
    }
    max
}

/// Raw code points + 1 (for segments with too many distinct characters for narrow ids).
fn code_points(text: &str, whitespace: bool, out: &mut Vec<u32>) {
    out.clear();
    out.extend(
        text.chars()
            .filter(|&c| whitespace || !is_py_whitespace(c))
            .map(|c| c as u32 + 1),
    );
}

/// Bits per character lane in a `u64` key: 6 lanes of 10 bits.
const NARROW_CHAR_BITS: u32 = 10;
/// Bits per character lane in a `u128` key: any code point + 1 fits in 21 bits.
const WIDE_CHAR_BITS: u32 = 21;
/// Bits per word lane in a `u64` key: 4 lanes of 16 bits.
const NARROW_WORD_BITS: u32 = 16;
/// Bits per word lane in a `u128` key.
const WIDE_WORD_BITS: u32 = 32;

impl Chrf {
    pub fn new(config: ChrfConfig) -> Result<Self, MetricsError> {
        if config.char_order > MAX_CHAR_ORDER || config.word_order > MAX_WORD_ORDER {
            return Err(MetricsError::UnknownOption {
                what: "chrF n-gram order",
                value: format!("char {} / word {}", config.char_order, config.word_order),
                expected: "char order <= 6 and word order <= 4",
            });
        }
        Ok(Chrf { config })
    }

    fn order(&self) -> usize {
        self.config.char_order + self.config.word_order
    }

    /// Statistics of `hyp` against each reference (one `Vec` per reference, all orders).
    fn per_reference_statistics(
        &self,
        s: &mut Scratch,
        hyp: &str,
        refs: &[&str],
        force_wide: bool,
    ) -> Vec<Vec<u64>> {
        let mut per_ref: Vec<Vec<u64>> = refs
            .iter()
            .map(|_| Vec::with_capacity(3 * self.order()))
            .collect();
        let ws = self.config.whitespace;
        s.ref_chars.resize_with(refs.len(), Vec::new);
        if self.config.char_order > 0 {
            s.char_ids.clear();
            let mut max_id = char_ids(hyp, ws, &mut s.char_ids, &mut s.hyp_chars);
            for (r, out) in refs.iter().zip(s.ref_chars.iter_mut()) {
                max_id = max_id.max(char_ids(r, ws, &mut s.char_ids, out));
            }
            let refs_chars = &s.ref_chars[..refs.len()];
            if max_id < (1 << NARROW_CHAR_BITS) && !force_wide {
                let order = self.config.char_order;
                sequence_statistics(
                    &mut s.narrow,
                    &s.hyp_chars,
                    refs_chars,
                    order,
                    NARROW_CHAR_BITS,
                    &mut per_ref,
                );
            } else {
                code_points(hyp, ws, &mut s.hyp_chars);
                for (r, out) in refs.iter().zip(s.ref_chars.iter_mut()) {
                    code_points(r, ws, out);
                }
                let refs_chars = &s.ref_chars[..refs.len()];
                let order = self.config.char_order;
                sequence_statistics(
                    &mut s.wide,
                    &s.hyp_chars,
                    refs_chars,
                    order,
                    WIDE_CHAR_BITS,
                    &mut per_ref,
                );
            }
        }
        if self.config.word_order > 0 {
            let mut words: FxHashMap<&str, u32> = FxHashMap::default();
            let mut intern = |w| {
                let next = words.len() as u32 + 1;
                *words.entry(w).or_insert(next)
            };
            s.hyp_words.clear();
            s.hyp_words
                .extend(remove_punctuation(hyp).into_iter().map(&mut intern));
            s.ref_words.resize_with(refs.len(), Vec::new);
            for (r, out) in refs.iter().zip(s.ref_words.iter_mut()) {
                out.clear();
                out.extend(remove_punctuation(r).into_iter().map(&mut intern));
            }
            let n_words = words.len() as u32;
            let refs_words = &s.ref_words[..refs.len()];
            let order = self.config.word_order;
            if n_words < (1 << NARROW_WORD_BITS) && !force_wide {
                sequence_statistics(
                    &mut s.narrow,
                    &s.hyp_words,
                    refs_words,
                    order,
                    NARROW_WORD_BITS,
                    &mut per_ref,
                );
            } else {
                sequence_statistics(
                    &mut s.wide,
                    &s.hyp_words,
                    refs_words,
                    order,
                    WIDE_WORD_BITS,
                    &mut per_ref,
                );
            }
        }
        per_ref
    }

    /// sacrebleu's segment statistics: the reference with the best sentence-level F-score.
    fn best_reference_statistics(&self, hyp: &str, refs: &[&str], force_wide: bool) -> ChrfStats {
        let per_ref = SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => self.per_reference_statistics(&mut s, hyp, refs, force_wide),
            // re-entered on this thread (cannot happen today): use fresh buffers
            Err(_) => self.per_reference_statistics(&mut Scratch::default(), hyp, refs, force_wide),
        });
        let mut best_stats = Vec::new();
        let mut best_f = -1.0f64;
        for stats in per_ref {
            let f = self.f_score(&stats);
            if f > best_f {
                best_f = f;
                best_stats = stats;
            }
        }
        ChrfStats(best_stats)
    }

    /// sacrebleu's `_compute_f_score` on (summed) statistics.
    pub fn f_score(&self, stats: &[u64]) -> f64 {
        let eps = 1e-16;
        let factor = (self.config.beta * self.config.beta) as f64;
        let mut score = 0.0f64;
        let mut effective_order = 0usize;
        let (mut avg_prec, mut avg_rec) = (0.0f64, 0.0f64);
        for i in 0..self.order() {
            let (n_hyp, n_ref, n_match) = (stats[3 * i], stats[3 * i + 1], stats[3 * i + 2]);
            let prec = if n_hyp > 0 {
                n_match as f64 / n_hyp as f64
            } else {
                eps
            };
            let rec = if n_ref > 0 {
                n_match as f64 / n_ref as f64
            } else {
                eps
            };
            let denom = factor * prec + rec;
            score += if denom > 0.0 {
                (1.0 + factor) * prec * rec / denom
            } else {
                eps
            };
            if n_hyp > 0 && n_ref > 0 {
                avg_prec += prec;
                avg_rec += rec;
                effective_order += 1;
            }
        }
        if self.config.eps_smoothing {
            return 100.0 * score / self.order() as f64;
        }
        if effective_order == 0 {
            avg_prec = 0.0;
            avg_rec = 0.0;
        } else {
            avg_prec /= effective_order as f64;
            avg_rec /= effective_order as f64;
        }
        if avg_prec + avg_rec != 0.0 {
            let mut s = (1.0 + factor) * avg_prec * avg_rec;
            s /= factor * avg_prec + avg_rec;
            100.0 * s
        } else {
            0.0
        }
    }
}

impl Metric for Chrf {
    type Stats = ChrfStats;
    type Score = ChrfScore;

    fn segment_statistics(&self, hyp: &str, refs: &[&str]) -> ChrfStats {
        if self.config.lowercase {
            let hyp = py_lower(hyp);
            let refs: Vec<String> = refs.iter().map(|r| py_lower(r)).collect();
            let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
            self.best_reference_statistics(&hyp, &refs, false)
        } else {
            self.best_reference_statistics(hyp, refs, false)
        }
    }

    fn score_from_stats(&self, stats: &ChrfStats) -> ChrfScore {
        let score = if stats.0.len() == 3 * self.order() {
            self.f_score(&stats.0)
        } else {
            0.0
        };
        ChrfScore {
            score,
            char_order: self.config.char_order,
            word_order: self.config.word_order,
            beta: self.config.beta,
        }
    }

    fn signature(&self, n_refs: usize) -> Signature {
        let mut sig = Signature::new(n_refs);
        sig.push(
            "case",
            "c",
            if self.config.lowercase { "lc" } else { "mixed" },
        );
        sig.push(
            "eff",
            "e",
            if self.config.eps_smoothing {
                "no"
            } else {
                "yes"
            },
        );
        sig.push("nc", "nc", &self.config.char_order.to_string());
        sig.push("nw", "nw", &self.config.word_order.to_string());
        sig.push(
            "space",
            "s",
            if self.config.whitespace { "yes" } else { "no" },
        );
        sig
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The narrow (`u64`, interned ids) and wide (`u128`, raw code points) key paths count the
    /// same n-grams; the wide one only runs on segments with > 895 distinct non-ASCII characters.
    #[test]
    fn narrow_and_wide_keys_agree() {
        let pairs = [
            ("The cat sat on the mat.", vec!["The cat is on the mat."]),
            (
                "我喜欢自然语言处理。",
                vec!["我爱自然语言处理！", "自然语言"],
            ),
            ("naïve café, déjà vu", vec!["naive cafe, deja vu"]),
            ("a a a a a a a", vec!["a a a", ""]),
            ("", vec!["something"]),
        ];
        for config in [
            ChrfConfig::default(),
            ChrfConfig::plus_plus(),
            ChrfConfig {
                whitespace: true,
                word_order: 4,
                ..Default::default()
            },
        ] {
            let chrf = Chrf::new(config).unwrap();
            for (hyp, refs) in &pairs {
                assert_eq!(
                    chrf.best_reference_statistics(hyp, refs, false),
                    chrf.best_reference_statistics(hyp, refs, true),
                    "{hyp:?} vs {refs:?} with {config:?}"
                );
            }
        }
    }

    /// More distinct characters than narrow ids hold: the wide path takes over and still
    /// counts every shared n-gram.
    #[test]
    fn many_distinct_characters_use_wide_keys() {
        let text: String = (0x4E00u32..0x4E00 + 1200)
            .filter_map(char::from_u32)
            .collect();
        let chrf = Chrf::default();
        let stats = chrf.segment_statistics(&text, &[&text]);
        assert_eq!(chrf.f_score(&stats.0), 100.0);
        assert_eq!(stats.0[0..3], [1200, 1200, 1200]);
        assert_eq!(stats.0[15..18], [1195, 1195, 1195]);
    }
}
