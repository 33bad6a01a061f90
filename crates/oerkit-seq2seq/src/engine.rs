//! [`Seq2SeqTranslator`]: a checkpoint directory as an `oerkit_translate::TranslationEngine`, and
//! [`open_checkpoint`], which picks the architecture from `config.json`'s `model_type`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use oerkit_document::placeholder::{has_translatable_text, spans, Span};
use oerkit_translate::{
    EngineError, EngineInfo, TranslateOutput, TranslateRequest, TranslationEngine,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{read_json, Result, Seq2SeqError};
use crate::generate::{generate, GenerateOptions, Seq2SeqModel};
use crate::marian::{MarianCheckpoint, Precision};

/// How to run a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Seq2SeqOptions {
    /// Beam size; `None` = the checkpoint's `generation_config.json` (`num_beams`), else greedy.
    pub num_beams: Option<usize>,
    /// Most tokens generated per segment; `None` = up to the model's positions.
    pub max_new_tokens: Option<usize>,
    /// Segments encoded and decoded together.
    pub batch_size: usize,
    pub precision: Precision,
}

impl Default for Seq2SeqOptions {
    fn default() -> Self {
        Self {
            num_beams: None,
            max_new_tokens: None,
            batch_size: 16,
            precision: Precision::F32,
        }
    }
}

/// Turns a source segment into ids and generated ids into text.
pub trait Seq2SeqTokenizer {
    /// Model input ids for one segment (with EOS, truncated to the model's limit).
    fn encode(&self, text: &str, target_lang: &str) -> Result<Vec<u32>>;
    /// Text of generated ids, special tokens dropped.
    fn decode(&self, ids: &[u32]) -> String;
}

impl Seq2SeqTokenizer for crate::marian::MarianTokenizer {
    fn encode(&self, text: &str, _target_lang: &str) -> Result<Vec<u32>> {
        crate::marian::MarianTokenizer::encode(self, text)
    }
    fn decode(&self, ids: &[u32]) -> String {
        crate::marian::MarianTokenizer::decode(self, ids)
    }
}

/// An encoder-decoder checkpoint as a translation engine.
pub struct Seq2SeqTranslator {
    engine_name: String,
    model_path: PathBuf,
    weights_sha256: String,
    model: Box<dyn Seq2SeqModel + Send>,
    tokenizer: Box<dyn Seq2SeqTokenizer + Send>,
    generate: GenerateOptions,
    batch_size: usize,
    precision: Precision,
    device: Device,
}

impl Seq2SeqTranslator {
    /// Wraps a loaded model; `engine_name` is `marian` or `t5`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        engine_name: &str,
        model_path: &Path,
        weights_file: &Path,
        model: Box<dyn Seq2SeqModel + Send>,
        tokenizer: Box<dyn Seq2SeqTokenizer + Send>,
        generate: GenerateOptions,
        opts: &Seq2SeqOptions,
    ) -> Result<Self> {
        Ok(Self {
            engine_name: engine_name.to_string(),
            model_path: model_path.to_path_buf(),
            weights_sha256: sha256_file(weights_file)?,
            model,
            tokenizer,
            generate,
            batch_size: opts.batch_size.max(1),
            precision: opts.precision,
            device: Device::Cpu,
        })
    }

    /// Translates plain texts (no placeholders), in batches; returns text and generated token count.
    pub fn translate_texts(
        &mut self,
        texts: &[&str],
        target_lang: &str,
    ) -> Result<Vec<(String, usize)>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.batch_size) {
            let ids = chunk
                .iter()
                .map(|t| self.tokenizer.encode(t, target_lang))
                .collect::<Result<Vec<_>>>()?;
            let hyps = generate(self.model.as_mut(), &ids, &self.generate, &self.device)?;
            out.extend(
                hyps.into_iter()
                    .map(|h| (self.tokenizer.decode(&h.tokens), h.tokens.len())),
            );
        }
        Ok(out)
    }
}

