//! H5P JSON: language files (`language/*.json`), `semantics.json`, `library.json`, `h5p.json` and
//! `content.json`. Only string leaves can be units; numbers, booleans, keys and the JSON structure are
//! raw, written back byte for byte. The unit key and context is the leaf's JSON path
//! (`semantics[0].fields[2].label`).
//!
//! Which string leaves are human text (the rest stay raw):
//! - not under a machine key: [`MACHINE_KEYS`] (`name`, `type`, `widget`, `importance`, `value`,
//!   `machineName`, `path`, `library`, `license`…; for an array of strings, the array's key);
//! - not the `default` of a field whose `type` is not `text`/`textarea` (a select's default is an
//!   option value such as `subtitles`);
//! - the value has letters and is not a URL, a path, a regular expression, an identifier
//!   (`interactiveVideo`, `H5P.Text`, `snake_case`), a colour or a bare language code in a
//!   `language` key — see [`looks_like_machine_value`].
//!
//! Unit text is the JSON-unescaped string (`\u00e9` becomes `é`), trimmed; HTML tags inside strings
//! are placeholders (paired when they open and close), as are `{name}` fields and H5P's `@name` and
//! `:name` variables. Translations are written with JSON escaping. JSON has no place for an
//! attribution notice: the CLI writes it beside the file.

use crate::document::{Document, Piece, Unit};
use crate::error::ParseError;
use crate::format::{Format, FormatKind};
use crate::formats::inline_codes::{self, Codes};
use crate::placeholder::{has_translatable_text, Escape};

pub struct H5p;

/// Keys whose string values are machine values, never translated.
pub const MACHINE_KEYS: &[&str] = &[
    "name",
    "type",
    "widget",
    "widgets",
    "importance",
    "value",
    "machineName",
    "path",
    "tags",
    "enterMode",
    "hideFields",
    "extraAttributes",
    "preferredFormat",
    "library",
    "options",
    "palette",
    "video",
    "poster",
    "embedTypes",
    "license",
    "licenseVersion",
    "contentType",
    "author",
    "mime",
    "id",
    "subContentId",
    "regexp",
    "pattern",
    "font",
    "fontFamily",
    "language",
    "defaultLanguage",
    "mainLibrary",
    "embedType",
    "source",
    "url",
    "src",
    "href",
    "copyright",
    "role",
];

impl Format for H5p {
    fn kind(&self) -> FormatKind {
        FormatKind::H5p
    }

    fn read(&self, input: &str) -> Result<Document, ParseError> {
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(input) {
            return Err(ParseError {
                line: e.line().max(1),
                column: e.column().max(1),
                message: {
                    let full = e.to_string();
                    let what = full.rfind(" at line ").map_or(&full[..], |i| &full[..i]);
                    format!("invalid JSON: {what}")
                },
            });
        }
        let mut scanner = Scanner {
            s: input,
            b: input.as_bytes(),
            i: 0,
            leaves: Vec::new(),
        };
        scanner.ws();
        scanner.value(String::new(), None, 0)?;
        let mut doc = Document::new(FormatKind::H5p);
        let mut pos = 0;
        for leaf in scanner.leaves {
            root_metadata(&mut doc, &leaf, input);
            let is_root_language = leaf.path == "language";
            if is_root_language && !leaf.escaped(input).contains('\\') {
                doc.push_raw(&input[pos..leaf.start]);
                doc.pieces
                    .push(Piece::Language(leaf.escaped(input).to_string()));
                pos = leaf.end;
                continue;
            }
            if leaf.excluded
                || leaf
                    .key
                    .as_deref()
                    .is_some_and(|k| MACHINE_KEYS.contains(&k))
            {
                continue;
            }
            let escaped = leaf.escaped(input);
            let (unescaped, map) = unescape_json(escaped);
            let trimmed = unescaped.trim();
            if trimmed.is_empty() || looks_like_machine_value(trimmed) {
                continue;
            }
            let lead = unescaped.len() - unescaped.trim_start().len();
            let stop = lead + trimmed.len();
            let (text, placeholders) =
                inline_codes::build(trimmed, escaped, &map[lead..=stop], Codes::H5P);
            if !has_translatable_text(&text) {
                continue;
            }
            let (raw_start, raw_end) = (leaf.start + map[lead], leaf.start + map[stop]);
            doc.push_raw(&input[pos..raw_start]);
            let mut unit = Unit::new(
                text,
                &input[raw_start..raw_end],
                leaf.path.clone(),
                Escape::Json,
            );
            unit.placeholders = placeholders;
            unit.key = Some(leaf.path);
            doc.push_unit(unit);
            pos = raw_end;
        }
        doc.push_raw(&input[pos..]);
        Ok(doc)
    }
}

