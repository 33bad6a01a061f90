//! `oerkit tag FILE|DIR...`: describe resources for catalogues and repositories — language, ranked
//! subjects (ISCED-F 2013 or `--taxonomy`), keywords, readability and an educational-level estimate,
//! learning resource type, licence and attribution, optionally an abstract — as our own JSON record
//! (`--json`, the default) or schema.org `LearningResource` JSON-LD (`--jsonld`), one line per file.
//! A file with a translation provenance sidecar (`<file>.oerkit.json`, written by `oerkit translate`)
//! also gets what it was translated from and by which model.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::LazyLock;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use oerkit_document::license::known;
use oerkit_document::FormatKind;
use oerkit_embed::SentenceEmbedder;
use oerkit_models::Task;
use oerkit_tag::jsonld::{learning_resource, TranslationOf};
use oerkit_tag::{describe, Embedder, LanguageDetector, LicenceInfo, TagOptions, Tagger, Taxonomy};
use serde_json::{json, Value};

use crate::doc_io::{expand_inputs, is_translatable, load_document, InputFile, Segmentation};
use crate::engines::{load_prompts, open_chat_model, EngineChoice};

#[derive(clap::Args)]
pub struct TagArgs {
    /// Files or folders to describe (every file oerkit can read; licence files are skipped).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Print oerkit's own JSON record per resource (the default).
    #[arg(long, conflicts_with = "jsonld")]
    pub json: bool,
    /// Print schema.org `LearningResource` JSON-LD (LRMI) per resource instead.
    #[arg(long)]
    pub jsonld: bool,
    /// Your own subject taxonomy instead of ISCED-F 2013, by extension:
    /// .toml (`[taxonomy]` name, url; `[[term]]` code, name, description, parent),
    /// .json (`{"name", "url", "terms": [{"code", "name", "description", "parent"}]}`) or
    /// .csv (header `code,name,description,parent`). Terms without children are ranked.
    #[arg(long)]
    pub taxonomy: Option<PathBuf>,
    /// Format of every input (default: detected per file).
    #[arg(long)]
    pub format: Option<FormatKind>,
    /// Sentence-embedding model: a catalog id or a model folder.
    #[arg(long, default_value = "all-minilm-l6-v2")]
    pub embedding_model: String,
    /// How many subjects to report.
    #[arg(long, default_value_t = 5)]
    pub subjects: usize,
    /// How many keywords to report.
    #[arg(long, default_value_t = 10)]
    pub keywords: usize,
    /// Add an abstract written by a local instruction model (slow: one generation per file).
    #[arg(long)]
    pub summary: bool,
    /// Summarizer model for --summary: a catalog id or a .gguf file (default: the best available).
    #[arg(long, requires = "summary")]
    pub model: Option<String>,
    /// Most words in the abstract.
    #[arg(long, default_value_t = 80, requires = "summary")]
    pub words: usize,
    /// Your own model catalog.
    #[arg(long, env = "OERKIT_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Your own prompt file (for --summary).
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// CPU threads for the models (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// The sentence-embedding model behind the tagger's [`Embedder`] trait.
struct SentenceModel {
    inner: SentenceEmbedder,
    id: String,
}

impl Embedder for SentenceModel {
    fn embed(
        &mut self,
        texts: &[&str],
    ) -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error + Send + Sync>> {
        self.inner.embed(texts).map_err(|e| e.to_string().into())
    }

    fn model_id(&self) -> String {
        self.id.clone()
    }

