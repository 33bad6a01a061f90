//! Markdown: being written (see the document-layer issue). Until then reading fails clearly.

use crate::document::Document;
use crate::error::ParseError;
use crate::format::{Format, FormatKind};

pub struct Markdown;

impl Format for Markdown {
    fn kind(&self) -> FormatKind {
        FormatKind::Markdown
    }

    fn read(&self, _input: &str) -> Result<Document, ParseError> {
        Err(ParseError {
            line: 1,
            column: 1,
            message: "this format is not supported yet".into(),
        })
    }
}
