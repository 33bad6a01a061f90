//! The embedding engine: tokenize, run our BERT forward on length-sorted batches of packed
//! tokens, mean-pool over each text's word pieces, L2-normalise.

use crate::bert::{BertEncoder, Threads};
use crate::config::ModelFolder;
use crate::error::EmbedError;
use oerkit_models::{Architecture, Catalog, Manifest, ModelError, ModelStore, Progress};
use rayon::prelude::*;
use std::path::Path;
use tokenizers::{Tokenizer, TruncationParams};

/// Texts per forward pass unless [`SentenceEmbedder::with_batch_size`] says otherwise
/// (sentence-transformers' default).
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// The weights file whose sha256 identifies the model in provenance records.
const WEIGHTS_FILE: &str = "model.safetensors";

/// A loaded BERT-family sentence-embedding model.
pub struct SentenceEmbedder {
    model: BertEncoder,
    tokenizer: Tokenizer,
    dimension: usize,
    max_seq_len: usize,
    batch_size: usize,
    model_sha256: Option<String>,
}

impl std::fmt::Debug for SentenceEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentenceEmbedder")
            .field("dimension", &self.dimension)
            .field("max_seq_len", &self.max_seq_len)
            .field("batch_size", &self.batch_size)
            .field("model_sha256", &self.model_sha256)
            .finish_non_exhaustive()
    }
}

/// Cosine similarity of two vectors (0 when either is all zeros).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (dot / (na.sqrt() * nb.sqrt())) as f32
}

impl SentenceEmbedder {
    /// Loads a sentence-transformers folder (`config.json`, `tokenizer.json`,
    /// `model.safetensors`, and when present `sentence_bert_config.json` and `modules.json`).
    pub fn load(model_dir: &Path) -> Result<Self, EmbedError> {
        let folder = ModelFolder::read(model_dir)?;

        let mut tokenizer =
            Tokenizer::from_file(&folder.tokenizer_path).map_err(|e| EmbedError::Tokenizer {
                path: folder.tokenizer_path.clone(),
                message: e.to_string(),
            })?;
        // The shipped tokenizer.json of all-MiniLM-L6-v2 truncates at 128 and pads to a fixed
        // 128; sentence-transformers overrides both (256, no padding), and so do we. The forward
        // never pads: each text attends over its own word pieces (a literal "[PAD]" in the text
        // is a real token).
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: folder.max_seq_len,
                ..Default::default()
            }))
            .map_err(|e| EmbedError::Tokenizer {
                path: folder.tokenizer_path.clone(),
                message: e.to_string(),
            })?;

        let bytes = std::fs::read(&folder.weights_path).map_err(|source| EmbedError::Io {
            path: folder.weights_path.clone(),
            source,
        })?;
        let model =
            BertEncoder::load(bytes, &folder.bert).map_err(|source| EmbedError::Weights {
                path: folder.weights_path.clone(),
                source,
            })?;

        tracing::debug!(
            dir = %model_dir.display(),
            hidden = folder.bert.hidden_size,
            layers = folder.bert.num_hidden_layers,
            max_seq_len = folder.max_seq_len,
            "loaded sentence-embedding model"
        );
        Ok(Self {
            model,
            tokenizer,
            dimension: folder.bert.hidden_size,
            max_seq_len: folder.max_seq_len,
            batch_size: DEFAULT_BATCH_SIZE,
            model_sha256: manifest_sha256(model_dir),
        })
    }

    /// Loads a catalog model (e.g. `"all-minilm-l6-v2"`) from the verified model cache
    /// (`$OERKIT_MODELS`, else `~/.cache/oerkit/models`), fetching it first when it is not there.
    pub fn load_cached(model_id: &str) -> Result<Self, EmbedError> {
        let model_error = |source: ModelError| EmbedError::Model {
            id: model_id.to_string(),
            source,
        };
        let catalog = Catalog::load(None).map_err(|e| model_error(e.into()))?;
        let entry = catalog.get(model_id).map_err(|e| model_error(e.into()))?;
        if entry.architecture != Architecture::Bert {
            return Err(EmbedError::NotAnEmbeddingModel {
                id: model_id.to_string(),
                architecture: entry.architecture.to_string(),
            });
        }
        let store = ModelStore::from_env().map_err(|e| model_error(e.into()))?;
        let resolved = store
            .ensure(entry, &Progress::stderr())
            .map_err(|e| model_error(e.into()))?;
        let mut embedder = Self::load(&resolved.dir)?;
        if let Some(sha) = entry
            .files
            .iter()
            .find(|f| f.name == WEIGHTS_FILE)
            .and_then(|f| f.sha256.clone())
        {
            embedder.model_sha256 = Some(sha);
        }
        Ok(embedder)
    }

    /// Texts per forward pass (at least 1). Results do not depend on it beyond float rounding.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Length of each embedding (the hidden size, 384 for all-MiniLM-L6-v2).
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// Word pieces per text, [CLS] and [SEP] included; longer texts are truncated.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }

    /// sha256 of `model.safetensors` as verified by the model cache, when known.
    pub fn model_sha256(&self) -> Option<&str> {
        self.model_sha256.as_deref()
    }

    /// The word-piece ids the model sees for `text` ([CLS] … [SEP], truncated).
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| EmbedError::Tokenize {
                message: e.to_string(),
            })?;
        Ok(encoding.get_ids().to_vec())
    }

    /// One L2-normalised vector per text, in input order. Empty and whitespace-only texts are
    /// valid (they embed `[CLS][SEP]`).
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Tokenize {
                message: e.to_string(),
            })?;
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();

        // Batches of similar lengths keep the per-sequence attention work even across threads;
        // longest first so the largest buffers are allocated at once rather than after a long
        // run. Tokens are packed without padding, so mixing lengths costs nothing else.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));

        // Several batches run side by side, one forward pass per pool thread and each pass on
        // its own thread: one fork-join per call instead of dozens per pass, which is what keeps
        // two threads busy at batch 1 (a 30-token pass is too small to split well) and on a
        // loaded machine. A lone batch splits its matmuls and heads over the pool instead.
        let batches: Vec<&[usize]> = order.chunks(self.batch_size).collect();
        let run = |chunk: &&[usize], threads| {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| ids[i]).collect();
            self.model.embed(&batch, threads)
        };
        let results: Vec<Result<Vec<Vec<f32>>, EmbedError>> = if batches.len() > 1 {
            batches.par_iter().map(|c| run(c, Threads::One)).collect()
        } else {
            batches.iter().map(|c| run(c, Threads::Pool)).collect()
        };
        let mut out = vec![Vec::new(); texts.len()];
        for (chunk, vectors) in batches.iter().zip(results) {
            for (&i, vector) in chunk.iter().zip(vectors?) {
                out[i] = vector;
            }
        }
        Ok(out)
    }
}

/// The weights' sha256 from the cache manifest in `dir`, if the file is unchanged since it was
/// verified (same size and modification time, the cache's own cheap check).
fn manifest_sha256(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("oerkit-manifest.json")).ok()?;
    let manifest: Manifest = serde_json::from_str(&text).ok()?;
    let recorded = manifest.files.iter().find(|f| f.name == WEIGHTS_FILE)?;
    let meta = std::fs::metadata(dir.join(WEIGHTS_FILE)).ok()?;
    let modified = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    (meta.len() == recorded.size && modified == u128::from(recorded.modified_unix_nanos))
        .then(|| recorded.sha256.clone())
}
