//! XLIFF round trips through the queue: the 2.1 export with provenance is well-formed, namespaced and
//! read back by the document layer; a post-edited file (2.1 and 1.2) comes back as reviews with its states
//! mapped, broken placeholders refused per unit, re-imports idempotent and foreign files refused.
#![allow(clippy::unwrap_used)]

use oerkit_document::formats::xliff::{to_xliff, XliffVersion};
use oerkit_review::xliff::{self, ImportResult, JobStamp, MDA_NS};
use oerkit_review::*;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use std::path::Path;

const LESSON: &str = "# Intro\n\nThe shell is a program where users can type commands.\n\nRun [ls](https://example.org/ls) to list files.\n\nPress *Enter* to run it.\n\nA fourth paragraph.\n\nA fifth paragraph.\n";

fn lesson() -> oerkit_document::Document {
    oerkit_document::load_str(Path::new("lesson.md"), LESSON, None).unwrap()
}

/// A job of the lesson in which every unit has a machine suggestion with full provenance.
fn job_with_suggestions(store: &mut SqliteStore) -> (Job, oerkit_document::Document) {
    let doc = lesson();
    let units: Vec<NewUnit> = doc
        .units
        .iter()
        .map(|u| {
            let mut s =
                NewSuggestion::machine(format!("[es] {}", u.text), "gguf", "smollm2-135m-instruct");
            s.model_sha256 = Some("ab".repeat(32));
            s.prompt_template_version = Some("translate-v2".into());
            s.decoding_params = Some(serde_json::json!({"temperature": 0.0, "max_tokens": 256}));
            s.time_taken_ms = Some(412);
            NewUnit {
                ext_id: u.id.clone(),
                source: u.text.clone(),
                context: u.context.clone(),
                suggestions: vec![s],
                imported_review: None,
            }
        })
        .collect();
    let job = NewJob {
        name: "lesson".into(),
        resource: "lesson.md".into(),
        src_lang: "en".into(),
        tgt_lang: "es".into(),
        created_by: "tester".into(),
        approvals_needed: 1,
        ..Default::default()
    };
    let (job, _) = store.create_job(&job, &units).unwrap();
    (job, doc)
}

/// What `oerkit export --format xliff` writes.
fn export_21(store: &SqliteStore, job: &Job, doc: &oerkit_document::Document) -> String {
    let rows = store.units_of(job.id).unwrap();
    let mut views = Vec::new();
    let mut targets = Vec::new();
    for u in &doc.units {
        let view = rows
            .iter()
            .find(|r| r.ext_id == u.id)
            .map(|r| store.unit(r.id).unwrap());
        targets.push(
            view.as_ref()
                .and_then(|v| v.current_text.clone())
                .unwrap_or_default(),
        );
        views.push(view);
    }
    let plain = to_xliff(doc, XliffVersion::V21, "en", "es", Some(&targets));
    let stamp = JobStamp {
        job_id: Some(job.id),
        job_name: Some(job.name.clone()),
        database: Some(xliff::database_fingerprint(store).unwrap()),
    };
    xliff::add_provenance(&plain, &stamp, &views).unwrap()
}

/// The `<segment …>…</segment>` of the unit named `name`, replaced by `f(segment)`.
fn edit_segment(xlf: &str, name: &str, f: impl FnOnce(&str) -> String) -> String {
    let unit = xlf.find(&format!("name=\"{name}\"")).unwrap();
    let start = unit + xlf[unit..].find("<segment").unwrap();
    let end = start + xlf[start..].find("</segment>").unwrap() + "</segment>".len();
    format!("{}{}{}", &xlf[..start], f(&xlf[start..end]), &xlf[end..])
}

fn set_state(segment: &str, state: &str) -> String {
    let tag_end = segment.find('>').unwrap();
    let tag = segment[..tag_end].replace(" state=\"translated\"", "");
    format!("{tag} state=\"{state}\"{}", &segment[tag_end..])
}

fn set_target(segment: &str, inner: &str) -> String {
    let start = segment.find("<target").unwrap();
    let open_end = start + segment[start..].find('>').unwrap() + 1;
    let close = segment.find("</target>").unwrap();
    format!("{}{inner}{}", &segment[..open_end], &segment[close..])
}

