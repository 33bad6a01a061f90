//! `oerkit export --job J --format doc|tmx|jsonl --out PATH`: the approved document reassembled in its
//! original format with the attribution notice, the approved pairs as a TMX 1.4 memory, or the reviews as
//! the JSONL research dataset (reviewers pseudonymised unless `--names`). XLIFF is not written yet.

use crate::cmd::review::StoreArgs;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use oerkit_review::{export, Job, ReviewStore};
use std::collections::HashMap;
use std::path::Path;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// The approved document in its original format.
    Doc,
    /// An XLIFF 2.1 job with machine-translation provenance on each segment.
    Xliff,
    /// A TMX 1.4 memory of the approved pairs.
    Tmx,
    /// The research dataset: one JSON line per review.
    Jsonl,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Job name or id.
    #[arg(long, value_name = "JOB")]
    job: String,
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// Output file (written atomically).
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
    /// Keep reviewer names in the JSONL dataset instead of salted-hash pseudonyms.
    #[arg(long)]
    names: bool,
    /// Salt for the pseudonyms (default: a random secret stored in the database).
    #[arg(
        long,
        env = "OERKIT_PSEUDONYM_SALT",
        value_name = "SALT",
        hide_env_values = true
    )]
    salt: Option<String>,
}

pub fn run(args: ExportArgs) -> Result<ExitCode> {
    let store = args.store.open()?;
    let job = store.job(&args.job)?;
    let (contents, count, what) = match args.format {
        ExportFormat::Jsonl => {
            let (text, n) = export::jsonl(&store, job.id, args.names, args.salt.as_deref())?;
            (text, n, "reviews")
        }
        ExportFormat::Tmx => {
            let (text, n) = export::tmx(&store, job.id)?;
            (text, n, "approved pairs")
        }
        ExportFormat::Doc => {
            let (text, n) = approved_document(&store, &job)?;
            (text, n, "approved units")
        }
        ExportFormat::Xliff => {
            bail!("export --format xliff is not available yet; use --format doc, tmx or jsonl")
        }
    };
    export::write_atomically(&args.out, contents.as_bytes())?;
    if args.store.json {
        println!(
            "{}",
            serde_json::json!({"job": job.name, "format": format!("{:?}", args.format).to_lowercase(),
                               "out": args.out, "records": count})
        );
    } else {
        eprintln!("{}: {count} {what} of job {}", args.out.display(), job.name);
    }
    Ok(ExitCode::SUCCESS)
}

/// The job's source document with every approved unit translated (the rest keep their source text) and
/// the attribution notice. Refused when the document changed since it was queued.
fn approved_document(store: &dyn ReviewStore, job: &Job) -> Result<(String, usize)> {
    let path = Path::new(&job.resource);
    let doc = oerkit_document::load(path, None).with_context(|| {
        format!(
            "job {} was queued from {}; that document is needed to reassemble it",
            job.name, job.resource
        )
    })?;
    let approved: HashMap<String, (String, String)> = store
        .approved_pairs(job.id)?
        .into_iter()
        .map(|p| (p.ext_id, (p.source, p.target)))
        .collect();
    let mut used = 0;
    let mut texts = Vec::with_capacity(doc.units.len());
    for unit in &doc.units {
        match approved.get(&unit.id) {
            Some((source, target)) => {
                if source != &unit.text {
                    bail!(
                        "{}: unit {} changed since job {} was queued; queue the document again",
                        job.resource,
                        unit.id,
                        job.name
                    );
                }
                used += 1;
                texts.push(Some(target.clone()));
            }
            None => texts.push(None),
        }
    }
    if used != approved.len() {
        bail!(
            "{}: {} approved unit(s) of job {} are no longer in the document; queue it again",
            job.resource,
            approved.len() - used,
            job.name
        );
    }
    let total = store
        .status()?
        .into_iter()
        .find(|j| j.job.id == job.id)
        .map_or(0, |j| j.units);
    let notice =
        oerkit_document::license::attribution_notice(&oerkit_document::license::Attribution {
            title: doc.meta.title.clone(),
            authors: doc.meta.authors.clone(),
            source_url: doc.meta.source_url.clone(),
            license_spdx: job.licence.clone(),
            source_language: Some(job.src_lang.clone()),
            target_language: job.tgt_lang.clone(),
            translator: format!("human reviewers with oerkit {}", env!("CARGO_PKG_VERSION")),
            changes: Some(format!(
                "{used} of {total} segments translated and approved; the rest is untranslated"
            )),
        });
    let options = oerkit_document::WriteOptions {
        target_language: Some(job.tgt_lang.clone()),
        attribution: Some(notice),
        render_unchanged: false,
    };
    let text = oerkit_document::write_document(
        &doc,
        &oerkit_document::Translations { texts },
        &options,
        path,
    )?;
    Ok((text, used))
}
