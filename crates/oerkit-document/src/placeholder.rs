//! Placeholders: inline markup inside a unit is replaced by tokens an engine must carry over unchanged.
//!
//! Paired markup (`<em>…</em>`, `**…**`, `[…](url)`) becomes `<g1>…</g1>`; standalone markup (`<br/>`,
//! inline code, math, `%s`, `{name}`) becomes `<x2/>`. The names follow XLIFF 1.2 (`<g>`, `<x/>`), which
//! instruction-tuned models already know to keep. Text that happens to look like a token in the source is
//! itself turned into a standalone placeholder by the readers, so a token in a unit is never ambiguous.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Which token a placeholder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TagKind {
    /// `<gN>`
    Open,
    /// `</gN>`
    Close,
    /// `<xN/>`
    Standalone,
}

/// One token of a unit's text and the markup it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placeholder {
    pub id: u32,
    pub kind: TagKind,
    /// The exact markup the token replaced, written back verbatim.
    pub original: String,
}

impl Placeholder {
    pub fn new(id: u32, kind: TagKind, original: impl Into<String>) -> Self {
        Placeholder {
            id,
            kind,
            original: original.into(),
        }
    }

    /// The token as it appears in unit text.
    pub fn token(&self) -> String {
        token(self.id, self.kind)
    }
}

/// The token text for a placeholder id and kind.
pub fn token(id: u32, kind: TagKind) -> String {
    match kind {
        TagKind::Open => format!("<g{id}>"),
        TagKind::Close => format!("</g{id}>"),
        TagKind::Standalone => format!("<x{id}/>"),
    }
}

/// A piece of unit text: plain text or a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span<'a> {
    Text(&'a str),
    Token {
        id: u32,
        kind: TagKind,
        text: &'a str,
    },
}

/// Splits unit text into plain text and placeholder tokens. Anything that is not exactly a token is text.
pub fn spans(text: &str) -> Vec<Span<'_>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'<' {
            if let Some((len, id, kind)) = match_token(&bytes[i..]) {
                if text_start < i {
                    out.push(Span::Text(&text[text_start..i]));
                }
                out.push(Span::Token {
                    id,
                    kind,
                    text: &text[i..i + len],
                });
                i += len;
                text_start = i;
                continue;
            }
        }
        i += 1;
    }
    if text_start < text.len() {
        out.push(Span::Text(&text[text_start..]));
    }
    out
}

/// Whether `s` contains anything that parses as a placeholder token.
pub fn contains_token(s: &str) -> bool {
    spans(s).iter().any(|s| matches!(s, Span::Token { .. }))
}

fn match_token(b: &[u8]) -> Option<(usize, u32, TagKind)> {
    // <gN>  </gN>  <xN/>
    let (kind, mut i) = match b.get(1)? {
        b'g' => (TagKind::Open, 2),
        b'x' => (TagKind::Standalone, 2),
        b'/' if b.get(2) == Some(&b'g') => (TagKind::Close, 3),
        _ => return None,
    };
    let digits_start = i;
    while i < b.len() && b[i].is_ascii_digit() && i - digits_start < 9 {
        i += 1;
    }
    if i == digits_start || b[digits_start] == b'0' {
        return None;
    }
    let id: u32 = std::str::from_utf8(&b[digits_start..i])
        .ok()?
        .parse()
        .ok()?;
    match kind {
        TagKind::Standalone => {
            if b.get(i) == Some(&b'/') && b.get(i + 1) == Some(&b'>') {
                Some((i + 2, id, kind))
            } else {
                None
            }
        }
        _ => {
            if b.get(i) == Some(&b'>') {
                Some((i + 1, id, kind))
            } else {
                None
            }
        }
    }
}

/// What is wrong with the placeholders of a translation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "issue", rename_all = "snake_case")]
pub enum PlaceholderIssue {
    Missing {
        token: String,
    },
    Duplicated {
        token: String,
        count: usize,
    },
    Invented {
        token: String,
    },
    /// A closing token before its opening one, or pairs that cross (`<g1><g2></g1></g2>`).
    BadNesting {
        token: String,
    },
}

impl fmt::Display for PlaceholderIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlaceholderIssue::Missing { token } => write!(f, "placeholder {token} is missing"),
            PlaceholderIssue::Duplicated { token, count } => {
                write!(
                    f,
                    "placeholder {token} appears {count} times (once expected)"
                )
            }
            PlaceholderIssue::Invented { token } => {
                write!(f, "placeholder {token} is not in the source")
            }
            PlaceholderIssue::BadNesting { token } => {
                write!(f, "placeholder {token} is out of order")
            }
        }
    }
}

