//! `oerkit-gguf`: runs quantized instruction LLMs stored as GGUF files, on candle, on the CPU.
//!
//! It owns everything between a `.gguf` file and generated text: the tokenizer and chat template
//! rebuilt from the file's metadata (matching llama.cpp), the transformer forward pass for the
//! supported architectures (llama, qwen2, gemma3) with a batched KV cache, and the decoding loop
//! (greedy, seeded sampling or Hugging Face-style beam search, stop tokens and strings, token limits).
//! It depends on candle, `oerkit-qmatmul` (the batched quantized kernel) and small helpers only; model catalogs and fetching live in `oerkit-models`,
//! which hands this crate a path.

pub mod beam;
pub mod chat;
mod engine;
pub mod error;
pub mod meta;
pub mod model;
pub mod tokenizer;

pub use chat::{ChatMessage, ChatTemplate, TemplateSource};
pub use engine::{Generation, GenerationConfig, GgufModel, LoadOptions, StopReason};
pub use error::{Error, Result};
pub use model::{Architecture, WeightFormat};
pub use tokenizer::{TokenType, Tokenizer};
