//! BLEU tokenisers, byte-for-byte equal to sacrebleu's `13a`, `intl`, `zh`, `char` and `none`.

use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;

use crate::text::{normalize_spaces, py_split, py_strip};
use crate::MetricsError;

/// Which tokeniser BLEU applies before counting n-grams (sacrebleu's `--tokenize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tokenizer {
    /// mteval-v13a, the WMT standard and sacrebleu's default.
    #[default]
    Mteval13a,
    /// mteval-v14 "international": splits Unicode punctuation and symbols.
    Intl,
    /// Chinese: every CJK character is a token, the rest as `13a`.
    Zh,
    /// Every non-whitespace character is a token.
    Char,
    /// Whitespace split only.
    None,
}

impl Tokenizer {
    /// The name used in signatures and on the command line (`13a`, `intl`, `zh`, `char`, `none`).
    pub fn name(self) -> &'static str {
        match self {
            Tokenizer::Mteval13a => "13a",
            Tokenizer::Intl => "intl",
            Tokenizer::Zh => "zh",
            Tokenizer::Char => "char",
            Tokenizer::None => "none",
        }
    }

    /// The tokenised line exactly as sacrebleu's tokenizer returns it (tokens joined by spaces;
    /// for `none` the input unchanged).
    pub fn tokenize(self, line: &str) -> String {
        match self {
            Tokenizer::Mteval13a => tokenize_13a(line),
            Tokenizer::Intl => tokenize_intl(line),
            Tokenizer::Zh => tokenize_zh(line),
            Tokenizer::Char => {
                let mut out = String::with_capacity(line.len() * 2);
                for (k, c) in line.chars().enumerate() {
                    if k > 0 {
                        out.push(' ');
                    }
                    out.push(c);
                }
                out
            }
            Tokenizer::None => line.to_string(),
        }
    }

    /// The tokenised line with the same tokens as [`Tokenizer::tokenize`] (whitespace between them
    /// not normalised), into `out`; reuses `bufs` so scoring many segments does not allocate.
    pub(crate) fn tokenize_into(self, line: &str, bufs: &mut TokenizeBuffers, out: &mut Vec<u8>) {
        match self {
            Tokenizer::Mteval13a => {
                let mut padded = std::mem::take(&mut bufs.padded);
                thirteen_a_prepare(line, &mut padded);
                regexp_passes(padded.as_bytes(), bufs, out);
                bufs.padded = padded;
            }
            Tokenizer::None => {
                out.clear();
                out.extend_from_slice(line.as_bytes());
            }
            other => {
                out.clear();
                out.extend_from_slice(other.tokenize(line).as_bytes());
            }
        }
    }

    /// Tokens of `line` as BLEU counts them (`tokenize(line).split()`).
    pub fn tokens(self, line: &str) -> Vec<String> {
        py_split(&self.tokenize(line)).map(str::to_string).collect()
    }
}

impl FromStr for Tokenizer {
    type Err = MetricsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "13a" => Ok(Tokenizer::Mteval13a),
            "intl" => Ok(Tokenizer::Intl),
            "zh" => Ok(Tokenizer::Zh),
            "char" => Ok(Tokenizer::Char),
            "none" => Ok(Tokenizer::None),
            other => Err(MetricsError::UnknownOption {
                what: "tokenizer",
                value: other.to_string(),
                expected: "13a, intl, zh, char, none",
            }),
        }
    }
}

/// `[\{-\~\[-\` -\&\(-\+\:-\@\/]` of sacrebleu's `TokenizerRegexp`.
#[inline]
fn is_regexp_punct(b: u8) -> bool {
    matches!(b, 0x7B..=0x7E | 0x5B..=0x60 | 0x20..=0x26 | 0x28..=0x2B | 0x3A..=0x40 | b'/')
}

/// Reusable buffers for [`Tokenizer::tokenize_into`].
#[derive(Default)]
pub(crate) struct TokenizeBuffers {
    padded: String,
    a: Vec<u8>,
    b: Vec<u8>,
}

