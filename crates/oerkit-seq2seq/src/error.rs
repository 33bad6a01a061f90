//! The crate's error type: every variant names the file it is about where there is one.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Seq2SeqError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON at line {}, column {}: {source}", source.line(), source.column())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A file that exists but does not hold what a checkpoint needs.
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{0}")]
    Other(String),
}

impl Seq2SeqError {
    pub fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = Seq2SeqError> = std::result::Result<T, E>;

/// Reads a whole file, naming it on failure.
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Seq2SeqError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads and parses a JSON file, naming it (and the line/column) on failure.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    let bytes = read_file(path)?;
    serde_json::from_slice(&bytes).map_err(|source| Seq2SeqError::Json {
        path: path.to_path_buf(),
        source,
    })
}
