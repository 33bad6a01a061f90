//! Keywords: candidate phrases (runs of up to three words between stop words and punctuation, seen
//! at least twice when the text is long enough), ranked by similarity to the resource and picked with
//! maximal marginal relevance so the list is not five spellings of one idea.

use std::collections::HashMap;

use serde::Serialize;

use crate::text::Paragraph;

/// Candidates embedded per resource: the most frequent phrases.
pub const MAX_CANDIDATES: usize = 80;
const MAX_PHRASE_WORDS: usize = 3;

/// A candidate phrase and how often it occurs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub phrase: String,
    pub count: usize,
}

/// A chosen keyword.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Keyword {
    pub phrase: String,
    /// Cosine similarity to the resource, rounded to 4 decimals.
    pub score: f32,
}

fn stop_words(lang: &str) -> Vec<&'static str> {
    // The English list is always added: OER in every language quote English code and terms.
    let mut words: Vec<&'static str> = stop_words::lookup("en")
        .map(<[_]>::to_vec)
        .unwrap_or_default();
    if lang != "en" {
        if let Some(list) = stop_words::lookup(lang) {
            words.extend_from_slice(list);
        }
    }
    words
}

/// Candidate phrases of the text, most frequent first (ties: alphabetical), at most [`MAX_CANDIDATES`].
pub fn candidates(paragraphs: &[Paragraph], lang: &str) -> Vec<Candidate> {
    let stops: std::collections::HashSet<String> = stop_words(lang)
        .into_iter()
        .map(str::to_lowercase)
        .collect();
    // lower-case phrase → (count, surface form counts)
    let mut counts: HashMap<String, (usize, HashMap<String, usize>)> = HashMap::new();
    for p in paragraphs {
        // Runs of content words, broken at stop words and at anything that is not a word.
        let mut run: Vec<&str> = Vec::new();
        let mut runs: Vec<Vec<&str>> = Vec::new();
        for token in p.text.split(|c: char| c.is_whitespace()) {
            let word = token.trim_matches(|c: char| !(c.is_alphanumeric() || c == '#' || c == '+'));
            let breaks_after = token.ends_with([',', '.', ';', ':', '!', '?', ')', '"', '”', '»']);
            let is_word = word.chars().filter(|c| c.is_alphabetic()).count() >= 2
                && word
                    .chars()
                    .all(|c| c.is_alphanumeric() || "-_#+'’".contains(c));
            if !is_word || stops.contains(&word.to_lowercase()) {
                if !run.is_empty() {
                    runs.push(std::mem::take(&mut run));
                }
                continue;
            }
            run.push(word);
            if breaks_after || token.starts_with(['(', '"', '“', '«']) && run.len() > 1 {
                runs.push(std::mem::take(&mut run));
            }
        }
        if !run.is_empty() {
            runs.push(run);
        }
        for run in runs {
            for n in 1..=MAX_PHRASE_WORDS.min(run.len()) {
                for window in run.windows(n) {
                    let surface = window.join(" ");
                    if surface.chars().count() < 3 {
                        continue;
                    }
                    let entry = counts.entry(surface.to_lowercase()).or_default();
                    entry.0 += 1;
                    *entry.1.entry(surface).or_default() += 1;
                }
            }
        }
    }
    let total: usize = counts.values().map(|c| c.0).sum();
    let min_count = if total > 400 { 2 } else { 1 };
    let mut out: Vec<Candidate> = counts
        .into_iter()
        .filter(|(_, (count, _))| *count >= min_count)
        .map(|(_, (count, surfaces))| {
            // The most frequent spelling (ties: alphabetical) is the one shown.
            let mut forms: Vec<(String, usize)> = surfaces.into_iter().collect();
            forms.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            Candidate {
                phrase: forms.swap_remove(0).0,
                count,
            }
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.phrase.cmp(&b.phrase)));
    out.truncate(MAX_CANDIDATES);
    out
}

/// Maximal marginal relevance: repeatedly the candidate maximising
/// `λ·sim(candidate, doc) − (1−λ)·max sim(candidate, chosen)`.
pub fn select_mmr(
    candidates: &[Candidate],
    vectors: &[Vec<f32>],
    doc_vector: &[f32],
    top: usize,
    lambda: f32,
) -> Vec<Keyword> {
    let relevance: Vec<f32> = vectors.iter().map(|v| crate::dot(v, doc_vector)).collect();
    let mut chosen: Vec<usize> = Vec::new();
    let mut remaining: Vec<usize> = (0..candidates.len().min(vectors.len())).collect();
    while chosen.len() < top && !remaining.is_empty() {
        let mut best: Option<(usize, f32)> = None;
        for (pos, &i) in remaining.iter().enumerate() {
            let redundancy = chosen
                .iter()
                .map(|&j| crate::dot(&vectors[i], &vectors[j]))
                .fold(f32::NEG_INFINITY, f32::max);
            let redundancy = if chosen.is_empty() { 0.0 } else { redundancy };
            let score = lambda * relevance[i] - (1.0 - lambda) * redundancy;
            // Strictly greater: ties keep the earlier (more frequent) candidate.
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((pos, score));
            }
        }
        let Some((pos, _)) = best else { break };
        chosen.push(remaining.remove(pos));
    }
    chosen
        .into_iter()
        .map(|i| Keyword {
            phrase: candidates[i].phrase.clone(),
            score: (relevance[i] * 10_000.0).round() / 10_000.0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn para(text: &str) -> Paragraph {
        Paragraph {
            text: text.to_string(),
            context: String::new(),
        }
    }

    #[test]
    fn candidates_are_content_word_runs() {
        let c = candidates(
            &[para("The shell is a command-line interface. The shell runs programs, and the shell prints output.")],
            "en",
        );
        let phrases: Vec<&str> = c.iter().map(|c| c.phrase.as_str()).collect();
        assert_eq!(phrases[0], "shell");
        assert!(phrases.contains(&"command-line interface"));
        assert!(phrases.contains(&"shell runs programs"));
        assert!(!phrases
            .iter()
            .any(|p| p.split(' ').any(|w| w.eq_ignore_ascii_case("the"))));
        // A comma ends a run: no phrase spans "programs, and".
        assert!(!phrases.contains(&"programs shell"));
    }

    #[test]
    fn german_stop_words_are_used_for_german() {
        let c = candidates(
            &[para("Die Klasse und die Vererbung in der Programmierung.")],
            "de",
        );
        let phrases: Vec<&str> = c.iter().map(|c| c.phrase.as_str()).collect();
        assert!(phrases.contains(&"Klasse") && phrases.contains(&"Vererbung"));
        assert!(!phrases
            .iter()
            .any(|p| p.contains("und") || p.contains("der")));
    }

    #[test]
    fn mmr_prefers_a_diverse_second_keyword() {
        let cands: Vec<Candidate> = ["a", "a-again", "b"]
            .iter()
            .map(|p| Candidate {
                phrase: p.to_string(),
                count: 1,
            })
            .collect();
        // "a" and "a-again" are near duplicates; "b" is less relevant but different.
        let vectors = vec![
            vec![1.0, 0.0, 0.0],
            vec![0.99, 0.141, 0.0],
            vec![0.0, 0.0, 1.0],
        ];
        let doc = vec![0.9, 0.0, 0.436];
        let picked = select_mmr(&cands, &vectors, &doc, 2, 0.5);
        assert_eq!(picked[0].phrase, "a");
        assert_eq!(picked[1].phrase, "b");
        let relevance_only = select_mmr(&cands, &vectors, &doc, 2, 1.0);
        assert_eq!(relevance_only[1].phrase, "a-again");
    }
}
