//! T5-family encoder-decoder models (T5, Flan-T5, mT5, MADLAD-400) on candle, loaded from a
//! Hugging Face checkpoint directory, with a tokenizer from `tokenizer.json` or `spiece.model`.
//!
//! Architecture as in transformers' `modeling_t5.py`: pre-norm blocks with RMS layer norms, no
//! absolute positions but a relative position bias whose table lives in block 0 of each stack and is
//! shared by all its layers, unscaled attention, ReLU or gated-GELU(tanh) feed-forward, and an lm head
//! that is either separate (Flan-T5, mT5, MADLAD) or tied to the embeddings with a `d_model^-0.5`
//! rescale (original T5). Decoding starts from the pad token.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{Embedding, Linear};
use oerkit_translate::languages::language_name;
use serde::Deserialize;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, Tokenizer};

use crate::engine::{Seq2SeqOptions, Seq2SeqTokenizer, Seq2SeqTranslator};
use crate::error::{read_json, Result, Seq2SeqError};
use crate::generate::{GenerateOptions, Seq2SeqConfig, Seq2SeqModel};
use crate::marian::Precision;
use crate::sentencepiece::{PieceType, SpmModel};

/// The additive attention bias of masked positions; HF uses the dtype minimum too.
const MASKED: f32 = f32::MIN;

fn default_max_distance() -> usize {
    128
}
fn default_eps() -> f64 {
    1e-6
}
fn default_ff_proj() -> String {
    "relu".to_string()
}
fn default_true() -> bool {
    true
}

/// `config.json` of a T5-family checkpoint (the fields the model needs).
#[derive(Debug, Clone, Deserialize)]
pub struct T5Config {
    #[serde(default)]
    pub model_type: String,
    pub vocab_size: usize,
    pub d_model: usize,
    pub d_kv: usize,
    pub d_ff: usize,
    pub num_layers: usize,
    #[serde(default)]
    pub num_decoder_layers: Option<usize>,
    pub num_heads: usize,
    pub relative_attention_num_buckets: usize,
    #[serde(default = "default_max_distance")]
    pub relative_attention_max_distance: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "default_ff_proj")]
    pub feed_forward_proj: String,
    /// Absent means tied (original T5); Flan-T5, mT5 and MADLAD say `false`.
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    /// transformers 5 records whether a tied head rescales the decoder output; absent = tied.
    #[serde(default)]
    pub scale_decoder_outputs: Option<bool>,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_id: Option<serde_json::Value>,
    #[serde(default)]
    pub decoder_start_token_id: Option<u32>,
}

/// Feed-forward activation named by `feed_forward_proj` (`relu`, `gated-gelu`, `gated-silu`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activation {
    Relu,
    /// `gelu_new`: the tanh approximation.
    GeluTanh,
    GeluErf,
    Silu,
}

impl Activation {
    fn apply(self, xs: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Activation::Relu => xs.relu(),
            Activation::GeluTanh => xs.gelu(),
            Activation::GeluErf => xs.gelu_erf(),
            Activation::Silu => xs.silu(),
        }
    }
}

impl T5Config {
    /// Reads and checks `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let config: T5Config = read_json(path)?;
        if !matches!(config.model_type.as_str(), "t5" | "mt5") {
            return Err(Seq2SeqError::invalid(
                path,
                format!(
                    "model_type `{}` is not a T5 model (supported here: t5, mt5)",
                    config.model_type
                ),
            ));
        }
        config
            .activation()
            .map_err(|message| Seq2SeqError::invalid(path, message))?;
        if config.num_heads == 0 || config.d_kv == 0 || config.relative_attention_num_buckets < 4 {
            return Err(Seq2SeqError::invalid(
                path,
                "num_heads and d_kv must be positive and relative_attention_num_buckets at least 4",
            ));
        }
        Ok(config)
    }

    /// (activation, gated) per transformers: `gated-gelu` means `gelu_new` (tanh).
    fn activation(&self) -> std::result::Result<(Activation, bool), String> {
        let proj = self.feed_forward_proj.as_str();
        let (gated, name) = match proj.strip_prefix("gated-") {
            Some(name) => (true, name),
            None => (false, proj),
        };
        let act = match (name, gated) {
            ("relu", _) => Activation::Relu,
            ("gelu", true) | ("gelu_new", _) => Activation::GeluTanh,
            ("gelu", false) => Activation::GeluErf,
            ("silu", _) => Activation::Silu,
            _ => {
                return Err(format!(
                "feed_forward_proj `{proj}` is not supported (relu, gelu, gelu_new, silu, each optionally gated-)"
            ))
            }
        };
        Ok((act, gated))
    }

    pub fn decoder_layers(&self) -> usize {
        self.num_decoder_layers.unwrap_or(self.num_layers)
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_token_id.unwrap_or(0)
    }

    /// `eos_token_id` may be one id or a list; the first is the one generation appends.
    pub fn eos_id(&self) -> u32 {
        match &self.eos_token_id {
            Some(serde_json::Value::Number(n)) => n.as_u64().map(|v| v as u32).unwrap_or(1),
            Some(serde_json::Value::Array(items)) => items
                .first()
                .and_then(|v| v.as_u64())
                .map(|v| v as u32)
                .unwrap_or(1),
            _ => 1,
        }
    }

    /// T5 starts decoding from the pad token unless the config says otherwise.
    pub fn decoder_start_id(&self) -> u32 {
        self.decoder_start_token_id.unwrap_or_else(|| self.pad_id())
    }

    /// Whether the decoder output is rescaled by `d_model^-0.5` before a tied lm head.
    fn scales_decoder_output(&self) -> bool {
        self.tie_word_embeddings && self.scale_decoder_outputs.unwrap_or(true)
    }
}

