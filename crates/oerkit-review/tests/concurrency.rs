//! Eight reviewers, each with its own connection, reviewing one job at the same time for a bounded time:
//! no review lost or duplicated, no database error surfaced, the event log complete.
#![allow(clippy::unwrap_used)]

use oerkit_review::*;
use std::time::{Duration, Instant};

const REVIEWERS: usize = 8;

/// A few seconds by default; `OERKIT_REVIEW_CONCURRENCY_SECS=60` runs the one-minute version.
fn run_for() -> Duration {
    let secs = std::env::var("OERKIT_REVIEW_CONCURRENCY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    Duration::from_secs(secs)
}

#[test]
fn eight_concurrent_reviewers_lose_and_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crowd.db");
    let run_for = run_for();
    // Enough units that the reviewers are still busy when the time is up.
    let unit_count = 1000 * run_for.as_secs().max(1) as usize;
    let units: Vec<NewUnit> = (0..unit_count)
        .map(|i| NewUnit {
            ext_id: format!("u{i}"),
            source: format!("Sentence <g1>{i}</g1> of the lesson<x2/>"),
            context: String::new(),
            suggestions: vec![NewSuggestion::machine(
                format!("Frase <g1>{i}</g1> de la lección<x2/>"),
                "e",
                "m",
            )],
            imported_review: None,
        })
        .collect();
    let job = NewJob {
        name: "crowd".into(),
        resource: "lesson.md".into(),
        src_lang: "en".into(),
        tgt_lang: "es".into(),
        licence: None,
        created_by: "t".into(),
        approvals_needed: 3,
        import_sha256: None,
    };
    let job_id = SqliteStore::open(&path)
        .unwrap()
        .create_job(&job, &units)
        .unwrap()
        .0
        .id;

    let start = Instant::now();
    let workers: Vec<_> = (0..REVIEWERS)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || -> Result<Vec<(i64, i64)>> {
                // Each worker opens its own connection, as a separate process would.
                let mut store = SqliteStore::open(&path)?;
                let reviewer = format!("reviewer-{w}");
                let mut submitted = Vec::new();
                while start.elapsed() < run_for {
                    let Some(unit) = store.next_unit(Some(job_id), &reviewer)? else {
                        break;
                    };
                    let n = unit.id as usize + w;
                    let mut review = match n % 5 {
                        0 => NewReview::new(unit.id, &reviewer, Action::Reject),
                        1 | 2 => {
                            let mut r = NewReview::new(unit.id, &reviewer, Action::Edit);
                            r.text = Some(format!(
                                "Oración <g1>{}</g1> de la lección<x2/>",
                                unit.ext_id
                            ));
                            r
                        }
                        _ => NewReview::new(unit.id, &reviewer, Action::Accept),
                    };
                    if review.action == Action::Reject {
                        review.comment = Some("wrong register".into());
                    }
                    if n % 7 == 1 {
                        let mut c = NewReview::new(unit.id, &reviewer, Action::Comment);
                        c.comment = Some(format!("note from {reviewer}"));
                        submitted.push((store.submit(&c)?.review_id, unit.id));
                    }
                    submitted.push((store.submit(&review)?.review_id, unit.id));
                }
                Ok(submitted)
            })
        })
        .collect();
    let mut all: Vec<(i64, i64)> = Vec::new();
    for w in workers {
        let submitted = w
            .join()
            .expect("worker thread")
            .expect("no database error reaches a reviewer");
        all.extend(submitted);
    }
    assert!(
        all.len() > REVIEWERS * 5,
        "only {} reviews in {run_for:?}",
        all.len()
    );
    eprintln!(
        "{} reviews by {REVIEWERS} reviewers in {:?}",
        all.len(),
        start.elapsed()
    );

    let store = SqliteStore::open(&path).unwrap();
    let c = store.connection();
    let q = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    // Nothing lost, nothing duplicated.
    assert_eq!(q("SELECT count(*) FROM reviews") as usize, all.len());
    let mut ids: Vec<i64> = all.iter().map(|(id, _)| *id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), all.len());
    assert_eq!(
        q(
            "SELECT count(*) FROM (SELECT unit_id, reviewer FROM reviews WHERE action != 'comment'
                              GROUP BY unit_id, reviewer HAVING count(*) > 1)"
        ),
        0,
        "a reviewer decided a unit twice"
    );
    // Every review has exactly its one event, and every stored status matches the reviews.
    assert_eq!(
        q("SELECT count(*) FROM reviews r LEFT JOIN (SELECT review_id, count(*) AS n FROM events
              WHERE kind = 'review' GROUP BY review_id) e ON e.review_id = r.id WHERE coalesce(e.n, 0) != 1"),
        0
    );
    let mut reviewed: Vec<i64> = all.iter().map(|(_, u)| *u).collect();
    reviewed.sort();
    reviewed.dedup();
    for unit_id in reviewed {
        let view = store.unit(unit_id).unwrap();
        let stored: String = c
            .query_row("SELECT status FROM units WHERE id = ?1", [unit_id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(stored, view.status.as_str(), "unit {unit_id}");
        if view.status == UnitStatus::Approved {
            let tm: i64 = c
                .query_row(
                    "SELECT count(*) FROM tm WHERE origin_unit_id = ?1",
                    [unit_id],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(tm, 1, "approved unit {unit_id} is in the memory");
        }
    }
    // The status log replays to the stored statuses.
    assert_eq!(
        q("SELECT count(*) FROM units u WHERE u.status != coalesce((SELECT json_extract(e.payload, '$.to')
              FROM events e WHERE e.unit_id = u.id AND e.kind = 'status_changed' ORDER BY e.id DESC LIMIT 1),
              'pending')"),
        0
    );
    assert_eq!(
        q("SELECT count(*) FROM pragma_integrity_check WHERE integrity_check != 'ok'"),
        0
    );
    assert_eq!(q("SELECT count(*) FROM pragma_foreign_key_check"), 0);
    let agreement = store.agreement(job_id).unwrap();
    assert!(agreement.units_compared > 0);
}
