//! `oerkit export --job J --format doc|xliff|tmx|jsonl --out PATH`: the approved document reassembled in
//! its original format with the attribution notice, an XLIFF 2.1 job for a CAT tool, the approved pairs
//! as a TMX 1.4 memory, or the reviews as the JSONL research dataset (reviewers pseudonymised unless
//! `--names`). `doc` and `xliff` need the document the job was queued from.

use crate::cmd::review::StoreArgs;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use oerkit_review::{export, xliff, Job, ReviewStore};
use std::collections::HashMap;
use std::path::Path;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// The approved document in its original format.
    Doc,
    /// An XLIFF 2.1 job for a CAT tool: approved text, else the suggestion a reviewer would be shown, with
    /// each segment's machine-translation provenance (Metadata module); `review import` brings it back.
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
            let (text, n) = xliff_job(&store, &job)?;
            (text, n, "units with a translation")
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

/// The job's document as an XLIFF 2.1 job for a CAT tool: each unit's target is its approved text, else
/// the text a reviewer would be shown (leading candidate or first suggestion). The file carries the job
/// stamp `review import` checks and, per unit, the review state and machine-translation provenance (XLIFF
/// 2.1 Metadata module, `<mda:metadata>`).
fn xliff_job(store: &dyn ReviewStore, job: &Job) -> Result<(String, usize)> {
    let (doc, by_ext_id) = job_document(store, job)?;
    let mut targets = Vec::with_capacity(doc.units.len());
    let mut views = Vec::with_capacity(doc.units.len());
    let mut filled = 0;
    for unit in &doc.units {
        let view = by_ext_id
            .get(&unit.id)
            .map(|id| store.unit(*id))
            .transpose()?;
        let text = view
            .as_ref()
            .and_then(|v| v.current_text.clone())
            .unwrap_or_default();
        views.push(view);
        if !text.trim().is_empty() {
            filled += 1;
        }
        targets.push(text);
    }
    let xliff = oerkit_document::formats::xliff::to_xliff(
        &doc,
        oerkit_document::formats::xliff::XliffVersion::V21,
        &job.src_lang,
        &job.tgt_lang,
        Some(&targets),
    );
    let stamp = xliff::JobStamp {
        job_id: Some(job.id),
        job_name: Some(job.name.clone()),
        database: Some(xliff::database_fingerprint(store)?),
    };
    let xliff = xliff::add_provenance(&xliff, &stamp, &views)?;
    Ok((xliff, filled))
}

/// The document a job was queued from, and the job's unit ids by document unit id; refused when a
/// queued unit's source no longer matches the document.
fn job_document(
    store: &dyn ReviewStore,
    job: &Job,
) -> Result<(oerkit_document::Document, HashMap<String, i64>)> {
    let path = Path::new(&job.resource);
    let doc = oerkit_document::load(path, None).with_context(|| {
        format!(
            "job {} was queued from {}; that document is needed to export it",
            job.name, job.resource
        )
    })?;
    let mut by_ext_id = HashMap::new();
    let in_doc: HashMap<&str, &str> = doc
        .units
        .iter()
        .map(|u| (u.id.as_str(), u.text.as_str()))
        .collect();
    for row in store.units_of(job.id)? {
        match in_doc.get(row.ext_id.as_str()) {
            Some(text) if *text == row.source => {
                by_ext_id.insert(row.ext_id, row.id);
            }
            _ => bail!(
                "{}: unit {} changed since job {} was queued; queue the document again",
                job.resource,
                row.ext_id,
                job.name
            ),
        }
    }
    Ok((doc, by_ext_id))
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
