//! Markdown: CommonMark + GFM tables, footnotes, strikethrough, task lists and `$…$` math, YAML front
//! matter, and what real lessons add on top: Carpentries fenced divs (`::::: challenge`), Liquid/Jinja
//! tags, kramdown attribute lists, and LiaScript (the `<!-- … -->` header, `@macros`, `[[ ]]` quiz blanks,
//! `{{1}}` animation and `--{{1}}--` narrator markers).
//!
//! pulldown-cmark finds block boundaries and inline markup by byte range; every piece is then cut from
//! the ORIGINAL bytes (the approach of mdbook-i18n-helpers), so the raw pieces plus each unit's `raw`
//! give the input back byte for byte. Syntax pulldown-cmark does not know is handled around it: front
//! matter and fence lines are blanked (same byte length) and template/LiaScript spans are masked with
//! inert `%` characters before the real parse, so offsets stay aligned and such spans never become text.
//!
//! A soft line break inside a unit stays a `\n` in its text when the next line starts flush (the
//! one-sentence-per-line style of lessons); after a container prefix (`> `, list indentation) it
//! becomes a space, so a translation never has to reproduce prefixes and the block structure holds.

use std::ops::Range;

use pulldown_cmark::{Event, LinkType, Options, Parser, Tag, TagEnd};

use crate::document::{Document, Piece, Unit};
use crate::error::ParseError;
use crate::format::{Format, FormatKind};
use crate::placeholder::{spans, Escape, Span, TextBuilder};

pub struct Markdown;

/// [`Piece::Custom`] kind of a front-matter scalar: rewritten in a YAML-safe style when translated.
const YAML_SCALAR: &str = "yaml-scalar";

/// Front-matter keys whose string values (or list items) are translatable.
const TRANSLATABLE_KEYS: &[&str] = &[
    "title",
    "subtitle",
    "teaser",
    "description",
    "summary",
    "abstract",
    "excerpt",
    "questions",
    "objectives",
    "keypoints",
];

impl Format for Markdown {
    fn kind(&self) -> FormatKind {
        FormatKind::Markdown
    }

    fn read(&self, input: &str) -> Result<Document, ParseError> {
        Ok(read_markdown(input))
    }

    /// An HTML comment at the end of the file: invisible when rendered, valid in every Markdown
    /// dialect (a front-matter key would need to know whether the file has front matter, which the
    /// notice alone does not tell).
    fn attribution(&self, notice: &str) -> Option<String> {
        // `--` may not occur inside an HTML comment.
        let body = notice.trim().replace("--", "- -");
        Some(format!("\n<!--\n{body}\n-->\n"))
    }

    fn write_custom(
        &self,
        kind: &str,
        raw: &str,
        texts: &[String],
        _target_language: Option<&str>,
    ) -> Result<String, String> {
        match (kind, texts.first()) {
            (YAML_SCALAR, Some(text)) if text != raw => Ok(encode_yaml_scalar(raw, text)),
            _ => Ok(raw.to_string()),
        }
    }
}

/// Something cut out of the input at a byte range; the bytes between them are raw.
enum Item {
    Unit(Range<usize>, Unit),
    /// A front-matter scalar written through [`Markdown::write_custom`].
    YamlScalar(Range<usize>, Unit),
    Language(Range<usize>, String),
}

impl Item {
    fn range(&self) -> &Range<usize> {
        match self {
            Item::Unit(r, _) | Item::YamlScalar(r, _) | Item::Language(r, _) => r,
        }
    }
}

fn read_markdown(src: &str) -> Document {
    let mut doc = Document::new(FormatKind::Markdown);
    let mut items: Vec<Item> = Vec::new();
    let mut masked = src.as_bytes().to_vec();

    let body_start = match front_matter(src) {
        Some(fm) => {
            read_front_matter(src, &fm, &mut doc, &mut items);
            blank(&mut masked, 0..fm.end);
            fm.end
        }
        None => 0,
    };
    read_liascript_header(src, body_start, &mut doc, &mut items);

    let masked0 = String::from_utf8(masked.clone()).expect("blanking keeps UTF-8");
    let (block_excl, inline_excl) = exclusions(&masked0);
    let fences = find_fences(src, body_start, &block_excl);
    for f in &fences {
        blank(&mut masked, f.range.clone());
    }
    let protected = find_protected(src, body_start, &block_excl, &inline_excl);
    for p in &protected {
        for b in &mut masked[p.range.clone()] {
            *b = b'%';
        }
    }
    let masked = String::from_utf8(masked).expect("masking keeps UTF-8");

    let mut walker = Walker {
        src,
        protected: &protected,
        fences: &fences,
        next_fence: 0,
        divs: Vec::new(),
        headings: Vec::new(),
        blocks: Vec::new(),
        first_h1: None,
        units: Vec::new(),
    };
    walker.walk(&masked);
    if doc.meta.title.is_none() {
        doc.meta.title = walker.first_h1.take();
    }
    items.extend(walker.units.into_iter().map(|(r, u)| Item::Unit(r, u)));

    items.sort_by_key(|i| i.range().start);
    let mut cursor = 0;
    for item in items {
        let range = item.range().clone();
        if range.start < cursor || range.end > src.len() {
            continue; // never expected; an overlapping item stays raw rather than duplicating bytes
        }
        doc.push_raw(&src[cursor..range.start]);
        match item {
            Item::Unit(_, unit) => {
                doc.push_unit(unit);
            }
            Item::YamlScalar(_, unit) => {
                let raw = unit.raw.clone();
                let index = doc.units.len();
                doc.units.push(unit);
                doc.pieces.push(Piece::Custom {
                    kind: YAML_SCALAR.to_string(),
                    raw,
                    units: vec![index],
                });
            }
            Item::Language(_, code) => doc.pieces.push(Piece::Language(code)),
        }
        cursor = range.end;
    }
    doc.push_raw(&src[cursor..]);
    doc.pieces.push(Piece::Attribution);
    doc
}

/// Replaces every byte but line ends with a space: the parser sees blank lines at the same offsets.
fn blank(bytes: &mut [u8], range: Range<usize>) {
    for b in &mut bytes[range] {
        if *b != b'\n' && *b != b'\r' {
            *b = b' ';
        }
    }
}

fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_MATH
}

/// Lines of `s` from `from` on, as byte ranges without their line end.
fn lines_from(s: &str, from: usize) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut pos = from;
    std::iter::from_fn(move || {
        if pos >= s.len() {
            return None;
        }
        let end = s[pos..].find('\n').map_or(s.len(), |i| pos + i);
        let mut content_end = end;
        if content_end > pos && s.as_bytes()[content_end - 1] == b'\r' {
            content_end -= 1;
        }
        let line = pos..content_end;
        pos = end + 1;
        Some(line)
    })
}

// ---------------------------------------------------------------------------------------------------
// Front matter

struct FrontMatter {
    /// Lines between the fences.
    body: Range<usize>,
    /// Offset after the closing fence line.
    end: usize,
}

