//! `oerkit summarize FILE`: an abstract of a resource for catalogue entries, in its own language or
//! another, by a local instruction model.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use oerkit_document::placeholder::{spans, Span};
use oerkit_document::{Document, FormatKind};
use oerkit_models::Task;
use oerkit_translate::llm::{summarize, ChatModel};
use oerkit_translate::PromptSet;
use serde_json::json;

use crate::doc_io::{load_document, Segmentation};
use crate::engines::{load_prompts, open_chat_model, EngineChoice};

#[derive(clap::Args)]
pub struct SummarizeArgs {
    /// The resource to summarize.
    pub file: PathBuf,
    /// Language of the abstract (default: the resource's).
    #[arg(long)]
    pub to: Option<String>,
    /// Source language (default: what the file says, else en).
    #[arg(long)]
    pub from: Option<String>,
    /// Most words in the abstract.
    #[arg(long, default_value_t = 80)]
    pub words: usize,
    /// Model: a catalog id, a .gguf file (default: the best available).
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long)]
    pub format: Option<FormatKind>,
    /// Your own model catalog.
    #[arg(long, env = "OERKIT_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Your own prompt file.
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// Print JSON with the provenance instead of the bare abstract.
    #[arg(long)]
    pub json: bool,
}

/// Budget of source tokens given to the model: small models lose the thread beyond this.
const SOURCE_TOKEN_BUDGET: usize = 1536;

pub fn run(args: SummarizeArgs) -> Result<ExitCode> {
    let doc = load_document(
        &args.file,
        args.format,
        Segmentation::Paragraphs,
        args.from.as_deref(),
    )?;
    let source_lang = args
        .from
        .clone()
        .or_else(|| doc.meta.language.clone())
        .unwrap_or_else(|| "en".into());
    let target_lang = args.to.clone().unwrap_or_else(|| source_lang.clone());
    let choice = EngineChoice {
        model: args.model.clone(),
        catalog: args.catalog.clone(),
        prompts: args.prompts.clone(),
        source_lang: Some(source_lang.clone()),
        target_lang: target_lang.clone(),
        batch: 1,
        ..EngineChoice::default()
    };
    let mut model = open_chat_model(&choice, Task::Summarize)?;
    let prompts = load_prompts(args.prompts.as_deref())?;
    let start = std::time::Instant::now();
    let (summary, prompt) = abstract_of(
        &mut model,
        &prompts,
        &doc,
        &args.file,
        &source_lang,
        &target_lang,
        args.words,
    )?;
    if args.json {
        let info = model.info();
        println!(
            "{}",
            json!({
                "file": args.file, "abstract": summary, "language": target_lang, "source_language": source_lang,
                "model": info.model, "model_sha256": info.model_sha256, "prompt": prompt,
                "decoding": info.decoding, "seconds": start.elapsed().as_secs_f64(),
            })
        );
    } else {
        println!("{summary}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The abstract of a loaded document and the prompt used: the units' plain text in order (markup
/// tokens dropped) up to the model's source budget, summarized in `target_lang`. `oerkit tag
/// --summary` uses this too.
pub fn abstract_of<M: ChatModel>(
    model: &mut M,
    prompts: &PromptSet,
    doc: &Document,
    file: &Path,
    source_lang: &str,
    target_lang: &str,
    words: usize,
) -> Result<(String, String)> {
    let mut text = String::new();
    for unit in &doc.units {
        let plain: String = spans(&unit.text)
            .into_iter()
            .filter_map(|s| if let Span::Text(t) = s { Some(t) } else { None })
            .collect();
        let plain = plain.split_whitespace().collect::<Vec<_>>().join(" ");
        if plain.is_empty() {
            continue;
        }
        if model.count_tokens(&text) + model.count_tokens(&plain) > SOURCE_TOKEN_BUDGET {
            break;
        }
        text.push_str(&plain);
        text.push('\n');
    }
    if text.trim().is_empty() {
        bail!("{}: the resource has no text to summarize", file.display());
    }
    Ok(summarize(
        model,
        prompts,
        &text,
        source_lang,
        target_lang,
        words,
    )?)
}
