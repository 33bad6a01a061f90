//! Review queue throughput: building a translation memory from MLQE-PE en-de train (7000 approved
//! post-edits), fuzzy memory lookups for the 1000 dev sources, and 8 concurrent reviewers on one job.
//! Run: `cargo run --release -p oerkit-benches --bin review_queue`.

use anyhow::Result;
use oerkit_review::import::{import_triples, read_triples, TripleImport};
use oerkit_review::{Action, NewJob, NewReview, NewSuggestion, NewUnit, ReviewStore, SqliteStore};
use std::time::Instant;

fn main() -> Result<()> {
    oerkit_testkit::require_shared();
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.db");
    let mut store = SqliteStore::open(&db)?;
    let mut rows = Vec::new();

    let train = oerkit_testkit::corpus("postedit/mlqe-pe/en-de/train.tsv");
    let settings = TripleImport {
        path: train,
        src_lang: "en".into(),
        tgt_lang: "de".into(),
        job_name: None,
        reviewer: "annotator".into(),
        actor: "bench".into(),
        batch_size: 200,
    };
    let t = Instant::now();
    let report = import_triples(&mut store, &settings, &mut |_, _| {})?;
    let secs = t.elapsed().as_secs_f64();
    rows.push((
        "import MLQE-PE en-de train (rows, HTER, memory)",
        report.added,
        secs,
    ));

    let (dev, _) = read_triples(&oerkit_testkit::corpus("postedit/mlqe-pe/en-de/dev.tsv"))?;
    let t = Instant::now();
    let mut with_match = 0;
    for row in &dev {
        if !store.tm_matches("en", "de", &row.src, 0.75, 3)?.is_empty() {
            with_match += 1;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    rows.push((
        "fuzzy memory lookups (dev sources, >= 75%)",
        dev.len(),
        secs,
    ));

    let units: Vec<NewUnit> = (0..2000)
        .map(|i| NewUnit {
            ext_id: format!("u{i}"),
            source: format!("Sentence <g1>{i}</g1> of the lesson<x2/>"),
            context: String::new(),
            suggestions: vec![NewSuggestion::machine(
                format!("Satz <g1>{i}</g1> der Lektion<x2/>"),
                "e",
                "m",
            )],
            imported_review: None,
        })
        .collect();
    let job = NewJob {
        name: "crowd".into(),
        resource: "bench".into(),
        src_lang: "xx".into(),
        tgt_lang: "yy".into(),
        licence: None,
        created_by: "bench".into(),
        approvals_needed: 3,
        import_sha256: None,
    };
    let job_id = store.create_job(&job, &units)?.0.id;
    let t = Instant::now();
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || -> Result<usize> {
                let mut store = SqliteStore::open(&db)?;
                let reviewer = format!("r{w}");
                let mut n = 0;
                while let Some(unit) = store.next_unit(Some(job_id), &reviewer)? {
                    store.submit(&NewReview::new(unit.id, reviewer.as_str(), Action::Accept))?;
                    n += 1;
                }
                Ok(n)
            })
        })
        .collect();
    let mut reviews = 0;
    for w in workers {
        reviews += w
            .join()
            .map_err(|_| anyhow::anyhow!("reviewer thread panicked"))??;
    }
    let secs = t.elapsed().as_secs_f64();
    rows.push((
        "8 concurrent reviewers, 2000 units x 3 approvals",
        reviews,
        secs,
    ));

    println!("| task | items | seconds | items/s |");
    println!("|---|---:|---:|---:|");
    for (task, n, secs) in &rows {
        println!("| {task} | {n} | {secs:.2} | {:.0} |", *n as f64 / secs);
    }
    println!(
        "\ndev sources with a memory match >= 75%: {with_match} of {}",
        dev.len()
    );
    Ok(())
}
