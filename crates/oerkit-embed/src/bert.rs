//! Our own BERT encoder forward pass (CPU, f32), written for sentence embeddings.
//!
//! Why not candle-transformers' `BertModel`: it pads every batch to its longest member, runs
//! three separate Q/K/V matmuls, and transposes and copies tensors around attention and the
//! softmax. Here:
//! - the word pieces of a batch are packed row after row (no padding at all), so every linear
//!   layer is one matmul over all real tokens of the batch, and a bigger batch only means bigger,
//!   more efficient matmuls;
//! - Q, K and V come from one fused matmul (`[tokens, 3·hidden]`);
//! - attention runs per (sequence, head) over the sequence's real length, reading Q, K and V in
//!   place through strides (no transposes, no mask: padded keys do not exist);
//! - GELU (exact, with erf), softmax and LayerNorm are plain loops over contiguous rows;
//! - matmuls use the `gemm` crate (candle's own CPU kernel, runtime-dispatched AVX2/AVX-512),
//!   rayon spreads matmuls, attention heads and row-wise steps over the pool's threads.
//!
//! The arithmetic is that of the Hugging Face model: the golden test holds every element within
//! 1e-5 of sentence-transformers.

use crate::error::EmbedError;
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct};
use rayon::prelude::*;

/// Where one forward pass runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Threads {
    /// Split matmuls, attention heads and row-wise steps over rayon's pool: for a lone batch.
    Pool,
    /// Everything on the calling thread: for batches that run side by side, one per pool thread.
    /// On a loaded machine every fork-join inside a pass can wait a scheduler slice for a
    /// descheduled worker; one pass per thread has no joins at all.
    One,
}

/// Rows handed to one rayon task in the row-wise steps; below this, splitting costs more than it
/// saves.
const MIN_ROWS_PER_TASK: usize = 8;

/// A dense layer with its weight stored transposed (`[inputs, outputs]`, row-major), so
/// `x · w` is a plain row-major matmul.
struct Linear {
    weight_t: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

struct LayerNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

struct Layer {
    /// Query, key and value projections side by side: outputs `[q | k | v]`.
    qkv: Linear,
    attention_output: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

#[derive(Clone, Copy)]
enum Activation {
    /// `0.5·x·(1 + erf(x/√2))`, PyTorch's default `gelu` and BERT's `hidden_act: "gelu"`.
    GeluErf,
    /// The tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    Relu,
}

/// The encoder: embeddings, then `num_hidden_layers` transformer layers.
pub(crate) struct BertEncoder {
    hidden: usize,
    heads: usize,
    head_dim: usize,
    vocab_size: usize,
    max_positions: usize,
    activation: Activation,
    word_embeddings: Vec<f32>,
    position_embeddings: Vec<f32>,
    /// Row 0 of the token-type table: single-segment input, every token has type 0.
    token_type_embedding: Vec<f32>,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
}

fn tensor(vb: &VarBuilder, shape: &[usize], name: &str) -> candle_core::Result<Vec<f32>> {
    vb.get(shape, name)?.flatten_all()?.to_vec1::<f32>()
}

fn linear(vb: VarBuilder, inputs: usize, outputs: usize) -> candle_core::Result<Linear> {
    let weight = tensor(&vb, &[outputs, inputs], "weight")?;
    let bias = tensor(&vb, &[outputs], "bias")?;
    Ok(Linear {
        weight_t: transpose(&weight, outputs, inputs),
        bias,
        inputs,
        outputs,
    })
}

/// Several linear layers over the same input fused into one (outputs side by side).
fn fused(parts: Vec<Linear>) -> Linear {
    let inputs = parts[0].inputs;
    let outputs: usize = parts.iter().map(|p| p.outputs).sum();
    let mut weight_t = vec![0f32; inputs * outputs];
    let mut bias = Vec::with_capacity(outputs);
    let mut column = 0;
    for part in &parts {
        debug_assert_eq!(part.inputs, inputs);
        for row in 0..inputs {
            weight_t[row * outputs + column..row * outputs + column + part.outputs]
                .copy_from_slice(&part.weight_t[row * part.outputs..(row + 1) * part.outputs]);
        }
        bias.extend_from_slice(&part.bias);
        column += part.outputs;
    }
    Linear {
        weight_t,
        bias,
        inputs,
        outputs,
    }
}

fn layer_norm(vb: VarBuilder, size: usize, eps: f64) -> candle_core::Result<LayerNorm> {
    Ok(LayerNorm {
        gamma: tensor(&vb, &[size], "weight")?,
        beta: tensor(&vb, &[size], "bias")?,
        eps: eps as f32,
    })
}

fn transpose(matrix: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; matrix.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = matrix[r * cols + c];
        }
    }
    out
}

