//! Inline codes inside string resources (PO messages, H5P strings): printf and Python format
//! specifiers (`%s`, `%1$d`, `%(name)s`), brace fields (`{name}`, `{0}`, `{{ var }}`), HTML tags and
//! HTML entities. They become placeholders; HTML tags that open and close properly become pairs.
//!
//! The scanner works on unescaped text but the placeholders keep the *escaped* spelling of the file
//! (e.g. `<a href=\"x\">` in a PO literal), through a map from unescaped to escaped offsets, so a
//! placeholder's original can be written back verbatim into the file.

use crate::placeholder::{Placeholder, TextBuilder};

/// Which inline codes a format recognises.
#[derive(Debug, Clone, Copy)]
pub struct Codes {
    pub printf: bool,
    pub braces: bool,
    pub html: bool,
    /// H5P's `@name` and `:name` variables (`H5P.t` replaces them).
    pub h5p_vars: bool,
}

impl Codes {
    /// gettext messages: printf/Python formats, brace fields, HTML.
    pub const PO: Codes = Codes {
        printf: true,
        braces: true,
        html: true,
        h5p_vars: false,
    };
    /// H5P strings: HTML, brace fields and `@name`/`:name` variables (no printf: `100%` is text).
    pub const H5P: Codes = Codes {
        printf: false,
        braces: true,
        html: true,
        h5p_vars: true,
    };
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Atom,
    Open(String),
    Close(String),
}

#[derive(Debug, Clone)]
struct Code {
    start: usize,
    end: usize,
    kind: Kind,
}

/// HTML elements that never have a closing tag.
const VOID_ELEMENTS: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];

/// Unit text and placeholders for `unescaped`, whose byte `i` came from `escaped[map[i]..]`
/// (`map.len() == unescaped.len() + 1`). Placeholder originals are slices of `escaped`.
pub fn build(
    unescaped: &str,
    escaped: &str,
    map: &[usize],
    codes: Codes,
) -> (String, Vec<Placeholder>) {
    let found = pair(scan(unescaped, codes));
    let mut b = TextBuilder::new();
    let mut pos = 0;
    for code in found {
        if code.start > pos {
            b.text(&unescaped[pos..code.start]);
        }
        let original = &escaped[map[code.start]..map[code.end]];
        match code.kind {
            Kind::Atom => {
                b.standalone(original);
            }
            Kind::Open(_) => {
                b.open(original);
            }
            Kind::Close(_) => b.close(original),
        }
        pos = code.end;
    }
    if pos < unescaped.len() {
        b.text(&unescaped[pos..]);
    }
    (b.text, b.placeholders)
}

/// The identity offset map for text that has no escapes.
pub fn identity_map(s: &str) -> Vec<usize> {
    (0..=s.len()).collect()
}

/// Keeps open/close tags that nest properly as pairs; every other tag becomes an atom.
fn pair(mut codes: Vec<Code>) -> Vec<Code> {
    let mut stack: Vec<usize> = Vec::new();
    let mut paired = vec![false; codes.len()];
    for i in 0..codes.len() {
        match &codes[i].kind {
            Kind::Open(_) => stack.push(i),
            Kind::Close(name) => {
                // Tags left open inside the closed element stay unpaired (atoms), as HTML does.
                if let Some(depth) = stack
                    .iter()
                    .rposition(|&o| matches!(&codes[o].kind, Kind::Open(n) if n == name))
                {
                    paired[stack[depth]] = true;
                    paired[i] = true;
                    stack.truncate(depth);
                }
            }
            Kind::Atom => {}
        }
    }
    for (code, is_paired) in codes.iter_mut().zip(paired) {
        if !is_paired {
            code.kind = Kind::Atom;
        }
    }
    codes
}

