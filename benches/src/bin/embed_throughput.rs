//! Sentence-embedding speed of oerkit-embed (all-MiniLM-L6-v2, its own BERT forward on gemm,
//! CPU): embeddings/s and resources/s at batch 1 and 32 on a fixed number of threads, with peak RSS.
//!
//! A resource is one Markdown, CNXML or HTML file of `shared/corpora/oer`; its texts are the
//! translatable units the document layer extracts (placeholders dropped), all of them embedded
//! in one `embed` call per resource. Parsing is timed apart and not counted in the rates, so
//! the rates compare with a Python run over the same texts (`--dump-texts FILE` writes them as
//! JSON, `[{"resource", "texts"}]`; see `benches/embed_vs_sentence_transformers.sh`).
//!
//! Usage: `cargo run --release -p oerkit-benches --bin embed_throughput -- [--model DIR]
//! [--threads N] [--batches 1,32] [--repeat N] [--dump-texts FILE] [--json]`.
//! Without `--model` it uses the cached catalog model `all-minilm-l6-v2`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{ArgAction, Parser};
use oerkit_benches::{list_count, peak_rss_mib};
use oerkit_document::placeholder::{spans, Span};
use oerkit_embed::SentenceEmbedder;

/// Sentence-embedding speed of oerkit-embed over the OER corpus: embeddings/s and resources/s
/// per batch size, with peak RSS.
#[derive(Parser)]
#[command(args_override_self = true)]
struct Args {
    /// Model directory; default: the cached catalog model all-minilm-l6-v2.
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Threads of the rayon pools (sets RAYON_NUM_THREADS).
    #[arg(long, value_name = "N", default_value_t = 2)]
    threads: usize,
    /// Batch sizes to time, comma-separated.
    #[arg(long, value_name = "1,32", value_delimiter = ',', value_parser = list_count,
          action = ArgAction::Set, default_value = "1,32")]
    batches: Vec<usize>,
    /// Timed runs per batch size; the best is reported (0 counts as 1).
    #[arg(long, value_name = "N", default_value_t = 1)]
    repeat: usize,
    /// Write the embedded texts here as JSON, [{"resource", "texts"}].
    #[arg(long, value_name = "FILE")]
    dump_texts: Option<PathBuf>,
    /// Print the rows as one JSON list instead of a Markdown table.
    #[arg(long)]
    json: bool,
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "md" | "cnxml" | "html"))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Unit text without placeholder tokens, whitespace collapsed.
fn plain_text(unit_text: &str) -> String {
    let joined: String = spans(unit_text)
        .into_iter()
        .map(|span| match span {
            Span::Text(text) => text,
            Span::Token { .. } => " ",
        })
        .collect();
    joined.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct Resource {
    name: String,
    texts: Vec<String>,
}

fn main() -> Result<()> {
    let Args {
        model: model_dir,
        threads,
        batches,
        repeat,
        dump_texts: dump,
        json,
    } = Args::parse();
    let repeat = repeat.max(1);
    // candle and tokenizers size their rayon pools from this on first use.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());

    let root = oerkit_testkit::corpus("oer");
    let mut files = Vec::new();
    collect_files(&root, &mut files)?;
    let parse_started = Instant::now();
    let mut resources = Vec::new();
    for path in &files {
        let doc = oerkit_document::load(path, None)
            .with_context(|| format!("cannot load {}", path.display()))?;
        let texts: Vec<String> = doc
            .units
            .iter()
            .map(|u| plain_text(&u.text))
            .filter(|t| !t.is_empty())
            .collect();
        if texts.is_empty() {
            continue;
        }
        let name = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string();
        resources.push(Resource { name, texts });
    }
    let parse_s = parse_started.elapsed().as_secs_f64();
    let n_texts: usize = resources.iter().map(|r| r.texts.len()).sum();
    let n_chars: usize = resources
        .iter()
        .flat_map(|r| &r.texts)
        .map(|t| t.chars().count())
        .sum();

    if let Some(path) = &dump {
        let items: Vec<serde_json::Value> = resources
            .iter()
            .map(|r| serde_json::json!({ "resource": r.name, "texts": r.texts }))
            .collect();
        std::fs::write(path, serde_json::to_vec(&items)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }

    let load_started = Instant::now();
    let embedder = match &model_dir {
        Some(dir) => SentenceEmbedder::load(dir)?,
        None => SentenceEmbedder::load_cached("all-minilm-l6-v2")?,
    };
    let load_s = load_started.elapsed().as_secs_f64();
    let n_tokens: usize = resources
        .iter()
        .flat_map(|r| &r.texts)
        .map(|t| embedder.token_ids(t).map(|ids| ids.len()))
        .sum::<Result<usize, _>>()?;

    eprintln!(
        "{} resources, {n_texts} texts, {n_chars} chars, {n_tokens} word pieces (after truncation \
         at {}); parse {parse_s:.2} s; model load {load_s:.2} s; {threads} threads",
        resources.len(),
        embedder.max_seq_len()
    );
    let mut rows = Vec::new();
    let mut embedder = embedder;
    for &batch in &batches {
        embedder = embedder.with_batch_size(batch);
        let mut best = f64::INFINITY;
        for _ in 0..repeat {
            let started = Instant::now();
            let mut produced = 0usize;
            for resource in &resources {
                let texts: Vec<&str> = resource.texts.iter().map(String::as_str).collect();
                produced += embedder.embed(&texts)?.len();
            }
            best = best.min(started.elapsed().as_secs_f64());
            assert_eq!(produced, n_texts);
        }
        rows.push((batch, best));
    }
    drop(embedder);

    let rss = peak_rss_mib();
    if json {
        let out: Vec<serde_json::Value> = rows
            .iter()
            .map(|(batch, secs)| {
                serde_json::json!({
                    "engine": "oerkit-embed (own BERT forward, gemm)", "batch": batch, "threads": threads,
                    "seconds": secs, "embeddings_per_s": n_texts as f64 / secs,
                    "resources_per_s": resources.len() as f64 / secs,
                    "peak_rss_mib": rss,
                })
            })
            .collect();
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!(
            "| engine | batch | threads | seconds | embeddings/s | resources/s | peak RSS MiB |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for (batch, secs) in rows {
            println!(
                "| oerkit-embed (own BERT forward, gemm) | {batch} | {threads} | {secs:.2} | {:.1} | {:.2} | {} |",
                n_texts as f64 / secs,
                resources.len() as f64 / secs,
                rss.map_or("?".to_string(), |r| format!("{r:.0}"))
            );
        }
    }
    Ok(())
}
