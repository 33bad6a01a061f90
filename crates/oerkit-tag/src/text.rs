//! The plain text of a document as the tagger sees it: each unit's text without placeholder tokens,
//! whitespace collapsed, and chunks of it sized for a sentence-embedding model.

use oerkit_document::placeholder::{spans, Span};
use oerkit_document::Document;

/// One unit's plain text and where it sits (heading path, element).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paragraph {
    pub text: String,
    pub context: String,
}

/// The units of `doc` as plain text, empty ones dropped, in document order.
pub fn plain_paragraphs(doc: &Document) -> Vec<Paragraph> {
    doc.units
        .iter()
        .filter_map(|unit| {
            let plain: String = spans(&unit.text)
                .into_iter()
                .map(|s| match s {
                    Span::Text(t) => t,
                    // Inline code and other markup become a space, so words on either side stay apart.
                    Span::Token { .. } => " ",
                })
                .collect();
            let text = plain.split_whitespace().collect::<Vec<_>>().join(" ");
            text.chars().any(char::is_alphabetic).then(|| Paragraph {
                text,
                context: unit.context.clone(),
            })
        })
        .collect()
}

/// Words per chunk: MiniLM-class models truncate at 256 word pieces, about 150–190 words.
pub const CHUNK_WORDS: usize = 120;
/// Most chunks embedded per resource; a long resource is sampled evenly so the whole of it counts.
pub const MAX_CHUNKS: usize = 24;

/// The text cut into chunks of about [`CHUNK_WORDS`] words along paragraph boundaries, at most
/// [`MAX_CHUNKS`] of them taken evenly from the whole document; the title comes first as its own chunk.
pub fn chunks(title: &str, paragraphs: &[Paragraph]) -> Vec<String> {
    let mut all = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for p in paragraphs {
        for word in p.text.split_whitespace() {
            current.push(word);
            if current.len() >= CHUNK_WORDS {
                all.push(current.join(" "));
                current.clear();
            }
        }
        // A paragraph boundary closes a chunk that is already more than half full.
        if current.len() >= CHUNK_WORDS / 2 {
            all.push(current.join(" "));
            current.clear();
        }
    }
    if !current.is_empty() {
        all.push(current.join(" "));
    }
    let mut out = Vec::new();
    if !title.trim().is_empty() {
        out.push(title.trim().to_string());
    }
    if all.len() <= MAX_CHUNKS {
        out.extend(all);
    } else {
        // Evenly spaced, deterministic sample.
        for k in 0..MAX_CHUNKS {
            let i = k * all.len() / MAX_CHUNKS;
            out.push(all[i].clone());
        }
    }
    out
}

/// Splits text into sentences at `.`, `!`, `?` (and `:` `;` are not ends) followed by a space and
/// an upper-case letter, a digit or an opening mark; every paragraph ends a sentence.
pub fn sentences(paragraph: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = paragraph.char_indices().collect();
    for w in 0..chars.len() {
        let (i, c) = chars[w];
        if matches!(c, '.' | '!' | '?' | '…') {
            let next = chars.get(w + 1).map(|&(_, n)| n);
            let after = chars.get(w + 2).map(|&(_, n)| n);
            let boundary = match (next, after) {
                (None, _) => true,
                (Some(n), Some(a)) if n.is_whitespace() => {
                    a.is_uppercase()
                        || a.is_numeric()
                        || matches!(a, '"' | '“' | '«' | '¿' | '¡' | '(')
                }
                _ => false,
            };
            if boundary {
                let end = i + c.len_utf8();
                let s = paragraph[start..end].trim();
                if !s.is_empty() {
                    out.push(s);
                }
                start = end;
            }
        }
    }
    let rest = paragraph[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// The words of a text: runs of letters (with inner apostrophes and hyphens), digits dropped.
pub fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_alphabetic() || c == '\'' || c == '’' || c == '-'))
        .map(|w| w.trim_matches(|c: char| !c.is_alphabetic()))
        .filter(|w| w.chars().any(char::is_alphabetic))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_at_ends_not_abbreviation_like_dots() {
        let s =
            sentences("The shell is a program. It runs commands! Version 3.2 is old. e.g. this");
        assert_eq!(
            s,
            vec![
                "The shell is a program.",
                "It runs commands!",
                "Version 3.2 is old. e.g. this"
            ]
        );
    }

    #[test]
    fn words_drop_numbers_and_punctuation() {
        assert_eq!(
            words("Die Klasse (Nr. 42) hat 3 Methoden, don't!"),
            vec!["Die", "Klasse", "Nr", "hat", "Methoden", "don't"]
        );
    }

    #[test]
    fn chunks_sample_long_documents_evenly() {
        let paragraphs: Vec<Paragraph> = (0..200)
            .map(|i| Paragraph {
                text: format!("para{i} ") + &"word ".repeat(CHUNK_WORDS),
                context: String::new(),
            })
            .collect();
        let c = chunks("Title", &paragraphs);
        assert_eq!(c.len(), MAX_CHUNKS + 1);
        assert_eq!(c[0], "Title");
        assert!(c[1].starts_with("para0 "));
        assert!(c.last().is_some_and(|l| !l.starts_with("para0 ")));
    }
}
