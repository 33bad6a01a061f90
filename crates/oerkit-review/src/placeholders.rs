//! Placeholder tokens in unit text: `<gN>`…`</gN>` (paired inline markup) and `<xN/>` (standalone).
//!
//! Every check the review store makes on placeholders lives in this one module. Parsing and validation are
//! the document layer's (`oerkit_document::placeholder`), so a text the queue approves is one the document
//! writer accepts; this module adapts them to the review store's errors and memory normalisation.

use oerkit_document::placeholder::{spans, Placeholder, PlaceholderIssue, Span};
use oerkit_document::TagKind;
use std::collections::BTreeMap;
use std::fmt;

/// Which token a placeholder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TokenKind {
    /// `<gN>`
    Open,
    /// `</gN>`
    Close,
    /// `<xN/>`
    Standalone,
}

/// One placeholder token found in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token {
    pub id: u32,
    pub kind: TokenKind,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TokenKind::Open => write!(f, "<g{}>", self.id),
            TokenKind::Close => write!(f, "</g{}>", self.id),
            TokenKind::Standalone => write!(f, "<x{}/>", self.id),
        }
    }
}

/// A piece of text: literal text or a placeholder token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Token(Token),
}

fn kind_of(kind: TagKind) -> TokenKind {
    match kind {
        TagKind::Open => TokenKind::Open,
        TagKind::Close => TokenKind::Close,
        TagKind::Standalone => TokenKind::Standalone,
    }
}

/// Splits text into literal text and tokens; anything that is not exactly a token is text.
pub fn pieces(text: &str) -> Vec<Piece<'_>> {
    spans(text)
        .into_iter()
        .map(|span| match span {
            Span::Text(s) => Piece::Text(s),
            Span::Token { id, kind, .. } => Piece::Token(Token {
                id,
                kind: kind_of(kind),
            }),
        })
        .collect()
}

/// The tokens of a text in order of appearance.
pub fn tokens(text: &str) -> Vec<Token> {
    pieces(text)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Token(t) => Some(t),
            Piece::Text(_) => None,
        })
        .collect()
}

/// What is wrong with the placeholders of a translation, relative to its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceholderProblems {
    pub missing: Vec<Token>,
    pub added: Vec<Token>,
    pub duplicated: Vec<Token>,
    /// Paired tokens closed before they are opened, or pairs that cross (`<g1><g2></g1></g2>`).
    pub misnested: Vec<Token>,
    /// The tokens the translation must contain, each exactly once.
    pub expected: Vec<Token>,
}

impl fmt::Display for PlaceholderProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[Token]| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!("missing placeholder(s) {}", list(&self.missing)));
        }
        if !self.added.is_empty() {
            parts.push(format!(
                "placeholder(s) {} not in the source",
                list(&self.added)
            ));
        }
        if !self.duplicated.is_empty() {
            parts.push(format!(
                "placeholder(s) {} appear more than once",
                list(&self.duplicated)
            ));
        }
        if !self.misnested.is_empty() {
            parts.push(format!(
                "placeholder(s) {} close before they open or cross another pair",
                list(&self.misnested)
            ));
        }
        let expected = if self.expected.is_empty() {
            "none".to_string()
        } else {
            list(&self.expected)
        };
        write!(
            f,
            "{}; the text must contain each source placeholder exactly once (expected: {expected})",
            parts.join("; ")
        )
    }
}

