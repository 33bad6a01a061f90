//! The public face of the crate: load a GGUF file, then generate text for a batch of prompts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::{DType, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use serde::Serialize;

use crate::beam::{self, BeamRows, BeamSettings};
use crate::chat::{ChatMessage, ChatTemplate};
use crate::error::{Error, Result};
use crate::meta;
use crate::model::{Architecture, BatchCache, Model, ModelConfig, WeightFormat};
use crate::tokenizer::Tokenizer;

/// How to load a model.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// CPU threads for the forward pass; `None` uses all cores (or `RAYON_NUM_THREADS`).
    pub threads: Option<usize>,
    /// Quantized (default: llama.cpp numerics, least memory) or dequantized f32 weights (more
    /// memory, higher batched throughput on CPU).
    pub weights: WeightFormat,
}

/// Decoding settings.
#[derive(Debug, Clone)]
pub struct GenerationConfig {
    /// Most tokens to generate per prompt (the end-of-generation token is not counted).
    pub max_new_tokens: usize,
    /// 0 means greedy decoding; above 0, sampling at this temperature.
    pub temperature: f64,
    /// Nucleus sampling threshold (only with `temperature > 0`).
    pub top_p: Option<f64>,
    /// Seed of the sampler; each prompt gets its own sampler with this seed, so results do not
    /// depend on how prompts are batched.
    pub seed: u64,
    /// Generation stops when the text contains one of these; the text is cut before it.
    pub stop_strings: Vec<String>,
    /// Prompts decoded together (larger batches give more tokens/s, up to the cores' limit); with
    /// beam search each prompt takes `num_beams` rows of the batch.
    pub batch_size: usize,
    /// 1: greedy decoding or sampling. Above 1: beam search with this many beams (greedy only), as
    /// Hugging Face `generate(num_beams=N, do_sample=False, length_penalty=1.0,
    /// early_stopping=False)`; stop strings end a hypothesis like the end-of-generation token does.
    pub num_beams: usize,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        GenerationConfig {
            max_new_tokens: 256,
            temperature: 0.0,
            top_p: None,
            seed: 299_792_458,
            stop_strings: Vec::new(),
            batch_size: 8,
            num_beams: 1,
        }
    }
}

/// Why generation of one prompt stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum StopReason {
    /// The model produced an end-of-generation token (not included in the output).
    EndOfGeneration { token: u32 },
    /// The text reached one of the stop strings (cut before it).
    StopString { stop: String },
    /// `max_new_tokens` were generated.
    MaxTokens,
    /// The model's context window is full.
    ContextFull,
}

/// The result for one prompt.
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    /// The generated text (special tokens removed, cut before a stop string).
    pub text: String,
    /// The generated token ids (without the end-of-generation token).
    pub token_ids: Vec<u32>,
    pub prompt_tokens: usize,
    pub stop_reason: StopReason,
    /// Beam search only: the hypothesis' summed log-probability (the stopping token included) divided
    /// by its generated length (stopping token counted), the score the search ranked it by.
    pub beam_score: Option<f32>,
    /// Wall time of the batch this prompt was decoded in: prompt processing, then generation.
    pub batch_prompt_time: Duration,
    pub batch_generation_time: Duration,
}

/// A GGUF model ready to generate.
pub struct GgufModel {
    path: PathBuf,
    model: Model,
    tokenizer: Tokenizer,
    chat_template: Option<ChatTemplate>,
    pool: rayon::ThreadPool,
    name: Option<String>,
}

impl std::fmt::Debug for GgufModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufModel")
            .field("path", &self.path)
            .field("architecture", &self.model.config().architecture)
            .finish_non_exhaustive()
    }
}

