//! `oerkit eval`: score a line-aligned hypothesis file against one or more reference files with
//! BLEU, chrF, chrF++ and TER exactly as sacrebleu 2.5.1 does; `--json` prints what
//! `sacrebleu -f json` prints; `--baseline` adds sacrebleu's paired bootstrap test.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use oerkit_metrics::{
    json_float, json_object, json_str, paired_bootstrap, Bleu, BleuConfig, Chrf, ChrfConfig,
    Metric, MetricScore, PairedBootstrap, Smoothing, Ter, TerConfig, Tokenizer, SACREBLEU_SEED,
};

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Hypothesis file (system output), one segment per line, UTF-8.
    #[arg(long, value_name = "FILE")]
    hyp: PathBuf,
    /// Reference file, line-aligned with --hyp; repeat for several references.
    #[arg(long = "ref", value_name = "FILE", required = true)]
    refs: Vec<PathBuf>,
    /// Metrics to compute, comma-separated: bleu, chrf, chrf++, ter.
    #[arg(long, value_delimiter = ',', default_value = "bleu,chrf,ter")]
    metrics: Vec<String>,
    /// BLEU tokenizer: 13a, intl, zh, char, none.
    #[arg(long, default_value = "13a")]
    tokenize: String,
    /// BLEU smoothing: exp, floor, add-k, none.
    #[arg(long, default_value = "exp")]
    smooth: String,
    /// Lowercase before BLEU and chrF (case-insensitive BLEU/chrF).
    #[arg(long)]
    lowercase: bool,
    /// Case-sensitive TER (sacrebleu's TER lowercases by default).
    #[arg(long, alias = "ter-case-sensitive")]
    case_sensitive: bool,
    /// TER: TERCOM normalisation (entities, punctuation split off, possessive 's, numbers).
    #[arg(long)]
    ter_normalized: bool,
    /// TER: remove punctuation `.,?:;!"()` before aligning.
    #[arg(long)]
    ter_no_punct: bool,
    /// TER: with --ter-normalized split CJK text into characters; with --ter-no-punct also remove
    /// CJK and full-width punctuation.
    #[arg(long)]
    ter_asian_support: bool,
    /// Score every line separately (sentence-level; BLEU uses effective order as sacrebleu does).
    #[arg(long)]
    sentence: bool,
    /// Machine-readable output: `sacrebleu -f json` objects (JSONL, one line per segment, with --sentence).
    #[arg(long)]
    json: bool,
    /// Decimals of printed scores (sacrebleu's --width).
    #[arg(long, default_value_t = 1)]
    width: usize,
    /// Baseline system output: adds a paired bootstrap test of --hyp against it.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Bootstrap resamples for --baseline.
    #[arg(long, default_value_t = 1000)]
    bootstrap_samples: usize,
    /// Seed of the bootstrap resampling (sacrebleu's SACREBLEU_SEED).
    #[arg(long, default_value_t = SACREBLEU_SEED)]
    seed: u64,
}

/// Read a line-aligned UTF-8 text file; invalid UTF-8 and empty files are errors that name the
/// file (and line).
fn read_lines(path: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let raw = e.as_bytes();
            let line = raw[..valid].iter().filter(|&&b| b == b'\n').count() + 1;
            let col = valid
                - raw[..valid]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |p| p + 1)
                + 1;
            bail!(
                "{}:{line}:{col}: invalid UTF-8 (byte 0x{:02x}); convert the file to UTF-8 (e.g. with iconv)",
                path.display(),
                raw[valid]
            );
        }
    };
    if text.is_empty() {
        bail!("{} is empty; expected one segment per line", path.display());
    }
    let mut lines: Vec<String> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
        .collect();
    if text.ends_with('\n') {
        lines.pop();
    }
    Ok(lines)
}

#[derive(Clone, Copy, Debug)]
enum Choice {
    Bleu,
    Chrf,
    ChrfPlusPlus,
    Ter,
}

fn parse_metrics(names: &[String]) -> Result<Vec<Choice>> {
    let mut out = Vec::new();
    for n in names {
        let c = match n.trim().to_ascii_lowercase().as_str() {
            "bleu" => Choice::Bleu,
            "chrf" => Choice::Chrf,
            "chrf++" | "chrfpp" => Choice::ChrfPlusPlus,
            "ter" => Choice::Ter,
            other => bail!("unknown metric {other:?} in --metrics; use bleu, chrf, chrf++, ter"),
        };
        out.push(c);
    }
    if out.is_empty() {
        bail!("--metrics is empty; use bleu, chrf, chrf++, ter");
    }
    Ok(out)
}

/// One metric's results, already formatted.
struct Outcome {
    name: String,
    score: f64,
    signature: String,
    verbose: Option<String>,
    /// `sacrebleu -f json` object.
    json: String,
    /// Per-segment (score, verbose) with --sentence.
    sentences: Vec<(f64, Option<String>)>,
    paired: Option<PairedBootstrap>,
}

