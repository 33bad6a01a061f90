//! Errors of the review store. Every message names the database (or input file) and what to do.

use std::path::PathBuf;

/// Anything that can go wrong in the review store.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("{path}: not an oerkit review database (it is a SQLite database of another program); pass --db with the path of a review database, or of a new file to create one")]
    Foreign { path: String },
    #[error("{path}: not a readable SQLite database (corrupt or another kind of file: {source}); restore it from a backup or pass --db with another path")]
    Corrupt {
        path: String,
        source: rusqlite::Error,
    },
    #[error("{path}: this review database has schema version {found}, newer than the {supported} this oerkit understands; upgrade oerkit to open it (nothing was changed)")]
    TooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("{path}: database error: {source}")]
    Database {
        path: String,
        source: rusqlite::Error,
    },
    #[error("no job {0:?} in this database; `oerkit review status` lists the jobs")]
    NoJob(String),
    #[error("a job named {0:?} already exists; choose another name")]
    JobExists(String),
    #[error("no unit {0} in this database; `oerkit review next` shows the next unit to review")]
    NoUnit(i64),
    #[error("unit {unit}: {problems}")]
    Placeholders {
        unit: i64,
        problems: Box<crate::placeholders::PlaceholderProblems>,
    },
    #[error("unit {0} has no suggestion to accept; use `oerkit review edit {0} --text ...` to write the translation")]
    NothingToAccept(i64),
    #[error("unit {unit}: {message}")]
    BadReview { unit: i64, message: String },
    #[error("{path}:{line}: {message}")]
    Input {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}; nothing was imported")]
    ForeignXliff { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl ReviewError {
    /// Errors from SQLite carry the database path only once they leave the store.
    pub(crate) fn at(self, db_path: &str) -> Self {
        match self {
            ReviewError::Database { path, source } if path.is_empty() => classify(db_path, source),
            other => other,
        }
    }
}

fn classify(path: &str, source: rusqlite::Error) -> ReviewError {
    use rusqlite::ErrorCode;
    let path = path.to_string();
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
            ReviewError::Corrupt { path, source }
        }
        _ => ReviewError::Database { path, source },
    }
}

impl From<rusqlite::Error> for ReviewError {
    fn from(source: rusqlite::Error) -> Self {
        ReviewError::Database {
            path: String::new(),
            source,
        }
    }
}

pub type Result<T, E = ReviewError> = std::result::Result<T, E>;
