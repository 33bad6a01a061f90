//! The records the review store keeps and hands out.

use crate::crowd::{Candidate, UnitStatus};
use serde::{Deserialize, Serialize};

/// A new job: one resource to translate from one language into another.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewJob {
    /// Unique, human-readable job name (`oerkit review status` lists them).
    pub name: String,
    /// What is being translated: a path, URL or identifier of the resource.
    pub resource: String,
    pub src_lang: String,
    pub tgt_lang: String,
    pub licence: Option<String>,
    pub created_by: String,
    /// How many reviewers must approve the same text before a unit is approved (at least 1).
    pub approvals_needed: u32,
    /// sha256 of the imported file, for jobs created by an import (makes the import resumable).
    pub import_sha256: Option<String>,
}

/// Where a suggestion came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SuggestionOrigin {
    /// A machine-translation engine.
    Mt,
    /// The translation memory of approved segments.
    Tm,
    /// External data brought in by an import.
    Import,
}

impl SuggestionOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            SuggestionOrigin::Mt => "mt",
            SuggestionOrigin::Tm => "tm",
            SuggestionOrigin::Import => "import",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "mt" => SuggestionOrigin::Mt,
            "tm" => SuggestionOrigin::Tm,
            "import" => SuggestionOrigin::Import,
            _ => return None,
        })
    }
}

/// A machine (or memory, or imported) translation of a unit with its full provenance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewSuggestion {
    pub text: String,
    pub origin: SuggestionOrigin,
    pub engine: Option<String>,
    pub model_id: Option<String>,
    pub model_sha256: Option<String>,
    /// Decoding parameters as given to the engine (temperature, beam size, …).
    pub decoding_params: Option<serde_json::Value>,
    pub prompt_template_version: Option<String>,
    pub time_taken_ms: Option<i64>,
    pub quality_score: Option<f64>,
    /// For memory suggestions: the memory entry and its similarity (0–1).
    pub tm_entry_id: Option<i64>,
    pub tm_score: Option<f64>,
}

impl NewSuggestion {
    /// A machine-translation suggestion with no further provenance filled in yet.
    pub fn machine(
        text: impl Into<String>,
        engine: impl Into<String>,
        model_id: impl Into<String>,
    ) -> Self {
        NewSuggestion {
            text: text.into(),
            origin: SuggestionOrigin::Mt,
            engine: Some(engine.into()),
            model_id: Some(model_id.into()),
            model_sha256: None,
            decoding_params: None,
            prompt_template_version: None,
            time_taken_ms: None,
            quality_score: None,
            tm_entry_id: None,
            tm_score: None,
        }
    }
}

/// A unit to put in a job: a segment of the resource with its machine suggestions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewUnit {
    /// The unit's id within the resource (stable across re-imports).
    pub ext_id: String,
    /// Source text with placeholders (`<g1>`…`</g1>`, `<x2/>`).
    pub source: String,
    /// Where the unit sits (section, element path) to help the reviewer.
    pub context: String,
    pub suggestions: Vec<NewSuggestion>,
    /// A review that arrives with the unit (imports of already post-edited data).
    pub imported_review: Option<ImportedReview>,
}

/// A correction that comes with imported data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportedReview {
    pub reviewer: String,
    pub final_text: String,
    /// HTER as published with the data, kept beside the one the store computes.
    pub reported_hter: Option<f64>,
}

/// What a reviewer does to a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Accept,
    Edit,
    Reject,
    Comment,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Edit => "edit",
            Action::Reject => "reject",
            Action::Comment => "comment",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "accept" => Action::Accept,
            "edit" => Action::Edit,
            "reject" => Action::Reject,
            "comment" => Action::Comment,
            _ => return None,
        })
    }
}

/// A review as submitted by a client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewReview {
    pub unit_id: i64,
    pub reviewer: String,
    pub action: Action,
    /// The corrected text (`edit` only; `accept` takes the text shown, see [`UnitView::current_text`]).
    pub text: Option<String>,
    /// Reason of a rejection or the comment itself.
    pub comment: Option<String>,
    /// When the reviewer started working on the unit (RFC 3339), if the client knows.
    pub started_at: Option<String>,
    /// Active editing time in milliseconds, if the client measured it.
    pub active_ms: Option<i64>,
    pub keystrokes: Option<i64>,
}

impl NewReview {
    pub fn new(unit_id: i64, reviewer: impl Into<String>, action: Action) -> Self {
        NewReview {
            unit_id,
            reviewer: reviewer.into(),
            action,
            text: None,
            comment: None,
            started_at: None,
            active_ms: None,
            keystrokes: None,
        }
    }
}

/// A job as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: i64,
    pub name: String,
    pub resource: String,
    pub src_lang: String,
    pub tgt_lang: String,
    pub licence: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub approvals_needed: u32,
    pub import_sha256: Option<String>,
}

