//! HTER of a reviewer's final text against the machine suggestion it started from.
//!
//! The one place the review store computes HTER, so the metric can come from `oerkit-metrics` (TER with
//! shifts exactly as sacrebleu computes it) and nowhere else.

/// HTER = TER(hypothesis = suggestion, reference = final text) as a fraction (0.0 = untouched), or `None`
/// while no TER implementation is wired in.
pub fn hter(suggestion: &str, final_text: &str) -> Option<f64> {
    let _ = (suggestion, final_text);
    None
}
