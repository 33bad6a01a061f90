//! How much the Q8_0 mode changes a Marian model's output, against float32 on the same inputs:
//!
//! - greedy decoding: identical sequences, position-wise identical tokens, mean common prefix;
//! - teacher-forced along the float32 greedy path (both models fed the same tokens, so one early
//!   divergence does not decide the rest): top-1 agreement per step, and the relative logit error
//!   `‖q8 − f32‖ / ‖f32 − mean(f32)‖` per step (mean and worst).
//!
//! Prints one JSON line, and with `--dump PREFIX` writes the greedy ids of both modes to
//! `PREFIX-f32.jsonl` / `PREFIX-q8.jsonl` (one JSON list per input) for text-level scores.
//!
//! `cargo run --release -p oerkit-seq2seq --example q8_agreement -- MODEL_DIR [LINES_FILE] [MAX_NEW_TOKENS] [--dump PREFIX]`
//! (default lines: the fixture's 60 inputs; default MAX_NEW_TOKENS: 24).

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Tensor};

use oerkit_seq2seq::generate::{generate, GenerateOptions, Seq2SeqModel};
use oerkit_seq2seq::marian::{MarianCheckpoint, Precision};
use oerkit_seq2seq::Device;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> AnyResult<()> {
    let mut positional = Vec::new();
    let mut dump = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--dump" {
            dump = Some(args.next().ok_or("--dump needs a PREFIX")?);
        } else {
            positional.push(arg);
        }
    }
    let mut positional = positional.into_iter();
    let dir = PathBuf::from(
        positional
            .next()
            .ok_or("usage: q8_agreement MODEL_DIR [LINES_FILE] [MAX_NEW] [--dump PREFIX]")?,
    );
    let lines: Vec<String> = match positional.next() {
        Some(file) => std::fs::read_to_string(file)?
            .lines()
            .map(str::to_string)
            .collect(),
        None => {
            let inputs = oerkit_testkit::fixture("marian-tiny-en-es/reference/inputs.jsonl");
            std::fs::read_to_string(inputs)?
                .lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l)?;
                    Ok(v["text"].as_str().unwrap_or_default().to_string())
                })
                .collect::<Result<_, serde_json::Error>>()?
        }
    };
    let max_new_tokens = positional
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(24);
    let opts = GenerateOptions {
        max_new_tokens,
        ..GenerateOptions::default()
    };
    let device = Device::Cpu;
    let mut f32_model = MarianCheckpoint::load(&dir, Precision::F32, &device)?;
    let mut q8_model = MarianCheckpoint::load(&dir, Precision::Q8, &device)?;
    let inputs = lines
        .iter()
        .map(|l| f32_model.tokenizer.encode(l))
        .collect::<Result<Vec<_>, _>>()?;

    let mut greedy = Vec::new();
    for (name, ckpt) in [("f32", &mut f32_model), ("q8", &mut q8_model)] {
        let start = Instant::now();
        let mut seqs = Vec::new();
        for chunk in inputs.chunks(16) {
            seqs.extend(
                generate(&mut ckpt.model, chunk, &opts, &device)?
                    .into_iter()
                    .map(|h| h.tokens),
            );
        }
        let tokens: usize = seqs.iter().map(Vec::len).sum();
        eprintln!(
            "{name}: {} segments, {tokens} tokens greedy in {:.2} s",
            lines.len(),
            start.elapsed().as_secs_f64()
        );
        if let Some(prefix) = &dump {
            let body: String = seqs
                .iter()
                .map(|s| serde_json::to_string(s).map(|j| j + "\n"))
                .collect::<Result<_, _>>()?;
            std::fs::write(format!("{prefix}-{name}.jsonl"), body)?;
        }
        greedy.push(seqs);
    }
    let (reference, quantized) = (&greedy[0], &greedy[1]);
    let identical = reference
        .iter()
        .zip(quantized)
        .filter(|(a, b)| a == b)
        .count();
    let positions: usize = reference.iter().map(Vec::len).sum();
    let same_positions: usize = reference
        .iter()
        .zip(quantized)
        .map(|(a, b)| a.iter().zip(b).filter(|(x, y)| x == y).count())
        .sum();
    let common_prefix: usize = reference
        .iter()
        .zip(quantized)
        .map(|(a, b)| a.iter().zip(b).take_while(|(x, y)| x == y).count())
        .sum();

    // Teacher forcing along the float32 greedy path, one input at a time.
    let start_token = f32_model.model.config().decoder_start_token_id;
    let (mut steps, mut top1_same) = (0usize, 0usize);
    let (mut error_sum, mut error_max) = (0f64, 0f64);
    for (ids, path) in inputs.iter().zip(reference) {
        let ids_t = Tensor::from_slice(ids, (1, ids.len()), &device)?;
        let mask = Tensor::ones((1, ids.len()), DType::U32, &device)?;
        f32_model.model.encode(&ids_t, &mask)?;
        q8_model.model.encode(&ids_t, &mask)?;
        let mut token = start_token;
        for &next in path {
            let a = f32_model.model.decode_step(&[token])?.flatten_all()?;
            let b = q8_model.model.decode_step(&[token])?.flatten_all()?;
            let (a, b) = (a.to_vec1::<f32>()?, b.to_vec1::<f32>()?);
            top1_same += usize::from(argmax(&a) == argmax(&b));
            let mean = a.iter().map(|&v| v as f64).sum::<f64>() / a.len() as f64;
            let spread: f64 = a.iter().map(|&v| (v as f64 - mean).powi(2)).sum();
            let diff: f64 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
                .sum();
            let error = (diff / spread.max(f64::MIN_POSITIVE)).sqrt();
            error_sum += error;
            error_max = error_max.max(error);
            steps += 1;
            token = next;
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "model": dir.display().to_string(),
            "segments": lines.len(),
            "max_new_tokens": max_new_tokens,
            "greedy_identical_sequences": identical,
            "greedy_position_agreement": same_positions as f64 / positions.max(1) as f64,
            "greedy_mean_common_prefix": common_prefix as f64 / lines.len().max(1) as f64,
            "greedy_f32_tokens": positions,
            "forced_steps": steps,
            "forced_top1_agreement": top1_same as f64 / steps.max(1) as f64,
            "forced_relative_logit_error_mean": error_sum / steps.max(1) as f64,
            "forced_relative_logit_error_max": error_max,
        })
    );
    Ok(())
}

fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}
