//! HTML pages: the text of block elements (`p`, `h1`–`h6`, `li`, `td`, `th`, `dt`, `dd`, `figcaption`,
//! `blockquote`, `title`, `div`, …) is translated; inline elements (`a`, `em`, `strong`, `span`, `sub`,
//! `sup`, `kbd`, `abbr`, …) become paired placeholders, `br`/`wbr`/`img` (without alt text) standalone
//! ones; inline `code`, `math` and `svg` are one standalone placeholder each. `script`, `style`, `pre`
//! and `textarea` are never touched; comments stay raw. `alt` and `title` attributes of block-level
//! tags (and of an `img` inside a paragraph, which then splits the paragraph) are units of their own.
//! `title` on an inline element stays inside its placeholder, untranslated: a placeholder's markup is
//! written back verbatim.
//!
//! Entities: the XML ones and numeric references are decoded in unit text; other named entities
//! (`&nbsp;`, `&copy;`…) are kept as standalone placeholders, so no entity table is needed and they
//! come back exactly as written. A `&` that starts no entity is text.
//!
//! `<html lang>` is the page's [`Piece::Language`]; `<title>` is the title; `<meta name="author">`
//! gives the authors; `rel="license"` on a link or anchor gives the licence; `rel="canonical"` the
//! source URL. The attribution of a translation goes before `</body>` as a small footer.
//!
//! Why a hand-written scanner: HTML is not XML (void elements, unquoted attributes, optional end tags,
//! raw-text `script`/`style`), so an XML parser rejects real pages, and HTML5 tree builders normalise
//! the markup and lose the byte offsets the identity promise needs. The scanner only finds tags and
//! their spans; the lenient pairing below treats an unclosed element as a boundary.

use crate::document::{Document, Piece};
use crate::error::ParseError;
use crate::format::{Format, FormatKind};
use crate::formats::cnxml::markup::{self, Dialect, Extractor, Role, Special, Tok, TokKind};

pub struct Html;

impl Format for Html {
    fn kind(&self) -> FormatKind {
        FormatKind::Html
    }

    fn read(&self, input: &str) -> Result<Document, ParseError> {
        let toks = html_tokens(input);
        let mut ex = Extractor::new(input, &toks, &HtmlDialect, FormatKind::Html);
        read_metadata(&mut ex);
        ex.run()
    }

    fn attribution(&self, notice: &str) -> Option<String> {
        let mut escaped = String::new();
        crate::placeholder::Escape::XmlText.apply(notice, &mut escaped);
        Some(format!(
            "<footer class=\"oerkit-attribution\"><p>{escaped}</p></footer>\n"
        ))
    }
}

struct HtmlDialect;

impl Dialect for HtmlDialect {
    fn role(&self, name: &str) -> Role {
        match name {
            "script" | "style" | "pre" | "textarea" | "template" | "xmp" | "noscript" => Role::Skip,
            "code" | "math" | "svg" | "samp" => Role::Atom,
            "a" | "abbr" | "b" | "bdi" | "bdo" | "big" | "cite" | "data" | "del" | "dfn" | "em"
            | "font" | "i" | "ins" | "kbd" | "mark" | "q" | "s" | "small" | "span" | "strike"
            | "strong" | "sub" | "sup" | "time" | "tt" | "u" | "var" | "br" | "wbr" | "img"
            | "nobr" | "label" => Role::Inline,
            _ => Role::Block,
        }
    }

    fn text_attrs(&self, _name: &str) -> &'static [&'static str] {
        &["alt", "title"]
    }

    fn html(&self) -> bool {
        true
    }

    fn splits_runs(&self, name: &str) -> bool {
        name == "img"
    }

    fn decorative(&self, name: &str) -> bool {
        matches!(name, "br" | "wbr" | "img" | "svg")
    }
}

const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr", "keygen",
];
const RAW_TEXT: &[&str] = &["script", "style", "textarea", "title", "xmp"];

