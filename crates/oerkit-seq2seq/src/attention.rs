//! Scaled dot-product attention on float32 slices, rows in parallel.
//!
//! Written by hand rather than composed of candle ops because a decoder step's attention is thousands
//! of tiny products (one per row and head): candle's gemm packs its operands for each of them and runs
//! them one after another on the calling thread. On the OPUS-MT-size bench model (beam 4, batch 32)
//! that was a fifth of all CPU time, serial. Here every (row, query position) is a task on the rayon
//! pool, nothing is packed, and each row reads its source's keys and values in place (beams share
//! their source's cross-attention keys without a gather).
//!
//! The arithmetic follows what transformers computes with PyTorch's CPU `scaled_dot_product_attention`,
//! rounding step by rounding step where the order is known: each score is one fused multiply-add chain
//! over the head dimension (a gemm micro-kernel's order), scaled after the product, the mask added,
//! `exp(s - max)` (a vectorizable `expf` within 2 ulp, [`exp_nonpositive`]) multiplied by the values
//! unnormalized (again one chain per output, over the keys) and divided by the row sum at the end.
//!
//! Layouts: keys are stored transposed (`[head_dim, positions]` per source and head) so that a query's
//! scores against consecutive keys are contiguous vector operations; a decoder's self-attention
//! history lives in a [`SelfCache`] that grows in place.

use rayon::prelude::*;

use crate::cpu::exp_nonpositive;
use crate::error::{Result, Seq2SeqError};

/// Queries `[rows, heads, len, head_dim]`.
pub(crate) struct Queries<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub heads: usize,
    pub len: usize,
    pub head_dim: usize,
}

/// Keys and values of every source: per source and head (heads one after another), keys transposed
/// `[head_dim, stride]` and values `[stride, head_dim]`; [`Sources`] says where each source lies.
pub(crate) struct KeyValues<'a> {
    pub keys_t: &'a [f32],
    pub values: &'a [f32],
    pub sources: Sources<'a>,
}

/// Where each source's positions lie in [`KeyValues`].
pub(crate) enum Sources<'a> {
    /// `count` sources of `capacity` positions each, of which the first `len` are attended to, with
    /// an optional additive mask `[count, len]` (0 for a token, -inf for padding; trailing padding
    /// is skipped, not computed).
    Uniform {
        count: usize,
        len: usize,
        capacity: usize,
        mask: Option<&'a [f32]>,
    },
    /// Source `s` holds positions `starts[s]..starts[s + 1]`, every one attended to (sequences of
    /// different lengths without padding).
    Ragged { starts: &'a [usize] },
}

/// One source's place: its first position, positions stored, positions attended to, mask.
struct Span<'a> {
    first: usize,
    stride: usize,
    len: usize,
    mask: Option<&'a [f32]>,
}

impl<'a> Sources<'a> {
    pub fn count(&self) -> usize {
        match self {
            Sources::Uniform { count, .. } => *count,
            Sources::Ragged { starts } => starts.len().saturating_sub(1),
        }
    }

    /// Positions stored in all.
    fn positions(&self) -> usize {
        match self {
            Sources::Uniform {
                count, capacity, ..
            } => count * capacity,
            Sources::Ragged { starts } => starts.last().copied().unwrap_or(0),
        }
    }

    fn spans(&self) -> Result<Vec<Span<'a>>> {
        match *self {
            Sources::Uniform {
                count,
                len,
                capacity,
                mask,
            } => {
                if len == 0 || len > capacity || mask.is_some_and(|m| m.len() != count * len) {
                    return Err(Seq2SeqError::Other(format!(
                        "attention over {count} sources of {len} positions (room for {capacity}) \
                         with a mask of {} values",
                        mask.map_or(0, <[f32]>::len)
                    )));
                }
                Ok((0..count)
                    .map(|s| {
                        let mask = mask.map(|m| &m[s * len..(s + 1) * len]);
                        // Trailing masked keys (right padding) are skipped: their weight exp(-inf)
                        // is exactly 0, so leaving them out changes no bit of the result.
                        let attended = mask.map_or(len, |m| {
                            m.iter()
                                .rposition(|&x| x != f32::NEG_INFINITY)
                                .map_or(len, |last| last + 1)
                        });
                        Span {
                            first: s * capacity,
                            stride: capacity,
                            len: attended,
                            mask: mask.map(|m| &m[..attended]),
                        }
                    })
                    .collect())
            }
            Sources::Ragged { starts } => starts
                .windows(2)
                .map(|w| {
                    if w[1] <= w[0] {
                        return Err(Seq2SeqError::Other(format!(
                            "attention source of positions {}..{}",
                            w[0], w[1]
                        )));
                    }
                    Ok(Span {
                        first: w[0],
                        stride: w[1] - w[0],
                        len: w[1] - w[0],
                        mask: None,
                    })
                })
                .collect(),
        }
    }
}

