//! A batched quantized matrix multiplication `y = x W^T` for the GGUF weight types the shipped
//! models use (Q8_0, Q5_0, Q4_1, Q4_K, Q6_K).
//!
//! candle's quantized kernels compute one dot product per (weight row, activation row), reading
//! the whole weight matrix again for every activation row, so decoding 16 sequences costs about
//! 16 single-sequence steps. Here, as in llama.cpp, the activations of the whole batch are
//! quantized once to 8 bits per 32 values, and each weight row is multiplied with a tile of
//! activation rows while it is in cache; threads split the output rows.
//!
//! All supported types are unpacked at load time into one layout: signed 8-bit codes, one f32
//! scale per 16 weights and (for types with a minimum) one f32 offset per 32 weights, so that
//! `w = scale * code + offset` reproduces the file's dequantized weights. One integer kernel
//! (AVX2 `maddubs`, with a scalar fallback chosen at run time) then serves every type.

use candle_core::quantized::{GgmlDType, QTensor};
use rayon::prelude::*;

use crate::error::{Error, Result};

/// Weights per quantization block of the activations (and per offset of the weights).
const BLOCK: usize = 32;
/// Weights per scale.
const SUB_BLOCK: usize = 16;

/// A weight matrix `(rows, cols)` unpacked for [`BlockMatrix::matmul`].
pub struct BlockMatrix {
    rows: usize,
    cols: usize,
    /// `rows * cols` signed codes, row-major.
    codes: Vec<i8>,
    /// `rows * cols / 16` scales.
    scales: Vec<f32>,
    /// `rows * cols / 32` offsets, absent when every offset is zero.
    offsets: Option<Vec<f32>>,
}

/// Activations quantized per 32 values: `x ≈ scale * code`.
struct QuantizedActivations {
    rows: usize,
    cols: usize,
    codes: Vec<i8>,
    /// One per block.
    scales: Vec<f32>,
    /// `scale * Σ code` per block, for the weight offsets.
    sums: Vec<f32>,
}

