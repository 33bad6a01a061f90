//! The transformer forward pass for the supported GGUF architectures, batched.
//!
//! candle-transformers' `quantized_llama`/`quantized_qwen2`/`quantized_gemma3` take one sequence and
//! one shared position, so this file re-implements them for a batch of left-padded sequences: every
//! sequence has its own RoPE positions and attention mask, the KV cache is shared and can drop
//! finished sequences. The three architectures differ in a handful of places (QKV biases, RoPE
//! layout, Gemma's extra norms, GELU, embedding scale and sliding-window layers), so one file holds
//! them, with each difference marked by `Architecture`. Weights stay quantized (candle `QMatMul`);
//! token embeddings are dequantized per looked-up row, never as a whole table.

use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};

use crate::error::{Error, Result};
use crate::meta::{self, Metadata};
use oerkit_qmatmul::{Activations, BlockMatrix};

/// The architectures this engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    Llama,
    Qwen2,
    Gemma3,
}

impl Architecture {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "llama" => Ok(Architecture::Llama),
            "qwen2" => Ok(Architecture::Qwen2),
            "gemma3" => Ok(Architecture::Gemma3),
            other => Err(Error::UnsupportedArchitecture(other.to_string())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
            Architecture::Gemma3 => "gemma3",
        }
    }
}

/// Hyper-parameters read from the GGUF metadata.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub architecture: Architecture,
    pub block_count: usize,
    pub embedding_length: usize,
    pub head_count: usize,
    pub head_count_kv: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_freq_base: f32,
    /// Gemma 3's local (sliding-window) layers use their own RoPE base.
    pub rope_freq_base_local: f32,
    pub sliding_window: Option<usize>,
    /// Every `n`-th layer is global; the others slide (Gemma 3: 6, not stored in the file).
    pub sliding_window_pattern: usize,
    pub context_length: usize,
}

impl ModelConfig {
    pub fn from_metadata(md: &Metadata) -> Result<Self> {
        let arch_name = meta::string(md, "general.architecture")?;
        let architecture = Architecture::parse(&arch_name)?;
        let key = |k: &str| format!("{arch_name}.{k}");
        let embedding_length = meta::usize_value(md, &key("embedding_length"))?;
        let head_count = meta::usize_value(md, &key("attention.head_count"))?;
        let head_count_kv = match md.get(&key("attention.head_count_kv")) {
            Some(_) => meta::usize_value(md, &key("attention.head_count_kv"))?,
            None => head_count,
        };
        if head_count == 0 || head_count_kv == 0 || head_count % head_count_kv != 0 {
            return Err(Error::metadata(
                &key("attention.head_count_kv"),
                format!("{head_count} heads cannot share {head_count_kv} KV heads"),
            ));
        }
        let head_dim = match md.get(&key("attention.key_length")) {
            Some(_) => meta::usize_value(md, &key("attention.key_length"))?,
            None => embedding_length / head_count,
        };
        let rms_norm_eps =
            meta::opt_f64(md, &key("attention.layer_norm_rms_epsilon"))?.unwrap_or(1e-6);
        let default_base = if architecture == Architecture::Llama {
            10_000.0
        } else {
            1_000_000.0
        };
        let rope_freq_base =
            meta::opt_f64(md, &key("rope.freq_base"))?.unwrap_or(default_base) as f32;
        let rope_freq_base_local =
            meta::opt_f64(md, &key("rope.local_freq_base"))?.unwrap_or(10_000.0) as f32;
        let sliding_window = match architecture {
            Architecture::Gemma3 => {
                meta::opt_u32(md, &key("attention.sliding_window"))?.map(|w| w as usize)
            }
            _ => None,
        };
        Ok(ModelConfig {
            architecture,
            block_count: meta::usize_value(md, &key("block_count"))?,
            embedding_length,
            head_count,
            head_count_kv,
            head_dim,
            rms_norm_eps,
            rope_freq_base,
            rope_freq_base_local,
            sliding_window,
            sliding_window_pattern: 6,
            context_length: meta::usize_value(md, &key("context_length"))?,
        })
    }
}

struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::rms_norm(&x.contiguous()?, &self.weight, self.eps)
    }
}

struct Layer {
    attn_norm: RmsNorm,
    wq: Linear,
    wk: Linear,
    wv: Linear,
    wo: Linear,
    bq: Option<Tensor>,
    bk: Option<Tensor>,
    bv: Option<Tensor>,
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
    post_attn_norm: Option<RmsNorm>,
    ffn_norm: RmsNorm,
    post_ffn_norm: Option<RmsNorm>,
    gate: Linear,
    up: Linear,
    down: Linear,
    sliding: bool,
}

/// Token embeddings kept quantized; rows are dequantized on lookup.
enum Embeddings {
    /// The file's table, in its ggml blocks.
    Table {
        table: Arc<QTensor>,
        row_bytes: usize,
        width: usize,
    },
    /// Tied embeddings read from the LM head's unpacked matrix, so the vocabulary table (the
    /// largest tensor of a small model) is held once, not twice.
    Tied,
}

impl Embeddings {
    fn lookup(&self, ids: &[u32], output: &Linear, device: &Device) -> candle_core::Result<Tensor> {
        let (table, row_bytes, width) = match (self, output) {
            (
                Embeddings::Table {
                    table,
                    row_bytes,
                    width,
                },
                _,
            ) => (table, *row_bytes, *width),
            (Embeddings::Tied, Linear::Blocks(m)) => {
                let (vocab, width) = (m.rows(), m.cols());
                let mut rows = vec![0f32; ids.len() * width];
                for (&id, row) in ids.iter().zip(rows.chunks_exact_mut(width)) {
                    if id as usize >= vocab {
                        candle_core::bail!("token id {id} is outside the vocabulary of {vocab}");
                    }
                    m.dequantize_row_into(id as usize, row);
                }
                return Tensor::from_vec(rows, (ids.len(), width), device);
            }
            (Embeddings::Tied, Linear::Candle(_)) => {
                candle_core::bail!("tied embeddings need the unpacked LM head")
            }
        };
        let data = table.data()?;
        let vocab = table.shape().dims()[0];
        let mut rows = Vec::with_capacity(ids.len() * row_bytes);
        for &id in ids {
            let id = id as usize;
            if id >= vocab {
                candle_core::bail!("token id {id} is outside the vocabulary of {vocab}");
            }
            rows.extend_from_slice(&data[id * row_bytes..(id + 1) * row_bytes]);
        }
        let rows = candle_core::quantized::ggml_file::qtensor_from_ggml(
            table.dtype(),
            &rows,
            vec![ids.len(), width],
            device,
        )?;
        rows.dequantize(device)
    }
}

/// Per-batch attention state: the KV cache of every layer and where each sequence starts.
///
/// Keys and values live in buffers `(batch, kv_heads, capacity, head_dim)` written in place, so a
/// decoding step copies one new slot instead of the whole cache.
pub struct BatchCache {
    keys: Vec<Option<Tensor>>,
    values: Vec<Option<Tensor>>,
    capacity: usize,
    /// First real (non-padding) slot of each sequence.
    starts: Vec<usize>,
    /// Slots filled so far (same for every sequence: padding included).
    len: usize,
}

impl BatchCache {
    /// Number of sequences.
    pub fn batch_size(&self) -> usize {
        self.starts.len()
    }

    /// Number of real tokens of sequence `b` in the cache.
    pub fn sequence_len(&self, b: usize) -> usize {
        self.len - self.starts[b]
    }