/// `softmax(q·kᵀ·scale + mask)·v` for every row, head and query position; row `r` attends to the keys
/// of source `source_of_row[r]`. Returns `[rows, query len, heads * head_dim]`, the layout the output
/// projection reads.
pub(crate) fn attend(
    q: &Queries,
    kv: &KeyValues,
    source_of_row: &[u32],
    scale: f32,
) -> Result<Vec<f32>> {
    let (heads, d) = (q.heads, q.head_dim);
    let sources = kv.sources.count();
    let kv_size = kv.sources.positions() * heads * d;
    if q.data.len() != q.rows * heads * q.len * d
        || kv.keys_t.len() != kv_size
        || kv.values.len() != kv_size
        || source_of_row.len() != q.rows
        || source_of_row.iter().any(|&s| s as usize >= sources)
    {
        return Err(Seq2SeqError::Other(format!(
            "attention shapes disagree: queries [{}, {heads}, {}, {d}] ({} values), {sources} \
             sources of {} positions ({}/{} key/value values), {} row sources",
            q.rows,
            q.len,
            q.data.len(),
            kv.sources.positions(),
            kv.keys_t.len(),
            kv.values.len(),
            source_of_row.len()
        )));
    }
    let spans = kv.sources.spans()?;
    let longest = spans.iter().map(|s| s.len).max().unwrap_or(0);
    let width = heads * d;
    let mut out = vec![0f32; q.rows * q.len * width];
    let fma = has_fma();
    out.par_chunks_mut(width).enumerate().for_each_init(
        || vec![0f32; longest],
        |scratch, (task, out)| {
            let (row, position) = (task / q.len, task % q.len);
            let span = &spans[source_of_row[row] as usize];
            let scores = &mut scratch[..span.len];
            for (h, out) in out.chunks_exact_mut(d).enumerate() {
                let query = &q.data[((row * heads + h) * q.len + position) * d..][..d];
                let block = (span.first * heads + h * span.stride) * d;
                let head = Head {
                    query,
                    keys_t: &kv.keys_t[block..block + span.stride * d],
                    stride: span.stride,
                    values: &kv.values[block..block + span.len * d],
                    mask: span.mask,
                    scale,
                };
                #[cfg(target_arch = "x86_64")]
                if fma {
                    // SAFETY: `has_fma` checked that the CPU has FMA and AVX2.
                    #[allow(unsafe_code)]
                    unsafe {
                        head_fma(&head, scores, out)
                    };
                    continue;
                }
                let _ = fma;
                head.attend::<Separate>(scores, out);
            }
        },
    );
    Ok(out)
}

/// A decoder's self-attention keys and values so far, per row, in the layout [`attend`] reads, with
/// room to grow: a step writes its keys and values in place (doubling the room when full) instead of
/// concatenating a copy of the whole cache, and beam search's reordering copies each kept row once.
#[derive(Debug, Clone)]
pub(crate) struct SelfCache {
    /// `[rows, heads, head_dim, capacity]`
    keys_t: Vec<f32>,
    /// `[rows, heads, capacity, head_dim]`
    values: Vec<f32>,
    rows: usize,
    heads: usize,
    head_dim: usize,
    capacity: usize,
    len: usize,
}

impl SelfCache {
    pub fn new(rows: usize, heads: usize, head_dim: usize) -> Self {
        Self {
            keys_t: Vec::new(),
            values: Vec::new(),
            rows,
            heads,
            head_dim,
            capacity: 0,
            len: 0,
        }
    }

