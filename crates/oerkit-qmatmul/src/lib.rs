//! `oerkit-qmatmul`: a batched quantized matrix multiplication `y = x W^T` for the GGUF weight
//! types the shipped models use (Q8_0, Q5_0, Q4_1, Q4_K, Q6_K), shared by the model crates (the
//! GGUF engine, and Marian's q8 mode). It depends on candle (for `QTensor`) and rayon only.
//!
//! candle's quantized kernels compute one dot product per (weight row, activation row), reading
//! the whole weight matrix again for every activation row, so decoding 16 sequences costs about
//! 16 single-sequence steps. Here, as in llama.cpp, the activations of the whole batch are
//! quantized once to 8 bits per 32 values, and weight rows are interleaved in panels of 8 (the
//! layout of llama.cpp's repacked `q4_0_8x8` kernels): one 256-bit `dpbusd` multiplies 4 bytes of
//! one activation row (broadcast) with the same 4 columns of 8 weight rows, so each lane sums one
//! output and no horizontal reduction is needed; a panel meets a tile of 4 activation rows while
//! it is in registers, and threads split the panels.
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
    /// Unsigned 4-bit codes, 16 bytes per row and block: byte `j` holds code `j` (low nibble) and
    /// `j + 16` (high nibble).
    Nibbles,
    /// Signed 8-bit codes stored as `code + 128` ([`BYTE_SHIFT`]), 32 bytes per row and block.
    Bytes,
}

/// A weight matrix `(rows, cols)` unpacked for [`BlockMatrix::matmul`], in panels of [`PANEL`]
/// rows: per (panel, block of 32 columns), the codes in 4-byte groups of each row in turn
/// ([`GROUP_BYTES`] per group), then per (panel, block) the rows' scales (first and second half
/// with two scales per block) and offsets.
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
    /// `Σ code` of the first and of the last 16 codes of each block (two per block).
    half_sums: Vec<i32>,
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

/// Writes unpacked blocks, which arrive row by row, straight into the panel layout of a
/// [`BlockMatrix`] (no second copy of a large matrix at load time).
struct Unpacker {
    layout: Codes,
    scales_per_block: usize,
    rows: usize,
    cols: usize,
    /// Blocks pushed so far.
    pushed: usize,
    codes: Vec<u8>,
    scales: Vec<f32>,
    offsets: Vec<f32>,
}

impl Unpacker {
    fn new(layout: Codes, scales_per_block: usize, rows: usize, cols: usize) -> Self {
        let blocks = cols / BLOCK;
        let panel_rows = rows.div_ceil(PANEL) * PANEL;
        // Padding rows: zero weights (code 0 is stored as BYTE_SHIFT for bytes), zero scales.
        let padding = match layout {
            Codes::Nibbles => 0,
            Codes::Bytes => BYTE_SHIFT as u8,
        };
        Unpacker {
            layout,
            scales_per_block,
            rows,
            cols,
            pushed: 0,
            codes: vec![padding; panel_rows * blocks * layout.bytes_per_block()],
            scales: vec![0.0; panel_rows * blocks * scales_per_block],
            offsets: vec![0.0; panel_rows * blocks],
        }
    }

    /// The next block (row by row): codes (0..16 for nibbles, else signed), the scale of each 16
    /// weights, offset.
    fn push(&mut self, codes: &[i8; BLOCK], scales: [f32; 2], offset: f32) {
        let blocks = self.cols / BLOCK;
        let (row, k) = (self.pushed / blocks, self.pushed % blocks);
        self.pushed += 1;
        let (panel, lane) = (row / PANEL, row % PANEL);
        let block = panel * blocks + k;
        let at = block * PANEL * self.layout.bytes_per_block() + lane * 4;
        match self.layout {
            Codes::Nibbles => {
                for j in 0..16 {
                    debug_assert!((0..16).contains(&codes[j]) && (0..16).contains(&codes[j + 16]));
                    self.codes[at + (j / 4) * GROUP_BYTES + j % 4] =
                        (codes[j] as u8 & 0x0F) | ((codes[j + 16] as u8) << 4);
                }
            }
            Codes::Bytes => {
                for (j, &c) in codes.iter().enumerate() {
                    self.codes[at + (j / 4) * GROUP_BYTES + j % 4] = (c as i32 + BYTE_SHIFT) as u8;
                }
            }
        }
        for (half, &scale) in scales[..self.scales_per_block].iter().enumerate() {
            self.scales[(block * self.scales_per_block + half) * PANEL + lane] = scale;
        }
        self.offsets[block * PANEL + lane] = offset;
    }

