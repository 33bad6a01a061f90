//! `oerkit-review`: the review queue. Machine suggestions go in with their full provenance; reviewers accept,
//! edit, reject or comment; every action is kept in an append-only event log, approved segments feed a
//! translation memory, and the corrections come out as research data (JSONL) and memories (TMX).
//!
//! Owns: the review database (SQLite behind the [`ReviewStore`] trait), the crowd decision rule
//! ([`crowd`]), translation-memory matching, MLQE-PE style triple import and the JSONL/TMX exports.
//! May depend on: `oerkit-metrics` (HTER) and `oerkit-document` (placeholder tokens and their validation).
//! Never on models, engines or the CLI.

pub mod crowd;
pub mod error;
pub mod export;
pub mod hter;
pub mod import;
pub mod model;
pub mod placeholders;
pub mod schema;
pub mod similarity;
pub mod sqlite;
pub mod store;
pub mod xliff;

pub use crowd::{Agreement, UnitStatus};
pub use error::{Result, ReviewError};
pub use model::*;
pub use sqlite::SqliteStore;
pub use store::{Added, ReviewStore, DEFAULT_TM_THRESHOLD};
