//! Choosing and opening the engine behind `translate` and `summarize`: a catalog id (fetched on first
//! use), a local model path, or the catalog's default for the language pair.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oerkit_gguf::{ChatMessage as GgufMessage, GenerationConfig, GgufModel, LoadOptions};
use oerkit_models::{Catalog, Format, ModelStore, Progress, ResolvedModel, Task};
use oerkit_translate::apertium::{ApertiumConfig, ApertiumEngine};
use oerkit_translate::llm::{ChatMessage, ChatModel, ChatReply, LlmTranslator};
use oerkit_translate::{EngineError, EngineInfo, PromptSet, TranslationEngine};
use serde_json::json;

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct EngineChoice {
    pub model: Option<String>,
    pub catalog: Option<PathBuf>,
    pub prompts: Option<PathBuf>,
    pub source_lang: Option<String>,
    pub target_lang: String,
    pub batch: usize,
    pub beam: usize,
    pub max_tokens: Option<usize>,
    /// CPU threads for the model (`None`: all cores).
    pub threads: Option<usize>,
    /// Weights of checkpoint-directory models (OPUS-MT): float32 or Q8_0.
    pub precision: Precision,
}

/// `--precision`: how checkpoint-directory models (OPUS-MT/Marian) hold their weights. GGUF files
/// are quantized already and keep their own types.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Precision {
    /// Float32 weights, as published.
    #[default]
    F32,
    /// Q8_0 blocks (int8 weights, one scale per 32) with the batched integer kernel: about a
    /// quarter of the memory and faster on CPUs; outputs may differ slightly from float32.
    Q8,
}

/// `--threads t`: candle's matrix products split their work by RAYON_NUM_THREADS and run on rayon's
/// global pool, so both are set (before any model thread exists); engines with their own pool (GGUF)
/// get `t` through [`EngineChoice::threads`].
pub fn limit_threads(t: usize) {
    std::env::set_var("RAYON_NUM_THREADS", t.to_string());
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(t)
        .build_global();
}

/// Resolves the model files for `task`, fetching a catalog model on first use.
pub fn resolve_model(choice: &EngineChoice, task: Task) -> Result<(ResolvedModel, Option<String>)> {
    if let Some(m) = &choice.model {
        let path = Path::new(m);
        if path.exists() {
            let resolved = oerkit_models::resolve_local(path)?;
            return Ok((resolved, None));
        }
    }
    let catalog = Catalog::load(choice.catalog.as_deref())?;
    let store = ModelStore::from_env()?;
    let entry = match &choice.model {
        Some(id) => catalog.get(id)?.clone(),
        None => {
            let runnable = |e: &oerkit_models::ModelEntry| e.format == Format::Gguf;
            let tgt = Some(choice.target_lang.as_str()).filter(|t| !t.is_empty());
            match catalog.default_model_for(
                &store,
                task,
                choice.source_lang.as_deref(),
                tgt,
                runnable,
            ) {
                Some(c) => {
                    tracing::info!(model = %c.entry.id, cached = c.cached, "default model");
                    c.entry
                }
                None => bail!(
                    "no model in the catalog can do {} here; pass --model",
                    task.as_str()
                ),
            }
        }
    };
    if !entry.tasks.contains(&task) {
        bail!(
            "model '{}' cannot {}; its tasks are: {:?}",
            entry.id,
            task.as_str(),
            entry.tasks
        );
    }
    if !store.is_cached(&entry) {
        eprintln!(
            "fetching model '{}' into {} (first use)",
            entry.id,
            store.root().display()
        );
    }
    let resolved = store.ensure(&entry, &Progress::stderr())?;
    let sha = entry.files.first().and_then(|f| f.sha256.clone());
    Ok((resolved, sha))
}

/// Opens a chat LLM (GGUF) for `task`.
pub fn open_chat_model(choice: &EngineChoice, task: Task) -> Result<GgufChat> {
    let (resolved, sha) = resolve_model(choice, task)?;
    if resolved.format != Format::Gguf {
        bail!(
            "model '{}' is a {:?} model; this command runs GGUF instruction models (e.g. smollm2-135m-instruct)",
            resolved.id,
            resolved.format
        );
    }
    let file = resolved.primary_file().to_path_buf();
    let sha = match sha {
        Some(s) => s,
        None => {
            oerkit_models::sha256_file(&file)
                .with_context(|| format!("{}: cannot hash", file.display()))?
                .1
        }
    };
    if choice.precision != Precision::F32 {
        tracing::warn!(
            "--precision applies to checkpoint directories; a GGUF file keeps its own quantization"
        );
    }
    let model = GgufModel::load(
        &file,
        &LoadOptions {
            threads: choice.threads,
            ..LoadOptions::default()
        },
    )?;
    let config = GenerationConfig {
        batch_size: choice.batch.max(1),
        num_beams: choice.beam.max(1),
        ..GenerationConfig::default()
    };
    Ok(GgufChat {
        model,
        id: resolved.id,
        sha256: sha,
        config,
        max_tokens: choice.max_tokens,
    })
}

/// Opens the translation engine the user chose.
pub fn open_translation_engine(choice: &EngineChoice) -> Result<Box<dyn TranslationEngine>> {
    if let Some(dir) = seq2seq_checkpoint(choice)? {
        return open_seq2seq(&dir, choice);
    }
    if let Some(pair) = choice
        .model
        .as_deref()
        .and_then(|m| m.strip_prefix(APERTIUM_PREFIX))
    {
        return open_apertium(pair, choice);
    }
    let chat = open_chat_model(choice, Task::Translate)?;
    let prompts = load_prompts(choice.prompts.as_deref())?;
    Ok(Box::new(LlmTranslator::new(chat, prompts, choice.batch)))
}