impl BertEncoder {
    /// Reads the weights from a safetensors buffer (Hugging Face names, with or without the
    /// `bert.` prefix of pre-training checkpoints). Shapes are checked against `config`.
    pub fn load(bytes: Vec<u8>, config: &Config) -> candle_core::Result<Self> {
        let hidden = config.hidden_size;
        let heads = config.num_attention_heads;
        if hidden.checked_rem(heads) != Some(0) {
            candle_core::bail!(
                "hidden_size {hidden} is not a multiple of num_attention_heads {heads}"
            );
        }
        let activation = match config.hidden_act {
            HiddenAct::Gelu => Activation::GeluErf,
            HiddenAct::GeluApproximate => Activation::GeluTanh,
            HiddenAct::Relu => Activation::Relu,
        };
        let root = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu)?;
        let root = if !root.contains_tensor("embeddings.word_embeddings.weight")
            && root.contains_tensor("bert.embeddings.word_embeddings.weight")
        {
            root.pp("bert")
        } else {
            root
        };
        let eps = config.layer_norm_eps;
        let embeddings = root.pp("embeddings");
        let word_embeddings = tensor(
            &embeddings.pp("word_embeddings"),
            &[config.vocab_size, hidden],
            "weight",
        )?;
        let position_embeddings = tensor(
            &embeddings.pp("position_embeddings"),
            &[config.max_position_embeddings, hidden],
            "weight",
        )?;
        let token_types = tensor(
            &embeddings.pp("token_type_embeddings"),
            &[config.type_vocab_size.max(1), hidden],
            "weight",
        )?;
        let embedding_norm = layer_norm(embeddings.pp("LayerNorm"), hidden, eps)?;

        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for index in 0..config.num_hidden_layers {
            let vb = root.pp(format!("encoder.layer.{index}"));
            let attention = vb.pp("attention");
            let projections = attention.pp("self");
            let qkv = fused(vec![
                linear(projections.pp("query"), hidden, hidden)?,
                linear(projections.pp("key"), hidden, hidden)?,
                linear(projections.pp("value"), hidden, hidden)?,
            ]);
            layers.push(Layer {
                qkv,
                attention_output: linear(attention.pp("output").pp("dense"), hidden, hidden)?,
                attention_norm: layer_norm(attention.pp("output").pp("LayerNorm"), hidden, eps)?,
                intermediate: linear(
                    vb.pp("intermediate").pp("dense"),
                    hidden,
                    config.intermediate_size,
                )?,
                output: linear(
                    vb.pp("output").pp("dense"),
                    config.intermediate_size,
                    hidden,
                )?,
                output_norm: layer_norm(vb.pp("output").pp("LayerNorm"), hidden, eps)?,
            });
        }
        Ok(Self {
            hidden,
            heads,
            head_dim: hidden / heads,
            vocab_size: config.vocab_size,
            max_positions: config.max_position_embeddings,
            activation,
            word_embeddings,
            position_embeddings,
            token_type_embedding: token_types[..hidden].to_vec(),
            embedding_norm,
            layers,
        })
    }

    /// Mean-pooled, L2-normalised sentence vectors, one per sequence of word-piece ids
    /// (`[CLS] … [SEP]`, already truncated to the model's limit).
    pub fn embed(
        &self,
        sequences: &[&[u32]],
        threads: Threads,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        for ids in sequences {
            if ids.len() > self.max_positions {
                return Err(EmbedError::SequenceTooLong {
                    length: ids.len(),
                    max_positions: self.max_positions,
                });
            }
            if let Some(&id) = ids.iter().find(|&&id| id as usize >= self.vocab_size) {
                return Err(EmbedError::UnknownToken {
                    id,
                    vocab_size: self.vocab_size,
                });
            }
        }
        let hidden_states = self.forward(sequences, threads);
        Ok(mean_pool_normalised(&hidden_states, sequences, self.hidden))
    }

    /// The last hidden state of every token, packed: `[Σ lengths, hidden]`.
    fn forward(&self, sequences: &[&[u32]], threads: Threads) -> Vec<f32> {
        let h = self.hidden;
        let total: usize = sequences.iter().map(|s| s.len()).sum();
        let mut x = vec![0f32; total * h];
        {
            let mut rows = x.chunks_exact_mut(h);
            for ids in sequences {
                for (position, (&id, row)) in ids.iter().zip(rows.by_ref()).enumerate() {
                    let word = &self.word_embeddings[id as usize * h..(id as usize + 1) * h];
                    let pos = &self.position_embeddings[position * h..(position + 1) * h];
                    for (((out, w), p), t) in row
                        .iter_mut()
                        .zip(word)
                        .zip(pos)
                        .zip(&self.token_type_embedding)
                    {
                        *out = w + p + t;
                    }
                }
            }
        }
        for_each_row(&mut x, h, threads, |row| self.embedding_norm.apply(row));

        let intermediate = self.layers.first().map_or(0, |l| l.intermediate.outputs);
        let mut qkv = vec![0f32; total * 3 * h];
        let mut context = vec![0f32; total * h];
        let mut projected = vec![0f32; total * h];
        let mut up = vec![0f32; total * intermediate];
        for layer in &self.layers {
            layer.qkv.forward(&x, &mut qkv, threads);
            self.attention(&qkv, sequences, &mut context, threads);
            layer
                .attention_output
                .forward(&context, &mut projected, threads);
            add_and_norm(&mut projected, &x, &layer.attention_norm, h, threads);
            std::mem::swap(&mut x, &mut projected);

            layer.intermediate.forward(&x, &mut up, threads);
            let activation = self.activation;
            for_each_row(&mut up, intermediate, threads, |row| {
                activate(row, activation)
            });
            layer.output.forward(&up, &mut projected, threads);
            add_and_norm(&mut projected, &x, &layer.output_norm, h, threads);
            std::mem::swap(&mut x, &mut projected);
        }
        x
    }

    /// Scaled dot-product attention per (sequence, head) over the sequence's own tokens.
    fn attention(&self, qkv: &[f32], sequences: &[&[u32]], context: &mut [f32], threads: Threads) {
        let (h, d) = (self.hidden, self.head_dim);
        let stride = 3 * h;
        let scale = 1.0 / (d as f32).sqrt();
        let mut jobs = Vec::with_capacity(sequences.len() * self.heads);
        let mut start = 0;
        for ids in sequences {
            for head in 0..self.heads {
                jobs.push((start, ids.len(), head));
            }
            start += ids.len();
        }
        let one_head = |&(start, len, head): &(usize, usize, usize)| {
            let base = start * stride + head * d;
            let queries = View::new(&qkv[base..], len, d, stride, 1);
            // Kᵀ read in place: column j is key row j.
            let keys_t = View::new(&qkv[base + h..], d, len, 1, stride);
            let values = View::new(&qkv[base + 2 * h..], len, d, stride, 1);
            let mut scores = vec![0f32; len * len];
            matmul(
                &mut scores,
                len,
                queries,
                keys_t,
                scale,
                false,
                Threads::One,
            );
            for row in scores.chunks_exact_mut(len) {
                softmax(row);
            }
            let mut out = vec![0f32; len * d];
            matmul(
                &mut out,
                d,
                View::new(&scores, len, len, len, 1),
                values,
                1.0,
                false,
                Threads::One,
            );
            out
        };
        // Heads are the parallel unit here; each head's matmuls are too small to split.
        let outputs: Vec<Vec<f32>> = match threads {
            Threads::Pool => jobs.par_iter().map(one_head).collect(),
            Threads::One => jobs.iter().map(one_head).collect(),
        };
        for (&(start, _, head), out) in jobs.iter().zip(outputs) {
            for (t, row) in out.chunks_exact(d).enumerate() {
                let at = (start + t) * h + head * d;
                context[at..at + d].copy_from_slice(row);
            }
        }
    }
}

