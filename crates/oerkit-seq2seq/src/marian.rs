//! OPUS-MT / Marian checkpoints as Hugging Face publishes them: `config.json`, `model.safetensors` or
//! `pytorch_model.bin`, `source.spm`, `target.spm`, `vocab.json`, optional `generation_config.json`
//! and `tokenizer_config.json`.
//!
//! The network follows transformers' `MarianMTModel`: scaled shared embeddings plus static sinusoidal
//! positions (sin block then cos block), post-norm layers, `final_logits_bias`; adapted from
//! candle-transformers' marian model to decode a padded batch with cached cross-attention keys and
//! rows that can be selected and reordered for beam search.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use oerkit_qmatmul::{Activations, BlockMatrix};
use serde::Deserialize;

use crate::attention::{self, KeyValues, Queries, SelfCache, Sources};
use crate::cpu::with_f32_slices;
use crate::error::{read_json, Result, Seq2SeqError};
use crate::generate::{Seq2SeqConfig, Seq2SeqModel};
use crate::sentencepiece::SpmModel;

/// `config.json` of a Marian checkpoint (fields oerkit uses).
#[derive(Debug, Clone, Deserialize)]
pub struct MarianConfig {
    pub vocab_size: usize,
    pub decoder_vocab_size: Option<usize>,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_activation")]
    pub activation_function: String,
    #[serde(default = "default_true")]
    pub scale_embedding: bool,
    pub pad_token_id: u32,
    pub eos_token_id: u32,
    pub decoder_start_token_id: u32,
    /// OPUS-MT conversions set it to EOS: the last step allowed by the length limit must emit it.
    #[serde(default)]
    pub forced_eos_token_id: Option<u32>,
    #[serde(default = "default_true")]
    pub share_encoder_decoder_embeddings: bool,
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub normalize_before: bool,
}

fn default_activation() -> String {
    "gelu".into()
}

fn default_true() -> bool {
    true
}

/// `generation_config.json` (fields oerkit uses).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GenerationDefaults {
    pub num_beams: Option<usize>,
    pub max_length: Option<usize>,
    pub bad_words_ids: Option<Vec<Vec<u32>>>,
    pub length_penalty: Option<f32>,
    pub forced_eos_token_id: Option<u32>,
}

/// How to hold the linear layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    F32,
    /// Q8_0 blocks (one f16 scale per 32 int8 weights) for every linear layer of the encoder and
    /// decoder and the output projection, multiplied by `oerkit-qmatmul`'s batched integer kernel
    /// (activations quantized to int8 per 32 values, as llama.cpp does); the embeddings used for
    /// lookups stay float32.
    Q8,
}

/// A whole checkpoint directory: tokenizer, model and the defaults it ships with.
pub struct MarianCheckpoint {
    pub dir: PathBuf,
    pub weights_file: PathBuf,
    pub config: MarianConfig,
    pub generation: GenerationDefaults,
    pub tokenizer: MarianTokenizer,
    pub model: MarianModel,
}

/// Required files, checked before anything is parsed so a missing one is named with what to do.
const REQUIRED: [&str; 4] = ["config.json", "source.spm", "target.spm", "vocab.json"];

impl MarianCheckpoint {
    pub fn load(dir: &Path, precision: Precision, device: &Device) -> Result<Self> {
        for name in REQUIRED {
            let path = dir.join(name);
            if !path.is_file() {
                return Err(Seq2SeqError::invalid(
                    &path,
                    format!(
                        "missing: an OPUS-MT checkpoint directory needs {}; download the whole \
                         Hugging Face repository",
                        REQUIRED.join(", ")
                    ),
                ));
            }
        }
        let config_path = dir.join("config.json");
        let config: MarianConfig = read_json(&config_path)?;
        let gen_path = dir.join("generation_config.json");
        let generation: GenerationDefaults = if gen_path.is_file() {
            read_json(&gen_path)?
        } else {
            GenerationDefaults::default()
        };
        let max_len = model_max_length(dir)?;
        let tokenizer = MarianTokenizer::load(dir, max_len)?;
        let target_vocab = config.decoder_vocab_size.unwrap_or(config.vocab_size);
        if tokenizer.vocab_len() != config.vocab_size || tokenizer.vocab_len() != target_vocab {
            return Err(Seq2SeqError::invalid(
                dir.join("vocab.json"),
                format!(
                    "{} entries, but {} says vocab_size {} (decoder {}); the vocabulary and the \
                     model come from different checkpoints",
                    tokenizer.vocab_len(),
                    config_path.display(),
                    config.vocab_size,
                    target_vocab
                ),
            ));
        }
        let weights_file = find_weights(dir)?;
        let weights = Weights::load(&weights_file, device)?;
        let mut bad_words: Vec<u32> = generation
            .bad_words_ids
            .iter()
            .flatten()
            .filter(|w| w.len() == 1)
            .map(|w| w[0])
            .collect();
        if generation.bad_words_ids.is_none() {
            // What the OPUS-MT conversion writes: the pad token may never be generated.
            bad_words.push(config.pad_token_id);
        }
        // generation_config.json wins, as in transformers; older checkpoints only have config.json.
        let forced_eos = generation
            .forced_eos_token_id
            .or(config.forced_eos_token_id);
        let model = MarianModel::new(&config, &weights, precision, bad_words, forced_eos, device)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            weights_file,
            config,
            generation,
            tokenizer,
            model,
        })
    }
}

fn model_max_length(dir: &Path) -> Result<usize> {
    #[derive(Deserialize)]
    struct TokenizerConfig {
        model_max_length: Option<f64>,
    }
    let path = dir.join("tokenizer_config.json");
    if !path.is_file() {
        return Ok(512);
    }
    let cfg: TokenizerConfig = read_json(&path)?;
    // Some configs say 1e30 ("no limit"); the model's positions are the real bound then.
    Ok(cfg
        .model_max_length
        .filter(|n| (1.0..1e9).contains(n))
        .map_or(512, |n| n as usize))
}

fn find_weights(dir: &Path) -> Result<PathBuf> {
    for name in ["model.safetensors", "pytorch_model.bin"] {
        let path = dir.join(name);
        if path.is_file() {
            return Ok(path);
        }
    }
    Err(Seq2SeqError::invalid(
        dir.join("model.safetensors"),
        "missing (and no pytorch_model.bin either): download the checkpoint's weights file",
    ))
}

/// The tensors of a weights file by name, handed out as float32.
///
/// The file is read tensor by tensor when the model asks for one, so that q8 mode never holds the
/// float32 copies of the matrices it quantizes (nor the whole file at once): the peak memory of
/// loading is what the model keeps plus one tensor. A `model.safetensors` is read row range by row
/// range; a `pytorch_model.bin` (zip entries, no row access) one whole tensor at a time.
struct Weights {
    path: PathBuf,
    device: Device,
    source: WeightSource,
}

enum WeightSource {
    /// `pytorch_model.bin` (a zip of the pickled state dict and one entry per storage): tensors read
    /// one at a time; the last one read whole is kept while its rows are asked for chunk by chunk.
    Pickled {
        tensors: candle_core::pickle::PthTensors,
        last: std::sync::Mutex<Option<(String, Tensor)>>,
    },
    /// `model.safetensors`: its header, and where the tensor data starts in the file.
    Indexed {
        file: std::fs::File,
        data_start: u64,
        index: HashMap<String, TensorEntry>,
    },
}

/// One tensor of a safetensors header.
#[derive(Deserialize)]
struct TensorEntry {
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
    /// Byte range relative to the end of the header.
    data_offsets: (u64, u64),
}

/// The safetensors format's bound on the JSON header (100 MB); a larger length means a corrupt file.
const MAX_SAFETENSORS_HEADER: u64 = 100_000_000;