    fn finish(self) -> BlockMatrix {
        debug_assert_eq!(self.pushed, self.rows * self.cols / BLOCK);
        let offsets = self
            .offsets
            .iter()
            .any(|&o| o != 0.0)
            .then_some(self.offsets);
        BlockMatrix {
            rows: self.rows,
            cols: self.cols,
            layout: self.layout,
            scales_per_block: self.scales_per_block,
            codes: self.codes,
            scales: self.scales,
            offsets,
        }
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
            GgmlDType::Q4_1 | GgmlDType::Q4K => Unpacker::new(Codes::Nibbles, 1, rows, cols),
            GgmlDType::Q6K => Unpacker::new(Codes::Bytes, 2, rows, cols),
            _ => Unpacker::new(Codes::Bytes, 1, rows, cols),
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
        Ok(out.finish())
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

    fn blocks(&self) -> usize {
        self.cols / BLOCK
    }

    fn panels(&self) -> usize {
        self.rows.div_ceil(PANEL)
    }

    /// Where block `k` of panel `panel` starts in `codes`, `scales` and `offsets`.
    fn block_at(&self, panel: usize, k: usize) -> usize {
        panel * self.blocks() + k
    }

    /// The signed code of weight `(row, col)`.
    fn code(&self, row: usize, col: usize) -> i32 {
        let (panel, k) = (row / PANEL, col / BLOCK);
        let bytes = PANEL * self.layout.bytes_per_block();
        let start = self.block_at(panel, k) * bytes;
        self.layout
            .code(&self.codes[start..start + bytes], row % PANEL, col % BLOCK)
    }

    fn scale(&self, row: usize, col: usize) -> f32 {
        let (panel, lane) = (row / PANEL, row % PANEL);
        let (k, j) = (col / BLOCK, col % BLOCK);
        let half = if self.scales_per_block == 2 {
            j / 16
        } else {
            0
        };
        self.scales[(self.block_at(panel, k) * self.scales_per_block + half) * PANEL + lane]
    }

    fn offset(&self, row: usize, k: usize) -> f32 {
        self.offsets.as_ref().map_or(0.0, |o| {
            o[self.block_at(row / PANEL, k) * PANEL + row % PANEL]
        })
    }

    /// Weight row `row` as f32, as the file's dequantization gives it (embedding lookups).
    pub fn dequantize_row_into(&self, row: usize, out: &mut [f32]) {
        for (c, value) in out.iter_mut().enumerate().take(self.cols) {
            *value = self.scale(row, c) * self.code(row, c) as f32 + self.offset(row, c / BLOCK);
        }
    }

    /// The weights as f32 `(rows * cols)`, row-major (for tests and checks).
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.cols];
        for (r, row) in out.chunks_exact_mut(self.cols.max(1)).enumerate() {
            self.dequantize_row_into(r, row);
        }
        out
    }

    /// `x W^T` for `x` of `batch` rows of `cols` values; returns `batch * rows` values, row-major.
    pub fn matmul(&self, x: &[f32], batch: usize) -> Vec<f32> {
        assert_eq!(x.len(), batch * self.cols, "activation shape");
        let acts = QuantizedActivations::new(x, batch, self.cols);
        self.matmul_quantized(Kernel::detect(), &acts)
    }

    /// `x W^T` for activations quantized once for several matrices with the same input.
    pub fn matmul_activations(&self, acts: &Activations) -> Vec<f32> {
        assert_eq!(acts.0.cols, self.cols, "activation width");
        self.matmul_quantized(Kernel::detect(), &acts.0)
    }

    fn matmul_quantized(&self, kernel: Kernel, acts: &QuantizedActivations) -> Vec<f32> {
        let (batch, rows) = (acts.rows, self.rows);
        let panels = self.panels();
        let per_task = panels_per_task(panels, batch, self.cols);
        let mut y = vec![0f32; batch * rows];
        let out = OutputRows(y.as_mut_ptr());
        (0..panels.div_ceil(per_task))
            .into_par_iter()
            .for_each(|task| {
                let out = &out;
                // (batch row, lane) of one panel, copied into the rows of `y` below.
                let mut scratch = vec![0f32; batch * PANEL];
                for panel in task * per_task..((task + 1) * per_task).min(panels) {
                    kernel.panel(&self.panel(panel), acts, &mut scratch);
                    let first = panel * PANEL;
                    let lanes = PANEL.min(rows - first);
                    for (b, values) in scratch.chunks_exact(PANEL).enumerate() {
                        // SAFETY: `y` holds batch * rows values and outlives the parallel loop;
                        // b < batch and first + lanes <= rows, and each panel (a range of columns
                        // of every output row) belongs to exactly one task, so no two threads
                        // write the same value and nobody reads `y` until the loop ends.
                        #[allow(unsafe_code)]
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                values.as_ptr(),
                                out.0.add(b * rows + first),
                                lanes,
                            );
                        }
                    }
                }
            });
        y
    }

    /// The pieces of panel `panel`.
    fn panel(&self, panel: usize) -> Panel<'_> {
        let blocks = self.blocks();
        let code_bytes = blocks * PANEL * self.layout.bytes_per_block();
        let scales = blocks * self.scales_per_block * PANEL;
        Panel {
            layout: self.layout,
            scales_per_block: self.scales_per_block,
            codes: &self.codes[panel * code_bytes..(panel + 1) * code_bytes],
            scales: &self.scales[panel * scales..(panel + 1) * scales],
            offsets: self
                .offsets
                .as_ref()
                .map(|o| &o[panel * blocks * PANEL..(panel + 1) * blocks * PANEL]),
        }
    }
}

