//! XLIFF in and out of the queue: a job exported for a CAT tool (OmegaT, Trados, …) and post-edited there
//! comes back as reviews ([`read_returned`], [`returned_targets`]), and the XLIFF 2.1 export carries the
//! machine-translation provenance of every segment ([`add_provenance`]).
//!
//! Units, sources and targets are read by the document layer (`oerkit_document`'s XLIFF reader and
//! `read_targets`), so placeholders come back exactly as the queue knows them; this module reads only what
//! that reader leaves out: the translation states, 1.2 `approved="yes"`, and the oerkit job identity the
//! export writes with the XLIFF 2.1 Metadata module (`<mda:metadata>`, namespace [`MDA_NS`]).
//!
//! State mapping (what a returned target means for the queue):
//! - no or empty target, 1.2 `new`/`needs-translation`, 2.x `initial` (the 2.x default): untranslated,
//!   nothing is recorded;
//! - 1.2 `needs-review-*`, `needs-adaptation`, `needs-l10n`: the translator asked for review, nothing is
//!   recorded (the unit stays open in the queue);
//! - 1.2 `translated` (or no state) and 2.x `translated`: an edit when the target differs from the text the
//!   queue shows for the unit; unchanged machine text is not a decision and records nothing;
//! - 1.2 `signed-off`, `final`, `approved="yes"`, 2.x `reviewed`, `final`: confirmed — an accept when the
//!   target equals the text shown, an edit otherwise.

use crate::crowd::UnitStatus;
use crate::error::{Result, ReviewError};
use crate::model::{Job, UnitView};
use crate::store::ReviewStore;
use quick_xml::events::{BytesStart, Event};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Namespace of the XLIFF 2.x Metadata module.
pub const MDA_NS: &str = "urn:oasis:names:tc:xliff:metadata:2.0";
/// `category` of the file-level metadata group naming the oerkit job.
pub const JOB_CATEGORY: &str = "oerkit:job";
/// `category` of the unit-level group with the machine translation's provenance.
pub const PROVENANCE_CATEGORY: &str = "oerkit:mt-provenance";
/// `category` of the unit-level group with the unit's review state.
pub const REVIEW_CATEGORY: &str = "oerkit:review";

/// What a returned target's state means for the queue (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnedState {
    Untranslated,
    NeedsReview,
    Translated,
    Confirmed,
}

/// The meaning of an XLIFF state: `version` is the file's XLIFF version (`1.2`, `2.1`, …).
pub fn classify_state(version: &str, state: Option<&str>, approved: bool) -> ReturnedState {
    if version.starts_with('1') {
        if approved {
            return ReturnedState::Confirmed;
        }
        match state {
            Some("new" | "needs-translation") => ReturnedState::Untranslated,
            Some(
                "needs-review-translation"
                | "needs-review-adaptation"
                | "needs-review-l10n"
                | "needs-adaptation"
                | "needs-l10n",
            ) => ReturnedState::NeedsReview,
            Some("signed-off" | "final") => ReturnedState::Confirmed,
            // `translated`, no state, or a tool's own `x-` state.
            _ => ReturnedState::Translated,
        }
    } else {
        match state.unwrap_or("initial") {
            "translated" => ReturnedState::Translated,
            "reviewed" | "final" => ReturnedState::Confirmed,
            _ => ReturnedState::Untranslated,
        }
    }
}

/// One unit of a returned XLIFF, as the document layer reads it, with its state.
#[derive(Debug, Clone, Serialize)]
pub struct ReturnedSegment {
    /// The unit's key: `resname`/`name`, the id of the unit in the document the job was made from.
    pub key: String,
    /// The XLIFF `id` (with `/segment` for multi-segment 2.x units), for messages.
    pub xliff_id: String,
    pub source: String,
    /// The target with placeholders as the source's tokens; `None` when missing or empty.
    pub target: Option<String>,
    /// The state as written in the file (1.2 `<target state>`, 2.x `<segment state>`).
    pub state_name: Option<String>,
    pub state: ReturnedState,
    /// 1-based line of the unit in the file.
    pub line: u64,
}

/// The job identity the oerkit export writes into the file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobStamp {
    pub job_id: Option<i64>,
    pub job_name: Option<String>,
    pub database: Option<String>,
}

/// A returned XLIFF file.
#[derive(Debug, Clone, Serialize)]
pub struct ReturnedFile {
    pub path: PathBuf,
    pub sha256: String,
    pub version: String,
    pub src_lang: Option<String>,
    pub tgt_lang: Option<String>,
    pub stamp: JobStamp,
    pub segments: Vec<ReturnedSegment>,
}

