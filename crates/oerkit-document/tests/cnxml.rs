//! CNXML on the real OpenStax modules of `shared/corpora/oer/openstax-statistics`: the promises of the
//! document layer (identity, rendering, pseudo-translation) and what the reader finds in them.

use std::path::{Path, PathBuf};

use oerkit_document::format::{load, load_str, FormatKind};
use oerkit_document::pseudo::pseudo_translate;
use oerkit_document::{write_document, Document, Piece, Translations, WriteOptions};

fn modules() -> Vec<PathBuf> {
    oerkit_testkit::require_shared();
    let mut out = Vec::new();
    for lang in ["en", "es"] {
        let dir = oerkit_testkit::corpus("oer/openstax-statistics").join(lang);
        for entry in std::fs::read_dir(&dir).expect("corpus folder is readable") {
            let path = entry.expect("corpus entry is readable").path();
            if path.extension().is_some_and(|e| e == "cnxml") {
                out.push(path);
            }
        }
    }
    out.sort();
    assert_eq!(out.len(), 16, "expected 8 modules in en and es");
    out
}

fn raw_skeleton(doc: &Document) -> Vec<String> {
    doc.pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Raw(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn originals(doc: &Document) -> Vec<Vec<String>> {
    doc.units
        .iter()
        .map(|u| u.placeholders.iter().map(|p| p.original.clone()).collect())
        .collect()
}

#[test]
fn identity_rendering_and_pseudo_on_every_module() {
    for path in modules() {
        let doc = load(&path, None).unwrap();
        assert_eq!(doc.format, FormatKind::Cnxml);
        assert!(doc.units.len() > 5, "{}: too few units", path.display());
        let input = std::fs::read_to_string(&path).unwrap();
        let out = write_document(
            &doc,
            &Translations::identity(&doc),
            &WriteOptions::default(),
            &path,
        )
        .unwrap();
        assert!(out == input, "{}: identity differs", path.display());

        let opts = WriteOptions {
            render_unchanged: true,
            ..Default::default()
        };
        let rendered = write_document(&doc, &Translations::identity(&doc), &opts, &path).unwrap();
        let again = load_str(&path, &rendered, None).unwrap();
        assert_eq!(
            again.source_texts(),
            doc.source_texts(),
            "{}",
            path.display()
        );
        assert_eq!(originals(&again), originals(&doc), "{}", path.display());

        let pseudo: Vec<String> = doc
            .units
            .iter()
            .map(|u| pseudo_translate(&u.text))
            .collect();
        let written =
            write_document(&doc, &Translations::from_texts(pseudo), &opts, &path).unwrap();
        let back = load_str(&path, &written, None).unwrap_or_else(|e| {
            panic!("{}: pseudo output is not valid CNXML: {e}", path.display())
        });
        assert_eq!(back.units.len(), doc.units.len(), "{}", path.display());
        assert_eq!(originals(&back), originals(&doc), "{}", path.display());
        assert_eq!(
            raw_skeleton(&back),
            raw_skeleton(&doc),
            "{}",
            path.display()
        );
    }
}

#[test]
fn module_units_placeholders_and_metadata() {
    let path = oerkit_testkit::corpus("oer/openstax-statistics/en/m46885.cnxml");
    let doc = load(&path, None).unwrap();
    assert_eq!(
        doc.meta.title.as_deref(),
        Some("Data, Sampling, and Variation in Data and Sampling")
    );
    assert_eq!(
        doc.meta.source_url.as_deref(),
        Some("https://cnx.org/contents/098e1a26-e612-4449-a45e-80fa23feba02")
    );
    assert!(doc.pieces.contains(&Piece::Attribution));
    let first = doc.units.iter().find(|u| u.id == "id7862377").unwrap();
    assert!(
        first
            .text
            .starts_with("Data may come from a population or from a sample. Lowercase letters like <x1/> or <x2/> generally"),
        "{}",
        first.text
    );
    assert_eq!(
        first.placeholders[0].original,
        "<m:math>\n<m:mi>x</m:mi>\n</m:math>"
    );
    let term = doc.units.iter().find(|u| u.id == "id9602938").unwrap();
    assert!(
        term.text.starts_with("<g1>Qualitative data</g1> are"),
        "{}",
        term.text
    );
    assert_eq!(term.placeholders[0].original, r#"<term id="term-00001">"#);
    assert!(doc.units.iter().any(|u| u.text == "Qualitative"));
    // MathML never enters unit text as text.
    assert!(doc.units.iter().all(|u| !u.text.contains("m:mi")));
    // Image descriptions are units of their own.
    let intro = load(
        &oerkit_testkit::corpus("oer/openstax-statistics/en/m46913.cnxml"),
        None,
    )
    .unwrap();
    assert!(intro.units.iter().any(|u| u
        .text
        .starts_with("This photo shows a large open news room")
        && u.context.ends_with("media@alt")));
}

#[test]
fn collection_file_is_detected_and_read_as_cnxml() {
    let path =
        oerkit_testkit::corpus("oer/openstax-statistics/en/introductory-statistics.collection.xml");
    // Detected by content (the collxml namespace), as with --format cnxml.
    let doc = load(&path, None).unwrap();
    assert_eq!(doc.format, FormatKind::Cnxml);
    assert_eq!(doc, load(&path, Some(FormatKind::Cnxml)).unwrap());
    assert_eq!(doc.meta.title.as_deref(), Some("Introductory Statistics"));
    assert_eq!(doc.meta.language.as_deref(), Some("en"));
    assert_eq!(
        doc.meta.license.as_deref(),
        Some("http://creativecommons.org/licenses/by/4.0/")
    );
    assert!(doc.units.iter().any(|u| u.text == "Sampling and Data"));
    let opts = WriteOptions {
        target_language: Some("es".into()),
        ..Default::default()
    };
    let out = write_document(&doc, &Translations::identity(&doc), &opts, &path).unwrap();
    assert!(out.contains(r#"xml:lang="es""#) && out.contains("<md:language>es</md:language>"));
}

#[test]
fn malformed_module_is_a_located_error() {
    let err = load_str(
        Path::new("bad.cnxml"),
        "<document xmlns=\"http://cnx.rice.edu/cnxml\">\n<para>one\n</document>\n",
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("bad.cnxml:3:"), "{err}");
}

#[test]
fn truncated_modules_are_located_errors_never_panics() {
    let path = oerkit_testkit::corpus("oer/openstax-statistics/en/m46909.cnxml");
    let input = std::fs::read_to_string(&path).unwrap();
    let mut cut = 7;
    while cut < input.len() - 20 {
        let at = (0..4)
            .map(|d| cut + d)
            .find(|&c| input.is_char_boundary(c))
            .unwrap();
        let err = load_str(Path::new("cut.cnxml"), &input[..at], None).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("cut.cnxml:"), "{text}");
        cut += 997;
    }
}

#[test]
fn sentence_segmentation_keeps_identity_and_validity() {
    use oerkit_document::segment::{segment, SegmentMode};
    for path in modules() {
        let input = std::fs::read_to_string(&path).unwrap();
        let doc = load(&path, None).unwrap();
        let lang = if path.to_string_lossy().contains("/es/") {
            "es"
        } else {
            "en"
        };
        let seg = segment(doc.clone(), SegmentMode::Sentences, lang);
        assert!(
            seg.units.len() > doc.units.len(),
            "{}: nothing split",
            path.display()
        );
        let out = write_document(
            &seg,
            &Translations::identity(&seg),
            &WriteOptions::default(),
            &path,
        )
        .unwrap();
        assert!(
            out == input,
            "{}: identity differs after segmentation",
            path.display()
        );
        let texts: Vec<String> = seg
            .units
            .iter()
            .map(|u| pseudo_translate(&u.text))
            .collect();
        let written = write_document(
            &seg,
            &Translations::from_texts(texts),
            &WriteOptions::default(),
            &path,
        )
        .unwrap();
        let back = load_str(&path, &written, None).unwrap();
        assert_eq!(back.units.len(), doc.units.len(), "{}", path.display());
    }
}
