//! gettext PO and POT files.
//!
//! Reading: every entry's `msgid` is a unit (and its `msgid_plural` a second one), keyed by
//! `msgctxt|msgid` (`…|plural`), with `%s`, `%1$d`, `%(name)s`, `{name}`, HTML tags and entities as
//! placeholders, the extracted comments (`#.`) as the translator note and `msgctxt` (else the first
//! `#:` reference) as context. The header entry (`msgid ""`) is not a unit: its `Language:` value
//! is a [`Piece::Language`] and its fields fill the metadata (`Project-Id-Version` as title,
//! `Last-Translator` as author). Obsolete entries (`#~`) and other comments stay raw.
//!
//! Writing: a translation fills `msgstr` — the file's source side stays `msgid`, byte for byte, as do
//! the comments and the line structure. Each translated entry is a [`Piece::Custom`] this format
//! renders itself:
//! - `msgstr` lines are wrapped like gettext does (79 columns, a break after each `\n`), so the
//!   output is what `msgcat` would write;
//! - plural entries get exactly `nplurals` `msgstr[n]` lines for the target language (the table in
//!   [`plural_rule`]): the form that covers n = 1 gets the singular translation, every other form the
//!   plural one. Languages with more than two forms (ru, pl, ar…) therefore need a human to adjust
//!   the extra forms, which the `fuzzy` flag asks for;
//! - a machine-filled entry is flagged `#, fuzzy` (the default), as translation tools do: msgfmt then
//!   ignores it until a reviewer clears the flag. A caller writing reviewed translations calls
//!   [`set_fuzzy_marking`]`(doc, false)`, which instead removes a stale `fuzzy` flag. Either way the
//!   `#|` previous-msgid lines of a rewritten entry are dropped (they describe an older match);
//! - the header's `Plural-Forms:` is rewritten for the target language (added when missing).
//!
//! An entry whose translation equals its source keeps its existing `msgstr` (an empty `msgstr` means
//! "use the msgid" to gettext anyway). The attribution notice goes into the header's translator
//! comments.

use crate::document::{Document, Piece, Unit};
use crate::error::ParseError;
use crate::format::{Format, FormatKind};
use crate::formats::inline_codes::{self, Codes};
use crate::placeholder::{has_translatable_text, Escape};

pub struct Po;

/// Kind of a translatable entry whose machine-filled translations are flagged `fuzzy`.
const ENTRY_FUZZY: &str = "po-entry";
/// Kind of a translatable entry whose translations are written as reviewed.
const ENTRY_REVIEWED: &str = "po-entry-reviewed";
/// The header's `Plural-Forms:` line (empty raw: the header has none).
const PLURAL_FORMS: &str = "po-plural-forms";
/// Where `Language:` and `Plural-Forms:` go in a header that has no `Language:` line.
const LANGUAGE_AND_PLURAL: &str = "po-language";

/// gettext's line width.
const WRAP_COLUMNS: usize = 79;

impl Format for Po {
    fn kind(&self) -> FormatKind {
        FormatKind::Po
    }

    fn read(&self, input: &str) -> Result<Document, ParseError> {
        let entries = parse_entries(input)?;
        let mut doc = Document::new(FormatKind::Po);
        let mut pos = 0;
        let has_header = entries.first().is_some_and(Entry::is_header);
        if !has_header {
            doc.pieces.push(Piece::Attribution);
        }
        for (n, entry) in entries.iter().enumerate() {
            doc.push_raw(&input[pos..entry.start]);
            if n == 0 && has_header {
                read_header(input, entry, &mut doc);
            } else {
                read_entry(input, entry, &mut doc);
            }
            pos = entry.end;
        }
        doc.push_raw(&input[pos..]);
        Ok(doc)
    }

    fn attribution(&self, notice: &str) -> Option<String> {
        let mut out = String::new();
        for line in notice.lines() {
            if line.trim().is_empty() {
                out.push_str("#\n");
            } else {
                out.push_str("# ");
                out.push_str(line.trim_end());
                out.push('\n');
            }
        }
        Some(out)
    }

    fn write_custom(
        &self,
        kind: &str,
        raw: &str,
        texts: &[String],
        target_language: Option<&str>,
    ) -> Result<String, String> {
        match kind {
            ENTRY_FUZZY | ENTRY_REVIEWED => {
                write_entry(raw, texts, target_language, kind == ENTRY_FUZZY)
            }
            PLURAL_FORMS | LANGUAGE_AND_PLURAL => {
                let Some(lang) = target_language else {
                    return Ok(raw.to_string());
                };
                let nl = newline_of(raw);
                let mut out = String::new();
                if kind == LANGUAGE_AND_PLURAL {
                    out.push_str(&format!("\"Language: {lang}\\n\"{nl}"));
                }
                match plural_rule(lang) {
                    Some(rule) => out.push_str(&format!(
                        "\"Plural-Forms: nplurals={}; plural=({});\\n\"{nl}",
                        rule.nplurals, rule.expression
                    )),
                    None => {
                        tracing::warn!(
                            language = lang,
                            "no gettext plural rule known for the target language; Plural-Forms left as it was"
                        );
                        if kind == PLURAL_FORMS {
                            out.push_str(raw);
                        }
                    }
                }
                Ok(out)
            }
            other => Err(format!("unknown PO piece kind '{other}'")),
        }
    }
}

/// Whether machine-filled entries of a PO document are flagged `#, fuzzy` when written (the default:
/// yes). Pass `false` when writing reviewed translations; stale `fuzzy` flags are then removed.
pub fn set_fuzzy_marking(doc: &mut Document, mark: bool) {
    let wanted = if mark { ENTRY_FUZZY } else { ENTRY_REVIEWED };
    for piece in &mut doc.pieces {
        if let Piece::Custom { kind, .. } = piece {
            if kind == ENTRY_FUZZY || kind == ENTRY_REVIEWED {
                *kind = wanted.to_string();
            }
        }
    }
}