    /// Appends one position: `keys` and `values` are `[rows, heads, head_dim]` (a projection's
    /// output for one decoder step).
    pub fn push(&mut self, keys: &[f32], values: &[f32]) -> Result<()> {
        let (heads, d) = (self.heads, self.head_dim);
        let size = self.rows * heads * d;
        if keys.len() != size || values.len() != size {
            return Err(Seq2SeqError::Other(format!(
                "self-attention cache of {} rows got {}/{} values for a step (expected {size})",
                self.rows,
                keys.len(),
                values.len()
            )));
        }
        if self.len == self.capacity {
            self.grow((2 * self.capacity).max(8));
        }
        let (cap, at) = (self.capacity, self.len);
        for (block, (k, v)) in keys.chunks_exact(d).zip(values.chunks_exact(d)).enumerate() {
            let keys_t = &mut self.keys_t[block * d * cap..][..d * cap];
            for (i, &x) in k.iter().enumerate() {
                keys_t[i * cap + at] = x;
            }
            self.values[(block * cap + at) * d..][..d].copy_from_slice(v);
        }
        self.len += 1;
        Ok(())
    }

    fn grow(&mut self, capacity: usize) {
        let (d, old) = (self.head_dim, self.capacity);
        let blocks = self.rows * self.heads;
        let mut keys_t = vec![0f32; blocks * d * capacity];
        let mut values = vec![0f32; blocks * capacity * d];
        for b in 0..blocks {
            for i in 0..d {
                keys_t[(b * d + i) * capacity..][..self.len]
                    .copy_from_slice(&self.keys_t[(b * d + i) * old..][..self.len]);
            }
            values[b * capacity * d..][..self.len * d]
                .copy_from_slice(&self.values[b * old * d..][..self.len * d]);
        }
        (self.keys_t, self.values, self.capacity) = (keys_t, values, capacity);
    }

    /// Keeps rows `rows` (in that order, repeats allowed).
    pub fn select(&mut self, rows: &[u32]) -> Result<()> {
        if let Some(&bad) = rows.iter().find(|&&r| r as usize >= self.rows) {
            return Err(Seq2SeqError::Other(format!(
                "self-attention cache: row {bad} of {}",
                self.rows
            )));
        }
        let row_size = self.heads * self.head_dim * self.capacity;
        let gather = |from: &[f32]| -> Vec<f32> {
            let mut to = Vec::with_capacity(rows.len() * row_size);
            for &r in rows {
                to.extend_from_slice(&from[r as usize * row_size..][..row_size]);
            }
            to
        };
        if self.capacity > 0 {
            self.keys_t = gather(&self.keys_t);
            self.values = gather(&self.values);
        }
        self.rows = rows.len();
        Ok(())
    }

    /// The cached positions as attention input (each row its own source).
    pub fn key_values(&self) -> KeyValues<'_> {
        KeyValues {
            keys_t: &self.keys_t,
            values: &self.values,
            sources: Sources::Uniform {
                count: self.rows,
                len: self.len,
                capacity: self.capacity,
                mask: None,
            },
        }
    }
}

/// Keys and values of sequences packed one after another (`[tokens, heads * head_dim]` each, sequence
/// `s` holding `lengths[s]` tokens) laid out for [`attend`] as [`Sources::Ragged`] with `starts` the
/// running sums of `lengths`.
pub(crate) fn ragged_keys_values(
    keys: &[f32],
    values: &[f32],
    lengths: &[usize],
    heads: usize,
    head_dim: usize,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let d = head_dim;
    let tokens: usize = lengths.iter().sum();
    if keys.len() != tokens * heads * d || values.len() != keys.len() {
        return Err(Seq2SeqError::Other(format!(
            "packed keys/values: {}/{} values for {tokens} tokens of {heads} x {d}",
            keys.len(),
            values.len()
        )));
    }
    let mut keys_t = vec![0f32; keys.len()];
    let mut laid_out = vec![0f32; values.len()];
    let mut first = 0;
    for &n in lengths {
        for t in 0..n {
            let token = (first + t) * heads * d;
            for h in 0..heads {
                let block = (first * heads + h * n) * d;
                let (k, v) = (&keys[token + h * d..][..d], &values[token + h * d..][..d]);
                for (i, &x) in k.iter().enumerate() {
                    keys_t[block + i * n + t] = x;
                }
                laid_out[block + t * d..][..d].copy_from_slice(v);
            }
        }
        first += n;
    }
    Ok((keys_t, laid_out))
}

/// `starts` of [`Sources::Ragged`]: 0 and the running sums of `lengths`.
pub(crate) fn starts(lengths: &[usize]) -> Vec<usize> {
    std::iter::once(0)
        .chain(lengths.iter().scan(0, |sum, &n| {
            *sum += n;
            Some(*sum)
        }))
        .collect()
}

fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// How `a·b + c` is rounded: once (a fused multiply-add, where the CPU has one, as gemm kernels use
/// it) or twice.
trait MulAdd {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

struct Fused;
struct Separate;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// [`Head::attend`] compiled with FMA (`mul_add` becomes one instruction, not a libm call).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma,avx2")]
#[allow(unsafe_code)]
unsafe fn head_fma(head: &Head, scores: &mut [f32], out: &mut [f32]) {
    head.attend::<Fused>(scores, out);
}

/// One query vector over one head's keys and values.
struct Head<'a> {
    query: &'a [f32],
    /// `[head_dim, stride]`, of which the first `len` columns are read (`len` = the scores' length)
    keys_t: &'a [f32],
    stride: usize,
    /// `[len, head_dim]`
    values: &'a [f32],
    mask: Option<&'a [f32]>,
    scale: f32,
}

impl Head<'_> {
    #[inline(always)]
    fn attend<M: MulAdd>(&self, scores: &mut [f32], out: &mut [f32]) {
        let len = scores.len();
        // Keys in blocks whose running sums stay in registers (keys are stored transposed, so a
        // block's keys are contiguous for every query component).
        let mut j = 0;
        while j + 32 <= len {
            self.score_block::<M, 32>(j, scores);
            j += 32;
        }
        while j + 8 <= len {
            self.score_block::<M, 8>(j, scores);
            j += 8;
        }
        if j < len {
            self.score_tail::<M>(j, scores);
        }
        let mut max = f32::NEG_INFINITY;
        for (j, s) in scores.iter_mut().enumerate() {
            *s *= self.scale;
            if let Some(mask) = self.mask {
                *s += mask[j];
            }
            max = max.max(*s);
        }
        // Two loops: the exponentials vectorize, the in-order sum does not.
        for s in scores.iter_mut() {
            *s = exp_nonpositive(*s - max);
        }
        let sum = scores.iter().fold(0f32, |sum, &s| sum + s);
        let d = out.len();
        let mut c = 0;
        while c + 32 <= d {
            self.weigh_values::<M, 32>(c, scores, out);
            c += 32;
        }
        while c + 8 <= d {
            self.weigh_values::<M, 8>(c, scores, out);
            c += 8;
        }
        while c < d {
            self.weigh_values::<M, 1>(c, scores, out);
            c += 1;
        }
        for o in out.iter_mut() {
            *o /= sum;
        }
    }
}

