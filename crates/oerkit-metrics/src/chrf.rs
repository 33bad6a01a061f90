//! chrF (Popović 2015) and chrF++ (Popović 2017) exactly as sacrebleu 2.5.1's `CHRF` class.

use rustc_hash::FxHashMap;

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

/// Sorted, run-length-encoded n-gram counts of one order.
type Counts = Vec<(u128, u32)>;

fn count_sorted(keys: &mut [u128]) -> Counts {
    keys.sort_unstable();
    let mut out: Counts = Vec::with_capacity(keys.len());
    for &k in keys.iter() {
        match out.last_mut() {
            Some((last, c)) if *last == k => *c += 1,
            _ => out.push((k, 1)),
        }
    }
    out
}

/// N-gram counts of one segment, one `Counts` per order (chars first, then words).
struct SegmentNgrams {
    orders: Vec<Counts>,
    totals: Vec<u64>,
}

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

    fn extract<'a>(&self, line: &'a str, words: &mut FxHashMap<&'a str, u32>) -> SegmentNgrams {
        let chars: Vec<char> = if self.config.whitespace {
            line.chars().collect()
        } else {
            line.chars().filter(|&c| !is_py_whitespace(c)).collect()
        };
        let mut orders = Vec::with_capacity(self.order());
        let mut totals = Vec::with_capacity(self.order());
        let mut keys: Vec<u128> = Vec::with_capacity(chars.len());
        for n in 1..=self.config.char_order {
            keys.clear();
            if chars.len() >= n {
                for win in chars.windows(n) {
                    let mut key = 0u128;
                    for (lane, &c) in win.iter().enumerate() {
                        key |= ((c as u128) + 1) << (21 * lane);
                    }
                    keys.push(key);
                }
            }
            totals.push(keys.len() as u64);
            orders.push(count_sorted(&mut keys));
        }
        if self.config.word_order > 0 {
            let ids: Vec<u32> = remove_punctuation(line)
                .into_iter()
                .map(|w| {
                    let next = words.len() as u32 + 1;
                    *words.entry(w).or_insert(next)
                })
                .collect();
            for n in 1..=self.config.word_order {
                keys.clear();
                if ids.len() >= n {
                    for win in ids.windows(n) {
                        let mut key = 0u128;
                        for (lane, &id) in win.iter().enumerate() {
                            key |= (id as u128) << (32 * lane);
                        }
                        keys.push(key);
                    }
                }
                totals.push(keys.len() as u64);
                orders.push(count_sorted(&mut keys));
            }
        }
        SegmentNgrams { orders, totals }
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

fn match_statistics(hyp: &Counts, hyp_total: u64, reference: &Counts, ref_total: u64) -> [u64; 3] {
    let mut matches = 0u64;
    let mut j = 0;
    for &(key, count) in hyp {
        while j < reference.len() && reference[j].0 < key {
            j += 1;
        }
        if j < reference.len() && reference[j].0 == key {
            matches += count.min(reference[j].1) as u64;
        }
    }
    // sacrebleu does not count hypothesis n-grams when the reference has none of that order
    [
        if reference.is_empty() { 0 } else { hyp_total },
        ref_total,
        matches,
    ]
}

impl Metric for Chrf {
    type Stats = ChrfStats;
    type Score = ChrfScore;

    fn segment_statistics(&self, hyp: &str, refs: &[&str]) -> ChrfStats {
        fn lower(s: &str, on: bool) -> std::borrow::Cow<'_, str> {
            if on {
                std::borrow::Cow::Owned(py_lower(s))
            } else {
                std::borrow::Cow::Borrowed(s)
            }
        }
        let on = self.config.lowercase;
        let hyp_text = lower(hyp, on);
        let ref_texts: Vec<_> = refs.iter().map(|r| lower(r, on)).collect();
        let mut words = FxHashMap::default();
        let hyp_ngrams = self.extract(&hyp_text, &mut words);
        let mut best_stats = Vec::new();
        let mut best_f = -1.0f64;
        for r in &ref_texts {
            let ref_ngrams = self.extract(r, &mut words);
            let mut stats = Vec::with_capacity(3 * self.order());
            for o in 0..self.order() {
                stats.extend(match_statistics(
                    &hyp_ngrams.orders[o],
                    hyp_ngrams.totals[o],
                    &ref_ngrams.orders[o],
                    ref_ngrams.totals[o],
                ));
            }
            let f = self.f_score(&stats);
            if f > best_f {
                best_f = f;
                best_stats = stats;
            }
        }
        ChrfStats(best_stats)
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
