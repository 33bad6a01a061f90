//! Encoder-decoder translation models on candle, loaded from Hugging Face checkpoint directories
//! by Rust alone: SentencePiece tokenizers built from `.spm`/`spiece.model` files ([`sentencepiece`]),
//! batched greedy and beam search matching Hugging Face `generate` ([`generate`]), OPUS-MT/Marian
//! ([`marian`]), and the [`engine`] adapter to `oerkit_translate::TranslationEngine`.
//!
//! Depends on candle, `tokenizers`, `oerkit-translate` (the engine seam) and `oerkit-document`
//! (placeholder spans); only the CLI and the benches depend on it.

mod attention;
mod cpu;
pub mod engine;
pub mod error;
pub mod generate;
pub mod marian;
pub mod sentencepiece;
pub mod t5;

/// The device type callers pass to [`generate()`] (CPU here).
pub use candle_core::Device;
pub use engine::{open_checkpoint, Seq2SeqOptions, Seq2SeqTranslator};
pub use error::{Result, Seq2SeqError};
pub use generate::{generate, GenerateOptions, Hypothesis, Seq2SeqConfig, Seq2SeqModel};
