//! XLIFF 1.2 and 2.1: a job from a CAT tool (OmegaT, Okapi, memoQ…) read, translated, written back;
//! and [`to_xliff`], which makes such a job from any [`Document`].
//!
//! Reading: each `<trans-unit>` (1.2) or `<segment>` of a `<unit>` (2.1) whose `<source>` has letters
//! is a unit; its key is the `resname`/`name` when there is one (the id of the unit in the document the
//! job was made from), else the `id`. Inline codes become placeholders holding their exact markup:
//! `<g>`, `<pc>`, `<mrk>` paired; `<x/>`, `<bx/>`, `<ex/>`, `<ph/>`, `<sc/>`, `<ec/>` standalone;
//! `<ph>`, `<bpt>`, `<ept>`, `<it>` with native code inside are one standalone placeholder each.
//! `translate="no"` units are left alone. `target-language` (1.2) / `trgLang` (2.1) is the
//! [`Piece::Language`].
//!
//! Writing: the translation goes into `<target>` (created after `<source>` when missing) and the state
//! says so: 1.2 `state="translated"` for a new or empty target, `"needs-review-translation"` when an
//! existing translation is replaced; 2.1 `<segment state="translated">`. A translation equal to the
//! source leaves the unit as it was (the generic writer does not tell the two apart). `<seg-source>`
//! segmentation (Okapi) is not split: the whole target is written.

use crate::document::{Document, Piece, Unit};
use crate::error::ParseError;
use crate::format::{Format, FormatKind};
use crate::formats::cnxml::markup::{self, Dialect, Role, Tok, TokKind};
use crate::placeholder::{spans, Escape, Span, TagKind, TextBuilder};

pub struct Xliff;

/// Which XLIFF [`to_xliff`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XliffVersion {
    V12,
    V21,
}

const KIND_12: &str = "xliff12";
const KIND_21: &str = "xliff21";

impl Format for Xliff {
    fn kind(&self) -> FormatKind {
        FormatKind::Xliff
    }

    fn read(&self, input: &str) -> Result<Document, ParseError> {
        Ok(parse(input)?.doc)
    }

    fn write_custom(
        &self,
        kind: &str,
        raw: &str,
        texts: &[String],
        target_language: Option<&str>,
    ) -> Result<String, String> {
        let Some(text) = texts.first() else {
            return Ok(raw.to_string());
        };
        let toks = markup::xml_tokens(raw)
            .map_err(|e| format!("XLIFF unit no longer parses ({e}); this is a bug"))?;
        match kind {
            KIND_12 => write_target_12(raw, &toks, text, target_language),
            KIND_21 => write_target_21(raw, &toks, text),
            _ => Ok(raw.to_string()),
        }
    }
}

struct XliffDialect;

impl Dialect for XliffDialect {
    fn role(&self, name: &str) -> Role {
        match local(name) {
            "g" | "pc" | "mrk" => Role::Inline,
            "x" | "bx" | "ex" | "sc" | "ec" | "sm" | "em" | "cp" => Role::Inline,
            _ => Role::Atom,
        }
    }

    fn text_attrs(&self, _name: &str) -> &'static [&'static str] {
        &[]
    }

    fn html(&self) -> bool {
        false
    }

    fn decorative(&self, _name: &str) -> bool {
        false
    }
}

/// The name without its namespace prefix.
fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

struct Parsed {
    doc: Document,
    /// Per unit: the token range of its `<target>` content in the input, when there is one.
    targets: Vec<Option<(usize, usize)>>,
    toks: Vec<Tok>,
}

