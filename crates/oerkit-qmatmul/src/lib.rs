//! `oerkit-qmatmul`: a batched quantized matrix multiplication `y = x W^T` for the GGUF weight
//! types the shipped models use (Q8_0, Q5_0, Q4_1, Q4_K, Q6_K), shared by the model crates (the
//! GGUF engine, and Marian's q8 mode). It depends on candle (for `QTensor`) and rayon only.
//!
//! candle's quantized kernels compute one dot product per (weight row, activation row), reading
//! the whole weight matrix again for every activation row, so decoding 16 sequences costs about
//! 16 single-sequence steps. Here, as in llama.cpp, the activations of the whole batch are
//! quantized once to 8 bits per 32 values, and each weight row is multiplied with a tile of
//! activation rows while it is in cache; threads split the output rows.
//!
//! The supported types are unpacked at load time into two layouts that one integer kernel serves:
//! 4-bit unsigned codes (Q4_1, Q4_K: two per byte, one scale and one offset per 32 weights, about
//! 0.75 bytes per weight) and 8-bit signed codes (Q8_0, Q5_0, Q6_K: one scale per 32 weights, or
//! per 16 for Q6_K). `w = scale * code + offset` reproduces the file's dequantized weights. The
//! kernel uses AVX-VNNI `dpbusd` or AVX2 `maddubs` where the CPU has them (checked at run time)
//! and plain Rust otherwise.

use candle_core::quantized::{GgmlDType, QTensor};
use rayon::prelude::*;

/// Why a weight matrix cannot be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The tensor's shape, size or type does not fit the kernel.
    #[error("{0}")]
    Shape(String),
    /// candle could not hand out the tensor's bytes.
    #[error("tensor data: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Weights per quantization block of the activations (and per offset of the weights).
const BLOCK: usize = 32;

/// How the codes of a [`BlockMatrix`] are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Codes {
    /// Unsigned 4-bit codes, 16 bytes per block: byte `j` holds code `j` (low nibble) and `j + 16`.
    Nibbles,
    /// Signed 8-bit codes, 32 bytes per block.
    Bytes,
}

