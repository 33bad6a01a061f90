//! Placeholder tokens in unit text: `<gN>`…`</gN>` (paired inline markup) and `<xN/>` (standalone).
//!
//! Every check the review store makes on placeholders lives in this one module, so it can be swapped for the
//! document crate's own token parser once that is a dependency of this crate.

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

/// Recognises a token at the start of `s`; returns it and its length in bytes.
fn token_at(s: &str) -> Option<(Token, usize)> {
    let b = s.as_bytes();
    let (kind, mut i) = if b.starts_with(b"</g") {
        (TokenKind::Close, 3)
    } else if b.starts_with(b"<g") {
        (TokenKind::Open, 2)
    } else if b.starts_with(b"<x") {
        (TokenKind::Standalone, 2)
    } else {
        return None;
    };
    let digits_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == digits_start || i - digits_start > 9 {
        return None;
    }
    let id: u32 = s[digits_start..i].parse().ok()?;
    let tail: &[u8] = if kind == TokenKind::Standalone {
        b"/>"
    } else {
        b">"
    };
    if !b[i..].starts_with(tail) {
        return None;
    }
    Some((Token { id, kind }, i + tail.len()))
}

/// Splits text into literal text and tokens; anything that is not exactly a token is text.
pub fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    while i < text.len() {
        if text.as_bytes()[i] == b'<' {
            if let Some((token, len)) = token_at(&text[i..]) {
                if text_start < i {
                    out.push(Piece::Text(&text[text_start..i]));
                }
                out.push(Piece::Token(token));
                i += len;
                text_start = i;
                continue;
            }
        }
        i += 1;
    }
    if text_start < text.len() {
        out.push(Piece::Text(&text[text_start..]));
    }
    out
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
    /// Paired tokens whose closing token comes before the opening one.
    pub misordered: Vec<u32>,
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
        for id in &self.misordered {
            parts.push(format!("</g{id}> comes before <g{id}>"));
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
/// and every `</gN>` after its `<gN>`. Order between different placeholders may change (languages reorder).
pub fn validate(source: &str, translation: &str) -> Result<(), PlaceholderProblems> {
    let mut expected: Vec<Token> = tokens(source);
    expected.sort();
    expected.dedup();
    let mut seen: BTreeMap<Token, usize> = BTreeMap::new();
    let mut position: BTreeMap<Token, usize> = BTreeMap::new();
    for (i, t) in tokens(translation).into_iter().enumerate() {
        *seen.entry(t).or_default() += 1;
        position.entry(t).or_insert(i);
    }
    let missing: Vec<Token> = expected
        .iter()
        .filter(|t| !seen.contains_key(t))
        .copied()
        .collect();
    let added: Vec<Token> = seen
        .keys()
        .filter(|t| expected.binary_search(t).is_err())
        .copied()
        .collect();
    let duplicated: Vec<Token> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(t, _)| *t)
        .collect();
    let misordered: Vec<u32> = position
        .iter()
        .filter(|(t, _)| t.kind == TokenKind::Close)
        .filter_map(|(t, close_at)| {
            let open = Token {
                id: t.id,
                kind: TokenKind::Open,
            };
            match position.get(&open) {
                Some(open_at) if open_at > close_at => Some(t.id),
                _ => None,
            }
        })
        .collect();
    if missing.is_empty() && added.is_empty() && duplicated.is_empty() && misordered.is_empty() {
        Ok(())
    } else {
        Err(PlaceholderProblems {
            missing,
            added,
            duplicated,
            misordered,
            expected,
        })
    }
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
        assert_eq!(e.misordered, vec![1]);
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