/// Weight rows interleaved together: the 8 i32 lanes of one 256-bit `dpbusd` are 8 weight rows,
/// so each 4-byte group of activations (broadcast) meets 8 rows at once and the sums never need a
/// horizontal reduction (llama.cpp's repacked "q4_0_8x8" layout works the same way).
const PANEL: usize = 8;

/// Bytes of one 4-byte group of a panel: 4 codes (or 8 nibbles) of each of its 8 rows.
const GROUP_BYTES: usize = 4 * PANEL;

/// Signed 8-bit codes are stored as `code + 128`: `dpbusd` multiplies unsigned by signed bytes,
/// and `Σ (c + 128) x = Σ c x + 128 Σ x` is corrected by starting the sum at `-128 Σ x`.
const BYTE_SHIFT: i32 = 128;

impl Codes {
    /// Code bytes per row and block.
    fn bytes_per_block(self) -> usize {
        match self {
            Codes::Nibbles => 16,
            Codes::Bytes => BLOCK,
        }
    }

    /// The signed code of row `lane`, column `j` (0..32) in one (panel, block) of codes.
    fn code(self, block: &[u8], lane: usize, j: usize) -> i32 {
        match self {
            Codes::Nibbles => {
                let i = j % 16;
                let byte = block[(i / 4) * GROUP_BYTES + lane * 4 + i % 4];
                if j < 16 {
                    (byte & 0x0F) as i32
                } else {
                    (byte >> 4) as i32
                }
            }
            Codes::Bytes => block[(j / 4) * GROUP_BYTES + lane * 4 + j % 4] as i32 - BYTE_SHIFT,
        }
    }
}

/// One panel of a [`BlockMatrix`].
struct Panel<'a> {
    layout: Codes,
    scales_per_block: usize,
    codes: &'a [u8],
    scales: &'a [f32],
    offsets: Option<&'a [f32]>,
}

/// The output matrix, written by several threads at disjoint places (see `matmul_quantized`):
/// threads own panels, which are column ranges of every output row, so no safe split of the
/// slice expresses it; writing rows directly saves a panel-major copy of the whole output (the
/// LM head's is megabytes per step).
struct OutputRows(*mut f32);

// SAFETY: the pointer is only written at disjoint places by the tasks of one parallel loop, which
// ends before the owning Vec is used again.
#[allow(unsafe_code)]
unsafe impl Sync for OutputRows {}

/// Enough panels per task to amortize scheduling, enough tasks to balance the threads.
fn panels_per_task(panels: usize, batch: usize, cols: usize) -> usize {
    let tasks = (rayon::current_num_threads() * 4).max(1);
    // At least ~64k multiply-adds per task.
    let min_panels = (65_536 / (batch * cols * PANEL).max(1)).max(1);
    panels.div_ceil(tasks).max(min_panels).min(panels.max(1))
}

