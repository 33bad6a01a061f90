//! Sentence segmentation of units, rule-based, with abbreviation lists for en, es, fr, de and pt (and
//! a short default list for other languages).
//!
//! A sentence ends after `.`, `!`, `?`, `…` or `;`-less CJK terminators (`。！？`), plus any closing
//! quotes, brackets and closing placeholders that follow, when whitespace and then a sentence start
//! (an upper-case letter or a digit, possibly after opening quotes, `¿`, `¡` or a placeholder) come
//! next. It never splits inside a placeholder pair (`<g1>…</g1>`), inside a number (`3.14`,
//! `1,000.5`), a URL or an e-mail (no whitespace inside them), after an abbreviation (`Dr.`, `z.B.`,
//! `e.g.`, initials, acronyms such as `U.S.`), after a German ordinal (`am 3. Mai`) or a list number
//! that opens the unit (`1. Install`), or before a lower-case continuation (`Wait... what`, `etc. and`).
//!
//! [`segment`] replaces each unit that splits by a [`Piece::Segmented`] of sentence units and the raw
//! whitespace between them; the writer writes the original bytes while no sentence changes.

use std::fmt;
use std::str::FromStr;

use crate::document::{Document, Piece, Unit};
use crate::placeholder::{render, spans, Placeholder, Span, TagKind};

/// How units are segmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SegmentMode {
    /// One unit per sentence.
    #[default]
    Sentences,
    /// Units as the format gives them (paragraphs, list items, messages): no split.
    Paragraphs,
}

impl FromStr for SegmentMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "sentences" | "sentence" => Ok(SegmentMode::Sentences),
            "paragraphs" | "paragraph" | "none" => Ok(SegmentMode::Paragraphs),
            _ => Err(format!(
                "unknown segmentation '{s}'; expected sentences or paragraphs"
            )),
        }
    }
}

impl fmt::Display for SegmentMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SegmentMode::Sentences => "sentences",
            SegmentMode::Paragraphs => "paragraphs",
        })
    }
}

const EN: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "fig", "figs", "no", "nos", "vol",
    "vols", "p", "pp", "ch", "chap", "sec", "approx", "dept", "est", "inc", "ltd", "co", "corp",
    "jan", "feb", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mt", "ave",
    "cf", "al", "ca", "eq", "eqs", "ref", "refs", "ed", "eds", "rev", "gen", "gov", "sgt", "capt",
    "lt",
];
const ES: &[&str] = &[
    "sr", "sra", "srta", "sres", "dr", "dra", "ud", "uds", "vd", "vds", "pág", "págs", "núm",
    "aprox", "cap", "fig", "ej", "av", "avda", "dto", "lic", "ing", "prof", "arq", "tel", "vol",
    "cía", "cf", "admón", "depto", "ee", "uu", "sta", "pto", "apdo", "ed",
];
const FR: &[&str] = &[
    "m", "mm", "mme", "mmes", "mlle", "mlles", "dr", "pr", "me", "st", "ste", "ex", "cf", "chap",
    "fig", "vol", "env", "av", "bd", "janv", "févr", "avr", "juil", "sept", "oct", "nov", "déc",
    "p", "pp", "éd", "app", "hab", "tél",
];
const DE: &[&str] = &[
    "bzw", "ca", "dr", "prof", "hr", "fr", "frl", "nr", "s", "vgl", "evtl", "ggf", "inkl", "max",
    "min", "mio", "mrd", "sog", "abb", "bsp", "str", "jan", "feb", "jh", "jhd", "st", "tel",
    "allg", "entspr", "geb", "gest", "kap", "lt", "bd", "bde", "hrsg", "jr", "sr", "zzgl", "usf",
];
const PT: &[&str] = &[
    "sr", "sra", "srta", "dr", "dra", "prof", "profa", "exmo", "exma", "ex", "pág", "págs", "fig",
    "cap", "vol", "av", "eng", "obs", "aprox", "tel", "ltda", "cia", "séc", "núm", "n", "esq",
    "dir", "gov",
];
const DEFAULT: &[&str] = &[
    "dr", "prof", "mr", "mrs", "ms", "fig", "vol", "vs", "cf", "ca", "no", "p", "pp", "st", "nr",
];

