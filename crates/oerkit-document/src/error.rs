//! Errors of the document layer. Every variant a user can meet names the file, and the line and
//! column where there is one, and says what to do.

use std::path::PathBuf;

use crate::placeholder::PlaceholderIssue;

/// A syntax error inside a format reader, located in the input text (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ParseError {
    /// An error at byte offset `offset` of `input`.
    pub fn at(input: &str, offset: usize, message: impl Into<String>) -> Self {
        let (line, column) = line_col(input, offset);
        ParseError {
            line,
            column,
            message: message.into(),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(input: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(input.len());
    while !input.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &input[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: invalid UTF-8; convert the file to UTF-8 (e.g. with iconv) and retry", path.display())]
    InvalidUtf8 {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    #[error("{}: looks like a binary file (NUL byte at offset {offset}); oerkit reads text formats only", path.display())]
    Binary { path: PathBuf, offset: usize },
    #[error("{}: the file is empty: there is nothing to translate", path.display())]
    Empty { path: PathBuf },
    #[error("{}: the file is {size} bytes, over the {limit}-byte limit; split it or raise the limit (OERKIT_MAX_FILE_BYTES)", path.display())]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{}: unknown format{}; pass --format (markdown, html, cnxml, po, xliff, h5p, text, lines)", path.display(), hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    UnknownFormat { path: PathBuf, hint: Option<String> },
    #[error("{}:{}: {} file is malformed: {}", path.display(), source.line, format, source.message)]
    Parse {
        path: PathBuf,
        format: &'static str,
        #[source]
        source: ParseError,
    },
    #[error("{}", broken_units_message(path, units))]
    BrokenUnits {
        path: PathBuf,
        units: Vec<(String, Vec<PlaceholderIssue>)>,
    },
    #[error("{}: {message}", path.display())]
    Write { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    License { path: PathBuf, message: String },
}

fn broken_units_message(
    path: &std::path::Path,
    units: &[(String, Vec<PlaceholderIssue>)],
) -> String {
    let mut msg = format!(
        "{}: {} translated unit(s) lost, duplicated or invented placeholders; nothing was written:",
        path.display(),
        units.len()
    );
    for (id, issues) in units.iter().take(20) {
        let list: Vec<String> = issues.iter().map(ToString::to_string).collect();
        msg.push_str(&format!("\n  unit {id}: {}", list.join("; ")));
    }
    if units.len() > 20 {
        msg.push_str(&format!("\n  … and {} more", units.len() - 20));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncé\nx", 0), (1, 1));
        assert_eq!(line_col("ab\ncé\nx", 3), (2, 1));
        assert_eq!(line_col("ab\ncé\nx", 7), (3, 1));
        assert_eq!(line_col("ab\ncé\nx", 5), (2, 2));
    }
}
