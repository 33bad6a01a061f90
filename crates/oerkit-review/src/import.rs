//! Import of external (source, machine translation, post-edit) triples such as MLQE-PE as a job whose units
//! come with their corrections, for studies; without a `pe` column, of machine output to be reviewed.
//!
//! The file is read like Python's `csv` module reads it (TAB delimiter, `"` quoting with doubled inner
//! quotes) and needs the columns `id`, `src`, `mt`; `pe` (the post-edit) makes each row a review, and `hter`,
//! when present, is kept as the published HTER beside the one the store computes. Rows are committed in batches: a killed import leaves whole
//! batches behind, and running the same import again (same file, recognised by its sha256) adds only the
//! rows still missing.

use crate::error::{Result, ReviewError};
use crate::model::{ImportedReview, Job, NewJob, NewSuggestion, NewUnit, SuggestionOrigin};
use crate::store::ReviewStore;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// One (src, mt, pe) row.
#[derive(Debug, Clone, PartialEq)]
pub struct Triple {
    pub id: String,
    pub src: String,
    pub mt: String,
    /// The post-edit; `None` when the file has no `pe` column (the row is queued for review).
    pub pe: Option<String>,
    pub hter: Option<f64>,
    /// 1-based line of the row in the file.
    pub line: u64,
}

/// Settings of a triple import.
#[derive(Debug, Clone)]
pub struct TripleImport {
    pub path: PathBuf,
    pub src_lang: String,
    pub tgt_lang: String,
    /// Job name; default `<folder>/<file stem>` (e.g. `en-de/dev`).
    pub job_name: Option<String>,
    /// Who the post-edits are attributed to.
    pub reviewer: String,
    /// Who runs the import.
    pub actor: String,
    /// Rows per transaction.
    pub batch_size: usize,
}

/// What an import did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportReport {
    pub job: Job,
    pub rows: usize,
    pub added: usize,
    pub already_present: usize,
    /// True when the job existed already (an interrupted import was resumed or a finished one re-run).
    pub resumed: bool,
    pub file_sha256: String,
}

/// Reads a triples TSV; errors name the file and line.
pub fn read_triples(path: &Path) -> Result<(Vec<Triple>, String)> {
    let bytes = std::fs::read(path).map_err(|source| ReviewError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let sha = hex(&Sha256::digest(&bytes));
    let input_error = |line: u64, message: String| ReviewError::Input {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .quote(b'"')
        .double_quote(true)
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes.as_slice());
    let headers = reader
        .headers()
        .map_err(|e| input_error(1, format!("cannot read the header: {e}")))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.trim() == name);
    let pe_col = column("pe");
    let (Some(id_col), Some(src_col), Some(mt_col)) = (column("id"), column("src"), column("mt"))
    else {
        return Err(input_error(
            1,
            format!(
                "the header must name the columns id, src, mt (and optionally pe, hter), TAB-separated; found {:?}",
                headers.iter().collect::<Vec<_>>()
            ),
        ));
    };
    let hter_col = column("hter");
    let mut triples = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            input_error(line, format!("malformed row: {e}"))
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let field = |i: usize| record.get(i).unwrap_or_default().to_string();
        let hter = match hter_col.map(&field) {
            Some(v) if !v.trim().is_empty() => Some(
                v.trim()
                    .parse::<f64>()
                    .map_err(|_| input_error(line, format!("hter {v:?} is not a number")))?,
            ),
            _ => None,
        };
        let id = field(id_col);
        if id.trim().is_empty() {
            return Err(input_error(line, "empty id".into()));
        }
        triples.push(Triple {
            id,
            src: field(src_col),
            mt: field(mt_col),
            pe: pe_col.map(field),
            hter,
            line,
        });
    }
    let mut seen = std::collections::HashSet::new();
    for t in &triples {
        if !seen.insert(t.id.as_str()) {
            return Err(input_error(
                t.line,
                format!("id {:?} appears twice; ids must be unique", t.id),
            ));
        }
    }
    Ok((triples, sha))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn default_job_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "import".into());
    match path.parent().and_then(|p| p.file_name()) {
        Some(dir) => format!("{}/{stem}", dir.to_string_lossy()),
        None => stem,
    }
}

fn unit_of(t: &Triple, reviewer: &str) -> NewUnit {
    NewUnit {
        ext_id: t.id.clone(),
        source: t.src.clone(),
        context: String::new(),
        suggestions: vec![NewSuggestion {
            text: t.mt.clone(),
            origin: SuggestionOrigin::Import,
            engine: Some("external".into()),
            model_id: None,
            model_sha256: None,
            decoding_params: None,
            prompt_template_version: None,
            time_taken_ms: None,
            quality_score: None,
            tm_entry_id: None,
            tm_score: None,
        }],
        imported_review: t.pe.as_ref().map(|pe| ImportedReview {
            reviewer: reviewer.to_string(),
            final_text: pe.clone(),
            reported_hter: t.hter,
        }),
    }
}

/// Imports a triples file as a job (or resumes the job an earlier run of the same file created).
/// `progress(done, total)` is called after each committed batch.
pub fn import_triples(
    store: &mut dyn ReviewStore,
    settings: &TripleImport,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ImportReport> {
    let (triples, sha) = read_triples(&settings.path)?;
    let batch = settings.batch_size.max(1);
    let mut report = match store.job_by_import(&sha)? {
        Some(job) => ImportReport {
            job,
            rows: triples.len(),
            added: 0,
            already_present: 0,
            resumed: true,
            file_sha256: sha.clone(),
        },
        None => {
            let job = NewJob {
                name: settings
                    .job_name
                    .clone()
                    .unwrap_or_else(|| default_job_name(&settings.path)),
                resource: settings.path.display().to_string(),
                src_lang: settings.src_lang.clone(),
                tgt_lang: settings.tgt_lang.clone(),
                licence: None,
                created_by: settings.actor.clone(),
                approvals_needed: 1,
                import_sha256: Some(sha.clone()),
            };
            let first: Vec<NewUnit> = triples
                .iter()
                .take(batch)
                .map(|t| unit_of(t, &settings.reviewer))
                .collect();
            let (job, added) = store.create_job(&job, &first)?;
            progress(first.len(), triples.len());
            ImportReport {
                job,
                rows: triples.len(),
                added: added.added,
                already_present: added.already_present,
                resumed: false,
                file_sha256: sha.clone(),
            }
        }
    };
    let start = if report.resumed {
        0
    } else {
        batch.min(triples.len())
    };
    let mut done = start;
    for chunk in triples[start..].chunks(batch) {
        let units: Vec<NewUnit> = chunk
            .iter()
            .map(|t| unit_of(t, &settings.reviewer))
            .collect();
        let added = store.add_units(report.job.id, &units, &settings.actor)?;
        report.added += added.added;
        report.already_present += added.already_present;
        done += chunk.len();
        progress(done, triples.len());
    }
    Ok(report)
}
