//! Corpus BLEU, chrF and TER: oerkit-metrics vs sacrebleu 2.5.1 on the same 3,000 segment
//! pairs, same machine, one core each (oerkit's metrics are single-threaded; Python is too).
//!
//! Data: TICO-19 Spanish (hypothesis) vs Portuguese (reference) translations of the same English
//! lines — real text with partial overlap, so TER's shift search does real work.
//! Usage: `benches/metrics_vs_sacrebleu.sh` (creates the sacrebleu venv), or
//! `cargo run --release -p oerkit-benches --bin metrics_vs_sacrebleu -- [--python PY] [--reps N] [--segments N]`.
//! Times are the best of N runs of `corpus_score` (files already in memory, no process start).

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use oerkit_metrics::{Bleu, Chrf, Metric, MetricScore, Ter};

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
    let mut python =
        std::env::var("SACREBLEU_PYTHON").unwrap_or_else(|_| "/tmp/venv-sb/bin/python".into());
    let mut reps = 5usize;
    let mut n = 3000usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--python" => python = args.next().context("--python needs a path")?,
            "--reps" => reps = args.next().context("--reps needs a number")?.parse()?,
            "--segments" => n = args.next().context("--segments needs a number")?.parse()?,
            other => bail!("unknown argument {other}; use --python PY, --reps N, --segments N"),
        }
    }
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

    let ours = [
        ("BLEU", timed(&Bleu::default(), &hyps, &refs, reps)?),
        ("chrF", timed(&Chrf::default(), &hyps, &refs, reps)?),
        ("TER", timed(&Ter::default(), &hyps, &refs, reps)?),
    ];

    eprintln!("running sacrebleu with {python} (one core) ...");
    let out = Command::new("taskset")
        .args(["-c", "0", &python, "-c", SACREBLEU_SCRIPT])
        .arg(&hyp_path)
        .arg(&ref_path)
        .args([n.to_string(), reps.to_string()])
        .output()
        .or_else(|_| {
            Command::new(&python)
                .args(["-c", SACREBLEU_SCRIPT])
                .arg(&hyp_path)
                .arg(&ref_path)
                .args([n.to_string(), reps.to_string()])
                .output()
        })
        .with_context(|| {
            format!("running {python}; create the venv with benches/metrics_vs_sacrebleu.sh")
        })?;
    if !out.status.success() {
        bail!("sacrebleu failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let theirs: serde_json::Value = serde_json::from_slice(&out.stdout)?;

    println!(
        "corpus metrics on {n} segment pairs (TICO-19 spa vs por), best of {reps}; sacrebleu {}",
        theirs["version"].as_str().unwrap_or("?")
    );
    println!(
        "{:<6} {:>12} {:>15} {:>9} {:>14} {:>16}",
        "metric", "oerkit ms", "sacrebleu ms", "speed-up", "oerkit score", "sacrebleu score"
    );
    for (name, (secs, score)) in ours {
        let t = &theirs[name];
        let their_secs = t["seconds"].as_f64().unwrap_or(f64::NAN);
        let their_score = t["score"].as_f64().unwrap_or(f64::NAN);
        println!(
            "{name:<6} {:>12.2} {:>15.1} {:>8.1}x {score:>14.6} {their_score:>16.6}",
            secs * 1e3,
            their_secs * 1e3,
            their_secs / secs
        );
        if (score - their_score).abs() > 1e-9 * score.abs().max(1.0) {
            bail!("{name}: scores differ (oerkit {score}, sacrebleu {their_score})");
        }
    }
    Ok(())
}
