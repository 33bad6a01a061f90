//! `oerkit-metrics`: machine-translation evaluation metrics that agree exactly with
//! sacrebleu 2.5.1 — BLEU (tokenisers 13a/intl/zh/char/none, all smoothing methods, effective
//! order, multiple references), chrF/chrF++, TER with shifts and HTER — plus sacrebleu-style
//! signatures and paired bootstrap resampling (numpy's PCG64 stream, so sacrebleu's resamples
//! are reproduced index for index).
//!
//! Owns: metric algorithms, their sufficient statistics, score formatting. Depends only on
//! small text/hash crates (`regex`, `rustc-hash`); no model, I/O or CLI dependencies.
//!
//! Every metric follows sacrebleu's design: per-segment *sufficient statistics*
//! ([`Metric::segment_statistics`]) are summed over the corpus and turned into a score
//! ([`Metric::score_from_stats`]); significance tests resample those statistics.

pub mod bleu;
pub mod bootstrap;
pub mod chrf;
mod ngram;
pub mod signature;
pub mod ter;
pub mod text;
pub mod tokenize;

pub use bleu::{Bleu, BleuConfig, BleuScore, BleuStats, Smoothing};
pub use bootstrap::{paired_bootstrap, PairedBootstrap, SACREBLEU_SEED};
pub use chrf::{Chrf, ChrfConfig, ChrfScore, ChrfStats};
pub use signature::{Signature, SACREBLEU_VERSION};
pub use ter::{hter, Ter, TerConfig, TerScore, TerStats};
pub use tokenize::Tokenizer;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("unknown {what} {value:?}; expected one of: {expected}")]
    UnknownOption {
        what: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error(
        "reference stream {stream} has {found} segments but the hypotheses have {expected}; \
         every reference file must be line-aligned with the hypothesis file"
    )]
    LengthMismatch {
        stream: usize,
        expected: usize,
        found: usize,
    },
    #[error("no reference stream given; pass at least one reference")]
    NoReferences,
    #[error("no segments to score")]
    Empty,
}

/// Per-segment statistics that add up to corpus statistics.
pub trait SufficientStats: Clone + Default {
    /// `self += other` (sacrebleu's `sum_of_lists`, left to right).
    fn add(&mut self, other: &Self);
}

/// What every score can say about itself.
pub trait MetricScore {
    /// The score on sacrebleu's 0–100 scale.
    fn score(&self) -> f64;
    /// sacrebleu's score name: `BLEU`, `chrF2`, `chrF2++`, `TER`.
    fn name(&self) -> String;
    /// sacrebleu's verbose part (BLEU's precisions and lengths), if any.
    fn verbose(&self) -> Option<String>;

    /// sacrebleu's `Score.format(width, signature=...)`:
    /// `BLEU|nrefs:1|... = 47.69 79.2/58.4/45.0/35.5 (BP = ...)`.
    fn format(&self, width: usize, signature: Option<&str>) -> String {
        let mut s = match signature {
            Some(sig) if !sig.is_empty() => format!("{}|{}", self.name(), sig),
            _ => self.name(),
        };
        s.push_str(" = ");
        s.push_str(&bleu::fmt_py(self.score(), width));
        if let Some(v) = self.verbose() {
            s.push(' ');
            s.push_str(&v);
        }
        s
    }

    /// sacrebleu's `Score.format(width, signature=sig, is_json=True)`: the object printed by
    /// `sacrebleu -f json`, with the same key order and `json.dumps(indent=1)` layout.
    fn to_sacrebleu_json(&self, width: usize, signature: &Signature) -> String {
        let rounded: f64 = bleu::fmt_py(self.score(), width)
            .parse()
            .expect("formatted float parses back");
        let sig = signature.format(false);
        let mut fields: Vec<(String, String)> = vec![
            ("name".into(), json_str(&self.name())),
            ("score".into(), json_float(rounded)),
            ("signature".into(), json_str(&sig)),
        ];
        if let Some(v) = self.verbose() {
            fields.push(("verbose_score".into(), json_str(&v)));
        }
        for (k, v) in signature.pairs() {
            fields.push((k, json_str(&v)));
        }
        json_object(&fields, 0)
    }
}