fn abbreviations(lang: &str) -> &'static [&'static str] {
    let primary = lang
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match primary.as_str() {
        "en" => EN,
        "es" => ES,
        "fr" => FR,
        "de" => DE,
        "pt" => PT,
        _ => DEFAULT,
    }
}

fn is_terminator(c: char) -> bool {
    matches!(
        c,
        '.' | '!' | '?' | '…' | '。' | '！' | '？' | '‼' | '⁇' | '⁈' | '⁉'
    )
}

fn is_fullwidth_terminator(c: char) -> bool {
    matches!(c, '。' | '！' | '？')
}

fn is_closer(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | '”' | '’' | '»' | '›' | ')' | ']' | '}' | '」' | '』' | '）'
    )
}

fn is_opener(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | '“' | '‘' | '«' | '‹' | '(' | '[' | '¿' | '¡' | '„' | '「' | '『' | '（'
    )
}

/// One element of unit text: a character or a placeholder token.
#[derive(Debug, Clone, Copy)]
enum Item {
    Char(char),
    Token(TagKind),
}

/// Byte ranges of the sentences of unit `text` (whitespace between sentences is in no range).
pub fn sentence_spans(text: &str, lang: &str) -> Vec<(usize, usize)> {
    let abbrevs = abbreviations(lang);
    let german = abbreviations(lang) == DE;
    let mut items: Vec<(usize, Item)> = Vec::new();
    let mut offset = 0;
    for span in spans(text) {
        match span {
            Span::Text(t) => {
                for (i, c) in t.char_indices() {
                    items.push((offset + i, Item::Char(c)));
                }
                offset += t.len();
            }
            Span::Token {
                kind, text: tok, ..
            } => {
                items.push((offset, Item::Token(kind)));
                offset += tok.len();
            }
        }
    }
    let end_of = |k: usize| -> usize { items.get(k).map_or(text.len(), |(o, _)| *o) };
    let mut sentences = Vec::new();
    let mut start = 0;
    let mut depth = 0usize;
    let mut k = 0;
    while k < items.len() {
        match items[k].1 {
            Item::Token(TagKind::Open) => depth += 1,
            Item::Token(TagKind::Close) => depth = depth.saturating_sub(1),
            _ => {}
        }
        let Item::Char(c) = items[k].1 else {
            k += 1;
            continue;
        };
        if !is_terminator(c) {
            k += 1;
            continue;
        }
        let terminator_at = k;
        // The run of terminators (`?!`, `...`), then closing quotes, brackets and closing tokens.
        let mut j = k + 1;
        while let Some((_, Item::Char(c))) = items.get(j) {
            if is_terminator(*c) {
                j += 1;
            } else {
                break;
            }
        }
        let mut close_depth = depth;
        loop {
            match items.get(j) {
                Some((_, Item::Char(c))) if is_closer(*c) => j += 1,
                Some((_, Item::Token(TagKind::Close))) if close_depth > 0 => {
                    close_depth -= 1;
                    j += 1;
                }
                // French spacing: `Bonjour. »`
                Some((_, Item::Char(' ' | '\u{a0}' | '\u{202f}')))
                    if matches!(items.get(j + 1), Some((_, Item::Char('»' | '”')))) =>
                {
                    j += 2
                }
                _ => break,
            }
        }
        let fullwidth =
            matches!(items[terminator_at].1, Item::Char(c) if is_fullwidth_terminator(c));
        // Whitespace, then the start of the next sentence.
        let mut w = j;
        while let Some((_, Item::Char(c))) = items.get(w) {
            if c.is_whitespace() {
                w += 1;
            } else {
                break;
            }
        }
        let has_space = w > j;
        let splits = close_depth == 0
            && w < items.len()
            && (has_space || fullwidth)
            && starts_sentence(&items[w..])
            && !(c == '.'
                && j == terminator_at + 1
                && protected_period(text, &items, terminator_at, start, abbrevs, german));
        if splits {
            sentences.push((start, end_of(j)));
            start = end_of(w);
            depth = close_depth;
            k = w;
        } else {
            k = j.max(k + 1);
            depth = close_depth;
        }
    }
    if start < text.len() {
        sentences.push((start, text.len()));
    }
    sentences
}

