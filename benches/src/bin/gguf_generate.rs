//! GGUF generation speed: generated tokens/s and segments/s of the oerkit GGUF engine at batch
//! sizes 1, 4, 8 and 16 on a fixed number of threads, with peak RSS; with `--beams 1,2,4`, each
//! batch size once per beam count (beam search; a batch of B prompts is B x beams rows).
//!
//! Usage: `cargo run --release -p oerkit-benches --bin gguf_generate -- [MODEL.gguf] [--threads N]
//! [--segments N] [--max-new-tokens N] [--batches 1,4,8,16] [--beams 1,2,4] [--dequantize] [--dump-prompts FILE] [--dump-outputs FILE]`. Set `RAYON_NUM_THREADS` to the same
//! thread count: candle sizes its own worker pool from it. Without a path it uses the SmolLM2 file in the model cache
//! (`$OERKIT_MODELS`, else `~/.cache/oerkit/models`). Segments are the first lines of the OpenStax
//! statistics corpus, each wrapped in a translate-to-Spanish chat prompt; decoding is greedy.
//! The same prompts and settings can be fed to llama.cpp with `--dump-prompts FILE` (one JSON
//! list of token-id lists) for a side-by-side run; `--dump-outputs FILE` writes the generated ids
//! of the first batch size in the same form. `benches/gguf_vs_llamacpp.sh` does both.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use oerkit_gguf::{ChatMessage, GenerationConfig, GgufModel, LoadOptions};

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU seconds (user + system, all threads) this process has used so far.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // Linux reports these in USER_HZ, 100 per second on every mainstream configuration.
    Some(ticks / 100.0)
}

fn default_model() -> PathBuf {
    let cache = std::env::var_os("OERKIT_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/oerkit/models")
        });
    cache.join("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn main() -> Result<()> {
    let mut model_path = None;
    let mut threads = 2usize;
    let mut segments = 16usize;
    let mut max_new_tokens = 48usize;
    let mut dump = None;
    let mut dump_outputs = None;
    let mut weights = oerkit_gguf::WeightFormat::Quantized;
    let mut batches = vec![1usize, 4, 8, 16];
    let mut beam_counts = vec![1usize];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--threads" => threads = value("--threads")?.parse()?,
            "--segments" => segments = value("--segments")?.parse()?,
            "--max-new-tokens" => max_new_tokens = value("--max-new-tokens")?.parse()?,
            "--dequantize" => weights = oerkit_gguf::WeightFormat::Dequantized,
            "--dump-prompts" => dump = Some(PathBuf::from(value("--dump-prompts")?)),
            "--dump-outputs" => dump_outputs = Some(PathBuf::from(value("--dump-outputs")?)),
            "--batches" => {
                batches = value("--batches")?
                    .split(',')
                    .map(|b| b.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context("--batches takes a comma-separated list of batch sizes")?
            }
            "--beams" => {
                beam_counts = value("--beams")?
                    .split(',')
                    .map(|b| b.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context("--beams takes a comma-separated list of beam counts")?
            }
            other if other.starts_with("--") => bail!("unknown option {other}"),
            path => model_path = Some(PathBuf::from(path)),
        }
    }
    let model_path = model_path.unwrap_or_else(default_model);
    let corpus = oerkit_testkit::corpus("parallel/openstax-statistics/eng-spa.eng");
    let text = std::fs::read_to_string(&corpus)
        .with_context(|| format!("cannot read {}", corpus.display()))?;
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && l.len() < 300)
        .take(segments)
        .collect();

    let load_started = Instant::now();
    let model = GgufModel::load(
        &model_path,
        &LoadOptions {
            threads: Some(threads),
            weights,
        },
    )?;
    let load_s = load_started.elapsed().as_secs_f64();
    let prompts: Vec<Vec<u32>> = lines
        .iter()
        .map(|line| {
            let rendered = model.render_chat(&[
                ChatMessage::system(
                    "You translate educational text from English to Spanish. Reply with the translation only.",
                ),
                ChatMessage::user(*line),
            ])?;
            Ok(model.encode_prompt(&rendered))
        })
        .collect::<Result<_>>()?;
    if let Some(path) = dump {
        std::fs::write(&path, serde_json::to_string(&prompts)?)?;
    }
    let prompt_tokens: usize = prompts.iter().map(Vec::len).sum();
    println!(
        "model {} ({}, {weights:?} weights), {} segments, {prompt_tokens} prompt tokens, max {max_new_tokens} new tokens, {threads} threads, load {load_s:.2} s",
        model_path.display(),
        model.architecture().name(),
        prompts.len(),
    );
    println!(
        "{:>5} | {:>5} | {:>10} | {:>8} | {:>12} | {:>10} | {:>15} | {:>12}",
        "beams",
        "batch",
        "gen tokens",
        "seconds",
        "gen tokens/s",
        "segments/s",
        "prompt tokens/s",
        "tokens/CPU-s"
    );
    for &beams in &beam_counts {
        let mut reference: Option<Vec<Vec<u32>>> = None;
        for &batch in &batches {
            let config = GenerationConfig {
                max_new_tokens,
                batch_size: batch,
                num_beams: beams,
                ..GenerationConfig::default()
            };
            let cpu_started = cpu_seconds();
            let started = Instant::now();
            let generations = model.generate_ids(&prompts, &config)?;
            let seconds = started.elapsed().as_secs_f64();
            let cpu = match (cpu_started, cpu_seconds()) {
                (Some(a), Some(b)) if b > a => b - a,
                _ => f64::NAN,
            };
            let generated: usize = generations.iter().map(|g| g.token_ids.len()).sum();
            let mut prompt_seconds = 0.0;
            for chunk in generations.chunks(batch) {
                prompt_seconds += chunk[0].batch_prompt_time.as_secs_f64();
            }
            println!(
            "{beams:>5} | {batch:>5} | {generated:>10} | {seconds:>8.2} | {:>12.1} | {:>10.2} | {:>15.1} | {:>12.1}",
            generated as f64 / seconds,
            generations.len() as f64 / seconds,
            prompt_tokens as f64 / prompt_seconds,
            generated as f64 / cpu,
        );
            let ids: Vec<Vec<u32>> = generations.into_iter().map(|g| g.token_ids).collect();
            match &reference {
                None => {
                    if let Some(path) = dump_outputs.as_ref().filter(|_| beams == beam_counts[0]) {
                        std::fs::write(path, serde_json::to_string(&ids)?)?;
                    }
                    reference = Some(ids)
                }
                Some(r) => {
                    let same = r.iter().zip(&ids).filter(|(a, b)| a == b).count();
                    if std::env::var_os("GGUF_BENCH_DEBUG").is_some() {
                        for (a, b) in r.iter().zip(&ids) {
                            if a != b {
                                println!("  batch 1: {a:?}\n  batch {batch}: {b:?}");
                            }
                        }
                    }
                    if same != ids.len() {
                        println!(
                            "      (batch {batch}: {same}/{} outputs equal to batch {})",
                            ids.len(),
                            batches[0]
                        );
                    }
                }
            }
        }
    }
    if let Some(rss) = peak_rss_mib() {
        println!("peak RSS {rss:.0} MiB");
    }
    Ok(())
}
