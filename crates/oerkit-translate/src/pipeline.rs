//! Translating one document: batching, placeholder validation and repair, journal, provenance.

use std::path::Path;

use oerkit_document::placeholder::{has_translatable_text, spans, validate, Span};
use oerkit_document::segment::sentence_spans;
use oerkit_document::{Document, FormatKind, TagKind, Translations};
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
    /// Pieces the unit was translated in because it was too long for the engine at once
    /// (cut at sentence, clause or word boundaries); `None` when it went whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<usize>,
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
    #[error(
        "{path}: unit {unit}: {excerpt:?} alone needs {tokens} tokens with room for its reply, \
         more than the model's context of {limit}, and has no sentence, clause or word boundary \
         left to split at; shorten it in the source or use a model with a longer context"
    )]
    Unsplittable {
        path: String,
        unit: String,
        excerpt: String,
        tokens: usize,
        limit: usize,
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
                split: None,
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
    // Units of similar length batched together: a batch costs as much as its longest member (an
    // LLM pads prompts to the longest and decodes until the longest reply ends), so document
    // order would make most batches wait on their one long unit. Results go back in place; the
    // journal is keyed by unit, so resuming does not depend on this order.
    pending.sort_by_key(|&i| doc.units[i].text.len());
    for chunk in pending.chunks(batch) {
        // Units too long for the engine at once are translated in pieces after the rest.
        let mut whole = Vec::with_capacity(chunk.len());
        let mut long = Vec::new();
        for &i in chunk {
            match engine.check_fits(&request(doc, i, &doc.units[i].text, options)) {
                Ok(()) => whole.push(i),
                Err(EngineError::TooLong { .. }) => long.push(i),
                Err(source) => {
                    return Err(PipelineError::Engine {
                        path: p.clone(),
                        source,
                    })
                }
            }
        }
        let requests: Vec<TranslateRequest> = whole
            .iter()
            .map(|&i| request(doc, i, &doc.units[i].text, options))
            .collect();
        let outputs = if requests.is_empty() {
            Vec::new()
        } else {
            engine
                .translate(&requests)
                .map_err(|source| PipelineError::Engine {
                    path: p.clone(),
                    source,
                })?
        };
        if outputs.len() != requests.len() {
            return Err(PipelineError::Count {
                path: p.clone(),
                got: outputs.len(),
                expected: requests.len(),
            });
        }
        let mut batch_results = Vec::with_capacity(chunk.len());
        for (&i, out) in whole.iter().zip(outputs) {
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
                split: None,
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
        for &i in &long {
            tracing::info!(unit = %doc.units[i].id, "unit too long for the engine; translating it in pieces");
            batch_results.push(translate_in_pieces(doc, i, engine, options, &p)?);
        }
        if let Some(j) = journal.as_deref_mut() {
            j.record(&batch_results)
                .map_err(|source| PipelineError::Journal {
                    path: p.clone(),
                    source,
                })?;
        }
        for (&i, r) in whole.iter().chain(&long).zip(batch_results) {
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

/// Where a long unit may be cut, coarsest first: sentences, then clauses, then words.
const CUT_LEVELS: usize = 3;

/// Characters after which a clause may end.
fn is_clause_end(c: char) -> bool {
    matches!(c, ',' | ';' | ':' | '，' | '；' | '：' | '、' | '—')
}

/// For every byte offset of `text`, whether a cut there keeps each `<gN>…</gN>` pair inside one
/// piece: offsets in plain text (never inside a token) while no pair is open.
fn balanced_offsets(text: &str) -> Vec<bool> {
    let mut ok = vec![false; text.len() + 1];
    let mut depth = 0usize;
    let mut offset = 0;
    for span in spans(text) {
        match span {
            Span::Text(t) => {
                if depth == 0 {
                    ok[offset..=offset + t.len()].fill(true);
                }
                offset += t.len();
            }
            Span::Token {
                kind, text: tok, ..
            } => {
                match kind {
                    TagKind::Open => depth += 1,
                    TagKind::Close => depth = depth.saturating_sub(1),
                    TagKind::Standalone => {}
                }
                offset += tok.len();
            }
        }
    }
    ok
}

/// Cut offsets strictly inside `range` at `level` (0 sentences, 1 clauses, 2 words), allowed by `ok`.
fn cut_points(
    text: &str,
    range: (usize, usize),
    level: usize,
    lang: &str,
    ok: &[bool],
) -> Vec<usize> {
    let (start, end) = range;
    let part = &text[start..end];
    let mut cuts: Vec<usize> = match level {
        0 => sentence_spans(part, lang)
            .into_iter()
            .skip(1)
            .map(|(s, _)| start + s)
            .collect(),
        _ => {
            let mut cuts = Vec::new();
            let mut after_boundary = false;
            for (k, c) in part.char_indices() {
                let boundary = if level == 1 {
                    is_clause_end(c) || (after_boundary && c.is_whitespace())
                } else {
                    c.is_whitespace()
                };
                if after_boundary && !boundary {
                    cuts.push(start + k);
                }
                after_boundary = boundary;
            }
            cuts
        }
    };
    cuts.retain(|&c| c > start && c < end && ok[c]);
    cuts
}

/// A byte range of unit text.
type Range = (usize, usize);

/// Pieces of `text[range]` that each fit the engine (`fits`), cut at the coarsest boundaries
/// that do; `Ok(Err(range))` names a stretch that no allowed cut makes fit.
fn fitting_pieces(
    text: &str,
    range: (usize, usize),
    level: usize,
    lang: &str,
    ok: &[bool],
    fits: &mut dyn FnMut(&str) -> Result<bool, EngineError>,
) -> Result<Result<Vec<Range>, Range>, EngineError> {
    if fits(&text[range.0..range.1])? {
        return Ok(Ok(vec![range]));
    }
    if level == CUT_LEVELS {
        return Ok(Err(range));
    }
    let cuts = cut_points(text, range, level, lang, ok);
    if cuts.is_empty() {
        return fitting_pieces(text, range, level + 1, lang, ok, fits);
    }
    let mut bounds = Vec::with_capacity(cuts.len() + 2);
    bounds.push(range.0);
    bounds.extend(cuts);
    bounds.push(range.1);
    let mut pieces = Vec::new();
    let mut current = (bounds[0], bounds[1]);
    let flush = |piece: (usize, usize),
                 pieces: &mut Vec<(usize, usize)>,
                 fits: &mut dyn FnMut(&str) -> Result<bool, EngineError>|
     -> Result<Result<(), (usize, usize)>, EngineError> {
        match fitting_pieces(text, piece, level + 1, lang, ok, fits)? {
            Ok(parts) => {
                pieces.extend(parts);
                Ok(Ok(()))
            }
            Err(bad) => Ok(Err(bad)),
        }
    };
    for w in bounds[1..].windows(2) {
        let joined = (current.0, w[1]);
        if fits(&text[joined.0..joined.1])? {
            current = joined;
        } else {
            if let Err(bad) = flush(current, &mut pieces, fits)? {
                return Ok(Err(bad));
            }
            current = (w[0], w[1]);
        }
    }
    if let Err(bad) = flush(current, &mut pieces, fits)? {
        return Ok(Err(bad));
    }
    Ok(Ok(pieces))
}

/// A piece's translation with the piece's own leading and trailing whitespace kept.
fn with_outer_space(original: &str, translated: &str) -> String {
    let lead = &original[..original.len() - original.trim_start().len()];
    let trail = &original[original.trim_end().len()..];
    format!("{lead}{}{trail}", translated.trim())
}

/// Translates a unit too long for the engine at once: cut where no placeholder pair is open
/// (sentences, then clauses, then words), each piece translated with its placeholders, the
/// pieces joined. When that cannot fit or the engine breaks placeholders, the text between
/// the placeholders is cut and translated alone and the placeholders are kept in source order.
fn translate_in_pieces(
    doc: &Document,
    i: usize,
    engine: &mut dyn TranslationEngine,
    options: &PipelineOptions,
    path: &str,
) -> Result<UnitResult, PipelineError> {
    let unit = &doc.units[i];
    let text = unit.text.as_str();
    let engine_err = |source| PipelineError::Engine {
        path: path.to_string(),
        source,
    };
    let fits_engine = |engine: &dyn TranslationEngine, s: &str| match engine.check_fits(&request(
        doc,
        i,
        s.trim(),
        options,
    )) {
        Ok(()) => Ok(true),
        Err(EngineError::TooLong { .. }) => Ok(false),
        Err(e) => Err(e),
    };
    let lang = options.source_lang.as_str();
    let mut seconds = 0.0;
    let mut tokens = None;
    let mut translate_pieces =
        |engine: &mut dyn TranslationEngine, pieces: &[&str]| -> Result<Vec<String>, EngineError> {
            let todo: Vec<usize> = (0..pieces.len())
                .filter(|&k| has_translatable_text(pieces[k]))
                .collect();
            let requests: Vec<TranslateRequest> = todo
                .iter()
                .map(|&k| request(doc, i, pieces[k].trim(), options))
                .collect();
            let mut out: Vec<String> = pieces.iter().map(|p| p.to_string()).collect();
            for (batch_keys, batch) in todo
                .chunks(engine.preferred_batch().max(1))
                .zip(requests.chunks(engine.preferred_batch().max(1)))
            {
                let outputs = engine.translate(batch)?;
                if outputs.len() != batch.len() {
                    return Err(EngineError::Failed(format!(
                        "engine returned {} outputs for {} inputs",
                        outputs.len(),
                        batch.len()
                    )));
                }
                for (&k, o) in batch_keys.iter().zip(outputs) {
                    seconds += o.seconds;
                    if let Some(t) = o.tokens {
                        *tokens.get_or_insert(0) += t;
                    }
                    out[k] = with_outer_space(pieces[k], &fit_format(FormatKind::Lines, &o.text));
                }
            }
            Ok(out)
        };

    // 1. pieces that keep their placeholder pairs whole
    let ok = balanced_offsets(text);
    let balanced = {
        let mut fits = |s: &str| fits_engine(engine, s);
        fitting_pieces(text, (0, text.len()), 0, lang, &ok, &mut fits).map_err(engine_err)?
    };
    let mut raw_output = None;
    if let Ok(ranges) = &balanced {
        let pieces: Vec<&str> = ranges.iter().map(|&(a, b)| &text[a..b]).collect();
        let translated = translate_pieces(engine, &pieces).map_err(engine_err)?;
        let joined = fit_format(doc.format, &translated.concat());
        if validate(&unit.placeholders, &joined).is_empty() && !joined.trim().is_empty() {
            return Ok(UnitResult {
                unit_id: unit.id.clone(),
                source: unit.text.clone(),
                text: joined.clone(),
                raw_output: joined,
                repair: Repair::None,
                seconds,
                tokens,
                from_memory: false,
                split: Some(ranges.len()),
                resumed: false,
            });
        }
        tracing::info!(unit = %unit.id, "placeholders broken in the pieces; translating between them");
        raw_output = Some(joined);
    }

    // 2. the text between placeholders, cut as needed; placeholders kept in source order
    let parts = spans(text);
    let mut pieces: Vec<&str> = Vec::new();
    for span in &parts {
        match span {
            Span::Text(t) if has_translatable_text(t) => {
                let all = vec![true; t.len() + 1];
                let mut fits = |s: &str| fits_engine(engine, s);
                match fitting_pieces(t, (0, t.len()), 0, lang, &all, &mut fits)
                    .map_err(engine_err)?
                {
                    Ok(ranges) => pieces.extend(ranges.iter().map(|&(a, b)| &t[a..b])),
                    Err((a, b)) => {
                        let piece = t[a..b].trim();
                        let (tokens, limit) =
                            match engine.check_fits(&request(doc, i, piece, options)) {
                                Err(EngineError::TooLong { tokens, limit }) => (tokens, limit),
                                _ => (0, 0),
                            };
                        let excerpt: String = piece.chars().take(60).collect();
                        return Err(PipelineError::Unsplittable {
                            path: path.to_string(),
                            unit: unit.id.clone(),
                            excerpt,
                            tokens,
                            limit,
                        });
                    }
                }
            }
            Span::Text(t) => pieces.push(t),
            Span::Token { text: tok, .. } => pieces.push(tok),
        }
    }
    let n_translated = pieces.iter().filter(|p| has_translatable_text(p)).count();
    // tokens are pieces of their own without translatable text, so they come back unchanged
    let translated = translate_pieces(engine, &pieces).map_err(engine_err)?;
    let joined = translated.concat();
    let (text_out, repair) = if validate(&unit.placeholders, &joined).is_empty() {
        (joined.clone(), Repair::Piecewise)
    } else {
        tracing::warn!(unit = %unit.id, "could not translate the long unit validly; keeping the source text");
        (unit.text.clone(), Repair::KeptSource)
    };
    Ok(UnitResult {
        unit_id: unit.id.clone(),
        source: unit.text.clone(),
        text: text_out,
        raw_output: raw_output.unwrap_or(joined),
        repair,
        seconds,
        tokens,
        from_memory: false,
        split: Some(n_translated),
        resumed: false,
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

    fn test_info(engine: &str) -> EngineInfo {
        EngineInfo {
            engine: engine.into(),
            model: "none".into(),
            model_sha256: None,
            decoding: serde_json::json!({}),
            prompt: None,
        }
    }

    /// A deterministic engine for testing the pipeline itself: upper-cases text and, when asked, drops
    /// every placeholder token as weak models do.
    struct Upper {
        drop_tags: bool,
        calls: usize,
    }

    impl TranslationEngine for Upper {
        fn info(&self) -> EngineInfo {
            test_info("test-upper")
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

    /// Translates `d` with `e`: the test options, no memory, no journal.
    fn run(
        d: &Document,
        e: &mut dyn TranslationEngine,
    ) -> Result<DocumentTranslation, PipelineError> {
        translate_document(
            d,
            Path::new("t.txt"),
            e,
            &opts(),
            &|_| None,
            None,
            &mut |_, _| {},
        )
    }

    #[test]
    fn translates_every_unit_with_text() {
        let d = doc("one\n\ntwo\n\n42\n\nthree\n");
        let mut e = Upper {
            drop_tags: false,
            calls: 0,
        };
        let t = run(&d, &mut e).unwrap();
        assert_eq!(t.units.len(), 3);
        assert_eq!(e.calls, 2);
        assert_eq!(t.translations.texts[0].as_deref(), Some("ONE"));
        assert_eq!(d.units.len(), 3, "a block without letters is not a unit");
        assert_eq!(t.translations.texts[2].as_deref(), Some("THREE"));
    }

    /// Records the source lengths of every batch it receives.
    struct BatchRecorder {
        batches: Vec<Vec<usize>>,
    }

    impl TranslationEngine for BatchRecorder {
        fn info(&self) -> EngineInfo {
            test_info("test-recorder")
        }
        fn translate(
            &mut self,
            batch: &[TranslateRequest],
        ) -> Result<Vec<TranslateOutput>, EngineError> {
            self.batches
                .push(batch.iter().map(|r| r.text.len()).collect());
            Ok(batch
                .iter()
                .map(|r| TranslateOutput {
                    text: r.text.to_uppercase(),
                    tokens: Some(1),
                    seconds: 0.0,
                })
                .collect())
        }
    }

    #[test]
    fn units_of_similar_length_share_a_batch_and_results_keep_document_order() {
        let d = doc("A much longer first paragraph here.\n\nShort.\n\nAnother rather long paragraph.\n\nTiny.\n");
        let mut e = BatchRecorder {
            batches: Vec::new(),
        };
        let t = run(&d, &mut e).unwrap();
        assert_eq!(e.batches, vec![vec![5, 6], vec![30, 35]]);
        let texts: Vec<&str> = t.units.iter().map(|u| u.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "A MUCH LONGER FIRST PARAGRAPH HERE.",
                "SHORT.",
                "ANOTHER RATHER LONG PARAGRAPH.",
                "TINY."
            ]
        );
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
        let t = run(&d, &mut e).unwrap();
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

    /// An engine that takes at most `max_chars` characters per request (a stand-in for an LLM's
    /// context window), refuses anything longer, and upper-cases text (tokens kept, or dropped
    /// with `drop_tags`).
    struct Limited {
        max_chars: usize,
        drop_tags: bool,
        longest_sent: usize,
    }

    impl Limited {
        fn new(max_chars: usize) -> Self {
            Limited {
                max_chars,
                drop_tags: false,
                longest_sent: 0,
            }
        }
    }

    impl TranslationEngine for Limited {
        fn info(&self) -> EngineInfo {
            Upper {
                drop_tags: false,
                calls: 0,
            }
            .info()
        }
        fn check_fits(&self, request: &TranslateRequest) -> Result<(), EngineError> {
            let tokens = request.text.chars().count();
            if tokens > self.max_chars {
                Err(EngineError::TooLong {
                    tokens,
                    limit: self.max_chars,
                })
            } else {
                Ok(())
            }
        }
        fn translate(
            &mut self,
            batch: &[TranslateRequest],
        ) -> Result<Vec<TranslateOutput>, EngineError> {
            for r in batch {
                self.check_fits(r)?;
                self.longest_sent = self.longest_sent.max(r.text.chars().count());
            }
            Upper {
                drop_tags: self.drop_tags,
                calls: 0,
            }
            .translate(batch)
        }
    }

    /// A Markdown paragraph: `**…**` becomes a `<g1>…</g1>` pair, `![](x)` a standalone token.
    fn markdown(text: &str) -> Document {
        load_str(Path::new("t.md"), text, Some(FormatKind::Markdown)).unwrap()
    }

    /// What `Upper` makes of unit text: letters upper-cased, tokens unchanged.
    fn upper(text: &str) -> String {
        spans(text)
            .iter()
            .map(|s| match s {
                Span::Text(t) => t.to_uppercase(),
                Span::Token { text, .. } => text.to_string(),
            })
            .collect()
    }

    #[test]
    fn a_unit_longer_than_the_context_is_translated_in_sentences() {
        let text =
            "The first sentence is here. The second one follows it. A third closes the paragraph.";
        let d = doc(&format!("{text}\n\nshort\n"));
        let mut e = Limited::new(40);
        let t = run(&d, &mut e).unwrap();
        assert_eq!(t.units[0].text, text.to_uppercase());
        assert_eq!(t.units[0].split, Some(3));
        assert_eq!(t.units[0].repair, Repair::None);
        assert!(e.longest_sent <= 40);
        assert_eq!(t.units[1].text, "SHORT");
        assert_eq!(t.units[1].split, None);
    }

    #[test]
    fn pieces_never_cut_inside_a_placeholder_pair() {
        let d = markdown(
            "Intro sentence one here. **Bold across. Two sentences.** Tail sentence at the end.\n",
        );
        let source = &d.units[0].text;
        assert!(
            source.contains("<g1>Bold across. Two sentences.</g1>"),
            "{source}"
        );
        let mut e = Limited::new(45);
        let t = run(&d, &mut e).unwrap();
        let u = &t.units[0];
        assert_eq!(u.text, upper(source));
        assert_eq!(u.repair, Repair::None);
        assert_eq!(u.split, Some(3));
        assert!(e.longest_sent <= 45);
    }

    #[test]
    fn a_long_pair_with_no_balanced_cut_is_translated_between_its_placeholders() {
        let d =
            markdown("**All of this is wrapped. It has three sentences. Each is short enough.**\n");
        let source = &d.units[0].text;
        assert!(
            source.starts_with("<g1>") && source.ends_with("</g1>"),
            "{source}"
        );
        let mut e = Limited::new(30);
        let t = run(&d, &mut e).unwrap();
        let u = &t.units[0];
        assert_eq!(u.repair, Repair::Piecewise);
        assert_eq!(u.text, upper(source));
        assert_eq!(u.split, Some(3));
        assert!(e.longest_sent <= 30);
    }

    #[test]
    fn a_single_long_sentence_is_cut_at_clauses_then_words() {
        let text = "one two three four, five six seven eight, nine ten eleven twelve";
        let d = doc(&format!("{text}\n"));
        let mut e = Limited::new(25);
        let t = run(&d, &mut e).unwrap();
        assert_eq!(t.units[0].text, text.to_uppercase());
        assert_eq!(t.units[0].split, Some(3));
        let mut e = Limited::new(12);
        let t = run(&d, &mut e).unwrap();
        assert_eq!(t.units[0].text, text.to_uppercase());
        assert!(t.units[0].split.unwrap() > 3);
        assert!(e.longest_sent <= 12);
    }

    #[test]
    fn broken_placeholders_in_pieces_fall_back_to_translating_between_them() {
        let d =
            markdown("First part is here. **Second part** is bold. ![](x.png) Third part ends.\n");
        let source = &d.units[0].text;
        assert!(source.contains("<g1>Second part</g1>"), "{source}");
        let mut e = Limited::new(30);
        e.drop_tags = true;
        let t = run(&d, &mut e).unwrap();
        let u = &t.units[0];
        assert_eq!(u.repair, Repair::Piecewise);
        assert!(validate(&d.units[0].placeholders, &u.text).is_empty());
        assert_eq!(u.text, upper(source));
    }

    #[test]
    fn an_unsplittable_word_longer_than_the_context_is_a_clear_error() {
        let word = "Pneumonoultramicroscopicsilicovolcanoconiosis";
        let d = doc(&format!("A word: {word} is long.\n"));
        let mut e = Limited::new(20);
        let err = run(&d, &mut e).unwrap_err().to_string();
        assert!(err.contains("t.txt"), "{err}");
        assert!(err.contains(word), "{err}");
        assert!(
            err.contains("45 tokens") && err.contains("context of 20"),
            "{err}"
        );
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