impl TranslationEngine for Seq2SeqTranslator {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            engine: self.engine_name.clone(),
            model: self.model_path.display().to_string(),
            model_sha256: Some(self.weights_sha256.clone()),
            decoding: serde_json::json!({
                "num_beams": self.generate.num_beams,
                "length_penalty": self.generate.length_penalty,
                "early_stopping": self.generate.early_stopping,
                "max_new_tokens": self.generate.max_new_tokens,
                "min_new_tokens": self.generate.min_new_tokens,
                "batch": self.batch_size,
                "precision": match self.precision { Precision::F32 => "f32", Precision::Q8 => "q8_0" },
            }),
            prompt: None,
        }
    }

    /// These models cannot copy placeholder tokens such as `<g1>` (they are not in the vocabulary and
    /// would come out as `<unk>` or worse), so the text runs between placeholders are translated on their
    /// own and the tokens re-inserted in source order — the same reassembly the pipeline's piecewise
    /// repair does, applied up front so every output is valid by construction and no call is wasted.
    fn translate(
        &mut self,
        batch: &[TranslateRequest],
    ) -> std::result::Result<Vec<TranslateOutput>, EngineError> {
        let start = Instant::now();
        // Every translatable run of every request, flattened into one list of texts.
        let mut runs: Vec<&str> = Vec::new();
        let mut layouts: Vec<Vec<Piece<'_>>> = Vec::with_capacity(batch.len());
        for req in batch {
            let mut layout = Vec::new();
            for span in spans(&req.text) {
                match span {
                    Span::Text(t) if has_translatable_text(t) => {
                        layout.push(Piece::Run(runs.len(), t));
                        runs.push(t.trim());
                    }
                    Span::Text(t) => layout.push(Piece::Keep(t)),
                    Span::Token { text, .. } => layout.push(Piece::Keep(text)),
                }
            }
            layouts.push(layout);
        }
        let target = batch.first().map_or("", |r| r.target_lang.as_str());
        let translated = self
            .translate_texts(&runs, target)
            .map_err(|e| EngineError::Failed(e.to_string()))?;
        let total_tokens: usize = translated.iter().map(|(_, n)| n).sum::<usize>().max(1);
        let seconds = start.elapsed().as_secs_f64();
        Ok(layouts
            .into_iter()
            .map(|layout| {
                let mut text = String::new();
                let mut tokens = 0;
                for piece in layout {
                    match piece {
                        Piece::Keep(t) => text.push_str(t),
                        Piece::Run(k, original) => {
                            // Keep the run's own outer spaces: they separate it from the markup.
                            let lead = &original[..original.len() - original.trim_start().len()];
                            let trail = &original[original.trim_end().len()..];
                            text.push_str(lead);
                            text.push_str(&translated[k].0);
                            text.push_str(trail);
                            tokens += translated[k].1;
                        }
                    }
                }
                TranslateOutput {
                    text,
                    tokens: Some(tokens),
                    seconds: seconds * tokens as f64 / total_tokens as f64,
                }
            })
            .collect())
    }

    fn preferred_batch(&self) -> usize {
        self.batch_size
    }
}

enum Piece<'a> {
    /// Index into the translated runs, and the run's source text.
    Run(usize, &'a str),
    Keep(&'a str),
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|source| Seq2SeqError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|source| Seq2SeqError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// Architectures [`open_checkpoint`] knows.
pub const SUPPORTED_MODEL_TYPES: &[&str] = &["marian", "t5", "mt5"];

/// Opens a Hugging Face checkpoint directory as a translation engine, by `config.json`'s `model_type`.
pub fn open_checkpoint(dir: &Path, opts: &Seq2SeqOptions) -> Result<Box<dyn TranslationEngine>> {
    #[derive(Deserialize)]
    struct ModelType {
        model_type: Option<String>,
    }
    let config_path = dir.join("config.json");
    if !config_path.is_file() {
        return Err(Seq2SeqError::invalid(
            &config_path,
            "missing: a model directory needs the config.json of its Hugging Face checkpoint",
        ));
    }
    let kind: ModelType = read_json(&config_path)?;
    match kind.model_type.as_deref() {
        Some("marian") => Ok(Box::new(open_marian(dir, opts)?)),
        Some("t5" | "mt5") => Ok(Box::new(crate::t5::open_t5(dir, opts)?)),
        other => Err(Seq2SeqError::invalid(
            &config_path,
            format!(
                "model_type {} is not supported; supported: {}",
                other.map_or("(none)".to_string(), |t| format!("\"{t}\"")),
                SUPPORTED_MODEL_TYPES.join(", ")
            ),
        )),
    }
}

/// Opens an OPUS-MT/Marian directory as a [`Seq2SeqTranslator`].
pub fn open_marian(dir: &Path, opts: &Seq2SeqOptions) -> Result<Seq2SeqTranslator> {
    let device = Device::Cpu;
    let ckpt = MarianCheckpoint::load(dir, opts.precision, &device)?;
    let positions = ckpt.config.max_position_embeddings;
    let generate = GenerateOptions {
        num_beams: opts
            .num_beams
            .or(ckpt.generation.num_beams)
            .unwrap_or(1)
            .max(1),
        length_penalty: ckpt.generation.length_penalty.unwrap_or(1.0),
        early_stopping: false,
        max_new_tokens: opts
            .max_new_tokens
            .unwrap_or_else(|| {
                ckpt.generation
                    .max_length
                    .unwrap_or(positions)
                    .saturating_sub(1)
            })
            .max(1),
        min_new_tokens: 0,
    };
    Seq2SeqTranslator::new(
        "marian",
        dir,
        &ckpt.weights_file,
        Box::new(ckpt.model),
        Box::new(ckpt.tokenizer),
        generate,
        opts,
    )
}