/// Per-job counts for `review status`.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    #[serde(flatten)]
    pub job: Job,
    pub units: u64,
    /// Units with at least one suggestion.
    pub suggested: u64,
    pub in_review: u64,
    pub conflict: u64,
    pub approved: u64,
    pub rejected: u64,
    pub reviews: u64,
}

/// A suggestion as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    pub id: i64,
    pub text: String,
    pub origin: SuggestionOrigin,
    pub engine: Option<String>,
    pub model_id: Option<String>,
    pub model_sha256: Option<String>,
    pub decoding_params: Option<serde_json::Value>,
    pub prompt_template_version: Option<String>,
    pub time_taken_ms: Option<i64>,
    pub quality_score: Option<f64>,
    pub tm_entry_id: Option<i64>,
    pub tm_score: Option<f64>,
    pub created_at: String,
}

/// A review as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Review {
    pub id: i64,
    pub unit_id: i64,
    pub suggestion_id: Option<i64>,
    pub reviewer: String,
    pub action: Action,
    pub final_text: Option<String>,
    pub comment: Option<String>,
    pub started_at: Option<String>,
    pub submitted_at: String,
    pub active_ms: Option<i64>,
    pub keystrokes: Option<i64>,
    pub hter: Option<f64>,
    pub reported_hter: Option<f64>,
}

/// A unit with everything a reviewer needs to decide.
#[derive(Debug, Clone, Serialize)]
pub struct UnitView {
    pub id: i64,
    pub job_id: i64,
    pub job_name: String,
    pub ext_id: String,
    pub source: String,
    pub context: String,
    pub order: i64,
    pub status: UnitStatus,
    pub approved_text: Option<String>,
    /// The text `accept` approves: the approved or leading crowd candidate, else the primary suggestion.
    pub current_text: Option<String>,
    /// Suggestions, primary first (exact memory match, then the latest machine output, then fuzzy memory
    /// matches by score, then imported text).
    pub suggestions: Vec<Suggestion>,
    pub candidates: Vec<Candidate>,
    pub reviews: Vec<Review>,
}

impl UnitView {
    /// The suggestion shown first, against which HTER is measured.
    pub fn primary_suggestion(&self) -> Option<&Suggestion> {
        self.suggestions.first()
    }
}

/// What a submitted review did.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewOutcome {
    pub review_id: i64,
    pub unit_id: i64,
    pub status: UnitStatus,
    pub previous_status: UnitStatus,
    pub approved_text: Option<String>,
    pub hter: Option<f64>,
}

/// One entry of the append-only event log.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub kind: String,
    pub job_id: Option<i64>,
    pub unit_id: Option<i64>,
    pub review_id: Option<i64>,
    pub payload: serde_json::Value,
}

/// A translation-memory match for a source text.
#[derive(Debug, Clone, Serialize)]
pub struct TmMatch {
    pub entry_id: i64,
    /// Character-level similarity of the sources, 0–1 (1 = exact).
    pub score: f64,
    pub source: String,
    /// The memory's target with placeholders renumbered to the queried source's ids.
    pub target: String,
    /// False when the queried source has placeholders the match cannot carry over (fuzzy matches only).
    pub placeholders_complete: bool,
    pub origin_unit_id: Option<i64>,
}

/// One row of the research dataset: a decisive review with its unit and machine suggestion.
#[derive(Debug, Clone, Serialize)]
pub struct ResearchRow {
    pub job: String,
    pub unit_id: i64,
    pub unit_ext_id: String,
    pub src_lang: String,
    pub tgt_lang: String,
    pub src: String,
    pub mt: Option<String>,
    pub mt_origin: Option<SuggestionOrigin>,
    pub engine: Option<String>,
    pub model_id: Option<String>,
    pub model_sha256: Option<String>,
    pub decoding_params: Option<serde_json::Value>,
    pub prompt_template_version: Option<String>,
    pub mt_time_ms: Option<i64>,
    pub quality_score: Option<f64>,
    pub tm_score: Option<f64>,
    pub action: Action,
    #[serde(rename = "final")]
    pub final_text: Option<String>,
    pub comment: Option<String>,
    /// The reviewer's name, or its salted-hash pseudonym in exports.
    pub reviewer: String,
    pub started_at: Option<String>,
    pub submitted_at: String,
    pub active_ms: Option<i64>,
    pub keystrokes: Option<i64>,
    pub hter: Option<f64>,
    pub reported_hter: Option<f64>,
    pub unit_status: UnitStatus,
}

/// An approved source/target pair.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovedPair {
    pub unit_id: i64,
    pub ext_id: String,
    pub source: String,
    pub target: String,
    pub approved_at: Option<String>,
}

/// A unit in a job listing.
#[derive(Debug, Clone, Serialize)]
pub struct UnitRow {
    pub id: i64,
    pub ext_id: String,
    pub source: String,
    pub status: UnitStatus,
}
