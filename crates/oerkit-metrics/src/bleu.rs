//! BLEU (Papineni et al., 2002) exactly as sacrebleu 2.5.1's `BLEU` class computes it.

use std::str::FromStr;

use rustc_hash::FxHashMap;

use crate::ngram::{ngram_keys, PackedKey};
use crate::signature::Signature;
use crate::text::{py_lower, py_rstrip, py_split};
use crate::tokenize::{TokenizeBuffers, Tokenizer};
use crate::{Metric, MetricScore, MetricsError, SufficientStats};

/// Highest n-gram order (sacrebleu's `MAX_NGRAM_ORDER`).
pub const MAX_NGRAM_ORDER: usize = 4;

/// How BLEU handles n-gram orders without matches (sacrebleu's `smooth_method`/`smooth_value`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Smoothing {
    /// No smoothing: a zero precision gives BLEU 0.
    None,
    /// Chen & Cherry method 1: zero match counts become `value` (default 0.1).
    Floor(f64),
    /// Chen & Cherry method 2: add `value` (default 1) to matches and totals of orders ≥ 2.
    AddK(f64),
    /// NIST/mteval-v13a: the k-th zero precision becomes 1 / (2^k · total).
    Exp,
}

impl Smoothing {
    /// The method name (`none`, `floor`, `add-k`, `exp`).
    pub fn method(self) -> &'static str {
        match self {
            Smoothing::None => "none",
            Smoothing::Floor(_) => "floor",
            Smoothing::AddK(_) => "add-k",
            Smoothing::Exp => "exp",
        }
    }

    /// The signature form: `exp`, `none`, `floor[0.10]`, `add-k[1.00]`.
    pub fn signature(self) -> String {
        match self {
            Smoothing::Floor(v) | Smoothing::AddK(v) => {
                format!("{}[{}]", self.method(), fmt_py(v, 2))
            }
            _ => self.method().to_string(),
        }
    }
}

impl FromStr for Smoothing {
    type Err = MetricsError;

    /// A method name with sacrebleu's default value.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Smoothing::None),
            "floor" => Ok(Smoothing::Floor(0.1)),
            "add-k" => Ok(Smoothing::AddK(1.0)),
            "exp" => Ok(Smoothing::Exp),
            other => Err(MetricsError::UnknownOption {
                what: "smoothing method",
                value: other.to_string(),
                expected: "exp, floor, add-k, none",
            }),
        }
    }
}

/// Python's `f"{x:.{prec}f}"` (round half to even on the exact binary value, like Rust's).
pub(crate) fn fmt_py(x: f64, prec: usize) -> String {
    format!("{x:.prec$}")
}

/// BLEU settings; `Default` is sacrebleu's `BLEU()`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BleuConfig {
    pub tokenizer: Tokenizer,
    pub lowercase: bool,
    pub smoothing: Smoothing,
    /// Ignore n-gram orders the hypothesis has no n-grams of (sentence-level BLEU uses this).
    pub effective_order: bool,
}

impl Default for BleuConfig {
    fn default() -> Self {
        BleuConfig {
            tokenizer: Tokenizer::Mteval13a,
            lowercase: false,
            smoothing: Smoothing::Exp,
            effective_order: false,
        }
    }
}

impl BleuConfig {
    /// The defaults of `sacrebleu.sentence_bleu` (effective order on).
    pub fn sentence() -> Self {
        BleuConfig {
            effective_order: true,
            ..Default::default()
        }
    }
}

/// BLEU's sufficient statistics: sacrebleu's `[sys_len, ref_len, correct_1..4, total_1..4]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BleuStats {
    pub sys_len: u64,
    /// Length of the reference closest in length to the hypothesis (ties → the shorter).
    pub ref_len: u64,
    /// Clipped n-gram matches per order.
    pub correct: [u64; MAX_NGRAM_ORDER],
    /// Hypothesis n-grams per order.
    pub total: [u64; MAX_NGRAM_ORDER],
}

