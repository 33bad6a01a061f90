//! TER's `normalized`, `no_punct` and `asian_support` options against sacrebleu 2.5.1 on all
//! 7 × 1000 MLQE-PE dev rows: the fixture `hter_vs_sacrebleu_ter.json` records, per pair and
//! option set, how sacrebleu's TER(mt → pe) compares with the dataset's `hter` column (count of
//! 6-decimal matches, mean / max absolute difference, share within 0.01, capped and not). Our
//! per-row values must give the same figures; a single differing edit count moves the mean by
//! more than 1e-6, far above the 1e-12 tolerance.
#![allow(clippy::unwrap_used)]

use oerkit_metrics::{Metric, Ter, TerConfig};
use serde_json::Value;

const PAIRS: [&str; 7] = [
    "en-de", "en-zh", "et-en", "ne-en", "ro-en", "ru-en", "si-en",
];

/// The fixture's option sets beyond the defaults (those are covered by `hter.rs`).
const VARIANTS: [(&str, TerConfig); 4] = [
    (
        "ter_ci_normalized",
        TerConfig {
            case_sensitive: false,
            normalized: true,
            no_punct: false,
            asian_support: false,
        },
    ),
    (
        "ter_cs_normalized",
        TerConfig {
            case_sensitive: true,
            normalized: true,
            no_punct: false,
            asian_support: false,
        },
    ),
    (
        "ter_ci_no_punct",
        TerConfig {
            case_sensitive: false,
            normalized: false,
            no_punct: true,
            asian_support: false,
        },
    ),
    (
        "ter_ci_normalized_asian",
        TerConfig {
            case_sensitive: false,
            normalized: true,
            no_punct: false,
            asian_support: true,
        },
    ),
];

/// (mt, pe, hter) of a pair's dev TSV, read like Python's `csv` module with a TAB delimiter.
fn read_mlqe(pair: &str) -> Vec<(String, String, f64)> {
    let path = oerkit_testkit::corpus(&format!("postedit/mlqe-pe/{pair}/dev.tsv"));
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .quote(b'"')
        .double_quote(true)
        .from_path(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (mt, pe, h) = (col("mt"), col("pe"), col("hter"));
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[mt].to_string(), r[pe].to_string(), r[h].parse().unwrap())
        })
        .collect()
}

/// The fixture's summary of one value list against the column (generate.py `hter_analysis`).
fn summary(values: &[f64], column: &[f64]) -> (u64, f64, f64, f64) {
    let diffs: Vec<f64> = values
        .iter()
        .zip(column)
        .map(|(a, b)| (a - b).abs())
        .collect();
    // Python: abs(round(a, 6) - b) < 1e-9
    let exact = values
        .iter()
        .zip(column)
        .filter(|(a, b)| {
            let rounded: f64 = format!("{a:.6}").parse().unwrap();
            (rounded - **b).abs() < 1e-9
        })
        .count() as u64;
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    let max = diffs.iter().cloned().fold(0.0, f64::max);
    let within = diffs.iter().filter(|&&d| d <= 0.01).count() as f64 / diffs.len() as f64;
    (exact, mean, max, within)
}

#[test]
fn ter_options_reproduce_sacrebleu_on_mlqe_pe() {
    oerkit_testkit::require_shared();
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(oerkit_testkit::fixture(
            "metrics-sacrebleu/hter_vs_sacrebleu_ter.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let mut failures = Vec::new();
    let mut compared = 0;
    for pair in PAIRS {
        let rows = read_mlqe(pair);
        assert_eq!(rows.len(), 1000, "{pair}: dev rows");
        let column: Vec<f64> = rows.iter().map(|r| r.2).collect();
        for (name, config) in VARIANTS {
            let ter = Ter::new(config);
            let values: Vec<f64> = rows
                .iter()
                .map(|(mt, pe, _)| {
                    let s = ter.segment_statistics(mt, &[pe]);
                    if s.ref_length > 0.0 {
                        s.num_edits as f64 / s.ref_length
                    } else if s.num_edits > 0 {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect();
            let capped: Vec<f64> = values.iter().map(|v| v.min(1.0)).collect();
            for (suffix, vals) in [("", &values), ("_capped1", &capped)] {
                let want = &fixture["pairs"][pair][format!("{name}{suffix}")];
                assert!(want.is_object(), "fixture lacks {pair} {name}{suffix}");
                let (exact, mean, max, within) = summary(vals, &column);
                compared += 1;
                let close =
                    |got: f64, key: &str| (got - want[key].as_f64().unwrap()).abs() <= 1e-12;
                if exact != want["n_exact_6dp"].as_u64().unwrap()
                    || !close(mean, "mean_abs_diff")
                    || !close(max, "max_abs_diff")
                    || !close(within, "within_0.01_rate")
                {
                    failures.push(format!(
                        "{pair} {name}{suffix}: ours exact {exact} mean {mean} max {max} within \
                         {within}; sacrebleu {want}"
                    ));
                }
            }
        }
    }
    assert_eq!(compared, 7 * 4 * 2);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