/// A language's gettext plural rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluralRule {
    pub nplurals: usize,
    pub expression: &'static str,
    /// The form index used for n = 1 (the one that gets the singular translation).
    pub one_index: usize,
}

const N_NE_1: &str = "n != 1";
const N_GT_1: &str = "n > 1";
const SLAVIC: &str =
    "n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2";

/// Plural rules (CLDR-derived, as gettext tools and Weblate write them) by language code.
const PLURAL_RULES: &[(&str, usize, &str)] = &[
    ("af", 2, N_NE_1),
    ("am", 2, N_GT_1),
    ("ar", 6, "n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 : n%100>=11 ? 4 : 5"),
    ("bg", 2, N_NE_1),
    ("bn", 2, N_GT_1),
    ("ca", 2, N_NE_1),
    ("cs", 3, "(n==1) ? 0 : (n>=2 && n<=4) ? 1 : 2"),
    ("da", 2, N_NE_1),
    ("de", 2, N_NE_1),
    ("el", 2, N_NE_1),
    ("en", 2, N_NE_1),
    ("eo", 2, N_NE_1),
    ("es", 2, N_NE_1),
    ("et", 2, N_NE_1),
    ("eu", 2, N_NE_1),
    ("fa", 2, N_GT_1),
    ("fi", 2, N_NE_1),
    ("fil", 2, "n != 1 && n != 2 && n != 3 && (n % 10 == 4 || n % 10 == 6 || n % 10 == 9)"),
    ("fr", 2, N_GT_1),
    ("ga", 5, "n==1 ? 0 : n==2 ? 1 : (n>2 && n<7) ? 2 :(n>6 && n<11) ? 3 : 4"),
    ("gl", 2, N_NE_1),
    ("gu", 2, N_GT_1),
    ("ha", 2, N_NE_1),
    ("he", 4, "(n == 1) ? 0 : ((n == 2) ? 1 : ((n > 10 && n % 10 == 0) ? 2 : 3))"),
    ("hi", 2, N_GT_1),
    ("hr", 3, SLAVIC),
    ("hu", 2, N_NE_1),
    ("hy", 2, N_GT_1),
    ("id", 1, "0"),
    ("ig", 1, "0"),
    ("is", 2, "n % 10 != 1 || n % 100 == 11"),
    ("it", 2, N_NE_1),
    ("ja", 1, "0"),
    ("km", 1, "0"),
    ("kn", 2, N_GT_1),
    ("ko", 1, "0"),
    ("lt", 3, "(n % 10 == 1 && (n % 100 < 11 || n % 100 > 19)) ? 0 : ((n % 10 >= 2 && n % 10 <= 9 && (n % 100 < 11 || n % 100 > 19)) ? 1 : 2)"),
    ("lv", 3, "(n % 10 == 0 || n % 100 >= 11 && n % 100 <= 19) ? 0 : ((n % 10 == 1 && n % 100 != 11) ? 1 : 2)"),
    ("mr", 2, N_NE_1),
    ("ms", 1, "0"),
    ("nb", 2, N_NE_1),
    ("ne", 2, N_NE_1),
    ("nl", 2, N_NE_1),
    ("nn", 2, N_NE_1),
    ("pa", 2, N_GT_1),
    ("pl", 3, "n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2"),
    ("ps", 2, N_NE_1),
    ("pt", 2, N_GT_1),
    ("pt_BR", 2, N_GT_1),
    ("pt_PT", 2, N_NE_1),
    ("ro", 3, "n==1 ? 0 : (n==0 || (n%100 > 0 && n%100 < 20)) ? 1 : 2"),
    ("ru", 3, SLAVIC),
    ("rw", 2, N_NE_1),
    ("sk", 3, "(n==1) ? 0 : (n>=2 && n<=4) ? 1 : 2"),
    ("sl", 4, "n%100==1 ? 0 : n%100==2 ? 1 : n%100==3 || n%100==4 ? 2 : 3"),
    ("so", 2, N_NE_1),
    ("sq", 2, N_NE_1),
    ("sr", 3, SLAVIC),
    ("sv", 2, N_NE_1),
    ("sw", 2, N_NE_1),
    ("ta", 2, N_NE_1),
    ("te", 2, N_NE_1),
    ("th", 1, "0"),
    ("ti", 2, N_GT_1),
    ("tl", 2, "n != 1 && n != 2 && n != 3 && (n % 10 == 4 || n % 10 == 6 || n % 10 == 9)"),
    ("tr", 2, N_NE_1),
    ("uk", 3, SLAVIC),
    ("ur", 2, N_NE_1),
    ("uz", 2, N_NE_1),
    ("vi", 1, "0"),
    ("wo", 1, "0"),
    ("xh", 2, N_NE_1),
    ("yo", 1, "0"),
    ("zh", 1, "0"),
    ("zu", 2, N_GT_1),
];

/// The plural rule of a language code (`pt-BR`, `pt_BR`, `es_419`, `zh-Hans` all work: the full code
/// first, then its primary language). `None` for a language the table does not know.
pub fn plural_rule(lang: &str) -> Option<PluralRule> {
    let normalized = lang.trim().replace('-', "_");
    let mut parts = normalized.split('_');
    let primary = parts.next().unwrap_or_default().to_ascii_lowercase();
    let full = match parts.next() {
        Some(region) => format!("{primary}_{}", region.to_ascii_uppercase()),
        None => primary.clone(),
    };
    let find = |code: &str| PLURAL_RULES.iter().find(|(c, _, _)| *c == code);
    let (code, nplurals, expression) = find(&full).or_else(|| find(&primary))?;
    Some(PluralRule {
        nplurals: *nplurals,
        expression,
        one_index: if *code == "ar" { 1 } else { 0 },
    })
}