/// What the scan of the raw XML found for one unit key.
struct Scanned {
    xliff_id: String,
    state: Option<String>,
    approved: bool,
    line: u64,
}

fn line_of(text: &str, offset: usize) -> u64 {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
        + 1
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.try_get_attribute(name)
        .ok()
        .flatten()
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

struct Scan {
    version: String,
    src_lang: Option<String>,
    tgt_lang: Option<String>,
    stamp: JobStamp,
    units: HashMap<String, Scanned>,
}

/// Reads the states, versions, languages and job stamp the document reader does not keep.
fn scan(path: &Path, text: &str) -> Result<Scan> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut out = Scan {
        version: String::new(),
        src_lang: None,
        tgt_lang: None,
        stamp: JobStamp::default(),
        units: HashMap::new(),
    };
    // 1.2: the open trans-unit (key, id, approved, line) and the state of its target.
    let mut trans_unit: Option<(String, String, bool, u64, Option<String>)> = None;
    // 2.x: the open unit (key, id, line) and its segments (id, state, line).
    type Segments = Vec<(Option<String>, Option<String>, u64)>;
    let mut unit: Option<(String, String, u64, Segments)> = None;
    let mut in_job_group = false;
    let mut in_alt_trans = false;
    let mut meta_type: Option<String> = None;
    let mut meta_text = String::new();
    loop {
        let at = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|e| ReviewError::Input {
            path: path.to_path_buf(),
            line: line_of(text, reader.error_position() as usize),
            message: format!(
                "not well-formed XML: {e}; repair the file or export it again from the CAT tool"
            ),
        })?;
        let line = line_of(text, at);
        match &event {
            Event::Start(e) | Event::Empty(e) => {
                let name = e.local_name();
                match name.as_ref() {
                    b"xliff" => {
                        out.version = attr(e, "version").unwrap_or_default();
                        out.src_lang = attr(e, "srcLang").or(out.src_lang.take());
                        out.tgt_lang = attr(e, "trgLang").or(out.tgt_lang.take());
                    }
                    b"file" if out.version.starts_with('1') => {
                        out.src_lang = out.src_lang.take().or(attr(e, "source-language"));
                        out.tgt_lang = out.tgt_lang.take().or(attr(e, "target-language"));
                    }
                    b"trans-unit" if attr(e, "translate").as_deref() != Some("no") => {
                        let id = attr(e, "id").unwrap_or_default();
                        let key = attr(e, "resname").unwrap_or_else(|| id.clone());
                        let approved = attr(e, "approved").as_deref() == Some("yes");
                        trans_unit = Some((key, id, approved, line, None));
                    }
                    b"alt-trans" => in_alt_trans = true,
                    // A candidate's target inside `<alt-trans>` is not the unit's.
                    b"target" if !in_alt_trans => {
                        if let Some(tu) = trans_unit.as_mut() {
                            tu.4 = attr(e, "state");
                        }
                    }
                    b"unit"
                        if !out.version.starts_with('1')
                            && attr(e, "translate").as_deref() != Some("no") =>
                    {
                        let id = attr(e, "id").unwrap_or_default();
                        let key = attr(e, "name").unwrap_or_else(|| id.clone());
                        unit = Some((key, id, line, Vec::new()));
                    }
                    b"segment" => {
                        if let Some(u) = unit.as_mut() {
                            u.3.push((attr(e, "id"), attr(e, "state"), line));
                        }
                    }
                    b"metaGroup" => {
                        in_job_group = attr(e, "category").as_deref() == Some(JOB_CATEGORY);
                    }
                    b"meta" if in_job_group => {
                        meta_type = attr(e, "type");
                        meta_text.clear();
                    }
                    _ => {}
                }
            }
            Event::Text(t) if meta_type.is_some() => {
                meta_text.push_str(&t.unescape().map_err(|e| ReviewError::Input {
                    path: path.to_path_buf(),
                    line,
                    message: format!("bad character reference: {e}"),
                })?);
            }
            Event::End(e) => match e.local_name().as_ref() {
                b"alt-trans" => in_alt_trans = false,
                b"trans-unit" => {
                    if let Some((key, id, approved, line, state)) = trans_unit.take() {
                        out.units.insert(
                            key,
                            Scanned {
                                xliff_id: id,
                                state,
                                approved,
                                line,
                            },
                        );
                    }
                }
                b"unit" => {
                    if let Some((key, id, line, segments)) = unit.take() {
                        let single = segments.len() == 1;
                        for (n, (seg_id, state, seg_line)) in segments.into_iter().enumerate() {
                            let (k, xid) = if single {
                                (key.clone(), id.clone())
                            } else {
                                let s = seg_id.unwrap_or_else(|| (n + 1).to_string());
                                (format!("{key}/{s}"), format!("{id}/{s}"))
                            };
                            out.units.insert(
                                k,
                                Scanned {
                                    xliff_id: xid,
                                    state,
                                    approved: false,
                                    line: if single { line } else { seg_line },
                                },
                            );
                        }
                    }
                }
                b"metaGroup" => in_job_group = false,
                b"meta" => {
                    if let Some(kind) = meta_type.take() {
                        let value = meta_text.trim().to_string();
                        match kind.as_str() {
                            "job-id" => out.stamp.job_id = value.parse().ok(),
                            "job-name" => out.stamp.job_name = Some(value),
                            "database" => out.stamp.database = Some(value),
                            _ => {}
                        }
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a post-edited XLIFF 1.2 or 2.x job: its units (by the document layer), targets, states and the
/// oerkit job stamp. Errors name the file and line.
pub fn read_returned(path: &Path) -> Result<ReturnedFile> {
    let bytes = std::fs::read(path).map_err(|source| ReviewError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let sha256 = hex(&Sha256::digest(&bytes));
    let text = String::from_utf8(bytes).map_err(|e| ReviewError::Input {
        path: path.to_path_buf(),
        line: 0,
        message: format!("not UTF-8 text ({e}); save the XLIFF as UTF-8"),
    })?;
    let body = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let doc = oerkit_document::load_str(path, body, Some(oerkit_document::FormatKind::Xliff))
        .map_err(|e| ReviewError::Invalid(format!("{e}")))?;
    let targets =
        oerkit_document::formats::xliff::read_targets(body).map_err(|e| ReviewError::Input {
            path: path.to_path_buf(),
            line: e.line as u64,
            message: e.message.clone(),
        })?;
    let scan = scan(path, body)?;
    if scan.version.is_empty() {
        return Err(ReviewError::Input {
            path: path.to_path_buf(),
            line: 1,
            message: "the <xliff> element has no version; oerkit reads XLIFF 1.2 and 2.x".into(),
        });
    }
    let mut segments = Vec::with_capacity(doc.units.len());
    for (unit, target) in doc.units.iter().zip(targets) {
        let key = unit.key.clone().unwrap_or_else(|| unit.id.clone());
        let scanned = scan.units.get(&key);
        let state_name = scanned.and_then(|s| s.state.clone());
        let approved = scanned.is_some_and(|s| s.approved);
        let state = match &target {
            None => ReturnedState::Untranslated,
            Some(_) => classify_state(&scan.version, state_name.as_deref(), approved),
        };
        segments.push(ReturnedSegment {
            key: unit.id.clone(),
            xliff_id: scanned
                .map(|s| s.xliff_id.clone())
                .unwrap_or_else(|| unit.context.clone()),
            source: unit.text.clone(),
            target,
            state_name,
            state,
            line: scanned.map_or(0, |s| s.line),
        });
    }
    Ok(ReturnedFile {
        path: path.to_path_buf(),
        sha256,
        version: scan.version,
        src_lang: scan.src_lang,
        tgt_lang: scan.tgt_lang,
        stamp: scan.stamp,
        segments,
    })
}

/// A short public fingerprint of a review database (from its secret salt), so an XLIFF exported from one
/// database is not taken for a job of another.
pub fn database_fingerprint(store: &dyn ReviewStore) -> Result<String> {
    let mut h = Sha256::new();
    h.update(b"oerkit-review-database\0");
    h.update(store.pseudonym_salt()?.as_bytes());
    Ok(hex(&h.finalize()[..8]))
}

/// One target to record: the queue unit, its returned text and what its state means.
#[derive(Debug, Clone, Serialize)]
pub struct ReturnedTarget {
    pub unit_id: i64,
    pub ext_id: String,
    pub xliff_id: String,
    pub line: u64,
    pub text: Option<String>,
    pub state: ReturnedState,
    pub state_name: Option<String>,
}

/// What the import did with one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportResult {
    /// Recorded as an accept of the text the queue showed.
    Accept,
    /// Recorded as an edit.
    Edit,
    /// No target (or an untranslated state): nothing recorded.
    Untranslated,
    /// The translator asked for review: nothing recorded.
    NeedsReview,
    /// Translated but equal to the text the queue showed, not confirmed: not a decision.
    Unchanged,
    /// This reviewer's latest review of the unit already has this text (the file was imported before).
    AlreadyRecorded,
    /// Refused (placeholders dropped, added or broken): nothing recorded for this unit.
    Refused,
}

/// The outcome of one returned unit.
#[derive(Debug, Clone, Serialize)]
pub struct UnitImport {
    pub unit_id: i64,
    pub ext_id: String,
    pub xliff_id: String,
    pub line: u64,
    pub state: Option<String>,
    pub result: ImportResult,
    pub review_id: Option<i64>,
    pub status: Option<UnitStatus>,
    /// Why a unit was refused, and what to do.
    pub message: Option<String>,
}

/// Counts of an XLIFF import by result.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportCounts {
    pub accept: usize,
    pub edit: usize,
    pub untranslated: usize,
    pub needs_review: usize,
    pub unchanged: usize,
    pub already_recorded: usize,
    pub refused: usize,
}

impl ImportCounts {
    pub fn of(units: &[UnitImport]) -> Self {
        let mut c = ImportCounts::default();
        for u in units {
            *match u.result {
                ImportResult::Accept => &mut c.accept,
                ImportResult::Edit => &mut c.edit,
                ImportResult::Untranslated => &mut c.untranslated,
                ImportResult::NeedsReview => &mut c.needs_review,
                ImportResult::Unchanged => &mut c.unchanged,
                ImportResult::AlreadyRecorded => &mut c.already_recorded,
                ImportResult::Refused => &mut c.refused,
            } += 1;
        }
        c
    }
}

/// What `review import` did.
#[derive(Debug, Clone, Serialize)]
pub struct XliffImportReport {
    pub job: Job,
    pub file: PathBuf,
    pub sha256: String,
    pub version: String,
    pub reviewer: String,
    pub counts: ImportCounts,
    pub units: Vec<UnitImport>,
}

fn lang_matches(a: &str, b: &str) -> bool {
    a.replace('_', "-")
        .eq_ignore_ascii_case(&b.replace('_', "-"))
}

/// Matches a returned file to its job and checks that it is that job's: the stamp (job id, name and
/// database) when the file has one, else `job_hint`; the languages; every unit's id and source. Nothing is
/// written; the error says what does not match.
pub fn match_job(
    store: &dyn ReviewStore,
    file: &ReturnedFile,
    job_hint: Option<&str>,
) -> Result<(Job, Vec<ReturnedTarget>)> {
    let foreign = |message: String| ReviewError::ForeignXliff {
        path: file.path.clone(),
        message,
    };
    let hinted = job_hint.map(|j| store.job(j)).transpose()?;
    let job = match (file.stamp.job_id, hinted) {
        (Some(id), hinted) => {
            if let Some(db) = &file.stamp.database {
                if *db != database_fingerprint(store)? {
                    return Err(foreign(format!(
                        "it was exported from another review database (fingerprint {db}); import it into that database"
                    )));
                }
            }
            let job = store.job(&id.to_string()).map_err(|_| {
                foreign(format!(
                    "it names job {id}, which this database does not have"
                ))
            })?;
            if let Some(name) = &file.stamp.job_name {
                if *name != job.name {
                    return Err(foreign(format!(
                        "it names job {id} {name:?}, but job {id} here is {:?}",
                        job.name
                    )));
                }
            }
            if let Some(h) = hinted {
                if h.id != job.id {
                    return Err(foreign(format!(
                        "it belongs to job {} ({}), not to job {} ({}) given with --job",
                        job.name, job.id, h.name, h.id
                    )));
                }
            }
            job
        }
        (None, Some(job)) => job,
        (None, None) => {
            return Err(foreign(
                "it carries no oerkit job stamp (not exported by `oerkit export --format xliff`, or the CAT tool dropped its metadata); name the job with --job".into(),
            ))
        }
    };
    for (what, file_lang, job_lang) in [
        ("source", &file.src_lang, &job.src_lang),
        ("target", &file.tgt_lang, &job.tgt_lang),
    ] {
        if let Some(l) = file_lang {
            if !lang_matches(l, job_lang) {
                return Err(foreign(format!(
                    "its {what} language is {l}, job {} is {}-{}",
                    job.name, job.src_lang, job.tgt_lang
                )));
            }
        }
    }
    let units: HashMap<String, (i64, String)> = store
        .units_of(job.id)?
        .into_iter()
        .map(|u| (u.ext_id, (u.id, u.source)))
        .collect();
    let collapse = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut problems = Vec::new();
    let mut targets = Vec::with_capacity(file.segments.len());
    for seg in &file.segments {
        match units.get(&seg.key) {
            None => problems.push(format!(
                "line {}: unit {} ({:?}) is not in job {}",
                seg.line, seg.xliff_id, seg.key, job.name
            )),
            Some((_, source)) if collapse(source) != collapse(&seg.source) => {
                problems.push(format!(
                    "line {}: the source of unit {} differs from the job's ({:?} here, {:?} in the job)",
                    seg.line, seg.xliff_id, seg.source, source
                ))
            }
            Some((unit_id, _)) => targets.push(ReturnedTarget {
                unit_id: *unit_id,
                ext_id: seg.key.clone(),
                xliff_id: seg.xliff_id.clone(),
                line: seg.line,
                text: seg.target.clone(),
                state: seg.state,
                state_name: seg.state_name.clone(),
            }),
        }
    }
    if !problems.is_empty() {
        let shown = problems.len().min(5);
        let more = if problems.len() > shown {
            format!(" (and {} more)", problems.len() - shown)
        } else {
            String::new()
        };
        return Err(foreign(format!(
            "it is not a file of job {}: {}{more}",
            job.name,
            problems[..shown].join("; ")
        )));
    }
    if targets.is_empty() {
        return Err(foreign(format!(
            "it has no translatable units; job {} has {}",
            job.name,
            units.len()
        )));
    }
    Ok((job, targets))
}

/// Imports a post-edited XLIFF as `reviewer`'s reviews of its job, in one transaction (see the module
/// documentation for the state mapping). Units whose target breaks placeholders are refused one by one
/// and reported; the rest are recorded. Importing the same file again records nothing new.
pub fn import_xliff(
    store: &mut dyn ReviewStore,
    path: &Path,
    job_hint: Option<&str>,
    reviewer: &str,
) -> Result<XliffImportReport> {
    let file = read_returned(path)?;
    let (job, targets) = match_job(store, &file, job_hint)?;
    let units = store.import_returned(job.id, reviewer, &targets, &file.path, &file.sha256)?;
    Ok(XliffImportReport {
        job,
        file: file.path,
        sha256: file.sha256,
        version: file.version,
        reviewer: reviewer.trim().to_string(),
        counts: ImportCounts::of(&units),
        units,
    })
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

fn meta_group(
    out: &mut String,
    indent: &str,
    category: &str,
    applies_to: Option<&str>,
    metas: &[(&str, String)],
) {
    let applies = applies_to
        .map(|a| format!(" appliesTo=\"{a}\""))
        .unwrap_or_default();
    out.push_str(&format!(
        "{indent}<mda:metaGroup category=\"{category}\"{applies}>\n"
    ));
    for (kind, value) in metas {
        out.push_str(&format!(
            "{indent}  <mda:meta type=\"{kind}\">{}</mda:meta>\n",
            escape(value)
        ));
    }
    out.push_str(&format!("{indent}</mda:metaGroup>\n"));
}

/// The unit-level `<mda:metadata>` of one queue unit: its review state, and the provenance of the
/// suggestion the queue shows first (engine, model id and file sha256, prompt template version, decoding
/// parameters, time taken, when it was made; or the memory match and its score).
fn unit_metadata(unit: &UnitView) -> String {
    let mut out = String::from("\n      <mda:metadata>\n");
    let target_kind = if unit.approved_text.is_some() {
        "approved"
    } else if !unit.candidates.is_empty() {
        "candidate"
    } else if unit.suggestions.is_empty() {
        "none"
    } else {
        "suggestion"
    };
    meta_group(
        &mut out,
        "        ",
        REVIEW_CATEGORY,
        Some("target"),
        &[
            ("unit-id", unit.id.to_string()),
            ("status", unit.status.as_str().to_string()),
            ("target-is", target_kind.to_string()),
            ("reviews", unit.reviews.len().to_string()),
        ],
    );
    if let Some(s) = unit.primary_suggestion() {
        let mut metas = vec![
            ("suggestion-id", s.id.to_string()),
            ("origin", s.origin.as_str().to_string()),
        ];
        let optional = [
            ("engine", s.engine.clone()),
            ("model-id", s.model_id.clone()),
            ("model-sha256", s.model_sha256.clone()),
            ("prompt-template-version", s.prompt_template_version.clone()),
            (
                "decoding",
                s.decoding_params.as_ref().map(|p| p.to_string()),
            ),
            ("time-taken-ms", s.time_taken_ms.map(|t| t.to_string())),
            ("quality-score", s.quality_score.map(|q| q.to_string())),
            ("tm-score", s.tm_score.map(|q| q.to_string())),
            ("created-at", Some(s.created_at.clone())),
            ("text", Some(s.text.clone())),
        ];
        metas.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
        meta_group(
            &mut out,
            "        ",
            PROVENANCE_CATEGORY,
            Some("target"),
            &metas,
        );
    }
    out.push_str("      </mda:metadata>");
    out
}

/// Adds the XLIFF 2.1 Metadata module to a job written by `oerkit_document`'s `to_xliff` (2.1): the
/// file-level job stamp ([`JOB_CATEGORY`]: job id, name, database fingerprint) that `review import`
/// checks, and on every unit whose queue unit is given (`units[i]` for the file's `i`-th `<unit>`) its
/// review state and machine-translation provenance. Metadata module elements are the first children of
/// `<file>` and `<unit>`, where XLIFF 2.1 puts module elements, so the file stays valid.
pub fn add_provenance(xliff: &str, stamp: &JobStamp, units: &[Option<UnitView>]) -> Result<String> {
    let bug = |what: &str| {
        ReviewError::Invalid(format!(
            "cannot add provenance to the XLIFF export ({what}); this is a bug"
        ))
    };
    let mut inserts: Vec<(usize, String)> = Vec::new();
    let mut reader = quick_xml::Reader::from_str(xliff);
    let mut unit_index = 0usize;
    loop {
        let event = reader.read_event().map_err(|e| bug(&e.to_string()))?;
        let end = reader.buffer_position() as usize;
        match event {
            Event::Start(e) => match e.local_name().as_ref() {
                b"xliff" => {
                    // Right after `<xliff`: the namespace declaration of the module.
                    let at = end - (e.len() + 2) + "<xliff".len();
                    inserts.push((at, format!(" xmlns:mda=\"{MDA_NS}\"")));
                }
                b"file" => {
                    let mut block = String::from("\n    <mda:metadata>\n");
                    let mut metas = Vec::new();
                    if let Some(id) = stamp.job_id {
                        metas.push(("job-id", id.to_string()));
                    }
                    if let Some(name) = &stamp.job_name {
                        metas.push(("job-name", name.clone()));
                    }
                    if let Some(db) = &stamp.database {
                        metas.push(("database", db.clone()));
                    }
                    metas.push((
                        "exported-by",
                        format!("oerkit {}", env!("CARGO_PKG_VERSION")),
                    ));
                    meta_group(&mut block, "      ", JOB_CATEGORY, None, &metas);
                    block.push_str("    </mda:metadata>");
                    inserts.push((end, block));
                }
                b"unit" => {
                    if let Some(Some(view)) = units.get(unit_index) {
                        inserts.push((end, unit_metadata(view)));
                    }
                    unit_index += 1;
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    if unit_index != units.len() {
        return Err(bug(&format!(
            "{unit_index} units in the file, {} expected",
            units.len()
        )));
    }
    let mut out = String::with_capacity(xliff.len() + inserts.len() * 600);
    let mut cursor = 0;
    for (at, text) in inserts {
        out.push_str(&xliff[cursor..at]);
        out.push_str(&text);
        cursor = at;
    }
    out.push_str(&xliff[cursor..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_map_by_version() {
        use ReturnedState::*;
        for (state, want) in [
            (Some("new"), Untranslated),
            (Some("needs-translation"), Untranslated),
            (Some("needs-review-translation"), NeedsReview),
            (Some("needs-l10n"), NeedsReview),
            (Some("translated"), Translated),
            (None, Translated),
            (Some("signed-off"), Confirmed),
            (Some("final"), Confirmed),
        ] {
            assert_eq!(classify_state("1.2", state, false), want, "{state:?}");
        }
        assert_eq!(classify_state("1.2", Some("new"), true), Confirmed);
        for (state, want) in [
            (None, Untranslated),
            (Some("initial"), Untranslated),
            (Some("translated"), Translated),
            (Some("reviewed"), Confirmed),
            (Some("final"), Confirmed),
        ] {
            assert_eq!(classify_state("2.1", state, false), want, "{state:?}");
        }
    }
}