/// `T5Attention._relative_position_bucket`: the bucket of `relative_position` = key − query.
/// The maths is float32 `log` truncated toward zero, like the reference.
pub fn relative_position_bucket(
    relative_position: i64,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
) -> u32 {
    let mut num_buckets = num_buckets as i64;
    let mut bucket = 0i64;
    let distance = if bidirectional {
        num_buckets /= 2;
        if relative_position > 0 {
            bucket += num_buckets;
        }
        relative_position.abs()
    } else {
        (-relative_position).max(0)
    };
    let max_exact = num_buckets / 2;
    if distance < max_exact {
        bucket += distance;
    } else {
        let ratio = ((distance as f32) / (max_exact as f32)).ln()
            / ((max_distance as f64 / max_exact as f64).ln() as f32)
            * ((num_buckets - max_exact) as f32);
        let large = max_exact + ratio as i64;
        bucket += large.min(num_buckets - 1);
    }
    bucket as u32
}

/// The weights of a checkpoint by name, with located errors for missing or misshapen tensors.
struct Weights {
    path: PathBuf,
    tensors: HashMap<String, Tensor>,
}

impl Weights {
    /// Loads `model.safetensors`, a sharded `model.safetensors.index.json`, or `pytorch_model.bin`.
    fn load(dir: &Path, device: &Device) -> Result<Self> {
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        let pickle = dir.join("pytorch_model.bin");
        let mut tensors = HashMap::new();
        let path;
        if single.is_file() {
            path = single;
            tensors = load_safetensors(&path, device)?;
        } else if index.is_file() {
            path = index;
            let json: serde_json::Value = read_json(&path)?;
            let mut shards: Vec<&str> = json
                .get("weight_map")
                .and_then(|m| m.as_object())
                .map(|m| m.values().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            shards.sort_unstable();
            shards.dedup();
            if shards.is_empty() {
                return Err(Seq2SeqError::invalid(
                    &path,
                    "weight_map lists no shard files",
                ));
            }
            for shard in shards {
                tensors.extend(load_safetensors(&dir.join(shard), device)?);
            }
        } else if pickle.is_file() {
            path = pickle;
            let list = candle_core::pickle::read_all(&path)
                .map_err(|e| Seq2SeqError::invalid(&path, format!("cannot read weights: {e}")))?;
            for (name, tensor) in list {
                tensors.insert(name, tensor.to_dtype(DType::F32)?);
            }
        } else {
            return Err(Seq2SeqError::invalid(
                dir,
                "no weights: expected model.safetensors, model.safetensors.index.json or pytorch_model.bin",
            ));
        }
        Ok(Self { path, tensors })
    }

    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let tensor = self.tensors.get(name).ok_or_else(|| {
            Seq2SeqError::invalid(
                &self.path,
                format!("no tensor `{name}` (expected shape {shape:?}); is this a T5 checkpoint?"),
            )
        })?;
        if tensor.dims() != shape {
            return Err(Seq2SeqError::invalid(
                &self.path,
                format!(
                    "tensor `{name}` has shape {:?}, config.json implies {shape:?}",
                    tensor.dims()
                ),
            ));
        }
        Ok(tensor.clone())
    }

    /// The first of `names` present (checkpoints differ in where they keep the embeddings).
    fn get_any(&self, names: &[&str], shape: &[usize]) -> Result<Tensor> {
        let name = names
            .iter()
            .find(|n| self.tensors.contains_key(**n))
            .unwrap_or(&names[0]);
        self.get(name, shape)
    }

    fn linear(&self, name: &str, input: usize, output: usize) -> Result<Linear> {
        Ok(Linear::new(
            self.get(&format!("{name}.weight"), &[output, input])?,
            None,
        ))
    }
}