impl Linear {
    /// `out = x · w + b` for every row of `x` (`[rows, inputs]` → `[rows, outputs]`).
    fn forward(&self, x: &[f32], out: &mut [f32], threads: Threads) {
        let rows = x.len() / self.inputs;
        debug_assert_eq!(out.len(), rows * self.outputs);
        for row in out.chunks_exact_mut(self.outputs) {
            row.copy_from_slice(&self.bias);
        }
        matmul(
            out,
            self.outputs,
            View::new(x, rows, self.inputs, self.inputs, 1),
            View::new(&self.weight_t, self.inputs, self.outputs, self.outputs, 1),
            1.0,
            true,
            threads,
        );
    }
}

impl LayerNorm {
    fn apply(&self, row: &mut [f32]) {
        let n = row.len() as f32;
        let mean = row.iter().sum::<f32>() / n;
        let variance = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let inv = 1.0 / (variance + self.eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(&self.gamma).zip(&self.beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

/// `sublayer = LayerNorm(sublayer + residual)`, row by row.
fn add_and_norm(
    sublayer: &mut [f32],
    residual: &[f32],
    norm: &LayerNorm,
    width: usize,
    threads: Threads,
) {
    let add_norm = |(row, res): (&mut [f32], &[f32])| {
        for (v, r) in row.iter_mut().zip(res) {
            *v += r;
        }
        norm.apply(row);
    };
    match threads {
        Threads::Pool => sublayer
            .par_chunks_mut(width)
            .zip(residual.par_chunks(width))
            .with_min_len(MIN_ROWS_PER_TASK)
            .for_each(add_norm),
        Threads::One => sublayer
            .chunks_mut(width)
            .zip(residual.chunks(width))
            .for_each(add_norm),
    }
}

fn for_each_row(
    buffer: &mut [f32],
    width: usize,
    threads: Threads,
    f: impl Fn(&mut [f32]) + Send + Sync,
) {
    match threads {
        Threads::Pool => buffer
            .par_chunks_mut(width)
            .with_min_len(MIN_ROWS_PER_TASK)
            .for_each(f),
        Threads::One => buffer.chunks_mut(width).for_each(f),
    }
}

fn activate(row: &mut [f32], activation: Activation) {
    match activation {
        Activation::GeluErf => {
            for v in row {
                *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
            }
        }
        Activation::GeluTanh => {
            const SQRT_2_OVER_PI: f32 = 0.797_884_6;
            for v in row {
                let x = *v;
                *v = 0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x)).tanh());
            }
        }
        Activation::Relu => {
            for v in row {
                *v = v.max(0.0);
            }
        }
    }
}

/// In-place softmax of one row of attention scores.
fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for v in row.iter_mut() {
        *v = exp(*v - max);
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// erf for f32: Eigen's rational approximation (`generic_fast_erf_float`, also XLA's), absolute
/// error below 5e-7 in f32 arithmetic, branch-free so the GELU loop vectorises (libm's `erff` is a call per
/// element). Inputs are clamped to ±4, beyond which erf is ±1 in f32.
#[allow(clippy::excessive_precision)] // the published coefficients, verbatim
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.72614225801306e-10 + 2.77068142495902e-08;
    p = x2 * p + -2.10102402082508e-06;
    p = x2 * p + -5.69250639462346e-05;
    p = x2 * p + -7.34990630326855e-04;
    p = x2 * p + -2.95459980854025e-03;
    p = x2 * p + -1.60960333262415e-02;
    let mut q = x2 * -1.45660718464996e-05 + -2.13374055278905e-04;
    q = x2 * q + -1.68282697438203e-03;
    q = x2 * q + -7.37332916720468e-03;
    q = x2 * q + -1.42647390514189e-02;
    x * p / q
}

/// e^x for f32: Cephes' `expf` (relative error about 2e-7), branch-free so the softmax loop
/// vectorises. Below -87.3 (where e^x leaves the normal range) it returns 0, which is what a
/// softmax needs for masked or far-below-max scores.
#[allow(clippy::excessive_precision)] // the published coefficients, verbatim
fn exp(x: f32) -> f32 {
    // 1.5·2^23: adding and subtracting it rounds to the nearest integer without a libm call.
    const ROUNDER: f32 = 12_582_912.0;
    let underflow = x < -87.3;
    let x = x.clamp(-87.3, 88.7);
    let n = (x * std::f32::consts::LOG2_E + ROUNDER) - ROUNDER;
    let r = x - n * 0.693359375 - n * -2.12194440e-4;
    let mut p = 1.9875691500e-4f32;
    p = p * r + 1.3981999507e-3;
    p = p * r + 8.3334519073e-3;
    p = p * r + 4.1665795894e-2;
    p = p * r + 1.6666665459e-1;
    p = p * r + 5.0000001201e-1;
    let y = p * r * r + r + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if underflow {
        0.0
    } else {
        y * scale
    }
}

/// Mean over each sequence's tokens (all of them attend; there is no padding), then L2
/// normalisation, accumulated in f64.
fn mean_pool_normalised(hidden_states: &[f32], sequences: &[&[u32]], dim: usize) -> Vec<Vec<f32>> {
    let mut vectors = Vec::with_capacity(sequences.len());
    let mut sum = vec![0f64; dim];
    let mut start = 0;
    for ids in sequences {
        sum.fill(0.0);
        for row in hidden_states[start * dim..(start + ids.len()) * dim].chunks_exact(dim) {
            for (acc, value) in sum.iter_mut().zip(row) {
                *acc += f64::from(*value);
            }
        }
        start += ids.len();
        let count = ids.len().max(1) as f64;
        let norm = sum
            .iter()
            .map(|s| (s / count) * (s / count))
            .sum::<f64>()
            .sqrt()
            .max(1e-12);
        vectors.push(sum.iter().map(|s| (s / count / norm) as f32).collect());
    }
    vectors
}

/// A strided read-only matrix view into a slice.
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> View<'a> {
    fn new(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        let view = Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        };
        // Every element the kernel may read lies inside `data`.
        assert!(
            rows == 0
                || cols == 0
                || (rows - 1) * row_stride + (cols - 1) * col_stride < data.len(),
            "matrix view out of bounds"
        );
        view
    }
}