impl Head<'_> {
    /// Scores of keys `j0..j0 + N`: one multiply-add chain each over the query components.
    #[inline(always)]
    fn score_block<M: MulAdd, const N: usize>(&self, j0: usize, scores: &mut [f32]) {
        let mut acc = [0f32; N];
        for (i, &qi) in self.query.iter().enumerate() {
            let keys = &self.keys_t[i * self.stride + j0..][..N];
            for (a, &k) in acc.iter_mut().zip(keys) {
                *a = M::mul_add(qi, k, *a);
            }
        }
        scores[j0..j0 + N].copy_from_slice(&acc);
    }

    /// Scores of the fewer than 8 keys from `j0` on, their chains interleaved (one key at a time
    /// would wait on each multiply-add's latency).
    #[inline(always)]
    fn score_tail<M: MulAdd>(&self, j0: usize, scores: &mut [f32]) {
        let len = scores.len();
        let n = len - j0;
        let mut acc = [0f32; 8];
        for (i, &qi) in self.query.iter().enumerate() {
            let keys = &self.keys_t[i * self.stride + j0..][..n];
            for (a, &k) in acc.iter_mut().zip(keys) {
                *a = M::mul_add(qi, k, *a);
            }
        }
        scores[j0..].copy_from_slice(&acc[..n]);
    }

    /// Output components `c0..c0 + N`: one multiply-add chain each over the keys' weights.
    #[inline(always)]
    fn weigh_values<M: MulAdd, const N: usize>(&self, c0: usize, weights: &[f32], out: &mut [f32]) {
        let d = out.len();
        let mut acc = [0f32; N];
        for (j, &w) in weights.iter().enumerate() {
            let values = &self.values[j * d + c0..][..N];
            for (a, &v) in acc.iter_mut().zip(values) {
                *a = M::mul_add(w, v, *a);
            }
        }
        out[c0..c0 + N].copy_from_slice(&acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook formula in float64.
    fn reference(q: &[f32], k: &[f32], v: &[f32], mask: Option<&[f32]>, scale: f32) -> Vec<f64> {
        let d = q.len();
        let n = k.len() / d;
        let s: Vec<f64> = (0..n)
            .map(|j| {
                let dot: f64 = (0..d).map(|i| q[i] as f64 * k[i * n + j] as f64).sum();
                dot * scale as f64 + mask.map_or(0.0, |m| m[j] as f64)
            })
            .collect();
        let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = s.iter().map(|x| (x - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        (0..d)
            .map(|i| (0..n).map(|j| e[j] * v[j * d + i] as f64).sum::<f64>() / sum)
            .collect()
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 250.0 - 2.0)
            .collect()
    }

    #[test]
    fn every_row_head_and_position_matches_the_formula() {
        let (rows, heads, tq, d, sources, tk) = (6, 3, 2, 5, 2, 11);
        let qd = values(rows * heads * tq * d, 1);
        let kd = values(sources * heads * tk * d, 2);
        let vd = values(sources * heads * tk * d, 3);
        // Source 1 has 4 padded positions.
        let mut mask = vec![0f32; sources * tk];
        for m in &mut mask[tk + 7..] {
            *m = f32::NEG_INFINITY;
        }
        let source_of_row = [0, 0, 1, 1, 1, 0];
        let out = attend(
            &Queries {
                data: &qd,
                rows,
                heads,
                len: tq,
                head_dim: d,
            },
            &KeyValues {
                keys_t: &kd,
                values: &vd,
                sources: Sources::Uniform {
                    count: sources,
                    len: tk,
                    capacity: tk,
                    mask: Some(&mask),
                },
            },
            &source_of_row,
            0.37,
        )
        .unwrap();
        assert_eq!(out.len(), rows * tq * heads * d);
        for r in 0..rows {
            let s = source_of_row[r] as usize;
            for h in 0..heads {
                for p in 0..tq {
                    let q = &qd[((r * heads + h) * tq + p) * d..][..d];
                    let block = (s * heads + h) * tk * d;
                    let want = reference(
                        q,
                        &kd[block..block + tk * d],
                        &vd[block..block + tk * d],
                        Some(&mask[s * tk..(s + 1) * tk]),
                        0.37,
                    );
                    let got = &out[(r * tq + p) * heads * d + h * d..][..d];
                    for (g, w) in got.iter().zip(&want) {
                        assert!((*g as f64 - w).abs() < 1e-5, "row {r} head {h}: {g} vs {w}");
                    }
                }
            }
        }
    }

    #[test]
    fn scalar_and_fused_paths_agree_closely() {
        let d = 16;
        let q = values(d, 4);
        let k = values(19 * d, 5);
        let v = values(19 * d, 6);
        let head = Head {
            query: &q,
            keys_t: &k,
            stride: 19,
            values: &v,
            mask: None,
            scale: 0.25,
        };
        let (mut s1, mut s2) = (vec![0f32; 19], vec![0f32; 19]);
        let (mut a, mut b) = (vec![0f32; d], vec![0f32; d]);
        head.attend::<Separate>(&mut s1, &mut a);
        head.attend::<Fused>(&mut s2, &mut b);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5);
        }
    }

    /// Right padding is skipped, not computed: the padded source gives the unpadded one's bits.
    #[test]
    fn padded_keys_change_no_bit() {
        let (heads, d, len, padded) = (2, 8, 7, 11);
        let q = values(heads * d, 7);
        let k = values(heads * d * len, 8);
        let v = values(heads * len * d, 9);
        // The same keys (transposed, [heads, d, len]) and values widened to `padded` with garbage.
        let mut kp = values(heads * d * padded, 10);
        let mut vp = values(heads * padded * d, 11);
        for h in 0..heads {
            for i in 0..d {
                let from = &k[(h * d + i) * len..][..len];
                kp[(h * d + i) * padded..][..len].copy_from_slice(from);
            }
            vp[h * padded * d..][..len * d].copy_from_slice(&v[h * len * d..][..len * d]);
        }
        let mut mask = vec![0f32; padded];
        mask[len..].fill(f32::NEG_INFINITY);
        let queries = Queries {
            data: &q,
            rows: 1,
            heads,
            len: 1,
            head_dim: d,
        };
        let plain = KeyValues {
            keys_t: &k,
            values: &v,
            sources: Sources::Ragged { starts: &[0, len] },
        };
        let masked = KeyValues {
            keys_t: &kp,
            values: &vp,
            sources: Sources::Uniform {
                count: 1,
                len: padded,
                capacity: padded,
                mask: Some(&mask),
            },
        };
        let a = attend(&queries, &plain, &[0], 0.3).unwrap();
        let b = attend(&queries, &masked, &[0], 0.3).unwrap();
        assert_eq!(
            a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }

    /// Pushing steps one by one (through growth and a beam reordering) gives the same attention as
    /// the dense keys/values of the reordered history.
    #[test]
    fn self_cache_equals_dense_history() {
        let (rows, heads, d, steps) = (3, 2, 4, 11);
        let step_values: Vec<(Vec<f32>, Vec<f32>)> = (0..steps)
            .map(|t| {
                (
                    values(rows * heads * d, 20 + t as u32),
                    values(rows * heads * d, 40 + t as u32),
                )
            })
            .collect();
        let mut cache = SelfCache::new(rows, heads, d);
        // Rows are reordered after step 9: new row r continues old row order[r].
        let order = [2u32, 0, 0];
        for (t, (k, v)) in step_values.iter().enumerate() {
            cache.push(k, v).unwrap();
            if t == 8 {
                cache.select(&order).unwrap();
            }
        }
        // Dense history of each final row: [heads, d, steps] keys, [heads, steps, d] values.
        let mut keys_t = vec![0f32; rows * heads * d * steps];
        let mut vals = vec![0f32; rows * heads * steps * d];
        for r in 0..rows {
            for (t, (k, v)) in step_values.iter().enumerate() {
                let from = if t <= 8 { order[r] as usize } else { r };
                for h in 0..heads {
                    for i in 0..d {
                        keys_t[((r * heads + h) * d + i) * steps + t] =
                            k[(from * heads + h) * d + i];
                    }
                    vals[((r * heads + h) * steps + t) * d..][..d]
                        .copy_from_slice(&v[(from * heads + h) * d..][..d]);
                }
            }
        }
        let q = values(rows * heads * d, 99);
        let queries = Queries {
            data: &q,
            rows,
            heads,
            len: 1,
            head_dim: d,
        };
        let dense = KeyValues {
            keys_t: &keys_t,
            values: &vals,
            sources: Sources::Ragged {
                starts: &starts(&[steps; 3]),
            },
        };
        let identity = [0, 1, 2];
        assert_eq!(
            attend(&queries, &cache.key_values(), &identity, 0.5).unwrap(),
            attend(&queries, &dense, &identity, 0.5).unwrap()
        );
        assert!(cache.select(&[3]).is_err());
        assert!(cache.push(&[0.0], &[0.0]).is_err());
    }

    #[test]
    fn packed_sequences_are_laid_out_ragged() {
        let (heads, d, lengths) = (2, 3, [2, 1]);
        // Token t, head h, component i holds 100t + 10h + i.
        let packed: Vec<f32> = (0..3)
            .flat_map(|t| (0..heads * d).map(move |j| (100 * t + 10 * (j / d) + j % d) as f32))
            .collect();
        let (keys_t, values) = ragged_keys_values(&packed, &packed, &lengths, heads, d).unwrap();
        // Sequence 0, head 1: keys [d, 2] = components of tokens 0 and 1.
        assert_eq!(
            keys_t[2 * d..4 * d],
            [10.0, 110.0, 11.0, 111.0, 12.0, 112.0]
        );
        // Sequence 1 (token 2), head 1, values [1, d].
        assert_eq!(values[(2 * heads + 1) * d..][..d], [210.0, 211.0, 212.0]);
        assert_eq!(starts(&lengths), [0, 2, 3]);
        assert!(ragged_keys_values(&packed, &packed, &[2, 2], heads, d).is_err());
    }

    #[test]
    fn mismatched_shapes_are_an_error() {
        let q = vec![0f32; 8];
        let kv = vec![0f32; 8];
        let queries = Queries {
            data: &q,
            rows: 1,
            heads: 1,
            len: 1,
            head_dim: 8,
        };
        let keys = KeyValues {
            keys_t: &kv,
            values: &kv,
            sources: Sources::Ragged { starts: &[0, 1] },
        };
        assert!(attend(&queries, &keys, &[1], 1.0).is_err());
        assert!(attend(&queries, &keys, &[0, 0], 1.0).is_err());
        assert!(attend(&queries, &keys, &[0], 1.0).is_ok());
    }
}