fn scan(s: &str, codes: Codes) -> Vec<Code> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let found = match b[i] {
            b'%' if codes.printf => printf_len(&b[i..]).map(|n| (n, Kind::Atom)),
            b'{' | b'}' if codes.braces => brace_len(&b[i..]).map(|n| (n, Kind::Atom)),
            b'<' if codes.html => tag(&b[i..]),
            b'&' if codes.html => entity_len(&b[i..]).map(|n| (n, Kind::Atom)),
            b'@' | b':' if codes.h5p_vars && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) => {
                h5p_var_len(&b[i..]).map(|n| (n, Kind::Atom))
            }
            _ => None,
        };
        match found {
            Some((len, kind)) => {
                out.push(Code {
                    start: i,
                    end: i + len,
                    kind,
                });
                i += len;
            }
            None => i += 1,
        }
    }
    out
}

/// `%%`, `%s`, `%1$s`, `%(name)s`, `%-5.2f`, `%lld`… (no space flag: `50% of` is text).
fn printf_len(b: &[u8]) -> Option<usize> {
    let mut i = 1;
    if b.get(i) == Some(&b'%') {
        return Some(2);
    }
    // Positional argument `%1$s`.
    let digits = count(&b[i..], |c| c.is_ascii_digit());
    if digits > 0 && b.get(i + digits) == Some(&b'$') {
        i += digits + 1;
    }
    // Python mapping key `%(name)s`.
    if b.get(i) == Some(&b'(') {
        let name = count(&b[i + 1..], |c| {
            c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')
        });
        if name == 0 || b.get(i + 1 + name) != Some(&b')') {
            return None;
        }
        i += name + 2;
    }
    i += count(&b[i..], |c| matches!(c, b'-' | b'+' | b'#' | b'0' | b'\''));
    if b.get(i) == Some(&b'*') {
        i += 1;
    } else {
        i += count(&b[i..], |c| c.is_ascii_digit());
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if b.get(i) == Some(&b'*') {
            i += 1;
        } else {
            i += count(&b[i..], |c| c.is_ascii_digit());
        }
    }
    for length in [&b"hh"[..], b"ll", b"h", b"l", b"L", b"q", b"j", b"z", b"t"] {
        if b[i.min(b.len())..].starts_with(length) {
            i += length.len();
            break;
        }
    }
    match b.get(i) {
        Some(c) if b"diouxXeEfFgGaAcspnr@".contains(c) => Some(i + 1),
        _ => None,
    }
}

/// `{{ var }}` and `{% tag %}` (templates), `{{`/`}}` (escaped braces), `{name}`, `{0}`, `{}`,
/// `{name!r:>10}` (Python format fields).
fn brace_len(b: &[u8]) -> Option<usize> {
    if b.starts_with(b"{{") || b.starts_with(b"{%") {
        let close: &[u8] = if b[1] == b'{' { b"}}" } else { b"%}" };
        let limit = b.len().min(200);
        if let Some(pos) = b[2..limit]
            .windows(2)
            .position(|w| w == close)
            .filter(|&p| {
                !b[2..2 + p]
                    .iter()
                    .any(|&c| matches!(c, b'{' | b'}' | b'\n'))
            })
        {
            if b[1] == b'%' || pos > 0 {
                return Some(pos + 4);
            }
        }
        return (b[1] == b'{').then_some(2);
    }
    if b.starts_with(b"}}") {
        return Some(2);
    }
    if b[0] != b'{' {
        return None;
    }
    let mut i = 1;
    i += count(&b[i..], |c| {
        c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'[' | b']')
    });
    if b.get(i) == Some(&b'!') && matches!(b.get(i + 1), Some(b'r' | b's' | b'a')) {
        i += 2;
    }
    if b.get(i) == Some(&b':') {
        i += 1;
        i += count(&b[i..], |c| !matches!(c, b'{' | b'}' | b'\n' | b' '));
    }
    (b.get(i) == Some(&b'}')).then_some(i + 1)
}