/// Checks that `translation` uses each of the source's placeholders exactly once, invents none, and
/// keeps pairs properly nested. Returns every issue found (empty: valid).
pub fn validate(placeholders: &[Placeholder], translation: &str) -> Vec<PlaceholderIssue> {
    let expected: BTreeSet<(u32, TagKind)> = placeholders.iter().map(|p| (p.id, p.kind)).collect();
    let mut counts: BTreeMap<(u32, TagKind), usize> = BTreeMap::new();
    let mut issues = Vec::new();
    let mut open_stack: Vec<u32> = Vec::new();
    for span in spans(translation) {
        let Span::Token { id, kind, text } = span else {
            continue;
        };
        *counts.entry((id, kind)).or_default() += 1;
        if !expected.contains(&(id, kind)) {
            issues.push(PlaceholderIssue::Invented {
                token: text.to_string(),
            });
            continue;
        }
        match kind {
            TagKind::Open => open_stack.push(id),
            TagKind::Close => {
                if open_stack.last() == Some(&id) {
                    open_stack.pop();
                } else {
                    issues.push(PlaceholderIssue::BadNesting {
                        token: text.to_string(),
                    });
                    if let Some(pos) = open_stack.iter().rposition(|&o| o == id) {
                        open_stack.remove(pos);
                    }
                }
            }
            TagKind::Standalone => {}
        }
    }
    for &(id, kind) in &expected {
        match counts.get(&(id, kind)).copied().unwrap_or(0) {
            0 => issues.push(PlaceholderIssue::Missing {
                token: token(id, kind),
            }),
            1 => {}
            n => issues.push(PlaceholderIssue::Duplicated {
                token: token(id, kind),
                count: n,
            }),
        }
    }
    issues
}

/// How plain text of a translation is escaped when written into a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Escape {
    /// Written as it is (Markdown, plain text, lines).
    #[default]
    None,
    /// XML/HTML character data: `&` and `<` (and `>` after `]]`).
    XmlText,
    /// XML/HTML attribute value in double quotes.
    XmlAttrDouble,
    /// XML/HTML attribute value in single quotes.
    XmlAttrSingle,
    /// Inside a JSON string literal.
    Json,
    /// Inside a gettext PO string literal (C escapes).
    Po,
}

impl Escape {
    pub fn apply(self, s: &str, out: &mut String) {
        match self {
            Escape::None => out.push_str(s),
            Escape::XmlText => {
                for (i, c) in s.char_indices() {
                    match c {
                        '&' => out.push_str("&amp;"),
                        '<' => out.push_str("&lt;"),
                        '>' if s[..i].ends_with("]]") => out.push_str("&gt;"),
                        _ => out.push(c),
                    }
                }
            }
            Escape::XmlAttrDouble | Escape::XmlAttrSingle => {
                for c in s.chars() {
                    match c {
                        '&' => out.push_str("&amp;"),
                        '<' => out.push_str("&lt;"),
                        '"' if self == Escape::XmlAttrDouble => out.push_str("&quot;"),
                        '\'' if self == Escape::XmlAttrSingle => out.push_str("&apos;"),
                        _ => out.push(c),
                    }
                }
            }
            Escape::Json => {
                for c in s.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                        c => out.push(c),
                    }
                }
            }
            Escape::Po => {
                for c in s.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        c => out.push(c),
                    }
                }
            }
        }
    }
}

/// Puts the markup back into a translated unit text: tokens become their originals, text is escaped.
/// Fails with every placeholder issue when the translation does not carry the source's tokens exactly.
pub fn render(
    placeholders: &[Placeholder],
    escape: Escape,
    translation: &str,
) -> Result<String, Vec<PlaceholderIssue>> {
    let issues = validate(placeholders, translation);
    if !issues.is_empty() {
        return Err(issues);
    }
    let mut out = String::with_capacity(translation.len() + 16);
    for span in spans(translation) {
        match span {
            Span::Text(t) => escape.apply(t, &mut out),
            Span::Token { id, kind, .. } => {
                if let Some(p) = placeholders.iter().find(|p| p.id == id && p.kind == kind) {
                    out.push_str(&p.original);
                }
            }
        }
    }
    Ok(out)
}

/// Builds unit text and its placeholders, numbering tokens in order of appearance.
#[derive(Debug, Default)]
pub struct TextBuilder {
    pub text: String,
    pub placeholders: Vec<Placeholder>,
    next_id: u32,
    open: Vec<u32>,
}

impl TextBuilder {
    pub fn new() -> Self {
        TextBuilder {
            next_id: 1,
            ..Default::default()
        }
    }

