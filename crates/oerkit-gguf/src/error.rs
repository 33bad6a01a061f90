//! The one error type of this crate. Every variant says what went wrong and what to do about it.

use std::path::PathBuf;

/// Errors of the GGUF engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model file could not be opened or read.
    #[error("cannot read model file {path}: {source} (check the path, or fetch the model again with `oerkit models fetch <id>`)")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a complete, valid GGUF file.
    #[error("{path} is not a valid GGUF file: {reason} (the file is probably truncated or corrupt: delete it and fetch the model again)")]
    Corrupt { path: PathBuf, reason: String },
    /// A metadata key is missing or has the wrong type.
    #[error("GGUF metadata key `{key}`: {problem}")]
    Metadata { key: String, problem: String },
    /// Any error above, in the context of one model file.
    #[error("{path}: {source}")]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<Error>,
    },
    /// The model's architecture is not implemented by this engine.
    #[error("architecture `{0}` is not supported by the oerkit GGUF engine (supported: llama, qwen2, gemma3); pick another model")]
    UnsupportedArchitecture(String),
    /// The tokenizer described in the metadata is not implemented.
    #[error("tokenizer `{0}` is not supported (supported: gpt2 byte-level BPE with pre-tokenizers default/gpt2/smollm/qwen2/llama-bpe, and llama SentencePiece)")]
    UnsupportedTokenizer(String),
    /// A prompt does not fit in the model's context window.
    #[error("prompt {index} has {prompt_tokens} tokens, which leaves no room in the model's context of {context_length} tokens (max_new_tokens = {max_new_tokens}); split the text into shorter pieces")]
    ContextOverflow {
        index: usize,
        prompt_tokens: usize,
        max_new_tokens: usize,
        context_length: usize,
    },
    /// A prompt tokenized to nothing.
    #[error("prompt {0} is empty after tokenization; give the model some text")]
    EmptyPrompt(usize),
    /// The chat template could not be compiled or rendered.
    #[error("chat template: {0}")]
    Template(String),
    /// Invalid generation settings.
    #[error("invalid generation settings: {0}")]
    Config(String),
    /// A weight matrix the batched kernel cannot take.
    #[error("weight matrix: {0}")]
    Weights(#[from] oerkit_qmatmul::Error),
    /// An error from the tensor library.
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn metadata(key: &str, problem: impl Into<String>) -> Self {
        Error::Metadata {
            key: key.to_string(),
            problem: problem.into(),
        }
    }

    pub fn in_file(self, path: &std::path::Path) -> Self {
        Error::InFile {
            path: path.to_path_buf(),
            source: Box::new(self),
        }
    }
}