/// Whether the items begin a sentence: an upper-case letter or digit, after any openers and tokens.
fn starts_sentence(items: &[(usize, Item)]) -> bool {
    for (_, item) in items {
        match item {
            Item::Token(_) => continue,
            Item::Char(c) if is_opener(*c) || c.is_whitespace() => continue,
            Item::Char(c) => {
                return c.is_uppercase()
                    || c.is_ascii_digit()
                    || (c.is_alphabetic() && !c.is_lowercase())
            }
        }
    }
    false
}

/// Whether the single `.` at `items[at]` belongs to the word before it rather than ending a sentence.
fn protected_period(
    text: &str,
    items: &[(usize, Item)],
    at: usize,
    sentence_start: usize,
    abbrevs: &[&str],
    german: bool,
) -> bool {
    let mut b = at;
    while b > 0 {
        match items[b - 1].1 {
            Item::Char(c) if !c.is_whitespace() && !is_opener(c) => b -= 1,
            _ => break,
        }
    }
    let word_start = items.get(b).map_or(text.len(), |(o, _)| *o);
    let word = &text[word_start..items[at].0];
    if word.is_empty() {
        return false;
    }
    let lower = word.to_lowercase();
    if abbrevs.contains(&lower.as_str()) {
        return true;
    }
    // Multi-dot abbreviations and acronyms: e.g, i.e, z.B, d.h, p.ej, U.S
    if word.contains('.')
        && word.split('.').all(|part| {
            !part.is_empty() && part.chars().count() <= 3 && part.chars().all(char::is_alphabetic)
        })
    {
        return true;
    }
    // An initial: `J. Smith`.
    let mut chars = word.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        if c.is_uppercase() {
            return true;
        }
    }
    // Ordinals (`am 3. Mai`) in German; a list number opening the unit (`1. Install`) anywhere.
    if word.chars().all(|c| c.is_ascii_digit()) {
        return german || word_start == sentence_start;
    }
    false
}

/// Splits units into sentences (see the module doc). Paragraph mode returns the document unchanged.
/// Units inside format-specific pieces (e.g. PO entries) are messages and are not split.
pub fn segment(mut doc: Document, mode: SegmentMode, lang: &str) -> Document {
    if mode == SegmentMode::Paragraphs {
        return doc;
    }
    let old_units = std::mem::take(&mut doc.units);
    let direct: Vec<bool> = {
        let mut d = vec![false; old_units.len()];
        mark_direct(&doc.pieces, &mut d);
        d
    };
    // new index (or indices, for split units) of each old unit.
    let mut mapping: Vec<Vec<usize>> = Vec::with_capacity(old_units.len());
    let mut gaps: Vec<Vec<String>> = Vec::with_capacity(old_units.len());
    let mut raws: Vec<String> = Vec::with_capacity(old_units.len());
    for (i, unit) in old_units.into_iter().enumerate() {
        raws.push(unit.raw.clone());
        let parts = if direct[i] {
            split_unit(&unit, lang)
        } else {
            None
        };
        match parts {
            Some((sentences, between)) => {
                let mut indices = Vec::new();
                for s in sentences {
                    indices.push(doc.units.len());
                    doc.units.push(s);
                }
                mapping.push(indices);
                gaps.push(between);
            }
            None => {
                mapping.push(vec![doc.units.len()]);
                doc.units.push(unit);
                gaps.push(Vec::new());
            }
        }
    }
    let pieces = std::mem::take(&mut doc.pieces);
    doc.pieces = pieces
        .into_iter()
        .map(|p| remap(p, &mapping, &gaps, &raws))
        .collect();
    doc.assign_ids();
    doc
}

