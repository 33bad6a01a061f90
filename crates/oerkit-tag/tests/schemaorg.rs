//! The JSON-LD oerkit writes checked against the schema.org vocabulary (fetched by
//! scripts/fetch-schemaorg.sh): a missing vocabulary fails the test, it never skips.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use oerkit_tag::jsonld::{learning_resource, TranslationOf};
use oerkit_tag::schemaorg::{default_path, Vocabulary};
use oerkit_tag::subjects::rank;
use oerkit_tag::{describe, Keyword, LanguageDetector, Taxonomy};
use serde_json::json;

fn vocabulary() -> Vocabulary {
    let path = default_path();
    Vocabulary::load(&path).unwrap_or_else(|e| {
        panic!("{e}\n(the schema.org vocabulary is fetched by scripts/fetch-schemaorg.sh)")
    })
}

/// A description of a real corpus file, with subjects ranked by stand-in vectors (this test is
/// about the JSON-LD shape, not about which subject wins).
fn corpus_json_ld(rel: &str, translation: Option<&TranslationOf>) -> serde_json::Value {
    oerkit_testkit::require_shared();
    let file = oerkit_testkit::corpus(rel);
    let root = oerkit_testkit::corpus("oer");
    let doc = oerkit_document::load(&file, None).unwrap();
    let d = describe(&doc, &file, &root, &LanguageDetector::new()).unwrap();
    let taxonomy = Taxonomy::isced_f_2013();
    let ranked = taxonomy.rankable();
    let vectors: Vec<Vec<f32>> = (0..ranked.len())
        .map(|k| {
            (0..ranked.len())
                .map(|j| if j == k { 1.0 } else { 0.0 })
                .collect()
        })
        .collect();
    let subjects = rank(&taxonomy, &ranked, &vectors, &vectors[3], 5);
    let keywords = vec![Keyword {
        phrase: "shell".into(),
        score: 0.5,
    }];
    learning_resource(
        &d,
        &subjects,
        &keywords,
        Some(&taxonomy.reference()),
        Some("An abstract."),
        translation,
    )
}

fn assert_valid(vocab: &Vocabulary, doc: &serde_json::Value) {
    let problems = vocab.check(doc);
    assert!(
        problems.is_empty(),
        "{}\n{problems:#?}",
        serde_json::to_string_pretty(doc).unwrap()
    );
}

#[test]
fn learning_resources_of_every_format_use_only_schema_org_terms() {
    let vocab = vocabulary();
    // (file, whether a licence is found: the built HTML pages come without a licence file)
    for (rel, licensed) in [
        (
            "oer/carpentries-shell-novice/en/episodes/03-create.md",
            true,
        ),
        ("oer/openstax-statistics/en/m46909.cnxml", true),
        ("oer/liascript-tubaf-softwareentwicklung/19_Testen.md", true),
        ("oer/carpentries-shell-novice-html/es/01-intro.html", false),
    ] {
        let doc = corpus_json_ld(rel, None);
        assert_eq!(doc["@type"], "LearningResource", "{rel}");
        assert!(doc["about"][0]["termCode"].is_string(), "{rel}");
        assert_eq!(
            doc["license"]
                .as_str()
                .is_some_and(|u| u.starts_with("https://")),
            licensed,
            "{rel}"
        );
        assert_valid(&vocab, &doc);
    }
}

#[test]
fn translations_validate_with_provenance_on_both_sides() {
    let vocab = vocabulary();
    let translation = TranslationOf {
        source_title: "Working With Files and Directories".into(),
        source_language: "en".into(),
        source_sha256: "ab".repeat(32),
        source_url: Some("https://swcarpentry.github.io/shell-novice/".into()),
        source_authors: vec!["The Carpentries".into()],
        model: "qwen2.5-coder-0.5b-instruct".into(),
        model_sha256: Some("cd".repeat(32)),
        engine: "gguf".into(),
        oerkit_version: "0.1.0".into(),
        reviewers: vec!["A. Reviewer".into()],
    };
    let doc = corpus_json_ld(
        "oer/carpentries-shell-novice/es/episodes/03-create.md",
        Some(&translation),
    );
    assert_eq!(
        doc["translationOfWork"]["workTranslation"]["@id"],
        doc["@id"]
    );
    assert_eq!(doc["translator"].as_array().unwrap().len(), 2);
    assert_valid(&vocab, &doc);
}

#[test]
fn the_check_catches_unknown_terms_wrong_domains_and_ranges() {
    let vocab = vocabulary();
    let bad = json!({
        "@context": "https://schema.org",
        "@type": "LearningResource",
        "name": "x",
        "subjectCode": "054",
        "termCode": "054",
        "translator": { "@type": "SoftwareApplication", "name": "m" },
        "about": { "@type": "LearningThing", "name": "y" },
        "license": true
    });
    let problems = vocab.check(&bad).join("\n");
    for needle in [
        "\"subjectCode\" is not a schema.org property",
        "\"termCode\" is not a property of",
        "not in the range of \"translator\"",
        "\"LearningThing\" is not a schema.org class",
        "a boolean is not in the range of \"license\"",
    ] {
        assert!(
            problems.contains(needle),
            "missing {needle:?} in:\n{problems}"
        );
    }
    let wrong_context = json!({ "@context": "https://example.org", "@type": "Thing" });
    assert_eq!(vocab.check(&wrong_context).len(), 1);
}

#[test]
fn a_missing_vocabulary_names_the_script() {
    let err = Vocabulary::load(Path::new("/nonexistent/schemaorg-current-https.jsonld"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("scripts/fetch-schemaorg.sh"), "{err}");
}
