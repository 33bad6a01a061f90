//! Reading float32 CPU tensors in place (no copy into a `Vec`, as `to_vec*` would make), and a
//! vectorizable `exp`.

use candle_core::{Storage, Tensor};

use crate::error::{Result, Seq2SeqError};

/// Calls `f` with the float32 values of contiguous CPU tensors, borrowed in place.
pub(crate) fn with_f32_slices<R>(
    tensors: &[Tensor],
    f: impl FnOnce(&[&[f32]]) -> Result<R>,
) -> Result<R> {
    let guards: Vec<_> = tensors.iter().map(Tensor::storage_and_layout).collect();
    let mut slices = Vec::with_capacity(tensors.len());
    for ((storage, layout), t) in guards.iter().zip(tensors) {
        if !layout.is_contiguous() {
            return Err(Seq2SeqError::Other(
                "internal: a tensor read in place is not contiguous".into(),
            ));
        }
        let Storage::Cpu(cpu) = &**storage else {
            return Err(Seq2SeqError::Other(
                "seq2seq models run on the CPU only".into(),
            ));
        };
        let start = layout.start_offset();
        slices.push(&cpu.as_slice::<f32>()?[start..start + t.elem_count()]);
    }
    f(&slices)
}

/// `exp(x)` for `x ≤ 0` (below -87 it returns exp(-87) ≈ 1.6e-38 instead of a denormal or 0).
///
/// Cephes' `expf` (Cody-Waite reduction, degree-6 polynomial), branch-free so that loops over it
/// vectorize: libm's `expf` is a call per value.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2^23 rounds to an integer in the low mantissa bits (round to nearest even).
    const ROUND: f32 = 12_582_912.0;
    let x = x.max(-87.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    y * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_nonpositive_is_within_two_ulp_of_exp() {
        for i in 0..=86_900 {
            let x = -(i as f32) * 1e-3;
            let (got, want) = (exp_nonpositive(x), (x as f64).exp());
            let ulp = (want as f32).to_bits().abs_diff(got.to_bits());
            assert!(ulp <= 2, "exp({x}): {got} vs {want} ({ulp} ulp)");
        }
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1e4) > 0.0);
        assert!(exp_nonpositive(f32::NEG_INFINITY) > 0.0);
    }
}