fn f16_at(bytes: &[u8], at: usize) -> f32 {
    half_to_f32(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
}

/// IEEE half to f32 (what ggml stores block scales in).
pub(crate) fn half_to_f32(bits: u16) -> f32 {
    let sign = ((bits >> 15) & 1) as u32;
    let exponent = ((bits >> 10) & 0x1F) as u32;
    let mantissa = (bits & 0x3FF) as u32;
    let value = match (exponent, mantissa) {
        (0, 0) => 0.0,
        (0, m) => (m as f32) * 2f32.powi(-24),
        (31, 0) => f32::INFINITY,
        (31, _) => f32::NAN,
        (e, m) => f32::from_bits(((e + 112) << 23) | (m << 13)),
    };
    if sign == 1 {
        -value
    } else {
        value
    }
}

/// Appends one unpacked block of 32: codes, two scales, one offset.
struct Unpacker {
    codes: Vec<i8>,
    scales: Vec<f32>,
    offsets: Vec<f32>,
}

impl Unpacker {
    fn with_capacity(weights: usize) -> Self {
        Unpacker {
            codes: Vec::with_capacity(weights),
            scales: Vec::with_capacity(weights / SUB_BLOCK),
            offsets: Vec::with_capacity(weights / BLOCK),
        }
    }

    fn push(&mut self, codes: &[i8; BLOCK], scales: [f32; 2], offset: f32) {
        self.codes.extend_from_slice(codes);
        self.scales.extend_from_slice(&scales);
        self.offsets.push(offset);
    }
}

impl BlockMatrix {
    /// Whether `dtype` can be unpacked.
    pub fn supports(dtype: GgmlDType) -> bool {
        matches!(
            dtype,
            GgmlDType::Q8_0 | GgmlDType::Q5_0 | GgmlDType::Q4_1 | GgmlDType::Q4K | GgmlDType::Q6K
        )
    }

    /// Unpacks a 2-D quantized tensor `(rows, cols)`.
    pub fn from_qtensor(q: &QTensor) -> Result<Self> {
        let (rows, cols) = match q.shape().dims() {
            [rows, cols] => (*rows, *cols),
            dims => {
                return Err(Error::Config(format!(
                    "a weight matrix must have 2 dimensions, not {dims:?}"
                )))
            }
        };
        let data = q.data()?;
        Self::from_ggml_bytes(q.dtype(), &data, rows, cols)
    }

    /// Unpacks ggml block data of `dtype` for a `(rows, cols)` matrix.
    pub fn from_ggml_bytes(
        dtype: GgmlDType,
        data: &[u8],
        rows: usize,
        cols: usize,
    ) -> Result<Self> {
        let weights = rows * cols;
        let expected = weights / dtype.block_size() * dtype.type_size();
        if !cols.is_multiple_of(dtype.block_size()) || data.len() != expected {
            return Err(Error::Config(format!(
                "{dtype:?} matrix ({rows}, {cols}) needs {expected} bytes of whole blocks, got {}",
                data.len()
            )));
        }
        let mut out = Unpacker::with_capacity(weights);
        match dtype {
            GgmlDType::Q8_0 => {
                for block in data.chunks_exact(34) {
                    let d = f16_at(block, 0);
                    let mut codes = [0i8; BLOCK];
                    for (c, &b) in codes.iter_mut().zip(&block[2..34]) {
                        *c = b as i8;
                    }
                    out.push(&codes, [d, d], 0.0);
                }
            }
            GgmlDType::Q5_0 => {
                // d * (q - 16), q = 4 low bits from qs, the 5th from qh.
                for block in data.chunks_exact(22) {
                    let d = f16_at(block, 0);
                    let qh = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
                    let qs = &block[6..22];
                    let mut codes = [0i8; BLOCK];
                    for j in 0..16 {
                        let high0 = (((qh >> j) << 4) & 0x10) as u8;
                        let high1 = ((qh >> (j + 12)) & 0x10) as u8;
                        codes[j] = ((qs[j] & 0x0F) | high0) as i8 - 16;
                        codes[j + 16] = ((qs[j] >> 4) | high1) as i8 - 16;
                    }
                    out.push(&codes, [d, d], 0.0);
                }
            }
            GgmlDType::Q4_1 => {
                // d * q + m, q in 0..16; centred as d * (q - 8) + (m + 8d) so the integer part
                // sums small signed terms instead of large ones that the offset would cancel.
                for block in data.chunks_exact(20) {
                    let d = f16_at(block, 0);
                    let m = f16_at(block, 2);
                    let qs = &block[4..20];
                    let mut codes = [0i8; BLOCK];
                    for j in 0..16 {
                        codes[j] = (qs[j] & 0x0F) as i8 - 8;
                        codes[j + 16] = (qs[j] >> 4) as i8 - 8;
                    }
                    out.push(&codes, [d, d], m + 8.0 * d);
                }
            }
            GgmlDType::Q4K => {
                // Super-blocks of 256: 8 sub-blocks of 32 with 6-bit scales and mins,
                // w = d * sc * q - dmin * m, q in 0..16.
                for block in data.chunks_exact(144) {
                    let d = f16_at(block, 0);
                    let dmin = f16_at(block, 2);
                    let packed = &block[4..16];
                    let qs = &block[16..144];
                    let scale_min = |j: usize| -> (f32, f32) {
                        let (sc, m) = if j < 4 {
                            (packed[j] & 63, packed[j + 4] & 63)
                        } else {
                            (
                                (packed[j + 4] & 0x0F) | ((packed[j - 4] >> 6) << 4),
                                (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4),
                            )
                        };
                        (d * sc as f32, dmin * m as f32)
                    };
                    for chunk in 0..4 {
                        let q = &qs[chunk * 32..chunk * 32 + 32];
                        for (half, shift) in [(0usize, 0u8), (1, 4)] {
                            let (scale, min) = scale_min(chunk * 2 + half);
                            let mut codes = [0i8; BLOCK];
                            for (c, &b) in codes.iter_mut().zip(q) {
                                *c = ((b >> shift) & 0x0F) as i8 - 8;
                            }
                            out.push(&codes, [scale, scale], 8.0 * scale - min);
                        }
                    }
                }
            }
            GgmlDType::Q6K => {
                // Super-blocks of 256: ql (128), qh (64), 16 i8 scales, f16 d;
                // w = d * sc * (q - 32) with one scale per 16.
                for block in data.chunks_exact(210) {
                    let d = f16_at(block, 208);
                    let mut values = [0i8; 256];
                    for n in 0..2 {
                        let ql = &block[n * 64..n * 64 + 64];
                        let qh = &block[128 + n * 32..128 + n * 32 + 32];
                        let y = &mut values[n * 128..n * 128 + 128];
                        for l in 0..32 {
                            y[l] = ((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) as i8 - 32;
                            y[l + 32] =
                                ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
                            y[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
                            y[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
                        }
                    }
                    let scale = |i: usize| d * (block[192 + i] as i8) as f32;
                    for sub in 0..8 {
                        let mut codes = [0i8; BLOCK];
                        codes.copy_from_slice(&values[sub * 32..sub * 32 + 32]);
                        out.push(&codes, [scale(sub * 2), scale(sub * 2 + 1)], 0.0);
                    }
                }
            }
            other => {
                return Err(Error::Config(format!(
                    "{other:?} weights are not supported by the batched kernel"
                )))
            }
        }
        let offsets = out.offsets.iter().any(|&o| o != 0.0).then_some(out.offsets);
        Ok(BlockMatrix {
            rows,
            cols,
            codes: out.codes,
            scales: out.scales,
            offsets,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The weights as f32 `(rows * cols)`, row-major (for tests and checks).
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.rows * self.cols);
        for (i, &c) in self.codes.iter().enumerate() {
            let offset = self.offsets.as_ref().map_or(0.0, |o| o[i / BLOCK]);
            out.push(self.scales[i / SUB_BLOCK] * c as f32 + offset);
        }
        out
    }

    /// `x W^T` for `x` of `batch` rows of `cols` values; returns `batch * rows` values, row-major.
    pub fn matmul(&self, x: &[f32], batch: usize) -> Vec<f32> {
        assert_eq!(x.len(), batch * self.cols, "activation shape");
        let acts = QuantizedActivations::new(x, batch, self.cols);
        let kernel = Kernel::detect();
        // Transposed output (weight row, batch row): each task owns whole weight rows.
        let mut transposed = vec![0f32; self.rows * batch];
        let rows_per_task = rows_per_task(self.rows, batch, self.cols);
        transposed
            .par_chunks_mut(rows_per_task * batch)
            .enumerate()
            .for_each(|(task, out)| {
                let first = task * rows_per_task;
                for (i, row_out) in out.chunks_mut(batch).enumerate() {
                    self.row_times_batch(kernel, first + i, &acts, row_out);
                }
            });
        if batch == 1 {
            return transposed;
        }
        let mut y = vec![0f32; batch * self.rows];
        for (r, column) in transposed.chunks(batch).enumerate() {
            for (b, &v) in column.iter().enumerate() {
                y[b * self.rows + r] = v;
            }
        }
        y
    }

    /// Dot products of weight row `row` with every activation row.
    fn row_times_batch(
        &self,
        kernel: Kernel,
        row: usize,
        acts: &QuantizedActivations,
        out: &mut [f32],
    ) {
        let blocks = self.cols / BLOCK;
        let codes = &self.codes[row * self.cols..(row + 1) * self.cols];
        let scales = &self.scales[row * blocks * 2..(row + 1) * blocks * 2];
        let offsets = self
            .offsets
            .as_ref()
            .map(|o| &o[row * blocks..(row + 1) * blocks]);
        kernel.dots(codes, scales, offsets, acts, out);
    }
}

/// Enough rows per task to amortize scheduling, enough tasks to balance the threads.
fn rows_per_task(rows: usize, batch: usize, cols: usize) -> usize {
    let tasks = (rayon::current_num_threads() * 4).max(1);
    // At least ~64k multiply-adds per task.
    let min_rows = (65_536 / (batch * cols).max(1)).max(1);
    rows.div_ceil(tasks).max(min_rows).min(rows.max(1))
}

impl QuantizedActivations {
    fn new(x: &[f32], rows: usize, cols: usize) -> Self {
        let blocks = rows * cols / BLOCK;
        let mut codes = vec![0i8; rows * cols];
        let mut scales = Vec::with_capacity(blocks);
        let mut sums = Vec::with_capacity(blocks);
        for (values, out) in x.chunks_exact(BLOCK).zip(codes.chunks_exact_mut(BLOCK)) {
            let amax = values.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
            let mut sum = 0i32;
            for (c, &v) in out.iter_mut().zip(values) {
                // Round half away from zero as llama.cpp's quantize_row_q8_0 (`roundf`), in a
                // form that vectorizes (`f32::round` is a libm call without SSE4.1).
                let scaled = v * inverse;
                let q = (scaled + 0.5f32.copysign(scaled)) as i8;
                *c = q;
                sum += q as i32;
            }
            // llama.cpp stores the activation scale as f16.
            let d = half_round(d);
            scales.push(d);
            sums.push(d * sum as f32);
        }
        QuantizedActivations {
            rows,
            cols,
            codes,
            scales,
            sums,
        }
    }
}

/// Rounds an f32 to the nearest f16 value (ties to even), returned as f32.
fn half_round(value: f32) -> f32 {
    let bits = value.to_bits();
    let exponent = ((bits >> 23) & 0xFF) as i32 - 127;
    if value == 0.0 || !value.is_finite() || !(-14..=15).contains(&exponent) {
        // Subnormal halves and overflow do not occur for activation scales; keep f32.
        return value;
    }
    // Keep 10 mantissa bits, round to nearest even.
    let drop = 13;
    let half = 1u32 << (drop - 1);
    let mask = (1u32 << drop) - 1;
    let rest = bits & mask;
    let mut kept = bits & !mask;
    if rest > half || (rest == half && (kept >> drop) & 1 == 1) {
        kept += 1 << drop;
    }
    f32::from_bits(kept)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kernel {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Kernel::Avx2;
            }
        }
        Kernel::Scalar
    }

    /// `out[b] = Σ_blocks dx[b] * (scale_lo * Σ_lo code·x + scale_hi * Σ_hi code·x)
    /// + offset * sum_x[b]`.
    fn dots(
        self,
        codes: &[i8],
        scales: &[f32],
        offsets: Option<&[f32]>,
        acts: &QuantizedActivations,
        out: &mut [f32],
    ) {
        match self {
            Kernel::Scalar => dots_scalar(codes, scales, offsets, acts, out),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `detect` returned Avx2 only after checking the CPU has AVX2 and FMA; the
            // slices' lengths are checked inside.
            #[allow(unsafe_code)]
            Kernel::Avx2 => unsafe { avx2::dots(codes, scales, offsets, acts, out) },
        }
    }
}

fn dots_scalar(
    codes: &[i8],
    scales: &[f32],
    offsets: Option<&[f32]>,
    acts: &QuantizedActivations,
    out: &mut [f32],
) {
    let cols = acts.cols;
    let blocks = cols / BLOCK;
    for (b, y) in out.iter_mut().enumerate().take(acts.rows) {
        let x = &acts.codes[b * cols..(b + 1) * cols];
        let dx = &acts.scales[b * blocks..(b + 1) * blocks];
        let mut total = 0f32;
        for k in 0..blocks {
            let w = &codes[k * BLOCK..(k + 1) * BLOCK];
            let xs = &x[k * BLOCK..(k + 1) * BLOCK];
            let dot = |range: std::ops::Range<usize>| -> i32 {
                range.map(|i| w[i] as i32 * xs[i] as i32).sum()
            };
            let lo = dot(0..SUB_BLOCK) as f32;
            let hi = dot(SUB_BLOCK..BLOCK) as f32;
            total += dx[k] * (scales[2 * k] * lo + scales[2 * k + 1] * hi);
            if let Some(offsets) = offsets {
                total += offsets[k] * acts.sums[b * blocks + k];
            }
        }
        *y = total;
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{QuantizedActivations, BLOCK};

    /// Activation rows handled together against one weight row (accumulators in registers).
    const TILE: usize = 4;

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dots(
        codes: &[i8],
        scales: &[f32],
        offsets: Option<&[f32]>,
        acts: &QuantizedActivations,
        out: &mut [f32],
    ) {
        let cols = acts.cols;
        let blocks = cols / BLOCK;
        assert!(codes.len() >= cols && scales.len() >= 2 * blocks && out.len() >= acts.rows);
        assert!(offsets.is_none_or(|o| o.len() >= blocks) && acts.sums.len() >= acts.rows * blocks);
        assert!(acts.codes.len() >= acts.rows * cols && acts.scales.len() >= acts.rows * blocks);
        let ones = _mm256_set1_epi16(1);
        let mut b0 = 0;
        while b0 < acts.rows {
            let tile = TILE.min(acts.rows - b0);
            let mut acc = [_mm256_setzero_ps(); TILE];
            let mut offset_acc = [0f32; TILE];
            for k in 0..blocks {
                // SAFETY: k < blocks, so the 32 bytes at k * 32 lie inside `codes` (checked above).
                let w = unsafe { _mm256_loadu_si256(codes.as_ptr().add(k * BLOCK).cast()) };
                let w_abs = _mm256_sign_epi8(w, w);
                let s_lo = _mm_set1_ps(scales[2 * k]);
                let s_hi = _mm_set1_ps(scales[2 * k + 1]);
                let w_scale = _mm256_set_m128(s_hi, s_lo);
                for (t, acc) in acc.iter_mut().enumerate().take(tile) {
                    let b = b0 + t;
                    let at = b * cols + k * BLOCK;
                    // SAFETY: b < rows and k < blocks, so at + 32 <= rows * cols (checked above).
                    let x = unsafe { _mm256_loadu_si256(acts.codes.as_ptr().add(at).cast()) };
                    // |w| is unsigned and x takes w's sign: maddubs multiplies u8 by i8. No
                    // saturation: |w| <= 128 and |x| <= 127, so pairs sum to at most 32512.
                    let products = _mm256_maddubs_epi16(w_abs, _mm256_sign_epi8(x, w));
                    // Lanes 0-3 hold the first 16 products, lanes 4-7 the last 16.
                    let sums = _mm256_cvtepi32_ps(_mm256_madd_epi16(products, ones));
                    let dx = _mm256_set1_ps(acts.scales[b * blocks + k]);
                    *acc = _mm256_fmadd_ps(sums, _mm256_mul_ps(w_scale, dx), *acc);
                }
                if let Some(offsets) = offsets {
                    for (t, o) in offset_acc.iter_mut().enumerate().take(tile) {
                        *o += offsets[k] * acts.sums[(b0 + t) * blocks + k];
                    }
                }
            }
            for (t, acc) in acc.iter().enumerate().take(tile) {
                out[b0 + t] = horizontal_sum(*acc) + offset_acc[t];
            }
            b0 += tile;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    fn horizontal_sum(v: __m256) -> f32 {
        let quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
        let single = _mm_add_ss(pair, _mm_shuffle_ps(pair, pair, 1));
        _mm_cvtss_f32(single)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    fn sample(n: usize, seed: usize, spread: f32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let v = ((i * 7919 + seed * 104_729) % 1999) as f32 / 1999.0 - 0.5;
                v * spread * (1.0 + (i % 7) as f32)
            })
            .collect()
    }

    fn quantized(dtype: GgmlDType, rows: usize, cols: usize) -> QTensor {
        let w = Tensor::from_vec(sample(rows * cols, 1, 0.2), (rows, cols), &Device::Cpu)
            .expect("tensor");
        QTensor::quantize(&w, dtype).expect("quantize")
    }

    #[test]
    fn unpacking_reproduces_candle_dequantization() {
        for dtype in [
            GgmlDType::Q8_0,
            GgmlDType::Q5_0,
            GgmlDType::Q4_1,
            GgmlDType::Q4K,
            GgmlDType::Q6K,
        ] {
            let q = quantized(dtype, 8, 512);
            let want: Vec<f32> = q
                .dequantize(&Device::Cpu)
                .expect("dequantize")
                .flatten_all()
                .expect("flat")
                .to_vec1()
                .expect("vec");
            let got = BlockMatrix::from_qtensor(&q).expect("unpack").dequantize();
            let max = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                // Only f32 rounding of the re-centred form differs.
                assert!(
                    (g - w).abs() <= 1e-6 * max.max(1.0),
                    "{dtype:?} weight {i}: {g} vs {w}"
                );
            }
        }
    }

    fn check_matmul(kernel: Kernel, dtype: GgmlDType, rows: usize, cols: usize, batch: usize) {
        let q = quantized(dtype, rows, cols);
        let m = BlockMatrix::from_qtensor(&q).expect("unpack");
        let weights = m.dequantize();
        let x = sample(batch * cols, 3, 2.0);
        let acts = QuantizedActivations::new(&x, batch, cols);
        let mut got = vec![0f32; batch * rows];
        for r in 0..rows {
            let mut column = vec![0f32; batch];
            m.row_times_batch(kernel, r, &acts, &mut column);
            for b in 0..batch {
                got[b * rows + r] = column[b];
            }
        }
        let blocks = cols / BLOCK;
        let mut scale = 0f32;
        for b in 0..batch {
            for r in 0..rows {
                let (mut exact, mut with_quantized_x, mut magnitude) = (0f32, 0f32, 0f32);
                for c in 0..cols {
                    let w = weights[r * cols + c];
                    let i = b * cols + c;
                    let xq = acts.scales[i / BLOCK] * acts.codes[i] as f32;
                    exact += x[i] * w;
                    with_quantized_x += xq * w;
                    magnitude += (x[i] * w).abs();
                }
                scale = scale.max(magnitude);
                let value = got[b * rows + r];
                // Exact up to f32 rounding given the quantized activations...
                assert!(
                    (value - with_quantized_x).abs() <= 1e-5 * magnitude.max(1.0),
                    "{kernel:?} {dtype:?} ({b}, {r}): {value} vs {with_quantized_x}"
                );
                // ...which are within 8 bits per 32 values of the real ones.
                assert!(
                    (value - exact).abs() <= 0.01 * magnitude,
                    "{kernel:?} {dtype:?} ({b}, {r}): {value} vs exact {exact}"
                );
            }
        }
        assert_eq!(acts.scales.len(), batch * blocks);
        // The threaded entry point agrees with the per-row kernel.
        let threaded = m.matmul(&x, batch);
        for (a, b) in threaded.iter().zip(&got) {
            assert!((a - b).abs() <= 1e-4 * scale.max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn kernels_match_dequantized_matmul() {
        let mut kernels = vec![Kernel::Scalar];
        if Kernel::detect() != Kernel::Scalar {
            kernels.push(Kernel::detect());
        }
        for kernel in kernels {
            for dtype in [
                GgmlDType::Q8_0,
                GgmlDType::Q5_0,
                GgmlDType::Q4_1,
                GgmlDType::Q4K,
                GgmlDType::Q6K,
            ] {
                for batch in [1, 3, 4, 9] {
                    check_matmul(kernel, dtype, 13, 256, batch);
                }
            }
        }
    }

    #[test]
    fn simd_and_scalar_kernels_agree() {
        let kernel = Kernel::detect();
        if kernel == Kernel::Scalar {
            return;
        }
        let m = BlockMatrix::from_qtensor(&quantized(GgmlDType::Q6K, 5, 512)).expect("unpack");
        let x = sample(7 * 512, 5, 3.0);
        let acts = QuantizedActivations::new(&x, 7, 512);
        for r in 0..5 {
            let (mut a, mut b) = (vec![0f32; 7], vec![0f32; 7]);
            m.row_times_batch(Kernel::Scalar, r, &acts, &mut a);
            m.row_times_batch(kernel, r, &acts, &mut b);
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= 1e-4 * x.abs().max(1.0), "{x} vs {y}");
            }
        }
    }

    #[test]
    fn half_round_matches_ieee_half() {
        for v in [0.1f32, 1.0, 2.5713, 0.0078125, 65504.0, 1e-3] {
            let bits = candle_core::Tensor::new(&[v], &Device::Cpu)
                .expect("t")
                .to_dtype(candle_core::DType::F16)
                .expect("f16")
                .to_dtype(candle_core::DType::F32)
                .expect("f32")
                .to_vec1::<f32>()
                .expect("vec")[0];
            assert_eq!(half_round(v), bits, "{v}");
        }
    }
}