/// A YAML front matter block: `---` on the first line, closed by `---` or `...`.
fn front_matter(src: &str) -> Option<FrontMatter> {
    let mut lines = lines_from(src, 0);
    let first = lines.next()?;
    if src[first.clone()].trim_end() != "---" {
        return None;
    }
    let body_start = (first.end + 1).min(src.len());
    for line in lines {
        let text = src[line.clone()].trim_end();
        if text == "---" || text == "..." {
            let end = src[line.end..]
                .find('\n')
                .map_or(src.len(), |i| line.end + i + 1);
            return Some(FrontMatter {
                body: body_start..line.start,
                end,
            });
        }
    }
    None
}

/// A YAML scalar token on one line: its byte range and decoded value.
struct Scalar {
    range: Range<usize>,
    value: String,
}

/// Reads the scalar starting at `start` on the line ending at `line_end`. `None` for anything that is
/// not a one-line string (block scalars, flow collections, anchors, tags, unterminated quotes).
fn scalar_at(src: &str, start: usize, line_end: usize) -> Option<Scalar> {
    let text = &src[start..line_end];
    let first = text.chars().next()?;
    match first {
        '"' => {
            let bytes = text.as_bytes();
            let mut i = 1;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' => i += 2,
                    b'"' => break,
                    _ => i += 1,
                }
            }
            if i >= bytes.len() || !rest_is_comment(&text[i + 1..]) {
                return None;
            }
            Some(Scalar {
                range: start..start + i + 1,
                value: unescape_double(&text[1..i])?,
            })
        }
        '\'' => {
            let bytes = text.as_bytes();
            let mut i = 1;
            loop {
                match bytes.get(i) {
                    None => return None,
                    Some(b'\'') if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                    Some(b'\'') => break,
                    Some(_) => i += 1,
                }
            }
            if !rest_is_comment(&text[i + 1..]) {
                return None;
            }
            Some(Scalar {
                range: start..start + i + 1,
                value: text[1..i].replace("''", "'"),
            })
        }
        '|' | '>' | '[' | '{' | '&' | '*' | '!' | '%' | '@' | '`' | '#' => None,
        _ => {
            let end = text.find(" #").unwrap_or(text.len());
            let value = text[..end].trim_end();
            if value.is_empty() {
                return None;
            }
            Some(Scalar {
                range: start..start + value.len(),
                value: value.to_string(),
            })
        }
    }
}

fn rest_is_comment(rest: &str) -> bool {
    let rest = rest.trim();
    rest.is_empty() || rest.starts_with('#')
}

fn unescape_double(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            '0' => out.push('\0'),
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            '/' => out.push('/'),
            ' ' => out.push(' '),
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            // Other escapes (\x, \U, \N…) are rare; such a value stays raw.
            _ => return None,
        }
    }
    Some(out)
}

/// Writes a translated front-matter value: plain when the source was plain and the text is safe as a
/// plain scalar, else double-quoted with JSON escapes (a subset of YAML's).
fn encode_yaml_scalar(original: &str, text: &str) -> String {
    let was_plain = !original.starts_with(['"', '\'']);
    if was_plain && plain_safe(text) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    Escape::Json.apply(text, &mut out);
    out.push('"');
    out
}

fn plain_safe(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    if text.trim() != text
        || text.chars().any(char::is_control)
        || "-?:,[]{}#&*!|>'\"%@`".contains(first)
        || text.contains(": ")
        || text.contains(" #")
        || text.ends_with(':')
        || text.parse::<f64>().is_ok()
    {
        return false;
    }
    !matches!(
        text.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~"
    )
}

fn read_front_matter(src: &str, fm: &FrontMatter, doc: &mut Document, items: &mut Vec<Item>) {
    let lines: Vec<Range<usize>> = lines_from(&src[..fm.body.end], fm.body.start).collect();
    let indent = |r: &Range<usize>| src[r.clone()].len() - src[r.clone()].trim_start().len();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].clone();
        i += 1;
        let text = &src[line.clone()];
        if indent(&line) > 0 || text.trim().is_empty() || text.starts_with('#') {
            continue;
        }
        let Some(colon) = text.find(':') else {
            continue;
        };
        let key = &text[..colon];
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            continue;
        }
        let after = &text[colon + 1..];
        if !after.is_empty() && !after.starts_with([' ', '\t']) {
            continue;
        }
        let value_start = line.start + colon + 1 + (after.len() - after.trim_start().len());
        // Lines more indented than the key belong to its value.
        let mut j = i;
        while j < lines.len() && (indent(&lines[j]) > 0 || src[lines[j].clone()].trim().is_empty())
        {
            j += 1;
        }
        let children = &lines[i..j];
        i = j;
        let key_lower = key.to_ascii_lowercase();
        let translatable = TRANSLATABLE_KEYS.contains(&key_lower.as_str());
        let mut values: Vec<Scalar> = Vec::new();
        if value_start < line.end {
            let continued = children.iter().any(|c| !src[c.clone()].trim().is_empty());
            if !continued {
                values.extend(scalar_at(src, value_start, line.end));
            }
        } else {
            values.extend(list_items(src, children));
        }
        match key_lower.as_str() {
            "title" if doc.meta.title.is_none() => {
                doc.meta.title = values.first().map(|v| v.value.clone())
            }
            "author" | "authors" | "creator" | "creators" => doc
                .meta
                .authors
                .extend(values.iter().map(|v| v.value.clone())),
            "lang" | "language" => {
                if let Some(v) = values.first() {
                    doc.meta.language = Some(v.value.clone());
                    let inner = if src[v.range.clone()].starts_with(['"', '\'']) {
                        v.range.start + 1..v.range.end - 1
                    } else {
                        v.range.clone()
                    };
                    if src[inner.clone()] == v.value {
                        items.push(Item::Language(inner, v.value.clone()));
                    }
                }
            }
            "license" | "licence" => doc.meta.license = values.first().map(|v| v.value.clone()),
            "source" | "source_url" | "url" if doc.meta.source_url.is_none() => {
                doc.meta.source_url = values.first().map(|v| v.value.clone())
            }
            _ => {}
        }
        if !translatable {
            continue;
        }
        let several = values.len() > 1 || value_start >= line.end;
        for (n, v) in values.into_iter().enumerate() {
            let mut b = TextBuilder::new();
            b.text(&v.value);
            if !b.has_translatable_text() {
                continue;
            }
            let (context, key) = if several {
                (
                    format!("front matter > {key}[{n}]"),
                    format!("front-matter.{key}.{n}"),
                )
            } else {
                (
                    format!("front matter > {key}"),
                    format!("front-matter.{key}"),
                )
            };
            let mut unit = Unit::new(b.text, &src[v.range.clone()], context, Escape::None);
            unit.placeholders = b.placeholders;
            unit.key = Some(key);
            items.push(Item::YamlScalar(v.range, unit));
        }
    }
}

/// The one-line items of a block sequence (`- item`); nothing when an item spans lines or is a mapping.
fn list_items(src: &str, lines: &[Range<usize>]) -> Vec<Scalar> {
    let mut out = Vec::new();
    for line in lines {
        let text = &src[line.clone()];
        let trimmed = text.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some(rest) = trimmed.strip_prefix("- ") else {
            return Vec::new(); // a continuation line or a nested mapping: keep the whole value raw
        };
        let start = line.end - rest.len() + (rest.len() - rest.trim_start().len());
        match scalar_at(src, start, line.end) {
            Some(s) if !looks_like_mapping(&s, src) => out.push(s),
            _ => return Vec::new(),
        }
    }
    out
}

