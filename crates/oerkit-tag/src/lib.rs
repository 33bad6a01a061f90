//! `oerkit-tag` describes Open Educational Resources so repositories can find and reuse them: the
//! language, ranked subjects (ISCED-F 2013 fields of education or a user taxonomy), keywords, a
//! readability figure with an educational-level estimate, the learning resource type read from the
//! structure, the licence and attribution, and the schema.org `LearningResource` (LRMI) JSON-LD of
//! all that, including translation provenance for resources oerkit translated.
//!
//! It owns the taxonomy data (`data/isced-f-2013.toml`) and the schema.org vocabulary check
//! ([`schemaorg`]). It depends on `oerkit-document` only; sentence embeddings come through the
//! [`Embedder`] trait, so the model engine (`oerkit-embed`) is plugged in by the caller.

pub mod describe;
pub mod error;
pub mod jsonld;
pub mod keywords;
pub mod language;
pub mod readability;
pub mod resource_type;
pub mod schemaorg;
pub mod subjects;
pub mod taxonomy;
pub mod text;

pub use describe::{describe, Description, LicenceInfo};
pub use error::TagError;
pub use keywords::Keyword;
pub use language::{LanguageDetector, LanguageGuess};
pub use subjects::Subject;
pub use taxonomy::{Taxonomy, Term};

use std::path::Path;

use oerkit_document::Document;
use serde::Serialize;

/// Anything that turns texts into L2-normalised vectors (cosine = dot product).
pub trait Embedder {
    /// One vector per text, in order.
    fn embed(
        &mut self,
        texts: &[&str],
    ) -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error + Send + Sync>>;
    /// The model's id, for the record.
    fn model_id(&self) -> String;
    /// sha256 of the model weights, for the record.
    fn model_sha256(&self) -> Option<String>;
}

/// Knobs of the embedding-based parts.
#[derive(Debug, Clone)]
pub struct TagOptions {
    /// How many subjects to report.
    pub subjects: usize,
    /// How many keywords to report.
    pub keywords: usize,
    /// MMR trade-off between relevance (1.0) and diversity (0.0).
    pub mmr_lambda: f32,
}

impl Default for TagOptions {
    fn default() -> Self {
        TagOptions {
            subjects: 5,
            keywords: 10,
            mmr_lambda: 0.7,
        }
    }
}

/// The embedding model a record was made with.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRef {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Everything `oerkit tag` says about one resource.
#[derive(Debug, Clone, Serialize)]
pub struct TagRecord {
    #[serde(flatten)]
    pub description: Description,
    /// Ranked best first; `score` is the cosine similarity of the resource to the field's description.
    pub subjects: Vec<Subject>,
    pub keywords: Vec<Keyword>,
    pub taxonomy: taxonomy::TaxonomyRef,
    pub embedding_model: ModelRef,
    /// An abstract written by a summarizer model (`--summary`).
    #[serde(rename = "abstract", skip_serializing_if = "Option::is_none")]
    pub summary: Option<serde_json::Value>,
}

/// Tags resources against one taxonomy; the taxonomy's label vectors are computed once.
pub struct Tagger {
    taxonomy: Taxonomy,
    ranked_terms: Vec<usize>,
    term_vectors: Vec<Vec<f32>>,
    detector: LanguageDetector,
    options: TagOptions,
}

impl Tagger {
    /// Embeds the taxonomy's rankable terms.
    pub fn new(
        embedder: &mut dyn Embedder,
        taxonomy: Taxonomy,
        options: TagOptions,
    ) -> Result<Self, TagError> {
        let ranked_terms = taxonomy.rankable();
        let labels: Vec<String> = ranked_terms
            .iter()
            .map(|&i| taxonomy.terms[i].embedding_text())
            .collect();
        let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
        let term_vectors = embed_checked(embedder, &refs, "the taxonomy terms")?;
        Ok(Tagger {
            taxonomy,
            ranked_terms,
            term_vectors,
            detector: LanguageDetector::new(),
            options,
        })
    }

    pub fn detector(&self) -> &LanguageDetector {
        &self.detector
    }

    pub fn taxonomy(&self) -> &Taxonomy {
        &self.taxonomy
    }

    /// Tags one loaded document. `root` bounds the search for a licence file.
    pub fn tag(
        &self,
        embedder: &mut dyn Embedder,
        doc: &Document,
        file: &Path,
        root: &Path,
    ) -> Result<TagRecord, TagError> {
        let description = describe(doc, file, root, &self.detector)?;
        let paragraphs = text::plain_paragraphs(doc);
        let chunks = text::chunks(&description.title, &paragraphs);
        let chunk_refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
        let what = format!("{}", file.display());
        let chunk_vectors = embed_checked(embedder, &chunk_refs, &what)?;
        let doc_vector = subjects::centroid(&chunk_vectors);
        let subjects = subjects::rank(
            &self.taxonomy,
            &self.ranked_terms,
            &self.term_vectors,
            &doc_vector,
            self.options.subjects,
        );
        let candidates = keywords::candidates(&paragraphs, &description.text_language);
        let candidate_refs: Vec<&str> = candidates.iter().map(|c| c.phrase.as_str()).collect();
        let candidate_vectors = if candidate_refs.is_empty() {
            Vec::new()
        } else {
            embed_checked(embedder, &candidate_refs, &what)?
        };
        let keywords = keywords::select_mmr(
            &candidates,
            &candidate_vectors,
            &doc_vector,
            self.options.keywords,
            self.options.mmr_lambda,
        );
        Ok(TagRecord {
            description,
            subjects,
            keywords,
            taxonomy: self.taxonomy.reference(),
            embedding_model: ModelRef {
                id: embedder.model_id(),
                sha256: embedder.model_sha256(),
            },
            summary: None,
        })
    }
}

fn embed_checked(
    embedder: &mut dyn Embedder,
    texts: &[&str],
    what: &str,
) -> Result<Vec<Vec<f32>>, TagError> {
    let vectors = embedder
        .embed(texts)
        .map_err(|source| TagError::Embedding {
            what: what.to_string(),
            source,
        })?;
    if vectors.len() != texts.len() {
        return Err(TagError::Embedding {
            what: what.to_string(),
            source: format!(
                "the model returned {} vectors for {} texts",
                vectors.len(),
                texts.len()
            )
            .into(),
        });
    }
    Ok(vectors)
}

/// Dot product of two equally long vectors (cosine for L2-normalised ones).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
