//! OpenStax CNXML modules (namespace `http://cnx.rice.edu/cnxml`) and the shared engine of the
//! markup formats (CNXML, HTML, XLIFF): a token list with byte offsets into the original, and the
//! rule that turns it into pieces and units.
//!
//! Units: every run of text and inline markup between block-level elements (`title`, `para`, `item`,
//! `entry`, `caption`, …) that has letters. Inline elements (`emphasis`, `term`, `link`, `sub`, `sup`,
//! `foreign`, `quote`, `footnote`…) become paired placeholders holding the exact start and end tags;
//! empty ones (`<newline/>`, `<link target-id=…/>`) and inline MathML (`m:math`, whole) and `code`
//! are standalone placeholders. `media/@alt` and `table/@summary` are units of their own. Block-level
//! math has no letters outside placeholders and stays raw. `metadata` is never translated: its `md:`
//! elements fill [`crate::Metadata`], `md:language` (and a root `xml:lang`) become
//! [`Piece::Language`], and the attribution of a translation goes into it as an XML comment.
//!
//! Collection files (`*.collection.xml`, collxml) read with `--format cnxml` too: their `md:title`s
//! outside the metadata are units.

use crate::document::{Document, Piece};
use crate::error::ParseError;
use crate::format::{Format, FormatKind};
use markup::{Dialect, Extractor, Role, Special, TokKind};

pub struct Cnxml;

impl Format for Cnxml {
    fn kind(&self) -> FormatKind {
        FormatKind::Cnxml
    }

    fn read(&self, input: &str) -> Result<Document, ParseError> {
        let toks = markup::xml_tokens(input)?;
        let mut ex = Extractor::new(input, &toks, &CnxmlDialect, FormatKind::Cnxml);
        read_metadata(&mut ex);
        ex.run()
    }

    fn attribution(&self, notice: &str) -> Option<String> {
        Some(format!("<!-- {} -->\n", markup::comment_safe(notice)))
    }
}

struct CnxmlDialect;

impl Dialect for CnxmlDialect {
    fn role(&self, name: &str) -> Role {
        match name {
            "metadata" => Role::Skip,
            "m:math" | "math" | "code" | "m:semantics" => Role::Atom,
            "emphasis" | "term" | "link" | "sub" | "sup" | "foreign" | "quote" | "cite"
            | "cite-title" | "span" | "footnote" | "newline" | "space" | "var" => Role::Inline,
            _ => Role::Block,
        }
    }

    fn text_attrs(&self, name: &str) -> &'static [&'static str] {
        match name {
            "media" | "image" => &["alt"],
            "table" => &["summary"],
            _ => &[],
        }
    }

    fn html(&self) -> bool {
        false
    }

    fn decorative(&self, name: &str) -> bool {
        matches!(name, "newline" | "space")
    }
}