/// Whether a string looks like a machine value rather than text for people.
pub fn looks_like_machine_value(s: &str) -> bool {
    if !s.chars().any(char::is_alphabetic) {
        return true;
    }
    let lower = s.to_ascii_lowercase();
    if lower.contains("://")
        || lower.starts_with("www.")
        || lower.starts_with("mailto:")
        || lower.starts_with("data:")
    {
        return true;
    }
    if lower.starts_with("rgb(") || lower.starts_with("rgba(") || lower.starts_with("hsl(") {
        return true;
    }
    if s.chars().any(char::is_whitespace) {
        return false;
    }
    // One token from here on.
    if s.starts_with('^') || s.ends_with('$') || s.contains('\\') {
        return true; // a regular expression
    }
    if s.contains('/') || s.starts_with('#') || s.starts_with('.') {
        return true; // a path, a selector, a colour
    }
    let word = s.trim_end_matches(['.', ',', '!', '?', ':', ';', ')']);
    let chars: Vec<char> = word.chars().collect();
    let camel = chars
        .windows(2)
        .any(|w| w[0].is_lowercase() && w[1].is_uppercase());
    let joined = chars.windows(3).any(|w| {
        w[0].is_alphanumeric() && matches!(w[1], '_' | '.' | '-') && w[2].is_alphanumeric()
    }) && (word.contains('_') || word.contains('.'));
    camel || joined
}

fn root_metadata(doc: &mut Document, leaf: &Leaf, input: &str) {
    // Members of the root object only (their path is their key), and h5p.json's
    // "authors": [{"name": "…", "role": "Author"}].
    let is_author = leaf.path.starts_with("authors[") && leaf.path.ends_with("].name");
    if leaf.key.as_deref() != Some(leaf.path.as_str()) && !is_author {
        return;
    }
    let value = unescape_json(leaf.escaped(input)).0;
    match leaf.path.as_str() {
        "title" => doc.meta.title = Some(value),
        "license" => doc.meta.license = Some(value),
        "language" => doc.meta.language = Some(value),
        "author" => doc.meta.authors.push(value),
        "source" => doc.meta.source_url = Some(value),
        _ if is_author => doc.meta.authors.push(value),
        _ => {}
    }
}

/// A string value in the file.
#[derive(Debug)]
struct Leaf {
    path: String,
    /// The key it is the value of (for array elements: the array's key).
    key: Option<String>,
    /// Byte range of the content between the quotes.
    start: usize,
    end: usize,
    /// Object nesting depth (1: a member of the root object).
    depth: usize,
    /// Ruled out by its siblings (a `default` of a non-text field).
    excluded: bool,
}

impl Leaf {
    fn escaped<'a>(&self, input: &'a str) -> &'a str {
        &input[self.start..self.end]
    }
}

/// Walks JSON that serde_json has already validated, recording every string leaf's position.
struct Scanner<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    leaves: Vec<Leaf>,
}