impl GgufModel {
    /// Loads a `.gguf` file: metadata, tokenizer, chat template and weights.
    pub fn load(path: &Path, options: &LoadOptions) -> Result<Self> {
        let (content, mut file) = meta::read_header(path)?;
        let in_file = |e: Error| e.in_file(path);
        // A truncated file has a valid header but tensors reaching past its end.
        let file_len = file
            .metadata()
            .map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        let data_end = content
            .tensor_infos
            .values()
            .map(|t| {
                let elems = t.shape.elem_count();
                content.tensor_data_offset
                    + t.offset
                    + (elems / t.ggml_dtype.block_size() * t.ggml_dtype.type_size()) as u64
            })
            .max()
            .unwrap_or(0);
        if data_end > file_len {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                reason: format!("tensor data needs {data_end} bytes but the file has {file_len}"),
            });
        }
        let config = ModelConfig::from_metadata(&content.metadata).map_err(in_file)?;
        let tokenizer = Tokenizer::from_metadata(&content.metadata).map_err(in_file)?;
        let chat_template =
            ChatTemplate::from_metadata(&content.metadata, &tokenizer).map_err(in_file)?;
        let name = meta::opt_string(&content.metadata, "general.name").map_err(in_file)?;
        let model = Model::load(config, &content, &mut file, options.weights).map_err(in_file)?;
        if model.vocab_size() < tokenizer.vocab_size() {
            return Err(Error::metadata(
                "tokenizer.ggml.tokens",
                format!(
                    "{} tokens but the embedding table has {} rows",
                    tokenizer.vocab_size(),
                    model.vocab_size()
                ),
            )
            .in_file(path));
        }
        let mut pool = rayon::ThreadPoolBuilder::new();
        if let Some(n) = options.threads {
            pool = pool.num_threads(n.max(1));
        }
        let pool = pool
            .build()
            .map_err(|e| Error::Config(format!("cannot start the thread pool: {e}")))?;
        tracing::info!(
            path = %path.display(),
            architecture = model.config().architecture.name(),
            "loaded GGUF model"
        );
        Ok(GgufModel {
            path: path.to_path_buf(),
            model,
            tokenizer,
            chat_template,
            pool,
            name,
        })
    }

    /// The file this model was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `general.name` from the metadata.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn architecture(&self) -> Architecture {
        self.model.config().architecture
    }

    /// Context window in tokens (`<arch>.context_length`).
    pub fn context_length(&self) -> usize {
        self.model.config().context_length
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The chat template (the file's own or a built-in one); `None` if the model has neither.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.chat_template.as_ref()
    }

    /// Renders `messages` with the chat template (generation prompt added).
    pub fn render_chat(&self, messages: &[ChatMessage]) -> Result<String> {
        match &self.chat_template {
            Some(t) => t.render(messages, true),
            None => Err(Error::Template(format!(
                "{} has no chat template; pass a plain prompt instead",
                self.path.display()
            ))),
        }
    }

    /// Tokenizes a prompt string as llama.cpp does for a rendered chat template: BOS where the
    /// model wants it, special-token texts parsed.
    pub fn encode_prompt(&self, prompt: &str) -> Vec<u32> {
        self.tokenizer.encode(prompt, true, true)
    }

    /// Generates a continuation for each prompt (rendered chat templates or plain text; special
    /// token texts in them are parsed). Prompts are decoded `config.batch_size` at a time.
    pub fn generate(
        &self,
        prompts: &[String],
        config: &GenerationConfig,
    ) -> Result<Vec<Generation>> {
        let ids: Vec<Vec<u32>> = prompts.iter().map(|p| self.encode_prompt(p)).collect();
        self.generate_ids(&ids, config)
    }

    /// Like [`GgufModel::generate`], from token ids.
    pub fn generate_ids(
        &self,
        prompts: &[Vec<u32>],
        config: &GenerationConfig,
    ) -> Result<Vec<Generation>> {
        if config.batch_size == 0 {
            return Err(Error::Config("batch_size must be at least 1".to_string()));
        }
        if config.temperature < 0.0 || !config.temperature.is_finite() {
            return Err(Error::Config(format!(
                "temperature {} must be a finite number >= 0",
                config.temperature
            )));
        }
        if config.num_beams == 0 {
            return Err(Error::Config(
                "num_beams must be at least 1 (1 = no beam search)".to_string(),
            ));
        }
        if config.num_beams > 1 && config.temperature > 0.0 {
            return Err(Error::Config(format!(
                "beam search ({} beams) decodes greedily, but temperature is {}: set temperature to 0 or num_beams to 1",
                config.num_beams, config.temperature
            )));
        }
        let context = self.context_length();
        for (index, p) in prompts.iter().enumerate() {
            if p.is_empty() {
                return Err(Error::EmptyPrompt(index));
            }
            if p.len() >= context {
                return Err(Error::ContextOverflow {
                    index,
                    prompt_tokens: p.len(),
                    max_new_tokens: config.max_new_tokens,
                    context_length: context,
                });
            }
        }
        let mut results = Vec::with_capacity(prompts.len());
        for chunk in prompts.chunks(config.batch_size) {
            let batch = if config.num_beams > 1 {
                self.pool
                    .install(|| self.generate_batch_beam(chunk, config))?
            } else {
                self.pool.install(|| self.generate_batch(chunk, config))?
            };
            results.extend(batch);
        }
        Ok(results)
    }

    /// Logits at every position of `tokens` `(len, vocab)`, in one forward pass (teacher forcing).
    pub fn logits_all_positions(&self, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        if tokens.is_empty() {
            return Err(Error::EmptyPrompt(0));
        }
        self.pool.install(|| {
            let mut cache = self.model.new_cache(1);
            let logits = self
                .model
                .forward(&[tokens.to_vec()], &[0], &mut cache, true)?;
            Ok(logits.squeeze(0)?.to_dtype(DType::F32)?.to_vec2::<f32>()?)
        })
    }

    /// Feeds a batch of prompts, left-padded to the longest; returns the cache and the next-token
    /// logits `(prompts, vocab)`.
    fn forward_prompts(&self, prompts: &[Vec<u32>]) -> Result<(BatchCache, Tensor)> {
        let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
        let padding: Vec<usize> = prompts.iter().map(|p| longest - p.len()).collect();
        let pad_id = self.tokenizer.eos_id().unwrap_or(0);
        let rows: Vec<Vec<u32>> = prompts
            .iter()
            .zip(&padding)
            .map(|(p, &pad)| {
                let mut row = vec![pad_id; pad];
                row.extend_from_slice(p);
                row
            })
            .collect();
        let mut cache = self.model.new_cache(prompts.len());
        let logits = self.model.forward(&rows, &padding, &mut cache, false)?;
        Ok((cache, logits))
    }

    /// The earliest stop string in `text`: its byte offset and the string.
    fn find_stop<'a>(text: &str, stop_strings: &'a [String]) -> Option<(usize, &'a String)> {
        stop_strings
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| text.find(s.as_str()).map(|at| (at, s)))
            .min_by_key(|(at, _)| *at)
    }

    /// Beam search over a batch of prompts: `num_beams` cache rows per prompt (see [`crate::beam`]).
    fn generate_batch_beam(
        &self,
        prompts: &[Vec<u32>],
        config: &GenerationConfig,
    ) -> Result<Vec<Generation>> {
        if config.max_new_tokens == 0 {
            return self.generate_batch(prompts, config);
        }
        let context = self.context_length();
        let started = Instant::now();
        let (cache, logits) = self.forward_prompts(prompts)?;
        let first_logits = logits.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        let prompt_time = started.elapsed();
        let generation_started = Instant::now();
        let mut rows = CacheRows {
            model: &self.model,
            cache,
            select_time: Duration::ZERO,
            forward_time: Duration::ZERO,
        };
        let settings = BeamSettings {
            num_beams: config.num_beams,
            length_penalty: 1.0,
        };
        // The stop rules of the greedy loop, in its order, for a candidate continuation.
        let stop = |prompt: usize, generated: &[u32]| -> Option<StopReason> {
            let &token = generated.last()?;
            if self.tokenizer.is_end_of_generation(token) {
                return Some(StopReason::EndOfGeneration { token });
            }
            if config.stop_strings.iter().any(|s| !s.is_empty()) {
                let text = self.tokenizer.decode(generated, true);
                if let Some((_, stop)) = Self::find_stop(&text, &config.stop_strings) {
                    return Some(StopReason::StopString { stop: stop.clone() });
                }
            }
            if generated.len() >= config.max_new_tokens {
                return Some(StopReason::MaxTokens);
            }
            if prompts[prompt].len() + generated.len() >= context {
                return Some(StopReason::ContextFull);
            }
            None
        };
        let best = beam::beam_search(&mut rows, first_logits, &settings, stop)?;
        let generation_time = generation_started.elapsed();
        tracing::debug!(
            prompts = prompts.len(),
            beams = config.num_beams,
            total_ms = generation_time.as_millis(),
            forward_ms = rows.forward_time.as_millis(),
            cache_select_ms = rows.select_time.as_millis(),
            "beam search batch"
        );

        Ok(best
            .into_iter()
            .zip(prompts)
            .map(|(hypothesis, prompt)| {
                let mut token_ids = hypothesis.tokens;
                let stop_reason = hypothesis.finish.unwrap_or(StopReason::MaxTokens);
                if let StopReason::EndOfGeneration { .. } = stop_reason {
                    token_ids.pop();
                }
                let mut text = self.tokenizer.decode(&token_ids, true);
                if let StopReason::StopString { .. } = stop_reason {
                    if let Some((at, _)) = Self::find_stop(&text, &config.stop_strings) {
                        text.truncate(at);
                    }
                }
                Generation {
                    text,
                    token_ids,
                    prompt_tokens: prompt.len(),
                    stop_reason,
                    beam_score: Some(hypothesis.score),
                    batch_prompt_time: prompt_time,
                    batch_generation_time: generation_time,
                }
            })
            .collect())
    }

    fn generate_batch(
        &self,
        prompts: &[Vec<u32>],
        config: &GenerationConfig,
    ) -> Result<Vec<Generation>> {
        let context = self.context_length();
        let sampling = if config.temperature <= 0.0 {
            Sampling::ArgMax
        } else {
            match config.top_p {
                Some(p) if p < 1.0 => Sampling::TopP {
                    p,
                    temperature: config.temperature,
                },
                _ => Sampling::All {
                    temperature: config.temperature,
                },
            }
        };
        struct Sequence {
            index: usize,
            sampler: LogitsProcessor,
            generated: Vec<u32>,
            stop: Option<StopReason>,
            text: String,
        }
        let mut sequences: Vec<Sequence> = (0..prompts.len())
            .map(|index| Sequence {
                index,
                sampler: LogitsProcessor::from_sampling(config.seed, sampling.clone()),
                generated: Vec::new(),
                stop: None,
                text: String::new(),
            })
            .collect();
        if config.max_new_tokens == 0 {
            return Ok(prompts
                .iter()
                .map(|p| Generation {
                    text: String::new(),
                    token_ids: Vec::new(),
                    prompt_tokens: p.len(),
                    stop_reason: StopReason::MaxTokens,
                    beam_score: None,
                    batch_prompt_time: Duration::ZERO,
                    batch_generation_time: Duration::ZERO,
                })
                .collect());
        }
        let started = Instant::now();
        let (mut cache, mut logits) = self.forward_prompts(prompts)?;
        let prompt_time = started.elapsed();
        let generation_started = Instant::now();
        // Rows of `logits`/`cache` correspond to `active` (indices into `sequences`).
        let mut active: Vec<usize> = (0..sequences.len()).collect();
        while !active.is_empty() {
            let mut next_tokens = Vec::with_capacity(active.len());
            let mut keep = Vec::with_capacity(active.len());
            for (row, &s) in active.iter().enumerate() {
                let seq = &mut sequences[s];
                let row_logits = logits.get(row)?;
                let token = seq.sampler.sample(&row_logits)?;
                if self.tokenizer.is_end_of_generation(token) {
                    seq.stop = Some(StopReason::EndOfGeneration { token });
                    continue;
                }
                seq.generated.push(token);
                seq.text = self.tokenizer.decode(&seq.generated, true);
                if let Some((at, stop)) = Self::find_stop(&seq.text, &config.stop_strings) {
                    seq.text.truncate(at);
                    seq.stop = Some(StopReason::StopString { stop: stop.clone() });
                    continue;
                }
                if seq.generated.len() >= config.max_new_tokens {
                    seq.stop = Some(StopReason::MaxTokens);
                    continue;
                }
                if cache.sequence_len(row) + 1 >= context {
                    seq.stop = Some(StopReason::ContextFull);
                    continue;
                }
                keep.push(row);
                next_tokens.push(vec![token]);
            }
            if keep.is_empty() {
                break;
            }
            cache.retain(&keep)?;
            active = keep.iter().map(|&row| active[row]).collect();
            let no_padding = vec![0; active.len()];
            logits = self
                .model
                .forward(&next_tokens, &no_padding, &mut cache, false)?;
        }
        let generation_time = generation_started.elapsed();
        Ok(sequences
            .into_iter()
            .map(|seq| Generation {
                text: seq.text,
                prompt_tokens: prompts[seq.index].len(),
                token_ids: seq.generated,
                stop_reason: seq.stop.unwrap_or(StopReason::MaxTokens),
                beam_score: None,
                batch_prompt_time: prompt_time,
                batch_generation_time: generation_time,
            })
            .collect())
    }
}

/// The model and a batch's KV cache as the rows beam search works on.
struct CacheRows<'a> {
    model: &'a Model,
    cache: BatchCache,
    /// Time spent reordering the cache and in forward passes (logged: beam search's own overhead).
    select_time: Duration,
    forward_time: Duration,
}

impl BeamRows for CacheRows<'_> {
    fn select_rows(&mut self, rows: &[usize]) -> Result<()> {
        let started = Instant::now();
        let result = self.cache.select(rows);
        self.select_time += started.elapsed();
        result
    }

    fn advance(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        let started = Instant::now();
        let tokens: Vec<Vec<u32>> = tokens.iter().map(|&t| vec![t]).collect();
        let no_padding = vec![0; tokens.len()];
        let logits = self
            .model
            .forward(&tokens, &no_padding, &mut self.cache, false)?;
        let logits = logits.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        self.forward_time += started.elapsed();
        Ok(logits)
    }
}