// ---------------------------------------------------------------------------------------------
// Parsing

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    Msgctxt,
    Msgid,
    MsgidPlural,
    Msgstr,
    MsgstrN(u32),
}

/// One keyword and its string lines.
#[derive(Debug, Clone)]
struct Field {
    keyword: Keyword,
    /// Byte range of the keyword line and its continuation lines (newlines included).
    start: usize,
    end: usize,
    /// The string literals' contents joined, still escaped.
    escaped: String,
    /// Byte ranges of each literal's content (between the quotes).
    literals: Vec<(usize, usize)>,
}

#[derive(Debug, Clone, Default)]
struct Entry {
    start: usize,
    end: usize,
    /// Byte ranges of the comment lines (newline included).
    comments: Vec<(usize, usize)>,
    ctxt: Option<Field>,
    id: Option<Field>,
    plural: Option<Field>,
    strs: Vec<Field>,
}

impl Entry {
    fn is_header(&self) -> bool {
        self.ctxt.is_none() && self.id.as_ref().is_some_and(|f| f.escaped.is_empty())
    }

    fn has_keywords(&self) -> bool {
        self.ctxt.is_some() || self.id.is_some()
    }

    fn last_field_mut(&mut self) -> Option<&mut Field> {
        if let Some(f) = self.strs.last_mut() {
            return Some(f);
        }
        if self.plural.is_some() {
            return self.plural.as_mut();
        }
        if self.id.is_some() {
            return self.id.as_mut();
        }
        self.ctxt.as_mut()
    }
}

/// Splits a PO file into entries (comment-only blocks are not entries and stay between them).
fn parse_entries(input: &str) -> Result<Vec<Entry>, ParseError> {
    let mut entries = Vec::new();
    let mut cur: Option<Entry> = None;
    let mut pos = 0;
    for line in input.split_inclusive('\n') {
        let start = pos;
        let end = pos + line.len();
        pos = end;
        let body = line.trim_end_matches(['\n', '\r']);
        let indent = body.len() - body.trim_start().len();
        let t = &body[indent..];
        if t.is_empty() {
            finish(input, &mut cur, &mut entries)?;
            continue;
        }
        if t.starts_with('#') {
            if cur.as_ref().is_some_and(Entry::has_keywords) {
                finish(input, &mut cur, &mut entries)?;
            }
            let e = cur.get_or_insert_with(|| Entry {
                start,
                ..Default::default()
            });
            e.comments.push((start, end));
            e.end = end;
            continue;
        }
        if t.starts_with('"') {
            let (content, _) = parse_literal(input, start + indent)?;
            let field = cur
                .as_mut()
                .and_then(Entry::last_field_mut)
                .ok_or_else(|| {
                    ParseError::at(
                        input,
                        start + indent,
                        "a quoted string must follow a keyword (msgid, msgstr, …)",
                    )
                })?;
            field.escaped.push_str(&input[content.0..content.1]);
            field.literals.push(content);
            field.end = end;
            if let Some(e) = cur.as_mut() {
                e.end = end;
            }
            continue;
        }
        let word_len = t
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '[' | ']')))
            .unwrap_or(t.len());
        let word = &t[..word_len];
        let keyword = match word {
            "msgctxt" => Keyword::Msgctxt,
            "msgid" => Keyword::Msgid,
            "msgid_plural" => Keyword::MsgidPlural,
            "msgstr" => Keyword::Msgstr,
            _ => match word
                .strip_prefix("msgstr[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse::<u32>().ok())
            {
                Some(n) => Keyword::MsgstrN(n),
                None => {
                    return Err(ParseError::at(
                        input,
                        start + indent,
                        "expected a comment, a keyword (msgctxt, msgid, msgid_plural, msgstr) or a quoted string",
                    ))
                }
            },
        };
        let after = &t[word_len..];
        let gap = after.len() - after.trim_start().len();
        let lit_offset = start + indent + word_len + gap;
        if gap == 0 || !after.trim_start().starts_with('"') {
            return Err(ParseError::at(
                input,
                lit_offset,
                format!("expected a quoted string after {word}"),
            ));
        }
        let (content, _) = parse_literal(input, lit_offset)?;
        let field = Field {
            keyword,
            start,
            end,
            escaped: input[content.0..content.1].to_string(),
            literals: vec![content],
        };
        // A new msgctxt/msgid after a complete entry starts the next entry.
        if matches!(keyword, Keyword::Msgctxt | Keyword::Msgid)
            && cur.as_ref().is_some_and(|e| !e.strs.is_empty())
        {
            finish(input, &mut cur, &mut entries)?;
        }
        let e = cur.get_or_insert_with(|| Entry {
            start,
            ..Default::default()
        });
        let misplaced = |what: &str| Err(ParseError::at(input, start + indent, what.to_string()));
        match keyword {
            Keyword::Msgctxt => {
                if e.ctxt.is_some() || e.id.is_some() {
                    return misplaced("msgctxt must come once, before msgid");
                }
                e.ctxt = Some(field);
            }
            Keyword::Msgid => {
                if e.id.is_some() {
                    return misplaced("a second msgid in the same entry; separate entries with a blank line or add its msgstr");
                }
                e.id = Some(field);
            }
            Keyword::MsgidPlural => {
                if e.id.is_none() || e.plural.is_some() || !e.strs.is_empty() {
                    return misplaced("msgid_plural must follow msgid, once");
                }
                e.plural = Some(field);
            }
            Keyword::Msgstr | Keyword::MsgstrN(_) => {
                if e.id.is_none() {
                    return misplaced("msgstr without a msgid before it");
                }
                let plural_form = matches!(keyword, Keyword::MsgstrN(_));
                if plural_form != e.plural.is_some() {
                    return misplaced(if plural_form {
                        "msgstr[n] needs a msgid_plural; use msgstr"
                    } else {
                        "an entry with msgid_plural needs msgstr[0], msgstr[1]…"
                    });
                }
                if !plural_form && !e.strs.is_empty() {
                    return misplaced("a second msgstr in the same entry");
                }
                e.strs.push(field);
            }
        }
        e.end = end;
    }
    finish(input, &mut cur, &mut entries)?;
    Ok(entries)
}

