//! `oerkit review` and `oerkit export` end to end: a queue built from real MLQE-PE machine output,
//! reviewed by two reviewers (one through $EDITOR), exported as JSONL and TMX; an import killed midway
//! and resumed; clear refusals of bad input.

use crate::common::{oerkit, path_str, run_ok, stdout};
use serde_json::Value;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

fn review(db: &Path, reviewer: &str, args: &[&str]) -> Output {
    let mut all = vec!["review", "--db", path_str(db), "--reviewer", reviewer];
    all.extend_from_slice(args);
    run_ok(&all)
}

fn review_json(db: &Path, reviewer: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(stdout(&review(db, reviewer, &all)).trim()).expect("JSON on stdout")
}

fn review_fails(db: &Path, reviewer: &str, args: &[&str]) -> String {
    let out = oerkit()
        .args(["review", "--db", path_str(db), "--reviewer", reviewer])
        .args(args)
        .output()
        .expect("spawn oerkit");
    assert!(!out.status.success(), "oerkit review {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// (id, src, mt) of the first rows of the real MLQE-PE en-de dev set, plus one unit with placeholders.
fn write_queue(path: &Path, rows: usize) {
    let dev = std::fs::read_to_string(oerkit_testkit::corpus("postedit/mlqe-pe/en-de/dev.tsv"))
        .expect("MLQE-PE en-de dev in ../shared");
    let mut out = String::from("id\tsrc\tmt\n");
    for line in dev.lines().skip(1).take(rows) {
        let f: Vec<&str> = line.split('\t').collect();
        out.push_str(&format!("{}\t{}\t{}\n", f[0], f[1], f[2]));
    }
    out.push_str(
        "ph\tClick <g1>Save</g1> now<x2/>\tKlicken Sie jetzt auf <g1>Speichern</g1><x2/>\n",
    );
    std::fs::write(path, out).expect("write the queue file");
}

fn next_unit(db: &Path, reviewer: &str) -> Value {
    review_json(db, reviewer, &["next", "--job", "lesson"])
}

#[test]
fn full_cycle_with_two_reviewers() {
    oerkit_testkit::require_shared();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    let queue = dir.path().join("queue.tsv");
    write_queue(&queue, 4);
    let imported = review_json(
        &db,
        "importer",
        &[
            "import-triples",
            path_str(&queue),
            "--src-lang",
            "en",
            "--tgt-lang",
            "de",
            "--job",
            "lesson",
        ],
    );
    assert_eq!(imported["added"], 5);
    let configured = review_json(
        &db,
        "admin",
        &["configure", "--job", "lesson", "--approvals", "2"],
    );
    assert_eq!(configured["job"]["approvals_needed"], 2);
    assert_eq!(configured["tm_threshold"], 0.75);

    // An $EDITOR that takes a moment and writes a correction.
    let editor = dir.path().join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nsleep 0.3\nprintf '%s\\n' 'Er beginnt eine Affäre mit Veronica Harrington.' > \"$1\"\n").unwrap();
    std::process::Command::new("chmod")
        .args(["+x", path_str(&editor)])
        .status()
        .unwrap();

    // Reviewer ana works through the queue in order.
    let u1 = next_unit(&db, "ana");
    let id1 = u1["id"].as_i64().unwrap().to_string();
    assert_eq!(u1["status"], "suggested");
    review(
        &db,
        "ana",
        &["accept", &id1, "--active-ms", "900", "--keystrokes", "0"],
    );
    let id2 = next_unit(&db, "ana")["id"].as_i64().unwrap().to_string();
    review(
        &db,
        "ana",
        &["edit", &id2, "--text", "Eine Übersetzung von Ana ."],
    );
    let id3 = next_unit(&db, "ana")["id"].as_i64().unwrap().to_string();
    let out = oerkit()
        .args([
            "review",
            "--db",
            path_str(&db),
            "--reviewer",
            "ana",
            "--json",
            "edit",
            &id3,
        ])
        .env("EDITOR", &editor)
        .env_remove("VISUAL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id4 = next_unit(&db, "ana")["id"].as_i64().unwrap().to_string();
    review(&db, "ana", &["reject", &id4, "--reason", "meaning lost"]);
    let u5 = next_unit(&db, "ana");
    assert_eq!(u5["ext_id"], "ph");
    let id5 = u5["id"].as_i64().unwrap().to_string();
    // Dropping a placeholder is refused with a message naming it; nothing is recorded.
    let err = review_fails(
        &db,
        "ana",
        &[
            "edit",
            &id5,
            "--text",
            "Klicken Sie jetzt auf Speichern<x2/>",
        ],
    );
    assert!(err.contains("missing placeholder(s) <g1>, </g1>"), "{err}");
    let err = review_fails(
        &db,
        "ana",
        &[
            "edit",
            &id5,
            "--text",
            "Jetzt <g1>Speichern</g1><x2/> <x2/>",
        ],
    );
    assert!(err.contains("<x2/> appear more than once"), "{err}");
    review(
        &db,
        "ana",
        &[
            "edit",
            &id5,
            "--text",
            "Jetzt auf <g1>Speichern</g1> klicken<x2/>",
        ],
    );
    assert_eq!(next_unit(&db, "ana"), Value::Null);

    // Reviewer bo: agrees on 1, 3, 4 and 5; edits 2 differently (a conflict) and comments on it.
    let out = review_json(&db, "bo", &["accept", &id1]);
    assert_eq!(out["status"], "approved");
    let out = review_json(
        &db,
        "bo",
        &["edit", &id2, "--text", "Die Übersetzung von Bo ."],
    );
    assert_eq!(out["status"], "conflict");
    review(
        &db,
        "bo",
        &["comment", &id2, "--text", "both readings are possible"],
    );
    let shown = review_json(&db, "bo", &["show", &id3]);
    assert_eq!(
        shown["current_text"],
        "Er beginnt eine Affäre mit Veronica Harrington."
    );
    assert_eq!(
        review_json(&db, "bo", &["accept", &id3])["status"],
        "approved"
    );
    assert_eq!(
        review_json(&db, "bo", &["reject", &id4, "--reason", "wrong"])["status"],
        "rejected"
    );
    assert_eq!(
        review_json(&db, "bo", &["accept", &id5])["status"],
        "approved"
    );

    let status = review_json(&db, "bo", &["status", "--job", "lesson"]);
    let job = &status["jobs"][0];
    assert_eq!(
        (
            &job["units"],
            &job["approved"],
            &job["rejected"],
            &job["conflict"],
            &job["reviews"]
        ),
        (
            &Value::from(5),
            &Value::from(3),
            &Value::from(1),
            &Value::from(1),
            &Value::from(11)
        )
    );
    assert_eq!(status["agreement"]["units_compared"], 5);
    assert_eq!(status["agreement"]["pairs"], 5);

    // The history of the conflicting unit has every action of both reviewers.
    let history = stdout(&review(&db, "x", &["history", &id2, "--json"]));
    let events: Vec<Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let reviews: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["kind"] == "review")
        .map(|e| {
            (
                e["actor"].as_str().unwrap(),
                e["payload"]["action"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        reviews,
        [("ana", "edit"), ("bo", "edit"), ("bo", "comment")]
    );

    // JSONL research dataset, pseudonymised by default.
    let jsonl = dir.path().join("out/data.jsonl");
    std::fs::create_dir_all(jsonl.parent().unwrap()).unwrap();
    run_ok(&[
        "export",
        "--db",
        path_str(&db),
        "--job",
        "lesson",
        "--format",
        "jsonl",
        "--out",
        path_str(&jsonl),
    ]);
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 11);
    assert!(
        !text.contains("\"ana\"") && !text.contains("\"bo\""),
        "names must be pseudonymised"
    );
    let editor_row = rows
        .iter()
        .find(|r| {
            r["unit_id"].as_i64().map(|i| i.to_string()).as_deref() == Some(id3.as_str())
                && r["action"] == "edit"
        })
        .unwrap();
    assert!(
        editor_row["active_ms"].as_i64().unwrap() >= 300,
        "{editor_row}"
    );
    assert_eq!(
        editor_row["final"],
        "Er beginnt eine Affäre mit Veronica Harrington."
    );
    assert!(editor_row["hter"].as_f64().unwrap() > 0.0);
    assert_eq!(editor_row["mt_origin"], "import");
    let first = &rows[0];
    assert_eq!(
        (first["action"].as_str(), first["hter"].as_f64()),
        (Some("accept"), Some(0.0))
    );
    assert_eq!(first["active_ms"], 900);
    run_ok(&[
        "export",
        "--db",
        path_str(&db),
        "--job",
        "lesson",
        "--format",
        "jsonl",
        "--out",
        path_str(&jsonl),
        "--names",
    ]);
    assert!(std::fs::read_to_string(&jsonl)
        .unwrap()
        .contains("\"reviewer\":\"ana\""));

    // TMX 1.4 of the approved pairs, placeholders as inline elements.
    let tmx = dir.path().join("lesson.tmx");
    run_ok(&[
        "export",
        "--db",
        path_str(&db),
        "--job",
        "lesson",
        "--format",
        "tmx",
        "--out",
        path_str(&tmx),
    ]);
    let tmx = std::fs::read_to_string(&tmx).unwrap();
    assert!(tmx.contains("<tmx version=\"1.4\">") && tmx.contains("srclang=\"en\""));
    assert_eq!(tmx.matches("<tu ").count(), 3);
    assert!(tmx.contains("<seg>Jetzt auf <bpt i=\"1\">&lt;g1&gt;</bpt>Speichern<ept i=\"1\">&lt;/g1&gt;</ept> klicken<ph x=\"2\">&lt;x2/&gt;</ph></seg>"), "{tmx}");

    // A new job with the same sources reuses the approved work.
    let again = dir.path().join("again.tsv");
    write_queue(&again, 1);
    review(
        &db,
        "importer",
        &[
            "import-triples",
            path_str(&again),
            "--src-lang",
            "en",
            "--tgt-lang",
            "de",
            "--job",
            "again",
        ],
    );
    let next = review_json(&db, "cy", &["next", "--job", "again"]);
    assert_eq!(next["suggestions"][0]["origin"], "tm");
    assert_eq!(next["suggestions"][0]["tm_score"], 1.0);
}

#[test]
fn import_killed_midway_resumes_without_duplicates() {
    oerkit_testkit::require_shared();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let train = oerkit_testkit::corpus("postedit/mlqe-pe/ro-en/train.tsv");
    let import_args = [
        "import-triples",
        path_str(&train),
        "--src-lang",
        "ro",
        "--tgt-lang",
        "en",
        "--batch",
        "50",
    ];
    let mut child = oerkit()
        .args(["review", "--db", path_str(&db), "--reviewer", "annotator"])
        .args(import_args)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let units = |db: &Path| -> i64 {
        if !db.exists() {
            return 0;
        }
        let out = oerkit()
            .args(["review", "--db", path_str(db), "status", "--json"])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        v["jobs"][0]["units"].as_i64().unwrap_or(0)
    };
    while units(&db) < 100 {
        assert!(
            Instant::now() < deadline,
            "the import never committed a batch"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let status = review_json(&db, "x", &["status"]);
    let job = &status["jobs"][0];
    let done = job["units"].as_i64().unwrap();
    assert!(done < 7000, "killed after the import finished");
    assert_eq!(done % 50, 0, "only whole batches are committed");
    assert_eq!(
        (&job["approved"], &job["reviews"]),
        (&Value::from(done), &Value::from(done))
    );

    let mut args = vec!["--reviewer", "annotator"];
    args.extend_from_slice(&import_args);
    args.push("--json");
    let out = run_ok(&[&["review", "--db", path_str(&db)][..], &args[..]].concat());
    let report: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(report["resumed"], true);
    assert_eq!(report["added"].as_i64().unwrap(), 7000 - done);
    let job = &review_json(&db, "x", &["status"])["jobs"][0];
    assert_eq!(
        (&job["units"], &job["approved"], &job["reviews"]),
        (&Value::from(7000), &Value::from(7000), &Value::from(7000))
    );
}

#[test]
fn bad_input_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("notes.db");
    std::fs::write(&corrupt, "not a database\n".repeat(100)).unwrap();
    let err = review_fails(&corrupt, "ana", &["status"]);
    assert!(
        err.contains("notes.db") && err.contains("not a readable SQLite database"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&corrupt).unwrap(),
        "not a database\n".repeat(100)
    );

    let db = dir.path().join("ok.db");
    let err = review_fails(&db, "ana", &["accept", "7"]);
    assert!(err.contains("no unit 7"), "{err}");
    let out = oerkit()
        .args([
            "export",
            "--db",
            path_str(&db),
            "--job",
            "missing",
            "--format",
            "jsonl",
            "--out",
        ])
        .arg(dir.path().join("x.jsonl"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no job \"missing\""));
    assert!(!dir.path().join("x.jsonl").exists());
    let out = oerkit()
        .args(["review", "--db", path_str(&db), "next"])
        .env_remove("OERKIT_REVIEWER")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("pass --reviewer NAME or set OERKIT_REVIEWER"));
}

/// The issue's full cycle on a real OER file: queue a Carpentries lesson episode, two reviewers approve
/// part of it, the document comes back in Markdown with its markup intact and the attribution notice;
/// queueing the same file again offers the approved work from the memory.
#[test]
fn document_cycle_on_a_real_lesson() {
    oerkit_testkit::require_shared();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lesson.db");
    let lesson = oerkit_testkit::corpus("oer/carpentries-shell-novice/en/episodes/01-intro.md");
    let original = std::fs::read_to_string(&lesson).unwrap();
    let queued = review_json(
        &db,
        "editor",
        &[
            "queue",
            path_str(&lesson),
            "--src-lang",
            "en",
            "--tgt-lang",
            "es",
            "--job",
            "intro",
        ],
    );
    let units = queued["units"].as_i64().unwrap();
    assert!(units > 20, "{queued}");
    assert_eq!(
        queued["job"]["licence"], "CC-BY-4.0",
        "found in the lesson's LICENSE.md"
    );
    review(
        &db,
        "editor",
        &["configure", "--job", "intro", "--approvals", "2"],
    );

    // ana translates the first units (keeping their markup); bo approves what ana wrote.
    let mut approved = Vec::new();
    for _ in 0..6 {
        let unit = review_json(&db, "ana", &["next", "--job", "intro"]);
        let id = unit["id"].as_i64().unwrap().to_string();
        let text = format!("[es] {}", unit["source"].as_str().unwrap());
        review(&db, "ana", &["edit", &id, "--text", &text]);
        let shown = review_json(&db, "bo", &["show", &id]);
        assert_eq!(shown["current_text"].as_str(), Some(text.as_str()));
        assert_eq!(
            review_json(&db, "bo", &["accept", &id])["status"],
            "approved"
        );
        approved.push(text);
    }

    let out = dir.path().join("01-intro.es.md");
    run_ok(&[
        "export",
        "--db",
        path_str(&db),
        "--job",
        "intro",
        "--format",
        "doc",
        "--out",
        path_str(&out),
    ]);
    let translated = std::fs::read_to_string(&out).unwrap();
    assert_eq!(translated.matches("[es] ").count(), 6);
    assert!(
        translated.contains("is licensed under Creative Commons Attribution 4.0"),
        "{translated}"
    );
    assert!(
        translated.contains("Translated from en to es by human reviewers"),
        "{translated}"
    );
    // Markup is intact: the same fences, emphasis and links as the original.
    for marker in ["```", "**", "](", ":::"] {
        assert_eq!(
            translated.matches(marker).count(),
            original.matches(marker).count(),
            "{marker}"
        );
    }
    // Everything not approved is byte for byte the original.
    let untouched: Vec<&str> = original
        .lines()
        .filter(|l| !translated.contains(*l))
        .collect();
    assert!(
        untouched.len() <= 6,
        "only approved lines changed: {untouched:?}"
    );

    // The same file queued again: the approved units come back as exact memory matches.
    let again = review_json(
        &db,
        "editor",
        &[
            "queue",
            path_str(&lesson),
            "--src-lang",
            "en",
            "--tgt-lang",
            "es",
            "--job",
            "intro-2",
        ],
    );
    assert_eq!(again["units"].as_i64(), Some(units));
    let first = review_json(&db, "cy", &["next", "--job", "intro-2"]);
    assert_eq!(first["suggestions"][0]["origin"], "tm");
    assert_eq!(first["suggestions"][0]["tm_score"], 1.0);
    assert_eq!(first["current_text"].as_str(), Some(approved[0].as_str()));

    // The job as XLIFF 2.1 for a CAT tool: approved units carry their approved text.
    let xlf = dir.path().join("intro.xlf");
    run_ok(&[
        "export",
        "--db",
        path_str(&db),
        "--job",
        "intro",
        "--format",
        "xliff",
        "--out",
        path_str(&xlf),
    ]);
    let xlf = std::fs::read_to_string(&xlf).unwrap();
    // The root carries the Metadata-module namespace too, so attributes are checked one by one.
    assert!(xlf.contains("<xliff ") && xlf.contains("version=\"2.1\""));
    assert!(xlf.contains("trgLang=\"es\""));
    assert_eq!(xlf.matches("state=\"translated\"").count(), 6);
    assert_eq!(xlf.matches("[es] ").count(), 6);
}

/// Eight reviewer processes on one job at once (each command its own process and connection) for a few
/// seconds: every command succeeds, every review is stored once, the event log has each of them.
#[test]
fn eight_reviewer_processes_at_once() {
    oerkit_testkit::require_shared();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crowd.db");
    let queue = dir.path().join("queue.tsv");
    write_queue(&queue, 400);
    review(
        &db,
        "importer",
        &[
            "import-triples",
            path_str(&queue),
            "--src-lang",
            "en",
            "--tgt-lang",
            "de",
            "--job",
            "lesson",
        ],
    );
    review(
        &db,
        "admin",
        &["configure", "--job", "lesson", "--approvals", "3"],
    );
    let start = Instant::now();
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                let reviewer = format!("reviewer-{w}");
                let mut review_ids = Vec::new();
                while start.elapsed() < Duration::from_secs(4) {
                    let unit = review_json(&db, &reviewer, &["next", "--job", "lesson"]);
                    let Some(id) = unit["id"].as_i64() else { break };
                    let id = id.to_string();
                    let outcome = if w % 3 == 0 {
                        review_json(&db, &reviewer, &["reject", &id, "--reason", "register"])
                    } else {
                        review_json(&db, &reviewer, &["accept", &id])
                    };
                    review_ids.push(outcome["review_id"].as_i64().expect("review id"));
                }
                review_ids
            })
        })
        .collect();
    let mut ids: Vec<i64> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("reviewer process loop"))
        .collect();
    let submitted = ids.len();
    assert!(submitted >= 16, "only {submitted} reviews");
    eprintln!(
        "{submitted} reviews by 8 reviewer processes in {:?}",
        start.elapsed()
    );
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), submitted, "a review id was handed out twice");
    let job = &review_json(&db, "x", &["status", "--job", "lesson"])["jobs"][0];
    assert_eq!(job["reviews"].as_u64(), Some(submitted as u64));
    // Each review is in its unit's event log exactly once.
    let mut logged = 0;
    let units: std::collections::BTreeSet<i64> = (1..=401).collect();
    for unit in units {
        let history = stdout(&review(&db, "x", &["history", &unit.to_string(), "--json"]));
        logged += history
            .lines()
            .filter(|l| serde_json::from_str::<Value>(l).unwrap()["kind"] == "review")
            .count();
        if logged == submitted {
            break;
        }
    }
    assert_eq!(logged, submitted);
}

