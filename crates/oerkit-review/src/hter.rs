//! HTER of a reviewer's final text against the machine suggestion it started from.
//!
//! The one place the review store computes HTER; the metric itself is `oerkit-metrics`' TER with shifts,
//! exactly as sacrebleu computes it.

/// HTER = TER(hypothesis = suggestion, reference = final text) as a fraction: edits / words of the final
/// text, case-insensitive (sacrebleu's default TER), not capped (MLQE-PE publishes it capped at 1.0).
pub fn hter(suggestion: &str, final_text: &str) -> Option<f64> {
    Some(oerkit_metrics::hter(suggestion, final_text))
}
