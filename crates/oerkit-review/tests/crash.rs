//! Crash safety: a process killed (SIGKILL) in the middle of an import or of a review loop leaves a
//! consistent database (integrity, events, statuses, memory), and the work resumes without duplicates.
#![allow(clippy::unwrap_used)]

use oerkit_review::import::{import_triples, TripleImport};
use oerkit_review::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const CHILD_DB: &str = "OERKIT_REVIEW_TEST_CHILD_DB";
const BATCH: usize = 50;

fn settings() -> TripleImport {
    TripleImport {
        path: oerkit_testkit::corpus("postedit/mlqe-pe/en-de/train.tsv"),
        src_lang: "en".into(),
        tgt_lang: "de".into(),
        job_name: None,
        reviewer: "annotator".into(),
        actor: "tester".into(),
        batch_size: BATCH,
    }
}

/// Run in a child process by `import_killed_midway_is_consistent_and_resumable`; does nothing on its own.
#[test]
#[ignore = "child process of import_killed_midway_is_consistent_and_resumable"]
fn child_import() {
    let db = std::env::var_os(CHILD_DB).expect("only run as the child of the crash test");
    let mut store = SqliteStore::open(Path::new(&db)).unwrap();
    import_triples(&mut store, &settings(), &mut |_, _| {}).unwrap();
}

fn units_in(db: &Path) -> i64 {
    let Ok(c) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c.query_row("SELECT count(*) FROM units", [], |r| r.get(0))
        .unwrap_or(0)
}

#[test]
fn import_killed_midway_is_consistent_and_resumable() {
    oerkit_testkit::require_shared();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_import",
            "--test-threads",
            "1",
        ])
        .env(CHILD_DB, &db)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while units_in(&db) < 2 * BATCH as i64 {
        assert!(
            Instant::now() < deadline,
            "the child never committed a batch"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let mut store = SqliteStore::open(&db).unwrap();
    let total_rows = 7000;
    {
        let c = store.connection();
        let q = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
        let units = q("SELECT count(*) FROM units");
        assert!(
            units < total_rows,
            "killed after the import finished ({units} units)"
        );
        assert_eq!(units % BATCH as i64, 0, "only whole batches are committed");
        // Each committed unit is complete: its suggestion, its review, its decision, its events.
        assert_eq!(q("SELECT count(*) FROM suggestions"), units);
        assert_eq!(q("SELECT count(*) FROM reviews"), units);
        assert_eq!(
            q("SELECT count(*) FROM units WHERE status != 'approved'"),
            0
        );
        assert_eq!(
            q("SELECT count(*) FROM events WHERE kind = 'review'"),
            units
        );
        assert_eq!(
            q("SELECT count(*) FROM events WHERE kind = 'unit_added'"),
            units
        );
        assert_eq!(
            q("SELECT count(*) FROM pragma_integrity_check WHERE integrity_check != 'ok'"),
            0
        );
        assert_eq!(q("SELECT count(*) FROM pragma_foreign_key_check"), 0);
    }
    let before = store.status().unwrap()[0].units as usize;
    let report = import_triples(&mut store, &settings(), &mut |_, _| {}).unwrap();
    assert!(report.resumed);
    assert_eq!(
        (report.added, report.already_present),
        (total_rows as usize - before, before)
    );
    let status = &store.status().unwrap()[0];
    assert_eq!(
        (status.units, status.approved, status.reviews),
        (7000, 7000, 7000)
    );
    let c = store.connection();
    let dup: i64 = c
        .query_row("SELECT count(*) FROM (SELECT ext_id FROM units GROUP BY job_id, ext_id HAVING count(*) > 1)", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(dup, 0);
}

const CHILD_REVIEWER: &str = "OERKIT_REVIEW_TEST_CHILD_REVIEWER";
const REVIEW_UNITS: usize = 2000;

/// What every reviewer does with a unit: edit every third one to the same correction, accept the rest, so
/// that two reviewers who finish the job approve every unit.
fn review_of(unit: &UnitView, reviewer: &str) -> NewReview {
    if unit.id % 3 == 0 {
        let mut r = NewReview::new(unit.id, reviewer, Action::Edit);
        r.text = Some(format!("[fix] {}", unit.source));
        r
    } else {
        NewReview::new(unit.id, reviewer, Action::Accept)
    }
}

/// Run in a child process by `review_killed_at_random_points_is_consistent_and_resumable`: reviews the
/// job until nothing is left for this reviewer.
#[test]
#[ignore = "child process of review_killed_at_random_points_is_consistent_and_resumable"]
fn child_review() {
    let db = std::env::var_os(CHILD_DB).expect("only run as the child of the crash test");
    let reviewer = std::env::var(CHILD_REVIEWER).unwrap();
    let mut store = SqliteStore::open(Path::new(&db)).unwrap();
    while let Some(unit) = store.next_unit(None, &reviewer).unwrap() {
        store.submit(&review_of(&unit, &reviewer)).unwrap();
    }
}

fn review_child(db: &Path, reviewer: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_review",
            "--test-threads",
            "1",
        ])
        .env(CHILD_DB, db)
        .env(CHILD_REVIEWER, reviewer)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// xorshift64*: reproducible random kill points without a dependency.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// Everything that must hold in a review database whatever moment a writer died.
fn assert_consistent(store: &SqliteStore) {
    let c = store.connection();
    let q = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        q("SELECT count(*) FROM pragma_integrity_check WHERE integrity_check != 'ok'"),
        0
    );
    assert_eq!(q("SELECT count(*) FROM pragma_foreign_key_check"), 0);
    // Every review has its event, and no event points at a review that is not there.
    assert_eq!(
        q(
            "SELECT count(*) FROM reviews r WHERE (SELECT count(*) FROM events e
           WHERE e.kind = 'review' AND e.review_id = r.id) != 1"
        ),
        0
    );
    assert_eq!(
        q("SELECT count(*) FROM events WHERE kind = 'review'"),
        q("SELECT count(*) FROM reviews")
    );
    // Nobody decided a unit twice.
    assert_eq!(
        q(
            "SELECT count(*) FROM (SELECT 1 FROM reviews WHERE action != 'comment'
           GROUP BY unit_id, reviewer HAVING count(*) > 1)"
        ),
        0
    );
    // The memory holds exactly the approved units.
    assert_eq!(
        q("SELECT count(*) FROM tm"),
        q("SELECT count(*) FROM units WHERE status = 'approved'")
    );
    // The stored status of every unit is the one its reviews decide, and its last status event says so.
    let rows: Vec<(i64, String, Option<String>, Option<String>)> = c
        .prepare(
            "SELECT u.id, u.status, u.approved_text,
                    (SELECT json_extract(e.payload, '$.to') FROM events e
                     WHERE e.unit_id = u.id AND e.kind = 'status_changed' ORDER BY e.id DESC LIMIT 1)
             FROM units u",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (id, status, approved_text, last_event) in rows {
        let view = store.unit(id).unwrap();
        assert_eq!(view.status.as_str(), status, "unit {id}");
        assert_eq!(view.approved_text, approved_text, "unit {id}");
        assert_eq!(last_event.as_deref(), Some(status.as_str()), "unit {id}");
    }
}

