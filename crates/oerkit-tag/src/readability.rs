//! Readability per language and an educational-level estimate from it. Every figure here is an
//! estimate: the formulas were fitted on general prose, syllables are counted by rules, and
//! technical text (code, formulas) reads harder or easier than the numbers say.
//!
//! Formulas (ASL = words per sentence, ASW = syllables per word):
//! - en, Flesch reading ease: 206.835 − 1.015·ASL − 84.6·ASW
//! - es, Fernández-Huerta (as corrected by Law, 2011): 206.84 − 1.02·ASL − 60·ASW
//! - fr, Kandel & Moles: 207 − 1.015·ASL − 73.6·ASW
//! - de, Amstad: 180 − ASL − 58.5·ASW
//!
//! All four read on the same 0 (very hard) – 100 (very easy) scale.

use serde::Serialize;

use crate::text::{sentences, words, Paragraph};

/// The readability of a text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Readability {
    /// `flesch-reading-ease`, `fernandez-huerta`, `kandel-moles` or `amstad`.
    pub formula: &'static str,
    /// The score, 0 (very hard) to 100 (very easy); may fall outside for extreme text.
    pub score: f64,
    pub words: usize,
    pub sentences: usize,
    pub syllables: usize,
    /// Always true: a reminder for whoever reads the record.
    pub estimate: bool,
}

/// An educational level estimated from readability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EducationalLevel {
    /// ISCED 2011 level code (`1`, `2`, `3`, `5-6`, `7-8`).
    pub isced_2011: &'static str,
    pub name: &'static str,
    /// How it was estimated.
    pub basis: String,
    pub estimate: bool,
}

/// The readability formula for a language, if oerkit has one.
pub fn formula_for(lang: &str) -> Option<&'static str> {
    match lang {
        "en" => Some("flesch-reading-ease"),
        "es" => Some("fernandez-huerta"),
        "fr" => Some("kandel-moles"),
        "de" => Some("amstad"),
        _ => None,
    }
}

/// Readability of the paragraphs in `lang` (`None` for languages without a formula or no words).
pub fn readability(paragraphs: &[Paragraph], lang: &str) -> Option<Readability> {
    let formula = formula_for(lang)?;
    let mut n_words = 0usize;
    let mut n_sentences = 0usize;
    let mut n_syllables = 0usize;
    for p in paragraphs {
        for s in sentences(&p.text) {
            let ws = words(s);
            if ws.is_empty() {
                continue;
            }
            n_sentences += 1;
            n_words += ws.len();
            n_syllables += ws.iter().map(|w| syllables(w, lang)).sum::<usize>();
        }
    }
    if n_words == 0 {
        return None;
    }
    let asl = n_words as f64 / n_sentences as f64;
    let asw = n_syllables as f64 / n_words as f64;
    let score = match lang {
        "en" => 206.835 - 1.015 * asl - 84.6 * asw,
        "es" => 206.84 - 1.02 * asl - 60.0 * asw,
        "fr" => 207.0 - 1.015 * asl - 73.6 * asw,
        _ => 180.0 - asl - 58.5 * asw,
    };
    Some(Readability {
        formula,
        score: (score * 10.0).round() / 10.0,
        words: n_words,
        sentences: n_sentences,
        syllables: n_syllables,
        estimate: true,
    })
}

/// The ISCED 2011 level whose readers usually manage text of this reading ease (bands of the Flesch
/// scale: 90+ easy for 11-year-olds, 60–70 plain English for 13–15-year-olds, below 30 graduates).
pub fn level_from(r: &Readability) -> EducationalLevel {
    let (isced_2011, name) = match r.score {
        s if s >= 80.0 => ("1", "Primary education"),
        s if s >= 60.0 => ("2", "Lower secondary education"),
        s if s >= 45.0 => ("3", "Upper secondary education"),
        s if s >= 25.0 => ("5-6", "Short-cycle tertiary or bachelor's level"),
        _ => ("7-8", "Master's or doctoral level"),
    };
    EducationalLevel {
        isced_2011,
        name,
        basis: format!("estimated from {} = {:.1}", r.formula, r.score),
        estimate: true,
    }
}

/// Syllables of one word by the vowel-group rules of `lang`.
pub fn syllables(word: &str, lang: &str) -> usize {
    let w: Vec<char> = word
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphabetic())
        .collect();
    if w.is_empty() {
        return 0;
    }
    let count = match lang {
        "en" => english(&w),
        "es" => spanish(&w),
        "fr" => french(&w),
        _ => vowel_groups(&w, |c| is_vowel(c, lang)),
    };
    count.max(1)
}

fn is_vowel(c: char, lang: &str) -> bool {
    match lang {
        "de" => "aeiouyäöü".contains(c),
        "fr" => "aeiouyàâæéèêëîïôœùûü".contains(c),
        "es" => "aeiouáéíóúü".contains(c),
        "pt" => "aeiouáàâãéêíóôõú".contains(c),
        _ => "aeiouy".contains(c) || (c.is_alphabetic() && !c.is_ascii()),
    }
}