/// Checks that `translation` carries exactly the placeholders of `source`: none dropped, added or repeated,
/// and pairs properly nested (every `</gN>` after its `<gN>`, no crossing). Order between different
/// placeholders may change (languages reorder).
pub fn validate(source: &str, translation: &str) -> Result<(), PlaceholderProblems> {
    let mut expected: Vec<Token> = tokens(source);
    expected.sort();
    expected.dedup();
    let placeholders: Vec<Placeholder> = expected
        .iter()
        .map(|t| {
            let kind = match t.kind {
                TokenKind::Open => TagKind::Open,
                TokenKind::Close => TagKind::Close,
                TokenKind::Standalone => TagKind::Standalone,
            };
            Placeholder::new(t.id, kind, "")
        })
        .collect();
    let issues = oerkit_document::placeholder::validate(&placeholders, translation);
    if issues.is_empty() {
        return Ok(());
    }
    let mut problems = PlaceholderProblems {
        missing: Vec::new(),
        added: Vec::new(),
        duplicated: Vec::new(),
        misnested: Vec::new(),
        expected,
    };
    for issue in issues {
        let (list, token) = match issue {
            PlaceholderIssue::Missing { token } => (&mut problems.missing, token),
            PlaceholderIssue::Duplicated { token, .. } => (&mut problems.duplicated, token),
            PlaceholderIssue::Invented { token } => (&mut problems.added, token),
            PlaceholderIssue::BadNesting { token } => (&mut problems.misnested, token),
        };
        list.extend(tokens(&token));
    }
    for list in [
        &mut problems.missing,
        &mut problems.added,
        &mut problems.duplicated,
        &mut problems.misnested,
    ] {
        list.sort();
        list.dedup();
    }
    Err(problems)
}

/// Renumbers placeholders by order of first appearance in `source` (1, 2, …) so that texts differing only in
/// placeholder ids compare equal. Returns the normalised source and the map original id → ordinal.
pub fn normalise_source(source: &str) -> (String, BTreeMap<u32, u32>) {
    let mut map = BTreeMap::new();
    for t in tokens(source) {
        let next = map.len() as u32 + 1;
        map.entry(t.id).or_insert(next);
    }
    (renumber(source, &map), map)
}

/// Rewrites every token's id through `map`; ids not in the map are left as they are.
pub fn renumber(text: &str, map: &BTreeMap<u32, u32>) -> String {
    let mut out = String::with_capacity(text.len());
    for p in pieces(text) {
        match p {
            Piece::Text(s) => out.push_str(s),
            Piece::Token(t) => {
                let id = map.get(&t.id).copied().unwrap_or(t.id);
                out.push_str(&Token { id, ..t }.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_reordered_tokens() {
        assert!(validate("a <g1>b</g1> c<x2/>", "<x2/>c <g1>B</g1> a").is_ok());
        assert!(validate("plain", "simple").is_ok());
    }

    #[test]
    fn refuses_dropped_added_duplicated_and_misordered() {
        let e = validate("a <g1>b</g1> c<x2/>", "a b</g1> c<x2/><x2/><x3/>").unwrap_err();
        assert_eq!(
            e.missing,
            vec![Token {
                id: 1,
                kind: TokenKind::Open
            }]
        );
        assert_eq!(
            e.added,
            vec![Token {
                id: 3,
                kind: TokenKind::Standalone
            }]
        );
        assert_eq!(
            e.duplicated,
            vec![Token {
                id: 2,
                kind: TokenKind::Standalone
            }]
        );
        let msg = e.to_string();
        assert!(msg.contains("missing placeholder(s) <g1>"), "{msg}");
        assert!(msg.contains("<x3/> not in the source"), "{msg}");
        assert!(msg.contains("<x2/> appear more than once"), "{msg}");
        let e = validate("<g1>b</g1>", "</g1>b<g1>").unwrap_err();
        assert_eq!(
            e.misnested,
            vec![Token {
                id: 1,
                kind: TokenKind::Close
            }]
        );
        let e = validate("<g1>a<g2>b</g2></g1>", "<g1>a<g2>b</g1></g2>").unwrap_err();
        assert!(!e.misnested.is_empty());
        assert!(e.to_string().contains("cross another pair"), "{e}");
    }

    #[test]
    fn lookalikes_are_text() {
        assert!(tokens("<g> <x/> <gx1> <g1/> </x1>").is_empty());
        assert_eq!(tokens("<g10>a</g10><x7/>").len(), 3);
    }

    #[test]
    fn normalisation_renumbers_by_first_appearance() {
        let (n, map) = normalise_source("<x5/> a <g3>b</g3>");
        assert_eq!(n, "<x1/> a <g2>b</g2>");
        assert_eq!(map.get(&5), Some(&1));
        assert_eq!(map.get(&3), Some(&2));
    }
}