struct Inputs<'a> {
    hyps: &'a [String],
    refs: &'a [Vec<String>],
    baseline: Option<&'a [String]>,
    args: &'a EvalArgs,
}

fn evaluate<M: Metric>(metric: &M, input: &Inputs<'_>) -> Result<Outcome> {
    let stats = metric.corpus_statistics(input.hyps, input.refs)?;
    let total = oerkit_metrics::sum_stats(&stats);
    let score = metric.score_from_stats(&total);
    let sig = metric.signature(input.refs.len());
    let sentences = if input.args.sentence {
        stats
            .iter()
            .map(|s| {
                let sc = metric.score_from_stats(s);
                (sc.score(), sc.verbose())
            })
            .collect()
    } else {
        Vec::new()
    };
    let paired = match input.baseline {
        Some(base) => {
            let base_stats = metric.corpus_statistics(base, input.refs)?;
            paired_bootstrap(
                metric,
                &base_stats,
                &stats,
                input.args.bootstrap_samples,
                input.args.seed,
            )
        }
        None => None,
    };
    Ok(Outcome {
        name: score.name(),
        score: score.score(),
        signature: sig.format(false),
        verbose: score.verbose(),
        json: score.to_sacrebleu_json(input.args.width, &sig),
        sentences,
        paired,
    })
}