#[test]
fn export_carries_provenance_in_the_metadata_module_and_stays_readable() {
    let mut store = SqliteStore::open_in_memory().unwrap();
    let (job, doc) = job_with_suggestions(&mut store);
    let xlf = export_21(&store, &job, &doc);

    // Well-formed XML to the end, every prefixed element in its declared namespace.
    let mut reader = quick_xml::NsReader::from_str(&xlf);
    let (mut metadata, mut provenance_metas, mut units) = (0, 0, 0);
    loop {
        let (ns, event) = reader.read_resolved_event().unwrap();
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let local = String::from_utf8(e.local_name().as_ref().to_vec()).unwrap();
                let ns = match ns {
                    ResolveResult::Bound(n) => String::from_utf8(n.as_ref().to_vec()).unwrap(),
                    other => panic!("<{local}> has no namespace: {other:?}"),
                };
                if ns == MDA_NS {
                    assert!(e.name().as_ref().starts_with(b"mda:"));
                    match local.as_str() {
                        "metadata" => metadata += 1,
                        "meta" => provenance_metas += 1,
                        "metaGroup" => {}
                        other => panic!("unknown Metadata module element {other}"),
                    }
                } else {
                    assert_eq!(ns, "urn:oasis:names:tc:xliff:document:2.0", "<{local}>");
                    if local == "unit" {
                        units += 1;
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(units, doc.units.len());
    assert_eq!(metadata, units + 1, "one per unit and one for the file");
    assert!(provenance_metas > units * 10, "{xlf}");
    for needle in [
        "<mda:meta type=\"engine\">gguf</mda:meta>",
        "<mda:meta type=\"model-id\">smollm2-135m-instruct</mda:meta>",
        &format!("<mda:meta type=\"model-sha256\">{}</mda:meta>", "ab".repeat(32)),
        "<mda:meta type=\"prompt-template-version\">translate-v2</mda:meta>",
        "<mda:meta type=\"decoding\">{&quot;max_tokens&quot;:256,&quot;temperature&quot;:0.0}</mda:meta>",
        "<mda:meta type=\"time-taken-ms\">412</mda:meta>",
        "<mda:meta type=\"job-name\">lesson</mda:meta>",
    ] {
        assert!(xlf.contains(needle), "{needle} missing in\n{xlf}");
    }

    // The document layer reads the same units and targets as without the metadata.
    let back = oerkit_document::load_str(Path::new("job.xlf"), &xlf, None).unwrap();
    assert_eq!(back.source_texts(), doc.source_texts());
    let ids: Vec<&str> = back.units.iter().map(|u| u.id.as_str()).collect();
    let want: Vec<&str> = doc.units.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, want);
    let targets = oerkit_document::formats::xliff::read_targets(&xlf).unwrap();
    assert!(targets
        .iter()
        .all(|t| t.as_deref().is_some_and(|t| t.starts_with("[es] "))));
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn review_count(store: &SqliteStore) -> i64 {
    store
        .connection()
        .query_row("SELECT count(*) FROM reviews", [], |r| r.get(0))
        .unwrap()
}

fn event_count(store: &SqliteStore) -> i64 {
    store
        .connection()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn post_edited_xliff_21_comes_back_as_reviews() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("q.db")).unwrap();
    let (job, doc) = job_with_suggestions(&mut store);
    let xlf = export_21(&store, &job, &doc);
    let u: Vec<&oerkit_document::Unit> = doc.units.iter().collect();
    assert_eq!(u.len(), 6, "{:?}", doc.source_texts());
    assert!(u[2].text.contains("<g1>"), "{}", u[2].text);

    // A CAT tool: unit 0 corrected (translated), unit 1 confirmed unchanged (final), unit 2 loses its link
    // markup (reviewed), unit 3 left as it was (translated), unit 4 changed but reset
    // to initial, unit 5 untouched.
    let mut edited = edit_segment(&xlf, &u[0].id, |s| set_target(s, "# Introducción"));
    edited = edit_segment(&edited, &u[1].id, |s| set_state(s, "final"));
    edited = edit_segment(&edited, &u[2].id, |s| {
        set_state(
            &set_target(s, "Ejecuta ls para listar archivos."),
            "reviewed",
        )
    });
    edited = edit_segment(&edited, &u[4].id, |s| {
        set_target(&set_state(s, "initial"), "Cambiado")
    });
    let path = write(dir.path(), "lesson.es.xlf", &edited);
    let before_reviews = review_count(&store);

    let report = xliff::import_xliff(&mut store, &path, None, "bo").unwrap();
    let results: Vec<ImportResult> = report.units.iter().map(|u| u.result).collect();
    use ImportResult::*;
    assert_eq!(
        results,
        vec![Edit, Accept, Refused, Unchanged, Untranslated, Unchanged],
        "{report:#?}"
    );
    let refused = report.units[2].message.as_deref().unwrap();
    assert!(refused.contains("missing placeholder(s) <g1>"), "{refused}");
    assert!(refused.contains("import the file again"), "{refused}");
    assert_eq!(review_count(&store), before_reviews + 2);
    let first = store.unit(report.units[0].unit_id).unwrap();
    assert_eq!(first.status, UnitStatus::Approved);
    assert_eq!(first.approved_text.as_deref(), Some("# Introducción"));
    assert_eq!(first.reviews[0].reviewer, "bo");
    assert_eq!(first.reviews[0].action, Action::Edit);
    assert!(first.reviews[0].hter.unwrap() > 0.0);
    let second = store.unit(report.units[1].unit_id).unwrap();
    assert_eq!(second.reviews[0].action, Action::Accept);
    assert_eq!(second.reviews[0].hter, Some(0.0));
    let events = store.job_events(job.id).unwrap();
    let imported = events.iter().filter(|e| e.kind == "xliff_imported").count();
    assert_eq!(imported, 1);

    // The same file again: nothing new is recorded.
    let again = xliff::import_xliff(&mut store, &path, None, "bo").unwrap();
    assert_eq!(again.counts.accept + again.counts.edit, 0, "{again:#?}");
    assert_eq!(again.counts.refused, 1);
    assert_eq!(review_count(&store), before_reviews + 2);

    // Fixed in the CAT tool and imported again: only the fixed unit is added.
    let fixed = edit_segment(&edited, &u[2].id, |s| {
        let source = &s[s.find("<source").unwrap()..s.find("</source>").unwrap()];
        let inner = &source[source.find('>').unwrap() + 1..];
        set_target(s, &inner.replace("Run", "Ejecuta"))
    });
    let path = write(dir.path(), "lesson.es.fixed.xlf", &fixed);
    let third = xliff::import_xliff(&mut store, &path, None, "bo").unwrap();
    assert_eq!(third.units[2].result, Edit, "{third:#?}");
    assert_eq!(third.counts.edit + third.counts.accept, 1);
    let link = store.unit(third.units[2].unit_id).unwrap();
    assert!(link
        .approved_text
        .unwrap()
        .starts_with("Ejecuta <g1>ls</g1>"));
}

#[test]
fn xliff_of_another_job_or_database_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("q.db")).unwrap();
    let (job, doc) = job_with_suggestions(&mut store);
    let xlf = export_21(&store, &job, &doc);
    let confirmed = xlf.replace(
        "<segment state=\"translated\">",
        "<segment state=\"final\">",
    );

    // Another database with a job of the same name and document.
    let mut other = SqliteStore::open(&dir.path().join("other.db")).unwrap();
    job_with_suggestions(&mut other);
    let path = write(dir.path(), "a.xlf", &confirmed);
    let (reviews, events) = (review_count(&other), event_count(&other));
    let e = xliff::import_xliff(&mut other, &path, None, "bo")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("another review database") && e.contains("a.xlf"),
        "{e}"
    );
    assert!(e.contains("nothing was imported"), "{e}");
    assert_eq!(
        (review_count(&other), event_count(&other)),
        (reviews, events)
    );

    // Without its stamp, named as a job whose units differ.
    let start = confirmed.find("\n    <mda:metadata>").unwrap();
    let end = confirmed.find("</mda:metadata>").unwrap() + "</mda:metadata>".len();
    let unstamped = format!("{}{}", &confirmed[..start], &confirmed[end..]);
    let path = write(dir.path(), "b.xlf", &unstamped);
    let e = xliff::import_xliff(&mut store, &path, None, "bo")
        .unwrap_err()
        .to_string();
    assert!(e.contains("--job"), "{e}");
    let other_doc = oerkit_document::load_str(
        Path::new("o.md"),
        "# Other\n\nSomething else entirely.\n",
        None,
    )
    .unwrap();
    let units: Vec<NewUnit> = other_doc
        .units
        .iter()
        .map(|u| NewUnit {
            ext_id: u.id.clone(),
            source: u.text.clone(),
            context: String::new(),
            suggestions: vec![],
            imported_review: None,
        })
        .collect();
    let new_job = NewJob {
        name: "other".into(),
        resource: "o.md".into(),
        src_lang: "en".into(),
        tgt_lang: "es".into(),
        created_by: "t".into(),
        approvals_needed: 1,
        ..Default::default()
    };
    store.create_job(&new_job, &units).unwrap();
    let (reviews, events) = (review_count(&store), event_count(&store));
    let e = xliff::import_xliff(&mut store, &path, Some("other"), "bo")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("is not a file of job other") && e.contains("is not in job other"),
        "{e}"
    );
    // Stamped for job "lesson" but named as "other".
    let path = write(dir.path(), "c.xlf", &confirmed);
    let e = xliff::import_xliff(&mut store, &path, Some("other"), "bo")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not to job other"), "{e}");
    // The right job, the wrong target language.
    let path = write(
        dir.path(),
        "d.xlf",
        &confirmed.replace("trgLang=\"es\"", "trgLang=\"fr\""),
    );
    let e = xliff::import_xliff(&mut store, &path, None, "bo")
        .unwrap_err()
        .to_string();
    assert!(e.contains("target language is fr"), "{e}");
    assert_eq!(
        (review_count(&store), event_count(&store)),
        (reviews, events)
    );
    // And the right file still imports.
    let path = write(dir.path(), "e.xlf", &unstamped);
    let ok = xliff::import_xliff(&mut store, &path, Some("lesson"), "bo").unwrap();
    assert_eq!(ok.counts.accept, 6, "{ok:#?}");
}

