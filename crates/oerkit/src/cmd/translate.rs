//! `oerkit translate FILE|DIR... --to LANG`: a whole course in, the same tree out in another language,
//! with the licence respected, an attribution notice, a provenance sidecar per file, a journal that
//! makes an interrupted run resume, and optionally every segment queued for human review.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use oerkit_document::write::write_atomic;
use oerkit_document::{write_document, Document, FormatKind, WriteOptions};
use oerkit_translate::journal::Journal;
use oerkit_translate::pipeline::{
    translate_document, DocumentTranslation, PipelineOptions, Repair,
};
use serde_json::json;

use crate::doc_io::{expand_inputs, is_translatable, load_document, InputFile, Segmentation};
use crate::engines::{limit_threads, open_translation_engine, EngineChoice, Precision};
use crate::licensing::{check_adaptation, Adaptation};

#[derive(clap::Args)]
pub struct TranslateArgs {
    /// Files or folders to translate.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Target language (e.g. es, fr, de, pt, sw).
    #[arg(long)]
    pub to: String,
    /// Source language (default: what each file says, else en).
    #[arg(long)]
    pub from: Option<String>,
    /// Model: a catalog id, a .gguf file or a model folder (default: the best available for the pair).
    #[arg(long)]
    pub model: Option<String>,
    /// Format of every input (default: detected per file).
    #[arg(long)]
    pub format: Option<FormatKind>,
    /// Output folder; the input tree is recreated under it.
    #[arg(long, default_value = "translated")]
    pub out: PathBuf,
    /// Segments per engine call.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Beam size (engines that support beam search; 1 = greedy).
    #[arg(long, default_value_t = 1)]
    pub beam: usize,
    /// CPU threads for the engine (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Weights of checkpoint-directory models (OPUS-MT): f32 as published, or q8 (int8 blocks,
    /// ~4x less memory, faster on CPUs). GGUF files keep their own quantization.
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: Precision,
    /// Split units into sentences or keep whole paragraphs.
    #[arg(long, value_enum, default_value = "sentences")]
    pub segment: Segmentation,
    /// The licence (SPDX id) when the files do not state one.
    #[arg(long)]
    pub license: Option<String>,
    /// Fill this review-queue database with every machine segment.
    #[arg(long)]
    pub queue: Option<PathBuf>,
    /// Your own model catalog (merged with the shipped one).
    #[arg(long, env = "OERKIT_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Your own prompt file (same shape as models/prompts.toml).
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// Maximum new tokens per segment (LLM engines).
    #[arg(long)]
    pub max_tokens: Option<usize>,
}