/// A weight matrix `(rows, cols)` unpacked for [`BlockMatrix::matmul`].
pub struct BlockMatrix {
    rows: usize,
    cols: usize,
    layout: Codes,
    /// Scales per block: 1, or 2 (one per 16 weights).
    scales_per_block: usize,
    codes: Vec<u8>,
    scales: Vec<f32>,
    /// One offset per block, absent when every offset is zero.
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
pub fn half_to_f32(bits: u16) -> f32 {
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

/// Collects unpacked blocks in the layout of a [`BlockMatrix`].
struct Unpacker {
    layout: Codes,
    scales_per_block: usize,
    codes: Vec<u8>,
    scales: Vec<f32>,
    offsets: Vec<f32>,
}

impl Unpacker {
    fn new(layout: Codes, scales_per_block: usize, weights: usize) -> Self {
        let code_bytes = match layout {
            Codes::Nibbles => weights / 2,
            Codes::Bytes => weights,
        };
        Unpacker {
            layout,
            scales_per_block,
            codes: Vec::with_capacity(code_bytes),
            scales: Vec::with_capacity(weights / BLOCK * scales_per_block),
            offsets: Vec::with_capacity(weights / BLOCK),
        }
    }

    /// One block: codes (0..16 for nibbles, else signed), the scale of each 16 weights, offset.
    fn push(&mut self, codes: &[i8; BLOCK], scales: [f32; 2], offset: f32) {
        match self.layout {
            Codes::Nibbles => {
                for j in 0..16 {
                    debug_assert!((0..16).contains(&codes[j]) && (0..16).contains(&codes[j + 16]));
                    self.codes
                        .push((codes[j] as u8 & 0x0F) | ((codes[j + 16] as u8) << 4));
                }
            }
            Codes::Bytes => self.codes.extend(codes.iter().map(|&c| c as u8)),
        }
        self.scales
            .extend_from_slice(&scales[..self.scales_per_block]);
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
                return Err(Error::Shape(format!(
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
            return Err(Error::Shape(format!(
                "{dtype:?} matrix ({rows}, {cols}) needs {expected} bytes of whole blocks, got {}",
                data.len()
            )));
        }
        let mut out = match dtype {
            GgmlDType::Q4_1 | GgmlDType::Q4K => Unpacker::new(Codes::Nibbles, 1, weights),
            GgmlDType::Q6K => Unpacker::new(Codes::Bytes, 2, weights),
            _ => Unpacker::new(Codes::Bytes, 1, weights),
        };
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
                // d * q + m, q in 0..16 (llama.cpp's Q4_1 x Q8_1 kernel splits it the same way).
                for block in data.chunks_exact(20) {
                    let d = f16_at(block, 0);
                    let m = f16_at(block, 2);
                    let qs = &block[4..20];
                    let mut codes = [0i8; BLOCK];
                    for j in 0..16 {
                        codes[j] = (qs[j] & 0x0F) as i8;
                        codes[j + 16] = (qs[j] >> 4) as i8;
                    }
                    out.push(&codes, [d, d], m);
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
                                *c = ((b >> shift) & 0x0F) as i8;
                            }
                            out.push(&codes, [scale, scale], -min);
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
                return Err(Error::Shape(format!(
                    "{other:?} weights are not supported by the batched kernel"
                )))
            }
        }
        let offsets = out.offsets.iter().any(|&o| o != 0.0).then_some(out.offsets);
        Ok(BlockMatrix {
            rows,
            cols,
            layout: out.layout,
            scales_per_block: out.scales_per_block,
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

    /// Bytes held (codes, scales, offsets).
    pub fn size_in_bytes(&self) -> usize {
        self.codes.len() + 4 * (self.scales.len() + self.offsets.as_ref().map_or(0, Vec::len))
    }

    fn code(&self, index: usize) -> i32 {
        let (block, j) = (index / BLOCK, index % BLOCK);
        match self.layout {
            Codes::Nibbles => {
                let byte = self.codes[block * 16 + j % 16];
                if j < 16 {
                    (byte & 0x0F) as i32
                } else {
                    (byte >> 4) as i32
                }
            }
            Codes::Bytes => self.codes[index] as i8 as i32,
        }
    }

    fn scale(&self, index: usize) -> f32 {
        let block = index / BLOCK;
        match self.scales_per_block {
            1 => self.scales[block],
            _ => self.scales[block * 2 + (index % BLOCK) / 16],
        }
    }

    /// The weights as f32 `(rows * cols)`, row-major (for tests and checks).
    pub fn dequantize(&self) -> Vec<f32> {
        (0..self.rows * self.cols)
            .map(|i| {
                let offset = self.offsets.as_ref().map_or(0.0, |o| o[i / BLOCK]);
                self.scale(i) * self.code(i) as f32 + offset
            })
            .collect()
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
        // Transposed back in square tiles, so reads and writes both stay within a few cache lines
        // (a plain strided loop costs ~8% of a long prompt's time).
        const TILE: usize = 32;
        let mut y = vec![0f32; batch * self.rows];
        for r0 in (0..self.rows).step_by(TILE) {
            for b0 in (0..batch).step_by(TILE) {
                for r in r0..(r0 + TILE).min(self.rows) {
                    let column = &transposed[r * batch..(r + 1) * batch];
                    for b in b0..(b0 + TILE).min(batch) {
                        y[b * self.rows + r] = column[b];
                    }
                }
            }
        }
        y
    }

    /// The pieces of weight row `row`.
    fn row(&self, row: usize) -> Row<'_> {
        let blocks = self.cols / BLOCK;
        let code_bytes = match self.layout {
            Codes::Nibbles => self.cols / 2,
            Codes::Bytes => self.cols,
        };
        let per = self.scales_per_block * blocks;
        Row {
            layout: self.layout,
            scales_per_block: self.scales_per_block,
            codes: &self.codes[row * code_bytes..(row + 1) * code_bytes],
            scales: &self.scales[row * per..(row + 1) * per],
            offsets: self
                .offsets
                .as_ref()
                .map(|o| &o[row * blocks..(row + 1) * blocks]),
        }
    }

    /// Dot products of weight row `row` with every activation row.
    fn row_times_batch(
        &self,
        kernel: Kernel,
        row: usize,
        acts: &QuantizedActivations,
        out: &mut [f32],
    ) {
        kernel.dots(&self.row(row), acts, out);
    }
}

/// One weight row of a [`BlockMatrix`].
struct Row<'a> {
    layout: Codes,
    scales_per_block: usize,
    codes: &'a [u8],
    scales: &'a [f32],
    offsets: Option<&'a [f32]>,
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
    #[cfg(target_arch = "x86_64")]
    AvxVnni,
}

impl Kernel {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 =
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
            if avx2 && std::is_x86_feature_detected!("avxvnni") {
                return Kernel::AvxVnni;
            }
            if avx2 {
                return Kernel::Avx2;
            }
        }
        Kernel::Scalar
    }

    /// `out[b] = Σ_blocks dx[b] * Σ_i scale_i * code_i * xcode_i + offset * sum_x[b]`.
    fn dots(self, row: &Row<'_>, acts: &QuantizedActivations, out: &mut [f32]) {
        match self {
            Kernel::Scalar => dots_scalar(row, acts, out),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `detect` returned this kernel only after checking the CPU features it
            // enables; the slice lengths are checked inside.
            #[allow(unsafe_code)]
            Kernel::Avx2 => unsafe { x86::dots_avx2(row, acts, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            #[allow(unsafe_code)]
            Kernel::AvxVnni => unsafe { x86::dots_avx_vnni(row, acts, out) },
        }
    }
}

fn dots_scalar(row: &Row<'_>, acts: &QuantizedActivations, out: &mut [f32]) {
    let cols = acts.cols;
    let blocks = cols / BLOCK;
    let code = |i: usize| -> i32 {
        match row.layout {
            Codes::Nibbles => {
                let byte = row.codes[(i / BLOCK) * 16 + i % 16];
                if i % BLOCK < 16 {
                    (byte & 0x0F) as i32
                } else {
                    (byte >> 4) as i32
                }
            }
            Codes::Bytes => row.codes[i] as i8 as i32,
        }
    };
    for (b, y) in out.iter_mut().enumerate().take(acts.rows) {
        let x = &acts.codes[b * cols..(b + 1) * cols];
        let dx = &acts.scales[b * blocks..(b + 1) * blocks];
        let mut total = 0f32;
        for k in 0..blocks {
            let dot = |range: std::ops::Range<usize>| -> f32 {
                range
                    .map(|i| code(k * BLOCK + i) * x[k * BLOCK + i] as i32)
                    .sum::<i32>() as f32
            };
            let (lo, hi) = (dot(0..16), dot(16..32));
            let (s_lo, s_hi) = match row.scales_per_block {
                1 => (row.scales[k], row.scales[k]),
                _ => (row.scales[2 * k], row.scales[2 * k + 1]),
            };
            total += dx[k] * (s_lo * lo + s_hi * hi);
            if let Some(offsets) = row.offsets {
                total += offsets[k] * acts.sums[b * blocks + k];
            }
        }
        *y = total;
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Codes, QuantizedActivations, Row, BLOCK};

    /// Products of 32 unsigned weight bytes with 32 signed activation bytes, summed in fours
    /// into 8 i32 lanes (lanes 0-3: the first 16 weights, 4-7: the last 16). `maddubs` adds
    /// pairs into i16 first: no saturation, as |w| <= 128 and |x| <= 127.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn dot_avx2(w: __m256i, x: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1))
    }

    #[target_feature(enable = "avx2,fma,avxvnni")]
    #[inline]
    fn dot_vnni(w: __m256i, x: __m256i) -> __m256i {
        _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), w, x)
    }