fn parse(input: &str) -> Result<Parsed, ParseError> {
    let toks = markup::xml_tokens(input)?;
    let mut doc = Document::new(FormatKind::Xliff);
    let mut targets = Vec::new();
    let mut cursor = 0usize;
    let root = toks
        .iter()
        .position(|t| matches!(t.kind, TokKind::Start | TokKind::Empty))
        .ok_or_else(|| ParseError::at(input, 0, "no <xliff> element; this is not an XLIFF file"))?;
    let root_tag = &input[toks[root].start..toks[root].end];
    if local(&toks[root].name) != "xliff" {
        return Err(ParseError::at(
            input,
            toks[root].start,
            format!(
                "the root element is <{}>, not <xliff>; pass the right --format",
                toks[root].name
            ),
        ));
    }
    let version = markup::attr(root_tag, "version")
        .map(|a| a.value(root_tag).to_string())
        .unwrap_or_default();
    let v2 = version.starts_with('2');
    let emit_language = |doc: &mut Document, cursor: &mut usize, tok: &Tok, name: &str| {
        let tag = &input[tok.start..tok.end];
        if let Some(a) = markup::attr(tag, name) {
            let code = a.value(tag).to_string();
            if !code.is_empty() && tok.start + a.value_start >= *cursor {
                doc.push_raw(&input[*cursor..tok.start + a.value_start]);
                doc.pieces.push(Piece::Language(code));
                *cursor = tok.start + a.value_end;
            }
        }
    };
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        if !matches!(t.kind, TokKind::Start | TokKind::Empty) {
            i += 1;
            continue;
        }
        let tag = &input[t.start..t.end];
        let attr = |n: &str| markup::attr(tag, n).map(|a| markup::decode_plain(a.value(tag)));
        match local(&t.name) {
            "xliff" if v2 => {
                if doc.meta.language.is_none() {
                    doc.meta.language = attr("srcLang");
                }
                emit_language(&mut doc, &mut cursor, t, "trgLang");
            }
            "file" => {
                if doc.meta.title.is_none() {
                    doc.meta.title = attr("original");
                }
                if !v2 {
                    if doc.meta.language.is_none() {
                        doc.meta.language = attr("source-language");
                    }
                    emit_language(&mut doc, &mut cursor, t, "target-language");
                }
            }
            "trans-unit" if !v2 && t.kind == TokKind::Start => {
                let end = t.pair.unwrap_or(i);
                if attr("translate").as_deref() != Some("no") {
                    let key = attr("resname").or_else(|| attr("id"));
                    let context = attr("id").unwrap_or_default();
                    let children = children_of(&toks, i);
                    let find = |n: &str| {
                        children
                            .iter()
                            .copied()
                            .find(|&c| local(&toks[c].name) == n)
                    };
                    if let Some(src) = find("source") {
                        let after = find("seg-source").unwrap_or(src);
                        let target = find("target");
                        let region_end = match target {
                            Some(tg) => toks[toks[tg].pair.unwrap_or(tg)].end,
                            None => toks[toks[after].pair.unwrap_or(after)].end,
                        };
                        let region_start = leading_space_start(input, &toks, src);
                        let note = children
                            .iter()
                            .find(|&&c| local(&toks[c].name) == "note")
                            .map(|&c| text_content(input, &toks, c));
                        push_unit(
                            input,
                            &toks,
                            &mut doc,
                            &mut cursor,
                            &mut targets,
                            UnitSpec {
                                source: src,
                                target,
                                region: (region_start, region_end),
                                kind: KIND_12,
                                key,
                                context,
                                note,
                            },
                        )?;
                    }
                }
                i = end + 1;
                continue;
            }
            "unit" if v2 && t.kind == TokKind::Start => {
                let end = t.pair.unwrap_or(i);
                if attr("translate").as_deref() != Some("no") {
                    let unit_id = attr("name").or_else(|| attr("id")).unwrap_or_default();
                    let children = children_of(&toks, i);
                    let segments: Vec<usize> = children
                        .iter()
                        .copied()
                        .filter(|&c| local(&toks[c].name) == "segment")
                        .collect();
                    let note = children
                        .iter()
                        .find(|&&c| local(&toks[c].name) == "notes")
                        .map(|&c| text_content(input, &toks, c).trim().to_string());
                    for (n, &seg) in segments.iter().enumerate() {
                        let seg_children = children_of(&toks, seg);
                        let find = |name: &str| {
                            seg_children
                                .iter()
                                .copied()
                                .find(|&c| local(&toks[c].name) == name)
                        };
                        let Some(src) = find("source") else { continue };
                        let seg_tag = &input[toks[seg].start..toks[seg].end];
                        let seg_id =
                            markup::attr(seg_tag, "id").map(|a| a.value(seg_tag).to_string());
                        let key = if segments.len() == 1 {
                            unit_id.clone()
                        } else {
                            format!(
                                "{unit_id}/{}",
                                seg_id.unwrap_or_else(|| (n + 1).to_string())
                            )
                        };
                        push_unit(
                            input,
                            &toks,
                            &mut doc,
                            &mut cursor,
                            &mut targets,
                            UnitSpec {
                                source: src,
                                target: find("target"),
                                region: (toks[seg].start, toks[toks[seg].pair.unwrap_or(seg)].end),
                                kind: KIND_21,
                                key: Some(key.clone()),
                                context: key,
                                note: note.clone().filter(|n| !n.is_empty()),
                            },
                        )?;
                    }
                }
                i = end + 1;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    doc.push_raw(&input[cursor..]);
    Ok(Parsed { doc, targets, toks })
}

struct UnitSpec {
    source: usize,
    target: Option<usize>,
    region: (usize, usize),
    kind: &'static str,
    key: Option<String>,
    context: String,
    note: Option<String>,
}

fn push_unit(
    input: &str,
    toks: &[Tok],
    doc: &mut Document,
    cursor: &mut usize,
    targets: &mut Vec<Option<(usize, usize)>>,
    spec: UnitSpec,
) -> Result<(), ParseError> {
    let src = &toks[spec.source];
    let Some(src_end) = src.pair else {
        return Ok(()); // `<source/>`: nothing to translate
    };
    let (us, ue) = (src.end, toks[src_end].start);
    let b = markup::build_text(input, toks, &XliffDialect, spec.source + 1, src_end, us, ue)?;
    if !b.has_translatable_text() || spec.region.0 < *cursor {
        return Ok(());
    }
    let mut unit = Unit::new(b.text, &input[us..ue], spec.context, Escape::XmlText);
    unit.placeholders = b.placeholders;
    unit.key = spec.key;
    unit.note = spec.note;
    doc.push_raw(&input[*cursor..spec.region.0]);
    let index = doc.units.len();
    doc.units.push(unit);
    doc.pieces.push(Piece::Custom {
        kind: spec.kind.to_string(),
        raw: input[spec.region.0..spec.region.1].to_string(),
        units: vec![index],
    });
    *cursor = spec.region.1;
    targets.push(
        spec.target
            .and_then(|t| toks[t].pair.map(|close| (t + 1, close))),
    );
    Ok(())
}

/// Direct child elements of element `i`.
fn children_of(toks: &[Tok], i: usize) -> Vec<usize> {
    let Some(end) = toks[i].pair else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut k = i + 1;
    while k < end {
        match toks[k].kind {
            TokKind::Start => {
                out.push(k);
                k = toks[k].pair.unwrap_or(k) + 1;
            }
            TokKind::Empty => {
                out.push(k);
                k += 1;
            }
            _ => k += 1,
        }
    }
    out
}

fn text_content(input: &str, toks: &[Tok], i: usize) -> String {
    let Some(end) = toks[i].pair else {
        return String::new();
    };
    toks[i + 1..end]
        .iter()
        .filter(|t| t.kind == TokKind::Text)
        .map(|t| markup::decode_plain(&input[t.start..t.end]))
        .collect()
}

/// Where the whitespace before element `i` starts (its indentation), or the element's start.
fn leading_space_start(input: &str, toks: &[Tok], i: usize) -> usize {
    match i.checked_sub(1).map(|p| &toks[p]) {
        Some(p) if p.kind == TokKind::Text => {
            let s = &input[p.start..p.end];
            let trimmed = s.trim_end();
            p.start + trimmed.len()
        }
        _ => toks[i].start,
    }
}

/// Sets (or adds) attribute `name` of the start tag `tag`.
fn set_attr(tag: &str, name: &str, value: &str) -> String {
    if let Some(a) = markup::attr(tag, name).filter(|a| a.quote.is_some()) {
        return format!("{}{}{}", &tag[..a.value_start], value, &tag[a.value_end..]);
    }
    let cut = if tag.ends_with("/>") {
        tag.len() - 2
    } else {
        tag.len() - 1
    };
    let head = tag[..cut].trim_end();
    format!("{head} {name}=\"{value}\"{}", &tag[cut..])
}

fn top_level(toks: &[Tok], name: &str, from: usize, to: usize) -> Option<usize> {
    let mut k = from;
    while k < to {
        let t = &toks[k];
        if matches!(t.kind, TokKind::Start | TokKind::Empty) && local(&t.name) == name {
            return Some(k);
        }
        k = match (t.kind, t.pair) {
            (TokKind::Start, Some(e)) => e + 1,
            _ => k + 1,
        };
    }
    None
}

fn source_inner<'r>(raw: &'r str, toks: &[Tok], src: usize) -> &'r str {
    match toks[src].pair {
        Some(close) => &raw[toks[src].end..toks[close].start],
        None => "",
    }
}