#[test]
fn post_edited_xliff_12_states_and_approved_flag() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("q.db")).unwrap();
    let units: Vec<NewUnit> = [
        ("u1", "Open the <g1>File</g1> menu."),
        ("u2", "Save your work."),
        ("u3", "Close the window."),
        ("u4", "Quit the program."),
        ("u5", "Restart it."),
        ("u6", "Done."),
    ]
    .iter()
    .map(|(id, src)| NewUnit {
        ext_id: id.to_string(),
        source: src.to_string(),
        context: String::new(),
        suggestions: vec![NewSuggestion::machine(format!("[de] {src}"), "test", "m")],
        imported_review: None,
    })
    .collect();
    let job = NewJob {
        name: "menu".into(),
        resource: "menu.xlf".into(),
        src_lang: "en".into(),
        tgt_lang: "de".into(),
        created_by: "t".into(),
        approvals_needed: 1,
        ..Default::default()
    };
    store.create_job(&job, &units).unwrap();
    // What a CAT tool writes back as XLIFF 1.2 (resname = the queue's unit ids).
    let xlf = r#"<?xml version="1.0" encoding="UTF-8"?>
<xliff version="1.2" xmlns="urn:oasis:names:tc:xliff:document:1.2">
  <file original="menu" source-language="en" target-language="de" datatype="plaintext">
    <body>
      <trans-unit id="1" resname="u1" approved="yes">
        <source>Open the <g id="1">File</g> menu.</source>
        <target state="translated">Öffne das Menü <g id="1">Datei</g>.</target>
      </trans-unit>
      <trans-unit id="2" resname="u2">
        <source>Save your work.</source>
        <target state="signed-off">[de] Save your work.</target>
        <alt-trans match-quality="80"><source>Save all work.</source><target state="new">Alles speichern.</target></alt-trans>
      </trans-unit>
      <trans-unit id="3" resname="u3">
        <source>Close the window.</source>
        <target state="needs-review-translation">Schließe das Fenster.</target>
      </trans-unit>
      <trans-unit id="4" resname="u4">
        <source>Quit the program.</source>
        <target state="new">Beende das Programm.</target>
      </trans-unit>
      <trans-unit id="5" resname="u5">
        <source>Restart it.</source>
        <target>Starte es neu.</target>
      </trans-unit>
      <trans-unit id="6" resname="u6">
        <source>Done.</source>
        <target state="translated">[de] Done.</target>
      </trans-unit>
    </body>
  </file>
</xliff>
"#;
    let path = write(dir.path(), "menu.de.xlf", xlf);
    let report = xliff::import_xliff(&mut store, &path, Some("menu"), "cy").unwrap();
    use ImportResult::*;
    let results: Vec<ImportResult> = report.units.iter().map(|u| u.result).collect();
    assert_eq!(
        results,
        vec![Edit, Accept, NeedsReview, Untranslated, Edit, Unchanged],
        "{report:#?}"
    );
    assert_eq!(report.version, "1.2");
    let u1 = store.unit(report.units[0].unit_id).unwrap();
    assert_eq!(
        u1.approved_text.as_deref(),
        Some("Öffne das Menü <g1>Datei</g1>.")
    );
    assert_eq!(
        report.units[2].state.as_deref(),
        Some("needs-review-translation")
    );
    // Idempotent.
    let again = xliff::import_xliff(&mut store, &path, Some("menu"), "cy").unwrap();
    assert_eq!(again.counts.already_recorded, 2, "{again:#?}");
    assert_eq!(again.counts.accept + again.counts.edit, 0);
}