fn mark_direct(pieces: &[Piece], direct: &mut [bool]) {
    for piece in pieces {
        match piece {
            Piece::Unit(i) => {
                if let Some(d) = direct.get_mut(*i) {
                    *d = true;
                }
            }
            Piece::Segmented { parts, .. } => mark_direct(parts, direct),
            _ => {}
        }
    }
}

fn remap(piece: Piece, mapping: &[Vec<usize>], gaps: &[Vec<String>], raws: &[String]) -> Piece {
    match piece {
        Piece::Unit(i) => {
            let indices = &mapping[i];
            if indices.len() == 1 {
                return Piece::Unit(indices[0]);
            }
            let mut parts = Vec::new();
            for (n, &idx) in indices.iter().enumerate() {
                if n > 0 {
                    parts.push(Piece::Raw(gaps[i][n - 1].clone()));
                }
                parts.push(Piece::Unit(idx));
            }
            Piece::Segmented {
                raw: raws[i].clone(),
                parts,
            }
        }
        Piece::Segmented { raw, parts } => Piece::Segmented {
            raw,
            parts: parts
                .into_iter()
                .map(|p| remap(p, mapping, gaps, raws))
                .collect(),
        },
        Piece::Custom { kind, raw, units } => Piece::Custom {
            kind,
            raw,
            units: units.iter().map(|&i| mapping[i][0]).collect(),
        },
        other => other,
    }
}