/// A JSON string literal (non-ASCII kept as is, like `ensure_ascii=False`).
pub fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("strings always serialise")
}

/// A JSON number as Python's `json.dumps` writes a float (`26.7`, `100.0`).
pub fn json_float(x: f64) -> String {
    if !x.is_finite() {
        return "NaN".to_string();
    }
    let s = serde_json::to_string(&x).expect("finite floats serialise");
    if s.contains(['.', 'e', 'E']) {
        s
    } else {
        format!("{s}.0")
    }
}

/// `json.dumps(obj, indent=1)` layout for an object whose values are already JSON text;
/// `depth` is the nesting depth of the object itself.
pub fn json_object(fields: &[(String, String)], depth: usize) -> String {
    let pad = " ".repeat(depth + 1);
    let mut out = String::from("{\n");
    for (k, (key, value)) in fields.iter().enumerate() {
        out.push_str(&pad);
        out.push_str(&json_str(key));
        out.push_str(": ");
        out.push_str(value);
        if k + 1 < fields.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str(&" ".repeat(depth));
    out.push('}');
    out
}

/// A metric in sacrebleu's statistics-then-score design.
pub trait Metric {
    type Stats: SufficientStats;
    type Score: MetricScore;

    /// Statistics of one hypothesis against its references (sacrebleu's
    /// `_preprocess_segment` + `_compute_segment_statistics`).
    fn segment_statistics(&self, hyp: &str, refs: &[&str]) -> Self::Stats;

    /// The score of (summed) statistics (sacrebleu's `_compute_score_from_stats`).
    fn score_from_stats(&self, stats: &Self::Stats) -> Self::Score;

    /// The signature for `n_refs` references.
    fn signature(&self, n_refs: usize) -> Signature;

    /// Per-segment statistics of a corpus; `ref_streams[k][i]` is reference `k` of segment `i`.
    fn corpus_statistics<H: AsRef<str>, R: AsRef<str>>(
        &self,
        hyps: &[H],
        ref_streams: &[Vec<R>],
    ) -> Result<Vec<Self::Stats>, MetricsError> {
        check_streams(hyps.len(), ref_streams)?;
        let mut refs: Vec<&str> = Vec::with_capacity(ref_streams.len());
        Ok(hyps
            .iter()
            .enumerate()
            .map(|(i, h)| {
                refs.clear();
                refs.extend(ref_streams.iter().map(|s| s[i].as_ref()));
                self.segment_statistics(h.as_ref(), &refs)
            })
            .collect())
    }

    /// Corpus-level score (sacrebleu's `corpus_score`).
    fn corpus_score<H: AsRef<str>, R: AsRef<str>>(
        &self,
        hyps: &[H],
        ref_streams: &[Vec<R>],
    ) -> Result<Self::Score, MetricsError> {
        let stats = self.corpus_statistics(hyps, ref_streams)?;
        Ok(self.score_from_stats(&sum_stats(&stats)))
    }

    /// Sentence-level score (sacrebleu's `sentence_score`).
    fn sentence_score(&self, hyp: &str, refs: &[&str]) -> Self::Score {
        self.score_from_stats(&self.segment_statistics(hyp, refs))
    }
}

/// Sum statistics left to right (sacrebleu's `sum_of_lists`).
pub fn sum_stats<S: SufficientStats>(stats: &[S]) -> S {
    let mut total = S::default();
    for s in stats {
        total.add(s);
    }
    total
}

fn check_streams<R>(n_hyps: usize, ref_streams: &[Vec<R>]) -> Result<(), MetricsError> {
    if ref_streams.is_empty() {
        return Err(MetricsError::NoReferences);
    }
    for (k, s) in ref_streams.iter().enumerate() {
        if s.len() != n_hyps {
            return Err(MetricsError::LengthMismatch {
                stream: k + 1,
                expected: n_hyps,
                found: s.len(),
            });
        }
    }
    Ok(())
}