fn vowel_groups(w: &[char], vowel: impl Fn(char) -> bool) -> usize {
    let mut count = 0;
    let mut prev = false;
    for &c in w {
        let v = vowel(c);
        if v && !prev {
            count += 1;
        }
        prev = v;
    }
    count
}

fn english(w: &[char]) -> usize {
    let mut n = vowel_groups(w, |c| "aeiouy".contains(c));
    let s: String = w.iter().collect();
    let consonant = |c: char| c.is_alphabetic() && !"aeiouy".contains(c);
    let len = w.len();
    // Silent final e (make, have), but not in -le after a consonant (table, simple).
    if len > 2 && s.ends_with('e') && n > 1 {
        let le = s.ends_with("le") && consonant(w[len - 3]);
        if !le {
            n -= 1;
        }
    }
    // -ed is silent except after t or d (walked vs. wanted); -es silent except after sibilants.
    if len > 3 && n > 1 {
        let silent_ed =
            s.ends_with("ed") && !matches!(w[len - 3], 't' | 'd') && consonant(w[len - 3]);
        let silent_es = s.ends_with("es")
            && !matches!(w[len - 3], 's' | 'x' | 'z' | 'c' | 'g')
            && !s.ends_with("shes")
            && consonant(w[len - 3]);
        if silent_ed || silent_es {
            n -= 1;
        }
    }
    n
}

fn spanish(w: &[char]) -> usize {
    // Strong vowels (and accented weak ones) next to each other are in hiatus: two syllables;
    // a weak unaccented vowel (i, u, ü) joins its neighbour in a diphthong.
    let strong = |c: char| "aeoáéóíú".contains(c);
    let vowel = |c: char| "aeiouáéíóúü".contains(c);
    let mut n = 0;
    let mut prev: Option<char> = None;
    for &c in w {
        if vowel(c) {
            match prev {
                None => n += 1,
                Some(p) if strong(p) && strong(c) => n += 1,
                Some(_) => {}
            }
            prev = Some(c);
        } else {
            prev = None;
        }
    }
    n
}

fn french(w: &[char]) -> usize {
    let vowel = |c: char| is_vowel(c, "fr");
    let mut n = vowel_groups(w, vowel);
    let s: String = w.iter().collect();
    // Final mute e / es (table, tables) is not pronounced in ordinary speech.
    if n > 1 && (s.ends_with('e') || s.ends_with("es")) {
        let stem_len = if s.ends_with('e') {
            w.len() - 1
        } else {
            w.len() - 2
        };
        if stem_len > 0 && !vowel(w[stem_len - 1]) {
            n -= 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syllables_follow_each_languages_rules() {
        for (lang, word, n) in [
            ("en", "computer", 3),
            ("en", "make", 1),
            ("en", "table", 2),
            ("en", "walked", 1),
            ("en", "wanted", 2),
            ("en", "directories", 4),
            ("en", "the", 1),
            ("es", "poeta", 3),
            ("es", "ciudad", 2),
            ("es", "día", 2),
            ("es", "programa", 3),
            ("fr", "table", 1),
            ("fr", "ordinateur", 4),
            ("fr", "programmes", 2),
            ("de", "Einführung", 3),
            ("de", "Programmierung", 4),
            ("de", "Klasse", 2),
        ] {
            assert_eq!(syllables(word, lang), n, "{lang} {word}");
        }
    }

    #[test]
    fn flesch_reading_ease_of_a_known_passage() {
        // 2 sentences, 13 one-syllable words: 206.835 − 1.015·6.5 − 84.6·1 = 115.6
        let p = vec![Paragraph {
            text: "The cat sat on the mat. The dog ran to the big tree.".into(),
            context: String::new(),
        }];
        let r = readability(&p, "en").expect("english has a formula");
        assert_eq!((r.words, r.sentences, r.syllables), (13, 2, 13));
        assert_eq!(r.score, 115.6);
        assert_eq!(level_from(&r).isced_2011, "1");
    }

    #[test]
    fn harder_text_scores_lower_in_every_language() {
        for (lang, easy, hard) in [
            ("en", "We run. We sit. It is fun.", "Institutional interoperability necessitates comprehensive standardisation considerations."),
            ("es", "Yo como pan. Ella lee.", "La interoperabilidad institucional necesita consideraciones administrativas extraordinariamente complicadas."),
            ("fr", "Il lit. Elle mange du pain.", "L'interopérabilité institutionnelle nécessite des considérations administratives extraordinairement compliquées."),
            ("de", "Er liest. Sie isst Brot.", "Die institutionelle Interoperabilität erfordert außerordentlich komplizierte Verwaltungsüberlegungen."),
        ] {
            let score = |t: &str| {
                readability(&[Paragraph { text: t.into(), context: String::new() }], lang)
                    .expect("formula")
                    .score
            };
            assert!(score(easy) > score(hard) + 40.0, "{lang}");
        }
        assert!(readability(
            &[Paragraph {
                text: "Habari ya leo".into(),
                context: String::new()
            }],
            "sw"
        )
        .is_none());
    }
}
