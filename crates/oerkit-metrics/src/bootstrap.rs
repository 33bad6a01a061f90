//! Paired bootstrap resampling (sacrebleu's `--paired-bs`), drawing resample indices from a
//! bit-exact port of numpy's `default_rng(seed).choice(n, size=(samples, n))` (SeedSequence →
//! PCG64 → Lemire bounded integers), so with the same seed the resamples equal sacrebleu's.

use crate::{Metric, MetricScore, SufficientStats};

/// sacrebleu's default seed (`SACREBLEU_SEED`).
pub const SACREBLEU_SEED: u64 = 12345;

/// numpy's `SeedSequence(seed).generate_state(4, uint64)`.
fn seed_sequence_state(seed: u64) -> [u64; 4] {
    const INIT_A: u32 = 0x43b0d7e5;
    const MULT_A: u32 = 0x931e8875;
    const INIT_B: u32 = 0x8b51f9dd;
    const MULT_B: u32 = 0x58f38ded;
    const MIX_MULT_L: u32 = 0xca01f9dd;
    const MIX_MULT_R: u32 = 0x4973f715;
    const XSHIFT: u32 = 16;
    const POOL: usize = 4;

    // entropy as little-endian uint32 words (numpy's _coerce_to_uint32_array)
    let mut entropy = vec![seed as u32];
    if seed >> 32 != 0 {
        entropy.push((seed >> 32) as u32);
    }
    let mut hash_const = INIT_A;
    let mut hashmix = |value: u32| -> u32 {
        let mut v = value ^ hash_const;
        hash_const = hash_const.wrapping_mul(MULT_A);
        v = v.wrapping_mul(hash_const);
        v ^ (v >> XSHIFT)
    };
    let mix = |x: u32, y: u32| -> u32 {
        let r = MIX_MULT_L
            .wrapping_mul(x)
            .wrapping_sub(MIX_MULT_R.wrapping_mul(y));
        r ^ (r >> XSHIFT)
    };
    let mut pool = [0u32; POOL];
    for (i, slot) in pool.iter_mut().enumerate() {
        *slot = hashmix(entropy.get(i).copied().unwrap_or(0));
    }
    for i_src in 0..POOL {
        for i_dst in 0..POOL {
            if i_src != i_dst {
                let h = hashmix(pool[i_src]);
                pool[i_dst] = mix(pool[i_dst], h);
            }
        }
    }
    for &e in entropy.iter().skip(POOL) {
        for slot in pool.iter_mut() {
            let h = hashmix(e);
            *slot = mix(*slot, h);
        }
    }
    let mut hash_b = INIT_B;
    let mut words = [0u32; 8];
    for (i, w) in words.iter_mut().enumerate() {
        let mut v = pool[i % POOL] ^ hash_b;
        hash_b = hash_b.wrapping_mul(MULT_B);
        v = v.wrapping_mul(hash_b);
        *w = v ^ (v >> XSHIFT);
    }
    let mut out = [0u64; 4];
    for (k, o) in out.iter_mut().enumerate() {
        *o = words[2 * k] as u64 | ((words[2 * k + 1] as u64) << 32);
    }
    out
}

/// numpy's `PCG64` bit generator (XSL-RR 128/64) with its buffered 32-bit output.
#[derive(Debug, Clone)]
pub struct NumpyPcg64 {
    state: u128,
    inc: u128,
    buffered: Option<u32>,
}

const PCG_MULT: u128 = (2549297995355413924u128 << 64) | 4865540595714422341u128;

impl NumpyPcg64 {
    /// `np.random.default_rng(seed)`'s bit generator.
    pub fn new(seed: u64) -> Self {
        let s = seed_sequence_state(seed);
        let init_state = ((s[0] as u128) << 64) | s[1] as u128;
        let init_seq = ((s[2] as u128) << 64) | s[3] as u128;
        let mut rng = NumpyPcg64 {
            state: 0,
            inc: (init_seq << 1) | 1,
            buffered: None,
        };
        rng.step();
        rng.state = rng.state.wrapping_add(init_state);
        rng.step();
        rng
    }

    fn step(&mut self) {
        self.state = self.state.wrapping_mul(PCG_MULT).wrapping_add(self.inc);
    }

    /// `next_uint64`.
    pub fn next_u64(&mut self) -> u64 {
        self.step();
        let hi = (self.state >> 64) as u64;
        let lo = self.state as u64;
        (hi ^ lo).rotate_right((self.state >> 122) as u32)
    }

    /// `next_uint32`: the low half of a 64-bit draw, the high half on the next call.
    pub fn next_u32(&mut self) -> u32 {
        if let Some(v) = self.buffered.take() {
            return v;
        }
        let next = self.next_u64();
        self.buffered = Some((next >> 32) as u32);
        next as u32
    }

