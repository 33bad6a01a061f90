//! `translate --queue DB`: machine segments go into the review queue with their provenance, and
//! approved work in the queue's translation memory fills exact repeats without running a model.

use std::path::Path;

use anyhow::{Context, Result};
use oerkit_document::Document;
use oerkit_review::model::{NewJob, NewSuggestion, NewUnit, SuggestionOrigin};
use oerkit_review::{ReviewStore, SqliteStore};
use oerkit_translate::pipeline::DocumentTranslation;

use crate::licensing::Adaptation;

pub struct Queue {
    store: SqliteStore,
    reviewer: String,
}

impl Queue {
    pub fn open(db: &Path) -> Result<Self> {
        let store = SqliteStore::open(db)
            .with_context(|| format!("{}: cannot open the review queue", db.display()))?;
        let reviewer = std::env::var("OERKIT_REVIEWER").unwrap_or_else(|_| "oerkit".into());
        Ok(Queue { store, reviewer })
    }

    /// An approved translation of exactly this source text, with placeholders carried over.
    pub fn exact(&self, src_lang: &str, tgt_lang: &str, source: &str) -> Option<String> {
        match self.store.tm_matches(src_lang, tgt_lang, source, 1.0, 1) {
            Ok(matches) => matches
                .into_iter()
                .find(|m| m.score >= 1.0 && m.placeholders_complete)
                .map(|m| m.target),
            Err(err) => {
                tracing::warn!("translation memory lookup failed: {err}");
                None
            }
        }
    }

    /// Queues every translated unit of a document as a job named after the file and target language.
    pub fn add_document(
        &mut self,
        doc: &Document,
        path: &Path,
        t: &DocumentTranslation,
        src_lang: &str,
        tgt_lang: &str,
        adaptation: &Adaptation,
    ) -> Result<()> {
        let by_id: std::collections::HashMap<&str, &oerkit_document::Unit> =
            doc.units.iter().map(|u| (u.id.as_str(), u)).collect();
        let units: Vec<NewUnit> = t
            .units
            .iter()
            .filter_map(|r| {
                let unit = by_id.get(r.unit_id.as_str())?;
                let origin = if r.from_memory {
                    SuggestionOrigin::Tm
                } else {
                    SuggestionOrigin::Mt
                };
                let mut s = NewSuggestion::machine(
                    r.text.clone(),
                    t.engine.engine.clone(),
                    t.engine.model.clone(),
                );
                s.origin = origin;
                s.model_sha256 = t.engine.model_sha256.clone();
                s.decoding_params =
                    Some(serde_json::json!({ "decoding": t.engine.decoding, "repair": r.repair }));
                s.prompt_template_version = t.engine.prompt.clone();
                s.time_taken_ms = Some((r.seconds * 1000.0).round() as i64);
                if r.from_memory {
                    s.tm_score = Some(1.0);
                }
                Some(NewUnit {
                    ext_id: r.unit_id.clone(),
                    source: unit.text.clone(),
                    context: unit.context.clone(),
                    suggestions: vec![s],
                    imported_review: None,
                })
            })
            .collect();
        let name = format!("{}:{tgt_lang}", path.display());
        let existing = self.store.job(&name).ok();
        match existing {
            Some(job) => {
                self.store.add_units(job.id, &units, &self.reviewer)?;
            }
            None => {
                let job = NewJob {
                    name,
                    resource: path.display().to_string(),
                    src_lang: src_lang.to_string(),
                    tgt_lang: tgt_lang.to_string(),
                    licence: adaptation.spdx_for(path),
                    created_by: self.reviewer.clone(),
                    approvals_needed: 1,
                    import_sha256: None,
                };
                self.store.create_job(&job, &units)?;
            }
        }
        Ok(())
    }
}
