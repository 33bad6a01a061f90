//! Translating one document: batching, placeholder validation and repair, journal, provenance.

use std::path::Path;

use oerkit_document::placeholder::{has_translatable_text, spans, validate, Span};
use oerkit_document::{Document, FormatKind, Translations};
use serde::{Deserialize, Serialize};

use crate::engine::{EngineError, EngineInfo, TranslateRequest, TranslationEngine};
use crate::journal::Journal;

/// What had to be done to get a valid translation of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Repair {
    /// The engine's output was valid as it came.
    None,
    /// The engine broke placeholders; the text between them was translated piece by piece and the
    /// placeholders put back in their source order.
    Piecewise,
    /// No valid translation could be had; the source text was kept (reported, never silently).
    KeptSource,
}

/// The outcome for one unit, with what the provenance sidecar and the review queue need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitResult {
    pub unit_id: String,
    pub source: String,
    /// The translation (with placeholders).
    pub text: String,
    /// The engine's first output, before any repair (what a reviewer's HTER is measured against is `text`).
    pub raw_output: String,
    pub repair: Repair,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<usize>,
    /// True when an approved translation from the memory filled the unit (no engine ran).
    #[serde(default)]
    pub from_memory: bool,
    /// True when the result came from the journal of an interrupted run.
    #[serde(default, skip_serializing)]
    pub resumed: bool,
}

/// The translation of a whole document.
#[derive(Debug, Clone)]
pub struct DocumentTranslation {
    pub translations: Translations,
    /// One result per translated unit (units without letters keep their source and have none).
    pub units: Vec<UnitResult>,
    pub engine: EngineInfo,
}