    /// Writes the new keys/values `(batch, kv_heads, new, head_dim)` of layer `index` after the
    /// `self.len` filled slots and returns views of all filled slots.
    fn append(&mut self, index: usize, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let new = k.dim(2)?;
        let needed = self.len + new;
        if needed > self.capacity {
            // Grow (the first layer to see the step decides for all layers).
            self.capacity = needed.div_ceil(128) * 128;
        }
        let mut views = Vec::with_capacity(2);
        for (store, fresh) in [(&mut self.keys[index], k), (&mut self.values[index], v)] {
            let (b, h, _, d) = fresh.dims4()?;
            let buffer = match store.take() {
                Some(buf) if buf.dim(2)? == self.capacity => buf,
                old => {
                    let buf =
                        Tensor::zeros((b, h, self.capacity, d), fresh.dtype(), fresh.device())?;
                    if let Some(old) = old {
                        buf.slice_set(&old.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
                    }
                    buf
                }
            };
            buffer.slice_set(&fresh.contiguous()?, 2, self.len)?;
            views.push(buffer.narrow(2, 0, needed)?);
            *store = Some(buffer);
        }
        let v = views.pop().expect("two views");
        let k = views.pop().expect("two views");
        Ok((k, v))
    }

    /// Keeps only the listed sequences (in that order), e.g. to drop finished ones.
    pub fn retain(&mut self, keep: &[usize]) -> Result<()> {
        self.select(keep)
    }

    /// Makes sequence `i` a copy of the current sequence `rows[i]`: rows may be dropped, reordered or
    /// repeated (beam search's reordering of the cache, as transformers' `_reorder_cache`).
    pub fn select(&mut self, rows: &[usize]) -> Result<()> {
        if rows.iter().copied().eq(0..self.starts.len()) {
            return Ok(());
        }
        if let Some(&bad) = rows.iter().find(|&&r| r >= self.starts.len()) {
            return Err(Error::Config(format!(
                "cache row {bad} does not exist (the cache holds {} sequences)",
                self.starts.len()
            )));
        }
        let keep = rows;
        let index = Tensor::new(
            keep.iter()
                .map(|&i| i as u32)
                .collect::<Vec<_>>()
                .as_slice(),
            &Device::Cpu,
        )?;
        for cache in self.keys.iter_mut().chain(self.values.iter_mut()) {
            if let Some(t) = cache.take() {
                *cache = Some(t.index_select(&index, 0)?);
            }
        }
        self.starts = keep.iter().map(|&i| self.starts[i]).collect();
        // Slots that are padding for every remaining sequence can go.
        let common = self.starts.iter().copied().min().unwrap_or(0);
        if common > 0 {
            for cache in self.keys.iter_mut().chain(self.values.iter_mut()) {
                if let Some(t) = cache.take() {
                    let kept = t.narrow(2, common, self.len - common)?.contiguous()?;
                    let buf = t.zeros_like()?;
                    buf.slice_set(&kept, 2, 0)?;
                    *cache = Some(buf);
                }
            }
            for s in &mut self.starts {
                *s -= common;
            }
            self.len -= common;
        }
        Ok(())
    }
}

/// A loaded model.
pub struct Model {
    config: ModelConfig,
    embeddings: Embeddings,
    layers: Vec<Layer>,
    output_norm: RmsNorm,
    output: Linear,
    device: Device,
    vocab_size: usize,
}

fn tensor(
    content: &gguf_file::Content,
    file: &mut std::fs::File,
    name: &str,
    device: &Device,
) -> Result<QTensor> {
    content
        .tensor(file, name, device)
        .map_err(|e| Error::metadata(name, format!("cannot load tensor: {e}")))
}

fn optional_tensor(
    content: &gguf_file::Content,
    file: &mut std::fs::File,
    name: &str,
    device: &Device,
) -> Result<Option<QTensor>> {
    if content.tensor_infos.contains_key(name) {
        tensor(content, file, name, device).map(Some)
    } else {
        Ok(None)
    }
}

/// A weight matrix applied as `x @ W^T`.
pub enum Linear {
    /// candle's own kernels: dense f32 weights, or quantized types the batched kernel lacks.
    Candle(QMatMul),
    /// The batched integer kernel of [`oerkit_qmatmul`] (llama.cpp numerics: activations
    /// quantized to 8 bits per 32 values).
    Blocks(BlockMatrix),
}

/// How weight matrices are kept in memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WeightFormat {
    /// Quantized codes (unpacked to 8 bits with per-16 scales, ~1.3 bytes per weight) multiplied
    /// like llama.cpp does: activations quantized per 32 values, a whole batch per pass over the
    /// weights. Matches llama.cpp's logits closely; throughput grows with the batch size.
    #[default]
    Quantized,
    /// Dequantized to f32 at load time: ~4x the memory, activations not quantized (closer to
    /// transformers' fp32 reference than to llama.cpp), candle's f32 GEMM.
    Dequantized,
}