/// `--model apertium:PAIR` (e.g. `apertium:eng-spa`): an installed Apertium pair.
pub const APERTIUM_PREFIX: &str = "apertium:";

/// Opens an Apertium pair; `$OERKIT_APERTIUM` names another `apertium` program (default: the one on PATH).
fn open_apertium(pair: &str, choice: &EngineChoice) -> Result<Box<dyn TranslationEngine>> {
    if choice.beam > 1 {
        tracing::warn!("--beam {} is ignored: Apertium is rule-based", choice.beam);
    }
    let config = ApertiumConfig {
        program: std::env::var_os("OERKIT_APERTIUM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("apertium")),
        data_dir: None,
    };
    let engine = ApertiumEngine::open(pair, config)
        .with_context(|| format!("--model {APERTIUM_PREFIX}{pair}"))?;
    Ok(Box::new(engine))
}

/// An encoder-decoder checkpoint directory for `--model`: a local directory with a `config.json`, or a
/// catalog entry in Hugging Face directory format (fetched on first use). `None`: not one of those.
fn seq2seq_checkpoint(choice: &EngineChoice) -> Result<Option<PathBuf>> {
    let Some(model) = choice.model.as_deref() else {
        return Ok(None);
    };
    let path = Path::new(model);
    if path.exists() {
        let is_checkpoint = path.is_dir() && path.join("config.json").is_file();
        return Ok(is_checkpoint.then(|| path.to_path_buf()));
    }
    let catalog = Catalog::load(choice.catalog.as_deref())?;
    match catalog.get(model) {
        Ok(entry) if entry.format == Format::Safetensors => {
            let (resolved, _) = resolve_model(choice, Task::Translate)?;
            Ok(Some(resolved.dir))
        }
        _ => Ok(None),
    }
}

/// Opens an OPUS-MT/Marian (or T5) checkpoint directory; `--beam`, `--batch` and `--max-tokens` apply.
fn open_seq2seq(dir: &Path, choice: &EngineChoice) -> Result<Box<dyn TranslationEngine>> {
    let opts = oerkit_seq2seq::Seq2SeqOptions {
        num_beams: Some(choice.beam.max(1)),
        max_new_tokens: choice.max_tokens,
        batch_size: choice.batch.max(1),
        precision: match choice.precision {
            Precision::F32 => oerkit_seq2seq::marian::Precision::F32,
            Precision::Q8 => oerkit_seq2seq::marian::Precision::Q8,
        },
    };
    oerkit_seq2seq::open_checkpoint(dir, &opts)
        .with_context(|| format!("--model {}", dir.display()))
}

pub fn load_prompts(path: Option<&Path>) -> Result<PromptSet> {
    Ok(match path {
        Some(p) => PromptSet::with_file(p)?,
        None => PromptSet::shipped(),
    })
}

/// A GGUF model as a [`ChatModel`].
pub struct GgufChat {
    model: GgufModel,
    id: String,
    sha256: String,
    config: GenerationConfig,
    max_tokens: Option<usize>,
}

impl ChatModel for GgufChat {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            engine: "gguf".into(),
            model: self.id.clone(),
            model_sha256: Some(self.sha256.clone()),
            decoding: json!({
                "strategy": if self.config.num_beams > 1 {
                    "beam"
                } else if self.config.temperature == 0.0 {
                    "greedy"
                } else {
                    "sampling"
                },
                "num_beams": self.config.num_beams,
                "temperature": self.config.temperature,
                "top_p": self.config.top_p,
                "seed": self.config.seed,
                "batch_size": self.config.batch_size,
                "max_new_tokens": self.max_tokens,
            }),
            prompt: None,
        }
    }

    fn chat(
        &mut self,
        conversations: &[Vec<ChatMessage>],
        max_new_tokens: usize,
        stop: &[String],
    ) -> Result<Vec<ChatReply>, EngineError> {
        let prompts = conversations
            .iter()
            .map(|conv| {
                let messages: Vec<GgufMessage> = conv
                    .iter()
                    .map(|m| GgufMessage::new(m.role.clone(), m.content.clone()))
                    .collect();
                self.model.render_chat(&messages)
            })
            .collect::<Result<Vec<String>, _>>()
            .map_err(|e| EngineError::Failed(e.to_string()))?;
        let config = GenerationConfig {
            max_new_tokens: self.max_tokens.unwrap_or(max_new_tokens),
            stop_strings: stop.to_vec(),
            ..self.config.clone()
        };
        let generations = self
            .model
            .generate(&prompts, &config)
            .map_err(|e| EngineError::Failed(e.to_string()))?;
        Ok(generations
            .into_iter()
            .map(|g| ChatReply {
                tokens: g.token_ids.len(),
                text: g.text,
            })
            .collect())
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.model.encode_prompt(text).len()
    }

    fn context_length(&self) -> Option<usize> {
        Some(self.model.context_length())
    }

    fn count_prompt_tokens(&self, conversation: &[ChatMessage]) -> usize {
        let messages: Vec<GgufMessage> = conversation
            .iter()
            .map(|m| GgufMessage::new(m.role.clone(), m.content.clone()))
            .collect();
        match self.model.render_chat(&messages) {
            Ok(prompt) => self.model.encode_prompt(&prompt).len(),
            // `chat` reports a template error itself; count the texts meanwhile
            Err(_) => conversation
                .iter()
                .map(|m| self.count_tokens(&m.content))
                .sum(),
        }
    }
}