fn load_safetensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let tensors = candle_core::safetensors::load(path, device)
        .map_err(|e| Seq2SeqError::invalid(path, format!("cannot read weights: {e}")))?;
    tensors
        .into_iter()
        .map(|(name, t)| Ok((name, t.to_dtype(DType::F32)?)))
        .collect()
}

/// T5's layer norm: RMS only (no mean subtraction, no bias), computed in float32.
struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn load(weights: &Weights, name: &str, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: weights.get(&format!("{name}.weight"), &[dim])?,
            eps,
        })
    }

    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let variance = xs.sqr()?.mean_keepdim(D::Minus1)?;
        let xs = xs.broadcast_mul(&(variance + self.eps)?.sqrt()?.recip()?)?;
        xs.broadcast_mul(&self.weight)
    }
}

struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    heads: usize,
    d_kv: usize,
}

impl Attention {
    fn load(weights: &Weights, name: &str, cfg: &T5Config) -> Result<Self> {
        let inner = cfg.num_heads * cfg.d_kv;
        Ok(Self {
            q: weights.linear(&format!("{name}.q"), cfg.d_model, inner)?,
            k: weights.linear(&format!("{name}.k"), cfg.d_model, inner)?,
            v: weights.linear(&format!("{name}.v"), cfg.d_model, inner)?,
            o: weights.linear(&format!("{name}.o"), inner, cfg.d_model)?,
            heads: cfg.num_heads,
            d_kv: cfg.d_kv,
        })
    }

    /// [b, t, d_model] → [b, heads, t, d_kv]
    fn split_heads(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, _) = xs.dims3()?;
        xs.reshape((b, t, self.heads, self.d_kv))?
            .transpose(1, 2)?
            .contiguous()
    }

    fn keys_values(&self, xs: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        Ok((
            self.split_heads(&self.k.forward(xs)?)?,
            self.split_heads(&self.v.forward(xs)?)?,
        ))
    }

    /// Unscaled dot-product attention of `xs` over `keys`/`values`, plus `bias` ([b|1, h|1, q, k]).
    fn attend(
        &self,
        xs: &Tensor,
        keys: &Tensor,
        values: &Tensor,
        bias: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let (b, t, _) = xs.dims3()?;
        let query = self.split_heads(&self.q.forward(xs)?)?;
        let scores = query
            .matmul(&keys.t()?.contiguous()?)?
            .broadcast_add(bias)?;
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let out =
            weights
                .matmul(values)?
                .transpose(1, 2)?
                .reshape((b, t, self.heads * self.d_kv))?;
        self.o.forward(&out)
    }
}

struct FeedForward {
    wi: Linear,
    /// The linear half of a gated unit (`wi_1`); `wi` is then `wi_0`.
    gate: Option<Linear>,
    wo: Linear,
    activation: Activation,
}

impl FeedForward {
    fn load(weights: &Weights, name: &str, cfg: &T5Config) -> Result<Self> {
        let (activation, gated) = cfg
            .activation()
            .map_err(|message| Seq2SeqError::invalid(&weights.path, message))?;
        let (wi, gate) = if gated {
            (
                weights.linear(&format!("{name}.wi_0"), cfg.d_model, cfg.d_ff)?,
                Some(weights.linear(&format!("{name}.wi_1"), cfg.d_model, cfg.d_ff)?),
            )
        } else {
            (
                weights.linear(&format!("{name}.wi"), cfg.d_model, cfg.d_ff)?,
                None,
            )
        };
        Ok(Self {
            wi,
            gate,
            wo: weights.linear(&format!("{name}.wo"), cfg.d_ff, cfg.d_model)?,
            activation,
        })
    }

    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let hidden = self.activation.apply(&self.wi.forward(xs)?)?;
        let hidden = match &self.gate {
            Some(gate) => (hidden * gate.forward(xs)?)?,
            None => hidden,
        };
        self.wo.forward(&hidden)
    }
}

struct Block {
    self_norm: RmsNorm,
    self_attention: Attention,
    cross: Option<(RmsNorm, Attention)>,
    ff_norm: RmsNorm,
    ff: FeedForward,
}

impl Block {
    fn load(weights: &Weights, name: &str, decoder: bool, cfg: &T5Config) -> Result<Self> {
        let eps = cfg.layer_norm_epsilon;
        let d = cfg.d_model;
        let cross = if decoder {
            Some((
                RmsNorm::load(weights, &format!("{name}.layer.1.layer_norm"), d, eps)?,
                Attention::load(weights, &format!("{name}.layer.1.EncDecAttention"), cfg)?,
            ))
        } else {
            None
        };
        let ff_index = if decoder { 2 } else { 1 };
        Ok(Self {
            self_norm: RmsNorm::load(weights, &format!("{name}.layer.0.layer_norm"), d, eps)?,
            self_attention: Attention::load(
                weights,
                &format!("{name}.layer.0.SelfAttention"),
                cfg,
            )?,
            cross,
            ff_norm: RmsNorm::load(
                weights,
                &format!("{name}.layer.{ff_index}.layer_norm"),
                d,
                eps,
            )?,
            ff: FeedForward::load(
                weights,
                &format!("{name}.layer.{ff_index}.DenseReluDense"),
                cfg,
            )?,
        })
    }
}

