//! The storage interface of the review queue. SQLite ([`crate::SqliteStore`]) implements it for one machine;
//! a PostgreSQL backend for shared deployments implements the same trait.

use crate::crowd::Agreement;
use crate::error::Result;
use crate::model::*;
use crate::xliff::{ReturnedTarget, UnitImport};
use std::path::Path;

/// Default similarity a memory match needs to be offered as a fuzzy suggestion.
pub const DEFAULT_TM_THRESHOLD: f64 = 0.75;

/// How many units were added to a job and how many were already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Added {
    pub added: usize,
    pub already_present: usize,
}

/// Everything the CLI, the translate command and exports need from a review store. Every write is one
/// transaction: it happens completely, with its events, or not at all.
pub trait ReviewStore {
    /// Creates a job and its units (with their suggestions; memory matches are added automatically).
    fn create_job(&mut self, job: &NewJob, units: &[NewUnit]) -> Result<(Job, Added)>;
    /// Adds units to a job, skipping those whose `ext_id` is already there (so an interrupted import resumes).
    fn add_units(&mut self, job_id: i64, units: &[NewUnit], actor: &str) -> Result<Added>;
    /// A job by name or numeric id.
    fn job(&self, name_or_id: &str) -> Result<Job>;
    /// The job created by importing the file with this sha256, if any.
    fn job_by_import(&self, sha256: &str) -> Result<Option<Job>>;
    /// All jobs with their counts.
    fn status(&self) -> Result<Vec<JobStatus>>;
    /// Changes how many approvals a unit of the job needs; statuses are recomputed.
    fn set_approvals_needed(&mut self, job_id: i64, approvals: u32, actor: &str) -> Result<()>;
    fn unit(&self, unit_id: i64) -> Result<UnitView>;
    /// The units of a job in document order.
    fn units_of(&self, job_id: i64) -> Result<Vec<UnitRow>>;
    /// The next unit that is neither approved nor rejected and that this reviewer has not decided yet.
    fn next_unit(&self, job_id: Option<i64>, reviewer: &str) -> Result<Option<UnitView>>;
    /// Records a review (refused, with nothing changed, when the text breaks placeholders).
    fn submit(&mut self, review: &NewReview) -> Result<ReviewOutcome>;
    /// The event log of a unit, oldest first.
    fn history(&self, unit_id: i64) -> Result<Vec<Event>>;
    /// The event log of a job (including its units), oldest first.
    fn job_events(&self, job_id: i64) -> Result<Vec<Event>>;
    /// Memory matches for a source text, best first, at or above `threshold` (0–1).
    fn tm_matches(
        &self,
        src_lang: &str,
        tgt_lang: &str,
        source: &str,
        threshold: f64,
        limit: usize,
    ) -> Result<Vec<TmMatch>>;
    /// The similarity a memory match needs to be offered (stored per database; default 0.75).
    fn tm_threshold(&self) -> Result<f64>;
    fn set_tm_threshold(&mut self, threshold: f64, actor: &str) -> Result<()>;
    fn agreement(&self, job_id: i64) -> Result<Agreement>;
    /// Every review of the job with its unit and suggestion, in review order.
    fn research_rows(&self, job_id: i64) -> Result<Vec<ResearchRow>>;
    fn approved_pairs(&self, job_id: i64) -> Result<Vec<ApprovedPair>>;
    /// Records the targets of a post-edited XLIFF as `reviewer`'s reviews of job `job_id`, in one
    /// transaction with one `xliff_imported` event (see [`crate::xliff`] for what each state means).
    /// A target that breaks placeholders is refused on its own and reported; a target this reviewer's
    /// latest review already has is not recorded again.
    fn import_returned(
        &mut self,
        job_id: i64,
        reviewer: &str,
        targets: &[ReturnedTarget],
        file: &Path,
        file_sha256: &str,
    ) -> Result<Vec<UnitImport>>;
    /// The per-database secret used to pseudonymise reviewer names in exports.
    fn pseudonym_salt(&self) -> Result<String>;
}
