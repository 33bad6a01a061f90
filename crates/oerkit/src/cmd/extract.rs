//! `oerkit extract FILE`: the translatable units of a file as JSONL on stdout.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use oerkit_document::FormatKind;
use serde_json::json;

use crate::doc_io::{load_document, Segmentation};

#[derive(clap::Args)]
pub struct ExtractArgs {
    /// The file to read.
    pub file: PathBuf,
    /// Format (markdown, html, cnxml, po, xliff, h5p, text, lines); detected from name and content if absent.
    #[arg(long)]
    pub format: Option<FormatKind>,
    /// Split units into sentences or keep whole paragraphs.
    #[arg(long, value_enum, default_value = "sentences")]
    pub segment: Segmentation,
    /// Source language, for sentence rules (abbreviations); default: what the file says, else `en`.
    #[arg(long)]
    pub lang: Option<String>,
    /// Print the document's metadata as the first line (`{"metadata": …}`).
    #[arg(long)]
    pub metadata: bool,
}

pub fn run(args: ExtractArgs) -> Result<ExitCode> {
    let doc = load_document(&args.file, args.format, args.segment, args.lang.as_deref())?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if args.metadata {
        writeln!(
            out,
            "{}",
            json!({ "metadata": doc.meta, "format": doc.format })
        )?;
    }
    for unit in &doc.units {
        writeln!(out, "{}", serde_json::to_string(unit)?)?;
    }
    out.flush()?;
    eprintln!(
        "{}: {} units ({})",
        args.file.display(),
        doc.units.len(),
        doc.format
    );
    Ok(ExitCode::SUCCESS)
}
