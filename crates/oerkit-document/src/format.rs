//! The seam between the document model and each file format: the [`Format`] trait, format detection
//! (extension, then content) and loading a file with every check a user's file deserves.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::document::{Document, Piece};
use crate::error::{line_col, DocError, ParseError};
use crate::formats;

/// The formats oerkit reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatKind {
    Markdown,
    Html,
    Cnxml,
    Po,
    Xliff,
    H5p,
    Text,
    Lines,
}

impl FormatKind {
    pub const ALL: [FormatKind; 8] = [
        FormatKind::Markdown,
        FormatKind::Html,
        FormatKind::Cnxml,
        FormatKind::Po,
        FormatKind::Xliff,
        FormatKind::H5p,
        FormatKind::Text,
        FormatKind::Lines,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FormatKind::Markdown => "markdown",
            FormatKind::Html => "html",
            FormatKind::Cnxml => "cnxml",
            FormatKind::Po => "po",
            FormatKind::Xliff => "xliff",
            FormatKind::H5p => "h5p",
            FormatKind::Text => "text",
            FormatKind::Lines => "lines",
        }
    }

    /// Bilingual formats keep the source and write the translation beside it (PO msgstr, XLIFF target).
    pub fn is_bilingual(self) -> bool {
        matches!(self, FormatKind::Po | FormatKind::Xliff)
    }

    /// The reader and writer of this format.
    pub fn format(self) -> &'static dyn Format {
        formats::get(self)
    }
}

impl fmt::Display for FormatKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FormatKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        let kind = match lower.as_str() {
            "markdown" | "md" => FormatKind::Markdown,
            "html" | "htm" => FormatKind::Html,
            "cnxml" => FormatKind::Cnxml,
            "po" | "pot" | "gettext" => FormatKind::Po,
            "xliff" | "xlf" => FormatKind::Xliff,
            "h5p" | "json" => FormatKind::H5p,
            "text" | "txt" => FormatKind::Text,
            "lines" => FormatKind::Lines,
            _ => {
                return Err(format!(
                    "unknown format '{s}'; expected one of: {}",
                    FormatKind::ALL.map(FormatKind::name).join(", ")
                ))
            }
        };
        Ok(kind)
    }
}

/// One file format: how to read it into a [`Document`] and the format-specific parts of writing it.
/// The generic writer (`crate::write`) handles raw pieces and units; a format only adds what is its own.
pub trait Format: Sync {
    fn kind(&self) -> FormatKind;

    /// Parses the whole input. Errors carry the line and column in `input`.
    fn read(&self, input: &str) -> Result<Document, ParseError>;

    /// The attribution notice as this format embeds it at a [`Piece::Attribution`] (e.g. an HTML
    /// comment or footer, a PO comment). `None`: the format has no place for one.
    fn attribution(&self, notice: &str) -> Option<String> {
        let _ = notice;
        None
    }

    /// Renders a [`Piece::Custom`] piece. `texts[i]` is the final text of `units[i]` of that piece, already
    /// rendered with its markup and escaped. The default writes the original bytes.
    fn write_custom(
        &self,
        kind: &str,
        raw: &str,
        texts: &[String],
        target_language: Option<&str>,
    ) -> Result<String, String> {
        let _ = (kind, texts, target_language);
        Ok(raw.to_string())
    }
}

/// Largest file read whole; beyond it oerkit refuses clearly instead of using unbounded memory.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

fn max_file_bytes() -> u64 {
    std::env::var("OERKIT_MAX_FILE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_FILE_BYTES)
}

/// Picks a format from the file name, then from the content.
pub fn detect_format(path: &Path, content: &str) -> Option<FormatKind> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let by_ext = match ext.as_deref() {
        Some("md" | "markdown" | "mdown" | "rmd") => Some(FormatKind::Markdown),
        Some("html" | "htm" | "xhtml") => Some(FormatKind::Html),
        Some("cnxml") => Some(FormatKind::Cnxml),
        Some("po" | "pot") => Some(FormatKind::Po),
        Some("xlf" | "xliff" | "xlif") => Some(FormatKind::Xliff),
        Some("json") => Some(FormatKind::H5p),
        Some("txt") => Some(FormatKind::Text),
        _ => None,
    };
    by_ext.or_else(|| sniff(content))
}

fn sniff(content: &str) -> Option<FormatKind> {
    let head: String = content
        .trim_start_matches('\u{feff}')
        .chars()
        .take(2048)
        .collect();
    let trimmed = head.trim_start();
    if trimmed.starts_with('<') {
        if head.contains("<xliff") {
            return Some(FormatKind::Xliff);
        }
        // CNXML modules and the collxml tables of contents of their books.
        if head.contains("cnx.rice.edu/cnxml") || head.contains("cnx.rice.edu/collxml") {
            return Some(FormatKind::Cnxml);
        }
        let lower = head.to_ascii_lowercase();
        if lower.contains("<html") || lower.contains("<!doctype html") {
            return Some(FormatKind::Html);
        }
        return None;
    }
    if trimmed.starts_with('{') {
        return Some(FormatKind::H5p);
    }
    if head.lines().any(|l| l.starts_with("msgid \"")) {
        return Some(FormatKind::Po);
    }
    if trimmed.starts_with("---\n") || trimmed.starts_with('#') {
        return Some(FormatKind::Markdown);
    }
    None
}