pub fn run(args: TranslateArgs) -> Result<ExitCode> {
    if let Some(t) = args.threads {
        limit_threads(t);
    }
    let inputs = expand_inputs(&args.inputs)?;
    if inputs.iter().any(|i| i.path.starts_with(&args.out)) {
        bail!(
            "{}: the output folder is inside an input; choose another --out",
            args.out.display()
        );
    }
    let choice = EngineChoice {
        model: args.model.clone(),
        catalog: args.catalog.clone(),
        prompts: args.prompts.clone(),
        source_lang: args.from.clone(),
        target_lang: args.to.clone(),
        batch: args.batch,
        beam: args.beam,
        max_tokens: args.max_tokens,
        threads: args.threads,
        precision: args.precision,
    };
    // The licence is checked before any model is loaded or file written: an ND work is refused whole.
    let adaptation = check_adaptation(
        &inputs,
        args.format,
        args.license.as_deref(),
        "machine translation",
        &args.to,
    )?;
    let mut engine = open_translation_engine(&choice)?;
    let info = engine.info();
    eprintln!(
        "translating {} file(s) to {} with {} ({})",
        inputs.len(),
        args.to,
        info.model,
        info.engine
    );
    let mut queue = match &args.queue {
        Some(db) => Some(crate::queue::Queue::open(db)?),
        None => None,
    };
    let mut failures = 0;
    for input in &inputs {
        let out_path = args.out.join(&input.relative);
        let result = if is_translatable(&input.path, args.format) {
            translate_file(
                input,
                &out_path,
                &args,
                &adaptation,
                engine.as_mut(),
                queue.as_mut(),
            )
        } else {
            std::fs::read(&input.path)
                .with_context(|| format!("{}: cannot read", input.path.display()))
                .and_then(|b| Ok(write_atomic(&out_path, &b)?))
                .map(|_| json!({ "file": input.path, "out": out_path, "copied": true }))
        };
        match result {
            Ok(line) => println!("{line}"),
            Err(err) => {
                failures += 1;
                eprintln!("error: {err:#}");
            }
        }
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn translate_file(
    input: &InputFile,
    out_path: &Path,
    args: &TranslateArgs,
    adaptation: &Adaptation,
    engine: &mut dyn oerkit_translate::TranslationEngine,
    queue: Option<&mut crate::queue::Queue>,
) -> Result<serde_json::Value> {
    let doc = load_document(&input.path, args.format, args.segment, args.from.as_deref())?;
    let source_lang = args
        .from
        .clone()
        .or_else(|| doc.meta.language.clone())
        .unwrap_or_else(|| "en".into());
    let journal_path = journal_path(&args.out, &input.relative);
    let mut journal = Journal::open(&journal_path)
        .with_context(|| format!("{}: cannot open the journal", journal_path.display()))?;
    if !journal.is_empty() {
        eprintln!(
            "{}: resuming, {} segment(s) already translated",
            input.path.display(),
            journal.len()
        );
    }
    let options = PipelineOptions {
        source_lang: source_lang.clone(),
        target_lang: args.to.clone(),
        batch: args.batch,
    };
    let bar = crate::progress::segments_bar(&input.relative.display().to_string());
    let start = Instant::now();
    let memory = |unit: &oerkit_document::Unit| {
        queue
            .as_deref()
            .and_then(|q| q.exact(&source_lang, &args.to, &unit.text))
    };
    let translated = translate_document(
        &doc,
        &input.path,
        engine,
        &options,
        &memory,
        Some(&mut journal),
        &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let write_options = WriteOptions {
        target_language: Some(args.to.clone()),
        attribution: Some(adaptation.notice_for_translation(
            &doc.meta,
            &source_lang,
            &args.to,
            &translated.engine.model,
        )),
        render_unchanged: false,
    };
    let text = write_document(&doc, &translated.translations, &write_options, &input.path)?;
    write_atomic(out_path, text.as_bytes())?;
    let sidecar = provenance(
        &doc,
        input,
        out_path,
        &translated,
        adaptation,
        &source_lang,
        &args.to,
        seconds,
    )?;
    let sidecar_path = PathBuf::from(format!("{}.oerkit.json", out_path.display()));
    write_atomic(
        &sidecar_path,
        serde_json::to_string_pretty(&sidecar)?.as_bytes(),
    )?;
    // LRMI / schema.org metadata of the translation beside it (what it was translated from, by which
    // model, under which licence), for repositories that harvest JSON-LD.
    let metadata_path = PathBuf::from(format!("{}.jsonld", out_path.display()));
    let metadata = crate::cmd::tag::translation_jsonld(
        out_path,
        args.format,
        &sidecar,
        adaptation.spdx_for(&input.path).as_deref(),
        write_options.attribution.clone().unwrap_or_default(),
    )?;
    write_atomic(
        &metadata_path,
        serde_json::to_string_pretty(&metadata)?.as_bytes(),
    )?;
    if let Some(q) = queue {
        q.add_document(
            &doc,
            &input.path,
            &translated,
            &source_lang,
            &args.to,
            adaptation,
        )?;
    }
    journal
        .finish()
        .with_context(|| format!("{}: cannot remove the journal", journal_path.display()))?;
    let repaired = translated
        .units
        .iter()
        .filter(|u| u.repair != Repair::None)
        .count();
    let segments = translated.units.len();
    Ok(json!({
        "file": input.path, "out": out_path, "format": doc.format, "segments": segments,
        "repaired": repaired, "seconds": seconds, "segments_per_second": segments as f64 / seconds.max(1e-9),
        "provenance": sidecar_path, "metadata": metadata_path,
    }))
}

fn journal_path(out: &Path, relative: &Path) -> PathBuf {
    out.join(".oerkit-journal")
        .join(format!("{}.jsonl", relative.display()))
}

#[allow(clippy::too_many_arguments)]
fn provenance(
    doc: &Document,
    input: &InputFile,
    out_path: &Path,
    t: &DocumentTranslation,
    adaptation: &Adaptation,
    source_lang: &str,
    target_lang: &str,
    seconds: f64,
) -> Result<serde_json::Value> {
    let source_bytes = std::fs::read(&input.path)
        .with_context(|| format!("{}: cannot read", input.path.display()))?;
    Ok(json!({
        "oerkit": env!("CARGO_PKG_VERSION"),
        "source": { "path": input.path, "sha256": crate::util::sha256_hex(&source_bytes), "format": doc.format,
                    "language": source_lang, "metadata": doc.meta },
        "output": { "path": out_path, "language": target_lang },
        "licence": adaptation.spdx_for(&input.path),
        "engine": t.engine,
        "seconds": seconds,
        "segments": t.units,
    }))
}