fn write_target_12(
    raw: &str,
    toks: &[Tok],
    text: &str,
    target_language: Option<&str>,
) -> Result<String, String> {
    let src = top_level(toks, "source", 0, toks.len()).ok_or("XLIFF unit lost its <source>")?;
    if source_inner(raw, toks, src) == text {
        return Ok(raw.to_string());
    }
    let after_src = toks[src].pair.unwrap_or(src) + 1;
    match top_level(toks, "target", after_src, toks.len()) {
        Some(tg) => {
            let t = &toks[tg];
            let tag = &raw[t.start..t.end];
            match t.pair {
                Some(close) => {
                    let had = !raw[t.end..toks[close].start].trim().is_empty();
                    let state = if had {
                        "needs-review-translation"
                    } else {
                        "translated"
                    };
                    Ok(format!(
                        "{}{}{}{}",
                        &raw[..t.start],
                        set_attr(tag, "state", state),
                        text,
                        &raw[toks[close].start..]
                    ))
                }
                None => {
                    let open = set_attr(tag, "state", "translated");
                    let open = format!("{}>", open.trim_end_matches("/>").trim_end());
                    Ok(format!(
                        "{}{open}{text}</target>{}",
                        &raw[..t.start],
                        &raw[t.end..]
                    ))
                }
            }
        }
        None => {
            let after = top_level(toks, "seg-source", after_src, toks.len()).unwrap_or(src);
            let at = toks[toks[after].pair.unwrap_or(after)].end;
            let indent = &raw[..toks[src].start];
            let lang = target_language
                .map(|l| format!(" xml:lang=\"{}\"", markup_escape_attr(l)))
                .unwrap_or_default();
            Ok(format!(
                "{}{indent}<target{lang} state=\"translated\">{text}</target>{}",
                &raw[..at],
                &raw[at..]
            ))
        }
    }
}

