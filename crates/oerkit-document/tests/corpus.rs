//! The document layer's promises, checked on every file of `shared/corpora/oer` that oerkit reads:
//! identity round trip byte for byte, faithful rendering, and pseudo-translation that writes a valid
//! file of the same format with the same markup skeleton.

use std::path::{Path, PathBuf};

use oerkit_document::format::{read_text, walk};
use oerkit_document::pseudo::pseudo_translate;
use oerkit_document::segment::{segment, SegmentMode};
use oerkit_document::{
    detect_format, load_str, write_document, Document, Piece, Translations, WriteOptions,
};

/// Every file of the OER corpus with the format oerkit detects for it. Files no format claims (YAML,
/// licence texts without an extension) are listed too, so a format that stops claiming a file is noticed.
fn corpus_files() -> Vec<(PathBuf, Option<oerkit_document::FormatKind>)> {
    oerkit_testkit::require_shared();
    let root = oerkit_testkit::corpus("oer");
    walk(&root)
        .expect("walk corpus")
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "MANIFEST.tsv"))
        .map(|p| {
            let text = read_text(&p).expect("corpus files are UTF-8 text");
            let kind = detect_format(&p, &text);
            (p, kind)
        })
        .collect()
}

fn load(path: &Path, kind: oerkit_document::FormatKind, mode: SegmentMode) -> (String, Document) {
    let text = read_text(path).expect("corpus file readable");
    let doc = load_str(path, &text, Some(kind)).unwrap_or_else(|e| panic!("{e}"));
    let lang = doc.meta.language.clone().unwrap_or_else(|| "en".into());
    (text, segment(doc, mode, &lang))
}

/// The units as the markup sees them: placeholder originals, in order.
fn skeleton(doc: &Document) -> Vec<Vec<String>> {
    doc.units
        .iter()
        .map(|u| u.placeholders.iter().map(|p| p.original.clone()).collect())
        .collect()
}

fn raw_pieces(doc: &Document) -> Vec<String> {
    doc.pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Raw(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_corpus_has_every_format() {
    let files = corpus_files();
    for kind in ["markdown", "html", "cnxml", "po", "h5p"] {
        assert!(
            files.iter().any(|(_, k)| k.map(|k| k.name()) == Some(kind)),
            "no {kind} file detected in the corpus"
        );
    }
}

#[test]
fn identity_round_trip_is_byte_exact_for_every_file() {
    let mut checked = 0;
    for (path, kind) in corpus_files() {
        let Some(kind) = kind else { continue };
        for mode in [SegmentMode::Paragraphs, SegmentMode::Sentences] {
            let (text, doc) = load(&path, kind, mode);
            let out = write_document(
                &doc,
                &Translations::identity(&doc),
                &WriteOptions::default(),
                &path,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            assert!(
                out == text,
                "{}: identity round trip ({mode:?}) differs",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 80, "only {checked} corpus files were checked");
}

#[test]
fn rendering_every_unit_reparses_to_the_same_units() {
    for (path, kind) in corpus_files() {
        let Some(kind) = kind else { continue };
        let (_, doc) = load(&path, kind, SegmentMode::Paragraphs);
        let options = WriteOptions {
            render_unchanged: true,
            ..WriteOptions::default()
        };
        let out = write_document(&doc, &Translations::identity(&doc), &options, &path)
            .unwrap_or_else(|e| panic!("{e}"));
        let again = load_str(&path, &out, Some(kind))
            .unwrap_or_else(|e| panic!("re-reading rendered output: {e}"));
        assert_eq!(
            doc.source_texts(),
            again.source_texts(),
            "{}: unit texts changed by rendering",
            path.display()
        );
        assert_eq!(
            skeleton(&doc),
            skeleton(&again),
            "{}: placeholders changed by rendering",
            path.display()
        );
    }
}

#[test]
fn pseudo_translation_keeps_the_markup_skeleton_of_every_file() {
    for (path, kind) in corpus_files() {
        let Some(kind) = kind else { continue };
        let (_, doc) = load(&path, kind, SegmentMode::Paragraphs);
        let pseudo: Vec<String> = doc
            .units
            .iter()
            .map(|u| pseudo_translate(&u.text))
            .collect();
        let out = write_document(
            &doc,
            &Translations::from_texts(pseudo.clone()),
            &WriteOptions::default(),
            &path,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        // Valid file of the same format: it parses again, to the same units and the same skeleton.
        let again = load_str(&path, &out, Some(kind))
            .unwrap_or_else(|e| panic!("pseudo output is not valid {kind}: {e}"));
        assert_eq!(
            doc.units.len(),
            again.units.len(),
            "{}: unit count changed",
            path.display()
        );
        assert_eq!(
            skeleton(&doc),
            skeleton(&again),
            "{}: markup skeleton changed",
            path.display()
        );
        if kind.is_bilingual() {
            // The source side stays; the translation goes into the target side (msgstr, <target>).
            assert_eq!(
                doc.source_texts(),
                again.source_texts(),
                "{}: source side changed",
                path.display()
            );
            let marks = out.matches('⟦').count();
            assert!(
                marks >= doc.units.len(),
                "{}: {marks} pseudo texts written for {} units",
                path.display(),
                doc.units.len()
            );
        } else {
            assert_eq!(
                raw_pieces(&doc),
                raw_pieces(&again),
                "{}: untranslatable content changed",
                path.display()
            );
            assert_eq!(
                pseudo,
                again.source_texts(),
                "{}: pseudo text did not survive",
                path.display()
            );
        }
        for unit in &again.units {
            let issues = oerkit_document::placeholder::validate(&unit.placeholders, &unit.text);
            assert!(
                issues.is_empty(),
                "{}: unit {}: {issues:?}",
                path.display(),
                unit.id
            );
        }
    }
}