impl Weights {
    fn load(path: &Path, device: &Device) -> Result<Self> {
        let source = if path.extension().is_some_and(|e| e == "safetensors") {
            Self::index_safetensors(path)?
        } else {
            let tensors = candle_core::pickle::PthTensors::new(path, None).map_err(|e| {
                Seq2SeqError::invalid(
                    path,
                    format!(
                        "cannot read the weights: {e}; the file is truncated or not a PyTorch \
                         checkpoint, download it again"
                    ),
                )
            })?;
            WeightSource::Pickled {
                tensors,
                last: std::sync::Mutex::new(None),
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            device: device.clone(),
            source,
        })
    }

    fn index_safetensors(path: &Path) -> Result<WeightSource> {
        use std::io::Read;
        let io = |source| Seq2SeqError::Io {
            path: path.to_path_buf(),
            source,
        };
        let corrupt = |what: String| {
            Seq2SeqError::invalid(
                path,
                format!(
                    "cannot read the weights: {what}; the file is truncated or not a safetensors \
                     file, download it again"
                ),
            )
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        let mut len_bytes = [0u8; 8];
        file.read_exact(&mut len_bytes)
            .map_err(|_| corrupt("shorter than a safetensors header".into()))?;
        let header_len = u64::from_le_bytes(len_bytes);
        if header_len > MAX_SAFETENSORS_HEADER || 8 + header_len > file_len {
            return Err(corrupt(format!(
                "header length {header_len} does not fit the file"
            )));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header).map_err(io)?;
        let mut entries: HashMap<String, serde_json::Value> = serde_json::from_slice(&header)
            .map_err(|e| corrupt(format!("unreadable header: {e}")))?;
        entries.remove("__metadata__");
        let data_start = 8 + header_len;
        let mut index = HashMap::with_capacity(entries.len());
        for (name, value) in entries {
            let entry: TensorEntry = serde_json::from_value(value)
                .map_err(|e| corrupt(format!("header entry `{name}`: {e}")))?;
            let (begin, end) = entry.data_offsets;
            if begin > end || data_start.checked_add(end).is_none_or(|e| e > file_len) {
                return Err(corrupt(format!(
                    "tensor `{name}` lies at bytes {begin}..{end} of the data, past the end of the file"
                )));
            }
            index.insert(name, entry);
        }
        Ok(WeightSource::Indexed {
            file,
            data_start,
            index,
        })
    }

    /// The tensor `name` as float32, `None` when the file has no such tensor.
    fn find(&self, name: &str) -> Result<Option<Tensor>> {
        self.find_rows(name, None)
    }

    /// The shape of tensor `name`, without reading its data.
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        match &self.source {
            WeightSource::Pickled { tensors, .. } => tensors
                .tensor_infos()
                .get(name)
                .map(|info| info.layout.dims().to_vec()),
            WeightSource::Indexed { index, .. } => index.get(name).map(|e| e.shape.clone()),
        }
    }

    /// Rows `start..start + count` of tensor `name` as float32 (all of it for `None`), reading
    /// only those rows' bytes of a safetensors file.
    fn find_rows(&self, name: &str, rows: Option<(usize, usize)>) -> Result<Option<Tensor>> {
        let out_of_range = |total: usize, (start, count): (usize, usize)| {
            Seq2SeqError::Other(format!(
                "rows {start}..{} of tensor `{name}`, which has {total}",
                start + count
            ))
        };
        let tensor = match &self.source {
            WeightSource::Pickled { tensors, last } => {
                let read = |name: &str| {
                    tensors.get(name).map_err(|e| {
                        Seq2SeqError::invalid(
                            &self.path,
                            format!("cannot read the weights: tensor `{name}`: {e}"),
                        )
                    })
                };
                match rows {
                    None => match read(name)? {
                        Some(t) => t,
                        None => return Ok(None),
                    },
                    Some((start, count)) => {
                        // A poisoned lock only means an earlier read failed: start afresh.
                        let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
                        if last.as_ref().is_none_or(|(n, _)| n != name) {
                            *last = read(name)?.map(|t| (name.to_string(), t));
                        }
                        let Some((_, t)) = last.as_ref() else {
                            return Ok(None);
                        };
                        let total = t.dims().first().copied().unwrap_or(0);
                        if start + count > total {
                            return Err(out_of_range(total, (start, count)));
                        }
                        t.narrow(0, start, count)?
                    }
                }
            }
            WeightSource::Indexed {
                file,
                data_start,
                index,
            } => {
                use candle_core::safetensors::Load;
                use std::io::{Read, Seek, SeekFrom};
                let Some(entry) = index.get(name) else {
                    return Ok(None);
                };
                let (mut begin, mut end) = entry.data_offsets;
                let mut shape = entry.shape.clone();
                if let Some((start, count)) = rows {
                    let total = shape.first().copied().unwrap_or(0);
                    let row_bits = shape[1..].iter().product::<usize>() * entry.dtype.bitsize();
                    if start + count > total || row_bits % 8 != 0 {
                        return Err(out_of_range(total, (start, count)));
                    }
                    begin += (start * row_bits / 8) as u64;
                    end = begin + (count * row_bits / 8) as u64;
                    shape[0] = count;
                }
                let mut bytes = vec![0u8; (end - begin) as usize];
                let mut reader = file;
                reader
                    .seek(SeekFrom::Start(data_start + begin))
                    .and_then(|_| reader.read_exact(&mut bytes))
                    .map_err(|source| Seq2SeqError::Io {
                        path: self.path.clone(),
                        source,
                    })?;
                let view = safetensors::tensor::TensorView::new(entry.dtype, shape, &bytes)
                    .map_err(|e| {
                        Seq2SeqError::invalid(
                            &self.path,
                            format!(
                                "cannot read the weights: tensor `{name}`: {e}; download them again"
                            ),
                        )
                    })?;
                view.load(&Device::Cpu).map_err(|e| {
                    Seq2SeqError::invalid(
                        &self.path,
                        format!("cannot read the weights: tensor `{name}`: {e}"),
                    )
                })?
            }
        };
        Ok(Some(tensor.to_dtype(DType::F32)?.to_device(&self.device)?))
    }

    fn get(&self, name: &str) -> Result<Tensor> {
        self.find(name)?.ok_or_else(|| {
            Seq2SeqError::invalid(
                &self.path,
                format!("tensor `{name}` is missing; is this a MarianMTModel checkpoint?"),
            )
        })
    }

    /// The first of `names` the file has (the first one when it has none, for the error).
    fn first_present<'a>(&self, names: &[&'a str]) -> &'a str {
        names
            .iter()
            .find(|n| self.shape(n).is_some())
            .unwrap_or(&names[0])
    }

    fn get_shaped(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self.get(name)?;
        if t.dims() != shape {
            return Err(Seq2SeqError::invalid(
                &self.path,
                format!(
                    "tensor `{name}` has shape {:?}, config.json implies {shape:?}",
                    t.dims()
                ),
            ));
        }
        Ok(t)
    }
}

/// Q8_0 blocks of a float32 tensor.
///
/// candle's `QTensor::quantize` reads the tensor's whole storage from its first element, ignoring a
/// view's offset and extent, so rows narrowed out of a larger tensor (the output projection quantized
/// chunk by chunk from a `pytorch_model.bin`) came out as the first rows again. Every tensor is
/// therefore copied into storage of its own first (`force_contiguous`; `copy` keeps the view).
fn quantize_q8_0(t: &Tensor) -> Result<QTensor> {
    Ok(QTensor::quantize(&t.force_contiguous()?, GgmlDType::Q8_0)?)
}

/// A weight matrix on `oerkit-qmatmul`'s batched kernel with a float32 bias added after.
struct QuantizedLinear {
    weight: BlockMatrix,
    bias: Vec<f32>,
}

impl std::fmt::Debug for QuantizedLinear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "QuantizedLinear({}x{})",
            self.weight.rows(),
            self.weight.cols()
        )
    }
}