/// sacrebleu's `TokenizerRegexp`: four `re.sub` passes, then `' '.join(line.split())`.
fn regexp_post_tokenize(line: &str) -> String {
    let mut bufs = TokenizeBuffers::default();
    let mut out = Vec::new();
    regexp_passes(line.as_bytes(), &mut bufs, &mut out);
    let joined = String::from_utf8(out).expect("only ASCII spaces inserted next to ASCII bytes");
    normalize_spaces(&joined)
}

/// The four `re.sub` passes of sacrebleu's `TokenizerRegexp` from `src` into `out` (spaces not
/// yet normalised).
///
/// Every pattern character is ASCII and `[^0-9]` accepts any code point, so working on bytes
/// gives the same matches as Python working on code points: a multi-byte character can only
/// take part in a match through its last byte, and spaces are only inserted next to ASCII bytes.
fn regexp_passes(src: &[u8], bufs: &mut TokenizeBuffers, out: &mut Vec<u8>) {
    let mut a = std::mem::take(&mut bufs.a);
    punctuation_pass(src, &mut a);
    number_passes(&mut a, &mut bufs.b, out);
    bufs.a = a;
}

/// Pass 1 of `TokenizerRegexp` (and of TERCOM's western normalisation): isolate ASCII
/// punctuation and symbols, `([\{-\~\[-\` -\&\(-\+\:-\@\/])` -> `' \1 '`.
fn punctuation_pass(src: &[u8], a: &mut Vec<u8>) {
    a.clear();
    a.reserve(src.len() * 2 + 8);
    for &b in src {
        if is_regexp_punct(b) {
            a.extend_from_slice(&[b' ', b, b' ']);
        } else {
            a.push(b);
        }
    }
}

/// Passes 2–4 of `TokenizerRegexp`, from `a` into `out` (`a` is reused as scratch).
fn number_passes(a: &mut Vec<u8>, b2: &mut Vec<u8>, out: &mut Vec<u8>) {
    // 2. period and comma unless preceded by a digit: ([^0-9])([\.,]) -> '\1 \2 '
    b2.clear();
    let mut i = 0;
    while i < a.len() {
        if i + 1 < a.len() && !a[i].is_ascii_digit() && matches!(a[i + 1], b'.' | b',') {
            b2.extend_from_slice(&[a[i], b' ', a[i + 1], b' ']);
            i += 2;
        } else {
            b2.push(a[i]);
            i += 1;
        }
    }
    // 3. period and comma unless followed by a digit: ([\.,])([^0-9]) -> ' \1 \2'
    let c3 = a;
    c3.clear();
    let mut i = 0;
    while i < b2.len() {
        if i + 1 < b2.len() && matches!(b2[i], b'.' | b',') && !b2[i + 1].is_ascii_digit() {
            c3.extend_from_slice(&[b' ', b2[i], b' ', b2[i + 1]]);
            i += 2;
        } else {
            c3.push(b2[i]);
            i += 1;
        }
    }
    // 4. dash when preceded by a digit: ([0-9])(-) -> '\1 \2 '
    out.clear();
    let mut i = 0;
    while i < c3.len() {
        if i + 1 < c3.len() && c3[i].is_ascii_digit() && c3[i + 1] == b'-' {
            out.extend_from_slice(&[c3[i], b' ', b'-', b' ']);
            i += 2;
        } else {
            out.push(c3[i]);
            i += 1;
        }
    }
}

/// TERCOM's `_normalize_general_and_western` (sacrebleu's `TercomTokenizer(normalized=True)`)
/// on already lowercased (or case-kept) text; tokens are the whitespace-split result.
///
/// `'s$` never matches in sacrebleu (the text is padded with spaces first), so only `'s ` is
/// rewritten. The byte-level reasoning of [`regexp_passes`] holds: every pattern is ASCII.
pub(crate) fn tercom_western(line: &str) -> String {
    let mut s = std::borrow::Cow::Borrowed(line);
    if s.contains('\n') {
        s = s.replace("\n-", "").replace('\n', " ").into();
    }
    if s.contains('&') {
        s = s
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .into();
    }
    let mut padded = String::with_capacity(s.len() + 2);
    padded.push(' ');
    padded.push_str(&s);
    padded.push(' ');
    let mut a = Vec::new();
    punctuation_pass(padded.as_bytes(), &mut a);
    let mut a = String::from_utf8(a)
        .expect("only ASCII spaces inserted next to ASCII bytes")
        .replace("'s ", " 's ")
        .into_bytes();
    let (mut b, mut out) = (Vec::new(), Vec::new());
    number_passes(&mut a, &mut b, &mut out);
    String::from_utf8(out).expect("only ASCII spaces inserted next to ASCII bytes")
}