/// The sentence units of `unit` and the escaped whitespace between them; `None`: one sentence.
fn split_unit(unit: &Unit, lang: &str) -> Option<(Vec<Unit>, Vec<String>)> {
    let ranges = sentence_spans(&unit.text, lang);
    if ranges.len() < 2 {
        return None;
    }
    let mut sentences = Vec::new();
    let mut between = Vec::new();
    for (n, &(s, e)) in ranges.iter().enumerate() {
        if n > 0 {
            let gap = &unit.text[ranges[n - 1].1..s];
            let mut escaped = String::new();
            unit.escape.apply(gap, &mut escaped);
            between.push(escaped);
        }
        let text = &unit.text[s..e];
        let placeholders: Vec<Placeholder> = unit
            .placeholders
            .iter()
            .filter(|p| text.contains(&p.token()))
            .cloned()
            .collect();
        // A pair split across sentences would be a bug in the splitter: keep the unit whole.
        let raw = render(&placeholders, unit.escape, text).ok()?;
        let mut sentence = Unit::new(text, raw, unit.context.clone(), unit.escape);
        sentence.placeholders = placeholders;
        sentence.note = unit.note.clone();
        sentence.key = unit.key.as_ref().map(|k| format!("{k}#{}", n + 1));
        sentences.push(sentence);
    }
    Some((sentences, between))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Format, FormatKind};
    use crate::formats::text::Text;
    use crate::write::{write_document, Translations, WriteOptions};
    use std::path::Path;

    fn split(text: &str, lang: &str) -> Vec<String> {
        sentence_spans(text, lang)
            .into_iter()
            .map(|(s, e)| text[s..e].to_string())
            .collect()
    }

    #[test]
    fn english() {
        assert_eq!(
            split(
                "Dr. Smith paid $3.14 for 1,000.5 kg. He left at 5 p.m. on Monday! Did he? Yes.",
                "en"
            ),
            vec![
                "Dr. Smith paid $3.14 for 1,000.5 kg.",
                "He left at 5 p.m. on Monday!",
                "Did he?",
                "Yes."
            ]
        );
        assert_eq!(
            split(
                "See https://example.org/a.b. Mail me at a.b@c.org. Then go, e.g. home.",
                "en"
            ),
            vec![
                "See https://example.org/a.b.",
                "Mail me at a.b@c.org.",
                "Then go, e.g. home."
            ]
        );
        assert_eq!(
            split("Wait... what? \"Really?!\" She said. (It was late.) And then J. R. R. Tolkien spoke.", "en"),
            vec!["Wait... what?", "\"Really?!\"", "She said.", "(It was late.)", "And then J. R. R. Tolkien spoke."]
        );
        assert_eq!(
            split("Files, dirs, etc. are listed. The U.S. team won.", "en"),
            vec!["Files, dirs, etc. are listed.", "The U.S. team won."]
        );
        assert_eq!(
            split("1. Install it. 2. Run it.", "en"),
            vec!["1. Install it.", "2. Run it."]
        );
    }

    #[test]
    fn spanish_french_german_portuguese() {
        assert_eq!(
            split(
                "La Sra. García llegó. ¿Vino el Dr. Pérez? ¡Sí! Ver pág. 5, p.ej. hoy.",
                "es"
            ),
            vec![
                "La Sra. García llegó.",
                "¿Vino el Dr. Pérez?",
                "¡Sí!",
                "Ver pág. 5, p.ej. hoy."
            ]
        );
        assert_eq!(
            split(
                "M. Dupont est là. Vraiment ? Oui. Il a dit « Bonjour. » Puis il est parti.",
                "fr"
            ),
            vec![
                "M. Dupont est là.",
                "Vraiment ?",
                "Oui.",
                "Il a dit « Bonjour. »",
                "Puis il est parti."
            ]
        );
        assert_eq!(
            split(
                "Das ist z.B. gut. Am 3. Mai kam Dr. Müller, d.h. gestern. Siehe Abb. 4.",
                "de"
            ),
            vec![
                "Das ist z.B. gut.",
                "Am 3. Mai kam Dr. Müller, d.h. gestern.",
                "Siehe Abb. 4."
            ]
        );
        assert_eq!(
            split(
                "O Sr. Silva chegou. A Profa. Lima também, p.ex. ontem. Fim.",
                "pt"
            ),
            vec![
                "O Sr. Silva chegou.",
                "A Profa. Lima também, p.ex. ontem.",
                "Fim."
            ]
        );
    }

    #[test]
    fn placeholders_are_never_split() {
        assert_eq!(
            split("Run <g1>this. Then</g1> that. <x2/> Next one.", "en"),
            vec!["Run <g1>this. Then</g1> that.", "<x2/> Next one."]
        );
        assert_eq!(
            split("<g1>First.</g1> Second.", "en"),
            vec!["<g1>First.</g1>", "Second."]
        );
        assert_eq!(
            split("日本語です。次の文です。", "ja"),
            vec!["日本語です。", "次の文です。"]
        );
    }

    #[test]
    fn segment_replaces_units_and_writes_back() {
        let input = "First one. Second one.\n\nAlone here.\n";
        let mut doc = Text.read(input).unwrap();
        doc.assign_ids();
        assert_eq!(doc.format, FormatKind::Text);
        let para = segment(doc.clone(), SegmentMode::Paragraphs, "en");
        assert_eq!(para, doc);
        let seg = segment(doc, SegmentMode::Sentences, "en");
        assert_eq!(
            seg.source_texts(),
            vec!["First one.", "Second one.", "Alone here."]
        );
        assert!(matches!(seg.pieces[0], Piece::Segmented { .. }));
        let opts = WriteOptions::default();
        let path = Path::new("x.txt");
        assert_eq!(
            write_document(&seg, &Translations::identity(&seg), &opts, path).unwrap(),
            input
        );
        let tr = Translations {
            texts: vec![None, Some("Segunda.".into()), Some("Sola.".into())],
        };
        assert_eq!(
            write_document(&seg, &tr, &opts, path).unwrap(),
            "First one. Segunda.\n\nSola.\n"
        );
        let ids: Vec<_> = seg.units.iter().map(|u| u.id.clone()).collect();
        let again = segment(Text.read(input).unwrap(), SegmentMode::Sentences, "en");
        assert_eq!(
            again.units.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
            ids
        );
    }

    #[test]
    fn mode_parses() {
        assert_eq!("sentences".parse(), Ok(SegmentMode::Sentences));
        assert_eq!("paragraphs".parse(), Ok(SegmentMode::Paragraphs));
        assert!("words".parse::<SegmentMode>().is_err());
    }
}