/// Activations quantized for [`BlockMatrix::matmul_activations`]: one quantization serves every
/// matrix that reads the same input (an attention layer's q, k and v; a gated FFN's gate and up).
pub struct Activations(QuantizedActivations);

impl Activations {
    /// Quantizes `x`, `rows` rows of `cols` values (`cols` a multiple of 32).
    pub fn quantize(x: &[f32], rows: usize, cols: usize) -> Self {
        assert_eq!(x.len(), rows * cols, "activation shape");
        assert!(cols.is_multiple_of(BLOCK), "activation width");
        Activations(QuantizedActivations::new(x, rows, cols))
    }

    pub fn rows(&self) -> usize {
        self.0.rows
    }

    pub fn cols(&self) -> usize {
        self.0.cols
    }
}

impl QuantizedActivations {
    fn new(x: &[f32], rows: usize, cols: usize) -> Self {
        let blocks = rows * cols / BLOCK;
        let mut codes = vec![0i8; rows * cols];
        let mut scales = vec![0f32; blocks];
        let mut sums = vec![0f32; blocks];
        let mut half_sums = vec![0i32; 2 * blocks];
        // Rows in parallel once there is enough work to pay for the hand-off (a decoder step of a
        // 32-row batch: 32 rows x 512; a single row stays on the calling thread).
        let rows_per_task = (8_192 / cols.max(1)).max(1);
        let chunk = rows_per_task * cols;
        let block_chunk = chunk / BLOCK;
        if rows > rows_per_task {
            x.par_chunks(chunk)
                .zip(codes.par_chunks_mut(chunk))
                .zip(scales.par_chunks_mut(block_chunk))
                .zip(sums.par_chunks_mut(block_chunk))
                .zip(half_sums.par_chunks_mut(2 * block_chunk))
                .for_each(|((((x, codes), scales), sums), half_sums)| {
                    quantize_rows(x, codes, scales, sums, half_sums)
                });
        } else {
            quantize_rows(x, &mut codes, &mut scales, &mut sums, &mut half_sums);
        }
        QuantizedActivations {
            rows,
            cols,
            codes,
            scales,
            sums,
            half_sums,
        }
    }
}

/// Quantizes whole rows, block by block (see [`quantize_block`]).
fn quantize_rows(
    x: &[f32],
    codes: &mut [i8],
    scales: &mut [f32],
    sums: &mut [f32],
    half_sums: &mut [i32],
) {
    let blocks = x.chunks_exact(BLOCK).zip(codes.chunks_exact_mut(BLOCK));
    let outputs = scales
        .iter_mut()
        .zip(sums)
        .zip(half_sums.chunks_exact_mut(2));
    for ((values, out), ((scale, sum), halves)) in blocks.zip(outputs) {
        (*scale, *sum, halves[0], halves[1]) = quantize_block(values, out);
    }
}

