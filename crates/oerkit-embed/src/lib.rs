//! `oerkit-embed` owns sentence embeddings: it loads a BERT-family sentence-transformers model
//! (`config.json`, `tokenizer.json`, `model.safetensors`) and turns texts into L2-normalised
//! vectors as sentence-transformers does: WordPiece with truncation at the model's
//! `max_seq_length`, mean pooling of the last hidden state over the attention mask, then
//! normalisation. CPU, f32, batched: the BERT forward is our own (`bert.rs`: packed tokens
//! without padding, fused QKV, attention per sequence over its real length).
//!
//! May depend on: candle (core, nn, transformers' BERT config), gemm, rayon, tokenizers,
//! serde/serde_json, and
//! oerkit-models (to find a cached catalog model). Must not depend on the document, translate,
//! review or CLI crates.

mod bert;
mod config;
mod embedder;
mod error;

pub use embedder::{cosine, SentenceEmbedder, DEFAULT_BATCH_SIZE};
pub use error::EmbedError;
