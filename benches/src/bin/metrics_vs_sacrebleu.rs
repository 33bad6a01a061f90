//! Corpus BLEU, chrF and TER: oerkit-metrics vs sacrebleu 2.5.1 on the same 3,000 segment
//! pairs, same machine, one core each (oerkit's metrics are single-threaded; Python is too).
//!
//! Data: TICO-19 Spanish (hypothesis) vs Portuguese (reference) translations of the same English
//! lines — real text with partial overlap, so TER's shift search does real work.
//! Usage: `benches/metrics_vs_sacrebleu.sh` (creates the sacrebleu venv), or
//! `cargo run --release -p oerkit-benches --bin metrics_vs_sacrebleu -- [--python PY] [--reps N] [--segments N]`.
//! Each of R rounds times oerkit (best of N runs of `corpus_score`, files already in memory) and
//! then sacrebleu (best of N in one Python process, no process start counted), alternately, so
//! both see the same machine load; the table reports the median per-round speed-up.

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use oerkit_benches::DEFAULT_SACREBLEU_PYTHON;
use oerkit_metrics::{Bleu, Chrf, Metric, MetricScore, Ter};

/// Corpus BLEU, chrF and TER speed: oerkit-metrics vs sacrebleu on the same TICO-19 segment pairs.
#[derive(Parser)]
#[command(args_override_self = true)]
struct Args {
    /// Python interpreter with sacrebleu installed.
    #[arg(long, value_name = "PY", env = "SACREBLEU_PYTHON", default_value = DEFAULT_SACREBLEU_PYTHON)]
    python: String,
    /// Timed runs per round and metric (best of N; sacrebleu's TER runs N/3 times, at least once).
    #[arg(long, value_name = "N", default_value_t = 5)]
    reps: usize,
    /// Alternating rounds (oerkit, then sacrebleu); the table reports medians over them.
    #[arg(long, value_name = "R", default_value_t = 5)]
    rounds: usize,
    /// Number of segment pairs.
    #[arg(long, value_name = "N", default_value_t = 3000)]
    segments: usize,
}

const SACREBLEU_SCRIPT: &str = r#"
import json, sys, time, logging
logging.getLogger("sacrebleu").setLevel(logging.ERROR)
import sacrebleu
from sacrebleu.metrics import BLEU, CHRF, TER
hyp_path, ref_path, n, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def lines(p):
    with open(p, encoding="utf-8", newline="") as f:
        return f.read().split("\n")[:n]
hyps, refs = lines(hyp_path), lines(ref_path)
out = {"version": sacrebleu.__version__}
for name, make in (("BLEU", BLEU), ("chrF", CHRF), ("TER", TER)):
    best, score = float("inf"), None
    for _ in range(reps if name != "TER" else max(1, reps // 3)):
        metric = make()  # fresh object: sacrebleu's tokenizer lru_caches are per instance
        t0 = time.perf_counter()
        score = metric.corpus_score(hyps, [refs]).score
        best = min(best, time.perf_counter() - t0)
    out[name] = {"seconds": best, "score": score}
print(json.dumps(out))
"#;

fn timed<M: Metric>(
    metric: &M,
    hyps: &[String],
    refs: &[Vec<String>],
    reps: usize,
) -> Result<(f64, f64)> {
    let mut best = f64::INFINITY;
    let mut score = f64::NAN;
    for _ in 0..reps {
        let t0 = Instant::now();
        score = metric.corpus_score(hyps, refs)?.score();
        best = best.min(t0.elapsed().as_secs_f64());
    }
    Ok((best, score))
}

fn main() -> Result<()> {
    let Args {
        python,
        reps,
        rounds,
        segments: n,
    } = Args::parse();
    let hyp_path = oerkit_testkit::corpus("parallel/tico19/eng-spa.spa");
    let ref_path = oerkit_testkit::corpus("parallel/tico19/eng-por.por");
    let read = |p: &std::path::Path| -> Result<Vec<String>> {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        Ok(text.split('\n').take(n).map(String::from).collect())
    };
    let hyps = read(&hyp_path)?;
    let refs = vec![read(&ref_path)?];
    if hyps.len() < n {
        bail!("{} has only {} lines", hyp_path.display(), hyps.len());
    }

    const NAMES: [&str; 3] = ["BLEU", "chrF", "TER"];
    // per metric: (oerkit seconds, sacrebleu seconds) of every round
    let mut times: Vec<Vec<(f64, f64)>> = vec![Vec::new(); NAMES.len()];
    let mut scores = [(f64::NAN, f64::NAN); 3];
    let mut version = String::new();
    for round in 0..rounds {
        let ours = [
            timed(&Bleu::default(), &hyps, &refs, reps)?,
            timed(&Chrf::default(), &hyps, &refs, reps)?,
            timed(&Ter::default(), &hyps, &refs, reps)?,
        ];
        eprintln!(
            "round {}/{rounds}: running sacrebleu with {python} ...",
            round + 1
        );
        let out = Command::new(&python)
            .args(["-c", SACREBLEU_SCRIPT])
            .arg(&hyp_path)
            .arg(&ref_path)
            .args([n.to_string(), reps.to_string()])
            .output()
            .with_context(|| {
                format!("running {python}; create the venv with benches/metrics_vs_sacrebleu.sh")
            })?;
        if !out.status.success() {
            bail!("sacrebleu failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let theirs: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        version = theirs["version"].as_str().unwrap_or("?").to_string();
        for (k, name) in NAMES.iter().enumerate() {
            let t = &theirs[name];
            let their_secs = t["seconds"].as_f64().unwrap_or(f64::NAN);
            let their_score = t["score"].as_f64().unwrap_or(f64::NAN);
            let (secs, score) = ours[k];
            if (score - their_score).abs() > 1e-9 * score.abs().max(1.0) {
                bail!("{name}: scores differ (oerkit {score}, sacrebleu {their_score})");
            }
            times[k].push((secs, their_secs));
            scores[k] = (score, their_score);
        }
    }
    let median = |mut v: Vec<f64>| -> f64 {
        v.sort_by(f64::total_cmp);
        let m = v.len() / 2;
        if v.len() % 2 == 1 {
            v[m]
        } else {
            (v[m - 1] + v[m]) / 2.0
        }
    };
    println!(
        "corpus metrics on {n} segment pairs (TICO-19 spa vs por); {rounds} alternating rounds, \
         best of {reps} per round; sacrebleu {version}; single-threaded both"
    );
    println!(
        "{:<6} {:>12} {:>15} {:>16} {:>9} {:>9} {:>14} {:>16}",
        "metric",
        "oerkit ms",
        "sacrebleu ms",
        "median speed-up",
        "min",
        "max",
        "oerkit score",
        "sacrebleu score"
    );
    for (k, name) in NAMES.iter().enumerate() {
        let ratios: Vec<f64> = times[k].iter().map(|(o, t)| t / o).collect();
        let lo = ratios.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().cloned().fold(0.0, f64::max);
        let ours_ms = median(times[k].iter().map(|t| t.0 * 1e3).collect());
        let theirs_ms = median(times[k].iter().map(|t| t.1 * 1e3).collect());
        let (score, their_score) = scores[k];
        println!(
            "{name:<6} {ours_ms:>12.2} {theirs_ms:>15.1} {:>15.1}x {lo:>8.1}x {hi:>8.1}x \
             {score:>14.6} {their_score:>16.6}",
            median(ratios.clone())
        );
    }
    Ok(())
}