/// `<!-- … -->`, `<br/>`, `<a href="…">`, `</a>`.
fn tag(b: &[u8]) -> Option<(usize, Kind)> {
    if b.starts_with(b"<!--") {
        let end = b[4..].windows(3).position(|w| w == b"-->")?;
        return Some((end + 7, Kind::Atom));
    }
    let closing = b.get(1) == Some(&b'/');
    let name_start = if closing { 2 } else { 1 };
    if !b.get(name_start)?.is_ascii_alphabetic() {
        return None;
    }
    let name_len = count(&b[name_start..], |c| c.is_ascii_alphanumeric() || c == b'-');
    let mut i = name_start + name_len;
    if !matches!(b.get(i), Some(b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r')) {
        return None;
    }
    let name = String::from_utf8_lossy(&b[name_start..i]).to_ascii_lowercase();
    let mut quote: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'"' || c == b'\'' => quote = Some(c),
            None if c == b'<' => return None,
            None if c == b'>' => {
                let len = i + 1;
                let self_closing = b[..i].ends_with(b"/");
                let kind = if closing {
                    Kind::Close(name)
                } else if self_closing || VOID_ELEMENTS.contains(&name.as_str()) {
                    Kind::Atom
                } else {
                    Kind::Open(name)
                };
                return Some((len, kind));
            }
            None => {}
        }
        i += 1;
    }
    None
}

/// `@score`, `:num` (an ASCII letter, then letters, digits, `_`).
fn h5p_var_len(b: &[u8]) -> Option<usize> {
    if !b.get(1)?.is_ascii_alphabetic() {
        return None;
    }
    Some(1 + count(&b[1..], |c| c.is_ascii_alphanumeric() || c == b'_'))
}

/// `&amp;`, `&#39;`, `&#x27;`.
fn entity_len(b: &[u8]) -> Option<usize> {
    let body = if b.get(1) == Some(&b'#') {
        if matches!(b.get(2), Some(b'x' | b'X')) {
            let n = count(&b[3..], |c| c.is_ascii_hexdigit());
            (1..=6).contains(&n).then_some(3 + n)?
        } else {
            let n = count(&b[2..], |c| c.is_ascii_digit());
            (1..=7).contains(&n).then_some(2 + n)?
        }
    } else {
        if !b.get(1)?.is_ascii_alphabetic() {
            return None;
        }
        let n = count(&b[1..], |c| c.is_ascii_alphanumeric());
        (2..=31).contains(&n).then_some(1 + n)?
    };
    (b.get(body) == Some(&b';')).then_some(body + 1)
}

fn count(b: &[u8], pred: impl Fn(u8) -> bool) -> usize {
    b.iter().take_while(|&&c| pred(c)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(s: &str) -> (String, Vec<String>) {
        let (text, ph) = build(s, s, &identity_map(s), Codes::PO);
        (text, ph.into_iter().map(|p| p.original).collect())
    }

    #[test]
    fn format_specifiers_are_placeholders() {
        let (t, o) = units("%s and %1$d, %(name)s: {count} {0} {} 100%% {{ user }}, 50% of");
        assert_eq!(
            t,
            "<x1/> and <x2/>, <x3/>: <x4/> <x5/> <x6/> 100<x7/> <x8/>, 50% of"
        );
        assert_eq!(o[2], "%(name)s");
        assert_eq!(o[7], "{{ user }}");
    }

    #[test]
    fn html_pairs_atoms_and_entities() {
        let (t, o) = units("<a href=\"x>y\">Go</a><br/> &amp; <b>un<i>closed</b> &nope");
        assert_eq!(t, "<g1>Go</g1><x2/> <x3/> <g4>un<x5/>closed</g4> &nope");
        assert_eq!(o[0], "<a href=\"x>y\">");
        assert_eq!(o[5], "<i>");
    }

    #[test]
    fn h5p_variables() {
        let s = "You got @score of :total at 10:30, mail a@b.org";
        let (t, _) = build(s, s, &identity_map(s), Codes::H5P);
        assert_eq!(t, "You got <x1/> of <x2/> at 10:30, mail a@b.org");
    }

    #[test]
    fn lone_angle_brackets_and_emails_are_text() {
        let (t, o) = units("a < b > c <user@example.org> x<3");
        assert_eq!(t, "a < b > c <user@example.org> x<3");
        assert!(o.is_empty());
    }
}
