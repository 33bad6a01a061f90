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

use anyhow::{bail, Context, Result};
use oerkit_seq2seq::generate::{generate, GenerateOptions};
use oerkit_seq2seq::marian::{MarianCheckpoint, Precision};
use oerkit_seq2seq::Device;

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// User + system CPU seconds of the whole process (all threads) from /proc/self/stat, whose times are
/// in USER_HZ ticks (100 per second on Linux). On a shared, loaded machine tokens per CPU-second says
/// more than wall time; the peers script reports the same figure.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn main() -> Result<()> {
    let mut model = None;
    let mut input = None;
    let mut beam = 1usize;
    let mut batch = 1usize;
    let mut threads = None;
    let mut max_new_tokens = 64usize;
    let mut force_length = false;
    let mut precision = Precision::F32;
    let mut dump = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--model" => model = Some(PathBuf::from(value("--model")?)),
            "--input" => input = Some(PathBuf::from(value("--input")?)),
            "--beam" => beam = value("--beam")?.parse()?,
            "--batch" => batch = value("--batch")?.parse()?,
            "--threads" => threads = Some(value("--threads")?.parse::<usize>()?),
            "--max-new-tokens" => max_new_tokens = value("--max-new-tokens")?.parse()?,
            "--force-length" => force_length = true,
            "--dump-outputs" => dump = Some(PathBuf::from(value("--dump-outputs")?)),
            "--quantize" => match value("--quantize")?.as_str() {
                "q8" | "q8_0" => precision = Precision::Q8,
                "none" | "f32" => precision = Precision::F32,
                other => bail!("--quantize {other}: supported are q8 and f32"),
            },
            other => bail!("unknown argument {other}; see the usage in the file header"),
        }
    }
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
    let model_dir = model.context("--model DIR is required")?;
    let input = input.context("--input FILE (one segment per line) is required")?;
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
            "peak_rss_mb": peak_rss_mb(),
        })
    );
    Ok(())
}