fn write_target_21(raw: &str, toks: &[Tok], text: &str) -> Result<String, String> {
    let seg = top_level(toks, "segment", 0, toks.len()).ok_or("XLIFF unit lost its <segment>")?;
    let seg_end = toks[seg].pair.ok_or("XLIFF <segment> is empty")?;
    let src = top_level(toks, "source", seg + 1, seg_end).ok_or("XLIFF unit lost its <source>")?;
    if source_inner(raw, toks, src) == text {
        return Ok(raw.to_string());
    }
    let seg_tag = set_attr(&raw[toks[seg].start..toks[seg].end], "state", "translated");
    let after_src = toks[src].pair.unwrap_or(src) + 1;
    let body = match top_level(toks, "target", after_src, seg_end) {
        Some(tg) => {
            let t = &toks[tg];
            match t.pair {
                Some(close) => format!(
                    "{}{text}{}",
                    &raw[toks[seg].end..t.end],
                    &raw[toks[close].start..]
                ),
                None => {
                    let tag = &raw[t.start..t.end];
                    let open = format!("{}>", tag.trim_end_matches("/>").trim_end());
                    format!(
                        "{}{open}{text}</target>{}",
                        &raw[toks[seg].end..t.start],
                        &raw[t.end..]
                    )
                }
            }
        }
        None => {
            let at = toks[after_src - 1].end;
            let ws_start = leading_space_start(raw, toks, src);
            let indent = &raw[ws_start..toks[src].start];
            format!(
                "{}{indent}<target>{text}</target>{}",
                &raw[toks[seg].end..at],
                &raw[at..]
            )
        }
    };
    Ok(format!("{}{seg_tag}{body}", &raw[..toks[seg].start]))
}

fn markup_escape_attr(s: &str) -> String {
    let mut out = String::new();
    Escape::XmlAttrDouble.apply(s, &mut out);
    out
}

fn escape_text(s: &str) -> String {
    let mut out = String::new();
    Escape::XmlText.apply(s, &mut out);
    out
}

