//! The parts of a description that need no model: title, language, readability and level estimate,
//! resource type, licence and attribution. `oerkit translate` writes these for every output.

use std::path::{Path, PathBuf};

use oerkit_document::license::{detect, known, LicenseSource};
use oerkit_document::{Document, FormatKind};
use serde::Serialize;

use crate::error::TagError;
use crate::language::{primary_subtag, LanguageDetector, LanguageGuess};
use crate::readability::{level_from, readability, EducationalLevel, Readability};
use crate::resource_type::{resource_types, ResourceType};
use crate::text::plain_paragraphs;

/// The licence of a resource as the document layer detects it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LicenceInfo {
    /// SPDX id (`null`: none found or not recognised).
    pub spdx: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Where it was found (file metadata, a licence file), if anywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<LicenseSource>,
}

/// What can be said about a resource without a model.
#[derive(Debug, Clone, Serialize)]
pub struct Description {
    pub file: PathBuf,
    pub format: FormatKind,
    pub title: String,
    pub language: LanguageGuess,
    /// The language of the text units as detected; differs from `language` for bilingual files (PO,
    /// XLIFF), whose units are the source text while the file is the target-language catalogue.
    pub text_language: String,
    /// `null` for languages without a readability formula.
    pub readability: Option<Readability>,
    pub educational_level: Option<EducationalLevel>,
    /// Most evidence first.
    pub resource_types: Vec<ResourceType>,
    pub licence: LicenceInfo,
    pub authors: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// Title, author, source and licence in one line, for `creditText`.
    pub credit_text: String,
    /// sha256 of the file's bytes, which identifies the resource in JSON-LD.
    pub sha256: String,
}

/// Describes a loaded document. `root` bounds the search for a licence file (a folder argument).
pub fn describe(
    doc: &Document,
    file: &Path,
    root: &Path,
    detector: &LanguageDetector,
) -> Result<Description, TagError> {
    let bytes = std::fs::read(file).map_err(|source| TagError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let raw = String::from_utf8_lossy(&bytes);
    if raw.trim().is_empty() {
        return Err(TagError::Empty {
            path: file.to_path_buf(),
        });
    }
    let paragraphs = plain_paragraphs(doc);
    if paragraphs.is_empty() {
        return Err(TagError::NoText {
            path: file.to_path_buf(),
        });
    }
    let detected = detector.detect(&paragraphs, doc.meta.language.as_deref());
    let text_language = detected.code.clone();
    let bilingual = matches!(doc.format, FormatKind::Po | FormatKind::Xliff);
    let language = match doc.meta.language.as_deref() {
        Some(stated) if bilingual => LanguageGuess {
            code: primary_subtag(stated),
            confidence: None,
            stated: Some(stated.to_string()),
            source: "stated",
        },
        _ => detected,
    };
    let readability = readability(&paragraphs, &text_language);
    let educational_level = readability.as_ref().map(level_from);
    let title = title_of(doc, file);
    let licence = licence_of(doc, file, root);
    let credit_text = credit_text(
        &title,
        &doc.meta.authors,
        doc.meta.source_url.as_deref(),
        &licence,
    );
    Ok(Description {
        file: file.to_path_buf(),
        format: doc.format,
        title,
        language,
        text_language,
        readability,
        educational_level,
        resource_types: resource_types(doc, &raw),
        licence,
        authors: doc.meta.authors.clone(),
        source_url: doc.meta.source_url.clone(),
        credit_text,
        sha256: sha256_hex(&bytes),
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The stated title, else the first heading, else the file name.
pub(crate) fn title_of(doc: &Document, file: &Path) -> String {
    if let Some(t) = doc.meta.title.as_deref().filter(|t| !t.trim().is_empty()) {
        return t.trim().to_string();
    }
    let heading = plain_paragraphs(doc)
        .into_iter()
        .find(|p| p.context.contains("heading") || p.context.ends_with("title"));
    match heading {
        Some(h) => h.text,
        None => file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("untitled")
            .to_string(),
    }
}

fn licence_of(doc: &Document, file: &Path, root: &Path) -> LicenceInfo {
    match detect(&doc.meta, file, root, None) {
        Some(d) => {
            let k = d.spdx.as_deref().and_then(known);
            LicenceInfo {
                spdx: d.spdx.clone(),
                name: k.map(|k| k.name.to_string()),
                url: k.map(|k| k.url.to_string()),
                source: Some(d.source),
            }
        }
        None => LicenceInfo {
            spdx: None,
            name: None,
            url: None,
            source: None,
        },
    }
}

/// `"Title" by A, B (https://…), licensed under Creative Commons Attribution 4.0 International.`
pub fn credit_text(
    title: &str,
    authors: &[String],
    source_url: Option<&str>,
    licence: &LicenceInfo,
) -> String {
    let mut s = format!("\"{title}\"");
    if !authors.is_empty() {
        s.push_str(&format!(" by {}", authors.join(", ")));
    }
    if let Some(url) = source_url {
        s.push_str(&format!(" ({url})"));
    }
    match (&licence.name, &licence.spdx) {
        (Some(name), _) => s.push_str(&format!(", licensed under {name}")),
        (None, Some(id)) => s.push_str(&format!(", licensed under {id}")),
        _ => {}
    }
    s.push('.');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_textless_documents_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let detector = LanguageDetector::new();
        let code_only = dir.path().join("code.md");
        let text = "```bash\nls -l\n```\n";
        std::fs::write(&code_only, text).unwrap();
        let doc = oerkit_document::load(&code_only, None).unwrap();
        let err = describe(&doc, &code_only, dir.path(), &detector).unwrap_err();
        assert!(matches!(err, TagError::NoText { .. }), "{err}");
        assert!(err.to_string().contains("code.md"));
    }

    #[test]
    fn credit_text_follows_title_author_source_licence() {
        let licence = LicenceInfo {
            spdx: Some("CC-BY-4.0".into()),
            name: Some("Creative Commons Attribution 4.0 International".into()),
            url: None,
            source: None,
        };
        assert_eq!(
            credit_text("Intro", &["Ada".into()], Some("https://x.org"), &licence),
            "\"Intro\" by Ada (https://x.org), licensed under Creative Commons Attribution 4.0 International."
        );
    }
}
