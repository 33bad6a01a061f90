//! Every way loading a model or embedding text can fail, each naming the file and what to do.

use std::path::PathBuf;

/// The model folder layout the engine reads, quoted in the errors.
const LAYOUT: &str = "a sentence-embedding model folder holds config.json, tokenizer.json and \
                      model.safetensors (e.g. `oerkit models fetch all-minilm-l6-v2`)";

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("{path}: no such model folder; {LAYOUT}")]
    ModelDirNotFound { path: PathBuf },
    #[error("{path}: not found; {LAYOUT}")]
    MissingFile { path: PathBuf },
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}:{line}:{column}: invalid {what}: {source}; fetch the model again or fix the file"
    )]
    Json {
        path: PathBuf,
        what: &'static str,
        line: usize,
        column: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{path}: model type `{found}` is not supported; oerkit-embed runs BERT-family encoders \
         (config.json `model_type: \"bert\"`), e.g. all-minilm-l6-v2"
    )]
    UnsupportedArchitecture { path: PathBuf, found: String },
    #[error(
        "{path}: pooling `{found}` is not supported; oerkit-embed mean-pools over the attention \
         mask (`pooling_mode_mean_tokens: true`)"
    )]
    UnsupportedPooling { path: PathBuf, found: String },
    #[error("{path}: {reason}")]
    InvalidConfig { path: PathBuf, reason: String },
    #[error(
        "{path}: cannot load the tokenizer: {message}; expected a Hugging Face tokenizer.json"
    )]
    Tokenizer { path: PathBuf, message: String },
    #[error("tokenizing the input failed: {message}")]
    Tokenize { message: String },
    #[error(
        "{path}: cannot load BERT weights: {source}; check the file with `oerkit models verify` \
         or fetch the model again"
    )]
    Weights {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },
    #[error(
        "word-piece id {id} is outside the model's vocabulary of {vocab_size}; tokenizer.json \
         does not belong to model.safetensors: fetch the model again"
    )]
    UnknownToken { id: u32, vocab_size: usize },
    #[error(
        "a sequence of {length} word pieces exceeds the model's {max_positions} positions; \
         lower max_seq_length in sentence_bert_config.json"
    )]
    SequenceTooLong { length: usize, max_positions: usize },
    #[error("embedding model `{id}`: {source}")]
    Model {
        id: String,
        #[source]
        source: oerkit_models::ModelError,
    },
    #[error(
        "embedding model `{id}` is a {architecture} model; oerkit-embed runs BERT-family \
         encoders (see `oerkit models list` for models with the `embed` task)"
    )]
    NotAnEmbeddingModel { id: String, architecture: String },
}

impl EmbedError {
    pub(crate) fn json(path: PathBuf, what: &'static str, source: serde_json::Error) -> Self {
        Self::Json {
            path,
            what,
            line: source.line(),
            column: source.column(),
            source,
        }
    }
}
