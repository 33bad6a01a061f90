//! Reading float32 CPU tensors in place (no copy into a `Vec`, as `to_vec*` would make).

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