impl Scanner<'_> {
    fn err(&self, message: &str) -> ParseError {
        ParseError::at(self.s, self.i, message)
    }

    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), ParseError> {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", char::from(c))))
        }
    }

    /// A string starting at `self.i` (a quote); returns the content range.
    fn string(&mut self) -> Result<(usize, usize), ParseError> {
        if self.b.get(self.i) != Some(&b'"') {
            return Err(self.err("expected a string"));
        }
        let start = self.i + 1;
        let mut j = start;
        while j < self.b.len() {
            match self.b[j] {
                b'"' => {
                    self.i = j + 1;
                    return Ok((start, j));
                }
                b'\\' => j += 2,
                _ => j += 1,
            }
        }
        Err(self.err("unterminated string"))
    }

    /// Parses one value. `depth` is the object depth of its container.
    fn value(&mut self, path: String, key: Option<&str>, depth: usize) -> Result<(), ParseError> {
        self.ws();
        match self.b.get(self.i) {
            Some(b'{') => self.object(path, depth + 1),
            Some(b'[') => {
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(());
                }
                let mut n = 0;
                loop {
                    self.value(format!("{path}[{n}]"), key, depth)?;
                    n += 1;
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
            }
            Some(b'"') => {
                let (start, end) = self.string()?;
                self.leaves.push(Leaf {
                    path,
                    key: key.map(str::to_string),
                    start,
                    end,
                    depth,
                    excluded: false,
                });
                Ok(())
            }
            Some(_) => {
                // A number, true, false or null: up to the next delimiter.
                while self.i < self.b.len()
                    && !matches!(
                        self.b[self.i],
                        b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r'
                    )
                {
                    self.i += 1;
                }
                Ok(())
            }
            None => Err(self.err("unexpected end of input")),
        }
    }

    fn object(&mut self, path: String, depth: usize) -> Result<(), ParseError> {
        self.i += 1;
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(());
        }
        let mut field_type: Option<String> = None;
        let mut defaults: Vec<usize> = Vec::new();
        loop {
            self.ws();
            let (ks, ke) = self.string()?;
            let key = unescape_json(&self.s[ks..ke]).0;
            self.expect(b':')?;
            let member_path = if path.is_empty() {
                key.clone()
            } else if key.chars().all(|c| c.is_alphanumeric() || c == '_') && !key.is_empty() {
                format!("{path}.{key}")
            } else {
                format!("{path}[{key:?}]")
            };
            let before = self.leaves.len();
            self.value(member_path, Some(&key), depth)?;
            if self.leaves.len() == before + 1 && self.leaves[before].depth == depth {
                let leaf = &self.leaves[before];
                match key.as_str() {
                    "type" => field_type = Some(unescape_json(leaf.escaped(self.s)).0),
                    "default" => defaults.push(before),
                    _ => {}
                }
            }
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    break;
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
        if let Some(t) = field_type {
            if t != "text" && t != "textarea" {
                for i in defaults {
                    self.leaves[i].excluded = true;
                }
            }
        }
        Ok(())
    }
}