impl Linear {
    pub fn new(q: QTensor) -> Result<Self> {
        Self::from_arc(Arc::new(q))
    }

    fn with_format(q: Arc<QTensor>, format: WeightFormat) -> Result<Self> {
        match format {
            WeightFormat::Quantized => Self::from_arc(q),
            WeightFormat::Dequantized => {
                Ok(Linear::Candle(QMatMul::Tensor(q.dequantize(&Device::Cpu)?)))
            }
        }
    }

    fn from_arc(q: Arc<QTensor>) -> Result<Self> {
        if q.shape().dims().len() == 2 && BlockMatrix::supports(q.dtype()) {
            Ok(Linear::Blocks(BlockMatrix::from_qtensor(&q)?))
        } else {
            Ok(Linear::Candle(QMatMul::from_arc(q)?))
        }
    }

    /// `x W^T` for several weight matrices that read the same `x`: quantized once when they
    /// all use the batched kernel.
    pub fn forward_each(linears: &[&Linear], x: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        let blocks: Option<Vec<&BlockMatrix>> = linears
            .iter()
            .map(|l| match l {
                Linear::Blocks(m) => Some(m),
                Linear::Candle(_) => None,
            })
            .collect();
        let Some(blocks) = blocks else {
            return linears.iter().map(|l| l.forward(x)).collect();
        };
        let mut dims = x.dims().to_vec();
        let width = dims.pop().unwrap_or(0);
        if let Some(m) = blocks.iter().find(|m| m.cols() != width) {
            candle_core::bail!(
                "activations of width {width} do not fit a ({}, {}) weight matrix",
                m.rows(),
                m.cols()
            );
        }
        let batch = dims.iter().product::<usize>();
        let values = x.flatten_all()?.to_dtype(candle_core::DType::F32)?;
        let acts = Activations::quantize(&values.to_vec1::<f32>()?, batch, width);
        blocks
            .iter()
            .map(|m| {
                let mut out_dims = dims.clone();
                out_dims.push(m.rows());
                Tensor::from_vec(m.matmul_activations(&acts), out_dims, x.device())
            })
            .collect()
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Linear::Candle(m) => m.forward(x),
            Linear::Blocks(_) => Linear::forward_each(&[self], x)?
                .pop()
                .ok_or_else(|| candle_core::Error::Msg("one output per weight matrix".into())),
        }
    }
}