    fn model_sha256(&self) -> Option<String> {
        self.inner.model_sha256().map(str::to_string)
    }
}

fn open_embedder(spec: &str) -> Result<SentenceModel> {
    let path = Path::new(spec);
    let inner = if path.is_dir() {
        SentenceEmbedder::load(path)
    } else {
        SentenceEmbedder::load_cached(spec)
    }
    .with_context(|| format!("cannot open the embedding model {spec:?}"))?;
    Ok(SentenceModel {
        inner,
        id: spec.to_string(),
    })
}

pub fn run(args: TagArgs) -> Result<ExitCode> {
    if let Some(t) = args.threads {
        crate::engines::limit_threads(t);
    }
    // Everything the user can get wrong is checked before a model is loaded.
    let taxonomy = match &args.taxonomy {
        Some(path) => Taxonomy::load(path)?,
        None => Taxonomy::isced_f_2013(),
    };
    let files: Vec<InputFile> = expand_inputs(&args.inputs)?
        .into_iter()
        .filter(|i| is_translatable(&i.path, args.format))
        .collect();
    if files.is_empty() {
        bail!(
            "{}: no file oerkit can read (Markdown, HTML, CNXML, PO, XLIFF, H5P, text)",
            args.inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut embedder = open_embedder(&args.embedding_model)?;
    let options = TagOptions {
        subjects: args.subjects,
        keywords: args.keywords,
        ..TagOptions::default()
    };
    let tagger = Tagger::new(&mut embedder, taxonomy, options)?;
    let mut summarizer = if args.summary {
        let choice = EngineChoice {
            model: args.model.clone(),
            catalog: args.catalog.clone(),
            prompts: args.prompts.clone(),
            target_lang: "en".into(),
            batch: 1,
            ..EngineChoice::default()
        };
        Some((
            open_chat_model(&choice, Task::Summarize)?,
            load_prompts(args.prompts.as_deref())?,
        ))
    } else {
        None
    };
    let bar = files_bar(files.len());
    let mut failures = 0;
    for input in &files {
        bar.set_message(input.relative.display().to_string());
        let result = tag_file(input, &args, &tagger, &mut embedder, summarizer.as_mut());
        bar.inc(1);
        match result {
            Ok(line) => bar.suspend(|| println!("{line}")),
            Err(err) => {
                failures += 1;
                bar.suspend(|| eprintln!("error: {err:#}"));
            }
        }
    }
    bar.finish_and_clear();
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn files_bar(len: usize) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    let style =
        ProgressStyle::with_template("tagging [{bar:30}] {pos}/{len} files {per_sec} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    bar.set_style(style);
    bar
}

/// The folder a licence file is looked for up to: two levels above the file (a course's `LICENSE` often
/// sits beside `en/episodes/`), or the folder argument when that is higher up.
fn licence_root(input: &InputFile) -> PathBuf {
    let dir = crate::licensing::grandparent_dir(&input.path);
    match &input.root {
        Some(root) if dir.starts_with(root) => root.clone(),
        _ => dir,
    }
}

fn tag_file(
    input: &InputFile,
    args: &TagArgs,
    tagger: &Tagger,
    embedder: &mut SentenceModel,
    summarizer: Option<&mut (crate::engines::GgufChat, oerkit_translate::PromptSet)>,
) -> Result<String> {
    let bytes = std::fs::read(&input.path)
        .with_context(|| format!("{}: cannot read", input.path.display()))?;
    if String::from_utf8_lossy(&bytes).trim().is_empty() {
        bail!(
            "{}: the file is empty; there is nothing to tag",
            input.path.display()
        );
    }
    let doc = load_document(&input.path, args.format, Segmentation::Paragraphs, None)?;
    let mut record = tagger.tag(embedder, &doc, &input.path, &licence_root(input))?;
    if let Some((model, prompts)) = summarizer {
        let lang = record.description.language.code.clone();
        let start = std::time::Instant::now();
        let (text, prompt) = crate::cmd::summarize::abstract_of(
            model,
            prompts,
            &doc,
            &input.path,
            &lang,
            &lang,
            args.words,
        )?;
        use oerkit_translate::llm::ChatModel;
        let info = model.info();
        record.summary = Some(json!({
            "text": text, "model": info.model, "model_sha256": info.model_sha256, "prompt": prompt,
            "seconds": start.elapsed().as_secs_f64(),
        }));
    }
    let translation = translation_from_sidecar(&input.path)?;
    let line = if args.jsonld {
        let summary = record
            .summary
            .as_ref()
            .and_then(|s| s["text"].as_str().map(str::to_string));
        learning_resource(
            &record.description,
            &record.subjects,
            &record.keywords,
            Some(&record.taxonomy),
            summary.as_deref(),
            translation.as_ref(),
        )
    } else {
        let mut v = serde_json::to_value(&record)?;
        if let Some(t) = &translation {
            v["translation_of"] = serde_json::to_value(t)?;
        }
        v
    };
    Ok(serde_json::to_string(&line)?)
}

/// The sidecar `oerkit translate` writes beside each output.
fn sidecar_path(output: &Path) -> PathBuf {
    PathBuf::from(format!("{}.oerkit.json", output.display()))
}

/// What a translated file was made from, read from its provenance sidecar (`None`: no sidecar).
fn translation_from_sidecar(file: &Path) -> Result<Option<TranslationOf>> {
    let path = sidecar_path(file);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let v: Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a valid provenance sidecar; remove it or translate again",
            path.display()
        )
    })?;
    translation_from_provenance(&v)
        .map(Some)
        .with_context(|| format!("{}: not an oerkit provenance sidecar", path.display()))
}

/// [`TranslationOf`] from the provenance record `oerkit translate` writes.
pub fn translation_from_provenance(v: &Value) -> Result<TranslationOf> {
    let s = |x: &Value| x.as_str().map(str::to_string);
    let source = &v["source"];
    let meta = &source["metadata"];
    let source_path = s(&source["path"]).unwrap_or_default();
    Ok(TranslationOf {
        source_title: s(&meta["title"]).unwrap_or_else(|| {
            Path::new(&source_path)
                .file_stem()
                .and_then(|n| n.to_str())
                .unwrap_or("source")
                .to_string()
        }),
        source_language: s(&source["language"]).context("no source.language")?,
        source_sha256: s(&source["sha256"]).context("no source.sha256")?,
        source_url: s(&meta["source_url"]),
        source_authors: meta["authors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        model: s(&v["engine"]["model"]).context("no engine.model")?,
        model_sha256: s(&v["engine"]["model_sha256"]),
        engine: s(&v["engine"]["engine"]).unwrap_or_else(|| "unknown".into()),
        oerkit_version: s(&v["oerkit"]).unwrap_or_else(|| env!("CARGO_PKG_VERSION").into()),
        reviewers: Vec::new(),
    })
}

/// One detector for every translated file of a run (its language models load on first use).
static DETECTOR: LazyLock<LanguageDetector> = LazyLock::new(LanguageDetector::new);

/// The JSON-LD `oerkit translate` writes beside a translated file: the model-free description of the
/// output (language, level, type), the licence of the source, the attribution notice as `creditText`,
/// and the translation provenance. Subjects and keywords need the embedding model: `oerkit tag
/// --jsonld` on the output adds them.
pub fn translation_jsonld(
    output: &Path,
    format: Option<FormatKind>,
    provenance: &Value,
    licence_spdx: Option<&str>,
    credit_text: String,
) -> Result<Value> {
    let doc = oerkit_document::load(output, format)?;
    let root = output.parent().unwrap_or(Path::new("."));
    let mut d = describe(&doc, output, root, &DETECTOR)?;
    let k = licence_spdx.and_then(known);
    d.licence = LicenceInfo {
        spdx: licence_spdx.map(str::to_string),
        name: k.map(|k| k.name.to_string()),
        url: k.map(|k| k.url.to_string()),
        source: None,
    };
    d.credit_text = credit_text;
    let translation = translation_from_provenance(provenance)?;
    Ok(learning_resource(
        &d,
        &[],
        &[],
        None,
        None,
        Some(&translation),
    ))
}
