//! Language of a resource by the `lingua` detector, restricted to the languages oerkit's corpora and
//! target languages use (each language model adds to the binary); the language the file states is
//! reported beside it, and used only when the text is too short to tell.

use lingua::{Language, LanguageDetectorBuilder};
use serde::Serialize;

use crate::text::Paragraph;

/// The languages the detector chooses among.
pub const LANGUAGES: [Language; 8] = [
    Language::English,
    Language::Spanish,
    Language::French,
    Language::German,
    Language::Portuguese,
    Language::Swahili,
    Language::Italian,
    Language::Dutch,
];

/// Characters of text sampled for detection: more adds time, not accuracy.
const SAMPLE_CHARS: usize = 4000;
/// Below this many letters the statement of the file wins over a guess.
const MIN_LETTERS: usize = 40;

/// The language of one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LanguageGuess {
    /// ISO 639-1 code (`und` when neither the text nor the file tells).
    pub code: String,
    /// The detector's confidence in `code` (0–1); `null` when the file's statement was used.
    pub confidence: Option<f64>,
    /// The language the file itself states, as written there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stated: Option<String>,
    /// `detected` or `stated`.
    pub source: &'static str,
}

/// A detector built once and shared by every file of a batch.
pub struct LanguageDetector {
    inner: lingua::LanguageDetector,
}

impl Default for LanguageDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl LanguageDetector {
    pub fn new() -> Self {
        LanguageDetector {
            inner: LanguageDetectorBuilder::from_languages(&LANGUAGES).build(),
        }
    }

    /// The best language for `text` with its confidence, or `None` when it has too few letters.
    pub fn detect_text(&self, text: &str) -> Option<(String, f64)> {
        if text.chars().filter(|c| c.is_alphabetic()).count() < MIN_LETTERS {
            return None;
        }
        let values = self.inner.compute_language_confidence_values(text);
        values
            .first()
            .map(|(lang, conf)| (lang.iso_code_639_1().to_string().to_lowercase(), *conf))
    }

    /// The language of a resource from an even sample of its paragraphs, else what the file states.
    pub fn detect(&self, paragraphs: &[Paragraph], stated: Option<&str>) -> LanguageGuess {
        let sample = sample_text(paragraphs);
        match self.detect_text(&sample) {
            Some((code, confidence)) => LanguageGuess {
                code,
                confidence: Some(confidence),
                stated: stated.map(str::to_string),
                source: "detected",
            },
            None => LanguageGuess {
                code: stated.map_or_else(|| "und".to_string(), primary_subtag),
                confidence: None,
                stated: stated.map(str::to_string),
                source: "stated",
            },
        }
    }
}

/// `es_419` → `es`, `pt-BR` → `pt`.
pub fn primary_subtag(tag: &str) -> String {
    tag.split(['-', '_'])
        .next()
        .unwrap_or(tag)
        .to_ascii_lowercase()
}

/// About [`SAMPLE_CHARS`] characters taken from paragraphs spread over the whole document.
fn sample_text(paragraphs: &[Paragraph]) -> String {
    let total: usize = paragraphs.iter().map(|p| p.text.len() + 1).sum();
    let step = (total / SAMPLE_CHARS).max(1);
    let mut out = String::new();
    for p in paragraphs.iter().step_by(step) {
        if out.len() >= SAMPLE_CHARS {
            break;
        }
        out.push_str(&p.text);
        out.push('\n');
    }
    out
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
    fn detects_each_supported_language_on_a_sentence() {
        let detector = LanguageDetector::new();
        for (code, text) in [
            (
                "en",
                "The shell is a program where users can type commands and run them.",
            ),
            (
                "es",
                "La terminal es un programa donde los usuarios pueden escribir comandos.",
            ),
            (
                "fr",
                "Le terminal est un programme dans lequel on peut taper des commandes.",
            ),
            (
                "de",
                "Die Kommandozeile ist ein Programm, in das man Befehle eintippen kann.",
            ),
            (
                "pt",
                "O terminal é um programa onde os usuários podem digitar comandos.",
            ),
            (
                "sw",
                "Hii ni programu ambayo watumiaji wanaweza kuandika amri na kuziendesha.",
            ),
        ] {
            let guess = detector.detect(&[para(text)], None);
            assert_eq!(guess.code, code, "{text}");
            assert_eq!(guess.source, "detected");
        }
    }

    #[test]
    fn short_text_falls_back_to_the_stated_language() {
        let detector = LanguageDetector::new();
        let guess = detector.detect(&[para("OK")], Some("pt_BR"));
        assert_eq!(guess.code, "pt");
        assert_eq!(guess.source, "stated");
        assert_eq!(detector.detect(&[para("OK")], None).code, "und");
    }
}