impl BleuStats {
    /// The flat list sacrebleu uses.
    pub fn to_vec(&self) -> Vec<f64> {
        let mut v = vec![self.sys_len as f64, self.ref_len as f64];
        v.extend(self.correct.iter().map(|&c| c as f64));
        v.extend(self.total.iter().map(|&c| c as f64));
        v
    }
}

impl SufficientStats for BleuStats {
    fn add(&mut self, other: &Self) {
        self.sys_len += other.sys_len;
        self.ref_len += other.ref_len;
        for n in 0..MAX_NGRAM_ORDER {
            self.correct[n] += other.correct[n];
            self.total[n] += other.total[n];
        }
    }
}

/// A BLEU score with everything sacrebleu's `BLEUScore` exposes.
#[derive(Debug, Clone, PartialEq)]
pub struct BleuScore {
    pub score: f64,
    /// Match counts as used in the score (with `add-k`, orders ≥ 2 include +k, as in sacrebleu).
    pub counts: [f64; MAX_NGRAM_ORDER],
    pub totals: [f64; MAX_NGRAM_ORDER],
    pub precisions: [f64; MAX_NGRAM_ORDER],
    pub bp: f64,
    pub sys_len: u64,
    pub ref_len: u64,
    pub ratio: f64,
}

impl MetricScore for BleuScore {
    fn score(&self) -> f64 {
        self.score
    }
    fn name(&self) -> String {
        "BLEU".to_string()
    }
    fn verbose(&self) -> Option<String> {
        let prec: Vec<String> = self.precisions.iter().map(|&p| fmt_py(p, 1)).collect();
        Some(format!(
            "{} (BP = {} ratio = {} hyp_len = {} ref_len = {})",
            prec.join("/"),
            fmt_py(self.bp, 3),
            fmt_py(self.ratio, 3),
            self.sys_len,
            self.ref_len
        ))
    }
}

/// sacrebleu's `my_log`: log with log(0) = -9999999999.
fn my_log(x: f64) -> f64 {
    if x == 0.0 {
        -9999999999.0
    } else {
        x.ln()
    }
}

/// The BLEU metric.
#[derive(Debug, Clone, Default)]
pub struct Bleu {
    pub config: BleuConfig,
}

/// Reusable per-thread buffers: BLEU runs on many short segments, and allocating tokeniser
/// buffers, maps and key vectors per segment costs more than the counting itself.
#[derive(Default)]
struct Scratch {
    tokenize: TokenizeBuffers,
    hyp_tokens: Vec<u8>,
    ref_tokens: Vec<Vec<u8>>,
    hyp_ids: Vec<u32>,
    ref_ids: Vec<Vec<u32>>,
    narrow: Counting<u64>,
    wide: Counting<u128>,
}

/// N-gram keys and counts of one key width.
#[derive(Default)]
struct Counting<K> {
    keys: Vec<K>,
    ends: Vec<usize>,
    /// Per n-gram the largest count in any reference (multi-reference clipping).
    max_ref_counts: FxHashMap<K, u32>,
    one_ref_counts: FxHashMap<K, u32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// A tokeniser's output as text.
fn token_text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("tokenisers only insert ASCII next to ASCII bytes")
}

/// Bits per word lane in a `u64` key: 4 lanes of 16 bits.
const NARROW_WORD_BITS: u32 = 16;
/// Bits per word lane in a `u128` key.
const WIDE_WORD_BITS: u32 = 32;

