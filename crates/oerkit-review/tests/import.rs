//! Import of the real MLQE-PE dev triples (../shared/corpora/postedit/mlqe-pe): every row becomes a unit
//! with its machine output and post-edit, and the HTER the store computes reproduces the published one
//! as closely as the sacrebleu reference does (fixtures/metrics-sacrebleu/hter_vs_sacrebleu_ter.json).
#![allow(clippy::unwrap_used)]

use oerkit_review::import::{import_triples, read_triples, TripleImport};
use oerkit_review::*;

fn settings(pair: &str) -> TripleImport {
    let (src, tgt) = pair.split_once('-').unwrap();
    TripleImport {
        path: oerkit_testkit::corpus(&format!("postedit/mlqe-pe/{pair}/dev.tsv")),
        src_lang: src.into(),
        tgt_lang: tgt.into(),
        job_name: None,
        reviewer: "mlqe-pe-annotator".into(),
        actor: "tester".into(),
        batch_size: 250,
    }
}

/// The share of rows whose published 6-decimal HTER sacrebleu's capped default TER reproduces.
fn reference_exact_rate(pair: &str) -> f64 {
    let path = oerkit_testkit::fixture("metrics-sacrebleu/hter_vs_sacrebleu_ter.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["pairs"][pair]["ter_default_ci_capped1"]["exact_match_rate_6dp"]
        .as_f64()
        .unwrap()
}

#[test]
fn mlqe_pe_dev_triples_import_with_their_hter() {
    oerkit_testkit::require_shared();
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("mlqe.db")).unwrap();
    for pair in [
        "en-de", "en-zh", "et-en", "ne-en", "ro-en", "ru-en", "si-en",
    ] {
        let s = settings(pair);
        let mut batches = 0;
        let report = import_triples(&mut store, &s, &mut |_, _| batches += 1).unwrap();
        assert_eq!(
            (report.rows, report.added, report.already_present),
            (1000, 1000, 0),
            "{pair}"
        );
        assert_eq!(batches, 4);
        assert_eq!(report.job.name, format!("{pair}/dev"));
        let status = store
            .status()
            .unwrap()
            .into_iter()
            .find(|j| j.job.id == report.job.id)
            .unwrap();
        assert_eq!(
            (status.units, status.approved, status.reviews),
            (1000, 1000, 1000)
        );

        let (triples, _) = read_triples(&s.path).unwrap();
        let rows = store.research_rows(report.job.id).unwrap();
        assert_eq!(rows.len(), 1000);
        let mut exact = 0;
        for (row, t) in rows.iter().zip(&triples) {
            assert_eq!(
                (row.unit_ext_id.as_str(), row.src.as_str()),
                (t.id.as_str(), t.src.as_str())
            );
            assert_eq!(row.mt.as_deref(), Some(t.mt.as_str()));
            assert_eq!(row.final_text, t.pe);
            assert_eq!(row.reported_hter, t.hter);
            assert_eq!(
                row.action,
                if Some(&t.mt) == t.pe.as_ref() {
                    Action::Accept
                } else {
                    Action::Edit
                }
            );
            let ours = row
                .hter
                .expect("HTER computed for every imported post-edit")
                .min(1.0);
            if format!("{ours:.6}").parse::<f64>().unwrap() == t.hter.unwrap() {
                exact += 1;
            }
        }
        let rate = exact as f64 / 1000.0;
        let reference = reference_exact_rate(pair);
        assert!(
            rate >= reference,
            "{pair}: {rate} of rows reproduce the published HTER, sacrebleu {reference}"
        );

        // Running the same import again adds nothing: the job is recognised by the file's sha256.
        let again = import_triples(&mut store, &s, &mut |_, _| {}).unwrap();
        assert!(again.resumed);
        assert_eq!((again.added, again.already_present), (0, 1000));
    }
}

#[test]
fn malformed_triples_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.tsv");
    std::fs::write(
        &path,
        "id\tsrc\tmt\tpe\thter\n0\ta\tb\tc\t0.5\n1\ta\tb\tc\tlots\n",
    )
    .unwrap();
    let err = read_triples(&path).unwrap_err().to_string();
    assert!(
        err.contains("bad.tsv:3") && err.contains("\"lots\" is not a number"),
        "{err}"
    );
    std::fs::write(&path, "source\ttarget\nx\ty\n").unwrap();
    let err = read_triples(&path).unwrap_err().to_string();
    assert!(
        err.contains("bad.tsv:1") && err.contains("id, src, mt"),
        "{err}"
    );
    std::fs::write(&path, "id\tsrc\tmt\tpe\n0\ta\tb\tc\n0\td\te\tf\n").unwrap();
    let err = read_triples(&path).unwrap_err().to_string();
    assert!(
        err.contains("bad.tsv:3") && err.contains("appears twice"),
        "{err}"
    );
}

#[test]
fn rows_without_post_edits_are_queued_for_review() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mt.tsv");
    std::fs::write(
        &path,
        "id\tsrc\tmt\na\tHello\tHola\nb\t\"Quoted\"\" text\"\tTexto\n",
    )
    .unwrap();
    let mut store = SqliteStore::open_in_memory().unwrap();
    let s = TripleImport {
        path,
        src_lang: "en".into(),
        tgt_lang: "es".into(),
        job_name: Some("queue".into()),
        reviewer: "nobody".into(),
        actor: "tester".into(),
        batch_size: 1,
    };
    let report = import_triples(&mut store, &s, &mut |_, _| {}).unwrap();
    assert_eq!(report.added, 2);
    let status = &store.status().unwrap()[0];
    assert_eq!(
        (
            status.units,
            status.suggested,
            status.approved,
            status.reviews
        ),
        (2, 2, 0, 0)
    );
    let second = store.unit(2).unwrap();
    assert_eq!(second.source, "Quoted\" text", "Python csv quoting");
}
