//! HTML on the real built Carpentries lesson pages of `shared/corpora/oer/carpentries-shell-novice-html`:
//! the promises of the document layer (identity, rendering, pseudo-translation) and what the reader
//! finds in them.

use std::path::PathBuf;

use oerkit_document::format::{load, load_str, FormatKind};
use oerkit_document::pseudo::pseudo_translate;
use oerkit_document::{write_document, Document, Piece, Translations, WriteOptions};

fn pages() -> Vec<PathBuf> {
    oerkit_testkit::require_shared();
    let mut out = Vec::new();
    for lang in ["en", "es"] {
        let dir = oerkit_testkit::corpus("oer/carpentries-shell-novice-html").join(lang);
        for entry in std::fs::read_dir(&dir).expect("corpus folder is readable") {
            let path = entry.expect("corpus entry is readable").path();
            if path.extension().is_some_and(|e| e == "html") {
                out.push(path);
            }
        }
    }
    out.sort();
    assert_eq!(out.len(), 8, "expected 4 pages in en and es");
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
fn identity_rendering_and_pseudo_on_every_page() {
    for path in pages() {
        let doc = load(&path, None).unwrap();
        assert_eq!(doc.format, FormatKind::Html);
        assert!(doc.units.len() > 50, "{}: too few units", path.display());
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
        let back = load_str(&path, &written, None).unwrap();
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
fn lesson_page_units_and_metadata() {
    let path = oerkit_testkit::corpus("oer/carpentries-shell-novice-html/en/01-intro.html");
    let doc = load(&path, None).unwrap();
    assert_eq!(
        doc.meta.title.as_deref(),
        Some("The Unix Shell: Introducing the Shell")
    );
    assert_eq!(doc.meta.language.as_deref(), Some("en"));
    assert!(doc.pieces.contains(&Piece::Language("en".into())));
    assert!(doc.pieces.contains(&Piece::Attribution));
    let texts = doc.source_texts();
    assert!(texts
        .iter()
        .any(|t| t == "Nelle’s Pipeline: A Typical Problem"));
    // Inline code is one placeholder holding the whole element; code blocks never become text.
    let ls = doc
        .units
        .iter()
        .find(|u| {
            u.text
                .starts_with("So let’s try our first command, <x1/>, which is short for")
        })
        .expect("the paragraph introducing ls");
    assert_eq!(ls.placeholders[0].original, "<code>ls</code>");
    assert!(doc.units.iter().all(|u| !u.text.contains("window.MathJax")));
    assert!(doc.units.iter().all(|u| !u.text.contains("<code")));
    // alt text is a unit of its own, escaped as an attribute.
    let logo = doc.units.iter().find(|u| u.id == "swc-logo@alt").unwrap();
    assert_eq!(logo.text, "Software Carpentry");

    let opts = WriteOptions {
        target_language: Some("es".into()),
        attribution: Some("Traducción automática".into()),
        render_unchanged: false,
    };
    let out = write_document(&doc, &Translations::identity(&doc), &opts, &path).unwrap();
    assert!(out.contains("<html lang=\"es\""));
    assert!(out.contains("<p>Traducción automática</p></footer>\n</body>"));
}

#[test]
fn truncated_pages_still_round_trip() {
    let path = oerkit_testkit::corpus("oer/carpentries-shell-novice-html/en/index.html");
    let input = std::fs::read_to_string(&path).unwrap();
    let mut cut = 1;
    while cut < input.len() {
        let at = (0..4)
            .map(|d| cut + d)
            .find(|&c| input.is_char_boundary(c))
            .unwrap();
        let part = &input[..at];
        if !part.trim().is_empty() {
            let doc = load_str(&path, part, None).unwrap();
            let out = write_document(
                &doc,
                &Translations::identity(&doc),
                &WriteOptions::default(),
                &path,
            )
            .unwrap();
            assert!(out == part, "identity differs when cut at {at}");
        }
        cut += 499;
    }
}

#[test]
fn sentence_segmentation_keeps_identity_and_validity() {
    use oerkit_document::segment::{segment, SegmentMode};
    for path in pages() {
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