impl QuantizedLinear {
    /// Q8_0 blocks of a float32 `[out, in]` weight (`in` a multiple of 32) and its `[out]` bias.
    fn quantize(weight: &Tensor, bias: &Tensor, weights_file: &Path) -> Result<Self> {
        let q = quantize_q8_0(weight)?;
        let weight = BlockMatrix::from_qtensor(&q).map_err(|e| {
            Seq2SeqError::invalid(
                weights_file,
                format!("cannot quantize a weight matrix: {e}"),
            )
        })?;
        Ok(Self {
            weight,
            bias: bias.flatten_all()?.to_vec1::<f32>()?,
        })
    }

    /// Q8_0 blocks of the `[rows, cols]` tensor `name` read a slice of rows at a time, so that its
    /// float32 values are never all in memory (the output projection's are 119 MB at OPUS-MT size).
    fn quantize_rows(w: &Weights, name: &str, rows: usize, bias: &Tensor) -> Result<Self> {
        const ROWS_PER_SLICE: usize = 2048;
        let cols = w
            .shape(name)
            .and_then(|s| s.get(1).copied())
            .unwrap_or_default();
        let q8 = GgmlDType::Q8_0;
        // Sized up front: grown by doubling, the buffer left glibc's heap so that decoding took
        // ~35% more page faults and ran ~7% slower at batch 1 (measured on the OPUS-MT-size model).
        let mut blocks = Vec::with_capacity(rows * cols / q8.block_size() * q8.type_size());
        for start in (0..rows).step_by(ROWS_PER_SLICE) {
            let count = ROWS_PER_SLICE.min(rows - start);
            let slice = w.find_rows(name, Some((start, count)))?.ok_or_else(|| {
                Seq2SeqError::invalid(&w.path, format!("tensor `{name}` is missing"))
            })?;
            blocks.extend_from_slice(&quantize_q8_0(&slice)?.data()?);
        }
        let weight =
            BlockMatrix::from_ggml_bytes(GgmlDType::Q8_0, &blocks, rows, cols).map_err(|e| {
                Seq2SeqError::invalid(&w.path, format!("cannot quantize `{name}`: {e}"))
            })?;
        Ok(Self {
            weight,
            bias: bias.flatten_all()?.to_vec1::<f32>()?,
        })
    }

    /// `x Wᵀ + b` for `x` of shape `[.., in]`; the kernel's rayon threads split the output rows.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (acts, dims) = quantize_input(x, self.weight.cols())?;
        self.apply(&acts, &dims)
    }

    /// `x Wᵀ + b` for an input already quantized; `dims` are its leading dimensions.
    fn apply(&self, acts: &Activations, dims: &[usize]) -> Result<Tensor> {
        if acts.cols() != self.weight.cols() {
            return Err(Seq2SeqError::Other(format!(
                "activations of width {} do not fit a ({}, {}) weight matrix",
                acts.cols(),
                self.weight.rows(),
                self.weight.cols()
            )));
        }
        let mut y = self.weight.matmul_activations(acts);
        for row in y.chunks_exact_mut(self.weight.rows()) {
            for (v, b) in row.iter_mut().zip(&self.bias) {
                *v += b;
            }
        }
        let mut dims = dims.to_vec();
        dims.push(self.weight.rows());
        Ok(Tensor::from_vec(y, dims, &Device::Cpu)?)
    }
}

/// `x` of shape `[.., width]` quantized per 32 values for the batched kernel, with its leading
/// dimensions; an error (not the kernel's assertion) when `width` is not what a layer expects.
fn quantize_input(x: &Tensor, width: usize) -> Result<(Activations, Vec<usize>)> {
    let mut dims = x.dims().to_vec();
    let last = dims.pop().unwrap_or(0);
    if last != width || width % GgmlDType::Q8_0.block_size() != 0 {
        return Err(Seq2SeqError::Other(format!(
            "activations of width {last} do not fit a weight matrix of width {width}"
        )));
    }
    let batch: usize = dims.iter().product();
    let values = x.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    Ok((Activations::quantize(&values, batch, width), dims))
}

/// `x Wᵀ + b` of several layers that read the same `x`: the quantized ones share one
/// quantization of it (an attention layer's q, k and v).
fn forward_shared<const N: usize>(layers: [&Linear; N], x: &Tensor) -> Result<[Tensor; N]> {
    let width = x.dims().last().copied().unwrap_or(0);
    let shared = if layers.iter().any(|l| matches!(l, Linear::Quantized(_))) {
        Some(quantize_input(x, width)?)
    } else {
        None
    };
    let mut out = Vec::with_capacity(N);
    for layer in layers {
        out.push(match (layer, &shared) {
            (Linear::Quantized(q), Some((acts, dims))) => q.apply(acts, dims)?,
            _ => layer.forward(x)?,
        });
    }
    out.try_into()
        .map_err(|_| Seq2SeqError::Other("forward_shared: layer count".into()))
}

/// A linear layer in float32 or Q8_0.
#[derive(Debug)]
enum Linear {
    Dense(candle_nn::Linear),
    Quantized(QuantizedLinear),
}

