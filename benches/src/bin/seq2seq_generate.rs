//! Encoder-decoder generation speed of the oerkit seq2seq engine (OPUS-MT/Marian checkpoints) on one
//! input file, printed as ONE JSON line so a peer script can put it in a table next to transformers
//! and CTranslate2 runs on the same inputs.
//!
//! Usage: `cargo run --release -p oerkit-benches --bin seq2seq_generate -- --model DIR --input FILE
//! [--beam N] [--batch N] [--threads N] [--max-new-tokens N] [--force-length] [--quantize q8]
//! [--dump-outputs FILE]`. `--force-length` bans EOS until the last step (min_new_tokens =
//! max_new_tokens), so every output has exactly `--max-new-tokens` tokens, as the peers are run.
//! `--dump-outputs` writes the generated ids, one JSON list per input line (for agreement checks).
//! `--threads N` sizes the matrix-product pool; elementwise ops run single-threaded unless
//! CANDLE_NUM_THREADS is set (see `main`).
//! Output: {"engine":"oerkit","beam":..,"batch":..,"segments":..,"tokens":..,"seconds":..,
//! "tokens_per_s":..,"cpu_seconds":..,"tokens_per_cpu_s":..,"peak_rss_mb":..}; `tokens` counts generated tokens (EOS included); `seconds`
//! covers tokenisation, encoding and decoding, not model loading.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use oerkit_benches::{peak_rss_mib, process_cpu_seconds};
use oerkit_seq2seq::generate::{generate, GenerateOptions};
use oerkit_seq2seq::marian::{MarianCheckpoint, Precision};
use oerkit_seq2seq::Device;

/// Encoder-decoder generation speed of the oerkit seq2seq engine on one input file, printed as
/// one JSON line.
#[derive(Parser)]
#[command(args_override_self = true)]
struct Args {
    /// Marian/OPUS-MT checkpoint directory.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Input text, one segment per line.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Beam count (1: greedy).
    #[arg(long, value_name = "N", default_value_t = 1)]
    beam: usize,
    /// Segments per generate call.
    #[arg(long, value_name = "N", default_value_t = 1)]
    batch: usize,
    /// Size of the matrix-product pool (sets RAYON_NUM_THREADS); default: the environment's
    /// RAYON_NUM_THREADS, else rayon's own choice.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Most tokens generated per segment.
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_new_tokens: usize,
    /// Ban EOS until the last step, so every output has exactly --max-new-tokens tokens.
    #[arg(long)]
    force_length: bool,
    /// Weights of the linear layers: q8 (or q8_0) or f32 (or none).
    #[arg(long, value_name = "q8|f32", value_parser = parse_precision, default_value = "f32")]
    quantize: Precision,
    /// Write the generated ids here, one JSON list per input line.
    #[arg(long, value_name = "FILE")]
    dump_outputs: Option<PathBuf>,
}

fn parse_precision(value: &str) -> Result<Precision, String> {
    match value {
        "q8" | "q8_0" => Ok(Precision::Q8),
        "none" | "f32" => Ok(Precision::F32),
        _ => Err("supported are q8 and f32".into()),
    }
}

fn main() -> Result<()> {
    let Args {
        model: model_dir,
        input,
        beam,
        batch,
        threads,
        max_new_tokens,
        force_length,
        quantize: precision,
        dump_outputs: dump,
    } = Args::parse();
    if let Some(t) = threads {
        // candle's CPU kernels size their pool from RAYON_NUM_THREADS; set it before any tensor work.
        std::env::set_var("RAYON_NUM_THREADS", t.to_string());
    }
    // candle runs large elementwise ops on a separate "barrier pool" whose caller busy-waits for its
    // workers; on a machine shared with other jobs a descheduled worker turns that wait into burnt CPU
    // (measured here: 10.9 vs 4.2 CPU-seconds for the same run, beam 1 batch 32, 2 cores at load 13).
    // Unless the caller says otherwise, elementwise ops run on the calling thread and matrix
    // products on the --threads rayon pool (float32: candle's gemm; q8: oerkit-qmatmul's kernel).
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    let text = std::fs::read_to_string(&input)
        .with_context(|| format!("{}: cannot read", input.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let device = Device::Cpu;
    let mut ckpt = MarianCheckpoint::load(&model_dir, precision, &device)?;
    let opts = GenerateOptions {
        num_beams: beam.max(1),
        max_new_tokens,
        min_new_tokens: if force_length { max_new_tokens } else { 0 },
        ..GenerateOptions::default()
    };
    let cpu_start = process_cpu_seconds();
    let start = Instant::now();
    let mut outputs: Vec<Vec<u32>> = Vec::with_capacity(lines.len());
    for chunk in lines.chunks(batch.max(1)) {
        let ids = chunk
            .iter()
            .map(|l| ckpt.tokenizer.encode(l))
            .collect::<Result<Vec<_>, _>>()?;
        let hyps = generate(&mut ckpt.model, &ids, &opts, &device)?;
        outputs.extend(hyps.into_iter().map(|h| h.tokens));
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = process_cpu_seconds()
        .zip(cpu_start)
        .map(|(end, begin)| end - begin);
    let tokens: usize = outputs.iter().map(Vec::len).sum();
    if let Some(path) = dump {
        let body: String = outputs
            .iter()
            .map(|o| serde_json::to_string(o).map(|s| s + "\n"))
            .collect::<Result<_, _>>()?;
        std::fs::write(&path, body).with_context(|| format!("{}: cannot write", path.display()))?;
    }
    println!(
        "{}",
        serde_json::json!({
            "engine": "oerkit",
            "precision": match precision { Precision::F32 => "f32", Precision::Q8 => "q8_0" },
            "beam": beam,
            "batch": batch,
            "threads": threads,
            "segments": lines.len(),
            "tokens": tokens,
            "seconds": seconds,
            "tokens_per_s": tokens as f64 / seconds.max(1e-9),
            "cpu_seconds": cpu_seconds,
            "tokens_per_cpu_s": cpu_seconds.map(|c| tokens as f64 / c.max(1e-9)),
            "peak_rss_mb": peak_rss_mib(),
        })
    );
    Ok(())
}
