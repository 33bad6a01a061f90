//! XLIFF on jobs made from the real CNXML and HTML files of `shared/corpora/oer` (there are no XLIFF
//! files in the corpus): document -> `to_xliff` (1.2 and 2.1) -> read back gives the same units and
//! placeholders; a "CAT tool" (our own writer, with pseudo-translations) fills the targets; the targets
//! read back translate the original document into a valid file of its format.

use std::path::PathBuf;

use oerkit_document::format::Format;
use oerkit_document::format::{load, load_str};
use oerkit_document::formats::xliff::{read_targets, to_xliff, Xliff, XliffVersion};
use oerkit_document::pseudo::pseudo_translate;
use oerkit_document::{write_document, Document, Translations, WriteOptions};

fn corpus_files() -> Vec<PathBuf> {
    oerkit_testkit::require_shared();
    let mut out = Vec::new();
    for (dir, ext) in [
        ("oer/openstax-statistics/en", "cnxml"),
        ("oer/openstax-statistics/es", "cnxml"),
        ("oer/carpentries-shell-novice-html/en", "html"),
        ("oer/carpentries-shell-novice-html/es", "html"),
    ] {
        for entry in
            std::fs::read_dir(oerkit_testkit::corpus(dir)).expect("corpus folder is readable")
        {
            let path = entry.expect("corpus entry is readable").path();
            if path.extension().is_some_and(|e| e == ext) {
                out.push(path);
            }
        }
    }
    out.sort();
    assert_eq!(out.len(), 24, "expected 16 CNXML modules and 8 HTML pages");
    out
}

fn shape(doc: &Document) -> Vec<(String, Vec<(u32, oerkit_document::TagKind)>)> {
    doc.units
        .iter()
        .map(|u| {
            (
                u.text.clone(),
                u.placeholders.iter().map(|p| (p.id, p.kind)).collect(),
            )
        })
        .collect()
}

#[test]
fn jobs_from_corpus_documents_round_trip() {
    for path in corpus_files() {
        let doc = load(&path, None).unwrap();
        for version in [XliffVersion::V12, XliffVersion::V21] {
            let job = to_xliff(&doc, version, "en", "es", None);
            let mut read = Xliff.read(&job).unwrap_or_else(|e| {
                panic!("{} ({version:?}): job does not parse: {e}", path.display())
            });
            read.assign_ids();
            assert_eq!(
                shape(&read),
                shape(&doc),
                "{} ({version:?})",
                path.display()
            );
            let ids: Vec<&str> = read.units.iter().map(|u| u.id.as_str()).collect();
            let want: Vec<&str> = doc.units.iter().map(|u| u.id.as_str()).collect();
            assert_eq!(ids, want, "{}", path.display());
            assert_eq!(read_targets(&job).unwrap(), vec![None; doc.units.len()]);

            // Identity on the job itself.
            let same = write_document(
                &read,
                &Translations::identity(&read),
                &WriteOptions::default(),
                &path,
            )
            .unwrap();
            assert!(same == job, "{}: job identity differs", path.display());

            // A CAT tool fills the targets.
            let pseudo: Vec<String> = read
                .units
                .iter()
                .map(|u| pseudo_translate(&u.text))
                .collect();
            let opts = WriteOptions {
                target_language: Some("es-MX".into()),
                ..Default::default()
            };
            let filled = write_document(
                &read,
                &Translations::from_texts(pseudo.clone()),
                &opts,
                &path,
            )
            .unwrap();
            let mut again = Xliff.read(&filled).unwrap();
            again.assign_ids();
            assert_eq!(shape(&again), shape(&doc), "{}", path.display());
            let targets = read_targets(&filled).unwrap();
            let targets: Vec<String> = targets
                .into_iter()
                .map(|t| t.expect("every target filled"))
                .collect();
            assert_eq!(targets, pseudo, "{}", path.display());

            // The targets translate the original document into a valid file of its format.
            let translated = write_document(
                &doc,
                &Translations::from_texts(targets),
                &WriteOptions::default(),
                &path,
            )
            .unwrap();
            let back = load_str(&path, &translated, None).unwrap();
            assert_eq!(back.units.len(), doc.units.len(), "{}", path.display());
        }
    }
}

#[test]
fn filled_job_states_and_language() {
    let path = oerkit_testkit::corpus("oer/openstax-statistics/en/m46913.cnxml");
    let doc = load(&path, None).unwrap();
    let job = to_xliff(&doc, XliffVersion::V12, "en", "es", None);
    assert!(job.contains("target-language=\"es\""));
    let read = Xliff.read(&job).unwrap();
    let mut texts = read.source_texts();
    texts[0] = format!("{} (es)", texts[0]);
    let opts = WriteOptions {
        target_language: Some("es-MX".into()),
        ..Default::default()
    };
    let out = write_document(&read, &Translations::from_texts(texts), &opts, &path).unwrap();
    assert!(out.contains("target-language=\"es-MX\""));
    assert_eq!(out.matches("state=\"translated\"").count(), 1);
    assert!(out.contains("<target xml:lang=\"es-MX\" state=\"translated\">"));

    let job21 = to_xliff(&doc, XliffVersion::V21, "en", "es", None);
    let read = Xliff.read(&job21).unwrap();
    let mut texts = read.source_texts();
    texts[1] = format!("{} (es)", texts[1]);
    let out = write_document(&read, &Translations::from_texts(texts), &opts, &path).unwrap();
    assert!(out.contains("trgLang=\"es-MX\""));
    assert_eq!(out.matches("<segment state=\"translated\">").count(), 1);
    assert_eq!(out.matches("<target>").count(), 1);
}
