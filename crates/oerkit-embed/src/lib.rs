//! `oerkit-embed` owns sentence embeddings: it loads a BERT-family sentence-transformers model
//! (`config.json`, `tokenizer.json`, `model.safetensors`) and turns texts into L2-normalised
//! vectors as sentence-transformers does: WordPiece with truncation at the model's
//! `max_seq_length`, mean pooling of the last hidden state over the attention mask, then
//! normalisation. CPU, f32, batched with padding (texts sorted by length to cut padding).
//!
//! May depend on: candle (core, nn, transformers' BERT), tokenizers, serde/serde_json, and
//! oerkit-models (to find a cached catalog model). Must not depend on the document, translate,
//! review or CLI crates.

mod config;
mod embedder;
mod error;

pub use embedder::{cosine, SentenceEmbedder, DEFAULT_BATCH_SIZE};
pub use error::EmbedError;
