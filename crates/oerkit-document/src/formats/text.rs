//! Plain text: one unit per paragraph (blocks separated by blank lines). Line breaks inside a paragraph
//! are part of its text.

use crate::document::{Document, Unit};
use crate::error::ParseError;
use crate::format::{Format, FormatKind};
use crate::placeholder::{has_translatable_text, Escape, TextBuilder};

pub struct Text;

impl Format for Text {
    fn kind(&self) -> FormatKind {
        FormatKind::Text
    }

    fn read(&self, input: &str) -> Result<Document, ParseError> {
        let mut doc = Document::new(FormatKind::Text);
        let mut para_start: Option<usize> = None;
        let mut pos = 0;
        let flush = |doc: &mut Document, start: usize, end: usize| {
            let block = &input[start..end];
            let content = block.trim();
            let lead = block.len() - block.trim_start().len();
            doc.push_raw(&block[..lead]);
            if has_translatable_text(content) {
                let mut b = TextBuilder::new();
                b.text(content);
                let mut unit = Unit::new(b.text, content, "paragraph", Escape::None);
                unit.placeholders = b.placeholders;
                doc.push_unit(unit);
            } else {
                doc.push_raw(content);
            }
            doc.push_raw(&block[lead + content.len()..]);
        };
        for line in input.split_inclusive('\n') {
            if line.trim().is_empty() {
                if let Some(start) = para_start.take() {
                    flush(&mut doc, start, pos);
                }
                doc.push_raw(line);
            } else if para_start.is_none() {
                para_start = Some(pos);
            }
            pos += line.len();
        }
        if let Some(start) = para_start {
            flush(&mut doc, start, pos);
        }
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::{write_document, Translations, WriteOptions};
    use std::path::Path;

    #[test]
    fn paragraphs_are_units_and_identity_holds() {
        let input = "First para\nstill first.\n\n\nSecond.\n---\n";
        let mut doc = Text.read(input).unwrap();
        doc.assign_ids();
        assert_eq!(
            doc.source_texts(),
            vec!["First para\nstill first.", "Second.\n---"]
        );
        let out = write_document(
            &doc,
            &Translations::identity(&doc),
            &WriteOptions::default(),
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(out, input);
    }
}
