//! Python string semantics that sacrebleu relies on: `str.split()`, `str.rstrip()`,
//! `str.strip()` and `str.lower()`.

/// Python's `str.isspace()` for one code point (what `str.split()` splits on).
///
/// Rust's `char::is_whitespace` (Unicode `White_Space`) agrees except for U+001C..U+001F,
/// which Python treats as whitespace (bidirectional class B/S).
#[inline]
pub fn is_py_whitespace(c: char) -> bool {
    if c.is_ascii() {
        matches!(
            c,
            '\t' | '\n' | '\x0b' | '\x0c' | '\r' | '\x1c'..='\x1f' | ' '
        )
    } else {
        c.is_whitespace()
    }
}

/// Python's `str.split()` with no arguments: runs of whitespace separate words,
/// leading and trailing whitespace produce no empty words.
#[inline]
pub fn py_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_py_whitespace).filter(|w| !w.is_empty())
}

/// Python's `str.rstrip()`.
#[inline]
pub fn py_rstrip(s: &str) -> &str {
    s.trim_end_matches(is_py_whitespace)
}

/// Python's `str.strip()`.
#[inline]
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_whitespace)
}

/// Python's `str.lower()`: full Unicode lowercase mapping including the final-sigma rule
/// (`Σ` at the end of a word becomes `ς`) and `İ` → `i̇`; Rust's `str::to_lowercase`
/// implements the same Unicode rules.
pub fn py_lower(s: &str) -> String {
    if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        s.to_lowercase()
    }
}

/// `' '.join(s.split())`.
pub fn normalize_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in py_split(s) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_matches_python_whitespace() {
        let s = "a\u{a0}b\u{2009}c\u{3000}d\u{202f}e\u{200b}f\x1cg";
        let words: Vec<&str> = py_split(s).collect();
        assert_eq!(words, vec!["a", "b", "c", "d", "e\u{200b}f", "g"]);
        assert_eq!(py_split("  ").count(), 0);
    }

    #[test]
    fn lower_matches_python() {
        assert_eq!(py_lower("ΟΔΟΣ"), "\u{3bf}\u{3b4}\u{3bf}\u{3c2}");
        assert_eq!(py_lower("İ"), "i\u{307}");
        assert_eq!(py_lower("ABC"), "abc");
    }
}