/// 13a's preprocessing before the regex passes: `<skipped>`, line joins, entities, padding.
fn thirteen_a_prepare(line: &str, padded: &mut String) {
    let mut s = std::borrow::Cow::Borrowed(line);
    if s.contains("<skipped>") {
        s = s.replace("<skipped>", "").into();
    }
    if s.contains('\n') {
        s = s.replace("-\n", "").replace('\n', " ").into();
    }
    if s.contains('&') {
        s = s
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .into();
    }
    padded.clear();
    padded.push(' ');
    padded.push_str(&s);
    padded.push(' ');
}

fn tokenize_13a(line: &str) -> String {
    let mut padded = String::new();
    thirteen_a_prepare(line, &mut padded);
    regexp_post_tokenize(&padded)
}

static INTL_RULES: LazyLock<[(Regex, &'static str); 3]> = LazyLock::new(|| {
    [
        (
            Regex::new(r"(\P{N})(\p{P})").expect("valid regex"),
            "$1 $2 ",
        ),
        (
            Regex::new(r"(\p{P})(\P{N})").expect("valid regex"),
            " $1 $2",
        ),
        (Regex::new(r"(\p{S})").expect("valid regex"), " $1 "),
    ]
});

fn tokenize_intl(line: &str) -> String {
    let mut s = line.to_string();
    for (re, rep) in INTL_RULES.iter() {
        s = re.replace_all(&s, *rep).into_owned();
    }
    normalize_spaces(&s)
}

/// sacrebleu's `_UCODE_RANGES`, compared the way Python compares strings: two entries are
/// written as 5-hex-digit `\u` escapes (`'\u20000'` is `'\u2000' + '0'`), so they really cover
/// U+2001..=U+2A6D and U+2F81..=U+2FA1. Reproduced as sacrebleu behaves, not as intended.
const ZH_RANGES: [(u32, u32); 22] = [
    (0x3400, 0x4DB5),
    (0x4E00, 0x9FA5),
    (0x9FA6, 0x9FBB),
    (0xF900, 0xFA2D),
    (0xFA30, 0xFA6A),
    (0xFA70, 0xFAD9),
    (0x2001, 0x2A6D),
    (0x2F81, 0x2FA1),
    (0xFF00, 0xFFEF),
    (0x2E80, 0x2EFF),
    (0x3000, 0x303F),
    (0x31C0, 0x31EF),
    (0x2F00, 0x2FDF),
    (0x2FF0, 0x2FFF),
    (0x3100, 0x312F),
    (0x31A0, 0x31BF),
    (0xFE10, 0xFE1F),
    (0xFE30, 0xFE4F),
    (0x2600, 0x26FF),
    (0x2700, 0x27BF),
    (0x3200, 0x32FF),
    (0x3300, 0x33FF),
];

fn is_zh_char(c: char) -> bool {
    let cp = c as u32;
    ZH_RANGES.iter().any(|&(lo, hi)| lo <= cp && cp <= hi)
}

fn tokenize_zh(line: &str) -> String {
    let line = py_strip(line);
    let mut spaced = String::with_capacity(line.len() * 2);
    for c in line.chars() {
        if is_zh_char(c) {
            spaced.push(' ');
            spaced.push(c);
            spaced.push(' ');
        } else {
            spaced.push(c);
        }
    }
    regexp_post_tokenize(&spaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirteen_a_splits_punctuation_but_not_numbers() {
        assert_eq!(
            tokenize_13a("It costs $1,000.50 (approx.) or 3-4 items."),
            "It costs $ 1,000.50 ( approx . ) or 3 - 4 items ."
        );
        assert_eq!(tokenize_13a("Tom &amp; Jerry"), "Tom & Jerry");
    }

    #[test]
    fn zh_splits_cjk_characters() {
        assert_eq!(tokenize_zh("我喜欢NLP。"), "我 喜 欢 NLP 。");
    }
}
