//! Error types. Every message names the file (and line where there is one) and what to do.

use std::path::PathBuf;

/// Loading or querying a catalog failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(
        "cannot read model catalog {path}: {source} (check the --catalog / OERKIT_CATALOG path)"
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: invalid model catalog: {message}")]
    Parse {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}:{line}: invalid model catalog entry: {message}")]
    Invalid {
        path: String,
        line: usize,
        message: String,
    },
    #[error("unknown model id `{id}`; known ids: {known} (see `oerkit models list`, or add the model to a catalog file with --catalog)")]
    UnknownId { id: String, known: String },
}

/// One source that was tried and why it failed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceFailure {
    pub source: String,
    pub reason: String,
}

impl std::fmt::Display for SourceFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.source, self.reason)
    }
}

fn list_failures(failures: &[SourceFailure]) -> String {
    failures
        .iter()
        .enumerate()
        .map(|(i, failure)| format!("\n  {}. {failure}", i + 1))
        .collect()
}

/// Fetching a model into the cache failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no user cache directory is known on this system; set OERKIT_MODELS to a writable directory")]
    NoCacheDir,
    #[error(
        "{path}: {source} (check that the model cache directory is writable, or set OERKIT_MODELS)"
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("model `{id}` has no sources in the catalog; add a [[model.sources]] entry")]
    NoSources { id: String },
    #[error("could not fetch model `{id}`; every source failed:{}\nFix one of these (network, pip, OERKIT_PIP, a local copy) or point --model at a local file or directory.", list_failures(.failures))]
    AllSourcesFailed {
        id: String,
        failures: Vec<SourceFailure>,
    },
}

/// Re-hashing a cached model found a problem.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("model `{id}` is not in the cache {dir}; run `oerkit models fetch {id}`")]
    NotCached { id: String, dir: PathBuf },
    #[error("{path}: file is missing from the cached model; run `oerkit models fetch {id}` again")]
    Missing { id: String, path: PathBuf },
    #[error("{path}: size {actual} bytes, expected {expected}; the file is truncated or replaced. The cache entry was invalidated: run `oerkit models fetch {id}`")]
    SizeMismatch {
        id: String,
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("{path}: sha256 {actual}, expected {expected}; the file is corrupt or tampered with. The cache entry was invalidated: run `oerkit models fetch {id}`")]
    ShaMismatch {
        id: String,
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A user-given model path could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{path}: no such model file or directory (give a .gguf file, a model directory, or a catalog id)")]
    NotFound { path: PathBuf },
    #[error("{path}: not a recognised model: {reason}")]
    Unrecognised { path: PathBuf, reason: String },
    #[error("{path}: holds several .gguf files ({candidates}); give the file itself")]
    Ambiguous { path: PathBuf, candidates: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
