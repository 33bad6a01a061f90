//! The document layer: every supported OER format is read into a [`Document`] — its metadata plus an
//! ordered list of translatable [`Unit`]s, interleaved with the untouched bytes around them — and written
//! back from it. Inline markup inside a unit becomes numbered placeholders (`<g1>…</g1>`, `<x2/>`), so an
//! engine sees plain text and the markup is restored exactly on the way out.
//!
//! The promise every format keeps (tested on every file of `shared/corpora/oer`): concatenating the raw
//! pieces and each unit's own text gives the input back byte for byte.
//!
//! This crate depends on no model or storage crate; everything else in oerkit depends on it.

pub mod document;
pub mod error;
pub mod format;
pub mod formats;
pub mod license;
pub mod placeholder;
pub mod pseudo;
pub mod segment;
pub mod write;

pub use document::{Document, Metadata, Piece, Unit};
pub use error::{DocError, ParseError};
pub use format::{detect_format, load, load_str, FormatKind};
pub use placeholder::{Placeholder, PlaceholderIssue, TagKind};
pub use write::{write_document, Translations, WriteOptions};