struct Stack {
    blocks: Vec<Block>,
    /// `block.0.layer.0.SelfAttention.relative_attention_bias`: [buckets, heads].
    relative_bias: Embedding,
    final_norm: RmsNorm,
    bidirectional: bool,
}

impl Stack {
    fn load(weights: &Weights, name: &str, decoder: bool, cfg: &T5Config) -> Result<Self> {
        let layers = if decoder {
            cfg.decoder_layers()
        } else {
            cfg.num_layers
        };
        let blocks = (0..layers)
            .map(|i| Block::load(weights, &format!("{name}.block.{i}"), decoder, cfg))
            .collect::<Result<Vec<_>>>()?;
        let table = weights.get(
            &format!("{name}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
            &[cfg.relative_attention_num_buckets, cfg.num_heads],
        )?;
        Ok(Self {
            blocks,
            relative_bias: Embedding::new(table, cfg.num_heads),
            final_norm: RmsNorm::load(
                weights,
                &format!("{name}.final_layer_norm"),
                cfg.d_model,
                cfg.layer_norm_epsilon,
            )?,
            bidirectional: !decoder,
        })
    }

    /// The position bias [1, heads, queries, keys] for query positions `first_query..` over keys
    /// `0..keys`.
    fn position_bias(
        &self,
        cfg: &T5Config,
        first_query: usize,
        queries: usize,
        keys: usize,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let mut buckets = Vec::with_capacity(queries * keys);
        for q in first_query..first_query + queries {
            for k in 0..keys {
                buckets.push(relative_position_bucket(
                    k as i64 - q as i64,
                    self.bidirectional,
                    cfg.relative_attention_num_buckets,
                    cfg.relative_attention_max_distance,
                ));
            }
        }
        let buckets = Tensor::from_vec(buckets, (queries, keys), device)?;
        self.relative_bias
            .forward(&buckets)?
            .permute((2, 0, 1))?
            .unsqueeze(0)?
            .contiguous()
    }
}

/// A loaded T5-family model. It owns the decoding state of the batch it is working on.
pub struct T5Model {
    config: T5Config,
    /// The weights file (or shard index) loaded, for provenance.
    weights_file: PathBuf,
    generation: Seq2SeqConfig,
    state: Option<T5DecoderState>,
    shared: Embedding,
    encoder: Stack,
    decoder: Stack,
    /// [vocab, d_model]: `lm_head.weight`, or the embeddings when tied.
    lm_head: Linear,
    /// `d_model^-0.5` for tied original-T5 heads.
    output_scale: Option<f64>,
    device: Device,
}

/// Per-sequence decoder state: self-attention cache, cross-attention keys/values and the encoder
/// padding mask. Rows follow the batch (or beam) order and are reordered together.
pub struct T5DecoderState {
    self_kv: Vec<Option<(Tensor, Tensor)>>,
    cross_kv: Vec<(Tensor, Tensor)>,
    /// [b, 1, 1, source_len]: 0 for real tokens, a large negative number for padding.
    encoder_mask_bias: Tensor,
    past_len: usize,
}

impl T5DecoderState {
    /// Decoder tokens consumed so far.
    pub fn past_len(&self) -> usize {
        self.past_len
    }

    /// Keeps the rows `indices` (in that order): beam reordering, dropping finished rows, or
    /// expanding each input to its beams.
    pub fn select_rows(&mut self, indices: &Tensor) -> candle_core::Result<()> {
        for (k, v) in self.self_kv.iter_mut().flatten() {
            *k = k.index_select(indices, 0)?;
            *v = v.index_select(indices, 0)?;
        }
        for (k, v) in self.cross_kv.iter_mut() {
            *k = k.index_select(indices, 0)?;
            *v = v.index_select(indices, 0)?;
        }
        self.encoder_mask_bias = self.encoder_mask_bias.index_select(indices, 0)?;
        Ok(())
    }
}

impl T5Model {
    /// Loads `config.json` and the weights of a checkpoint directory on the CPU, in float32.
    pub fn load(dir: &Path) -> Result<Self> {
        let config = T5Config::from_file(&dir.join("config.json"))?;
        let device = Device::Cpu;
        let weights = Weights::load(dir, &device)?;
        Self::from_weights(config, &weights, device)
    }

    /// The weights file (or shard index) the model was loaded from.
    pub fn weights_file(&self) -> &Path {
        &self.weights_file
    }