#[derive(Debug, Clone)]
pub struct PipelineOptions {
    pub source_lang: String,
    pub target_lang: String,
    /// Units per engine call; 0: the engine's preference.
    pub batch: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{path}: translation engine failed: {source}")]
    Engine {
        path: String,
        #[source]
        source: EngineError,
    },
    #[error("{path}: engine returned {got} outputs for {expected} inputs")]
    Count {
        path: String,
        got: usize,
        expected: usize,
    },
    #[error("{path}: journal: {source}")]
    Journal {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where exact approved translations come from (the review queue's memory); `None` for every unit when
/// there is no memory.
pub type Memory<'a> = &'a dyn Fn(&oerkit_document::Unit) -> Option<String>;

/// Translates every unit of `doc` that has text. Exact memory matches fill units without the engine;
/// `journal` (when given) makes the work resumable; `progress(done, total)` is called after every batch.
pub fn translate_document(
    doc: &Document,
    path: &Path,
    engine: &mut dyn TranslationEngine,
    options: &PipelineOptions,
    memory: Memory<'_>,
    mut journal: Option<&mut Journal>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<DocumentTranslation, PipelineError> {
    let p = path.display().to_string();
    let todo: Vec<usize> = (0..doc.units.len())
        .filter(|&i| has_translatable_text(&doc.units[i].text))
        .collect();
    let mut results: Vec<Option<UnitResult>> = vec![None; doc.units.len()];
    let mut pending = Vec::new();
    for &i in &todo {
        let unit = &doc.units[i];
        if let Some(done) = journal.as_deref().and_then(|j| j.get(&unit.id, &unit.text)) {
            results[i] = Some(UnitResult {
                resumed: true,
                ..done.clone()
            });
        } else if let Some(text) =
            memory(unit).filter(|t| validate(&unit.placeholders, t).is_empty())
        {
            results[i] = Some(UnitResult {
                unit_id: unit.id.clone(),
                source: unit.text.clone(),
                raw_output: text.clone(),
                text,
                repair: Repair::None,
                seconds: 0.0,
                tokens: None,
                from_memory: true,
                resumed: false,
            });
        } else {
            pending.push(i);
        }
    }
    let total = todo.len();
    let mut done = total - pending.len();
    progress(done, total);
    let batch = if options.batch == 0 {
        engine.preferred_batch()
    } else {
        options.batch
    }
    .max(1);
    for chunk in pending.chunks(batch) {
        let requests: Vec<TranslateRequest> = chunk
            .iter()
            .map(|&i| request(doc, i, &doc.units[i].text, options))
            .collect();
        let outputs = engine
            .translate(&requests)
            .map_err(|source| PipelineError::Engine {
                path: p.clone(),
                source,
            })?;
        if outputs.len() != requests.len() {
            return Err(PipelineError::Count {
                path: p.clone(),
                got: outputs.len(),
                expected: requests.len(),
            });
        }
        let mut batch_results = Vec::with_capacity(chunk.len());
        for (&i, out) in chunk.iter().zip(outputs) {
            let unit = &doc.units[i];
            let text = fit_format(doc.format, &out.text);
            let mut result = UnitResult {
                unit_id: unit.id.clone(),
                source: unit.text.clone(),
                text: text.clone(),
                raw_output: out.text,
                repair: Repair::None,
                seconds: out.seconds,
                tokens: out.tokens,
                from_memory: false,
                resumed: false,
            };
            if !validate(&unit.placeholders, &text).is_empty() || text.trim().is_empty() {
                tracing::info!(unit = %unit.id, "placeholders broken by the engine; repairing piecewise");
                let (repaired, repair, seconds) = repair_piecewise(doc, i, engine, options)
                    .map_err(|source| PipelineError::Engine {
                        path: p.clone(),
                        source,
                    })?;
                result.text = repaired;
                result.repair = repair;
                result.seconds += seconds;
            }
            batch_results.push(result);
        }
        if let Some(j) = journal.as_deref_mut() {
            j.record(&batch_results)
                .map_err(|source| PipelineError::Journal {
                    path: p.clone(),
                    source,
                })?;
        }
        for (&i, r) in chunk.iter().zip(batch_results) {
            results[i] = Some(r);
        }
        done += chunk.len();
        progress(done, total);
    }
    let mut translations = Translations::identity(doc);
    let mut units = Vec::with_capacity(total);
    for (i, r) in results.into_iter().enumerate() {
        if let Some(r) = r {
            translations.texts[i] = Some(r.text.clone());
            units.push(r);
        }
    }
    Ok(DocumentTranslation {
        translations,
        units,
        engine: engine.info(),
    })
}

fn request(doc: &Document, i: usize, text: &str, options: &PipelineOptions) -> TranslateRequest {
    TranslateRequest {
        text: text.to_string(),
        source_lang: options.source_lang.clone(),
        target_lang: options.target_lang.clone(),
        context: doc.units[i].context.clone(),
    }
}

/// A `lines` file must stay line-aligned: a translation is one line.
fn fit_format(format: FormatKind, text: &str) -> String {
    match format {
        FormatKind::Lines => oerkit_document::formats::lines::single_line(text),
        _ => text.to_string(),
    }
}

/// Translates the text between placeholders run by run and puts the tokens back in source order, which
/// is valid by construction. Runs without letters (spaces, punctuation) are kept as they are.
fn repair_piecewise(
    doc: &Document,
    i: usize,
    engine: &mut dyn TranslationEngine,
    options: &PipelineOptions,
) -> Result<(String, Repair, f64), EngineError> {
    let unit = &doc.units[i];
    let parts = spans(&unit.text);
    let runs: Vec<(usize, &str)> = parts
        .iter()
        .enumerate()
        .filter_map(|(k, s)| match s {
            Span::Text(t) if has_translatable_text(t) => Some((k, *t)),
            _ => None,
        })
        .collect();
    let requests: Vec<TranslateRequest> = runs
        .iter()
        .map(|(_, t)| request(doc, i, t.trim(), options))
        .collect();
    let outputs = if requests.is_empty() {
        Vec::new()
    } else {
        engine.translate(&requests)?
    };
    let seconds = outputs.iter().map(|o| o.seconds).sum();
    let mut translated = std::collections::HashMap::new();
    for ((k, original), out) in runs.iter().zip(outputs) {
        // Keep the run's own leading and trailing spaces: they separate it from the markup around it.
        let lead = &original[..original.len() - original.trim_start().len()];
        let trail = &original[original.trim_end().len()..];
        let body: String = spans(&out.text)
            .into_iter()
            .filter_map(|s| match s {
                Span::Text(t) => Some(t),
                Span::Token { .. } => None,
            })
            .collect();
        translated.insert(
            *k,
            format!(
                "{lead}{}{trail}",
                fit_format(FormatKind::Lines, body.trim())
            ),
        );
    }
    let mut text = String::new();
    for (k, span) in parts.iter().enumerate() {
        match span {
            Span::Text(t) => text.push_str(translated.get(&k).map_or(*t, String::as_str)),
            Span::Token { text: tok, .. } => text.push_str(tok),
        }
    }
    if validate(&unit.placeholders, &text).is_empty() {
        Ok((text, Repair::Piecewise, seconds))
    } else {
        tracing::warn!(unit = %unit.id, "could not repair the translation; keeping the source text");
        Ok((unit.text.clone(), Repair::KeptSource, seconds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::TranslateOutput;
    use oerkit_document::load_str;

    /// A deterministic engine for testing the pipeline itself: upper-cases text and, when asked, drops
    /// every placeholder token as weak models do.
    struct Upper {
        drop_tags: bool,
        calls: usize,
    }

    impl TranslationEngine for Upper {
        fn info(&self) -> EngineInfo {
            EngineInfo {
                engine: "test-upper".into(),
                model: "none".into(),
                model_sha256: None,
                decoding: serde_json::json!({}),
                prompt: None,
            }
        }
        fn translate(
            &mut self,
            batch: &[TranslateRequest],
        ) -> Result<Vec<TranslateOutput>, EngineError> {
            self.calls += 1;
            Ok(batch
                .iter()
                .map(|r| {
                    let text: String = if self.drop_tags {
                        spans(&r.text)
                            .iter()
                            .filter_map(|s| {
                                if let Span::Text(t) = s {
                                    Some(*t)
                                } else {
                                    None
                                }
                            })
                            .collect()
                    } else {
                        r.text.clone()
                    };
                    let text = spans(&text)
                        .iter()
                        .map(|s| match s {
                            Span::Text(t) => t.to_uppercase(),
                            Span::Token { text, .. } => text.to_string(),
                        })
                        .collect();
                    TranslateOutput {
                        text,
                        tokens: Some(1),
                        seconds: 0.0,
                    }
                })
                .collect())
        }
    }

    fn doc(text: &str) -> Document {
        load_str(Path::new("t.txt"), text, Some(FormatKind::Text)).unwrap()
    }

    fn opts() -> PipelineOptions {
        PipelineOptions {
            source_lang: "en".into(),
            target_lang: "xx".into(),
            batch: 2,
        }
    }

    #[test]
    fn translates_every_unit_with_text() {
        let d = doc("one\n\ntwo\n\n42\n\nthree\n");
        let mut e = Upper {
            drop_tags: false,
            calls: 0,
        };
        let t = translate_document(
            &d,
            Path::new("t.txt"),
            &mut e,
            &opts(),
            &|_| None,
            None,
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(t.units.len(), 3);
        assert_eq!(e.calls, 2);
        assert_eq!(t.translations.texts[0].as_deref(), Some("ONE"));
        assert_eq!(d.units.len(), 3, "a block without letters is not a unit");
        assert_eq!(t.translations.texts[2].as_deref(), Some("THREE"));
    }

    #[test]
    fn broken_placeholders_are_repaired_piecewise() {
        let d = doc("a <x1/> b\n");
        // The reader protects token-looking text as a placeholder: `<x1/>` is a real one here.
        assert_eq!(d.units[0].placeholders.len(), 1);
        let mut e = Upper {
            drop_tags: true,
            calls: 0,
        };
        let t = translate_document(
            &d,
            Path::new("t.txt"),
            &mut e,
            &opts(),
            &|_| None,
            None,
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(t.units[0].repair, Repair::Piecewise);
        assert_eq!(t.units[0].text, "A <x1/> B");
        assert_eq!(t.units[0].raw_output, "A  B");
    }

    #[test]
    fn exact_memory_matches_skip_the_engine() {
        let d = doc("one\n\ntwo\n");
        let mut e = Upper {
            drop_tags: false,
            calls: 0,
        };
        let memory = |u: &oerkit_document::Unit| (u.text == "one").then(|| "uno".to_string());
        let t = translate_document(
            &d,
            Path::new("t.txt"),
            &mut e,
            &opts(),
            &memory,
            None,
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(e.calls, 1);
        assert!(t.units[0].from_memory);
        assert_eq!(t.translations.texts[0].as_deref(), Some("uno"));
        assert_eq!(t.translations.texts[1].as_deref(), Some("TWO"));
    }

    #[test]
    fn a_journal_resumes_without_calling_the_engine_again() {
        let dir = tempfile::tempdir().unwrap();
        let jp = dir.path().join("j.jsonl");
        let d = doc("one\n\ntwo\n");
        {
            let mut j = Journal::open(&jp).unwrap();
            let mut e = Upper {
                drop_tags: false,
                calls: 0,
            };
            translate_document(
                &d,
                Path::new("t.txt"),
                &mut e,
                &opts(),
                &|_| None,
                Some(&mut j),
                &mut |_, _| {},
            )
            .unwrap();
        }
        // Simulate a crash mid-write: a torn last line.
        let mut f = std::fs::OpenOptions::new().append(true).open(&jp).unwrap();
        std::io::Write::write_all(&mut f, b"{\"unit_").unwrap();
        let mut j = Journal::open(&jp).unwrap();
        assert_eq!(j.len(), 2);
        let mut e = Upper {
            drop_tags: false,
            calls: 0,
        };
        let t = translate_document(
            &d,
            Path::new("t.txt"),
            &mut e,
            &opts(),
            &|_| None,
            Some(&mut j),
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(e.calls, 0);
        assert!(t.units.iter().all(|u| u.resumed));
        j.finish().unwrap();
        assert!(!jp.exists());
    }
}