/// Reads a file as text with the checks every reader needs: size limit, binary, UTF-8, empty.
pub fn read_text(path: &Path) -> Result<String, DocError> {
    let io = |source| DocError::Io {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    let limit = max_file_bytes();
    if size > limit {
        return Err(DocError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    text_from_bytes(path, bytes)
}

/// Checks bytes for emptiness, binary content and UTF-8.
pub fn text_from_bytes(path: &Path, bytes: Vec<u8>) -> Result<String, DocError> {
    if bytes.is_empty() {
        return Err(DocError::Empty {
            path: path.to_path_buf(),
        });
    }
    if let Some(offset) = bytes.iter().take(8192).position(|&b| b == 0) {
        return Err(DocError::Binary {
            path: path.to_path_buf(),
            offset,
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let prefix = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
        let (line, column) = line_col(&prefix, prefix.len());
        DocError::InvalidUtf8 {
            path: path.to_path_buf(),
            line,
            column,
        }
    })
}

/// Loads a file: reads it, detects (or takes) its format, parses it and assigns unit ids.
pub fn load(path: &Path, format: Option<FormatKind>) -> Result<Document, DocError> {
    let text = read_text(path)?;
    load_str(path, &text, format)
}

/// Parses text that came from `path` (used for error messages and format detection).
pub fn load_str(path: &Path, text: &str, format: Option<FormatKind>) -> Result<Document, DocError> {
    if text.trim().is_empty() {
        return Err(DocError::Empty {
            path: path.to_path_buf(),
        });
    }
    let kind = match format.or_else(|| detect_format(path, text)) {
        Some(kind) => kind,
        None => {
            return Err(DocError::UnknownFormat {
                path: path.to_path_buf(),
                hint: path
                    .extension()
                    .map(|e| format!("extension .{} is not known", e.to_string_lossy())),
            })
        }
    };
    let (bom, body) = match text.strip_prefix('\u{feff}') {
        Some(rest) => ("\u{feff}", rest),
        None => ("", text),
    };
    let mut doc = kind.format().read(body).map_err(|source| DocError::Parse {
        path: path.to_path_buf(),
        format: kind.name(),
        // Positions stay as in the body: a BOM is not a character a user sees.
        source,
    })?;
    if !bom.is_empty() {
        doc.pieces.insert(0, Piece::Raw(bom.to_string()));
    }
    doc.assign_ids();
    Ok(doc)
}

/// Paths of the files under `root` that oerkit can read, sorted, skipping hidden entries.
pub fn walk(root: &Path) -> Result<Vec<PathBuf>, DocError> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| DocError::Io {
            path: dir.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| DocError::Io {
                path: dir.clone(),
                source,
            })?;
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_extension_then_content() {
        assert_eq!(
            detect_format(Path::new("a.md"), ""),
            Some(FormatKind::Markdown)
        );
        assert_eq!(
            detect_format(Path::new("m.cnxml"), ""),
            Some(FormatKind::Cnxml)
        );
        assert_eq!(
            detect_format(
                Path::new("x"),
                "<?xml version=\"1.0\"?>\n<xliff version=\"1.2\">"
            ),
            Some(FormatKind::Xliff)
        );
        assert_eq!(
            detect_format(Path::new("x"), "# Title\n"),
            Some(FormatKind::Markdown)
        );
        assert_eq!(
            detect_format(Path::new("x"), "msgid \"\"\nmsgstr \"\"\n"),
            Some(FormatKind::Po)
        );
        assert_eq!(detect_format(Path::new("x.bin"), "\u{1}\u{2}"), None);
    }

    #[test]
    fn bad_bytes_are_clear_errors() {
        let p = Path::new("f.md");
        assert!(matches!(
            text_from_bytes(p, vec![]),
            Err(DocError::Empty { .. })
        ));
        assert!(matches!(
            text_from_bytes(p, b"ab\0cd".to_vec()),
            Err(DocError::Binary { offset: 2, .. })
        ));
        match text_from_bytes(p, b"ok\nab\xffcd".to_vec()) {
            Err(DocError::InvalidUtf8 {
                line: 2, column: 3, ..
            }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn format_names_round_trip() {
        for k in FormatKind::ALL {
            assert_eq!(k.name().parse::<FormatKind>(), Ok(k));
        }
        assert!("docx".parse::<FormatKind>().is_err());
    }
}