    /// The 32 codes of block `k` as bytes, and for signed codes the mask to move their signs
    /// onto the activations (`|w| * sign(w) x`). Nibbles come out as unsigned 0..16.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn load_codes<const NIBBLES: bool>(codes: *const u8, k: usize) -> __m256i {
        if NIBBLES {
            // SAFETY: the caller checked that block k's 16 bytes are in bounds.
            let packed = unsafe { _mm_loadu_si128(codes.add(k * 16).cast()) };
            let mask = _mm_set1_epi8(0x0F);
            let low = _mm_and_si128(packed, mask);
            let high = _mm_and_si128(_mm_srli_epi16(packed, 4), mask);
            _mm256_set_m128i(high, low)
        } else {
            // SAFETY: the caller checked that block k's 32 bytes are in bounds.
            unsafe { _mm256_loadu_si256(codes.add(k * BLOCK).cast()) }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn horizontal_sum(v: __m256) -> f32 {
        let quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
        let single = _mm_add_ss(pair, _mm_shuffle_ps(pair, pair, 1));
        _mm_cvtss_f32(single)
    }

    /// One kernel body per instruction set: `$dot` multiplies unsigned by signed bytes.
    macro_rules! dots_for {
        ($entry:ident, $tile:ident, $features:literal, $dot:ident) => {
            /// # Safety
            /// The CPU must support the enabled features.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $entry(
                row: &Row<'_>,
                acts: &QuantizedActivations,
                out: &mut [f32],
            ) {
                let blocks = acts.cols / BLOCK;
                let code_bytes = match row.layout {
                    Codes::Nibbles => blocks * 16,
                    Codes::Bytes => blocks * BLOCK,
                };
                assert!(row.codes.len() >= code_bytes && out.len() >= acts.rows);
                assert!(row.scales.len() >= row.scales_per_block * blocks);
                assert!(row.offsets.is_none_or(|o| o.len() >= blocks));
                assert!(acts.codes.len() >= acts.rows * acts.cols);
                assert!(
                    acts.scales.len() >= acts.rows * blocks
                        && acts.sums.len() >= acts.rows * blocks
                );
                let mut b0 = 0;
                while b0 < acts.rows {
                    // SAFETY: bounds asserted above; b0 + tile <= rows.
                    unsafe {
                        match (acts.rows - b0 >= 4, row.layout, row.scales_per_block) {
                            (true, Codes::Nibbles, _) => {
                                $tile::<true, false, 4>(row, acts, b0, out)
                            }
                            (true, Codes::Bytes, 1) => $tile::<false, false, 4>(row, acts, b0, out),
                            (true, Codes::Bytes, _) => $tile::<false, true, 4>(row, acts, b0, out),
                            (false, Codes::Nibbles, _) => {
                                $tile::<true, false, 1>(row, acts, b0, out)
                            }
                            (false, Codes::Bytes, 1) => {
                                $tile::<false, false, 1>(row, acts, b0, out)
                            }
                            (false, Codes::Bytes, _) => $tile::<false, true, 1>(row, acts, b0, out),
                        }
                    }
                    b0 += if acts.rows - b0 >= 4 { 4 } else { 1 };
                }
            }

            /// Activation rows `b0..b0 + T` against one weight row; two accumulators per
            /// activation row (even and odd blocks) so consecutive FMAs do not wait on each other.
            ///
            /// # Safety
            /// The CPU must support the enabled features and the caller checked the bounds.
            #[target_feature(enable = $features)]
            unsafe fn $tile<const NIBBLES: bool, const TWO_SCALES: bool, const T: usize>(
                row: &Row<'_>,
                acts: &QuantizedActivations,
                b0: usize,
                out: &mut [f32],
            ) {
                let cols = acts.cols;
                let blocks = cols / BLOCK;
                let mut acc = [[_mm256_setzero_ps(); 2]; T];
                let mut offset_acc = [0f32; T];
                let codes = row.codes.as_ptr();
                let x_codes = acts.codes.as_ptr();
                let x_scales = acts.scales.as_ptr();
                let x_sums = acts.sums.as_ptr();
                let w_scales = row.scales.as_ptr();
                for k in 0..blocks {
                    // SAFETY (all loads below): k < blocks and b0 + t < rows, within the
                    // lengths asserted by the caller.
                    let w = unsafe { load_codes::<NIBBLES>(codes, k) };
                    let (w_abs, sign) = if NIBBLES {
                        (w, w)
                    } else {
                        (_mm256_sign_epi8(w, w), w)
                    };
                    let w_scale = if TWO_SCALES {
                        unsafe {
                            _mm256_set_m128(
                                _mm_set1_ps(*w_scales.add(2 * k + 1)),
                                _mm_set1_ps(*w_scales.add(2 * k)),
                            )
                        }
                    } else {
                        unsafe { _mm256_set1_ps(*w_scales.add(k)) }
                    };
                    for t in 0..T {
                        let b = b0 + t;
                        let x =
                            unsafe { _mm256_loadu_si256(x_codes.add(b * cols + k * BLOCK).cast()) };
                        let x = if NIBBLES {
                            x
                        } else {
                            _mm256_sign_epi8(x, sign)
                        };
                        let sums = _mm256_cvtepi32_ps($dot(w_abs, x));
                        let dx = unsafe { _mm256_set1_ps(*x_scales.add(b * blocks + k)) };
                        let slot = &mut acc[t][k & 1];
                        *slot = _mm256_fmadd_ps(sums, _mm256_mul_ps(w_scale, dx), *slot);
                    }
                    if let Some(offsets) = row.offsets {
                        let o = unsafe { *offsets.as_ptr().add(k) };
                        for (t, slot) in offset_acc.iter_mut().enumerate() {
                            *slot += o * unsafe { *x_sums.add((b0 + t) * blocks + k) };
                        }
                    }
                }
                for t in 0..T {
                    out[b0 + t] =
                        horizontal_sum(_mm256_add_ps(acc[t][0], acc[t][1])) + offset_acc[t];
                }
            }
        };
    }