/// The translations a CAT tool wrote into a job, aligned with the units [`Xliff`] reads from it:
/// `None` where a unit has no (or an empty) target. Inline codes of a target become the tokens of the
/// source's placeholders with the same XLIFF `id`; a code the source does not have is dropped with
/// the rest of the text kept, so the usual placeholder check then reports it as missing.
pub fn read_targets(input: &str) -> Result<Vec<Option<String>>, ParseError> {
    let parsed = parse(input)?;
    let toks = &parsed.toks;
    let mut out = Vec::with_capacity(parsed.doc.units.len());
    for (unit, target) in parsed.doc.units.iter().zip(&parsed.targets) {
        let Some((from, to)) = *target else {
            out.push(None);
            continue;
        };
        // (element local name, XLIFF id, kind) -> token id of the source.
        let key_of = |original: &str, kind: TagKind| -> Option<(String, String, TagKind)> {
            let name = original
                .trim_start_matches('<')
                .split(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .next()?;
            let a = markup::attr(original, "id")?;
            Some((local(name).to_string(), a.value(original).to_string(), kind))
        };
        let map: Vec<((String, String, TagKind), u32)> = unit
            .placeholders
            .iter()
            .filter(|p| p.kind != TagKind::Close)
            .filter_map(|p| key_of(&p.original, p.kind).map(|k| (k, p.id)))
            .collect();
        let lookup = |original: &str, kind: TagKind| {
            let k = key_of(original, kind)?;
            map.iter().find(|(m, _)| *m == k).map(|(_, id)| *id)
        };
        let mut text = String::new();
        let mut open: Vec<Option<u32>> = Vec::new();
        let mut k = from;
        while k < to {
            let t = &toks[k];
            let original = &input[t.start..t.end];
            match t.kind {
                TokKind::Text => {
                    let mut b = TextBuilder::new();
                    markup::decode_into(input, t.start, t.end, false, &mut b)?;
                    // Literal token-like text cannot be told apart from a token: leave it out.
                    for span in spans(&b.text) {
                        if let Span::Text(s) = span {
                            text.push_str(s);
                        }
                    }
                }
                TokKind::Start if XliffDialect.role(&t.name) == Role::Inline => {
                    let id = lookup(original, TagKind::Open);
                    if let Some(id) = id {
                        text.push_str(&crate::placeholder::token(id, TagKind::Open));
                    }
                    open.push(id);
                }
                TokKind::End => {
                    if let Some(Some(id)) = open.pop() {
                        text.push_str(&crate::placeholder::token(id, TagKind::Close));
                    }
                }
                TokKind::Start | TokKind::Empty => {
                    if let Some(id) = lookup(original, TagKind::Standalone) {
                        text.push_str(&crate::placeholder::token(id, TagKind::Standalone));
                    }
                    if t.kind == TokKind::Start {
                        k = t.pair.unwrap_or(k);
                    }
                }
                _ => {}
            }
            k += 1;
        }
        out.push(Some(text).filter(|t| !t.trim().is_empty()));
    }
    Ok(out)
}

/// A valid XLIFF id (NMTOKEN) from a unit id, unique among `used`.
fn xliff_id(id: &str, used: &mut std::collections::HashSet<String>) -> String {
    let mut base: String = id
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ':') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if base.is_empty() {
        base = "u".into();
    }
    let mut candidate = base.clone();
    let mut n = 1;
    while !used.insert(candidate.clone()) {
        n += 1;
        candidate = format!("{base}-{n}");
    }
    candidate
}

/// Unit text with its tokens as XLIFF inline codes: 1.2 `<g id="N">`/`<x id="N"/>` with the original
/// markup in `equiv-text`; 2.1 `<pc>`/`<ph/>` pointing at `<originalData>` entries.
fn inline_xliff(unit: &Unit, text: &str, version: XliffVersion) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut open: Vec<u32> = Vec::new();
    for span in spans(text) {
        match span {
            Span::Text(t) => out.push_str(&escape_text(t)),
            Span::Token {
                id,
                kind,
                text: tok,
            } => {
                let Some(p) = unit
                    .placeholders
                    .iter()
                    .find(|p| p.id == id && p.kind == kind)
                else {
                    out.push_str(&escape_text(tok));
                    continue;
                };
                let equiv = markup_escape_attr(&p.original);
                match (version, kind) {
                    (XliffVersion::V12, TagKind::Open) => {
                        open.push(id);
                        out.push_str(&format!("<g id=\"{id}\" equiv-text=\"{equiv}\">"));
                    }
                    (XliffVersion::V12, TagKind::Close) => {
                        open.retain(|&o| o != id);
                        out.push_str("</g>");
                    }
                    (XliffVersion::V12, TagKind::Standalone) => {
                        out.push_str(&format!("<x id=\"{id}\" equiv-text=\"{equiv}\"/>"));
                    }
                    (XliffVersion::V21, TagKind::Open) => {
                        open.push(id);
                        out.push_str(&format!(
                            "<pc id=\"{id}\" dataRefStart=\"d{id}o\" dataRefEnd=\"d{id}c\">"
                        ));
                    }
                    (XliffVersion::V21, TagKind::Close) => {
                        open.retain(|&o| o != id);
                        out.push_str("</pc>");
                    }
                    (XliffVersion::V21, TagKind::Standalone) => {
                        out.push_str(&format!("<ph id=\"{id}\" dataRef=\"d{id}\"/>"));
                    }
                }
            }
        }
    }
    // A target with unbalanced pairs would not be XML: close what is left open.
    for _ in open {
        out.push_str(match version {
            XliffVersion::V12 => "</g>",
            XliffVersion::V21 => "</pc>",
        });
    }
    out
}

