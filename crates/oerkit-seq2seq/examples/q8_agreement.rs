//! How much Q8_0 linear layers change greedy output: exact-match rate of q8 vs f32 greedy sequences on a
//! lines file (default: the fixture's 60 inputs), and the time of each pass.
//!
//! `cargo run --release -p oerkit-seq2seq --example q8_agreement -- MODEL_DIR [LINES_FILE] [MAX_NEW_TOKENS]`

use std::path::PathBuf;
use std::time::Instant;

use oerkit_seq2seq::generate::{generate, GenerateOptions};
use oerkit_seq2seq::marian::{MarianCheckpoint, Precision};
use oerkit_seq2seq::Device;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or("usage: q8_agreement MODEL_DIR [LINES_FILE] [MAX_NEW]")?,
    );
    let lines: Vec<String> = match args.next() {
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
    let max_new_tokens = args.next().map(|s| s.parse()).transpose()?.unwrap_or(24);
    let opts = GenerateOptions {
        max_new_tokens,
        ..GenerateOptions::default()
    };
    let mut outputs = Vec::new();
    for precision in [Precision::F32, Precision::Q8] {
        let mut ckpt = MarianCheckpoint::load(&dir, precision, &Device::Cpu)?;
        let start = Instant::now();
        let mut seqs = Vec::new();
        for chunk in lines.chunks(16) {
            let ids = chunk
                .iter()
                .map(|l| ckpt.tokenizer.encode(l))
                .collect::<Result<Vec<_>, _>>()?;
            seqs.extend(
                generate(&mut ckpt.model, &ids, &opts, &Device::Cpu)?
                    .into_iter()
                    .map(|h| h.tokens),
            );
        }
        let tokens: usize = seqs.iter().map(Vec::len).sum();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{precision:?}: {} segments, {tokens} tokens in {secs:.2} s ({:.1} tokens/s)",
            lines.len(),
            tokens as f64 / secs
        );
        outputs.push(seqs);
    }
    let same = outputs[0]
        .iter()
        .zip(&outputs[1])
        .filter(|(a, b)| a == b)
        .count();
    println!(
        "q8 greedy sequences identical to f32: {same}/{}",
        lines.len()
    );
    Ok(())
}
