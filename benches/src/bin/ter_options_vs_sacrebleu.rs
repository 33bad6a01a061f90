//! TER's `normalized`, `no_punct`, `asian_support` (and case) options: oerkit-metrics vs
//! sacrebleu 2.5.1, segment by segment, on real data — TICO-19 Spanish vs Portuguese (first
//! `--segments` lines, default 1,000), NTREX-128 pt-BR vs [pt-PT, Spanish] (two references) and MLQE-PE en-zh dev machine
//! output vs post-edit (Chinese, for `asian_support`).
//!
//! A check, not a timing: sacrebleu computes per-segment statistics `[edits, avg ref length]`,
//! the corpus score and the signature for every option combination; the table lists how many
//! segments differ (must be 0) and both corpus scores.
//! Usage: `benches/ter_options_vs_sacrebleu.sh` (creates the sacrebleu venv), or
//! `cargo run --release -p oerkit-benches --bin ter_options_vs_sacrebleu -- [--python PY] [--segments N]`.

use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Parser;
use oerkit_benches::DEFAULT_SACREBLEU_PYTHON;
use oerkit_metrics::{Metric, MetricScore, Ter, TerConfig};
use serde_json::Value;

const SACREBLEU_SCRIPT: &str = r#"
import csv, json, sys, itertools, logging
logging.getLogger("sacrebleu").setLevel(logging.ERROR)
import sacrebleu
from sacrebleu.metrics import TER
from sacrebleu.utils import sum_of_lists
corpora, n_tico = sys.argv[1], int(sys.argv[2])
def lines(rel, n=None):
    with open(f"{corpora}/{rel}", encoding="utf-8", newline="") as f:
        out = f.read().split("\n")
    if out and out[-1] == "":
        out.pop()
    return out[:n] if n else out