fn finish(
    input: &str,
    cur: &mut Option<Entry>,
    entries: &mut Vec<Entry>,
) -> Result<(), ParseError> {
    let Some(e) = cur.take() else {
        return Ok(());
    };
    if !e.has_keywords() {
        // A comment-only block (file comments, obsolete `#~` entries): raw.
        return Ok(());
    }
    match (&e.id, e.strs.is_empty()) {
        (None, _) => Err(ParseError::at(input, e.start, "msgctxt without a msgid")),
        (Some(id), true) => Err(ParseError::at(
            input,
            id.start,
            "msgid without a msgstr; add msgstr \"\" after it",
        )),
        _ => {
            entries.push(e);
            Ok(())
        }
    }
}

/// Parses the string literal starting at `offset` (a `"`); returns the byte range of its content.
fn parse_literal(input: &str, offset: usize) -> Result<((usize, usize), usize), ParseError> {
    let b = input.as_bytes();
    let mut i = offset + 1;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let rest_end = input[i + 1..].find('\n').map_or(input.len(), |n| i + 1 + n);
                let rest = &input[i + 1..rest_end];
                if !rest.trim().is_empty() {
                    let at = i + 1 + (rest.len() - rest.trim_start().len());
                    return Err(ParseError::at(
                        input,
                        at,
                        "unexpected text after the closing quote",
                    ));
                }
                return Ok(((offset + 1, i), i + 1));
            }
            b'\\' => match b.get(i + 1) {
                Some(
                    b'n' | b't' | b'r' | b'\\' | b'"' | b'a' | b'b' | b'f' | b'v' | b'\'' | b'?',
                ) => i += 2,
                Some(b'0'..=b'7') => i += 2,
                Some(b'x') if b.get(i + 2).is_some_and(u8::is_ascii_hexdigit) => i += 3,
                _ => {
                    return Err(ParseError::at(
                        input,
                        i,
                        "invalid escape sequence in a string (use \\\\ for a backslash)",
                    ))
                }
            },
            b'\n' | b'\r' => break,
            _ => i += 1,
        }
    }
    Err(ParseError::at(
        input,
        offset,
        "unterminated string: the closing quote is missing on this line",
    ))
}

/// Unescapes a PO literal's content; `map[i]` is the offset in `escaped` the byte `i` of the result
/// came from (`map.len() == result.len() + 1`).
fn unescape(escaped: &str) -> (String, Vec<usize>) {
    let b = escaped.as_bytes();
    let mut out = String::with_capacity(escaped.len());
    let mut map = Vec::with_capacity(escaped.len() + 1);
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let ch: char;
        if b[i] == b'\\' && i + 1 < b.len() {
            let c = b[i + 1];
            i += 2;
            ch = match c {
                b'n' => '\n',
                b't' => '\t',
                b'r' => '\r',
                b'a' => '\u{7}',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'v' => '\u{b}',
                b'0'..=b'7' => {
                    let mut v = u32::from(c - b'0');
                    let mut k = 0;
                    while k < 2 && i < b.len() && (b'0'..=b'7').contains(&b[i]) {
                        v = v * 8 + u32::from(b[i] - b'0');
                        i += 1;
                        k += 1;
                    }
                    char::from_u32(v).unwrap_or('\u{fffd}')
                }
                b'x' => {
                    let mut v = 0u32;
                    let mut k = 0;
                    while k < 2 && i < b.len() && b[i].is_ascii_hexdigit() {
                        v = v * 16 + char::from(b[i]).to_digit(16).unwrap_or(0);
                        i += 1;
                        k += 1;
                    }
                    char::from_u32(v).unwrap_or('\u{fffd}')
                }
                other => char::from(other),
            };
        } else {
            ch = escaped[i..].chars().next().unwrap_or('\u{fffd}');
            i += ch.len_utf8().max(1);
        }
        for _ in 0..ch.len_utf8() {
            map.push(start);
        }
        out.push(ch);
    }
    map.push(b.len());
    (out, map)
}

fn newline_of(s: &str) -> &'static str {
    if s.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    }
}

/// The bytes of escaped `content` before and after its message: the leading and trailing
/// whitespace (Django's `blocktrans` messages have lots), which stays out of the unit and is put back
/// around the translation, so `msgid` and `msgstr` begin and end alike as `msgfmt -c` requires.
fn whitespace_margins(content: &str) -> (usize, usize) {
    let (u, map) = unescape(content);
    let lead = u.len() - u.trim_start().len();
    let trail = u.len() - u.trim_end().len();
    if lead == u.len() {
        return (0, content.len());
    }
    (map[lead], map[u.len() - trail])
}

/// Unit text and placeholders of an escaped message, without its whitespace margins.
fn message_text(content: &str) -> (String, Vec<crate::placeholder::Placeholder>) {
    let (u, map) = unescape(content);
    let (start, end) = whitespace_margins(content);
    let lead = map.iter().position(|&m| m >= start).unwrap_or(0);
    let stop = map.iter().position(|&m| m >= end).unwrap_or(u.len());
    let stop = stop.max(lead);
    inline_codes::build(&u[lead..stop], content, &map[lead..=stop], Codes::PO)
}