/// Clipped matches and totals per order of `hyp` against `refs` (word ids).
fn ngram_statistics<K: PackedKey>(
    c: &mut Counting<K>,
    hyp: &[u32],
    refs: &[Vec<u32>],
    bits: u32,
    stats: &mut BleuStats,
) {
    c.max_ref_counts.clear();
    for (k, r) in refs.iter().enumerate() {
        ngram_keys(r, MAX_NGRAM_ORDER, bits, &mut c.keys, &mut c.ends);
        if k == 0 {
            for &key in &c.keys {
                *c.max_ref_counts.entry(key).or_insert(0) += 1;
            }
        } else {
            c.one_ref_counts.clear();
            for &key in &c.keys {
                *c.one_ref_counts.entry(key).or_insert(0) += 1;
            }
            for (&key, &n) in &c.one_ref_counts {
                let max = c.max_ref_counts.entry(key).or_insert(0);
                *max = (*max).max(n);
            }
        }
    }
    ngram_keys(hyp, MAX_NGRAM_ORDER, bits, &mut c.keys, &mut c.ends);
    let mut start = 0;
    for (n, &end) in c.ends.iter().enumerate() {
        stats.total[n] = (end - start) as u64;
        let mut correct = 0u64;
        for key in &c.keys[start..end] {
            if let Some(remaining) = c.max_ref_counts.get_mut(key) {
                if *remaining > 0 {
                    *remaining -= 1;
                    correct += 1;
                }
            }
        }
        stats.correct[n] = correct;
        start = end;
    }
}

impl Bleu {
    pub fn new(config: BleuConfig) -> Self {
        Bleu { config }
    }

    /// sacrebleu's `_preprocess_segment`: optional lowercase, right strip, tokenise.
    pub fn preprocess(&self, line: &str) -> String {
        if self.config.lowercase {
            self.config.tokenizer.tokenize(py_rstrip(&py_lower(line)))
        } else {
            self.config.tokenizer.tokenize(py_rstrip(line))
        }
    }

    /// sacrebleu's `_preprocess_segment` into `out` (tokens as `preprocess` gives them, spacing
    /// not normalised).
    fn preprocess_into(&self, line: &str, bufs: &mut TokenizeBuffers, out: &mut Vec<u8>) {
        if self.config.lowercase {
            let lowered = py_lower(line);
            self.config
                .tokenizer
                .tokenize_into(py_rstrip(&lowered), bufs, out);
        } else {
            self.config
                .tokenizer
                .tokenize_into(py_rstrip(line), bufs, out);
        }
    }

    fn statistics_with(&self, s: &mut Scratch, hyp: &str, refs: &[&str]) -> BleuStats {
        self.preprocess_into(hyp, &mut s.tokenize, &mut s.hyp_tokens);
        s.ref_tokens.resize_with(refs.len(), Vec::new);
        for (r, out) in refs.iter().zip(s.ref_tokens.iter_mut()) {
            self.preprocess_into(r, &mut s.tokenize, out);
        }
        let Scratch {
            hyp_tokens,
            ref_tokens,
            hyp_ids,
            ref_ids,
            narrow,
            wide,
            ..
        } = s;
        let mut words: FxHashMap<&str, u32> = FxHashMap::default();
        let mut intern = |w| {
            let next = words.len() as u32 + 1;
            *words.entry(w).or_insert(next)
        };
        hyp_ids.clear();
        hyp_ids.extend(py_split(token_text(hyp_tokens)).map(&mut intern));
        ref_ids.resize_with(refs.len(), Vec::new);
        for (tokens, ids) in ref_tokens.iter().zip(ref_ids.iter_mut()) {
            ids.clear();
            ids.extend(py_split(token_text(tokens)).map(&mut intern));
        }
        let n_words = words.len();
        let ref_ids = &ref_ids[..refs.len()];

        let hyp_len = hyp_ids.len() as u64;
        // closest reference length, ties → the shorter one
        let mut closest: Option<(u64, u64)> = None;
        for ids in ref_ids {
            let rl = ids.len() as u64;
            let diff = hyp_len.abs_diff(rl);
            closest = match closest {
                None => Some((diff, rl)),
                Some((d, l)) if diff < d || (diff == d && rl < l) => Some((diff, rl)),
                keep => keep,
            };
        }
        let mut stats = BleuStats {
            sys_len: hyp_len,
            ref_len: closest.map_or(0, |(_, l)| l),
            ..Default::default()
        };
        if n_words < (1 << NARROW_WORD_BITS) {
            ngram_statistics(narrow, hyp_ids, ref_ids, NARROW_WORD_BITS, &mut stats);
        } else {
            ngram_statistics(wide, hyp_ids, ref_ids, WIDE_WORD_BITS, &mut stats);
        }
        stats
    }