def mlqe(pair):
    with open(f"{corpora}/postedit/mlqe-pe/{pair}/dev.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quotechar='"'))
    return [r["mt"] for r in rows], [[r["pe"] for r in rows]]
tico_h = lines("parallel/tico19/eng-spa.spa", n_tico)
tico_r = lines("parallel/tico19/eng-por.por", n_tico)
ntrex_h = lines("parallel/ntrex128/eng-por_BR.por_BR")
ntrex_r = [lines("parallel/ntrex128/eng-por.por"), lines("parallel/ntrex128/eng-spa.spa")]
zh_h, zh_r = mlqe("en-zh")
datasets = {
    "tico19 spa|por": (tico_h, [tico_r]),
    "ntrex pt-BR|pt,es": (ntrex_h, ntrex_r),
    "mlqe en-zh mt|pe": (zh_h, zh_r),
}
# every combination of the three options (case-insensitive, the default), plus case-sensitive
# with normalisation
configs = [dict(case_sensitive=False, normalized=norm, no_punct=nopunct, asian_support=asian)
           for norm, nopunct, asian in itertools.product((False, True), repeat=3)]
configs.append(dict(case_sensitive=True, normalized=True, no_punct=False, asian_support=False))
out = {"version": sacrebleu.__version__, "datasets": {}}
for name, (hyps, refs) in datasets.items():
    entry = {"hyps": hyps, "refs": refs, "results": []}
    for kw in configs:
        m = TER(**kw)
        stats = m._extract_corpus_statistics(hyps, refs)
        score = m._compute_score_from_stats(sum_of_lists(stats))
        entry["results"].append({"kwargs": kw, "stats": [[float(e), float(l)] for e, l in stats],
                                 "score": score.score, "signature": str(m.get_signature())})
    out["datasets"][name] = entry
print(json.dumps(out, ensure_ascii=False))
"#;

/// TER options (normalized, no_punct, asian_support, case): oerkit-metrics vs sacrebleu, segment
/// by segment, on TICO-19, NTREX-128 and MLQE-PE en-zh.
#[derive(Parser)]
#[command(args_override_self = true)]
struct Args {
    /// Python interpreter with sacrebleu installed.
    #[arg(long, value_name = "PY", env = "SACREBLEU_PYTHON", default_value = DEFAULT_SACREBLEU_PYTHON)]
    python: String,
    /// Number of TICO-19 lines to compare.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    segments: usize,
}

fn main() -> Result<()> {
    let Args {
        python,
        segments: tico_segments,
    } = Args::parse();
    oerkit_testkit::require_shared();
    let corpora = oerkit_testkit::corpus("");
    eprintln!("running sacrebleu with {python} ...");
    let out = Command::new(&python)
        .args(["-c", SACREBLEU_SCRIPT])
        .arg(&corpora)
        .arg(tico_segments.to_string())
        .output()
        .with_context(|| {
            format!("running {python}; create the venv with benches/ter_options_vs_sacrebleu.sh")
        })?;
    if !out.status.success() {
        bail!("sacrebleu failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let theirs: Value = serde_json::from_slice(&out.stdout)?;
    let strings = |v: &Value| -> Result<Vec<String>> {
        v.as_array()
            .context("expected a list of strings")?
            .iter()
            .map(|s| s.as_str().map(String::from).context("expected a string"))
            .collect()
    };
    println!(
        "TER options: oerkit-metrics vs sacrebleu {}, per-segment [edits, ref_len]",
        theirs["version"].as_str().unwrap_or("?")
    );
    println!(
        "{:<18} {:<40} {:>6} {:>6} {:>12} {:>12} {:>4}",
        "data", "options", "segs", "diff", "oerkit TER", "sacrebleu", "sig"
    );
    let mut total_diff = 0usize;
    let datasets = theirs["datasets"].as_object().context("datasets")?;
    for (name, entry) in datasets {
        let hyps = strings(&entry["hyps"])?;
        let refs: Vec<Vec<String>> = entry["refs"]
            .as_array()
            .context("refs")?
            .iter()
            .map(strings)
            .collect::<Result<_>>()?;
        for result in entry["results"].as_array().context("results")? {
            let kw = &result["kwargs"];
            let flag = |k: &str| kw[k].as_bool().unwrap_or(false);
            let config = TerConfig {
                case_sensitive: flag("case_sensitive"),
                normalized: flag("normalized"),
                no_punct: flag("no_punct"),
                asian_support: flag("asian_support"),
            };
            let ter = Ter::new(config);
            let ours = ter.corpus_statistics(&hyps, &refs)?;
            let want = result["stats"].as_array().context("stats")?;
            if want.len() != ours.len() {
                bail!(
                    "{name}: {} segments vs sacrebleu's {}",
                    ours.len(),
                    want.len()
                );
            }
            let diff = ours
                .iter()
                .zip(want)
                .filter(|(o, w)| {
                    o.num_edits as f64 != w[0].as_f64().unwrap_or(f64::NAN)
                        || o.ref_length != w[1].as_f64().unwrap_or(f64::NAN)
                })
                .count();
            total_diff += diff;
            let score = ter.corpus_score(&hyps, &refs)?.score();
            let sig = ter.signature(refs.len()).format(false);
            let sig_ok = Some(sig.as_str()) == result["signature"].as_str();
            let options = format!(
                "cs={} norm={} nopunct={} asian={}",
                config.case_sensitive as u8,
                config.normalized as u8,
                config.no_punct as u8,
                config.asian_support as u8
            );
            println!(
                "{name:<18} {options:<40} {:>6} {diff:>6} {score:>12.6} {:>12.6} {:>4}",
                hyps.len(),
                result["score"].as_f64().unwrap_or(f64::NAN),
                if sig_ok { "ok" } else { "DIFF" }
            );
            if !sig_ok {
                bail!(
                    "{name} {options}: signature {sig} vs sacrebleu {}",
                    result["signature"]
                );
            }
        }
    }
    if total_diff > 0 {
        bail!("{total_diff} segment statistics differ from sacrebleu");
    }
    println!("all segment statistics and signatures equal sacrebleu's");
    Ok(())
}