/// The `<segment …>…</segment>` of the XLIFF 2.1 unit named `name`, replaced by `f(segment)`.
fn edit_xliff_segment(xlf: &str, name: &str, f: impl FnOnce(&str) -> String) -> String {
    let unit = xlf
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no unit {name} in\n{xlf}"));
    let start = unit + xlf[unit..].find("<segment").unwrap();
    let end = start + xlf[start..].find("</segment>").unwrap() + "</segment>".len();
    format!("{}{}{}", &xlf[..start], f(&xlf[start..end]), &xlf[end..])
}

/// A segment with `state` (replacing the one the export wrote) and, when given, `target` as its target.
fn post_edit(segment: &str, state: &str, target: Option<&str>) -> String {
    let tag_end = segment.find('>').unwrap();
    let tag = segment[..tag_end].replace(" state=\"translated\"", "");
    let mut out = format!("{tag} state=\"{state}\"{}", &segment[tag_end..]);
    if let Some(text) = target {
        out = match (out.find("<target"), out.find("</target>")) {
            (Some(start), Some(close)) => {
                let open_end = start + out[start..].find('>').unwrap() + 1;
                format!("{}{text}{}", &out[..open_end], &out[close..])
            }
            _ => out.replace(
                "</segment>",
                &format!("  <target xml:space=\"preserve\">{text}</target>\n      </segment>"),
            ),
        };
    }
    out
}