/// Fills `doc.meta` from the `md:` elements and marks the language and attribution places.
fn read_metadata(ex: &mut Extractor<'_, CnxmlDialect>) {
    let toks = ex.toks;
    let input = ex.input;
    let mut persons: Vec<(String, String)> = Vec::new(); // (userid, full name)
    let mut author_ids: Vec<String> = Vec::new();
    let mut root_seen = false;
    let mut attribution_at: Option<usize> = None;
    let mut in_metadata = 0usize;
    let mut first_title: Option<String> = None;
    for (i, t) in toks.iter().enumerate() {
        match t.kind {
            TokKind::Start | TokKind::Empty => {
                let tag = &input[t.start..t.end];
                if !root_seen {
                    root_seen = true;
                    if let Some(a) = markup::attr(tag, "xml:lang") {
                        let code = a.value(tag).to_string();
                        if !code.is_empty() {
                            ex.doc.meta.language.get_or_insert(code.clone());
                            ex.specials.push(Special {
                                at: t.start + a.value_start,
                                end: t.start + a.value_end,
                                piece: Piece::Language(code),
                            });
                        }
                    }
                    if t.kind == TokKind::Start {
                        attribution_at = Some(t.end);
                    }
                }
                let local = t.name.as_str();
                if local == "metadata" && t.kind == TokKind::Start {
                    in_metadata += 1;
                    if let Some(end) = t.pair {
                        attribution_at = Some(toks[end].start);
                    }
                }
                match local {
                    "md:title" if in_metadata > 0 && ex.doc.meta.title.is_none() => {
                        ex.doc.meta.title = Some(ex.text_content(i));
                    }
                    "title" if first_title.is_none() => first_title = Some(ex.text_content(i)),
                    "md:language" => {
                        let code = ex.text_content(i);
                        let code_trim = code.trim().to_string();
                        if !code_trim.is_empty() {
                            ex.doc.meta.language = Some(code_trim.clone());
                            if let (Some(end), Some(next)) = (t.pair, toks.get(i + 1)) {
                                if next.kind == TokKind::Text && next.end == toks[end].start {
                                    let raw = &input[next.start..next.end];
                                    let lead = raw.len() - raw.trim_start().len();
                                    ex.specials.push(Special {
                                        at: next.start + lead,
                                        end: next.start + lead + raw.trim().len(),
                                        piece: Piece::Language(code_trim),
                                    });
                                }
                            }
                        }
                    }
                    "md:license" => {
                        let url = markup::attr(tag, "url").map(|a| a.value(tag).to_string());
                        let license = url
                            .filter(|u| !u.is_empty())
                            .unwrap_or_else(|| ex.text_content(i).trim().to_string());
                        if !license.is_empty() {
                            ex.doc.meta.license = Some(license);
                        }
                    }
                    "md:uuid" => {
                        let uuid = ex.text_content(i).trim().to_string();
                        if !uuid.is_empty() {
                            ex.doc.meta.source_url =
                                Some(format!("https://cnx.org/contents/{uuid}"));
                        }
                    }
                    "md:content-id" if ex.doc.meta.source_url.is_none() => {
                        let id = ex.text_content(i).trim().to_string();
                        if !id.is_empty() {
                            ex.doc.meta.source_url = Some(format!("https://cnx.org/content/{id}"));
                        }
                    }
                    "md:person" | "md:organization" => {
                        let id = markup::attr(tag, "userid")
                            .map(|a| a.value(tag).to_string())
                            .unwrap_or_default();
                        let name = child_text(ex, i, "md:fullname");
                        if let Some(name) = name {
                            persons.push((id, name));
                        }
                    }
                    "md:role" => {
                        let kind = markup::attr(tag, "type").map(|a| a.value(tag).to_string());
                        if kind.as_deref() == Some("author") {
                            author_ids
                                .extend(ex.text_content(i).split_whitespace().map(str::to_string));
                        }
                    }
                    _ => {}
                }
            }
            TokKind::End if t.name == "metadata" => in_metadata = in_metadata.saturating_sub(1),
            _ => {}
        }
    }
    let authors: Vec<String> = if author_ids.is_empty() {
        persons.into_iter().map(|(_, n)| n).collect()
    } else {
        author_ids
            .iter()
            .filter_map(|id| {
                persons
                    .iter()
                    .find(|(p, _)| p == id)
                    .map(|(_, n)| n.clone())
            })
            .collect()
    };
    ex.doc.meta.authors = authors;
    if ex.doc.meta.title.is_none() {
        ex.doc.meta.title = first_title.map(|t| t.trim().to_string());
    }
    if let Some(at) = attribution_at {
        ex.specials.push(Special {
            at,
            end: at,
            piece: Piece::Attribution,
        });
    }
}

/// The text of the first `name` element inside element `i`.
fn child_text(ex: &Extractor<'_, CnxmlDialect>, i: usize, name: &str) -> Option<String> {
    let end = ex.toks[i].pair?;
    (i + 1..end)
        .find(|&k| ex.toks[k].kind == TokKind::Start && ex.toks[k].name == name)
        .map(|k| ex.text_content(k).trim().to_string())
}

/// The shared engine of the markup formats.
pub(crate) mod markup {
    use crate::document::{Document, Piece, Unit};
    use crate::error::ParseError;
    use crate::format::FormatKind;
    use crate::placeholder::{contains_token, spans, Escape, Span, TextBuilder};

    /// Nesting beyond this depth is kept raw rather than recursed into (no stack overflow on
    /// pathological input).
    const MAX_DEPTH: usize = 200;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum TokKind {
        Start,
        End,
        Empty,
        Text,
        CData,
        Comment,
        /// Declarations, processing instructions, doctype.
        Other,
    }

    /// One token of the input: `input[start..end]`, contiguous with its neighbours.
    #[derive(Debug, Clone)]
    pub struct Tok {
        pub kind: TokKind,
        pub start: usize,
        pub end: usize,
        /// Element name (qualified as written; lower-cased for HTML).
        pub name: String,
        /// For a start tag: its end tag; for an end tag: its start tag.
        pub pair: Option<usize>,
    }