/// Quantizes one block of 32 values into `out`; returns its scale, scale x code sum, and the code
/// sums of its two halves.
#[inline]
fn quantize_block(values: &[f32], out: &mut [i8]) -> (f32, f32, i32, i32) {
    // Eight running maxima: a single `fold` is a serial chain of 32 dependent maxima.
    let mut lanes = [0f32; 8];
    for chunk in values.chunks_exact(8) {
        for (m, v) in lanes.iter_mut().zip(chunk) {
            *m = m.max(v.abs());
        }
    }
    let amax = lanes.iter().fold(0f32, |m, &v| m.max(v));
    let d = amax / 127.0;
    let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
    for (c, &v) in out.iter_mut().zip(values) {
        // Round half away from zero as llama.cpp's quantize_row_q8_0 (`roundf`), in a
        // form that vectorizes (`f32::round` is a libm call without SSE4.1).
        let scaled = v * inverse;
        *c = (scaled + 0.5f32.copysign(scaled)) as i8;
    }
    let low: i32 = out[..16].iter().map(|&c| c as i32).sum();
    let high: i32 = out[16..].iter().map(|&c| c as i32).sum();
    // llama.cpp stores the activation scale as f16.
    let d = half_round(d);
    (d, d * (low + high) as f32, low, high)
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

    /// `out[b * PANEL + lane] = Σ_blocks dx[b] * Σ_i scale_i * code_i * xcode_i + offset * sum_x[b]`
    /// for every activation row `b` and the panel's rows (lanes).
    fn panel(self, panel: &Panel<'_>, acts: &QuantizedActivations, out: &mut [f32]) {
        match self {
            Kernel::Scalar => panel_scalar(panel, acts, out),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `detect` returned this kernel only after checking the CPU features it
            // enables; the slice lengths are checked inside.
            #[allow(unsafe_code)]
            Kernel::Avx2 => unsafe { x86::panel_avx2(panel, acts, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            #[allow(unsafe_code)]
            Kernel::AvxVnni => unsafe { x86::panel_avx_vnni(panel, acts, out) },
        }
    }
}

fn panel_scalar(panel: &Panel<'_>, acts: &QuantizedActivations, out: &mut [f32]) {
    let cols = acts.cols;
    let blocks = cols / BLOCK;
    let bytes = panel.layout.bytes_per_block();
    let code = |lane: usize, k: usize, j: usize| -> i32 {
        panel.layout.code(
            &panel.codes[k * PANEL * bytes..(k + 1) * PANEL * bytes],
            lane,
            j,
        )
    };
    let spb = panel.scales_per_block;
    for b in 0..acts.rows {
        let x = &acts.codes[b * cols..(b + 1) * cols];
        for lane in 0..PANEL {
            let mut total = 0f32;
            for k in 0..blocks {
                let dot = |range: std::ops::Range<usize>| -> f32 {
                    range
                        .map(|j| code(lane, k, j) * x[k * BLOCK + j] as i32)
                        .sum::<i32>() as f32
                };
                let scale =
                    |half: usize| panel.scales[(k * spb + half.min(spb - 1)) * PANEL + lane];
                total +=
                    acts.scales[b * blocks + k] * (scale(0) * dot(0..16) + scale(1) * dot(16..32));
                if let Some(offsets) = panel.offsets {
                    total += offsets[k * PANEL + lane] * acts.sums[b * blocks + k];
                }
            }
            out[b * PANEL + lane] = total;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Codes, Panel, QuantizedActivations, BLOCK, BYTE_SHIFT, GROUP_BYTES, PANEL};

    /// `acc + Σ_4 w * x` per i32 lane, `w` unsigned and `x` signed bytes (AVX-VNNI). For shifted
    /// signed codes the shift is corrected by the accumulator's starting value ([`BYTE_SHIFT`]).
    #[target_feature(enable = "avx2,fma,avxvnni")]
    #[inline]
    fn dot_vnni(acc: __m256i, w: __m256i, x: __m256i) -> __m256i {
        _mm256_dpbusd_avx_epi32(acc, w, x)
    }

    /// As [`dot_unsigned_vnni`] with AVX2: `maddubs` adds pairs into i16 first, which cannot
    /// saturate for 4-bit weights.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn dot_unsigned_avx2(acc: __m256i, w: __m256i, x: __m256i) -> __m256i {
        _mm256_add_epi32(
            acc,
            _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1)),
        )
    }

    /// `acc + Σ_4 (w - 128) * x` for shifted signed codes `w` with AVX2: `(w + 128) * x` pairs would saturate `maddubs`, so the
    /// code's sign moves onto the activation instead (`|c| * sign(c) x`, at most 2·128·127).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn dot_shifted_avx2(acc: __m256i, w: __m256i, x: __m256i) -> __m256i {
        let code = _mm256_xor_si256(w, _mm256_set1_epi8(BYTE_SHIFT as u8 as i8));
        let magnitude = _mm256_sign_epi8(code, code);
        let signed_x = _mm256_sign_epi8(x, code);
        _mm256_add_epi32(
            acc,
            _mm256_madd_epi16(
                _mm256_maddubs_epi16(magnitude, signed_x),
                _mm256_set1_epi16(1),
            ),
        )
    }

    /// The 4 activation bytes at `p`, in every i32 lane.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn broadcast4(p: *const i8) -> __m256i {
        // SAFETY: the caller guarantees 4 readable bytes.
        _mm256_set1_epi32(unsafe { p.cast::<i32>().read_unaligned() })
    }

    /// One kernel body per instruction set.
    macro_rules! panel_for {
        ($entry:ident, $tile:ident, $features:literal, $dot_unsigned:ident, $dot_shifted:ident,
         $corrects_shift:literal) => {
            /// # Safety
            /// The CPU must support the enabled features.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $entry(
                panel: &Panel<'_>,
                acts: &QuantizedActivations,
                out: &mut [f32],
            ) {
                let blocks = acts.cols / BLOCK;
                assert!(acts.cols.is_multiple_of(BLOCK));
                assert!(panel.codes.len() >= blocks * PANEL * panel.layout.bytes_per_block());
                assert!(out.len() >= acts.rows * PANEL);
                assert!(panel.scales.len() >= panel.scales_per_block * blocks * PANEL);
                assert!(panel.offsets.is_none_or(|o| o.len() >= blocks * PANEL));
                assert!(acts.codes.len() >= acts.rows * acts.cols);
                assert!(
                    acts.scales.len() >= acts.rows * blocks
                        && acts.sums.len() >= acts.rows * blocks
                        && acts.half_sums.len() >= 2 * acts.rows * blocks
                );
                let mut b0 = 0;
                while b0 < acts.rows {
                    let tile = (acts.rows - b0).min(4);
                    // SAFETY: bounds asserted above; b0 + tile <= rows.
                    unsafe {
                        match (tile, panel.layout, panel.scales_per_block) {
                            (4, Codes::Nibbles, _) => $tile::<true, false, 4>(panel, acts, b0, out),
                            (4, Codes::Bytes, 1) => $tile::<false, false, 4>(panel, acts, b0, out),
                            (4, Codes::Bytes, _) => $tile::<false, true, 4>(panel, acts, b0, out),
                            (2 | 3, Codes::Nibbles, _) => {
                                $tile::<true, false, 2>(panel, acts, b0, out)
                            }
                            (2 | 3, Codes::Bytes, 1) => {
                                $tile::<false, false, 2>(panel, acts, b0, out)
                            }
                            (2 | 3, Codes::Bytes, _) => {
                                $tile::<false, true, 2>(panel, acts, b0, out)
                            }
                            (_, Codes::Nibbles, _) => $tile::<true, false, 1>(panel, acts, b0, out),
                            (_, Codes::Bytes, 1) => $tile::<false, false, 1>(panel, acts, b0, out),
                            (_, Codes::Bytes, _) => $tile::<false, true, 1>(panel, acts, b0, out),
                        }
                    }
                    b0 += match tile {
                        4 => 4,
                        2 | 3 => 2,
                        _ => 1,
                    };
                }
            }

            /// Activation rows `b0..b0 + T` against the panel's 8 weight rows. Per block and row,
            /// two integer sums (codes 0-15 and 16-31), then one or two scaled FMAs.
            ///
            /// # Safety
            /// The CPU must support the enabled features and the caller checked the bounds.
            #[target_feature(enable = $features)]
            unsafe fn $tile<const NIBBLES: bool, const TWO_SCALES: bool, const T: usize>(
                panel: &Panel<'_>,
                acts: &QuantizedActivations,
                b0: usize,
                out: &mut [f32],
            ) {
                let cols = acts.cols;
                let blocks = cols / BLOCK;
                let bytes = if NIBBLES { 16 } else { BLOCK };
                let scales_per_block = if TWO_SCALES { 2 } else { 1 };
                let codes = panel.codes.as_ptr();
                let w_scales = panel.scales.as_ptr();
                let x_codes = acts.codes.as_ptr();
                let x_scales = acts.scales.as_ptr();
                let x_sums = acts.sums.as_ptr();
                let x_half_sums = acts.half_sums.as_ptr();
                let nibble_mask = _mm256_set1_epi8(0x0F);
                let mut acc = [_mm256_setzero_ps(); T];
                for k in 0..blocks {
                    // SAFETY (all reads below): k < blocks and b0 + t < rows, within the lengths
                    // asserted by the caller.
                    let w = unsafe { codes.add(k * PANEL * bytes) };
                    let mut low = [_mm256_setzero_si256(); T];
                    let mut high = [_mm256_setzero_si256(); T];
                    if !NIBBLES && $corrects_shift {
                        for t in 0..T {
                            let s = unsafe { x_half_sums.add(((b0 + t) * blocks + k) * 2) };
                            low[t] = _mm256_set1_epi32(-BYTE_SHIFT * unsafe { *s });
                            high[t] = _mm256_set1_epi32(-BYTE_SHIFT * unsafe { *s.add(1) });
                        }
                    }
                    let x = |t: usize| unsafe { x_codes.add((b0 + t) * cols + k * BLOCK) };
                    if NIBBLES {
                        for g in 0..4 {
                            let packed =
                                unsafe { _mm256_loadu_si256(w.add(g * GROUP_BYTES).cast()) };
                            let w_low = _mm256_and_si256(packed, nibble_mask);
                            let w_high =
                                _mm256_and_si256(_mm256_srli_epi16(packed, 4), nibble_mask);
                            for t in 0..T {
                                let x_low = unsafe { broadcast4(x(t).add(4 * g)) };
                                let x_high = unsafe { broadcast4(x(t).add(16 + 4 * g)) };
                                low[t] = $dot_unsigned(low[t], w_low, x_low);
                                high[t] = $dot_unsigned(high[t], w_high, x_high);
                            }
                        }
                    } else {
                        for g in 0..4 {
                            let w_low =
                                unsafe { _mm256_loadu_si256(w.add(g * GROUP_BYTES).cast()) };
                            let w_high =
                                unsafe { _mm256_loadu_si256(w.add((g + 4) * GROUP_BYTES).cast()) };
                            for t in 0..T {
                                let x_low = unsafe { broadcast4(x(t).add(4 * g)) };
                                let x_high = unsafe { broadcast4(x(t).add(16 + 4 * g)) };
                                low[t] = $dot_shifted(low[t], w_low, x_low);
                                high[t] = $dot_shifted(high[t], w_high, x_high);
                            }
                        }
                    }
                    let s = unsafe { w_scales.add(k * scales_per_block * PANEL) };
                    let scale_low = unsafe { _mm256_loadu_ps(s) };
                    for t in 0..T {
                        let dx = unsafe { _mm256_set1_ps(*x_scales.add((b0 + t) * blocks + k)) };
                        if TWO_SCALES {
                            let scale_high = unsafe { _mm256_loadu_ps(s.add(PANEL)) };
                            acc[t] = _mm256_fmadd_ps(
                                _mm256_cvtepi32_ps(low[t]),
                                _mm256_mul_ps(scale_low, dx),
                                acc[t],
                            );
                            acc[t] = _mm256_fmadd_ps(
                                _mm256_cvtepi32_ps(high[t]),
                                _mm256_mul_ps(scale_high, dx),
                                acc[t],
                            );
                        } else {
                            acc[t] = _mm256_fmadd_ps(
                                _mm256_cvtepi32_ps(_mm256_add_epi32(low[t], high[t])),
                                _mm256_mul_ps(scale_low, dx),
                                acc[t],
                            );
                        }
                    }
                    if let Some(offsets) = panel.offsets {
                        let o = unsafe { _mm256_loadu_ps(offsets.as_ptr().add(k * PANEL)) };
                        for t in 0..T {
                            let sum = unsafe { _mm256_set1_ps(*x_sums.add((b0 + t) * blocks + k)) };
                            acc[t] = _mm256_fmadd_ps(o, sum, acc[t]);
                        }
                    }
                }
                for t in 0..T {
                    // SAFETY: out holds rows * PANEL values (asserted by the caller).
                    unsafe { _mm256_storeu_ps(out.as_mut_ptr().add((b0 + t) * PANEL), acc[t]) };
                }
            }
        };
    }

    panel_for!(
        panel_avx2,
        tile_avx2,
        "avx2,fma",
        dot_unsigned_avx2,
        dot_shifted_avx2,
        false
    );
    panel_for!(
        panel_avx_vnni,
        tile_avx_vnni,
        "avx2,fma,avxvnni",
        dot_vnni,
        dot_vnni,
        true
    );
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

    const DTYPES: [GgmlDType; 5] = [
        GgmlDType::Q8_0,
        GgmlDType::Q5_0,
        GgmlDType::Q4_1,
        GgmlDType::Q4K,
        GgmlDType::Q6K,
    ];

    /// Rows quantized in parallel (a large input) equal rows quantized one at a time.
    #[test]
    fn parallel_activation_quantization_equals_row_by_row() {
        let (rows, cols) = (300, 128);
        let x = sample(rows * cols, 3, 4.0);
        let all = QuantizedActivations::new(&x, rows, cols);
        for (r, row) in x.chunks_exact(cols).enumerate() {
            let one = QuantizedActivations::new(row, 1, cols);
            let blocks = cols / BLOCK;
            assert_eq!(all.codes[r * cols..][..cols], one.codes[..]);
            assert_eq!(all.scales[r * blocks..][..blocks], one.scales[..]);
            assert_eq!(all.sums[r * blocks..][..blocks], one.sums[..]);
            assert_eq!(
                all.half_sums[r * 2 * blocks..][..2 * blocks],
                one.half_sums[..]
            );
        }
    }

    #[test]
    fn unpacking_reproduces_candle_dequantization() {
        for dtype in DTYPES {
            // 13 rows: one full panel and one padded.
            let q = quantized(dtype, 13, 512);
            let want: Vec<f32> = q
                .dequantize(&Device::Cpu)
                .expect("dequantize")
                .flatten_all()
                .expect("flat")
                .to_vec1()
                .expect("vec");
            let got = BlockMatrix::from_qtensor(&q).expect("unpack").dequantize();
            assert_eq!(got.len(), want.len());
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

    fn check_matmul(kernel: Kernel, m: &BlockMatrix, label: &str, batch: usize) {
        let (rows, cols) = (m.rows(), m.cols());
        let weights = m.dequantize();
        let x = sample(batch * cols, 3, 2.0);
        let acts = QuantizedActivations::new(&x, batch, cols);
        let got = m.matmul_quantized(kernel, &acts);
        assert_eq!(got.len(), batch * rows);
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
                    "{kernel:?} {label} ({b}, {r}): {value} vs {with_quantized_x}"
                );
                // ...which are within 8 bits per 32 values of the real ones.
                assert!(
                    (value - exact).abs() <= 0.01 * magnitude,
                    "{kernel:?} {label} ({b}, {r}): {value} vs exact {exact}"
                );
            }
        }
        // The public entry point (detected kernel, threads) agrees.
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
            for dtype in DTYPES {
                // 13 rows: a padded panel; batches cover tiles of 4, 2 and 1 rows.
                let m = BlockMatrix::from_qtensor(&quantized(dtype, 13, 256)).expect("unpack");
                for batch in [1, 3, 4, 9, 37] {
                    check_matmul(kernel, &m, &format!("{dtype:?}"), batch);
                }
            }
        }
    }

    #[test]
    fn extreme_codes_are_exact() {
        // Q8_0 codes -128 and 127 (a file may hold -128 although ggml's quantizer never writes it),
        // where the shifted code and the AVX2 sign trick reach their limits.
        let rows = 9;
        let cols = 64;
        let mut data = Vec::new();
        for r in 0..rows {
            for k in 0..cols / BLOCK {
                let scale: u16 = 0x3C00; // 1.0 as f16
                data.extend_from_slice(&scale.to_le_bytes());
                for j in 0..BLOCK {
                    let code: i8 = match (r + j + k) % 3 {
                        0 => -128,
                        1 => 127,
                        _ => (j as i8) - 16,
                    };
                    data.push(code as u8);
                }
            }
        }
        let m = BlockMatrix::from_ggml_bytes(GgmlDType::Q8_0, &data, rows, cols).expect("unpack");
        for kernel in available_kernels() {
            for batch in [1, 4, 5] {
                check_matmul(kernel, &m, "Q8_0 extremes", batch);
            }
        }
    }

    #[test]
    fn simd_and_scalar_kernels_agree() {
        for dtype in [GgmlDType::Q6K, GgmlDType::Q4_1, GgmlDType::Q8_0] {
            let m = BlockMatrix::from_qtensor(&quantized(dtype, 5, 512)).expect("unpack");
            let x = sample(7 * 512, 5, 3.0);
            let acts = QuantizedActivations::new(&x, 7, 512);
            let want = m.matmul_quantized(Kernel::Scalar, &acts);
            for kernel in available_kernels() {
                let got = m.matmul_quantized(kernel, &acts);
                for (x, y) in want.iter().zip(&got) {
                    assert!(
                        (x - y).abs() <= 1e-4 * x.abs().max(1.0),
                        "{kernel:?} {dtype:?}: {x} vs {y}"
                    );
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
