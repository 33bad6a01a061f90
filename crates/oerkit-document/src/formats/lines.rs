//! `lines`: one unit per line, written back line-aligned. The format of MT test sets (and of
//! `oerkit eval`): every non-blank line is a unit, even one of digits only, so outputs stay aligned.

use crate::document::{Document, Unit};
use crate::error::ParseError;
use crate::format::{Format, FormatKind};
use crate::placeholder::{Escape, TextBuilder};

pub struct Lines;

impl Format for Lines {
    fn kind(&self) -> FormatKind {
        FormatKind::Lines
    }

    fn read(&self, input: &str) -> Result<Document, ParseError> {
        let mut doc = Document::new(FormatKind::Lines);
        for (n, line) in input.split_inclusive('\n').enumerate() {
            let body = line.strip_suffix('\n').unwrap_or(line);
            let body = body.strip_suffix('\r').unwrap_or(body);
            let content = body.trim();
            if content.is_empty() {
                doc.push_raw(line);
                continue;
            }
            let lead = &body[..body.len() - body.trim_start().len()];
            doc.push_raw(lead);
            let mut b = TextBuilder::new();
            b.text(content);
            let mut unit = Unit::new(b.text, content, format!("line {}", n + 1), Escape::None);
            unit.placeholders = b.placeholders;
            unit.key = Some(format!("L{}", n + 1));
            doc.push_unit(unit);
            doc.push_raw(&line[lead.len() + content.len()..]);
        }
        Ok(doc)
    }
}

/// A line's translation must stay on one line, or the output would lose its alignment.
pub fn single_line(text: &str) -> String {
    text.split(['\n', '\r'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::{write_document, Translations, WriteOptions};
    use std::path::Path;

    #[test]
    fn one_unit_per_nonblank_line_and_identity() {
        let input = "Hello world.\n\n  42 \r\nlast";
        let mut doc = Lines.read(input).unwrap();
        doc.assign_ids();
        assert_eq!(doc.source_texts(), vec!["Hello world.", "42", "last"]);
        let out = write_document(
            &doc,
            &Translations::identity(&doc),
            &WriteOptions::default(),
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(out, input);
        let tr = Translations::from_texts(vec!["Hola mundo.".into(), "42".into(), "último".into()]);
        let out = write_document(&doc, &tr, &WriteOptions::default(), Path::new("x")).unwrap();
        assert_eq!(out, "Hola mundo.\n\n  42 \r\núltimo");
    }

    #[test]
    fn single_line_joins() {
        assert_eq!(single_line("a\n b\r\nc"), "a b c");
    }
}
