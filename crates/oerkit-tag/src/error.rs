//! Errors of the tagging library: each names the file (and line where there is one) and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TagError {
    #[error("{}: the file is empty; there is nothing to describe", path.display())]
    Empty { path: PathBuf },
    #[error("{}: the document has no text (only markup, code or metadata); there is nothing to describe", path.display())]
    NoText { path: PathBuf },
    #[error("{}: cannot read the taxonomy: {source}", path.display())]
    TaxonomyIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: unknown taxonomy format (the extension {extension:?}); use a .toml, .json or .csv file as described in `oerkit tag --help`", path.display())]
    TaxonomyFormat { path: PathBuf, extension: String },
    #[error("{}: {message}", path.display())]
    TaxonomyContent { path: PathBuf, message: String },
    #[error("embedding {what} failed: {source}")]
    Embedding {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{}: {message}", path.display())]
    Vocabulary { path: PathBuf, message: String },
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
