//! Paired bootstrap: the resample indices equal numpy's `default_rng(12345).choice(...)` that
//! sacrebleu uses (values printed by numpy 2.4.6), same seed → same result, and p-values
//! and intervals agree with sacrebleu's paired bootstrap on a fixture set.
#![allow(clippy::unwrap_used)]

use oerkit_metrics::bootstrap::resample_indices;
use oerkit_metrics::{paired_bootstrap, Bleu, Chrf, Metric, PairedBootstrap, Ter, SACREBLEU_SEED};
use serde_json::Value;

#[test]
fn indices_equal_numpy_default_rng_choice() {
    let rows = resample_indices(300, 2, SACREBLEU_SEED);
    assert_eq!(&rows[0][..10], &NUMPY_300_ROW0[..]);
    assert_eq!(&rows[1][..10], &NUMPY_300_ROW1[..]);
    assert_eq!(resample_indices(7, 1, SACREBLEU_SEED)[0], NUMPY_7[..7]);
}

// `np.random.default_rng(12345).choice(300, size=(2, 300), replace=True)[:, :10]`
const NUMPY_300_ROW0: [usize; 10] = [209, 68, 236, 95, 61, 239, 192, 202, 296, 117];
const NUMPY_300_ROW1: [usize; 10] = [289, 232, 101, 260, 174, 143, 176, 50, 37, 160];
// `np.random.default_rng(12345).choice(7, size=(1, 12), replace=True)[0]`
const NUMPY_7: [usize; 12] = [4, 1, 5, 2, 1, 5, 4, 4, 6, 2, 5, 2];

/// Baseline = MLQE-PE en-de dev300 `mt`; system = the same with every 40th line replaced by
/// its post-edit; reference = `pe`.
fn systems() -> (Vec<String>, Vec<String>, Vec<Vec<String>>) {
    oerkit_testkit::require_shared();
    let path = oerkit_testkit::fixture("metrics-sacrebleu/sets/mlqe-en-de-dev300.jsonl");
    let rows: Vec<Value> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let refs: Vec<String> = rows
        .iter()
        .map(|r| r["refs"][0].as_str().unwrap().to_string())
        .collect();
    let base: Vec<String> = rows
        .iter()
        .map(|r| r["hyp"].as_str().unwrap().to_string())
        .collect();
    let sys = base
        .iter()
        .enumerate()
        .map(|(i, h)| {
            if i % 40 == 0 {
                refs[i].clone()
            } else {
                h.clone()
            }
        })
        .collect();
    (base, sys, vec![refs])
}

fn run<M: Metric>(m: &M, base: &[String], sys: &[String], refs: &[Vec<String>]) -> PairedBootstrap {
    let b = m.corpus_statistics(base, refs).unwrap();
    let s = m.corpus_statistics(sys, refs).unwrap();
    paired_bootstrap(m, &b, &s, 1000, SACREBLEU_SEED).unwrap()
}

/// sacrebleu 2.5.1 `PairedTest([("base", b), ("sys", s)], {...}, test_type="bs", n_samples=1000)`
/// on the same data: (score, p, mean, ci) of the system and (mean, ci) of the baseline.
/// sacrebleu sums float32 statistics, so means/intervals may differ in late digits.
const SACREBLEU: [(&str, f64, f64, f64, f64, f64, f64); 3] = [
    (
        "BLEU",
        68.86369365654286,
        0.04495504495504495,
        68.84410486721268,
        3.356275805528348,
        67.96654718543594,
        3.332458493007479,
    ),
    (
        "chrF2",
        82.37170689301277,
        0.08891108891108891,
        82.35742950439453,
        2.067089080810547,
        81.77120208740234,
        2.04962158203125,
    ),
    (
        "TER",
        19.48738812042311,
        0.06593406593406594,
        19.495363235473633,
        2.311448097229004,
        20.07569694519043,
        2.2643346786499023,
    ),
];

#[test]
fn paired_bootstrap_agrees_with_sacrebleu_and_is_deterministic() {
    let (base, sys, refs) = systems();
    let results = [
        run(&Bleu::default(), &base, &sys, &refs),
        run(&Chrf::default(), &base, &sys, &refs),
        run(&Ter::default(), &base, &sys, &refs),
    ];
    for (r, (name, score, p, mean, ci, bl_mean, bl_ci)) in results.iter().zip(SACREBLEU) {
        assert!((r.system_score - score).abs() < 1e-9, "{name} score {r:?}");
        // identical resamples: at most a borderline count may flip through float32 rounding
        assert!(
            (r.p_value - p).abs() <= 2.0 / 1001.0,
            "{name} p {} vs {p}",
            r.p_value
        );
        assert!(
            (r.system_mean - mean).abs() < 1e-3,
            "{name} mean {} vs {mean}",
            r.system_mean
        );
        assert!(
            (r.system_ci - ci).abs() < 1e-3,
            "{name} ci {} vs {ci}",
            r.system_ci
        );
        assert!(
            (r.baseline_mean - bl_mean).abs() < 1e-3,
            "{name} baseline mean"
        );
        assert!((r.baseline_ci - bl_ci).abs() < 1e-3, "{name} baseline ci");
    }
    let again = run(&Bleu::default(), &base, &sys, &refs);
    assert_eq!(again, results[0]);
    let other_seed = {
        let m = Bleu::default();
        let b = m.corpus_statistics(&base, &refs).unwrap();
        let s = m.corpus_statistics(&sys, &refs).unwrap();
        paired_bootstrap(&m, &b, &s, 1000, 7).unwrap()
    };
    assert_ne!(other_seed.system_mean, results[0].system_mean);
}

#[test]
fn a_system_against_itself_has_identical_intervals() {
    let (base, _, refs) = systems();
    let r = run(&Chrf::default(), &base, &base, &refs);
    assert_eq!(r.system_mean, r.baseline_mean);
    assert_eq!(r.system_ci, r.baseline_ci);
    // sacrebleu counts strictly larger centred differences: none, so p = 1 / (n + 1)
    assert_eq!(r.p_value, 1.0 / 1001.0);
}