fn read_entry(input: &str, entry: &Entry, doc: &mut Document) {
    let raw = &input[entry.start..entry.end];
    let Some(id) = &entry.id else {
        doc.push_raw(raw);
        return;
    };
    let (msgid, _) = unescape(&id.escaped);
    let (text, placeholders) = message_text(&id.escaped);
    let plural = entry.plural.as_ref().map(|p| (p, message_text(&p.escaped)));
    let translatable = has_translatable_text(&text)
        || plural
            .as_ref()
            .is_some_and(|(_, (t, _))| has_translatable_text(t));
    if !translatable {
        doc.push_raw(raw);
        return;
    }
    let ctxt = entry.ctxt.as_ref().map(|c| unescape(&c.escaped).0);
    let comment_lines: Vec<&str> = entry
        .comments
        .iter()
        .map(|&(s, e)| input[s..e].trim_end_matches(['\n', '\r']))
        .collect();
    let notes: Vec<&str> = comment_lines
        .iter()
        .filter_map(|l| l.strip_prefix("#."))
        .map(str::trim)
        .collect();
    let note = (!notes.is_empty()).then(|| notes.join("\n"));
    let context = ctxt.clone().unwrap_or_else(|| {
        comment_lines
            .iter()
            .find_map(|l| l.strip_prefix("#:"))
            .and_then(|refs| refs.split_whitespace().next())
            .unwrap_or_default()
            .to_string()
    });
    let key = match &ctxt {
        Some(c) => format!("{c}|{msgid}"),
        None => msgid.clone(),
    };
    let mut unit = Unit::new(text, &input[id.start..id.end], context.clone(), Escape::Po);
    unit.placeholders = placeholders;
    unit.note = note.clone();
    unit.key = Some(key.clone());
    let mut units = vec![doc.units.len()];
    doc.units.push(unit);
    if let Some((p, (text, placeholders))) = plural {
        let mut unit = Unit::new(text, &input[p.start..p.end], context, Escape::Po);
        unit.placeholders = placeholders;
        unit.note = note;
        unit.key = Some(format!("{key}|plural"));
        units.push(doc.units.len());
        doc.units.push(unit);
    }
    doc.pieces.push(Piece::Custom {
        kind: ENTRY_FUZZY.to_string(),
        raw: raw.to_string(),
        units,
    });
}

fn read_header(input: &str, entry: &Entry, doc: &mut Document) {
    // Translator comments first, then the attribution notice, then flags and the rest.
    let attribution_at = entry
        .comments
        .iter()
        .find(|&&(s, _)| {
            let l = &input[s..];
            !(l.starts_with("# ") || l.starts_with("#\n") || l.starts_with("#\r") || l == "#")
        })
        .map(|&(s, _)| s)
        .or(entry.id.as_ref().map(|f| f.start))
        .unwrap_or(entry.start);
    doc.push_raw(&input[entry.start..attribution_at]);
    doc.pieces.push(Piece::Attribution);
    let Some(msgstr) = entry.strs.first() else {
        doc.push_raw(&input[attribution_at..entry.end]);
        return;
    };
    let (header, _) = unescape(&msgstr.escaped);
    for field in header.split('\n') {
        let Some((name, value)) = field.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let placeholder =
            value.is_empty() || value.contains("PACKAGE") || value.contains("FULL NAME");
        match name.trim() {
            "Language" if !value.is_empty() => doc.meta.language = Some(value.to_string()),
            "Project-Id-Version" if !placeholder => doc.meta.title = Some(value.to_string()),
            "Last-Translator" if !placeholder => doc.meta.authors.push(value.to_string()),
            _ => {}
        }
    }
    doc.push_raw(&input[attribution_at..msgstr.start]);
    // The header's string lines, one by one: Language and Plural-Forms are pieces of their own.
    let lines: Vec<(usize, usize)> = input[msgstr.start..msgstr.end]
        .split_inclusive('\n')
        .scan(msgstr.start, |pos, l| {
            let s = *pos;
            *pos += l.len();
            Some((s, *pos))
        })
        .collect();
    let mut language_end: Option<usize> = None;
    // A Plural-Forms field that shares a string line with other fields is left alone.
    let mut has_plural_forms = header
        .split('\n')
        .any(|f| f.trim_start().starts_with("Plural-Forms:"));
    let mut pieces: Vec<Piece> = Vec::new();
    let mut raw_buf = String::new();
    let flush = |raw_buf: &mut String, pieces: &mut Vec<Piece>| {
        if !raw_buf.is_empty() {
            pieces.push(Piece::Raw(std::mem::take(raw_buf)));
        }
    };
    for &(s, e) in &lines {
        let line = &input[s..e];
        let Some(&(cs, ce)) = msgstr.literals.iter().find(|&&(cs, _)| cs >= s && cs < e) else {
            raw_buf.push_str(line);
            continue;
        };
        let content = &input[cs..ce];
        if let Some(rest) = content.strip_prefix("Language:") {
            let value_start = cs + "Language:".len() + (rest.len() - rest.trim_start().len());
            let value_len = input[value_start..ce]
                .find(['\\', ' '])
                .unwrap_or(ce - value_start);
            raw_buf.push_str(&input[s..value_start]);
            flush(&mut raw_buf, &mut pieces);
            pieces.push(Piece::Language(
                input[value_start..value_start + value_len].to_string(),
            ));
            raw_buf.push_str(&input[value_start + value_len..e]);
            if line.ends_with('\n') {
                flush(&mut raw_buf, &mut pieces);
                language_end = Some(pieces.len());
            }
        } else if content.starts_with("Plural-Forms:") {
            flush(&mut raw_buf, &mut pieces);
            pieces.push(Piece::Custom {
                kind: PLURAL_FORMS.to_string(),
                raw: line.to_string(),
                units: Vec::new(),
            });
            has_plural_forms = true;
        } else {
            raw_buf.push_str(line);
        }
    }
    flush(&mut raw_buf, &mut pieces);
    if !has_plural_forms {
        let insert_at = match language_end {
            Some(at) => Some((PLURAL_FORMS, at)),
            None if input[..msgstr.end].ends_with('\n') && doc.meta.language.is_none() => {
                Some((LANGUAGE_AND_PLURAL, pieces.len()))
            }
            None => None,
        };
        if let Some((kind, at)) = insert_at {
            pieces.insert(
                at,
                Piece::Custom {
                    kind: kind.to_string(),
                    raw: String::new(),
                    units: Vec::new(),
                },
            );
        }
    }
    for piece in pieces {
        match piece {
            Piece::Raw(s) => doc.push_raw(&s),
            other => doc.pieces.push(other),
        }
    }
    doc.push_raw(&input[msgstr.end..entry.end]);
}

