//! The generic writer: raw pieces as they were, each unit as its translation with the markup put back.
//! A unit whose translation equals its source is written as its original bytes, so an identity
//! "translation" returns the file byte for byte. Nothing is written when any unit's placeholders break.

use std::path::Path;

use crate::document::{Document, Piece};
use crate::error::DocError;
use crate::placeholder::{render, PlaceholderIssue};

/// The final text of each unit, by unit index; `None` keeps the source.
#[derive(Debug, Clone, Default)]
pub struct Translations {
    pub texts: Vec<Option<String>>,
}

impl Translations {
    /// The identity translation: every unit keeps its source text.
    pub fn identity(doc: &Document) -> Self {
        Translations {
            texts: vec![None; doc.units.len()],
        }
    }

    /// Translations from one text per unit.
    pub fn from_texts(texts: Vec<String>) -> Self {
        Translations {
            texts: texts.into_iter().map(Some).collect(),
        }
    }

    fn get(&self, i: usize) -> Option<&str> {
        self.texts.get(i).and_then(|t| t.as_deref())
    }
}

/// How to write a document.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Replaces the language the file states (`Piece::Language`).
    pub target_language: Option<String>,
    /// The attribution notice, inserted where the format allows.
    pub attribution: Option<String>,
    /// Render every unit from its text even when unchanged (tests the renderer; not byte-exact for
    /// formats whose escaping has several spellings, e.g. `&#39;` and `'`).
    pub render_unchanged: bool,
}

/// Writes `doc` with `translations`. `path` only names the file in errors.
pub fn write_document(
    doc: &Document,
    translations: &Translations,
    options: &WriteOptions,
    path: &Path,
) -> Result<String, DocError> {
    let mut rendered: Vec<Option<String>> = vec![None; doc.units.len()];
    let mut broken: Vec<(String, Vec<PlaceholderIssue>)> = Vec::new();
    for (i, unit) in doc.units.iter().enumerate() {
        let text = translations.get(i).unwrap_or(&unit.text);
        if text == unit.text && !options.render_unchanged {
            continue;
        }
        match render(&unit.placeholders, unit.escape, text) {
            Ok(s) => rendered[i] = Some(s),
            Err(issues) => broken.push((unit.id.clone(), issues)),
        }
    }
    if !broken.is_empty() {
        return Err(DocError::BrokenUnits {
            path: path.to_path_buf(),
            units: broken,
        });
    }
    let mut out = String::with_capacity(doc.pieces.iter().map(piece_len).sum::<usize>() + 64);
    let writer = Writer {
        doc,
        rendered: &rendered,
        options,
        path,
    };
    for piece in &doc.pieces {
        writer.piece(piece, &mut out)?;
    }
    Ok(out)
}

struct Writer<'a> {
    doc: &'a Document,
    /// The rendered text of each changed unit; `None`: unchanged, write its raw bytes.
    rendered: &'a [Option<String>],
    options: &'a WriteOptions,
    path: &'a Path,
}

impl Writer<'_> {
    fn unit_text(&self, i: usize) -> &str {
        self.rendered[i]
            .as_deref()
            .unwrap_or(&self.doc.units[i].raw)
    }

    fn piece(&self, piece: &Piece, out: &mut String) -> Result<(), DocError> {
        match piece {
            Piece::Raw(s) => out.push_str(s),
            Piece::Unit(i) => out.push_str(self.unit_text(*i)),
            Piece::Segmented { raw, parts } => {
                let unchanged = parts
                    .iter()
                    .all(|p| !matches!(p, Piece::Unit(i) if self.rendered[*i].is_some()));
                if unchanged {
                    out.push_str(raw);
                } else {
                    for part in parts {
                        self.piece(part, out)?;
                    }
                }
            }
            Piece::Language(code) => {
                out.push_str(self.options.target_language.as_deref().unwrap_or(code))
            }
            Piece::Attribution => {
                if let Some(notice) = &self.options.attribution {
                    if let Some(block) = self.doc.format.format().attribution(notice) {
                        out.push_str(&block);
                    }
                }
            }
            Piece::Custom { kind, raw, units } => {
                let texts: Vec<String> = units
                    .iter()
                    .map(|&i| self.unit_text(i).to_string())
                    .collect();
                let s = self
                    .doc
                    .format
                    .format()
                    .write_custom(kind, raw, &texts, self.options.target_language.as_deref())
                    .map_err(|message| DocError::Write {
                        path: self.path.to_path_buf(),
                        message,
                    })?;
                out.push_str(&s);
            }
        }
        Ok(())
    }
}

fn piece_len(p: &Piece) -> usize {
    match p {
        Piece::Raw(s) => s.len(),
        Piece::Segmented { raw, .. } | Piece::Custom { raw, .. } => raw.len(),
        _ => 16,
    }
}

/// Writes `contents` to `path` atomically: a temp file in the same folder, then a rename, so a reader
/// never sees half a file and a crash leaves the old file (or none) in place.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), DocError> {
    use std::io::Write;
    let io = |source| DocError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(source) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(source));
    }
    Ok(())
}
