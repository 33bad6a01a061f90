//! `oerkit pseudo FILE|DIR --out DIR`: pseudo-translates a course (or writes it back unchanged with
//! `--identity`) into the same tree of files — the localisation check anyone can run before spending
//! model time: if pseudo output is valid, real output will be too.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use oerkit_document::pseudo::pseudo_translate;
use oerkit_document::write::write_atomic;
use oerkit_document::{write_document, FormatKind, Translations, WriteOptions};
use serde_json::json;

use crate::doc_io::{expand_inputs, is_translatable, load_document, Segmentation};
use crate::licensing::{check_adaptation, Adaptation};

#[derive(clap::Args)]
pub struct PseudoArgs {
    /// Files or folders to process.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output folder; the input tree is recreated under it.
    #[arg(long)]
    pub out: PathBuf,
    /// Write every unit back unchanged: the round-trip check (output must equal input byte for byte).
    #[arg(long)]
    pub identity: bool,
    /// Format of every input (default: detected per file).
    #[arg(long)]
    pub format: Option<FormatKind>,
    /// Split units into sentences or keep whole paragraphs.
    #[arg(long, value_enum, default_value = "sentences")]
    pub segment: Segmentation,
    /// The licence (SPDX id) when the files do not state one.
    #[arg(long)]
    pub license: Option<String>,
}

pub fn run(args: PseudoArgs) -> Result<ExitCode> {
    let inputs = expand_inputs(&args.inputs)?;
    if inputs.iter().any(|i| i.path.starts_with(&args.out)) {
        bail!(
            "{}: the output folder is inside an input; choose another --out",
            args.out.display()
        );
    }
    // Pseudo-translation is an adaptation like any translation: the licence must allow it, and the
    // output carries the attribution. The identity round trip changes nothing and needs neither.
    let adaptation = if args.identity {
        None
    } else {
        Some(check_adaptation(
            &inputs,
            args.format,
            args.license.as_deref(),
            "oerkit pseudo-translation",
            "qps",
        )?)
    };
    let mut failures = 0usize;
    let mut written = 0usize;
    for input in &inputs {
        let out_path = args.out.join(&input.relative);
        let result = if is_translatable(&input.path, args.format) {
            pseudo_file(&input.path, &out_path, &args, adaptation.as_ref())
        } else {
            copy_file(&input.path, &out_path)
                .map(|_| json!({ "file": input.path, "out": out_path, "copied": true }))
        };
        match result {
            Ok(line) => {
                written += 1;
                println!("{line}");
            }
            Err(err) => {
                failures += 1;
                eprintln!("error: {err:#}");
            }
        }
    }
    eprintln!(
        "{written} file(s) written under {}, {failures} failed",
        args.out.display()
    );
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn pseudo_file(
    path: &std::path::Path,
    out_path: &std::path::Path,
    args: &PseudoArgs,
    adaptation: Option<&Adaptation>,
) -> Result<serde_json::Value> {
    let doc = load_document(path, args.format, args.segment, None)?;
    let translations = if args.identity {
        Translations::identity(&doc)
    } else {
        Translations::from_texts(
            doc.units
                .iter()
                .map(|u| pseudo_translate(&u.text))
                .collect(),
        )
    };
    let options = WriteOptions {
        target_language: None,
        attribution: adaptation.map(|a| a.notice_for(&doc.meta)),
        render_unchanged: false,
    };
    let text = write_document(&doc, &translations, &options, path)?;
    write_atomic(out_path, text.as_bytes())?;
    Ok(json!({ "file": path, "out": out_path, "format": doc.format, "units": doc.units.len() }))
}

fn copy_file(from: &std::path::Path, to: &std::path::Path) -> Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("{}: cannot read", from.display()))?;
    write_atomic(to, &bytes)?;
    Ok(())
}