#[test]
fn review_killed_at_random_points_is_consistent_and_resumable() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("review-crash.db");
    let mut seed: u64 = match std::env::var("OERKIT_CRASH_SEED") {
        Ok(s) => s.parse().unwrap(),
        Err(_) => {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        }
    };
    eprintln!("kill points from OERKIT_CRASH_SEED={seed}");
    {
        let mut store = SqliteStore::open(&db).unwrap();
        let units: Vec<NewUnit> = (0..REVIEW_UNITS)
            .map(|i| NewUnit {
                ext_id: format!("u{i}"),
                source: format!("Sentence number {i} of the <g1>lesson</g1>."),
                context: String::new(),
                suggestions: vec![NewSuggestion::machine(
                    format!("Satz Nummer {i} der <g1>Lektion</g1>."),
                    "test",
                    "m",
                )],
                imported_review: None,
            })
            .collect();
        let job = NewJob {
            name: "crash".into(),
            resource: "crash".into(),
            src_lang: "en".into(),
            tgt_lang: "de".into(),
            created_by: "tester".into(),
            approvals_needed: 2,
            ..Default::default()
        };
        store.create_job(&job, &units).unwrap();
    }
    let reviews_in = |db: &Path| -> i64 {
        let c =
            rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c.query_row("SELECT count(*) FROM reviews", [], |r| r.get(0))
            .unwrap()
    };
    // Two reviewers at once, each killed (SIGKILL) at a random moment, several times over.
    let mut kills = 0;
    for round in 0..6 {
        let before = reviews_in(&db);
        let mut children = [review_child(&db, "ana"), review_child(&db, "bo")];
        // Wait until the children are reviewing, then kill each at its own random point.
        let deadline = Instant::now() + Duration::from_secs(60);
        while reviews_in(&db) < before + 20 {
            assert!(
                Instant::now() < deadline,
                "round {round}: the children never reviewed"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        for child in &mut children {
            std::thread::sleep(Duration::from_micros(next_random(&mut seed) % 150_000));
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap();
                kills += 1;
            }
            child.wait().unwrap();
        }
        let store = SqliteStore::open(&db).unwrap();
        assert_consistent(&store);
    }
    assert!(kills >= 6, "only {kills} children were killed mid-review");
    let done = reviews_in(&db);
    assert!(
        done < 2 * REVIEW_UNITS as i64,
        "the reviews finished before the kills ({done})"
    );

    // The work resumes where it stopped: each reviewer finishes, and every unit ends approved by both.
    for reviewer in ["ana", "bo"] {
        let status = review_child(&db, reviewer).wait().unwrap();
        assert!(status.success(), "{reviewer} could not resume: {status}");
    }
    let store = SqliteStore::open(&db).unwrap();
    assert_consistent(&store);
    let status = &store.status().unwrap()[0];
    assert_eq!(
        (status.units, status.approved, status.reviews),
        (
            REVIEW_UNITS as u64,
            REVIEW_UNITS as u64,
            2 * REVIEW_UNITS as u64
        )
    );
}