    dots_for!(dots_avx2, tile_avx2, "avx2,fma", dot_avx2);
    dots_for!(dots_avx_vnni, tile_avx_vnni, "avx2,fma,avxvnni", dot_vnni);
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

    /// The scalar kernel and every SIMD kernel this CPU can run.
    fn available_kernels() -> Vec<Kernel> {
        #[allow(unused_mut)]
        let mut kernels = vec![Kernel::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                kernels.push(Kernel::Avx2);
                if std::is_x86_feature_detected!("avxvnni") {
                    kernels.push(Kernel::AvxVnni);
                }
            }
        }
        kernels
    }

    #[test]
    fn kernels_match_dequantized_matmul() {
        for kernel in available_kernels() {
            for dtype in [
                GgmlDType::Q8_0,
                GgmlDType::Q5_0,
                GgmlDType::Q4_1,
                GgmlDType::Q4K,
                GgmlDType::Q6K,
            ] {
                for batch in [1, 3, 4, 9, 37] {
                    check_matmul(kernel, dtype, 13, 256, batch);
                }
            }
        }
    }

    #[test]
    fn simd_and_scalar_kernels_agree() {
        for dtype in [GgmlDType::Q6K, GgmlDType::Q4_1, GgmlDType::Q8_0] {
            let m = BlockMatrix::from_qtensor(&quantized(dtype, 5, 512)).expect("unpack");
            let x = sample(7 * 512, 5, 3.0);
            let acts = QuantizedActivations::new(&x, 7, 512);
            for kernel in available_kernels() {
                for r in 0..5 {
                    let (mut a, mut b) = (vec![0f32; 7], vec![0f32; 7]);
                    m.row_times_batch(Kernel::Scalar, r, &acts, &mut a);
                    m.row_times_batch(kernel, r, &acts, &mut b);
                    for (x, y) in a.iter().zip(&b) {
                        assert!(
                            (x - y).abs() <= 1e-4 * x.abs().max(1.0),
                            "{kernel:?} {dtype:?}: {x} vs {y}"
                        );
                    }
                }
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
