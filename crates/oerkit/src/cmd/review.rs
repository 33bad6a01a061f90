//! `oerkit review`: the human review queue on the command line (status, next, accept, edit, reject,
//! comment, history, queue, import (a post-edited XLIFF), import-triples, configure). Every command takes `--db`, `--reviewer` (or
//! `OERKIT_REVIEWER`) and `--json`; results go to stdout, confirmations and progress to stderr.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use oerkit_review::import::{import_triples, TripleImport};
use oerkit_review::{Action, NewJob, NewReview, NewUnit, ReviewStore, SqliteStore, UnitView};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Options shared by every review command (and by `oerkit export`).
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// The review database (created when missing).
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        default_value = "oerkit-review.db"
    )]
    pub db: PathBuf,
    /// Who is reviewing (recorded with every action).
    #[arg(long, global = true, env = "OERKIT_REVIEWER", value_name = "NAME")]
    pub reviewer: Option<String>,
    /// Machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
}

impl StoreArgs {
    pub fn open(&self) -> Result<SqliteStore> {
        Ok(SqliteStore::open(&self.db)?)
    }

    fn reviewer(&self) -> Result<String> {
        match self.reviewer.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => Ok(name.to_string()),
            _ => bail!("no reviewer name: pass --reviewer NAME or set OERKIT_REVIEWER"),
        }
    }
}

#[derive(Args, Debug)]
pub struct ReviewArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: ReviewCommand,
}

/// Client-reported effort, recorded with the review.
#[derive(Args, Debug, Clone, Default)]
struct Effort {
    /// Active editing time in milliseconds, as measured by the client.
    #[arg(long, value_name = "MS")]
    active_ms: Option<i64>,
    /// Keystrokes, as counted by the client.
    #[arg(long, value_name = "N")]
    keystrokes: Option<i64>,
    /// When the reviewer started on the unit (RFC 3339).
    #[arg(long, value_name = "TIME")]
    started_at: Option<String>,
}

#[derive(Subcommand, Debug)]
enum ReviewCommand {
    /// Per job: units, suggested, in review, conflicts, approved, rejected (with --job: agreement too).
    Status {
        #[arg(long, value_name = "JOB")]
        job: Option<String>,
    },
    /// Show the next unit that needs this reviewer.
    Next {
        #[arg(long, value_name = "JOB")]
        job: Option<String>,
    },
    /// Show one unit with its suggestions, candidates and reviews.
    Show { id: i64 },
    /// Accept the text shown for the unit (the approved or leading candidate, else the first suggestion).
    Accept {
        id: i64,
        #[command(flatten)]
        effort: Effort,
    },
    /// Correct the unit; without --text, opens $EDITOR and measures the editing time.
    Edit {
        id: i64,
        #[arg(long, value_name = "TEXT")]
        text: Option<String>,
        #[command(flatten)]
        effort: Effort,
    },
    /// Reject the unit's suggestion.
    Reject {
        id: i64,
        #[arg(long, value_name = "REASON")]
        reason: String,
        #[command(flatten)]
        effort: Effort,
    },
    /// Comment on the unit (does not decide it).
    Comment {
        id: i64,
        #[arg(long, value_name = "TEXT")]
        text: String,
    },
    /// The unit's complete event log, oldest first.
    History { id: i64 },
    /// Queue the translatable units of a document (any format the document layer reads) for review;
    /// approved work in the memory is offered on every unit it matches.
    Queue {
        file: PathBuf,
        #[arg(long, value_name = "LANG")]
        src_lang: String,
        #[arg(long, value_name = "LANG")]
        tgt_lang: String,
        /// Job name (default: the file name).
        #[arg(long, value_name = "NAME")]
        job: Option<String>,
        /// The document's licence (SPDX id) when the file does not state it.
        #[arg(long, value_name = "SPDX")]
        license: Option<String>,
    },
    /// Load (id, src, mt[, pe, hter]) rows, such as MLQE-PE, as a job; resumes an interrupted import.
    ImportTriples {
        file: PathBuf,
        #[arg(long, value_name = "LANG")]
        src_lang: String,
        #[arg(long, value_name = "LANG")]
        tgt_lang: String,
        /// Job name (default: `<folder>/<file stem>`).
        #[arg(long, value_name = "NAME")]
        job: Option<String>,
        /// Rows per transaction.
        #[arg(long, default_value_t = 200)]
        batch: usize,
    },
    /// Bring back a job post-edited in a CAT tool (XLIFF 1.2 or 2.x) as this reviewer's reviews. A target
    /// marked signed-off/final/approved (1.2) or reviewed/final (2.x) is an accept when unchanged, an edit
    /// otherwise; a translated target is an edit when changed; untranslated and needs-review targets
    /// record nothing. A target that drops or adds placeholders is refused on its own (listed, exit
    /// status 2) while the rest is recorded; importing the same file again records nothing new.
    Import {
        file: PathBuf,
        /// The job (name or id); needed when the file has no oerkit job stamp, checked when it has one.
        #[arg(long, value_name = "JOB")]
        job: Option<String>,
    },
    /// Change settings: approvals a unit of a job needs, the memory's fuzzy-match threshold.
    Configure {
        #[arg(long, value_name = "JOB", requires = "approvals")]
        job: Option<String>,
        /// How many reviewers must approve the same text (with --job).
        #[arg(long, value_name = "N", requires = "job")]
        approvals: Option<u32>,
        /// Similarity (0–1) a memory match needs to be offered; default 0.75.
        #[arg(long, value_name = "X")]
        tm_threshold: Option<f64>,
    },
}

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