/// Splits HTML into tokens with byte offsets. Never fails: what is not a tag is text.
fn html_tokens(input: &str) -> Vec<Tok> {
    let b = input.as_bytes();
    let mut toks: Vec<Tok> = Vec::new();
    let mut i = 0;
    let mut text_start = 0;
    let push_text = |toks: &mut Vec<Tok>, s: usize, e: usize| {
        if e > s {
            toks.push(Tok {
                kind: TokKind::Text,
                start: s,
                end: e,
                name: String::new(),
                pair: None,
            });
        }
    };
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        let rest = &input[i..];
        let (kind, end, name) = if let Some(body) = rest.strip_prefix("<!--") {
            let end = body.find("-->").map_or(b.len(), |p| i + 4 + p + 3);
            (TokKind::Comment, end, String::new())
        } else if rest.starts_with("<![CDATA[") {
            let end = rest.find("]]>").map_or(b.len(), |p| i + p + 3);
            (TokKind::CData, end, String::new())
        } else if rest.starts_with("<!") || rest.starts_with("<?") {
            let end = rest.find('>').map_or(b.len(), |p| i + p + 1);
            (TokKind::Other, end, String::new())
        } else if rest.starts_with("</") && b.get(i + 2).is_some_and(u8::is_ascii_alphabetic) {
            let name = tag_name(&rest[2..]);
            match rest.find('>') {
                Some(p) => (TokKind::End, i + p + 1, name),
                None => (TokKind::Other, b.len(), String::new()),
            }
        } else if b.get(i + 1).is_some_and(u8::is_ascii_alphabetic) {
            let name = tag_name(&rest[1..]);
            match start_tag_end(&b[i..]) {
                Some(len) => {
                    let end = i + len;
                    let self_closing = len >= 2 && b[end - 2] == b'/';
                    let kind = if self_closing || VOID.contains(&name.as_str()) {
                        TokKind::Empty
                    } else {
                        TokKind::Start
                    };
                    (kind, end, name)
                }
                None => (TokKind::Other, b.len(), String::new()),
            }
        } else {
            i += 1;
            continue;
        };
        push_text(&mut toks, text_start, i);
        let is_raw_text = kind == TokKind::Start && RAW_TEXT.contains(&name.as_str());
        toks.push(Tok {
            kind,
            start: i,
            end,
            name: name.clone(),
            pair: None,
        });
        i = end;
        if is_raw_text {
            let close = format!("</{name}");
            let found = b[i..]
                .windows(close.len())
                .position(|w| w.eq_ignore_ascii_case(close.as_bytes()))
                .map_or(b.len(), |p| i + p);
            push_text(&mut toks, i, found);
            i = found;
        }
        text_start = i;
    }
    push_text(&mut toks, text_start, b.len());
    pair_up(&mut toks);
    toks
}

/// Lower-cased tag name at the start of `s`.
fn tag_name(s: &str) -> String {
    s.bytes()
        .take_while(|&c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'>' | b'/'))
        .map(|c| c.to_ascii_lowercase() as char)
        .collect()
}

/// Length of the start tag at the start of `b` (through its `>`), skipping quoted values.
fn start_tag_end(b: &[u8]) -> Option<usize> {
    let mut i = 1;
    let mut quote: Option<u8> = None;
    let mut after_eq = false;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                b'>' => return Some(i + 1),
                b'"' | b'\'' if after_eq => quote = Some(c),
                _ => {}
            },
        }
        if quote.is_none() && !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            after_eq = c == b'=';
        }
        i += 1;
    }
    None
}

/// Pairs start and end tags leniently: an end tag closes the nearest open element of its name and
/// leaves everything opened after it unpaired (optional end tags); a stray end tag stays unpaired.
fn pair_up(toks: &mut [Tok]) {
    let mut stack: Vec<usize> = Vec::new();
    for i in 0..toks.len() {
        match toks[i].kind {
            TokKind::Start => stack.push(i),
            TokKind::End => {
                if let Some(pos) = stack.iter().rposition(|&s| toks[s].name == toks[i].name) {
                    let open = stack[pos];
                    stack.truncate(pos);
                    toks[open].pair = Some(i);
                    toks[i].pair = Some(open);
                }
            }
            _ => {}
        }
    }
}