fn import_xliff(db: &Path, reviewer: &str, file: &Path) -> (Option<i32>, Value, String) {
    let out = oerkit()
        .args([
            "review",
            "--db",
            path_str(db),
            "--reviewer",
            reviewer,
            "--json",
        ])
        .args(["import", path_str(file)])
        .output()
        .unwrap();
    let json = serde_json::from_str(stdout(&out).trim()).unwrap_or(Value::Null);
    (
        out.status.code(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A job exported as XLIFF 2.1 (with provenance), post-edited as a CAT tool would (targets changed, states
/// set, one placeholder dropped), imported back: the reviews are recorded once, the broken unit is
/// refused and reported, and status, history and the JSONL dataset show the reviews.
#[test]
fn cat_tool_round_trip_through_xliff() {
    oerkit_testkit::require_shared();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cat.db");
    let lesson = oerkit_testkit::corpus("oer/carpentries-shell-novice/en/episodes/01-intro.md");
    let queued = review_json(
        &db,
        "editor",
        &[
            "queue",
            path_str(&lesson),
            "--src-lang",
            "en",
            "--tgt-lang",
            "es",
            "--job",
            "intro",
        ],
    );
    let units = queued["units"].as_i64().unwrap();
    review(
        &db,
        "editor",
        &["configure", "--job", "intro", "--approvals", "2"],
    );

    // ana drafts three plain units and one with inline markup (candidates: two approvals are needed).
    let (mut plain, mut marked, mut untranslated) = (Vec::new(), None, None);
    for id in 1..=units {
        let unit = review_json(&db, "ana", &["show", &id.to_string()]);
        let source = unit["source"].as_str().unwrap().to_string();
        let ext_id = unit["ext_id"].as_str().unwrap().to_string();
        if source.contains("<g1>") && marked.is_none() {
            marked = Some((id, ext_id, source));
        } else if !source.contains('<') && plain.len() < 3 {
            plain.push((id, ext_id, source));
        } else if !source.contains('<') && untranslated.is_none() {
            untranslated = Some((id, ext_id, source));
        }
    }
    let marked = marked.expect("a unit with inline markup in the lesson");
    let untranslated = untranslated.unwrap();
    for (id, _, source) in plain.iter().chain([&marked]) {
        review(
            &db,
            "ana",
            &["edit", &id.to_string(), "--text", &format!("[es] {source}")],
        );
    }

    let xlf_path = dir.path().join("intro.es.xlf");
    run_ok(&[
        "export",
        "--db",
        path_str(&db),
        "--job",
        "intro",
        "--format",
        "xliff",
        "--out",
        path_str(&xlf_path),
    ]);
    let xlf = std::fs::read_to_string(&xlf_path).unwrap();
    assert!(xlf.contains("xmlns:mda=\"urn:oasis:names:tc:xliff:metadata:2.0\""));
    assert!(
        xlf.contains("<mda:meta type=\"job-name\">intro</mda:meta>"),
        "{xlf}"
    );
    assert_eq!(xlf.matches("<mda:metadata>").count() as i64, units + 1);
    assert_eq!(
        xlf.matches("<mda:meta type=\"target-is\">candidate</mda:meta>")
            .count(),
        4
    );

    // bo in the CAT tool: corrects one draft, confirms one, leaves one, strips the markup of the fourth
    // (which the queue must refuse) and translates a unit nobody had drafted.
    let mut edited = edit_xliff_segment(&xlf, &plain[0].1, |s| {
        post_edit(s, "translated", Some("Una corrección de bo."))
    });
    edited = edit_xliff_segment(&edited, &plain[1].1, |s| post_edit(s, "final", None));
    edited = edit_xliff_segment(&edited, &marked.1, |s| {
        post_edit(s, "reviewed", Some("Texto sin marcas."))
    });
    edited = edit_xliff_segment(&edited, &untranslated.1, |s| {
        post_edit(s, "translated", Some("Nuevo texto de bo."))
    });
    let returned = dir.path().join("intro.es.returned.xlf");
    std::fs::write(&returned, &edited).unwrap();

    let (code, report, stderr) = import_xliff(&db, "bo", &returned);
    assert_eq!(
        code,
        Some(2),
        "a refused unit gives exit status 2: {stderr}"
    );
    let counts = &report["counts"];
    assert_eq!(
        (
            counts["edit"].as_i64(),
            counts["accept"].as_i64(),
            counts["refused"].as_i64()
        ),
        (Some(2), Some(1), Some(1)),
        "{report}"
    );
    assert_eq!(counts["unchanged"], 1, "{report}");
    let refused: Vec<&Value> = report["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["result"] == "refused")
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["unit_id"], marked.0);
    let message = refused[0]["message"].as_str().unwrap();
    assert!(message.contains("missing placeholder(s) <g1>"), "{message}");
    assert!(stderr.contains("refused"), "{stderr}");

    let status = review_json(&db, "bo", &["status", "--job", "intro"]);
    assert_eq!(status["jobs"][0]["reviews"], 4 + 3, "{status}");
    assert_eq!(status["jobs"][0]["approved"], 1, "{status}");
    let confirmed = review_json(&db, "bo", &["show", &plain[1].0.to_string()]);
    assert_eq!(confirmed["status"], "approved");
    assert_eq!(
        confirmed["approved_text"].as_str(),
        Some(format!("[es] {}", plain[1].2).as_str())
    );
    let history = stdout(&review(
        &db,
        "bo",
        &["history", &plain[0].0.to_string(), "--json"],
    ));
    let bo_review: Vec<Value> = history
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "review" && e["actor"] == "bo")
        .collect();
    assert_eq!(bo_review.len(), 1, "{history}");
    assert_eq!(bo_review[0]["payload"]["action"], "edit");
    assert_eq!(
        bo_review[0]["payload"]["final_text"],
        "Una corrección de bo."
    );

    let jsonl = dir.path().join("intro.jsonl");
    run_ok(&[
        "export",
        "--db",
        path_str(&db),
        "--job",
        "intro",
        "--format",
        "jsonl",
        "--names",
        "--out",
        path_str(&jsonl),
    ]);
    let rows: Vec<Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &Value| r["reviewer"] == "bo")
        .collect();
    let mut actions: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["action"].as_str().unwrap(), r["final"].as_str().unwrap()))
        .collect();
    actions.sort();
    let accepted = format!("[es] {}", plain[1].2);
    assert_eq!(
        actions,
        vec![
            ("accept", accepted.as_str()),
            ("edit", "Nuevo texto de bo."),
            ("edit", "Una corrección de bo.")
        ]
    );

    // The same file again records nothing new.
    let (code, again, _) = import_xliff(&db, "bo", &returned);
    assert_eq!(code, Some(2));
    assert_eq!(again["counts"]["accept"], 0, "{again}");
    assert_eq!(again["counts"]["edit"], 0, "{again}");
    let status = review_json(&db, "bo", &["status", "--job", "intro"]);
    assert_eq!(status["jobs"][0]["reviews"], 4 + 3, "{status}");

    // Another job's file is refused as a whole.
    review_json(
        &db,
        "editor",
        &[
            "queue",
            path_str(&lesson),
            "--src-lang",
            "en",
            "--tgt-lang",
            "es",
            "--job",
            "intro-2",
        ],
    );
    let out = oerkit()
        .args([
            "review",
            "--db",
            path_str(&db),
            "--reviewer",
            "bo",
            "import",
            path_str(&returned),
        ])
        .args(["--job", "intro-2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("belongs to job intro") && stderr.contains("nothing was imported"),
        "{stderr}"
    );
    let status = review_json(&db, "bo", &["status"]);
    assert_eq!(status["jobs"][1]["reviews"], 0, "{status}");
}

/// Translation memory through the CLI: a lesson translated with SmolLM2 into the queue and corrected by a
/// reviewer; its next version is translated again. Unchanged paragraphs come from the memory (no model run,
/// `from_memory` in the provenance sidecar, the approved text in the output); a slightly changed one gets
/// the model's output plus the memory's fuzzy match with its score as suggestions in the queue.
#[test]
fn retranslation_reuses_approved_segments() {
    oerkit_testkit::require_shared();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tm.db");
    let paragraphs = [
        "The shell is a program where users can type commands.",
        "Run the ls command to list the files in a folder.",
        "Press Enter to run it.",
    ];
    let v1 = dir.path().join("v1");
    std::fs::create_dir_all(&v1).unwrap();
    let lesson_v1 = v1.join("lesson.md");
    std::fs::write(&lesson_v1, paragraphs.join("\n\n") + "\n").unwrap();
    let translate = |input: &Path, out: &Path| {
        run_ok(&[
            "translate",
            path_str(input),
            "--to",
            "es",
            "--from",
            "en",
            "--model",
            "smollm2-135m-instruct",
            "--max-tokens",
            "24",
            "--license",
            "CC-BY-4.0",
            "--out",
            path_str(out),
            "--queue",
            path_str(&db),
        ])
    };
    translate(&lesson_v1, &dir.path().join("out1"));
    let status = review_json(&db, "ana", &["status"]);
    let job1 = status["jobs"][0]["name"].as_str().unwrap().to_string();
    assert_eq!(status["jobs"][0]["units"], 3, "{status}");

    // ana corrects every machine translation.
    let corrections = [
        "El shell es un programa donde los usuarios pueden escribir órdenes.",
        "Ejecuta la orden ls para listar los archivos de una carpeta.",
        "Pulsa Intro para ejecutarla.",
    ];
    for _ in 0..3 {
        let unit = review_json(&db, "ana", &["next", "--job", &job1]);
        assert_eq!(unit["suggestions"][0]["origin"], "mt", "{unit}");
        assert_eq!(unit["suggestions"][0]["model_id"], "smollm2-135m-instruct");
        let i = paragraphs
            .iter()
            .position(|p| unit["source"] == *p)
            .unwrap();
        let outcome = review_json(
            &db,
            "ana",
            &["edit", &unit["id"].to_string(), "--text", corrections[i]],
        );
        assert_eq!(outcome["status"], "approved");
    }

    // Version 2: two paragraphs unchanged, one slightly changed, one new.
    let v2 = dir.path().join("v2");
    std::fs::create_dir_all(&v2).unwrap();
    let lesson_v2 = v2.join("lesson.md");
    let changed = "Press Enter to run it now.";
    let new = "Bash is the most popular Unix shell.";
    std::fs::write(
        &lesson_v2,
        [paragraphs[0], paragraphs[1], changed, new].join("\n\n") + "\n",
    )
    .unwrap();
    let out2 = dir.path().join("out2");
    translate(&lesson_v2, &out2);
    let translated = std::fs::read_to_string(out2.join("lesson.md")).unwrap();
    assert!(translated.contains(corrections[0]), "{translated}");
    assert!(translated.contains(corrections[1]), "{translated}");
    let sidecar: Value =
        serde_json::from_str(&std::fs::read_to_string(out2.join("lesson.md.oerkit.json")).unwrap())
            .unwrap();
    let from_memory: Vec<bool> = sidecar["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["from_memory"].as_bool().unwrap())
        .collect();
    assert_eq!(from_memory, vec![true, true, false, false], "{sidecar}");

    let status = review_json(&db, "bo", &["status"]);
    let job2 = status["jobs"][1]["name"].as_str().unwrap().to_string();
    let mut seen = 0;
    loop {
        let unit = review_json(&db, "bo", &["next", "--job", &job2]);
        if unit.is_null() {
            break;
        }
        let source = unit["source"].as_str().unwrap();
        let suggestions = unit["suggestions"].as_array().unwrap();
        if source == paragraphs[0] || source == paragraphs[1] {
            // Filled from the memory: the approved text, recorded as a memory match, not model output.
            let i = usize::from(source == paragraphs[1]);
            assert_eq!(suggestions[0]["origin"], "tm", "{unit}");
            assert_eq!(suggestions[0]["tm_score"], 1.0);
            assert_eq!(suggestions[0]["text"], corrections[i]);
        } else if source == changed {
            assert_eq!(suggestions[0]["origin"], "mt", "{unit}");
            let fuzzy = suggestions
                .iter()
                .find(|s| s["origin"] == "tm")
                .unwrap_or_else(|| panic!("no fuzzy memory suggestion: {unit}"));
            assert_eq!(fuzzy["text"], corrections[2]);
            let score = fuzzy["tm_score"].as_f64().unwrap();
            // 1 - levenshtein / max length = 1 - 4/26.
            assert!((score - (1.0 - 4.0 / 26.0)).abs() < 1e-9, "{score}");
        } else {
            assert_eq!(source, new);
            assert!(suggestions.iter().all(|s| s["origin"] == "mt"), "{unit}");
        }
        seen += 1;
        review(
            &db,
            "bo",
            &["reject", &unit["id"].to_string(), "--reason", "checked"],
        );
    }
    assert_eq!(seen, 4);
}
