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

use anyhow::{Context, Result};
use clap::{ArgAction, Parser};
use oerkit_benches::{list_count, peak_rss_mib, process_cpu_seconds};
use oerkit_gguf::{ChatMessage, GenerationConfig, GgufModel, LoadOptions};

/// GGUF generation speed of the oerkit engine: generated tokens/s and segments/s per batch size
/// (and beam count), with peak RSS.
#[derive(Parser)]
#[command(args_override_self = true)]
struct Args {
    /// GGUF model file; default: the SmolLM2 file in the model cache ($OERKIT_MODELS, else
    /// ~/.cache/oerkit/models).
    #[arg(value_name = "MODEL.gguf")]
    model: Option<PathBuf>,
    /// Threads of the engine (set RAYON_NUM_THREADS to the same count).
    #[arg(long, value_name = "N", default_value_t = 2)]
    threads: usize,
    /// Number of OpenStax statistics lines to translate.
    #[arg(long, value_name = "N", default_value_t = 16)]
    segments: usize,
    /// Most tokens generated per segment.
    #[arg(long, value_name = "N", default_value_t = 48)]
    max_new_tokens: usize,
    /// Batch sizes to time, comma-separated.
    #[arg(long, value_name = "1,4,8,16", value_delimiter = ',', value_parser = list_count,
          action = ArgAction::Set, default_value = "1,4,8,16")]
    batches: Vec<usize>,
    /// Beam counts to time, comma-separated (1: greedy).
    #[arg(long, value_name = "1,2,4", value_delimiter = ',', value_parser = list_count,
          action = ArgAction::Set, default_value = "1")]
    beams: Vec<usize>,
    /// Dequantize the weights to float32 on load.
    #[arg(long)]
    dequantize: bool,
    /// Write the token-id prompts here as one JSON list of lists.
    #[arg(long, value_name = "FILE")]
    dump_prompts: Option<PathBuf>,
    /// Write the generated ids of the first batch size (first beam count) here, in the same form.
    #[arg(long, value_name = "FILE")]
    dump_outputs: Option<PathBuf>,
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
    let Args {
        model: model_path,
        threads,
        segments,
        max_new_tokens,
        batches,
        beams: beam_counts,
        dequantize,
        dump_prompts: dump,
        dump_outputs,
    } = Args::parse();
    let weights = if dequantize {
        oerkit_gguf::WeightFormat::Dequantized
    } else {
        oerkit_gguf::WeightFormat::Quantized
    };
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
            let cpu_started = process_cpu_seconds();
            let started = Instant::now();
            let generations = model.generate_ids(&prompts, &config)?;
            let seconds = started.elapsed().as_secs_f64();
            let cpu = match (cpu_started, process_cpu_seconds()) {
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
