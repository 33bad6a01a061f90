//! Store behaviour on real SQLite files: migrations, refusals, memory, crowd rule, placeholders, log.
#![allow(clippy::unwrap_used)]

use oerkit_review::*;
use std::path::Path;

fn job(name: &str, approvals: u32) -> NewJob {
    NewJob {
        name: name.into(),
        resource: format!("{name}.md"),
        src_lang: "en".into(),
        tgt_lang: "es".into(),
        licence: Some("CC-BY-4.0".into()),
        created_by: "tester".into(),
        approvals_needed: approvals,
        import_sha256: None,
    }
}

fn unit(ext: &str, source: &str, mt: &str) -> NewUnit {
    let mut s = NewSuggestion::machine(mt, "candle", "opus-mt-en-es");
    s.model_sha256 = Some("ab".repeat(32));
    s.decoding_params = Some(serde_json::json!({"beam": 4, "temperature": 0.0}));
    s.prompt_template_version = Some("v1".into());
    s.time_taken_ms = Some(12);
    s.quality_score = Some(0.8);
    NewUnit {
        ext_id: ext.into(),
        source: source.into(),
        context: "p".into(),
        suggestions: vec![s],
        imported_review: None,
    }
}

fn edit(unit_id: i64, who: &str, text: &str) -> NewReview {
    let mut r = NewReview::new(unit_id, who, Action::Edit);
    r.text = Some(text.into());
    r
}

fn count(store: &SqliteStore, sql: &str) -> i64 {
    store.connection().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn first_unit(store: &SqliteStore, job_id: i64) -> UnitView {
    store
        .next_unit(Some(job_id), "nobody-yet")
        .unwrap()
        .unwrap()
}

#[test]
fn full_review_records_provenance_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("r.db")).unwrap();
    let (j, added) = store
        .create_job(
            &job("doc", 1),
            &[unit("u1", "Hello <g1>world</g1>", "Hola <g1>mundo</g1>")],
        )
        .unwrap();
    assert_eq!(
        added,
        Added {
            added: 1,
            already_present: 0
        }
    );
    let u = first_unit(&store, j.id);
    assert_eq!(u.status, UnitStatus::Suggested);
    let s = u.primary_suggestion().unwrap();
    assert_eq!(s.model_sha256.as_deref(), Some("ab".repeat(32).as_str()));
    assert_eq!(s.decoding_params.as_ref().unwrap()["beam"], 4);
    let mut r = edit(u.id, "ana", "¡Hola <g1>mundo</g1>!");
    r.active_ms = Some(1500);
    r.keystrokes = Some(3);
    let out = store.submit(&r).unwrap();
    assert_eq!(out.status, UnitStatus::Approved);
    let u = store.unit(u.id).unwrap();
    assert_eq!(u.approved_text.as_deref(), Some("¡Hola <g1>mundo</g1>!"));
    assert_eq!(u.reviews[0].active_ms, Some(1500));
    assert_eq!(u.reviews[0].suggestion_id, Some(s.id));
    let kinds: Vec<String> = store
        .history(u.id)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "unit_added",
            "suggestion_added",
            "status_changed",
            "review",
            "status_changed",
            "tm_entry"
        ]
    );
    // The log and the reviews cannot be rewritten.
    assert!(store
        .connection()
        .execute("UPDATE events SET kind = 'x'", [])
        .is_err());
    assert!(store
        .connection()
        .execute("DELETE FROM reviews", [])
        .is_err());
    let status = store.status().unwrap();
    assert_eq!(
        (status[0].units, status[0].approved, status[0].reviews),
        (1, 1, 1)
    );
}