pub fn run(args: EvalArgs) -> Result<ExitCode> {
    let choices = parse_metrics(&args.metrics)?;
    let tokenizer: Tokenizer = args.tokenize.parse().context("--tokenize")?;
    let smoothing: Smoothing = args.smooth.parse().context("--smooth")?;
    if args.sentence && args.baseline.is_some() {
        bail!("--baseline (paired bootstrap) works on corpus scores; drop --sentence");
    }

    let hyps = read_lines(&args.hyp)?;
    let mut refs = Vec::with_capacity(args.refs.len());
    for path in &args.refs {
        let lines = read_lines(path)?;
        if lines.len() != hyps.len() {
            bail!(
                "{} has {} lines but {} has {}; reference and hypothesis files must be line-aligned",
                path.display(),
                lines.len(),
                args.hyp.display(),
                hyps.len()
            );
        }
        refs.push(lines);
    }
    let baseline = match &args.baseline {
        Some(path) => {
            let lines = read_lines(path)?;
            if lines.len() != hyps.len() {
                bail!(
                    "{} has {} lines but {} has {}; the baseline must be line-aligned with the hypothesis",
                    path.display(),
                    lines.len(),
                    args.hyp.display(),
                    hyps.len()
                );
            }
            Some(lines)
        }
        None => None,
    };
    tracing::info!(segments = hyps.len(), references = refs.len(), "scoring");

    let input = Inputs {
        hyps: &hyps,
        refs: &refs,
        baseline: baseline.as_deref(),
        args: &args,
    };
    let mut outcomes = Vec::with_capacity(choices.len());
    for choice in choices {
        let outcome = match choice {
            Choice::Bleu => {
                let cfg = BleuConfig {
                    tokenizer,
                    lowercase: args.lowercase,
                    smoothing,
                    effective_order: args.sentence,
                };
                evaluate(&Bleu::new(cfg), &input)?
            }
            Choice::Chrf | Choice::ChrfPlusPlus => {
                let mut cfg = if matches!(choice, Choice::Chrf) {
                    ChrfConfig::default()
                } else {
                    ChrfConfig::plus_plus()
                };
                cfg.lowercase = args.lowercase;
                evaluate(&Chrf::new(cfg)?, &input)?
            }
            Choice::Ter => evaluate(
                &Ter::new(TerConfig {
                    case_sensitive: args.case_sensitive,
                    normalized: args.ter_normalized,
                    no_punct: args.ter_no_punct,
                    asian_support: args.ter_asian_support,
                }),
                &input,
            )?,
        };
        outcomes.push(outcome);
    }

    let out = if args.sentence {
        render_sentences(&outcomes, hyps.len(), &args)
    } else if args.baseline.is_some() {
        render_paired(&outcomes, &args)
    } else if args.json {
        render_json(&outcomes)
    } else {
        render_table(&outcomes, args.width)
    };
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// `sacrebleu -f json`: one object for one metric, else a list of them.
fn render_json(outcomes: &[Outcome]) -> String {
    if outcomes.len() == 1 {
        format!("{}\n", outcomes[0].json)
    } else {
        let objs: Vec<&str> = outcomes.iter().map(|o| o.json.as_str()).collect();
        format!("[\n{}\n]\n", objs.join(",\n"))
    }
}

fn fmt_score(x: f64, width: usize) -> String {
    format!("{x:.width$}")
}

fn render_table(outcomes: &[Outcome], width: usize) -> String {
    let name_w = outcomes
        .iter()
        .map(|o| o.name.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut s = format!("{:<name_w$}  {:>8}  details\n", "metric", "score");
    for o in outcomes {
        s.push_str(&format!(
            "{:<name_w$}  {:>8}  {}\n",
            o.name,
            fmt_score(o.score, width),
            o.verbose.as_deref().unwrap_or("")
        ));
    }
    s.push_str("\nsignatures:\n");
    for o in outcomes {
        s.push_str(&format!("  {:<name_w$}  {}\n", o.name, o.signature));
    }
    s
}

fn render_sentences(outcomes: &[Outcome], n: usize, args: &EvalArgs) -> String {
    let mut s = String::new();
    for i in 0..n {
        if args.json {
            let mut fields = vec![("segment".to_string(), (i + 1).to_string())];
            for o in outcomes {
                let rounded: f64 = fmt_score(o.sentences[i].0, args.width)
                    .parse()
                    .unwrap_or(f64::NAN);
                fields.push((o.name.clone(), json_float(rounded)));
            }
            let compact: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{}: {v}", json_str(k)))
                .collect();
            s.push_str(&format!("{{{}}}\n", compact.join(", ")));
        } else {
            // sacrebleu's sentence-level line per metric: NAME|signature = score verbose
            let parts: Vec<String> = outcomes
                .iter()
                .map(|o| {
                    let (score, verbose) = &o.sentences[i];
                    let mut p = format!(
                        "{}|{} = {}",
                        o.name,
                        o.signature,
                        fmt_score(*score, args.width)
                    );
                    if let Some(v) = verbose {
                        p.push(' ');
                        p.push_str(v);
                    }
                    p
                })
                .collect();
            s.push_str(&parts.join("\t"));
            s.push('\n');
        }
    }
    s
}

/// Paired bootstrap results; JSON in sacrebleu's multi-system shape
/// (`[{"system": ..., "<metric>": {"score", "p_value", "mean", "ci"}}, ...]`).
fn render_paired(outcomes: &[Outcome], args: &EvalArgs) -> String {
    let base_name = format!(
        "Baseline: {}",
        args.baseline.as_deref().unwrap_or(Path::new("")).display()
    );
    let sys_name = args.hyp.display().to_string();
    if args.json {
        let entry = |system: &str, baseline: bool| {
            let mut fields = vec![("system".to_string(), json_str(system))];
            for o in outcomes {
                if let Some(p) = &o.paired {
                    let (score, pv, mean, ci) = if baseline {
                        (
                            p.baseline_score,
                            "null".to_string(),
                            p.baseline_mean,
                            p.baseline_ci,
                        )
                    } else {
                        (
                            p.system_score,
                            json_float(p.p_value),
                            p.system_mean,
                            p.system_ci,
                        )
                    };
                    let inner = vec![
                        ("score".to_string(), json_float(score)),
                        ("p_value".to_string(), pv),
                        ("mean".to_string(), json_float(mean)),
                        ("ci".to_string(), json_float(ci)),
                    ];
                    fields.push((o.name.clone(), json_object(&inner, 2)));
                }
            }
            json_object(&fields, 1)
        };
        return format!(
            "[\n {},\n {}\n]\n",
            entry(&base_name, true),
            entry(&sys_name, false)
        );
    }
    let w = args.width;
    let mut s = String::new();
    s.push_str(&format!(
        "{:<10}  {:>22}  {:>22}  {:>10}\n",
        "metric", "baseline (μ ± 95% CI)", "system (μ ± 95% CI)", "p-value"
    ));
    for o in outcomes {
        if let Some(p) = &o.paired {
            let b = format!(
                "{} ({} ± {})",
                fmt_score(p.baseline_score, w),
                fmt_score(p.baseline_mean, w),
                fmt_score(p.baseline_ci, w)
            );
            let y = format!(
                "{} ({} ± {})",
                fmt_score(p.system_score, w),
                fmt_score(p.system_mean, w),
                fmt_score(p.system_ci, w)
            );
            let star = if p.p_value < 0.05 { "*" } else { "" };
            s.push_str(&format!(
                "{:<10}  {:>22}  {:>22}  {:>9.4}{star}\n",
                o.name, b, y, p.p_value
            ));
        }
    }
    s.push_str(&format!(
        "\nPaired bootstrap resampling, {} resamples, seed {} (p < 0.05 marked *).\nbaseline: {}\nsystem:   {sys_name}\n\nsignatures:\n",
        args.bootstrap_samples,
        args.seed,
        args.baseline.as_deref().unwrap_or(Path::new("")).display()
    ));
    for o in outcomes {
        s.push_str(&format!("  {:<10}  {}\n", o.name, o.signature));
    }
    s
}