    /// `Generator.integers(0, n)` for `n <= 2^32` (Lemire's method as numpy implements it).
    pub fn below(&mut self, n: u32) -> u32 {
        debug_assert!(n > 0);
        let rng = n - 1;
        if rng == 0 {
            return 0;
        }
        if rng == u32::MAX {
            return self.next_u32();
        }
        let rng_excl = rng + 1;
        let mut m = self.next_u32() as u64 * rng_excl as u64;
        let mut leftover = m as u32;
        if leftover < rng_excl {
            let threshold = (u32::MAX - rng) % rng_excl;
            while leftover < threshold {
                m = self.next_u32() as u64 * rng_excl as u64;
                leftover = m as u32;
            }
        }
        (m >> 32) as u32
    }
}

/// `default_rng(seed).choice(n, size=(n_samples, n), replace=True)`, row by row.
pub fn resample_indices(n: usize, n_samples: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = NumpyPcg64::new(seed);
    (0..n_samples)
        .map(|_| (0..n).map(|_| rng.below(n as u32) as usize).collect())
        .collect()
}

/// Result of a paired bootstrap test of one system against a baseline, for one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct PairedBootstrap {
    pub baseline_score: f64,
    pub system_score: f64,
    /// Bootstrap mean and 95% half-interval of the baseline.
    pub baseline_mean: f64,
    pub baseline_ci: f64,
    /// Bootstrap mean and 95% half-interval of the system.
    pub system_mean: f64,
    pub system_ci: f64,
    /// Probability of a score difference at least as large under the null hypothesis.
    pub p_value: f64,
    pub n_samples: usize,
    pub seed: u64,
}

/// sacrebleu's `estimate_ci`: mean and half the width of the central 95% of the samples.
fn estimate_ci(scores: &[f64]) -> (f64, f64) {
    let mut sorted = scores.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let lower_idx = n / 40;
    let upper_idx = n - lower_idx - 1;
    let ci = 0.5 * (sorted[upper_idx] - sorted[lower_idx]);
    let mean = sorted.iter().sum::<f64>() / n as f64;
    (mean, ci)
}

/// Paired bootstrap resampling (sacrebleu's `_paired_bs_test`): both systems are scored on the
/// same `n_samples` resamples of the segments; the p-value is
/// `(#{ |Δ_s| − mean|Δ| > |Δ_actual| } + 1) / (n_samples + 1)`.
///
/// Statistics are summed in f64 (sacrebleu sums float32 copies), so scores of individual
/// resamples may differ from sacrebleu's in the last digits; the resamples themselves are equal.
pub fn paired_bootstrap<M: Metric>(
    metric: &M,
    baseline: &[M::Stats],
    system: &[M::Stats],
    n_samples: usize,
    seed: u64,
) -> Option<PairedBootstrap> {
    let n = baseline.len();
    if n == 0 || n != system.len() || n_samples == 0 || n > u32::MAX as usize {
        return None;
    }
    let total = |stats: &[M::Stats]| {
        let mut t = M::Stats::default();
        for s in stats {
            t.add(s);
        }
        metric.score_from_stats(&t).score()
    };
    let baseline_score = total(baseline);
    let system_score = total(system);
    let mut rng = NumpyPcg64::new(seed);
    let mut scores_bl = Vec::with_capacity(n_samples);
    let mut scores_sys = Vec::with_capacity(n_samples);
    for _ in 0..n_samples {
        let mut bl = M::Stats::default();
        let mut sy = M::Stats::default();
        for _ in 0..n {
            let i = rng.below(n as u32) as usize;
            bl.add(&baseline[i]);
            sy.add(&system[i]);
        }
        scores_bl.push(metric.score_from_stats(&bl).score());
        scores_sys.push(metric.score_from_stats(&sy).score());
    }
    let (baseline_mean, baseline_ci) = estimate_ci(&scores_bl);
    let (system_mean, system_ci) = estimate_ci(&scores_sys);
    let diffs: Vec<f64> = scores_sys
        .iter()
        .zip(&scores_bl)
        .map(|(s, b)| (s - b).abs())
        .collect();
    let mean_diff = diffs.iter().sum::<f64>() / n_samples as f64;
    let real_diff = (baseline_score - system_score).abs();
    let c = diffs.iter().filter(|&&d| d - mean_diff > real_diff).count();
    Some(PairedBootstrap {
        baseline_score,
        system_score,
        baseline_mean,
        baseline_ci,
        system_mean,
        system_ci,
        p_value: (c + 1) as f64 / (n_samples + 1) as f64,
        n_samples,
        seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_indices() {
        assert_eq!(resample_indices(50, 3, 7), resample_indices(50, 3, 7));
        assert_ne!(resample_indices(50, 3, 7), resample_indices(50, 3, 8));
    }
}
