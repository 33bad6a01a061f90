//! HTER on the MLQE-PE dev triples (7 pairs × 1000 rows): sacrebleu's default TER(mt → pe)
//! must reproduce the dataset's `hter` column (6 decimals, capped at 1.0) on at least 6998 of
//! 7000 rows — what sacrebleu itself achieves (fixture README) — and our edit counts must equal
//! sacrebleu's (`hter_rows.jsonl`) on every row.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use oerkit_metrics::{hter, Metric, Ter, TerConfig};
use serde_json::Value;

const PAIRS: [&str; 7] = [
    "en-de", "en-zh", "et-en", "ne-en", "ro-en", "ru-en", "si-en",
];

/// MLQE-PE TSV rows (id, mt, pe, hter) read like Python's `csv` module with a TAB delimiter.
fn read_mlqe(pair: &str) -> Vec<[String; 4]> {
    let path = oerkit_testkit::corpus(&format!("postedit/mlqe-pe/{pair}/dev.tsv"));
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .quote(b'"')
        .double_quote(true)
        .from_path(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (id, mt, pe, h) = (col("id"), col("mt"), col("pe"), col("hter"));
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            [
                r[id].to_string(),
                r[mt].to_string(),
                r[pe].to_string(),
                r[h].to_string(),
            ]
        })
        .collect()
}

#[test]
fn hter_reproduces_mlqe_pe_dev_column() {
    oerkit_testkit::require_shared();
    let sacrebleu_rows: HashMap<(String, String), Value> =
        std::fs::read_to_string(oerkit_testkit::fixture("metrics-sacrebleu/hter_rows.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (
                    (
                        v["pair"].as_str().unwrap().to_string(),
                        v["id"].as_str().unwrap().to_string(),
                    ),
                    v,
                )
            })
            .collect();
    let ter_cs = Ter::new(TerConfig {
        case_sensitive: true,
        ..Default::default()
    });
    let (mut total, mut exact, mut same_edits) = (0, 0, 0);
    let mut misses = Vec::new();
    for pair in PAIRS {
        let rows = read_mlqe(pair);
        assert_eq!(rows.len(), 1000, "{pair}: dev rows");
        for [id, mt, pe, column] in rows {
            total += 1;
            let value = hter(&mt, &pe).min(1.0);
            if format!("{value:.6}") == column {
                exact += 1;
            } else {
                misses.push(format!("{pair} id {id}: ours {value:.6}, column {column}"));
            }
            let reference = &sacrebleu_rows[&(pair.to_string(), id.clone())];
            let ci = Ter::default().segment_statistics(&mt, &[&pe]);
            let cs = ter_cs.segment_statistics(&mt, &[&pe]);
            if ci.num_edits as f64 == reference["ter_ci_edits"].as_f64().unwrap()
                && cs.num_edits as f64 == reference["ter_cs_edits"].as_f64().unwrap()
                && ci.ref_length == reference["ref_len"].as_f64().unwrap()
            {
                same_edits += 1;
            } else {
                misses.push(format!(
                    "{pair} id {id}: edits ci {} cs {} vs sacrebleu {} {}",
                    ci.num_edits,
                    cs.num_edits,
                    reference["ter_ci_edits"],
                    reference["ter_cs_edits"]
                ));
            }
        }
    }
    eprintln!("HTER: {exact}/{total} rows equal the hter column to 6 decimals; {same_edits}/{total} edit counts equal sacrebleu");
    assert_eq!(total, 7000);
    assert_eq!(
        same_edits,
        7000,
        "TER edits differ from sacrebleu:\n{}",
        misses.join("\n")
    );
    assert!(
        exact >= 6998,
        "only {exact}/7000 rows match the hter column:\n{}",
        misses.join("\n")
    );
}
