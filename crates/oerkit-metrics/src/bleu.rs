//! BLEU (Papineni et al., 2002) exactly as sacrebleu 2.5.1's `BLEU` class computes it.

use std::str::FromStr;

use rustc_hash::FxHashMap;

use crate::signature::Signature;
use crate::text::{py_lower, py_rstrip, py_split};
use crate::tokenize::Tokenizer;
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

/// Interns the words of one segment so n-grams can be compared as packed integers.
#[derive(Default)]
struct WordIds<'a> {
    ids: FxHashMap<&'a str, u32>,
}

impl<'a> WordIds<'a> {
    fn id(&mut self, w: &'a str) -> u32 {
        let next = self.ids.len() as u32 + 1;
        *self.ids.entry(w).or_insert(next)
    }
}

/// All 1..=4-gram keys of `ids`, sorted (ids are ≥ 1, so the order is the number of
/// non-zero 32-bit lanes and keys of different orders never collide).
fn ngram_keys(ids: &[u32], out: &mut Vec<u128>) {
    out.clear();
    for n in 1..=MAX_NGRAM_ORDER {
        if ids.len() < n {
            break;
        }
        for win in ids.windows(n) {
            let mut key = 0u128;
            for (lane, &id) in win.iter().enumerate() {
                key |= (id as u128) << (32 * lane);
            }
            out.push(key);
        }
    }
    out.sort_unstable();
}

fn key_order(key: u128) -> usize {
    // number of non-zero 32-bit lanes
    (128 - key.leading_zeros() as usize).div_ceil(32)
}

/// Run-length encode a sorted key list.
fn counted(sorted: &[u128], out: &mut Vec<(u128, u32)>) {
    out.clear();
    for &k in sorted {
        match out.last_mut() {
            Some((last, c)) if *last == k => *c += 1,
            _ => out.push((k, 1)),
        }
    }
}

/// Merge `b` into `a` keeping the maximum count per key (multi-reference clipping).
fn merge_max(a: &[(u128, u32)], b: &[(u128, u32)]) -> Vec<(u128, u32)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push((a[i].0, a[i].1.max(b[j].1)));
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
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
        let hyp_tok = self.preprocess(hyp);
        let refs_tok: Vec<String> = refs.iter().map(|r| self.preprocess(r)).collect();
        let mut words = WordIds::default();
        let hyp_ids: Vec<u32> = py_split(&hyp_tok).map(|w| words.id(w)).collect();
        let mut keys = Vec::new();
        let mut run = Vec::new();
        let mut ref_counts: Vec<(u128, u32)> = Vec::new();
        let mut ref_lens = Vec::with_capacity(refs_tok.len());
        for (k, r) in refs_tok.iter().enumerate() {
            let ids: Vec<u32> = py_split(r).map(|w| words.id(w)).collect();
            ref_lens.push(ids.len() as u64);
            ngram_keys(&ids, &mut keys);
            counted(&keys, &mut run);
            ref_counts = if k == 0 {
                std::mem::take(&mut run)
            } else {
                merge_max(&ref_counts, &run)
            };
        }
        let hyp_len = hyp_ids.len() as u64;
        // closest reference length, ties → the shorter one
        let mut closest: Option<(u64, u64)> = None;
        for &rl in &ref_lens {
            let diff = hyp_len.abs_diff(rl);
            closest = match closest {
                None => Some((diff, rl)),
                Some((d, l)) if diff < d || (diff == d && rl < l) => Some((diff, rl)),
                keep => keep,
            };
        }
        let ref_len = closest.map_or(0, |(_, l)| l);
        ngram_keys(&hyp_ids, &mut keys);
        counted(&keys, &mut run);
        let mut stats = BleuStats {
            sys_len: hyp_len,
            ref_len,
            ..Default::default()
        };
        let mut j = 0;
        for &(key, count) in &run {
            let n = key_order(key) - 1;
            stats.total[n] += count as u64;
            while j < ref_counts.len() && ref_counts[j].0 < key {
                j += 1;
            }
            if j < ref_counts.len() && ref_counts[j].0 == key {
                stats.correct[n] += count.min(ref_counts[j].1) as u64;
            }
        }
        stats
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