// ---------------------------------------------------------------------------------------------
// Writing

fn write_entry(
    raw: &str,
    texts: &[String],
    target_language: Option<&str>,
    mark_fuzzy: bool,
) -> Result<String, String> {
    let entries = parse_entries(raw).map_err(|e| format!("internal PO entry error: {e}"))?;
    let [entry] = entries.as_slice() else {
        return Err("internal PO entry error: not exactly one entry".into());
    };
    let id = entry
        .id
        .as_ref()
        .ok_or("internal PO entry error: no msgid")?;
    let source_fields: Vec<&Field> = std::iter::once(id).chain(entry.plural.as_ref()).collect();
    // An unchanged unit's text is its raw bytes (the msgid lines), which no rendered text can equal.
    let new_texts: Vec<Option<&str>> = source_fields
        .iter()
        .enumerate()
        .map(|(k, f)| {
            texts
                .get(k)
                .map(String::as_str)
                .filter(|t| *t != &raw[f.start..f.end])
        })
        .collect();
    if new_texts.iter().all(Option::is_none) {
        return Ok(raw.to_string());
    }
    let nl = newline_of(raw);
    let mut out = String::with_capacity(raw.len() * 2);
    write_comments(raw, entry, mark_fuzzy, nl, &mut out);
    let body_start = entry
        .ctxt
        .as_ref()
        .map_or(id.start, |c| c.start.min(id.start));
    let last_source = entry.plural.as_ref().unwrap_or(id);
    out.push_str(&raw[body_start..last_source.end]);
    let existing = |k: usize| -> Option<&str> {
        entry
            .strs
            .iter()
            .find(|f| match f.keyword {
                Keyword::MsgstrN(n) => n as usize == k,
                _ => k == 0,
            })
            .map(|f| f.escaped.as_str())
            .filter(|s| !s.is_empty())
    };
    let pick = |source: usize, k: usize| -> String {
        match new_texts[source] {
            Some(t) => {
                let content = &source_fields[source].escaped;
                let (start, end) = whitespace_margins(content);
                format!("{}{t}{}", &content[..start], &content[end..])
            }
            None => existing(k)
                .unwrap_or(&source_fields[source].escaped)
                .to_string(),
        }
    };
    if entry.plural.is_none() {
        out.push_str(&format_field("msgstr", &pick(0, 0), nl));
    } else {
        let (nplurals, one_index) = match target_language {
            Some(lang) => {
                let rule = plural_rule(lang).ok_or_else(|| {
                    format!(
                        "no gettext plural rule is known for the target language '{lang}', so the plural \
                         entry for msgid \"{}\" cannot get the right number of msgstr[n] forms; \
                         known: {}",
                        id.escaped,
                        PLURAL_RULES.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
                    )
                })?;
                (rule.nplurals, rule.one_index)
            }
            None => (entry.strs.len().max(2), 0),
        };
        for k in 0..nplurals {
            let source = if k == one_index && nplurals > 1 { 0 } else { 1 };
            out.push_str(&format_field(&format!("msgstr[{k}]"), &pick(source, k), nl));
        }
    }
    if !raw.ends_with('\n') {
        let trimmed = out.trim_end_matches(['\n', '\r']).len();
        out.truncate(trimmed);
    }
    Ok(out)
}

/// The entry's comments with the flags updated and `#|` lines dropped.
fn write_comments(raw: &str, entry: &Entry, mark_fuzzy: bool, nl: &str, out: &mut String) {
    let mut wrote_flags = false;
    for &(s, e) in &entry.comments {
        let line = &raw[s..e];
        if line.starts_with("#|") {
            continue;
        }
        if let Some(flags) = line.strip_prefix("#,") {
            let mut list: Vec<&str> = flags
                .trim()
                .split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty() && *f != "fuzzy")
                .collect();
            if mark_fuzzy {
                list.insert(0, "fuzzy");
            }
            if !list.is_empty() {
                out.push_str("#, ");
                out.push_str(&list.join(", "));
                out.push_str(nl);
            }
            wrote_flags = true;
            continue;
        }
        out.push_str(line);
        if !line.ends_with('\n') {
            out.push_str(nl);
        }
    }
    if mark_fuzzy && !wrote_flags {
        out.push_str("#, fuzzy");
        out.push_str(nl);
    }
}