fn looks_like_mapping(s: &Scalar, src: &str) -> bool {
    !src[s.range.clone()].starts_with(['"', '\''])
        && (s.value.contains(": ") || s.value.ends_with(':'))
}

// ---------------------------------------------------------------------------------------------------
// LiaScript header

/// The LiaScript course header: a `<!-- … -->` comment opening the document, with `key: value` lines.
/// It stays raw; `author` and `language` are read into the metadata, the language becomes a
/// [`Piece::Language`].
fn read_liascript_header(src: &str, from: usize, doc: &mut Document, items: &mut Vec<Item>) {
    let rest = &src[from..];
    let lead = rest.len() - rest.trim_start().len();
    let start = from + lead;
    if !src[start..].starts_with("<!--") {
        return;
    }
    let Some(close) = src[start..].find("-->") else {
        return;
    };
    let end = start + close;
    let mut current_key = String::new();
    for line in lines_from(&src[..end], start + 4) {
        let text = &src[line.clone()];
        if text.starts_with([' ', '\t']) || text.trim().is_empty() {
            continue; // continuation of the previous key (imports, macro bodies)
        }
        let Some(colon) = text.find(':') else {
            continue;
        };
        current_key = text[..colon].trim().to_ascii_lowercase();
        let value = text[colon + 1..].trim();
        let value_start = line.start
            + colon
            + 1
            + (text[colon + 1..].len() - text[colon + 1..].trim_start().len());
        match current_key.as_str() {
            "author" if !value.is_empty() => {
                let sep = if value.contains(';') { ';' } else { ',' };
                doc.meta.authors.extend(
                    value
                        .split(sep)
                        .map(|a| a.trim().trim_matches('`').trim())
                        .filter(|a| !a.is_empty())
                        .map(str::to_string),
                );
            }
            "language" if !value.is_empty() && !value.contains(char::is_whitespace) => {
                doc.meta.language = Some(value.to_string());
                items.push(Item::Language(
                    value_start..value_start + value.len(),
                    value.to_string(),
                ));
            }
            _ => {}
        }
    }
    let _ = current_key;
}

// ---------------------------------------------------------------------------------------------------
// Pre-pass: what must not be masked, fence lines, protected spans

/// Byte ranges of code and HTML blocks, and of inline code, math, HTML and autolinks, from a first
/// parse: masking never touches them.
fn exclusions(text: &str) -> (Vec<Range<usize>>, Vec<Range<usize>>) {
    let mut blocks = Vec::new();
    let mut inlines = Vec::new();
    for (event, range) in Parser::new_ext(text, options()).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(_) | Tag::HtmlBlock) => blocks.push(range),
            Event::Code(_)
            | Event::InlineMath(_)
            | Event::DisplayMath(_)
            | Event::InlineHtml(_) => inlines.push(range),
            Event::Start(Tag::Link {
                link_type: LinkType::Autolink | LinkType::Email,
                ..
            }) => inlines.push(range),
            _ => {}
        }
    }
    blocks.sort_by_key(|r| r.start);
    inlines.sort_by_key(|r| r.start);
    (blocks, inlines)
}

fn overlaps_any(sorted: &[Range<usize>], r: &Range<usize>) -> bool {
    // Ranges may nest (an autolink's text), so look at every range starting before `r.end`.
    let upto = sorted.partition_point(|x| x.start < r.end);
    sorted[..upto]
        .iter()
        .rev()
        .take(64)
        .any(|x| x.end > r.start)
}

/// Whether an excluded range overlaps `r` without lying wholly inside it (a macro call may hold
/// inline code as its arguments; a Liquid tag inside inline code is code).
fn straddles_any(sorted: &[Range<usize>], r: &Range<usize>) -> bool {
    let upto = sorted.partition_point(|x| x.start < r.end);
    sorted[..upto]
        .iter()
        .rev()
        .take(64)
        .any(|x| x.end > r.start && (x.start < r.start || x.end > r.end))
}

/// A Carpentries/pandoc fenced-div line (`::::: challenge`, `:::: {.callout}`, `::::::::`).
struct Fence {
    range: Range<usize>,
    /// The class it opens; `None` for a closing fence.
    class: Option<String>,
}

fn find_fences(src: &str, from: usize, block_excl: &[Range<usize>]) -> Vec<Fence> {
    let mut out = Vec::new();
    for line in lines_from(src, from) {
        if !src[line.clone()].contains(":::") || overlaps_any(block_excl, &line) {
            continue;
        }
        // Allow the fence inside block quotes: skip `>` markers and spaces.
        let text = &src[line.clone()];
        let body = text.trim_start_matches(['>', ' ', '\t']);
        let offset = line.start + text.len() - body.len();
        let colons = body.len() - body.trim_start_matches(':').len();
        if colons < 3 {
            continue;
        }
        let rest = body[colons..].trim().trim_end_matches(':').trim_end();
        let class = if rest.is_empty() {
            None
        } else if (rest.starts_with('{') && rest.ends_with('}') && !rest[1..].contains('{'))
            || rest
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        {
            Some(rest.trim_matches(['{', '}', '.', ' ']).to_string())
        } else {
            continue;
        };
        out.push(Fence {
            range: offset..line.end,
            class,
        });
    }
    out
}

/// A span of syntax pulldown-cmark does not know that must never be text.
struct Protected {
    range: Range<usize>,
    /// May be moved out of a unit when it opens or closes it (markers, attribute lists, quiz boxes).
    edge: bool,
}

fn find_protected(
    src: &str,
    from: usize,
    block_excl: &[Range<usize>],
    inline_excl: &[Range<usize>],
) -> Vec<Protected> {
    let mut out = Vec::new();
    for line in lines_from(src, from) {
        let text = &src[line.clone()];
        if !text.contains(['{', '@', '[', ':']) || overlaps_any(block_excl, &line) {
            continue;
        }
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let found = protected_at(text, i);
            match found {
                Some((len, edge)) => {
                    let range = line.start + i..line.start + i + len;
                    if !straddles_any(inline_excl, &range) {
                        out.push(Protected { range, edge });
                        i += len;
                        continue;
                    }
                    i += 1;
                }
                None => i += 1,
            }
            while i < bytes.len() && !text.is_char_boundary(i) {
                i += 1;
            }
        }
    }
    out
}