    /// sacrebleu's `compute_bleu` from summed statistics.
    pub fn compute(&self, stats: &BleuStats) -> BleuScore {
        let sys_len = stats.sys_len;
        let ref_len = stats.ref_len;
        let mut counts = stats.correct.map(|c| c as f64);
        let mut totals = stats.total.map(|c| c as f64);
        let mut bp = 1.0;
        if sys_len < ref_len {
            bp = if sys_len > 0 {
                (1.0 - ref_len as f64 / sys_len as f64).exp()
            } else {
                0.0
            };
        }
        let ratio = if ref_len > 0 {
            sys_len as f64 / ref_len as f64
        } else {
            0.0
        };
        let mut precisions = [0.0f64; MAX_NGRAM_ORDER];
        if stats.correct.iter().all(|&c| c == 0) {
            return BleuScore {
                score: 0.0,
                counts,
                totals,
                precisions,
                bp,
                sys_len,
                ref_len,
                ratio,
            };
        }
        let mut smooth_mteval = 1.0f64;
        let mut eff_order = MAX_NGRAM_ORDER;
        for n in 1..=MAX_NGRAM_ORDER {
            if let Smoothing::AddK(k) = self.config.smoothing {
                if n > 1 {
                    counts[n - 1] += k;
                    totals[n - 1] += k;
                }
            }
            if totals[n - 1] == 0.0 {
                break;
            }
            if self.config.effective_order {
                eff_order = n;
            }
            if counts[n - 1] == 0.0 {
                match self.config.smoothing {
                    Smoothing::Exp => {
                        smooth_mteval *= 2.0;
                        precisions[n - 1] = 100.0 / (smooth_mteval * totals[n - 1]);
                    }
                    Smoothing::Floor(v) => precisions[n - 1] = 100.0 * v / totals[n - 1],
                    _ => {}
                }
            } else {
                precisions[n - 1] = 100.0 * counts[n - 1] / totals[n - 1];
            }
        }
        // Python's sum() over a list: left to right, starting from 0
        let mut log_sum = 0.0f64;
        for &p in &precisions[..eff_order] {
            log_sum += my_log(p);
        }
        let score = bp * (log_sum / eff_order as f64).exp();
        BleuScore {
            score,
            counts,
            totals,
            precisions,
            bp,
            sys_len,
            ref_len,
            ratio,
        }
    }
}

impl Metric for Bleu {
    type Stats = BleuStats;
    type Score = BleuScore;

    fn segment_statistics(&self, hyp: &str, refs: &[&str]) -> BleuStats {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => self.statistics_with(&mut s, hyp, refs),
            // re-entered on this thread (cannot happen today): use fresh buffers
            Err(_) => self.statistics_with(&mut Scratch::default(), hyp, refs),
        })
    }

    fn score_from_stats(&self, stats: &BleuStats) -> BleuScore {
        self.compute(stats)
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
            if self.config.effective_order {
                "yes"
            } else {
                "no"
            },
        );
        sig.push("tok", "tok", self.config.tokenizer.name());
        sig.push("smooth", "s", &self.config.smoothing.signature());
        sig
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// More distinct words than 16-bit ids hold: the `u128` key path counts the same way.
    #[test]
    fn many_distinct_words_use_wide_keys() {
        let hyp: String = (0..70_000).map(|i| format!("w{i} ")).collect();
        let reference: String = (0..70_000).rev().map(|i| format!("w{i} ")).collect();
        let stats = Bleu::default().segment_statistics(&hyp, &[&reference]);
        assert_eq!(stats.sys_len, 70_000);
        assert_eq!(stats.total, [70_000, 69_999, 69_998, 69_997]);
        // reversed order: every word matches, no longer n-gram does
        assert_eq!(stats.correct, [70_000, 0, 0, 0]);
        let same = Bleu::default().segment_statistics(&hyp, &[&reference, &hyp]);
        assert_eq!(same.correct, same.total);
    }
}