    /// Adds plain (already unescaped) text. Text that looks like a token is protected as a placeholder.
    pub fn text(&mut self, s: &str) {
        if !s.contains('<') || !contains_token(s) {
            self.text.push_str(s);
            return;
        }
        for span in spans(s) {
            match span {
                Span::Text(t) => self.text.push_str(t),
                Span::Token { text, .. } => {
                    self.standalone(text);
                }
            }
        }
    }

    /// Adds standalone markup; returns its id.
    pub fn standalone(&mut self, original: &str) -> u32 {
        let id = self.alloc();
        self.placeholders
            .push(Placeholder::new(id, TagKind::Standalone, original));
        self.text.push_str(&token(id, TagKind::Standalone));
        id
    }

    /// Opens paired markup; close it with [`TextBuilder::close`].
    pub fn open(&mut self, original: &str) -> u32 {
        let id = self.alloc();
        self.placeholders
            .push(Placeholder::new(id, TagKind::Open, original));
        self.text.push_str(&token(id, TagKind::Open));
        self.open.push(id);
        id
    }

    /// Closes the innermost open pair with the given closing markup.
    pub fn close(&mut self, original: &str) {
        match self.open.pop() {
            Some(id) => {
                self.placeholders
                    .push(Placeholder::new(id, TagKind::Close, original));
                self.text.push_str(&token(id, TagKind::Close));
            }
            // A stray closer with no opener is kept as standalone markup.
            None => {
                self.standalone(original);
            }
        }
    }

    /// Whether pairs are still open.
    pub fn has_open(&self) -> bool {
        !self.open.is_empty()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Whether the text has anything to translate: letters outside placeholder tokens.
    pub fn has_translatable_text(&self) -> bool {
        has_translatable_text(&self.text)
    }

    fn alloc(&mut self) -> u32 {
        if self.next_id == 0 {
            self.next_id = 1;
        }
        let id = self.next_id;
        self.next_id += 1;
        id
    }
}

/// Whether unit text has letters outside placeholder tokens (a unit of only markup, digits and
/// punctuation is not worth sending to an engine).
pub fn has_translatable_text(text: &str) -> bool {
    spans(text)
        .iter()
        .any(|s| matches!(s, Span::Text(t) if t.chars().any(char::is_alphabetic)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (String, Vec<Placeholder>) {
        let mut b = TextBuilder::new();
        b.text("Run ");
        b.standalone("`ls`");
        b.text(" in the ");
        b.open("**");
        b.text("shell");
        b.close("**");
        b.text(".");
        (b.text, b.placeholders)
    }

    #[test]
    fn builder_numbers_tokens_in_order() {
        let (text, ph) = sample();
        assert_eq!(text, "Run <x1/> in the <g2>shell</g2>.");
        assert_eq!(ph.len(), 3);
    }

    #[test]
    fn render_restores_markup_and_escapes() {
        let (_, ph) = sample();
        let out = render(
            &ph,
            Escape::XmlText,
            "Ejecuta <x1/> en la <g2>shell</g2> & más.",
        )
        .unwrap();
        assert_eq!(out, "Ejecuta `ls` en la **shell** &amp; más.");
    }

    #[test]
    fn validate_reports_each_issue() {
        let (_, ph) = sample();
        assert!(validate(&ph, "<x1/> <g2>a</g2>").is_empty());
        assert_eq!(
            validate(&ph, "<g2>a</g2>"),
            vec![PlaceholderIssue::Missing {
                token: "<x1/>".into()
            }]
        );
        assert!(matches!(
            validate(&ph, "<x1/><x1/><g2>a</g2>")[0],
            PlaceholderIssue::Duplicated { .. }
        ));
        assert!(matches!(
            validate(&ph, "<x1/><x9/><g2>a</g2>")[0],
            PlaceholderIssue::Invented { .. }
        ));
        assert!(matches!(
            validate(&ph, "<x1/></g2>a<g2>")[0],
            PlaceholderIssue::BadNesting { .. }
        ));
    }

    #[test]
    fn literal_tokens_in_source_are_protected() {
        let mut b = TextBuilder::new();
        b.text("write <g1> literally");
        assert_eq!(b.text, "write <x1/> literally");
        assert_eq!(
            render(&b.placeholders, Escape::None, &b.text).unwrap(),
            "write <g1> literally"
        );
    }

    #[test]
    fn non_tokens_are_text() {
        assert_eq!(
            spans("a <b> <g0> <g1 > <x2>"),
            vec![Span::Text("a <b> <g0> <g1 > <x2>")]
        );
    }
}