/// Unescapes JSON string content; `map[i]` is the offset in `escaped` that byte `i` of the result
/// came from (`map.len() == result.len() + 1`).
fn unescape_json(escaped: &str) -> (String, Vec<usize>) {
    let b = escaped.as_bytes();
    let mut out = String::with_capacity(escaped.len());
    let mut map = Vec::with_capacity(escaped.len() + 1);
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let ch = if b[i] == b'\\' && i + 1 < b.len() {
            let c = b[i + 1];
            i += 2;
            match c {
                b'n' => '\n',
                b't' => '\t',
                b'r' => '\r',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'u' => {
                    let hex = |at: usize| {
                        escaped
                            .get(at..at + 4)
                            .and_then(|h| u32::from_str_radix(h, 16).ok())
                    };
                    match hex(i) {
                        Some(hi) if (0xD800..0xDC00).contains(&hi) => {
                            let lo = (escaped.get(i + 4..i + 6) == Some("\\u"))
                                .then(|| hex(i + 6))
                                .flatten()
                                .filter(|lo| (0xDC00..0xE000).contains(lo));
                            match lo {
                                Some(lo) => {
                                    i += 10;
                                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                                        .unwrap_or('\u{fffd}')
                                }
                                None => {
                                    i += 4;
                                    '\u{fffd}'
                                }
                            }
                        }
                        Some(v) => {
                            i += 4;
                            char::from_u32(v).unwrap_or('\u{fffd}')
                        }
                        None => '\u{fffd}',
                    }
                }
                other => char::from(other),
            }
        } else {
            let ch = escaped[i..].chars().next().unwrap_or('\u{fffd}');
            i += ch.len_utf8();
            ch
        };
        for _ in 0..ch.len_utf8() {
            map.push(start);
        }
        out.push(ch);
    }
    map.push(b.len());
    (out, map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::{write_document, Translations, WriteOptions};
    use std::path::Path;

    const SEMANTICS: &str = r#"[
  {
    "name": "interactiveVideo",
    "type": "group",
    "label": "Interactive Video Editor",
    "importance": "high",
    "fields": [
      {"name": "kind", "type": "select", "label": "Kind", "default": "subtitles",
       "options": [{"value": "subtitles", "label": "Subtitles"}]},
      {"name": "title", "type": "text", "label": "Title", "default": "Interactive Video",
       "maxLength": 60, "optional": true},
      {"label": "You got @score of @total \u00e9 <b>points</b>", "description": "Caf\u00e9 \"quoted\" \n",
       "regexp": {"pattern": "^[0-9]+$"}, "placeholder": "https://example.org/x", "tags": ["p", "strong"],
       "widget": "html", "default": "42", "other": "H5P.Text", "path": "video/files"}
    ]
  }
]
"#;

    fn read(s: &str) -> Document {
        let mut doc = H5p.read(s).unwrap();
        doc.assign_ids();
        doc
    }

    #[test]
    fn only_human_string_leaves_are_units() {
        let doc = read(SEMANTICS);
        let units: Vec<(&str, &str)> = doc
            .units
            .iter()
            .map(|u| (u.id.as_str(), u.text.as_str()))
            .collect();
        assert_eq!(
            units,
            vec![
                ("[0].label", "Interactive Video Editor"),
                ("[0].fields[0].label", "Kind"),
                ("[0].fields[0].options[0].label", "Subtitles"),
                ("[0].fields[1].label", "Title"),
                ("[0].fields[1].default", "Interactive Video"),
                (
                    "[0].fields[2].label",
                    "You got <x1/> of <x2/> é <g3>points</g3>"
                ),
                ("[0].fields[2].description", "Café \"quoted\""),
            ]
        );
    }

    #[test]
    fn identity_render_and_translation() {
        let doc = read(SEMANTICS);
        let out = write_document(
            &doc,
            &Translations::identity(&doc),
            &WriteOptions::default(),
            Path::new("s.json"),
        )
        .unwrap();
        assert_eq!(out, SEMANTICS);
        let options = WriteOptions {
            render_unchanged: true,
            ..Default::default()
        };
        let rendered = write_document(
            &doc,
            &Translations::identity(&doc),
            &options,
            Path::new("s.json"),
        )
        .unwrap();
        assert!(rendered.contains("\"Café \\\"quoted\\\" \\n\""));
        assert_eq!(read(&rendered).source_texts(), doc.source_texts());
        let mut texts = doc.source_texts();
        texts[5] = "Tienes <x1/> de <x2/> é <g3>puntos</g3>\n\"ya\"".into();
        let out = write_document(
            &doc,
            &Translations::from_texts(texts),
            &WriteOptions::default(),
            Path::new("s.json"),
        )
        .unwrap();
        assert!(out.contains(
            r#""label": "Tienes @score de @total é <b>puntos</b>\n\"ya\"", "description""#
        ));
        serde_json::from_str::<serde_json::Value>(&out).unwrap();
    }

    #[test]
    fn metadata_from_library_and_h5p_json() {
        let doc = read(
            r#"{"title": "Interactive Video", "language": "en", "license": "MIT", "author": "Joubel",
                "authors": [{"name": "Ada", "role": "Author"}], "machineName": "H5P.InteractiveVideo"}"#,
        );
        assert_eq!(doc.meta.title.as_deref(), Some("Interactive Video"));
        assert_eq!(doc.meta.license.as_deref(), Some("MIT"));
        assert_eq!(doc.meta.language.as_deref(), Some("en"));
        assert_eq!(doc.meta.authors, vec!["Joubel", "Ada"]);
        assert!(doc.pieces.contains(&Piece::Language("en".into())));
        assert_eq!(doc.source_texts(), vec!["Interactive Video"]);
    }

    #[test]
    fn invalid_json_has_line_and_column() {
        let err = H5p.read("{\n  \"a\": [1, 2,]\n}").unwrap_err();
        assert_eq!((err.line, err.column), (2, 14), "{err}");
        let err = H5p.read("{\"a\": \"x}").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("invalid JSON"));
    }

    #[test]
    fn machine_values() {
        for s in [
            "interactiveVideo",
            "H5P.Text",
            "snake_case",
            "video/files",
            "^a+$",
            "https://x.org",
            "#fff",
            "42",
            "rgb(1, 2, 3)",
        ] {
            assert!(looks_like_machine_value(s), "{s}");
        }
        for s in [
            "Play",
            "Close",
            "Upload/embed video",
            "e.g. this",
            "Done!",
            "M:SS",
        ] {
            assert!(!looks_like_machine_value(s), "{s}");
        }
    }

    #[test]
    fn unescape_handles_surrogates_and_maps_offsets() {
        let (u, map) = unescape_json(r"a\u00e9\ud83d\ude00\n");
        assert_eq!(u, "aé😀\n");
        assert_eq!(map.len(), u.len() + 1);
        assert_eq!(map[1], 1);
        assert_eq!(map[3], 7);
    }
}