    fn from_weights(config: T5Config, weights: &Weights, device: Device) -> Result<Self> {
        let embeddings = weights.get_any(
            &[
                "shared.weight",
                "encoder.embed_tokens.weight",
                "decoder.embed_tokens.weight",
            ],
            &[config.vocab_size, config.d_model],
        )?;
        let encoder = Stack::load(weights, "encoder", false, &config)?;
        let decoder = Stack::load(weights, "decoder", true, &config)?;
        // transformers ties the head to the embeddings whatever else the checkpoint holds.
        let head = if config.tie_word_embeddings {
            embeddings.clone()
        } else {
            weights.get("lm_head.weight", &[config.vocab_size, config.d_model])?
        };
        let output_scale = config
            .scales_decoder_output()
            .then(|| (config.d_model as f64).powf(-0.5));
        let generation = Seq2SeqConfig {
            decoder_start_token_id: config.decoder_start_id(),
            eos_token_id: config.eos_id(),
            pad_token_id: config.pad_id(),
            vocab_size: config.vocab_size,
            // Relative positions: no architectural limit on the decoder length.
            max_length: usize::MAX,
            // T5 generation bans nothing (no bad_words_ids in its configs).
            bad_words_ids: Vec::new(),
            // T5 configs have no forced_eos_token_id, so transformers adds no ForcedEOS processor.
            forced_eos_token_id: None,
        };
        Ok(Self {
            weights_file: weights.path.clone(),
            generation,
            state: None,
            shared: Embedding::new(embeddings, config.d_model),
            encoder,
            decoder,
            lm_head: Linear::new(head, None),
            output_scale,
            device,
            config,
        })
    }