/// `out = scale · lhs · rhs` (or `out += …` with `accumulate`), `out` row-major with
/// `out_row_stride` (≥ columns) and contiguous columns.
fn matmul(
    out: &mut [f32],
    out_row_stride: usize,
    lhs: View,
    rhs: View,
    scale: f32,
    accumulate: bool,
    threads: Threads,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "matmul inner dimensions");
    assert!(out_row_stride >= n, "output rows overlap");
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        (m - 1) * out_row_stride + n <= out.len(),
        "matmul output out of bounds"
    );
    let parallelism = match threads {
        Threads::Pool if rayon::current_num_threads() > 1 => gemm::Parallelism::Rayon(0),
        _ => gemm::Parallelism::None,
    };
    #[allow(unsafe_code)]
    // SAFETY: `View::new` and the asserts above check that every index the kernel touches
    // (rows·row_stride + cols·col_stride) lies inside the borrowed slices; `out` is borrowed
    // mutably, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            out_row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_is_within_5e7_of_libm() {
        let mut worst = 0f64;
        for i in -60_000..=60_000 {
            let x = i as f32 * 1e-4;
            worst = worst.max((f64::from(erf(x)) - libm::erf(f64::from(x))).abs());
        }
        assert!(worst < 5e-7, "max abs error {worst:e}");
    }

    #[test]
    fn exp_is_within_3e7_relative_of_std() {
        let mut worst = 0f64;
        for i in -87_000..=10_000 {
            let x = i as f32 * 1e-3;
            let want = f64::from(x).exp();
            worst = worst.max((f64::from(exp(x)) - want).abs() / want);
        }
        assert!(worst < 3e-7, "max relative error {worst:e}");
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut row = vec![1.0, 3.0, -2.0, 3.0, -200.0];
        softmax(&mut row);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(row[1] > row[0] && row[0] > row[2] && row[2] > row[4]);
        assert_eq!(row[1], row[3]);
    }

    #[test]
    fn strided_matmul_matches_naive() {
        // lhs 3×4 read from a 3×6 buffer, rhs 4×2 read transposed from a 2×4 buffer.
        let buffer: Vec<f32> = (0..18).map(|v| v as f32 * 0.5 - 3.0).collect();
        let rhs_t: Vec<f32> = (0..8).map(|v| v as f32 - 2.5).collect();
        let lhs = View::new(&buffer[1..], 3, 4, 6, 1);
        let rhs = View::new(&rhs_t, 4, 2, 1, 4);
        let mut out = vec![1f32; 6];
        matmul(&mut out, 2, lhs, rhs, 0.5, true, Threads::One);
        for i in 0..3 {
            for j in 0..2 {
                let dot: f32 = (0..4)
                    .map(|p| buffer[1 + i * 6 + p] * rhs_t[j * 4 + p])
                    .sum();
                assert!((out[i * 2 + j] - (1.0 + 0.5 * dot)).abs() < 1e-5);
            }
        }
    }
}