/// The length of the protected span starting at byte `i` of `line`, and whether it may be trimmed off a
/// unit's edge.
fn protected_at(line: &str, i: usize) -> Option<(usize, bool)> {
    let rest = &line[i..];
    let b = line.as_bytes();
    let prev = if i == 0 { None } else { Some(b[i - 1]) };
    // LiaScript narrator marker `--{{1}}--`.
    if let Some(inner) = rest.strip_prefix("--{{") {
        let close = inner.find("}}--")?;
        return Some((4 + close + 4, true));
    }
    if rest.starts_with("{{") {
        let close = rest.find("}}")?;
        let inner = &rest[2..close];
        // `{{1}}`, `{{0-2}}`: LiaScript animation fragment markers; `{{ x }}`: Liquid/Jinja output.
        let marker = !inner.is_empty() && inner.chars().all(|c| c.is_ascii_digit() || c == '-');
        return Some((close + 2, marker));
    }
    if rest.starts_with("{%") {
        return rest.find("%}").map(|c| (c + 2, true));
    }
    if rest.starts_with("{#") && rest.contains("#}") {
        return rest.find("#}").map(|c| (c + 2, true));
    }
    if rest.starts_with("{:") {
        return rest.find('}').map(|c| (c + 1, true));
    }
    // Heading/pandoc attributes `{#id .class}` closing a line.
    if (rest.starts_with("{#") || rest.starts_with("{.")) && rest.trim_end().ends_with('}') {
        let inner = &rest.trim_end()[1..rest.trim_end().len() - 1];
        if !inner.contains(['{', '}']) {
            return Some((rest.trim_end().len(), true));
        }
        return None;
    }
    // LiaScript quiz blanks and boxes: `[[___]]`, `[[X]]`, `[[ ]]`, `[( )]`, `[[?]]`.
    if rest.starts_with("[[") {
        let close = rest.find("]]")?;
        if rest[2..close].contains('[') {
            return None;
        }
        return Some((close + 2, true));
    }
    if rest.starts_with("[(") {
        let close = rest.find(")]")?;
        if close > 2 && rest[2..close].contains(['[', ']', '(']) {
            return None;
        }
        return Some((close + 2, true));
    }
    if let Some(len) = email_len(line, i) {
        return Some((len, false));
    }
    if rest.starts_with('@') {
        if matches!(prev, Some(p) if p.is_ascii_alphanumeric() || p == b'_' || p == b'.' || p == b'@' || p == b'/')
        {
            return None;
        }
        return macro_call_len(rest).map(|l| (l, false));
    }
    if rest.starts_with("http://") || rest.starts_with("https://") || rest.starts_with("ftp://") {
        if matches!(prev, Some(p) if p.is_ascii() && !matches!(p, b' ' | b'\t' | b'*' | b'_' | b'>' | b',' | b';'))
        {
            return None; // in a link destination, autolink, attribute or reference label
        }
        return Some((url_len(rest), false));
    }
    None
}

/// An e-mail address starting at byte `i` (not inside a longer word): `local@domain.tld`.
fn email_len(line: &str, i: usize) -> Option<usize> {
    let b = line.as_bytes();
    let local = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-');
    if !b[i].is_ascii_alphanumeric() || (i > 0 && (local(b[i - 1]) || b[i - 1] == b'@')) {
        return None;
    }
    let mut j = i;
    while j < b.len() && local(b[j]) {
        j += 1;
    }
    if b.get(j) != Some(&b'@') {
        return None;
    }
    let domain_start = j + 1;
    let mut k = domain_start;
    while k < b.len() && (b[k].is_ascii_alphanumeric() || matches!(b[k], b'.' | b'-')) {
        k += 1;
    }
    while k > domain_start && matches!(b[k - 1], b'.' | b'-') {
        k -= 1;
    }
    let domain = &line[domain_start..k];
    let tld = domain.rsplit('.').next()?;
    (domain.contains('.') && tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
        .then_some(k - i)
}

/// `@name` or `@name(args)` (arguments may hold backtick-quoted text with parentheses).
fn macro_call_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 1;
    if !b
        .get(1)
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
    {
        return None;
    }
    while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'-')) {
        i += 1;
    }
    while i > 2 && matches!(b[i - 1], b'.' | b'-') {
        i -= 1;
    }
    if b.get(i) != Some(&b'(') {
        return Some(i);
    }
    let mut depth = 0usize;
    let mut j = i;
    let mut in_tick = false;
    while j < b.len() {
        match b[j] {
            b'`' => in_tick = !in_tick,
            b'(' if !in_tick => depth += 1,
            b')' if !in_tick => {
                depth -= 1;
                if depth == 0 {
                    return Some(j + 1);
                }
            }
            _ => {}
        }
        j += 1;
    }
    Some(i)
}

fn url_len(s: &str) -> usize {
    let end = s
        .find(|c: char| {
            c.is_whitespace()
                || matches!(c, '<' | '>' | '"' | '`')
                || (!c.is_ascii() && !c.is_alphanumeric())
        })
        .unwrap_or(s.len());
    let mut url = &s[..end];
    loop {
        let trimmed = url.trim_end_matches(['.', ',', ';', ':', '!', '?', '*', '_', '\'']);
        let unbalanced = trimmed.matches('(').count() < trimmed.matches(')').count();
        let trimmed = match trimmed.strip_suffix(')') {
            Some(t) if unbalanced => t,
            _ => trimmed.strip_suffix(']').unwrap_or(trimmed),
        };
        if trimmed.len() == url.len() {
            break;
        }
        url = trimmed;
    }
    url.len()
}

// ---------------------------------------------------------------------------------------------------
// The walk over blocks

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Paragraph,
    Heading(u8),
    Quote,
    Item,
    Footnote,
    TableHead,
    TableCell,
    Other,
}

struct Walker<'a> {
    src: &'a str,
    protected: &'a [Protected],
    fences: &'a [Fence],
    next_fence: usize,
    /// Open fenced divs (their classes), for context.
    divs: Vec<String>,
    /// Heading path: (level, title).
    headings: Vec<(u8, String)>,
    blocks: Vec<Block>,
    first_h1: Option<String>,
    units: Vec<(Range<usize>, Unit)>,
}

fn is_inline(event: &Event) -> bool {
    match event {
        Event::Text(_)
        | Event::Code(_)
        | Event::InlineMath(_)
        | Event::DisplayMath(_)
        | Event::InlineHtml(_)
        | Event::FootnoteReference(_)
        | Event::SoftBreak
        | Event::HardBreak
        | Event::TaskListMarker(_) => true,
        Event::Start(tag) => matches!(
            tag,
            Tag::Emphasis
                | Tag::Strong
                | Tag::Strikethrough
                | Tag::Superscript
                | Tag::Subscript
                | Tag::Link { .. }
                | Tag::Image { .. }
        ),
        Event::End(tag) => matches!(
            tag,
            TagEnd::Emphasis
                | TagEnd::Strong
                | TagEnd::Strikethrough
                | TagEnd::Superscript
                | TagEnd::Subscript
                | TagEnd::Link
                | TagEnd::Image
        ),
        _ => false,
    }
}