impl Model {
    /// Loads the weights of a GGUF file whose header was already read.
    pub fn load(
        config: ModelConfig,
        content: &gguf_file::Content,
        file: &mut std::fs::File,
        format: WeightFormat,
    ) -> Result<Self> {
        let device = Device::Cpu;
        let eps = config.rms_norm_eps as f32;
        let dense = |q: QTensor| -> Result<Tensor> { Ok(q.dequantize(&device)?) };
        let norm = |q: QTensor| -> Result<RmsNorm> {
            Ok(RmsNorm {
                weight: q.dequantize(&device)?,
                eps,
            })
        };
        let mut load = |name: &str| tensor(content, file, name, &device);

        let embed = Arc::new(load("token_embd.weight")?);
        let dims = embed.shape().dims().to_vec();
        if dims.len() != 2 || dims[1] != config.embedding_length {
            return Err(Error::metadata(
                "token_embd.weight",
                format!(
                    "shape {dims:?} does not match embedding_length {}",
                    config.embedding_length
                ),
            ));
        }
        let dtype: GgmlDType = embed.dtype();
        let row_bytes = config.embedding_length / dtype.block_size() * dtype.type_size();
        let vocab_size = dims[0];
        let output_norm = norm(load("output_norm.weight")?)?;
        let mut layers = Vec::with_capacity(config.block_count);
        for i in 0..config.block_count {
            let name = |s: &str| format!("blk.{i}.{s}");
            let mut opt = |s: &str| optional_tensor(content, file, &name(s), &device);
            let (bq, bk, bv) = (
                opt("attn_q.bias")?,
                opt("attn_k.bias")?,
                opt("attn_v.bias")?,
            );
            let (q_norm, k_norm) = (opt("attn_q_norm.weight")?, opt("attn_k_norm.weight")?);
            let post_attn_norm = opt("post_attention_norm.weight")?;
            let post_ffn_norm = opt("post_ffw_norm.weight")?;
            let mut load = |s: &str| tensor(content, file, &name(s), &device);
            let qmm = |q: QTensor| Linear::with_format(Arc::new(q), format);
            let sliding =
                config.sliding_window.is_some() && (i + 1) % config.sliding_window_pattern != 0;
            layers.push(Layer {
                attn_norm: norm(load("attn_norm.weight")?)?,
                wq: qmm(load("attn_q.weight")?)?,
                wk: qmm(load("attn_k.weight")?)?,
                wv: qmm(load("attn_v.weight")?)?,
                wo: qmm(load("attn_output.weight")?)?,
                bq: bq.map(dense).transpose()?,
                bk: bk.map(dense).transpose()?,
                bv: bv.map(dense).transpose()?,
                q_norm: q_norm.map(norm).transpose()?,
                k_norm: k_norm.map(norm).transpose()?,
                post_attn_norm: post_attn_norm.map(norm).transpose()?,
                ffn_norm: norm(load("ffn_norm.weight")?)?,
                post_ffn_norm: post_ffn_norm.map(norm).transpose()?,
                gate: qmm(load("ffn_gate.weight")?)?,
                up: qmm(load("ffn_up.weight")?)?,
                down: qmm(load("ffn_down.weight")?)?,
                sliding,
            });
        }
        // Tied embeddings: the LM head reuses `token_embd` when there is no `output.weight`.
        let (output, embeddings) = match optional_tensor(content, file, "output.weight", &device)? {
            Some(q) => (Linear::with_format(Arc::new(q), format)?, None),
            None => {
                let output = Linear::with_format(embed.clone(), format)?;
                let tied = matches!(output, Linear::Blocks(_)).then_some(Embeddings::Tied);
                (output, tied)
            }
        };
        let embeddings = embeddings.unwrap_or(Embeddings::Table {
            table: embed,
            row_bytes,
            width: config.embedding_length,
        });
        Ok(Model {
            embeddings,
            config,
            layers,
            output_norm,
            output,
            device,
            vocab_size,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// An empty cache for `batch` sequences.
    pub fn new_cache(&self, batch: usize) -> BatchCache {
        BatchCache {
            keys: vec![None; self.layers.len()],
            values: vec![None; self.layers.len()],
            capacity: 0,
            starts: vec![0; batch],
            len: 0,
        }
    }

    /// Feeds `tokens[b]` (all the same length) to every sequence of the batch. `padding[b]` leading
    /// tokens of each row are padding (only allowed on the first call for a cache). Returns the
    /// logits of the last position of each row `(batch, vocab)`, or of every position
    /// `(batch, len, vocab)` with `all_positions`.
    pub fn forward(
        &self,
        tokens: &[Vec<u32>],
        padding: &[usize],
        cache: &mut BatchCache,
        all_positions: bool,
    ) -> Result<Tensor> {
        let batch = tokens.len();
        let seq_len = tokens.first().map_or(0, Vec::len);
        if batch != cache.batch_size() || tokens.iter().any(|t| t.len() != seq_len) || seq_len == 0
        {
            return Err(Error::Config(format!(
                "batch of {batch} rows does not fit a cache of {} sequences, or rows differ in length",
                cache.batch_size()
            )));
        }
        if cache.len == 0 {
            for (b, &pad) in padding.iter().enumerate() {
                cache.starts[b] = pad;
            }
        }
        let cfg = &self.config;
        let past = cache.len;
        let total = past + seq_len;
        let flat: Vec<u32> = tokens.iter().flatten().copied().collect();
        let mut x = self
            .embeddings
            .lookup(&flat, &self.output, &self.device)?
            .reshape((batch, seq_len, cfg.embedding_length))?;
        if cfg.architecture == Architecture::Gemma3 {
            x = (x * (cfg.embedding_length as f64).sqrt())?;
        }

        // Positions of the new tokens per sequence; padding slots get position 0 (they are masked).
        let positions: Vec<f32> = (0..batch)
            .flat_map(|b| {
                let start = cache.starts[b];
                (past..total).map(move |slot| slot.saturating_sub(start) as f32)
            })
            .collect();
        let rope_global = self.rope_tables(&positions, batch, seq_len, cfg.rope_freq_base)?;
        let rope_local = if cfg.sliding_window.is_some() {
            Some(self.rope_tables(&positions, batch, seq_len, cfg.rope_freq_base_local)?)
        } else {
            None
        };
        let mask_global = self.mask(cache, batch, past, seq_len, None)?;
        let mask_local = match cfg.sliding_window {
            Some(w) => Some(self.mask(cache, batch, past, seq_len, Some(w))?),
            None => None,
        };

        for (i, layer) in self.layers.iter().enumerate() {
            let (rope, mask) = match (layer.sliding, &rope_local, &mask_local) {
                (true, Some(r), Some(m)) => (r, m),
                _ => (&rope_global, &mask_global),
            };
            let residual = x.clone();
            let h = layer.attn_norm.forward(&x)?;
            let h = self.attention(layer, i, &h, rope, mask, cache)?;
            let h = match &layer.post_attn_norm {
                Some(n) => n.forward(&h)?,
                None => h,
            };
            x = (h + residual)?;
            let residual = x.clone();
            let h = layer.ffn_norm.forward(&x)?;
            let [gate, up]: [Tensor; 2] = Linear::forward_each(&[&layer.gate, &layer.up], &h)?
                .try_into()
                .map_err(|_| Error::Config("gate and up projections".into()))?;
            let gate = match cfg.architecture {
                Architecture::Gemma3 => gate.gelu()?,
                _ => candle_nn::ops::silu(&gate)?,
            };
            let h = layer.down.forward(&(gate * up)?)?;
            let h = match &layer.post_ffn_norm {
                Some(n) => n.forward(&h)?,
                None => h,
            };
            x = (h + residual)?;
        }
        cache.len = total;

        let x = if all_positions {
            x
        } else {
            x.narrow(1, seq_len - 1, 1)?
        };
        let x = self.output_norm.forward(&x)?;
        let logits = self.output.forward(&x)?;
        if all_positions {
            Ok(logits)
        } else {
            Ok(logits.squeeze(1)?)
        }
    }

    /// cos/sin tables `(batch, seq, head_dim/2)` for the given positions.
    fn rope_tables(
        &self,
        positions: &[f32],
        batch: usize,
        seq_len: usize,
        base: f32,
    ) -> Result<(Tensor, Tensor)> {
        let dim = self.config.head_dim;
        // As candle-transformers computes it, so results match its (and llama.cpp's) within rounding.
        let inv_freq: Vec<f32> = (0..dim)
            .step_by(2)
            .map(|i| 1f32 / base.powf(i as f32 / dim as f32))
            .collect();
        let inv_freq = Tensor::new(inv_freq.as_slice(), &self.device)?.reshape((1, dim / 2))?;
        let pos = Tensor::new(positions, &self.device)?.reshape((batch * seq_len, 1))?;
        let angles = pos.matmul(&inv_freq)?.reshape((batch, seq_len, dim / 2))?;
        Ok((angles.cos()?, angles.sin()?))
    }

    /// Additive mask `(batch, 1, seq, past + seq)`: 0 where a query may attend, -inf elsewhere.
    fn mask(
        &self,
        cache: &BatchCache,
        batch: usize,
        past: usize,
        seq_len: usize,
        window: Option<usize>,
    ) -> Result<Tensor> {
        let total = past + seq_len;
        let mut values = Vec::with_capacity(batch * seq_len * total);
        for b in 0..batch {
            let start = cache.starts[b];
            for q in past..total {
                for k in 0..total {
                    let visible = k <= q && k >= start && window.is_none_or(|w| q - k < w);
                    // A padding query sees itself only, so its row stays finite (no NaN spreads).
                    let allowed = visible || k == q;
                    values.push(if allowed { 0f32 } else { f32::NEG_INFINITY });
                }
            }
        }
        Ok(Tensor::from_vec(
            values,
            (batch, 1, seq_len, total),
            &self.device,
        )?)
    }

    fn attention(
        &self,
        layer: &Layer,
        index: usize,
        x: &Tensor,
        rope: &(Tensor, Tensor),
        mask: &Tensor,
        cache: &mut BatchCache,
    ) -> Result<Tensor> {
        let cfg = &self.config;
        let (batch, seq_len, _) = x.dims3()?;
        let [q, k, v]: [Tensor; 3] = Linear::forward_each(&[&layer.wq, &layer.wk, &layer.wv], x)?
            .try_into()
            .map_err(|_| Error::Config("q, k and v projections".into()))?;
        let project = |y: Tensor, bias: &Option<Tensor>, heads: usize| -> Result<Tensor> {
            let mut y = y;
            if let Some(bias) = bias {
                y = y.broadcast_add(bias)?;
            }
            Ok(y.reshape((batch, seq_len, heads, cfg.head_dim))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let mut q = project(q, &layer.bq, cfg.head_count)?;
        let mut k = project(k, &layer.bk, cfg.head_count_kv)?;
        let v = project(v, &layer.bv, cfg.head_count_kv)?;
        if let Some(n) = &layer.q_norm {
            q = n.forward(&q)?;
        }
        if let Some(n) = &layer.k_norm {
            k = n.forward(&k)?;
        }
        let (cos, sin) = rope;
        let (q, k) = match cfg.architecture {
            // GGUF llama weights are permuted for ggml's interleaved ("normal") RoPE.
            Architecture::Llama => (
                candle_nn::rotary_emb::rope_i(&q, cos, sin)?,
                candle_nn::rotary_emb::rope_i(&k, cos, sin)?,
            ),
            Architecture::Qwen2 | Architecture::Gemma3 => (
                candle_nn::rotary_emb::rope(&q, cos, sin)?,
                candle_nn::rotary_emb::rope(&k, cos, sin)?,
            ),
        };
        let (k, v) = cache.append(index, &k, &v)?;

        // Grouped-query attention without copying K/V per query head: the G query heads sharing
        // one KV head are folded into the row dimension of a single matmul.
        let groups = cfg.head_count / cfg.head_count_kv;
        let kv_heads = cfg.head_count_kv;
        let total = k.dim(2)?;
        let q = q.reshape((batch, kv_heads, groups * seq_len, cfg.head_dim))?;
        let scale = 1.0 / (cfg.head_dim as f64).sqrt();
        let scores = (q.matmul(&k.t()?)? * scale)?
            .reshape((batch, kv_heads, groups, seq_len, total))?
            .broadcast_add(&mask.unsqueeze(1)?)?;
        let weights = candle_nn::ops::softmax_last_dim(&scores)?.reshape((
            batch,
            kv_heads,
            groups * seq_len,
            total,
        ))?;
        let out = weights
            .matmul(&v)?
            .reshape((batch, cfg.head_count, seq_len, cfg.head_dim))?
            .transpose(1, 2)?
            .reshape((batch, seq_len, cfg.head_count * cfg.head_dim))?;
        Ok(layer.wo.forward(&out)?)
    }
}
