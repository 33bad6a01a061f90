//! gettext PO on the real files of `shared/corpora/oer/openedx-ora2-po` (Open edX ORA2, six
//! languages; msgstr filled in all but `en`), plus property tests of the reader.

use std::path::{Path, PathBuf};

use oerkit_document::format::Format;
use oerkit_document::formats::po::{plural_rule, Po};
use oerkit_document::pseudo::pseudo_translate;
use oerkit_document::{
    load, write_document, Document, FormatKind, Piece, Translations, WriteOptions,
};
use proptest::prelude::*;

fn corpus_files() -> Vec<PathBuf> {
    oerkit_testkit::require_shared();
    let root = oerkit_testkit::corpus("oer/openedx-ora2-po");
    let mut files = Vec::new();
    for lang in ["de_DE", "en", "es_419", "fr", "pt_BR", "sw_KE"] {
        for name in ["django.po", "djangojs.po"] {
            let path = root.join(lang).join(name);
            assert!(path.is_file(), "missing corpus file {}", path.display());
            files.push(path);
        }
    }
    files
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

fn write(doc: &Document, tr: &Translations, options: &WriteOptions, path: &Path) -> String {
    write_document(doc, tr, options, path).expect("write")
}

#[test]
fn identity_round_trip_is_byte_exact_on_the_corpus() {
    for path in corpus_files() {
        let input = std::fs::read_to_string(&path).unwrap();
        let doc = load(&path, None).unwrap();
        assert_eq!(doc.format, FormatKind::Po);
        assert!(
            doc.units.len() > 50,
            "{}: {} units",
            path.display(),
            doc.units.len()
        );
        let out = write(
            &doc,
            &Translations::identity(&doc),
            &WriteOptions::default(),
            &path,
        );
        assert!(out == input, "{}: identity differs", path.display());
    }
}

#[test]
fn header_gives_language_title_and_translator() {
    let path = oerkit_testkit::corpus("oer/openedx-ora2-po/fr/django.po");
    let doc = load(&path, None).unwrap();
    assert_eq!(doc.meta.language.as_deref(), Some("fr"));
    assert_eq!(doc.meta.title.as_deref(), Some("edx-platform"));
    assert_eq!(doc.meta.authors, vec!["alexis swyngedauw, 2022"]);
    assert!(doc.pieces.contains(&Piece::Language("fr".into())));
    // The header is not a unit; python-format placeholders are.
    assert!(doc.units.iter().all(|u| !u.text.is_empty()));
    let with_named = doc
        .units
        .iter()
        .find(|u| {
            u.placeholders
                .iter()
                .any(|p| p.original == "%(assessment_title)s")
        })
        .expect("a unit with %(assessment_title)s");
    assert!(!with_named.text.contains("%("));
}

#[test]
fn html_tag_split_across_string_lines_is_one_pair() {
    // en/django.po splits `<a target=\"_blank\" href=\"…\">` over two string lines.
    let path = oerkit_testkit::corpus("oer/openedx-ora2-po/en/django.po");
    let doc = load(&path, None).unwrap();
    let unit = doc
        .units
        .iter()
        .find(|u| u.text.contains("Learn more about team assignments here"))
        .expect("the team assignments unit");
    assert!(unit.text.contains("(<g1>link</g1>)"), "{}", unit.text);
    assert!(unit.placeholders[0]
        .original
        .starts_with("<a target=\\\"_blank\\\" href=\\\"https://support.edx.org/"));
}

#[test]
fn pseudo_translation_keeps_msgids_and_writes_target_plural_forms() {
    for path in corpus_files() {
        let doc = load(&path, None).unwrap();
        let texts: Vec<String> = doc
            .units
            .iter()
            .map(|u| pseudo_translate(&u.text))
            .collect();
        for target in ["es", "ru", "ja"] {
            let options = WriteOptions {
                target_language: Some(target.into()),
                ..Default::default()
            };
            let out = write(
                &doc,
                &Translations::from_texts(texts.clone()),
                &options,
                &path,
            );
            let again = Po
                .read(&out)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(again.units.len(), doc.units.len());
            for (a, b) in again.units.iter().zip(&doc.units) {
                assert_eq!(a.text, b.text);
                assert_eq!(a.placeholders, b.placeholders);
            }
            assert_eq!(
                raw_skeleton(&again),
                raw_skeleton(&doc),
                "{}",
                path.display()
            );
            let nplurals = plural_rule(target).unwrap().nplurals;
            assert!(out.contains(&format!("\"Language: {target}\\n\"")));
            assert!(out.contains(&format!("\"Plural-Forms: nplurals={nplurals};")));
            assert_eq!(out.matches("Plural-Forms:").count(), 1);
            // Every plural entry has exactly nplurals forms.
            let plural_entries = out.matches("msgid_plural").count();
            assert_eq!(
                out.matches("msgstr[0]").count(),
                plural_entries,
                "{}",
                path.display()
            );
            assert_eq!(
                out.matches(&format!("msgstr[{}]", nplurals - 1)).count(),
                plural_entries
            );
            assert_eq!(out.matches(&format!("msgstr[{nplurals}]")).count(), 0);
            // Each translated entry is flagged for review.
            let translated = doc
                .pieces
                .iter()
                .filter(|p| matches!(p, Piece::Custom { units, .. } if !units.is_empty()))
                .count();
            assert!(out.matches("#, fuzzy").count() >= translated);
        }
    }
}

#[test]
fn broken_placeholders_are_refused_with_the_unit_id() {
    let path = oerkit_testkit::corpus("oer/openedx-ora2-po/en/django.po");
    let doc = load(&path, None).unwrap();
    let i = doc
        .units
        .iter()
        .position(|u| !u.placeholders.is_empty())
        .unwrap();
    let mut texts = doc.source_texts();
    texts[i] = "placeholder lost".into();
    let err = write_document(
        &doc,
        &Translations::from_texts(texts),
        &WriteOptions::default(),
        &path,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains(&doc.units[i].id), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Arbitrary bytes of PO-ish text never panic the reader.
    #[test]
    fn reader_never_panics(s in "(msgid |msgstr|msgctxt |msgid_plural |msgstr\\[[0-9]\\] |#[,.:|~]? |\"|\\\\[ntx0-9\"\\\\q]|[a-zé%{}<>&;/ ]|\n){0,60}") {
        let _ = Po.read(&s);
    }

    /// Arbitrary message text survives the round trip: identity is exact, and written as a
    /// translation it re-reads to the same placeholders.
    #[test]
    fn arbitrary_messages_round_trip(msg in "[a-zA-Z0-9 .,!?'\"\\\\%{}<>&;/():\t\n-]{1,120}") {
        let mut escaped = String::new();
        oerkit_document::placeholder::Escape::Po.apply(&msg, &mut escaped);
        let input = format!("msgid \"\"\nmsgstr \"Language: en\\n\"\n\n#: x.py:1\nmsgid \"{escaped}\"\nmsgstr \"\"\n");
        let doc = Po.read(&input).unwrap();
        let out = write_document(&doc, &Translations::identity(&doc), &WriteOptions::default(), Path::new("p.po")).unwrap();
        prop_assert_eq!(&out, &input);
        let options = WriteOptions { render_unchanged: true, ..Default::default() };
        let rendered = write_document(&doc, &Translations::identity(&doc), &options, Path::new("p.po")).unwrap();
        let again = Po.read(&rendered).unwrap();
        prop_assert_eq!(again.source_texts(), doc.source_texts());
        for (a, b) in again.units.iter().zip(&doc.units) {
            prop_assert_eq!(&a.placeholders, &b.placeholders);
        }
    }
}