impl Walker<'_> {
    fn walk(&mut self, masked: &str) {
        let events: Vec<(Event, Range<usize>)> = Parser::new_ext(masked, options())
            .into_offset_iter()
            .collect();
        let mut skip_depth = 0usize;
        let mut run_start: Option<usize> = None;
        for (index, (event, range)) in events.iter().enumerate() {
            if skip_depth > 0 {
                match event {
                    Event::Start(Tag::CodeBlock(_) | Tag::HtmlBlock | Tag::MetadataBlock(_)) => {
                        skip_depth += 1
                    }
                    Event::End(
                        TagEnd::CodeBlock | TagEnd::HtmlBlock | TagEnd::MetadataBlock(_),
                    ) => skip_depth -= 1,
                    _ => {}
                }
                continue;
            }
            if is_inline(event) {
                run_start.get_or_insert(index);
                continue;
            }
            if let Some(start) = run_start.take() {
                self.flush(&events[start..index]);
            }
            self.advance_fences(range.start);
            match event {
                Event::Start(Tag::CodeBlock(_) | Tag::HtmlBlock | Tag::MetadataBlock(_)) => {
                    skip_depth = 1
                }
                Event::Start(tag) => self.blocks.push(match tag {
                    Tag::Paragraph => Block::Paragraph,
                    Tag::Heading { level, .. } => Block::Heading(*level as u8),
                    Tag::BlockQuote(_) => Block::Quote,
                    Tag::Item => Block::Item,
                    Tag::FootnoteDefinition(_) => Block::Footnote,
                    Tag::TableHead => Block::TableHead,
                    Tag::TableCell => Block::TableCell,
                    _ => Block::Other,
                }),
                Event::End(_) => {
                    self.blocks.pop();
                }
                _ => {}
            }
        }
        if let Some(start) = run_start {
            self.flush(&events[start..]);
        }
    }

    /// Applies the fence lines before `offset` to the div stack.
    fn advance_fences(&mut self, offset: usize) {
        while let Some(f) = self.fences.get(self.next_fence) {
            if f.range.start >= offset {
                break;
            }
            match &f.class {
                Some(c) => self.divs.push(c.clone()),
                None => {
                    self.divs.pop();
                }
            }
            self.next_fence += 1;
        }
    }

    fn kind(&self) -> String {
        let leaf = self.blocks.last().copied().unwrap_or(Block::Other);
        let within = |b: Block| self.blocks.contains(&b);
        match leaf {
            Block::Heading(n) => format!("heading {n}"),
            Block::TableCell if within(Block::TableHead) => "table header".into(),
            Block::TableCell => "table cell".into(),
            _ if within(Block::Footnote) => "footnote".into(),
            _ if within(Block::Item) => "list item".into(),
            _ if within(Block::Quote) => "quote".into(),
            _ => "paragraph".into(),
        }
    }

    fn context(&self) -> String {
        let mut parts: Vec<&str> = self.headings.iter().map(|(_, t)| t.as_str()).collect();
        parts.extend(self.divs.iter().map(String::as_str));
        let kind = self.kind();
        parts.push(&kind);
        parts.join(" > ")
    }

    fn flush(&mut self, events: &[(Event, Range<usize>)]) {
        if let Some(r) = events.first().map(|(_, r)| r.start) {
            self.advance_fences(r);
        }
        let heading = match self.blocks.last() {
            Some(Block::Heading(n)) => Some(*n),
            _ => None,
        };
        let built = build_unit(self.src, events, self.protected);
        let title = match &built {
            Some((_, b)) => plain_text(&b.text),
            None => {
                let start = events.first().map_or(0, |(_, r)| r.start);
                let end = events.iter().map(|(_, r)| r.end).max().unwrap_or(start);
                self.src.get(start..end).unwrap_or("").trim().to_string()
            }
        };
        if let Some((range, b)) = built {
            if b.has_translatable_text() {
                let mut unit = Unit::new(
                    b.text,
                    &self.src[range.clone()],
                    self.context(),
                    Escape::None,
                );
                unit.placeholders = b.placeholders;
                self.units.push((range, unit));
            }
        }
        if let Some(level) = heading {
            if level == 1 && self.first_h1.is_none() && !title.is_empty() {
                self.first_h1 = Some(title.clone());
            }
            while self.headings.last().is_some_and(|(l, _)| *l >= level) {
                self.headings.pop();
            }
            self.headings.push((level, title));
        }
    }
}

/// The text parts of unit text, tokens left out (for heading paths and titles).
fn plain_text(text: &str) -> String {
    let joined: String = spans(text)
        .into_iter()
        .filter_map(|s| match s {
            Span::Text(t) => Some(t),
            Span::Token { .. } => None,
        })
        .collect();
    joined.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------------------
// Inline markup of one run: marks, then the unit text

#[derive(Debug, Clone, PartialEq, Eq)]
enum MarkKind {
    Open(u32),
    Close(u32),
    Standalone,
    /// A soft line break with the whitespace and container prefix around it: `\n` in the text.
    SoftBreak,
    HtmlOpen(String),
    HtmlClose(String),
}

#[derive(Debug, Clone)]
struct Mark {
    range: Range<usize>,
    kind: MarkKind,
    /// May be moved out of the unit when it opens or closes it.
    edge: bool,
    /// The markup written for the token when it differs from the bytes it covers.
    original: Option<String>,
}

const VOID_ELEMENTS: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

struct Marker<'a> {
    src: &'a str,
    events: &'a [(Event<'a>, Range<usize>)],
    marks: Vec<Mark>,
    next_pair: u32,
    /// Events before this index are covered by a mark already (an inline `<script>` swallows its body).
    skip_until: usize,
    region_start: usize,
    /// Set when pulldown-cmark's ranges do not nest as expected: the run stays raw.
    broken: bool,
}

