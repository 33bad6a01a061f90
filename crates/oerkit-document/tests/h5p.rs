//! H5P JSON on the real files of `shared/corpora/oer/h5p-interactive-video` (seven language files,
//! semantics.json, library.json), plus property tests of the reader.

use std::path::{Path, PathBuf};

use oerkit_document::format::Format;
use oerkit_document::formats::h5p::H5p;
use oerkit_document::pseudo::pseudo_translate;
use oerkit_document::{
    load, write_document, Document, FormatKind, Piece, Translations, WriteOptions,
};
use proptest::prelude::*;

fn corpus_files() -> Vec<PathBuf> {
    oerkit_testkit::require_shared();
    let root = oerkit_testkit::corpus("oer/h5p-interactive-video");
    let mut files = vec![root.join("semantics.json"), root.join("library.json")];
    for lang in ["de", "en", "es", "fr", "pt-br", "pt", "sw"] {
        files.push(root.join("language").join(format!("{lang}.json")));
    }
    for f in &files {
        assert!(f.is_file(), "missing corpus file {}", f.display());
    }
    files
}

fn write(doc: &Document, tr: &Translations, options: &WriteOptions, path: &Path) -> String {
    write_document(doc, tr, options, path).expect("write")
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

#[test]
fn identity_is_byte_exact_and_rendering_reparses() {
    for path in corpus_files() {
        let input = std::fs::read_to_string(&path).unwrap();
        let doc = load(&path, None).unwrap();
        assert_eq!(doc.format, FormatKind::H5p);
        let out = write(
            &doc,
            &Translations::identity(&doc),
            &WriteOptions::default(),
            &path,
        );
        assert!(out == input, "{}: identity differs", path.display());
        let options = WriteOptions {
            render_unchanged: true,
            ..Default::default()
        };
        let rendered = write(&doc, &Translations::identity(&doc), &options, &path);
        let again = H5p.read(&rendered).unwrap();
        assert_eq!(
            again.source_texts(),
            doc.source_texts(),
            "{}",
            path.display()
        );
    }
}

#[test]
fn language_file_units_are_labels_descriptions_defaults_and_entities() {
    let path = oerkit_testkit::corpus("oer/h5p-interactive-video/language/en.json");
    let doc = load(&path, None).unwrap();
    // en.json has 123 labels, 49 defaults, 28 descriptions and 1 entity: all human text but the two
    // protocol labels "http://" and "https://".
    assert_eq!(doc.units.len(), 123 + 49 + 28 + 1 - 2);
    assert!(doc.units.iter().all(|u| !u.text.ends_with("://")));
    assert_eq!(doc.units[0].id, "semantics[0].label");
    assert_eq!(doc.units[0].text, "Interactive Video Editor");
    let score = doc
        .units
        .iter()
        .find(|u| u.text.starts_with("You got "))
        .expect("the score message");
    assert!(score.placeholders.iter().any(|p| p.original == "@score"));
    assert!(doc.units.iter().any(|u| u.text.contains("<g1>")));
}

#[test]
fn semantics_machine_values_stay_raw() {
    let path = oerkit_testkit::corpus("oer/h5p-interactive-video/semantics.json");
    let doc = load(&path, None).unwrap();
    let machine = [
        "interactiveVideo",
        "group",
        "high",
        "wizard",
        "subtitles",
        "H5P.Text 1.1",
    ];
    for unit in &doc.units {
        assert!(
            !machine.contains(&unit.text.as_str()),
            "{} is a machine value: {}",
            unit.id,
            unit.text
        );
        for key in [
            ".name",
            ".type",
            ".importance",
            ".widget",
            ".value",
            ".tags",
        ] {
            assert!(!unit.id.ends_with(key), "{}", unit.id);
            assert!(!unit.id.contains(&format!("{key}[")), "{}", unit.id);
        }
    }
    assert!(doc
        .units
        .iter()
        .any(|u| u.text == "Interactive Video Editor"));
    // Text fields' defaults are text; a select's default is an option value.
    assert!(doc
        .units
        .iter()
        .any(|u| u.text == "Interactive Video" && u.id.ends_with(".default")));
    let library = load(
        &oerkit_testkit::corpus("oer/h5p-interactive-video/library.json"),
        None,
    )
    .unwrap();
    assert_eq!(library.meta.title.as_deref(), Some("Interactive Video"));
    assert_eq!(library.meta.license.as_deref(), Some("MIT"));
    assert_eq!(library.meta.authors, vec!["Joubel"]);
    assert_eq!(
        library.source_texts(),
        vec![
            "Interactive Video",
            "Put texts, tasks and other medias on top of your video."
        ]
    );
}

#[test]
fn pseudo_translation_writes_valid_json_with_the_same_skeleton() {
    for path in corpus_files() {
        let doc = load(&path, None).unwrap();
        let texts: Vec<String> = doc
            .units
            .iter()
            .map(|u| pseudo_translate(&u.text))
            .collect();
        let out = write(
            &doc,
            &Translations::from_texts(texts),
            &WriteOptions::default(),
            &path,
        );
        serde_json::from_str::<serde_json::Value>(&out)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let again = H5p.read(&out).unwrap();
        assert_eq!(again.units.len(), doc.units.len(), "{}", path.display());
        for (a, b) in again.units.iter().zip(&doc.units) {
            assert_eq!(a.placeholders, b.placeholders);
        }
        assert_eq!(raw_skeleton(&again), raw_skeleton(&doc));
        assert_eq!(H5p.attribution("notice"), None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn reader_never_panics(s in "([{}\\[\\],:\" ]|\"[a-z]+\"|\\\\[u\"n\\\\]|[0-9a-fé@<>/]|true|null|\n){0,60}") {
        let _ = H5p.read(&s);
    }

    /// Any string value round-trips: identity is exact and a rendered write re-reads the same text.
    #[test]
    fn arbitrary_strings_round_trip(value in "[a-zA-Z0-9 .,!?'\"\\\\{}<>&;/@:\t\n\u{e9}\u{1F600}-]{1,80}") {
        let literal = serde_json::to_string(&value).unwrap();
        let input = format!("{{\n  \"label\": {literal},\n  \"n\": 1\n}}\n");
        let doc = H5p.read(&input).unwrap();
        let out = write_document(&doc, &Translations::identity(&doc), &WriteOptions::default(), Path::new("x.json")).unwrap();
        prop_assert_eq!(&out, &input);
        let options = WriteOptions { render_unchanged: true, ..Default::default() };
        let rendered = write_document(&doc, &Translations::identity(&doc), &options, Path::new("x.json")).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&rendered).unwrap();
        prop_assert_eq!(parsed["label"].as_str(), Some(value.as_str()));
        let again = H5p.read(&rendered).unwrap();
        prop_assert_eq!(again.source_texts(), doc.source_texts());
    }
}
