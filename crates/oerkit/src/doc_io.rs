//! Shared plumbing of the document commands: expanding FILE|DIR arguments, loading with the chosen
//! format and segmentation, and mapping input files to output paths under `--out`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use oerkit_document::format::walk;
use oerkit_document::segment::{segment, SegmentMode};
use oerkit_document::{detect_format, Document, FormatKind};

/// How `--segment` splits units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Segmentation {
    Sentences,
    Paragraphs,
}

impl From<Segmentation> for SegmentMode {
    fn from(s: Segmentation) -> Self {
        match s {
            Segmentation::Sentences => SegmentMode::Sentences,
            Segmentation::Paragraphs => SegmentMode::Paragraphs,
        }
    }
}

/// One input file and where it sits relative to the argument it came from.
#[derive(Debug, Clone)]
pub struct InputFile {
    pub path: PathBuf,
    /// Path relative to the folder argument (the file name for a file argument).
    pub relative: PathBuf,
    /// The folder argument it was found under, if any (licence files are looked up to there).
    pub root: Option<PathBuf>,
}

/// Expands FILE|DIR arguments into files, in a stable order.
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<InputFile>> {
    let mut out = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input)
            .with_context(|| format!("{}: no such file or folder", input.display()))?;
        if meta.is_dir() {
            for path in walk(input)? {
                let relative = path.strip_prefix(input).unwrap_or(&path).to_path_buf();
                out.push(InputFile {
                    path,
                    relative,
                    root: Some(input.clone()),
                });
            }
        } else {
            let relative = PathBuf::from(input.file_name().unwrap_or(input.as_os_str()));
            out.push(InputFile {
                path: input.clone(),
                relative,
                root: None,
            });
        }
    }
    Ok(out)
}

/// Whether oerkit knows how to read `path` (by name or content) — other files are copied as they are.
pub fn is_translatable(path: &Path, format: Option<FormatKind>) -> bool {
    if format.is_some() {
        return true;
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if is_license_file(&name) {
        return false;
    }
    // Detection needs only the head of the file; a large course file is not read whole here.
    let mut head_bytes = Vec::with_capacity(4096);
    if let Ok(f) = std::fs::File::open(path) {
        use std::io::Read;
        let _ = f.take(4096).read_to_end(&mut head_bytes);
    }
    if head_bytes.contains(&0) {
        return false;
    }
    let head = String::from_utf8_lossy(&head_bytes);
    detect_format(path, &head).is_some()
}

/// Licence texts are legal documents: they are copied, never machine-translated.
pub fn is_license_file(lower_name: &str) -> bool {
    let stem = lower_name.split('.').next().unwrap_or("");
    matches!(stem, "license" | "licence" | "copying")
}

/// Loads and segments a document. Sentence rules follow `lang`, else the language the file states,
/// else English.
pub fn load_document(
    path: &Path,
    format: Option<FormatKind>,
    seg: Segmentation,
    lang: Option<&str>,
) -> Result<Document> {
    let doc = oerkit_document::load(path, format)?;
    let lang = lang
        .map(str::to_string)
        .or_else(|| doc.meta.language.clone())
        .unwrap_or_else(|| "en".into());
    Ok(segment(doc, seg.into(), &lang))
}