impl Marker<'_> {
    fn push(&mut self, range: Range<usize>, kind: MarkKind, edge: bool) {
        if range.start > range.end || range.end > self.src.len() {
            self.broken = true;
            return;
        }
        self.marks.push(Mark {
            range,
            kind,
            edge,
            original: None,
        });
    }

    fn push_with(&mut self, range: Range<usize>, kind: MarkKind, original: Option<String>) {
        self.push(range, kind, false);
        if let Some(m) = self.marks.last_mut() {
            m.original = original;
        }
    }

    fn next_start(&self, i: usize, after: usize) -> usize {
        match self.events.get(i + 1) {
            // An escaped character's text range starts after its backslash, which is text too.
            Some((_, r)) if r.start > after && self.src.as_bytes()[r.start - 1] == b'\\' => {
                r.start - 1
            }
            Some((_, r)) if r.start >= after => r.start,
            _ => after,
        }
    }

    fn matching_end(&self, i: usize, hi: usize) -> Option<usize> {
        let mut depth = 0usize;
        for j in i..hi {
            match self.events[j].0 {
                Event::Start(_) => depth += 1,
                Event::End(_) => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(j);
                    }
                }
                _ => {}
            }
        }
        None
    }

    fn walk(&mut self, lo: usize, hi: usize) {
        let mut i = lo;
        while i < hi {
            if i < self.skip_until {
                i += 1;
                continue;
            }
            let (event, r) = &self.events[i];
            let r = r.clone();
            match event {
                Event::Start(tag) => {
                    let Some(j) = self.matching_end(i, hi) else {
                        self.broken = true;
                        return;
                    };
                    let atomic = matches!(
                        tag,
                        Tag::Link {
                            link_type: LinkType::Autolink | LinkType::Email,
                            ..
                        }
                    ) || j == i + 1;
                    if atomic {
                        self.push(r, MarkKind::Standalone, false);
                    } else {
                        let first = self.events[i + 1].1.start;
                        let last = self.events[i + 1..j]
                            .iter()
                            .map(|(_, r)| r.end)
                            .max()
                            .unwrap_or(first);
                        if first < r.start || last > r.end || first > last {
                            self.broken = true;
                            return;
                        }
                        let mut open_start = r.start;
                        if matches!(tag, Tag::Link { .. }) {
                            open_start = self.liascript_media_prefix(r.start);
                        }
                        let id = self.next_pair;
                        self.next_pair += 1;
                        self.push(open_start..first, MarkKind::Open(id), false);
                        self.walk(i + 1, j);
                        match tag {
                            // `[label]` and `[label][]` find their target by their text: a
                            // translated text would lose it, so the closing markup names the label
                            // (`[translated][label]`, the same link).
                            Tag::Link {
                                link_type: LinkType::Shortcut | LinkType::Collapsed,
                                ..
                            } => {
                                let label = &self.src[first..last];
                                self.push_with(
                                    last..r.end,
                                    MarkKind::Close(id),
                                    Some(format!("][{label}]")),
                                );
                            }
                            _ => self.push(last..r.end, MarkKind::Close(id), false),
                        }
                    }
                    i = j + 1;
                    continue;
                }
                Event::Code(_)
                | Event::InlineMath(_)
                | Event::DisplayMath(_)
                | Event::FootnoteReference(_) => self.push(r, MarkKind::Standalone, false),
                Event::TaskListMarker(_) => self.push(r, MarkKind::Standalone, true),
                Event::HardBreak => {
                    let end = self.next_start(i, r.end);
                    self.push(r.start..end, MarkKind::Standalone, false);
                }
                Event::SoftBreak => {
                    let floor = self
                        .marks
                        .last()
                        .map_or(self.region_start, |m| m.range.end)
                        .max(self.region_start);
                    let mut start = r.start;
                    while start > floor && matches!(self.src.as_bytes()[start - 1], b' ' | b'\t') {
                        start -= 1;
                    }
                    // `\` directly before the line end would turn into a hard break.
                    if start < r.start && start > 0 && self.src.as_bytes()[start - 1] == b'\\' {
                        start += 1;
                    }
                    let end = self.next_start(i, r.end);
                    self.push(start..end, MarkKind::SoftBreak, false);
                }
                Event::InlineHtml(_) => self.html(i, r),
                _ => {}
            }
            i += 1;
        }
    }

    /// LiaScript embeds video with `!?[alt](url)` and audio with `?[alt](url)`: the prefix belongs to
    /// the link's opening markup.
    fn liascript_media_prefix(&self, start: usize) -> usize {
        let before = &self.src[self.region_start.min(start)..start];
        let at_boundary = |prefix_len: usize| {
            let rest = &before[..before.len() - prefix_len];
            !rest.ends_with(char::is_alphanumeric)
        };
        if before.ends_with("!?") && at_boundary(2) {
            start - 2
        } else if before.ends_with('?') && !before.ends_with("!?") && at_boundary(1) {
            start - 1
        } else {
            start
        }
    }

    fn html(&mut self, i: usize, r: Range<usize>) {
        let tag = &self.src[r.clone()];
        if tag.starts_with("<!--") {
            self.push(r, MarkKind::Standalone, true);
            return;
        }
        if tag.starts_with("<?") || tag.starts_with("<!") {
            self.push(r, MarkKind::Standalone, false);
            return;
        }
        let closing = tag.starts_with("</");
        let name: String = tag[if closing { 2 } else { 1 }..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect::<String>()
            .to_ascii_lowercase();
        if closing {
            self.push(r, MarkKind::HtmlClose(name), false);
        } else if name == "script" || name == "style" {
            // Everything up to the closing tag is code, never text.
            let run_end = self
                .events
                .iter()
                .map(|(_, r)| r.end)
                .max()
                .unwrap_or(r.end);
            let hay = self.src[r.end..run_end].to_ascii_lowercase();
            let end = match hay.find(&format!("</{name}")) {
                Some(k) => {
                    let close_start = r.end + k;
                    self.src[close_start..run_end]
                        .find('>')
                        .map_or(run_end, |g| close_start + g + 1)
                }
                None => run_end,
            };
            self.skip_until = self
                .events
                .iter()
                .position(|(_, er)| er.start >= end)
                .unwrap_or(self.events.len())
                .max(i + 1);
            self.push(r.start..end, MarkKind::Standalone, false);
        } else if tag.ends_with("/>") || VOID_ELEMENTS.contains(&name.as_str()) || name.is_empty() {
            self.push(r, MarkKind::Standalone, false);
        } else {
            self.push(r, MarkKind::HtmlOpen(name), false);
        }
    }
}