    pub fn config(&self) -> &T5Config {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Encodes a right-padded batch: `input_ids` and `attention_mask` (1 = token, 0 = padding) are
    /// [b, s] u32. Returns the encoder output [b, s, d_model] after the final layer norm.
    pub fn encoder_output(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        let (_, len) = input_ids.dims2()?;
        let mask_bias = mask_bias(attention_mask)?;
        let bias = self
            .encoder
            .position_bias(&self.config, 0, len, len, &self.device)?
            .broadcast_add(&mask_bias)?;
        let mut hidden = self.shared.forward(input_ids)?;
        for block in &self.encoder.blocks {
            let normed = block.self_norm.forward(&hidden)?;
            let (k, v) = block.self_attention.keys_values(&normed)?;
            hidden = (&hidden + block.self_attention.attend(&normed, &k, &v, &bias)?)?;
            hidden = (&hidden + block.ff.forward(&block.ff_norm.forward(&hidden)?)?)?;
        }
        Ok(self.encoder.final_norm.forward(&hidden)?)
    }

    /// Prepares decoding over an encoder output: computes every layer's cross-attention keys and
    /// values once.
    pub fn start_decoding(
        &self,
        encoder_output: &Tensor,
        attention_mask: &Tensor,
    ) -> Result<T5DecoderState> {
        let cross_kv = self
            .decoder
            .blocks
            .iter()
            .map(|block| {
                let (_, attention) = block
                    .cross
                    .as_ref()
                    .expect("decoder blocks always have cross-attention");
                attention.keys_values(encoder_output)
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(T5DecoderState {
            self_kv: vec![None; self.decoder.blocks.len()],
            cross_kv,
            encoder_mask_bias: mask_bias(attention_mask)?,
            past_len: 0,
        })
    }

    /// Feeds decoder tokens [b, t] (all rows at the same position) and returns the logits of the
    /// last position, [b, vocab].
    pub fn decode_with(&self, state: &mut T5DecoderState, tokens: &Tensor) -> Result<Tensor> {
        let last = self.decoder_hidden(state, tokens)?;
        let last = match self.output_scale {
            Some(scale) => (last * scale)?,
            None => last,
        };
        Ok(self.lm_head.forward(&last)?)
    }

    /// The embedding matrix [vocab, d_model] (`shared.weight`).
    pub fn embeddings(&self) -> &Tensor {
        self.shared.embeddings()
    }

    /// Feeds decoder tokens [b, t] and returns the decoder output of the last position after the
    /// final layer norm, [b, d_model]: what the lm head reads.
    pub fn decoder_hidden(&self, state: &mut T5DecoderState, tokens: &Tensor) -> Result<Tensor> {
        let (_, t) = tokens.dims2()?;
        let past = state.past_len;
        let total = past + t;
        let mut self_bias =
            self.decoder
                .position_bias(&self.config, past, t, total, &self.device)?;
        if t > 1 {
            let causal: Vec<f32> = (0..t)
                .flat_map(|q| (0..total).map(move |k| if k > past + q { MASKED } else { 0.0 }))
                .collect();
            let causal = Tensor::from_vec(causal, (1, 1, t, total), &self.device)?;
            self_bias = self_bias.broadcast_add(&causal)?;
        }
        let mut hidden = self.shared.forward(tokens)?;
        for (i, block) in self.decoder.blocks.iter().enumerate() {
            let normed = block.self_norm.forward(&hidden)?;
            let (k_new, v_new) = block.self_attention.keys_values(&normed)?;
            let (k, v) = match state.self_kv[i].take() {
                Some((k_past, v_past)) => (
                    Tensor::cat(&[&k_past, &k_new], 2)?,
                    Tensor::cat(&[&v_past, &v_new], 2)?,
                ),
                None => (k_new, v_new),
            };
            hidden = (&hidden + block.self_attention.attend(&normed, &k, &v, &self_bias)?)?;
            state.self_kv[i] = Some((k, v));
            let (cross_norm, cross_attention) = block
                .cross
                .as_ref()
                .expect("decoder blocks always have cross-attention");
            let (ck, cv) = &state.cross_kv[i];
            let normed = cross_norm.forward(&hidden)?;
            hidden =
                (&hidden + cross_attention.attend(&normed, ck, cv, &state.encoder_mask_bias)?)?;
            hidden = (&hidden + block.ff.forward(&block.ff_norm.forward(&hidden)?)?)?;
        }
        state.past_len = total;
        Ok(self
            .decoder
            .final_norm
            .forward(&hidden.narrow(1, t - 1, 1)?)?
            .squeeze(1)?)
    }
}

/// [b, s] mask of 1/0 → additive bias [b, 1, 1, s] of 0 / a large negative number.
fn mask_bias(attention_mask: &Tensor) -> candle_core::Result<Tensor> {
    let (b, s) = attention_mask.dims2()?;
    let keep = attention_mask.ne(0u32)?;
    let zeros = Tensor::zeros((b, s), DType::F32, attention_mask.device())?;
    let masked = Tensor::full(MASKED, (b, s), attention_mask.device())?;
    keep.where_cond(&zeros, &masked)?.reshape((b, 1, 1, s))
}

impl Seq2SeqModel for T5Model {
    fn config(&self) -> &Seq2SeqConfig {
        &self.generation
    }

    fn encode(&mut self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<()> {
        self.state = None;
        let output = self.encoder_output(input_ids, attention_mask)?;
        self.state = Some(self.start_decoding(&output, attention_mask)?);
        Ok(())
    }

    fn decode_step(&mut self, tokens: &[u32]) -> Result<Tensor> {
        let tokens = Tensor::from_slice(tokens, (tokens.len(), 1), &self.device)?;
        let mut state = self
            .state
            .take()
            .ok_or_else(|| Seq2SeqError::Other("T5: decode_step before encode".into()))?;
        let logits = self.decode_with(&mut state, &tokens);
        self.state = Some(state);
        logits
    }

    fn select_rows(&mut self, rows: &[u32]) -> Result<()> {
        let indices = Tensor::from_slice(rows, rows.len(), &self.device)?;
        match self.state.as_mut() {
            Some(state) => Ok(state.select_rows(&indices)?),
            None => Err(Seq2SeqError::Other("T5: select_rows before encode".into())),
        }
    }

    fn reset(&mut self) {
        self.state = None;
    }
}

/// What a T5 model is asked to do; T5 models are told by a text prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum T5Task {
    /// `translate English to German: ` (T5, Flan-T5), or MADLAD's `<2de> ` when the vocabulary has
    /// target-language tokens. Languages are codes (`en`, `pt-BR`) or names.
    Translate { source: String, target: String },
    /// `summarize: `
    Summarize,
}

/// The tokenizer of a T5 checkpoint: `tokenizer.json` when present, else built from `spiece.model`
/// the way transformers converts it (control pieces and sentinels as special tokens, `</s>` appended).
pub struct T5Tokenizer {
    tokenizer: Tokenizer,
    path: PathBuf,
}

impl T5Tokenizer {
    /// Loads the tokenizer of a checkpoint directory; `model_vocab` is the embedding size, which
    /// bounds the number of sentinel tokens a bare `spiece.model` gets.
    pub fn load(dir: &Path, model_vocab: usize) -> Result<Self> {
        let json = dir.join("tokenizer.json");
        let spiece = dir.join("spiece.model");
        let tokenizer = if json.is_file() {
            Self::from_tokenizer_json(&json)?
        } else if spiece.is_file() {
            let extra_ids = read_extra_ids(&dir.join("tokenizer_config.json"))?;
            Self::from_spiece(&spiece, extra_ids, model_vocab)?
        } else {
            return Err(Seq2SeqError::invalid(
                dir,
                "no tokenizer: expected tokenizer.json or spiece.model",
            ));
        };
        let size = tokenizer.tokenizer.get_vocab_size(true);
        if size > model_vocab {
            return Err(Seq2SeqError::invalid(
                &tokenizer.path,
                format!(
                    "the tokenizer has {size} tokens but config.json's vocab_size is {model_vocab}: \
                     tokenizer and weights are from different models"
                ),
            ));
        }
        Ok(tokenizer)
    }

    pub fn from_tokenizer_json(path: &Path) -> Result<Self> {
        let tokenizer = Tokenizer::from_file(path)
            .map_err(|e| Seq2SeqError::invalid(path, format!("not a tokenizers JSON file: {e}")))?;
        Ok(Self {
            tokenizer,
            path: path.to_path_buf(),
        })
    }

    /// Builds the tokenizer from a SentencePiece model. `extra_ids` sentinels `<extra_id_N>` get the
    /// ids after the pieces in reverse order (`<extra_id_0>` last), as T5Tokenizer does; without a
    /// count from tokenizer_config.json, as many of T5's usual 100 as the embedding has rows for.
    pub fn from_spiece(path: &Path, extra_ids: Option<usize>, model_vocab: usize) -> Result<Self> {
        let spm = SpmModel::load(path)?;
        let mut tokenizer = spm.to_tokenizer()?;
        let pieces = spm.pieces.len();
        let special: Vec<AddedToken> = spm
            .pieces
            .iter()
            .filter(|p| matches!(p.kind, PieceType::Control | PieceType::Unknown))
            .map(|p| AddedToken::from(p.piece.clone(), true))
            .collect();
        tokenizer
            .add_special_tokens(special)
            .map_err(|e| Seq2SeqError::Tokenizer(format!("{}: {e}", path.display())))?;
        let user_defined: Vec<AddedToken> = spm
            .pieces
            .iter()
            .filter(|p| p.kind == PieceType::UserDefined)
            .map(|p| AddedToken::from(p.piece.clone(), false).normalized(false))
            .collect();
        tokenizer
            .add_tokens(user_defined)
            .map_err(|e| Seq2SeqError::Tokenizer(format!("{}: {e}", path.display())))?;
        let has_sentinels = spm.pieces.iter().any(|p| p.piece == "<extra_id_0>");
        let extra = if has_sentinels {
            0
        } else {
            extra_ids.unwrap_or_else(|| model_vocab.saturating_sub(pieces).min(100))
        };
        let sentinels: Vec<AddedToken> = (0..extra)
            .rev()
            .map(|i| AddedToken::from(format!("<extra_id_{i}>"), true))
            .collect();
        tokenizer
            .add_special_tokens(sentinels)
            .map_err(|e| Seq2SeqError::Tokenizer(format!("{}: {e}", path.display())))?;
        let eos = usize::try_from(spm.eos_id)
            .ok()
            .and_then(|id| spm.pieces.get(id))
            .map(|p| p.piece.clone())
            .ok_or_else(|| Seq2SeqError::invalid(path, "the model defines no </s> (eos_id < 0)"))?;
        let eos_id = spm.eos_id as u32;
        let post = TemplateProcessing::builder()
            .try_single(format!("$A {eos}"))
            .and_then(|b| {
                b.special_tokens(vec![(eos.clone(), eos_id)])
                    .build()
                    .map_err(|e| e.to_string())
            })
            .map_err(|e| Seq2SeqError::Tokenizer(format!("post-processor: {e}")))?;
        tokenizer.with_post_processor(Some(post));
        Ok(Self {
            tokenizer,
            path: path.to_path_buf(),
        })
    }

    /// The file the tokenizer was built from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    /// Token ids of `text` with `</s>` appended; special tokens in the text are matched.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| Seq2SeqError::Tokenizer(format!("{}: {e}", self.path.display())))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Text of generated ids without special tokens (pad, `</s>`, `<unk>`, sentinels).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| Seq2SeqError::Tokenizer(format!("{}: {e}", self.path.display())))
    }

    /// MADLAD-style `<2xx>` token for a target language, when the vocabulary has one: the code as
    /// given, then with `-` as `_`, then lower-cased, then its base language (`pt-BR` → `pt`).
    pub fn language_token(&self, target: &str) -> Option<String> {
        let underscored = target.replace('-', "_");
        let base = target
            .split(['-', '_'])
            .next()
            .unwrap_or(target)
            .to_ascii_lowercase();
        [
            target.to_string(),
            underscored.clone(),
            underscored.to_ascii_lowercase(),
            base,
        ]
        .into_iter()
        .map(|code| format!("<2{code}>"))
        .find(|token| self.token_id(token).is_some())
    }

    /// Whether the vocabulary uses MADLAD's `<2xx>` target-language tokens.
    pub fn has_language_tokens(&self) -> bool {
        self.token_id("<2en>").is_some()
    }

    /// The model input for `text` under `task`.
    pub fn prompt(&self, task: &T5Task, text: &str) -> Result<String> {
        match task {
            T5Task::Summarize => Ok(format!("summarize: {text}")),
            T5Task::Translate { source, target } => {
                if let Some(token) = self.language_token(target) {
                    Ok(format!("{token} {text}"))
                } else if self.has_language_tokens() {
                    Err(Seq2SeqError::invalid(
                        &self.path,
                        format!("the vocabulary has no target-language token <2{target}> (MADLAD-style model); use a language code it lists, e.g. <2es> → es"),
                    ))
                } else {
                    Ok(format!(
                        "translate {} to {}: {text}",
                        language_name(source),
                        language_name(target)
                    ))
                }
            }
        }
    }
}

/// `extra_ids` from tokenizer_config.json, when the file exists and says.
fn read_extra_ids(path: &Path) -> Result<Option<usize>> {
    if !path.is_file() {
        return Ok(None);
    }
    let json: serde_json::Value = read_json(path)?;
    Ok(json
        .get("extra_ids")
        .and_then(|v| v.as_u64())
        .map(|v| v as usize))
}

/// A T5 tokenizer as the translation engine uses it: each segment becomes a translation prompt for
/// the target language, unless it already carries a T5 task prefix (`summarize: `, `translate … to
/// …: `) or a MADLAD `<2xx>` token, which is then kept as written.
struct T5TranslationInput {
    tokenizer: T5Tokenizer,
    /// The engine seam passes only the target language; Flan-T5 prompts name a source, assumed
    /// English (the language of most OER this toolkit starts from).
    source_lang: String,
}

/// Whether `text` starts with a task prefix a T5 model reads itself. The engine trims each run, so a
/// run that is only `summarize: ` arrives as `summarize:` (the same ids: the tokenizer drops trailing
/// spaces).
fn has_task_prefix(text: &str) -> bool {
    let text = text.trim_start();
    if text.starts_with("summarize: ")
        || text == "summarize:"
        || text.starts_with("<2") && text.contains('>')
    {
        return true;
    }
    text.strip_prefix("translate ")
        .and_then(|rest| rest.split_once(": "))
        .is_some_and(|(languages, _)| languages.contains(" to ") && languages.len() < 80)
}

impl Seq2SeqTokenizer for T5TranslationInput {
    fn encode(&self, text: &str, target_lang: &str) -> Result<Vec<u32>> {
        if has_task_prefix(text) {
            return self.tokenizer.encode(text);
        }
        let task = T5Task::Translate {
            source: self.source_lang.clone(),
            target: target_lang.to_string(),
        };
        self.tokenizer.encode(&self.tokenizer.prompt(&task, text)?)
    }

    fn decode(&self, ids: &[u32]) -> String {
        // A decode failure of generated ids can only come from ids outside the vocabulary, which the
        // model cannot produce (vocab_size ≥ tokenizer size is checked at load).
        self.tokenizer.decode(ids).unwrap_or_default()
    }
}

/// Default length limit: T5 has no position limit, and transformers' own default (20) is too short
/// for sentences.
const DEFAULT_MAX_NEW_TOKENS: usize = 256;

/// Opens a T5/Flan-T5/mT5/MADLAD directory as a [`Seq2SeqTranslator`] (float32; no q8 mode yet).
pub fn open_t5(dir: &Path, opts: &Seq2SeqOptions) -> Result<Seq2SeqTranslator> {
    if opts.precision != Precision::F32 {
        return Err(Seq2SeqError::invalid(
            dir,
            "T5 models run in float32 only here; leave out the q8 setting",
        ));
    }
    let model = T5Model::load(dir)?;
    let tokenizer = T5Tokenizer::load(dir, model.config().vocab_size)?;
    let generation: serde_json::Value = {
        let path = dir.join("generation_config.json");
        if path.is_file() {
            read_json(&path)?
        } else {
            serde_json::Value::Null
        }
    };
    let generate = GenerateOptions {
        num_beams: opts
            .num_beams
            .or_else(|| {
                generation
                    .get("num_beams")
                    .and_then(|v| v.as_u64())
                    .map(|v| v as usize)
            })
            .unwrap_or(1)
            .max(1),
        length_penalty: generation
            .get("length_penalty")
            .and_then(|v| v.as_f64())
            .map_or(1.0, |v| v as f32),
        early_stopping: false,
        max_new_tokens: opts.max_new_tokens.unwrap_or(DEFAULT_MAX_NEW_TOKENS).max(1),
        min_new_tokens: 0,
    };
    let weights_file = model.weights_file.clone();
    Seq2SeqTranslator::new(
        "t5",
        dir,
        &weights_file,
        Box::new(model),
        Box::new(T5TranslationInput {
            tokenizer,
            source_lang: "en".to_string(),
        }),
        generate,
        opts,
    )
}
