//! Pseudo-translation, the standard localisation check: every letter visibly altered (accented), the
//! text lengthened by about a third (translations into many languages are longer) and bracketed, every
//! placeholder kept in place. A file that survives it keeps its markup through real translation too.

use crate::placeholder::{spans, Span};

/// Pseudo-translates unit text, leaving placeholder tokens untouched.
pub fn pseudo_translate(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut letters = 0usize;
    out.push('⟦');
    for span in spans(text) {
        match span {
            Span::Text(t) => {
                for c in t.chars() {
                    if c.is_alphabetic() {
                        letters += 1;
                    }
                    out.push(accent(c));
                }
            }
            Span::Token { text, .. } => out.push_str(text),
        }
    }
    // Lengthen by ~30% of the letters, at least one mark, without spaces so no markup can start.
    let pad = (letters * 3).div_ceil(10).max(1);
    for _ in 0..pad {
        out.push('·');
    }
    out.push('⟧');
    out
}

fn accent(c: char) -> char {
    match c {
        'a' => 'á',
        'e' => 'é',
        'i' => 'í',
        'o' => 'ó',
        'u' => 'ú',
        'y' => 'ý',
        'c' => 'ç',
        'n' => 'ñ',
        's' => 'š',
        'z' => 'ž',
        'A' => 'Á',
        'E' => 'É',
        'I' => 'Í',
        'O' => 'Ó',
        'U' => 'Ú',
        'Y' => 'Ý',
        'C' => 'Ç',
        'N' => 'Ñ',
        'S' => 'Š',
        'Z' => 'Ž',
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placeholder::{validate, TextBuilder};

    #[test]
    fn keeps_placeholders_and_alters_text() {
        let mut b = TextBuilder::new();
        b.text("Use ");
        b.open("**");
        b.text("cases");
        b.close("**");
        b.standalone("`x`");
        let out = pseudo_translate(&b.text);
        assert_eq!(out, "⟦Úšé <g1>çášéš</g1><x2/>···⟧");
        assert!(validate(&b.placeholders, &out).is_empty());
    }
}