/// Pairs inline HTML tags by name; a tag without partner, or a pair that would cross other markup,
/// becomes standalone.
fn pair_html(marks: &mut [Mark], mut next_pair: u32) {
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut html_pairs: Vec<u32> = Vec::new();
    for i in 0..marks.len() {
        match marks[i].kind.clone() {
            MarkKind::HtmlOpen(name) => stack.push((i, name)),
            MarkKind::HtmlClose(name) => {
                if let Some(pos) = stack.iter().rposition(|(_, n)| *n == name) {
                    let (open, _) = stack.remove(pos);
                    marks[open].kind = MarkKind::Open(next_pair);
                    marks[i].kind = MarkKind::Close(next_pair);
                    html_pairs.push(next_pair);
                    next_pair += 1;
                }
            }
            _ => {}
        }
    }
    for m in marks.iter_mut() {
        if matches!(m.kind, MarkKind::HtmlOpen(_) | MarkKind::HtmlClose(_)) {
            m.kind = MarkKind::Standalone;
        }
    }
    // Markdown pairs nest by construction; an HTML pair that crosses anything is unpaired.
    loop {
        let mut stack: Vec<u32> = Vec::new();
        let mut crossing: Option<u32> = None;
        for m in marks.iter() {
            match m.kind {
                MarkKind::Open(id) => stack.push(id),
                MarkKind::Close(id) => {
                    if stack.last() == Some(&id) {
                        stack.pop();
                    } else {
                        let top = stack.last().copied();
                        crossing = if html_pairs.contains(&id) {
                            Some(id)
                        } else {
                            top
                        };
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(id) = crossing.filter(|id| html_pairs.contains(id)) else {
            break;
        };
        for m in marks.iter_mut() {
            if m.kind == MarkKind::Open(id) || m.kind == MarkKind::Close(id) {
                m.kind = MarkKind::Standalone;
            }
        }
        html_pairs.retain(|p| *p != id);
    }
}

/// The unit of one run of inline events: its byte range and built text, or `None` when the run cannot
/// be cut safely (it then stays raw).
fn build_unit(
    src: &str,
    events: &[(Event, Range<usize>)],
    protected: &[Protected],
) -> Option<(Range<usize>, TextBuilder)> {
    let mut start = events.first()?.1.start;
    // pulldown-cmark's text range of `\#` starts after the backslash: the escape belongs to the unit.
    if start > 0 && src.as_bytes().get(start - 1) == Some(&b'\\') {
        start -= 1;
    }
    let end = events.iter().map(|(_, r)| r.end).max()?;
    if start >= end || end > src.len() {
        return None;
    }
    let mut marker = Marker {
        src,
        events,
        marks: Vec::new(),
        next_pair: 1,
        skip_until: 0,
        region_start: start,
        broken: false,
    };
    marker.walk(0, events.len());
    if marker.broken {
        return None;
    }
    let next_pair = marker.next_pair;
    let mut marks = marker.marks;
    let region_start = marks
        .iter()
        .map(|m| m.range.start)
        .min()
        .unwrap_or(start)
        .min(start);
    let from = protected.partition_point(|p| p.range.end <= region_start);
    for p in protected[from..].iter().take_while(|p| p.range.start < end) {
        if p.range.start >= region_start
            && p.range.end <= end
            && !marks
                .iter()
                .any(|m| m.range.start < p.range.end && p.range.start < m.range.end)
        {
            marks.push(Mark {
                range: p.range.clone(),
                kind: MarkKind::Standalone,
                edge: p.edge,
                original: None,
            });
        }
    }
    marks.sort_by_key(|m| (m.range.start, m.range.end));
    marks.retain(|m| {
        !m.range.is_empty() || matches!(m.kind, MarkKind::Open(_) | MarkKind::Close(_))
    });
    for w in marks.windows(2) {
        if w[1].range.start < w[0].range.end {
            return None;
        }
    }
    if !src.is_char_boundary(region_start)
        || !src.is_char_boundary(end)
        || marks
            .iter()
            .any(|m| !src.is_char_boundary(m.range.start) || !src.is_char_boundary(m.range.end))
    {
        return None;
    }
    pair_html(&mut marks, next_pair);

    // Trim whitespace, soft breaks and edge marks (markers, comments, task boxes) off both ends.
    let mut lo = 0;
    let mut hi = marks.len();
    let mut region = region_start..end;
    loop {
        let lead = src[region.clone()].len() - src[region.clone()].trim_start().len();
        region.start += lead;
        match marks.get(lo) {
            Some(m)
                if m.range.start <= region.start
                    && (m.kind == MarkKind::SoftBreak
                        || (m.edge && m.kind == MarkKind::Standalone)) =>
            {
                region.start = m.range.end.max(region.start);
                lo += 1;
            }
            _ => break,
        }
    }
    loop {
        let trail = src[region.clone()].len() - src[region.clone()].trim_end().len();
        region.end -= trail;
        if hi <= lo {
            break;
        }
        let m = &marks[hi - 1];
        if m.range.end >= region.end
            && (m.kind == MarkKind::SoftBreak || (m.edge && m.kind == MarkKind::Standalone))
        {
            region.end = m.range.start.min(region.end);
            hi -= 1;
        } else {
            break;
        }
    }
    if region.start >= region.end {
        return None;
    }
    let inner = &marks[lo..hi];
    // Pairs must stay whole inside the trimmed region.
    if inner
        .iter()
        .any(|m| m.range.start < region.start || m.range.end > region.end)
    {
        return None;
    }

    let mut b = TextBuilder::new();
    let mut cursor = region.start;
    for m in inner {
        text_with_entities(&mut b, &src[cursor..m.range.start]);
        let original = m.original.as_deref().unwrap_or(&src[m.range.clone()]);
        match m.kind {
            MarkKind::Open(_) => {
                b.open(original);
            }
            MarkKind::Close(_) => b.close(original),
            // A line break stays one where the next line starts flush; after a container prefix
            // (`> `, list indentation) it becomes a space, so a translation needs no prefixes.
            MarkKind::SoftBreak if original.ends_with('\n') => b.text("\n"),
            MarkKind::SoftBreak => b.text(" "),
            _ => {
                b.standalone(original);
            }
        }
        cursor = m.range.end;
    }
    text_with_entities(&mut b, &src[cursor..region.end]);
    if b.has_open() {
        return None;
    }
    Some((region, b))
}

/// Adds text, with character references (`&amp;`, `&#39;`) as standalone placeholders: an engine
/// would translate or mangle them, and their letters are not words.
fn text_with_entities(b: &mut TextBuilder, text: &str) {
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        let len = entity_len(&rest[amp..]);
        if len == 0 {
            b.text(&rest[..amp + 1]);
            rest = &rest[amp + 1..];
            continue;
        }
        b.text(&rest[..amp]);
        b.standalone(&rest[amp..amp + len]);
        rest = &rest[amp + len..];
    }
    b.text(rest);
}

/// The length of the character reference at the start of `s`, or 0.
fn entity_len(s: &str) -> usize {
    let b = s.as_bytes();
    let (digits, max, start): (fn(&u8) -> bool, usize, usize) = match (b.get(1), b.get(2)) {
        (Some(b'#'), Some(b'x' | b'X')) => (u8::is_ascii_hexdigit, 6, 3),
        (Some(b'#'), _) => (u8::is_ascii_digit, 7, 2),
        (Some(c), _) if c.is_ascii_alphabetic() => (u8::is_ascii_alphanumeric, 32, 1),
        _ => return 0,
    };
    let n = b[start..].iter().take_while(|c| digits(c)).count();
    if n == 0 || n > max || b.get(start + n) != Some(&b';') {
        return 0;
    }
    start + n + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::{write_document, Translations, WriteOptions};
    use std::path::Path;

    fn read(input: &str) -> Document {
        let mut doc = Markdown.read(input).unwrap();
        doc.assign_ids();
        doc
    }

    fn identity(doc: &Document) -> String {
        write_document(
            doc,
            &Translations::identity(doc),
            &WriteOptions::default(),
            Path::new("t.md"),
        )
        .unwrap()
    }

    fn texts(input: &str) -> Vec<String> {
        let doc = read(input);
        assert_eq!(identity(&doc), input);
        doc.source_texts()
    }

    fn originals(doc: &Document, unit: usize) -> Vec<String> {
        doc.units[unit]
            .placeholders
            .iter()
            .map(|p| p.original.clone())
            .collect()
    }

    #[test]
    fn paragraphs_headings_and_inline_markup() {
        let input = "# Title\n\nSome *emphasis* and **strong** with `code`\nand a [link](http://x.org \"t\").\n";
        let doc = read(input);
        assert_eq!(identity(&doc), input);
        assert_eq!(
            doc.source_texts(),
            vec![
                "Title",
                "Some <g1>emphasis</g1> and <g2>strong</g2> with <x3/>\nand a <g4>link</g4>."
            ]
        );
        assert_eq!(
            originals(&doc, 1),
            vec!["*", "*", "**", "**", "`code`", "[", "](http://x.org \"t\")"]
        );
        assert_eq!(doc.units[1].context, "Title > paragraph");
        assert_eq!(doc.meta.title.as_deref(), Some("Title"));
    }

    #[test]
    fn code_math_and_html_blocks_stay_raw() {
        let input = "```bash\n$ ls *files*\n```\n\n    indented code\n\n$$\nx^2\n$$\n\n<div>\nraw html\n</div>\n\nAn $x+1$ inline.\n";
        let doc = read(input);
        assert_eq!(identity(&doc), input);
        assert_eq!(doc.source_texts(), vec!["An <x1/> inline."]);
        assert_eq!(originals(&doc, 0), vec!["$x+1$"]);
    }

    #[test]
    fn lists_quotes_and_soft_breaks() {
        let input = "- first item\n  continues\n- [ ] task\n\n> quoted line\n> second line\n";
        let doc = read(input);
        assert_eq!(identity(&doc), input);
        assert_eq!(
            doc.source_texts(),
            vec!["first item continues", "task", "quoted line second line"]
        );
        assert_eq!(doc.units[0].raw, "first item\n  continues");
        assert_eq!(doc.units[2].context, "quote");
    }

    #[test]
    fn images_links_html_and_breaks() {
        let input = "See ![a cat](cat.png) and [![badge](b.svg)](u) <kbd>Enter</kbd> x<br>y  \nz <https://a.b>\n";
        let doc = read(input);
        assert_eq!(identity(&doc), input);
        assert_eq!(
            doc.source_texts(),
            vec![
                "See <g1>a cat</g1> and <g2><g3>badge</g3></g2> <g4>Enter</g4> x<x5/>y<x6/>z <x7/>"
            ]
        );
        let o = originals(&doc, 0);
        assert!(o.contains(&"](cat.png)".to_string()));
        assert!(o.contains(&"<kbd>".to_string()) && o.contains(&"</kbd>".to_string()));
        assert!(o.contains(&"  \n".to_string()));
    }

    #[test]
    fn crossing_html_is_unpaired() {
        let doc = read("a *b <b>c* d</b> e\n");
        let text = &doc.units[0].text;
        assert_eq!(text, "a <g1>b <x2/>c</g1> d<x3/> e");
    }

    #[test]
    fn tables_cells_are_units() {
        let input = "| Name | Value |\n|---|---|\n| **one** | `1` |\n| two \\| three | @macro |\n";
        assert_eq!(
            texts(input),
            vec!["Name", "Value", "<g1>one</g1>", "two \\| three"]
        );
    }

    #[test]
    fn front_matter_values_and_metadata() {
        let input = "---\ntitle: \"Intro: the shell\"\nteaching: 5\nlang: en\nlicense: CC-BY-4.0\nauthor: Ada\nobjectives:\n  - Explain things.\n  - 'Don''t panic'\n---\n\nBody text.\n";
        let doc = read(input);
        assert_eq!(identity(&doc), input);
        assert_eq!(
            doc.source_texts(),
            vec![
                "Intro: the shell",
                "Explain things.",
                "Don't panic",
                "Body text."
            ]
        );
        assert_eq!(doc.meta.title.as_deref(), Some("Intro: the shell"));
        assert_eq!(doc.meta.language.as_deref(), Some("en"));
        assert_eq!(doc.meta.license.as_deref(), Some("CC-BY-4.0"));
        assert_eq!(doc.meta.authors, vec!["Ada"]);
        assert!(doc.pieces.contains(&Piece::Language("en".into())));
        assert_eq!(doc.units[1].id, "front-matter.objectives.0");
        let tr = Translations::from_texts(vec![
            "Intro: la terminal".into(),
            "Explicar cosas.".into(),
            "No entres en pánico: nunca".into(),
            "Texto.".into(),
        ]);
        let options = WriteOptions {
            target_language: Some("es".into()),
            ..Default::default()
        };
        let out = write_document(&doc, &tr, &options, Path::new("t.md")).unwrap();
        assert_eq!(
            out,
            "---\ntitle: \"Intro: la terminal\"\nteaching: 5\nlang: es\nlicense: CC-BY-4.0\nauthor: Ada\nobjectives:\n  - Explicar cosas.\n  - \"No entres en pánico: nunca\"\n---\n\nTexto.\n"
        );
    }

    #[test]
    fn carpentries_divs_stay_raw_and_give_context() {
        let input = "## Task\n\n:::::::: challenge\n\n## Do it\n\nTry `ls`.\n\n::: solution\nAnswer here.\n:::\n\n::::::::\n";
        let doc = read(input);
        assert_eq!(identity(&doc), input);
        assert_eq!(
            doc.source_texts(),
            vec!["Task", "Do it", "Try <x1/>.", "Answer here."]
        );
        assert_eq!(
            doc.units[3].context,
            "Do it > challenge > solution > paragraph"
        );
    }

    #[test]
    fn liquid_and_kramdown_are_placeholders() {
        let input = "{% include links.md %}\n\nHello {{ page.name }} world.\n{: .output}\n\nMail a.b@x-y.org or see https://x.org/a_(b).\n";
        let doc = read(input);
        assert_eq!(identity(&doc), input);
        assert_eq!(
            doc.source_texts(),
            vec!["Hello <x1/> world.", "Mail <x1/> or see <x2/>."]
        );
        assert_eq!(
            originals(&doc, 1),
            vec!["a.b@x-y.org", "https://x.org/a_(b)"]
        );
        assert_eq!(originals(&doc, 0), vec!["{{ page.name }}"]);
    }

    #[test]
    fn liascript_header_macros_quizzes_and_markers() {
        let input = "<!--\nauthor: Ada Lovelace; Charles Babbage\nlanguage: de\n@mac: `x`\n-->\n\n# Kurs\n\n**Semester:** @config.semester\n\nWas ist 2+2? [[4]]\n\n[( )] falsch\n[(X)] richtig\n\n    --{{1}}--\nErzähler sagt etwas.\n\n{{1-2}}\nAnimierter Text.\n\n!?[Video](https://y.t/v) hier @LIA.eval(`[\"a\"]`, `x (y)`)\n";
        let doc = read(input);
        assert_eq!(identity(&doc), input);
        assert_eq!(doc.meta.language.as_deref(), Some("de"));
        assert_eq!(doc.meta.authors, vec!["Ada Lovelace", "Charles Babbage"]);
        assert!(doc.pieces.contains(&Piece::Language("de".into())));
        assert_eq!(
            doc.source_texts(),
            vec![
                "Kurs",
                "<g1>Semester:</g1> <x2/>",
                "Was ist 2+2?",
                "falsch\n<x1/> richtig",
                "Erzähler sagt etwas.",
                "Animierter Text.",
                "<g1>Video</g1> hier <x2/>"
            ]
        );
        assert_eq!(originals(&doc, 6)[0], "!?[");
        assert_eq!(originals(&doc, 6)[2], "@LIA.eval(`[\"a\"]`, `x (y)`)");
    }

    #[test]
    fn attribution_goes_at_the_end_as_a_comment() {
        let doc = read("Text.\n");
        let options = WriteOptions {
            attribution: Some("Translated -- by oerkit".into()),
            ..Default::default()
        };
        let out = write_document(
            &doc,
            &Translations::identity(&doc),
            &options,
            Path::new("t.md"),
        )
        .unwrap();
        assert_eq!(out, "Text.\n\n<!--\nTranslated - - by oerkit\n-->\n");
    }

    #[test]
    fn entities_are_placeholders() {
        let doc = read("Fish &amp; chips &#39;n&#x27; &bogus peas &;\n");
        assert_eq!(
            doc.source_texts(),
            vec!["Fish <x1/> chips <x2/>n<x3/> &bogus peas &;"]
        );
    }

    #[test]
    fn yaml_plain_safety() {
        assert_eq!(encode_yaml_scalar("a", "Hola"), "Hola");
        assert_eq!(encode_yaml_scalar("a", "x: y"), "\"x: y\"");
        assert_eq!(encode_yaml_scalar("a", "- x"), "\"- x\"");
        assert_eq!(encode_yaml_scalar("a", "yes"), "\"yes\"");
        assert_eq!(encode_yaml_scalar("'a'", "b"), "\"b\"");
    }
}