impl Linear {
    fn load(
        w: &Weights,
        prefix: &str,
        out_dim: usize,
        in_dim: usize,
        p: Precision,
    ) -> Result<Self> {
        let weight = w.get_shaped(&format!("{prefix}.weight"), &[out_dim, in_dim])?;
        let bias = w.get_shaped(&format!("{prefix}.bias"), &[out_dim])?;
        Ok(match p {
            Precision::Q8 if in_dim % GgmlDType::Q8_0.block_size() == 0 => {
                Linear::Quantized(QuantizedLinear::quantize(&weight, &bias, &w.path)?)
            }
            _ => Linear::Dense(candle_nn::Linear::new(weight, Some(bias))),
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Linear::Dense(l) => l.forward(x)?,
            Linear::Quantized(q) => q.forward(x)?,
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum Activation {
    Silu,
    Relu,
    Gelu,
    GeluTanh,
}

impl Activation {
    fn parse(name: &str, config_path: &Path) -> Result<Self> {
        Ok(match name {
            "swish" | "silu" => Self::Silu,
            "relu" => Self::Relu,
            "gelu" => Self::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" => Self::GeluTanh,
            other => {
                return Err(Seq2SeqError::invalid(
                    config_path,
                    format!(
                        "activation_function \"{other}\" is not supported (swish, silu, relu, gelu, gelu_new)"
                    ),
                ))
            }
        })
    }

    fn apply(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Self::Silu => candle_nn::ops::silu(x)?,
            Self::Relu => x.relu()?,
            Self::Gelu => x.gelu_erf()?,
            Self::GeluTanh => x.gelu()?,
        })
    }
}

/// LayerNorm computed in two passes (mean, then the variance of the centred values) as PyTorch does.
/// candle's fused kernel uses `E[x²] - E[x]²`, which cancels catastrophically when the mean is large
/// against the spread; with OPUS-MT's post-norm residuals that moved logits by up to 1e-2.
#[derive(Debug, Clone)]
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mean = x.mean_keepdim(candle_core::D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(candle_core::D::Minus1)?;
        let rstd = (var + self.eps)?.sqrt()?.recip()?;
        centred
            .broadcast_mul(&rstd)?
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

fn layer_norm(w: &Weights, prefix: &str, d: usize) -> Result<LayerNorm> {
    Ok(LayerNorm {
        weight: w.get_shaped(&format!("{prefix}.weight"), &[d])?,
        bias: w.get_shaped(&format!("{prefix}.bias"), &[d])?,
        eps: 1e-5,
    })
}

#[derive(Debug)]
struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    heads: usize,
    head_dim: usize,
    scaling: f64,
}

impl Attention {
    fn load(w: &Weights, prefix: &str, d: usize, heads: usize, p: Precision) -> Result<Self> {
        let head_dim = d / heads;
        Ok(Self {
            q: Linear::load(w, &format!("{prefix}.q_proj"), d, d, p)?,
            k: Linear::load(w, &format!("{prefix}.k_proj"), d, d, p)?,
            v: Linear::load(w, &format!("{prefix}.v_proj"), d, d, p)?,
            out: Linear::load(w, &format!("{prefix}.out_proj"), d, d, p)?,
            heads,
            head_dim,
            scaling: (head_dim as f64).powf(-0.5),
        })
    }

    /// `[b, t, d]` → `[b, heads, t, head_dim]`.
    fn split(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        Ok(x.reshape((b, t, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()?)
    }

    /// Unscaled queries: the scaling is applied to the scores (see [`Self::attend`]).
    fn query(&self, x: &Tensor) -> Result<Tensor> {
        self.split(&self.q.forward(x)?)
    }

    /// `[b, t, d]` → keys transposed `[b, heads, head_dim, t]` (what [`attention`] reads).
    fn split_keys(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        Ok(x.reshape((b, t, self.heads, self.head_dim))?
            .permute((0, 2, 3, 1))?
            .contiguous()?)
    }

    /// Keys transposed and values (see [`Self::split_keys`], [`Self::split`]).
    fn keys_values(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let [k, v] = forward_shared([&self.k, &self.v], x)?;
        Ok((self.split_keys(&k)?, self.split(&v)?))
    }

    /// Queries, keys and values of self-attention (one quantization of `x` in q8 mode).
    fn queries_keys_values(&self, x: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let [q, k, v] = forward_shared([&self.q, &self.k, &self.v], x)?;
        Ok((self.split(&q)?, self.split_keys(&k)?, self.split(&v)?))
    }

    /// Attention of split queries `[rows, heads, t, head_dim]` over keys `[sources, heads, head_dim,
    /// len]` and values `[sources, heads, len, head_dim]` (row r reads source `row_source[r]`, or source r when `None`); `mask`
    /// `[sources, 1, 1, len]` is added to the scores. See [`crate::attention`] for the arithmetic.
    ///
    /// The scaling multiplies the scores `q·kᵀ`, as transformers 5.x does (eager and sdpa alike), not
    /// the queries before the product (transformers 4.x, candle's example). The two differ only in
    /// float32 rounding, but OPUS-MT-style weights can give scores in the thousands where the softmax
    /// magnifies that rounding: with the fixture, scaling the queries first moved logits by up to 1e-2
    /// (PyTorch itself does the same when patched to scale first).
    fn attend(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
        row_source: Option<&[u32]>,
    ) -> Result<Tensor> {
        let (sources, _, _, len) = k.dims4()?;
        let mut inputs = vec![k.contiguous()?, v.contiguous()?];
        inputs.extend(mask.map(Tensor::contiguous).transpose()?);
        with_f32_slices(&inputs, |s| {
            let kv = KeyValues {
                keys_t: s[0],
                values: s[1],
                sources: Sources::Uniform {
                    count: sources,
                    len,
                    capacity: len,
                    mask: s.get(2).copied(),
                },
            };
            self.attend_to(q, &kv, row_source)
        })
    }

    /// Self-attention of sequences packed token after token, `x` `[1, tokens, d]` (see
    /// [`MarianModel::encode_packed`]): every token attends to the tokens of its own sequence.
    fn attend_packed(&self, x: &Tensor, packing: &Packing) -> Result<Tensor> {
        let tokens = packing.sequence_of.len();
        let [q, k, v] = forward_shared([&self.q, &self.k, &self.v], x)?;
        let (keys_t, values) = self.ragged_keys_values(&k, &v, &packing.lengths)?;
        let kv = KeyValues {
            keys_t: &keys_t,
            values: &values,
            sources: Sources::Ragged {
                starts: &packing.starts,
            },
        };
        // [1, tokens, heads * head_dim] is [tokens, heads, 1 position, head_dim].
        let q = q.reshape((tokens, self.heads, 1, self.head_dim))?;
        let h = self.attend_to(&q, &kv, Some(&packing.sequence_of))?;
        Ok(h.reshape((1, tokens, ()))?)
    }

    /// Keys and values `[1, tokens, d]` of packed sequences in [`Sources::Ragged`] layout.
    fn ragged_keys_values(
        &self,
        k: &Tensor,
        v: &Tensor,
        lengths: &[usize],
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        with_f32_slices(&[k.contiguous()?, v.contiguous()?], |s| {
            attention::ragged_keys_values(s[0], s[1], lengths, self.heads, self.head_dim)
        })
    }

    /// Self-attention of one decoder step `x` `[rows, 1, d]`: its keys and values join `cache`, then
    /// its queries attend to everything cached.
    fn attend_step(&self, x: &Tensor, cache: &mut SelfCache) -> Result<Tensor> {
        let [q, k, v] = forward_shared([&self.q, &self.k, &self.v], x)?;
        // [rows, 1, heads * head_dim] is the cache's [rows, heads, head_dim] step layout.
        with_f32_slices(&[k.contiguous()?, v.contiguous()?], |s| {
            cache.push(s[0], s[1])
        })?;
        self.attend_to(&self.split(&q)?, &cache.key_values(), None)
    }

    /// [`attention::attend`] of split queries, then the output projection.
    fn attend_to(&self, q: &Tensor, kv: &KeyValues, row_source: Option<&[u32]>) -> Result<Tensor> {
        let (rows, heads, t, head_dim) = q.dims4()?;
        let identity: Vec<u32>;
        let row_source = match row_source {
            Some(r) => r,
            None => {
                identity = (0..rows as u32).collect();
                &identity
            }
        };
        let q = q.contiguous()?;
        let ctx = with_f32_slices(std::slice::from_ref(&q), |s| {
            attention::attend(
                &Queries {
                    data: s[0],
                    rows,
                    heads,
                    len: t,
                    head_dim,
                },
                kv,
                row_source,
                self.scaling as f32,
            )
        })?;
        let ctx = Tensor::from_vec(ctx, (rows, t, heads * head_dim), q.device())?;
        self.out.forward(&ctx)
    }
}

/// Right-padded sequences packed token after token (padding left out).
struct Packing {
    lengths: Vec<usize>,
    /// [`attention::starts`] of `lengths`.
    starts: Vec<usize>,
    /// The sequence of each packed token.
    sequence_of: Vec<u32>,
}

impl Packing {
    fn new(lengths: Vec<usize>) -> Self {
        let sequence_of = (0..lengths.len() as u32)
            .flat_map(|s| std::iter::repeat_n(s, lengths[s as usize]))
            .collect();
        Self {
            starts: attention::starts(&lengths),
            lengths,
            sequence_of,
        }
    }
}

#[derive(Debug)]
struct FeedForward {
    fc1: Linear,
    fc2: Linear,
    act: Activation,
}

impl FeedForward {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fc2.forward(&self.act.apply(&self.fc1.forward(x)?)?)
    }
}

#[derive(Debug)]
struct EncoderLayer {
    attn: Attention,
    attn_norm: LayerNorm,
    ffn: FeedForward,
    ffn_norm: LayerNorm,
}

#[derive(Debug)]
struct DecoderLayer {
    self_attn: Attention,
    self_norm: LayerNorm,
    cross_attn: Attention,
    cross_norm: LayerNorm,
    ffn: FeedForward,
    ffn_norm: LayerNorm,
}

/// Per-batch decoding state. The encoder side (cross-attention keys and values) is kept once per
/// source input; decoder rows (beams) point at their source through `row_source`, so that beam search
/// reordering rows copies only the small self-attention caches, not every layer's cross keys/values.
#[derive(Debug, Clone)]
struct BatchState {
    /// Per decoder layer: cross-attention keys and values in [`attention`]'s layout.
    cross: Vec<(Vec<f32>, Vec<f32>)>,
    /// Where each source lies in `cross`.
    cross_sources: CrossSources,
    /// Values per source position in `cross` (heads x head_dim).
    position_size: usize,
    /// The source of each decoder row.
    row_source: Vec<u32>,
    /// Per decoder layer: self-attention keys and values so far.
    past: Vec<SelfCache>,
    step: usize,
}

/// Where each source's cross-attention keys and values lie.
#[derive(Debug, Clone)]
enum CrossSources {
    /// Right-padded inputs, kept without their padding ([`Sources::Ragged`]).
    Ragged { starts: Vec<usize> },
    /// Any other mask: every source `width` positions with the additive mask `[sources, width]`.
    Padded { width: usize, mask: Vec<f32> },
}

impl BatchState {
    /// Where each source lies in every layer's `cross` keys and values.
    fn sources(&self) -> Sources<'_> {
        match &self.cross_sources {
            CrossSources::Ragged { starts } => Sources::Ragged { starts },
            CrossSources::Padded { width, mask } => Sources::Uniform {
                count: mask.len() / (*width).max(1),
                len: *width,
                capacity: *width,
                mask: Some(mask),
            },
        }
    }

    fn cross_key_values(&self, layer: usize) -> KeyValues<'_> {
        let (keys_t, values) = &self.cross[layer];
        KeyValues {
            keys_t,
            values,
            sources: self.sources(),
        }
    }

    /// Drops the sources no row reads any more and renumbers `row_source`.
    fn compact_sources(&mut self) -> Result<()> {
        let sources = self.sources().count();
        let mut used: Vec<u32> = self.row_source.clone();
        used.sort_unstable();
        used.dedup();
        if used.len() == sources {
            return Ok(());
        }
        let mut renumber = vec![0u32; sources];
        for (new, &old) in used.iter().enumerate() {
            renumber[old as usize] = new as u32;
        }
        for s in self.row_source.iter_mut() {
            *s = renumber[*s as usize];
        }
        // Each source's keys (and values) are one contiguous block of its positions.
        let spans: Vec<(usize, usize)> = match &mut self.cross_sources {
            CrossSources::Ragged { starts } => {
                let spans: Vec<(usize, usize)> = used
                    .iter()
                    .map(|&s| (starts[s as usize], starts[s as usize + 1]))
                    .collect();
                *starts = attention::starts(&spans.iter().map(|(a, b)| b - a).collect::<Vec<_>>());
                spans
            }
            CrossSources::Padded { width, mask } => {
                let w = *width;
                *mask = used
                    .iter()
                    .flat_map(|&s| mask[s as usize * w..][..w].to_vec())
                    .collect();
                used.iter()
                    .map(|&s| (s as usize * w, (s as usize + 1) * w))
                    .collect()
            }
        };
        let size = self.position_size;
        let gather = |from: &[f32]| -> Vec<f32> {
            spans
                .iter()
                .flat_map(|&(a, b)| &from[a * size..b * size])
                .copied()
                .collect()
        };
        for (k, v) in self.cross.iter_mut() {
            (*k, *v) = (gather(k), gather(v));
        }
        Ok(())
    }
}

/// The output projection `[vocab, d_model]` with `final_logits_bias`.
///
/// q8 mode quantizes it too: it is the largest matrix of a decoder step (30M of the ~52M
/// multiply-adds per row and step at OPUS-MT size). On the OPUS-MT-size bench model (2 threads,
/// 16 forced tokens, 3 interleaved rounds at load 8-9 on 2 cores) q8 against float32 for this one
/// matrix gave 132-152 vs 88-106 tokens per CPU-second at beam 1 batch 1, 106-111 vs 49-59 at
/// beam 4 batch 1, 102-119 vs 88-96 at beam 4 batch 32, and no difference beyond the noise at
/// beam 1 batch 32.
enum OutputProjection {
    Dense { weight: Tensor, bias: Tensor },
    Quantized(Arc<QuantizedLinear>),
}

/// A token embedding table `[vocab, d_model]`.
enum Embedding {
    Dense(Tensor),
    /// q8 mode, tied to the output projection: rows are dequantized from its Q8_0 blocks.
    Quantized(Arc<QuantizedLinear>),
}

impl Embedding {
    /// The rows of u32 `ids` `[n]` → `[n, d_model]`.
    fn lookup(&self, ids: &Tensor) -> Result<Tensor> {
        match self {
            Self::Dense(table) => Ok(table.index_select(ids, 0)?),
            Self::Quantized(q) => {
                let (vocab, width) = (q.weight.rows(), q.weight.cols());
                let device = ids.device().clone();
                let ids = ids.to_vec1::<u32>()?;
                let mut rows = vec![0f32; ids.len() * width];
                for (&id, row) in ids.iter().zip(rows.chunks_exact_mut(width)) {
                    if id as usize >= vocab {
                        return Err(Seq2SeqError::Other(format!(
                            "token id {id} is outside the model's vocabulary of {vocab}"
                        )));
                    }
                    q.weight.dequantize_row_into(id as usize, row);
                }
                Ok(Tensor::from_vec(rows, (ids.len(), width), &device)?)
            }
        }
    }
}

impl OutputProjection {
    /// Logits `[rows, vocab]` of decoder states `[rows, d_model]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Dense { weight, bias } => {
                // With few rows (batch 1, beams) candle's gemm spends most of the time packing the
                // transposed [vocab, d_model] weight; multiplying the weight by xᵀ instead gave the
                // same values 1.7x faster at 4 rows (OPUS-MT size), and is slower from ~32 rows on.
                let logits = if x.dim(0)? <= SMALL_ROWS {
                    weight.matmul(&x.t()?)?.t()?
                } else {
                    x.matmul(&weight.t()?)?
                };
                Ok(logits.broadcast_add(bias)?.contiguous()?)
            }
            Self::Quantized(q) => q.forward(x),
        }
    }
}

