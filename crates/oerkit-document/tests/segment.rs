//! Sentence segmentation on real files: identity still holds, and translating the sentences writes a
//! valid file whose units re-read to the joined sentences.

use oerkit_document::format::Format;
use oerkit_document::formats::h5p::H5p;
use oerkit_document::pseudo::pseudo_translate;
use oerkit_document::segment::{segment, SegmentMode};
use oerkit_document::{load, write_document, Piece, Translations, WriteOptions};

#[test]
fn h5p_language_files_segment_and_round_trip() {
    oerkit_testkit::require_shared();
    for (lang, file) in [
        ("en", "en.json"),
        ("de", "de.json"),
        ("es", "es.json"),
        ("fr", "fr.json"),
        ("pt", "pt.json"),
    ] {
        let path = oerkit_testkit::corpus(&format!("oer/h5p-interactive-video/language/{file}"));
        let input = std::fs::read_to_string(&path).unwrap();
        let doc = load(&path, None).unwrap();
        let seg = segment(doc.clone(), SegmentMode::Sentences, lang);
        let split = seg
            .pieces
            .iter()
            .filter(|p| matches!(p, Piece::Segmented { .. }))
            .count();
        assert!(split >= 5, "{file}: only {split} units split");
        assert!(seg.units.len() > doc.units.len());
        let ids: std::collections::HashSet<_> = seg.units.iter().map(|u| &u.id).collect();
        assert_eq!(ids.len(), seg.units.len(), "ids are unique");
        let opts = WriteOptions::default();
        let out = write_document(&seg, &Translations::identity(&seg), &opts, &path).unwrap();
        assert!(out == input, "{file}: identity differs after segmentation");
        // Translate only the sentences: valid JSON, same number of unsegmented units.
        let texts: Vec<String> = seg
            .units
            .iter()
            .map(|u| pseudo_translate(&u.text))
            .collect();
        let out = write_document(&seg, &Translations::from_texts(texts), &opts, &path).unwrap();
        serde_json::from_str::<serde_json::Value>(&out).unwrap();
        let again = H5p.read(&out).unwrap();
        assert_eq!(again.units.len(), doc.units.len(), "{file}");
        for (a, b) in again.units.iter().zip(&doc.units) {
            assert_eq!(a.placeholders, b.placeholders);
        }
    }
}