/// Makes an XLIFF job of `doc` for a CAT tool: one unit per document unit (`resname`/`name` = the unit
/// id, so a translated job maps back), inline markup as XLIFF inline codes that keep the original
/// markup, and `targets[i]` (when given and not empty) as the translation of unit `i`.
pub fn to_xliff(
    doc: &Document,
    version: XliffVersion,
    src_lang: &str,
    tgt_lang: &str,
    targets: Option<&[String]>,
) -> String {
    let mut used = std::collections::HashSet::new();
    let original = markup_escape_attr(
        doc.meta
            .source_url
            .as_deref()
            .or(doc.meta.title.as_deref())
            .unwrap_or("document"),
    );
    let (src, tgt) = (markup_escape_attr(src_lang), markup_escape_attr(tgt_lang));
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    match version {
        XliffVersion::V12 => out.push_str(&format!(
            "<xliff version=\"1.2\" xmlns=\"urn:oasis:names:tc:xliff:document:1.2\">\n  <file original=\"{original}\" source-language=\"{src}\" target-language=\"{tgt}\" datatype=\"x-oerkit-{}\">\n    <body>\n",
            doc.format.name()
        )),
        XliffVersion::V21 => out.push_str(&format!(
            "<xliff version=\"2.1\" xmlns=\"urn:oasis:names:tc:xliff:document:2.0\" srcLang=\"{src}\" trgLang=\"{tgt}\">\n  <file id=\"f1\" original=\"{original}\">\n"
        )),
    }
    for (i, unit) in doc.units.iter().enumerate() {
        let id = xliff_id(&unit.id, &mut used);
        let name = markup_escape_attr(&unit.id);
        let source = inline_xliff(unit, &unit.text, version);
        let target = targets
            .and_then(|t| t.get(i))
            .filter(|t| !t.trim().is_empty())
            .map(|t| inline_xliff(unit, t, version));
        let note = unit.note.as_deref().map(escape_text);
        match version {
            XliffVersion::V12 => {
                out.push_str(&format!(
                    "      <trans-unit id=\"{id}\" resname=\"{name}\" xml:space=\"preserve\">\n        <source>{source}</source>\n"
                ));
                if let Some(t) = target {
                    out.push_str(&format!(
                        "        <target state=\"translated\">{t}</target>\n"
                    ));
                }
                if let Some(n) = note {
                    out.push_str(&format!("        <note>{n}</note>\n"));
                }
                out.push_str("      </trans-unit>\n");
            }
            XliffVersion::V21 => {
                out.push_str(&format!("    <unit id=\"{id}\" name=\"{name}\">\n"));
                if let Some(n) = note {
                    out.push_str(&format!("      <notes><note>{n}</note></notes>\n"));
                }
                if !unit.placeholders.is_empty() {
                    out.push_str("      <originalData>\n");
                    for p in &unit.placeholders {
                        let data_id = match p.kind {
                            TagKind::Open => format!("d{}o", p.id),
                            TagKind::Close => format!("d{}c", p.id),
                            TagKind::Standalone => format!("d{}", p.id),
                        };
                        out.push_str(&format!(
                            "        <data id=\"{data_id}\">{}</data>\n",
                            escape_text(&p.original)
                        ));
                    }
                    out.push_str("      </originalData>\n");
                }
                let state = if target.is_some() {
                    " state=\"translated\""
                } else {
                    ""
                };
                out.push_str(&format!(
                    "      <segment{state}>\n        <source xml:space=\"preserve\">{source}</source>\n"
                ));
                if let Some(t) = target {
                    out.push_str(&format!(
                        "        <target xml:space=\"preserve\">{t}</target>\n"
                    ));
                }
                out.push_str("      </segment>\n    </unit>\n");
            }
        }
    }
    match version {
        XliffVersion::V12 => out.push_str("    </body>\n  </file>\n</xliff>\n"),
        XliffVersion::V21 => out.push_str("  </file>\n</xliff>\n"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::{write_document, Translations, WriteOptions};
    use std::path::Path;

    /// What OmegaT writes for an HTML file (XLIFF 1.2, one trans-unit without target, one with).
    const OMEGAT_12: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<xliff version="1.2" xmlns="urn:oasis:names:tc:xliff:document:1.2">
  <file original="intro.html" source-language="en" target-language="es" datatype="html">
    <body>
      <trans-unit id="0">
        <source xml:lang="en">Run <g id="1">ls</g> to list &amp; see<x id="2"/>.</source>
      </trans-unit>
      <trans-unit id="1">
        <source xml:lang="en">Hello <bpt id="1">&lt;b&gt;</bpt>world<ept id="1">&lt;/b&gt;</ept></source>
        <target xml:lang="es" state="needs-translation">Hola <bpt id="1">&lt;b&gt;</bpt>mundo<ept id="1">&lt;/b&gt;</ept></target>
        <note>Greeting on the first page</note>
      </trans-unit>
      <trans-unit id="2" translate="no"><source>CONSTANT</source></trans-unit>
      <trans-unit id="3"><source>42</source></trans-unit>
    </body>
  </file>
</xliff>
"#;

    /// What Okapi writes as XLIFF 2.1 (two segments in one unit, one with an empty target).
    const OKAPI_21: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<xliff xmlns="urn:oasis:names:tc:xliff:document:2.0" version="2.1" srcLang="en" trgLang="fr">
 <file id="f1" original="page.html">
  <unit id="tu1">
   <notes><note>Title of the page</note></notes>
   <originalData><data id="d1">&lt;em></data><data id="d2">&lt;/em></data><data id="d3">&lt;br/></data></originalData>
   <segment id="s1" state="initial">
    <source>The <pc id="1" dataRefStart="d1" dataRefEnd="d2">shell</pc> is here.<ph id="3" dataRef="d3"/></source>
   </segment>
   <segment id="s2">
    <source>Second sentence.</source>
    <target></target>
   </segment>
  </unit>
 </file>
</xliff>
"#;

    fn read(input: &str) -> Document {
        let mut doc = Xliff.read(input).unwrap();
        doc.assign_ids();
        doc
    }

    fn write(doc: &Document, texts: Vec<String>, lang: Option<&str>) -> String {
        let opts = WriteOptions {
            target_language: lang.map(str::to_string),
            ..Default::default()
        };
        write_document(
            doc,
            &Translations::from_texts(texts),
            &opts,
            Path::new("j.xlf"),
        )
        .unwrap()
    }

    #[test]
    fn reads_xliff_12_units_codes_and_notes() {
        let doc = read(OMEGAT_12);
        assert_eq!(
            doc.source_texts(),
            vec![
                "Run <g1>ls</g1> to list & see<x2/>.",
                "Hello <x1/>world<x2/>"
            ]
        );
        assert_eq!(doc.units[0].id, "0");
        assert_eq!(doc.units[0].placeholders[0].original, r#"<g id="1">"#);
        assert_eq!(
            doc.units[1].placeholders[0].original,
            r#"<bpt id="1">&lt;b&gt;</bpt>"#
        );
        assert_eq!(
            doc.units[1].note.as_deref(),
            Some("Greeting on the first page")
        );
        assert_eq!(doc.meta.language.as_deref(), Some("en"));
        assert!(doc.pieces.contains(&Piece::Language("es".into())));
        let same = write_document(
            &doc,
            &Translations::identity(&doc),
            &WriteOptions::default(),
            Path::new("j.xlf"),
        )
        .unwrap();
        assert_eq!(same, OMEGAT_12);
    }

    #[test]
    fn writes_xliff_12_targets_with_state() {
        let doc = read(OMEGAT_12);
        let out = write(
            &doc,
            vec![
                "Ejecuta <g1>ls</g1> para listar & ver<x2/>.".into(),
                "Hola <x1/>mundo<x2/>!".into(),
            ],
            Some("es"),
        );
        assert!(out.contains(
            "</source>\n        <target xml:lang=\"es\" state=\"translated\">Ejecuta <g id=\"1\">ls</g> para listar &amp; ver<x id=\"2\"/>.</target>\n      </trans-unit>"
        ), "{out}");
        assert!(out.contains(
            r#"<target xml:lang="es" state="needs-review-translation">Hola <bpt id="1">&lt;b&gt;</bpt>mundo<ept id="1">&lt;/b&gt;</ept>!</target>"#
        ), "{out}");
        let again = read(&out);
        assert_eq!(again.source_texts(), doc.source_texts());
        assert_eq!(
            read_targets(&out).unwrap(),
            vec![
                Some("Ejecuta <g1>ls</g1> para listar & ver<x2/>.".to_string()),
                Some("Hola <x1/>mundo<x2/>!".to_string())
            ]
        );
    }

    #[test]
    fn reads_and_writes_xliff_21_segments() {
        let doc = read(OKAPI_21);
        assert_eq!(
            doc.source_texts(),
            vec!["The <g1>shell</g1> is here.<x2/>", "Second sentence."]
        );
        assert_eq!(doc.units[0].id, "tu1/s1");
        assert_eq!(doc.units[0].note.as_deref(), Some("Title of the page"));
        assert_eq!(doc.meta.language.as_deref(), Some("en"));
        let same = write_document(
            &doc,
            &Translations::identity(&doc),
            &WriteOptions::default(),
            Path::new("j.xlf"),
        )
        .unwrap();
        assert_eq!(same, OKAPI_21);
        let out = write(
            &doc,
            vec![
                "Le <g1>shell</g1> est là.<x2/>".into(),
                "Deuxième phrase.".into(),
            ],
            Some("fr-CA"),
        );
        assert!(out.contains("trgLang=\"fr-CA\""));
        assert!(out.contains(
            "<segment id=\"s1\" state=\"translated\">\n    <source>The <pc id=\"1\" dataRefStart=\"d1\" dataRefEnd=\"d2\">shell</pc> is here.<ph id=\"3\" dataRef=\"d3\"/></source>\n    <target>Le <pc id=\"1\" dataRefStart=\"d1\" dataRefEnd=\"d2\">shell</pc> est là.<ph id=\"3\" dataRef=\"d3\"/></target>\n   </segment>"
        ), "{out}");
        assert!(out.contains("<segment id=\"s2\" state=\"translated\">\n    <source>Second sentence.</source>\n    <target>Deuxième phrase.</target>"), "{out}");
        assert_eq!(
            read_targets(&out).unwrap(),
            vec![
                Some("Le <g1>shell</g1> est là.<x2/>".to_string()),
                Some("Deuxième phrase.".to_string())
            ]
        );
    }

    #[test]
    fn to_xliff_round_trips_units_in_both_versions() {
        let mut source = Document::new(FormatKind::Html);
        let mut b = TextBuilder::new();
        b.text("Use ");
        b.open("<a href=\"x?a=1&amp;b=2\">");
        b.text("the \"shell\" & more");
        b.close("</a>");
        b.standalone("<br>");
        let mut unit = Unit::new(b.text, "raw", "p", Escape::XmlText);
        unit.placeholders = b.placeholders;
        unit.note = Some("a <note>".into());
        source.push_unit(unit);
        source.push_unit(Unit::new("Plain text", "Plain text", "p", Escape::XmlText));
        source.assign_ids();
        for version in [XliffVersion::V12, XliffVersion::V21] {
            let targets = vec![
                "Usa <g1>la \"shell\" y más</g1><x2/>".to_string(),
                String::new(),
            ];
            let job = to_xliff(&source, version, "en", "es", Some(&targets));
            let doc = read(&job);
            assert_eq!(doc.source_texts(), source.source_texts(), "{job}");
            assert_eq!(doc.units[0].id, source.units[0].id);
            assert_eq!(doc.units[0].note.as_deref(), Some("a <note>"));
            let ids: Vec<(u32, TagKind)> = doc.units[0]
                .placeholders
                .iter()
                .map(|p| (p.id, p.kind))
                .collect();
            let want: Vec<(u32, TagKind)> = source.units[0]
                .placeholders
                .iter()
                .map(|p| (p.id, p.kind))
                .collect();
            assert_eq!(ids, want);
            assert_eq!(
                read_targets(&job).unwrap(),
                vec![Some(targets[0].clone()), None],
                "{job}"
            );
            assert!(
                job.contains(match version {
                    XliffVersion::V12 => "equiv-text=\"&lt;a href=&quot;x?a=1&amp;amp;b=2&quot;>\"",
                    XliffVersion::V21 =>
                        "<data id=\"d1o\">&lt;a href=\"x?a=1&amp;amp;b=2\"></data>",
                }),
                "{job}"
            );
        }
    }

    #[test]
    fn malformed_xliff_is_located() {
        let e = Xliff
            .read("<xliff version=\"1.2\">\n<file><body><trans-unit id=\"1\"><source>a</target>")
            .unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = Xliff.read("<notxliff/>").unwrap_err();
        assert!(e.message.contains("not <xliff>"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in proptest::prelude::any::<String>()) {
            if let Ok(doc) = Xliff.read(&s) {
                let out = write_document(&doc, &Translations::identity(&doc), &WriteOptions::default(), Path::new("x")).unwrap();
                proptest::prop_assert_eq!(out, s.clone());
                let _ = read_targets(&s);
            }
        }

        #[test]
        fn never_panics(s in "(<xliff version=\"(1.2|2.1)\">|<(trans-unit|unit|segment|source|target|g|x|pc|ph)( id=\"[a-z0-9]{0,2}\")?/?>|</(trans-unit|unit|segment|source|target|g|pc)>|&[a-z#0-9]{0,4};?|[a-zA-Z <>&]{0,6}){0,24}") {
            if let Ok(doc) = Xliff.read(&s) {
                let _ = read_targets(&s);
                let texts: Vec<String> = doc.units.iter().map(|u| crate::pseudo::pseudo_translate(&u.text)).collect();
                let _ = write_document(&doc, &Translations::from_texts(texts), &WriteOptions::default(), Path::new("x"));
            }
        }
    }
}