/// The Marian encoder-decoder network.
pub struct MarianModel {
    cfg: Seq2SeqConfig,
    encoder_embed: Embedding,
    decoder_embed: Embedding,
    lm_head: OutputProjection,
    positions: Tensor,
    embed_scale: f64,
    encoder: Vec<EncoderLayer>,
    decoder: Vec<DecoderLayer>,
    device: Device,
    state: Option<BatchState>,
}

/// The static position table transformers computes at load time: sin of `p / 10000^(2k/d)` in the
/// first half of the columns, cos in the second half, evaluated in float64 and cast to float32.
pub fn sinusoidal_positions(n_positions: usize, dim: usize) -> Vec<Vec<f32>> {
    let half = dim.div_ceil(2);
    (0..n_positions)
        .map(|p| {
            let mut row = vec![0f32; dim];
            for j in 0..dim {
                let angle = p as f64 / 10000f64.powf((2 * (j / 2)) as f64 / dim as f64);
                if j % 2 == 0 {
                    row[j / 2] = angle.sin() as f32;
                } else {
                    row[half + j / 2] = angle.cos() as f32;
                }
            }
            row
        })
        .collect()
}

impl MarianModel {
    fn new(
        cfg: &MarianConfig,
        w: &Weights,
        p: Precision,
        bad_words_ids: Vec<u32>,
        forced_eos_token_id: Option<u32>,
        device: &Device,
    ) -> Result<Self> {
        let d = cfg.d_model;
        if cfg.normalize_before {
            return Err(Seq2SeqError::invalid(
                w.path.with_file_name("config.json"),
                "normalize_before = true (pre-norm) is not a Marian layout oerkit supports",
            ));
        }
        let config_path = w.path.with_file_name("config.json");
        if d % cfg.encoder_attention_heads != 0 || d % cfg.decoder_attention_heads != 0 {
            return Err(Seq2SeqError::invalid(
                config_path,
                "d_model is not a multiple of the attention heads",
            ));
        }
        let act = Activation::parse(&cfg.activation_function, &config_path)?;
        let target_vocab = cfg.decoder_vocab_size.unwrap_or(cfg.vocab_size);
        // Which tensor each table comes from; tied tables name the same tensor and share it.
        let shared = w.first_present(&["model.shared.weight", "model.encoder.embed_tokens.weight"]);
        let encoder_name = if cfg.share_encoder_decoder_embeddings {
            shared
        } else {
            w.first_present(&["model.encoder.embed_tokens.weight", "model.shared.weight"])
        };
        let decoder_name = if cfg.share_encoder_decoder_embeddings {
            shared
        } else {
            "model.decoder.embed_tokens.weight"
        };
        let head_name = if cfg.tie_word_embeddings {
            decoder_name
        } else {
            "lm_head.weight"
        };
        for (what, name, rows) in [
            ("encoder embeddings", encoder_name, cfg.vocab_size),
            ("decoder embeddings", decoder_name, target_vocab),
            ("lm_head", head_name, target_vocab),
        ] {
            let shape = w.shape(name).ok_or_else(|| {
                Seq2SeqError::invalid(
                    &w.path,
                    format!("tensor `{name}` is missing; is this a MarianMTModel checkpoint?"),
                )
            })?;
            if shape != [rows, d] {
                return Err(Seq2SeqError::invalid(
                    &w.path,
                    format!("{what} have shape {shape:?}, config.json implies [{rows}, {d}]"),
                ));
            }
        }
        let final_logits_bias = match w.find("final_logits_bias")? {
            Some(b) => b.reshape((1, target_vocab))?,
            None => Tensor::zeros((1, target_vocab), DType::F32, device)?,
        };
        // Float32 tables, each tensor read once however many tables it serves.
        let mut dense: HashMap<&str, Tensor> = HashMap::new();
        let mut dense_table = |name: &'static str| -> Result<Tensor> {
            if let Some(t) = dense.get(name) {
                return Ok(t.clone());
            }
            let t = w.get(name)?;
            dense.insert(name, t.clone());
            Ok(t)
        };
        let (lm_head, encoder_embed, decoder_embed) = match p {
            Precision::Q8 if d % GgmlDType::Q8_0.block_size() == 0 => {
                let head = Arc::new(QuantizedLinear::quantize_rows(
                    w,
                    head_name,
                    target_vocab,
                    &final_logits_bias,
                )?);
                // Tables tied to the head are read back from its blocks, so that no float32 copy
                // of the [vocab, d_model] matrix is ever held whole (119 MB at OPUS-MT size).
                let mut table = |name: &'static str| -> Result<Embedding> {
                    Ok(if name == head_name {
                        Embedding::Quantized(Arc::clone(&head))
                    } else {
                        Embedding::Dense(dense_table(name)?)
                    })
                };
                let encoder_embed = table(encoder_name)?;
                let decoder_embed = table(decoder_name)?;
                (
                    OutputProjection::Quantized(head),
                    encoder_embed,
                    decoder_embed,
                )
            }
            _ => (
                OutputProjection::Dense {
                    weight: dense_table(head_name)?,
                    bias: final_logits_bias,
                },
                Embedding::Dense(dense_table(encoder_name)?),
                Embedding::Dense(dense_table(decoder_name)?),
            ),
        };
        let table = sinusoidal_positions(cfg.max_position_embeddings, d);
        let positions = Tensor::from_vec(
            table.into_iter().flatten().collect::<Vec<f32>>(),
            (cfg.max_position_embeddings, d),
            device,
        )?;
        let ffn = |prefix: &str, dim: usize| -> Result<FeedForward> {
            Ok(FeedForward {
                fc1: Linear::load(w, &format!("{prefix}.fc1"), dim, d, p)?,
                fc2: Linear::load(w, &format!("{prefix}.fc2"), d, dim, p)?,
                act,
            })
        };
        let encoder = (0..cfg.encoder_layers)
            .map(|i| {
                let pre = format!("model.encoder.layers.{i}");
                Ok(EncoderLayer {
                    attn: Attention::load(
                        w,
                        &format!("{pre}.self_attn"),
                        d,
                        cfg.encoder_attention_heads,
                        p,
                    )?,
                    attn_norm: layer_norm(w, &format!("{pre}.self_attn_layer_norm"), d)?,
                    ffn: ffn(&pre, cfg.encoder_ffn_dim)?,
                    ffn_norm: layer_norm(w, &format!("{pre}.final_layer_norm"), d)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let decoder = (0..cfg.decoder_layers)
            .map(|i| {
                let pre = format!("model.decoder.layers.{i}");
                let heads = cfg.decoder_attention_heads;
                Ok(DecoderLayer {
                    self_attn: Attention::load(w, &format!("{pre}.self_attn"), d, heads, p)?,
                    self_norm: layer_norm(w, &format!("{pre}.self_attn_layer_norm"), d)?,
                    cross_attn: Attention::load(w, &format!("{pre}.encoder_attn"), d, heads, p)?,
                    cross_norm: layer_norm(w, &format!("{pre}.encoder_attn_layer_norm"), d)?,
                    ffn: ffn(&pre, cfg.decoder_ffn_dim)?,
                    ffn_norm: layer_norm(w, &format!("{pre}.final_layer_norm"), d)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            cfg: Seq2SeqConfig {
                decoder_start_token_id: cfg.decoder_start_token_id,
                eos_token_id: cfg.eos_token_id,
                pad_token_id: cfg.pad_token_id,
                vocab_size: target_vocab,
                max_length: cfg.max_position_embeddings,
                bad_words_ids,
                forced_eos_token_id,
            },
            encoder_embed,
            decoder_embed,
            lm_head,
            positions,
            embed_scale: if cfg.scale_embedding {
                (d as f64).sqrt()
            } else {
                1.0
            },
            encoder,
            decoder,
            device: device.clone(),
            state: None,
        })
    }

    /// The encoder's last hidden state `[batch, src_len, d_model]` of a padded batch.
    pub fn encoder_hidden(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        let (b, s) = input_ids.dims2()?;
        self.check_input_length(s)?;
        let emb = self
            .encoder_embed
            .lookup(&input_ids.flatten_all()?)?
            .reshape((b, s, ()))?;
        let mut x = (emb * self.embed_scale)?.broadcast_add(&self.positions.narrow(0, 0, s)?)?;
        let mask = mask_bias(attention_mask)?;
        for layer in &self.encoder {
            let (q, k, v) = layer.attn.queries_keys_values(&x)?;
            let h = layer.attn.attend(&q, &k, &v, Some(&mask), None)?;
            x = layer.attn_norm.forward(&(x + h)?)?;
            let h = layer.ffn.forward(&x)?;
            x = layer.ffn_norm.forward(&(x + h)?)?;
        }
        Ok(x)
    }
}

impl MarianModel {
    /// Per decoder layer, cross-attention keys and values of a right-padded batch in
    /// [`Sources::Ragged`] layout, computed on its real tokens only (see [`Self::encode_packed`]): the
    /// encoder, the key/value projections and attention never run on padding, and no padding is
    /// stored (a batch of segments padded to its longest one otherwise spends most of its encoder
    /// time and cache memory there).
    fn cross_keys_values_unpadded(
        &self,
        input_ids: &Tensor,
        packing: &Packing,
    ) -> Result<Vec<(Vec<f32>, Vec<f32>)>> {
        let hidden = self.encode_packed(input_ids, packing)?;
        self.decoder
            .iter()
            .map(|layer| {
                let attn = &layer.cross_attn;
                let [k, v] = forward_shared([&attn.k, &attn.v], &hidden)?;
                attn.ragged_keys_values(&k, &v, &packing.lengths)
            })
            .collect()
    }

    /// An input of `len` tokens fits the model's position table.
    fn check_input_length(&self, len: usize) -> Result<()> {
        let positions = self.positions.dim(0)?;
        if len > positions {
            return Err(Seq2SeqError::Other(format!(
                "input of {len} tokens exceeds the model's {positions} positions"
            )));
        }
        Ok(())
    }

    /// Encoder states `[1, tokens, d]` of right-padded inputs with every input's tokens packed one
    /// after another: the projections and feed-forward layers run once over all real tokens (one
    /// large product instead of one per input, and none over padding), attention stays within each
    /// input.
    fn encode_packed(&self, input_ids: &Tensor, packing: &Packing) -> Result<Tensor> {
        self.check_input_length(packing.lengths.iter().copied().max().unwrap_or(0))?;
        let rows = input_ids.to_vec2::<u32>()?;
        let mut ids = Vec::with_capacity(packing.sequence_of.len());
        let mut positions = Vec::with_capacity(packing.sequence_of.len());
        for (row, &len) in rows.iter().zip(&packing.lengths) {
            ids.extend_from_slice(&row[..len]);
            positions.extend(0..len as u32);
        }
        let tokens = ids.len();
        let ids = Tensor::from_vec(ids, tokens, &self.device)?;
        let positions = Tensor::from_vec(positions, tokens, &self.device)?;
        let emb = self.encoder_embed.lookup(&ids)?;
        let pos = self.positions.index_select(&positions, 0)?;
        let mut x = ((emb * self.embed_scale)? + pos)?.reshape((1, tokens, ()))?;
        for layer in &self.encoder {
            let h = layer.attn.attend_packed(&x, packing)?;
            x = layer.attn_norm.forward(&(x + h)?)?;
            let h = layer.ffn.forward(&x)?;
            x = layer.ffn_norm.forward(&(x + h)?)?;
        }
        Ok(x)
    }
}

/// The length of every row when the `[b, s]` 1/0 mask is right padding with at least one token per
/// row (what [`crate::generate::pad_batch`] builds); `None` for any other mask.
fn right_padded_lengths(attention_mask: &Tensor) -> Result<Option<Vec<usize>>> {
    let rows = attention_mask.to_dtype(DType::U32)?.to_vec2::<u32>()?;
    let mut lengths = Vec::with_capacity(rows.len());
    for row in &rows {
        let len = row.iter().take_while(|&&m| m != 0).count();
        if len == 0 || row[len..].iter().any(|&m| m != 0) {
            return Ok(None);
        }
        lengths.push(len);
    }
    Ok(Some(lengths))
}

/// Up to this many decoder rows the output projection is computed as `(W·xᵀ)ᵀ` (see `decode_step`).
const SMALL_ROWS: usize = 8;

/// `[b, s]` 1/0 mask → `[b, 1, 1, s]` additive bias (0 / -inf).
fn mask_bias(attention_mask: &Tensor) -> Result<Tensor> {
    let (b, s) = attention_mask.dims2()?;
    let keep = attention_mask.to_dtype(DType::F32)?;
    // 1 → 0, 0 → -inf: (1 - m) * -inf would give NaN for m = 1, so go through a select.
    let zeros = Tensor::zeros((b, s), DType::F32, keep.device())?;
    let neg = Tensor::full(f32::NEG_INFINITY, (b, s), keep.device())?;
    let bias = keep.ne(0f32)?.where_cond(&zeros, &neg)?;
    Ok(bias.reshape((b, 1, 1, s))?)
}

impl Seq2SeqModel for MarianModel {
    fn config(&self) -> &Seq2SeqConfig {
        &self.cfg
    }

    fn encode(&mut self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<()> {
        let (batch, width) = input_ids.dims2()?;
        let (cross, cross_sources) = match right_padded_lengths(attention_mask)? {
            Some(lengths) => {
                let packing = Packing::new(lengths);
                let cross = self.cross_keys_values_unpadded(input_ids, &packing)?;
                (
                    cross,
                    CrossSources::Ragged {
                        starts: packing.starts,
                    },
                )
            }
            None => {
                let hidden = self.encoder_hidden(input_ids, attention_mask)?;
                let cross = self
                    .decoder
                    .iter()
                    .map(|l| {
                        let (k, v) = l.cross_attn.keys_values(&hidden)?;
                        Ok((k.flatten_all()?.to_vec1()?, v.flatten_all()?.to_vec1()?))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let mask = mask_bias(attention_mask)?.flatten_all()?.to_vec1()?;
                (cross, CrossSources::Padded { width, mask })
            }
        };
        let position_size = self
            .decoder
            .first()
            .map_or(0, |l| l.cross_attn.heads * l.cross_attn.head_dim);
        self.state = Some(BatchState {
            cross,
            cross_sources,
            position_size,
            row_source: (0..batch as u32).collect(),
            past: self
                .decoder
                .iter()
                .map(|l| SelfCache::new(batch, l.self_attn.heads, l.self_attn.head_dim))
                .collect(),
            step: 0,
        });
        Ok(())
    }

    fn decode_step(&mut self, tokens: &[u32]) -> Result<Tensor> {
        let state = self
            .state
            .as_mut()
            .ok_or_else(|| Seq2SeqError::Other("decode_step before encode".into()))?;
        if state.step >= self.positions.dim(0)? {
            return Err(Seq2SeqError::Other(format!(
                "decoding past the model's {} positions",
                self.positions.dim(0)?
            )));
        }
        let rows = tokens.len();
        if rows != state.row_source.len() {
            return Err(Seq2SeqError::Other(format!(
                "decode_step got {rows} tokens for {} rows",
                state.row_source.len()
            )));
        }
        let ids = Tensor::from_slice(tokens, rows, &self.device)?;
        let emb = self.decoder_embed.lookup(&ids)?.reshape((rows, 1, ()))?;
        let pos = self.positions.narrow(0, state.step, 1)?;
        let mut x = (emb * self.embed_scale)?.broadcast_add(&pos)?;
        for (i, layer) in self.decoder.iter().enumerate() {
            let h = layer.self_attn.attend_step(&x, &mut state.past[i])?;
            x = layer.self_norm.forward(&(x + h)?)?;
            let q = layer.cross_attn.query(&x)?;
            let h = layer.cross_attn.attend_to(
                &q,
                &state.cross_key_values(i),
                Some(&state.row_source),
            )?;
            x = layer.cross_norm.forward(&(x + h)?)?;
            let h = layer.ffn.forward(&x)?;
            x = layer.ffn_norm.forward(&(x + h)?)?;
        }
        state.step += 1;
        let x = x.reshape((rows, ()))?;
        self.lm_head.forward(&x)
    }

    fn select_rows(&mut self, rows: &[u32]) -> Result<()> {
        let Some(state) = self.state.as_mut() else {
            return Ok(());
        };
        let mut row_source = Vec::with_capacity(rows.len());
        for &r in rows {
            let source = state.row_source.get(r as usize).copied().ok_or_else(|| {
                Seq2SeqError::Other(format!(
                    "select_rows: row {r} of {}",
                    state.row_source.len()
                ))
            })?;
            row_source.push(source);
        }
        state.row_source = row_source;
        state.compact_sources()?;
        for cache in &mut state.past {
            cache.select(rows)?;
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.state = None;
    }
}

/// MarianTokenizer's behaviour: source text → source.spm pieces → ids through `vocab.json`
/// (pieces it lacks → `<unk>`), `</s>` appended; ids → target pieces joined, `▁` → space.
pub struct MarianTokenizer {
    source: tokenizers::Tokenizer,
    vocab: HashMap<String, u32>,
    pieces: Vec<String>,
    eos: u32,
    unk: u32,
    pad: u32,
    max_len: usize,
}

impl MarianTokenizer {
    pub fn load(dir: &Path, max_len: usize) -> Result<Self> {
        let source = SpmModel::load(&dir.join("source.spm"))?.to_tokenizer()?;
        // target.spm must parse too: a broken file is an error now, not at the first decode.
        SpmModel::load(&dir.join("target.spm"))?;
        let vocab_path = dir.join("vocab.json");
        let vocab: HashMap<String, u32> = read_json(&vocab_path)?;
        let mut pieces = vec![String::new(); vocab.len()];
        for (piece, &id) in &vocab {
            let slot = pieces.get_mut(id as usize).ok_or_else(|| {
                Seq2SeqError::invalid(
                    &vocab_path,
                    format!(
                        "id {id} of \"{piece}\" is outside 0..{}; ids must be dense",
                        vocab.len()
                    ),
                )
            })?;
            *slot = piece.clone();
        }
        let special = |name: &str| {
            vocab.get(name).copied().ok_or_else(|| {
                Seq2SeqError::invalid(&vocab_path, format!("has no \"{name}\" entry"))
            })
        };
        Ok(Self {
            eos: special("</s>")?,
            unk: special("<unk>")?,
            pad: special("<pad>")?,
            source,
            vocab,
            pieces,
            max_len: max_len.max(1),
        })
    }

    pub fn vocab_len(&self) -> usize {
        self.pieces.len()
    }

    /// The pieces of `text` (a leading `>>xx<<` target-language code is one piece), untruncated.
    pub fn pieces(&self, text: &str) -> Result<Vec<String>> {
        let (code, rest) = split_language_code(text);
        let enc = self
            .source
            .encode(rest, false)
            .map_err(|e| Seq2SeqError::Tokenizer(e.to_string()))?;
        let mut out: Vec<String> = code.map(str::to_string).into_iter().collect();
        out.extend(enc.get_tokens().iter().cloned());
        Ok(out)
    }

    /// Ids as `tokenizer(text, truncation=True)` gives them: at most `model_max_length`, ending in `</s>`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.encode_with_limit(text, Some(self.max_len))
    }

    /// Ids with an explicit limit (`None`: no truncation).
    pub fn encode_with_limit(&self, text: &str, limit: Option<usize>) -> Result<Vec<u32>> {
        let mut ids: Vec<u32> = self
            .pieces(text)?
            .iter()
            .map(|p| self.vocab.get(p).copied().unwrap_or(self.unk))
            .collect();
        if let Some(limit) = limit {
            ids.truncate(limit.saturating_sub(1));
        }
        ids.push(self.eos);
        Ok(ids)
    }

    /// `decode(ids, skip_special_tokens=True)`.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut text = String::new();
        for &id in ids {
            if id == self.eos || id == self.pad || id == self.unk {
                continue;
            }
            if let Some(piece) = self.pieces.get(id as usize) {
                text.push_str(piece);
            }
        }
        text.replace('▁', " ").trim().to_string()
    }
}

/// MarianTokenizer's `>>xx<<` prefix (multilingual OPUS-MT models select the target language with it).
fn split_language_code(text: &str) -> (Option<&str>, &str) {
    if let Some(rest) = text.strip_prefix(">>") {
        if let Some(end) = rest.find("<<") {
            if end > 0 && !rest[..end].contains(char::is_whitespace) {
                return (Some(&text[..end + 4]), &text[end + 4..]);
            }
        }
    }
    (None, text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn language_codes_split_off() {
        assert_eq!(
            split_language_code(">>spa<< Hello"),
            (Some(">>spa<<"), " Hello")
        );
        assert_eq!(split_language_code("Hello"), (None, "Hello"));
        assert_eq!(split_language_code(">> x<<"), (None, ">> x<<"));
    }

    #[test]
    fn q8_linear_matches_the_float32_layer_within_quantization_error() {
        // Deterministic, uneven values (a sine of a quadratic index), so that every output depends
        // on every weight, row order and the bias; a transposed or misplaced result fails.
        let values = |n: usize, seed: f32| -> Vec<f32> {
            (0..n)
                .map(|i| ((i * i) as f32 * 0.37 + seed).sin())
                .collect()
        };
        let (rows, cols) = (48, 96);
        let weight =
            Tensor::from_vec(values(rows * cols, 0.1), (rows, cols), &Device::Cpu).unwrap();
        let bias = Tensor::from_vec(values(rows, 2.0), rows, &Device::Cpu).unwrap();
        let x = Tensor::from_vec(values(2 * 3 * cols, 5.0), (2, 3, cols), &Device::Cpu).unwrap();
        let dense = candle_nn::Linear::new(weight.clone(), Some(bias.clone()))
            .forward(&x)
            .unwrap();
        let q8 = QuantizedLinear::quantize(&weight, &bias, Path::new("test.safetensors"))
            .unwrap()
            .forward(&x)
            .unwrap();
        assert_eq!(q8.dims(), [2, 3, rows]);
        let dense: Vec<f32> = dense.flatten_all().unwrap().to_vec1().unwrap();
        let q8: Vec<f32> = q8.flatten_all().unwrap().to_vec1().unwrap();
        let norm = dense.iter().map(|v| v * v).sum::<f32>().sqrt();
        let error = dense
            .iter()
            .zip(&q8)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
            .sqrt();
        // Weights and activations each rounded to 8 bits per 32 values: ~1% relative error.
        assert!(error / norm < 0.02, "relative error {}", error / norm);
        assert!(error > 0.0, "quantization must change something");
        // A width that does not fit the matrix is an error, not a panic.
        let narrow = Tensor::zeros((1, cols - 32), DType::F32, &Device::Cpu).unwrap();
        assert!(QuantizedLinear::quantize(&weight, &bias, Path::new("w"))
            .unwrap()
            .forward(&narrow)
            .is_err());
    }

    /// Rows narrowed out of a larger tensor (how the output projection of a `pytorch_model.bin` is
    /// quantized, 2048 rows at a time) quantize to their own blocks, not the first rows'.
    #[test]
    fn q8_quantization_of_a_row_view_reads_its_own_rows() {
        let values: Vec<f32> = (0..4 * 32).map(|i| (i as f32 * 0.37).sin()).collect();
        let whole = Tensor::from_vec(values, (4, 32), &Device::Cpu).unwrap();
        let view = whole.narrow(0, 2, 2).unwrap();
        let own = Tensor::from_vec(
            view.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            (2, 32),
            &Device::Cpu,
        )
        .unwrap();
        assert_eq!(
            quantize_q8_0(&view).unwrap().data().unwrap(),
            quantize_q8_0(&own).unwrap().data().unwrap()
        );
        assert_ne!(
            quantize_q8_0(&view).unwrap().data().unwrap(),
            quantize_q8_0(&whole.narrow(0, 0, 2).unwrap())
                .unwrap()
                .data()
                .unwrap()
        );
    }

    #[test]
    fn q8_tied_embedding_rows_are_the_quantized_head_rows() {
        let (vocab, width) = (10, 64);
        let values: Vec<f32> = (0..vocab * width)
            .map(|i| (i as f32 * 0.71).cos() * (1.0 + (i / width) as f32))
            .collect();
        let table = Tensor::from_vec(values.clone(), (vocab, width), &Device::Cpu).unwrap();
        let bias = Tensor::zeros(vocab, DType::F32, &Device::Cpu).unwrap();
        let head = Arc::new(QuantizedLinear::quantize(&table, &bias, Path::new("w")).unwrap());
        let embedding = Embedding::Quantized(Arc::clone(&head));
        let ids = Tensor::from_slice(&[7u32, 0, 7, 9], 4, &Device::Cpu).unwrap();
        let rows: Vec<Vec<f32>> = embedding.lookup(&ids).unwrap().to_vec2().unwrap();
        let dequantized = head.weight.dequantize();
        for (row, id) in rows.iter().zip([7usize, 0, 7, 9]) {
            assert_eq!(row[..], dequantized[id * width..(id + 1) * width]);
            // Within Q8_0 rounding of the float32 row: half a step of max/127, plus the f16 scale's
            // own rounding (2^-11 relative, times up to 127 steps).
            let max = 1.0 + id as f32;
            for (q, f) in row.iter().zip(&values[id * width..(id + 1) * width]) {
                assert!(
                    (q - f).abs() <= 0.5 * max / 127.0 + max / 1024.0,
                    "{q} vs {f}"
                );
            }
        }
        let outside = Tensor::from_slice(&[10u32], 1, &Device::Cpu).unwrap();
        let err = embedding.lookup(&outside).unwrap_err().to_string();
        assert!(
            err.contains("outside the model's vocabulary of 10"),
            "{err}"
        );
    }

    #[test]
    fn positions_are_sin_then_cos() {
        let t = sinusoidal_positions(3, 4);
        assert_eq!(t[0], vec![0.0, 0.0, 1.0, 1.0]);
        assert_eq!(t[1][0], 1f64.sin() as f32);
        assert_eq!(t[1][2], 1f64.cos() as f32);
        assert_eq!(t[2][1], (2.0 / 100f64).sin() as f32);
    }
}
