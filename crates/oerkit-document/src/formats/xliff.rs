//! Xliff: being written (see the document-layer issue). Until then reading fails clearly.

use crate::document::Document;
use crate::error::ParseError;
use crate::format::{Format, FormatKind};

pub struct Xliff;

impl Format for Xliff {
    fn kind(&self) -> FormatKind {
        FormatKind::Xliff
    }

    fn read(&self, _input: &str) -> Result<Document, ParseError> {
        Err(ParseError {
            line: 1,
            column: 1,
            message: "this format is not supported yet".into(),
        })
    }
}