/// `keyword "content"` wrapped as gettext does: on one line when it fits in 79 columns and has no
/// inner `\n`, else `keyword ""` and one line per chunk (a break after each `\n`, long chunks broken
/// after spaces).
fn format_field(keyword: &str, content: &str, nl: &str) -> String {
    let chunks = split_after_newlines(content);
    let one_line = keyword.chars().count() + content.chars().count() + 3;
    if chunks.len() <= 1 && one_line <= WRAP_COLUMNS {
        return format!("{keyword} \"{content}\"{nl}");
    }
    let mut out = format!("{keyword} \"\"{nl}");
    for chunk in chunks {
        for line in wrap(chunk, WRAP_COLUMNS - 2) {
            out.push('"');
            out.push_str(line);
            out.push('"');
            out.push_str(nl);
        }
    }
    out
}

/// Splits escaped content after each `\n` escape.
fn split_after_newlines(content: &str) -> Vec<&str> {
    let b = content.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            if b[i + 1] == b'n' && i + 2 < b.len() {
                out.push(&content[start..i + 2]);
                start = i + 2;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    if start < content.len() || out.is_empty() {
        out.push(&content[start..]);
    }
    out
}

/// Greedy wrap of escaped text into pieces of at most `width` characters, breaking after spaces.
fn wrap(chunk: &str, width: usize) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut line_start = 0;
    let mut last_break: Option<usize> = None;
    let mut width_so_far = 0;
    for (i, c) in chunk.char_indices() {
        width_so_far += 1;
        if width_so_far > width {
            if let Some(b) = last_break.filter(|&b| b > line_start) {
                lines.push(&chunk[line_start..b]);
                width_so_far = chunk[b..i].chars().count() + 1;
                line_start = b;
                last_break = None;
            }
        }
        if c == ' ' {
            last_break = Some(i + 1);
        }
    }
    lines.push(&chunk[line_start..]);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::{write_document, Translations, WriteOptions};
    use std::path::Path;

    const SAMPLE: &str = r#"# Course strings.
# Copyright (C) 2024
#, fuzzy
msgid ""
msgstr ""
"Project-Id-Version: course 1.0\n"
"Last-Translator: Ada <ada@example.org>\n"
"Language: en\n"
"Content-Type: text/plain; charset=UTF-8\n"

#. Shown on the grade page.
#: grade.py:10
#, python-format
msgid "You have %(points)s points &amp; a <b>bonus</b>."
msgstr ""

#: a.py:1
msgctxt "button"
msgid "Open"
msgstr "Ouvrir"

#: b.py:2
#| msgid "One file"
msgid "One file"
msgid_plural "%d files"
msgstr[0] ""
msgstr[1] ""

msgid ""
"A long message that goes on and on, well past the seventy-nine columns that "
"gettext allows.\n"
"Second line."
msgstr ""

msgid "%s"
msgstr ""

#~ msgid "Old"
#~ msgstr "Vieux"
"#;

    fn write(doc: &Document, texts: Option<Vec<String>>, options: &WriteOptions) -> String {
        let tr = match texts {
            Some(t) => Translations::from_texts(t),
            None => Translations::identity(doc),
        };
        write_document(doc, &tr, options, Path::new("x.po")).unwrap()
    }

    fn read(input: &str) -> Document {
        let mut doc = Po.read(input).unwrap();
        doc.assign_ids();
        doc
    }

    #[test]
    fn units_keys_notes_and_placeholders() {
        let doc = read(SAMPLE);
        let texts = doc.source_texts();
        assert_eq!(
            texts,
            vec![
                "You have <x1/> points <x2/> a <g3>bonus</g3>.",
                "Open",
                "One file",
                "<x1/> files",
                "A long message that goes on and on, well past the seventy-nine columns that gettext allows.\nSecond line.",
            ]
        );
        assert_eq!(
            doc.units[0].note.as_deref(),
            Some("Shown on the grade page.")
        );
        assert_eq!(doc.units[0].context, "grade.py:10");
        assert_eq!(doc.units[1].id, "button|Open");
        assert_eq!(doc.units[3].id, "One file|plural");
        assert_eq!(doc.units[0].placeholders[0].original, "%(points)s");
        assert_eq!(doc.meta.language.as_deref(), Some("en"));
        assert_eq!(doc.meta.title.as_deref(), Some("course 1.0"));
        assert_eq!(doc.meta.authors, vec!["Ada <ada@example.org>"]);
        assert!(doc.pieces.contains(&Piece::Language("en".into())));
    }

    #[test]
    fn identity_is_byte_exact() {
        let doc = read(SAMPLE);
        assert_eq!(write(&doc, None, &WriteOptions::default()), SAMPLE);
        let crlf = SAMPLE.replace('\n', "\r\n");
        let doc = read(&crlf);
        assert_eq!(write(&doc, None, &WriteOptions::default()), crlf);
    }

    #[test]
    fn translation_fills_msgstr_with_target_plurals_and_fuzzy() {
        let doc = read(SAMPLE);
        let texts = vec![
            "Tienes <x1/> puntos <x2/> un <g3>extra</g3>.".to_string(),
            "Abrir".to_string(),
            "Un archivo".to_string(),
            "<x1/> archivos".to_string(),
            "Un mensaje largo que sigue y sigue, mucho más allá de las setenta y nueve columnas que gettext permite.\nSegunda línea \"citada\".".to_string(),
        ];
        let options = WriteOptions {
            target_language: Some("ru".into()),
            ..Default::default()
        };
        let out = write(&doc, Some(texts), &options);
        assert!(out.contains("\"Language: ru\\n\"\n\"Plural-Forms: nplurals=3; plural=("));
        assert!(out.contains(
            "#, fuzzy, python-format\nmsgid \"You have %(points)s points &amp; a <b>bonus</b>.\"\nmsgstr \"Tienes %(points)s puntos &amp; un <b>extra</b>.\"\n"
        ));
        assert!(out.contains("#, fuzzy\nmsgctxt \"button\"\nmsgid \"Open\"\nmsgstr \"Abrir\"\n"));
        assert!(out.contains(
            "msgid_plural \"%d files\"\nmsgstr[0] \"Un archivo\"\nmsgstr[1] \"%d archivos\"\nmsgstr[2] \"%d archivos\"\n"
        ));
        assert!(!out.contains("#| msgid"));
        assert!(out.contains(
            "msgstr \"\"\n\"Un mensaje largo que sigue y sigue, mucho más allá de las setenta y nueve \"\n\"columnas que gettext permite.\\n\"\n\"Segunda línea \\\"citada\\\".\"\n"
        ));
        assert!(out.contains("#~ msgid \"Old\""));
        // The output re-reads to the same source units.
        let again = read(&out);
        assert_eq!(again.source_texts(), doc.source_texts());
        for line in out.lines().filter(|l| !l.starts_with("\"Plural-Forms")) {
            assert!(line.chars().count() <= 79, "too long: {line}");
        }
    }

    #[test]
    fn reviewed_mode_drops_fuzzy_and_japanese_has_one_form() {
        let mut doc = read(SAMPLE);
        set_fuzzy_marking(&mut doc, false);
        let mut texts = doc.source_texts();
        texts[2] = "ファイル1個".into();
        texts[3] = "<x1/> 個のファイル".into();
        let options = WriteOptions {
            target_language: Some("ja".into()),
            ..Default::default()
        };
        let out = write(&doc, Some(texts), &options);
        assert!(out.contains("msgid_plural \"%d files\"\nmsgstr[0] \"%d 個のファイル\"\n\n"));
        assert!(out.contains("#: b.py:2\nmsgid \"One file\""));
        assert!(out.contains("\"Plural-Forms: nplurals=1; plural=(0);\\n\"\n"));
        // Unchanged entries keep their existing msgstr.
        assert!(out.contains("msgid \"Open\"\nmsgstr \"Ouvrir\"\n"));
    }

    #[test]
    fn attribution_goes_into_the_header_comments() {
        let doc = read(SAMPLE);
        let options = WriteOptions {
            attribution: Some("Translated by oerkit.\n\nLicence: CC BY 4.0".into()),
            ..Default::default()
        };
        let out = write(&doc, None, &options);
        assert!(out.starts_with(
            "# Course strings.\n# Copyright (C) 2024\n# Translated by oerkit.\n#\n# Licence: CC BY 4.0\n#, fuzzy\nmsgid \"\""
        ));
    }

    #[test]
    fn existing_plural_forms_are_replaced() {
        let input = "msgid \"\"\nmsgstr \"\"\n\"Language: fr\\n\"\n\"Plural-Forms: nplurals=3; plural=(n == 0 || n == 1) ? 0 : 2;\\n\"\n\nmsgid \"a cat\"\nmsgstr \"un chat\"\n";
        let doc = read(input);
        assert_eq!(write(&doc, None, &WriteOptions::default()), input);
        let options = WriteOptions {
            target_language: Some("de".into()),
            ..Default::default()
        };
        let out = write(&doc, None, &options);
        assert!(out.contains(
            "\"Language: de\\n\"\n\"Plural-Forms: nplurals=2; plural=(n != 1);\\n\"\n\nmsgid"
        ));
    }

    #[test]
    fn render_unchanged_reparses_to_the_same_units() {
        let doc = read(SAMPLE);
        let options = WriteOptions {
            render_unchanged: true,
            ..Default::default()
        };
        let out = write(&doc, None, &options);
        let again = read(&out);
        assert_eq!(again.units.len(), doc.units.len());
        for (a, b) in again.units.iter().zip(&doc.units) {
            assert_eq!(a.text, b.text);
            assert_eq!(a.placeholders, b.placeholders);
        }
    }

    #[test]
    fn malformed_input_has_line_and_column() {
        let cases = [
            ("msgid \"a\"\n", 1, 1, "without a msgstr"),
            ("msgid \"a\nmsgstr \"\"\n", 1, 7, "unterminated"),
            (
                "msgid \"a\"\nmsgstr \"\"\nfoo\n",
                3,
                1,
                "expected a comment",
            ),
            ("msgid \"a\\q\"\nmsgstr \"\"\n", 1, 9, "invalid escape"),
            ("\"x\"\n", 1, 1, "must follow a keyword"),
            ("msgid \"a\"\nmsgstr[0] \"\"\n", 2, 1, "msgid_plural"),
        ];
        for (input, line, column, what) in cases {
            let err = Po.read(input).unwrap_err();
            assert_eq!((err.line, err.column), (line, column), "{input:?}: {err}");
            assert!(err.message.contains(what), "{input:?}: {err}");
        }
    }

    #[test]
    fn plural_rules_normalise_codes() {
        assert_eq!(plural_rule("pt-BR").unwrap().expression, N_GT_1);
        assert_eq!(plural_rule("pt_PT").unwrap().expression, N_NE_1);
        assert_eq!(plural_rule("es_419").unwrap().nplurals, 2);
        assert_eq!(plural_rule("zh-Hans").unwrap().nplurals, 1);
        assert_eq!(plural_rule("ar").unwrap().one_index, 1);
        assert!(plural_rule("xx").is_none());
    }

    #[test]
    fn wrap_breaks_after_spaces() {
        assert_eq!(wrap("aaa bbb ccc", 8), vec!["aaa bbb ", "ccc"]);
        assert_eq!(wrap("aaaaaaaaaaaa b", 5), vec!["aaaaaaaaaaaa ", "b"]);
        assert_eq!(split_after_newlines("a\\nb\\n"), vec!["a\\n", "b\\n"]);
        assert_eq!(split_after_newlines("a\\\\nb"), vec!["a\\\\nb"]);
    }
}