#[test]
fn upgrades_a_version_1_database_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let old = SqliteStore::open_at_version(&path, 1).unwrap();
        assert_eq!(old.schema_version().unwrap(), 1);
        let c = old.connection();
        c.execute_batch(
            "INSERT INTO jobs (id, name, resource, src_lang, tgt_lang, created_by, created_at)
                 VALUES (1, 'old', 'old.md', 'en', 'es', 'x', '2025-01-01T00:00:00Z');
             INSERT INTO units (id, job_id, ext_id, source, ord) VALUES (1, 1, 'a', 'Good <x1/> morning', 0);
             INSERT INTO units (id, job_id, ext_id, source, ord) VALUES (2, 1, 'b', 'Bye', 1);
             INSERT INTO suggestions (id, unit_id, text, origin, created_at)
                 VALUES (1, 1, 'Buenos <x1/> días', 'mt', '2025-01-01T00:00:00Z');
             INSERT INTO reviews (unit_id, suggestion_id, reviewer, action, final_text, submitted_at)
                 VALUES (1, 1, 'ana', 'accept', 'Buenos <x1/> días', '2025-01-01T00:00:01Z');",
        )
        .unwrap();
    }
    let mut store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), schema::latest_version());
    let j = store.job("old").unwrap();
    assert_eq!(j.approvals_needed, 1);
    assert_eq!(store.unit(1).unwrap().status, UnitStatus::Approved);
    assert_eq!(store.unit(2).unwrap().status, UnitStatus::Pending);
    // Upgraded data feeds the memory like new data does.
    let m = store
        .tm_matches("en", "es", "Good <x4/> morning", 0.75, 5)
        .unwrap();
    assert_eq!(m[0].target, "Buenos <x4/> días");
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM events WHERE kind = 'schema_migrated'"
        ),
        1
    );
    // And keeps working.
    store.submit(&edit(2, "bo", "Adiós")).unwrap();
    assert_eq!(store.unit(2).unwrap().status, UnitStatus::Approved);
    drop(store);
    // Opening again is a no-op.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM events WHERE kind = 'schema_migrated'"
        ),
        1
    );
}

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn refuses_a_database_from_a_newer_version_without_changing_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store
            .connection()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        store
            .connection()
            .pragma_update(None, "journal_mode", "DELETE")
            .unwrap();
    }
    let before = file_bytes(&path);
    let err = SqliteStore::open(&path)
        .err()
        .expect("a newer schema must be refused");
    assert!(
        matches!(err, ReviewError::TooNew { found: 99, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("new.db") && msg.contains("upgrade oerkit"),
        "{msg}"
    );
    assert_eq!(file_bytes(&path), before);
}

#[test]
fn refuses_corrupt_and_foreign_files_without_changing_them() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("notes.db");
    let text = "this is a plain text file, not a database\n".repeat(200);
    std::fs::write(&corrupt, &text).unwrap();
    let err = SqliteStore::open(&corrupt)
        .err()
        .expect("a text file must be refused");
    assert!(matches!(err, ReviewError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("notes.db"), "{err}");
    assert_eq!(std::fs::read_to_string(&corrupt).unwrap(), text);

    let foreign = dir.path().join("other.sqlite");
    {
        let c = rusqlite::Connection::open(&foreign).unwrap();
        c.execute_batch("CREATE TABLE contacts (name TEXT); INSERT INTO contacts VALUES ('x');")
            .unwrap();
    }
    let before = file_bytes(&foreign);
    let err = SqliteStore::open(&foreign)
        .err()
        .expect("another program's database must be refused");
    assert!(matches!(err, ReviewError::Foreign { .. }), "{err:?}");
    assert!(err.to_string().contains("other.sqlite"), "{err}");
    assert_eq!(file_bytes(&foreign), before);

    // A truncated review database (header intact, pages gone) is reported as corrupt, not as a panic.
    let truncated = dir.path().join("truncated.db");
    {
        let mut s = SqliteStore::open(&truncated).unwrap();
        s.create_job(&job("t", 1), &[unit("1", "a", "b")]).unwrap();
        s.connection()
            .pragma_update(None, "journal_mode", "DELETE")
            .unwrap();
    }
    let bytes = file_bytes(&truncated);
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let result = SqliteStore::open(&truncated).and_then(|s| s.status());
    let err = result.expect_err("a truncated database must be refused");
    assert!(matches!(err, ReviewError::Corrupt { .. }), "{err:?}");
}

#[test]
fn memory_fills_exact_matches_and_offers_fuzzy_ones_with_placeholders_carried_over() {
    let mut store = SqliteStore::open_in_memory().unwrap();
    let (first, _) = store
        .create_job(
            &job("first", 1),
            &[unit(
                "1",
                "Open the <g1>File</g1> menu and click <x2/>.",
                "Abre el menú <g1>Archivo</g1> y pulsa <x2/>.",
            )],
        )
        .unwrap();
    let u = first_unit(&store, first.id);
    store
        .submit(&edit(
            u.id,
            "ana",
            "Abra el menú <g1>Archivo</g1> y haga clic en <x2/>.",
        ))
        .unwrap();

    let (second, _) = store
        .create_job(
            &job("second", 1),
            &[
                unit(
                    "a",
                    "Open the <g7>File</g7> menu and click <x9/>.",
                    "MT exact",
                ),
                unit(
                    "b",
                    "Open the <g1>File</g1> menu and click <x2/> twice.",
                    "MT fuzzy",
                ),
                unit("c", "Something completely different here.", "MT none"),
            ],
        )
        .unwrap();
    let exact = store.next_unit(Some(second.id), "bo").unwrap().unwrap();
    let tm = exact.primary_suggestion().unwrap();
    assert_eq!(tm.origin, SuggestionOrigin::Tm);
    assert_eq!(tm.tm_score, Some(1.0));
    assert_eq!(
        tm.text,
        "Abra el menú <g7>Archivo</g7> y haga clic en <x9/>."
    );
    assert_eq!(exact.current_text.as_deref(), Some(tm.text.as_str()));
    // Accepting the memory text needs no typing and passes the placeholder check.
    store
        .submit(&NewReview::new(exact.id, "bo", Action::Accept))
        .unwrap();

    let fuzzy = store.next_unit(Some(second.id), "bo").unwrap().unwrap();
    assert_eq!(fuzzy.ext_id, "b");
    assert_eq!(
        fuzzy.primary_suggestion().unwrap().text,
        "MT fuzzy",
        "machine output first for fuzzy units"
    );
    let tm = fuzzy
        .suggestions
        .iter()
        .find(|s| s.origin == SuggestionOrigin::Tm)
        .expect("fuzzy match offered");
    let score = tm.tm_score.unwrap();
    assert!((0.75..1.0).contains(&score), "{score}");

    let none = store.unit(fuzzy.id + 1).unwrap();
    assert!(none
        .suggestions
        .iter()
        .all(|s| s.origin != SuggestionOrigin::Tm));

    // The threshold is configurable.
    store.set_tm_threshold(0.99, "admin").unwrap();
    let m = store
        .tm_matches(
            "en",
            "es",
            "Open the <g1>File</g1> menu and click <x2/> twice.",
            0.99,
            5,
        )
        .unwrap();
    assert!(m.is_empty());
    let (third, _) = store
        .create_job(
            &job("third", 1),
            &[unit(
                "b",
                "Open the <g1>File</g1> menu and click <x2/> twice.",
                "MT",
            )],
        )
        .unwrap();
    let u = first_unit(&store, third.id);
    assert!(u
        .suggestions
        .iter()
        .all(|s| s.origin != SuggestionOrigin::Tm));
    assert!(store.set_tm_threshold(1.5, "admin").is_err());
    // Other language pairs never match.
    assert!(store
        .tm_matches(
            "en",
            "fr",
            "Open the <g1>File</g1> menu and click <x2/>.",
            0.5,
            5
        )
        .unwrap()
        .is_empty());
}

#[test]
fn differing_edits_follow_the_conflict_rule() {
    let mut store = SqliteStore::open_in_memory().unwrap();
    let (j, _) = store
        .create_job(&job("crowd", 2), &[unit("1", "Hello", "Hola")])
        .unwrap();
    let u = first_unit(&store, j.id);
    store.submit(&edit(u.id, "ana", "¡Hola!")).unwrap();
    let out = store.submit(&edit(u.id, "bo", "Buenas")).unwrap();
    assert_eq!(out.status, UnitStatus::Conflict);
    // The next reviewer sees the leading candidate (tie → earliest) and accepting it decides the unit.
    let next = store.next_unit(Some(j.id), "cy").unwrap().unwrap();
    assert_eq!(next.current_text.as_deref(), Some("¡Hola!"));
    let out = store
        .submit(&NewReview::new(u.id, "cy", Action::Accept))
        .unwrap();
    assert_eq!(out.status, UnitStatus::Approved);
    assert_eq!(out.approved_text.as_deref(), Some("¡Hola!"));
    assert!(store.next_unit(Some(j.id), "dee").unwrap().is_none());
    // A reviewer changing their mind is recorded; their latest decision counts.
    let mut change = NewReview::new(u.id, "cy", Action::Reject);
    change.comment = Some("too informal".into());
    let out = store.submit(&change).unwrap();
    assert_eq!(out.status, UnitStatus::Conflict);
    assert_eq!(
        store
            .history(u.id)
            .unwrap()
            .iter()
            .filter(|e| e.kind == "tm_withdrawn")
            .count(),
        1
    );
    let agreement = store.agreement(j.id).unwrap();
    assert_eq!(agreement.units_compared, 1);
    assert_eq!(agreement.pairs, 3);
    // Lowering the requirement re-decides every unit.
    store.set_approvals_needed(j.id, 1, "admin").unwrap();
    assert_eq!(store.unit(u.id).unwrap().status, UnitStatus::Approved);
}

#[test]
fn edits_that_break_placeholders_are_refused_and_change_nothing() {
    let mut store = SqliteStore::open_in_memory().unwrap();
    let (j, _) = store
        .create_job(
            &job("ph", 1),
            &[unit("1", "Press <x1/> to <g2>save</g2>", "Pulse <x1/>")],
        )
        .unwrap();
    let u = first_unit(&store, j.id);
    let events_before = count(&store, "SELECT count(*) FROM events");
    for (bad, expect) in [
        (
            "Pulse <x1/> para guardar",
            "missing placeholder(s) <g2>, </g2>",
        ),
        (
            "Pulse <x1/> para <g2>guardar</g2> <x3/>",
            "<x3/> not in the source",
        ),
        (
            "Pulse <x1/><x1/> para <g2>guardar</g2>",
            "<x1/> appear more than once",
        ),
    ] {
        let err = store.submit(&edit(u.id, "ana", bad)).unwrap_err();
        assert!(matches!(err, ReviewError::Placeholders { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(expect) && msg.contains(&format!("unit {}", u.id)),
            "{msg}"
        );
    }
    // The machine suggestion itself dropped a placeholder: accepting it is refused too.
    let err = store
        .submit(&NewReview::new(u.id, "ana", Action::Accept))
        .unwrap_err();
    assert!(matches!(err, ReviewError::Placeholders { .. }), "{err:?}");
    assert_eq!(count(&store, "SELECT count(*) FROM reviews"), 0);
    assert_eq!(count(&store, "SELECT count(*) FROM events"), events_before);
    store
        .submit(&edit(u.id, "ana", "Pulse <x1/> para <g2>guardar</g2>"))
        .unwrap();
}

#[test]
fn missing_jobs_and_units_are_clear_errors() {
    let mut store = SqliteStore::open_in_memory().unwrap();
    let err = store.job("nope").unwrap_err();
    assert!(err.to_string().contains("no job \"nope\""), "{err}");
    let err = store
        .submit(&NewReview::new(42, "ana", Action::Accept))
        .unwrap_err();
    assert!(matches!(err, ReviewError::NoUnit(42)), "{err:?}");
    store.create_job(&job("dup", 1), &[]).unwrap();
    assert!(matches!(
        store.create_job(&job("dup", 1), &[]),
        Err(ReviewError::JobExists(_))
    ));
}

/// The fuzzy-match index a store keeps between lookups follows memory changes made by this store and by
/// other processes (connections) on the same database.
#[test]
fn memory_index_sees_changes_from_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tm.db");
    let mut a = SqliteStore::open(&db).unwrap();
    let mut b = SqliteStore::open(&db).unwrap();
    let unit = |i: usize, src: &str| NewUnit {
        ext_id: format!("u{i}"),
        source: src.to_string(),
        context: String::new(),
        suggestions: vec![NewSuggestion::machine(format!("[de] {src}"), "e", "m")],
        imported_review: None,
    };
    let job = |name: &str| NewJob {
        name: name.into(),
        resource: name.into(),
        src_lang: "en".into(),
        tgt_lang: "de".into(),
        created_by: "t".into(),
        approvals_needed: 1,
        ..Default::default()
    };
    let query = "The shell is a program where users can type commands!";
    let (j1, _) = a
        .create_job(
            &job("one"),
            &[unit(
                0,
                "The shell is a program where users can type commands.",
            )],
        )
        .unwrap();
    assert!(a.tm_matches("en", "de", query, 0.75, 3).unwrap().is_empty());
    // Approved through the other connection: the first one's index must see it.
    let id = b.units_of(j1.id).unwrap()[0].id;
    b.submit(&NewReview::new(id, "ana", Action::Accept))
        .unwrap();
    let found = a.tm_matches("en", "de", query, 0.75, 3).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].target,
        "[de] The shell is a program where users can type commands."
    );
    // Two approvals needed now: the unit is no longer approved and leaves the memory.
    a.set_approvals_needed(j1.id, 2, "admin").unwrap();
    assert!(b.tm_matches("en", "de", query, 0.75, 3).unwrap().is_empty());
    // The memory offered to units added through the first connection follows too.
    a.set_approvals_needed(j1.id, 1, "admin").unwrap();
    let (j2, _) = b.create_job(&job("two"), &[unit(0, query)]).unwrap();
    let view = b.unit(b.units_of(j2.id).unwrap()[0].id).unwrap();
    assert!(
        view.suggestions
            .iter()
            .any(|s| s.origin == SuggestionOrigin::Tm),
        "{view:?}"
    );
}