fn read_metadata(ex: &mut Extractor<'_, HtmlDialect>) {
    let toks = ex.toks;
    let input = ex.input;
    let mut body_end: Option<usize> = None;
    let mut html_seen = false;
    for (i, t) in toks.iter().enumerate() {
        if t.kind == TokKind::End && t.name == "body" {
            body_end = Some(t.start);
        }
        if !matches!(t.kind, TokKind::Start | TokKind::Empty) {
            continue;
        }
        let tag = &input[t.start..t.end];
        let value =
            |name: &str| markup::attr(tag, name).map(|a| markup::decode_plain(a.value(tag)));
        match t.name.as_str() {
            "html" if !html_seen => {
                html_seen = true;
                if let Some(a) = markup::attr(tag, "lang").or_else(|| markup::attr(tag, "xml:lang"))
                {
                    let code = a.value(tag).to_string();
                    if !code.is_empty() && a.quote.is_some() {
                        ex.doc.meta.language = Some(code.clone());
                        ex.specials.push(Special {
                            at: t.start + a.value_start,
                            end: t.start + a.value_end,
                            piece: Piece::Language(code),
                        });
                    }
                }
            }
            "title" if ex.doc.meta.title.is_none() => {
                let title = ex.text_content(i).trim().to_string();
                if !title.is_empty() {
                    ex.doc.meta.title = Some(title);
                }
            }
            "meta" => {
                let name = value("name").map(|n| n.to_ascii_lowercase());
                let content = value("content").map(|c| c.trim().to_string());
                if let (Some(name), Some(content)) = (name, content) {
                    if (name == "author" || name == "dc.creator") && !content.is_empty() {
                        ex.doc.meta.authors.push(content);
                    }
                }
            }
            "a" | "link" => {
                let rel = value("rel").unwrap_or_default().to_ascii_lowercase();
                let href = value("href").filter(|h| !h.is_empty());
                let rels: Vec<&str> = rel.split_whitespace().collect();
                if rels.contains(&"license") && ex.doc.meta.license.is_none() {
                    ex.doc.meta.license = href.clone();
                }
                if rels.contains(&"canonical") && ex.doc.meta.source_url.is_none() {
                    ex.doc.meta.source_url = href;
                }
            }
            _ => {}
        }
    }
    ex.specials.push(Special {
        at: body_end.unwrap_or(input.len()),
        end: body_end.unwrap_or(input.len()),
        piece: Piece::Attribution,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placeholder::{Escape, TagKind};
    use crate::write::{write_document, Translations, WriteOptions};
    use std::path::Path;

    const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>The Shell &amp; You</title>
<meta name="author" content="Ann Author"><link rel="license" href="https://creativecommons.org/licenses/by/4.0/">
<script>if (a < b && c) { document.write("<p>no</p>"); }</script><style>p > a { color: red }</style></head>
<body>
<!-- a comment -->
<h1 id="intro">Introducing the <em>Shell</em></h1>
<p>Run <code>ls -F</code> to see <a href="x.html" title="More">files</a>&nbsp;now.<br>Next line &copy; 2024 &lt;ok&gt;</p>
<ul><li>First<li>Second</ul>
<pre><code>$ ls
Desktop</code></pre>
<img src="a.png" alt="A terminal window">
<p>Press <kbd>Ctrl</kbd>+<kbd>C</kbd> &amp; wait. <img src=i.png alt="icon"> Done.</p>
<div class=note title='A "quoted" note'><strong>All bold</strong></div>
<p>12 &amp; 34</p>
</body>
</html>
"#;

    fn read(input: &str) -> Document {
        let mut doc = Html.read(input).unwrap();
        doc.assign_ids();
        doc
    }

    #[test]
    fn units_placeholders_and_metadata() {
        let doc = read(PAGE);
        assert_eq!(
            doc.source_texts(),
            vec![
                "The Shell & You",
                "Introducing the <g1>Shell</g1>",
                "Run <x1/> to see <g2>files</g2><x3/>now.<x4/>Next line <x5/> 2024 <ok>",
                "First",
                "Second",
                "A terminal window",
                "Press <g1>Ctrl</g1>+<g2>C</g2> & wait.",
                "icon",
                "Done.",
                "A \"quoted\" note",
                "All bold",
            ]
        );
        let p = &doc.units[2];
        assert_eq!(p.placeholders[0].original, "<code>ls -F</code>");
        assert_eq!(
            p.placeholders[1].original,
            r#"<a href="x.html" title="More">"#
        );
        assert_eq!(p.placeholders[2].kind, TagKind::Close);
        assert_eq!(p.placeholders[3].original, "&nbsp;");
        assert_eq!(p.placeholders[4].original, "<br>");
        assert_eq!(doc.units[1].id, "intro");
        assert_eq!(doc.units[9].escape, Escape::XmlAttrSingle);
        assert_eq!(doc.meta.title.as_deref(), Some("The Shell & You"));
        assert_eq!(doc.meta.language.as_deref(), Some("en"));
        assert_eq!(doc.meta.authors, vec!["Ann Author"]);
        assert_eq!(
            doc.meta.license.as_deref(),
            Some("https://creativecommons.org/licenses/by/4.0/")
        );
        assert!(doc.units.iter().all(|u| !u.text.contains("Desktop")));
    }

    #[test]
    fn identity_translation_language_and_attribution() {
        let doc = read(PAGE);
        let path = Path::new("p.html");
        let out = write_document(
            &doc,
            &Translations::identity(&doc),
            &WriteOptions::default(),
            path,
        )
        .unwrap();
        assert_eq!(out, PAGE);
        let mut texts = doc.source_texts();
        texts[2] =
            "Ejecuta <x1/> para ver <g2>archivos</g2><x3/>ya.<x4/>Otra & más <x5/> 2024 <ok>"
                .into();
        texts[9] = "Una nota \"citada\" y 'simple'".into();
        let opts = WriteOptions {
            target_language: Some("es".into()),
            attribution: Some("Traducido <por> oerkit".into()),
            render_unchanged: false,
        };
        let out = write_document(&doc, &Translations::from_texts(texts), &opts, path).unwrap();
        assert!(out.contains(r#"<html lang="es">"#));
        assert!(out.contains(r#"Ejecuta <code>ls -F</code> para ver <a href="x.html" title="More">archivos</a>&nbsp;ya.<br>Otra &amp; más &copy; 2024 &lt;ok>"#), "{out}");
        assert!(
            out.contains("title='Una nota \"citada\" y &apos;simple&apos;'"),
            "{out}"
        );
        assert!(out.contains(
            "<footer class=\"oerkit-attribution\"><p>Traducido &lt;por> oerkit</p></footer>\n</body>"
        ));
        let again = read(&out);
        // The attribution footer is text of the page, so it is one more unit.
        assert_eq!(again.units.len(), doc.units.len() + 1);
        assert_eq!(again.units[11].text, "Traducido <por> oerkit");
        assert_eq!(again.meta.language.as_deref(), Some("es"));
    }

    #[test]
    fn broken_html_is_read_leniently() {
        for input in [
            "<p>unclosed <em>emphasis",
            "</div>stray</span> text <",
            "<p class=\"open>never",
            "<!-- open comment",
            "<script>never closed",
        ] {
            let doc = read(input);
            let out = write_document(
                &doc,
                &Translations::identity(&doc),
                &WriteOptions::default(),
                Path::new("x"),
            )
            .unwrap();
            assert_eq!(out, input);
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics_and_identity_holds(s in proptest::prelude::any::<String>()) {
            let doc = read(&s);
            let out = write_document(&doc, &Translations::identity(&doc), &WriteOptions::default(), Path::new("x")).unwrap();
            proptest::prop_assert_eq!(out, s);
        }

        #[test]
        fn never_panics_and_identity_holds(s in "(<[a-zA-Z]{1,3}( [a-z]{1,3}(=\"[^\"]{0,4}\"|='x'|=y)?)?/?>|</[a-z]{1,3}>|<!--|-->|&[a-z#0-9]{0,4};?|[a-zA-Zé <>&;\"'=\n]{0,6}){0,24}") {
            let doc = read(&s);
            let out = write_document(&doc, &Translations::identity(&doc), &WriteOptions::default(), Path::new("x")).unwrap();
            proptest::prop_assert_eq!(out, s);
        }
    }
}