pub fn run(args: ReviewArgs) -> Result<ExitCode> {
    let s = &args.store;
    match args.command {
        ReviewCommand::Status { job } => status(s, job.as_deref()),
        ReviewCommand::Next { job } => next(s, job.as_deref()),
        ReviewCommand::Show { id } => {
            let unit = s.open()?.unit(id)?;
            if s.json {
                print_json(&unit)?;
            } else {
                print_unit(&unit);
            }
            Ok(ExitCode::SUCCESS)
        }
        ReviewCommand::Accept { id, effort } => submit(s, id, Action::Accept, None, None, effort),
        ReviewCommand::Edit {
            id,
            text: Some(text),
            effort,
        } => submit(s, id, Action::Edit, Some(text), None, effort),
        ReviewCommand::Edit {
            id,
            text: None,
            effort,
        } => edit_in_editor(s, id, effort),
        ReviewCommand::Reject { id, reason, effort } => {
            submit(s, id, Action::Reject, None, Some(reason), effort)
        }
        ReviewCommand::Comment { id, text } => {
            submit(s, id, Action::Comment, None, Some(text), Effort::default())
        }
        ReviewCommand::History { id } => history(s, id),
        ReviewCommand::Queue {
            file,
            src_lang,
            tgt_lang,
            job,
            license,
        } => queue(s, &file, src_lang, tgt_lang, job, license),
        ReviewCommand::ImportTriples {
            file,
            src_lang,
            tgt_lang,
            job,
            batch,
        } => import(s, &file, src_lang, tgt_lang, job, batch),
        ReviewCommand::Import { file, job } => import_xliff(s, &file, job.as_deref()),
        ReviewCommand::Configure {
            job,
            approvals,
            tm_threshold,
        } => {
            let mut store = s.open()?;
            let actor = s.reviewer.clone().unwrap_or_else(|| "oerkit".into());
            let mut changed_job = None;
            if let (Some(job), Some(n)) = (job, approvals) {
                let job = store.job(&job)?;
                store.set_approvals_needed(job.id, n, &actor)?;
                eprintln!("job {}: {n} approval(s) needed per unit", job.name);
                changed_job = Some(store.job(&job.id.to_string())?);
            }
            if let Some(t) = tm_threshold {
                store.set_tm_threshold(t, &actor)?;
                eprintln!("memory matches offered from {:.0}% similarity", t * 100.0);
            }
            if s.json {
                print_json(
                    &serde_json::json!({"job": changed_job, "tm_threshold": store.tm_threshold()?}),
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn status(s: &StoreArgs, job: Option<&str>) -> Result<ExitCode> {
    let store = s.open()?;
    let mut jobs = store.status()?;
    if let Some(name) = job {
        let wanted = store.job(name)?;
        jobs.retain(|j| j.job.id == wanted.id);
    }
    let agreement = match job {
        Some(_) => jobs
            .first()
            .map(|j| store.agreement(j.job.id))
            .transpose()?,
        None => None,
    };
    if s.json {
        match agreement {
            Some(a) => print_json(&serde_json::json!({"jobs": jobs, "agreement": a}))?,
            None => print_json(&serde_json::json!({"jobs": jobs}))?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    if jobs.is_empty() {
        eprintln!(
            "no jobs in {} yet (import-triples or `oerkit translate --queue` add them)",
            s.db.display()
        );
    } else {
        println!(
            "{:<5} {:<30} {:>7} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7} {:>9}",
            "id",
            "job",
            "pair",
            "units",
            "suggested",
            "in_review",
            "conflict",
            "approved",
            "rejected",
            "reviews"
        );
    }
    for j in &jobs {
        println!(
            "{:<5} {:<30} {:>7} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7}",
            j.job.id,
            j.job.name,
            format!("{}-{}", j.job.src_lang, j.job.tgt_lang),
            j.units,
            j.suggested,
            j.in_review,
            j.conflict,
            j.approved,
            j.rejected,
            j.reviews
        );
    }
    if let Some(a) = agreement {
        let pct = |x: Option<f64>| {
            x.map(|v| format!("{:.1}%", v * 100.0))
                .unwrap_or_else(|| "n/a".into())
        };
        println!(
            "agreement: {} units with 2+ reviewers, {} pairs; same decision {}, same text {}, alpha {}",
            a.units_compared,
            a.pairs,
            pct(a.decision_agreement),
            pct(a.text_agreement),
            a.krippendorff_alpha.map(|v| format!("{v:.3}")).unwrap_or_else(|| "n/a".into())
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_unit(u: &UnitView) {
    println!(
        "unit {}  job {}  #{}  {}  status {}",
        u.id,
        u.job_name,
        u.order,
        u.ext_id,
        u.status.as_str()
    );
    if !u.context.is_empty() {
        println!("context:   {}", u.context);
    }
    println!("source:    {}", u.source);
    for s in &u.suggestions {
        let label = match (s.origin, s.tm_score) {
            (oerkit_review::SuggestionOrigin::Tm, Some(score)) => {
                format!("memory {:.0}%", score * 100.0)
            }
            (origin, _) => {
                let model = s.model_id.as_deref().or(s.engine.as_deref()).unwrap_or("");
                format!("{} {model}", origin.as_str())
            }
        };
        println!("{:<10} {}", format!("{label}:"), s.text);
    }
    for c in &u.candidates {
        println!(
            "candidate ({} approval(s): {}): {}",
            c.approvals,
            c.reviewers.join(", "),
            c.text
        );
    }
    if let Some(t) = &u.approved_text {
        println!("approved:  {t}");
    }
}

fn next(s: &StoreArgs, job: Option<&str>) -> Result<ExitCode> {
    let store = s.open()?;
    let reviewer = s.reviewer()?;
    let job_id = job.map(|j| store.job(j)).transpose()?.map(|j| j.id);
    let unit = store.next_unit(job_id, &reviewer)?;
    if s.json {
        print_json(&unit)?;
    } else {
        match &unit {
            Some(u) => print_unit(u),
            None => eprintln!("nothing left for {reviewer} to review"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn submit(
    s: &StoreArgs,
    id: i64,
    action: Action,
    text: Option<String>,
    comment: Option<String>,
    effort: Effort,
) -> Result<ExitCode> {
    let mut store = s.open()?;
    let mut review = NewReview::new(id, s.reviewer()?, action);
    review.text = text;
    review.comment = comment;
    review.active_ms = effort.active_ms;
    review.keystrokes = effort.keystrokes;
    review.started_at = effort.started_at;
    let outcome = store.submit(&review)?;
    if s.json {
        print_json(&outcome)?;
    } else {
        eprintln!(
            "unit {}: {} recorded (review {}); unit is {}",
            outcome.unit_id,
            action.as_str(),
            outcome.review_id,
            outcome.status.as_str()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens `$EDITOR` (run through `sh`, so it may carry arguments) on the text shown for the unit and
/// records the result as an edit, with the time the editor was open as active editing time.
fn edit_in_editor(s: &StoreArgs, id: i64, effort: Effort) -> Result<ExitCode> {
    // Fail on a missing reviewer name before the editor opens, not after the work is done.
    s.reviewer()?;
    let unit = s.open()?.unit(id)?;
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .or_else(|| {
            std::env::var("EDITOR")
                .ok()
                .filter(|e| !e.trim().is_empty())
        })
        .context("no editor: set $EDITOR, or pass the corrected text with --text")?;
    let shown = unit.current_text.clone().unwrap_or_default();
    let dir = tempfile::tempdir().context("cannot create a temporary folder for the editor")?;
    let file = dir.path().join(format!("oerkit-unit-{id}.txt"));
    std::fs::write(&file, format!("{shown}\n"))
        .with_context(|| format!("cannot write {}", file.display()))?;
    let started_at = oerkit_review::sqlite::now();
    let clock = Instant::now();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&file)
        .status()
        .with_context(|| format!("cannot run the editor {editor:?}"))?;
    let active_ms = clock.elapsed().as_millis() as i64;
    if !status.success() {
        bail!("the editor {editor:?} exited with {status}; nothing was recorded for unit {id}");
    }
    let edited = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let edited = edited.strip_suffix('\n').unwrap_or(&edited);
    let edited = edited.strip_suffix('\r').unwrap_or(edited).to_string();
    if edited == shown {
        bail!("the text of unit {id} is unchanged; nothing was recorded (use `oerkit review accept {id}` to accept it)");
    }
    let effort = Effort {
        active_ms: effort.active_ms.or(Some(active_ms)),
        keystrokes: effort.keystrokes,
        started_at: effort.started_at.or(Some(started_at)),
    };
    submit(s, id, Action::Edit, Some(edited), None, effort)
}

fn history(s: &StoreArgs, id: i64) -> Result<ExitCode> {
    let events = s.open()?.history(id)?;
    if s.json {
        for e in &events {
            print_json(e)?;
        }
    } else {
        for e in &events {
            println!("{}  {:<12} {:<16} {}", e.at, e.actor, e.kind, e.payload);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn import(
    s: &StoreArgs,
    file: &Path,
    src_lang: String,
    tgt_lang: String,
    job: Option<String>,
    batch: usize,
) -> Result<ExitCode> {
    let mut store = s.open()?;
    let settings = TripleImport {
        path: file.to_path_buf(),
        src_lang,
        tgt_lang,
        job_name: job,
        reviewer: s
            .reviewer
            .clone()
            .unwrap_or_else(|| "external post-editor".into()),
        actor: s.reviewer.clone().unwrap_or_else(|| "oerkit".into()),
        batch_size: batch,
    };
    let bar = indicatif::ProgressBar::new(0);
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    let report = import_triples(&mut store, &settings, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    if s.json {
        print_json(&report)?;
    } else {
        eprintln!(
            "{}: job {} ({}): {} rows, {} added, {} already there{}",
            file.display(),
            report.job.name,
            report.job.id,
            report.rows,
            report.added,
            report.already_present,
            if report.resumed { " (resumed)" } else { "" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn import_xliff(s: &StoreArgs, file: &Path, job: Option<&str>) -> Result<ExitCode> {
    let reviewer = s.reviewer()?;
    let mut store = s.open()?;
    let report = oerkit_review::xliff::import_xliff(&mut store, file, job, &reviewer)?;
    let c = &report.counts;
    if s.json {
        print_json(&report)?;
    }
    for u in &report.units {
        if let Some(message) = &u.message {
            eprintln!("{}: refused: {message}", file.display());
        }
    }
    eprintln!(
        "{}: job {} ({}), reviews by {}: {} accepted, {} edited; {} unchanged, {} untranslated, {} needing review, {} already recorded, {} refused",
        file.display(),
        report.job.name,
        report.job.id,
        report.reviewer,
        c.accept,
        c.edit,
        c.unchanged,
        c.untranslated,
        c.needs_review,
        c.already_recorded,
        c.refused
    );
    Ok(if c.refused > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn queue(
    s: &StoreArgs,
    file: &Path,
    src_lang: String,
    tgt_lang: String,
    job: Option<String>,
    license: Option<String>,
) -> Result<ExitCode> {
    let doc = oerkit_document::load(file, None)?;
    // The document is read again at export time, so the job remembers where it is.
    let resource = std::fs::canonicalize(file)
        .with_context(|| format!("{}: cannot resolve the path", file.display()))?;
    let units: Vec<NewUnit> = doc
        .units
        .iter()
        .filter(|u| oerkit_document::placeholder::has_translatable_text(&u.text))
        .map(|u| NewUnit {
            ext_id: u.id.clone(),
            source: u.text.clone(),
            context: u.context.clone(),
            suggestions: Vec::new(),
            imported_review: None,
        })
        .collect();
    let creator = s.reviewer.clone().unwrap_or_else(|| "oerkit".into());
    let name = job.unwrap_or_else(|| {
        file.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| file.display().to_string())
    });
    let new_job = NewJob {
        name,
        resource: resource.display().to_string(),
        src_lang,
        tgt_lang,
        licence: oerkit_document::license::detect(
            &doc.meta,
            &resource,
            Path::new("/"),
            license.as_deref(),
        )
        .and_then(|d| d.spdx),
        created_by: creator,
        approvals_needed: 1,
        import_sha256: None,
    };
    let (job, added) = s.open()?.create_job(&new_job, &units)?;
    if s.json {
        print_json(&serde_json::json!({"job": job, "units": added.added}))?;
    } else {
        eprintln!(
            "{}: job {} ({}) with {} units",
            file.display(),
            job.name,
            job.id,
            added.added
        );
    }
    Ok(ExitCode::SUCCESS)
}