    /// How an element takes part in units.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Role {
        /// Its text runs are units of their own.
        Block,
        /// Inside a run: a paired placeholder (empty: standalone).
        Inline,
        /// Inside a run: one standalone placeholder holding the whole element.
        Atom,
        /// Never translated: raw with everything inside.
        Skip,
    }

    pub trait Dialect {
        fn role(&self, name: &str) -> Role;
        /// Attributes of `name` whose values are translatable text.
        fn text_attrs(&self, name: &str) -> &'static [&'static str];
        /// HTML rules: lenient entities (unknown named ones are placeholders, a bare `&` is text).
        fn html(&self) -> bool;
        /// Whether an empty inline element with translatable attribute text ends the run it is in
        /// (so that its attribute can be a unit); otherwise the attribute stays in the placeholder.
        fn splits_runs(&self, name: &str) -> bool {
            let _ = name;
            true
        }
        /// Whether an empty element or atom carries no meaning for the sentence around it (icons,
        /// line breaks), so that at the edge of a run it is left out of the unit.
        fn decorative(&self, name: &str) -> bool;
    }

    /// A piece placed inside raw bytes: `input[at..end]` is replaced by it (`at == end`: inserted).
    #[derive(Debug, Clone)]
    pub struct Special {
        pub at: usize,
        pub end: usize,
        pub piece: Piece,
    }

    /// Tokenizes well-formed XML with quick-xml, keeping byte offsets. Errors carry line:column.
    pub fn xml_tokens(input: &str) -> Result<Vec<Tok>, ParseError> {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_str(input);
        {
            let cfg = reader.config_mut();
            cfg.trim_text(false);
            cfg.check_end_names = true;
            cfg.check_comments = true;
            cfg.expand_empty_elements = false;
            cfg.allow_unmatched_ends = false;
        }
        let mut toks: Vec<Tok> = Vec::new();
        let mut stack: Vec<usize> = Vec::new();
        loop {
            let start = reader.buffer_position() as usize;
            let event = match reader.read_event() {
                Ok(e) => e,
                Err(e) => {
                    let at = (reader.error_position() as usize).max(start);
                    return Err(ParseError::at(
                        input,
                        at,
                        format!("{e}; fix the markup there"),
                    ));
                }
            };
            let end = reader.buffer_position() as usize;
            let (kind, name) = match &event {
                Event::Start(e) | Event::Empty(e) => {
                    for a in e.attributes() {
                        if let Err(err) = a {
                            return Err(ParseError::at(
                                input,
                                start,
                                format!("bad attribute: {err}; quote every attribute value"),
                            ));
                        }
                    }
                    let kind = if matches!(event, Event::Start(_)) {
                        TokKind::Start
                    } else {
                        TokKind::Empty
                    };
                    (
                        kind,
                        String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                    )
                }
                Event::End(e) => (
                    TokKind::End,
                    String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                ),
                Event::Text(_) => (TokKind::Text, String::new()),
                Event::CData(_) => (TokKind::CData, String::new()),
                Event::Comment(_) => (TokKind::Comment, String::new()),
                Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {
                    (TokKind::Other, String::new())
                }
                Event::Eof => break,
            };
            if end <= start || end > input.len() {
                return Err(ParseError::at(input, start, "unreadable markup here"));
            }
            match kind {
                TokKind::Text => check_entities(input, start, end, false)?,
                TokKind::Start | TokKind::Empty => check_attr_entities(input, start, end)?,
                _ => {}
            }
            let index = toks.len();
            let mut pair = None;
            match kind {
                TokKind::Start => stack.push(index),
                TokKind::End => match stack.pop() {
                    Some(open) => {
                        pair = Some(open);
                        toks[open].pair = Some(index);
                    }
                    None => {
                        return Err(ParseError::at(
                            input,
                            start,
                            format!("</{name}> closes nothing; remove it"),
                        ))
                    }
                },
                _ => {}
            }
            toks.push(Tok {
                kind,
                start,
                end,
                name,
                pair,
            });
        }
        if let Some(&open) = stack.last() {
            let t = &toks[open];
            return Err(ParseError::at(
                input,
                t.start,
                format!(
                    "<{}> is never closed; add </{}> where it ends",
                    t.name, t.name
                ),
            ));
        }
        Ok(toks)
    }

    fn check_attr_entities(input: &str, start: usize, end: usize) -> Result<(), ParseError> {
        let tag = &input[start..end];
        for a in attrs(tag) {
            if a.value_end > a.value_start {
                check_entities(input, start + a.value_start, start + a.value_end, false)?;
            }
        }
        Ok(())
    }

    fn check_entities(input: &str, start: usize, end: usize, html: bool) -> Result<(), ParseError> {
        if html {
            return Ok(());
        }
        let text = &input[start..end];
        let mut from = 0;
        while let Some(rel) = text[from..].find('&') {
            let amp = from + rel;
            match parse_entity(&text[amp..]) {
                Some((len, Some(_))) => from = amp + len,
                _ => {
                    return Err(ParseError::at(
                        input,
                        start + amp,
                        "unknown or malformed entity (XML knows &amp; &lt; &gt; &quot; &apos; and &#N;); write & as &amp;",
                    ))
                }
            }
        }
        Ok(())
    }

    /// Parses an entity at the start of `s` (which begins with `&`): its length and its character
    /// (`None` for a well-formed named entity XML does not define, e.g. HTML's `&nbsp;`).
    pub fn parse_entity(s: &str) -> Option<(usize, Option<char>)> {
        let semi = s.as_bytes().iter().take(40).position(|&b| b == b';')?;
        let name = &s[1..semi];
        let len = semi + 1;
        if let Some(num) = name.strip_prefix('#') {
            let code = if let Some(hex) = num.strip_prefix(['x', 'X']) {
                u32::from_str_radix(hex, 16).ok()?
            } else {
                if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                num.parse().ok()?
            };
            let c = char::from_u32(code).filter(|&c| c != '\0')?;
            return Some((len, Some(c)));
        }
        let c = match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let ok = !name.is_empty()
                    && name.as_bytes()[0].is_ascii_alphabetic()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric());
                return ok.then_some((len, None));
            }
        };
        Some((len, Some(c)))
    }

    /// Decodes `input[start..end]` into the builder: entities decoded (HTML: unknown named ones kept
    /// as standalone placeholders), literal placeholder-like text protected with its escaped form.
    pub fn decode_into(
        input: &str,
        start: usize,
        end: usize,
        html: bool,
        b: &mut TextBuilder,
    ) -> Result<(), ParseError> {
        let text = &input[start..end];
        let mut plain = String::new();
        let mut from = 0;
        while let Some(rel) = text[from..].find('&') {
            let amp = from + rel;
            plain.push_str(&text[from..amp]);
            match parse_entity(&text[amp..]) {
                Some((len, Some(c))) => {
                    plain.push(c);
                    from = amp + len;
                }
                Some((len, None)) if html => {
                    flush(&mut plain, b);
                    b.standalone(&text[amp..amp + len]);
                    from = amp + len;
                }
                _ if html => {
                    plain.push('&');
                    from = amp + 1;
                }
                _ => {
                    return Err(ParseError::at(
                        input,
                        start + amp,
                        "unknown or malformed entity; write & as &amp;",
                    ))
                }
            }
        }
        plain.push_str(&text[from..]);
        flush(&mut plain, b);
        Ok(())
    }

    fn flush(plain: &mut String, b: &mut TextBuilder) {
        if plain.is_empty() {
            return;
        }
        if plain.contains('<') && contains_token(plain) {
            for span in spans(plain) {
                match span {
                    Span::Text(t) => b.text(t),
                    Span::Token { text, .. } => {
                        let mut escaped = String::new();
                        Escape::XmlText.apply(text, &mut escaped);
                        b.standalone(&escaped);
                    }
                }
            }
        } else {
            b.text(plain);
        }
        plain.clear();
    }

    /// The decoded text of `input[start..end]` (entities decoded, unknown ones kept as written).
    pub fn decode_plain(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut from = 0;
        while let Some(rel) = text[from..].find('&') {
            let amp = from + rel;
            out.push_str(&text[from..amp]);
            match parse_entity(&text[amp..]) {
                Some((len, Some(c))) => {
                    out.push(c);
                    from = amp + len;
                }
                _ => {
                    out.push('&');
                    from = amp + 1;
                }
            }
        }
        out.push_str(&text[from..]);
        out
    }

    /// An attribute inside a tag: byte offsets relative to the tag.
    #[derive(Debug, Clone)]
    pub struct Attr {
        pub name_start: usize,
        pub name_end: usize,
        pub value_start: usize,
        pub value_end: usize,
        /// `b'"'`, `b'\''`, or `None` for an unquoted (or missing) value.
        pub quote: Option<u8>,
    }

    impl Attr {
        pub fn name<'t>(&self, tag: &'t str) -> &'t str {
            &tag[self.name_start..self.name_end]
        }
        pub fn value<'t>(&self, tag: &'t str) -> &'t str {
            &tag[self.value_start..self.value_end]
        }
    }

    /// The attributes of a start tag (`<name a="1" b='2' c=3 d>`), leniently (HTML-safe).
    pub fn attrs(tag: &str) -> Vec<Attr> {
        let b = tag.as_bytes();
        let mut out = Vec::new();
        let mut i = 1;
        while i < b.len() && !is_space(b[i]) && b[i] != b'>' && b[i] != b'/' {
            i += 1;
        }
        loop {
            while i < b.len() && (is_space(b[i]) || b[i] == b'/') {
                i += 1;
            }
            if i >= b.len() || b[i] == b'>' {
                break;
            }
            let name_start = i;
            while i < b.len() && !is_space(b[i]) && b[i] != b'=' && b[i] != b'>' && b[i] != b'/' {
                i += 1;
            }
            let name_end = i;
            if name_end == name_start {
                i += 1;
                continue;
            }
            let mut j = i;
            while j < b.len() && is_space(b[j]) {
                j += 1;
            }
            if j < b.len() && b[j] == b'=' {
                j += 1;
                while j < b.len() && is_space(b[j]) {
                    j += 1;
                }
                if j < b.len() && (b[j] == b'"' || b[j] == b'\'') {
                    let q = b[j];
                    let vs = j + 1;
                    let ve = b[vs..]
                        .iter()
                        .position(|&c| c == q)
                        .map_or(b.len(), |p| vs + p);
                    out.push(Attr {
                        name_start,
                        name_end,
                        value_start: vs,
                        value_end: ve,
                        quote: Some(q),
                    });
                    i = (ve + 1).min(b.len());
                } else {
                    let vs = j;
                    while j < b.len() && !is_space(b[j]) && b[j] != b'>' {
                        j += 1;
                    }
                    out.push(Attr {
                        name_start,
                        name_end,
                        value_start: vs,
                        value_end: j,
                        quote: None,
                    });
                    i = j;
                }
            } else {
                out.push(Attr {
                    name_start,
                    name_end,
                    value_start: name_end,
                    value_end: name_end,
                    quote: None,
                });
            }
        }
        out
    }

    fn is_space(c: u8) -> bool {
        matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
    }

    /// The attribute `name` of a tag (ASCII case-insensitive).
    pub fn attr(tag: &str, name: &str) -> Option<Attr> {
        attrs(tag)
            .into_iter()
            .find(|a| a.name(tag).eq_ignore_ascii_case(name))
    }

    /// Makes text safe inside `<!-- … -->`.
    pub fn comment_safe(s: &str) -> String {
        let mut out = s.replace("--", "- -");
        if out.ends_with('-') {
            out.push(' ');
        }
        out
    }

    struct Frame {
        id: Option<String>,
        units: usize,
    }

    /// Turns tokens into a document: see the module docs of `cnxml` for the rule.
    pub struct Extractor<'a, D: Dialect> {
        pub input: &'a str,
        pub toks: &'a [Tok],
        pub dialect: &'a D,
        pub doc: Document,
        /// Language and attribution places, found by the format before [`Extractor::run`].
        pub specials: Vec<Special>,
        cursor: usize,
        next_special: usize,
        path: Vec<String>,
        frames: Vec<Frame>,
    }

    impl<'a, D: Dialect> Extractor<'a, D> {
        pub fn new(input: &'a str, toks: &'a [Tok], dialect: &'a D, format: FormatKind) -> Self {
            Extractor {
                input,
                toks,
                dialect,
                doc: Document::new(format),
                specials: Vec::new(),
                cursor: 0,
                next_special: 0,
                path: Vec::new(),
                frames: vec![Frame { id: None, units: 0 }],
            }
        }

        /// The decoded text inside element `i` (tags dropped).
        pub fn text_content(&self, i: usize) -> String {
            let Some(end) = self.toks[i].pair else {
                return String::new();
            };
            let mut out = String::new();
            for t in &self.toks[i + 1..end] {
                match t.kind {
                    TokKind::Text => out.push_str(&decode_plain(&self.input[t.start..t.end])),
                    TokKind::CData => {
                        let s = &self.input[t.start..t.end];
                        out.push_str(
                            s.strip_prefix("<![CDATA[")
                                .and_then(|s| s.strip_suffix("]]>"))
                                .unwrap_or(s),
                        )
                    }
                    _ => {}
                }
            }
            out
        }

        /// Extracts every unit and returns the document.
        pub fn run(mut self) -> Result<Document, ParseError> {
            self.specials.sort_by_key(|s| (s.at, s.end));
            self.process(0, self.toks.len(), 0)?;
            self.raw_to(self.input.len());
            Ok(self.doc)
        }

        fn role(&self, i: usize) -> Role {
            self.dialect.role(&self.toks[i].name)
        }

        /// Emits the raw bytes from the cursor to `pos`, with the special pieces inside them.
        fn raw_to(&mut self, pos: usize) {
            while let Some(sp) = self.specials.get(self.next_special) {
                if sp.at < self.cursor {
                    self.next_special += 1;
                    continue;
                }
                if sp.at > pos || sp.end > pos {
                    break;
                }
                let (at, end, piece) = (sp.at, sp.end, sp.piece.clone());
                self.doc.push_raw(&self.input[self.cursor..at]);
                self.doc.pieces.push(piece);
                self.cursor = end;
                self.next_special += 1;
            }
            if pos > self.cursor {
                self.doc.push_raw(&self.input[self.cursor..pos]);
                self.cursor = pos;
            }
        }

        /// Whether an empty element or start tag carries translatable attribute text.
        fn has_text_attr(&self, i: usize) -> bool {
            let t = &self.toks[i];
            let names = self.dialect.text_attrs(&t.name);
            if names.is_empty() {
                return false;
            }
            let tag = &self.input[t.start..t.end];
            attrs(tag).iter().any(|a| {
                a.quote.is_some()
                    && names.iter().any(|n| a.name(tag).eq_ignore_ascii_case(n))
                    && a.value(tag).chars().any(char::is_alphabetic)
            })
        }

        fn splits_run(&self, i: usize) -> bool {
            self.dialect.splits_runs(&self.toks[i].name) && self.has_text_attr(i)
        }

        /// If token `i` can be part of a text run, the index just after the item it starts.
        fn inline_item_end(&self, i: usize) -> Option<usize> {
            let t = &self.toks[i];
            match t.kind {
                TokKind::Text | TokKind::CData | TokKind::Comment => Some(i + 1),
                TokKind::Empty => match self.role(i) {
                    Role::Inline | Role::Atom if !self.splits_run(i) => Some(i + 1),
                    _ => None,
                },
                TokKind::Start => {
                    let end = t.pair?;
                    match self.role(i) {
                        Role::Atom => Some(end + 1),
                        Role::Inline => {
                            let mut k = i + 1;
                            while k < end {
                                let u = &self.toks[k];
                                match u.kind {
                                    TokKind::Start => match self.role(k) {
                                        Role::Atom => k = u.pair? + 1,
                                        Role::Inline => {
                                            u.pair?;
                                            k += 1;
                                        }
                                        _ => return None,
                                    },
                                    TokKind::Empty => match self.role(k) {
                                        Role::Inline | Role::Atom if !self.splits_run(k) => k += 1,
                                        _ => return None,
                                    },
                                    TokKind::End => {
                                        u.pair?;
                                        k += 1;
                                    }
                                    TokKind::Other => return None,
                                    _ => k += 1,
                                }
                            }
                            Some(end + 1)
                        }
                        _ => None,
                    }
                }
                TokKind::End | TokKind::Other => None,
            }
        }

        fn process(&mut self, from: usize, to: usize, depth: usize) -> Result<(), ParseError> {
            let mut i = from;
            while i < to {
                if let Some(mut j) = self.inline_item_end(i) {
                    while j < to {
                        match self.inline_item_end(j) {
                            Some(n) => j = n,
                            None => break,
                        }
                    }
                    self.emit_run(i, j.min(to))?;
                    i = j;
                    continue;
                }
                let t = &self.toks[i];
                match (t.kind, t.pair) {
                    (TokKind::Start, Some(end)) if end < to => {
                        if self.role(i) != Role::Skip {
                            self.emit_tag_attrs(i)?;
                            if depth < MAX_DEPTH {
                                let tag = &self.input[t.start..t.end];
                                let id = attr(tag, "id")
                                    .map(|a| a.value(tag).to_string())
                                    .filter(|v| !v.is_empty());
                                self.path.push(t.name.clone());
                                self.frames.push(Frame { id, units: 0 });
                                self.process(i + 1, end, depth + 1)?;
                                self.frames.pop();
                                self.path.pop();
                            }
                        }
                        i = end + 1;
                    }
                    (TokKind::Start | TokKind::Empty, _) => {
                        self.emit_tag_attrs(i)?;
                        i += 1;
                    }
                    _ => i += 1,
                }
            }
            Ok(())
        }

        fn context(&self, last: Option<&str>) -> String {
            let n = self.path.len();
            let mut parts: Vec<&str> = self.path[n.saturating_sub(4)..]
                .iter()
                .map(String::as_str)
                .collect();
            if let Some(l) = last {
                parts.push(l);
            }
            parts.join("/")
        }

        /// Whether the run item `toks[s..e]` has nothing a translator needs: whitespace, comments,
        /// decorative elements, inline elements with nothing but those inside.
        fn is_blank(&self, s: usize, e: usize) -> bool {
            let mut k = s;
            while k < e {
                let t = &self.toks[k];
                match t.kind {
                    TokKind::Comment | TokKind::End => {}
                    TokKind::Text => {
                        if !self.input[t.start..t.end].trim().is_empty() {
                            return false;
                        }
                    }
                    TokKind::Empty if self.dialect.decorative(&t.name) => {}
                    TokKind::Start => match (self.role(k), t.pair) {
                        (Role::Inline, _) => {}
                        (_, Some(end)) if self.dialect.decorative(&t.name) => k = end,
                        _ => return false,
                    },
                    _ => return false,
                }
                k += 1;
            }
            true
        }

        /// The start of the run item that ends at token `last` (inclusive).
        fn item_start(&self, last: usize) -> usize {
            let t = &self.toks[last];
            match (t.kind, t.pair) {
                (TokKind::End, Some(open)) => open,
                _ => last,
            }
        }

        /// Makes a unit of the run `toks[a..b]` when it has letters (else it stays raw).
        fn emit_run(&mut self, a: usize, b: usize) -> Result<(), ParseError> {
            let (mut fa, mut lb) = (a, b);
            loop {
                while fa < lb {
                    let end = self.inline_item_end(fa).unwrap_or(fa + 1).min(lb);
                    if !self.is_blank(fa, end) {
                        break;
                    }
                    fa = end;
                }
                while lb > fa {
                    let start = self.item_start(lb - 1).max(fa);
                    if !self.is_blank(start, lb) {
                        break;
                    }
                    lb = start;
                }
                if fa >= lb {
                    return Ok(());
                }
                // A run that is one inline element from end to end: its tags stay raw, the inside
                // is the unit (`<p><em>all</em></p>` translates "all", not "<g1>all</g1>").
                let t = &self.toks[fa];
                if t.kind == TokKind::Start
                    && t.pair == Some(lb - 1)
                    && self.role(fa) == Role::Inline
                {
                    fa += 1;
                    lb -= 1;
                    continue;
                }
                break;
            }
            let first = &self.toks[fa];
            let last = &self.toks[lb - 1];
            let mut us = first.start;
            if first.kind == TokKind::Text {
                let s = &self.input[first.start..first.end];
                us += s.len() - s.trim_start().len();
            }
            let mut ue = last.end;
            if last.kind == TokKind::Text {
                let s = &self.input[last.start..last.end];
                ue -= s.len() - s.trim_end().len();
            }
            let b = build_text(self.input, self.toks, self.dialect, fa, lb, us, ue)?;
            if !b.has_translatable_text() {
                return Ok(());
            }
            self.raw_to(us);
            let context = self.context(None);
            let frame = self
                .frames
                .last_mut()
                .expect("the root frame is never popped");
            frame.units += 1;
            let key = frame.id.as_ref().map(|id| {
                if frame.units == 1 {
                    id.clone()
                } else {
                    format!("{id}.{}", frame.units)
                }
            });
            let mut unit = Unit::new(b.text, &self.input[us..ue], context, Escape::XmlText);
            unit.placeholders = b.placeholders;
            unit.key = key;
            self.doc.push_unit(unit);
            self.cursor = ue;
            Ok(())
        }

        /// Makes units of the translatable attributes of a tag that is not inside a run.
        fn emit_tag_attrs(&mut self, i: usize) -> Result<(), ParseError> {
            if !self.has_text_attr(i) {
                return Ok(());
            }
            let t = &self.toks[i];
            let tag = &self.input[t.start..t.end];
            let names = self.dialect.text_attrs(&t.name);
            let own_id = attr(tag, "id")
                .map(|a| a.value(tag).to_string())
                .filter(|v| !v.is_empty());
            for a in attrs(tag) {
                let Some(q) = a.quote else { continue };
                let name = a.name(tag);
                if !names.iter().any(|n| name.eq_ignore_ascii_case(n)) {
                    continue;
                }
                let (vs, ve) = (t.start + a.value_start, t.start + a.value_end);
                let mut b = TextBuilder::new();
                decode_into(self.input, vs, ve, self.dialect.html(), &mut b)?;
                if !b.has_translatable_text() || vs < self.cursor {
                    continue;
                }
                self.raw_to(vs);
                let escape = if q == b'"' {
                    Escape::XmlAttrDouble
                } else {
                    Escape::XmlAttrSingle
                };
                let lower = name.to_ascii_lowercase();
                let context = self.context(Some(&format!("{}@{lower}", t.name)));
                let mut unit = Unit::new(b.text, &self.input[vs..ve], context, escape);
                unit.placeholders = b.placeholders;
                unit.key = own_id.as_ref().map(|id| format!("{id}@{lower}"));
                self.doc.push_unit(unit);
                self.cursor = ve;
            }
            Ok(())
        }
    }

    /// Builds unit text from the tokens `toks[a..b]`, clipped to the bytes `us..ue`.
    pub fn build_text<D: Dialect>(
        input: &str,
        toks: &[Tok],
        dialect: &D,
        a: usize,
        b: usize,
        us: usize,
        ue: usize,
    ) -> Result<TextBuilder, ParseError> {
        let mut tb = TextBuilder::new();
        let mut k = a;
        while k < b {
            let t = &toks[k];
            match t.kind {
                TokKind::Text => {
                    let (s, e) = (t.start.max(us), t.end.min(ue));
                    if s < e {
                        decode_into(input, s, e, dialect.html(), &mut tb)?;
                    }
                    k += 1;
                }
                TokKind::Start => match (dialect.role(&t.name), t.pair) {
                    (Role::Inline, Some(_)) => {
                        tb.open(&input[t.start..t.end]);
                        k += 1;
                    }
                    (_, Some(end)) if end < b => {
                        tb.standalone(&input[t.start..toks[end].end]);
                        k = end + 1;
                    }
                    _ => {
                        tb.standalone(&input[t.start..t.end]);
                        k += 1;
                    }
                },
                TokKind::End => {
                    if t.pair.is_some() {
                        tb.close(&input[t.start..t.end]);
                    } else {
                        tb.standalone(&input[t.start..t.end]);
                    }
                    k += 1;
                }
                _ => {
                    tb.standalone(&input[t.start..t.end]);
                    k += 1;
                }
            }
        }
        Ok(tb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placeholder::{Escape, TagKind};
    use crate::write::{write_document, Translations, WriteOptions};
    use std::path::Path;

    const SAMPLE: &str = r#"<document xmlns="http://cnx.rice.edu/cnxml" xmlns:m="http://www.w3.org/1998/Math/MathML">
  <title>Data &amp; Sampling</title>
  <metadata xmlns:md="http://cnx.rice.edu/mdml">
  <md:content-id>m1</md:content-id>
  <md:title>Data &amp; Sampling</md:title>
  <md:language>en</md:language>
  <md:license url="http://creativecommons.org/licenses/by/4.0/">CC BY</md:license>
  <md:uuid>098e1a26</md:uuid>
  <md:actors><md:person userid="ann"><md:fullname>Ann Author</md:fullname></md:person>
  <md:person userid="bob"><md:fullname>Bob Maintainer</md:fullname></md:person></md:actors>
  <md:roles><md:role type="author">ann</md:role><md:role type="maintainer">bob</md:role></md:roles>
</metadata>
<content>
<para id="p1">Letters like <m:math><m:mi>x</m:mi></m:math> are <emphasis effect="bold">data</emphasis> values &lt; 5.<newline/>Next.</para>
<list id="l1"><item>Qualitative</item>
<item>   </item></list>
<figure id="f1"><media id="m1" alt="A pie chart"><image src="a.png"/></media><caption>Pie &#8220;chart&#8221;</caption></figure>
<para id="p2"><term>Whole</term></para>
<equation id="e1"><m:math><m:mi>y</m:mi></m:math></equation>
</content>
</document>"#;

    fn read(input: &str) -> Document {
        let mut doc = Cnxml.read(input).unwrap();
        doc.assign_ids();
        doc
    }

    #[test]
    fn units_placeholders_and_metadata() {
        let doc = read(SAMPLE);
        assert_eq!(
            doc.source_texts(),
            vec![
                "Data & Sampling",
                "Letters like <x1/> are <g2>data</g2> values < 5.<x3/>Next.",
                "Qualitative",
                "A pie chart",
                "Pie “chart”",
                "Whole",
            ]
        );
        let p = &doc.units[1];
        assert_eq!(
            p.placeholders[0].original,
            "<m:math><m:mi>x</m:mi></m:math>"
        );
        assert_eq!(p.placeholders[1].original, r#"<emphasis effect="bold">"#);
        assert_eq!(p.placeholders[2].kind, TagKind::Close);
        assert_eq!(p.id, "p1");
        assert_eq!(doc.units[3].escape, Escape::XmlAttrDouble);
        assert_eq!(doc.units[3].id, "m1@alt");
        assert_eq!(doc.meta.title.as_deref(), Some("Data & Sampling"));
        assert_eq!(doc.meta.language.as_deref(), Some("en"));
        assert_eq!(
            doc.meta.license.as_deref(),
            Some("http://creativecommons.org/licenses/by/4.0/")
        );
        assert_eq!(doc.meta.authors, vec!["Ann Author"]);
        assert_eq!(
            doc.meta.source_url.as_deref(),
            Some("https://cnx.org/contents/098e1a26")
        );
        assert!(doc.pieces.contains(&Piece::Language("en".into())));
        assert!(doc.pieces.contains(&Piece::Attribution));
    }

    #[test]
    fn identity_translation_language_and_attribution() {
        let doc = read(SAMPLE);
        let path = Path::new("m.cnxml");
        let out = write_document(
            &doc,
            &Translations::identity(&doc),
            &WriteOptions::default(),
            path,
        )
        .unwrap();
        assert_eq!(out, SAMPLE);
        let mut texts = doc.source_texts();
        texts[1] = "Letras como <x1/> son valores de <g2>datos</g2> < 5 & más.<x3/>Sigue.".into();
        let opts = WriteOptions {
            target_language: Some("es".into()),
            attribution: Some("Translated -- by oerkit".into()),
            render_unchanged: false,
        };
        let out = write_document(&doc, &Translations::from_texts(texts), &opts, path).unwrap();
        assert!(out.contains("<md:language>es</md:language>"));
        assert!(out.contains("<!-- Translated - - by oerkit -->\n</metadata>"));
        assert!(out.contains(
            r#"Letras como <m:math><m:mi>x</m:mi></m:math> son valores de <emphasis effect="bold">datos</emphasis> &lt; 5 &amp; más.<newline/>Sigue."#
        ));
        let again = read(&out);
        assert_eq!(again.units.len(), doc.units.len());
        assert_eq!(again.meta.language.as_deref(), Some("es"));
    }

    #[test]
    fn malformed_xml_gives_line_and_column() {
        let e = Cnxml
            .read("<document>\n<para>open\n</document>")
            .unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let e = Cnxml
            .read("<document>\n  <para>a &nope; b</para></document>")
            .unwrap_err();
        assert_eq!((e.line, e.column), (2, 11), "{e}");
        let e = Cnxml.read("<document>\n<para>never closed").unwrap_err();
        assert_eq!((e.line, e.column), (2, 1), "{e}");
        assert!(e.message.contains("never closed"), "{e}");
        let e = Cnxml.read("<a x=1></a>").unwrap_err();
        assert_eq!(e.line, 1);
    }

    #[test]
    fn literal_token_text_is_protected_and_escaped() {
        let input = "<document><para>write &lt;g1&gt; here</para></document>";
        let doc = read(input);
        assert_eq!(doc.units[0].text, "write <x1/> here");
        assert_eq!(doc.units[0].placeholders[0].original, "&lt;g1>");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics_and_identity_holds(s in proptest::prelude::any::<String>()) {
            if let Ok(mut doc) = Cnxml.read(&s) {
                doc.assign_ids();
                let out = write_document(&doc, &Translations::identity(&doc), &WriteOptions::default(), Path::new("x")).unwrap();
                proptest::prop_assert_eq!(out, s);
            }
        }

        #[test]
        fn never_panics(s in "(<[a-z:]{1,3}( [a-z]{1,2}=\"[^\"<]{0,4}\")?/?>|</[a-z:]{1,3}>|&[a-z#0-9]{0,4};?|[a-zA-Z <>&;\n]{0,6}){0,24}") {
            let _ = Cnxml.read(&s);
        }

        #[test]
        fn wellformed_input_round_trips(words in proptest::collection::vec("[a-zA-Z&<>\"' ]{0,8}", 1..8)) {
            let mut input = String::from("<document><content>");
            for (i, w) in words.iter().enumerate() {
                let mut esc = String::new();
                Escape::XmlText.apply(w, &mut esc);
                if i % 2 == 0 {
                    input.push_str(&format!("<para>{esc} <emphasis>{esc}</emphasis></para>"));
                } else {
                    input.push_str(&format!("<item>{esc}</item>"));
                }
            }
            input.push_str("</content></document>");
            let doc = read(&input);
            let out = write_document(&doc, &Translations::identity(&doc), &WriteOptions::default(), Path::new("x")).unwrap();
            proptest::prop_assert_eq!(&out, &input);
            let opts = WriteOptions { render_unchanged: true, ..Default::default() };
            let rendered = write_document(&doc, &Translations::identity(&doc), &opts, Path::new("x")).unwrap();
            let again = read(&rendered);
            proptest::prop_assert_eq!(again.source_texts(), doc.source_texts());
        }
    }
}
