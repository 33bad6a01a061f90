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

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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
    /// Ranked best first; `score` is the cosine similarity of the resource to the field's description
    /// (for a language the taxonomy is translated into, the mean of the cosines to the English and
    /// the translated description).
    pub subjects: Vec<Subject>,
    pub keywords: Vec<Keyword>,
    pub taxonomy: taxonomy::TaxonomyRef,
    pub embedding_model: ModelRef,
    /// An abstract written by a summarizer model (`--summary`).
    #[serde(rename = "abstract", skip_serializing_if = "Option::is_none")]
    pub summary: Option<serde_json::Value>,
}

/// How many chunks of its own a resource's folder (its course) weighs when subjects are ranked:
/// see [`Tagger::tag`].
pub const COURSE_CONTEXT_CHUNKS: f32 = 2.0;

/// A document's chunks and the sum of their vectors.
struct ChunkSum {
    chunks: Vec<String>,
    sum: Vec<f32>,
}

/// Tags resources against one taxonomy; the taxonomy's label vectors are computed once.
pub struct Tagger {
    taxonomy: Taxonomy,
    ranked_terms: Vec<usize>,
    term_vectors: Vec<Vec<f32>>,
    /// For each language the taxonomy is translated into: per ranked term, the mean of its
    /// English and its same-language description vectors.
    localized_term_vectors: BTreeMap<String, Vec<Vec<f32>>>,
    /// Per folder: the unit mean of its documents' vectors (`None` with fewer than two).
    folder_context: Mutex<HashMap<PathBuf, Option<Vec<f32>>>>,
    /// Per file, as read for a folder context: reused when the tagged document has the same chunks.
    context_sums: Mutex<HashMap<PathBuf, ChunkSum>>,
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

        // Why both languages: the default model (all-MiniLM-L6-v2) was trained on English. A
        // German page against English descriptions matches on little more than loanwords and
        // ranks fields by noise (the LiaScript software course came out as library studies or
        // history). Against German descriptions it matches German words, but English-only
        // subword statistics also make unrelated German texts look alike. The mean of the two
        // cosines keeps what both agree on; dot products are linear, so it is one vector per
        // term, `(english + translated) / 2`. English resources and taxonomies without
        // translations rank exactly as before.
        let mut localized_term_vectors = BTreeMap::new();
        for language in taxonomy.translation_languages() {
            let texts: Vec<String> = ranked_terms
                .iter()
                .map(|&i| {
                    let term = &taxonomy.terms[i];
                    term.embedding_text_in(&language)
                        .unwrap_or_else(|| term.embedding_text())
                })
                .collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let what = format!("the taxonomy terms ({language})");
            let translated = embed_checked(embedder, &refs, &what)?;
            let mean = term_vectors
                .iter()
                .zip(&translated)
                .map(|(en, tr)| en.iter().zip(tr).map(|(a, b)| (a + b) / 2.0).collect())
                .collect();
            localized_term_vectors.insert(language, mean);
        }
        Ok(Tagger {
            taxonomy,
            ranked_terms,
            term_vectors,
            localized_term_vectors,
            folder_context: Mutex::new(HashMap::new()),
            context_sums: Mutex::new(HashMap::new()),
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
        let what = format!("{}", file.display());
        let cached = self.context_sums.lock().ok().and_then(|sums| {
            sums.get(file)
                .filter(|c| c.chunks == chunks)
                .map(|c| c.sum.clone())
        });
        let chunk_sum = match cached {
            Some(sum) => sum,
            None => sum_of_vectors(&embed_checked(embedder, &as_refs(&chunks), &what)?),
        };
        let doc_vector = unit(chunk_sum.clone());

        // Course context: a resource is ranked on its own chunks plus its folder's mean vector
        // weighted like COURSE_CONTEXT_CHUNKS chunks, a prior that a long page outweighs and a
        // short one leans on. A course's overview page, config or metadata file says little
        // about the subject itself ("Übersicht zur Vorlesung (Sommersemester 2026)" is the
        // whole text of the LiaScript course's README) but belongs to the course's field. A
        // file alone in its folder is ranked on its own text.
        let subject_vector = match self.folder_context(embedder, file)? {
            Some(context) => unit(
                chunk_sum
                    .iter()
                    .zip(&context)
                    .map(|(own, course)| own + COURSE_CONTEXT_CHUNKS * course)
                    .collect(),
            ),
            None => doc_vector.clone(),
        };
        let term_vectors = self
            .localized_term_vectors
            .get(&description.text_language)
            .unwrap_or(&self.term_vectors);
        let subjects = subjects::rank(
            &self.taxonomy,
            &self.ranked_terms,
            term_vectors,
            &subject_vector,
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

impl Tagger {
    /// The unit mean of the document vectors of every readable file in `file`'s folder (not
    /// recursive; licence texts and files without text left out), computed once per folder.
    fn folder_context(
        &self,
        embedder: &mut dyn Embedder,
        file: &Path,
    ) -> Result<Option<Vec<f32>>, TagError> {
        let Some(folder) = file.parent() else {
            return Ok(None);
        };
        if let Some(known) = self
            .folder_context
            .lock()
            .ok()
            .and_then(|cache| cache.get(folder).cloned())
        {
            return Ok(known);
        }
        let mut files: Vec<PathBuf> = match std::fs::read_dir(folder) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && !is_licence_text(p))
                .collect(),
            Err(_) => Vec::new(),
        };
        // Sorted so the sum, and so the tags, do not depend on the directory's listing order.
        files.sort();
        let mut sums = Vec::new();
        let mut mean = Vec::new();
        for path in files {
            // A sibling oerkit cannot read is no evidence either way.
            let Ok(doc) = oerkit_document::load(&path, None) else {
                continue;
            };
            let paragraphs = text::plain_paragraphs(&doc);
            if paragraphs.is_empty() {
                continue;
            }
            let chunks = text::chunks(&describe::title_of(&doc, &path), &paragraphs);
            let what = format!("{}", path.display());
            let sum = sum_of_vectors(&embed_checked(embedder, &as_refs(&chunks), &what)?);
            let own = unit(sum.clone());
            if mean.is_empty() {
                mean = vec![0f32; own.len()];
            }
            for (m, v) in mean.iter_mut().zip(&own) {
                *m += v;
            }
            sums.push((path, ChunkSum { chunks, sum }));
        }
        let context = (sums.len() >= 2).then(|| unit(mean));
        if let Ok(mut cache) = self.context_sums.lock() {
            cache.extend(sums);
        }
        if let Ok(mut cache) = self.folder_context.lock() {
            cache.insert(folder.to_path_buf(), context.clone());
        }
        Ok(context)
    }
}

/// Licence texts are legal boilerplate, the same for every subject (`LICENSE`, `LICENCE.md`,
/// `COPYING`).
fn is_licence_text(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(
        name.split('.').next().unwrap_or(""),
        "license" | "licence" | "copying"
    )
}

fn as_refs(texts: &[String]) -> Vec<&str> {
    texts.iter().map(String::as_str).collect()
}

fn sum_of_vectors(vectors: &[Vec<f32>]) -> Vec<f32> {
    let mut sum = vec![0f32; vectors.first().map_or(0, Vec::len)];
    for v in vectors {
        for (s, x) in sum.iter_mut().zip(v) {
            *s += x;
        }
    }
    sum
}

/// `v / |v|` (unchanged when all zero).
fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
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
