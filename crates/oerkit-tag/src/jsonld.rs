//! schema.org `LearningResource` (LRMI) JSON-LD of a description: `about` holds the subjects as
//! `DefinedTerm`s of their taxonomy; a translation made by oerkit also gets `translationOfWork` (the
//! source, which names this work as its `workTranslation`), `isBasedOn` and `translator` (the model as
//! an `Organization` + `SoftwareApplication`, and the reviewers as `Person`s).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::describe::Description;
use crate::keywords::Keyword;
use crate::subjects::Subject;
use crate::taxonomy::TaxonomyRef;

/// Subjects given in `about`: the best few, not the whole ranking.
pub const ABOUT_SUBJECTS: usize = 3;

const ISCED_2011_URL: &str =
    "http://uis.unesco.org/en/topic/international-standard-classification-education-isced";

/// What oerkit knows about the work a translation was made from, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranslationOf {
    pub source_title: String,
    pub source_language: String,
    pub source_sha256: String,
    #[serde(default)]
    pub source_url: Option<String>,
    #[serde(default)]
    pub source_authors: Vec<String>,
    pub model: String,
    #[serde(default)]
    pub model_sha256: Option<String>,
    /// `gguf`, `marian`, `apertium`…
    pub engine: String,
    pub oerkit_version: String,
    /// People who reviewed the machine translation.
    #[serde(default)]
    pub reviewers: Vec<String>,
}

/// The JSON-LD object of one resource.
pub fn learning_resource(
    d: &Description,
    subjects: &[Subject],
    keywords: &[Keyword],
    taxonomy: Option<&TaxonomyRef>,
    summary: Option<&str>,
    translation: Option<&TranslationOf>,
) -> Value {
    let id = format!("urn:sha256:{}", d.sha256);
    let mut node = Map::new();
    node.insert("@context".into(), json!("https://schema.org"));
    node.insert("@type".into(), json!("LearningResource"));
    node.insert("@id".into(), json!(id));
    node.insert("name".into(), json!(d.title));
    node.insert("inLanguage".into(), json!(d.language.code));
    if let Some(url) = &d.source_url {
        node.insert("url".into(), json!(url));
    }
    if let Some(t) = taxonomy {
        let about: Vec<Value> = subjects
            .iter()
            .take(ABOUT_SUBJECTS)
            .map(|s| {
                let mut set = json!({ "@type": "DefinedTermSet", "name": t.name });
                if let Some(url) = &t.url {
                    set["url"] = json!(url);
                }
                json!({ "@type": "DefinedTerm", "termCode": s.code, "name": s.name, "inDefinedTermSet": set })
            })
            .collect();
        if !about.is_empty() {
            node.insert("about".into(), Value::Array(about));
        }
    }
    if !keywords.is_empty() {
        node.insert(
            "keywords".into(),
            json!(keywords
                .iter()
                .map(|k| k.phrase.as_str())
                .collect::<Vec<_>>()),
        );
    }
    if let Some(level) = &d.educational_level {
        node.insert(
            "educationalLevel".into(),
            json!({
                "@type": "DefinedTerm",
                "termCode": level.isced_2011,
                "name": level.name,
                "description": format!("Estimate: {}", level.basis),
                "inDefinedTermSet": { "@type": "DefinedTermSet", "name": "ISCED 2011 levels of education", "url": ISCED_2011_URL },
            }),
        );
    }
    node.insert(
        "learningResourceType".into(),
        json!(d.resource_types.iter().map(|t| t.name).collect::<Vec<_>>()),
    );
    if let Some(url) = licence_url(d) {
        node.insert("license".into(), json!(url));
    }
    node.insert("creditText".into(), json!(d.credit_text));
    if !d.authors.is_empty() {
        node.insert(
            "author".into(),
            json!(d
                .authors
                .iter()
                .map(|a| json!({ "@type": "Person", "name": a }))
                .collect::<Vec<_>>()),
        );
    }
    if let Some(s) = summary {
        node.insert("abstract".into(), json!(s));
    }
    if let Some(t) = translation {
        let source_id = format!("urn:sha256:{}", t.source_sha256);
        let mut source = json!({
            "@type": "LearningResource",
            "@id": source_id,
            "name": t.source_title,
            "inLanguage": t.source_language,
            "workTranslation": { "@id": id },
        });
        if let Some(url) = &t.source_url {
            source["url"] = json!(url);
        }
        if !t.source_authors.is_empty() {
            source["author"] = json!(t
                .source_authors
                .iter()
                .map(|a| json!({ "@type": "Person", "name": a }))
                .collect::<Vec<_>>());
        }
        node.insert("translationOfWork".into(), source);
        node.insert(
            "isBasedOn".into(),
            match &t.source_url {
                Some(url) => json!(url),
                None => json!({ "@id": source_id }),
            },
        );
        let mut model = json!({
            // Multi-typed: `translator` expects an Organization or Person, and the model is software.
            "@type": ["Organization", "SoftwareApplication"],
            "name": format!("{} ({} engine, machine translation with oerkit {})", t.model, t.engine, t.oerkit_version),
            "softwareVersion": t.oerkit_version,
        });
        if let Some(sha) = &t.model_sha256 {
            model["identifier"] = json!(format!("sha256:{sha}"));
        }
        let mut translators = vec![model];
        translators.extend(
            t.reviewers
                .iter()
                .map(|r| json!({ "@type": "Person", "name": r })),
        );
        node.insert("translator".into(), Value::Array(translators));
    }
    Value::Object(node)
}

/// The licence as a URL: the canonical one for licences oerkit knows, else the SPDX page.
fn licence_url(d: &Description) -> Option<String> {
    if let Some(url) = &d.licence.url {
        return Some(url.clone());
    }
    d.licence
        .spdx
        .as_ref()
        .filter(|id| !id.starts_with("LicenseRef-"))
        .map(|id| format!("https://spdx.org/licenses/{id}.html"))
}
